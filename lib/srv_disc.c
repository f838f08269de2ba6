/* srv_disc.c - the NAT discovery leaf (srv_disc.h).  Layer: leaf; may call
 * discover.c, predict.c, wire.c and its own timer on loop.c. */
#include "srv_disc.h"

#include <stdlib.h>

struct n4_srv_disc *n4_srv_disc_new(bool ordered)
{
	struct n4_srv_disc *ds = calloc(1, sizeof(*ds));

	if (ds)
		ds->d.ordered = ordered;
	return ds;
}

void n4_srv_disc_free(n4_loop *loop, struct n4_srv_disc *ds)
{
	if (!ds)
		return;
	n4_timer_cancel(loop, &ds->timer);
	free(ds);
}

void n4_srv_disc_extra(struct n4_srv_disc *ds, unsigned allocs)
{
	if (ds)
		ds->d.extra_allocs = allocs;
}

uint64_t n4_srv_disc_last_ms(const struct n4_srv_disc *ds)
{
	return ds && ds->d.n ? n4_discovery_last_ms(&ds->d) : 0;
}

unsigned n4_srv_disc_allocs(const struct n4_srv_disc *ds)
{
	return ds ? n4_plan_allocs(&ds->d.plan) : 0;
}

void n4_srv_disc_room_host(struct n4_srv_disc *ds)
{
	if (ds)
		ds->d.room_host = true;
}

void n4_srv_disc_known(struct n4_srv_disc *ds, uint32_t ip, const struct n4_seen_map *seen,
		       unsigned n)
{
	if (ds)
		ds->d.known_between = n4_discovery_known_between(&ds->d, ip, seen, n);
}

void n4_srv_disc_walked(struct n4_srv_disc *ds, const struct n4_port_span *spans, unsigned n)
{
	if (!ds)
		return;
	if (n > N4_WALKED_MAX)
		n = N4_WALKED_MAX;
	for (unsigned i = 0; i < n; i++)
		ds->d.walked[i] = spans[i];
	ds->d.n_walked = n;
}

bool n4_srv_disc_walk_span(const struct n4_srv_disc *ds, struct n4_port_span *span)
{
	const struct n4_plan *p = ds ? &ds->d.plan : NULL;

	if (!p || p->kind != N4_PLAN_WALK || !p->count)
		return false;
	long last = (long)p->lo + (long)p->walk_step * (long)(p->count - 1);
	if (last < 1)
		last = 1;
	if (last > 65535)
		last = 65535;
	span->lo = (uint16_t)(last < p->lo ? last : p->lo);
	span->hi = (uint16_t)(last < p->lo ? p->lo : last);
	return true;
}

unsigned n4_srv_disc_walk_skipped(const struct n4_srv_disc *ds)
{
	return ds ? ds->d.walk_skipped : 0;
}

bool n4_srv_disc_ordered(const struct n4_srv_disc *ds)
{
	return ds->d.ordered;
}

void n4_srv_disc_probe(struct n4_srv_disc *ds, uint16_t port, bool second, bool last,
		       uint64_t rx_ms)
{
	n4_discovery_record(&ds->d, port, second, second, last, rx_ms);
}

void n4_srv_disc_seq_probe(struct n4_srv_disc *ds, uint16_t port, bool second,
			   const struct n4_seq_probe *p, uint64_t rx_ms)
{
	n4_discovery_record_seq(&ds->d, port, second, p, rx_ms);
}

void n4_srv_disc_exchange(n4_loop *loop, struct n4_srv_disc *ds, uint16_t port, uint64_t exch_ms,
			  uint64_t rx_ms, n4_timer_cb expired, void *arg)
{
	n4_discovery_record(&ds->d, port, false, true, false, rx_ms);
	unsigned wait_ms = ds->d.ordered ? N4_DISCOVERY_SEQ_WAIT_MS : N4_DISCOVERY_WAIT_MS;
	if (!ds->d.complete && n4_timer_arm(loop, &ds->timer, exch_ms + wait_ms, expired, arg))
		ds->d.complete = true;
}

void n4_srv_disc_expire(struct n4_srv_disc *ds)
{
	ds->d.complete = true;
}

bool n4_srv_disc_complete(const struct n4_srv_disc *ds)
{
	return !ds || ds->d.complete;
}

void n4_srv_disc_plan(struct n4_srv_disc *a, struct n4_srv_disc *b, uint64_t now,
		      const uint64_t delay[2], uint64_t rtt_a, uint64_t rtt_b, unsigned budget)
{
	if (!a || !b)
		return;
	/* Each side's sweep opens its mappings when its PEERINFO arrives: sent
	 * now + delay, arriving half a round trip later, while its last probe was
	 * allocated half a round trip before we saw it. */
	double dt_a = (double)(now + delay[0] - n4_discovery_last_ms(&a->d) + rtt_a);
	double dt_b = (double)(now + delay[1] - n4_discovery_last_ms(&b->d) + rtt_b);
	n4_discovery_plan(&a->d, &b->d, dt_a, dt_b, budget);
}

unsigned n4_srv_disc_plan_kind(const struct n4_srv_disc *ds)
{
	return ds ? (unsigned)ds->d.plan.kind : N4_PLAN_NONE;
}

unsigned n4_srv_disc_plan_msgs(struct n4_srv_disc *ds, uint16_t max_pps, struct n4_msg out[2])
{
	struct n4_msg *plan = &out[0];
	uint8_t kind, flags;

	if (!ds)
		return 0;
	if (ds->d.ordered) {
		/* TUNE goes first: the client sets up its sweep's pace, then its
		 * plan. */
		n4_msg_init(&out[0], N4_CMD_TUNE, 0, NULL);
		ds->d.tune.max_pps = max_pps;
		n4_tune_encode(&ds->d.tune, &flags, out[0].payload);
		out[0].ext = flags;
		plan = &out[1];
	}
	n4_msg_init(plan, N4_CMD_PLAN, 0, NULL);
	n4_plan_encode(&ds->d.plan, &kind, plan->payload);
	plan->ext = kind;
	return ds->d.ordered ? 2 : 1;
}

bool n4_srv_disc_plan_flow(const struct n4_srv_disc *a, const struct n4_srv_disc *b,
			   const struct n4_flow_probe probe[2], const double dt[2], unsigned budget,
			   uint16_t max_pps, struct n4_msg out[2][2], unsigned n[2],
			   unsigned allocs[2])
{
	struct n4_plan plan[2];
	struct n4_tune tune;

	if (!a || !b ||
	    !n4_discovery_plan_flow(&a->d, &b->d, &probe[0], &probe[1], dt[0], dt[1], budget,
				    &plan[0], &plan[1], &tune))
		return false;
	for (int i = 0; i < 2; i++) {
		const struct n4_srv_disc *ds = i == 0 ? a : b;
		struct n4_msg *m = out[i];
		uint8_t kind, flags;
		n[i] = 0;
		if (ds->d.ordered) {
			struct n4_tune t = tune;
			t.max_pps = max_pps;
			n4_msg_init(&m[n[i]], N4_CMD_TUNE, 0, NULL);
			n4_tune_encode(&t, &flags, m[n[i]].payload);
			m[n[i]++].ext = flags;
		}
		n4_msg_init(&m[n[i]], N4_CMD_PLAN, 0, NULL);
		n4_plan_encode(&plan[i], &kind, m[n[i]].payload);
		m[n[i]++].ext = kind;
		allocs[i] = n4_plan_allocs(&plan[i]);
	}
	return true;
}

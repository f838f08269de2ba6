/* discover.c - collecting a client's probe observations for predict.c. */
#include "discover.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

#define ALL_SEEN ((uint8_t)((1u << (N4_SEQ_PROBES + 1)) - 1u))

void n4_discovery_record(struct n4_discovery *d, uint16_t port, bool second_port, bool socket0,
			 bool last, uint64_t now_ms)
{
	if (d->n == 0)
		d->first_ms = now_ms;
	if (last)
		d->complete = true;
	bool exchange = d->ordered && socket0 && !second_port;
	for (unsigned i = 0; i < d->n; i++) {
		if (exchange ? d->obs[i].ordered && d->obs[i].order == 0
			     : d->obs[i].port == port && d->obs[i].second_port == second_port)
			return; /* a copy (clients send three EXCHANGEs) */
	}
	if (d->n == N4_OBS_MAX || (d->ordered && !exchange))
		return; /* an ordered client's probes come numbered */
	d->obs[d->n++] = (struct n4_obs){ .port = port,
					  .second_port = second_port,
					  .socket0 = socket0,
					  .t_ms = now_ms,
					  .ordered = exchange,
					  .timed = exchange };
	if (exchange) {
		d->seen |= 1u;
		d->complete = d->complete || d->seen == ALL_SEEN;
	}
}

void n4_discovery_record_seq(struct n4_discovery *d, uint16_t port, bool second_port,
			     const struct n4_seq_probe *p, uint64_t t_ms)
{
	unsigned order = p->seq + 1u;

	if (!d->ordered || p->seq >= N4_SEQ_PROBES || (p->seq == 0) != second_port)
		return; /* seq 0 alone goes to the second port */
	if (d->n == 0)
		d->first_ms = t_ms;
	d->nosweep = d->nosweep || p->nosweep;
	for (unsigned i = 0; i < d->n; i++) {
		struct n4_obs *o = &d->obs[i];
		if (!o->ordered || o->order != order)
			continue;
		/* The original can arrive after its resend (jitter): its time is
		 * the one that matches the send schedule. */
		if (!o->timed && !p->resent && o->port == port) {
			o->timed = true;
			o->t_ms = t_ms;
		}
		return;
	}
	if (d->n == N4_OBS_MAX)
		return;
	d->obs[d->n++] = (struct n4_obs){
		.port = port,
		.second_port = second_port,
		.socket0 = p->seq == 0,
		.t_ms = t_ms,
		.ordered = true,
		.timed = !p->resent,
		.order = (uint8_t)order,
		.send_ms = (uint16_t)n4_seq_probe_offset_ms(p->seq, p->spacing_ms),
	};
	d->seen |= (uint8_t)(1u << order);
	d->complete = d->complete || d->seen == ALL_SEEN;
}

/* For ordered clients: the send schedule placed at the probes' mean one-way
 * delay, so that the caller, who adds a mean delay (half a round trip) for the
 * PEERINFO's way back, gets the mean drift rather than one of its extremes. */
uint64_t n4_discovery_last_ms(const struct n4_discovery *d)
{
	uint64_t t = 0, sum = 0;
	unsigned last_send = 0, timed = 0;

	for (unsigned i = 0; i < d->n; i++) {
		const struct n4_obs *o = &d->obs[i];
		if (o->t_ms > t)
			t = o->t_ms;
		if (!o->ordered)
			continue;
		last_send = o->send_ms > last_send ? o->send_ms : last_send;
		if (o->timed && o->t_ms >= o->send_ms) {
			sum += o->t_ms - o->send_ms;
			timed++;
		}
	}
	return d->ordered && timed ? sum / timed + last_send : t;
}

unsigned n4_discovery_known_between(const struct n4_discovery *d, uint32_t ip,
				    const struct n4_seen_map *seen, unsigned n)
{
	uint16_t lo = 65535, hi = 0, known[64];
	uint64_t t0 = UINT64_MAX, t1 = 0;
	unsigned own = 0, k = 0;

	for (unsigned i = 0; i < d->n; i++) {
		const struct n4_obs *o = &d->obs[i];
		if (d->room_host && o->socket0)
			continue;
		own++;
		lo = o->port < lo ? o->port : lo;
		hi = o->port > hi ? o->port : hi;
		t0 = o->t_ms < t0 ? o->t_ms : t0;
		t1 = o->t_ms > t1 ? o->t_ms : t1;
	}
	if (own < 2 || hi - lo < 2)
		return 0;
	for (unsigned i = 0; i < n && k < sizeof(known) / sizeof(known[0]); i++) {
		const struct n4_seen_map *m = &seen[i];
		if (!m->ms || m->ip != ip || m->port <= lo || m->port >= hi || m->ms + 1000 < t0 ||
		    m->ms > t1 + 1000)
			continue;
		bool dup = false;
		for (unsigned j = 0; j < d->n && !dup; j++)
			dup = d->obs[j].port == m->port;
		for (unsigned j = 0; j < k && !dup; j++)
			dup = known[j] == m->port;
		if (!dup)
			known[k++] = m->port;
	}
	return k;
}

static void log_model(char side, const struct n4_discovery *d, const struct n4_nat_model *m)
{
	if (m->kind == N4_NAT_RANDOM && m->why) {
		char ports[8 * N4_OBS_MAX] = "";
		size_t len = 0;
		for (unsigned i = 0; i < d->n && len < sizeof(ports); i++) {
			int w = snprintf(ports + len, sizeof(ports) - len, " %u", d->obs[i].port);
			if (w < 0)
				break;
			len += (size_t)w;
		}
		n4_info(" NAT %c: ports%s fit no arithmetic allocation (%s): taken as random", side,
			ports, m->why);
	} else if (m->kind == N4_NAT_INC) {
		n4_info(" NAT %c: %s, step %d, %.2f flows/ms, block %u-%u, jitter %u ms", side,
			n4_nat_kind_name(m->kind), m->step, m->rate_per_ms, m->block_lo,
			m->block_hi, m->jitter_ms);
	} else {
		n4_info(" NAT %c: %s, jitter %u ms", side, n4_nat_kind_name(m->kind), m->jitter_ms);
	}
}

bool n4_discovery_plan(struct n4_discovery *a, struct n4_discovery *b, double dt_a_ms,
		       double dt_b_ms, unsigned budget)
{
	struct n4_nat_model ma, mb;

	for (unsigned i = 0; i < a->n + b->n; i++) {
		const struct n4_obs *o = i < a->n ? &a->obs[i] : &b->obs[i - a->n];
		n4_debug(" probe %c: port %u%s%s at %llu%s", i < a->n ? 'A' : 'B', o->port,
			 o->second_port ? " (second port)" : "", o->socket0 ? " socket 0" : "",
			 (unsigned long long)o->t_ms, o->ordered ? " (numbered)" : "");
	}
	a->walk_skipped = b->walk_skipped = 0;
	memset(&a->plan, 0, sizeof(a->plan));
	memset(&b->plan, 0, sizeof(b->plan));
	memset(&a->tune, 0, sizeof(a->tune));
	memset(&b->tune, 0, sizeof(b->tune));
	a->tune.guard_ms = b->tune.guard_ms = N4_GUARD_BASE_MS;
	if ((a->room_host ? n4_nat_classify_host : n4_nat_classify)(a->obs, a->n, &ma) ||
	    (b->room_host ? n4_nat_classify_host : n4_nat_classify)(b->obs, b->n, &mb))
		return false;
	n4_nat_discount(&ma, a->known_between);
	n4_nat_discount(&mb, b->known_between);
	if (a->known_between || b->known_between)
		n4_debug(" other clients' probes between ours: %u (A), %u (B)", a->known_between,
			 b->known_between);
	a->model = ma;
	b->model = mb;
	a->have_model = b->have_model = true;
	n4_nat_advance(&ma, a->extra_allocs);
	n4_nat_advance(&mb, b->extra_allocs);
	log_model('A', a, &ma);
	log_model('B', b, &mb);
	if (a->room_host)
		n4_plan_host_avoid(&ma, &mb, dt_a_ms, dt_b_ms, budget, a->walked, a->n_walked,
				   &a->plan, &b->plan, &a->walk_skipped);
	else if (b->room_host)
		n4_plan_host_avoid(&mb, &ma, dt_b_ms, dt_a_ms, budget, b->walked, b->n_walked,
				   &b->plan, &a->plan, &b->walk_skipped);
	else
		n4_plan_pair(&ma, &mb, dt_a_ms, dt_b_ms, budget, &a->plan, &b->plan);
	unsigned guard = n4_guard_ms(N4_GUARD_BASE_MS, ma.jitter_ms, mb.jitter_ms);
	unsigned jitter = ma.jitter_ms > mb.jitter_ms ? ma.jitter_ms : mb.jitter_ms;
	a->tune.guard_ms = b->tune.guard_ms = (uint16_t)guard;
	a->tune.jitter_ms = b->tune.jitter_ms = (uint16_t)(jitter > 65535 ? 65535 : jitter);
	if ((a->nosweep || b->nosweep) &&
	    (a->plan.kind != N4_PLAN_DIRECT || b->plan.kind != N4_PLAN_DIRECT)) {
		/* A network that forbids sweeping: anything but the direct path
		 * would spray ports.  Both sides hear why. */
		n4_info(" plans %d/%d need sweeping, which %s forbade: refused", a->plan.kind,
			b->plan.kind, a->nosweep && b->nosweep ? "both sides" : "one side");
		a->plan.kind = b->plan.kind = N4_PLAN_IMPOSSIBLE;
		a->tune.flags = b->tune.flags = N4_TUNE_NOSWEEP;
	}
	if (a->walk_skipped || b->walk_skipped)
		n4_info(" walk: %u joiner ports skipped, which the host's socket walked lately",
			a->walk_skipped + b->walk_skipped);
	n4_info(" NATs: %s (step %d, %.2f flows/ms) and %s (step %d, %.2f flows/ms): plans %d/%d, "
		"guard %u ms",
		n4_nat_kind_name(ma.kind), ma.step, ma.rate_per_ms, n4_nat_kind_name(mb.kind),
		mb.step, mb.rate_per_ms, a->plan.kind, b->plan.kind, guard);
	return true;
}

/* d's model as of a flow's probe: that socket's mapping is the NAT's latest
 * allocation (INC) or socket 0's port (EIM). */
static bool rebase(const struct n4_discovery *d, const struct n4_flow_probe *p,
		   struct n4_nat_model *m)
{
	if (!d->have_model || (d->model.kind != N4_NAT_INC && d->model.kind != N4_NAT_EIM))
		return false;
	*m = d->model;
	m->first_port = p->port;
	if (m->kind == N4_NAT_INC) {
		if (m->block_hi > m->block_lo && (p->port < m->block_lo || p->port > m->block_hi))
			return false;
		m->last_port = p->port;
		m->last_ms = p->t_ms;
		n4_nat_advance(m, p->extra_allocs);
	}
	return true;
}

bool n4_discovery_plan_flow(const struct n4_discovery *a, const struct n4_discovery *b,
			    const struct n4_flow_probe *pa, const struct n4_flow_probe *pb,
			    double dt_a_ms, double dt_b_ms, unsigned budget, struct n4_plan *plan_a,
			    struct n4_plan *plan_b, struct n4_tune *tune)
{
	struct n4_nat_model ma, mb;

	memset(plan_a, 0, sizeof(*plan_a));
	memset(plan_b, 0, sizeof(*plan_b));
	memset(tune, 0, sizeof(*tune));
	if (!rebase(a, pa, &ma) || !rebase(b, pb, &mb))
		return false;
	n4_plan_pair(&ma, &mb, dt_a_ms, dt_b_ms, budget, plan_a, plan_b);
	tune->guard_ms = (uint16_t)n4_guard_ms(N4_GUARD_BASE_MS, ma.jitter_ms, mb.jitter_ms);
	unsigned jitter = ma.jitter_ms > mb.jitter_ms ? ma.jitter_ms : mb.jitter_ms;
	tune->jitter_ms = (uint16_t)(jitter > 65535 ? 65535 : jitter);
	if ((a->nosweep || b->nosweep) &&
	    (plan_a->kind != N4_PLAN_DIRECT || plan_b->kind != N4_PLAN_DIRECT))
		return false;
	n4_debug(" fast flow: NATs %s (port %u) and %s (port %u): plans %d/%d",
		 n4_nat_kind_name(ma.kind), pa->port, n4_nat_kind_name(mb.kind), pb->port,
		 plan_a->kind, plan_b->kind);
	return plan_a->kind != N4_PLAN_IMPOSSIBLE && plan_b->kind != N4_PLAN_IMPOSSIBLE &&
	       plan_a->kind != N4_PLAN_NONE && plan_b->kind != N4_PLAN_NONE;
}

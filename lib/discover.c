/* discover.c - collecting a client's probe observations for predict.c. */
#include "discover.h"

#include <string.h>

#include "log.h"

void n4_discovery_record(struct n4_discovery *d, uint16_t port, bool second_port, bool socket0,
			 bool last, uint64_t now_ms)
{
	if (d->n == 0)
		d->first_ms = now_ms;
	if (last)
		d->complete = true;
	for (unsigned i = 0; i < d->n; i++) {
		if (d->obs[i].port == port && d->obs[i].second_port == second_port)
			return; /* a copy (clients send three EXCHANGEs) */
	}
	if (d->n == N4_OBS_MAX)
		return;
	d->obs[d->n++] = (struct n4_obs){
		.port = port, .second_port = second_port, .socket0 = socket0, .t_ms = now_ms
	};
}

uint64_t n4_discovery_last_ms(const struct n4_discovery *d)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < d->n; i++) {
		if (d->obs[i].t_ms > t)
			t = d->obs[i].t_ms;
	}
	return t;
}

bool n4_discovery_plan(struct n4_discovery *a, struct n4_discovery *b, double dt_a_ms,
		       double dt_b_ms, unsigned budget)
{
	struct n4_nat_model ma, mb;

	for (unsigned i = 0; i < a->n + b->n; i++) {
		const struct n4_obs *o = i < a->n ? &a->obs[i] : &b->obs[i - a->n];
		n4_debug(" probe %c: port %u%s%s at %llu", i < a->n ? 'A' : 'B', o->port,
			 o->second_port ? " (second port)" : "", o->socket0 ? " socket 0" : "",
			 (unsigned long long)o->t_ms);
	}
	memset(&a->plan, 0, sizeof(a->plan));
	memset(&b->plan, 0, sizeof(b->plan));
	if (n4_nat_classify(a->obs, a->n, &ma) || n4_nat_classify(b->obs, b->n, &mb))
		return false;
	n4_plan_pair(&ma, &mb, dt_a_ms, dt_b_ms, budget, &a->plan, &b->plan);
	n4_info(" NATs: %s (step %u, %.2f flows/ms) and %s (step %u, %.2f flows/ms): plans %d/%d",
		n4_nat_kind_name(ma.kind), ma.step, ma.rate_per_ms, n4_nat_kind_name(mb.kind),
		mb.step, mb.rate_per_ms, a->plan.kind, b->plan.kind);
	return true;
}

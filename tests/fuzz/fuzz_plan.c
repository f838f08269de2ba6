/* fuzz_plan.c - libFuzzer target for the discovery path: PLAN and TUNE payloads
 * from the server (untrusted for the client; WALK's signed step included),
 * numbered probes (untrusted for the server), and NAT classification / planning
 * from any observations a client's probes can produce (attacker-chosen ports,
 * numbers and times), for a pair of equals and for a room's host (n4_plan_host). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "predict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_plan(const struct n4_plan *p, unsigned budget)
{
	uint8_t ext, payload[6];
	struct n4_plan back;

	if ((p->kind == N4_PLAN_SWEEP || p->kind == N4_PLAN_BDAY_LISTEN) &&
	    (p->pool == 0 || p->pool > budget))
		abort();
	if ((p->kind == N4_PLAN_RANGE || p->kind == N4_PLAN_WALK) &&
	    (p->count == 0 || p->count > budget))
		abort(); /* never more mappings than the budget */
	if (p->kind == N4_PLAN_WALK) {
		long last = (long)p->lo + (long)(p->count - 1) * p->walk_step;
		if (p->walk_step == 0 || last < 1 || last > 65535)
			abort(); /* the walk stays in the port space */
	}
	n4_plan_encode(p, &ext, payload);
	if (n4_plan_decode(ext, payload, &back) != 0)
		abort(); /* what we send must decode */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct n4_plan p;
	struct n4_tune t;
	struct n4_seq_probe sp;

	if (size >= 7 && n4_plan_decode(data[0], data + 1, &p) == 0) {
		uint8_t ext, payload[6];
		n4_plan_encode(&p, &ext, payload);
		struct n4_plan q;
		if (n4_plan_decode(ext, payload, &q) != 0 || memcmp(&p, &q, sizeof(p)) != 0)
			abort();
		/* A WALK the client accepts never leaves the port space (punch.c
		 * computes lo + k * step for k < count). */
		if (p.kind == N4_PLAN_WALK) {
			long last = (long)p.lo + (long)(p.count - 1) * p.walk_step;
			if (p.count == 0 || p.count > 4096 || p.walk_step == 0 ||
			    p.walk_step < -255 || p.walk_step > 255 || last < 1 || last > 65535)
				abort();
		}
	}
	if (size >= 7 && n4_tune_decode(data[0], data + 1, &t) == 0) {
		uint8_t ext, payload[6];
		struct n4_tune u;
		n4_tune_encode(&t, &ext, payload);
		if (n4_tune_decode(ext, payload, &u) != 0 || u.guard_ms != t.guard_ms ||
		    u.max_pps != t.max_pps || u.flags != t.flags || t.guard_ms > N4_GUARD_MAX_MS)
			abort();
	}
	if (size >= 1 && n4_seq_probe_parse(data[0], &sp) == 0 &&
	    (n4_seq_probe_ext(&sp) != data[0] || sp.seq >= N4_SEQ_PROBES))
		abort();
	/* Two observation sets, 5 bytes each: port (2), flags (1), time delta (2).
	 * Flag bit 3 makes a side an ordered (N4_EXT_SEQ) client: its entries go
	 * through the server's recording of numbered probes, as the network
	 * would deliver them. */
	struct n4_discovery d[2];
	memset(d, 0, sizeof(d));
	d[0].ordered = size > 2 && (data[2] & 8u);
	d[1].ordered = size > 7 && (data[7] & 8u);
	uint64_t now = 1000;
	for (size_t i = 0; i + 5 <= size; i += 5) {
		unsigned side = data[i + 2] & 1u;
		uint16_t port = (uint16_t)(data[i] | data[i + 1] << 8);
		now += (uint64_t)(data[i + 3] | data[i + 4] << 8);
		if (!d[side].ordered || (data[i + 2] & 4u)) {
			n4_discovery_record(&d[side], port, data[i + 2] & 2u, data[i + 2] & 4u,
					    data[i + 2] & 16u, now);
		} else if (n4_seq_probe_parse(data[i + 2] & 0xe7u, &sp) == 0) {
			n4_discovery_record_seq(&d[side], port, sp.seq == 0, &sp, now);
		}
		if (d[side].n > N4_OBS_MAX)
			abort();
	}
	(void)n4_discovery_last_ms(&d[0]);
	struct n4_nat_model ma, mb;
	if (n4_nat_classify(d[0].obs, d[0].n, &ma) || n4_nat_classify(d[1].obs, d[1].n, &mb))
		return 0;
	if (ma.kind == N4_NAT_INC && (ma.step == 0 || ma.block_lo > ma.block_hi))
		abort();
	unsigned budget = size > 0 ? 6u + data[0] * 4u : 512u;
	double dt = size > 1 ? data[1] * 10.0 : 0.0;
	struct n4_plan pa, pb;
	n4_plan_pair(&ma, &mb, dt, dt / 2, budget, &pa, &pb);
	check_plan(&pa, budget < 6 ? 6 : budget);
	check_plan(&pb, budget < 6 ? 6 : budget);
	if (size > 3 && n4_discovery_plan(&d[0], &d[1], dt, dt / 2, budget)) {
		check_plan(&d[0].plan, budget < 6 ? 6 : budget);
		check_plan(&d[1].plan, budget < 6 ? 6 : budget);
	}
	/* A room's host (one socket) answering the other side, either way round:
	 * its plan never asks for a pool, and both plans go on the wire. */
	struct n4_plan ph, pj;
	n4_plan_host(&ma, &mb, dt, dt / 2, budget, &ph, &pj);
	check_plan(&ph, budget < 6 ? 6 : budget);
	check_plan(&pj, budget < 6 ? 6 : budget);
	if (ph.kind == N4_PLAN_SWEEP || ph.kind == N4_PLAN_BDAY_LISTEN)
		abort();
	if (ph.kind == N4_PLAN_WALK && (pj.kind != N4_PLAN_SWEEP || ph.count != pj.pool))
		abort();
	/* The same walk told to skip spans from the input (any order, reversed
	 * ones too): the joiner's pool is the walk plus the skip, within budget. */
	struct n4_port_span spans[N4_WALKED_MAX];
	unsigned nspans = 0;
	for (size_t i = 0; i + 4 <= size && nspans < N4_WALKED_MAX; i += 9)
		spans[nspans++] = (struct n4_port_span){ (uint16_t)(data[i] | data[i + 1] << 8),
							 (uint16_t)(data[i + 2] | data[i + 3] << 8) };
	unsigned skipped = 0;
	struct n4_plan ph2, pj2;
	n4_plan_host_avoid(&ma, &mb, dt, dt / 2, budget, spans, nspans, &ph2, &pj2, &skipped);
	check_plan(&ph2, budget < 6 ? 6 : budget);
	check_plan(&pj2, budget < 6 ? 6 : budget);
	if (ph2.kind != ph.kind || (!skipped && memcmp(&ph2, &ph, sizeof(ph))) ||
	    (ph2.kind == N4_PLAN_WALK && pj2.pool != ph2.count + skipped) ||
	    (ph2.kind != N4_PLAN_WALK && skipped))
		abort();
	if (size > 4) {
		d[data[4] & 1u].room_host = true;
		if (n4_discovery_plan(&d[0], &d[1], dt, dt / 2, budget)) {
			const struct n4_plan *h = &d[data[4] & 1u].plan;
			check_plan(&d[0].plan, budget < 6 ? 6 : budget);
			check_plan(&d[1].plan, budget < 6 ? 6 : budget);
			if (h->kind == N4_PLAN_SWEEP || h->kind == N4_PLAN_BDAY_LISTEN)
				abort();
		}
	}
	return 0;
}

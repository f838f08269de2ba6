/* test_predict.c - NAT classification from probes and the plans built on it. */
#include <errno.h>
#include <string.h>

#include "discover.h"
#include "predict.h"
#include "test.h"

static void obs_set(struct n4_obs *o, uint16_t port, bool second, bool s0, uint64_t t)
{
	*o = (struct n4_obs){ .port = port, .second_port = second, .socket0 = s0, .t_ms = t };
}

TEST(classify_endpoint_independent)
{
	struct n4_obs o[3];
	struct n4_nat_model m;

	obs_set(&o[0], 40000, false, true, 100);
	obs_set(&o[1], 40000, true, true, 100);
	obs_set(&o[2], 40001, false, false, 110);
	CHECK_EQ(n4_nat_classify(o, 3, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_EIM);
	CHECK_EQ(m.first_port, 40000);
}

TEST(classify_incrementing_with_noise_measures_rate)
{
	struct n4_obs o[6];
	struct n4_nat_model m;

	/* step 1; 20 foreign allocations between t=100 and t=140 */
	obs_set(&o[0], 20000, false, true, 100);
	obs_set(&o[1], 20001, true, true, 100);
	obs_set(&o[2], 20008, false, false, 110);
	obs_set(&o[3], 20012, false, false, 120);
	obs_set(&o[4], 20019, false, false, 130);
	obs_set(&o[5], 20025, false, false, 140);
	CHECK_EQ(n4_nat_classify(o, 6, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_INC);
	CHECK_EQ(m.step, 1);
	CHECK_EQ(m.last_port, 20025);
	CHECK(m.rate_per_ms > 0.45 && m.rate_per_ms < 0.55);
}

TEST(classify_same_millisecond_in_any_order)
{
	struct n4_obs o[4];
	struct n4_nat_model m;

	obs_set(&o[0], 20002, false, false, 100);
	obs_set(&o[1], 20000, false, true, 100);
	obs_set(&o[2], 20001, true, true, 100);
	obs_set(&o[3], 20003, false, false, 105);
	CHECK_EQ(n4_nat_classify(o, 4, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_INC);
	CHECK_EQ(m.last_port, 20003);
}

TEST(classify_tolerates_timestamps_out_of_port_order)
{
	struct n4_obs o[4];
	struct n4_nat_model m;

	/* the server saw the later allocation (port 20002, main UDP socket) one ms
	 * before the earlier one (20001, second port), as its event loop may */
	obs_set(&o[0], 20000, false, true, 100);
	obs_set(&o[1], 20002, false, false, 100);
	obs_set(&o[2], 20001, true, true, 101);
	obs_set(&o[3], 20010, false, false, 120);
	CHECK_EQ(n4_nat_classify(o, 4, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_INC);
	CHECK_EQ(m.last_port, 20010);
	CHECK_EQ(m.last_ms, 120);
	/* but allocations far out of time order are not an incrementing NAT */
	obs_set(&o[3], 20010, false, false, 60);
	CHECK_EQ(n4_nat_classify(o, 4, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_RANDOM);
}

TEST(classify_step_two)
{
	struct n4_obs o[4];
	struct n4_nat_model m;

	obs_set(&o[0], 30000, false, true, 0);
	obs_set(&o[1], 30002, true, true, 0);
	obs_set(&o[2], 30006, false, false, 10);
	obs_set(&o[3], 30008, false, false, 20);
	CHECK_EQ(n4_nat_classify(o, 4, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_INC);
	CHECK_EQ(m.step, 2);
}

TEST(classify_random_and_rejects_too_little)
{
	struct n4_obs o[4];
	struct n4_nat_model m;

	obs_set(&o[0], 51234, false, true, 0);
	obs_set(&o[1], 12999, true, true, 0);
	obs_set(&o[2], 40111, false, false, 10);
	obs_set(&o[3], 23456, false, false, 20);
	CHECK_EQ(n4_nat_classify(o, 4, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_RANDOM);
	CHECK_EQ(n4_nat_classify(o, 1, &m), -EINVAL);
	obs_set(&o[0], 51234, false, false, 0);
	obs_set(&o[1], 51235, false, false, 0);
	CHECK_EQ(n4_nat_classify(o, 2, &m), -EINVAL); /* no socket-0 observation */
}

TEST(plan_inc_inc_aims_at_the_middle_of_the_peer_burst)
{
	struct n4_nat_model a = { .kind = N4_NAT_INC,
				  .step = 1,
				  .rate_per_ms = 1.0,
				  .first_port = 20000,
				  .last_port = 20040 };
	struct n4_nat_model b = { .kind = N4_NAT_INC,
				  .step = 1,
				  .rate_per_ms = 0.0,
				  .first_port = 24000,
				  .last_port = 24004 };
	struct n4_plan pa, pb;

	n4_plan_pair(&a, &b, 40.0, 40.0, 512, &pa, &pb);
	CHECK_EQ(pa.kind, N4_PLAN_SWEEP);
	CHECK_EQ(pb.kind, N4_PLAN_SWEEP);
	/* quiet NAT b: small pool, A aims just past b's last port */
	CHECK(pb.pool <= 10);
	CHECK_EQ(pa.lo, 24004 + 1 + pb.pool / 2);
	/* busy NAT a (40 expected foreign allocations): a wide pool centred on
	 * the expected drift */
	CHECK(pa.pool >= 2 * 3 * 6);
	CHECK_EQ(pb.lo, 20040 + 1 + 40 + pa.pool / 2);
	CHECK(pa.pool <= 512);
}

TEST(plan_respects_the_port_budget)
{
	struct n4_nat_model a = { .kind = N4_NAT_INC,
				  .step = 1,
				  .rate_per_ms = 20.0,
				  .first_port = 20000,
				  .last_port = 20040 };
	struct n4_plan pa, pb;

	n4_plan_pair(&a, &a, 200.0, 200.0, 64, &pa, &pb);
	CHECK_EQ(pa.pool, 64);
	CHECK_EQ(pb.pool, 64);
}

TEST(plan_kinds_per_pair)
{
	struct n4_nat_model eim = { .kind = N4_NAT_EIM, .first_port = 40000 };
	struct n4_nat_model inc = { .kind = N4_NAT_INC, .step = 1, .last_port = 20000 };
	struct n4_nat_model rnd = { .kind = N4_NAT_RANDOM, .first_port = 33333 };
	struct n4_nat_model unk = { .kind = N4_NAT_UNKNOWN };
	struct n4_plan p1, p2;

	n4_plan_pair(&eim, &eim, 10, 10, 512, &p1, &p2);
	CHECK(p1.kind == N4_PLAN_DIRECT && p2.kind == N4_PLAN_DIRECT);
	CHECK_EQ(p1.lo, 40000);
	n4_plan_pair(&eim, &inc, 10, 10, 512, &p1, &p2);
	CHECK(p1.kind == N4_PLAN_RANGE && p2.kind == N4_PLAN_SWEEP);
	CHECK_EQ(p2.lo, 40000);
	CHECK(p1.lo <= 20001 && p1.lo + p1.count > 20001 + p2.pool);
	n4_plan_pair(&rnd, &eim, 10, 10, 512, &p1, &p2);
	CHECK(p1.kind == N4_PLAN_BDAY_LISTEN && p2.kind == N4_PLAN_BDAY_PROBE);
	CHECK_EQ(p1.lo, 40000);
	CHECK_EQ(p1.pool, 256);
	n4_plan_pair(&rnd, &rnd, 10, 10, 512, &p1, &p2);
	CHECK(p1.kind == N4_PLAN_IMPOSSIBLE && p2.kind == N4_PLAN_IMPOSSIBLE);
	n4_plan_pair(&rnd, &inc, 10, 10, 512, &p1, &p2);
	CHECK(p1.kind == N4_PLAN_IMPOSSIBLE);
	n4_plan_pair(&unk, &inc, 10, 10, 512, &p1, &p2);
	CHECK(p1.kind == N4_PLAN_NONE && p2.kind == N4_PLAN_NONE);
}

TEST(plan_wire_roundtrip_and_rejects)
{
	struct n4_plan in[] = {
		{ .kind = N4_PLAN_SWEEP, .lo = 24021, .pool = 40 },
		{ .kind = N4_PLAN_RANGE, .lo = 20000, .count = 50, .step = 2 },
		{ .kind = N4_PLAN_BDAY_PROBE, .lo = 1024, .count = 64511, .pool = 1024 },
		{ .kind = N4_PLAN_BDAY_LISTEN, .lo = 40000, .pool = 256 },
		{ .kind = N4_PLAN_DIRECT, .lo = 40000, .pool = 1 },
		{ .kind = N4_PLAN_IMPOSSIBLE },
	};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		uint8_t ext, payload[6];
		struct n4_plan out;
		n4_plan_encode(&in[i], &ext, payload);
		CHECK_EQ(n4_plan_decode(ext, payload, &out), 0);
		CHECK(memcmp(&in[i], &out, sizeof(out)) == 0);
	}
	const uint8_t zero[6] = { 0 };
	struct n4_plan out;
	CHECK_EQ(n4_plan_decode(N4_PLAN_SWEEP, zero, &out), -EINVAL);
	CHECK_EQ(n4_plan_decode(N4_PLAN_RANGE, zero, &out), -EINVAL);
	CHECK_EQ(n4_plan_decode(99, zero, &out), -EINVAL);
	const uint8_t huge_pool[6] = { 0x10, 0, 0, 0, 0xff, 0xff };
	CHECK_EQ(n4_plan_decode(N4_PLAN_SWEEP, huge_pool, &out), -EINVAL);
}

/* ---- real networks (issue 11): any arithmetic allocation, numbered probes ---- */

/* Numbered observation: allocation `order` (0 = the EXCHANGE), sent send_ms
 * after it, arrived at t. */
static void obs_seq(struct n4_obs *o, uint16_t port, uint8_t order, uint16_t send_ms, uint64_t t)
{
	*o = (struct n4_obs){ .port = port,
			      .second_port = order == 1,
			      .socket0 = order <= 1,
			      .t_ms = t,
			      .ordered = true,
			      .timed = true,
			      .order = order,
			      .send_ms = send_ms };
}

TEST(classify_counting_down_legacy_probes)
{
	struct n4_obs o[4];
	struct n4_nat_model m;

	/* socket 0's EXCHANGE is the highest port: a NAT counting down (the
	 * classification in port order used to call this "step 1") */
	obs_set(&o[0], 40000, false, true, 100);
	obs_set(&o[1], 39999, true, true, 100);
	obs_set(&o[2], 39990, false, false, 110);
	obs_set(&o[3], 39980, false, false, 120);
	CHECK_EQ(n4_nat_classify(o, 4, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_INC);
	CHECK_EQ(m.step, -1);
	CHECK_EQ(m.last_port, 39980);
	CHECK(m.rate_per_ms > 0.7 && m.rate_per_ms < 1.0);
}

TEST(classify_numbered_probes_ignore_arrival_order)
{
	struct n4_obs o[6];
	struct n4_nat_model m;

	/* step -2, sent 20 ms apart, delivered with +-30 ms of jitter: arrival
	 * order says nothing, the numbers say everything */
	obs_seq(&o[0], 50000, 0, 0, 1050);
	obs_seq(&o[1], 49998, 1, 0, 1031);
	obs_seq(&o[2], 49990, 2, 0, 1079);
	obs_seq(&o[3], 49970, 3, 20, 1041);
	obs_seq(&o[4], 49950, 4, 40, 1120);
	obs_seq(&o[5], 49930, 5, 60, 1085);
	CHECK_EQ(n4_nat_classify(o, 6, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_INC);
	CHECK_EQ(m.step, -2);
	CHECK_EQ(m.last_port, 49930);
	/* 3 + 9 + 9 + 9 foreign allocations over the 60 ms of the schedule */
	CHECK(m.rate_per_ms > 0.45 && m.rate_per_ms < 0.55);
	/* one-way delays 50, 31, 79, 21, 80, 25: spread 59 */
	CHECK_EQ(m.jitter_ms, 59);
	CHECK_EQ(m.last_ms, 1021 + 60);
}

TEST(classify_wrap_inside_a_port_block)
{
	struct n4_obs o[6];
	struct n4_nat_model m;

	/* counting up inside 2048-4095, wrapping between probes 3 and 4 */
	obs_seq(&o[0], 4080, 0, 0, 100);
	obs_seq(&o[1], 4081, 1, 0, 100);
	obs_seq(&o[2], 4088, 2, 0, 100);
	obs_seq(&o[3], 4094, 3, 10, 110);
	obs_seq(&o[4], 2052, 4, 20, 120);
	obs_seq(&o[5], 2060, 5, 30, 130);
	CHECK_EQ(n4_nat_classify(o, 6, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_INC);
	CHECK_EQ(m.step, 1);
	CHECK_EQ(m.block_lo, 2052);
	CHECK_EQ(m.block_hi, 4094);
	/* a sweep predicted past the block's top lands at its bottom */
	struct n4_nat_model quiet = { .kind = N4_NAT_INC, .step = 1, .last_port = 30000 };
	struct n4_plan pa, pb;
	m.rate_per_ms = 0;
	m.last_port = 4090;
	n4_plan_pair(&m, &quiet, 0, 0, 512, &pa, &pb);
	CHECK_EQ(pb.kind, N4_PLAN_SWEEP);
	CHECK(pb.lo >= 2052 && pb.lo < 2052 + pa.pool);
}

TEST(classify_refuses_what_fits_no_arithmetic_allocation)
{
	struct n4_obs o[5];
	struct n4_nat_model m;

	/* up, then down: no step of either sign */
	obs_seq(&o[0], 30000, 0, 0, 100);
	obs_seq(&o[1], 30001, 1, 0, 100);
	obs_seq(&o[2], 30010, 2, 0, 100);
	obs_seq(&o[3], 30004, 3, 10, 110);
	obs_seq(&o[4], 30020, 4, 20, 120);
	CHECK_EQ(n4_nat_classify(o, 5, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_RANDOM);
	CHECK(m.why != NULL);
	/* two jumps across the port space: not one wrap */
	obs_seq(&o[2], 50000, 2, 0, 100);
	obs_seq(&o[3], 30004, 3, 10, 110);
	obs_seq(&o[4], 60000, 4, 20, 120);
	CHECK_EQ(n4_nat_classify(o, 5, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_RANDOM);
	/* one allocation number reported twice is a broken observation */
	obs_seq(&o[4], 30020, 3, 20, 120);
	CHECK_EQ(n4_nat_classify(o, 5, &m), -EINVAL);
}

TEST(plan_counting_down_aims_below)
{
	struct n4_nat_model dec = { .kind = N4_NAT_INC,
				    .step = -1,
				    .rate_per_ms = 0.5,
				    .first_port = 40000,
				    .last_port = 39990 };
	struct n4_nat_model inc = { .kind = N4_NAT_INC,
				    .step = 1,
				    .rate_per_ms = 0,
				    .first_port = 24000,
				    .last_port = 24004 };
	struct n4_nat_model eim = { .kind = N4_NAT_EIM, .first_port = 50000 };
	struct n4_plan pa, pb;

	n4_plan_pair(&dec, &inc, 20.0, 20.0, 512, &pa, &pb);
	CHECK_EQ(pb.kind, N4_PLAN_SWEEP);
	/* 10 expected foreign allocations, then half of the burst, downwards */
	CHECK_EQ(pb.lo, 39990 - 1 - 10 - pa.pool / 2);
	CHECK_EQ(pa.lo, 24004 + 1 + pb.pool / 2);
	/* cone against a NAT counting down: the walk covers the burst below */
	n4_plan_pair(&eim, &dec, 20.0, 20.0, 512, &pa, &pb);
	CHECK_EQ(pa.kind, N4_PLAN_RANGE);
	CHECK(pa.lo + (pa.count - 1) * pa.step >= 39990 - 1 - 10);
	CHECK(pa.lo <= 39990 - 1 - 10 - pb.pool);
	CHECK(pa.count <= 512);
}

TEST(plan_widens_with_jitter)
{
	struct n4_nat_model a = {
		.kind = N4_NAT_INC, .step = 1, .rate_per_ms = 1.0, .last_port = 20000
	};
	struct n4_nat_model b = a;
	struct n4_plan p1, p2, q1, q2;

	n4_plan_pair(&a, &b, 100.0, 100.0, 4096, &p1, &p2);
	a.jitter_ms = b.jitter_ms = 40;
	n4_plan_pair(&a, &b, 100.0, 100.0, 4096, &q1, &q2);
	CHECK(q1.pool > p1.pool + 40);
	CHECK_EQ(n4_guard_ms(15, 40, 10), 55);
	CHECK_EQ(n4_guard_ms(15, 4000, 10), N4_GUARD_MAX_MS);
}

TEST(seq_probe_and_tune_wire)
{
	struct n4_seq_probe p = { .seq = 4, .spacing_ms = 35, .resent = true, .nosweep = true }, q;
	CHECK_EQ(n4_seq_probe_parse(n4_seq_probe_ext(&p), &q), 0);
	CHECK(q.seq == 4 && q.spacing_ms == 35 && q.resent && q.nosweep);
	CHECK_EQ(n4_seq_probe_parse(7, &q), -EINVAL); /* seq 7: no such probe */
	CHECK_EQ(n4_seq_probe_offset_ms(0, 20), 0);
	CHECK_EQ(n4_seq_probe_offset_ms(1, 20), 0);
	CHECK_EQ(n4_seq_probe_offset_ms(4, 20), 60);

	struct n4_tune t = { .flags = N4_TUNE_NOSWEEP,
			     .guard_ms = 45,
			     .max_pps = 800,
			     .jitter_ms = 30 },
		       u;
	uint8_t ext, payload[6];
	n4_tune_encode(&t, &ext, payload);
	CHECK_EQ(n4_tune_decode(ext, payload, &u), 0);
	CHECK(u.flags == t.flags && u.guard_ms == 45 && u.max_pps == 800 && u.jitter_ms == 30);
	CHECK_EQ(n4_tune_decode(0x80, payload, &u), -EINVAL);
	t.guard_ms = 60000;
	n4_tune_encode(&t, &ext, payload);
	CHECK_EQ(n4_tune_decode(ext, payload, &u), -EINVAL);
}

/* One ordered client's discovery: the EXCHANGE, then probes (seq 0 to the
 * second port) in the order the network chose; ports step by `step`. */
static void discover_client(struct n4_discovery *d, uint16_t first, int step, bool nosweep,
			    bool lose_seq2)
{
	static const unsigned arrival[] = { 40, 25, 60, 31, 70 }; /* jittered delays */
	memset(d, 0, sizeof(*d));
	d->ordered = true;
	n4_discovery_record(d, first, false, true, false, 1000 + 30);
	for (unsigned k = 0; k < N4_SEQ_PROBES; k++) {
		struct n4_seq_probe p = { .seq = (uint8_t)k, .spacing_ms = 20, .nosweep = nosweep };
		unsigned seq = N4_SEQ_PROBES - 1 - k; /* delivered backwards */
		p.seq = (uint8_t)seq;
		if (lose_seq2 && seq == 2)
			continue;
		n4_discovery_record_seq(d, (uint16_t)(first + step * (int)(seq + 1)), seq == 0, &p,
					1000 + n4_seq_probe_offset_ms(seq, 20) + arrival[seq]);
		CHECK(!d->complete || seq == 0);
	}
}

TEST(discovery_numbered_probes_complete_and_plan)
{
	struct n4_discovery a, b;

	discover_client(&a, 30000, -1, false, false);
	CHECK(a.complete);
	/* a resent copy of an allocation changes nothing */
	struct n4_seq_probe again = { .seq = 3, .spacing_ms = 20, .resent = true };
	n4_discovery_record_seq(&a, 29996, false, &again, 5000);
	CHECK_EQ(a.n, 6);
	/* a lost probe keeps the discovery open (the client resends it) */
	discover_client(&b, 20000, 2, false, true);
	CHECK(!b.complete);
	struct n4_seq_probe late = { .seq = 2, .spacing_ms = 20, .resent = true };
	n4_discovery_record_seq(&b, 20006, false, &late, 1300);
	CHECK(b.complete);
	CHECK(n4_discovery_last_ms(&a) > 1000 + 60);
	CHECK(n4_discovery_plan(&a, &b, 100, 100, 512));
	CHECK_EQ(a.plan.kind, N4_PLAN_SWEEP);
	CHECK_EQ(b.plan.kind, N4_PLAN_SWEEP);
	CHECK(a.tune.guard_ms > N4_GUARD_BASE_MS);
	/* B aims below A's last port: A counts down */
	CHECK(b.plan.lo < 29995);
	/* A side that forbids sweeping: refused, and both are told why */
	discover_client(&a, 30000, -1, true, false);
	discover_client(&b, 20000, 2, false, false);
	CHECK(n4_discovery_plan(&a, &b, 100, 100, 512));
	CHECK_EQ(a.plan.kind, N4_PLAN_IMPOSSIBLE);
	CHECK_EQ(b.plan.kind, N4_PLAN_IMPOSSIBLE);
	CHECK(b.tune.flags & N4_TUNE_NOSWEEP);
}

/* ---- rooms: n4_plan_host (the host punches from one socket) ---- */

/* An incrementing NAT's n-th allocation after last (n >= 1), wrapped inside
 * its block as the NAT does it (block 0: 1024..65535, as predict.c assumes). */
static long nat_alloc(const struct n4_nat_model *m, long n)
{
	long lo = m->block_lo ? m->block_lo : 1024, hi = m->block_hi ? m->block_hi : 65535;
	long size = hi - lo + 1, p = (long)m->last_port + (long)m->step * n;

	if (p > hi)
		p = lo + (p - lo) % size;
	if (p < lo)
		p = hi - (hi - p) % size;
	return p;
}

static long round_ms(double x)
{
	return x <= 0 ? 0 : (long)(x + 0.5);
}

/* The walk meets the sweep: the host's k-th PUNCH leaves from the port the
 * joiner's sockets aim at and reaches the port of one of them.  dh, dj: the
 * NATs' foreign allocations beyond what the plan expected. */
static bool walk_meets(const struct n4_nat_model *h, const struct n4_nat_model *j, double dt_h,
		       double dt_j, const struct n4_plan *ph, const struct n4_plan *pj, long dh,
		       long dj)
{
	long mh = round_ms(h->rate_per_ms * dt_h), mj = round_ms(j->rate_per_ms * dt_j);

	for (long k = 0; k < ph->count; k++) {
		long dst = (long)ph->lo + k * ph->walk_step;
		if (nat_alloc(h, 1 + mh + dh + k) != pj->lo)
			continue;
		for (long i = 0; i < pj->pool; i++)
			if (nat_alloc(j, 1 + mj + dj + i) == dst)
				return true;
	}
	return false;
}

static bool plan_roundtrips(const struct n4_plan *p)
{
	uint8_t ext, payload[6];
	struct n4_plan back;

	n4_plan_encode(p, &ext, payload);
	return n4_plan_decode(ext, payload, &back) == 0 && memcmp(&back, p, sizeof(back)) == 0;
}

/* Every drift with |dh| < M/2 and |dh + dj| < M/2 (and no fewer foreign
 * allocations than none) meets; returns the cases tried, or -1 at a miss.
 * Where the joiner's NAT wraps inside its block before the port the walk
 * would meet it at, no one walk can follow: those drifts are skipped. */
static long walk_all_drifts(const struct n4_nat_model *h, const struct n4_nat_model *j, double dt_h,
			    double dt_j, unsigned budget)
{
	struct n4_plan ph, pj;
	long tried = 0;

	n4_plan_host(h, j, dt_h, dt_j, budget, &ph, &pj);
	if (ph.kind != N4_PLAN_WALK || pj.kind != N4_PLAN_SWEEP || ph.count != pj.pool ||
	    ph.walk_step != j->step || pj.pool > budget || !plan_roundtrips(&ph) ||
	    !plan_roundtrips(&pj))
		return -1;
	long half = pj.pool / 2;
	long mh = round_ms(h->rate_per_ms * dt_h), mj = round_ms(j->rate_per_ms * dt_j);
	for (long dh = -(half - 1); dh <= half - 1; dh++) {
		for (long dj = -(half - 1) - dh; dj <= half - 1 - dh; dj++) {
			if (mh + dh < 0 || mj + dj < 0)
				continue;
			/* the joiner's allocation met, half - dh after the walk's first */
			long n = 1 + mj + half - dh;
			if (nat_alloc(j, n) != (long)ph.lo + (long)j->step * (half - dh))
				continue;
			if (!walk_meets(h, j, dt_h, dt_j, &ph, &pj, dh, dj))
				return -1;
			tried++;
		}
	}
	return tried;
}

TEST(plan_host_walk_meets_the_sweep_for_every_drift_within_half_the_pool)
{
	const int steps[] = { 1, 2, -1, -2, 3 };
	const double rates[][2] = { { 0, 0 }, { 0.05, 0.02 }, { 0.5, 0.2 }, { 2.0, 1.5 } };
	long cases = 0;

	for (unsigned a = 0; a < 5; a++) {
		for (unsigned b = 0; b < 5; b++) {
			for (unsigned r = 0; r < 4; r++) {
				struct n4_nat_model h = { .kind = N4_NAT_INC,
							  .step = steps[a],
							  .rate_per_ms = rates[r][0],
							  .first_port = 20000,
							  .last_port = 20010 };
				struct n4_nat_model j = { .kind = N4_NAT_INC,
							  .step = steps[b],
							  .rate_per_ms = rates[r][1],
							  .first_port = 30000,
							  .last_port = 30020 };
				long n = walk_all_drifts(&h, &j, 60.0, 90.0, 512);
				if (n < 0) {
					char what[96];
					snprintf(what, sizeof(what),
						 "walk misses: steps %d/%d, rates %.2f/%.2f",
						 steps[a], steps[b], rates[r][0], rates[r][1]);
					n4_test_fail(__FILE__, __LINE__, what);
					return;
				}
				cases += n;
			}
		}
	}
	CHECK(cases > 10000); /* the loops ran */
}

TEST(plan_host_walk_pool_grows_with_both_drifts_within_the_budget)
{
	struct n4_nat_model quiet = { .kind = N4_NAT_INC, .step = 1, .last_port = 20000 };
	struct n4_nat_model busy = {
		.kind = N4_NAT_INC, .step = 1, .rate_per_ms = 1.0, .last_port = 30000
	};
	struct n4_plan ph, pj, ph2, pj2;

	n4_plan_host(&quiet, &quiet, 50, 50, 512, &ph, &pj);
	CHECK_EQ(ph.kind, N4_PLAN_WALK);
	CHECK(pj.pool >= 6 && pj.pool <= 16);
	/* The walk starts at the joiner's next allocation, the sweep aims at the
	 * host's allocation half a pool later. */
	CHECK_EQ(ph.lo, 20001);
	CHECK_EQ(pj.lo, 20001 + pj.pool / 2);
	n4_plan_host(&busy, &quiet, 50, 50, 512, &ph2, &pj2);
	CHECK(pj2.pool > pj.pool);
	CHECK_EQ(pj2.lo, 30000 + 1 + 50 + pj2.pool / 2);
	n4_plan_host(&quiet, &busy, 50, 50, 512, &ph2, &pj2);
	CHECK(pj2.pool > pj.pool);
	CHECK_EQ(ph2.lo, 30000 + 1 + 50);
	/* The budget bounds the host's walk and the joiner's pool alike. */
	n4_plan_host(&busy, &busy, 500, 500, 64, &ph2, &pj2);
	CHECK_EQ(ph2.count, 64);
	CHECK_EQ(pj2.pool, 64);
	n4_plan_host(&busy, &busy, 500, 500, 1, &ph2, &pj2); /* at least 6 */
	CHECK_EQ(ph2.count, 6);
	CHECK_EQ(pj2.pool, 6);
}

/* The host's NAT as conntrack keeps it: a PUNCH to a joiner port the host's
 * socket sent to lately leaves from that old mapping (old_port), any other opens
 * the NAT's next port.  The joiner's i-th socket gets its NAT's next allocation.
 * Returns whether the walk meets the sweep (no drift on either side). */
static bool walk_meets_with_old(const struct n4_nat_model *h, const struct n4_nat_model *j,
				const struct n4_plan *ph, const struct n4_plan *pj,
				const struct n4_port_span *old, unsigned n_old)
{
	long fresh = 0;

	for (long k = 0; k < ph->count; k++) {
		long dst = (long)ph->lo + k * ph->walk_step, from;
		bool stale = false;
		for (unsigned i = 0; i < n_old; i++)
			stale = stale || (dst >= old[i].lo && dst <= old[i].hi);
		from = stale ? 1 : nat_alloc(h, ++fresh); /* port 1: an old mapping */
		if (from != pj->lo)
			continue;
		for (long i = 0; i < pj->pool; i++)
			if (nat_alloc(j, 1 + i) == dst)
				return true;
	}
	return false;
}

TEST(plan_host_walk_skips_the_joiner_ports_walked_lately)
{
	/* Two players behind one carrier NAT, or one joining again: the host's
	 * last walk covered the ports the joiner's NAT hands out next.  Walking
	 * them again opens no port on the host's NAT and misses; the plan starts
	 * past them and the joiner's pool grows by the skip. */
	const int steps[] = { 1, -1, 2, -3 };

	for (unsigned a = 0; a < 4; a++) {
		struct n4_nat_model h = { .kind = N4_NAT_INC, .step = 1, .last_port = 21000 };
		struct n4_nat_model j = { .kind = N4_NAT_INC, .step = steps[a], .last_port = 40000 };
		long s = steps[a];
		/* the last walk: the joiner NAT's next 30 allocations */
		long e1 = 40000 + s, e2 = 40000 + 30 * s;
		struct n4_port_span old = { (uint16_t)(e1 < e2 ? e1 : e2),
					    (uint16_t)(e1 < e2 ? e2 : e1) };
		struct n4_plan ph, pj;
		unsigned skipped = 99;

		n4_plan_host(&h, &j, 10, 10, 512, &ph, &pj);
		CHECK_EQ(ph.kind, N4_PLAN_WALK);
		CHECK(!walk_meets_with_old(&h, &j, &ph, &pj, &old, 1));
		n4_plan_host_avoid(&h, &j, 10, 10, 512, &old, 1, &ph, &pj, &skipped);
		CHECK_EQ(ph.kind, N4_PLAN_WALK);
		CHECK_EQ(skipped, 30u);
		CHECK_EQ((long)ph.lo, 40000 + 31 * s);
		CHECK_EQ(pj.pool, ph.count + 30);
		CHECK(plan_roundtrips(&ph) && plan_roundtrips(&pj));
		CHECK(walk_meets_with_old(&h, &j, &ph, &pj, &old, 1));
	}
}

TEST(plan_host_walk_skip_chains_spans_and_stays_within_the_budget)
{
	struct n4_nat_model h = { .kind = N4_NAT_INC, .step = 1, .last_port = 21000 };
	struct n4_nat_model j = { .kind = N4_NAT_INC, .step = 1, .last_port = 40000 };
	/* the second span lies where the walk lands after skipping the first */
	struct n4_port_span old[3] = { { 40001, 40010 }, { 40015, 40040 }, { 50000, 50100 } };
	struct n4_plan ph, pj;
	unsigned skipped;

	n4_plan_host_avoid(&h, &j, 10, 10, 512, old, 3, &ph, &pj, &skipped);
	CHECK_EQ(skipped, 40u);
	CHECK_EQ(ph.lo, 40041);
	CHECK(walk_meets_with_old(&h, &j, &ph, &pj, old, 3));
	/* spans the walk would not cross change nothing */
	struct n4_port_span far[2] = { { 30000, 39000 }, { 45000, 46000 } };
	n4_plan_host_avoid(&h, &j, 10, 10, 512, far, 2, &ph, &pj, &skipped);
	CHECK_EQ(skipped, 0u);
	CHECK_EQ(ph.lo, 40001);
	CHECK_EQ(pj.pool, ph.count);
	/* a skip past the budget is not taken: the plan is as before */
	struct n4_port_span wide = { 40001, 41000 };
	n4_plan_host_avoid(&h, &j, 10, 10, 512, &wide, 1, &ph, &pj, &skipped);
	CHECK_EQ(skipped, 0u);
	CHECK_EQ(ph.lo, 40001);
	/* a malformed span (lo > hi) is ignored */
	struct n4_port_span bad = { 40010, 40001 };
	n4_plan_host_avoid(&h, &j, 10, 10, 512, &bad, 1, &ph, &pj, &skipped);
	CHECK_EQ(skipped, 0u);
	/* past the NAT's block the counter wraps: no skip */
	struct n4_nat_model top = { .kind = N4_NAT_INC, .step = 1, .last_port = 65500,
				    .block_lo = 1024, .block_hi = 65535 };
	struct n4_port_span edge = { 65501, 65535 };
	n4_plan_host_avoid(&h, &top, 10, 10, 512, &edge, 1, &ph, &pj, &skipped);
	CHECK_EQ(skipped, 0u);
}

TEST(nat_discount_removes_other_clients_probes_from_the_rate)
{
	/* Two clients behind one NAT probing at once: each sees the other's
	 * probes between its own, which are no background traffic. */
	struct n4_obs obs[4];
	struct n4_nat_model m;

	static const uint16_t mine[4] = { 20000, 20001, 20003, 20006 }; /* 3 between */

	for (unsigned i = 0; i < 4; i++)
		obs[i] = (struct n4_obs){ .port = mine[i], .socket0 = i == 0, .t_ms = 1000 + 5 * i };
	CHECK_EQ(n4_nat_classify(obs, 4, &m), 0);
	CHECK_EQ(m.kind, N4_NAT_INC);
	CHECK(m.rate_per_ms > 0.15);
	struct n4_nat_model half = m;
	n4_nat_discount(&half, 2);
	CHECK(half.rate_per_ms > 0.0 && half.rate_per_ms < m.rate_per_ms);
	n4_nat_discount(&m, 3);
	CHECK(m.rate_per_ms == 0.0);
	n4_nat_discount(&m, 10); /* more than counted: still none */
	CHECK(m.rate_per_ms == 0.0);
	/* nothing to discount on other kinds */
	struct n4_nat_model eim = { .kind = N4_NAT_EIM };
	n4_nat_discount(&eim, 5);
	CHECK(eim.rate_per_ms == 0.0);
}

TEST(plan_host_walk_stays_in_the_port_space)
{
	/* A joiner counting up near 65535 or down near 1: the walk stops at the
	 * edge (and the joiner's pool with it), whatever the drift. */
	const int steps[] = { 1, 2, -1, -2 };
	const uint16_t lasts[] = { 65530, 65534, 1030, 1026 };

	for (unsigned a = 0; a < 4; a++) {
		struct n4_nat_model h = {
			.kind = N4_NAT_INC, .step = 1, .rate_per_ms = 0.2, .last_port = 20000
		};
		struct n4_nat_model j = { .kind = N4_NAT_INC,
					  .step = steps[a],
					  .rate_per_ms = 0.01,
					  .last_port = lasts[a] };
		if (steps[a] < 0)
			j.block_lo = 1; /* a NAT allocating below 1024 */
		struct n4_plan ph, pj;
		n4_plan_host(&h, &j, 40, 40, 512, &ph, &pj);
		CHECK_EQ(ph.kind, N4_PLAN_WALK);
		long last = (long)ph.lo + (long)(ph.count - 1) * ph.walk_step;
		CHECK(last >= 1 && last <= 65535);
		CHECK_EQ(ph.count, pj.pool);
		CHECK(plan_roundtrips(&ph));
		CHECK(plan_roundtrips(&pj));
	}
}

TEST(plan_host_wraps_the_hosts_block_for_the_sweep)
{
	/* The host's NAT wraps inside 30000..30099 (seen in its probes): the
	 * joiner aims past the wrap, where the host's walk will be. */
	struct n4_nat_model h = { .kind = N4_NAT_INC,
				  .step = 1,
				  .rate_per_ms = 0.05,
				  .last_port = 30095,
				  .block_lo = 30000,
				  .block_hi = 30099 };
	struct n4_nat_model j = { .kind = N4_NAT_INC, .step = 1, .last_port = 40000 };
	struct n4_plan ph, pj;

	n4_plan_host(&h, &j, 60, 60, 512, &ph, &pj);
	CHECK(pj.lo >= 30000 && pj.lo <= 30099);
	CHECK(walk_all_drifts(&h, &j, 60, 60, 512) > 0);
	h.step = -1;
	h.last_port = 30003;
	CHECK(walk_all_drifts(&h, &j, 60, 60, 512) > 0);
}

TEST(plan_host_walk_near_the_joiners_block_edge)
{
	/* The joiner's NAT wraps inside 30000..30099 (seen in its probes): the
	 * walk starts inside the block and meets the sweep wherever the port it
	 * meets at comes before the wrap.  (It does not stop at the block's edge:
	 * the ports past it are wasted PUNCHes, not a wrong meeting.) */
	struct n4_nat_model h = { .kind = N4_NAT_INC, .step = 1, .last_port = 20000 };
	struct n4_nat_model j = { .kind = N4_NAT_INC,
				  .step = 1,
				  .rate_per_ms = 0.2,
				  .last_port = 30080,
				  .block_lo = 30000,
				  .block_hi = 30099 };
	struct n4_plan ph, pj;

	for (int s = 0; s < 4; s++) {
		n4_plan_host(&h, &j, 40, 40, 512, &ph, &pj);
		CHECK_EQ(ph.kind, N4_PLAN_WALK);
		CHECK(ph.lo >= 30000 && ph.lo <= 30099);
		CHECK_EQ(ph.count, pj.pool);
		CHECK(walk_all_drifts(&h, &j, 40, 40, 512) > 0);
		/* counting down, and starting past the edge (wrapped to the start) */
		j.step = s & 1 ? 1 : -1;
		j.last_port = s == 0 ? 30019 : s == 1 ? 30099 : 30000;
	}
}

TEST(plan_host_every_nat_kind_pair)
{
	struct n4_nat_model eim = { .kind = N4_NAT_EIM, .first_port = 40000, .last_port = 40000 };
	struct n4_nat_model eim2 = { .kind = N4_NAT_EIM, .first_port = 41000, .last_port = 41000 };
	struct n4_nat_model inc = { .kind = N4_NAT_INC,
				    .step = 1,
				    .rate_per_ms = 0.1,
				    .first_port = 19990,
				    .last_port = 20000 };
	struct n4_nat_model inc_down = inc, inc_wide = inc;
	struct n4_nat_model rnd = { .kind = N4_NAT_RANDOM, .first_port = 33333 };
	struct n4_nat_model unk = { .kind = N4_NAT_UNKNOWN };
	struct n4_plan ph, pj;

	inc_down.step = -2;
	inc_wide.step = 300; /* no 16-bit signed walk step encodes it */
	/* EIM host: as n4_plan_pair, socket 0 only. */
	n4_plan_host(&eim, &eim2, 10, 10, 512, &ph, &pj);
	CHECK(ph.kind == N4_PLAN_DIRECT && pj.kind == N4_PLAN_DIRECT);
	CHECK_EQ(ph.lo, 41000);
	CHECK_EQ(pj.lo, 40000);
	n4_plan_host(&eim, &inc, 10, 50, 512, &ph, &pj);
	CHECK(ph.kind == N4_PLAN_RANGE && pj.kind == N4_PLAN_SWEEP);
	CHECK_EQ(pj.lo, 40000);
	/* every port the joiner's sweep takes, within its drift, is walked */
	long m = round_ms(inc.rate_per_ms * 50);
	for (long d = 0; d <= 2 * m; d++)
		for (long i = 0; i < pj.pool; i++) {
			long p = nat_alloc(&inc, 1 + d + i);
			CHECK(p >= ph.lo && p < (long)ph.lo + (long)ph.count * ph.step &&
			      (p - ph.lo) % ph.step == 0);
		}
	n4_plan_host(&eim, &rnd, 10, 10, 512, &ph, &pj);
	CHECK(ph.kind == N4_PLAN_BDAY_PROBE && pj.kind == N4_PLAN_BDAY_LISTEN);
	CHECK_EQ(pj.lo, 40000);
	/* Incrementing host, EIM joiner: the host's one PUNCH to the joiner's port
	 * opens its next allocation, which the joiner walks over. */
	const struct n4_nat_model *hosts[] = { &inc, &inc_down };
	for (unsigned k = 0; k < 2; k++) {
		const struct n4_nat_model *h = hosts[k];
		n4_plan_host(h, &eim, 50, 10, 512, &ph, &pj);
		CHECK(ph.kind == N4_PLAN_DIRECT && pj.kind == N4_PLAN_RANGE);
		CHECK_EQ(ph.lo, 40000);
		CHECK_EQ(ph.pool, 1);
		CHECK(pj.count <= 512);
		CHECK(plan_roundtrips(&ph) && plan_roundtrips(&pj));
		long mh = round_ms(h->rate_per_ms * 50);
		for (long d = -mh; d <= mh + 3; d++) {
			long p = nat_alloc(h, 1 + mh + d);
			CHECK(p >= pj.lo && p < (long)pj.lo + (long)pj.count * pj.step &&
			      (p - pj.lo) % pj.step == 0);
		}
	}
	/* Incrementing both: the walk. */
	n4_plan_host(&inc, &inc_down, 10, 10, 512, &ph, &pj);
	CHECK(ph.kind == N4_PLAN_WALK && pj.kind == N4_PLAN_SWEEP);
	CHECK_EQ(ph.walk_step, -2);
	/* A joiner step no WALK message carries: the relay. */
	n4_plan_host(&inc, &inc_wide, 10, 10, 512, &ph, &pj);
	CHECK(ph.kind == N4_PLAN_IMPOSSIBLE && pj.kind == N4_PLAN_IMPOSSIBLE);
	/* Random on either side: nothing to aim at from one socket (relay). */
	n4_plan_host(&inc, &rnd, 10, 10, 512, &ph, &pj);
	CHECK(ph.kind == N4_PLAN_IMPOSSIBLE && pj.kind == N4_PLAN_IMPOSSIBLE);
	n4_plan_host(&rnd, &eim, 10, 10, 512, &ph, &pj);
	CHECK(ph.kind == N4_PLAN_IMPOSSIBLE && pj.kind == N4_PLAN_IMPOSSIBLE);
	n4_plan_host(&rnd, &inc, 10, 10, 512, &ph, &pj);
	CHECK(ph.kind == N4_PLAN_IMPOSSIBLE && pj.kind == N4_PLAN_IMPOSSIBLE);
	n4_plan_host(&rnd, &rnd, 10, 10, 512, &ph, &pj);
	CHECK(ph.kind == N4_PLAN_IMPOSSIBLE && pj.kind == N4_PLAN_IMPOSSIBLE);
	/* Unknown on either side: the original's guess. */
	const struct n4_nat_model *all[] = { &eim, &inc, &rnd, &unk };
	for (unsigned k = 0; k < 4; k++) {
		n4_plan_host(&unk, all[k], 10, 10, 512, &ph, &pj);
		CHECK(ph.kind == N4_PLAN_NONE && pj.kind == N4_PLAN_NONE);
		n4_plan_host(all[k], &unk, 10, 10, 512, &ph, &pj);
		CHECK(ph.kind == N4_PLAN_NONE && pj.kind == N4_PLAN_NONE);
	}
}

TEST(plan_host_never_asks_the_host_for_more_than_one_socket)
{
	/* Whatever the NATs, the host's plan uses its socket 0 alone: no SWEEP
	 * or BDAY_LISTEN pool for it. */
	struct n4_nat_model models[] = {
		{ .kind = N4_NAT_EIM, .first_port = 40000, .last_port = 40000 },
		{ .kind = N4_NAT_INC, .step = 1, .rate_per_ms = 0.3, .last_port = 20000 },
		{ .kind = N4_NAT_INC, .step = -1, .rate_per_ms = 0.3, .last_port = 50000 },
		{ .kind = N4_NAT_RANDOM, .first_port = 33333 },
	};
	for (unsigned a = 0; a < 4; a++) {
		for (unsigned b = 0; b < 4; b++) {
			struct n4_plan ph, pj;
			n4_plan_host(&models[a], &models[b], 30, 30, 512, &ph, &pj);
			CHECK(ph.kind != N4_PLAN_SWEEP && ph.kind != N4_PLAN_BDAY_LISTEN);
			CHECK(plan_roundtrips(&ph));
			CHECK(plan_roundtrips(&pj));
		}
	}
}

TEST(plan_walk_wire_roundtrip_and_rejects)
{
	const struct n4_plan ok[] = {
		{ .kind = N4_PLAN_WALK, .lo = 20000, .count = 64, .walk_step = 1 },
		{ .kind = N4_PLAN_WALK, .lo = 20000, .count = 64, .walk_step = -1 },
		{ .kind = N4_PLAN_WALK, .lo = 20000, .count = 64, .walk_step = 2 },
		{ .kind = N4_PLAN_WALK, .lo = 20000, .count = 64, .walk_step = -2 },
		{ .kind = N4_PLAN_WALK, .lo = 1, .count = 1, .walk_step = -255 },
		{ .kind = N4_PLAN_WALK, .lo = 65535, .count = 1, .walk_step = 255 },
		{ .kind = N4_PLAN_WALK, .lo = 1, .count = 4096, .walk_step = 15 },
		{ .kind = N4_PLAN_WALK, .lo = 65535, .count = 257, .walk_step = -255 },
		{ .kind = N4_PLAN_WALK, .lo = 65535 - 4095, .count = 4096, .walk_step = 1 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		CHECK(plan_roundtrips(&ok[i]));
	/* The bytes: lo, count, the step in two's complement. */
	uint8_t ext, payload[6];
	n4_plan_encode(&ok[3], &ext, payload);
	const uint8_t want[6] = { 0x4e, 0x20, 0x00, 0x40, 0xff, 0xfe };
	CHECK_EQ(ext, N4_PLAN_WALK);
	CHECK(memcmp(payload, want, sizeof(want)) == 0);

	struct {
		unsigned lo, count;
		int step;
	} bad[] = {
		{ 0, 64, 1 },	    /* no port 0 */
		{ 20000, 0, 1 },    /* nothing to walk */
		{ 20000, 4097, 1 }, /* more than a plan may */
		{ 20000, 64, 0 },   /* standing still */
		{ 20000, 64, 256 }, /* beyond any NAT's step */
		{ 20000, 64, -256 },	{ 20000, 64, 0x7fff },
		{ 20000, 64, -0x8000 }, { 65535, 2, 1 }, /* past 65535 */
		{ 1, 2, -1 },				 /* below 1 */
		{ 65000, 300, 2 },	{ 500, 300, -2 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t pl[6] = { (uint8_t)(bad[i].lo >> 8),
				  (uint8_t)bad[i].lo,
				  (uint8_t)(bad[i].count >> 8),
				  (uint8_t)bad[i].count,
				  (uint8_t)((unsigned)bad[i].step >> 8),
				  (uint8_t)bad[i].step };
		struct n4_plan out;
		if (n4_plan_decode(N4_PLAN_WALK, pl, &out) != -EINVAL) {
			char what[80];
			snprintf(what, sizeof(what), "WALK lo %u count %u step %d decoded",
				 bad[i].lo, bad[i].count, bad[i].step);
			n4_test_fail(__FILE__, __LINE__, what);
			return;
		}
	}
	/* Every decodable WALK stays in the port space and encodes back to itself. */
	for (unsigned lo = 1; lo < 65536; lo += 4093) {
		for (int step = -255; step <= 255; step += 17) {
			for (unsigned count = 1; count <= 4096; count = count * 3 + 1) {
				uint8_t pl[6] = { (uint8_t)(lo >> 8),
						  (uint8_t)lo,
						  (uint8_t)(count >> 8),
						  (uint8_t)count,
						  (uint8_t)((unsigned)step >> 8),
						  (uint8_t)step };
				struct n4_plan out;
				if (n4_plan_decode(N4_PLAN_WALK, pl, &out))
					continue;
				long last = (long)out.lo + (long)(out.count - 1) * out.walk_step;
				CHECK(last >= 1 && last <= 65535 && out.walk_step != 0);
				CHECK(plan_roundtrips(&out));
			}
		}
	}
}

TEST(discovery_counts_other_clients_probes_between_its_own)
{
	/* Two clients behind one NAT, their probes interleaved: A's foreign
	 * allocations (20002, 20004, 20005) are all B's. */
	static const uint16_t pa[4] = { 20000, 20001, 20003, 20006 };
	static const uint16_t pb[4] = { 20002, 20004, 20005, 20007 };
	struct n4_discovery a, b;
	struct n4_seen_map seen[10];
	unsigned n = 0;
	const uint32_t ip = 0x01020304, other_ip = 0x05060708;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	for (unsigned i = 0; i < 4; i++) {
		n4_discovery_record(&a, pa[i], false, i == 0, i == 3, 1000 + 5 * i);
		n4_discovery_record(&b, pb[i], false, i == 0, i == 3, 1002 + 5 * i);
	}
	/* what the server saw behind that IP: both clients' mappings */
	for (unsigned i = 0; i < 4; i++) {
		seen[n++] = (struct n4_seen_map){ ip, pb[i], 1002 + 5 * i };
		seen[n++] = (struct n4_seen_map){ ip, pa[i], 1000 + 5 * i };
	}
	/* behind another IP, and an empty slot: never counted */
	seen[n++] = (struct n4_seen_map){ other_ip, 20004, 1005 };
	seen[n++] = (struct n4_seen_map){ ip, 20002, 0 };
	CHECK_EQ(n4_discovery_known_between(&a, ip, seen, n), 3u);
	CHECK_EQ(n4_discovery_known_between(&b, ip, seen, n), 2u); /* 20003, 20006 */
	/* asked for the other IP: only its own mapping (20004) counts */
	CHECK_EQ(n4_discovery_known_between(&a, other_ip, seen, n), 1u);
	seen[4].port = 20004; /* 20005 gone, 20004 twice: it counts once */
	CHECK_EQ(n4_discovery_known_between(&a, ip, seen, n), 2u);
	seen[4].port = 20005;
	/* long before or after A's probes: not between them in time */
	struct n4_seen_map late[10];
	memcpy(late, seen, sizeof(late));
	for (unsigned i = 0; i < n; i++)
		late[i].ms += 8000;
	CHECK_EQ(n4_discovery_known_between(&a, ip, late, n), 0u);
	CHECK_EQ(n4_discovery_known_between(&a, ip, NULL, 0), 0u);
	/* planned with them discounted, A's NAT is quiet: its plan is the
	 * smallest; without, the interleaving reads as 0.2 flows/ms */
	struct n4_discovery a2 = a, b2 = b, peer, peer2;
	memset(&peer, 0, sizeof(peer));
	for (unsigned i = 0; i < 4; i++)
		n4_discovery_record(&peer, (uint16_t)(30000 + i), i == 1, i < 2, i == 3,
				    1000 + 4 * i);
	peer2 = peer;
	CHECK(n4_discovery_plan(&a2, &peer, 300, 300, 512));
	CHECK(a2.model.rate_per_ms > 0.1);
	a.known_between = n4_discovery_known_between(&a, ip, seen, n);
	CHECK(n4_discovery_plan(&a, &peer2, 300, 300, 512));
	CHECK(a.model.rate_per_ms < a2.model.rate_per_ms);
	CHECK(a.plan.pool < a2.plan.pool);
	(void)b2;
}

/* An unordered client behind an incrementing NAT (step 1): its EXCHANGE and
 * second-port probe from socket 0 at base, base + 1, two probes after. */
static void discover_inc(struct n4_discovery *d, uint16_t base)
{
	n4_discovery_record(d, base, false, true, false, 1000);
	n4_discovery_record(d, (uint16_t)(base + 1), true, true, false, 1002);
	n4_discovery_record(d, (uint16_t)(base + 2), false, false, false, 1004);
	n4_discovery_record(d, (uint16_t)(base + 3), false, false, true, 1006);
}

TEST(discovery_passes_a_room_hosts_walked_ports_to_its_plan)
{
	struct n4_discovery d[2];

	memset(d, 0, sizeof(d));
	discover_inc(&d[0], 20000);
	discover_inc(&d[1], 30000);
	d[0].room_host = true;
	d[0].walked[0] = (struct n4_port_span){ 30004, 30020 };
	d[0].n_walked = 1;
	CHECK(n4_discovery_plan(&d[0], &d[1], 20, 20, 512));
	CHECK_EQ(d[0].plan.kind, N4_PLAN_WALK);
	CHECK_EQ(d[0].walk_skipped, 17u);
	CHECK_EQ(d[0].plan.lo, 30021);
	CHECK_EQ(d[1].plan.pool, d[0].plan.count + 17);
	/* planned again without them: no skip is left over */
	d[0].n_walked = 0;
	CHECK(n4_discovery_plan(&d[0], &d[1], 20, 20, 512));
	CHECK_EQ(d[0].walk_skipped, 0u);
	CHECK_EQ(d[0].plan.lo, 30004);
}

TEST(discovery_plans_a_room_host_with_plan_host)
{
	/* Two incrementing NATs seen through the probes: with room_host set on
	 * either side, that side walks and the other sweeps. */
	for (int side = 0; side < 2; side++) {
		struct n4_discovery d[2];
		memset(d, 0, sizeof(d));
		discover_inc(&d[0], 20000);
		discover_inc(&d[1], 30000);
		d[side].room_host = true;
		CHECK(n4_discovery_plan(&d[0], &d[1], 20, 20, 512));
		CHECK_EQ(d[side].plan.kind, N4_PLAN_WALK);
		CHECK_EQ(d[1 - side].plan.kind, N4_PLAN_SWEEP);
		CHECK_EQ(d[side].plan.lo, (side ? 20000 : 30000) + 4);
		CHECK_EQ(d[side].plan.count, d[1 - side].plan.pool);
	}
}

/* test_predict.c - NAT classification from probes and the plans built on it. */
#include <errno.h>
#include <string.h>

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

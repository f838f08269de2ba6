/* fuzz_plan.c - libFuzzer target for the discovery path: PLAN payloads from the
 * server (untrusted for the client), and NAT classification / planning from any
 * observations a client's probes can produce (attacker-chosen ports and times). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "predict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_plan(const struct n4_plan *p, unsigned budget)
{
	uint8_t ext, payload[6];
	struct n4_plan back;

	if ((p->kind == N4_PLAN_SWEEP || p->kind == N4_PLAN_BDAY_LISTEN) &&
	    (p->pool == 0 || p->pool > budget))
		abort();
	n4_plan_encode(p, &ext, payload);
	if (n4_plan_decode(ext, payload, &back) != 0)
		abort(); /* what we send must decode */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct n4_plan p;

	if (size >= 7 && n4_plan_decode(data[0], data + 1, &p) == 0) {
		uint8_t ext, payload[6];
		n4_plan_encode(&p, &ext, payload);
		struct n4_plan q;
		if (n4_plan_decode(ext, payload, &q) != 0 || memcmp(&p, &q, sizeof(p)) != 0)
			abort();
	}
	/* Two observation sets of up to N4_OBS_MAX entries, 5 bytes each:
	 * port (2), flags (1), time delta (2). */
	struct n4_obs obs[2][N4_OBS_MAX];
	unsigned n[2] = { 0, 0 };
	uint64_t t = 1000;
	for (size_t i = 0; i + 5 <= size && n[0] + n[1] < 2 * N4_OBS_MAX; i += 5) {
		unsigned side = data[i + 2] & 1u;
		if (n[side] == N4_OBS_MAX)
			side ^= 1u;
		t += (uint64_t)(data[i + 3] | data[i + 4] << 8);
		obs[side][n[side]++] = (struct n4_obs){
			.port = (uint16_t)(data[i] | data[i + 1] << 8),
			.second_port = data[i + 2] & 2u,
			.socket0 = data[i + 2] & 4u,
			.t_ms = t,
		};
	}
	struct n4_nat_model ma, mb;
	if (n4_nat_classify(obs[0], n[0], &ma) || n4_nat_classify(obs[1], n[1], &mb))
		return 0;
	unsigned budget = size > 0 ? 6u + data[0] * 4u : 512u;
	double dt = size > 1 ? data[1] * 10.0 : 0.0;
	struct n4_plan pa, pb;
	n4_plan_pair(&ma, &mb, dt, dt / 2, budget, &pa, &pb);
	check_plan(&pa, budget < 6 ? 6 : budget);
	check_plan(&pb, budget < 6 ? 6 : budget);
	return 0;
}

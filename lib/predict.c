/* predict.c - from probe observations to a NAT model, and from two models to a
 * plan per side.  The numbers behind the choices:
 *  - an incrementing NAT hands out `step` ports per new mapping; other hosts'
 *    new flows arrive as a Poisson process of rate r, so over dt ms the drift is
 *    r*dt +- sqrt(r*dt) (nat-traversal-notes.md: the original's fixed +20 over 25
 *    sockets collapses once r*dt nears 15);
 *  - the rate itself is estimated from a few probes over tens of ms, so a further
 *    ~25 % of r*dt is allowed for, plus a few ms of jitter;
 *  - birthday probing against a random NAT: 256 listening sockets and 1024 random
 *    probes per pass give ~98 % per pass over 1024..65535 (Tailscale's figures). */
#include "predict.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RANDOM_LO 1024u
#define RANDOM_COUNT (65536u - RANDOM_LO)
#define BDAY_LISTEN_SOCKETS 256u
#define BDAY_PROBES_PER_PASS 1024u
#define SWEEP_MIN_POOL 6u
#define EIM_PEER_POOL 8u
/* Consecutive probes of an incrementing NAT are never further apart than this
 * (it would take ~10,000 foreign flows per second). */
#define INC_MAX_GAP 1500

const char *n4_nat_kind_name(enum n4_nat_kind k)
{
	switch (k) {
	case N4_NAT_EIM:
		return "endpoint-independent";
	case N4_NAT_INC:
		return "incrementing";
	case N4_NAT_RANDOM:
		return "random";
	default:
		return "unknown";
	}
}

/* An incrementing NAT's allocation order is its port order.  Arrival times at
 * the server only roughly agree: probes to its two UDP sockets are timestamped
 * when the event loop gets to them, so a later allocation can carry an earlier
 * time (seen in the lab at 1000 flows/s).  So: sort by port, and allow the times
 * to disagree by up to TIME_SLACK_MS. */
#define TIME_SLACK_MS 10

static int cmp_port(const void *a, const void *b)
{
	const struct n4_obs *x = a, *y = b;

	return x->port < y->port ? -1 : x->port > y->port ? 1 : 0;
}

static unsigned gcd(unsigned a, unsigned b)
{
	while (b) {
		unsigned t = a % b;
		a = b;
		b = t;
	}
	return a;
}

int n4_nat_classify(const struct n4_obs *in, unsigned n, struct n4_nat_model *m)
{
	struct n4_obs obs[N4_OBS_MAX];
	const struct n4_obs *s0 = NULL, *s0b = NULL;

	memset(m, 0, sizeof(*m));
	if (n < 2 || n > N4_OBS_MAX)
		return -EINVAL;
	memcpy(obs, in, n * sizeof(*obs));
	for (unsigned i = 0; i < n; i++) {
		if (obs[i].port == 0)
			return -EINVAL; /* no NAT maps to port 0: a broken observation */
	}
	qsort(obs, n, sizeof(*obs), cmp_port);
	for (unsigned i = 0; i < n; i++) {
		if (obs[i].socket0 && !obs[i].second_port && !s0)
			s0 = &obs[i];
		if (obs[i].socket0 && obs[i].second_port && !s0b)
			s0b = &obs[i];
	}
	if (!s0)
		return -EINVAL;
	m->first_port = s0->port;
	if (s0b && s0b->port == s0->port) {
		m->kind = N4_NAT_EIM;
		m->last_port = s0->port;
		m->last_ms = s0->t_ms;
		return 0;
	}
	/* Every observation is a distinct mapping: in port order, are they close
	 * together, a multiple of one step apart, and allocated in that order? */
	unsigned g = 0;
	uint64_t t_min = obs[0].t_ms, t_max = obs[0].t_ms;
	for (unsigned i = 1; i < n; i++) {
		long d = (long)obs[i].port - (long)obs[i - 1].port;
		if (d <= 0 || d > INC_MAX_GAP || obs[i].t_ms + TIME_SLACK_MS < obs[i - 1].t_ms) {
			m->kind = N4_NAT_RANDOM;
			return 0;
		}
		g = gcd(g, (unsigned)d);
		if (obs[i].t_ms < t_min)
			t_min = obs[i].t_ms;
		if (obs[i].t_ms > t_max)
			t_max = obs[i].t_ms;
	}
	m->kind = N4_NAT_INC;
	m->step = g ? g : 1;
	m->last_port = obs[n - 1].port;
	m->last_ms = t_max;
	double span = (double)(t_max - t_min);
	double foreign = (double)(obs[n - 1].port - obs[0].port) / m->step - (double)(n - 1);
	m->rate_per_ms = span >= 1.0 && foreign > 0 ? foreign / span : 0.0;
	return 0;
}

/* Small math without libm (runtime dependencies: libc and pthreads only). */
static double sqrt_pos(double x)
{
	double r = x > 1 ? x : 1;

	if (x <= 0)
		return 0;
	for (int i = 0; i < 40; i++)
		r = 0.5 * (r + x / r);
	return r;
}

static long round_pos(double x)
{
	return x <= 0 ? 0 : (long)(x + 0.5);
}

static unsigned ceil_pos(double x)
{
	unsigned v = x <= 0 ? 0 : (unsigned)x;

	return (double)v < x ? v + 1 : v;
}

static uint16_t wrap_port(long p)
{
	while (p > 65535)
		p -= (long)RANDOM_COUNT;
	while (p < (long)RANDOM_LO)
		p += (long)RANDOM_COUNT;
	return (uint16_t)p;
}

/* Half-width (in allocations) that covers the drift with ~3 sigma. */
static unsigned drift_width(const struct n4_nat_model *m, double dt)
{
	double mean = m->rate_per_ms * (dt > 0 ? dt : 0);
	double sigma = sqrt_pos(mean) + 0.25 * mean + 3.0 * m->rate_per_ms + 0.5;

	return ceil_pos(3.0 * sigma);
}

static long expected_start(const struct n4_nat_model *m, double dt)
{
	double mean = m->rate_per_ms * (dt > 0 ? dt : 0);

	return (long)m->last_port + (long)m->step * (1 + round_pos(mean));
}

static unsigned clampu(unsigned v, unsigned lo, unsigned hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* One incrementing side X bursting `pool` sockets: the port its peer aims at. */
static uint16_t sweep_center(const struct n4_nat_model *x, double dt, unsigned pool)
{
	return wrap_port(expected_start(x, dt) + (long)x->step * (long)(pool / 2));
}

static void plan_eim_inc(const struct n4_nat_model *eim, const struct n4_nat_model *inc,
			 double dt_inc, unsigned budget, struct n4_plan *p_eim,
			 struct n4_plan *p_inc)
{
	unsigned pool = clampu(EIM_PEER_POOL, 1, budget);
	unsigned w = drift_width(inc, dt_inc);
	unsigned step = clampu(inc->step, 1, 15);
	uint16_t lo = wrap_port(expected_start(inc, dt_inc) - (long)inc->step * (long)w);
	/* The walk must stay inside the port space (and the PLAN's 12-bit count). */
	unsigned count = clampu(pool + 2 * w, 1, clampu((65535u - lo) / step + 1, 1, 4095));

	*p_inc = (struct n4_plan){ .kind = N4_PLAN_SWEEP,
				   .lo = eim->first_port,
				   .pool = (uint16_t)pool };
	*p_eim = (struct n4_plan){
		.kind = N4_PLAN_RANGE, .lo = lo, .count = (uint16_t)count, .step = (uint8_t)step
	};
}

static void plan_bday(const struct n4_nat_model *eim, unsigned budget, struct n4_plan *p_eim,
		      struct n4_plan *p_rand)
{
	*p_rand = (struct n4_plan){ .kind = N4_PLAN_BDAY_LISTEN,
				    .lo = eim->first_port,
				    .pool = (uint16_t)clampu(BDAY_LISTEN_SOCKETS, 1, budget) };
	*p_eim = (struct n4_plan){ .kind = N4_PLAN_BDAY_PROBE,
				   .lo = (uint16_t)RANDOM_LO,
				   .count = (uint16_t)(RANDOM_COUNT - 1),
				   .pool = BDAY_PROBES_PER_PASS };
}

void n4_plan_pair(const struct n4_nat_model *a, const struct n4_nat_model *b, double dt_a_ms,
		  double dt_b_ms, unsigned budget, struct n4_plan *pa, struct n4_plan *pb)
{
	enum n4_nat_kind ka = a->kind, kb = b->kind;

	memset(pa, 0, sizeof(*pa));
	memset(pb, 0, sizeof(*pb));
	if (budget < SWEEP_MIN_POOL)
		budget = SWEEP_MIN_POOL;
	if (ka == N4_NAT_UNKNOWN || kb == N4_NAT_UNKNOWN)
		return; /* N4_PLAN_NONE: the original's guess */
	if (ka == N4_NAT_EIM && kb == N4_NAT_EIM) {
		*pa = (struct n4_plan){ .kind = N4_PLAN_DIRECT, .lo = b->first_port, .pool = 1 };
		*pb = (struct n4_plan){ .kind = N4_PLAN_DIRECT, .lo = a->first_port, .pool = 1 };
	} else if (ka == N4_NAT_INC && kb == N4_NAT_INC) {
		unsigned pool_a = clampu(2 * drift_width(a, dt_a_ms) + SWEEP_MIN_POOL,
					 SWEEP_MIN_POOL, budget);
		unsigned pool_b = clampu(2 * drift_width(b, dt_b_ms) + SWEEP_MIN_POOL,
					 SWEEP_MIN_POOL, budget);
		*pa = (struct n4_plan){ .kind = N4_PLAN_SWEEP,
					.pool = (uint16_t)pool_a,
					.lo = sweep_center(b, dt_b_ms, pool_b) };
		*pb = (struct n4_plan){ .kind = N4_PLAN_SWEEP,
					.pool = (uint16_t)pool_b,
					.lo = sweep_center(a, dt_a_ms, pool_a) };
	} else if (ka == N4_NAT_EIM && kb == N4_NAT_INC) {
		plan_eim_inc(a, b, dt_b_ms, budget, pa, pb);
	} else if (ka == N4_NAT_INC && kb == N4_NAT_EIM) {
		plan_eim_inc(b, a, dt_a_ms, budget, pb, pa);
	} else if (ka == N4_NAT_EIM && kb == N4_NAT_RANDOM) {
		plan_bday(a, budget, pa, pb);
	} else if (ka == N4_NAT_RANDOM && kb == N4_NAT_EIM) {
		plan_bday(b, budget, pb, pa);
	} else {
		/* random vs random, or random vs per-destination incrementing: no
		 * port on either side can be predicted (0.01 % with 256 x 2048). */
		pa->kind = pb->kind = N4_PLAN_IMPOSSIBLE;
	}
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

void n4_plan_encode(const struct n4_plan *p, uint8_t *ext, uint8_t payload[6])
{
	unsigned count = p->kind == N4_PLAN_RANGE ? ((unsigned)p->step << 12 | (p->count & 0xfffu))
						  : p->count;

	*ext = (uint8_t)p->kind;
	put16(payload, p->lo);
	put16(payload + 2, count);
	put16(payload + 4, p->pool);
}

int n4_plan_decode(uint8_t ext, const uint8_t payload[6], struct n4_plan *p)
{
	unsigned lo = get16(payload), count = get16(payload + 2), pool = get16(payload + 4);

	memset(p, 0, sizeof(*p));
	p->kind = (enum n4_plan_kind)ext;
	switch (ext) {
	case N4_PLAN_NONE:
	case N4_PLAN_IMPOSSIBLE:
		return 0;
	case N4_PLAN_DIRECT:
		if (lo == 0)
			return -EINVAL;
		p->lo = (uint16_t)lo;
		p->pool = 1;
		return 0;
	case N4_PLAN_SWEEP:
	case N4_PLAN_BDAY_LISTEN:
		if (lo == 0 || pool == 0 || pool > 4096)
			return -EINVAL;
		p->lo = (uint16_t)lo;
		p->pool = (uint16_t)pool;
		return 0;
	case N4_PLAN_RANGE:
		p->step = (uint8_t)(count >> 12);
		count &= 0xfffu;
		if (lo == 0 || count == 0 || p->step == 0 || lo + (count - 1) * p->step > 65535)
			return -EINVAL;
		p->lo = (uint16_t)lo;
		p->count = (uint16_t)count;
		return 0;
	case N4_PLAN_BDAY_PROBE:
		if (lo == 0 || count == 0 || lo + count > 65536 || pool == 0 || pool > 8192)
			return -EINVAL;
		p->lo = (uint16_t)lo;
		p->count = (uint16_t)count;
		p->pool = (uint16_t)pool;
		return 0;
	default:
		return -EINVAL;
	}
}

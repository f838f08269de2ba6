/* predict.c - from probe observations to a NAT model, and from two models to a
 * plan per side.  The numbers behind the choices:
 *  - an incrementing NAT hands out `step` ports per new mapping; other hosts'
 *    new flows arrive as a Poisson process of rate r, so over dt ms the drift is
 *    r*dt +- sqrt(r*dt) (doc/STRATEGIES.md: the original's fixed +20 over 25
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

/* Without sequence numbers (clients before N4_EXT_SEQ) the allocation order
 * has to be read from the ports themselves: socket 0's EXCHANGE is always the
 * first allocation, so it is the lowest port of a NAT counting up and the
 * highest of one counting down.  Arrival times at the server only roughly
 * agree: probes to its two UDP sockets are timestamped when the event loop
 * gets to them, so a later allocation can carry an earlier time (seen in the
 * lab at 1000 flows/s); they may disagree by up to TIME_SLACK_MS.  With
 * sequence numbers the client says the order, and arrival times (which jitter
 * reorders) are used only to measure the delay. */
#define TIME_SLACK_MS 10

static int cmp_port(const void *a, const void *b)
{
	const struct n4_obs *x = a, *y = b;

	return x->port < y->port ? -1 : x->port > y->port ? 1 : 0;
}

static int cmp_order(const void *a, const void *b)
{
	const struct n4_obs *x = a, *y = b;

	return x->order < y->order ? -1 : x->order > y->order ? 1 : 0;
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

static int fit_nothing(struct n4_nat_model *m, const char *why)
{
	m->kind = N4_NAT_RANDOM;
	m->why = why;
	return 0;
}

/* Legacy observations: put them in allocation order (see above), or say why
 * they cannot be. */
static const char *order_by_ports(struct n4_obs *obs, unsigned n, uint16_t s0_port)
{
	qsort(obs, n, sizeof(*obs), cmp_port);
	bool down = obs[n - 1].port == s0_port && obs[0].port != s0_port;
	if (!down && obs[0].port != s0_port)
		return "socket 0's first mapping is neither the lowest nor the highest port";
	if (down) {
		for (unsigned i = 0; i < n / 2; i++) {
			struct n4_obs t = obs[i];
			obs[i] = obs[n - 1 - i];
			obs[n - 1 - i] = t;
		}
	}
	for (unsigned i = 1; i < n; i++) {
		if (obs[i].t_ms + TIME_SLACK_MS < obs[i - 1].t_ms)
			return "ports and arrival times disagree on the allocation order";
	}
	return NULL;
}

/* Ordered observations: sorted by send order, and their allocation times
 * placed on the server's clock.  The client's send schedule sits at the
 * least-delayed probe (jitter only ever adds to the one-way delay's floor),
 * and the spread of the rest is the jitter.  *base: that least delay. */
static int place_in_time(struct n4_obs *obs, unsigned n, struct n4_nat_model *m, uint64_t *base)
{
	uint64_t worst = 0;

	*base = UINT64_MAX;
	qsort(obs, n, sizeof(*obs), cmp_order);
	for (unsigned i = 0; i < n; i++) {
		if (i && obs[i].order == obs[i - 1].order)
			return -EINVAL; /* one allocation reported twice */
		if (!obs[i].timed || obs[i].t_ms < obs[i].send_ms)
			continue;
		uint64_t z = obs[i].t_ms - obs[i].send_ms;
		*base = z < *base ? z : *base;
		worst = z > worst ? z : worst;
	}
	if (*base == UINT64_MAX)
		return -EINVAL;
	m->jitter_ms = (unsigned)(worst - *base > 60000 ? 60000 : worst - *base);
	return 0;
}

struct steps {
	unsigned g; /* the step, unsigned */
	int sign;
	unsigned wraps, wrap_at;
};

/* Consecutive allocations: all one sign, a multiple of one step apart
 * (other hosts' mappings in between), except at most one jump of the
 * other sign where the counter wrapped inside its port block.  NULL, or
 * why the ports fit no counter. */
static const char *fit_steps(const struct n4_obs *obs, unsigned n, bool ordered, struct steps *st)
{
	unsigned n_up = 0, n_down = 0;

	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i + 1 < n; i++) {
		long d = (long)obs[i + 1].port - (long)obs[i].port;
		if (d == 0)
			return "two mappings on one port";
		if (d > INC_MAX_GAP || d < -INC_MAX_GAP) {
			st->wraps++;
			st->wrap_at = i;
			continue;
		}
		if (d > 0)
			n_up++;
		else
			n_down++;
		st->g = gcd(st->g, (unsigned)(d > 0 ? d : -d));
	}
	if (n_up && n_down)
		return "ports go both up and down";
	if (!n_up && !n_down)
		return "ports too far apart";
	st->sign = n_up ? 1 : -1;
	if (st->wraps > 1 ||
	    (st->wraps == 1 &&
	     (!ordered ||
	      ((long)obs[st->wrap_at + 1].port - (long)obs[st->wrap_at].port) * st->sign > 0)))
		return "ports too far apart";
	return NULL;
}

/* Other hosts' allocations per ms between ours, and when our last one was. */
static void fit_rate(const struct n4_obs *obs, unsigned n, bool ordered, uint64_t base,
		     const struct steps *st, uint16_t pmin, uint16_t pmax, struct n4_nat_model *m)
{
	double foreign = 0, span = 0;

	if (ordered) {
		for (unsigned i = 0; i + 1 < n; i++) {
			if (st->wraps && i == st->wrap_at)
				continue; /* how many ports the wrap skipped is unknown */
			long d = (long)obs[i + 1].port - (long)obs[i].port;
			foreign += (double)(d > 0 ? d : -d) / st->g - 1.0;
			span += (double)obs[i + 1].send_ms - (double)obs[i].send_ms;
		}
		m->last_ms = base + obs[n - 1].send_ms;
	} else {
		uint64_t t_min = obs[0].t_ms, t_max = obs[0].t_ms;
		for (unsigned i = 1; i < n; i++) {
			t_min = obs[i].t_ms < t_min ? obs[i].t_ms : t_min;
			t_max = obs[i].t_ms > t_max ? obs[i].t_ms : t_max;
		}
		foreign = (double)(pmax - pmin) / st->g - (double)(n - 1);
		span = (double)(t_max - t_min);
		m->last_ms = t_max;
	}
	m->foreign = foreign > 0 ? foreign : 0;
	m->span_ms = span;
	m->rate_per_ms = span >= 1.0 && foreign > 0 ? foreign / span : 0.0;
}

void n4_nat_discount(struct n4_nat_model *m, unsigned known)
{
	if (m->kind != N4_NAT_INC || !known || m->span_ms < 1.0)
		return;
	double rest = m->foreign - (double)known;
	m->rate_per_ms = rest > 0 ? rest / m->span_ms : 0.0;
}

static int classify(const struct n4_obs *in, unsigned n, bool stale_s0, struct n4_nat_model *m);

int n4_nat_classify(const struct n4_obs *in, unsigned n, struct n4_nat_model *m)
{
	return classify(in, n, false, m);
}

int n4_nat_classify_host(const struct n4_obs *in, unsigned n, struct n4_nat_model *m)
{
	return classify(in, n, true, m);
}

/* A room's host keeps its socket 0 (the program's port) across its answers: its
 * mappings toward the server were allocated at its first answer, maybe minutes
 * ago, and must not be read as this moment's allocations (dozens of "foreign"
 * ports between them and the fresh probes).  They still tell an
 * endpoint-independent NAT (one port for both server ports). */
static unsigned drop_socket0(struct n4_obs *obs, unsigned n)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++)
		if (!obs[i].socket0)
			obs[k++] = obs[i];
	return k;
}

static int classify(const struct n4_obs *in, unsigned n, bool stale_s0, struct n4_nat_model *m)
{
	struct n4_obs obs[N4_OBS_MAX];
	const struct n4_obs *s0 = NULL, *s0b = NULL;
	bool ordered = true;
	struct steps st;
	uint64_t base = 0;

	memset(m, 0, sizeof(*m));
	if (n < 2 || n > N4_OBS_MAX)
		return -EINVAL;
	memcpy(obs, in, n * sizeof(*obs));
	for (unsigned i = 0; i < n; i++) {
		if (obs[i].port == 0)
			return -EINVAL; /* no NAT maps to port 0: a broken observation */
		if (obs[i].socket0 && !obs[i].second_port && !s0)
			s0 = &in[i];
		if (obs[i].socket0 && obs[i].second_port && !s0b)
			s0b = &in[i];
		ordered = ordered && obs[i].ordered;
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
	uint16_t ref_port = s0->port;
	if (stale_s0) {
		struct n4_obs fresh[N4_OBS_MAX];
		memcpy(fresh, obs, n * sizeof(*obs));
		unsigned k = drop_socket0(fresh, n);
		if (k >= 2) {
			memcpy(obs, fresh, k * sizeof(*obs));
			n = k;
			uint16_t lo = obs[0].port, hi = obs[0].port;
			for (unsigned i = 1; i < n; i++) {
				lo = obs[i].port < lo ? obs[i].port : lo;
				hi = obs[i].port > hi ? obs[i].port : hi;
			}
			/* Unordered: the counter went on from socket 0's old port. */
			ref_port = s0->port > hi ? hi : lo;
		}
	}
	if (ordered) {
		int err = place_in_time(obs, n, m, &base);
		if (err)
			return err;
	} else {
		const char *why = order_by_ports(obs, n, ref_port);
		if (why)
			return fit_nothing(m, why);
	}
	const char *why = fit_steps(obs, n, ordered, &st);
	if (why)
		return fit_nothing(m, why);
	m->kind = N4_NAT_INC;
	m->step = st.sign * (int)st.g;
	m->last_port = obs[n - 1].port;
	m->block_lo = RANDOM_LO;
	m->block_hi = 65535;
	uint16_t pmin = obs[0].port, pmax = obs[0].port;
	for (unsigned i = 1; i < n; i++) {
		pmin = obs[i].port < pmin ? obs[i].port : pmin;
		pmax = obs[i].port > pmax ? obs[i].port : pmax;
	}
	if (st.wraps) {
		/* The block's edges lie at or beyond what we saw: assume the
		 * tightest block, so predictions wrap where the counter did. */
		m->block_lo = pmin;
		m->block_hi = pmax;
	} else if (pmin < m->block_lo) {
		m->block_lo = pmin;
	}
	fit_rate(obs, n, ordered, base, &st, pmin, pmax, m);
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

static uint16_t wrap_port(long p);
static long wrap_block(const struct n4_nat_model *m, long p);

void n4_nat_advance(struct n4_nat_model *m, unsigned allocs)
{
	if (m->kind != N4_NAT_INC || !allocs)
		return;
	m->last_port = wrap_port(wrap_block(m, (long)m->last_port + (long)m->step * (long)allocs));
}

unsigned n4_plan_allocs(const struct n4_plan *p)
{
	switch (p->kind) {
	case N4_PLAN_SWEEP:
	case N4_PLAN_BDAY_LISTEN:
		return p->pool;
	case N4_PLAN_RANGE:
	case N4_PLAN_WALK:
		return p->count;
	case N4_PLAN_DIRECT:
		return 1;
	default:
		return 0;
	}
}

static uint16_t wrap_port(long p)
{
	while (p > 65535)
		p -= (long)RANDOM_COUNT;
	while (p < (long)RANDOM_LO)
		p += (long)RANDOM_COUNT;
	return (uint16_t)p;
}

/* A port the NAT would hand out after p, wrapped inside its block. */
static long wrap_block(const struct n4_nat_model *m, long p)
{
	long lo = m->block_lo ? m->block_lo : (long)RANDOM_LO;
	long hi = m->block_hi ? m->block_hi : 65535;
	long size = hi - lo + 1;

	if (size <= 0)
		return wrap_port(p);
	if (p > hi)
		p = lo + (p - lo) % size;
	if (p < lo)
		p = hi - (hi - p) % size;
	return p;
}

static unsigned abs_step(const struct n4_nat_model *m)
{
	return m->step < 0 ? (unsigned)-m->step : m->step ? (unsigned)m->step : 1u;
}

/* Half-width (in allocations) that covers the drift with ~3 sigma.  Jitter
 * (the spread of the one-way delay) makes both the last allocation's time and
 * the sweep's start uncertain by about half of it each. */
static unsigned drift_width(const struct n4_nat_model *m, double dt)
{
	double mean = m->rate_per_ms * (dt > 0 ? dt : 0);
	double sigma = sqrt_pos(mean) + 0.25 * mean + 3.0 * m->rate_per_ms + 0.5 +
		       0.5 * m->rate_per_ms * (double)m->jitter_ms;

	return ceil_pos(3.0 * sigma);
}

/* The first port of X's sweep, unwrapped (the caller wraps). */
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
	long c = expected_start(x, dt) + (long)x->step * (long)(pool / 2);

	return wrap_port(wrap_block(x, c));
}

static void plan_eim_inc(const struct n4_nat_model *eim, const struct n4_nat_model *inc,
			 double dt_inc, unsigned budget, struct n4_plan *p_eim,
			 struct n4_plan *p_inc)
{
	unsigned pool = clampu(EIM_PEER_POOL, 1, budget);
	unsigned w = drift_width(inc, dt_inc);
	unsigned step = clampu(abs_step(inc), 1, 15);
	long start = wrap_block(inc, expected_start(inc, dt_inc));
	/* The peer's burst runs from start in the NAT's direction; walk it from
	 * its lowest port, whichever way the NAT counts. */
	long e1 = start - (long)inc->step * (long)w;
	long e2 = start + (long)inc->step * (long)(pool - 1 + w);
	long lo = e1 < e2 ? e1 : e2, hi = e1 < e2 ? e2 : e1;
	long blo = inc->block_lo ? inc->block_lo : (long)RANDOM_LO;
	long bhi = inc->block_hi ? inc->block_hi : 65535;
	/* Past the block's edge the NAT wraps: the walk keeps to the side the
	 * burst starts on (one range per plan). */
	if (lo < blo)
		lo += ((blo - lo) + step - 1) / step * step;
	if (hi > bhi)
		hi = bhi;
	if (lo < 1)
		lo = 1;
	unsigned count = hi >= lo ? (unsigned)((hi - lo) / step + 1) : 1;
	/* Each port walked is a mapping on the walker's own NAT: the budget bounds
	 * them too; the walk must stay in the port space and the 12-bit count. */
	count = clampu(count, 1, budget);
	count = clampu(count, 1, clampu((65535u - (unsigned)lo) / step + 1, 1, 4095));

	*p_inc = (struct n4_plan){ .kind = N4_PLAN_SWEEP,
				   .lo = eim->first_port,
				   .pool = (uint16_t)pool };
	*p_eim = (struct n4_plan){ .kind = N4_PLAN_RANGE,
				   .lo = (uint16_t)lo,
				   .count = (uint16_t)count,
				   .step = (uint8_t)step };
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

/* Allocations past `first` (in the NAT's direction) a walk of `pool` ports must
 * skip so that it crosses none of the spans: each span it would cross pushes its
 * start past that span's far end, until none is crossed.  0 when none is. */
static unsigned walk_skip(const struct n4_nat_model *j, long first, unsigned pool,
			  const struct n4_port_span *walked, unsigned n)
{
	long step = j->step ? j->step : 1;
	unsigned skip = 0;

	if (n > N4_WALKED_MAX)
		n = N4_WALKED_MAX;
	/* Each pass moves the start past at least one more span, or stops. */
	for (unsigned pass = 0; pass <= n; pass++) {
		long s = first + step * (long)skip, e = s + step * (long)(pool - 1);
		long lo = s < e ? s : e, hi = s < e ? e : s;
		unsigned need = skip;
		for (unsigned i = 0; i < n; i++) {
			if (walked[i].lo > walked[i].hi || walked[i].hi < lo || walked[i].lo > hi)
				continue;
			long past = step > 0 ? (walked[i].hi - first) / step + 1
					     : (first - walked[i].lo) / -step + 1;
			if (past > (long)need)
				need = (unsigned)past;
		}
		if (need == skip)
			break;
		skip = need;
	}
	return skip;
}

/* A room's host punches every joiner from one socket (its program's port), so it
 * cannot burst a pool.  Against an incrementing joiner it walks instead: its k-th
 * PUNCH goes to the joiner NAT's k-th predicted allocation, and its own NAT gives
 * that PUNCH its k-th new port.  The joiner's pool of M sockets all aim at the
 * host's port after M/2 allocations; they meet at the walk step k = M/2 - dh, on
 * the joiner's socket M/2 - dh - dj, whatever the two drifts dh and dj are while
 * |dh + dj| < M/2.
 *
 * A joiner port the host's socket sent to lately (an earlier walk toward the
 * same NAT: two players behind one carrier NAT, or one joining again) still has
 * its mapping on the host's NAT: a PUNCH to it opens no new port, and every
 * later step of the walk meets the wrong port.  The walk starts past such ports
 * instead, and the joiner opens that many more sockets first (its NAT hands
 * them the skipped ports); the meeting is the same, shifted by the skip. */
static void plan_walk(const struct n4_nat_model *h, const struct n4_nat_model *j, double dt_h,
		      double dt_j, unsigned budget, const struct n4_port_span *walked,
		      unsigned n_walked, struct n4_plan *ph, struct n4_plan *pj, unsigned *skipped)
{
	unsigned pool = clampu(2 * (drift_width(h, dt_h) + drift_width(j, dt_j)) + SWEEP_MIN_POOL,
			       SWEEP_MIN_POOL, budget);
	long first = wrap_block(j, expected_start(j, dt_j));
	unsigned skip = walk_skip(j, first, pool, walked, n_walked);
	long start = first + (long)j->step * (long)skip;

	long blo = j->block_lo ? j->block_lo : (long)RANDOM_LO;
	long bhi = j->block_hi ? j->block_hi : 65535;
	/* Past the budget (or the NAT's block, where it wraps), skipping costs more
	 * than it can win: the walk crosses the old ports as before. */
	if (skip && (skip > budget - pool || start < blo || start > bhi))
		skip = 0;
	if (skip)
		first = start;
	/* The walk stays in the port space (it stops at its edge, punch.c). */
	long last = first + (long)j->step * (long)(pool - 1);
	if (last > 65535 || last < 1)
		pool = clampu((unsigned)((j->step > 0 ? 65535 - first : first - 1) / abs_step(j)) +
				      1,
			      1, pool);

	*ph = (struct n4_plan){ .kind = N4_PLAN_WALK,
				.lo = (uint16_t)first,
				.count = (uint16_t)pool,
				.walk_step = (int16_t)j->step };
	*pj = (struct n4_plan){ .kind = N4_PLAN_SWEEP,
				.pool = (uint16_t)(pool + skip),
				.lo = sweep_center(h, dt_h, pool) };
	*skipped = skip;
}

void n4_plan_host_avoid(const struct n4_nat_model *h, const struct n4_nat_model *j,
			double dt_h_ms, double dt_j_ms, unsigned budget,
			const struct n4_port_span *walked, unsigned n_walked,
			struct n4_plan *ph, struct n4_plan *pj, unsigned *skipped)
{
	memset(ph, 0, sizeof(*ph));
	memset(pj, 0, sizeof(*pj));
	*skipped = 0;
	if (budget < SWEEP_MIN_POOL)
		budget = SWEEP_MIN_POOL;
	if (h->kind == N4_NAT_UNKNOWN || j->kind == N4_NAT_UNKNOWN)
		return;
	if (h->kind == N4_NAT_EIM) {
		/* Every plan of an EIM side uses its socket 0 only. */
		n4_plan_pair(h, j, dt_h_ms, dt_j_ms, budget, ph, pj);
		return;
	}
	if (h->kind == N4_NAT_INC && j->kind == N4_NAT_INC && h->step >= -255 && h->step <= 255 &&
	    j->step >= -255 && j->step <= 255) {
		plan_walk(h, j, dt_h_ms, dt_j_ms, budget, walked, n_walked, ph, pj, skipped);
		return;
	}
	if (h->kind == N4_NAT_INC && j->kind == N4_NAT_EIM) {
		/* The joiner walks the host's next allocations (one PUNCH from the
		 * host opens one) from its socket 0. */
		plan_eim_inc(j, h, dt_h_ms, budget, pj, ph);
		*ph = (struct n4_plan){ .kind = N4_PLAN_DIRECT, .lo = j->first_port, .pool = 1 };
		return;
	}
	ph->kind = pj->kind = N4_PLAN_IMPOSSIBLE; /* random: the relay */
}

void n4_plan_host(const struct n4_nat_model *h, const struct n4_nat_model *j, double dt_h_ms,
		  double dt_j_ms, unsigned budget, struct n4_plan *ph, struct n4_plan *pj)
{
	unsigned skipped;

	n4_plan_host_avoid(h, j, dt_h_ms, dt_j_ms, budget, NULL, 0, ph, pj, &skipped);
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
	/* WALK: the signed step, two's complement, where the others have a pool. */
	put16(payload + 4, p->kind == N4_PLAN_WALK ? (uint16_t)p->walk_step : p->pool);
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
	case N4_PLAN_WALK: {
		int step = pool >= 0x8000u ? (int)pool - 0x10000 : (int)pool;
		long last = (long)lo + (long)(count ? count - 1 : 0) * step;
		if (lo == 0 || count == 0 || count > 4096 || step == 0 || step < -255 ||
		    step > 255 || last < 1 || last > 65535)
			return -EINVAL;
		p->lo = (uint16_t)lo;
		p->count = (uint16_t)count;
		p->walk_step = (int16_t)step;
		return 0;
	}
	default:
		return -EINVAL;
	}
}

void n4_tune_encode(const struct n4_tune *t, uint8_t *ext, uint8_t payload[6])
{
	*ext = t->flags;
	put16(payload, t->guard_ms);
	put16(payload + 2, t->max_pps);
	put16(payload + 4, t->jitter_ms);
}

int n4_tune_decode(uint8_t ext, const uint8_t payload[6], struct n4_tune *t)
{
	memset(t, 0, sizeof(*t));
	if (ext & ~N4_TUNE_NOSWEEP)
		return -EINVAL;
	t->flags = ext;
	t->guard_ms = (uint16_t)get16(payload);
	t->max_pps = (uint16_t)get16(payload + 2);
	t->jitter_ms = (uint16_t)get16(payload + 4);
	/* A guard longer than a round, or a pace of a few packets a second,
	 * would only make punching fail: not from a server of ours. */
	if (t->guard_ms > N4_GUARD_MAX_MS || (t->max_pps && t->max_pps < 10))
		return -EINVAL;
	return 0;
}

unsigned n4_guard_ms(unsigned base_ms, unsigned jitter_a_ms, unsigned jitter_b_ms)
{
	unsigned g = base_ms + (jitter_a_ms > jitter_b_ms ? jitter_a_ms : jitter_b_ms);

	return g > N4_GUARD_MAX_MS ? N4_GUARD_MAX_MS : g;
}

uint8_t n4_seq_probe_ext(const struct n4_seq_probe *p)
{
	unsigned code = p->spacing_ms < 5 ? 0 : p->spacing_ms > 40 ? 7 : p->spacing_ms / 5 - 1;

	return (uint8_t)((p->seq & 7u) | code << 3 | (p->resent ? N4_PROBE_RESENT : 0) |
			 (p->nosweep ? N4_PROBE_NOSWEEP : 0));
}

int n4_seq_probe_parse(uint8_t ext, struct n4_seq_probe *p)
{
	p->seq = ext & 7u;
	p->spacing_ms = (uint8_t)((((ext >> 3) & 7u) + 1) * 5);
	p->resent = ext & N4_PROBE_RESENT;
	p->nosweep = ext & N4_PROBE_NOSWEEP;
	return p->seq < N4_SEQ_PROBES ? 0 : -EINVAL;
}

unsigned n4_seq_probe_offset_ms(unsigned seq, unsigned spacing_ms)
{
	return seq ? (seq - 1) * spacing_ms : 0;
}

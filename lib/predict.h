/* predict.h - NAT behaviour from the server's view of a client's probes, and a
 * punching plan for a pair.  Pure computation: the server feeds observations,
 * the client executes plans (punch.c).  See doc/STRATEGIES.md. */
#ifndef N4_PREDICT_H
#define N4_PREDICT_H

#include <stdbool.h>
#include <stdint.h>

#define N4_OBS_MAX 8

struct n4_obs {
	uint16_t port;	  /* public source port as the server saw it */
	bool second_port; /* arrived on the server's second UDP port */
	bool socket0;	  /* sent from the client's first pool socket */
	uint64_t t_ms;	  /* server arrival time */
	/* N4_EXT_SEQ: the client numbered its probes, so their allocation order
	 * and send times are known whatever order the network delivered them in. */
	bool ordered;	  /* order and send_ms are valid */
	bool timed;	  /* t_ms is the first copy's arrival (not a resend's) */
	uint8_t order;	  /* allocation order: 0 = the EXCHANGE, 1.. the probes */
	uint16_t send_ms; /* sent this long after the EXCHANGE */
};

enum n4_nat_kind {
	N4_NAT_UNKNOWN = 0,
	N4_NAT_EIM = 1,	   /* one public port per socket, whatever the destination */
	N4_NAT_INC = 2,	   /* a new port per destination, allocated in steps of either sign */
	N4_NAT_RANDOM = 3, /* a new port per destination, in no arithmetic order */
};

struct n4_nat_model {
	enum n4_nat_kind kind;
	int step;	     /* INC: ports between consecutive allocations (<0: counts down) */
	double rate_per_ms;  /* INC: foreign allocations per ms (other hosts' traffic) */
	uint16_t first_port; /* socket 0's mapping toward the server */
	uint16_t last_port;  /* INC: the latest allocation seen */
	uint64_t last_ms;    /* its server arrival time (least-delayed estimate) */
	uint16_t block_lo;   /* INC: allocations wrap inside [block_lo, block_hi] */
	uint16_t block_hi;
	unsigned jitter_ms; /* spread of the one-way delay over the probes (ordered only) */
	const char *why;    /* RANDOM: what did not fit an arithmetic allocation */
	double foreign;	    /* INC: the allocations between ours that rate_per_ms counts, */
	double span_ms;	    /* over this long */
};

/* Classify from observations (any order).  -EINVAL when they cannot tell. */
int n4_nat_classify(const struct n4_obs *obs, unsigned n, struct n4_nat_model *m);
/* An incrementing NAT allocated `allocs` more ports since the model's last one (other
 * clients' sweeps behind the same public IP, known to the server). */
void n4_nat_advance(struct n4_nat_model *m, unsigned allocs);
/* Of the foreign allocations between ours, `known` were other clients' probes the
 * server saw (behind the same public IP, probing at the same time): a burst
 * that is over, not the NAT's background traffic.  The rate counts the rest. */
void n4_nat_discount(struct n4_nat_model *m, unsigned known);
/* The same for a room's host, whose socket 0 mappings may be old (predict.c). */
int n4_nat_classify_host(const struct n4_obs *obs, unsigned n, struct n4_nat_model *m);

enum n4_plan_kind {
	N4_PLAN_NONE = 0,	 /* no plan: original behaviour (port + offset) */
	N4_PLAN_DIRECT = 1,	 /* socket 0 -> the peer's observed port */
	N4_PLAN_SWEEP = 2,	 /* `pool` sockets -> one predicted peer port */
	N4_PLAN_RANGE = 3,	 /* socket 0 -> `count` peer ports from lo, every `step` */
	N4_PLAN_BDAY_LISTEN = 4, /* `pool` sockets -> the peer's observed port, then wait */
	N4_PLAN_BDAY_PROBE = 5,	 /* socket 0 -> `pool` random ports per pass in [lo, lo+count) */
	N4_PLAN_IMPOSSIBLE = 6,	 /* this pair cannot be punched */
	N4_PLAN_WALK = 7,	 /* a room's host: socket 0 -> `count` peer ports from lo,
				  * every walk_step (signed), in that order */
};

struct n4_plan {
	enum n4_plan_kind kind;
	uint16_t lo;	   /* SWEEP: the target port; RANGE/BDAY_PROBE: the first port */
	uint16_t count;	   /* RANGE/BDAY_PROBE: ports in the range */
	uint16_t pool;	   /* SWEEP/BDAY_LISTEN: sockets; BDAY_PROBE: probes per pass */
	uint8_t step;	   /* RANGE: step between ports */
	int16_t walk_step; /* WALK: the peer NAT's step, sign included */
};

/* Plans for both sides.  dt_a_ms / dt_b_ms: time from each side's last observed
 * allocation to its sweep's first mapping (the server knows both from its clock
 * and the measured round trips).  budget: NAT ports one side may spend. */
void n4_plan_pair(const struct n4_nat_model *a, const struct n4_nat_model *b, double dt_a_ms,
		  double dt_b_ms, unsigned budget, struct n4_plan *plan_a, struct n4_plan *plan_b);

/* Plans for a room's host h (one socket: its program's port) and a joiner j:
 * against an incrementing joiner the host walks (N4_PLAN_WALK), else the host's
 * plan uses its socket 0 only.  Arguments as n4_plan_pair. */
void n4_plan_host(const struct n4_nat_model *h, const struct n4_nat_model *j, double dt_h_ms,
		  double dt_j_ms, unsigned budget, struct n4_plan *plan_h, struct n4_plan *plan_j);

/* Ports of the joiner's NAT the host's socket sent to lately (its earlier walks):
 * its NAT still holds a mapping for each, so a PUNCH to one of them opens no new
 * port and a walk across them misses.  At most N4_WALKED_MAX spans are used. */
#define N4_WALKED_MAX 8
struct n4_port_span {
	uint16_t lo, hi; /* inclusive */
};

/* n4_plan_host, the walk starting past every span of `walked` it would cross:
 * the joiner's pool grows by the ports skipped (they are allocated to its first
 * sockets, which the walk does not reach), within budget.  *skipped: how many
 * (0 when none crossed, or when skipping them would exceed the budget). */
void n4_plan_host_avoid(const struct n4_nat_model *h, const struct n4_nat_model *j,
			double dt_h_ms, double dt_j_ms, unsigned budget,
			const struct n4_port_span *walked, unsigned n_walked,
			struct n4_plan *plan_h, struct n4_plan *plan_j, unsigned *skipped);

/* NAT ports a plan opens on its own side (its sockets' or its walk's mappings). */
unsigned n4_plan_allocs(const struct n4_plan *p);

/* PLAN message payload (wire.h N4_CMD_PLAN): kind in the reserved byte. */
void n4_plan_encode(const struct n4_plan *p, uint8_t *ext, uint8_t payload[6]);
int n4_plan_decode(uint8_t ext, const uint8_t payload[6], struct n4_plan *p);

/* TUNE message (N4_CMD_TUNE, to N4_EXT_SEQ clients before PLAN): how to pace
 * and time the plan on a network with jitter. */
#define N4_TUNE_NOSWEEP 0x01u /* ext: IMPOSSIBLE because a side forbade sweeping */
struct n4_tune {
	uint8_t flags;	    /* N4_TUNE_* */
	uint16_t guard_ms;  /* pre-opening to first full-TTL PUNCH */
	uint16_t max_pps;   /* the server's cap on PUNCH datagrams per second; 0 = none */
	uint16_t jitter_ms; /* measured spread of the one-way delay (both sides' max) */
};
void n4_tune_encode(const struct n4_tune *t, uint8_t *ext, uint8_t payload[6]);
int n4_tune_decode(uint8_t ext, const uint8_t payload[6], struct n4_tune *t);

#define N4_GUARD_BASE_MS 15 /* with no jitter: the skew the server could not remove */
#define N4_GUARD_MAX_MS 250
/* Guard between pre-opening and full-TTL PUNCHes for two sides whose one-way
 * delays spread by jitter_a / jitter_b ms. */
unsigned n4_guard_ms(unsigned base_ms, unsigned jitter_a_ms, unsigned jitter_b_ms);

/* Sequenced probe (N4_CMD_PROBE, client -> server over UDP, N4_EXT_SEQ): the
 * reserved byte carries the probe's number, the client's spacing between
 * probes, and two flags; the payload is the client's token. */
#define N4_SEQ_PROBES 5	       /* seq 0: socket 0 to the second port; 1..4: extra sockets */
#define N4_PROBE_RESENT 0x40u  /* a copy of an earlier probe (its time says nothing) */
#define N4_PROBE_NOSWEEP 0x80u /* this client accepts only direct paths (--no-sweep) */
struct n4_seq_probe {
	uint8_t seq;	    /* 0 .. N4_SEQ_PROBES-1 */
	uint8_t spacing_ms; /* 5..40, a multiple of 5 */
	bool resent, nosweep;
};
uint8_t n4_seq_probe_ext(const struct n4_seq_probe *p);
int n4_seq_probe_parse(uint8_t ext, struct n4_seq_probe *p);
/* Send time of probe seq after the EXCHANGE, as the client schedules it. */
unsigned n4_seq_probe_offset_ms(unsigned seq, unsigned spacing_ms);

const char *n4_nat_kind_name(enum n4_nat_kind k);

#endif

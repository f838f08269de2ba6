/* predict.h - NAT behaviour from the server's view of a client's probes, and a
 * punching plan for a pair.  Pure computation: the server feeds observations,
 * the client executes plans (punch.c).  See README "Strategies". */
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
};

enum n4_nat_kind {
	N4_NAT_UNKNOWN = 0,
	N4_NAT_EIM = 1,	   /* one public port per socket, whatever the destination */
	N4_NAT_INC = 2,	   /* a new port per destination, allocated in steps */
	N4_NAT_RANDOM = 3, /* a new random port per destination */
};

struct n4_nat_model {
	enum n4_nat_kind kind;
	unsigned step;	     /* INC: ports between consecutive allocations */
	double rate_per_ms;  /* INC: foreign allocations per ms (other hosts' traffic) */
	uint16_t first_port; /* socket 0's mapping toward the server */
	uint16_t last_port;  /* INC: the latest allocation seen */
	uint64_t last_ms;    /* its server arrival time */
};

/* Classify from observations (any order).  -EINVAL when they cannot tell. */
int n4_nat_classify(const struct n4_obs *obs, unsigned n, struct n4_nat_model *m);

enum n4_plan_kind {
	N4_PLAN_NONE = 0,	 /* no plan: original behaviour (port + offset) */
	N4_PLAN_DIRECT = 1,	 /* socket 0 -> the peer's observed port */
	N4_PLAN_SWEEP = 2,	 /* `pool` sockets -> one predicted peer port */
	N4_PLAN_RANGE = 3,	 /* socket 0 -> `count` peer ports from lo, every `step` */
	N4_PLAN_BDAY_LISTEN = 4, /* `pool` sockets -> the peer's observed port, then wait */
	N4_PLAN_BDAY_PROBE = 5,	 /* socket 0 -> `pool` random ports per pass in [lo, lo+count) */
	N4_PLAN_IMPOSSIBLE = 6,	 /* this pair cannot be punched */
};

struct n4_plan {
	enum n4_plan_kind kind;
	uint16_t lo;	/* SWEEP: the target port; RANGE/BDAY_PROBE: the first port */
	uint16_t count; /* RANGE/BDAY_PROBE: ports in the range */
	uint16_t pool;	/* SWEEP/BDAY_LISTEN: sockets; BDAY_PROBE: probes per pass */
	uint8_t step;	/* RANGE: step between ports */
};

/* Plans for both sides.  dt_a_ms / dt_b_ms: time from each side's last observed
 * allocation to its sweep's first mapping (the server knows both from its clock
 * and the measured round trips).  budget: NAT ports one side may spend. */
void n4_plan_pair(const struct n4_nat_model *a, const struct n4_nat_model *b, double dt_a_ms,
		  double dt_b_ms, unsigned budget, struct n4_plan *plan_a, struct n4_plan *plan_b);

/* PLAN message payload (wire.h N4_CMD_PLAN): kind in the reserved byte. */
void n4_plan_encode(const struct n4_plan *p, uint8_t *ext, uint8_t payload[6]);
int n4_plan_decode(uint8_t ext, const uint8_t payload[6], struct n4_plan *p);

const char *n4_nat_kind_name(enum n4_nat_kind k);

#endif

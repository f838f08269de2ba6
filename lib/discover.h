/* discover.h - the server's side of NAT behaviour discovery (N4_EXT_PROBE): what
 * it saw of one client's probes, and when it has seen enough. */
#ifndef N4_DISCOVER_H
#define N4_DISCOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "predict.h"

/* How long after the first EXCHANGE the server waits for a client's last probe
 * before planning with what it has (probes are spread over ~one round trip). */
#define N4_DISCOVERY_WAIT_MS 400
/* Clients that number their probes (N4_EXT_SEQ) resend lost ones, and the
 * server knows when it has them all: it may wait longer for a lost one. */
#define N4_DISCOVERY_SEQ_WAIT_MS 1000

struct n4_discovery {
	struct n4_obs obs[N4_OBS_MAX];
	unsigned n;
	bool complete;	/* the last probe arrived, or the wait ran out */
	bool ordered;	/* N4_EXT_SEQ: numbered probes (set before recording) */
	bool nosweep;	/* the client accepts only direct paths */
	bool room_host; /* a room's host answering a joiner: one socket (n4_plan_host) */
	/* Ports other clients behind the same public IP opened since our last
	 * observation (their sweeps, which the server planned): our NAT's counter
	 * moved on by that much. */
	unsigned extra_allocs;
	/* room_host: the peer NAT's ports this host's socket walked lately
	 * (n4_plan_host_avoid), and how many the plan skipped past. */
	struct n4_port_span walked[N4_WALKED_MAX];
	unsigned n_walked, walk_skipped;
	/* Allocations between our probes that were other clients' probes behind
	 * the same IP (n4_discovery_known_between): not background traffic. */
	unsigned known_between;
	uint8_t seen;	/* ordered: bit order of every allocation recorded */
	uint64_t first_ms;
	struct n4_plan plan;
	struct n4_tune tune; /* ordered clients get it before PLAN */
	/* What n4_discovery_plan classified, kept for the pair's fast flows. */
	struct n4_nat_model model;
	bool have_model;
};

/* A fast flow's probe (fast.h): the flow socket's public port toward the server,
 * when it arrived, and the ports other sweeps behind that NAT opened since. */
struct n4_flow_probe {
	uint16_t port;
	uint64_t t_ms;
	unsigned extra_allocs;
};

/* Record one observation (duplicates of a port already seen are ignored).  For
 * an ordered client, the EXCHANGE from socket 0 is allocation 0. */
void n4_discovery_record(struct n4_discovery *d, uint16_t port, bool second_port, bool socket0,
			 bool last, uint64_t now_ms);

/* Record a numbered probe (N4_CMD_PROBE) that arrived at t_ms. */
void n4_discovery_record_seq(struct n4_discovery *d, uint16_t port, bool second_port,
			     const struct n4_seq_probe *p, uint64_t t_ms);

/* Classify both sides and fill a->plan, b->plan (and their tunes).  dt_*: ms
 * from each side's last observation to the moment its sweep opens its
 * mappings.  Returns false when either side could not be classified (plans are
 * then N4_PLAN_NONE). */
bool n4_discovery_plan(struct n4_discovery *a, struct n4_discovery *b, double dt_a_ms,
		       double dt_b_ms, unsigned budget);

/* A fast flow of two clients whose first path was planned (n4_discovery_plan):
 * plans for both from the models kept then, each rebased on its flow's probe;
 * dt_*: ms from each probe to the moment that side's sweep opens its mappings.
 * The tune (guard, jitter) is the same for both.  false, nothing planned: a
 * model missing, random, or a probe outside its NAT's known port block (the
 * model no longer fits: the flow rendezvous as usual). */
bool n4_discovery_plan_flow(const struct n4_discovery *a, const struct n4_discovery *b,
			    const struct n4_flow_probe *pa, const struct n4_flow_probe *pb,
			    double dt_a_ms, double dt_b_ms, unsigned budget,
			    struct n4_plan *plan_a, struct n4_plan *plan_b, struct n4_tune *tune);

/* The latest allocation's time (0 when none): its arrival, or for ordered
 * clients the least-delayed estimate from the send schedule. */
uint64_t n4_discovery_last_ms(const struct n4_discovery *d);

/* A mapping a client showed the server: public IP (network order), port, when. */
struct n4_seen_map {
	uint32_t ip;
	uint16_t port;
	uint64_t ms; /* 0: an empty slot */
};

/* Of the mappings seen[0..n) behind public IP ip (the server's record of its
 * clients, this one's included), how many distinct ports lie strictly between
 * d's own (its fresh ones: a room's host's socket 0 is old), are not d's, and
 * arrived within a second of them: allocations of that NAT between ours that
 * the server accounts for. */
unsigned n4_discovery_known_between(const struct n4_discovery *d, uint32_t ip,
				    const struct n4_seen_map *seen, unsigned n);

#endif

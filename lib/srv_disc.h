/* srv_disc.h - the server's NAT discovery leaf (N4_EXT_PROBE, N4_EXT_SEQ): one
 * client's discovery state from READY to close, its probes recorded, the wait for
 * its last probe, the plans for a pair and the TUNE/PLAN messages that carry them.
 * discover.c measures, predict.c plans.  Layer: leaf (see server_int.h "Leaves"):
 * never sends, closes or calls the protocol; the one timer it arms calls back the
 * function the protocol hands it.  May call: discover.c, predict.c, wire.c, loop.c
 * (its own timer). */
#ifndef N4_SRV_DISC_H
#define N4_SRV_DISC_H

#include <stdbool.h>
#include <stdint.h>

#include "discover.h"
#include "loop.h"
#include "wire.h"

/* Allocated only for paired clients that asked for discovery, so that waiting
 * clients stay small. */
struct n4_srv_disc {
	struct n4_discovery d;
	struct n4_timer timer; /* the wait for the last probe */
};

/* NULL when memory is short (the client then plans without discovery). */
struct n4_srv_disc *n4_srv_disc_new(bool ordered);
/* NULL is fine. */
void n4_srv_disc_free(n4_loop *loop, struct n4_srv_disc *ds);
/* Other clients behind this one's public IP opened `allocs` NAT ports since its
 * last observation (before n4_srv_disc_plan). */
void n4_srv_disc_extra(struct n4_srv_disc *ds, unsigned allocs);
/* When its last observation arrived (0 without discovery), and the NAT ports its
 * plan opens. */
uint64_t n4_srv_disc_last_ms(const struct n4_srv_disc *ds);
unsigned n4_srv_disc_allocs(const struct n4_srv_disc *ds);
/* This side is a room's host answering a joiner: planned with n4_plan_host. */
void n4_srv_disc_room_host(struct n4_srv_disc *ds);
/* The mappings the server saw its clients show (seen[0..n), any IP): those behind
 * ip between this one's probes are no background traffic (before n4_srv_disc_plan). */
void n4_srv_disc_known(struct n4_srv_disc *ds, uint32_t ip, const struct n4_seen_map *seen,
		       unsigned n);
/* A room's host: the joiner NAT's ports its socket walked lately (at most
 * N4_WALKED_MAX are kept), for its plan to skip (n4_plan_host_avoid). */
void n4_srv_disc_walked(struct n4_srv_disc *ds, const struct n4_port_span *spans, unsigned n);
/* The peer NAT ports this side's plan walks (N4_PLAN_WALK): true and *span set;
 * false for any other plan. */
bool n4_srv_disc_walk_span(const struct n4_srv_disc *ds, struct n4_port_span *span);
/* Joiner ports the last plan's walk skipped past (0: none). */
unsigned n4_srv_disc_walk_skipped(const struct n4_srv_disc *ds);
bool n4_srv_disc_ordered(const struct n4_srv_disc *ds);
/* A probe from source port port (second: to the discovery port), at rx_ms. */
void n4_srv_disc_probe(struct n4_srv_disc *ds, uint16_t port, bool second, bool last,
		       uint64_t rx_ms);
/* A numbered probe (N4_EXT_SEQ), with its place in the client's send schedule. */
void n4_srv_disc_seq_probe(struct n4_srv_disc *ds, uint16_t port, bool second,
			   const struct n4_seq_probe *p, uint64_t rx_ms);
/* The pool's EXCHANGE arrived at exch_ms: record it, and wait for the last probes
 * until expired(loop, timer) is called with arg (then call n4_srv_disc_expire). */
void n4_srv_disc_exchange(n4_loop *loop, struct n4_srv_disc *ds, uint16_t port, uint64_t exch_ms,
			  uint64_t rx_ms, n4_timer_cb expired, void *arg);
/* The wait for the last probe ran out: plan with what there is. */
void n4_srv_disc_expire(struct n4_srv_disc *ds);
/* All probes in (or the wait ran out); true without discovery (ds NULL). */
bool n4_srv_disc_complete(const struct n4_srv_disc *ds);
/* Plans for both sides (nothing unless both have discovery), timed to when their
 * sweeps will start: PEERINFO sent at now + delay[i], rtt_*: each side's round trip. */
void n4_srv_disc_plan(struct n4_srv_disc *a, struct n4_srv_disc *b, uint64_t now,
		      const uint64_t delay[2], uint64_t rtt_a, uint64_t rtt_b, unsigned budget);
/* The plan's kind (enum n4_plan_kind); N4_PLAN_NONE without discovery. */
unsigned n4_srv_disc_plan_kind(const struct n4_srv_disc *ds);
/* The messages before PEERINFO: PLAN alone, or (ordered) TUNE then PLAN, the tune
 * capped at max_pps.  Returns how many it wrote to out (0 without discovery). */
unsigned n4_srv_disc_plan_msgs(struct n4_srv_disc *ds, uint16_t max_pps, struct n4_msg out[2]);

/* A fast flow (fast.h) of two kept connections whose discovery planned their
 * first path: each side's messages before PEERINFO (TUNE for ordered clients,
 * then PLAN) in out[i] (*n[i] of them), planned from the kept models rebased on
 * the flow's probes, and the NAT ports each plan opens (allocs).  dt[i]: ms from
 * probe i to the moment that side's sweep opens its mappings.  false: no plan
 * from what is kept (the flow rendezvous as usual). */
bool n4_srv_disc_plan_flow(const struct n4_srv_disc *a, const struct n4_srv_disc *b,
			   const struct n4_flow_probe probe[2], const double dt[2], unsigned budget,
			   uint16_t max_pps, struct n4_msg out[2][2], unsigned n[2],
			   unsigned allocs[2]);

#endif

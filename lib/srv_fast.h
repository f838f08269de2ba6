/* srv_fast.h - the server's fast-flow leaf (fast.h, doc/PROTOCOL.md "Fast
 * flows"): the requests under way on kept connections, found by their probe's
 * token and paired on their flow's identifier.  Layer: leaf (see server_int.h
 * "Leaves"): never sends, closes or calls the protocol; its timers call back the
 * function the protocol hands it.  May call: fast.c, loop.c (its timers). */
#ifndef N4_SRV_FAST_H
#define N4_SRV_FAST_H

#include <stdbool.h>
#include <stdint.h>

#include "fast.h"
#include "loop.h"
#include "wire.h"

/* Requests under way on one kept connection (a call opens a few flows at once),
 * and in the whole server: beyond, NO (N4_FAST_NO_LIMIT). */
#define N4_SRV_FAST_PER_CONN 4
#define N4_SRV_FAST_MAX 1024
/* A request waits this long for its partner's request and both probes, then
 * both sides are told NO and rendezvous as before: less than the client's own
 * wait (N4_FAST_WAIT_MS), so that the NO is what it hears. */
#define N4_SRV_FAST_WAIT_MS 2000
/* An answer: head, TUNE, PLAN, 4 SELF, PEERINFO. */
#define N4_SRV_FAST_ANSWER_MAX 9

struct n4_srv_fast_req {
	struct n4_fast_req r;
	void *owner; /* the kept connection */
	struct n4_srv_fast_req *partner;
	struct n4_timer timer; /* the wait, then the answer's send delay */
	uint64_t created_ms, probe_ms;
	uint64_t probe_seq; /* arrival order among all probes */
	uint16_t probe_port;
	uint32_t probe_ip; /* network order */
	unsigned live_at;  /* its index in the server's list */
	bool used, probed, planned;
	struct n4_msg answer[N4_SRV_FAST_ANSWER_MAX];
	unsigned nanswer;
};

/* One kept connection's, allocated with its first request. */
struct n4_srv_fast {
	struct n4_fast_rx rx;
	struct n4_srv_fast_req req[N4_SRV_FAST_PER_CONN];
};

/* A probe may overtake its request (UDP against TCP): the last ones that found
 * no request wait here this long for it. */
#define N4_SRV_FAST_ORPHANS 64
#define N4_SRV_FAST_ORPHAN_MS 1000

struct n4_srv_fast_orphan {
	uint8_t token[N4_PAYLOAD_SIZE];
	uint32_t ip;
	uint16_t port;
	uint64_t ms; /* 0: free */
	uint64_t seq;
};

/* Every request under way, for the probes' lookup by token. */
struct n4_srv_fast_list {
	struct n4_srv_fast_req *live[N4_SRV_FAST_MAX];
	unsigned n;
	struct n4_srv_fast_orphan orphan[N4_SRV_FAST_ORPHANS];
	unsigned orphan_next;
	uint64_t probe_seq; /* probes seen */
};

/* A free request of f for tag (NULL: none free, or tag already under way there,
 * or the server's list is full); it is put on the list, zeroed but for owner. */
struct n4_srv_fast_req *n4_srv_fast_add(struct n4_srv_fast_list *l, struct n4_srv_fast *f,
					uint8_t tag, void *owner);
/* Off the list, its timer cancelled, unpaired (its partner keeps waiting). */
void n4_srv_fast_drop(n4_loop *loop, struct n4_srv_fast_list *l, struct n4_srv_fast_req *q);
/* Every request of f (a connection that closes). */
void n4_srv_fast_drop_all(n4_loop *loop, struct n4_srv_fast_list *l, struct n4_srv_fast *f);
/* The request under way with this probe token (NULL: none). */
struct n4_srv_fast_req *n4_srv_fast_by_token(const struct n4_srv_fast_list *l,
					     const uint8_t token[N4_PAYLOAD_SIZE]);
/* A request of f for the same flow as q that has no partner yet (NULL: none). */
struct n4_srv_fast_req *n4_srv_fast_match(struct n4_srv_fast *f, const struct n4_srv_fast_req *q);
/* A request under way for this flow identifier, any connection (NULL: none). */
struct n4_srv_fast_req *n4_srv_fast_by_ident(const struct n4_srv_fast_list *l,
					     const uint8_t ident[N4_PAYLOAD_SIZE]);

/* A probe that found no request: kept for N4_SRV_FAST_ORPHAN_MS. */
void n4_srv_fast_orphan_add(struct n4_srv_fast_list *l, const uint8_t token[N4_PAYLOAD_SIZE],
			    uint32_t ip, uint16_t port, uint64_t now_ms, uint64_t seq);
/* The orphan probe with q's token from q's public IP, taken off the list (false:
 * none).  Sets q's probe. */
bool n4_srv_fast_orphan_take(struct n4_srv_fast_list *l, struct n4_srv_fast_req *q,
			     uint64_t now_ms);
/* Probes behind ip that arrived after q's (other requests under way): NAT ports
 * allocated after q's probe and before its sweep. */
unsigned n4_srv_fast_later_probes(const struct n4_srv_fast_list *l,
				  const struct n4_srv_fast_req *q);

#endif

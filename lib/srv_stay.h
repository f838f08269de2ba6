/* srv_stay.h - the server's STAY leaf (N4_EXT_STAY): connections kept after
 * PEERINFO (or registered with a STAY message) so that their client can be told
 * REPUNCH when a client with the same identifier says HELLO again, and so that the
 * two sides of a pair can pass each other FLOW notices (a further flow to punch).
 * All of the server's STAY/REPUNCH/FLOW state and wire is here; the client's end
 * is stay.c.  Layer: leaf (see server_int.h "Leaves"): never sends, closes or calls
 * the protocol.  May call: wire.c, ipcap.c's keyed hash. */
#ifndef N4_SRV_STAY_H
#define N4_SRV_STAY_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

/* How long a connection is kept after PEERINFO for a REPUNCH notice.  Sessions
 * last hours; the client opens a new one with every rendezvous. */
#define N4_STAY_MAX_MS (6u * 3600u * 1000u)

/* Kept connections by identifier: every HELLO and every FLOW looks one up, so
 * the table is keyed with a secret (chosen identifiers cannot make one chain
 * long) instead of being a list scanned whole. */
#define N4_STAY_BUCKETS 1024u

/* FLOWs one kept connection may send: a program opens a few flows to its peer
 * (a call's audio and video, a game's voice channel), not dozens a second.
 * Beyond the rate they are dropped, so that a client cannot make the server
 * write to its peer at the speed of its own uplink. */
#define N4_STAY_FLOW_RATE 10  /* a second ... */
#define N4_STAY_FLOW_BURST 20 /* ... with bursts of this many */

/* One kept connection's place in the table, inside the connection. */
struct n4_srv_stay {
	struct n4_srv_stay *prev, *next; /* in its bucket */
	const uint8_t *ident;		 /* its identifier (wire form), owned by the connection */
	void *owner;			 /* the connection */
	uint64_t flow_tat_ms;		 /* FLOW rate (GCRA): when its bucket is full again */
	unsigned bucket;
	bool on; /* in the table */
};

struct n4_srv_stay_list {
	struct n4_srv_stay *bucket[N4_STAY_BUCKETS];
	uint64_t hash_key[2];
};

/* An empty table with a fresh secret. */
void n4_srv_stay_init(struct n4_srv_stay_list *l);
/* Keep node (for ident, owned by owner); it must not be in the table. */
void n4_srv_stay_add(struct n4_srv_stay_list *l, struct n4_srv_stay *node, const uint8_t *ident,
		     void *owner);
/* Nothing when node is not in the table. */
void n4_srv_stay_remove(struct n4_srv_stay_list *l, struct n4_srv_stay *node);
/* The kept connections for ident: the first (NULL: none), then the one after node.
 * A HELLO for an identifier whose earlier pair kept connections means the peer of
 * that pair came back (restarted program, or a recovery): each gets one REPUNCH. */
struct n4_srv_stay *n4_srv_stay_first(const struct n4_srv_stay_list *l, const uint8_t *ident);
struct n4_srv_stay *n4_srv_stay_next(const struct n4_srv_stay *node);
/* A STAY message (N4_MSG_SIZE bytes, a connection's first): 0 and the
 * identifier (wire form in ident, text in text), or -EINVAL when it is malformed
 * or (only_ident: wire form, or NULL) not the one this server serves. */
int n4_srv_stay_decode(const uint8_t *msg, const uint8_t *only_ident, uint8_t *ident,
		       char text[N4_PAYLOAD_SIZE + 1]);
/* The REPUNCH notice for ident. */
void n4_srv_stay_repunch(const uint8_t *ident, struct n4_msg *m);
/* A message on a kept connection (N4_MSG_SIZE bytes): 0 for a FLOW (reserved
 * byte 0, no port 0), with what to forward in fwd (the same bytes, reserved byte
 * N4_FLOW_FORWARDED) and its fields in f; -EINVAL for anything else. */
int n4_srv_stay_flow(const uint8_t *msg, struct n4_msg *fwd, struct n4_flow_note *f);
/* Whether node may send one more FLOW now (and it is counted); false: over the
 * rate, drop it. */
bool n4_srv_stay_flow_admit(struct n4_srv_stay *node, uint64_t now_ms);

#endif

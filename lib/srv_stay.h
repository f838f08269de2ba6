/* srv_stay.h - the server's STAY leaf (N4_EXT_STAY): connections kept after
 * PEERINFO (or registered with a STAY message) so that their client can be told
 * REPUNCH when a client with the same identifier says HELLO again.  All of the
 * server's STAY/REPUNCH state and wire is here; the client's end is stay.c.
 * Layer: leaf (see server_int.h "Leaves"): never sends, closes or calls the
 * protocol.  May call: wire.c. */
#ifndef N4_SRV_STAY_H
#define N4_SRV_STAY_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

/* How long a connection is kept after PEERINFO for a REPUNCH notice.  Sessions
 * last hours; the client opens a new one with every rendezvous. */
#define N4_STAY_MAX_MS (6u * 3600u * 1000u)

/* One kept connection's place in the list, inside the connection. */
struct n4_srv_stay {
	struct n4_srv_stay *prev, *next;
	const uint8_t *ident; /* its identifier (wire form), owned by the connection */
	void *owner;	      /* the connection */
	bool on;	      /* in the list */
};

struct n4_srv_stay_list {
	struct n4_srv_stay *head;
};

/* Keep node (for ident, owned by owner); it must not be in the list. */
void n4_srv_stay_add(struct n4_srv_stay_list *l, struct n4_srv_stay *node, const uint8_t *ident,
		     void *owner);
/* Nothing when node is not in the list. */
void n4_srv_stay_remove(struct n4_srv_stay_list *l, struct n4_srv_stay *node);
/* The first kept connection for ident from node on (NULL: none).  A HELLO for
 * an identifier whose earlier pair kept connections means the peer of that pair
 * came back (restarted program, or a recovery): each gets one REPUNCH.  Linear
 * in kept connections. */
struct n4_srv_stay *n4_srv_stay_find(struct n4_srv_stay *from, const uint8_t *ident);
/* A STAY message (N4_MSG_SIZE bytes, a connection's first): 0 and the
 * identifier (wire form in ident, text in text), or -EINVAL when it is malformed
 * or (only_ident: wire form, or NULL) not the one this server serves. */
int n4_srv_stay_decode(const uint8_t *msg, const uint8_t *only_ident, uint8_t *ident,
		       char text[N4_PAYLOAD_SIZE + 1]);
/* The REPUNCH notice for ident. */
void n4_srv_stay_repunch(const uint8_t *ident, struct n4_msg *m);

#endif

/* srv_lan.h - the server's same-LAN leaf (N4_EXT_LOCAL): the local addresses a
 * client announces after READY (LOCAL), and those of its partner it gets before
 * PEERINFO (PEERLOCAL) when both share a public IP.  Layer: leaf (see
 * server_int.h "Leaves"): own state, decode of its messages, messages to send as
 * return values; never sends, closes or calls the protocol.  May call: wire.c. */
#ifndef N4_SRV_LAN_H
#define N4_SRV_LAN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

/* Allocated only for paired clients that negotiated N4_EXT_LOCAL. */
struct n4_srv_lan {
	struct sockaddr_in own[N4_LOCAL_MAX], peer[N4_LOCAL_MAX];
	uint8_t nown, npeer, nmsgs;
	bool done; /* the client's last LOCAL arrived */
};

/* NULL when memory is short (the client then gets the public path only). */
struct n4_srv_lan *n4_srv_lan_new(void);
void n4_srv_lan_free(struct n4_srv_lan *l);
/* Still waiting for the client's last LOCAL. */
bool n4_srv_lan_pending(const struct n4_srv_lan *l);
/* One LOCAL message (N4_MSG_SIZE bytes): -EPROTO when malformed (or the last of
 * N4_LOCAL_MAX is not flagged last), 1 when it was the last, else 0.  *added:
 * the address it announced, sin_family 0 when none. */
int n4_srv_lan_local(struct n4_srv_lan *l, const uint8_t *msg, struct sockaddr_in *added);
/* Offer from's addresses to to (the caller checked both share a public IP); an
 * address to announced itself is left out (two LANs numbered alike behind one
 * carrier NAT: a PUNCH there would come back to its sender). */
void n4_srv_lan_share(struct n4_srv_lan *to, const struct n4_srv_lan *from);
/* Addresses of the partner to pass on in PEERLOCALs (0 when l is NULL). */
unsigned n4_srv_lan_npeer(const struct n4_srv_lan *l);
/* The i-th PEERLOCAL message (i < n4_srv_lan_npeer). */
void n4_srv_lan_peerlocal(const struct n4_srv_lan *l, unsigned i, struct n4_msg *m);

#endif

/* punch6.h - the direct IPv6 path (doc/PROTOCOL.md "IPv6"): one socket per side,
 * bound to its candidate, PUNCHes (keyed: APUNCHes) to the partner's candidate
 * from the sweep's first moment, run beside the IPv4 plan by n4_sweep_run.
 * Between two stateful firewalls the first datagram of each side opens its own
 * firewall for the other's: a simultaneous open, with no prediction. */
#ifndef N4_PUNCH6_H
#define N4_PUNCH6_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "wait.h"
#include "wire.h"

/* A WIN over IPv4 waits this long for one over IPv6, which then takes the path
 * (Happy Eyeballs, RFC 8305, prefers IPv6 by 50 ms too).  Only an ACK wins over
 * IPv6, and a side answers every PUNCH it receives with one until its window is
 * over (no_ack); then its last ACK gets this long again to be answered.  Both sides
 * agree as long as it covers a round trip between them. */
#define N4_V6_WINDOW_MS 50

struct n4_punch6 {
	/* in */
	int fd;			  /* bound to our candidate; the caller owns it */
	struct sockaddr_in6 peer; /* the partner's candidate */
	bool any_ip;		  /* -x: accept from any address */
	uint8_t ident[N4_PAYLOAD_SIZE];
	struct n4_auth *auth; /* keyed: APUNCH, WIN only on an authenticated one */
	bool no_ack;	      /* answer PUNCHes without ACK: we may take IPv4 (n4_sweep_run) */
	/* out */
	bool won, got_ack;
	bool heard;	   /* a datagram of the peer's arrived (even one that did not win) */
	bool dead;	   /* sending failed for good (no route): take IPv4 without a wait */
	uint64_t acked_ms; /* when we last sent an ACK (0: never): the peer may win on it */
	unsigned sent;
	struct sockaddr_in6 from;
	/* internal */
	uint64_t start_ms, next_ms;
	unsigned passes;
};

/* Start: the first PUNCH now.  Returns when the next is due. */
uint64_t n4_punch6_start(struct n4_punch6 *p);
/* Send what is due; returns when the next is. */
uint64_t n4_punch6_due(struct n4_punch6 *p);
/* One PUNCH now (flags: N4_PUNCH_ACK or 0). */
void n4_punch6_send(struct n4_punch6 *p, uint8_t flags);
/* The socket is readable: 1 on a WIN (p->from), else 0.  A WIN is an ACK of the
 * peer's (a PUNCH, keyed an APUNCH echoing our nonce, with N4_PUNCH_ACK): proof
 * that our PUNCHes reach it, which hearing it alone is not. */
int n4_punch6_read(struct n4_punch6 *p);

/* After an IPv6 WIN: acknowledged PUNCHes (keyed: APUNCHes) to peer until the peer
 * acknowledges or confirm_ms pass, the peer's late ones swallowed.  1 acknowledged,
 * 0 not, <0 -errno. */
int n4_confirm6(int fd, const struct sockaddr_in6 *peer, const uint8_t ident[N4_PAYLOAD_SIZE],
		struct n4_auth *auth, bool already_acked, unsigned confirm_ms,
		const struct n4_waitctx *ctx);

#endif

/* punch.h - the pool of local sockets, the sweep that punches from them, and the
 * confirmation after a WIN. */
#ifndef N4_PUNCH_H
#define N4_PUNCH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "predict.h"
#include "punch6.h"
#include "wait.h"
#include "wire.h"

struct n4_pool {
	int *fds;
	unsigned n;
	uint16_t first_port; /* 0: kernel-chosen ports */
	/* Socket 0 is the caller's (a room's host punches from the program's own
	 * port): the pool never closes it and never grows past it. */
	bool borrowed;
};

/* Grow or shrink the pool to n sockets (new ones follow the old ports). */
int n4_pool_resize(struct n4_pool *pool, unsigned n);
/* Open n UDP sockets bound to first_port.. first_port+n-1 (SO_REUSEADDR and
 * SO_REUSEPORT, as the original) or to kernel-chosen ports when first_port is 0. */
int n4_pool_open(struct n4_pool *pool, uint16_t first_port, unsigned n);
/* A pool of one socket the caller owns (borrowed). */
int n4_pool_borrow(struct n4_pool *pool, int fd);
/* Close every socket except index keep (-1: all); never a borrowed one. */
void n4_pool_close(struct n4_pool *pool, int keep);
uint16_t n4_pool_local_port(const struct n4_pool *pool, unsigned i);

/* Gentle sweeps: pps PUNCH datagrams a second in bursts of at most pps (a token bucket
 * of pps tokens; 0 = unpaced).  Lives across rounds, so rounds cannot add up. */
struct n4_pacer {
	unsigned pps;
	double tokens;
	uint64_t last_ms;
};
void n4_pacer_init(struct n4_pacer *p, unsigned pps);

struct n4_sweep {
	/* in */
	const struct n4_pool *pool;
	struct sockaddr_in target;	   /* where every pool socket punches */
	struct in_addr peer_ip;		   /* accept PUNCH only from here ... */
	const struct sockaddr_in *exclude; /* ... never from these (a room's other peers) */
	unsigned nexclude;
	bool any_ip; /* ... unless this is set (-x) */
	uint8_t ident[N4_PAYLOAD_SIZE];
	bool classic;		      /* five passes at once, then only listen */
	int low_ttl;		      /* >0: pre-open with this TTL first */
	unsigned guard_ms;	      /* after pre-opening, before full-TTL PUNCH */
	struct n4_plan plan;	      /* from the server; N4_PLAN_NONE: all -> target */
	struct n4_pacer *pacer;	      /* NULL: unpaced */
	struct n4_auth *auth;	      /* keyed: send APUNCH, WIN only on an authenticated one */
	uint8_t amsg[N4_APUNCH_SIZE]; /* our current APUNCH */
	/* Same LAN: the partner's local addresses (PEERLOCAL).  Pool socket 0,
	 * whose port we announced, punches each of them directly: alone for
	 * N4_LAN_FIRST_MS, then alongside the plan (N4_PLAN_IMPOSSIBLE: alone). */
	struct sockaddr_in lan[N4_LOCAL_MAX];
	unsigned nlan;
	/* The direct IPv6 path, run beside the plan from the first moment (NULL:
	 * none).  A WIN over IPv4 then waits N4_V6_WINDOW_MS for one over IPv6. */
	struct n4_punch6 *v6;
	/* out */
	bool v6_won;		 /* the WIN is v6's (v6->from); winner and from are not set */
	unsigned winner;	 /* pool index that received the peer's PUNCH */
	struct sockaddr_in from; /* where it came from: the peer's real address */
	bool got_ack;		 /* it was an acknowledged PUNCH */
	bool via_lan;		 /* it came from one of the partner's local addresses */
	unsigned sent;		 /* PUNCH datagrams sent */
	/* internal: the pass in progress (paced passes may span several wakeups) */
	unsigned pass_pos, pass_len;
};

/* Head start of the LAN path: a few LAN round trips (Wi-Fi power saving
 * included), so that where it exists it wins before the public plan spends
 * NAT ports, and where it does not the public plan is barely delayed. */
#define N4_LAN_FIRST_MS 100

/* Punch until a valid PUNCH arrives (returns 1), deadline (0) or error (<0). */
int n4_sweep_run(struct n4_sweep *sw, uint64_t deadline_ms, const struct n4_waitctx *ctx);

enum n4_confirm_mode {
	N4_CONFIRM_CLASSIC, /* the original: ten plain PUNCHes 0.2 s apart */
	N4_CONFIRM_PLAIN,   /* original peer: plain PUNCHes until confirm_ms */
	N4_CONFIRM_ACK,	    /* our peer: acknowledged PUNCHes until it acknowledges */
	N4_CONFIRM_UNKNOWN, /* original server, peer unknown: both kinds */
};

/* Make sure the peer got our PUNCH; swallow its late PUNCHes meanwhile.
 * already_acked: the winning PUNCH was itself an acknowledgement.  An
 * acknowledgement from the peer's IP but another port means the peer settled
 * on another of its sockets (a RANGE walk whose first PUNCH was lost): *peer
 * takes that port. */
/* Whether from is one of the n addresses in ex. */
bool n4_addr_excluded(const struct sockaddr_in *from, const struct sockaddr_in *ex, unsigned n);
int n4_confirm(int fd, struct sockaddr_in *peer, const uint8_t ident[N4_PAYLOAD_SIZE],
	       enum n4_confirm_mode mode, bool already_acked, unsigned confirm_ms,
	       const struct n4_waitctx *ctx);

/* n4_confirm for keyed peers: authenticated acknowledgements (auth.h). */
int n4_confirm_auth(int fd, struct sockaddr_in *peer, struct n4_auth *auth, unsigned confirm_ms,
		    const struct n4_waitctx *ctx);

#endif

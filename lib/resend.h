/* resend.h - the one resend-until-answered loop of the blocking client side:
 * send a datagram, wait for an answer on the same socket until the next copy
 * is due, send again, until answered or a deadline.  Relay authentication,
 * the confirmations after a WIN and relay registration are this loop. */
#ifndef N4_RESEND_H
#define N4_RESEND_H

#include <stdbool.h>
#include <stdint.h>

#include "wait.h"

struct n4_resend {
	int fd;		      /* waited on for answers */
	unsigned interval_ms; /* between copies */
	uint64_t deadline_ms; /* monotonic (n4_now_ms) */
	/* A copy due at the deadline still goes out (and the first one even
	 * past it): a confirmation owes the peer at least one answer.  Else
	 * nothing is sent once the deadline has passed. */
	bool send_at_deadline;
	const struct n4_waitctx *ctx;
	/* One copy: <0 fatal, 0 go on, >0 that was the last (returned). */
	int (*send)(void *arg);
	/* fd is readable: <0 fatal, 0 go on, >0 answered (returned).  May set
	 * *next_send_ms to send sooner (0: at once). */
	int (*readable)(void *arg, uint64_t *next_send_ms);
	void *arg;
};

/* Run the loop: the callbacks' first non-zero result, 0 at the deadline, or
 * n4_wait's -EINTR / -ECANCELED. */
int n4_resend_until(const struct n4_resend *r);

#endif

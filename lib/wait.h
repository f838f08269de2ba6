/* wait.h - bounded, cancellable waits for the blocking client side. */
#ifndef N4_WAIT_H
#define N4_WAIT_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct n4_waitctx {
	volatile sig_atomic_t *cancel; /* non-zero: abort with -ECANCELED */
	bool return_on_eintr;	       /* a signal aborts with -EINTR */
};

/* poll() until one of fds is ready or deadline_ms (monotonic, n4_now_ms) passes.
 * Returns the number of ready fds, 0 at the deadline, -EINTR, -ECANCELED. */
int n4_wait(struct pollfd *fds, unsigned nfds, uint64_t deadline_ms, const struct n4_waitctx *ctx);

#endif

/* resend.c - resend until answered (see resend.h).  Written once so that every
 * exchange over UDP gets the same deadline and cancellation behaviour. */
#include "resend.h"

#include <poll.h>

#include "loop.h"

int n4_resend_until(const struct n4_resend *r)
{
	uint64_t next_send = 0;

	for (;;) {
		uint64_t now = n4_now_ms();
		if (now >= r->deadline_ms && !r->send_at_deadline)
			return 0;
		if (now >= next_send) {
			int rc = r->send(r->arg);
			if (rc)
				return rc;
			next_send = now + r->interval_ms;
		}
		if (now >= r->deadline_ms)
			return 0;
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		int n = n4_wait(&p, 1, next_send < r->deadline_ms ? next_send : r->deadline_ms,
				r->ctx);
		if (n < 0)
			return n;
		if (n == 0)
			continue;
		int rc = r->readable(r->arg, &next_send);
		if (rc)
			return rc;
	}
}

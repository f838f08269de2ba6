/* rand.c - random bytes from the kernel.  Keys, nonces, tokens and seeds all
 * come from here, so the getrandom loop (short reads above 256 bytes, EINTR
 * while blocked on an uninitialised pool) is written once. */
#include "rand.h"

#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

static int fill(void *buf, size_t len, unsigned flags)
{
	uint8_t *p = buf;
	size_t have = 0;

	while (have < len) {
		ssize_t n = getrandom(p + have, len - have, flags);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		have += (size_t)n;
	}
	return 0;
}

int n4_random_bytes(void *buf, size_t len)
{
	return fill(buf, len, 0);
}

int n4_random_bytes_nowait(void *buf, size_t len)
{
	return fill(buf, len, GRND_NONBLOCK);
}

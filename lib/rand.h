/* rand.h - random bytes from the kernel, the one place libn4 calls getrandom. */
#ifndef N4_RAND_H
#define N4_RAND_H

#include <stddef.h>

/* Fill buf with len bytes from getrandom(2), looping over short reads and
 * EINTR.  0, or -errno (-EIO if the kernel returns 0 bytes). */
int n4_random_bytes(void *buf, size_t len);

/* The same without blocking (GRND_NONBLOCK): -EAGAIN while the kernel's pool
 * is not yet initialised.  For seeds that have a fallback of their own. */
int n4_random_bytes_nowait(void *buf, size_t len);

#endif

/* fuzz_room.c - libFuzzer target for lib/room.c: whatever a server (or a stranger
 * on the path of the room connection) sends, n4_room_poll never reads out of
 * bounds, returns a join only for a JOIN followed by a JOIN_PEER (the ticket of
 * the last JOIN, the peer id of the JOIN_PEER), and otherwise 0 or -errno. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "n4.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	struct n4_room_rx rx;
	struct n4_join j;

	if (size > 4096 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return 0;
	memset(&rx, 0, sizeof(rx));
	size_t done = 0;
	/* The first byte says how the bytes are cut into writes (1..8 bytes each). */
	unsigned cut = size ? (data[0] & 7u) + 1 : 1;
	int rc = 0;
	while (done < size && rc >= 0) {
		size_t n = size - done < cut ? size - done : cut;
		if (write(sv[1], data + done, n) != (ssize_t)n)
			abort();
		done += n;
		while ((rc = n4_room_poll(sv[0], &rx, &j)) == 1) {
			/* A join: the last 16 bytes whole messages ended with JOIN_PEER. */
			if (done < 16)
				abort();
		}
		if (rc < 0 && rc != -EPROTO && rc != -EACCES)
			abort();
		if (rx.n > sizeof(rx.buf))
			abort();
	}
	close(sv[1]);
	if (rc >= 0 && n4_room_poll(sv[0], &rx, &j) == 0)
		abort(); /* a closed connection is never "nothing yet" */
	close(sv[0]);
	return 0;
}

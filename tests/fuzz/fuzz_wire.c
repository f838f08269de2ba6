/* fuzz_wire.c - libFuzzer target for lib/wire.c's decoders: whatever bytes arrive,
 * decoding never reads out of bounds, and what decodes re-encodes to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct n4_msg m;
	uint8_t out[N4_MSG_SIZE];

	for (uint8_t expect = 0; expect <= N4_CMD_MAX + 1; expect++) {
		if (n4_wire_decode(data, size, expect, &m) != 0)
			continue;
		if (size != N4_MSG_SIZE || (expect && m.cmd != expect))
			abort();
		n4_wire_encode(&m, out);
		if (memcmp(out, data, N4_MSG_SIZE) != 0)
			abort();
	}
	if (size >= N4_PAYLOAD_SIZE) {
		char ident[N4_PAYLOAD_SIZE + 1];
		if (n4_ident_decode(data, ident) == 0) {
			uint8_t wire[N4_PAYLOAD_SIZE];
			if (n4_ident_check(ident) || n4_ident_encode(ident, wire) ||
			    memcmp(wire, data, N4_PAYLOAD_SIZE) != 0)
				abort();
		}
		struct sockaddr_in a;
		if (n4_peerinfo_decode(data, &a) == 0) {
			uint8_t p[N4_PAYLOAD_SIZE];
			n4_peerinfo_encode(&a, p);
			if (memcmp(p, data, N4_PAYLOAD_SIZE) != 0 || a.sin_port == 0)
				abort();
		}
	}
	return 0;
}

/* fuzz_wire.c - libFuzzer target for lib/wire.c's decoders: whatever bytes arrive,
 * decoding never reads out of bounds, and what decodes re-encodes to the same bytes. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "n4.h"
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
	/* LOCAL / PEERLOCAL: an address decodes only when another host could use
	 * it, and re-encodes to the same bytes; "none" only as the last. */
	if (n4_wire_decode(data, size, 0, &m) == 0) {
		struct sockaddr_in la;
		int r = n4_local_decode(&m, &la);
		if (r > 0) {
			uint32_t h = ntohl(la.sin_addr.s_addr);
			struct n4_msg back;
			n4_local_encode(m.cmd, &la, m.ext & N4_LOCAL_LAST, &back);
			if (memcmp(&back, &m, sizeof(m)) != 0 || la.sin_port == 0 ||
			    h >> 24 == 127 || h >> 24 == 0 || h >> 28 == 0xe || h == 0xffffffffu)
				abort();
		} else if (r == 0) {
			static const uint8_t zero[N4_PAYLOAD_SIZE];
			if (m.ext != N4_LOCAL_LAST || memcmp(m.payload, zero, sizeof(zero)) != 0)
				abort();
		} else if (r == -EPROTO && (m.cmd == N4_CMD_LOCAL || m.cmd == N4_CMD_PEERLOCAL)) {
			abort();
		}
	}
	/* FLOW, in the client's form (0) and the server's (0x01): no port 0, and
	 * what decodes encodes back to the same bytes. */
	for (uint8_t ext = 0; ext <= N4_FLOW_FORWARDED; ext++) {
		struct n4_flow_note f;
		if (n4_flow_decode(data, size, ext, &f) != 0)
			continue;
		n4_flow_encode(&f, ext, &m);
		n4_wire_encode(&m, out);
		if (size != N4_MSG_SIZE || memcmp(out, data, N4_MSG_SIZE) != 0 || !f.from_port ||
		    !f.to_port)
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

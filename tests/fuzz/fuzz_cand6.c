/* fuzz_cand6.c - libFuzzer target for the IPv6 candidates' decoders (lib/cand6.c):
 * the V6 probe the server reads from anyone over UDP, a sequence of V6 reports a
 * client reads from the server (8-byte messages), a /proc/net/if_inet6 line, and
 * the opening of a sealed candidate: everything stays in bounds, a decoded probe
 * has the right length and kind, an address taken is usable, and nothing without
 * the key opens (a 2^-128 event). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cand6.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[32] = { 1, 2, 3 }, nonce[16] = { 4 };
	struct n4_v6probe p;
	struct sockaddr_in6 a;

	if (n4_v6probe_decode(data, size, &p) == 0 &&
	    (size != N4_V6_PROBE_SIZE || data[0] != N4_CMD_V6 ||
	     (p.kind != N4_V6_PROBE && p.kind != N4_V6_PROBE_SEALED)))
		abort();
	if (size >= N4_V6_SEALED_SIZE && n4_cand6_open(key, nonce, data, &a) == 0)
		abort();
	struct n4_v6rx rx = { 0 };
	for (size_t off = 0; off + N4_MSG_SIZE <= size; off += N4_MSG_SIZE) {
		struct n4_msg m;
		if (n4_wire_decode(data + off, N4_MSG_SIZE, N4_CMD_V6, &m) == 0)
			(void)n4_v6rx_take(&rx, &m);
	}
	if (n4_v6rx_self(&rx, &a) == 0 && (!n4_cand6_usable(&a.sin6_addr, 0) || !a.sin6_port))
		abort();
	if (n4_v6rx_peer(&rx, &a) == 0 && (!n4_cand6_usable(&a.sin6_addr, 0) || !a.sin6_port))
		abort();
	char line[128];
	size_t n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
	memcpy(line, data, n);
	line[n] = '\0';
	struct in6_addr in;
	unsigned flags;
	(void)n4_cand6_parse_line(line, &in, &flags);
	return 0;
}

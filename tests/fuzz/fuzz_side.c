/* fuzz_side.c - libFuzzer target for the SIDE decoder and checker (lib/side.c):
 * whatever arrives on a won socket, decoding stays in bounds, a decoded SIDE has
 * a length that matches its address count, at most N4_SIDE_MAX_ADDRS usable
 * addresses, a non-zero id and port, and encodes back to the same bytes; nothing
 * without the key passes a keyed check (the MAC is 128 bits). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "side.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t rx_key[N4_KEY_SIZE] = { 1, 2, 3 };
	uint8_t ident[N4_PAYLOAD_SIZE], out[N4_SIDE_MAX_SIZE];
	struct n4_side_msg m;
	bool bad;

	if (n4_ident_encode("n4n4n4", ident))
		abort();
	int rc = n4_side_decode(data, size, &m);
	bool is_side = n4_is_side(data, size, "n4n4n4");
	if (rc == 0) {
		size_t body = N4_SIDE_HEAD_SIZE + 4 * (size_t)m.side.naddrs;
		if (m.side.naddrs > N4_SIDE_MAX_ADDRS || data[0] != N4_CMD_SIDE ||
		    (m.flags & ~N4_SIDE_HAVE) || m.side.port == 0 ||
		    size != body + (m.has_mac ? N4_MAC_SIZE : 0))
			abort();
		if (is_side != (memcmp(m.ident, ident, N4_PAYLOAD_SIZE) == 0))
			abort();
		/* The body encodes back byte for byte. */
		if (n4_side_encode(m.flags, m.ident, &m.side, NULL, out) != (int)body ||
		    memcmp(out, data, body) != 0)
			abort();
	} else if (is_side) {
		abort();
	}
	bool unkeyed = n4_side_check(data, size, ident, NULL, &m, &bad);
	if (unkeyed && (rc != 0 || m.has_mac || bad))
		abort();
	if (n4_side_check(data, size, ident, rx_key, &m, &bad))
		abort(); /* forged without the key: a 2^-128 event */
	return 0;
}

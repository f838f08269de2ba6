/* fuzz_apunch.c - libFuzzer target for the authenticated PUNCH decoder and checker
 * (lib/auth.c): whatever arrives on a pool socket, decoding stays in bounds, a
 * decoded message has the right length and command, and nothing without the key
 * passes as authentic (the MAC is 128 bits: a random input never does). */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[N4_KEY_SIZE] = { 1, 2, 3 };
	struct n4_apunch m;
	struct n4_keyed k;
	struct n4_auth a;
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(4000) };
	struct sockaddr_in self = { .sin_family = AF_INET, .sin_port = htons(5000) };

	peer.sin_addr.s_addr = htonl(0x0a000001);
	self.sin_addr.s_addr = htonl(0x0a000002);
	if (n4_apunch_decode(data, size, &m) == 0 &&
	    (size != N4_APUNCH_SIZE || data[0] != N4_CMD_APUNCH || (m.flags & ~N4_PUNCH_ACK)))
		abort();
	if (n4_key_derive(key, "n4n4n4", &k) || n4_auth_round(&a, &k))
		abort();
	n4_auth_bind(&a, &peer, &self, NULL);
	enum n4_auth_verdict v = n4_auth_check(&a, data, size);
	if (v == N4_AUTH_WIN || v == N4_AUTH_NONCE)
		abort(); /* forged without the key: a 2^-128 event */
	return 0;
}

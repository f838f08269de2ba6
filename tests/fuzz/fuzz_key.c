/* fuzz_key.c - libFuzzer target for the key parser (lib/key.c): any bytes, as a key
 * file or N4_KEY could hold, either fail to decode or decode to a key that encodes
 * back to the same base64 text (one canonical form per key). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[N4_KEY_SIZE], again[N4_KEY_SIZE];
	char text[N4_KEY_B64_LEN + 1];

	if (n4_key_decode(data, size, key) != 0)
		return 0;
	n4_key_encode(key, text);
	if (n4_key_decode(text, strlen(text), again) != 0 || memcmp(key, again, sizeof(key)) != 0)
		abort();
	/* The decoded text, stripped of whitespace and padding, is the encoding. */
	size_t s = 0, e = size;
	while (s < e && (data[s] == ' ' || data[s] == '\t' || data[s] == '\n' || data[s] == '\r'))
		s++;
	while (e > s && (data[e - 1] == ' ' || data[e - 1] == '\t' || data[e - 1] == '\n' ||
			 data[e - 1] == '\r'))
		e--;
	if (e - s < N4_KEY_B64_LEN - 1 || memcmp(data + s, text, N4_KEY_B64_LEN - 1) != 0)
		abort();
	struct n4_keyed k;
	if (n4_key_derive(key, "n4n4n4", &k) != 0)
		abort();
	return 0;
}

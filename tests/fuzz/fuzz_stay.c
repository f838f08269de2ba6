/* fuzz_stay.c - libFuzzer target for lib/stay.c: the REPUNCH decoder accepts exactly
 * the 8 bytes 0x0F, any reserved byte, the identifier; nothing else, never out of
 * bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t ident[N4_PAYLOAD_SIZE] = { 'n', '4', 'n', '4', 'n', '4' };

	if (n4_stay_decode(data, size, ident) == 0 &&
	    (size != N4_MSG_SIZE || data[0] != N4_CMD_REPUNCH ||
	     memcmp(data + 2, ident, N4_PAYLOAD_SIZE) != 0))
		abort();
	if (size >= N4_PAYLOAD_SIZE && n4_stay_decode(data, size, data) == 0 && size != N4_MSG_SIZE)
		abort();
	return 0;
}

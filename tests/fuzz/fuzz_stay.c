/* fuzz_stay.c - libFuzzer target for lib/stay.c: the REPUNCH decoder accepts exactly
 * the 8 bytes 0x0F, any reserved byte, the identifier; the FLOW decoder exactly
 * 0x16 0x01 and two ports that are not 0; nothing else, never out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "n4.h"
#include "stay.h"
#include "wire.h"

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
	/* FLOW as the server forwards it: 0x16 0x01, two ports that are not 0, a
	 * nonce; it encodes back to the same bytes. */
	struct n4_flow_note f;
	if (n4_stay_flow_decode(data, size, &f) == 0) {
		struct n4_msg m;
		uint8_t back[N4_MSG_SIZE];
		if (size != N4_MSG_SIZE || data[0] != N4_CMD_FLOW || data[1] != N4_FLOW_FORWARDED ||
		    !f.from_port || !f.to_port)
			abort();
		n4_flow_encode(&f, N4_FLOW_FORWARDED, &m);
		n4_wire_encode(&m, back);
		if (memcmp(back, data, N4_MSG_SIZE) != 0)
			abort();
	} else if (size == N4_MSG_SIZE && data[0] == N4_CMD_FLOW && data[1] == N4_FLOW_FORWARDED &&
		   (data[2] | data[3]) && (data[4] | data[5])) {
		abort();
	}
	return 0;
}

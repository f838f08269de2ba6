/* fuzz_relay_reg.c - libFuzzer target for the relay's registration decoder
 * (lib/relay_reg.c) and for the relay's handling of whatever arrives on its
 * ports (lib/relay.c): the input is a script of datagrams - arbitrary bytes,
 * registrations with the right, the other side's or a damaged token - from a
 * few loopback sources, on either side of one real pair, with sweeps in
 * between.  Forwarded datagrams really leave (to unbound loopback ports).  Every
 * decoded registration must re-encode to the same bytes; everything must be
 * freed at the end (LeakSanitizer). */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "relay.h"
#include "relay_reg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decoder(const uint8_t *data, size_t size)
{
	struct n4_relay_reg r;
	uint8_t again[N4_RELAY_REG_SIZE];

	if (n4_relay_reg_decode(data, size, &r) == 0) {
		if (size != N4_RELAY_REG_SIZE)
			__builtin_trap();
		n4_relay_reg_encode(&r, again);
		if (memcmp(again, data, size) != 0)
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	n4_log_set_level(N4_LOG_QUIET);
	check_decoder(data, size);

	union n4_sa bind = { .v4 = { .sin_family = AF_INET } };
	bind.v4.sin_addr.s_addr = htonl(0x7f000001);
	struct n4_relay_cfg cfg = { .max_pairs = 2, .idle_s = 5, .burst_kb = 4, .rate_kbit = 64 };
	struct n4_relay_side_in in = { .udp_ip = htonl(0x7f000001) };
	struct n4_relay_grant g[2];
	n4_loop *loop = n4_loop_new();
	n4_relay *r = loop ? n4_relay_new(&cfg, loop, &bind) : NULL;
	if (!r || n4_relay_alloc(r, &in, &in, &g[0], &g[1]))
		goto out;
	uint64_t t = n4_now_ms();
	size_t i = 0;
	while (i + 3 <= size) {
		uint8_t op = data[i], sel = data[i + 1], len = data[i + 2];
		i += 3;
		unsigned side = sel & 1;
		union n4_sa from = { .v4 = { .sin_family = AF_INET } };
		from.v4.sin_addr.s_addr = htonl(0x7f000001 + ((sel >> 1) & 1)); /* .1 or .2 */
		from.v4.sin_port = htons((uint16_t)(41000 + ((sel >> 2) & 3)));
		if (sel & 0x40) { /* a v4-mapped source, as on a dual-stack socket */
			struct sockaddr_in v4 = from.v4;
			memset(&from, 0, sizeof(from));
			from.v6.sin6_family = AF_INET6;
			from.v6.sin6_port = v4.sin_port;
			from.v6.sin6_addr.s6_addr[10] = from.v6.sin6_addr.s6_addr[11] = 0xff;
			memcpy(&from.v6.sin6_addr.s6_addr[12], &v4.sin_addr, 4);
		}
		switch (op % 4) {
		case 0: { /* raw bytes */
			size_t n = len <= size - i ? len : size - i;
			n4_relay_test_input(r, side, data + i, n, &from);
			i += n;
			break;
		}
		case 1:
		case 2: { /* a registration: own token, the other side's, or damaged */
			struct n4_relay_reg reg = { .flags = (uint8_t)(len & 3) };
			uint8_t out[N4_RELAY_REG_SIZE];
			unsigned whose = op % 4 == 1 ? side : !side;
			memcpy(reg.token, g[whose].token, N4_RELAY_TOKEN_SIZE);
			if (len & 0x80)
				reg.token[len % N4_RELAY_TOKEN_SIZE] ^= 1;
			n4_relay_reg_encode(&reg, out);
			n4_relay_test_input(r, side, out, sizeof(out), &from);
			break;
		}
		default: /* time passes */
			t += (uint64_t)len * 500;
			n4_relay_sweep(r, t);
			break;
		}
	}
	char st[1024];
	n4_relay_status(r, st, sizeof(st));
out:
	n4_relay_free(r);
	n4_loop_free(loop);
	return 0;
}

/* test_wire.c - the v1 codec: round trips and every rejection path. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "n4.h"
#include "test.h"
#include "wire.h"

TEST(wire_roundtrip_every_command)
{
	for (uint8_t cmd = N4_CMD_HELLO; cmd <= N4_CMD_MAX; cmd++) {
		const uint8_t payload[N4_PAYLOAD_SIZE] = { 1, 2, 3, 4, 5, 6 };
		struct n4_msg m, back;
		uint8_t buf[N4_MSG_SIZE];
		n4_msg_init(&m, cmd, 0x5a, payload);
		n4_wire_encode(&m, buf);
		CHECK_EQ(buf[0], cmd);
		CHECK_EQ(buf[1], 0x5a);
		CHECK(memcmp(buf + 2, payload, 6) == 0);
		CHECK_EQ(n4_wire_decode(buf, sizeof(buf), cmd, &back), 0);
		CHECK(memcmp(&m, &back, sizeof(m)) == 0);
		CHECK_EQ(n4_wire_decode(buf, sizeof(buf), 0, &back), 0);
	}
}

TEST(wire_rejects_wrong_length)
{
	uint8_t buf[16] = { N4_CMD_HELLO };
	struct n4_msg m;

	for (size_t len = 0; len < sizeof(buf); len++) {
		if (len != N4_MSG_SIZE)
			CHECK_EQ(n4_wire_decode(buf, len, 0, &m), -EMSGSIZE);
	}
}

TEST(wire_rejects_unknown_and_unexpected_commands)
{
	uint8_t buf[N4_MSG_SIZE] = { 0 };
	struct n4_msg m;

	for (unsigned cmd = 0; cmd < 256; cmd++) {
		buf[0] = (uint8_t)cmd;
		int want = (cmd >= N4_CMD_HELLO && cmd <= N4_CMD_MAX) || cmd == N4_CMD_PROBE ||
					   cmd == N4_CMD_TUNE || cmd == N4_CMD_AGAIN ||
					   cmd == N4_CMD_ROOM || cmd == N4_CMD_V6
				   ? 0
				   : -EPROTO;
		CHECK_EQ(n4_wire_decode(buf, sizeof(buf), 0, &m), want);
	}
	buf[0] = N4_CMD_READY;
	CHECK_EQ(n4_wire_decode(buf, sizeof(buf), N4_CMD_PEERINFO, &m), -EPROTO);
}

TEST(wire_original_hello_bytes)
{
	/* What the original client sends: 01 00 'n4n4n4'. */
	const uint8_t want[N4_MSG_SIZE] = { 0x01, 0x00, 'n', '4', 'n', '4', 'n', '4' };
	uint8_t ident[N4_PAYLOAD_SIZE], buf[N4_MSG_SIZE];
	struct n4_msg m;

	CHECK_EQ(n4_ident_encode(N4_DEFAULT_IDENT, ident), 0);
	n4_msg_init(&m, N4_CMD_HELLO, 0, ident);
	n4_wire_encode(&m, buf);
	CHECK(memcmp(buf, want, sizeof(want)) == 0);
}

TEST(ident_padding_and_limits)
{
	uint8_t out[N4_PAYLOAD_SIZE];
	char back[N4_PAYLOAD_SIZE + 1];

	CHECK_EQ(n4_ident_encode("ab", out), 0);
	CHECK(memcmp(out, "ab    ", 6) == 0);
	CHECK_EQ(n4_ident_decode(out, back), 0);
	CHECK(strcmp(back, "ab") == 0);
	CHECK_EQ(n4_ident_encode("abcdef", out), 0);
	CHECK_EQ(n4_ident_encode("abcdefg", out), -EINVAL);
	CHECK_EQ(n4_ident_encode("", out), -EINVAL);
	CHECK_EQ(n4_ident_encode("a b", out), -EINVAL);
	CHECK_EQ(n4_ident_encode("caf\xc3\xa9", out), -EINVAL);
	CHECK_EQ(n4_ident_check(NULL), -EINVAL);
}

TEST(ident_decode_rejects_garbage)
{
	char back[N4_PAYLOAD_SIZE + 1];

	CHECK_EQ(n4_ident_decode((const uint8_t *)"      ", back), -EINVAL);
	CHECK_EQ(n4_ident_decode((const uint8_t *)"ab\0\0\0\0", back), -EINVAL);
	CHECK_EQ(n4_ident_decode((const uint8_t *)"a\x7f    ", back), -EINVAL);
	CHECK_EQ(n4_ident_decode((const uint8_t *)" a    ", back), -EINVAL);
}

TEST(peerinfo_roundtrip_and_rejects)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, b;
	uint8_t p[N4_PAYLOAD_SIZE];

	inet_pton(AF_INET, "203.0.113.12", &a.sin_addr);
	a.sin_port = htons(5454);
	n4_peerinfo_encode(&a, p);
	CHECK_EQ(p[0], 203);
	CHECK_EQ(p[3], 12);
	CHECK_EQ(p[4], 5454 >> 8);
	CHECK_EQ(p[5], 5454 & 0xff);
	CHECK_EQ(n4_peerinfo_decode(p, &b), 0);
	CHECK_EQ(b.sin_addr.s_addr, a.sin_addr.s_addr);
	CHECK_EQ(b.sin_port, a.sin_port);

	const uint8_t zero_port[6] = { 1, 2, 3, 4, 0, 0 };
	const uint8_t zero_ip[6] = { 0, 0, 0, 0, 1, 1 };
	const uint8_t bcast[6] = { 255, 255, 255, 255, 1, 1 };
	const uint8_t mcast[6] = { 224, 0, 0, 1, 1, 1 };
	CHECK_EQ(n4_peerinfo_decode(zero_port, &b), -EINVAL);
	CHECK_EQ(n4_peerinfo_decode(zero_ip, &b), -EINVAL);
	CHECK_EQ(n4_peerinfo_decode(bcast, &b), -EINVAL);
	CHECK_EQ(n4_peerinfo_decode(mcast, &b), -EINVAL);
}

TEST(punch_recognised_only_with_our_ident)
{
	uint8_t id[N4_PAYLOAD_SIZE], buf[N4_MSG_SIZE];

	n4_ident_encode("game", id);
	n4_punch_bytes(id, 0, buf);
	CHECK(n4_is_punch(buf, sizeof(buf), "game"));
	CHECK(!n4_is_punch(buf, sizeof(buf), "other"));
	CHECK(!n4_is_punch(buf, sizeof(buf) - 1, "game"));
	n4_punch_bytes(id, N4_PUNCH_ACK, buf);
	CHECK(n4_is_punch(buf, sizeof(buf), "game"));
	buf[0] = N4_CMD_HELLO;
	CHECK(!n4_is_punch(buf, sizeof(buf), "game"));
}

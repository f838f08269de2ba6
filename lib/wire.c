/* wire.c - bytes <-> n4 messages.  Everything here parses untrusted input, so
 * every field is validated before it is used (fuzzed by tests/fuzz/fuzz_wire.c). */
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "n4.h"

void n4_wire_encode(const struct n4_msg *msg, uint8_t out[N4_MSG_SIZE])
{
	out[0] = msg->cmd;
	out[1] = msg->ext;
	memcpy(out + 2, msg->payload, N4_PAYLOAD_SIZE);
}

int n4_wire_decode(const void *buf, size_t len, uint8_t expect_cmd, struct n4_msg *msg)
{
	const uint8_t *b = buf;

	if (len != N4_MSG_SIZE)
		return -EMSGSIZE;
	if ((b[0] < N4_CMD_HELLO || b[0] > N4_CMD_MAX) && b[0] != N4_CMD_PROBE &&
	    b[0] != N4_CMD_TUNE && b[0] != N4_CMD_AGAIN && b[0] != N4_CMD_ROOM && b[0] != N4_CMD_V6)
		return -EPROTO;
	if (expect_cmd && b[0] != expect_cmd)
		return -EPROTO;
	msg->cmd = b[0];
	msg->ext = b[1];
	memcpy(msg->payload, b + 2, N4_PAYLOAD_SIZE);
	return 0;
}

int n4_ident_check(const char *ident)
{
	size_t n;

	if (!ident)
		return -EINVAL;
	n = strnlen(ident, N4_IDENT_MAX + 1);
	if (n == 0 || n > N4_IDENT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		/* Spaces are padding on the wire: "ab " would equal "ab". */
		if (ident[i] <= 0x20 || ident[i] >= 0x7f)
			return -EINVAL;
	}
	return 0;
}

int n4_ident_encode(const char *ident, uint8_t out[N4_PAYLOAD_SIZE])
{
	int err = n4_ident_check(ident);

	if (err)
		return err;
	size_t n = strlen(ident);
	memset(out, ' ', N4_PAYLOAD_SIZE);
	memcpy(out, ident, n);
	return 0;
}

int n4_ident_decode(const uint8_t in[N4_PAYLOAD_SIZE], char out[N4_PAYLOAD_SIZE + 1])
{
	size_t n = N4_PAYLOAD_SIZE;

	while (n > 0 && in[n - 1] == ' ')
		n--;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (in[i] <= 0x20 || in[i] >= 0x7f)
			return -EINVAL;
	}
	memcpy(out, in, n);
	out[n] = '\0';
	return 0;
}

void n4_peerinfo_encode(const struct sockaddr_in *addr, uint8_t out[N4_PAYLOAD_SIZE])
{
	memcpy(out, &addr->sin_addr.s_addr, 4);
	memcpy(out + 4, &addr->sin_port, 2);
}

int n4_peerinfo_decode(const uint8_t in[N4_PAYLOAD_SIZE], struct sockaddr_in *addr)
{
	uint32_t ip;
	uint16_t port;

	memcpy(&ip, in, 4);
	memcpy(&port, in + 4, 2);
	uint32_t host = ntohl(ip);
	if (port == 0 || host == 0 || host == 0xffffffffu || (host >> 28) == 0xe)
		return -EINVAL;
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = ip;
	addr->sin_port = port;
	return 0;
}

void n4_local_encode(uint8_t cmd, const struct sockaddr_in *addr, bool last, struct n4_msg *msg)
{
	n4_msg_init(msg, cmd, last ? N4_LOCAL_LAST : 0, NULL);
	if (addr)
		n4_peerinfo_encode(addr, msg->payload);
}

int n4_local_decode(const struct n4_msg *msg, struct sockaddr_in *addr)
{
	static const uint8_t none[N4_PAYLOAD_SIZE];

	if (msg->cmd != N4_CMD_LOCAL && msg->cmd != N4_CMD_PEERLOCAL)
		return -EPROTO;
	if (msg->ext & ~N4_LOCAL_LAST)
		return -EINVAL;
	if (memcmp(msg->payload, none, sizeof(none)) == 0)
		return (msg->ext & N4_LOCAL_LAST) ? 0 : -EINVAL;
	if (n4_peerinfo_decode(msg->payload, addr))
		return -EINVAL;
	/* 127/8 and 0/8 name the receiving host itself: a PUNCH there could only
	 * come back to its sender. */
	uint32_t host = ntohl(addr->sin_addr.s_addr);
	if ((host >> 24) == 127 || (host >> 24) == 0)
		return -EINVAL;
	return 1;
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

void n4_flow_encode(const struct n4_flow_note *f, uint8_t ext, struct n4_msg *msg)
{
	msg->cmd = N4_CMD_FLOW;
	msg->ext = ext;
	put_be16(msg->payload, f->from_port);
	put_be16(msg->payload + 2, f->to_port);
	put_be16(msg->payload + 4, f->nonce);
}

int n4_flow_decode(const void *buf, size_t len, uint8_t ext, struct n4_flow_note *f)
{
	const uint8_t *b = buf;

	if (len != N4_MSG_SIZE)
		return -EMSGSIZE;
	if (b[0] != N4_CMD_FLOW)
		return -EPROTO;
	uint16_t from = get_be16(b + 2), to = get_be16(b + 4);
	/* Port 0 is no socket's: nobody could punch towards it. */
	if (b[1] != ext || from == 0 || to == 0)
		return -EINVAL;
	f->from_port = from;
	f->to_port = to;
	f->nonce = get_be16(b + 6);
	return 0;
}

void n4_msg_init(struct n4_msg *msg, uint8_t cmd, uint8_t ext, const uint8_t *payload)
{
	msg->cmd = cmd;
	msg->ext = ext;
	if (payload)
		memcpy(msg->payload, payload, N4_PAYLOAD_SIZE);
	else
		memset(msg->payload, 0, N4_PAYLOAD_SIZE);
}

void n4_punch_bytes(const uint8_t ident[N4_PAYLOAD_SIZE], uint8_t ext, uint8_t out[N4_MSG_SIZE])
{
	out[0] = N4_CMD_PUNCH;
	out[1] = ext;
	memcpy(out + 2, ident, N4_PAYLOAD_SIZE);
}

bool n4_is_punch(const void *buf, size_t len, const char *ident)
{
	uint8_t id[N4_PAYLOAD_SIZE];
	const uint8_t *b = buf;

	/* 68 bytes: the authenticated PUNCH of keyed peers (auth.h), same id place. */
	if (!(len == N4_MSG_SIZE && b[0] == N4_CMD_PUNCH) &&
	    !(len == N4_APUNCH_SIZE && b[0] == N4_CMD_APUNCH))
		return false;
	if (n4_ident_encode(ident, id) != 0)
		return false;
	return memcmp(b + 2, id, N4_PAYLOAD_SIZE) == 0;
}

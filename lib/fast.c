/* fast.c - the fast-flow wire (fast.h): the request a client writes on its kept
 * connection, the probe, and the server's tagged answer.  Both ends; every
 * decoder here is fuzzed (tests/fuzz/fuzz_fast.c). */
#include "fast.h"

#include <errno.h>
#include <string.h>

static void put(uint8_t *out, uint8_t sub, const uint8_t *payload)
{
	out[0] = N4_CMD_FAST;
	out[1] = sub;
	memcpy(out + 2, payload, N4_PAYLOAD_SIZE);
}

size_t n4_fast_req_encode(const struct n4_fast_req *r, uint8_t out[N4_FAST_REQ_MAX])
{
	uint8_t tag[N4_PAYLOAD_SIZE] = { r->tag, r->flags, 0, 0, 0, 0 };
	uint8_t nonce[N4_FAST_NONCE_PARTS * N4_PAYLOAD_SIZE];
	size_t n = 0;

	put(out + n, N4_FAST_OPEN, r->ident);
	n += N4_MSG_SIZE;
	put(out + n, N4_FAST_TAG, tag);
	n += N4_MSG_SIZE;
	put(out + n, N4_FAST_TOKEN, r->token);
	n += N4_MSG_SIZE;
	if (r->flags & N4_FAST_KEYED) {
		/* 16 bytes of nonce, 2 zero bytes: as KEYID's parts 3-5. */
		memset(nonce, 0, sizeof(nonce));
		memcpy(nonce, r->nonce, 16);
		for (unsigned i = 0; i < N4_FAST_NONCE_PARTS; i++) {
			put(out + n, (uint8_t)(N4_FAST_NONCE + i), nonce + i * N4_PAYLOAD_SIZE);
			n += N4_MSG_SIZE;
		}
	}
	return n;
}

int n4_fast_req_take(struct n4_fast_rx *rx, const uint8_t msg[N4_MSG_SIZE])
{
	const uint8_t *p = msg + 2;
	uint8_t want;

	if (msg[0] != N4_CMD_FAST)
		return -EINVAL;
	/* OPEN always starts a request; the rest comes in order. */
	if (msg[1] == N4_FAST_OPEN) {
		memset(rx, 0, sizeof(*rx));
		memcpy(rx->r.ident, p, N4_PAYLOAD_SIZE);
		rx->parts = 1;
		return 0;
	}
	want = rx->parts == 1	? N4_FAST_TAG
	       : rx->parts == 2 ? N4_FAST_TOKEN
				: (uint8_t)(N4_FAST_NONCE + rx->parts - 3);
	if (rx->parts == 0 || msg[1] != want)
		return -EINVAL;
	switch (rx->parts) {
	case 1:
		if (!p[0] || (p[1] & ~N4_FAST_FLAGS) || p[2] || p[3] || p[4] || p[5])
			return -EINVAL;
		rx->r.tag = p[0];
		rx->r.flags = p[1];
		break;
	case 2:
		memcpy(rx->r.token, p, N4_PAYLOAD_SIZE);
		break;
	default: {
		unsigned i = rx->parts - 3u;
		if (i >= N4_FAST_NONCE_PARTS || !(rx->r.flags & N4_FAST_KEYED))
			return -EINVAL;
		if (i == N4_FAST_NONCE_PARTS - 1 && (p[4] || p[5]))
			return -EINVAL; /* 16 bytes of nonce, then zeros */
		memcpy(rx->r.nonce + i * N4_PAYLOAD_SIZE, p, N4_PAYLOAD_SIZE);
		break;
	}
	}
	rx->parts++;
	unsigned whole = (rx->r.flags & N4_FAST_KEYED) ? 3u + N4_FAST_NONCE_PARTS : 3u;
	if (rx->parts < whole)
		return 0;
	rx->parts = 0; /* the next message must be an OPEN */
	return 1;
}

void n4_fast_probe_encode(const uint8_t token[N4_PAYLOAD_SIZE], uint8_t out[N4_MSG_SIZE])
{
	put(out, N4_FAST_PROBE, token);
}

int n4_fast_probe_decode(const void *buf, size_t len, uint8_t token[N4_PAYLOAD_SIZE])
{
	const uint8_t *b = buf;

	if (len != N4_MSG_SIZE || b[0] != N4_CMD_FAST || b[1] != N4_FAST_PROBE)
		return -EPROTO;
	memcpy(token, b + 2, N4_PAYLOAD_SIZE);
	return 0;
}

void n4_fast_answer_head(uint8_t tag, unsigned n, struct n4_msg *m)
{
	uint8_t p[N4_PAYLOAD_SIZE] = { tag, (uint8_t)n, 0, 0, 0, 0 };
	n4_msg_init(m, N4_CMD_FAST, N4_FAST_ANSWER, p);
}

void n4_fast_no_msg(uint8_t tag, uint8_t reason, struct n4_msg *m)
{
	uint8_t p[N4_PAYLOAD_SIZE] = { tag, reason, 0, 0, 0, 0 };
	n4_msg_init(m, N4_CMD_FAST, N4_FAST_NO, p);
}

int n4_fast_answer_decode(const uint8_t *buf, size_t len, struct n4_fast_reply *r)
{
	if (len < N4_MSG_SIZE)
		return len && buf[0] != N4_CMD_FAST ? -EPROTO : 0;
	if (buf[0] != N4_CMD_FAST || !buf[2] || buf[4] || buf[5] || buf[6] || buf[7])
		return -EPROTO;
	memset(r, 0, sizeof(*r));
	r->tag = buf[2];
	if (buf[1] == N4_FAST_NO) {
		r->no = true;
		r->reason = buf[3];
		return N4_MSG_SIZE;
	}
	if (buf[1] != N4_FAST_ANSWER || buf[3] == 0 || buf[3] > N4_FAST_REPLY_MAX)
		return -EPROTO;
	unsigned n = buf[3];
	size_t whole = (size_t)(1 + n) * N4_MSG_SIZE;
	if (len < whole)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *m = buf + (1 + i) * N4_MSG_SIZE;
		if (m[0] == N4_CMD_FAST || (i == n - 1) != (m[0] == N4_CMD_PEERINFO))
			return -EPROTO;
		memcpy(r->msgs[i], m, N4_MSG_SIZE);
	}
	r->n = (uint8_t)n;
	return (int)whole;
}

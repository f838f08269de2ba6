/* test_fast.c - fast flows (lib/fast.h).  First the wire (lib/fast.c): a request
 * encoded and taken back a message at a time (unkeyed 24 bytes, keyed 48), every
 * way a request is refused, the probe's exact length, the answer's decoder on
 * whole, partial and malformed groups.  Then the client's reading of answers on a
 * kept connection (n4_stay_poll_any, lib/stay.c) over a socketpair standing in for
 * the server.  Then the server's leaf (lib/srv_fast.c) on its own: the list,
 * partners, orphan probes, later-probe counting.  Then the server
 * (lib/srv_proto.c "FAST") driven through lib/server_test.h: two clients paired
 * with discovery and kept connections ask for a further flow and get answers
 * naming each other's probe; NO for a request alone, without a model, behind
 * one IP, over the limits and for a peer that went the long way; orphan and
 * foreign probes, malformed requests, keyed requests. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include "fast.h"
#include "n4.h"
#include "predict.h"
#include "server_test.h"
#include "srv_fast.h"
#include "test.h"
#include "wire.h"

/* ---- the wire ---------------------------------------------------------- */

static struct n4_fast_req req_of(uint8_t tag, uint8_t flags)
{
	struct n4_fast_req r;

	memset(&r, 0, sizeof(r));
	memcpy(r.ident, "flow01", N4_PAYLOAD_SIZE);
	r.tag = tag;
	r.flags = flags;
	memcpy(r.token, "\x11\x22\x33\x44\x55\x66", N4_PAYLOAD_SIZE);
	for (unsigned i = 0; i < 16; i++)
		r.nonce[i] = (uint8_t)(0xa0 + i);
	return r;
}

/* Every message of b (n bytes) into rx: the last return, or the first error. */
static int take_all(struct n4_fast_rx *rx, const uint8_t *b, size_t n)
{
	int rc = -EBADMSG;

	for (size_t at = 0; at + N4_MSG_SIZE <= n; at += N4_MSG_SIZE) {
		rc = n4_fast_req_take(rx, b + at);
		if (rc < 0 || (rc == 1 && at + N4_MSG_SIZE != n))
			return rc < 0 ? rc : -EBADMSG; /* whole before its end */
	}
	return rc;
}

TEST(fast_request_unkeyed_is_24_bytes_and_round_trips)
{
	struct n4_fast_req r = req_of(7, N4_FAST_NOSWEEP);
	uint8_t b[N4_FAST_REQ_MAX];
	struct n4_fast_rx rx;

	CHECK_EQ(n4_fast_req_encode(&r, b), 24);
	const uint8_t want[24] = { 0x18, 0x01, 'f',  'l',  'o',	 'w',  '0',  '1',
				   0x18, 0x02, 7,    0x02, 0,	 0,    0,    0,
				   0x18, 0x03, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66 };
	CHECK(memcmp(b, want, 24) == 0);
	memset(&rx, 0xee, sizeof(rx)); /* OPEN starts from nothing */
	CHECK_EQ(n4_fast_req_take(&rx, b), 0);
	CHECK_EQ(n4_fast_req_take(&rx, b + 8), 0);
	CHECK_EQ(n4_fast_req_take(&rx, b + 16), 1);
	CHECK(memcmp(rx.r.ident, r.ident, N4_PAYLOAD_SIZE) == 0);
	CHECK(memcmp(rx.r.token, r.token, N4_PAYLOAD_SIZE) == 0);
	CHECK_EQ(rx.r.tag, 7);
	CHECK_EQ(rx.r.flags, N4_FAST_NOSWEEP);
	CHECK_EQ(rx.parts, 0);
	/* The next message must be an OPEN: a nonce part is refused. */
	uint8_t nonce[N4_MSG_SIZE] = { 0x18, N4_FAST_NONCE, 1, 2, 3, 4, 5, 6 };
	CHECK_EQ(n4_fast_req_take(&rx, nonce), -EINVAL);
	/* And a second request on the same rx is read as well. */
	r = req_of(8, 0);
	CHECK_EQ(n4_fast_req_encode(&r, b), 24);
	memset(&rx, 0, sizeof(rx));
	CHECK_EQ(take_all(&rx, b, 24), 1);
	CHECK_EQ(rx.r.tag, 8);
	CHECK_EQ(rx.r.flags, 0);
}

TEST(fast_request_keyed_is_48_bytes_with_its_nonce)
{
	struct n4_fast_req r = req_of(255, N4_FAST_KEYED | N4_FAST_NOSWEEP);
	uint8_t b[N4_FAST_REQ_MAX];
	struct n4_fast_rx rx;

	/* OPEN, TAG, TOKEN and 3 nonce parts: 6 messages (fast.h said "32 or 56"
	 * bytes; the wire it describes is 24 or 48). */
	size_t n = n4_fast_req_encode(&r, b);
	CHECK_EQ(n, 6 * N4_MSG_SIZE);
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ(b[24 + 8 * i], 0x18);
		CHECK_EQ(b[24 + 8 * i + 1], N4_FAST_NONCE + i);
	}
	CHECK(memcmp(b + 26, r.nonce, 6) == 0);
	CHECK(memcmp(b + 34, r.nonce + 6, 6) == 0);
	CHECK(memcmp(b + 42, r.nonce + 12, 4) == 0);
	CHECK(b[46] == 0 && b[47] == 0);
	memset(&rx, 0, sizeof(rx));
	for (size_t at = 0; at + 8 < n; at += 8)
		CHECK_EQ(n4_fast_req_take(&rx, b + at), 0);
	CHECK_EQ(n4_fast_req_take(&rx, b + n - 8), 1);
	CHECK_EQ(rx.r.flags, N4_FAST_KEYED | N4_FAST_NOSWEEP);
	CHECK(memcmp(rx.r.nonce, r.nonce, 16) == 0);
	CHECK(rx.r.nonce[16] == 0 && rx.r.nonce[17] == 0);
	/* Bytes beyond the 16 the caller gave are never sent. */
	r.nonce[16] = r.nonce[17] = 0xff;
	CHECK_EQ(n4_fast_req_encode(&r, b), n);
	CHECK(b[46] == 0 && b[47] == 0);
}

TEST(fast_request_refusals)
{
	struct n4_fast_req r = req_of(9, N4_FAST_KEYED);
	uint8_t b[N4_FAST_REQ_MAX], m[N4_MSG_SIZE];
	struct n4_fast_rx rx;
	size_t n = n4_fast_req_encode(&r, b);

	/* Out of order: TAG first, TOKEN before TAG, nonce part 2 before 1. */
	memset(&rx, 0, sizeof(rx));
	CHECK_EQ(n4_fast_req_take(&rx, b + 8), -EINVAL);
	memset(&rx, 0, sizeof(rx));
	CHECK_EQ(n4_fast_req_take(&rx, b), 0);
	CHECK_EQ(n4_fast_req_take(&rx, b + 16), -EINVAL);
	memset(&rx, 0, sizeof(rx));
	CHECK_EQ(take_all(&rx, b, 24), 0);
	CHECK_EQ(n4_fast_req_take(&rx, b + 32), -EINVAL);
	/* Another command altogether. */
	memset(&rx, 0, sizeof(rx));
	memcpy(m, b, 8);
	m[0] = N4_CMD_FLOW;
	CHECK_EQ(n4_fast_req_take(&rx, m), -EINVAL);
	/* Tag 0; unknown flags; bytes after the flags not zero. */
	for (unsigned k = 0; k < 3; k++) {
		memset(&rx, 0, sizeof(rx));
		CHECK_EQ(n4_fast_req_take(&rx, b), 0);
		memcpy(m, b + 8, 8);
		if (k == 0)
			m[2] = 0;
		else if (k == 1)
			m[3] = 0x04;
		else
			m[7] = 1;
		CHECK_EQ(n4_fast_req_take(&rx, m), -EINVAL);
	}
	for (unsigned bit = 2; bit < 8; bit++) {
		memset(&rx, 0, sizeof(rx));
		CHECK_EQ(n4_fast_req_take(&rx, b), 0);
		memcpy(m, b + 8, 8);
		m[3] = (uint8_t)(1u << bit);
		CHECK_EQ(n4_fast_req_take(&rx, m), -EINVAL);
	}
	/* The nonce's padding (the last part's 2 bytes) not zero. */
	for (unsigned at = 6; at < 8; at++) {
		memset(&rx, 0, sizeof(rx));
		CHECK_EQ(take_all(&rx, b, n - 8), 0);
		memcpy(m, b + n - 8, 8);
		m[at] = 1;
		CHECK_EQ(n4_fast_req_take(&rx, m), -EINVAL);
	}
	/* A nonce part after an unkeyed request's TOKEN: the request was whole,
	 * and one in the middle of an unkeyed request (its TOKEN replaced). */
	r = req_of(9, 0);
	n = n4_fast_req_encode(&r, b);
	memset(&rx, 0, sizeof(rx));
	CHECK_EQ(take_all(&rx, b, n), 1);
	memcpy(m, b, 8);
	m[1] = N4_FAST_NONCE;
	CHECK_EQ(n4_fast_req_take(&rx, m), -EINVAL);
	memset(&rx, 0, sizeof(rx));
	CHECK_EQ(take_all(&rx, b, 16), 0);
	CHECK_EQ(n4_fast_req_take(&rx, m), -EINVAL);
	/* Unknown subcodes, and the server's own (probe, answer, NO). */
	const uint8_t subs[] = { 0x00, 0x07, 0x7f, 0x80, 0x81, 0xff };
	for (unsigned i = 0; i < sizeof(subs); i++) {
		memset(&rx, 0, sizeof(rx));
		CHECK_EQ(n4_fast_req_take(&rx, b), 0);
		memcpy(m, b + 8, 8);
		m[1] = subs[i];
		CHECK_EQ(n4_fast_req_take(&rx, m), -EINVAL);
	}
}

TEST(fast_request_a_new_open_restarts)
{
	struct n4_fast_req r1 = req_of(1, N4_FAST_KEYED), r2 = req_of(2, 0);
	uint8_t b1[N4_FAST_REQ_MAX], b2[N4_FAST_REQ_MAX];
	struct n4_fast_rx rx;

	size_t n1 = n4_fast_req_encode(&r1, b1);
	memcpy(r2.ident, "flow02", N4_PAYLOAD_SIZE);
	size_t n2 = n4_fast_req_encode(&r2, b2);
	memset(&rx, 0, sizeof(rx));
	CHECK_EQ(take_all(&rx, b1, n1 - 8), 0); /* keyed, its last part missing */
	CHECK_EQ(take_all(&rx, b2, n2), 1);
	CHECK(memcmp(rx.r.ident, "flow02", N4_PAYLOAD_SIZE) == 0);
	CHECK_EQ(rx.r.tag, 2);
	CHECK_EQ(rx.r.flags, 0);
	for (unsigned i = 0; i < sizeof(rx.r.nonce); i++)
		CHECK_EQ(rx.r.nonce[i], 0); /* nothing of the first one left */
	/* OPEN twice: the second one counts. */
	memset(&rx, 0, sizeof(rx));
	CHECK_EQ(n4_fast_req_take(&rx, b1), 0);
	CHECK_EQ(take_all(&rx, b2, n2), 1);
	CHECK(memcmp(rx.r.ident, "flow02", N4_PAYLOAD_SIZE) == 0);
}

TEST(fast_probe_is_exactly_8_bytes)
{
	const uint8_t tok[N4_PAYLOAD_SIZE] = { 1, 2, 3, 4, 5, 6 };
	uint8_t b[N4_MSG_SIZE + 1], got[N4_PAYLOAD_SIZE];

	n4_fast_probe_encode(tok, b);
	const uint8_t want[N4_MSG_SIZE] = { 0x18, 0x00, 1, 2, 3, 4, 5, 6 };
	CHECK(memcmp(b, want, sizeof(want)) == 0);
	CHECK_EQ(n4_fast_probe_decode(b, N4_MSG_SIZE, got), 0);
	CHECK(memcmp(got, tok, sizeof(tok)) == 0);
	b[8] = 0;
	CHECK_EQ(n4_fast_probe_decode(b, N4_MSG_SIZE + 1, got), -EPROTO);
	CHECK_EQ(n4_fast_probe_decode(b, N4_MSG_SIZE - 1, got), -EPROTO);
	CHECK_EQ(n4_fast_probe_decode(b, 0, got), -EPROTO);
	b[1] = N4_FAST_OPEN;
	CHECK_EQ(n4_fast_probe_decode(b, N4_MSG_SIZE, got), -EPROTO);
	b[1] = 0;
	b[0] = N4_CMD_EXCHANGE;
	CHECK_EQ(n4_fast_probe_decode(b, N4_MSG_SIZE, got), -EPROTO);
}

/* An answer group: head, n-1 PLAN-like messages, PEERINFO (n messages after
 * the head), into b; its length. */
static size_t answer(uint8_t *b, uint8_t tag, unsigned n)
{
	const struct sockaddr_in peer = { .sin_family = AF_INET,
					  .sin_port = htons(30010),
					  .sin_addr.s_addr = htonl(0xcb007101) };
	struct n4_msg m;
	size_t at = 0;

	n4_fast_answer_head(tag, n, &m);
	n4_wire_encode(&m, b);
	at += N4_MSG_SIZE;
	for (unsigned i = 0; i + 1 < n; i++) {
		uint8_t p[N4_PAYLOAD_SIZE] = { (uint8_t)i, 0, 0, 0, 0, 0 };
		n4_msg_init(&m, N4_CMD_PLAN, 2, p);
		n4_wire_encode(&m, b + at);
		at += N4_MSG_SIZE;
	}
	n4_msg_init(&m, N4_CMD_PEERINFO, N4_PEER_N4, NULL);
	n4_peerinfo_encode(&peer, m.payload);
	n4_wire_encode(&m, b + at);
	return at + N4_MSG_SIZE;
}

TEST(fast_answer_decode_whole_and_partial)
{
	uint8_t b[(1 + N4_FAST_REPLY_MAX) * N4_MSG_SIZE + 8];
	struct n4_fast_reply r;

	for (unsigned n = 1; n <= N4_FAST_REPLY_MAX; n++) {
		size_t len = answer(b, 5, n);
		CHECK_EQ(len, (1 + n) * N4_MSG_SIZE);
		memset(&r, 0xee, sizeof(r));
		CHECK_EQ(n4_fast_answer_decode(b, len, &r), (int)len);
		CHECK_EQ(r.tag, 5);
		CHECK(!r.no);
		CHECK_EQ(r.n, n);
		CHECK_EQ(r.msgs[n - 1][0], N4_CMD_PEERINFO);
		CHECK(memcmp(r.msgs[0], b + 8, N4_MSG_SIZE) == 0);
		/* More bytes after it (the next message): only its length taken. */
		memset(b + len, 0x0f, 8);
		CHECK_EQ(n4_fast_answer_decode(b, len + 8, &r), (int)len);
		/* Every shorter prefix: not whole yet. */
		for (size_t k = 0; k < len; k++)
			CHECK_EQ(n4_fast_answer_decode(b, k, &r), 0);
	}
	/* NO: 8 bytes, its reason. */
	struct n4_msg m;
	n4_fast_no_msg(9, N4_FAST_NO_PARTNER, &m);
	n4_wire_encode(&m, b);
	const uint8_t want[N4_MSG_SIZE] = { 0x18, 0x81, 9, 2, 0, 0, 0, 0 };
	CHECK(memcmp(b, want, sizeof(want)) == 0);
	CHECK_EQ(n4_fast_answer_decode(b, 8, &r), 8);
	CHECK(r.no);
	CHECK_EQ(r.reason, N4_FAST_NO_PARTNER);
	CHECK_EQ(r.tag, 9);
	CHECK_EQ(r.n, 0);
	CHECK_EQ(n4_fast_answer_decode(b, 3, &r), 0);
	/* A start that is no FAST at all, even one byte of it. */
	b[0] = N4_CMD_REPUNCH;
	CHECK_EQ(n4_fast_answer_decode(b, 1, &r), -EPROTO);
	CHECK_EQ(n4_fast_answer_decode(b, 8, &r), -EPROTO);
}

TEST(fast_answer_decode_refusals)
{
	uint8_t b[(1 + N4_FAST_REPLY_MAX + 1) * N4_MSG_SIZE];
	struct n4_fast_reply r;
	size_t len;

	/* Count 0, and more than N4_FAST_REPLY_MAX (even with the bytes there). */
	len = answer(b, 5, 2);
	b[3] = 0;
	CHECK_EQ(n4_fast_answer_decode(b, len, &r), -EPROTO);
	len = answer(b, 5, N4_FAST_REPLY_MAX);
	b[3] = N4_FAST_REPLY_MAX + 1;
	memcpy(b + len, b + len - 8, 8);
	CHECK_EQ(n4_fast_answer_decode(b, len + 8, &r), -EPROTO);
	CHECK_EQ(n4_fast_answer_decode(b, 8, &r), -EPROTO); /* known at once */
	/* Tag 0; head bytes after the count not zero. */
	len = answer(b, 5, 2);
	b[2] = 0;
	CHECK_EQ(n4_fast_answer_decode(b, len, &r), -EPROTO);
	for (unsigned at = 4; at < 8; at++) {
		len = answer(b, 5, 2);
		b[at] = 1;
		CHECK_EQ(n4_fast_answer_decode(b, len, &r), -EPROTO);
	}
	/* The last message is not PEERINFO; a PEERINFO before the last. */
	len = answer(b, 5, 3);
	b[len - 8] = N4_CMD_PLAN;
	CHECK_EQ(n4_fast_answer_decode(b, len, &r), -EPROTO);
	len = answer(b, 5, 3);
	b[8] = N4_CMD_PEERINFO;
	CHECK_EQ(n4_fast_answer_decode(b, len, &r), -EPROTO);
	/* A FAST message inside (a second head, or a NO). */
	len = answer(b, 5, 3);
	b[16] = N4_CMD_FAST;
	CHECK_EQ(n4_fast_answer_decode(b, len, &r), -EPROTO);
	len = answer(b, 5, 1);
	b[8] = N4_CMD_FAST;
	CHECK_EQ(n4_fast_answer_decode(b, len, &r), -EPROTO);
	/* Unknown subcodes: the client's own (OPEN), the probe, others. */
	const uint8_t subs[] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x7f, 0x82, 0xff };
	for (unsigned i = 0; i < sizeof(subs); i++) {
		len = answer(b, 5, 1);
		b[1] = subs[i];
		CHECK_EQ(n4_fast_answer_decode(b, len, &r), -EPROTO);
	}
	/* NO with a tag 0, or with bytes after its reason. */
	struct n4_msg m;
	n4_fast_no_msg(0, 1, &m);
	n4_wire_encode(&m, b);
	CHECK_EQ(n4_fast_answer_decode(b, 8, &r), -EPROTO);
	n4_fast_no_msg(1, 1, &m);
	n4_wire_encode(&m, b);
	b[7] = 1;
	CHECK_EQ(n4_fast_answer_decode(b, 8, &r), -EPROTO);
}

/* ---- n4_stay_poll_any over a socketpair --------------------------------- */

static int spair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
}

static void put(uint8_t *at, uint8_t cmd, uint8_t ext, const void *payload)
{
	struct n4_msg m;

	n4_msg_init(&m, cmd, ext, payload);
	n4_wire_encode(&m, at);
}

static void repunch(uint8_t out[N4_MSG_SIZE], const char *ident)
{
	uint8_t id[N4_PAYLOAD_SIZE];

	n4_ident_encode(ident, id);
	put(out, N4_CMD_REPUNCH, 0, id);
}

static void flow(uint8_t out[N4_MSG_SIZE], uint16_t from, uint16_t to, uint16_t nonce)
{
	struct n4_flow_note f = { .from_port = from, .to_port = to, .nonce = nonce };
	struct n4_msg m;

	n4_flow_encode(&f, N4_FLOW_FORWARDED, &m);
	n4_wire_encode(&m, out);
}

TEST(stay_poll_any_keeps_a_split_answer_until_whole)
{
	int sv[2];
	uint8_t b[(1 + 4) * N4_MSG_SIZE + N4_MSG_SIZE];
	struct n4_flow_note f;
	struct n4_fast_reply r;

	CHECK(spair(sv) == 0);
	size_t len = answer(b, 3, 4);
	repunch(b + len, "n4n4n4");
	/* Cut inside the head, then inside a message after it, then whole. */
	const size_t cuts[] = { 5, 21, len + 8 };
	size_t sent = 0;
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ(write(sv[1], b + sent, cuts[i] - sent), (ssize_t)(cuts[i] - sent));
		sent = cuts[i];
		if (i < 2) {
			CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 0);
			CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 0);
		}
	}
	memset(&r, 0, sizeof(r));
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 3);
	CHECK_EQ(r.tag, 3);
	CHECK_EQ(r.n, 4);
	CHECK(!r.no);
	CHECK(memcmp(r.msgs[3], b + 32, N4_MSG_SIZE) == 0);
	/* Nothing of it was left in the stream: the REPUNCH after it is next. */
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 1);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 0);
	close(sv[1]);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), -ECONNRESET);
	close(sv[0]);
}

TEST(stay_poll_any_answer_then_repunch_with_flows_between)
{
	int sv[2];
	uint8_t b[16 * N4_MSG_SIZE];
	struct n4_flow_note f;
	struct n4_fast_reply r;
	struct n4_msg m;
	size_t at = 0;

	CHECK(spair(sv) == 0);
	flow(b + at, 6000, 7000, 1);
	at += 8;
	at += answer(b + at, 1, 2);
	flow(b + at, 6001, 7001, 2);
	at += 8;
	n4_fast_no_msg(2, N4_FAST_NO_PLAN, &m);
	n4_wire_encode(&m, b + at);
	at += 8;
	repunch(b + at, "n4n4n4");
	at += 8;
	CHECK_EQ(write(sv[1], b, at), (ssize_t)at);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 2);
	CHECK(f.from_port == 6000 && f.nonce == 1);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 3);
	CHECK(r.tag == 1 && !r.no && r.n == 2);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 2);
	CHECK(f.from_port == 6001 && f.nonce == 2);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 3);
	CHECK(r.tag == 2 && r.no && r.reason == N4_FAST_NO_PLAN);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 1);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 0);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", NULL, &r), -EINVAL);
	CHECK_EQ(n4_stay_poll_any(sv[0], "bad id", &f, &r), -EINVAL);
	close(sv[0]);
	close(sv[1]);
}

/* reply NULL (n4_stay_poll_note, n4_stay_poll): answers are read and dropped,
 * whole, so that what follows them is read in step. */
TEST(stay_poll_without_reply_drops_answers_whole)
{
	int sv[2];
	uint8_t b[16 * N4_MSG_SIZE];
	struct n4_flow_note f;
	size_t at = 0;

	CHECK(spair(sv) == 0);
	at += answer(b + at, 1, 3);
	flow(b + at, 6000, 7000, 1);
	at += 8;
	at += answer(b + at, 2, 1);
	repunch(b + at, "n4n4n4");
	at += 8;
	CHECK_EQ(write(sv[1], b, at), (ssize_t)at);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, NULL), 2);
	CHECK(f.from_port == 6000);
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), 1);
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), 0);
	/* n4_stay_poll: an answer, split, then a REPUNCH. */
	at = answer(b, 4, 2);
	repunch(b + at, "n4n4n4");
	at += 8;
	CHECK_EQ(write(sv[1], b, 12), 12);
	CHECK_EQ(n4_stay_poll(sv[0], "n4n4n4"), 0);
	CHECK_EQ(write(sv[1], b + 12, at - 12), (ssize_t)(at - 12));
	CHECK_EQ(n4_stay_poll(sv[0], "n4n4n4"), 1);
	CHECK_EQ(n4_stay_poll(sv[0], "n4n4n4"), 0);
	close(sv[0]);
	close(sv[1]);
}

/* A malformed FAST message is skipped like any unknown one: 8 bytes, then the
 * stream goes on. */
TEST(stay_poll_any_skips_a_malformed_fast_message)
{
	int sv[2];
	uint8_t b[16 * N4_MSG_SIZE];
	struct n4_flow_note f;
	struct n4_fast_reply r;
	size_t at = 0;

	CHECK(spair(sv) == 0);
	/* A probe (the client's own form), a head with count 0, a NO with tag 0,
	 * an answer whose last message is not PEERINFO (its head is skipped, then
	 * its PLAN and REPUNCH-less tail as unknown messages). */
	const uint8_t probe[8] = { 0x18, 0x00, 1, 2, 3, 4, 5, 6 };
	memcpy(b + at, probe, 8);
	at += 8;
	const uint8_t zero[8] = { 0x18, 0x80, 1, 0, 0, 0, 0, 0 };
	memcpy(b + at, zero, 8);
	at += 8;
	const uint8_t no0[8] = { 0x18, 0x81, 0, 1, 0, 0, 0, 0 };
	memcpy(b + at, no0, 8);
	at += 8;
	size_t len = answer(b + at, 7, 2);
	b[at + len - 8] = N4_CMD_PLAN;
	at += len;
	flow(b + at, 6000, 7000, 5);
	at += 8;
	at += answer(b + at, 8, 1);
	CHECK_EQ(write(sv[1], b, at), (ssize_t)at);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 2);
	CHECK(f.from_port == 6000 && f.nonce == 5);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 3);
	CHECK(r.tag == 8 && r.n == 1);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 0);
	/* A lone FAST byte, then EOF: not whole, and not taken for an answer. */
	CHECK_EQ(write(sv[1], "\x18", 1), 1);
	CHECK_EQ(n4_stay_poll_any(sv[0], "n4n4n4", &f, &r), 0);
	close(sv[0]);
	close(sv[1]);
}

/* ---- the server's leaf (lib/srv_fast.c) --------------------------------- */

static struct n4_srv_fast_req *leaf_add(struct n4_srv_fast_list *l, struct n4_srv_fast *f,
					uint8_t tag, const char *ident, uint8_t token, uint32_t ip)
{
	struct n4_srv_fast_req *q = n4_srv_fast_add(l, f, tag, f);

	if (!q)
		return NULL;
	q->r.tag = tag;
	memcpy(q->r.ident, ident, N4_PAYLOAD_SIZE);
	memset(q->r.token, token, N4_PAYLOAD_SIZE);
	q->probe_ip = ip;
	return q;
}

TEST(srv_fast_add_drop_and_lookups)
{
	n4_loop *loop = n4_loop_new();
	struct n4_srv_fast_list *l = calloc(1, sizeof(*l));
	struct n4_srv_fast *f = calloc(3, sizeof(*f));
	uint8_t tok[N4_PAYLOAD_SIZE];

	CHECK(loop && l && f);
	/* A request is zeroed but for its owner, and on the list. */
	memset(&f[0].req[0], 0xee, sizeof(f[0].req[0]));
	f[0].req[0].used = false;
	struct n4_srv_fast_req *a = n4_srv_fast_add(l, &f[0], 1, &f[0]);
	CHECK(a == &f[0].req[0]);
	CHECK(a->owner == &f[0] && a->used && !a->partner && !a->probed && !a->planned);
	CHECK(a->timer.slot == 0 && a->nanswer == 0 && l->n == 1 && l->live[0] == a);
	a->r.tag = 1;
	memcpy(a->r.ident, "flow01", N4_PAYLOAD_SIZE);
	memset(a->r.token, 0xa1, N4_PAYLOAD_SIZE);
	/* The same tag under way on this connection: none; on another: fine. */
	CHECK(n4_srv_fast_add(l, &f[0], 1, &f[0]) == NULL);
	struct n4_srv_fast_req *b = leaf_add(l, &f[1], 1, "flow01", 0xb1, 2);
	CHECK(b != NULL);
	/* N4_SRV_FAST_PER_CONN per connection. */
	for (uint8_t t = 2; t <= N4_SRV_FAST_PER_CONN; t++)
		CHECK(leaf_add(l, &f[0], t, "flow09", t, 1) != NULL);
	CHECK(n4_srv_fast_add(l, &f[0], 99, &f[0]) == NULL);
	CHECK_EQ(l->n, N4_SRV_FAST_PER_CONN + 1);
	/* Lookups: by token, by identifier, a partner on another connection
	 * (same identifier, same KEYED flag, unpaired, not planned, not itself). */
	memset(tok, 0xb1, sizeof(tok));
	CHECK(n4_srv_fast_by_token(l, tok) == b);
	memset(tok, 0x77, sizeof(tok));
	CHECK(n4_srv_fast_by_token(l, tok) == NULL);
	CHECK(n4_srv_fast_by_ident(l, (const uint8_t *)"flow01") != NULL);
	CHECK(n4_srv_fast_by_ident(l, (const uint8_t *)"flow77") == NULL);
	CHECK(n4_srv_fast_match(&f[0], b) == a);
	CHECK(n4_srv_fast_match(&f[0], a) == NULL); /* not itself */
	CHECK(n4_srv_fast_match(NULL, a) == NULL);
	b->r.flags = N4_FAST_KEYED;
	CHECK(n4_srv_fast_match(&f[0], b) == NULL);
	b->r.flags = N4_FAST_NOSWEEP; /* only KEYED must agree */
	CHECK(n4_srv_fast_match(&f[0], b) == a);
	a->planned = true;
	CHECK(n4_srv_fast_match(&f[0], b) == NULL);
	a->planned = false;
	a->partner = b;
	b->partner = a;
	CHECK(n4_srv_fast_match(&f[0], b) == NULL);
	/* Dropped: off the list (the last takes its place), its partner unpaired,
	 * its timer cancelled; twice changes nothing. */
	CHECK_EQ(n4_timer_arm(loop, &a->timer, n4_now_ms() + 60000, NULL, a), 0);
	CHECK_EQ(n4_loop_timer_count(loop), 1);
	n4_srv_fast_drop(loop, l, a);
	CHECK(!a->used && b->partner == NULL && a->timer.slot == 0);
	CHECK_EQ(n4_loop_timer_count(loop), 0);
	CHECK_EQ(l->n, N4_SRV_FAST_PER_CONN);
	for (unsigned i = 0; i < l->n; i++) {
		CHECK(l->live[i] != a && l->live[i]->used);
		CHECK_EQ(l->live[i]->live_at, i);
	}
	n4_srv_fast_drop(loop, l, a);
	CHECK_EQ(l->n, N4_SRV_FAST_PER_CONN);
	memset(tok, 0xa1, sizeof(tok));
	CHECK(n4_srv_fast_by_token(l, tok) == NULL);
	/* A connection that closes takes all of its own, only those. */
	n4_srv_fast_drop_all(loop, l, &f[0]);
	n4_srv_fast_drop_all(loop, l, NULL);
	CHECK_EQ(l->n, 1);
	CHECK(l->live[0] == b && b->live_at == 0);
	n4_srv_fast_drop(loop, l, b);
	CHECK_EQ(l->n, 0);
	free(f);
	free(l);
	n4_loop_free(loop);
}

TEST(srv_fast_list_is_bounded)
{
	unsigned conns = N4_SRV_FAST_MAX / N4_SRV_FAST_PER_CONN + 1;
	struct n4_srv_fast_list *l = calloc(1, sizeof(*l));
	struct n4_srv_fast *f = calloc(conns, sizeof(*f));
	n4_loop *loop = n4_loop_new();

	CHECK(l && f && loop);
	for (unsigned i = 0; i + 1 < conns; i++)
		for (uint8_t t = 1; t <= N4_SRV_FAST_PER_CONN; t++)
			CHECK(n4_srv_fast_add(l, &f[i], t, &f[i]) != NULL);
	CHECK_EQ(l->n, N4_SRV_FAST_MAX);
	CHECK(n4_srv_fast_add(l, &f[conns - 1], 1, &f[conns - 1]) == NULL);
	n4_srv_fast_drop(loop, l, &f[3].req[2]);
	CHECK(n4_srv_fast_add(l, &f[conns - 1], 1, &f[conns - 1]) != NULL);
	for (unsigned i = 0; i < conns; i++)
		n4_srv_fast_drop_all(loop, l, &f[i]);
	CHECK_EQ(l->n, 0);
	free(f);
	free(l);
	n4_loop_free(loop);
}

TEST(srv_fast_orphans_wait_a_moment_for_their_request)
{
	struct n4_srv_fast_list *l = calloc(1, sizeof(*l));
	struct n4_srv_fast *f = calloc(1, sizeof(*f));
	uint8_t tok[N4_PAYLOAD_SIZE];

	CHECK(l && f);
	memset(tok, 0xa1, sizeof(tok));
	n4_srv_fast_orphan_add(l, tok, 1, 20010, 5000, 7);
	/* A copy from the same IP changes nothing: the first is kept. */
	n4_srv_fast_orphan_add(l, tok, 1, 20019, 5001, 8);
	/* One from elsewhere is kept apart: it cannot keep the real one out. */
	n4_srv_fast_orphan_add(l, tok, 9, 20011, 5001, 8);
	struct n4_srv_fast_req *q = leaf_add(l, f, 1, "flow01", 0xa1, 7);
	CHECK(q != NULL);
	/* From another IP than the request's connection: not its probe. */
	CHECK(!n4_srv_fast_orphan_take(l, q, 5100));
	CHECK(!q->probed);
	q->probe_ip = 1;
	/* Too old. */
	CHECK(!n4_srv_fast_orphan_take(l, q, 5000 + N4_SRV_FAST_ORPHAN_MS + 1));
	CHECK(n4_srv_fast_orphan_take(l, q, 5000 + N4_SRV_FAST_ORPHAN_MS));
	CHECK(q->probed && q->probe_port == 20010 && q->probe_ms == 5000 && q->probe_seq == 7);
	/* Taken once. */
	q->probed = false;
	CHECK(!n4_srv_fast_orphan_take(l, q, 5100));
	/* Time 0 is still a time (ms 0 means a free slot). */
	n4_srv_fast_orphan_add(l, tok, 1, 20012, 0, 9);
	CHECK(n4_srv_fast_orphan_take(l, q, 10));
	CHECK_EQ(q->probe_port, 20012);
	/* A ring of N4_SRV_FAST_ORPHANS: the oldest goes first. */
	q->probed = false;
	n4_srv_fast_orphan_add(l, tok, 1, 20013, 6000, 10);
	for (unsigned i = 0; i < N4_SRV_FAST_ORPHANS; i++) {
		uint8_t other[N4_PAYLOAD_SIZE] = { 1, 2, 3, 4, (uint8_t)(i >> 8), (uint8_t)i };
		n4_srv_fast_orphan_add(l, other, 1, 30000, 6000, 11 + i);
	}
	CHECK(!n4_srv_fast_orphan_take(l, q, 6001));
	free(f);
	free(l);
}

TEST(srv_fast_later_probes_count_only_the_same_ip_after_it)
{
	struct n4_srv_fast_list *l = calloc(1, sizeof(*l));
	struct n4_srv_fast *f = calloc(2, sizeof(*f));

	CHECK(l && f);
	struct n4_srv_fast_req *q = leaf_add(l, &f[0], 1, "flow01", 1, 1);
	struct n4_srv_fast_req *o1 = leaf_add(l, &f[0], 2, "flow02", 2, 1);
	struct n4_srv_fast_req *o2 = leaf_add(l, &f[0], 3, "flow03", 3, 1);
	struct n4_srv_fast_req *o3 = leaf_add(l, &f[0], 4, "flow04", 4, 1);
	struct n4_srv_fast_req *x = leaf_add(l, &f[1], 1, "flow01", 5, 2);
	CHECK(q && o1 && o2 && o3 && x);
	q->probed = true;
	q->probe_seq = 10;
	o1->probed = true, o1->probe_seq = 9;  /* before it */
	o2->probed = true, o2->probe_seq = 11; /* after it */
	o3->probe_seq = 12;		       /* not probed */
	x->probed = true, x->probe_seq = 13;   /* behind another IP */
	CHECK_EQ(n4_srv_fast_later_probes(l, q), 1);
	o3->probed = true;
	CHECK_EQ(n4_srv_fast_later_probes(l, q), 2);
	CHECK_EQ(n4_srv_fast_later_probes(l, o3), 0);
	CHECK_EQ(n4_srv_fast_later_probes(l, o1), 3);
	CHECK_EQ(n4_srv_fast_later_probes(l, x), 0);
	free(f);
	free(l);
}

/* ---- the server, through lib/server_test.h ------------------------------ */

struct cl {
	int fd; /* our end of the socketpair */
	uint8_t token[N4_TOKEN_SIZE];
	const char *ip;
};

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static n4_server *server(void)
{
	struct n4_server_cfg cfg;

	n4_server_cfg_init(&cfg);
	cfg.bind_host = "127.0.0.1";
	cfg.family = AF_INET;
	cfg.port = 0;
	cfg.conn_rate_per_ip = 0;
	cfg.log_rate = 0;
	return n4_server_new(&cfg);
}

static int conn(n4_server *s, const char *ip, uint16_t port, struct cl *c)
{
	int sv[2];
	struct sockaddr_in a = v4(ip, port);

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->ip = ip;
	if (spair(sv))
		return -errno;
	if (n4_server_test_adopt(s, sv[0], (struct sockaddr *)&a, sizeof(a))) {
		close(sv[1]);
		return -EIO;
	}
	c->fd = sv[1];
	return 0;
}

static void run(n4_server *s)
{
	/* The server takes one message per event: run it until it is idle. */
	for (int i = 0; i < 64 && n4_server_test_poll(s) > 0; i++)
		;
}

static int say(n4_server *s, const struct cl *c, const uint8_t *b, size_t n)
{
	ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);

	run(s);
	return w == (ssize_t)n ? 0 : -EIO;
}

static void udp(n4_server *s, const char *ip, uint16_t port, const uint8_t b[N4_MSG_SIZE])
{
	struct sockaddr_in src = v4(ip, port);

	n4_server_test_udp(s, b, N4_MSG_SIZE, (struct sockaddr *)&src, sizeof(src));
	run(s);
}

static bool status_has(const n4_server *s, const char *what)
{
	char line[1280];

	n4_server_status(s, line, sizeof(line));
	return strstr(line, what) != NULL;
}

#define FAST_EXT (N4_EXT_TOKEN | N4_EXT_PROBE | N4_EXT_STAY)
#define IP_A "198.51.100.1"
#define IP_B "203.0.113.1"

/* One client's first path: HELLO, READY (discovery and STAY granted), its
 * EXCHANGE from base and three discovery probes from base+1.. (an
 * incrementing NAT, step 1). */
static int first_path_hello(n4_server *s, struct cl *c, const char *ip, uint16_t port, uint8_t ext)
{
	uint8_t b[N4_MSG_SIZE], id[N4_PAYLOAD_SIZE];

	if (conn(s, ip, port, c))
		return -EIO;
	n4_ident_encode("n4fast", id);
	put(b, N4_CMD_HELLO, ext, id);
	return say(s, c, b, sizeof(b));
}

static int first_path_ready(struct cl *c)
{
	uint8_t b[N4_MSG_SIZE];
	struct n4_msg m;

	if (recv(c->fd, b, sizeof(b), MSG_DONTWAIT) != (ssize_t)sizeof(b) ||
	    n4_wire_decode(b, sizeof(b), N4_CMD_READY, &m))
		return -EPROTO;
	memcpy(c->token, m.payload, N4_TOKEN_SIZE);
	return m.ext;
}

/* ports: the EXCHANGE's source port, then the probes' (NULL: base, base+1..). */
static void first_path_udp(n4_server *s, const struct cl *c, uint16_t base, const uint16_t *ports)
{
	uint8_t b[N4_MSG_SIZE];

	put(b, N4_CMD_EXCHANGE, N4_EXT_TOKEN, c->token);
	udp(s, c->ip, base, b);
	for (uint16_t i = 1; i <= 3; i++) {
		uint8_t ext = N4_EXT_TOKEN | N4_EXCH_PROBE | (i == 3 ? N4_EXCH_LAST : 0);
		put(b, N4_CMD_EXCHANGE, ext, c->token);
		udp(s, c->ip, ports ? ports[i] : (uint16_t)(base + i), b);
	}
}

/* Until c's PEERINFO (PLAN before it), within a short wait; pool (NULL: not
 * wanted) gets the plan's pool. */
static int first_path_peerinfo(n4_server *s, const struct cl *c, struct sockaddr_in *peer,
			       bool *planned, unsigned *pool)
{
	uint8_t b[N4_MSG_SIZE];
	struct n4_plan p;

	for (int i = 0; i < 1000; i++) {
		ssize_t n = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
		if (n == (ssize_t)sizeof(b) && b[0] == N4_CMD_PLAN) {
			*planned = true;
			if (pool && n4_plan_decode(b[1], b + 2, &p))
				return -EPROTO;
			if (pool)
				*pool = p.pool;
		}
		if (n == (ssize_t)sizeof(b) && b[0] == N4_CMD_PEERINFO)
			return n4_peerinfo_decode(b + 2, peer);
		if (n == (ssize_t)sizeof(b))
			continue;
		if (n >= 0)
			return -EPROTO;
		usleep(1000);
		run(s);
	}
	return -ETIMEDOUT;
}

/* A pair whose first path was planned (with discovery when ext asks for it)
 * and whose connections are kept, b from ip_b: 0, 1 when the server has no
 * discovery port (another program holds its port + 1: try another server), <0
 * on failure. */
static int kept_pair(n4_server *s, struct cl *a, struct cl *b, const char *ip_b, uint8_t ext,
		     const uint16_t *ports_b)
{
	struct sockaddr_in pa, pb;
	bool plan_a = false, plan_b = false;

	a->fd = b->fd = -1;
	if (first_path_hello(s, a, IP_A, 40000, ext) || first_path_hello(s, b, ip_b, 40001, ext))
		return -1;
	int ea = first_path_ready(a), eb = first_path_ready(b);
	if (ea < 0 || eb < 0)
		return -2;
	if ((ext & N4_EXT_PROBE) && !(ea & N4_EXT_PROBE))
		return 1;
	if ((ea & ext) != ext || (eb & ext) != ext)
		return -3;
	first_path_udp(s, a, 20000, NULL);
	first_path_udp(s, b, 30000, ports_b);
	if (first_path_peerinfo(s, a, &pa, &plan_a, NULL) ||
	    first_path_peerinfo(s, b, &pb, &plan_b, NULL))
		return -4;
	if (plan_a != !!(ext & N4_EXT_PROBE) || plan_b != plan_a || ntohs(pa.sin_port) != 30000 ||
	    ntohs(pb.sin_port) != 20000)
		return -5;
	if (n4_server_test_clients(s) != 2 || n4_server_test_check(s))
		return -6;
	return 0;
}

/* A server and a kept pair on it (a few tries for a free discovery port). */
static n4_server *kept_server_with(struct cl *a, struct cl *b, const char *ip_b, uint8_t ext,
				   const uint16_t *ports_b)
{
	for (int tries = 0; tries < 8; tries++) {
		n4_server *s = server();
		if (!s)
			return NULL;
		int rc = kept_pair(s, a, b, ip_b, ext, ports_b);
		if (rc == 0)
			return s;
		n4_server_free(s);
		if (a->fd >= 0)
			close(a->fd);
		if (b->fd >= 0)
			close(b->fd);
		a->fd = b->fd = -1;
		if (rc < 0) {
			printf("  kept_pair: %d\n", rc);
			return NULL;
		}
	}
	return NULL;
}

static n4_server *kept_server(struct cl *a, struct cl *b)
{
	return kept_server_with(a, b, IP_B, FAST_EXT, NULL);
}

static void close_pair(n4_server *s, struct cl *a, struct cl *b)
{
	n4_server_free(s);
	if (a->fd >= 0)
		close(a->fd);
	if (b->fd >= 0)
		close(b->fd);
}

/* c's fast request for flow ident ("flow01" unless given), tag, token t. */
static int fast_req(n4_server *s, const struct cl *c, const char *ident, uint8_t tag, uint8_t flags,
		    uint8_t t, uint8_t nonce_byte)
{
	struct n4_fast_req r;
	uint8_t b[N4_FAST_REQ_MAX];

	memset(&r, 0, sizeof(r));
	memcpy(r.ident, ident, N4_PAYLOAD_SIZE);
	r.tag = tag;
	r.flags = flags;
	memset(r.token, t, N4_PAYLOAD_SIZE);
	memset(r.nonce, nonce_byte, 16);
	size_t n = n4_fast_req_encode(&r, b);
	return say(s, c, b, n);
}

static void fast_probe(n4_server *s, const char *ip, uint16_t port, uint8_t t)
{
	uint8_t tok[N4_PAYLOAD_SIZE], b[N4_MSG_SIZE];

	memset(tok, t, sizeof(tok));
	n4_fast_probe_encode(tok, b);
	udp(s, ip, port, b);
}

/* c's next fast answer (or NO), read as the client reads it, within a short
 * wait (an answer may be timed to its partner's); 1, 0 none, -ECONNRESET. */
static int fast_reply(n4_server *s, const struct cl *c, struct n4_fast_reply *r, int wait_ms)
{
	struct n4_flow_note f;

	for (int i = 0;; i++) {
		int rc = n4_stay_poll_any(c->fd, "n4fast", &f, r);
		if (rc == 3)
			return 1;
		if (rc < 0)
			return rc;
		if (rc != 0)
			continue; /* a notice: not what we wait for */
		if (i >= wait_ms)
			return 0;
		usleep(1000);
		run(s);
	}
}

static bool names(const uint8_t msg[N4_MSG_SIZE], uint8_t cmd, const char *ip, uint16_t port)
{
	struct sockaddr_in a, want = v4(ip, port);

	return msg[0] == cmd && n4_peerinfo_decode(msg + 2, &a) == 0 &&
	       a.sin_addr.s_addr == want.sin_addr.s_addr && a.sin_port == want.sin_port;
}

/* Both sides' answers: PLAN before PEERINFO, each PEERINFO the other's probe. */
static int both_answered(n4_server *s, const struct cl *a, const struct cl *b, uint8_t ta,
			 uint8_t tb, uint16_t port_a, uint16_t port_b, unsigned n)
{
	struct n4_fast_reply ra, rb;

	if (fast_reply(s, a, &ra, 1000) != 1 || fast_reply(s, b, &rb, 1000) != 1)
		return -1;
	if (ra.no || rb.no || ra.tag != ta || rb.tag != tb || ra.n != n || rb.n != n)
		return -2;
	if (ra.msgs[0][0] != N4_CMD_PLAN || rb.msgs[0][0] != N4_CMD_PLAN)
		return -3;
	if (!names(ra.msgs[n - 1], N4_CMD_PEERINFO, IP_B, port_b) ||
	    !names(rb.msgs[n - 1], N4_CMD_PEERINFO, IP_A, port_a))
		return -4;
	if (ra.msgs[n - 1][1] != N4_PEER_N4 || rb.msgs[n - 1][1] != N4_PEER_N4)
		return -5;
	return 0;
}

TEST(server_fast_pair_answers_each_side_with_the_others_probe)
{
	struct cl a, b;
	n4_server *s = kept_server(&a, &b);

	CHECK(s != NULL);
	CHECK_EQ(fast_req(s, &a, "flow01", 1, 0, 0xa1, 0), 0);
	fast_probe(s, IP_A, 20010, 0xa1);
	CHECK_EQ(fast_req(s, &b, "flow01", 9, 0, 0xb1, 0), 0);
	CHECK_EQ(n4_server_test_check(s), 0);
	fast_probe(s, IP_B, 30010, 0xb1);
	CHECK_EQ(both_answered(s, &a, &b, 1, 9, 20010, 30010, 2), 0);
	/* The kept connections stay, and the pair's counters say so. */
	CHECK_EQ(n4_server_test_clients(s), 2);
	CHECK_EQ(n4_server_test_check(s), 0);
	CHECK(status_has(s, " fast_flows=1 fast_no=0"));
	/* A second flow of the pair, with the same tags (the first are done). */
	CHECK_EQ(fast_req(s, &b, "flow02", 9, 0, 0xb2, 0), 0);
	CHECK_EQ(fast_req(s, &a, "flow02", 1, 0, 0xa2, 0), 0);
	fast_probe(s, IP_B, 30020, 0xb2);
	fast_probe(s, IP_B, 30020, 0xb2); /* a copy resent against loss */
	fast_probe(s, IP_A, 20020, 0xa2);
	CHECK_EQ(both_answered(s, &a, &b, 1, 9, 20020, 30020, 2), 0);
	CHECK(status_has(s, " fast_flows=2 fast_no=0"));
	close_pair(s, &a, &b);
}

TEST(server_fast_request_alone_is_told_no_after_its_wait)
{
	struct cl a, b;
	struct n4_fast_reply r;
	n4_server *s = kept_server(&a, &b);

	CHECK(s != NULL);
	CHECK_EQ(fast_req(s, &a, "flow01", 4, 0, 0xa1, 0), 0);
	fast_probe(s, IP_A, 20010, 0xa1);
	CHECK_EQ(fast_reply(s, &a, &r, 20), 0); /* it waits */
	/* N4_SRV_FAST_WAIT_MS later (the harness fires the wait at once). */
	n4_server_test_expire_fast(s);
	CHECK_EQ(fast_reply(s, &a, &r, 0), 1);
	CHECK(r.no && r.tag == 4 && r.reason == N4_FAST_NO_PARTNER);
	CHECK_EQ(fast_reply(s, &b, &r, 0), 0);
	/* Both requests but one probe: both told NO. */
	CHECK_EQ(fast_req(s, &a, "flow02", 5, 0, 0xa2, 0), 0);
	CHECK_EQ(fast_req(s, &b, "flow02", 6, 0, 0xb2, 0), 0);
	fast_probe(s, IP_B, 30020, 0xb2);
	CHECK_EQ(fast_reply(s, &a, &r, 20), 0);
	n4_server_test_expire_fast(s);
	CHECK_EQ(fast_reply(s, &a, &r, 0), 1);
	CHECK(r.no && r.tag == 5 && r.reason == N4_FAST_NO_PARTNER);
	CHECK_EQ(fast_reply(s, &b, &r, 0), 1);
	CHECK(r.no && r.tag == 6 && r.reason == N4_FAST_NO_PARTNER);
	CHECK(status_has(s, " fast_flows=0 fast_no=3"));
	CHECK_EQ(n4_server_test_clients(s), 2);
	CHECK_EQ(n4_server_test_check(s), 0);
	close_pair(s, &a, &b);
}

TEST(server_fast_orphan_probe_counts_and_foreign_probes_do_not)
{
	struct cl a, b;
	n4_server *s = kept_server(&a, &b);

	CHECK(s != NULL);
	/* A's probe overtakes its request; another IP's copy of B's token comes
	 * first, before B's request (an orphan from the wrong IP) and after it
	 * (a probe from the wrong IP). */
	fast_probe(s, IP_A, 20010, 0xa1);
	fast_probe(s, "192.0.2.66", 41000, 0xb1);
	CHECK_EQ(fast_req(s, &a, "flow01", 1, 0, 0xa1, 0), 0);
	CHECK_EQ(fast_req(s, &b, "flow01", 2, 0, 0xb1, 0), 0);
	fast_probe(s, "192.0.2.66", 41001, 0xb1);
	fast_probe(s, IP_A, 41002, 0xb1); /* the partner's IP is no better */
	struct n4_fast_reply r;
	CHECK_EQ(fast_reply(s, &a, &r, 50), 0);
	CHECK_EQ(fast_reply(s, &b, &r, 0), 0);
	fast_probe(s, IP_B, 30010, 0xb1);
	CHECK_EQ(both_answered(s, &a, &b, 1, 2, 20010, 30010, 2), 0);
	CHECK_EQ(n4_server_test_check(s), 0);
	close_pair(s, &a, &b);
}

TEST(server_fast_keyed_answer_carries_self_and_the_partners_nonce)
{
	struct cl a, b;
	struct n4_fast_reply ra, rb;
	n4_server *s = kept_server(&a, &b);

	CHECK(s != NULL);
	CHECK_EQ(fast_req(s, &a, "flow01", 1, N4_FAST_KEYED, 0xa1, 0x5a), 0);
	CHECK_EQ(fast_req(s, &b, "flow01", 2, N4_FAST_KEYED, 0xb1, 0x5b), 0);
	fast_probe(s, IP_A, 20010, 0xa1);
	fast_probe(s, IP_B, 30010, 0xb1);
	CHECK_EQ(fast_reply(s, &a, &ra, 1000), 1);
	CHECK_EQ(fast_reply(s, &b, &rb, 1000), 1);
	CHECK(!ra.no && !rb.no);
	/* PLAN, SELF 0 (its own probe as seen), SELF 1..3 (the partner's nonce:
	 * 16 bytes and 2 zero bytes), PEERINFO. */
	CHECK_EQ(ra.n, 6);
	CHECK_EQ(rb.n, 6);
	CHECK_EQ(ra.msgs[0][0], N4_CMD_PLAN);
	CHECK(names(ra.msgs[1], N4_CMD_SELF, IP_A, 20010) && ra.msgs[1][1] == 0);
	CHECK(names(rb.msgs[1], N4_CMD_SELF, IP_B, 30010) && rb.msgs[1][1] == 0);
	uint8_t nonce_a[18], nonce_b[18];
	for (unsigned k = 0; k < 3; k++) {
		CHECK(ra.msgs[2 + k][0] == N4_CMD_SELF && ra.msgs[2 + k][1] == k + 1);
		CHECK(rb.msgs[2 + k][0] == N4_CMD_SELF && rb.msgs[2 + k][1] == k + 1);
		memcpy(nonce_b + 6 * k, ra.msgs[2 + k] + 2, 6);
		memcpy(nonce_a + 6 * k, rb.msgs[2 + k] + 2, 6);
	}
	for (unsigned i = 0; i < 16; i++) {
		CHECK_EQ(nonce_b[i], 0x5b);
		CHECK_EQ(nonce_a[i], 0x5a);
	}
	CHECK(nonce_a[16] == 0 && nonce_a[17] == 0 && nonce_b[16] == 0 && nonce_b[17] == 0);
	CHECK(names(ra.msgs[5], N4_CMD_PEERINFO, IP_B, 30010));
	CHECK(names(rb.msgs[5], N4_CMD_PEERINFO, IP_A, 20010));
	/* Keyed and unkeyed requests for one flow are no pair. */
	CHECK_EQ(fast_req(s, &a, "flow02", 3, N4_FAST_KEYED, 0xa2, 0x5a), 0);
	CHECK_EQ(fast_req(s, &b, "flow02", 4, 0, 0xb2, 0), 0);
	fast_probe(s, IP_A, 20020, 0xa2);
	fast_probe(s, IP_B, 30020, 0xb2);
	CHECK_EQ(fast_reply(s, &a, &ra, 30), 0);
	n4_server_test_expire_fast(s);
	CHECK_EQ(fast_reply(s, &a, &ra, 0), 1);
	CHECK_EQ(fast_reply(s, &b, &rb, 0), 1);
	CHECK(ra.no && rb.no && ra.reason == N4_FAST_NO_PARTNER);
	CHECK_EQ(n4_server_test_check(s), 0);
	close_pair(s, &a, &b);
}

TEST(server_fast_malformed_request_closes_the_kept_connection)
{
	struct cl a, b;
	struct n4_fast_reply r;
	n4_server *s = kept_server(&a, &b);

	CHECK(s != NULL);
	/* TAG without OPEN. */
	const uint8_t tag_first[8] = { 0x18, N4_FAST_TAG, 1, 0, 0, 0, 0, 0 };
	CHECK_EQ(say(s, &a, tag_first, sizeof(tag_first)), 0);
	CHECK_EQ(n4_server_test_clients(s), 1);
	CHECK_EQ(fast_reply(s, &a, &r, 0), -ECONNRESET);
	CHECK_EQ(n4_server_test_check(s), 0);
	/* Unknown flags, on the other one; its request under way is dropped. */
	CHECK_EQ(fast_req(s, &b, "flow01", 2, 0, 0xb1, 0), 0);
	const uint8_t open[8] = { 0x18, N4_FAST_OPEN, 'f', 'l', 'o', 'w', '0', '3' };
	const uint8_t bad[8] = { 0x18, N4_FAST_TAG, 3, 0x80, 0, 0, 0, 0 };
	CHECK_EQ(say(s, &b, open, sizeof(open)), 0);
	CHECK_EQ(n4_server_test_clients(s), 1);
	CHECK_EQ(say(s, &b, bad, sizeof(bad)), 0);
	CHECK_EQ(n4_server_test_clients(s), 0);
	CHECK_EQ(fast_reply(s, &b, &r, 0), -ECONNRESET);
	fast_probe(s, IP_B, 30010, 0xb1); /* its probe finds nothing now */
	n4_server_test_expire_fast(s);
	CHECK_EQ(n4_server_test_check(s), 0);
	close_pair(s, &a, &b);
}

TEST(server_fast_limits_and_the_long_way)
{
	struct cl a, b, c;
	struct n4_fast_reply r;
	n4_server *s = kept_server(&a, &b);

	CHECK(s != NULL);
	/* A tag already under way on this connection: NO (limit). */
	CHECK_EQ(fast_req(s, &a, "flow01", 7, 0, 0xa1, 0), 0);
	CHECK_EQ(fast_req(s, &a, "flow02", 7, 0, 0xa2, 0), 0);
	CHECK_EQ(fast_reply(s, &a, &r, 0), 1);
	CHECK(r.no && r.tag == 7 && r.reason == N4_FAST_NO_LIMIT);
	/* N4_SRV_FAST_PER_CONN under way: the next one is refused. */
	for (uint8_t t = 8; t < 8 + N4_SRV_FAST_PER_CONN - 1; t++)
		CHECK_EQ(fast_req(s, &a, "flow09", t, 0, t, 0), 0);
	CHECK_EQ(fast_reply(s, &a, &r, 0), 0);
	CHECK_EQ(fast_req(s, &a, "flow10", 100, 0, 100, 0), 0);
	CHECK_EQ(fast_reply(s, &a, &r, 0), 1);
	CHECK(r.no && r.tag == 100 && r.reason == N4_FAST_NO_LIMIT);
	/* A HELLO for flow01's identifier: its peer went the long way, so does
	 * the request (NO, at once). */
	uint8_t hb[N4_MSG_SIZE], id[N4_PAYLOAD_SIZE];
	CHECK_EQ(n4_ident_encode("flow01", id), 0);
	put(hb, N4_CMD_HELLO, N4_EXT_TOKEN, id);
	CHECK_EQ(conn(s, "192.0.2.7", 40000, &c), 0);
	CHECK_EQ(say(s, &c, hb, sizeof(hb)), 0);
	CHECK_EQ(fast_reply(s, &a, &r, 0), 1);
	CHECK(r.no && r.tag == 7 && r.reason == N4_FAST_NO_LONG);
	CHECK_EQ(fast_reply(s, &a, &r, 0), 0);
	CHECK_EQ(n4_server_test_check(s), 0);
	/* A FAST message on a connection that is not kept: a malformed HELLO. */
	struct cl d;
	CHECK_EQ(conn(s, "192.0.2.8", 40000, &d), 0);
	CHECK_EQ(fast_req(s, &d, "flow01", 1, 0, 1, 0), 0);
	CHECK_EQ(fast_reply(s, &d, &r, 0), -ECONNRESET);
	CHECK_EQ(n4_server_test_check(s), 0);
	close(c.fd);
	close(d.fd);
	close_pair(s, &a, &b);
}

/* No NAT model from the first path (no discovery), a NAT whose ports fit no
 * arithmetic allocation (random), or one public IP for both sides (the LAN path
 * is the ordinary rendezvous'): NO (plan) to both, at once. */
TEST(server_fast_no_plan_without_models_or_behind_one_ip)
{
	static const uint16_t random_ports[4] = { 30000, 51234, 17771, 42007 };
	const struct {
		const char *ip_b;
		uint8_t ext;
		const uint16_t *ports_b;
	} cases[] = { { IP_B, N4_EXT_TOKEN | N4_EXT_STAY, NULL },
		      { IP_B, FAST_EXT, random_ports },
		      { IP_A, FAST_EXT, NULL } };

	for (unsigned i = 0; i < 3; i++) {
		struct cl a, b;
		struct n4_fast_reply ra, rb;
		n4_server *s =
			kept_server_with(&a, &b, cases[i].ip_b, cases[i].ext, cases[i].ports_b);
		CHECK(s != NULL);
		CHECK_EQ(fast_req(s, &a, "flow01", 1, 0, 0xa1, 0), 0);
		CHECK_EQ(fast_req(s, &b, "flow01", 2, 0, 0xb1, 0), 0);
		fast_probe(s, IP_A, 20010, 0xa1);
		fast_probe(s, cases[i].ip_b, 30010, 0xb1);
		CHECK_EQ(fast_reply(s, &a, &ra, 0), 1);
		CHECK_EQ(fast_reply(s, &b, &rb, 0), 1);
		CHECK(ra.no && ra.tag == 1 && ra.reason == N4_FAST_NO_PLAN);
		CHECK(rb.no && rb.tag == 2 && rb.reason == N4_FAST_NO_PLAN);
		CHECK(status_has(s, " fast_flows=0 fast_no=2"));
		CHECK_EQ(n4_server_test_clients(s), 2);
		CHECK_EQ(n4_server_test_check(s), 0);
		close_pair(s, &a, &b);
	}
}

/* --- other clients' probes behind one IP (srv_proto.c, known_obs) -------- */

/* ms of real time, so that the server's receive times spread as a NAT's do */
static void pause_ms(unsigned ms)
{
	struct timespec t = { 0, (long)ms * 1000000L };

	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

static void exch(n4_server *s, const struct cl *c, uint16_t port, bool probe, bool last)
{
	uint8_t b[N4_MSG_SIZE];
	uint8_t ext = N4_EXT_TOKEN | (probe ? N4_EXCH_PROBE : 0) | (last ? N4_EXCH_LAST : 0);

	put(b, N4_CMD_EXCHANGE, ext, c->token);
	udp(s, c->ip, port, b);
}

/* A's probes leave gaps (20002, 20004, 20005).  With `neighbour`, another client
 * of the server behind A's IP probed exactly those ports meanwhile.  The pools
 * of both sides' plans in *pools; 1: no discovery port (try again). */
static int pools_for(bool neighbour, unsigned *pools)
{
	n4_server *s = server();
	struct cl a, b, n, m;
	int rc = -1;

	a.fd = b.fd = n.fd = m.fd = -1;
	if (!s)
		return -1;
	if (first_path_hello(s, &a, IP_A, 40000, FAST_EXT) ||
	    first_path_hello(s, &b, IP_B, 40001, FAST_EXT))
		goto out;
	int ea = first_path_ready(&a), eb = first_path_ready(&b);
	rc = ea >= 0 && !(ea & N4_EXT_PROBE) ? 1 : -2;
	if (ea < 0 || eb < 0 || !(ea & N4_EXT_PROBE))
		goto out;
	if (neighbour) {
		rc = -3;
		if (first_path_hello(s, &n, IP_A, 40002, FAST_EXT) ||
		    first_path_hello(s, &m, "192.0.2.9", 40003, FAST_EXT) ||
		    first_path_ready(&n) < 0 || first_path_ready(&m) < 0)
			goto out;
	}
	/* the two interleaved behind A's NAT, 3 ms apart */
	exch(s, &a, 20000, false, false);
	if (neighbour)
		exch(s, &n, 20002, false, false);
	pause_ms(3);
	exch(s, &a, 20001, true, false);
	pause_ms(3);
	exch(s, &a, 20003, true, false);
	if (neighbour) {
		exch(s, &n, 20004, true, false);
		exch(s, &n, 20005, true, false);
	}
	pause_ms(3);
	exch(s, &a, 20006, true, true);
	if (neighbour)
		exch(s, &n, 20007, true, true);
	first_path_udp(s, &b, 30000, NULL);
	rc = -4;
	struct sockaddr_in peer;
	bool planned = false;
	pools[0] = pools[1] = 0;
	if (first_path_peerinfo(s, &a, &peer, &planned, &pools[0]) ||
	    first_path_peerinfo(s, &b, &peer, &planned, &pools[1]))
		goto out;
	rc = n4_server_test_check(s) ? -5 : 0;
out:
	if (rc)
		printf("  pools_for(%d): %d\n", neighbour, rc);
	n4_server_free(s);
	for (int i = 0; i < 4; i++) {
		int fd = i == 0 ? a.fd : i == 1 ? b.fd : i == 2 ? n.fd : m.fd;
		if (fd >= 0)
			close(fd);
	}
	return rc;
}

TEST(server_plans_past_the_probes_of_its_clients_behind_one_ip)
{
	/* Two clients behind one carrier NAT probe at once (two players joining a
	 * room, the flows of a call): each sees the other's probes between its
	 * own.  They are no background traffic, and must not inflate the plan. */
	unsigned alone[2] = { 0, 0 }, with[2] = { 0, 0 };
	int rc = 1;

	for (int tries = 0; tries < 8 && rc == 1; tries++)
		rc = pools_for(false, alone);
	CHECK_EQ(rc, 0);
	rc = 1;
	for (int tries = 0; tries < 8 && rc == 1; tries++)
		rc = pools_for(true, with);
	CHECK_EQ(rc, 0);
	printf("  # pools: gaps unexplained %u/%u, explained by the neighbour %u/%u\n", alone[0],
	       alone[1], with[0], with[1]);
	CHECK(alone[0] > 0 && with[0] > 0);
	CHECK(with[0] + with[1] < alone[0] + alone[1]);
}

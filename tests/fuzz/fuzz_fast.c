/* fuzz_fast.c - libFuzzer target for the fast-flow wire (lib/fast.c).  The input is
 * read three ways:
 *   - as 8-byte messages fed to n4_fast_req_take in turn (the server's reading of
 *     a kept connection): a whole request re-encodes to exactly the messages it
 *     was taken from, with a tag, known flags and the nonce's padding zero;
 *   - as one datagram for n4_fast_probe_decode: exactly 8 bytes 0x18 0x00 token;
 *   - as a stream for n4_fast_answer_decode (the client's reading): a whole
 *     answer or NO re-encodes to the bytes it took, never more than given, every
 *     shorter prefix is "not whole yet", and the messages are checked as
 *     fast.h says (no FAST inside, PEERINFO last and only last);
 *   - as what a server wrote on a kept connection, read by n4_stay_poll_any
 *     over a socketpair: it reports exactly the REPUNCHes, FLOWs and fast
 *     answers a walk of the bytes with the decoders finds, in order, skips
 *     8 bytes of anything else (a malformed FAST message too), and ends with
 *     the connection's end, or with 0 when a message is left cut.
 * Every decoder reads only the bytes it was given (ASan). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fast.h"
#include "n4.h"
#include "stay.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_requests(const uint8_t *data, size_t size)
{
	struct n4_fast_rx rx;
	uint8_t taken[N4_FAST_REQ_MAX], again[N4_FAST_REQ_MAX];
	size_t k = 0;

	memset(&rx, 0, sizeof(rx));
	for (size_t at = 0; at + N4_MSG_SIZE <= size; at += N4_MSG_SIZE) {
		const uint8_t *m = data + at;
		int rc = n4_fast_req_take(&rx, m);
		if (rc < 0) {
			if (rc != -EINVAL)
				abort();
			continue; /* the server closes; the reader must stay sound */
		}
		if (m[0] != N4_CMD_FAST)
			abort();
		if (m[1] == N4_FAST_OPEN)
			k = 0;
		if (k >= N4_FAST_REQ_MAX)
			abort(); /* more parts than a request has */
		memcpy(taken + k, m, N4_MSG_SIZE);
		k += N4_MSG_SIZE;
		if (rc == 0) {
			if (rx.parts == 0 || rx.parts != k / N4_MSG_SIZE)
				abort();
			continue;
		}
		if (rc != 1 || rx.parts != 0 || !rx.r.tag || (rx.r.flags & ~N4_FAST_FLAGS))
			abort();
		if ((rx.r.flags & N4_FAST_KEYED) && (rx.r.nonce[16] || rx.r.nonce[17]))
			abort();
		size_t n = n4_fast_req_encode(&rx.r, again);
		if (n != k || n != ((rx.r.flags & N4_FAST_KEYED) ? 48u : 24u) ||
		    memcmp(again, taken, n) != 0)
			abort();
		k = 0;
	}
}

static void check_probe(const uint8_t *data, size_t size)
{
	uint8_t token[N4_PAYLOAD_SIZE], back[N4_MSG_SIZE];
	bool is = size == N4_MSG_SIZE && data[0] == N4_CMD_FAST && data[1] == N4_FAST_PROBE;

	if ((n4_fast_probe_decode(data, size, token) == 0) != is)
		abort();
	if (!is)
		return;
	n4_fast_probe_encode(token, back);
	if (memcmp(back, data, N4_MSG_SIZE) != 0)
		abort();
}

static void check_answer(const uint8_t *data, size_t size)
{
	struct n4_fast_reply r, r2;
	struct n4_msg m;
	uint8_t back[N4_MSG_SIZE];

	int rc = n4_fast_answer_decode(data, size, &r);
	if (rc == -EPROTO || rc == 0) {
		/* Not one, or not whole: a FAST start is never refused for lack of
		 * bytes alone (fewer than 8: 0 unless the first byte is no FAST). */
		if (size && size < N4_MSG_SIZE && (rc == 0) != (data[0] == N4_CMD_FAST))
			abort();
		if (!size && rc != 0)
			abort();
		return;
	}
	if (rc < 0 || (size_t)rc > size || rc % N4_MSG_SIZE)
		abort();
	if (!r.tag || data[0] != N4_CMD_FAST)
		abort();
	if (r.no) {
		if (rc != N4_MSG_SIZE || r.n)
			abort();
		n4_fast_no_msg(r.tag, r.reason, &m);
		n4_wire_encode(&m, back);
		if (memcmp(back, data, N4_MSG_SIZE) != 0)
			abort();
	} else {
		if (!r.n || r.n > N4_FAST_REPLY_MAX || (size_t)rc != (1u + r.n) * N4_MSG_SIZE)
			abort();
		n4_fast_answer_head(r.tag, r.n, &m);
		n4_wire_encode(&m, back);
		if (memcmp(back, data, N4_MSG_SIZE) != 0)
			abort();
		for (unsigned i = 0; i < r.n; i++) {
			if (memcmp(r.msgs[i], data + (1 + i) * N4_MSG_SIZE, N4_MSG_SIZE) != 0 ||
			    r.msgs[i][0] == N4_CMD_FAST ||
			    (r.msgs[i][0] == N4_CMD_PEERINFO) != (i == r.n - 1u))
				abort();
		}
	}
	/* Exactly its own bytes decide it: the same answer from them alone, and
	 * "not whole yet" from any shorter prefix. */
	if (n4_fast_answer_decode(data, (size_t)rc, &r2) != rc || memcmp(&r, &r2, sizeof(r)) != 0)
		abort();
	for (size_t k = 0; k < (size_t)rc; k++)
		if (n4_fast_answer_decode(data, k, &r2) != 0)
			abort();
}

/* The bytes as a kept connection's stream, read by n4_stay_poll_any, against a
 * walk of them with the decoders. */
static void check_stream(const uint8_t *data, size_t size)
{
	static const uint8_t ident[N4_PAYLOAD_SIZE] = { 'n', '4', 'n', '4', 'n', '4' };
	int sv[2];

	if (size > 4096 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
		return;
	if (size && write(sv[1], data, size) != (ssize_t)size)
		abort();
	close(sv[1]);
	size_t at = 0;
	for (;;) {
		struct n4_flow_note note, want_note;
		struct n4_fast_reply r, want_r;
		int want = -ECONNRESET;
		/* The walk: the next notice, or where the stream stops. */
		while (at < size) {
			size_t left = size - at;
			if (data[at] == N4_CMD_FAST) {
				size_t peek = left < 72 ? left : 72;
				int rc = n4_fast_answer_decode(data + at, peek, &want_r);
				if (rc == 0) {
					want = 0;
					break;
				}
				if (rc > 0) {
					at += (size_t)rc;
					want = 3;
					break;
				}
				at += N4_MSG_SIZE; /* -EPROTO: never with fewer than 8 */
				continue;
			}
			if (left < N4_MSG_SIZE) {
				want = 0;
				break;
			}
			const uint8_t *m = data + at;
			at += N4_MSG_SIZE;
			if (n4_stay_decode(m, N4_MSG_SIZE, ident) == 0) {
				want = 1;
				break;
			}
			if (n4_stay_flow_decode(m, N4_MSG_SIZE, &want_note) == 0) {
				want = 2;
				break;
			}
		}
		int got = n4_stay_poll_any(sv[0], "n4n4n4", &note, &r);
		if (got != want)
			abort();
		if (got == 2 && memcmp(&note, &want_note, sizeof(note)) != 0)
			abort();
		if (got == 3 && memcmp(&r, &want_r, sizeof(r)) != 0)
			abort();
		if (got <= 0)
			break;
	}
	close(sv[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_requests(data, size);
	check_probe(data, size);
	check_answer(data, size);
	check_stream(data, size);
	return 0;
}

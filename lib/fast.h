/* fast.h - a further flow's rendezvous over the pair's kept connections ("fast
 * flows", N4_CMD_FAST, doc/PROTOCOL.md "Fast flows"): the wire, both ends.
 *
 * A flow of a pair whose first path won with kept connections (N4_EXT_STAY) does
 * not need a rendezvous of its own: the server knows both NATs from the first
 * path's discovery.  Each side writes one request on its kept connection and
 * sends one UDP probe from the flow's socket 0; the server pairs the two
 * requests on the flow's identifier (only among kept connections of one base
 * identifier), rebases each NAT's model on its probe, and answers each side with
 * the messages a rendezvous ends with (TUNE, PLAN, SELF, PEERINFO) in one tagged
 * group, or NO: the client then runs an ordinary rendezvous.
 *
 * Client -> server, on a kept connection, in one write (8-byte messages):
 *   18 01 ident(6)              the flow's wire identifier (keyed: derived short id)
 *   18 02 tag flags 0 0 0 0     tag 1..255 (names the answer), flags below
 *   18 03 token(6)              the probe's token (getrandom)
 *   18 04..06 nonce             N4_FAST_KEYED only: this round's PUNCH nonce, 16
 *                               bytes and 2 zero bytes, as KEYID parts 3-5
 * Client -> server, UDP from the flow's socket 0 to the main port:
 *   18 00 token(6)              the probe (resent until the answer)
 * Server -> client, on the kept connection:
 *   18 80 tag n 0 0 0 0         an answer: n (1..N4_FAST_REPLY_MAX) messages follow,
 *                               the last one PEERINFO
 *   18 81 tag reason 0 0 0 0    no fast flow (reason below): rendezvous as before */
#ifndef N4_FAST_H
#define N4_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "n4.h"
#include "wire.h"

#define N4_FAST_OPEN 0x01u
#define N4_FAST_TAG 0x02u
#define N4_FAST_TOKEN 0x03u
#define N4_FAST_NONCE 0x04u /* .. 0x06 */
#define N4_FAST_PROBE 0x00u
#define N4_FAST_ANSWER 0x80u
#define N4_FAST_NO 0x81u

/* Request flags. */
#define N4_FAST_KEYED 0x01u   /* nonce parts follow; SELF in the answer */
#define N4_FAST_NOSWEEP 0x02u /* the client accepts only a direct path */
#define N4_FAST_FLAGS (N4_FAST_KEYED | N4_FAST_NOSWEEP)

#define N4_FAST_NONCE_PARTS 3
#define N4_FAST_REQ_MAX ((3 + N4_FAST_NONCE_PARTS) * N4_MSG_SIZE)

struct n4_fast_req {
	uint8_t ident[N4_PAYLOAD_SIZE];
	uint8_t tag, flags;
	uint8_t token[N4_PAYLOAD_SIZE];
	uint8_t nonce[N4_FAST_NONCE_PARTS * N4_PAYLOAD_SIZE]; /* 16 bytes used */
};

/* A request in the bytes it is written as: returns its length (24 or 48 bytes).
 * tag must not be 0. */
size_t n4_fast_req_encode(const struct n4_fast_req *r, uint8_t out[N4_FAST_REQ_MAX]);

/* The server's reading of one request, a message at a time. */
struct n4_fast_rx {
	struct n4_fast_req r;
	uint8_t parts; /* parts taken so far */
};
/* Take one 8-byte message (its command already known to be N4_CMD_FAST): 1 the
 * request is whole (rx->r), 0 more parts to come, -EINVAL out of order or
 * malformed (a tag 0, unknown flags, nonce padding not zero). */
int n4_fast_req_take(struct n4_fast_rx *rx, const uint8_t msg[N4_MSG_SIZE]);

void n4_fast_probe_encode(const uint8_t token[N4_PAYLOAD_SIZE], uint8_t out[N4_MSG_SIZE]);
/* 0 and the token when buf/len is exactly a probe; -EPROTO otherwise. */
int n4_fast_probe_decode(const void *buf, size_t len, uint8_t token[N4_PAYLOAD_SIZE]);

/* The server's answer head (n messages follow) and its NO. */
void n4_fast_answer_head(uint8_t tag, unsigned n, struct n4_msg *m);
void n4_fast_no_msg(uint8_t tag, uint8_t reason, struct n4_msg *m);

/* What stands at the start of buf (len bytes received so far, more may come):
 * > 0 the length of a whole answer or NO there (*r filled), 0 it is one but not
 * whole yet, -EPROTO it is not one (buf[0] is not N4_CMD_FAST) or is malformed
 * (a tag 0, a count out of range, an unknown subcode, an answer whose last
 * message is not PEERINFO or that holds a FAST message). */
int n4_fast_answer_decode(const uint8_t *buf, size_t len, struct n4_fast_reply *r);

#endif

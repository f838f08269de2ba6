/* test_stay.c - the client's end of a kept connection (lib/stay.c): the FLOW codec,
 * n4_stay_flow_send's bytes and errors, and n4_stay_poll_note / n4_stay_poll over a
 * socketpair standing in for the server: several notices in one segment, one split
 * over two, messages to skip, the end of the connection. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "n4.h"
#include "stay.h"
#include "test.h"
#include "wire.h"

static void repunch(uint8_t out[N4_MSG_SIZE], const char *ident)
{
	uint8_t id[N4_PAYLOAD_SIZE];
	struct n4_msg m;
	n4_ident_encode(ident, id);
	n4_msg_init(&m, N4_CMD_REPUNCH, 0, id);
	n4_wire_encode(&m, out);
}

static void flow(uint8_t out[N4_MSG_SIZE], uint8_t ext, uint16_t from, uint16_t to, uint16_t nonce)
{
	struct n4_flow_note f = { .from_port = from, .to_port = to, .nonce = nonce };
	struct n4_msg m;
	n4_flow_encode(&f, ext, &m);
	n4_wire_encode(&m, out);
}

static int pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
}

TEST(flow_codec_roundtrip_and_rejections)
{
	uint8_t b[N4_MSG_SIZE];
	struct n4_flow_note f;
	flow(b, 0, 40000, 5000, 0x1234);
	const uint8_t want[N4_MSG_SIZE] = { 0x16, 0x00, 0x9c, 0x40, 0x13, 0x88, 0x12, 0x34 };
	CHECK(memcmp(b, want, sizeof(want)) == 0);
	CHECK_EQ(n4_flow_decode(b, sizeof(b), 0, &f), 0);
	CHECK(f.from_port == 40000 && f.to_port == 5000 && f.nonce == 0x1234);
	CHECK_EQ(n4_flow_decode(b, sizeof(b), N4_FLOW_FORWARDED, &f), -EINVAL);
	CHECK_EQ(n4_flow_decode(b, sizeof(b) - 1, 0, &f), -EMSGSIZE);
	CHECK_EQ(n4_stay_flow_decode(b, sizeof(b), &f), -EPROTO); /* not forwarded */
	flow(b, N4_FLOW_FORWARDED, 40000, 5000, 0);
	CHECK_EQ(n4_stay_flow_decode(b, sizeof(b), &f), 0);
	CHECK(f.nonce == 0);
	flow(b, N4_FLOW_FORWARDED, 0, 5000, 1);
	CHECK_EQ(n4_stay_flow_decode(b, sizeof(b), &f), -EPROTO);
	flow(b, N4_FLOW_FORWARDED, 5000, 0, 1);
	CHECK_EQ(n4_stay_flow_decode(b, sizeof(b), &f), -EPROTO);
	repunch(b, "n4n4n4");
	CHECK_EQ(n4_flow_decode(b, sizeof(b), 0, &f), -EPROTO);
}

TEST(stay_flow_send_writes_one_message)
{
	int sv[2];
	uint8_t b[16];
	CHECK(pair(sv) == 0);
	CHECK_EQ(n4_stay_flow_send(sv[0], 40000, 5000, 0xbeef), 0);
	CHECK_EQ(read(sv[1], b, sizeof(b)), N4_MSG_SIZE);
	const uint8_t want[N4_MSG_SIZE] = { 0x16, 0x00, 0x9c, 0x40, 0x13, 0x88, 0xbe, 0xef };
	CHECK(memcmp(b, want, sizeof(want)) == 0);
	CHECK_EQ(n4_stay_flow_send(sv[0], 0, 5000, 1), -EINVAL);
	CHECK_EQ(n4_stay_flow_send(sv[0], 5000, 0, 1), -EINVAL);
	/* Nobody reads: the socket fills, and a full socket says so. */
	int rc = 0;
	for (int i = 0; i < 1000000 && rc == 0; i++)
		rc = n4_stay_flow_send(sv[0], 1, 2, 3);
	CHECK_EQ(rc, -EAGAIN);
	close(sv[1]);
	CHECK_EQ(n4_stay_flow_send(sv[0], 1, 2, 3), -EPIPE);
	close(sv[0]);
}

/* REPUNCH, an unknown message, two FLOWs and a FLOW in the client's form in one
 * segment: one notice per call, in order, the others skipped. */
TEST(stay_poll_note_reports_each_notice_of_one_segment)
{
	int sv[2];
	uint8_t b[6 * N4_MSG_SIZE];
	struct n4_flow_note f;
	CHECK(pair(sv) == 0);
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), 0);
	flow(b, N4_FLOW_FORWARDED, 6000, 7000, 1);
	repunch(b + 8, "n4n4n4");
	memset(b + 16, 0x7f, N4_MSG_SIZE);
	flow(b + 24, 0, 6001, 7001, 2); /* the form a server never sends */
	repunch(b + 32, "other");	/* another identifier's */
	flow(b + 40, N4_FLOW_FORWARDED, 6002, 7002, 3);
	CHECK_EQ(write(sv[1], b, sizeof(b)), (ssize_t)sizeof(b));
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), 2);
	CHECK(f.from_port == 6000 && f.to_port == 7000 && f.nonce == 1);
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), 1);
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), 2);
	CHECK(f.from_port == 6002 && f.to_port == 7002 && f.nonce == 3);
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), 0);
	close(sv[1]);
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), -ECONNRESET);
	CHECK_EQ(n4_stay_poll_note(sv[0], "bad id", &f), -EINVAL);
	close(sv[0]);
}

/* A FLOW split over two segments is reported once it is whole. */
TEST(stay_poll_note_waits_for_a_split_message)
{
	int sv[2];
	uint8_t b[2 * N4_MSG_SIZE];
	struct n4_flow_note f;
	CHECK(pair(sv) == 0);
	flow(b, N4_FLOW_FORWARDED, 6000, 7000, 9);
	flow(b + 8, N4_FLOW_FORWARDED, 6001, 7001, 10);
	CHECK_EQ(write(sv[1], b, 5), 5);
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), 0);
	CHECK_EQ(write(sv[1], b + 5, 6), 6);
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), 2);
	CHECK(f.nonce == 9);
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), 0);
	CHECK_EQ(write(sv[1], b + 11, 5), 5);
	CHECK_EQ(n4_stay_poll_note(sv[0], "n4n4n4", &f), 2);
	CHECK(f.nonce == 10 && f.from_port == 6001);
	close(sv[0]);
	close(sv[1]);
}

/* n4_stay_poll as before: FLOWs consumed and ignored, a REPUNCH among them is
 * reported, the end of the connection after it on the next call. */
TEST(stay_poll_ignores_flows_and_keeps_its_answers)
{
	int sv[2];
	uint8_t b[4 * N4_MSG_SIZE];
	CHECK(pair(sv) == 0);
	flow(b, N4_FLOW_FORWARDED, 6000, 7000, 1);
	flow(b + 8, N4_FLOW_FORWARDED, 6001, 7001, 2);
	CHECK_EQ(write(sv[1], b, 16), 16);
	CHECK_EQ(n4_stay_poll(sv[0], "n4n4n4"), 0);
	flow(b, N4_FLOW_FORWARDED, 6000, 7000, 1);
	repunch(b + 8, "n4n4n4");
	flow(b + 16, N4_FLOW_FORWARDED, 6001, 7001, 2);
	repunch(b + 24, "n4n4n4");
	CHECK_EQ(write(sv[1], b, sizeof(b)), (ssize_t)sizeof(b));
	close(sv[1]);
	CHECK_EQ(n4_stay_poll(sv[0], "n4n4n4"), 1);
	CHECK_EQ(n4_stay_poll(sv[0], "n4n4n4"), -ECONNRESET);
	close(sv[0]);
}

/* test_session.c - the dead-path rule and the keepalive datagram (lib/session.c). */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "n4.h"
#include "session.h"
#include "test.h"

/* Drive the rule at 100 ms ticks: tx/rx are the caller's counters. */
TEST(session_two_way_stream_that_stops_hearing_is_dead_after_dead_ms)
{
	struct n4_liveness l;
	uint64_t t = 1000, tx = 0, rx = 0;

	n4_liveness_reset(&l, tx, rx);
	for (int i = 0; i < 20; i++, t += 100)
		CHECK(!n4_liveness_tick(&l, t, ++tx, ++rx));
	/* the peer goes quiet; we keep sending */
	uint64_t silent_at = t;
	bool dead = false;
	for (; t < silent_at + 5000 && !dead; t += 100)
		dead = n4_liveness_tick(&l, t, ++tx, rx);
	CHECK(dead);
	CHECK(t - 100 - silent_at >= N4_DEAD_MS);
	CHECK(t - 100 - silent_at <= N4_DEAD_MS + 200);
	CHECK(n4_liveness_silent_ms(&l, t) >= N4_DEAD_MS);
}

TEST(session_one_way_sender_is_never_judged_dead)
{
	struct n4_liveness l;
	uint64_t tx = 0;

	n4_liveness_reset(&l, 0, 0);
	for (uint64_t t = 0; t < 60000; t += 100)
		CHECK(!n4_liveness_tick(&l, t, ++tx, 0));
}

TEST(session_silence_on_both_sides_is_not_death)
{
	struct n4_liveness l;
	uint64_t tx = 0, rx = 0;

	n4_liveness_reset(&l, 0, 0);
	CHECK(!n4_liveness_tick(&l, 100, ++tx, ++rx));
	for (uint64_t t = 200; t < 30000; t += 100)
		CHECK(!n4_liveness_tick(&l, t, tx, rx));
	/* one unanswered request after the pause is not enough either */
	CHECK(!n4_liveness_tick(&l, 30000, ++tx, rx));
	for (uint64_t t = 30100; t < 40000; t += 100)
		CHECK(!n4_liveness_tick(&l, t, tx, rx));
}

TEST(session_an_answer_resets_the_clock)
{
	struct n4_liveness l;
	uint64_t tx = 0, rx = 0, t = 0;

	n4_liveness_reset(&l, 0, 0);
	CHECK(!n4_liveness_tick(&l, t += 100, ++tx, ++rx));
	for (int i = 0; i < 15; i++)
		CHECK(!n4_liveness_tick(&l, t += 100, ++tx, rx));
	CHECK(!n4_liveness_tick(&l, t += 100, ++tx, ++rx)); /* heard at 1.6 s */
	for (int i = 0; i < 15; i++)
		CHECK(!n4_liveness_tick(&l, t += 100, ++tx, rx));
}

TEST(session_sink_of_a_stream_that_stops_is_dead)
{
	struct n4_liveness l;
	uint64_t rx = 0, t = 0;

	n4_liveness_reset(&l, 0, 0);
	for (int i = 0; i < 30; i++) /* 3 s of one-way stream */
		CHECK(!n4_liveness_tick(&l, t += 100, 0, ++rx));
	uint64_t stop = t;
	bool dead = false;
	while (!dead && t < stop + 5000)
		dead = n4_liveness_tick(&l, t += 100, 0, rx);
	CHECK(dead);
	CHECK(t - stop >= N4_DEAD_MS && t - stop <= N4_DEAD_MS + 100);
	CHECK(n4_liveness_silent_ms(&l, t) >= N4_DEAD_MS);
}

TEST(session_a_responder_whose_client_goes_idle_is_not_dead)
{
	struct n4_liveness l;
	uint64_t tx = 0, rx = 0, t = 0;

	n4_liveness_reset(&l, 0, 0);
	for (int i = 0; i < 30; i++) /* requests in, answers out */
		CHECK(!n4_liveness_tick(&l, t += 100, ++tx, ++rx));
	for (int i = 0; i < 100; i++) /* the client is idle: both quiet */
		CHECK(!n4_liveness_tick(&l, t += 100, tx, rx));
}

TEST(session_keepalive_is_a_punch_with_the_given_ttl)
{
	int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	uint8_t ident[N4_PAYLOAD_SIZE] = { 'k', 'e', 'e', 'p', ' ', ' ' };

	CHECK(rx >= 0 && tx >= 0);
	CHECK_EQ(bind(rx, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(getsockname(rx, (struct sockaddr *)&a, &alen), 0);
	CHECK_EQ(setsockopt(rx, IPPROTO_IP, IP_RECVTTL, &one, sizeof(one)), 0);
	CHECK_EQ(n4_keepalive_send(tx, (struct sockaddr *)&a, sizeof(a), ident, 7), 0);

	uint8_t buf[64];
	char ctl[64];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)
	};
	ssize_t n = recvmsg(rx, &mh, 0);
	CHECK_EQ(n, 8);
	CHECK(n4_is_punch(buf, 8, "keep"));
	int ttl = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL)
			memcpy(&ttl, CMSG_DATA(c), sizeof(ttl));
	CHECK_EQ(ttl, 7);
	/* the socket's own TTL is untouched: the program's datagrams keep theirs */
	int sock_ttl = 0;
	socklen_t tl = sizeof(sock_ttl);
	CHECK_EQ(getsockopt(tx, IPPROTO_IP, IP_TTL, &sock_ttl, &tl), 0);
	CHECK(sock_ttl != 7);
	close(rx);
	close(tx);
}

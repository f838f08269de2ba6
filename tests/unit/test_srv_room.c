/* test_srv_room.c - the server's side of rooms.  First the leaf (lib/srv_room.c) on
 * a clock of our own: decode of every subcode, HOSTED/TAKEN/REFUSED bytes, one host
 * per room, keyed rooms admit only their long id, 8 rooms per source, 32 held
 * joiners and 20 joins/s (burst 40) per room, tickets answer only the joiner they
 * were announced for and only once, a room lingers 30 s after its host and its held
 * joiners are announced again to the next one, and nothing outlives its last user.
 * Then the protocol (lib/srv_proto.c "rooms") driven through lib/server_test.h:
 * registration, a join announced and answered into PEERINFOs, refusals, two
 * joiners who never learn each other, a keyed room, and the server's own
 * bookkeeping check after every step. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "n4.h"
#include "server_test.h"
#include "srv_room.h"
#include "test.h"
#include "wire.h"

/* ---- the leaf ---------------------------------------------------------- */

static const uint8_t ID_A[N4_PAYLOAD_SIZE] = { 'r', 'o', 'o', 'm', 'a', 'a' };
static const uint8_t ID_B[N4_PAYLOAD_SIZE] = { 'r', 'o', 'o', 'm', 'b', 'b' };

static void src_of(uint8_t src[16], uint8_t last)
{
	memset(src, 0, 16);
	src[10] = src[11] = 0xff; /* v4-mapped, as n4_ipkey */
	src[12] = 198;
	src[13] = 51;
	src[14] = 100;
	src[15] = last;
}

static void long_of(uint8_t l[N4_LONGID_SIZE], uint8_t v)
{
	memset(l, v, N4_LONGID_SIZE);
}

/* A side as the protocol makes one: owner set, HOSTING with max joiners. */
static void side_init(struct n4_srv_room_side *s, uint16_t max_joiners)
{
	memset(s, 0, sizeof(*s));
	s->owner = s;
	s->role = N4_ROLE_HOSTING;
	s->max_joiners = max_joiners;
}

static int host(n4_srv_rooms *r, struct n4_srv_room_side *s, bool keyed, const uint8_t *ident,
		uint8_t longv, uint8_t srcv, uint64_t now, uint8_t *reason)
{
	uint8_t src[16], l[N4_LONGID_SIZE];

	src_of(src, srcv);
	long_of(l, longv);
	side_init(s, s->max_joiners ? s->max_joiners : 32);
	return n4_srv_room_host(r, s, keyed, ident, keyed ? l : NULL, src, now, reason);
}

/* A client saying HELLO for the room, then JOINER: 1 announced, 0 held, <0. */
static int join(n4_srv_rooms *r, struct n4_srv_room_side *j, bool keyed, const uint8_t *ident,
		uint8_t longv, uint64_t now, struct n4_msg out[2], uint8_t *reason)
{
	uint8_t l[N4_LONGID_SIZE], pid[N4_PAYLOAD_SIZE] = { 'p', 'e', 'e', 'r', 0, 0 };
	bool wrong = true;
	struct n4_srv_room_side *to_host = NULL;

	memset(j, 0, sizeof(*j));
	j->owner = j;
	long_of(l, longv);
	struct n4_srv_room *room = n4_srv_room_find(r, keyed, ident, keyed ? l : NULL, &wrong, now);
	if (!room)
		return wrong ? -EKEYREJECTED : -ENOENT;
	n4_srv_room_enter(room, j);
	pid[4] = (uint8_t)((uintptr_t)j >> 4);
	pid[5] = (uint8_t)((uintptr_t)j >> 12);
	return n4_srv_room_joiner(r, j, pid, now, &to_host, out, reason);
}

/* The host's answer run: a member of the room that names a ticket. */
static struct n4_srv_room_side *answer(n4_srv_rooms *r, struct n4_srv_room_side *a, bool keyed,
				       const uint8_t *ident, uint8_t longv, const uint8_t *ticket,
				       uint64_t now)
{
	uint8_t l[N4_LONGID_SIZE];
	bool wrong;

	memset(a, 0, sizeof(*a));
	a->owner = a;
	long_of(l, longv);
	struct n4_srv_room *room = n4_srv_room_find(r, keyed, ident, keyed ? l : NULL, &wrong, now);
	if (!room)
		return NULL;
	n4_srv_room_enter(room, a);
	return n4_srv_room_answer(a, ticket);
}

TEST(srv_room_decode_every_subcode)
{
	uint8_t msg[N4_MSG_SIZE] = { N4_CMD_ROOM, 0, 1, 2, 3, 4, 5, 6 };
	struct n4_room_msg m;

	for (unsigned sub = 0; sub < 256; sub++) {
		msg[1] = (uint8_t)sub;
		int want = sub == N4_ROOM_HOST || sub == N4_ROOM_JOINER || sub == N4_ROOM_ANSWER
				   ? 0
				   : -EPROTO;
		if (sub == N4_ROOM_HOST)
			msg[2] = 0, msg[3] = 8;
		CHECK_EQ(n4_srv_room_decode(msg, &m), want);
		if (want == 0)
			CHECK_EQ(m.sub, sub);
		msg[2] = 1, msg[3] = 2;
	}
	/* JOINER and ANSWER carry their 6 bytes whole. */
	msg[1] = N4_ROOM_ANSWER;
	CHECK_EQ(n4_srv_room_decode(msg, &m), 0);
	CHECK(memcmp(m.id, msg + 2, N4_PAYLOAD_SIZE) == 0);
	/* Any other command, even with a room subcode, is not a ROOM message. */
	for (unsigned cmd = 0; cmd < 256; cmd++) {
		msg[0] = (uint8_t)cmd;
		msg[1] = N4_ROOM_JOINER;
		if (cmd != N4_CMD_ROOM)
			CHECK_EQ(n4_srv_room_decode(msg, &m), -EPROTO);
	}
}

TEST(srv_room_decode_host_max_joiners_bounds)
{
	uint8_t msg[N4_MSG_SIZE] = { N4_CMD_ROOM, N4_ROOM_HOST, 0, 0, 0, 0, 0, 0 };
	struct n4_room_msg m;

	for (unsigned n = 0; n <= 0xffff; n++) {
		msg[2] = (uint8_t)(n >> 8);
		msg[3] = (uint8_t)n;
		int rc = n4_srv_room_decode(msg, &m);
		if (n == 0 || n > N4_ROOM_MAX_JOINERS) {
			CHECK_EQ(rc, -EPROTO);
		} else {
			CHECK_EQ(rc, 0);
			CHECK_EQ(m.max_joiners, n);
		}
	}
	/* The bytes after the count are the client's business: ignored. */
	msg[2] = 0, msg[3] = 1;
	memset(msg + 4, 0xff, 4);
	CHECK_EQ(n4_srv_room_decode(msg, &m), 0);
	CHECK_EQ(m.max_joiners, 1);
}

TEST(srv_room_reply_bytes)
{
	struct n4_msg m;
	uint8_t b[N4_MSG_SIZE];
	const uint8_t hosted[N4_MSG_SIZE] = { N4_CMD_ROOM, N4_ROOM_HOSTED, 0, 0, 0, 0, 0, 0 };
	const uint8_t refused[N4_MSG_SIZE] = { N4_CMD_ROOM, N4_ROOM_REFUSED, 3, 0, 0, 0, 0, 0 };

	n4_srv_room_reply(N4_ROOM_HOSTED, 0, &m);
	n4_wire_encode(&m, b);
	CHECK(memcmp(b, hosted, sizeof(b)) == 0);
	n4_srv_room_reply(N4_ROOM_REFUSED, N4_ROOM_R_KEY, &m);
	n4_wire_encode(&m, b);
	CHECK(memcmp(b, refused, sizeof(b)) == 0);
	/* The client side reads them with the ordinary decoder. */
	CHECK_EQ(n4_wire_decode(b, sizeof(b), N4_CMD_ROOM, &m), 0);
	CHECK_EQ(m.ext, N4_ROOM_REFUSED);
	CHECK_EQ(m.payload[0], N4_ROOM_R_KEY);
}

TEST(srv_room_one_host_per_room)
{
	n4_srv_rooms *r = n4_srv_rooms_new(0);
	struct n4_srv_room_side h1 = { 0 }, h2 = { 0 }, h3 = { 0 }, h4 = { 0 };
	uint8_t reason = 0;

	CHECK(r != NULL);
	CHECK_EQ(host(r, &h1, false, ID_A, 0, 1, 1000, &reason), 0);
	CHECK_EQ(h1.role, N4_ROLE_HOST);
	CHECK(n4_srv_room_hosted(h1.room));
	CHECK_EQ(n4_srv_rooms_count(r), 1);
	/* Same identifier, from anywhere: taken, and the first keeps it. */
	CHECK_EQ(host(r, &h2, false, ID_A, 0, 2, 1000, &reason), -EADDRINUSE);
	CHECK_EQ(h2.role, N4_ROLE_HOSTING);
	CHECK(h2.room == NULL);
	CHECK_EQ(host(r, &h2, false, ID_A, 0, 1, 1000, &reason), -EADDRINUSE);
	/* A keyed room on the same 6 bytes is another room; so is another ident. */
	CHECK_EQ(host(r, &h3, true, ID_A, 0x11, 1, 1000, &reason), 0);
	CHECK(h3.room != h1.room);
	CHECK_EQ(host(r, &h4, false, ID_B, 0, 1, 1000, &reason), 0);
	CHECK_EQ(n4_srv_rooms_count(r), 3);
	/* Same key again: taken too. */
	CHECK_EQ(host(r, &h2, true, ID_A, 0x11, 3, 1000, &reason), -EADDRINUSE);
	n4_srv_room_leave(r, &h1, 2000);
	n4_srv_room_leave(r, &h3, 2000);
	n4_srv_room_leave(r, &h4, 2000);
	n4_srv_room_leave(r, &h2, 2000); /* never registered: nothing to forget */
	CHECK_EQ(h1.role, N4_ROLE_NONE);
	CHECK_EQ(n4_srv_rooms_count(r), 3); /* lingering */
	n4_srv_rooms_sweep(r, 2000 + N4_ROOM_LINGER_MS);
	CHECK_EQ(n4_srv_rooms_count(r), 0);
	n4_srv_rooms_free(r);
}

TEST(srv_room_rooms_per_source_capped_lingering_too)
{
	n4_srv_rooms *r = n4_srv_rooms_new(16);
	struct n4_srv_room_side h[N4_ROOMS_PER_SOURCE + 3];
	uint8_t ident[N4_PAYLOAD_SIZE] = { 'c', 'a', 'p', '0', '0', '0' }, reason = 0;
	const unsigned X = N4_ROOMS_PER_SOURCE, Y = X + 1, Z = X + 2;

	CHECK(r != NULL);
	memset(h, 0, sizeof(h));
	for (unsigned i = 0; i < X; i++) {
		ident[5] = (uint8_t)('a' + i);
		CHECK_EQ(host(r, &h[i], false, ident, 0, 7, 0, &reason), 0);
	}
	ident[5] = 'z';
	reason = 0;
	CHECK_EQ(host(r, &h[X], false, ident, 0, 7, 0, &reason), -EACCES);
	CHECK_EQ(reason, N4_ROOM_R_LIMITS);
	CHECK_EQ(n4_srv_rooms_count(r), X); /* the refused one left nothing */
	/* Another source is not held back. */
	CHECK_EQ(host(r, &h[Z], false, ident, 0, 8, 0, &reason), 0);
	/* A host that left keeps its slot while its room lingers: closing and
	 * registering anew in a loop piles up nothing... */
	n4_srv_room_leave(r, &h[0], 10);
	ident[5] = 'y';
	CHECK_EQ(host(r, &h[X], false, ident, 0, 7, 10, &reason), -EACCES);
	/* ... and coming back it takes its room, in that same slot. */
	ident[5] = 'a';
	CHECK_EQ(host(r, &h[0], false, ident, 0, 7, 20, &reason), 0);
	/* Taken over from another source: the slot moves with it. */
	n4_srv_room_leave(r, &h[0], 30);
	CHECK_EQ(host(r, &h[Y], false, ident, 0, 9, 40, &reason), 0);
	ident[5] = 'y';
	CHECK_EQ(host(r, &h[X], false, ident, 0, 7, 40, &reason), 0);
	/* The linger over (the sweep frees the room), the slot is free. */
	n4_srv_room_leave(r, &h[1], 50);
	ident[5] = 'x';
	CHECK_EQ(host(r, &h[0], false, ident, 0, 7, 60, &reason), -EACCES);
	n4_srv_rooms_sweep(r, 50 + N4_ROOM_LINGER_MS);
	CHECK_EQ(host(r, &h[0], false, ident, 0, 7, 50 + N4_ROOM_LINGER_MS, &reason), 0);
	for (unsigned i = 0; i < Z + 1; i++)
		n4_srv_room_leave(r, &h[i], 40000);
	n4_srv_rooms_sweep(r, 40000 + N4_ROOM_LINGER_MS);
	CHECK_EQ(n4_srv_rooms_count(r), 0);
	/* Every source count went back to zero: 8 more from the same source. */
	for (unsigned i = 0; i < X; i++) {
		ident[5] = (uint8_t)('a' + i);
		CHECK_EQ(host(r, &h[i], false, ident, 0, 7, 80000, &reason), 0);
	}
	n4_srv_rooms_free(r); /* with live rooms: frees them all (LeakSanitizer) */
}

TEST(srv_room_find_keyed_needs_the_long_id)
{
	n4_srv_rooms *r = n4_srv_rooms_new(0);
	struct n4_srv_room_side h = { 0 };
	uint8_t reason, l[N4_LONGID_SIZE];
	bool wrong = false;

	CHECK(r != NULL);
	CHECK_EQ(host(r, &h, true, ID_A, 0x11, 1, 0, &reason), 0);
	long_of(l, 0x11);
	CHECK(n4_srv_room_find(r, true, ID_A, l, &wrong, 1) == h.room);
	CHECK(!wrong);
	/* Not yet known (HELLO before KEYID): the long id decides. */
	CHECK(n4_srv_room_find(r, true, ID_A, NULL, &wrong, 1) == NULL);
	CHECK(wrong);
	/* One byte off anywhere: refused. */
	for (unsigned i = 0; i < N4_LONGID_SIZE; i++) {
		long_of(l, 0x11);
		l[i] ^= 1;
		wrong = false;
		CHECK(n4_srv_room_find(r, true, ID_A, l, &wrong, 1) == NULL);
		CHECK(wrong);
	}
	/* An unkeyed client with the same 6 bytes finds no room (and is not "wrong"). */
	CHECK(n4_srv_room_find(r, false, ID_A, NULL, &wrong, 1) == NULL);
	CHECK(!wrong);
	CHECK(n4_srv_room_find(r, true, ID_B, l, &wrong, 1) == NULL);
	CHECK(!wrong);
	n4_srv_rooms_free(r);
}

TEST(srv_room_joiner_announced_with_ticket_and_peer_id)
{
	n4_srv_rooms *r = n4_srv_rooms_new(0);
	struct n4_srv_room_side h = { 0 }, j1, j2;
	struct n4_msg out[2], out2[2];
	uint8_t reason = 0, pid[N4_PAYLOAD_SIZE] = { 9, 8, 7, 6, 5, 4 };
	struct n4_srv_room_side *to_host = NULL;
	bool wrong;

	CHECK(r != NULL);
	CHECK_EQ(host(r, &h, false, ID_A, 0, 1, 0, &reason), 0);
	memset(&j1, 0, sizeof(j1));
	j1.owner = &j1;
	n4_srv_room_enter(n4_srv_room_find(r, false, ID_A, NULL, &wrong, 0), &j1);
	CHECK_EQ(j1.role, N4_ROLE_MEMBER);
	CHECK_EQ(n4_srv_room_joiner(r, &j1, pid, 0, &to_host, out, &reason), 1);
	CHECK(to_host == &h);
	CHECK_EQ(j1.role, N4_ROLE_HELD);
	CHECK(j1.announced);
	CHECK_EQ(out[0].cmd, N4_CMD_ROOM);
	CHECK_EQ(out[0].ext, N4_ROOM_JOIN);
	CHECK(memcmp(out[0].payload, j1.ticket, N4_ROOM_TICKET_SIZE) == 0);
	CHECK_EQ(out[1].cmd, N4_CMD_ROOM);
	CHECK_EQ(out[1].ext, N4_ROOM_JOIN_PEER);
	CHECK(memcmp(out[1].payload, pid, N4_PAYLOAD_SIZE) == 0);
	/* A second JOINER from the same connection: it is no member any more. */
	CHECK_EQ(n4_srv_room_joiner(r, &j1, pid, 0, &to_host, out2, &reason), -EACCES);
	/* Tickets are the server's random secret, one per joiner. */
	CHECK_EQ(join(r, &j2, false, ID_A, 0, 0, out2, &reason), 1);
	CHECK(memcmp(out[0].payload, out2[0].payload, N4_ROOM_TICKET_SIZE) != 0);
	n4_srv_room_leave(r, &j1, 1);
	n4_srv_room_leave(r, &j2, 1);
	n4_srv_room_leave(r, &h, 1);
	n4_srv_rooms_free(r);
}

TEST(srv_room_held_at_most_32_or_the_hosts_max)
{
	n4_srv_rooms *r = n4_srv_rooms_new(0);
	static struct n4_srv_room_side h, j[N4_ROOM_HELD_MAX + 1];
	struct n4_msg out[2];
	uint8_t reason = 0;

	CHECK(r != NULL);
	memset(&h, 0, sizeof(h));
	CHECK_EQ(host(r, &h, false, ID_A, 0, 1, 0, &reason), 0);
	/* Spread over 2 s so that the rate never refuses. */
	for (unsigned i = 0; i < N4_ROOM_HELD_MAX; i++)
		CHECK_EQ(join(r, &j[i], false, ID_A, 0, 100u * i, out, &reason), 1);
	reason = 0;
	CHECK_EQ(join(r, &j[N4_ROOM_HELD_MAX], false, ID_A, 0, 5000, out, &reason), -EACCES);
	CHECK_EQ(reason, N4_ROOM_R_LIMITS);
	CHECK_EQ(j[N4_ROOM_HELD_MAX].role, N4_ROLE_MEMBER); /* the caller refuses and closes */
	n4_srv_room_leave(r, &j[N4_ROOM_HELD_MAX], 5000);
	/* One held leaves: room for one more. */
	n4_srv_room_leave(r, &j[3], 5000);
	CHECK_EQ(join(r, &j[3], false, ID_A, 0, 5000, out, &reason), 1);
	for (unsigned i = 0; i < N4_ROOM_HELD_MAX; i++)
		n4_srv_room_leave(r, &j[i], 6000);
	n4_srv_room_leave(r, &h, 6000);

	/* A host asking for fewer holds that many. */
	h.max_joiners = 3;
	CHECK_EQ(host(r, &h, false, ID_B, 0, 1, 0, &reason), 0);
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ(join(r, &j[i], false, ID_B, 0, 0, out, &reason), 1);
	CHECK_EQ(join(r, &j[3], false, ID_B, 0, 0, out, &reason), -EACCES);
	CHECK_EQ(reason, N4_ROOM_R_LIMITS);
	n4_srv_room_leave(r, &j[3], 0);
	/* Answered joiners are no longer held. */
	struct n4_srv_room_side a;
	CHECK(answer(r, &a, false, ID_B, 0, j[0].ticket, 0) == &j[0]);
	CHECK_EQ(join(r, &j[3], false, ID_B, 0, 0, out, &reason), 1);
	for (unsigned i = 0; i < 4; i++)
		n4_srv_room_leave(r, &j[i], 1);
	n4_srv_room_leave(r, &a, 1);
	n4_srv_room_leave(r, &h, 1);
	n4_srv_rooms_sweep(r, 6000 + N4_ROOM_LINGER_MS); /* ID_A's host left at 6000 */
	CHECK_EQ(n4_srv_rooms_count(r), 0);
	n4_srv_rooms_free(r);
}

TEST(srv_room_join_rate_20_per_second_burst_40)
{
	n4_srv_rooms *r = n4_srv_rooms_new(0);
	struct n4_srv_room_side h = { 0 }, j, a;
	struct n4_msg out[2];
	uint8_t reason = 0;
	unsigned ok = 0;

	CHECK(r != NULL);
	CHECK_EQ(host(r, &h, false, ID_A, 0, 1, 1000, &reason), 0);
	/* The host answers each at once, so that only the rate can refuse. */
	for (unsigned i = 0; i < 100; i++) {
		int rc = join(r, &j, false, ID_A, 0, 1000, out, &reason);
		if (rc == 1) {
			ok++;
			CHECK(answer(r, &a, false, ID_A, 0, out[0].payload, 1000) == &j);
			n4_srv_room_leave(r, &a, 1000);
		} else {
			CHECK_EQ(rc, -EACCES);
			CHECK_EQ(reason, N4_ROOM_R_RATE);
		}
		n4_srv_room_leave(r, &j, 1000);
	}
	CHECK_EQ(ok, N4_ROOM_JOIN_BURST);
	/* 20 a second: one more after 50 ms, not before. */
	CHECK_EQ(join(r, &j, false, ID_A, 0, 1049, out, &reason), -EACCES);
	n4_srv_room_leave(r, &j, 1049);
	CHECK_EQ(join(r, &j, false, ID_A, 0, 1099, out, &reason), 1); /* 1049..1099: 1 token */
	CHECK(answer(r, &a, false, ID_A, 0, out[0].payload, 1099) == &j);
	n4_srv_room_leave(r, &a, 1099);
	n4_srv_room_leave(r, &j, 1099);
	/* Over 10 s: at most burst + 20/s, however they come. */
	ok = 0;
	for (uint64_t t = 1100; t < 11100; t += 7) {
		if (join(r, &j, false, ID_A, 0, t, out, &reason) == 1) {
			ok++;
			CHECK(answer(r, &a, false, ID_A, 0, out[0].payload, t) == &j);
			n4_srv_room_leave(r, &a, t);
		}
		n4_srv_room_leave(r, &j, t);
	}
	CHECK(ok >= 199 && ok <= 201);
	/* A full bucket never holds more than the burst. */
	ok = 0;
	for (unsigned i = 0; i < 100; i++) {
		if (join(r, &j, false, ID_A, 0, 1000000, out, &reason) == 1) {
			ok++;
			CHECK(answer(r, &a, false, ID_A, 0, out[0].payload, 1000000) == &j);
			n4_srv_room_leave(r, &a, 1000000);
		}
		n4_srv_room_leave(r, &j, 1000000);
	}
	CHECK_EQ(ok, N4_ROOM_JOIN_BURST);
	n4_srv_room_leave(r, &h, 1000000);
	n4_srv_rooms_free(r);
}

TEST(srv_room_full_room_refuses_without_spending_the_rate)
{
	n4_srv_rooms *r = n4_srv_rooms_new(0);
	struct n4_srv_room_side h = { 0 }, j[3], x;
	struct n4_msg out[2];
	uint8_t reason = 0;

	CHECK(r != NULL);
	h.max_joiners = 2;
	CHECK_EQ(host(r, &h, false, ID_A, 0, 1, 0, &reason), 0);
	CHECK_EQ(join(r, &j[0], false, ID_A, 0, 0, out, &reason), 1);
	CHECK_EQ(join(r, &j[1], false, ID_A, 0, 0, out, &reason), 1);
	for (unsigned i = 0; i < 200; i++) {
		CHECK_EQ(join(r, &x, false, ID_A, 0, 0, out, &reason), -EACCES);
		CHECK_EQ(reason, N4_ROOM_R_LIMITS);
		n4_srv_room_leave(r, &x, 0);
	}
	n4_srv_room_leave(r, &j[0], 0);
	/* 2 of the 40 tokens spent: the next one is admitted at the same ms. */
	CHECK_EQ(join(r, &j[2], false, ID_A, 0, 0, out, &reason), 1);
	n4_srv_room_leave(r, &j[1], 0);
	n4_srv_room_leave(r, &j[2], 0);
	n4_srv_room_leave(r, &h, 0);
	n4_srv_rooms_free(r);
}

TEST(srv_room_ticket_answers_its_joiner_once)
{
	n4_srv_rooms *r = n4_srv_rooms_new(0);
	struct n4_srv_room_side h = { 0 }, h2 = { 0 }, j1, j2, a, b;
	struct n4_msg o1[2], o2[2];
	uint8_t reason = 0, t1[N4_ROOM_TICKET_SIZE], t2[N4_ROOM_TICKET_SIZE];

	CHECK(r != NULL);
	CHECK_EQ(host(r, &h, false, ID_A, 0, 1, 0, &reason), 0);
	CHECK_EQ(host(r, &h2, false, ID_B, 0, 1, 0, &reason), 0);
	CHECK_EQ(join(r, &j1, false, ID_A, 0, 0, o1, &reason), 1);
	CHECK_EQ(join(r, &j2, false, ID_A, 0, 0, o2, &reason), 1);
	memcpy(t1, o1[0].payload, sizeof(t1));
	memcpy(t2, o2[0].payload, sizeof(t2));
	/* A wrong ticket: nobody (the caller sends REFUSED(ticket)). */
	uint8_t bad[N4_ROOM_TICKET_SIZE];
	memcpy(bad, t1, sizeof(bad));
	bad[5] ^= 0x80;
	CHECK(answer(r, &a, false, ID_A, 0, bad, 0) == NULL);
	CHECK_EQ(a.role, N4_ROLE_MEMBER);
	n4_srv_room_leave(r, &a, 0);
	/* The right ticket from another room's member: nobody either. */
	CHECK(answer(r, &a, false, ID_B, 0, t1, 0) == NULL);
	n4_srv_room_leave(r, &a, 0);
	/* The second joiner's ticket links the second joiner only. */
	CHECK(answer(r, &a, false, ID_A, 0, t2, 0) == &j2);
	CHECK_EQ(a.role, N4_ROLE_ANSWERING);
	CHECK_EQ(j2.role, N4_ROLE_ANSWERED);
	CHECK(a.room == NULL && j2.room == NULL);
	CHECK_EQ(j1.role, N4_ROLE_HELD);
	/* Once: the same ticket again names nobody. */
	CHECK(answer(r, &b, false, ID_A, 0, t2, 0) == NULL);
	n4_srv_room_leave(r, &b, 0);
	/* A held joiner cannot answer (its ROOM message is spent). */
	CHECK(n4_srv_room_answer(&j1, t1) == NULL);
	CHECK(answer(r, &b, false, ID_A, 0, t1, 0) == &j1);
	n4_srv_room_leave(r, &a, 0);
	n4_srv_room_leave(r, &b, 0);
	n4_srv_room_leave(r, &j1, 0);
	n4_srv_room_leave(r, &j2, 0);
	CHECK_EQ(j2.role, N4_ROLE_NONE);
	n4_srv_room_leave(r, &h, 0);
	n4_srv_room_leave(r, &h2, 0);
	n4_srv_rooms_sweep(r, N4_ROOM_LINGER_MS);
	CHECK_EQ(n4_srv_rooms_count(r), 0);
	n4_srv_rooms_free(r);
}

TEST(srv_room_lingers_30s_and_held_joiners_go_to_the_next_host)
{
	n4_srv_rooms *r = n4_srv_rooms_new(0);
	struct n4_srv_room_side h = { 0 }, h2 = { 0 }, j[3], a;
	struct n4_msg out[2];
	uint8_t reason = 0, tickets[3][N4_ROOM_TICKET_SIZE];
	bool wrong;

	CHECK(r != NULL);
	CHECK_EQ(host(r, &h, false, ID_A, 0, 1, 0, &reason), 0);
	CHECK_EQ(join(r, &j[0], false, ID_A, 0, 0, out, &reason), 1);
	memcpy(tickets[0], out[0].payload, N4_ROOM_TICKET_SIZE);
	n4_srv_room_leave(r, &h, 1000); /* its TCP closed */
	CHECK(!n4_srv_room_hosted(j[0].room));
	CHECK_EQ(n4_srv_rooms_count(r), 1);
	/* While it lingers, joiners are held (not announced: nobody to tell). */
	CHECK_EQ(join(r, &j[1], false, ID_A, 0, 2000, out, &reason), 0);
	CHECK(!j[1].announced);
	CHECK(!j[0].announced); /* announced to a host that is gone */
	/* A ticket of the old host's cannot be answered while nobody hosts. */
	CHECK(answer(r, &a, false, ID_A, 0, tickets[0], 2000) == NULL);
	n4_srv_room_leave(r, &a, 2000);
	/* Just before the linger ends: still the room. */
	CHECK(n4_srv_room_find(r, false, ID_A, NULL, &wrong, 1000 + N4_ROOM_LINGER_MS - 1) != NULL);
	CHECK_EQ(join(r, &j[2], false, ID_A, 0, 1000 + N4_ROOM_LINGER_MS - 1, out, &reason), 0);
	/* The next host gets every held joiner once, each with its own ticket. */
	CHECK_EQ(host(r, &h2, false, ID_A, 0, 2, 1000 + N4_ROOM_LINGER_MS - 1, &reason), 0);
	CHECK(h2.room == j[0].room);
	unsigned seen = 0;
	struct n4_srv_room_side *x;
	while ((x = n4_srv_room_next_unannounced(h2.room, out)) != NULL) {
		CHECK(x == &j[0] || x == &j[1] || x == &j[2]);
		CHECK(memcmp(out[0].payload, x->ticket, N4_ROOM_TICKET_SIZE) == 0);
		CHECK_EQ(out[1].ext, N4_ROOM_JOIN_PEER);
		CHECK(x->announced);
		seen++;
	}
	CHECK_EQ(seen, 3);
	CHECK(n4_srv_room_next_unannounced(NULL, out) == NULL);
	/* The first joiner's ticket is the same: the new host may answer it. */
	CHECK(answer(r, &a, false, ID_A, 0, tickets[0], 1000 + N4_ROOM_LINGER_MS) == &j[0]);
	for (unsigned i = 0; i < 3; i++)
		n4_srv_room_leave(r, &j[i], 40000);
	n4_srv_room_leave(r, &a, 40000);
	n4_srv_room_leave(r, &h2, 40000);
	n4_srv_rooms_sweep(r, 40000 + N4_ROOM_LINGER_MS);
	CHECK_EQ(n4_srv_rooms_count(r), 0);
	n4_srv_rooms_free(r);
}

TEST(srv_room_after_the_linger_the_ident_pairs_as_before)
{
	n4_srv_rooms *r = n4_srv_rooms_new(0);
	struct n4_srv_room_side h = { 0 }, j;
	struct n4_msg out[2];
	uint8_t reason = 0;
	bool wrong = true;

	CHECK(r != NULL);
	CHECK_EQ(host(r, &h, false, ID_A, 0, 1, 0, &reason), 0);
	n4_srv_room_leave(r, &h, 0);
	/* The sweep keeps it while it lingers. */
	n4_srv_rooms_sweep(r, N4_ROOM_LINGER_MS - 1);
	CHECK_EQ(n4_srv_rooms_count(r), 1);
	/* Past the linger: no room (freed on the way), no "wrong key". */
	CHECK(n4_srv_room_find(r, false, ID_A, NULL, &wrong, N4_ROOM_LINGER_MS) == NULL);
	CHECK(!wrong);
	CHECK_EQ(n4_srv_rooms_count(r), 0);

	/* Held joiners keep a lingering room in memory past its linger (they point
	 * at it), but not visible: newcomers pair as equals. */
	CHECK_EQ(host(r, &h, false, ID_A, 0, 1, 100000, &reason), 0);
	CHECK_EQ(join(r, &j, false, ID_A, 0, 100000, out, &reason), 1);
	n4_srv_room_leave(r, &h, 100000);
	n4_srv_rooms_sweep(r, 100000 + 2 * N4_ROOM_LINGER_MS);
	CHECK_EQ(n4_srv_rooms_count(r), 1);
	CHECK(n4_srv_room_find(r, false, ID_A, NULL, &wrong, 100000 + 2 * N4_ROOM_LINGER_MS) ==
	      NULL);
	CHECK_EQ(n4_srv_rooms_count(r), 1);
	/* Its last joiner leaves: freed with it. */
	n4_srv_room_leave(r, &j, 100000 + 2 * N4_ROOM_LINGER_MS);
	CHECK_EQ(n4_srv_rooms_count(r), 0);
	n4_srv_rooms_free(r);
}

TEST(srv_room_keyed_rooms_are_their_long_id)
{
	n4_srv_rooms *r = n4_srv_rooms_new(0);
	struct n4_srv_room_side h = { 0 }, h2 = { 0 }, h3 = { 0 }, j;
	struct n4_msg out[2];
	uint8_t reason = 0;

	CHECK(r != NULL);
	CHECK_EQ(host(r, &h, true, ID_A, 0x11, 1, 0, &reason), 0);
	/* A joiner with another long id: never enters. */
	CHECK_EQ(join(r, &j, true, ID_A, 0x22, 0, out, &reason), -EKEYREJECTED);
	CHECK_EQ(join(r, &j, true, ID_A, 0x11, 0, out, &reason), 1);
	/* A stranger who learnt the short id and registers with another key gets a
	 * room of its own: it blocks nobody and sees none of the first's joiners. */
	CHECK_EQ(host(r, &h3, true, ID_A, 0x22, 3, 5, &reason), 0);
	CHECK(h3.room != h.room);
	CHECK(n4_srv_room_next_unannounced(h3.room, out) == NULL);
	CHECK_EQ(n4_srv_rooms_count(r), 2);
	n4_srv_room_leave(r, &h3, 6);
	/* The first key's host leaves; the same key comes back: its joiner is there. */
	n4_srv_room_leave(r, &h, 10);
	CHECK_EQ(host(r, &h2, true, ID_A, 0x11, 1, 20, &reason), 0);
	CHECK(n4_srv_room_next_unannounced(h2.room, out) == &j);
	/* A second host of the same key and short id is TAKEN. */
	struct n4_srv_room_side h4 = { 0 };
	CHECK_EQ(host(r, &h4, true, ID_A, 0x11, 4, 25, &reason), -EADDRINUSE);
	n4_srv_room_leave(r, &h2, 30);
	n4_srv_room_leave(r, &j, 30);
	n4_srv_rooms_sweep(r, 100000);
	CHECK_EQ(n4_srv_rooms_count(r), 0);
	n4_srv_rooms_free(r);
}

TEST(srv_room_members_pin_the_room_until_they_leave)
{
	n4_srv_rooms *r = n4_srv_rooms_new(0);
	struct n4_srv_room_side h = { 0 }, m;
	uint8_t reason = 0;
	bool wrong;

	CHECK(r != NULL);
	CHECK_EQ(host(r, &h, false, ID_A, 0, 1, 0, &reason), 0);
	memset(&m, 0, sizeof(m));
	n4_srv_room_enter(n4_srv_room_find(r, false, ID_A, NULL, &wrong, 0), &m);
	n4_srv_room_leave(r, &h, 0);
	n4_srv_rooms_sweep(r, 10 * N4_ROOM_LINGER_MS);
	CHECK_EQ(n4_srv_rooms_count(r), 1); /* m still points at it */
	n4_srv_room_leave(r, &m, 10 * N4_ROOM_LINGER_MS);
	CHECK_EQ(m.role, N4_ROLE_NONE);
	CHECK(m.room == NULL);
	CHECK_EQ(n4_srv_rooms_count(r), 0);
	n4_srv_rooms_free(r);
	n4_srv_rooms_free(NULL);
	CHECK_EQ(n4_srv_rooms_count(NULL), 0);
}

TEST(srv_room_many_rooms_in_a_small_table)
{
	/* 64 buckets for 3000 rooms: long chains must still find each. */
	n4_srv_rooms *r = n4_srv_rooms_new(1);
	static struct n4_srv_room_side h[3000];
	uint8_t ident[N4_PAYLOAD_SIZE] = { 'm', 0, 0, 0, 0, 0 }, reason;
	bool wrong;

	CHECK(r != NULL);
	memset(h, 0, sizeof(h));
	for (unsigned i = 0; i < 3000; i++) {
		ident[1] = (uint8_t)(i >> 8);
		ident[2] = (uint8_t)i;
		CHECK_EQ(host(r, &h[i], (i & 1) != 0, ident, 0x33, (uint8_t)(i % 250), 0, &reason),
			 i / 250 < N4_ROOMS_PER_SOURCE ? 0 : -EACCES);
	}
	unsigned live = n4_srv_rooms_count(r);
	CHECK_EQ(live, 250 * N4_ROOMS_PER_SOURCE);
	uint8_t l[N4_LONGID_SIZE];
	long_of(l, 0x33);
	for (unsigned i = 0; i < live; i++) {
		ident[1] = (uint8_t)(i >> 8);
		ident[2] = (uint8_t)i;
		CHECK(n4_srv_room_find(r, (i & 1) != 0, ident, l, &wrong, 0) == h[i].room);
		CHECK(n4_srv_room_find(r, (i & 1) == 0, ident, l, &wrong, 0) == NULL);
	}
	/* Leave in an order unrelated to the chains'. */
	for (unsigned k = 0; k < live; k++)
		n4_srv_room_leave(r, &h[(k * 7) % live], 1);
	n4_srv_rooms_sweep(r, 1 + N4_ROOM_LINGER_MS);
	CHECK_EQ(n4_srv_rooms_count(r), 0);
	n4_srv_rooms_free(r);
}

/* ---- the protocol, through lib/server_test.h --------------------------- */

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

static n4_server *server(bool no_rooms)
{
	struct n4_server_cfg cfg;

	n4_server_cfg_init(&cfg);
	cfg.bind_host = "127.0.0.1";
	cfg.family = AF_INET;
	cfg.port = 0;
	cfg.conn_rate_per_ip = 0;
	cfg.log_rate = 0;
	cfg.no_rooms = no_rooms;
	return n4_server_new(&cfg);
}

static int conn(n4_server *s, const char *ip, uint16_t port, struct cl *c)
{
	int sv[2];
	struct sockaddr_in a = v4(ip, port);

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->ip = ip;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		return -errno;
	if (n4_server_test_adopt(s, sv[0], (struct sockaddr *)&a, sizeof(a))) {
		close(sv[1]);
		return -EIO;
	}
	c->fd = sv[1];
	return 0;
}

static void put(uint8_t *at, uint8_t cmd, uint8_t ext, const void *payload)
{
	struct n4_msg m;

	n4_msg_init(&m, cmd, ext, payload);
	n4_wire_encode(&m, at);
}

/* Bytes in one write (one segment), then the server runs. */
static int say(n4_server *s, const struct cl *c, const uint8_t *b, size_t n)
{
	ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);

	/* The server takes one message per event: run it until it is idle. */
	for (int i = 0; i < 64 && n4_server_test_poll(s) > 0; i++)
		;
	return w == (ssize_t)n ? 0 : -EIO;
}

static int say1(n4_server *s, const struct cl *c, uint8_t cmd, uint8_t ext, const void *payload)
{
	uint8_t b[N4_MSG_SIZE];

	put(b, cmd, ext, payload);
	return say(s, c, b, sizeof(b));
}

static int hello(n4_server *s, const struct cl *c, const char *ident, uint8_t ext)
{
	uint8_t id[N4_PAYLOAD_SIZE];

	n4_ident_encode(ident, id);
	return say1(s, c, N4_CMD_HELLO, ext, id);
}

/* ROOM HOST + HELLO in one segment, as lib/rendezvous.c sends them. */
static int host_hello(n4_server *s, const struct cl *c, const char *ident, uint8_t ext,
		      uint16_t max)
{
	uint8_t b[2 * N4_MSG_SIZE], id[N4_PAYLOAD_SIZE], pl[N4_PAYLOAD_SIZE] = { 0 };

	pl[0] = (uint8_t)(max >> 8);
	pl[1] = (uint8_t)max;
	n4_ident_encode(ident, id);
	put(b, N4_CMD_ROOM, N4_ROOM_HOST, pl);
	put(b + N4_MSG_SIZE, N4_CMD_HELLO, ext, id);
	return say(s, c, b, sizeof(b));
}

/* A keyed client's long id (KEYID parts 0..2), or its nonce (3..5). */
static int keyid(n4_server *s, const struct cl *c, uint8_t v, uint8_t first)
{
	uint8_t b[3 * N4_MSG_SIZE], pl[N4_PAYLOAD_SIZE];

	memset(pl, v, sizeof(pl));
	for (uint8_t i = 0; i < 3; i++)
		put(b + i * N4_MSG_SIZE, N4_CMD_KEYID, (uint8_t)(first + i), pl);
	return say(s, c, b, sizeof(b));
}

static int room_msg(n4_server *s, const struct cl *c, uint8_t sub, const uint8_t *id)
{
	return say1(s, c, N4_CMD_ROOM, sub, id);
}

/* Every whole message the server has sent to fd (at most max); -EPIPE after
 * them when the server closed the connection, in *closed. */
static int msgs(int fd, struct n4_msg *out, int max, bool *closed)
{
	int n = 0;
	uint8_t buf[N4_MSG_SIZE];
	ssize_t r = 0;

	*closed = false;
	while (n < max && (r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) == (ssize_t)sizeof(buf)) {
		if (n4_wire_decode(buf, sizeof(buf), 0, &out[n]))
			return -EPROTO;
		n++;
	}
	/* A reset (unread bytes at the server's close) ends it as well as EOF. */
	if (n < max && (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)))
		*closed = true;
	return n;
}

static int one(const struct cl *c, struct n4_msg *m, bool *closed)
{
	return msgs(c->fd, m, 1, closed);
}

static bool got_room(const struct n4_msg *m, uint8_t sub)
{
	return m->cmd == N4_CMD_ROOM && m->ext == sub;
}

static int ready(struct cl *c)
{
	struct n4_msg m;
	bool closed;

	if (one(c, &m, &closed) != 1 || m.cmd != N4_CMD_READY)
		return -EPROTO;
	memcpy(c->token, m.payload, N4_TOKEN_SIZE);
	return m.ext;
}

static void exchange(n4_server *s, const struct cl *c, uint16_t port)
{
	struct sockaddr_in src = v4(c->ip, port);
	uint8_t buf[N4_MSG_SIZE];

	put(buf, N4_CMD_EXCHANGE, N4_EXT_TOKEN, c->token);
	n4_server_test_udp(s, buf, sizeof(buf), (struct sockaddr *)&src, sizeof(src));
	n4_server_test_poll(s);
}

/* The PEERINFO c gets, within a short wait (it may be timed to its partner's). */
static int peerinfo(n4_server *s, const struct cl *c, struct sockaddr_in *peer)
{
	struct n4_msg m;
	bool closed;

	for (int i = 0; i < 400; i++) {
		int n = one(c, &m, &closed);
		if (n == 1 && m.cmd == N4_CMD_PEERINFO)
			return n4_peerinfo_decode(m.payload, peer);
		if (n == 1)
			continue; /* PLAN, TUNE and the like */
		if (closed)
			return -EPIPE;
		usleep(1000);
		n4_server_test_poll(s);
	}
	return -ETIMEDOUT;
}

static bool status_has(const n4_server *s, const char *what)
{
	char line[1280];

	n4_server_status(s, line, sizeof(line));
	return strstr(line, what) != NULL;
}

#define ROOM_EXT (N4_EXT_TOKEN | N4_EXT_ROOM)

TEST(server_room_host_registers_and_a_second_is_taken)
{
	n4_server *s = server(false);
	struct cl h1, h2;
	struct n4_msg m;
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(conn(s, "198.51.100.1", 40000, &h1), 0);
	CHECK_EQ(host_hello(s, &h1, "rma", ROOM_EXT, 8), 0);
	CHECK_EQ(one(&h1, &m, &closed), 1);
	CHECK(got_room(&m, N4_ROOM_HOSTED));
	CHECK(status_has(s, " rooms=1 hosted=1 joins=0 refused=0"));
	CHECK_EQ(n4_server_test_check(s), 0);
	/* The second host: TAKEN, and closed. */
	CHECK_EQ(conn(s, "203.0.113.1", 40000, &h2), 0);
	CHECK_EQ(host_hello(s, &h2, "rma", ROOM_EXT, 8), 0);
	CHECK_EQ(one(&h2, &m, &closed), 1);
	CHECK(got_room(&m, N4_ROOM_TAKEN));
	CHECK_EQ(one(&h2, &m, &closed), 0);
	CHECK(closed);
	CHECK(status_has(s, " rooms=1 hosted=1 joins=0 refused=1"));
	/* The room connection is kept, and bytes its host sends are ignored. */
	CHECK_EQ(n4_server_test_clients(s), 1);
	uint8_t junk[5] = { 1, 2, 3, 4, 5 };
	CHECK_EQ(say(s, &h1, junk, sizeof(junk)), 0);
	CHECK_EQ(n4_server_test_clients(s), 1);
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h1.fd);
	close(h2.fd);
}

TEST(server_room_refuses_malformed_registrations)
{
	n4_server *s = server(false);
	struct cl c;
	struct n4_msg m;
	bool closed;

	CHECK(s != NULL);
	/* 0 joiners, more than N4_ROOM_MAX_JOINERS, a server's subcode first: closed. */
	const uint16_t maxes[] = { 0, N4_ROOM_MAX_JOINERS + 1, 0xffff };
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ(conn(s, "198.51.100.1", (uint16_t)(40000 + i), &c), 0);
		CHECK_EQ(host_hello(s, &c, "rmb", ROOM_EXT, maxes[i]), 0);
		CHECK_EQ(one(&c, &m, &closed), 0);
		CHECK(closed);
		close(c.fd);
	}
	uint8_t id[N4_PAYLOAD_SIZE] = { 0 };
	CHECK_EQ(conn(s, "198.51.100.1", 40010, &c), 0);
	CHECK_EQ(room_msg(s, &c, N4_ROOM_JOIN, id), 0);
	CHECK_EQ(one(&c, &m, &closed), 0);
	CHECK(closed);
	close(c.fd);
	/* A JOINER or ANSWER first is no registration either. */
	CHECK_EQ(conn(s, "198.51.100.1", 40011, &c), 0);
	CHECK_EQ(room_msg(s, &c, N4_ROOM_ANSWER, id), 0);
	CHECK_EQ(one(&c, &m, &closed), 0);
	CHECK(closed);
	close(c.fd);
	/* HOST, then a HELLO that does not offer the room extension (or the token). */
	const uint8_t exts[] = { N4_EXT_TOKEN, N4_EXT_ROOM, 0 };
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ(conn(s, "198.51.100.1", (uint16_t)(40020 + i), &c), 0);
		CHECK_EQ(host_hello(s, &c, "rmb", exts[i], 4), 0);
		CHECK_EQ(one(&c, &m, &closed), 0);
		CHECK(closed);
		close(c.fd);
	}
	/* Two HOSTs: the second is no HELLO. */
	CHECK_EQ(conn(s, "198.51.100.1", 40030, &c), 0);
	uint8_t pl[N4_PAYLOAD_SIZE] = { 0, 4 };
	CHECK_EQ(room_msg(s, &c, N4_ROOM_HOST, pl), 0);
	CHECK_EQ(room_msg(s, &c, N4_ROOM_HOST, pl), 0);
	CHECK_EQ(one(&c, &m, &closed), 0);
	CHECK(closed);
	close(c.fd);
	CHECK_EQ(n4_server_test_clients(s), 0);
	CHECK(status_has(s, " rooms=0 hosted=0"));
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
}

TEST(server_no_rooms_closes_a_host_and_grants_no_room)
{
	n4_server *s = server(true);
	struct cl h, a, b;
	struct n4_msg m;
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(conn(s, "198.51.100.1", 40000, &h), 0);
	CHECK_EQ(host_hello(s, &h, "rmc", ROOM_EXT, 8), 0);
	CHECK_EQ(one(&h, &m, &closed), 0); /* closed without a word: ENOTSUP */
	CHECK(closed);
	CHECK(!status_has(s, "rooms="));
	/* Clients offering rooms pair as equals, the extension not granted. */
	CHECK_EQ(conn(s, "198.51.100.2", 40000, &a), 0);
	CHECK_EQ(conn(s, "203.0.113.2", 40000, &b), 0);
	CHECK_EQ(hello(s, &a, "rmc", ROOM_EXT), 0);
	CHECK_EQ(hello(s, &b, "rmc", ROOM_EXT), 0);
	CHECK_EQ(ready(&a), N4_EXT_TOKEN);
	CHECK_EQ(ready(&b), N4_EXT_TOKEN);
	exchange(s, &a, 20000);
	exchange(s, &b, 20001);
	struct sockaddr_in pa, pb;
	CHECK_EQ(peerinfo(s, &a, &pa), 0);
	CHECK_EQ(peerinfo(s, &b, &pb), 0);
	CHECK_EQ(ntohs(pa.sin_port), 20001);
	CHECK_EQ(ntohs(pb.sin_port), 20000);
	n4_server_free(s);
	close(h.fd);
	close(a.fd);
	close(b.fd);
}

/* A registered host, and a joiner announced to it: the ticket in *ticket. */
static int host_and_joiner(n4_server *s, struct cl *h, struct cl *j, const char *ident,
			   const char *jip, const uint8_t pid[N4_PAYLOAD_SIZE],
			   uint8_t ticket[N4_ROOM_TICKET_SIZE])
{
	struct n4_msg m[2];
	bool closed;

	if (h->fd < 0) {
		if (conn(s, "198.51.100.1", 40000, h) || host_hello(s, h, ident, ROOM_EXT, 8) ||
		    one(h, m, &closed) != 1 || !got_room(&m[0], N4_ROOM_HOSTED))
			return -1;
	}
	if (conn(s, jip, 41000, j) || hello(s, j, ident, ROOM_EXT | N4_EXT_RELAY))
		return -2;
	int ext = ready(j);
	if (ext < 0 || !(ext & N4_EXT_ROOM) || (ext & N4_EXT_STAY))
		return -3;
	/* As our client: ROOM, then RELAY (its lost rounds), in that order. */
	uint8_t none[N4_PAYLOAD_SIZE] = { 0 };
	if (room_msg(s, j, N4_ROOM_JOINER, pid) || say1(s, j, N4_CMD_RELAY, 0, none))
		return -4;
	if (msgs(h->fd, m, 2, &closed) != 2 || !got_room(&m[0], N4_ROOM_JOIN) ||
	    !got_room(&m[1], N4_ROOM_JOIN_PEER) || memcmp(m[1].payload, pid, N4_PAYLOAD_SIZE))
		return -5;
	memcpy(ticket, m[0].payload, N4_ROOM_TICKET_SIZE);
	return n4_server_test_check(s) ? -6 : 0;
}

/* The host's answer run for ticket, from the host's IP. */
static int answer_run(n4_server *s, struct cl *a, const char *ident, uint16_t port,
		      const uint8_t ticket[N4_ROOM_TICKET_SIZE])
{
	if (conn(s, "198.51.100.1", port, a) || hello(s, a, ident, ROOM_EXT))
		return -1;
	if (ready(a) < 0)
		return -2;
	return room_msg(s, a, N4_ROOM_ANSWER, ticket);
}

TEST(server_room_join_announced_and_answered_into_peerinfos)
{
	n4_server *s = server(false);
	struct cl h = { .fd = -1 }, j, a;
	const uint8_t pid[N4_PAYLOAD_SIZE] = { 'p', 'i', 'd', 0, 1, 2 };
	uint8_t ticket[N4_ROOM_TICKET_SIZE];
	struct sockaddr_in pj, pa;
	struct n4_msg m[4];
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(host_and_joiner(s, &h, &j, "rmd", "203.0.113.7", pid, ticket), 0);
	CHECK(status_has(s, " rooms=1 hosted=1 joins=1 refused=0"));
	/* The joiner's EXCHANGE: still no partner, no PEERINFO. */
	exchange(s, &j, 21000);
	CHECK_EQ(msgs(j.fd, m, 4, &closed), 0);
	CHECK(!closed);
	/* The answer, its EXCHANGE: both get the other's address. */
	CHECK_EQ(answer_run(s, &a, "rmd", 40001, ticket), 0);
	exchange(s, &a, 22000);
	CHECK_EQ(peerinfo(s, &j, &pj), 0);
	CHECK_EQ(peerinfo(s, &a, &pa), 0);
	CHECK(pj.sin_addr.s_addr == v4("198.51.100.1", 0).sin_addr.s_addr);
	CHECK_EQ(ntohs(pj.sin_port), 22000);
	CHECK(pa.sin_addr.s_addr == v4("203.0.113.7", 0).sin_addr.s_addr);
	CHECK_EQ(ntohs(pa.sin_port), 21000);
	/* The host's connection heard nothing more and stays. */
	CHECK_EQ(msgs(h.fd, m, 4, &closed), 0);
	CHECK(!closed);
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h.fd);
	close(j.fd);
	close(a.fd);
}

TEST(server_room_wrong_ticket_refused_and_closed)
{
	n4_server *s = server(false);
	struct cl h = { .fd = -1 }, j, a;
	const uint8_t pid[N4_PAYLOAD_SIZE] = { 1 };
	uint8_t ticket[N4_ROOM_TICKET_SIZE];
	struct n4_msg m;
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(host_and_joiner(s, &h, &j, "rme", "203.0.113.7", pid, ticket), 0);
	ticket[0] ^= 1;
	CHECK_EQ(answer_run(s, &a, "rme", 40001, ticket), 0);
	CHECK_EQ(one(&a, &m, &closed), 1);
	CHECK(got_room(&m, N4_ROOM_REFUSED));
	CHECK_EQ(m.payload[0], N4_ROOM_R_TICKET);
	CHECK_EQ(one(&a, &m, &closed), 0);
	CHECK(closed);
	/* The joiner is untouched: still held, the right ticket still works. */
	CHECK_EQ(one(&j, &m, &closed), 0);
	CHECK(!closed);
	ticket[0] ^= 1;
	close(a.fd);
	CHECK_EQ(answer_run(s, &a, "rme", 40002, ticket), 0);
	exchange(s, &j, 21000);
	exchange(s, &a, 22000);
	struct sockaddr_in p;
	CHECK_EQ(peerinfo(s, &j, &p), 0);
	CHECK_EQ(ntohs(p.sin_port), 22000);
	/* An ANSWER from one of two equals (no room): refused for its ticket too,
	 * and its partner, whose PEERINFO can never come, is closed. */
	struct cl x, y;
	CHECK_EQ(conn(s, "192.0.2.1", 40003, &y), 0);
	CHECK_EQ(hello(s, &y, "nosuch", ROOM_EXT), 0);
	CHECK_EQ(answer_run(s, &x, "nosuch", 40003, ticket), 0);
	CHECK_EQ(one(&x, &m, &closed), 1);
	CHECK(got_room(&m, N4_ROOM_REFUSED));
	CHECK_EQ(m.payload[0], N4_ROOM_R_TICKET);
	CHECK_EQ(one(&x, &m, &closed), 0);
	CHECK(closed);
	CHECK(ready(&y) >= 0);
	CHECK_EQ(one(&y, &m, &closed), 0);
	CHECK(closed);
	close(y.fd);
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h.fd);
	close(j.fd);
	close(a.fd);
	close(x.fd);
}

TEST(server_room_two_joiners_never_learn_each_other)
{
	n4_server *s = server(false);
	struct cl h = { .fd = -1 }, j1, j2, a1, a2;
	const uint8_t p1[N4_PAYLOAD_SIZE] = { 1 }, p2[N4_PAYLOAD_SIZE] = { 2 };
	uint8_t t1[N4_ROOM_TICKET_SIZE], t2[N4_ROOM_TICKET_SIZE];
	struct sockaddr_in p;
	struct n4_msg m[4];
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(host_and_joiner(s, &h, &j1, "rmf", "203.0.113.7", p1, t1), 0);
	CHECK_EQ(host_and_joiner(s, &h, &j2, "rmf", "192.0.2.8", p2, t2), 0);
	CHECK(memcmp(t1, t2, sizeof(t1)) != 0);
	/* Both EXCHANGE; neither is paired with the other. */
	exchange(s, &j1, 21001);
	exchange(s, &j2, 21002);
	n4_server_test_poll(s);
	CHECK_EQ(msgs(j1.fd, m, 4, &closed), 0);
	CHECK_EQ(msgs(j2.fd, m, 4, &closed), 0);
	/* Answered in the other order, each with its own answer's address. */
	CHECK_EQ(answer_run(s, &a2, "rmf", 40002, t2), 0);
	exchange(s, &a2, 22002);
	CHECK_EQ(peerinfo(s, &j2, &p), 0);
	CHECK_EQ(ntohs(p.sin_port), 22002);
	CHECK_EQ(peerinfo(s, &a2, &p), 0);
	CHECK(p.sin_addr.s_addr == v4("192.0.2.8", 0).sin_addr.s_addr);
	CHECK_EQ(msgs(j1.fd, m, 4, &closed), 0);
	CHECK_EQ(answer_run(s, &a1, "rmf", 40001, t1), 0);
	exchange(s, &a1, 22001);
	CHECK_EQ(peerinfo(s, &j1, &p), 0);
	CHECK_EQ(ntohs(p.sin_port), 22001);
	CHECK_EQ(peerinfo(s, &a1, &p), 0);
	CHECK(p.sin_addr.s_addr == v4("203.0.113.7", 0).sin_addr.s_addr);
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h.fd);
	close(j1.fd);
	close(j2.fd);
	close(a1.fd);
	close(a2.fd);
}

TEST(server_room_keyed_admits_only_its_long_id)
{
	n4_server *s = server(false);
	struct cl h, j, x;
	const uint8_t kext = ROOM_EXT | N4_EXT_KEY;
	const uint8_t pid[N4_PAYLOAD_SIZE] = { 'k' };
	struct n4_msg m[4];
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(conn(s, "198.51.100.1", 40000, &h), 0);
	CHECK_EQ(host_hello(s, &h, "rmk", kext, 8), 0);
	CHECK_EQ(one(&h, m, &closed), 1);
	CHECK_EQ(m[0].cmd, N4_CMD_KEYID); /* the long id, please */
	CHECK_EQ(n4_server_test_check(s), 0);
	CHECK_EQ(keyid(s, &h, 0x11, 0), 0);
	CHECK_EQ(one(&h, m, &closed), 1);
	CHECK(got_room(&m[0], N4_ROOM_HOSTED));
	/* The right long id: READY, and announced. */
	CHECK_EQ(conn(s, "203.0.113.7", 41000, &j), 0);
	CHECK_EQ(hello(s, &j, "rmk", kext), 0);
	CHECK_EQ(one(&j, m, &closed), 1);
	CHECK_EQ(m[0].cmd, N4_CMD_KEYID);
	CHECK_EQ(n4_server_test_check(s), 0);
	CHECK_EQ(keyid(s, &j, 0x11, 0), 0);
	int ext = ready(&j);
	CHECK(ext >= 0 && (ext & N4_EXT_KEY) && (ext & N4_EXT_ROOM));
	CHECK_EQ(keyid(s, &j, 0x77, 3), 0); /* its nonce */
	CHECK_EQ(room_msg(s, &j, N4_ROOM_JOINER, pid), 0);
	CHECK_EQ(msgs(h.fd, m, 4, &closed), 2);
	CHECK(got_room(&m[0], N4_ROOM_JOIN));
	/* Same short id, another long id: REFUSED(key), closed, never announced. */
	CHECK_EQ(conn(s, "192.0.2.9", 41000, &x), 0);
	CHECK_EQ(hello(s, &x, "rmk", kext), 0);
	CHECK_EQ(one(&x, m, &closed), 1);
	CHECK_EQ(m[0].cmd, N4_CMD_KEYID);
	CHECK_EQ(keyid(s, &x, 0x22, 0), 0);
	CHECK_EQ(one(&x, m, &closed), 1);
	CHECK(got_room(&m[0], N4_ROOM_REFUSED));
	CHECK_EQ(m[0].payload[0], N4_ROOM_R_KEY);
	CHECK_EQ(one(&x, m, &closed), 0);
	CHECK(closed);
	CHECK_EQ(msgs(h.fd, m, 4, &closed), 0);
	/* An unkeyed client on the same 6 characters is no member of a keyed room:
	 * it waits for an unkeyed partner. */
	struct cl u;
	CHECK_EQ(conn(s, "192.0.2.10", 41000, &u), 0);
	CHECK_EQ(hello(s, &u, "rmk", ROOM_EXT), 0);
	CHECK_EQ(one(&u, m, &closed), 0);
	CHECK(!closed);
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h.fd);
	close(j.fd);
	close(x.fd);
	close(u.fd);
}

TEST(server_room_keyed_host_silent_on_its_long_id_is_dropped)
{
	n4_server *s = server(false);
	struct cl h;
	struct n4_msg m;
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(conn(s, "198.51.100.1", 40000, &h), 0);
	CHECK_EQ(host_hello(s, &h, "rml", ROOM_EXT | N4_EXT_KEY, 8), 0);
	CHECK_EQ(one(&h, &m, &closed), 1);
	CHECK_EQ(m.cmd, N4_CMD_KEYID);
	n4_server_test_expire(s);
	CHECK_EQ(n4_server_test_clients(s), 0);
	CHECK(status_has(s, " rooms=0 hosted=0"));
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h.fd);
}

TEST(server_room_waiting_clients_join_when_the_host_comes)
{
	n4_server *s = server(false);
	struct cl h, w;
	const uint8_t pid[N4_PAYLOAD_SIZE] = { 'w' };
	struct n4_msg m[4];
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(conn(s, "203.0.113.7", 41000, &w), 0);
	CHECK_EQ(hello(s, &w, "rmw", ROOM_EXT), 0);
	CHECK_EQ(one(&w, m, &closed), 0); /* waits for a partner */
	CHECK_EQ(conn(s, "198.51.100.1", 40000, &h), 0);
	CHECK_EQ(host_hello(s, &h, "rmw", ROOM_EXT, 8), 0);
	CHECK_EQ(one(&h, m, &closed), 1);
	CHECK(got_room(&m[0], N4_ROOM_HOSTED));
	CHECK(ready(&w) >= 0); /* a member of the room now */
	CHECK_EQ(room_msg(s, &w, N4_ROOM_JOINER, pid), 0);
	CHECK_EQ(msgs(h.fd, m, 4, &closed), 2);
	CHECK(got_room(&m[1], N4_ROOM_JOIN_PEER));
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h.fd);
	close(w.fd);
}

/* ROOM JOINER + HELLO in one segment: a join-only client (lib/rendezvous.c). */
static int join_hello(n4_server *s, const struct cl *c, const char *ident, uint8_t ext,
		      const uint8_t pid[N4_PAYLOAD_SIZE])
{
	uint8_t b[2 * N4_MSG_SIZE], id[N4_PAYLOAD_SIZE];

	n4_ident_encode(ident, id);
	put(b, N4_CMD_ROOM, N4_ROOM_JOINER, pid);
	put(b + N4_MSG_SIZE, N4_CMD_HELLO, ext, id);
	return say(s, c, b, sizeof(b));
}

/* A join-only client whose room has no host waits in N4_P_WAITING in no pairing
 * table: an equal on the same identifier never pairs with it, and the server's
 * check agrees (it once counted it as waiting in the table). */
TEST(server_room_join_only_waits_for_its_host_outside_the_pairing)
{
	n4_server *s = server(false);
	struct cl h, j, e;
	const uint8_t pid[N4_PAYLOAD_SIZE] = { 'j' };
	struct n4_msg m[4];
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(conn(s, "203.0.113.7", 41000, &j), 0);
	CHECK_EQ(join_hello(s, &j, "rmj", ROOM_EXT, pid), 0);
	CHECK_EQ(one(&j, m, &closed), 0); /* waits for a host */
	CHECK(!closed);
	CHECK_EQ(n4_server_test_check(s), 0);
	CHECK_EQ(conn(s, "192.0.2.8", 41000, &e), 0);
	CHECK_EQ(hello(s, &e, "rmj", ROOM_EXT), 0);
	CHECK_EQ(one(&e, m, &closed), 0); /* waits too: never the joiner's partner */
	CHECK_EQ(one(&j, m, &closed), 0);
	CHECK_EQ(n4_server_test_check(s), 0);
	/* The host comes: the joiner is a member and announced at once (its
	 * JOINER came first), the equal a member. */
	CHECK_EQ(conn(s, "198.51.100.1", 40000, &h), 0);
	CHECK_EQ(host_hello(s, &h, "rmj", ROOM_EXT, 8), 0);
	CHECK(ready(&j) >= 0);
	CHECK(ready(&e) >= 0);
	CHECK_EQ(msgs(h.fd, m, 4, &closed), 3);
	CHECK(got_room(&m[0], N4_ROOM_HOSTED));
	CHECK(got_room(&m[2], N4_ROOM_JOIN_PEER));
	CHECK_EQ(m[2].payload[0], 'j');
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h.fd);
	close(j.fd);
	close(e.fd);
}

/* The fuzz_server input tests/fuzz/regress/fuzz_server/keyed-join-only-waits-for-its-host:
 * the same, keyed.  After its long id the join-only client leaves the keyed
 * room's wait (room_keyed_wait) and waits for the host, still in no table; a keyed
 * equal with the same long id is not paired with it. */
TEST(server_room_keyed_join_only_waits_for_its_host_after_its_long_id)
{
	n4_server *s = server(false);
	struct cl h, j, e;
	const uint8_t kext = ROOM_EXT | N4_EXT_KEY;
	const uint8_t pid[N4_PAYLOAD_SIZE] = { 'k' };
	struct n4_msg m[4];
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(conn(s, "203.0.113.7", 41000, &j), 0);
	CHECK_EQ(join_hello(s, &j, "rmq", kext, pid), 0);
	CHECK_EQ(one(&j, m, &closed), 1);
	CHECK_EQ(m[0].cmd, N4_CMD_KEYID);
	CHECK_EQ(n4_server_test_check(s), 0);
	CHECK_EQ(keyid(s, &j, 0x11, 0), 0);
	CHECK_EQ(one(&j, m, &closed), 0); /* no room: waits for its host */
	CHECK(!closed);
	CHECK_EQ(n4_server_test_check(s), 0);
	CHECK_EQ(conn(s, "192.0.2.8", 41000, &e), 0);
	CHECK_EQ(hello(s, &e, "rmq", kext), 0);
	CHECK_EQ(one(&e, m, &closed), 1);
	CHECK_EQ(m[0].cmd, N4_CMD_KEYID);
	CHECK_EQ(keyid(s, &e, 0x11, 0), 0);
	CHECK_EQ(one(&e, m, &closed), 0); /* waits in the table, alone */
	CHECK_EQ(one(&j, m, &closed), 0);
	CHECK_EQ(n4_server_test_check(s), 0);
	/* The keyed host with that long id: both are members, the joiner announced. */
	CHECK_EQ(conn(s, "198.51.100.1", 40000, &h), 0);
	CHECK_EQ(host_hello(s, &h, "rmq", kext, 8), 0);
	CHECK_EQ(one(&h, m, &closed), 1);
	CHECK_EQ(m[0].cmd, N4_CMD_KEYID);
	CHECK_EQ(keyid(s, &h, 0x11, 0), 0);
	CHECK(ready(&j) >= 0);
	CHECK(ready(&e) >= 0);
	CHECK_EQ(msgs(h.fd, m, 4, &closed), 3);
	CHECK(got_room(&m[0], N4_ROOM_HOSTED));
	CHECK(got_room(&m[2], N4_ROOM_JOIN_PEER));
	CHECK_EQ(m[2].payload[0], 'k');
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h.fd);
	close(j.fd);
	close(e.fd);
}

TEST(server_room_held_joiners_go_to_the_next_host)
{
	n4_server *s = server(false);
	struct cl h = { .fd = -1 }, h2, j, k;
	const uint8_t pid[N4_PAYLOAD_SIZE] = { 'j' }, pk[N4_PAYLOAD_SIZE] = { 'k' };
	uint8_t ticket[N4_ROOM_TICKET_SIZE];
	struct n4_msg m[6];
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(host_and_joiner(s, &h, &j, "rmh", "203.0.113.7", pid, ticket), 0);
	close(h.fd); /* the host vanishes */
	n4_server_test_poll(s);
	n4_server_test_poll(s);
	CHECK(status_has(s, " rooms=1 hosted=1"));
	/* A joiner meanwhile: READY, held (nobody to announce it to). */
	CHECK_EQ(conn(s, "192.0.2.8", 41000, &k), 0);
	CHECK_EQ(hello(s, &k, "rmh", ROOM_EXT), 0);
	CHECK(ready(&k) >= 0);
	CHECK_EQ(room_msg(s, &k, N4_ROOM_JOINER, pk), 0);
	CHECK_EQ(msgs(j.fd, m, 4, &closed), 0);
	CHECK(!closed);
	CHECK_EQ(n4_server_test_clients(s), 2);
	/* The next host: HOSTED, then both joiners, the first with its old ticket. */
	CHECK_EQ(conn(s, "198.51.100.1", 40005, &h2), 0);
	CHECK_EQ(host_hello(s, &h2, "rmh", ROOM_EXT, 8), 0);
	CHECK_EQ(msgs(h2.fd, m, 6, &closed), 5);
	CHECK(got_room(&m[0], N4_ROOM_HOSTED));
	bool seen_j = false, seen_k = false;
	for (int i = 1; i < 5; i += 2) {
		CHECK(got_room(&m[i], N4_ROOM_JOIN));
		CHECK(got_room(&m[i + 1], N4_ROOM_JOIN_PEER));
		if (m[i + 1].payload[0] == 'j') {
			seen_j = true;
			CHECK(memcmp(m[i].payload, ticket, sizeof(ticket)) == 0);
		}
		seen_k |= m[i + 1].payload[0] == 'k';
	}
	CHECK(seen_j && seen_k);
	CHECK(status_has(s, " rooms=1 hosted=2 joins=2"));
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h2.fd);
	close(j.fd);
	close(k.fd);
}

TEST(server_room_message_of_equals_is_read_and_ignored)
{
	n4_server *s = server(false);
	struct cl a, b;
	const uint8_t pid[N4_PAYLOAD_SIZE] = { 'e' };
	struct sockaddr_in p;

	CHECK(s != NULL);
	CHECK_EQ(conn(s, "198.51.100.2", 40000, &a), 0);
	CHECK_EQ(conn(s, "203.0.113.2", 40000, &b), 0);
	CHECK_EQ(hello(s, &a, "rmq", ROOM_EXT), 0);
	CHECK_EQ(hello(s, &b, "rmq", ROOM_EXT), 0);
	CHECK_EQ(ready(&a), ROOM_EXT);
	CHECK_EQ(ready(&b), ROOM_EXT);
	exchange(s, &a, 20000);
	exchange(s, &b, 20001);
	CHECK_EQ(room_msg(s, &a, N4_ROOM_JOINER, pid), 0);
	/* b's ROOM message is still due: no PEERINFO yet. */
	struct n4_msg m[2];
	bool closed;
	CHECK_EQ(msgs(a.fd, m, 2, &closed), 0);
	CHECK_EQ(room_msg(s, &b, N4_ROOM_JOINER, pid), 0);
	CHECK_EQ(peerinfo(s, &a, &p), 0);
	CHECK_EQ(ntohs(p.sin_port), 20001);
	CHECK_EQ(peerinfo(s, &b, &p), 0);
	CHECK_EQ(ntohs(p.sin_port), 20000);
	CHECK(status_has(s, " rooms=0 hosted=0 joins=0 refused=0"));
	n4_server_free(s);
	close(a.fd);
	close(b.fd);
}

TEST(server_room_malformed_room_message_after_ready_closes)
{
	n4_server *s = server(false);
	struct cl h = { .fd = -1 }, j;
	const uint8_t pid[N4_PAYLOAD_SIZE] = { 'm' };
	uint8_t ticket[N4_ROOM_TICKET_SIZE], pl[N4_PAYLOAD_SIZE] = { 0, 4 };
	struct n4_msg m[4];
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(host_and_joiner(s, &h, &j, "rmm", "203.0.113.7", pid, ticket), 0);
	/* A member sending HOST, or a server's subcode: closed, never announced. */
	const uint8_t subs[] = { N4_ROOM_HOST, N4_ROOM_JOIN, N4_ROOM_HOSTED, 0x7f };
	for (unsigned i = 0; i < sizeof(subs); i++) {
		struct cl c;
		CHECK_EQ(conn(s, "192.0.2.8", (uint16_t)(41000 + i), &c), 0);
		CHECK_EQ(hello(s, &c, "rmm", ROOM_EXT), 0);
		CHECK(ready(&c) >= 0);
		CHECK_EQ(room_msg(s, &c, subs[i], pl), 0);
		CHECK_EQ(one(&c, m, &closed), 0);
		CHECK(closed);
		close(c.fd);
	}
	CHECK_EQ(msgs(h.fd, m, 4, &closed), 0);
	CHECK_EQ(n4_server_test_clients(s), 2);
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h.fd);
	close(j.fd);
}

TEST(server_room_full_room_refuses_joiners)
{
	n4_server *s = server(false);
	struct cl h, j[4];
	const uint8_t pid[N4_PAYLOAD_SIZE] = { 'f' };
	struct n4_msg m[8];
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(conn(s, "198.51.100.1", 40000, &h), 0);
	CHECK_EQ(host_hello(s, &h, "rmz", ROOM_EXT, 3), 0);
	CHECK_EQ(one(&h, m, &closed), 1);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(conn(s, "203.0.113.7", (uint16_t)(41000 + i), &j[i]), 0);
		CHECK_EQ(hello(s, &j[i], "rmz", ROOM_EXT), 0);
		CHECK(ready(&j[i]) >= 0);
		CHECK_EQ(room_msg(s, &j[i], N4_ROOM_JOINER, pid), 0);
	}
	CHECK_EQ(msgs(h.fd, m, 8, &closed), 6); /* three announced */
	CHECK_EQ(one(&j[3], m, &closed), 1);
	CHECK(got_room(&m[0], N4_ROOM_REFUSED));
	CHECK_EQ(m[0].payload[0], N4_ROOM_R_LIMITS);
	CHECK_EQ(one(&j[3], m, &closed), 0);
	CHECK(closed);
	CHECK(status_has(s, " joins=3 refused=1"));
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h.fd);
	for (unsigned i = 0; i < 4; i++)
		close(j[i].fd);
}

TEST(server_room_shutdown_closes_the_room_and_its_waiting_joiners)
{
	n4_server *s = server(false);
	struct cl h = { .fd = -1 }, j, a, b;
	const uint8_t pid[N4_PAYLOAD_SIZE] = { 'd' };
	uint8_t ticket[N4_ROOM_TICKET_SIZE];
	struct n4_msg m[2];
	bool closed;

	CHECK(s != NULL);
	CHECK_EQ(host_and_joiner(s, &h, &j, "rms", "203.0.113.7", pid, ticket), 0);
	/* A pair of equals in the exchange: it may finish. */
	CHECK_EQ(conn(s, "198.51.100.2", 40000, &a), 0);
	CHECK_EQ(conn(s, "192.0.2.2", 40000, &b), 0);
	CHECK_EQ(hello(s, &a, "eq", N4_EXT_TOKEN), 0);
	CHECK_EQ(hello(s, &b, "eq", N4_EXT_TOKEN), 0);
	CHECK(ready(&a) >= 0 && ready(&b) >= 0);
	CHECK_EQ(n4_server_test_clients(s), 4);
	n4_server_test_drain(s);
	/* The room's connection lives for hours and its joiner waits for an answer
	 * that cannot come: both closed at once; the pair stays. */
	CHECK_EQ(n4_server_test_clients(s), 2);
	CHECK_EQ(msgs(h.fd, m, 2, &closed), 0);
	CHECK(closed);
	CHECK_EQ(msgs(j.fd, m, 2, &closed), 0);
	CHECK(closed);
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(h.fd);
	close(j.fd);
	close(a.fd);
	close(b.fd);
}

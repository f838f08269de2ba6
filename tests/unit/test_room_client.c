/* test_room_client.c - the host's side of a room connection (lib/room.c):
 * n4_room_poll takes JOIN + JOIN_PEER whole or split across reads at any byte,
 * waits for the rest of a message, refuses a JOIN_PEER without its JOIN and
 * anything that is not a ROOM message, and reports the connection's end. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "n4.h"
#include "test.h"
#include "wire.h"

static const uint8_t join_bytes[16] = { N4_CMD_ROOM, N4_ROOM_JOIN,	1, 2, 3, 4, 5, 6,
					N4_CMD_ROOM, N4_ROOM_JOIN_PEER, 9, 8, 7, 6, 5, 4 };

static int pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
}

TEST(room_poll_whole_and_split)
{
	for (unsigned cut = 0; cut <= sizeof(join_bytes); cut++) {
		int sv[2];
		struct n4_room_rx rx;
		struct n4_join j;
		memset(&rx, 0, sizeof(rx));
		CHECK_EQ(pair(sv), 0);
		CHECK_EQ(write(sv[1], join_bytes, cut), (ssize_t)cut);
		int rc = n4_room_poll(sv[0], &rx, &j);
		CHECK_EQ(rc, cut == sizeof(join_bytes) ? 1 : 0);
		if (cut < sizeof(join_bytes)) {
			CHECK_EQ(write(sv[1], join_bytes + cut, sizeof(join_bytes) - cut),
				 (ssize_t)(sizeof(join_bytes) - cut));
			CHECK_EQ(n4_room_poll(sv[0], &rx, &j), 1);
		}
		CHECK(memcmp(j.ticket, join_bytes + 2, 6) == 0);
		CHECK(memcmp(j.peer_id, join_bytes + 10, 6) == 0);
		CHECK_EQ(n4_room_poll(sv[0], &rx, &j), 0); /* nothing more */
		close(sv[1]);
		CHECK_EQ(n4_room_poll(sv[0], &rx, &j), -ECONNRESET);
		close(sv[0]);
	}
}

TEST(room_poll_two_joins_in_one_read)
{
	int sv[2];
	struct n4_room_rx rx;
	struct n4_join j;
	uint8_t two[32];

	memset(&rx, 0, sizeof(rx));
	memcpy(two, join_bytes, 16);
	memcpy(two + 16, join_bytes, 16);
	two[18] = 0x77; /* the second ticket differs */
	CHECK_EQ(pair(sv), 0);
	CHECK_EQ(write(sv[1], two, sizeof(two)), (ssize_t)sizeof(two));
	CHECK_EQ(n4_room_poll(sv[0], &rx, &j), 1);
	CHECK_EQ(j.ticket[0], 1);
	CHECK_EQ(n4_room_poll(sv[0], &rx, &j), 1);
	CHECK_EQ(j.ticket[0], 0x77);
	CHECK_EQ(n4_room_poll(sv[0], &rx, &j), 0);
	close(sv[0]);
	close(sv[1]);
}

TEST(room_poll_refuses_nonsense)
{
	static const uint8_t peer_first[8] = { N4_CMD_ROOM, N4_ROOM_JOIN_PEER, 1, 2, 3, 4, 5, 6 };
	static const uint8_t not_room[8] = { N4_CMD_REPUNCH, 0, 'n', '4', 'n', '4', 'n', '4' };
	static const uint8_t refused[8] = { N4_CMD_ROOM, N4_ROOM_REFUSED, 2, 0, 0, 0, 0, 0 };
	const uint8_t *cases[] = { peer_first, not_room, refused };
	const int want[] = { -EPROTO, -EPROTO, -EACCES };

	for (unsigned i = 0; i < 3; i++) {
		int sv[2];
		struct n4_room_rx rx;
		struct n4_join j;
		memset(&rx, 0, sizeof(rx));
		CHECK_EQ(pair(sv), 0);
		CHECK_EQ(write(sv[1], cases[i], 8), 8);
		CHECK_EQ(n4_room_poll(sv[0], &rx, &j), want[i]);
		close(sv[0]);
		close(sv[1]);
	}
}

TEST(room_host_refuses_bad_config)
{
	struct n4_client_cfg cfg;
	char why[128] = "";

	n4_client_cfg_init(&cfg);
	CHECK_EQ(n4_room_host(&cfg, 8, why, sizeof(why)), -EINVAL); /* no server */
	CHECK(strstr(why, "server") != NULL);
}

/* filter.c - keep PUNCHes and keepalives away from the program without touching its
 * I/O: a classic BPF socket filter drops them in the kernel before they are queued,
 * so poll/epoll never wake for them and a blocking read after "readable" always finds
 * the program's datagram (issue 9: a peek-and-drop filter in the receive call woke
 * poll for a late PUNCH, then blocked in read()).
 *
 * On a UDP socket the filter sees the datagram from its UDP header on (the kernel
 * runs it in udp_queue_rcv_skb with data at the transport header), so the payload
 * starts at offset 8.  A PUNCH is exactly 8 bytes: 0x05, any reserved byte, then the
 * 6-byte identifier; keyed peers' authenticated PUNCH is 68 bytes, 0x09, with the
 * (derived) identifier at the same place; a relay's registration answer is 12 bytes,
 * 0x0B, with the path's token; a SIDE (the end-to-end exchange after a WIN) is 0x15
 * and at least SIDE_MIN bytes, the identifier again at offset 2.
 *
 * The filter also carries the path across exec(): after its last reachable return it
 * holds a few never-executed load instructions with the peer, the placeholder (or a
 * listener's alias for its peer) and the connected flag, which the new image reads back with SO_GET_FILTER (inherit.c).  The
 * descriptor carries its own designation: no environment to edit, no exec() hook.
 * A direct IPv6 path's socket carries its IPv6 peer there too (four more words).
 *
 * The same program serves an AF_INET6 socket: the kernel runs socket filters of
 * both families at the UDP header (udpv6_queue_rcv_skb after the IPv6 header and
 * its extension headers are pulled), so the offsets are the same; the lab checks
 * it (tests/lab/test_shim_ipv6.sh: a late PUNCH never reaches the program). */
#include "shim.h"

#include <errno.h>
#include <linux/filter.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "relay_reg.h"
#include "wire.h"

#define UDP_HDR 8

#define STATE_MAGIC 0x6e347368u /* "n4sh" */
#define STATE_AT 29		/* first data instruction */
#define FILTER_LEN 39
#define FILTER_LEN_V1 35  /* an older image's, without an IPv6 peer */
#define STATE_PATH6 8u	  /* in the flags word: the peer is the IPv6 one, */
#define STATE_PROG_V4 16u /* ... under an AF_INET program's descriptor; the */
			  /* program's port in the word's upper half */
#define DROP 27		  /* index of the dropping return */
#define ACCEPT 28	  /* index of the accepting return */
/* The shortest SIDE: command, flags, identifier, side id, port, count. */
#define SIDE_MIN (2 + N4_PAYLOAD_SIZE + 8 + 2 + 1)
/* Offset of a jump at instruction `at` to instruction `to` (forward only). */
#define J(at, to) ((to) - (at)-1)

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void shim_filter_state_of(const struct shim_sock *s, const struct n4_result *res,
			  struct shim_filter_state *st)
{
	memset(st, 0, sizeof(*st));
	st->peer = res ? res->peer : s->peer;
	st->path6 = res ? res->family == AF_INET6 : s->path6;
	if (st->path6)
		st->peer6 = res ? res->peer6 : s->peer6;
	st->ph = s->ph;
	st->have_ph = s->have_ph;
	st->alias = s->alias_ph;
	st->connected = s->connected_ph;
	st->prog_family = s->family;
	if (s->bound_len && s->bound_addr.ss_family == AF_INET6)
		st->prog_port = ntohs(((const struct sockaddr_in6 *)&s->bound_addr)->sin6_port);
	else if (s->bound_len && s->bound_addr.ss_family == AF_INET)
		st->prog_port = ntohs(((const struct sockaddr_in *)&s->bound_addr)->sin_port);
}

int shim_filter_attach(int fd, const char *ident, const struct shim_filter_state *st,
		       const uint8_t *relay_token, const struct sock_fprog *user)
{
	uint8_t id[N4_PAYLOAD_SIZE], tok[N4_RELAY_TOKEN_SIZE] = { 0 };
	unsigned char buf[N4_APUNCH_SIZE + 1];
	uint32_t p6[4] = { 0, 0, 0, 0 };
	const struct sockaddr_in *peer = &st->peer, *ph = st->have_ph ? &st->ph : NULL;
	bool alias = st->alias, connected = st->connected;
	uint16_t peer_port = st->path6 ? st->peer6.sin6_port : peer->sin_port;
	/* A direct IPv6 path: the program's family and port, for a new image. */
	uint32_t prog_word = st->path6 ? (uint32_t)st->prog_port << 16 |
						 (st->prog_family == AF_INET ? STATE_PROG_V4 : 0u)
				       : 0u;

	if (st->path6)
		memcpy(p6, &st->peer6.sin6_addr, sizeof(p6));

	if (n4_ident_encode(ident, id) < 0)
		return -EINVAL;
	if (relay_token)
		memcpy(tok, relay_token, sizeof(tok));
	uint32_t w = be32(id), h = (uint32_t)id[4] << 8 | id[5];
	/* Relayed path: its relay's acks go too.  Otherwise a length no UDP datagram
	 * has (the header alone is 8), so that block never matches. */
	/* A relay's ack is a registration of the same size (relay_reg.h). */
	uint32_t ack_len = relay_token ? UDP_HDR + N4_RELAY_REG_SIZE : 0;
	struct sock_filter code[FILTER_LEN] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UDP_HDR + N4_MSG_SIZE, J(1, 3), 0),
		/* 2: keyed peers' authenticated PUNCH, the id at the same place */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UDP_HDR + N4_APUNCH_SIZE, J(2, 5), J(2, 11)),
		/* 3 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, UDP_HDR),
		/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, N4_CMD_PUNCH, J(4, 7), J(4, ACCEPT)),
		/* 5 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, UDP_HDR),
		/* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, N4_CMD_APUNCH, 0, J(6, ACCEPT)),
		/* 7 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, UDP_HDR + 2),
		/* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, w, 0, J(8, ACCEPT)),
		/* 9 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, UDP_HDR + 6),
		/* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, h, J(10, DROP), J(10, ACCEPT)),
		/* 11, A = length */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ack_len, 0, J(11, 20)),
		/* 12 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, UDP_HDR),
		/* 13 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, N4_CMD_RELAY_REG, 0, J(13, ACCEPT)),
		/* 14 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, UDP_HDR + 2),
		/* 15 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, be32(tok), 0, J(15, ACCEPT)),
		/* 16 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, UDP_HDR + 6),
		/* 17 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, be32(tok + 4), 0, J(17, ACCEPT)),
		/* 18 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, UDP_HDR + 10),
		/* 19 */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)tok[8] << 8 | tok[9], J(19, DROP),
			 J(19, ACCEPT)),
		/* 20: the peer's late SIDE (the end-to-end exchange after a WIN), the
		 * identifier at the same place; the length first, for a load past the
		 * end would drop the datagram (an empty one is the program's). */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, UDP_HDR + SIDE_MIN, 0, J(20, ACCEPT)),
		/* 21 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, UDP_HDR),
		/* 22 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, N4_CMD_SIDE, 0, J(22, ACCEPT)),
		/* 23 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, UDP_HDR + 2),
		/* 24 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, w, 0, J(24, ACCEPT)),
		/* 25 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, UDP_HDR + 6),
		/* 26 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, h, J(26, DROP), J(26, ACCEPT)),
		/* 27 */ BPF_STMT(BPF_RET | BPF_K, 0),		 /* ours: dropped */
		/* 28 */ BPF_STMT(BPF_RET | BPF_K, 0xffffffffu), /* the program's */
		/* never executed: the path's state, for a new image after exec */
		/* 29 */ BPF_STMT(BPF_LD | BPF_IMM, STATE_MAGIC),
		/* 30 */ BPF_STMT(BPF_LD | BPF_IMM, peer->sin_addr.s_addr),
		/* 31 */
		BPF_STMT(BPF_LD | BPF_IMM, (uint32_t)peer_port << 16 | (ph ? ph->sin_port : 0)),
		/* 32 */ BPF_STMT(BPF_LD | BPF_IMM, ph ? ph->sin_addr.s_addr : 0),
		/* 33 */
		BPF_STMT(BPF_LD | BPF_IMM, (ph ? 1u : 0u) | (connected ? 2u : 0u) |
						   (ph && alias ? 4u : 0u) |
						   (st->path6 ? STATE_PATH6 | prog_word : 0u)),
		/* 34..37: the IPv6 peer's address (path6) */
		BPF_STMT(BPF_LD | BPF_IMM, p6[0]),
		BPF_STMT(BPF_LD | BPF_IMM, p6[1]),
		BPF_STMT(BPF_LD | BPF_IMM, p6[2]),
		BPF_STMT(BPF_LD | BPF_IMM, p6[3]),
		/* 38 */ BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
	struct sock_filter *all = NULL;
	int rc = 0;

	/* The program's own classic filter (a socket has one): where ours would accept,
	 * jump past the state, clear A and X, and run its instructions unchanged (classic
	 * BPF jumps are relative and forward, so they stay valid). */
	if (user && user->len) {
		const unsigned ours = FILTER_LEN + 2;
		if (user->len > BPF_MAXINSNS - ours)
			return -E2BIG;
		all = malloc((ours + user->len) * sizeof(*all));
		if (!all)
			return -ENOMEM;
		memcpy(all, code, sizeof(code));
		all[ACCEPT] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, J(ACCEPT, FILTER_LEN));
		all[FILTER_LEN] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_IMM, 0);
		all[FILTER_LEN + 1] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 0);
		memcpy(all + ours, user->filter, user->len * sizeof(*all));
		prog.len = (unsigned short)(ours + user->len);
		prog.filter = all;
	}
	if (REAL(setsockopt)(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		rc = -errno;
	free(all);
	if (rc < 0) {
		/* Not combined: the program's filter alone, ours by peeking (the caller). */
		if (user &&
		    REAL(setsockopt)(fd, SOL_SOCKET, SO_ATTACH_FILTER, user, sizeof(*user)) < 0)
			rc = -errno;
		return rc;
	}
	/* Queued before the filter existed: drop PUNCHes and SIDEs at the head of the
	 * queue (the peer's last SIDE often lands after our exchange ended). */
	for (;;) {
		ssize_t n =
			REAL(recvfrom)(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT, NULL, NULL);
		if (n <= 0 ||
		    !(n4_is_punch(buf, (size_t)n, ident) || n4_is_side(buf, (size_t)n, ident)))
			break;
		(void)REAL(recvfrom)(fd, buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL);
	}
	return 0;
}

bool shim_filter_read(int fd, struct shim_filter_state *st)
{
	struct sock_filter code[BPF_MAXINSNS]; /* ours, maybe followed by the program's */
	socklen_t len = BPF_MAXINSNS;	       /* in instructions, for SO_GET_FILTER */

	/* Raw system call: this runs from a constructor, before anything is resolved. */
	if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_GET_FILTER, code, &len) < 0 ||
	    len < FILTER_LEN_V1 || code[STATE_AT].k != STATE_MAGIC)
		return false;
	memset(st, 0, sizeof(*st));
	st->peer.sin_family = st->ph.sin_family = AF_INET;
	st->peer.sin_addr.s_addr = code[STATE_AT + 1].k;
	st->peer.sin_port = (uint16_t)(code[STATE_AT + 2].k >> 16);
	st->ph.sin_port = (uint16_t)(code[STATE_AT + 2].k & 0xffff);
	st->ph.sin_addr.s_addr = code[STATE_AT + 3].k;
	st->have_ph = code[STATE_AT + 4].k & 1;
	st->connected = code[STATE_AT + 4].k & 2;
	st->alias = st->have_ph && (code[STATE_AT + 4].k & 4);
	if ((code[STATE_AT + 4].k & STATE_PATH6) && len >= FILTER_LEN) {
		uint32_t p6[4];
		for (int i = 0; i < 4; i++)
			p6[i] = code[STATE_AT + 5 + i].k;
		st->path6 = true;
		st->peer6.sin6_family = AF_INET6;
		memcpy(&st->peer6.sin6_addr, p6, sizeof(p6));
		st->peer6.sin6_port = st->peer.sin_port;
		st->peer.sin_port = 0;
		st->prog_family = (code[STATE_AT + 4].k & STATE_PROG_V4) ? AF_INET : AF_INET6;
		st->prog_port = (uint16_t)(code[STATE_AT + 4].k >> 16);
	}
	return true;
}

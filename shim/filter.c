/* filter.c - keep PUNCHes and keepalives away from the program without touching its
 * I/O: a classic BPF socket filter drops them in the kernel before they are queued,
 * so poll/epoll never wake for them and a blocking read after "readable" always finds
 * the program's datagram (issue 9: a peek-and-drop filter in the receive call woke
 * poll for a late PUNCH, then blocked in read()).
 *
 * On a UDP socket the filter sees the datagram from its UDP header on (the kernel
 * runs it in udp_queue_rcv_skb with data at the transport header), so the payload
 * starts at offset 8.  A PUNCH is exactly 8 bytes: 0x05, any reserved byte, then the
 * 6-byte identifier.
 *
 * The filter also carries the path across exec(): after its last reachable return it
 * holds a few never-executed load instructions with the peer, the placeholder and the
 * connected flag, which the new image reads back with SO_GET_FILTER (inherit.c).  The
 * descriptor carries its own designation: no environment to edit, no exec() hook. */
#include "shim.h"

#include <errno.h>
#include <linux/filter.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wire.h"

#define UDP_HDR 8

#define STATE_MAGIC 0x6e347368u /* "n4sh" */
#define STATE_AT 10		/* first data instruction */
#define FILTER_LEN 16

int shim_filter_attach(int fd, const char *ident, const struct sockaddr_in *peer,
		       const struct sockaddr_in *ph, bool connected)
{
	uint8_t id[N4_PAYLOAD_SIZE];
	unsigned char buf[16];

	if (n4_ident_encode(ident, id) < 0)
		return -EINVAL;
	uint32_t w = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
	uint32_t h = (uint32_t)id[4] << 8 | id[5];
	struct sock_filter code[FILTER_LEN] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UDP_HDR + N4_MSG_SIZE, 0, 6),
		/* 2 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, UDP_HDR),
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, N4_CMD_PUNCH, 0, 4),
		/* 4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, UDP_HDR + 2),
		/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, w, 0, 2),
		/* 6 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, UDP_HDR + 6),
		/* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, h, 1, 0),
		/* 8 */ BPF_STMT(BPF_RET | BPF_K, 0xffffffffu), /* the program's */
		/* 9 */ BPF_STMT(BPF_RET | BPF_K, 0),		/* ours: dropped */
		/* never executed: the path's state, for a new image after exec */
		/* 10 */ BPF_STMT(BPF_LD | BPF_IMM, STATE_MAGIC),
		/* 11 */ BPF_STMT(BPF_LD | BPF_IMM, peer->sin_addr.s_addr),
		/* 12 */
		BPF_STMT(BPF_LD | BPF_IMM,
			 (uint32_t)peer->sin_port << 16 | (ph ? ph->sin_port : 0)),
		/* 13 */ BPF_STMT(BPF_LD | BPF_IMM, ph ? ph->sin_addr.s_addr : 0),
		/* 14 */ BPF_STMT(BPF_LD | BPF_IMM, (ph ? 1u : 0u) | (connected ? 2u : 0u)),
		/* 15 */ BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	if (REAL(setsockopt)(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		return -errno;
	/* Queued before the filter existed: drop PUNCHes at the head of the queue. */
	for (;;) {
		ssize_t n =
			REAL(recvfrom)(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT, NULL, NULL);
		if (n != N4_MSG_SIZE || !n4_is_punch(buf, (size_t)n, ident))
			break;
		(void)REAL(recvfrom)(fd, buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL);
	}
	return 0;
}

bool shim_filter_read(int fd, struct sockaddr_in *peer, struct sockaddr_in *ph, bool *have_ph,
		      bool *connected)
{
	struct sock_filter code[FILTER_LEN];
	socklen_t len = FILTER_LEN; /* in instructions, for SO_GET_FILTER */

	/* Raw system call: this runs from a constructor, before anything is resolved. */
	if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_GET_FILTER, code, &len) < 0 ||
	    len != FILTER_LEN || code[STATE_AT].k != STATE_MAGIC)
		return false;
	memset(peer, 0, sizeof(*peer));
	memset(ph, 0, sizeof(*ph));
	peer->sin_family = ph->sin_family = AF_INET;
	peer->sin_addr.s_addr = code[STATE_AT + 1].k;
	peer->sin_port = (uint16_t)(code[STATE_AT + 2].k >> 16);
	ph->sin_port = (uint16_t)(code[STATE_AT + 2].k & 0xffff);
	ph->sin_addr.s_addr = code[STATE_AT + 3].k;
	*have_ph = code[STATE_AT + 4].k & 1;
	*connected = code[STATE_AT + 4].k & 2;
	return true;
}

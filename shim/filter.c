/* filter.c - keep PUNCHes and keepalives away from the program without touching its
 * I/O: a classic BPF socket filter drops them in the kernel before they are queued,
 * so poll/epoll never wake for them and a blocking read after "readable" always finds
 * the program's datagram (issue 9: a peek-and-drop filter in the receive call woke
 * poll for a late PUNCH, then blocked in read()).
 *
 * On a UDP socket the filter sees the datagram from its UDP header on (the kernel
 * runs it in udp_queue_rcv_skb with data at the transport header), so the payload
 * starts at offset 8.  A PUNCH is exactly 8 bytes: 0x05, any reserved byte, then the
 * 6-byte identifier. */
#include "shim.h"

#include <errno.h>
#include <linux/filter.h>
#include <string.h>

#include "wire.h"

#define UDP_HDR 8

int shim_filter_attach(int fd, const char *ident)
{
	uint8_t id[N4_PAYLOAD_SIZE];
	unsigned char buf[16];

	if (n4_ident_encode(ident, id) < 0)
		return -EINVAL;
	uint32_t w = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
	uint32_t h = (uint32_t)id[4] << 8 | id[5];
	struct sock_filter code[] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UDP_HDR + N4_MSG_SIZE, 0, 6),
		/* 2 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, UDP_HDR),
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, N4_CMD_PUNCH, 0, 4),
		/* 4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, UDP_HDR + 2),
		/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, w, 0, 2),
		/* 6 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, UDP_HDR + 6),
		/* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, h, 1, 0),
		/* 8 */ BPF_STMT(BPF_RET | BPF_K, 0xffffffffu), /* the program's */
		/* 9 */ BPF_STMT(BPF_RET | BPF_K, 0),		 /* ours: dropped */
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	if (REAL(setsockopt)(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		return -errno;
	/* Queued before the filter existed: drop PUNCHes at the head of the queue. */
	for (;;) {
		ssize_t n = REAL(recvfrom)(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT, NULL,
					   NULL);
		if (n != N4_MSG_SIZE || !n4_is_punch(buf, (size_t)n, ident))
			break;
		(void)REAL(recvfrom)(fd, buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL);
	}
	return 0;
}

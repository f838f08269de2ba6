/* server_baseline.c - the simplest rendezvous server for the same protocol, as the
 * original serves it: blocking sockets, one pair at a time.  Accept a client, read
 * its HELLO (60 s to send it), accept a second one, drain stale datagrams, READY to
 * both, wait for one EXCHANGE from each (matched by source IP), PEERINFO to both,
 * close, start over.  Kept only as the benchmark's baseline (bench/server.sh).
 *
 * usage: server_baseline PORT [IDENT]   (IDENT: n4n4n4; PORT 0 = any, printed) */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "wire.h"

static int read_exact(int fd, uint8_t *buf, size_t len)
{
	size_t have = 0;

	while (have < len) {
		ssize_t n = recv(fd, buf + have, len - have, 0);
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return 0;
}

/* Accept until a client sends a HELLO with our identifier. */
static int accept_hello(int lfd, const uint8_t ident[N4_PAYLOAD_SIZE], struct sockaddr_in *a)
{
	for (;;) {
		socklen_t alen = sizeof(*a);
		int fd = accept(lfd, (struct sockaddr *)a, &alen);
		if (fd < 0)
			continue;
		struct timeval tv = { .tv_sec = 60 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		uint8_t b[N4_MSG_SIZE];
		struct n4_msg m;
		if (read_exact(fd, b, sizeof(b)) == 0 &&
		    n4_wire_decode(b, sizeof(b), N4_CMD_HELLO, &m) == 0 &&
		    memcmp(m.payload, ident, N4_PAYLOAD_SIZE) == 0)
			return fd;
		close(fd);
	}
}

int main(int argc, char **argv)
{
	uint8_t ident[N4_PAYLOAD_SIZE];
	struct sockaddr_in addr = { .sin_family = AF_INET };
	int one = 1;

	if (argc < 2 || n4_ident_encode(argc > 2 ? argv[2] : "n4n4n4", ident)) {
		fprintf(stderr, "usage: server_baseline PORT [IDENT]\n");
		return 2;
	}
	addr.sin_port = htons((uint16_t)atoi(argv[1]));
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 4096)) {
		perror("server_baseline");
		return 1;
	}
	socklen_t alen = sizeof(addr);
	getsockname(lfd, (struct sockaddr *)&addr, &alen);
	int ufd = socket(AF_INET, SOCK_DGRAM, 0);
	if (bind(ufd, (struct sockaddr *)&addr, sizeof(addr))) {
		perror("server_baseline: udp");
		return 1;
	}
	fprintf(stderr, "baseline: serving on port %u\n", ntohs(addr.sin_port));
	for (;;) {
		struct sockaddr_in ta[2], ua[2];
		int t[2];
		uint8_t b[64];
		t[0] = accept_hello(lfd, ident, &ta[0]);
		t[1] = accept_hello(lfd, ident, &ta[1]);
		while (recv(ufd, b, sizeof(b), MSG_DONTWAIT) >= 0)
			; /* stale datagrams */
		struct n4_msg m;
		n4_msg_init(&m, N4_CMD_READY, 0, NULL);
		n4_wire_encode(&m, b);
		send(t[0], b, N4_MSG_SIZE, MSG_NOSIGNAL);
		send(t[1], b, N4_MSG_SIZE, MSG_NOSIGNAL);
		bool seen[2] = { false, false };
		struct timeval tv = { .tv_sec = 10 };
		setsockopt(ufd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (!seen[0] || !seen[1]) {
			struct sockaddr_in src;
			socklen_t sl = sizeof(src);
			ssize_t n = recvfrom(ufd, b, sizeof(b), 0, (struct sockaddr *)&src, &sl);
			if (n < 0)
				break; /* timeout: give up on this pair */
			if (n4_wire_decode(b, (size_t)n, N4_CMD_EXCHANGE, &m) ||
			    memcmp(m.payload, ident, N4_PAYLOAD_SIZE) != 0)
				continue;
			for (int i = 0; i < 2; i++) {
				if (!seen[i] && src.sin_addr.s_addr == ta[i].sin_addr.s_addr) {
					seen[i] = true;
					ua[i] = src;
					break;
				}
			}
		}
		for (int i = 0; i < 2 && seen[0] && seen[1]; i++) {
			n4_msg_init(&m, N4_CMD_PEERINFO, 0, NULL);
			n4_peerinfo_encode(&ua[1 - i], m.payload);
			n4_wire_encode(&m, b);
			send(t[i], b, N4_MSG_SIZE, MSG_NOSIGNAL);
		}
		close(t[0]);
		close(t[1]);
	}
}

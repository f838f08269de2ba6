/* v1client.c - a client that speaks the original n4's wire protocol byte for byte,
 * written from ../shared/n4-protocol.md (no extension is ever offered, PUNCHes are
 * only accepted when all 8 bytes equal its own, 10 s rounds, ten 0.2 s-spaced
 * confirmations before WIN).  Used by the lab tests to prove that ours interoperates
 * with the original.
 *
 * usage: v1client HOST PORT [IDENT] [SRCPORT] [COUNT] [OFFSET] [TIMEOUT_S] */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_exact(int fd, unsigned char *buf, size_t len)
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

static int round_once(const struct sockaddr_in *srv, const unsigned char ident[6], int base,
		      int count, int offset)
{
	unsigned char msg[8], punch[8] = { 5, 0 };
	int one = 1, tcp, *pool = calloc((size_t)count, sizeof(int));
	int result = 0;

	memcpy(punch + 2, ident, 6);
	fprintf(stderr, "==================\nSource port: %d-%d\n", base, base + count);
	for (int i = 0; i < count; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons((uint16_t)(base + i)) };
		pool[i] = socket(AF_INET, SOCK_DGRAM, 0);
		setsockopt(pool[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(pool[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		if (bind(pool[i], (struct sockaddr *)&a, sizeof(a)) < 0) {
			perror("bind");
			exit(2);
		}
	}
	tcp = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(tcp, (const struct sockaddr *)srv, sizeof(*srv)) < 0) {
		perror("connect");
		result = -1;
		goto out;
	}
	msg[0] = 1;
	msg[1] = 0;
	memcpy(msg + 2, ident, 6);
	send(tcp, msg, 8, 0);
	fprintf(stderr, " <= Hello \n");
	if (read_exact(tcp, msg, 8) || msg[0] != 2) {
		result = -1;
		goto out;
	}
	fprintf(stderr, " => Ready \n");
	msg[0] = 3;
	msg[1] = 0;
	memcpy(msg + 2, ident, 6);
	for (int i = 0; i < 3; i++)
		sendto(pool[0], msg, 8, 0, (const struct sockaddr *)srv, sizeof(*srv));
	fprintf(stderr, " <= Exchange \n");
	if (read_exact(tcp, msg, 8) || msg[0] != 4) {
		result = -1;
		goto out;
	}
	struct sockaddr_in peer = { .sin_family = AF_INET };
	memcpy(&peer.sin_addr, msg + 2, 4);
	memcpy(&peer.sin_port, msg + 6, 2);
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
	fprintf(stderr, " => Peer: %s:%u \n", ip, ntohs(peer.sin_port));
	struct sockaddr_in target = peer;
	target.sin_port = htons((uint16_t)(ntohs(peer.sin_port) + offset));
	fprintf(stderr, " [ Target: %s:%u ] \n", ip, ntohs(target.sin_port));
	for (int pass = 0; pass < 5; pass++)
		for (int i = 0; i < count; i++)
			sendto(pool[i], punch, 8, 0, (struct sockaddr *)&target, sizeof(target));
	fprintf(stderr, " <= Punch \n");
	struct pollfd *pfd = calloc((size_t)count, sizeof(*pfd));
	for (int i = 0; i < count; i++)
		pfd[i] = (struct pollfd){ .fd = pool[i], .events = POLLIN };
	double end = now_s() + 10.0;
	while (result == 0 && now_s() < end) {
		int n = poll(pfd, (nfds_t)count, (int)((end - now_s()) * 1000) + 1);
		if (n <= 0)
			continue;
		for (int i = 0; i < count && result == 0; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			unsigned char buf[64];
			struct sockaddr_in from;
			socklen_t flen = sizeof(from);
			ssize_t r = recvfrom(pool[i], buf, sizeof(buf), 0, (struct sockaddr *)&from,
					     &flen);
			if (r != 8 || memcmp(buf, punch, 8) != 0 ||
			    from.sin_addr.s_addr != peer.sin_addr.s_addr)
				continue;
			fprintf(stderr, " => Punch from peer \n");
			for (int k = 0; k < 10; k++) {
				sendto(pool[i], punch, 8, 0, (struct sockaddr *)&from,
				       sizeof(from));
				usleep(200000);
			}
			fprintf(stderr, " <= Punch \n");
			inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip));
			fprintf(stderr,
				"------\nLocal port:    %d\nPeer address:  %s:%u\n------\n"
				"[ WIN ]\n> nc -u -p %d %s %u\n",
				base + i, ip, ntohs(from.sin_port), base + i, ip,
				ntohs(from.sin_port));
			result = 1;
		}
	}
	free(pfd);
	if (result == 0)
		fprintf(stderr, "[ LOSE ]\n");
out:
	close(tcp);
	for (int i = 0; i < count; i++)
		close(pool[i]);
	free(pool);
	return result;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr,
			"usage: v1client HOST PORT [IDENT] [SRCPORT] [COUNT] [OFFSET] [TIMEOUT_S]\n");
		return 2;
	}
	struct sockaddr_in srv = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)atoi(argv[2])) };
	if (inet_pton(AF_INET, argv[1], &srv.sin_addr) != 1) {
		fprintf(stderr, "bad host\n");
		return 2;
	}
	unsigned char ident[6];
	const char *id = argc > 3 ? argv[3] : "n4n4n4";
	memset(ident, ' ', 6);
	memcpy(ident, id, strlen(id) > 6 ? 6 : strlen(id));
	int base = argc > 4 ? atoi(argv[4]) : 30000;
	int count = argc > 5 ? atoi(argv[5]) : 25;
	int offset = argc > 6 ? atoi(argv[6]) : 20;
	double deadline = now_s() + (argc > 7 ? atof(argv[7]) : 60.0);
	while (now_s() < deadline) {
		int r = round_once(&srv, ident, base, count, offset);
		if (r == 1)
			return 0;
		if (r < 0)
			sleep(1);
		base += count;
	}
	fprintf(stderr, "v1client: no WIN in time\n");
	return 1;
}

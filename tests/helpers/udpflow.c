/* udpflow.c - UDP traffic for the relay's tests and benchmarks (never a
 * program under test): send at a rate, count what arrives, echo, and measure
 * round trips.  Every mode binds a fixed local port so that a NAT mapping made
 * by `n4 -c` on that port is reused.
 *
 *   udpflow send  LPORT IP:PORT COUNT SIZE PPS   COUNT datagrams at PPS (0: flat out,
 *                                                in batches); prints "sent N"
 *   udpflow recv  LPORT IDLE_MS MAX_S            count until IDLE_MS of silence after
 *                                                the first datagram (or MAX_S);
 *                                                "received N bytes B pps P mbit M"
 *   udpflow echo  LPORT MAX_S                    send every datagram back to its source
 *   udpflow ping  LPORT IP:PORT COUNT SIZE GAP_US  round trips through an echo;
 *                                                "rtt_us p50 X p99 Y lost L" */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int bound(unsigned port)
{
	int one = 1, big = 4 << 20;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("bind");
		exit(1);
	}
	return fd;
}

static void parse_dst(const char *s, struct sockaddr_in *a)
{
	char ip[64];
	unsigned port;

	if (sscanf(s, "%63[^:]:%u", ip, &port) != 2 || inet_pton(AF_INET, ip, &a->sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", s);
		exit(2);
	}
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static uint8_t buf[65536];

	if (argc < 3)
		goto usage;
	int fd = bound((unsigned)atoi(argv[2]));
	if (!strcmp(argv[1], "send") && argc == 7) {
		struct sockaddr_in to;
		parse_dst(argv[3], &to);
		unsigned long count = strtoul(argv[4], NULL, 10);
		size_t size = strtoul(argv[5], NULL, 10);
		double pps = atof(argv[6]);
		if (size < 8 || size > sizeof(buf))
			goto usage;
		memset(buf, 'x', size);
		uint64_t t0 = now_us();
		unsigned long sent = 0;
		if (connect(fd, (struct sockaddr *)&to, sizeof(to))) {
			perror("connect");
			return 1;
		}
		while (sent < count) {
			if (pps > 0) {
				uint64_t due = t0 + (uint64_t)((double)sent * 1e6 / pps);
				while (now_us() < due)
					;
			}
			memcpy(buf, &sent, sizeof(sent));
			if (send(fd, buf, size, 0) < 0) {
				if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED)
					continue;
				perror("send");
				return 1;
			}
			sent++;
		}
		printf("sent %lu in %.3f s\n", sent, (double)(now_us() - t0) / 1e6);
		return 0;
	}
	if (!strcmp(argv[1], "recv") && argc == 5) {
		int idle_ms = atoi(argv[3]);
		uint64_t max_end = now_us() + (uint64_t)atoi(argv[4]) * 1000000u;
		unsigned long n = 0, bytes = 0;
		uint64_t first = 0, last = 0;
		for (;;) {
			uint64_t t = now_us();
			if (t >= max_end)
				break;
			int wait = n ? idle_ms : (int)((max_end - t) / 1000);
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int r = poll(&p, 1, wait);
			if (r <= 0)
				break;
			ssize_t m;
			while ((m = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
				last = now_us();
				if (!n)
					first = last;
				n++;
				bytes += (unsigned long)m;
			}
		}
		double s = n > 1 ? (double)(last - first) / 1e6 : 0;
		printf("received %lu bytes %lu pps %.0f mbit %.1f\n", n, bytes,
		       s > 0 ? (double)n / s : 0, s > 0 ? (double)bytes * 8 / s / 1e6 : 0);
		fflush(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "echo") && argc == 4) {
		uint64_t end = now_us() + (uint64_t)atoi(argv[3]) * 1000000u;
		while (now_us() < end) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			if (poll(&p, 1, 200) <= 0)
				continue;
			struct sockaddr_in from;
			socklen_t flen = sizeof(from);
			ssize_t m =
				recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
			if (m > 0)
				sendto(fd, buf, (size_t)m, 0, (struct sockaddr *)&from, flen);
		}
		return 0;
	}
	if (!strcmp(argv[1], "ping") && argc == 7) {
		struct sockaddr_in to;
		parse_dst(argv[3], &to);
		unsigned count = (unsigned)atoi(argv[4]);
		size_t size = strtoul(argv[5], NULL, 10);
		unsigned gap = (unsigned)atoi(argv[6]);
		uint64_t *rtt = calloc(count ? count : 1, sizeof(*rtt));
		unsigned got = 0;
		if (!rtt || size < 8 || size > sizeof(buf))
			goto usage;
		memset(buf, 'p', size);
		for (unsigned i = 0; i < count; i++) {
			uint64_t t = now_us();
			memcpy(buf, &t, sizeof(t));
			sendto(fd, buf, size, 0, (struct sockaddr *)&to, sizeof(to));
			struct pollfd p = { .fd = fd, .events = POLLIN };
			while (poll(&p, 1, 200) > 0) {
				uint8_t in[65536];
				ssize_t m = recv(fd, in, sizeof(in), 0);
				uint64_t sent_at;
				if (m < 8)
					continue;
				memcpy(&sent_at, in, sizeof(sent_at));
				if (sent_at == t) {
					rtt[got++] = now_us() - t;
					break;
				}
			}
			uint64_t next = t + gap;
			while (now_us() < next)
				;
		}
		qsort(rtt, got, sizeof(*rtt), cmp_u64);
		printf("rtt_us p50 %llu p99 %llu lost %u\n",
		       got ? (unsigned long long)rtt[got / 2] : 0ULL,
		       got ? (unsigned long long)
				       rtt[(got * 99) / 100 < got ? (got * 99) / 100 : got - 1]
			   : 0ULL,
		       count - got);
		return 0;
	}
usage:
	fprintf(stderr, "usage: see the comment at the top of udpflow.c\n");
	return 2;
}

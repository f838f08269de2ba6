/* shim_v4view.c - an IPv4 program that looks hard at what the shim tells it: for the
 * IPv6 path tests (tests/lab/test_shim_ipv6.sh), where the socket under its
 * descriptor may be an AF_INET6 one.
 *   shim_v4view -c IP:PORT | -l PORT  [-d SECONDS] [-i MS] [-C] [-T TOS]
 *   -c           send to IP:PORT (the placeholder) from the start
 *   -l           bind PORT; answer the address first heard from
 *   -d SECONDS   run this long (10)
 *   -i MS        send a datagram every MS (100)
 *   -C           connect() to the peer (the placeholder, or the first source) and
 *                use send()
 *   -T TOS       set IP_TOS to TOS and IP_TTL to 77 first (read back at the end)
 * Receives rotate through recvfrom, recvmsg and recvmmsg, each with a 16-byte
 * sockaddr_in followed by guard bytes.  Prints (stdout): "from IP:PORT" whenever the
 * source changes, "sockname FAMILY IP:PORT" and (with -C) "peername FAMILY IP:PORT"
 * after the first datagram, "gap MS" for each silence over 500 ms between
 * datagrams, "tos X ttl Y" at the end (with -T), and "done sent N got M bad K
 * foreign F": K counts addresses that were not a whole sockaddr_in (wrong family or
 * length, or guard bytes written), F datagrams that are not the peer's (a PUNCH or
 * keepalive of the shim's that got through its filter). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GUARD 0xa5

struct guarded {
	struct sockaddr_in a;
	unsigned char guard[32];
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void arm(struct guarded *g)
{
	memset(g, GUARD, sizeof(*g));
}

/* A whole sockaddr_in and nothing past it. */
static bool sound(const struct guarded *g, socklen_t len)
{
	for (size_t i = 0; i < sizeof(g->guard); i++)
		if (g->guard[i] != GUARD)
			return false;
	return len == sizeof(struct sockaddr_in) && g->a.sin_family == AF_INET;
}

static const char *text(const struct sockaddr_in *a, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
	return buf;
}

static void show_name(const char *what, int fd, bool peer, unsigned *bad)
{
	struct guarded g;
	socklen_t len = sizeof(g.a);
	char buf[64];

	arm(&g);
	int rc = peer ? getpeername(fd, (struct sockaddr *)&g.a, &len)
		      : getsockname(fd, (struct sockaddr *)&g.a, &len);
	if (rc < 0) {
		printf("%s error %s\n", what, strerror(errno));
		(*bad)++;
		return;
	}
	if (!sound(&g, len))
		(*bad)++;
	printf("%s %s %s\n", what, g.a.sin_family == AF_INET ? "inet" : "other",
	       text(&g.a, buf, sizeof(buf)));
}

/* One receive, rotating through the three calls. */
static ssize_t receive(int fd, unsigned turn, struct guarded *g, socklen_t *len, char *data,
		       size_t cap)
{
	struct iovec iov = { data, cap };

	arm(g);
	*len = sizeof(g->a);
	switch (turn % 3) {
	case 0:
		return recvfrom(fd, data, cap, MSG_DONTWAIT, (struct sockaddr *)&g->a,
				len);
	case 1: {
		struct msghdr m = { .msg_name = &g->a, .msg_namelen = *len, .msg_iov = &iov,
				    .msg_iovlen = 1 };
		ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
		*len = m.msg_namelen;
		return n;
	}
	default: {
		struct mmsghdr mm = { .msg_hdr = { .msg_name = &g->a, .msg_namelen = *len,
						   .msg_iov = &iov, .msg_iovlen = 1 } };
		int n = recvmmsg(fd, &mm, 1, MSG_DONTWAIT, NULL);
		*len = mm.msg_hdr.msg_namelen;
		return n == 1 ? (ssize_t)mm.msg_len : -1;
	}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in peer = { .sin_family = AF_INET };
	bool listener = false, do_connect = false, have_peer = false, connected = false;
	int tos = -1, opt;
	long duration_s = 10, interval_ms = 100;
	unsigned sent = 0, got = 0, bad = 0, turn = 0, foreign = 0;

	while ((opt = getopt(argc, argv, "c:l:d:i:CT:")) != -1) {
		switch (opt) {
		case 'c': {
			char *colon = strrchr(optarg, ':');
			if (!colon)
				return 2;
			*colon = '\0';
			if (inet_pton(AF_INET, optarg, &peer.sin_addr) != 1)
				return 2;
			peer.sin_port = htons((uint16_t)atoi(colon + 1));
			have_peer = true;
			break;
		}
		case 'l':
			listener = true;
			peer.sin_port = htons((uint16_t)atoi(optarg));
			break;
		case 'd':
			duration_s = atol(optarg);
			break;
		case 'i':
			interval_ms = atol(optarg);
			break;
		case 'C':
			do_connect = true;
			break;
		case 'T':
			tos = atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return 1;
	if (tos >= 0) {
		int ttl = 77;
		if (setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)) < 0 ||
		    setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) < 0)
			return 1;
	}
	if (listener) {
		struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = peer.sin_port };
		if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0)
			return 1;
	}
	if (have_peer && do_connect) {
		if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0) {
			perror("connect");
			return 1;
		}
		connected = true;
	}
	long long end = now_ms() + duration_s * 1000, next_send = now_ms(), last_rx = 0;
	struct sockaddr_in last_from = { 0 };
	char buf[64];
	while (now_ms() < end) {
		if (have_peer && now_ms() >= next_send) {
			char msg[32];
			int n = snprintf(msg, sizeof(msg), "v4view %u", sent);
			ssize_t r = connected ? send(fd, msg, (size_t)n, 0)
					      : sendto(fd, msg, (size_t)n, 0,
						       (struct sockaddr *)&peer, sizeof(peer));
			if (r < 0)
				printf("send error %s\n", strerror(errno));
			else
				sent++;
			next_send = now_ms() + interval_ms;
		}
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 20) <= 0)
			continue;
		struct guarded g;
		socklen_t len;
		char data[2048];
		ssize_t n = receive(fd, turn++, &g, &len, data, sizeof(data));
		if (n < 0)
			continue;
		got++;
		if (n < 6 || memcmp(data, "v4view", 6) != 0) {
			foreign++; /* a PUNCH or keepalive of ours would be one */
			printf("foreign datagram of %zd bytes\n", n);
		}
		long long t = now_ms();
		if (last_rx && t - last_rx > 500)
			printf("gap %lld\n", t - last_rx);
		last_rx = t;
		if (!sound(&g, len)) {
			bad++;
			printf("bad address: family %d length %u\n", g.a.sin_family, (unsigned)len);
			continue;
		}
		if (g.a.sin_addr.s_addr != last_from.sin_addr.s_addr ||
		    g.a.sin_port != last_from.sin_port) {
			printf("from %s\n", text(&g.a, buf, sizeof(buf)));
			last_from = g.a;
		}
		if (got == 1) {
			if (!have_peer) {
				peer = g.a;
				have_peer = true;
				if (do_connect) {
					if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0)
						printf("connect error %s\n", strerror(errno));
					else
						connected = true;
				}
			}
			show_name("sockname", fd, false, &bad);
			if (connected)
				show_name("peername", fd, true, &bad);
		}
	}
	if (tos >= 0) {
		int v = -1, ttl = -1;
		socklen_t l = sizeof(v);
		getsockopt(fd, IPPROTO_IP, IP_TOS, &v, &l);
		l = sizeof(ttl);
		getsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, &l);
		printf("tos %d ttl %d\n", v, ttl);
	}
	printf("done sent %u got %u bad %u foreign %u\n", sent, got, bad, foreign);
	return 0;
}

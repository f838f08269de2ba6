/*
 * dgram: send and receive UDP datagrams from one socket, logging each one, for the lab's
 * firewall tests.
 *
 * A stateful firewall decides on the 5-tuple, so the sends and the receipts must use one
 * socket: socat cannot listen on a port and send from that same port in one process.  The
 * socket is AF_INET6 and dual-stack, so IPv4 destinations work too (as v4-mapped addresses;
 * the log prints them as plain IPv4).
 *
 *   dgram -l PORT [-d ADDR -D PORT [-n COUNT] [-i MS] [-a EPOCH_MS]] [-t TAG] [-e]
 *         [-x COUNT] [-w SECONDS]
 *
 * Binds PORT, prints "ready PORT", then sends COUNT (default 1) datagrams "TAG SEQ" to
 * ADDR:DPORT, one every MS milliseconds (default 100), the first at once or at the
 * wall-clock time EPOCH_MS (two peers given the same time send at the same moment: a
 * simultaneous open).  Each send prints "sent TAG SEQ to ADDR PORT"; each datagram
 * received prints "from ADDR PORT: PAYLOAD", and with -e goes back to its sender as
 * "echo PAYLOAD".  Exits SECONDS (default 10) after its last send, after receiving
 * COUNT datagrams (-x), or on SIGTERM.  Lines are flushed as they are written.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int64_t now_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(void)
{
	fprintf(stderr, "usage: dgram -l PORT [-d ADDR -D PORT [-n COUNT] [-i MS] [-a EPOCH_MS]]"
			" [-t TAG] [-e] [-x COUNT] [-w SECONDS]\n");
	exit(2);
}

static long parse_num(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		usage();
	return v;
}

/* ADDR (IPv4 or IPv6 literal) -> a v6 socket address; IPv4 becomes ::ffff:a.b.c.d. */
static int parse_addr(const char *s, uint16_t port, struct sockaddr_in6 *sa)
{
	struct in_addr v4;

	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	sa->sin6_port = htons(port);
	if (inet_pton(AF_INET6, s, &sa->sin6_addr) == 1)
		return 0;
	if (inet_pton(AF_INET, s, &v4) != 1)
		return -EINVAL;
	sa->sin6_addr.s6_addr[10] = 0xff;
	sa->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&sa->sin6_addr.s6_addr[12], &v4, 4);
	return 0;
}

static void format_addr(const struct sockaddr_in6 *sa, char *buf, size_t len)
{
	if (IN6_IS_ADDR_V4MAPPED(&sa->sin6_addr))
		inet_ntop(AF_INET, &sa->sin6_addr.s6_addr[12], buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, &sa->sin6_addr, buf, (socklen_t)len);
}

/* Returns 1 when a datagram was received. */
static int receive_one(int fd, int echo)
{
	char payload[1500], from[INET6_ADDRSTRLEN];
	struct sockaddr_in6 sa;
	socklen_t salen = sizeof(sa);
	ssize_t n;

	n = recvfrom(fd, payload, sizeof(payload) - 1, 0, (struct sockaddr *)&sa, &salen);
	if (n < 0) {
		/* ICMP errors of earlier sends surface here (ECONNREFUSED...): log, go on */
		if (errno != EINTR && errno != EAGAIN)
			printf("recv error: %s\n", strerror(errno));
		return 0;
	}
	payload[n] = '\0';
	payload[strcspn(payload, "\r\n")] = '\0';
	format_addr(&sa, from, sizeof(from));
	printf("from %s %u: %s\n", from, ntohs(sa.sin6_port), payload);
	if (echo) {
		char reply[sizeof(payload) + 8];
		int len = snprintf(reply, sizeof(reply), "echo %s", payload);
		if (len > 0 && sendto(fd, reply, (size_t)len, 0, (struct sockaddr *)&sa, salen) < 0)
			printf("echo error: %s\n", strerror(errno));
	}
	return 1;
}

int main(int argc, char **argv)
{
	const char *dst = NULL, *tag = "dgram";
	long lport = -1, dport = -1, count = -1, interval_ms = 100, wait_s = 10, max_rx = 0;
	int64_t start_epoch_ms = 0;
	struct sockaddr_in6 local, to;
	char to_str[INET6_ADDRSTRLEN];
	int fd, opt, off = 0, echo = 0;

	while ((opt = getopt(argc, argv, "l:d:D:n:i:a:t:ex:w:")) != -1) {
		switch (opt) {
		case 'l':
			lport = parse_num(optarg, 1, 65535);
			break;
		case 'd':
			dst = optarg;
			break;
		case 'D':
			dport = parse_num(optarg, 1, 65535);
			break;
		case 'n':
			count = parse_num(optarg, 0, 1000000);
			break;
		case 'i':
			interval_ms = parse_num(optarg, 0, 60000);
			break;
		case 'a':
			start_epoch_ms = parse_num(optarg, 0, 0x7fffffffffffL);
			break;
		case 't':
			tag = optarg;
			break;
		case 'e':
			echo = 1;
			break;
		case 'x':
			max_rx = parse_num(optarg, 1, 1000000);
			break;
		case 'w':
			wait_s = parse_num(optarg, 0, 3600);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || lport < 0 || (dst == NULL) != (dport < 0))
		usage();
	if (dst && parse_addr(dst, (uint16_t)dport, &to) < 0) {
		fprintf(stderr, "dgram: '%s' is not an IP address\n", dst);
		return 2;
	}
	if (count < 0)
		count = dst ? 1 : 0;

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);

	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("dgram: socket");
		return 1;
	}
	/* dual-stack whatever net.ipv6.bindv6only says */
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0) {
		perror("dgram: IPV6_V6ONLY");
		return 1;
	}
	memset(&local, 0, sizeof(local));
	local.sin6_family = AF_INET6;
	local.sin6_addr = in6addr_any;
	local.sin6_port = htons((uint16_t)lport);
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		fprintf(stderr, "dgram: bind port %ld: %s\n", lport, strerror(errno));
		return 1;
	}
	printf("ready %ld\n", lport);
	if (dst)
		format_addr(&to, to_str, sizeof(to_str));

	/* The schedule runs on the monotonic clock; only its start comes from the wall clock,
	 * the one clock two processes in different namespaces share. */
	int64_t t0 = now_ms(CLOCK_MONOTONIC);
	int64_t next_send = t0, end = count > 0 ? INT64_MAX : t0 + wait_s * 1000;
	if (start_epoch_ms > 0) {
		int64_t ahead = start_epoch_ms - now_ms(CLOCK_REALTIME);
		if (ahead > 0)
			next_send = t0 + ahead;
	}
	long sent = 0, received = 0;
	while (!stop_requested && (max_rx == 0 || received < max_rx)) {
		int64_t now = now_ms(CLOCK_MONOTONIC);
		if (now >= end)
			break;
		if (sent < count && now >= next_send) {
			char msg[256];
			int len = snprintf(msg, sizeof(msg), "%s %ld", tag, sent + 1);
			if (len < 0 || (size_t)len >= sizeof(msg))
				len = (int)sizeof(msg) - 1;
			if (sendto(fd, msg, (size_t)len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
				printf("send error: %s\n", strerror(errno));
			else
				printf("sent %s to %s %ld\n", msg, to_str, dport);
			sent++;
			next_send += interval_ms;
			if (sent == count)
				end = now + wait_s * 1000;
			continue;
		}
		int64_t until = end;
		if (sent < count && next_send < until)
			until = next_send;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, (int)(until - now));
		if (r < 0 && errno != EINTR) {
			perror("dgram: poll");
			return 1;
		}
		if (r > 0)
			received += receive_one(fd, echo);
	}
	close(fd);
	return 0;
}

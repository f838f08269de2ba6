/* lan_announcer.c - the other side of a LAN game for the room discovery tests
 * (N4_JOIN, N4_HOST), written as such programs are, with nothing of n4 in it.  One UDP
 * socket bound to the game's port, in up to three roles at once:
 *
 *   lan_announcer -p PORT [-a] [-b [-B ADDR | -m GROUP] [-i MS] [-T TAG]] [-j GROUP] [-d S]
 *   -a         the game host: answers "Q <seq>" with "A <seq>" and "PLAY <n>" with
 *              "ACK <n>", to the address each came from
 *   -b         the broadcaster: sends "ANN <seq> <tag>" every MS (-i, 500) to
 *              255.255.255.255:PORT, or to ADDR:PORT (-B, a directed broadcast), or to
 *              GROUP:PORT (-m, a multicast group)
 *   -T TAG     the tag in each ANN (ann), so that a listener can tell rooms apart
 *   -j GROUP   join GROUP (IP_ADD_MEMBERSHIP, any interface): a listener of a group
 *   -d S       exit after S seconds (0, the default: at SIGTERM or SIGINT)
 * Every socket is a listener: it prints what it receives.
 *
 * Prints (stdout, line by line; AT is realtime ms):
 *   "bound PORT"
 *   "sent 1 at AT"                      the first ANN
 *   "new ADDR at AT"                    the first datagram from each address
 *   "rx ann SEQ TAG from ADDR at AT"    each ANN received
 *   "rx q SEQ from ADDR at AT"          each query received
 *   "rx other from ADDR len N: TEXT"    anything else but PLAY (the first 20)
 * and last "done sent N received R ann A q Q play P other O sources S". */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOURCES 1024
#define OTHER_LINES 20

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *addr_str(const struct sockaddr_in *a, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "?");
	snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
	return buf;
}

/* "WORD <n>" followed by the end or a space: the number, or -1; *rest after it. */
static long parse_msg(const char *buf, const char *word, const char **rest)
{
	size_t n = strlen(word);
	char *end;
	long v;

	if (strncmp(buf, word, n) || buf[n] != ' ')
		return -1;
	errno = 0;
	v = strtol(buf + n + 1, &end, 10);
	if (errno || end == buf + n + 1 || (*end && *end != ' ') || v < 0)
		return -1;
	if (rest)
		*rest = *end ? end + 1 : end;
	return v;
}

static void usage(void)
{
	fprintf(stderr, "usage: lan_announcer -p PORT [-a] [-b [-B ADDR | -m GROUP] [-i MS] "
			"[-T TAG]] [-j GROUP] [-d SECONDS]\n");
	exit(2);
}

static unsigned long num_arg(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		usage();
	return v;
}

static void ip_arg(const char *s, struct in_addr *ip)
{
	if (inet_pton(AF_INET, s, ip) != 1)
		usage();
}

int main(int argc, char **argv)
{
	unsigned long port = 0, interval_ms = 500, limit_s = 0;
	bool answer = false, announce = false, group_set = false;
	const char *tag = "ann";
	struct in_addr dst_ip = { .s_addr = INADDR_BROADCAST }, join_ip = { 0 };
	int opt;

	while ((opt = getopt(argc, argv, "p:abB:m:i:T:j:d:")) != -1) {
		switch (opt) {
		case 'p':
			port = num_arg(optarg, 65535);
			break;
		case 'a':
			answer = true;
			break;
		case 'b':
			announce = true;
			break;
		case 'B':
		case 'm':
			ip_arg(optarg, &dst_ip);
			break;
		case 'i':
			interval_ms = num_arg(optarg, 60000);
			break;
		case 'T':
			tag = optarg;
			break;
		case 'j':
			ip_arg(optarg, &join_ip);
			group_set = true;
			break;
		case 'd':
			limit_s = num_arg(optarg, 86400);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !port || !interval_ms || strlen(tag) > 64)
		usage();

	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one))) {
		perror("SO_BROADCAST");
		return 1;
	}
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (bind(fd, (struct sockaddr *)&me, sizeof(me))) {
		perror("bind");
		return 1;
	}
	if (group_set) {
		struct ip_mreq mr = { .imr_multiaddr = join_ip };
		if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr))) {
			perror("IP_ADD_MEMBERSHIP");
			return 1;
		}
	}
	printf("bound %lu\n", port);

	static struct sockaddr_in sources[MAX_SOURCES];
	unsigned nsources = 0;
	unsigned long sent = 0, received = 0, anns = 0, queries = 0, plays = 0, others = 0;
	struct sockaddr_in dst = { .sin_family = AF_INET,
				   .sin_port = me.sin_port,
				   .sin_addr = dst_ip };
	long long t0 = mono_ms(), next_ann = t0;
	long long end = limit_s ? t0 + (long long)limit_s * 1000 : -1;
	char buf[2048], out[128], a[64];

	while (!stop) {
		long long t = mono_ms();
		if (end >= 0 && t >= end)
			break;
		if (announce && t >= next_ann) {
			int len = snprintf(out, sizeof(out), "ANN %lu %s", sent + 1, tag);
			if (sendto(fd, out, (size_t)len, 0, (struct sockaddr *)&dst, sizeof(dst)) <
			    0)
				fprintf(stderr, "sendto %s: %s\n", addr_str(&dst, a, sizeof(a)),
					strerror(errno));
			else if (++sent == 1)
				printf("sent 1 at %lld\n", now_ms());
			next_ann += (long long)interval_ms;
			if (next_ann < t)
				next_ann = t + (long long)interval_ms;
		}
		long long wake = announce ? next_ann : t + 1000;
		if (end >= 0 && end < wake)
			wake = end;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, wake > t ? (int)(wake - t) : 0);
		if (r < 0 && errno != EINTR) {
			perror("poll");
			return 1;
		}
		if (r <= 0)
			continue;

		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fl);
		if (n < 0)
			continue;
		buf[n] = '\0';
		received++;
		addr_str(&from, a, sizeof(a));
		unsigned i;
		for (i = 0; i < nsources; i++)
			if (sources[i].sin_addr.s_addr == from.sin_addr.s_addr &&
			    sources[i].sin_port == from.sin_port)
				break;
		if (i == nsources && nsources < MAX_SOURCES) {
			sources[nsources++] = from;
			printf("new %s at %lld\n", a, now_ms());
		}

		const char *rest = "";
		long seq;
		int len = -1;
		if ((seq = parse_msg(buf, "ANN", &rest)) >= 0) {
			anns++;
			printf("rx ann %ld %s from %s at %lld\n", seq, rest, a, now_ms());
		} else if ((seq = parse_msg(buf, "Q", &rest)) >= 0 && !*rest) {
			queries++;
			printf("rx q %ld from %s at %lld\n", seq, a, now_ms());
			if (answer)
				len = snprintf(out, sizeof(out), "A %ld", seq);
		} else if ((seq = parse_msg(buf, "PLAY", &rest)) >= 0 && !*rest) {
			plays++;
			if (answer)
				len = snprintf(out, sizeof(out), "ACK %ld", seq);
		} else if (others++ < OTHER_LINES) {
			for (ssize_t k = 0; k < n; k++)
				if (buf[k] < ' ' || buf[k] > '~')
					buf[k] = '.';
			printf("rx other from %s len %zd: %.40s\n", a, n, buf);
		}
		if (len > 0 &&
		    sendto(fd, out, (size_t)len, 0, (struct sockaddr *)&from, sizeof(from)) < 0)
			fprintf(stderr, "sendto %s: %s\n", a, strerror(errno));
	}
	printf("done sent %lu received %lu ann %lu q %lu play %lu other %lu sources %u\n", sent,
	       received, anns, queries, plays, others, nsources);
	return 0;
}

/* lan_browser.c - a LAN game browser for the room discovery tests (N4_JOIN), written
 * as such programs are, with nothing of n4 in it: it broadcasts a query on the game's
 * port, takes the first address that answers as the game server, and then plays with
 * it by unicast.  Under the shim the broadcast must also reach the room's host across
 * the NATs and the answer come back from the placeholder.
 *
 *   lan_browser [-b ADDR] [-l LPORT] [-p] [-n PLAYS] [-q QUERIES] [-t SECONDS] PORT
 *   -b ADDR      where the queries go (255.255.255.255; a directed broadcast works too)
 *   -l LPORT     bind this local port first (0, the default: the kernel picks at the
 *                first send, as most browsers do)
 *   -p           after the first answer, send "PLAY <n>" to the answer's source every
 *                100 ms instead of querying, and count the "ACK <n>"s
 *   -n PLAYS     with -p: this many PLAYs (50), then 500 ms for the last ACKs, and exit
 *   -q QUERIES   without -p: exit after this many queries (0, the default: until -t)
 *   -t SECONDS   exit after this long in any case (30)
 *
 * A query "Q <seq>" goes out every 500 ms until the first answer "A <seq>" (with -p;
 * without it, querying goes on).  Prints (stdout, line by line; MS counts from the
 * first query, AT is realtime ms):
 *   "query 1 at AT"                  the first query
 *   "answer SEQ from ADDR after MS"  each answer
 *   "first-answer MS from ADDR"      the first one
 *   "foreign ADDR len N: TEXT"       a datagram that is neither an answer nor an ACK
 *                                    from the game's address (the first 20)
 * and last "done queries Q answers A sources S plays P acks K dup D foreign F
 * first-answer-ms M" (M -1: never answered).  SIGTERM or SIGINT ends it the same way. */
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

#define QUERY_MS 500
#define PLAY_MS 100
#define LINGER_MS 500 /* after the last PLAY: its ACK is on its way */
#define MAX_PLAYS 100000
#define MAX_SOURCES 16
#define FOREIGN_LINES 20

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

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* "WORD <n>" exactly: the number, or -1. */
static long parse_msg(const char *buf, const char *word)
{
	size_t n = strlen(word);
	char *end;
	long v;

	if (strncmp(buf, word, n) || buf[n] != ' ')
		return -1;
	errno = 0;
	v = strtol(buf + n + 1, &end, 10);
	if (errno || end == buf + n + 1 || *end || v < 0)
		return -1;
	return v;
}

static void usage(void)
{
	fprintf(stderr, "usage: lan_browser [-b ADDR] [-l LPORT] [-p] [-n PLAYS] [-q QUERIES] "
			"[-t SECONDS] PORT\n");
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

int main(int argc, char **argv)
{
	const char *bcast = "255.255.255.255";
	unsigned long lport = 0, plays_max = 50, queries_max = 0, limit_s = 30;
	bool play = false;
	int opt;

	while ((opt = getopt(argc, argv, "b:l:pn:q:t:")) != -1) {
		switch (opt) {
		case 'b':
			bcast = optarg;
			break;
		case 'l':
			lport = num_arg(optarg, 65535);
			break;
		case 'p':
			play = true;
			break;
		case 'n':
			plays_max = num_arg(optarg, MAX_PLAYS);
			break;
		case 'q':
			queries_max = num_arg(optarg, 1000000);
			break;
		case 't':
			limit_s = num_arg(optarg, 86400);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	unsigned long port = num_arg(argv[optind], 65535);
	if (!port)
		usage();

	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, bcast, &dst.sin_addr) != 1)
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
	if (lport) {
		struct sockaddr_in me = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)lport) };
		if (bind(fd, (struct sockaddr *)&me, sizeof(me))) {
			perror("bind");
			return 1;
		}
	}

	static unsigned char acked[MAX_PLAYS + 1];
	struct sockaddr_in game = { 0 }, sources[MAX_SOURCES];
	unsigned long queries = 0, answers = 0, plays = 0, acks = 0, dups = 0, foreign = 0;
	unsigned nsources = 0;
	long long t0 = mono_ms(), first_q = -1, first_answer = -1, next_send = t0;
	long long end = t0 + (long long)limit_s * 1000, play_end = -1;
	bool playing = false;
	char buf[2048], a[64];

	while (!stop) {
		long long t = mono_ms();
		if (t >= end || (play_end >= 0 && t >= play_end))
			break;
		if (t >= next_send && play_end < 0) {
			int len;
			const struct sockaddr_in *to;
			if (playing) {
				len = snprintf(buf, sizeof(buf), "PLAY %lu", plays + 1);
				to = &game;
			} else if (queries_max && queries >= queries_max) {
				break;
			} else {
				len = snprintf(buf, sizeof(buf), "Q %lu", queries + 1);
				to = &dst;
			}
			if (sendto(fd, buf, (size_t)len, 0, (const struct sockaddr *)to,
				   sizeof(*to)) < 0) {
				fprintf(stderr, "sendto %s: %s\n", addr_str(to, a, sizeof(a)),
					strerror(errno));
			} else if (playing) {
				plays++;
			} else if (++queries == 1) {
				first_q = t;
				printf("query 1 at %lld\n", now_ms());
			}
			next_send += playing ? PLAY_MS : QUERY_MS;
			if (next_send <
			    t) /* a stall (e.g. the first send's bind) is not caught up */
				next_send = t + (playing ? PLAY_MS : QUERY_MS);
			if (playing && plays >= plays_max)
				play_end = t + LINGER_MS;
		}
		long long wake = play_end >= 0 ? play_end : next_send;
		if (end < wake)
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
		long seq = parse_msg(buf, "A");
		long ack = parse_msg(buf, "ACK");
		if (seq >= 0) {
			long long ms = mono_ms() - (first_q >= 0 ? first_q : t0);
			answers++;
			printf("answer %ld from %s after %lld\n", seq,
			       addr_str(&from, a, sizeof(a)), ms);
			unsigned i;
			for (i = 0; i < nsources && !same_addr(&sources[i], &from); i++)
				;
			if (i == nsources && nsources < MAX_SOURCES)
				sources[nsources++] = from;
			if (first_answer < 0) {
				first_answer = ms;
				game = from;
				printf("first-answer %lld from %s\n", ms, a);
				if (play) {
					playing = true;
					next_send = mono_ms();
				}
			}
		} else if (ack >= 1 && ack <= (long)MAX_PLAYS && playing &&
			   same_addr(&from, &game)) {
			if (acked[ack])
				dups++;
			else
				acks++;
			acked[ack] = 1;
		} else {
			if (foreign++ < FOREIGN_LINES) {
				for (ssize_t i = 0; i < n; i++)
					if (buf[i] < ' ' || buf[i] > '~')
						buf[i] = '.';
				printf("foreign %s len %zd: %.40s\n", addr_str(&from, a, sizeof(a)),
				       n, buf);
			}
		}
	}
	printf("done queries %lu answers %lu sources %u plays %lu acks %lu dup %lu foreign %lu "
	       "first-answer-ms %lld\n",
	       queries, answers, nsources, plays, acks, dups, foreign, first_answer);
	return 0;
}

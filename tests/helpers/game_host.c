/* game_host.c - a minimal game server for the shim's host tests (N4_HOST): one UDP
 * socket for every player, each player's state keyed by the address it sends from, as
 * real game servers keep it.  A player whose address changes is a new player to it,
 * which is what the shim's one-address-per-peer promise is tested against.
 *
 *   game_host [-p PORT] [-d SECONDS] [-t MS] [--first-only]
 *   -p PORT        bind 0.0.0.0:PORT (5000)
 *   -d SECONDS     run this long (0, the default: until SIGTERM or SIGINT)
 *   -t MS          wake every MS even when nothing arrives (a game server's tick);
 *                  0, the default: block in poll() until a datagram comes, as netcat
 *   --first-only   answer only the first address it ever heard from (a listener that
 *                  latches its one peer, as many VoIP tools and small game servers do)
 *
 * Each datagram "POLL <seq>" is answered "ANS <seq> <players>", players being the
 * number of addresses it knows.  Prints (stdout, line by line, times in realtime ms):
 *   "bound PORT"
 *   "new ADDR at MS players N"     the first datagram from each address
 *   "ignored ADDR at MS"           --first-only: the first datagram from each other one
 *   "junk ADDR len N"              a datagram that is no POLL (the first 20): the shim's
 *                                  own datagrams must never reach the program
 * and at the end one "player ADDR polls N first MS last MS" per address, then
 * "done players N datagrams M answered A others K junk J". */
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

#define MAX_PLAYERS 4096
#define JUNK_LINES 20

struct player {
	struct sockaddr_in addr;
	unsigned long polls;
	long long first_ms, last_ms;
};

static struct player players[MAX_PLAYERS];
static unsigned nplayers;
static struct sockaddr_in ignored[MAX_PLAYERS]; /* --first-only: the others, once each */
static unsigned nignored;
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

static bool same(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static struct player *find(const struct sockaddr_in *a)
{
	for (unsigned i = 0; i < nplayers; i++)
		if (same(&players[i].addr, a))
			return &players[i];
	return NULL;
}

/* True the first time `a` is ignored. */
static bool ignore(const struct sockaddr_in *a)
{
	for (unsigned i = 0; i < nignored; i++)
		if (same(&ignored[i], a))
			return false;
	if (nignored < MAX_PLAYERS)
		ignored[nignored++] = *a;
	return true;
}

static void usage(void)
{
	fprintf(stderr, "usage: game_host [-p PORT] [-d SECONDS] [-t MS] [--first-only]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned port = 5000, duration_s = 0, tick_ms = 0;
	bool first_only = false;
	unsigned long datagrams = 0, answered = 0, others = 0, junk = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--first-only"))
			first_only = true;
		else if (!strcmp(argv[i], "-p") && i + 1 < argc)
			port = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-d") && i + 1 < argc)
			duration_s = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-t") && i + 1 < argc)
			tick_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		else
			usage();
	}
	if (!port || port > 65535)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* No SA_RESTART: a blocking call returns EINTR and the loop sees `stop`. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		perror("bind");
		return 1;
	}
	printf("bound %u\n", port);

	long long end = duration_s ? mono_ms() + (long long)duration_s * 1000 : 0;
	while (!stop) {
		int wait = tick_ms ? (int)tick_ms : -1;
		if (end) {
			long long left = end - mono_ms();
			if (left <= 0)
				break;
			if (wait < 0 || left < wait)
				wait = (int)left;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, wait);
		if (r < 0 && errno != EINTR) {
			perror("poll");
			return 1;
		}
		if (r <= 0)
			continue;
		for (;;) {
			char buf[1500], out[64], a[48];
			struct sockaddr_in from;
			socklen_t flen = sizeof(from);
			ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT,
					     (struct sockaddr *)&from, &flen);
			if (n < 0) {
				if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				    errno != ECONNREFUSED)
					perror("recvfrom");
				break;
			}
			buf[n] = '\0';
			datagrams++;
			unsigned long seq;
			if (from.sin_family != AF_INET || sscanf(buf, "POLL %lu", &seq) != 1) {
				if (junk++ < JUNK_LINES)
					printf("junk %s len %zd\n", addr_str(&from, a, sizeof(a)),
					       n);
				continue;
			}
			long long t = now_ms();
			struct player *pl = find(&from);
			if (!pl && first_only && nplayers == 1) {
				/* Heard once per address: a stranger, or our peer at an address
				 * that is not its first (what the shim's alias prevents). */
				others++;
				if (ignore(&from))
					printf("ignored %s at %lld\n",
					       addr_str(&from, a, sizeof(a)), t);
				continue;
			}
			if (!pl) {
				if (nplayers == MAX_PLAYERS) {
					others++;
					continue;
				}
				pl = &players[nplayers++];
				pl->addr = from;
				pl->first_ms = t;
				printf("new %s at %lld players %u\n", addr_str(&from, a, sizeof(a)),
				       t, nplayers);
			}
			pl->polls++;
			pl->last_ms = t;
			int m = snprintf(out, sizeof(out), "ANS %lu %u", seq, nplayers);
			if (sendto(fd, out, (size_t)m, 0, (struct sockaddr *)&from, flen) == m)
				answered++;
			else if (errno != EINTR)
				fprintf(stderr, "sendto %s: %s\n", addr_str(&from, a, sizeof(a)),
					strerror(errno));
		}
	}
	for (unsigned i = 0; i < nplayers; i++) {
		char a[48];
		printf("player %s polls %lu first %lld last %lld\n",
		       addr_str(&players[i].addr, a, sizeof(a)), players[i].polls,
		       players[i].first_ms, players[i].last_ms);
	}
	printf("done players %u datagrams %lu answered %lu others %lu junk %lu\n", nplayers,
	       datagrams, answered, others, junk);
	return 0;
}

/* doom_query.c - a Doom server browser in miniature, for tests/lab/test_apps_doom.sh
 * (never a program under test): it polls a Chocolate Doom server with QUERY every
 * INTERVAL ms, checks every answer strictly and counts them.  From the shim's view it
 * is an unmodified UDP program (socket, sendto, poll, recvfrom; nothing of n4), so
 * under LD_PRELOAD it stands for a player behind its own NAT.
 *
 *   doom_query [-d SECONDS] [-i INTERVAL_MS] [-g GRACE_MS] [-b LPORT] [-B] IP:PORT
 *
 *   -d  how long to poll (10 s); -i  the gap between polls (200 ms); -g  how long to
 *   wait for the last answers once polling stops (1000 ms); -b  a local port to bind
 *   (default: none, the kernel picks one at the first send).  -B  IP is a broadcast
 *   address (a LAN server browser, SO_BROADCAST): the first server that answers is
 *   the one it polls from then on, at that address (answer-from prints it); answers
 *   from any other address are strays.
 *
 * The wire (Chocolate Doom 3.0's UDP protocol): a packet starts with its type, u16 big
 * endian.  QUERY (13) carries nothing else.  QUERY_RESPONSE (14) carries the version
 * (a NUL-terminated string), u8 server state, u8 players, u8 max players, u8 game mode,
 * u8 game mission, the description (a string), and since 3.0 the protocols the server
 * speaks (u8 count, then that many strings); nothing may follow.  The server answers
 * whoever asked, from its one socket.
 *
 * Prints the first answer's fields, then one line per count ("NAME VALUE", what
 * tests/lab/punch_lib.sh's `field` reads): first-answer-ms (from the first poll; the
 * shim's rendezvous is in it), polls, answers, after-first-polls and
 * after-first-answers (polls sent after the first answer arrived, answers after it),
 * answered-pct (of those), longest-gap-ms (between answers), rtt-ms-p50 and
 * rtt-ms-max (from a poll to its answer: one poll is out at a time, as an answer
 * takes far less than an interval), malformed, stray (datagrams from another address
 * than IP:PORT), send-errors, and players-min, players-max, players-last (the
 * player count in the answers: a game client connected through the same room shows
 * there).
 * Exit status: 0 answered and every answer well formed; 1 a malformed or stray
 * datagram; 2 usage; 3 never answered. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DOOM_QUERY 13
#define DOOM_QUERY_RESPONSE 14
#define MAX_STR 256  /* longer version/description/protocol strings are refused */
#define MAX_RTT 4096 /* round trips kept for the median */

struct answer {
	char version[MAX_STR], description[MAX_STR], protocols[4 * MAX_STR];
	unsigned state, players, max_players, mode, mission;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A NUL-terminated printable string at *pos, copied into out; false when the
 * packet ends first, a byte is not printable ASCII, or it is too long. */
static bool read_string(const uint8_t *p, size_t n, size_t *pos, char *out, size_t out_size)
{
	size_t i = *pos, len = 0;

	for (; i < n && p[i]; i++, len++) {
		if (p[i] < 0x20 || p[i] > 0x7e || len + 1 >= out_size)
			return false;
		out[len] = (char)p[i];
	}
	if (i >= n)
		return false;
	out[len] = '\0';
	*pos = i + 1;
	return true;
}

/* Parses a QUERY_RESPONSE; NULL when it is one, else why not. */
static const char *parse_answer(const uint8_t *p, size_t n, struct answer *a)
{
	size_t pos = 2;
	unsigned type;

	if (n < 2)
		return "shorter than a packet type";
	type = (unsigned)p[0] << 8 | p[1];
	if (type != DOOM_QUERY_RESPONSE)
		return "not a QUERY_RESPONSE";
	if (!read_string(p, n, &pos, a->version, sizeof(a->version)) || !a->version[0])
		return "bad version string";
	if (n - pos < 5)
		return "ends inside the counts";
	a->state = p[pos];
	a->players = p[pos + 1];
	a->max_players = p[pos + 2];
	a->mode = p[pos + 3];
	a->mission = p[pos + 4];
	pos += 5;
	/* waiting for launch, waiting for start, in game */
	if (a->state > 2)
		return "unknown server state";
	if (a->max_players == 0 || a->players > a->max_players)
		return "player counts do not add up";
	if (!read_string(p, n, &pos, a->description, sizeof(a->description)))
		return "bad description string";
	a->protocols[0] = '\0';
	if (pos == n)
		return NULL; /* a server older than 3.0: no protocol list */
	unsigned count = p[pos++];
	if (count == 0)
		return "empty protocol list";
	for (unsigned k = 0; k < count; k++) {
		char proto[MAX_STR];
		size_t used = strlen(a->protocols);
		if (!read_string(p, n, &pos, proto, sizeof(proto)) || !proto[0])
			return "bad protocol name";
		if (used + strlen(proto) + 2 > sizeof(a->protocols))
			return "protocol list too long";
		snprintf(a->protocols + used, sizeof(a->protocols) - used, "%s%s", k ? "," : "",
			 proto);
	}
	if (pos != n)
		return "bytes after the protocol list";
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int usage(void)
{
	fprintf(stderr, "usage: doom_query [-d SECONDS] [-i INTERVAL_MS] [-g GRACE_MS] [-b LPORT] "
			"IP:PORT\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned duration_s = 10, interval_ms = 200, grace_ms = 1000, lport = 0;
	bool browse = false;
	int opt;

	while ((opt = getopt(argc, argv, "d:i:g:b:B")) != -1) {
		if (opt == 'B') {
			browse = true;
			continue;
		}
		char *end;
		unsigned long v = strtoul(optarg, &end, 10);
		if (*optarg == '\0' || *end != '\0' || v > 3600000)
			return usage();
		switch (opt) {
		case 'd':
			duration_s = (unsigned)v;
			break;
		case 'i':
			interval_ms = (unsigned)v;
			break;
		case 'g':
			grace_ms = (unsigned)v;
			break;
		case 'b':
			lport = (unsigned)v;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc - 1 || interval_ms == 0 || lport > 65535)
		return usage();

	struct sockaddr_in to = { .sin_family = AF_INET };
	char ip[64];
	unsigned port;
	if (sscanf(argv[optind], "%63[^:]:%u", ip, &port) != 2 || port == 0 || port > 65535 ||
	    inet_pton(AF_INET, ip, &to.sin_addr) != 1)
		return usage();
	to.sin_port = htons((uint16_t)port);

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 2;
	}
	int one = 1;
	if (browse && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one))) {
		perror("SO_BROADCAST");
		return 2;
	}
	bool found = !browse; /* browsing: the first answer names the server */
	if (lport) {
		struct sockaddr_in me = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)lport) };
		if (bind(fd, (struct sockaddr *)&me, sizeof(me))) {
			perror("bind");
			return 2;
		}
	}

	static const uint8_t query[2] = { 0, DOOM_QUERY };
	uint64_t t0 = now_ms(), stop = t0 + (uint64_t)duration_s * 1000u, next_poll = t0;
	uint64_t first_ms = 0, last_answer = 0, longest_gap = 0, sent_at = 0;
	static uint64_t rtt[MAX_RTT];
	unsigned nrtt = 0, players_min = 0, players_max = 0, players_last = 0;
	bool awaited = false; /* the last poll has had no answer yet */
	unsigned long polls = 0, answers = 0, after_polls = 0, after_answers = 0;
	unsigned long malformed = 0, stray = 0, send_errors = 0;
	int last_errno = 0;
	struct answer first = { 0 };

	for (;;) {
		uint64_t t = now_ms();
		if (t >= stop + grace_ms)
			break;
		if (t < stop && t >= next_poll) {
			/* The first one designates the socket under the shim and returns
			 * after the rendezvous; the next poll is due an interval after
			 * each send returns, never in a burst to catch up. */
			if (sendto(fd, query, sizeof(query), 0, (struct sockaddr *)&to,
				   sizeof(to)) == (ssize_t)sizeof(query)) {
				polls++;
				if (answers)
					after_polls++;
				sent_at = now_ms();
				awaited = true;
			} else {
				send_errors++;
				if (errno != last_errno)
					fprintf(stderr, "doom_query: sendto: %s\n",
						strerror(errno));
				last_errno = errno;
			}
			next_poll = now_ms() + interval_ms;
			continue;
		}
		uint64_t until = t < stop ? next_poll : stop + grace_ms;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, (int)(until > t ? until - t : 0));
		if (r < 0 && errno != EINTR) {
			perror("poll");
			return 2;
		}
		if (r <= 0)
			continue;

		uint8_t buf[2048];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &flen);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED) {
				perror("recvfrom");
				return 2;
			}
			continue;
		}
		uint64_t at = now_ms();
		char fs[INET_ADDRSTRLEN] = "?";
		inet_ntop(AF_INET, &from.sin_addr, fs, sizeof(fs));
		if (!found && flen == sizeof(from) && from.sin_family == AF_INET) {
			found = true;
			to = from; /* a browser asks the server that answered from now on */
			printf("answer-from %s:%u\n", fs, ntohs(from.sin_port));
		}
		if (flen != sizeof(from) || from.sin_family != AF_INET ||
		    from.sin_addr.s_addr != to.sin_addr.s_addr || from.sin_port != to.sin_port) {
			/* under the shim the server must look as if it were at IP:PORT */
			if (stray++ < 5)
				printf("stray datagram (%zd bytes) from %s:%u\n", n, fs,
				       ntohs(from.sin_port));
			continue;
		}
		struct answer a;
		const char *why = parse_answer(buf, (size_t)n, &a);
		if (!why && answers && strcmp(a.version, first.version))
			why = "the version changed: another server answers";
		if (why) {
			if (malformed++ < 5) {
				printf("malformed answer (%zd bytes): %s:", n, why);
				for (ssize_t i = 0; i < n && i < 48; i++)
					printf(" %02x", buf[i]);
				printf("\n");
			}
			continue;
		}
		if (!answers) {
			first = a;
			first_ms = at - t0;
			printf("first answer from %s:%u after %llu ms: version \"%s\" state %u "
			       "players %u/%u mode %u mission %u description \"%s\" "
			       "protocols %s\n",
			       fs, ntohs(from.sin_port), (unsigned long long)first_ms, a.version,
			       a.state, a.players, a.max_players, a.mode, a.mission, a.description,
			       a.protocols[0] ? a.protocols : "-");
			fflush(stdout);
		} else {
			after_answers++;
			if (at - last_answer > longest_gap)
				longest_gap = at - last_answer;
		}
		if (!answers || a.players < players_min)
			players_min = a.players;
		if (a.players > players_max)
			players_max = a.players;
		players_last = a.players;
		answers++;
		last_answer = at;
		if (awaited && nrtt < MAX_RTT)
			rtt[nrtt++] = at - sent_at;
		awaited = false;
	}

	/* Polls and answers after the first answer: answers to polls sent just before
	 * it (still in flight) can make more answers than polls; 100 % is the top. */
	double pct = after_polls ? 100.0 * (double)after_answers / (double)after_polls : 0;
	if (pct > 100.0)
		pct = 100.0;
	printf("first-answer-ms %lld\n", answers ? (long long)first_ms : -1LL);
	printf("polls %lu\nanswers %lu\n", polls, answers);
	printf("after-first-polls %lu\nafter-first-answers %lu\n", after_polls, after_answers);
	printf("answered-pct %.1f\n", pct);
	printf("longest-gap-ms %llu\n", (unsigned long long)longest_gap);
	qsort(rtt, nrtt, sizeof(rtt[0]), cmp_u64);
	printf("rtt-ms-p50 %lld\nrtt-ms-max %lld\n", nrtt ? (long long)rtt[nrtt / 2] : -1LL,
	       nrtt ? (long long)rtt[nrtt - 1] : -1LL);
	printf("malformed %lu\nstray %lu\nsend-errors %lu\n", malformed, stray, send_errors);
	if (answers)
		printf("players-min %u\nplayers-max %u\nplayers-last %u\n", players_min,
		       players_max, players_last);
	if (close(fd))
		perror("close");
	if (malformed || stray)
		return 1;
	return answers ? 0 : 3;
}

/* host_flood.c - a hosted game server's datagram rate, for bench/host.sh: one UDP
 * socket that answers every player, each player's state keyed by its source address
 * (as tests/helpers/game_host.c keeps it), against players that send as fast as the
 * server answers.
 *
 *   host_flood -l PORT [-R MS]
 *       the server: answers each "POLL <seq>" with "ANS <seq> <players>"; every MS
 *       (250) prints "count MS answered N received M players P cpu-us C" (cumulative;
 *       MS realtime, C the whole process's user+system CPU: the shim's threads too);
 *       at SIGTERM or SIGINT "done players P answered N received M".
 *   host_flood -c IP:PORT -g GOFILE [-t SECONDS] [-w WINDOW]
 *       a player: polls every 200 ms (a game's pace) until answered ("joined MS took
 *       T": T ms from the start, the first sendto's rendezvous included) and until
 *       GOFILE exists; then for SECONDS (5) keeps WINDOW (8) polls in flight, one more
 *       for each answer (a closed loop: the server, not the socket buffers, sets the
 *       pace); after 50 ms without an answer the window counts as lost and is sent
 *       again.  Prints "flood sent N answered M lost L ms T cpu-us C" (C: this
 *       process's CPU during the flood).
 * Under the shim IP:PORT is the placeholder (the first sendto blocks for the
 * rendezvous); without it, the server's public address (a port forward). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PLAYERS 1024
#define LOST_MS 50 /* no answer this long: the window is lost (a full socket buffer) */
#define JOIN_POLL_MS 200

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

static long long cpu_us(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return -1;
	return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static void usage(void)
{
	fprintf(stderr, "usage: host_flood -l PORT [-R MS]\n"
			"       host_flood -c IP:PORT -g GOFILE [-t SECONDS] [-w WINDOW]\n");
	exit(2);
}

/* --------------------------------------------------------------- server --- */

static struct sockaddr_in players[MAX_PLAYERS];
static unsigned nplayers;

static bool known(const struct sockaddr_in *a)
{
	for (unsigned i = 0; i < nplayers; i++)
		if (players[i].sin_addr.s_addr == a->sin_addr.s_addr &&
		    players[i].sin_port == a->sin_port)
			return true;
	if (nplayers < MAX_PLAYERS)
		players[nplayers++] = *a;
	return false;
}

static int serve(unsigned port, unsigned report_ms)
{
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
	unsigned long answered = 0, received = 0;
	long long next = mono_ms() + report_ms;
	while (!stop) {
		long long m = mono_ms();
		if (m >= next) {
			printf("count %lld answered %lu received %lu players %u cpu-us %lld\n",
			       now_ms(), answered, received, nplayers, cpu_us());
			next += report_ms;
			if (next <= m)
				next = m + report_ms;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)(next - m > 0 ? next - m : 0));
		if (r < 0 && errno != EINTR) {
			perror("poll");
			return 1;
		}
		if (r <= 0)
			continue;
		/* A batch at most, so that the report stays on time under a flood. */
		for (int k = 0; k < 256; k++) {
			char buf[1500], out[64];
			struct sockaddr_in from;
			socklen_t flen = sizeof(from);
			ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT,
					     (struct sockaddr *)&from, &flen);
			if (n < 0)
				break;
			buf[n] = '\0';
			received++;
			unsigned long seq;
			if (from.sin_family != AF_INET || sscanf(buf, "POLL %lu", &seq) != 1)
				continue;
			known(&from);
			int len = snprintf(out, sizeof(out), "ANS %lu %u", seq, nplayers);
			if (sendto(fd, out, (size_t)len, 0, (struct sockaddr *)&from, flen) == len)
				answered++;
		}
	}
	printf("done players %u answered %lu received %lu\n", nplayers, answered, received);
	return 0;
}

/* --------------------------------------------------------------- player --- */

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char ip[64];
	unsigned port;

	memset(a, 0, sizeof(*a));
	if (sscanf(s, "%63[^:]:%u", ip, &port) != 2 || !port || port > 65535 ||
	    inet_pton(AF_INET, ip, &a->sin_addr) != 1)
		return -1;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	return 0;
}

/* Answers waiting on the socket (from the server only). */
static unsigned long drain(int fd, const struct sockaddr_in *server)
{
	unsigned long got = 0;

	for (;;) {
		char buf[256];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &flen);
		if (n < 0)
			return got;
		if (n >= 4 && !memcmp(buf, "ANS ", 4) &&
		    from.sin_addr.s_addr == server->sin_addr.s_addr &&
		    from.sin_port == server->sin_port)
			got++;
	}
}

static bool send_poll(int fd, const struct sockaddr_in *server, unsigned long seq)
{
	char out[32];
	int len = snprintf(out, sizeof(out), "POLL %lu", seq);

	return sendto(fd, out, (size_t)len, 0, (const struct sockaddr *)server, sizeof(*server)) ==
	       len;
}

static int play(const struct sockaddr_in *server, const char *gofile, double seconds,
		unsigned window)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	long long start = now_ms();
	unsigned long seq = 0;
	bool joined = false;
	printf("start %lld\n", start);
	/* The join, and a game's pace until everybody is in. */
	while (!stop && (!joined || access(gofile, F_OK) != 0)) {
		if (!send_poll(fd, server, seq++) && errno != EINTR) {
			printf("sendto: %s\n", strerror(errno));
			return 1;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, JOIN_POLL_MS) > 0 && drain(fd, server) && !joined) {
			joined = true;
			printf("joined %lld took %lld\n", now_ms(), now_ms() - start);
		}
	}
	if (stop)
		return 1;
	(void)drain(fd, server); /* the game-pace answers: not the flood's */
	unsigned long sent = 0, answered = 0, lost = 0;
	long long t0 = mono_ms(), end = t0 + (long long)(seconds * 1000), last_rx = t0;
	long long cpu0 = cpu_us();
	for (long long m = t0; m < end && !stop; m = mono_ms()) {
		while (sent - answered - lost < window && send_poll(fd, server, seq))
			sent++, seq++;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, LOST_MS);
		unsigned long got = r > 0 ? drain(fd, server) : 0;
		if (got) {
			/* Late answers of a window counted as lost: not twice. */
			unsigned long room = sent - answered - lost;
			answered += got < room ? got : room;
			last_rx = mono_ms();
		} else if (mono_ms() - last_rx >= LOST_MS) {
			lost = sent - answered;
			last_rx = mono_ms();
		}
	}
	long long took = mono_ms() - t0;
	printf("flood sent %lu answered %lu lost %lu ms %lld cpu-us %lld\n", sent, answered, lost,
	       took, cpu_us() - cpu0);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned port = 0, report_ms = 250, window = 8;
	double seconds = 5;
	const char *gofile = NULL;
	struct sockaddr_in server;
	bool client = false;
	int c;

	while ((c = getopt(argc, argv, "l:R:c:g:t:w:")) != -1) {
		switch (c) {
		case 'l':
			port = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'R':
			report_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'c':
			if (parse_addr(optarg, &server) < 0)
				usage();
			client = true;
			break;
		case 'g':
			gofile = optarg;
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'w':
			window = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* No SA_RESTART: a blocking call returns EINTR and the loops see `stop`. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (client) {
		if (!gofile || port || !window || seconds <= 0)
			usage();
		return play(&server, gofile, seconds, window);
	}
	if (!port || port > 65535 || !report_ms)
		usage();
	return serve(port, report_ms);
}

/* game_player.c - a game client for the shim's host tests: polls its server at a
 * steady rate and counts the answers (game_host.c answers "POLL <seq>" with
 * "ANS <seq> <players>").  Under the shim HOST:PORT is the placeholder, and the
 * first send blocks for the rendezvous.
 *
 *   game_player HOST:PORT [-i MS] [-d SECONDS] [-r MS] [-q FROM:TO] [-g MS]
 *   -i MS        a poll every MS (200)
 *   -d SECONDS   stop this long after the start (0, the default: at SIGTERM or SIGINT)
 *   -r MS        a progress line every MS (0: none)
 *   -q FROM:TO   send nothing from FROM to TO seconds after the first answer (a player
 *                that goes quiet: the paths must outlive the NATs' UDP timeouts)
 *   -g MS        after the last poll, wait this long for its answer (500)
 *
 * Prints (stdout, line by line, times in realtime ms):
 *   "start MS"
 *   "first-send MS took T"       the first sendto returned (the rendezvous' length)
 *   "sendto: ERROR after T ms"   a failed send (the first of each errno)
 *   "first-answer MS seq S"
 *   "quiet-end MS"               the quiet window is over: polls again
 *   "heard-after-quiet MS"       the first answer after it
 *   "gap FROM TO"                each silence of more than 1 s between answers while
 *                                polling (a quiet window is not one)
 *   "progress MS polls N answers M"
 *   "summary polls N answers M pct P first-ms F after-polls X after-answers Y
 *    after-pct Z quiet-polls Q quiet-answers R others K foreign J players L
 *    send-errors E last-answer MS"
 * pct: answered polls of all sent; after-*: of the polls from the first answered one
 * on; quiet-*: of the polls after the quiet window; first-ms: from the start to the
 * first answer (-1: none); others: datagrams from another address than HOST:PORT;
 * foreign: datagrams that are no ANS (another player's POLL: paired with a player);
 * players: the count in the last answer. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEQ (1u << 20) /* 58 hours of polls at 200 ms */
#define GAP_MS 1000

static uint8_t answered_seq[MAX_SEQ / 8];
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

static void usage(void)
{
	fprintf(stderr, "usage: game_player HOST:PORT [-i MS] [-d SECONDS] [-r MS] "
			"[-q FROM:TO] [-g MS]\n");
	exit(2);
}

struct stats {
	unsigned long polls, answers, others, foreign, send_errors;
	unsigned long first_seq, after_answers, quiet_polls, quiet_answers;
	unsigned long quiet_from_seq; /* the first poll after the quiet window */
	unsigned players;
	bool have_first, quiet_done;
	long long first_ms, last_rx_ms; /* last_rx_ms: also moved through a quiet window */
	long long last_answer_ms;
	int last_errno;
};

/* Everything waiting on the socket. */
static void drain(int fd, const struct sockaddr_in *server, struct stats *st, long long start)
{
	for (;;) {
		char buf[1500];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT,
				     (struct sockaddr *)&from, &flen);
		if (n < 0)
			return;
		buf[n] = '\0';
		if (from.sin_family != AF_INET || from.sin_addr.s_addr != server->sin_addr.s_addr ||
		    from.sin_port != server->sin_port) {
			st->others++;
			continue;
		}
		unsigned long seq;
		unsigned players;
		if (sscanf(buf, "ANS %lu %u", &seq, &players) != 2 || seq >= st->polls ||
		    seq >= MAX_SEQ) {
			st->foreign++;
			continue;
		}
		if (answered_seq[seq / 8] & (1u << (seq % 8)))
			continue; /* a duplicate */
		answered_seq[seq / 8] |= (uint8_t)(1u << (seq % 8));
		long long t = now_ms();
		st->answers++;
		st->players = players;
		if (!st->have_first) {
			st->have_first = true;
			st->first_seq = seq;
			st->first_ms = t - start;
			printf("first-answer %lld seq %lu\n", t, seq);
		} else if (t - st->last_rx_ms > GAP_MS) {
			printf("gap %lld %lld\n", st->last_rx_ms, t);
		}
		st->last_rx_ms = st->last_answer_ms = t;
		if (seq >= st->first_seq)
			st->after_answers++;
		if (st->quiet_done && seq >= st->quiet_from_seq && st->quiet_answers++ == 0)
			printf("heard-after-quiet %lld\n", t);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in server;
	unsigned interval_ms = 200, duration_s = 0, progress_ms = 0, grace_ms = 500;
	unsigned quiet_from = 0, quiet_to = 0;
	struct stats st = { .first_ms = -1 };

	if (argc < 2 || parse_addr(argv[1], &server) < 0)
		usage();
	for (int i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "-i"))
			interval_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-d"))
			duration_s = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-r"))
			progress_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-g"))
			grace_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-q")) {
			if (sscanf(argv[++i], "%u:%u", &quiet_from, &quiet_to) != 2 ||
			    quiet_to <= quiet_from)
				usage();
		} else
			usage();
	}
	if (!interval_ms)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* No SA_RESTART: the designating sendto, blocked in the rendezvous, returns EINTR. */
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
	long long start = now_ms(), mstart = mono_ms();
	long long end = duration_s ? mstart + (long long)duration_s * 1000 : 0;
	long long next_send = mstart, next_progress = progress_ms ? mstart + progress_ms : 0;
	long long first_mono = 0; /* the first answer, for the quiet window */
	printf("start %lld\n", start);

	while (!stop) {
		long long m = mono_ms();
		if (end && m >= end)
			break;
		if (!first_mono && st.have_first)
			first_mono = m;
		bool quiet = quiet_to && first_mono && m >= first_mono + quiet_from * 1000LL &&
			     m < first_mono + quiet_to * 1000LL;
		if (quiet_to && first_mono && !st.quiet_done &&
		    m >= first_mono + quiet_to * 1000LL) {
			st.quiet_done = true;
			st.quiet_from_seq = st.polls;
			printf("quiet-end %lld\n", now_ms());
		}
		if (m >= next_send) {
			next_send += interval_ms;
			if (next_send <= m) /* a send that blocked (the rendezvous): no burst */
				next_send = m + interval_ms;
			if (!quiet && st.polls < MAX_SEQ) {
				char out[32];
				int len = snprintf(out, sizeof(out), "POLL %lu", st.polls);
				long long t0 = mono_ms();
				ssize_t w = sendto(fd, out, (size_t)len, 0,
						   (struct sockaddr *)&server, sizeof(server));
				long long took = mono_ms() - t0;
				if (w == len) {
					if (st.polls == 0)
						printf("first-send %lld took %lld\n", now_ms(),
						       took);
					st.polls++;
					if (st.quiet_done)
						st.quiet_polls++;
				} else if (!stop) {
					if (st.send_errors++ == 0 || errno != st.last_errno)
						printf("sendto: %s after %lld ms\n",
						       strerror(errno), took);
					st.last_errno = errno;
				}
				next_send =
					next_send > mono_ms() ? next_send : mono_ms() + interval_ms;
			}
			if (quiet) /* no gap line for a silence we made */
				st.last_rx_ms = now_ms();
		}
		if (next_progress && m >= next_progress) {
			printf("progress %lld polls %lu answers %lu\n", now_ms(), st.polls,
			       st.answers);
			next_progress += progress_ms;
		}
		long long wake = next_send;
		if (next_progress && next_progress < wake)
			wake = next_progress;
		if (end && end < wake)
			wake = end;
		int wait = (int)(wake - mono_ms());
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, wait > 0 ? wait : 0) > 0)
			drain(fd, &server, &st, start);
	}
	/* The last polls' answers are still on their way. */
	long long grace_end = mono_ms() + grace_ms;
	for (long long m = mono_ms(); m < grace_end; m = mono_ms()) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)(grace_end - m)) > 0)
			drain(fd, &server, &st, start);
	}

	unsigned long after = st.have_first ? st.polls - st.first_seq : 0;
	printf("summary polls %lu answers %lu pct %.1f first-ms %lld after-polls %lu "
	       "after-answers %lu after-pct %.1f quiet-polls %lu quiet-answers %lu others %lu "
	       "foreign %lu players %u send-errors %lu last-answer %lld\n",
	       st.polls, st.answers, st.polls ? 100.0 * (double)st.answers / (double)st.polls : 0.0,
	       st.first_ms, after, st.after_answers,
	       after ? 100.0 * (double)st.after_answers / (double)after : 0.0, st.quiet_polls,
	       st.quiet_answers, st.others, st.foreign, st.players, st.send_errors,
	       st.answers ? st.last_answer_ms : -1LL);
	return 0;
}

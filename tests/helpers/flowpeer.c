/* flowpeer.c - one program, several UDP sockets to one peer: the flows of issue 20
 * (tests/lab/test_shim_flows.sh).  Never shim code: a plain program the shim is
 * preloaded into, like a SIP phone with its SIP, RTP and RTCP sockets.
 *
 *   flowpeer [-t SECONDS] [-i INTERVAL_MS] [-g] [-q] [-b IP] SPEC...
 *
 *   echo:LPORT               a socket bound to LPORT that answers every datagram to
 *                            its source (and never sends first)
 *   send:IP:PORT[@LPORT]     a socket (bound to LPORT when given) that sends a datagram
 *                            to IP:PORT every INTERVAL_MS (default 100) and counts what
 *                            it receives, and from where.  IP "peer" is the address
 *                            spec 0 first heard from (a listener's peer, its alias)
 *   -g                       the specs after the first start once spec 0 has received
 *                            a datagram (a first path exists), not at once
 *   -q                       one flow at a time: a send spec after the first starts
 *                            once the send spec before it has received a datagram
 *                            (echo specs are not held back)
 *   -t SECONDS               run this long (default 10), then report; SIGTERM reports too
 *   -b IP                    bind every socket to IP (default: any address), so that an
 *                            echo on a host's second address answers from that address
 *
 * Lines (stdout, flushed at once; times in ms since the program started):
 *   start I AT EPOCH_MS             spec I began (EPOCH_MS: the wall clock, to compare
 *                                   with captures)
 *   first I FROM AT                 spec I's first datagram
 *   spec I echo lport L rx N tx N first_from A others N
 *   spec I send dst D lport L sent N errors N first_errno E eunreach_at T
 *        max_send_ms M rx N from_dst N from_other N first_rx_ms T
 * (one line each; first_rx_ms and eunreach_at are counted from the spec's start, -1
 * when it never happened).  The payloads are printable ASCII without a newline: no
 * 4-byte IPv4 address of a private network can appear in them. */
#include <arpa/inet.h>
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

#define MAX_SPECS 16

struct spec {
	int send; /* 0: echo */
	int fd;
	int started;
	int peer_dst; /* the destination IP is spec 0's first source */
	unsigned lport;
	struct sockaddr_in dst;
	long start_ms, first_rx_ms, eunreach_ms, max_send_ms, next_ms;
	unsigned long sent, errors, rx, tx, from_dst, from_other;
	int first_errno;
	struct sockaddr_in first_from;
};

static volatile sig_atomic_t stop;
static struct timespec t0;
static struct in_addr bind_ip; /* -b; INADDR_ANY by default */

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)(ts.tv_sec - t0.tv_sec) * 1000 + (ts.tv_nsec - t0.tv_nsec) / 1000000;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: flowpeer [-t SECONDS] [-i INTERVAL_MS] [-g] [-q] [-b IP] "
			"echo:LPORT | send:IP:PORT[@LPORT] ...\n");
	exit(2);
}

static unsigned port_of(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == 0 || *end != 0 || v > 65535)
		usage();
	return (unsigned)v;
}

static void parse(struct spec *sp, const char *arg)
{
	char buf[128], *ip, *port, *at;

	memset(sp, 0, sizeof(*sp));
	sp->first_rx_ms = sp->eunreach_ms = -1;
	if (strlen(arg) >= sizeof(buf))
		usage();
	strcpy(buf, arg);
	if (strncmp(buf, "echo:", 5) == 0) {
		sp->lport = port_of(buf + 5);
		return;
	}
	if (strncmp(buf, "send:", 5) != 0)
		usage();
	sp->send = 1;
	ip = buf + 5;
	at = strchr(ip, '@');
	if (at) {
		*at = 0;
		sp->lport = port_of(at + 1);
	}
	port = strrchr(ip, ':');
	if (!port)
		usage();
	*port++ = 0;
	sp->dst.sin_family = AF_INET;
	sp->dst.sin_port = htons((uint16_t)port_of(port));
	if (strcmp(ip, "peer") == 0)
		sp->peer_dst = 1;
	else if (inet_pton(AF_INET, ip, &sp->dst.sin_addr) != 1)
		usage();
}

static void addr_str(const struct sockaddr_in *a, char *out, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(out, len, "%s:%u", ip, ntohs(a->sin_port));
}

static int open_socket(unsigned lport)
{
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)lport),
				 .sin_addr = bind_ip };

	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if ((lport || bind_ip.s_addr != INADDR_ANY) && bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		fprintf(stderr, "bind %u: %s\n", lport, strerror(errno));
		exit(1);
	}
	return fd;
}

/* -q: the send spec before send spec i (if any) has been answered. */
static int turn_of(const struct spec *specs, int i)
{
	int j;

	if (!specs[i].send)
		return 1;
	for (j = i - 1; j > 0; j--)
		if (specs[j].send)
			return specs[j].rx > 0;
	return 1;
}

static void start(struct spec *s, int i, const struct spec *first)
{
	struct timespec wall;

	if (s->peer_dst) {
		if (first->rx == 0)
			return; /* no peer yet */
		s->dst.sin_addr = first->first_from.sin_addr;
	}
	s->fd = open_socket(s->lport);
	s->started = 1;
	s->start_ms = s->next_ms = now_ms();
	clock_gettime(CLOCK_REALTIME, &wall);
	printf("start %d %ld %lld\n", i, s->start_ms,
	       (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000);
}

static void do_send(struct spec *s, int i)
{
	char msg[64];
	long t = now_ms(), d;
	ssize_t n;
	int len = snprintf(msg, sizeof(msg), "flowpeer spec %d seq %lu", i, s->sent + s->errors);

	n = sendto(s->fd, msg, (size_t)len, 0, (struct sockaddr *)&s->dst, sizeof(s->dst));
	d = now_ms() - t;
	if (d > s->max_send_ms)
		s->max_send_ms = d;
	if (n < 0) {
		if (s->errors++ == 0)
			s->first_errno = errno;
		if (errno == EHOSTUNREACH && s->eunreach_ms < 0)
			s->eunreach_ms = now_ms() - s->start_ms;
	} else {
		s->sent++;
	}
}

static void do_recv(struct spec *s, int i)
{
	char buf[2048], from_s[64];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(s->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);

	if (n < 0)
		return;
	if (s->rx++ == 0) {
		s->first_from = from;
		s->first_rx_ms = now_ms() - s->start_ms;
		addr_str(&from, from_s, sizeof(from_s));
		printf("first %d %s %ld\n", i, from_s, now_ms());
	}
	if (s->send) {
		if (from.sin_addr.s_addr == s->dst.sin_addr.s_addr && from.sin_port == s->dst.sin_port)
			s->from_dst++;
		else
			s->from_other++;
		return;
	}
	if (from.sin_addr.s_addr != s->first_from.sin_addr.s_addr ||
	    from.sin_port != s->first_from.sin_port)
		s->from_other++;
	if (sendto(s->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) >= 0)
		s->tx++;
}

static void report(const struct spec *s, int i)
{
	char a[64];

	if (!s->send) {
		addr_str(&s->first_from, a, sizeof(a));
		printf("spec %d echo lport %u rx %lu tx %lu first_from %s others %lu\n", i, s->lport,
		       s->rx, s->tx, s->rx ? a : "-", s->from_other);
		return;
	}
	addr_str(&s->dst, a, sizeof(a));
	printf("spec %d send dst %s lport %u sent %lu errors %lu first_errno %d eunreach_at %ld "
	       "max_send_ms %ld rx %lu from_dst %lu from_other %lu first_rx_ms %ld started %d\n",
	       i, s->peer_dst && !s->started ? "peer" : a, s->lport, s->sent, s->errors,
	       s->first_errno, s->eunreach_ms, s->max_send_ms, s->rx, s->from_dst, s->from_other,
	       s->first_rx_ms, s->started);
}

int main(int argc, char **argv)
{
	struct spec specs[MAX_SPECS];
	struct pollfd pfd[MAX_SPECS];
	int idx[MAX_SPECS];
	long run_ms = 10000, interval = 100;
	int gate = 0, chain = 0, n = 0, opt, i;
	struct sigaction sa = { .sa_handler = on_signal };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "t:i:gqb:")) != -1) {
		if (opt == 't')
			run_ms = atol(optarg) * 1000;
		else if (opt == 'i')
			interval = atol(optarg);
		else if (opt == 'g')
			gate = 1;
		else if (opt == 'q')
			chain = 1;
		else if (opt == 'b' && inet_pton(AF_INET, optarg, &bind_ip) == 1)
			continue;
		else
			usage();
	}
	if (optind >= argc || argc - optind > MAX_SPECS || interval <= 0 || run_ms <= 0)
		usage();
	for (i = optind; i < argc; i++)
		parse(&specs[n++], argv[i]);
	if (specs[0].peer_dst)
		usage();
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	start(&specs[0], 0, &specs[0]);
	while (!stop && now_ms() < run_ms) {
		long t = now_ms(), wait = 50;
		int np = 0;

		for (i = 0; i < n; i++) {
			struct spec *s = &specs[i];

			if (!s->started && (!gate || specs[0].rx > 0) && (!chain || turn_of(specs, i)))
				start(s, i, &specs[0]);
			if (!s->started)
				continue;
			if (s->send && t >= s->next_ms) {
				do_send(s, i);
				s->next_ms += interval;
				if (s->next_ms < now_ms())
					s->next_ms = now_ms() + interval;
			}
			if (s->send && s->next_ms - now_ms() < wait)
				wait = s->next_ms - now_ms();
			pfd[np].fd = s->fd;
			pfd[np].events = POLLIN;
			idx[np++] = i;
		}
		if (wait < 0)
			wait = 0;
		if (poll(pfd, (nfds_t)np, (int)wait) <= 0)
			continue;
		for (i = 0; i < np; i++)
			if (pfd[i].revents & POLLIN)
				do_recv(&specs[idx[i]], idx[i]);
	}
	for (i = 0; i < n; i++)
		report(&specs[i], i);
	printf("done %ld\n", now_ms());
	return 0;
}

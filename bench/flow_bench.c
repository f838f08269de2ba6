/* flow_bench.c - flows to one peer, for bench/calls.sh: a first path, then more UDP
 * flows between the same two programs, as a SIP call adds RTP and RTCP after its
 * signalling.  Each flow is one socket per side bound to a port of its own; the time
 * that counts is the program's: from a flow's first send to its first answer.
 *
 *   flow_bench -A PH_IP:PORT -P FLOW_IP [-m PHASES] [-i MS] [-w S]
 *       side A (dials): socket 0 sends "HELLO N" to the placeholder PH_IP:PORT every
 *       MS until it hears "ECHO" ("first-path ms T sent N answered SEQ": T from its
 *       first send, the rendezvous in the blocking first sendto included; SEQ the
 *       HELLO answered).  Then phase after phase: "GO K" on socket 0 (B answers
 *       "GOT K"), and at once flow I of phase K binds port 12000 + 10K + I and sends
 *       "PING" to FLOW_IP:14000 + 10K + I every MS (20, an RTP packet's pace) until a
 *       "PONG" comes back ("flow K I ms T sent N answered SEQ from IP:PORT", or "flow
 *       K I never"); the phase ends when every flow answered or after S (12) seconds,
 *       the next starts 300 ms later.  "BYE" on socket 0 at the end, then "done".
 *   flow_bench -B PORT -P FLOW_IP [-m PHASES] [-i MS]
 *       side B (listens, N4_LISTEN=PORT): binds PORT and every phase's flow ports
 *       (14000 + 10K + I) at start, as a SIP UA binds its RTP port before its SDP
 *       leaves; echoes "HELLO N" with "ECHO N", "GO K" with "GOT K" and every "PING"
 *       with "PONG".  At "GO K" of a mirrored phase its flows send "PING" to
 *       FLOW_IP:12000 + 10K + I (A's LAN address: what A's SDP would carry) until
 *       answered ("flow K I ms T ..."); in a listen-only phase they only echo.  Exits
 *       at "BYE".
 * PHASES: comma-separated, each m (mirrored) or l (listen-only) and a flow count
 * (1..9): "m1,m2,m4,l1,l2,l4" by default.  Both sides need the same list.
 * Times: CLOCK_MONOTONIC, ms to one decimal. */
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

#define MAX_PHASES 8
#define MAX_FLOWS 9
/* Below Linux's ephemeral range (32768-60999), where the shim's pool sockets and
 * other kernel-chosen ports live; RTP ranges usually are too. */
#define A_BASE 12000
#define B_BASE 14000
#define PHASE_GAP_MS 300
#define ALL_PHASES (~0u)   /* run_until: every phase's flows send */
#define NO_PHASE (~0u - 1) /* none does */

struct flow {
	int fd;
	bool started, answered;
	double t_first, t_answer;
	unsigned sent;
	double next_send;
};

struct phase {
	bool mirrored;
	unsigned nflows;
	struct flow flows[MAX_FLOWS];
};

static struct phase phases[MAX_PHASES];
static unsigned nphases;
static unsigned interval_ms = 20;
static int ctl_fd = -1; /* socket 0: the first path */
static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void usage(void)
{
	fprintf(stderr, "usage: flow_bench -A PH_IP:PORT -P FLOW_IP [-m PHASES] [-i MS] [-w S]\n"
			"       flow_bench -B PORT -P FLOW_IP [-m PHASES] [-i MS]\n");
	exit(2);
}

static int parse_phases(const char *s)
{
	nphases = 0;
	while (*s) {
		if (nphases == MAX_PHASES || (s[0] != 'm' && s[0] != 'l') || s[1] < '1' ||
		    s[1] > '0' + MAX_FLOWS)
			return -1;
		phases[nphases].mirrored = s[0] == 'm';
		phases[nphases].nflows = (unsigned)(s[1] - '0');
		nphases++;
		s += 2;
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return nphases ? 0 : -1;
}

static int bound_socket(unsigned port)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	if (fd < 0) {
		perror("socket");
		return -1;
	}
	if (port && bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "bind %u: %s\n", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static struct sockaddr_in addr_of(struct in_addr ip, unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr = ip };
	return a;
}

static void send_text(int fd, const struct sockaddr_in *to, const char *text)
{
	size_t len = strlen(text);
	ssize_t n = sendto(fd, text, len, 0, (const struct sockaddr *)to, sizeof(*to));

	/* Under the shim a flow's sends while it punches are dropped and return len;
	 * a failure is worth a line (EHOSTUNREACH: the flow gave up). */
	if (n != (ssize_t)len && errno != EINTR)
		printf("sendto %s:%u: %s\n", inet_ntoa(to->sin_addr), ntohs(to->sin_port),
		       n < 0 ? strerror(errno) : "short");
}

/* One datagram from fd into buf (NUL-terminated); its source in from.  -1: none. */
static ssize_t recv_text(int fd, char *buf, size_t size, struct sockaddr_in *from)
{
	socklen_t flen = sizeof(*from);
	ssize_t n = recvfrom(fd, buf, size - 1, MSG_DONTWAIT, (struct sockaddr *)from, &flen);

	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

static void flow_start(struct flow *f, double now)
{
	f->started = true;
	f->t_first = now;
	f->next_send = now;
}

/* Sends due on the phase's unanswered flows; the next deadline in *next. */
static void flows_send(unsigned k, struct in_addr ip, unsigned peer_base, double now, double *next)
{
	char out[32];

	for (unsigned i = 0; i < phases[k].nflows; i++) {
		struct flow *f = &phases[k].flows[i];
		if (!f->started || f->answered)
			continue;
		if (now >= f->next_send) {
			struct sockaddr_in to = addr_of(ip, peer_base + 10 * k + i);
			snprintf(out, sizeof(out), "PING %u %u %u", k, i, f->sent++);
			send_text(f->fd, &to, out);
			f->next_send += interval_ms;
			if (f->next_send <= now)
				f->next_send = now + interval_ms;
		}
		if (f->next_send < *next)
			*next = f->next_send;
	}
}

/* A datagram on flow f: echo a PING, take a PONG as the answer. */
static void flow_input(unsigned k, unsigned i, double now)
{
	struct flow *f = &phases[k].flows[i];
	char buf[256];
	struct sockaddr_in from;

	while (recv_text(f->fd, buf, sizeof(buf), &from) >= 0) {
		if (!strncmp(buf, "PING ", 5)) {
			memcpy(buf, "PONG", 4); /* the same numbers back */
			send_text(f->fd, &from, buf);
		} else if (!strncmp(buf, "PONG ", 5) && f->started && !f->answered) {
			unsigned seq = 0;
			(void)sscanf(buf, "PONG %*u %*u %u", &seq);
			f->answered = true;
			f->t_answer = now;
			printf("flow %u %u ms %.1f sent %u answered %u from %s:%u\n", k, i,
			       now - f->t_first, f->sent, seq, inet_ntoa(from.sin_addr),
			       ntohs(from.sin_port));
		}
	}
}

/* Poll socket 0 and every flow socket until `until` (or stop); calls back for
 * socket 0's datagrams.  Returns when the callback returns true. */
typedef bool (*ctl_fn)(const char *buf, const struct sockaddr_in *from, double now);

static bool run_until(int fd0, double until, unsigned active_phase, struct in_addr flow_ip,
		      unsigned peer_base, ctl_fn on_ctl, bool (*done)(void))
{
	struct pollfd pfd[1 + MAX_PHASES * MAX_FLOWS];
	unsigned who[1 + MAX_PHASES * MAX_FLOWS][2];

	while (!stop) {
		double now = now_ms(), next = until;
		if (done && done())
			return true;
		if (now >= until)
			return false;
		for (unsigned k = 0; k < nphases; k++)
			if (active_phase == k || active_phase == ALL_PHASES)
				flows_send(k, flow_ip, peer_base, now, &next);
		unsigned n = 0;
		pfd[n] = (struct pollfd){ .fd = fd0, .events = POLLIN };
		n++;
		for (unsigned k = 0; k < nphases; k++)
			for (unsigned i = 0; i < phases[k].nflows; i++) {
				if (phases[k].flows[i].fd < 0)
					continue;
				pfd[n] = (struct pollfd){ .fd = phases[k].flows[i].fd,
							  .events = POLLIN };
				who[n][0] = k, who[n][1] = i;
				n++;
			}
		int wait = (int)(next - now_ms() + 0.999);
		int r = poll(pfd, n, wait > 0 ? wait : 0);
		if (r < 0 && errno != EINTR) {
			perror("poll");
			return false;
		}
		if (r <= 0)
			continue;
		now = now_ms();
		if (pfd[0].revents & POLLIN) {
			char buf[256];
			struct sockaddr_in from;
			while (recv_text(fd0, buf, sizeof(buf), &from) >= 0)
				if (on_ctl && on_ctl(buf, &from, now))
					return true;
		}
		for (unsigned j = 1; j < n; j++)
			if (pfd[j].revents & POLLIN)
				flow_input(who[j][0], who[j][1], now);
	}
	return false;
}

/* ------------------------------------------------------------------ side A --- */

static bool echoed;
static unsigned echo_seq;

static bool a_ctl(const char *buf, const struct sockaddr_in *from, double now)
{
	(void)from;
	(void)now;
	/* The first ECHO ends the wait at once (the first path's time). */
	if (!echoed && sscanf(buf, "ECHO %u", &echo_seq) == 1) {
		echoed = true;
		return true;
	}
	return false;
}

static unsigned cur_phase;

static bool phase_done(void)
{
	for (unsigned i = 0; i < phases[cur_phase].nflows; i++)
		if (!phases[cur_phase].flows[i].answered)
			return false;
	return true;
}

static int side_a(const struct sockaddr_in *ph, struct in_addr flow_ip, double wait_s)
{
	int fd0 = ctl_fd = bound_socket(0);
	if (fd0 < 0)
		return 1;
	double t0 = now_ms(), next = t0;
	unsigned hellos = 0;
	/* The first sendto blocks for the rendezvous; HELLO again until ECHO, at the
	 * flows' pace. */
	while (!stop && !echoed) {
		if (now_ms() >= next) {
			char hello[32];
			snprintf(hello, sizeof(hello), "HELLO %u", hellos++);
			send_text(fd0, ph, hello);
			next = now_ms() + interval_ms;
		}
		run_until(fd0, next, NO_PHASE, flow_ip, B_BASE, a_ctl, NULL);
		if (now_ms() - t0 > 60000) {
			printf("first-path never\n");
			return 1;
		}
	}
	if (stop)
		return 1;
	printf("first-path ms %.1f sent %u answered %u\n", now_ms() - t0, hellos, echo_seq);
	for (unsigned k = 0; k < nphases && !stop; k++) {
		char go[16];
		snprintf(go, sizeof(go), "GO %u", k);
		/* Bound before the GO leaves: B's first PINGs must find the ports (a
		 * SIP UA binds its RTP port before its SDP goes out). */
		for (unsigned i = 0; i < phases[k].nflows; i++) {
			phases[k].flows[i].fd = bound_socket(A_BASE + 10 * k + i);
			if (phases[k].flows[i].fd < 0)
				return 1;
		}
		send_text(fd0, ph, go);
		double now = now_ms();
		for (unsigned i = 0; i < phases[k].nflows; i++)
			flow_start(&phases[k].flows[i], now);
		cur_phase = k;
		run_until(fd0, now + wait_s * 1000, k, flow_ip, B_BASE, a_ctl, phase_done);
		for (unsigned i = 0; i < phases[k].nflows; i++)
			if (!phases[k].flows[i].answered)
				printf("flow %u %u never sent %u\n", k, i, phases[k].flows[i].sent);
		/* B's mirrored flows answer about now too: let them, and the keepalives
		 * settle, before the next phase. */
		run_until(fd0, now_ms() + PHASE_GAP_MS, NO_PHASE, flow_ip, B_BASE, a_ctl, NULL);
	}
	send_text(fd0, ph, "BYE");
	send_text(fd0, ph, "BYE");
	printf("done\n");
	return 0;
}

/* ------------------------------------------------------------------ side B --- */

static bool b_ctl(const char *buf, const struct sockaddr_in *from, double now)
{
	unsigned k;

	if (!strncmp(buf, "HELLO ", 6)) {
		char out[32];
		snprintf(out, sizeof(out), "ECHO %.20s", buf + 6);
		send_text(ctl_fd, from, out);
	}
	if (sscanf(buf, "GO %u", &k) == 1 && k < nphases) {
		/* Answered, as a SIP 200 answers an INVITE: socket 0 carries traffic
		 * both ways, never a one-way stream the shim would take for a dead
		 * path. */
		char out[16];
		snprintf(out, sizeof(out), "GOT %u", k);
		send_text(ctl_fd, from, out);
		if (phases[k].mirrored)
			for (unsigned i = 0; i < phases[k].nflows; i++)
				if (!phases[k].flows[i].started)
					flow_start(&phases[k].flows[i], now);
	}
	return !strncmp(buf, "BYE", 3);
}

static int side_b(unsigned port, struct in_addr flow_ip)
{
	ctl_fd = bound_socket(port);
	if (ctl_fd < 0)
		return 1;
	for (unsigned k = 0; k < nphases; k++)
		for (unsigned i = 0; i < phases[k].nflows; i++) {
			phases[k].flows[i].fd = bound_socket(B_BASE + 10 * k + i);
			if (phases[k].flows[i].fd < 0)
				return 1;
		}
	printf("bound %u\n", port);
	/* Until BYE (or a signal): a day is "forever" for a benchmark. */
	bool bye = run_until(ctl_fd, now_ms() + 86400e3, ALL_PHASES, flow_ip, A_BASE, b_ctl, NULL);
	for (unsigned k = 0; k < nphases; k++)
		for (unsigned i = 0; i < phases[k].nflows; i++)
			if (phases[k].mirrored && !phases[k].flows[i].answered)
				printf("flow %u %u never sent %u\n", k, i, phases[k].flows[i].sent);
	printf("%s\n", bye ? "done" : "stopped");
	return 0;
}

int main(int argc, char **argv)
{
	const char *phase_spec = "m1,m2,m4,l1,l2,l4";
	struct sockaddr_in ph;
	struct in_addr flow_ip = { 0 };
	unsigned listen_port = 0;
	bool a = false, have_ip = false;
	double wait_s = 12;
	int c;

	while ((c = getopt(argc, argv, "A:B:P:m:i:w:")) != -1) {
		switch (c) {
		case 'A': {
			char ip[64];
			unsigned port;
			memset(&ph, 0, sizeof(ph));
			if (sscanf(optarg, "%63[^:]:%u", ip, &port) != 2 || !port || port > 65535 ||
			    inet_pton(AF_INET, ip, &ph.sin_addr) != 1)
				usage();
			ph.sin_family = AF_INET;
			ph.sin_port = htons((uint16_t)port);
			a = true;
			break;
		}
		case 'B':
			listen_port = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'P':
			have_ip = inet_pton(AF_INET, optarg, &flow_ip) == 1;
			break;
		case 'm':
			phase_spec = optarg;
			break;
		case 'i':
			interval_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			wait_s = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (a == (listen_port != 0) || !have_ip || !interval_ms || listen_port > 65535 ||
	    parse_phases(phase_spec) < 0)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (unsigned k = 0; k < nphases; k++)
		for (unsigned i = 0; i < MAX_FLOWS; i++)
			phases[k].flows[i].fd = -1;
	if (a)
		return side_a(&ph, flow_ip, wait_s);
	return side_b(listen_port, flow_ip);
}

/* shim_session.c - a long-running two-way UDP program for the shim's session tests
 * (keepalive, recovery, restarts, port hops, listeners that bind again).
 *   shim_session -c IP:PORT | -l PORT  [options]
 *   -p IP:PORT   (listener) send to this address too, from the start
 *   -i MS        send a numbered datagram every MS (100); 0 = only answer
 *   -d SECONDS   run this long (10)
 *   -q FROM:TO   stay silent from FROM to TO seconds after the start
 *   -P           netcat's pattern: blocking socket, poll() then read()
 *   -R           a SIGALRM every 20 ms with SA_RESTART during the whole run
 *   -S           ... whose handler also dups and closes the socket, while the main
 *                loop calls getsockname() (both take the shim's table lock)
 *   -H SECONDS   hop: every SECONDS a new socket sends to the placeholder, the old
 *                one is closed
 *   -X           after the first answer, dup the socket five ways and carry on
 *                sending on the last copy only
 *   -E           after -X, exec() this program again on the fifth copy (-I), which
 *                carries on sending to the placeholder for 3 s
 *   -I FD        use the inherited descriptor FD instead of a new socket
 *   -B N         listener that binds the port again for each of N clients in turn:
 *                each gets one answer
 *   -Z           (listener) a sink: never sends anything
 *   -K           every 5th datagram sent is a PUNCH for $N4_IDENT (what a late
 *                PUNCH from the peer's shim looks like): the peer must never see it
 *   -F           (listener) fork right after bind; the parent exits at once and the
 *                child carries on (a daemon, as mosh-server)
 *   -6           (client) an AF_INET6 socket the program binds to [::]:0 itself,
 *                sending to the v4-mapped placeholder
 *   -1           ping: send until one answer arrives, then exit
 *   -L           (listener) latch: answer only the address first heard from, as game
 *                servers and VoIP tools that key their peers by address do; datagrams
 *                from any other source are counted ("others N" at the end)
 * Prints (stdout): "bind MS" (how long bind took), "heard 10" and "heard 25" as the count
 * passes, "gap FROM TO" (realtime ms) for
 * each silence of more than 500 ms between received datagrams, "heard-after-quiet N",
 * and at the end "done sent N got M readblock MS first-rx MS last-rx MS" (first and last
 * datagram received, from the start). Exit status 0 unless a call failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static volatile sig_atomic_t alarms, handler_fd = -1;
static void on_alarm(int sig)
{
	int saved = errno;
	(void)sig;
	alarms++;
	if (handler_fd >= 0) {
		int d = dup(handler_fd);
		if (d >= 0)
			close(d);
	}
	errno = saved;
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char ip[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(ip))
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -1;
}

static bool use_v6;

static int new_socket(bool blocking)
{
	int fd =
		socket(use_v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	if (use_v6) {
		struct sockaddr_in6 any = { .sin6_family = AF_INET6 };
		if (bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0) {
			perror("bind [::]:0");
			exit(1);
		}
	}
	return fd;
}

/* sendto the IPv4 address a, v4-mapped on an AF_INET6 socket (-6). */
static ssize_t send_to(int fd, const void *buf, size_t len, const struct sockaddr_in *a)
{
	if (!use_v6)
		return sendto(fd, buf, len, 0, (const struct sockaddr *)a, sizeof(*a));
	struct sockaddr_in6 m = { .sin6_family = AF_INET6, .sin6_port = a->sin_port };
	m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&m.sin6_addr.s6_addr[12], &a->sin_addr, 4);
	return sendto(fd, buf, len, 0, (const struct sockaddr *)&m, sizeof(m));
}

static int listen_socket(int port, bool blocking)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = new_socket(blocking);
	long long t0 = now_ms();
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("bind");
		exit(1);
	}
	printf("bind %lld\n", now_ms() - t0);
	fflush(stdout);
	return fd;
}

/* -B: a new socket bound to the port for each client; one answer each. */
static int serve_in_turn(int port, int clients)
{
	for (int k = 1; k <= clients; k++) {
		int fd = listen_socket(port, true);
		char buf[256];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen);
		if (n < 0) {
			perror("recvfrom");
			return 1;
		}
		char reply[64];
		int len = snprintf(reply, sizeof(reply), "pong %d", k);
		if (sendto(fd, reply, (size_t)len, 0, (struct sockaddr *)&from, flen) < 0) {
			perror("sendto");
			return 1;
		}
		printf("served %d\n", k);
		fflush(stdout);
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in peer;
	bool have_peer = false, client = false, poll_read = false, sa_restart = false;
	bool dups = false, ping = false, handler_io = false, reexec = false, sink = false;
	bool daemonize = false, fake_punch = false, latch = false;
	int inherited = -1;
	const char *ph_arg = NULL;
	int port = 0, interval = 100, duration = 10, hop_s = 0, rebinds = 0, opt;
	double quiet_from = -1, quiet_to = -1;

	while ((opt = getopt(argc, argv, "c:l:p:i:d:q:PRSH:XEI:B:Z6FK1L")) != -1) {
		switch (opt) {
		case 'c':
			if (parse_addr(optarg, &peer))
				return 2;
			have_peer = client = true;
			ph_arg = optarg;
			break;
		case 'l':
			port = atoi(optarg);
			break;
		case 'p':
			if (parse_addr(optarg, &peer))
				return 2;
			have_peer = true;
			break;
		case 'i':
			interval = atoi(optarg);
			break;
		case 'd':
			duration = atoi(optarg);
			break;
		case 'q':
			if (sscanf(optarg, "%lf:%lf", &quiet_from, &quiet_to) != 2)
				return 2;
			break;
		case 'P':
			poll_read = true;
			break;
		case 'R':
			sa_restart = true;
			break;
		case 'S':
			handler_io = true;
			break;
		case 'H':
			hop_s = atoi(optarg);
			break;
		case 'X':
			dups = true;
			break;
		case 'E':
			reexec = true;
			break;
		case 'I':
			inherited = atoi(optarg);
			break;
		case 'B':
			rebinds = atoi(optarg);
			break;
		case 'L':
			latch = true;
			break;
		case '1':
			ping = true;
			break;
		case 'Z':
			sink = true;
			break;
		case '6':
			use_v6 = true;
			break;
		case 'F':
			daemonize = true;
			break;
		case 'K':
			fake_punch = true;
			break;
		default:
			return 2;
		}
	}
	if (!client && !port)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (rebinds)
		return serve_in_turn(port, rebinds);
	if (sa_restart) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGALRM, &sa, NULL);
		struct itimerval it = { { 0, 20000 }, { 0, 20000 } };
		setitimer(ITIMER_REAL, &it, NULL);
	}
	int fd = inherited >= 0 ? inherited
		 : client	? new_socket(poll_read)
				: listen_socket(port, poll_read);
	if (daemonize) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid > 0) {
			printf("parent exits\n");
			return 0;
		}
	}
	long long start = now_ms(), end = start + duration * 1000LL, last_rx = 0;
	long long next_send = start, next_hop = hop_s ? start + hop_s * 1000LL : 0;
	long long readblock = 0, heard_after_quiet = 0, first_rx = 0;
	unsigned long sent = 0, got = 0, others = 0;
	bool failed = false, duped = false;
	printf("start %lld\n", start);
	while (now_ms() < end) {
		long long now = now_ms();
		if (handler_io)
			handler_fd = fd;
		for (int k = 0; handler_io && k < 20000; k++) {
			struct sockaddr_in me;
			socklen_t ml = sizeof(me);
			getsockname(fd, (struct sockaddr *)&me, &ml);
		}
		double t = (double)(now - start) / 1000.0;
		bool quiet = t >= quiet_from && t < quiet_to;
		if (next_hop && now >= next_hop && client) {
			int nfd = new_socket(poll_read);
			char b[32];
			int len = snprintf(b, sizeof(b), "hop %lu", sent);
			if (send_to(nfd, b, (size_t)len, &peer) < 0) {
				printf("hop sendto: %s\n", strerror(errno));
				failed = true;
			}
			close(fd);
			fd = nfd;
			printf("hopped to fd %d\n", fd);
			next_hop = now + hop_s * 1000LL;
		}
		if (interval && have_peer && !quiet && now >= next_send) {
			char b[32];
			int len = snprintf(b, sizeof(b), "%lu", sent);
			if (fake_punch && sent % 5 == 4) {
				const char *id = getenv("N4_IDENT") ? getenv("N4_IDENT") : "n4n4n4";
				b[0] = 0x05;
				b[1] = 0;
				memset(b + 2, ' ', 6);
				memcpy(b + 2, id, strlen(id) < 6 ? strlen(id) : 6);
				len = 8;
			}
			long long t0 = now_ms();
			if (send_to(fd, b, (size_t)len, &peer) < 0) {
				if (errno != EAGAIN && errno != ECONNREFUSED) {
					printf("sendto: %s after %lld ms\n", strerror(errno),
					       now_ms() - t0);
					failed = true;
					break;
				}
			} else {
				sent++;
			}
			if (sent == 1)
				printf("first send returned after %lld ms (%d signals)\n",
				       now_ms() - t0, (int)alarms);
			next_send = now + interval;
			if (ping)
				next_send = now + 200;
		}
		long long wait = have_peer && interval && !quiet ? next_send - now_ms() : 100;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, wait < 0 ? 0 : (int)wait);
		if (n <= 0)
			continue;
		char buf[2048];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		long long t0 = now_ms();
		ssize_t r;
		if (poll_read)
			r = read(fd, buf, sizeof(buf));
		else
			r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &flen);
		if (poll_read && now_ms() - t0 > readblock)
			readblock = now_ms() - t0;
		if (r < 0)
			continue;
		now = now_ms();
		if (r == 8 && buf[0] == 0x05)
			printf("got a PUNCH\n");
		if (r == 12 && buf[0] == 0x0B)
			printf("got a relay registration\n");
		if (r == 68 && buf[0] == 0x09)
			printf("got an APUNCH\n"); /* a keyed peer's late authenticated PUNCH */
		got++;
		if (got == 10 || got == 25)
			printf("heard %lu\n", got); /* a steady stream: what tests wait for */
		if (!first_rx)
			first_rx = now;
		if (last_rx && now - last_rx > 500)
			printf("gap %lld %lld\n", last_rx, now);
		last_rx = now;
		if (quiet_to > 0 && (double)(now - start) / 1000.0 >= quiet_to)
			heard_after_quiet++;
		bool latched_elsewhere = latch && have_peer &&
					 (from.sin_addr.s_addr != peer.sin_addr.s_addr ||
					  from.sin_port != peer.sin_port);
		if (latched_elsewhere)
			others++;
		if (!client && !poll_read && !sink && !latched_elsewhere) {
			if (!have_peer)
				printf("first heard from %s:%u\n", inet_ntoa(from.sin_addr),
				       ntohs(from.sin_port));
			peer = from; /* answer the latest source, as servers that roam do */
			have_peer = true;
			if (!interval && sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&peer,
						sizeof(peer)) > 0)
				sent++; /* -i 0: an echo server, silent unless spoken to */
		}
		if (ping) {
			printf("pong after %lld ms: %.*s\n", now - start, (int)r, buf);
			break;
		}
		if (dups && !duped) {
			int d1 = dup(fd), d2 = dup2(fd, 50), d3 = fcntl(fd, F_DUPFD, 60);
			int d4 = dup3(d3, 70, O_CLOEXEC), d5 = dup(d4);
			if (d1 < 0 || d2 < 0 || d3 < 0 || d4 < 0 || d5 < 0) {
				perror("dup");
				return 1;
			}
			close(fd);
			close(d1);
			close(d2);
			close(d3);
			close(d4);
			fd = d5;
			duped = true;
			printf("now on the fifth copy, fd %d\n", fd);
			if (reexec && ph_arg) {
				char fdstr[16];
				snprintf(fdstr, sizeof(fdstr), "%d", fd);
				printf("done sent %lu (before exec)\n", sent);
				char *args[] = { argv[0], "-c", (char *)ph_arg, "-I", fdstr, "-d",
						 "3",	  NULL };
				execv(argv[0], args);
				perror("execv");
				return 1;
			}
		}
	}
	if (quiet_to > 0)
		printf("heard-after-quiet %lld\n", heard_after_quiet);
	if (latch)
		printf("others %lu\n", others);
	printf("done sent %lu got %lu readblock %lld first-rx %lld last-rx %lld\n", sent, got,
	       readblock, first_rx ? first_rx - start : -1, last_rx ? last_rx - start : -1);
	return failed ? 1 : 0;
}

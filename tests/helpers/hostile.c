/* hostile.c - what the internet throws at a rendezvous server, one case per run,
 * over loopback.  Cases that need an answer from the server check it themselves and
 * print "ok - ..." or "not ok - ..." (exit 0 / 1); the others just do their damage
 * and exit 0.  tests/server/test_hostile.sh runs each while a legitimate pair
 * completes alongside.
 *
 * usage: hostile PORT CASE [ARG]
 *   garbage N      N connections sending 64 random bytes each
 *   partial N [MS] N connections sending half a HELLO, then silence for MS (3000)
 *   slow N         N connections sending a HELLO one byte per second
 *   flood N [MS]   N connections from 127.0.0.1 as fast as possible, each a HELLO;
 *                  with MS, all held open for MS before closing
 *   hellos N       one connection sending N HELLOs back to back
 *   spoof          a pair gets READY; EXCHANGEs for its identifier (and random
 *                  tokens) come from 127.66.66.66 first: the pair must still get
 *                  the right PEERINFOs
 *   udpjunk X S    for S seconds, random datagrams of random length
 *   halfopen N     N clients send HELLO, then vanish without FIN or RST (TCP_REPAIR)
 *   third          a pair gets READY, a third client says the same identifier: the
 *                  pair must still get the right PEERINFOs, the third must wait
 *   reset          a pair gets READY, one side resets: the other must be closed
 *   slowpair MS    a pair gets READY, waits MS, then completes: must get PEERINFOs
 * Rooms (N4_EXT_ROOM):
 *   roomflood N    N room registrations from one source (127.203.0.1), each held:
 *                  exactly N4_ROOMS_PER_SOURCE (8) HOSTED, the rest REFUSED(1)
 *   roomjunk N     N connections that open like a host and go wrong: no joiners,
 *                  a server's subcode, HOST twice, a HELLO without the room
 *                  extension, half a ROOM HOST then silence, a keyed host that
 *                  never sends its long id
 *   roomchurn N    a host registers; N joiners join, half of them reset at once,
 *                  some send a malformed ROOM message; then the host resets too
 *   roomticket N   a host and one held joiner; N answers with guessed tickets: each
 *                  REFUSED(4), and the joiner is never paired with a guesser
 * Kept connections (N4_EXT_STAY):
 *   flowflood N    one kept connection sends N FLOWs as fast as the server reads
 *                  them: halfway, a FLOW between two kept connections of another
 *                  identifier must still arrive within a second, and the flooder's
 *                  peer must get no more than the rate lets through (20, then 10/s)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "n4.h"
#include "wire.h"

#ifndef TCP_REPAIR
#define TCP_REPAIR 19
#endif

static struct sockaddr_in srv;

static int tcp_connect_from(uint32_t src_ip)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (src_ip) {
		struct sockaddr_in b = { .sin_family = AF_INET, .sin_addr.s_addr = src_ip };
		if (bind(fd, (struct sockaddr *)&b, sizeof(b))) {
			close(fd);
			return -1;
		}
	}
	if (connect(fd, (struct sockaddr *)&srv, sizeof(srv))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void hello_bytes(uint8_t out[N4_MSG_SIZE], const char *ident, uint8_t ext)
{
	struct n4_msg m;
	uint8_t id[N4_PAYLOAD_SIZE];

	n4_ident_encode(ident, id);
	n4_msg_init(&m, N4_CMD_HELLO, ext, id);
	n4_wire_encode(&m, out);
}

/* Read one 8-byte message within ms; 0, -1 on EOF/error, -2 on timeout. */
static int read_msg(int fd, uint8_t buf[N4_MSG_SIZE], int ms)
{
	size_t have = 0;

	while (have < N4_MSG_SIZE) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, ms);
		if (n == 0)
			return -2;
		if (n < 0)
			return -1;
		ssize_t r = recv(fd, buf + have, N4_MSG_SIZE - have, 0);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	return 0;
}

static void rand_ident(char out[7])
{
	static const char a[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	for (int i = 0; i < 6; i++)
		out[i] = a[rand() % 36];
	out[6] = 0;
}

static int verdict(bool ok, const char *what)
{
	printf("%s - %s\n", ok ? "ok" : "not ok", what);
	return ok ? 0 : 1;
}

struct pair {
	int t[2], u[2];
	struct sockaddr_in ua[2];
	uint32_t ip[2];
};

/* Two legacy clients from distinct loopback IPs, HELLO ident, READY on both. */
static int pair_ready(struct pair *p, const char *ident)
{
	uint8_t b[N4_MSG_SIZE];

	for (int i = 0; i < 2; i++) {
		p->ip[i] = htonl(0x7f000000u | (200u << 16) | ((unsigned)(rand() % 250) << 8) |
				 (unsigned)(i + 1));
		p->t[i] = tcp_connect_from(p->ip[i]);
		if (p->t[i] < 0)
			return -1;
		hello_bytes(b, ident, 0);
		if (send(p->t[i], b, sizeof(b), 0) != (ssize_t)sizeof(b))
			return -1;
		p->u[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		p->ua[i] =
			(struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = p->ip[i] };
		socklen_t l = sizeof(p->ua[i]);
		if (bind(p->u[i], (struct sockaddr *)&p->ua[i], sizeof(p->ua[i])) ||
		    getsockname(p->u[i], (struct sockaddr *)&p->ua[i], &l))
			return -1;
	}
	for (int i = 0; i < 2; i++) {
		if (read_msg(p->t[i], b, 3000) || b[0] != N4_CMD_READY)
			return -1;
	}
	return 0;
}

/* Both send EXCHANGE (three copies); each must get the other's UDP address. */
static bool pair_complete(struct pair *p, const char *ident)
{
	uint8_t b[N4_MSG_SIZE], id[N4_PAYLOAD_SIZE];
	struct n4_msg m;

	n4_ident_encode(ident, id);
	n4_msg_init(&m, N4_CMD_EXCHANGE, 0, id);
	n4_wire_encode(&m, b);
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < 3; k++)
			sendto(p->u[i], b, sizeof(b), 0, (struct sockaddr *)&srv, sizeof(srv));
	}
	for (int i = 0; i < 2; i++) {
		struct sockaddr_in got;
		if (read_msg(p->t[i], b, 3000) ||
		    n4_wire_decode(b, sizeof(b), N4_CMD_PEERINFO, &m) ||
		    n4_peerinfo_decode(m.payload, &got))
			return false;
		if (got.sin_addr.s_addr != p->ua[1 - i].sin_addr.s_addr ||
		    got.sin_port != p->ua[1 - i].sin_port)
			return false;
	}
	return true;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* ---- rooms ---- */

static void room_bytes(uint8_t out[N4_MSG_SIZE], uint8_t sub, const uint8_t payload[6])
{
	struct n4_msg m;

	n4_msg_init(&m, N4_CMD_ROOM, sub, payload);
	n4_wire_encode(&m, out);
}

/* ROOM HOST + HELLO for ident from ip: the connection, or -1. */
static int room_register(uint32_t ip, const char *ident, uint8_t ext)
{
	uint8_t b[2 * N4_MSG_SIZE], pl[6] = { 0, 8 };
	int fd = tcp_connect_from(ip);

	if (fd < 0)
		return -1;
	room_bytes(b, N4_ROOM_HOST, pl);
	hello_bytes(b + N4_MSG_SIZE, ident, ext);
	if (send(fd, b, sizeof(b), MSG_NOSIGNAL) != (ssize_t)sizeof(b)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A joiner: HELLO, READY, JOINER.  The connection, or -1. */
static int room_join(uint32_t ip, const char *ident, const uint8_t pid[6])
{
	uint8_t b[N4_MSG_SIZE];
	int fd = tcp_connect_from(ip);

	if (fd < 0)
		return -1;
	hello_bytes(b, ident, N4_EXT_TOKEN | N4_EXT_ROOM);
	if (send(fd, b, sizeof(b), MSG_NOSIGNAL) != (ssize_t)sizeof(b) || read_msg(fd, b, 3000) ||
	    b[0] != N4_CMD_READY) {
		close(fd);
		return -1;
	}
	room_bytes(b, N4_ROOM_JOINER, pid);
	send(fd, b, sizeof(b), MSG_NOSIGNAL);
	return fd;
}

static void reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static int room_case(const char *what, long n)
{
	uint8_t b[64], pl[6] = { 0 };
	char id[7];

	if (strcmp(what, "roomflood") == 0) {
		int *fds = calloc((size_t)n, sizeof(int));
		long hosted = 0, refused = 0;
		for (long i = 0; i < n; i++) {
			rand_ident(id);
			fds[i] = room_register(htonl(0x7fcb0001u), id, N4_EXT_TOKEN | N4_EXT_ROOM);
			if (fds[i] >= 0 && read_msg(fds[i], b, 3000) == 0 && b[0] == N4_CMD_ROOM) {
				hosted += b[1] == N4_ROOM_HOSTED;
				refused += b[1] == N4_ROOM_REFUSED && b[2] == 1;
			}
		}
		for (long i = 0; i < n; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		free(fds);
		printf("hostile: %ld registrations from one source: %ld hosted, %ld refused\n", n,
		       hosted, refused);
		return verdict(hosted == 8 && refused == n - 8,
			       "roomflood: 8 rooms per source, the rest refused");
	}
	if (strcmp(what, "roomjunk") == 0) {
		for (long i = 0; i < n; i++) {
			uint32_t ip = htonl(0x7fcc0000u | (unsigned)(i % 200 + 1));
			int fd = tcp_connect_from(ip);
			if (fd < 0)
				continue;
			size_t len = N4_MSG_SIZE;
			rand_ident(id);
			switch (i % 6) {
			case 0: /* a host for no joiner at all */
				room_bytes(b, N4_ROOM_HOST, pl);
				break;
			case 1: /* what only the server sends */
				room_bytes(b, (uint8_t)(N4_ROOM_HOSTED + rand() % 0x20), pl);
				break;
			case 2: /* HOST twice */
				pl[1] = 4;
				room_bytes(b, N4_ROOM_HOST, pl);
				room_bytes(b + N4_MSG_SIZE, N4_ROOM_HOST, pl);
				len = 2 * N4_MSG_SIZE;
				break;
			case 3: /* HOST, then a HELLO without the room extension */
				pl[1] = 4;
				room_bytes(b, N4_ROOM_HOST, pl);
				hello_bytes(b + N4_MSG_SIZE, id, N4_EXT_TOKEN);
				len = 2 * N4_MSG_SIZE;
				break;
			case 4: /* half a ROOM HOST, then silence until the deadline */
				room_bytes(b, N4_ROOM_HOST, pl);
				len = 3;
				break;
			default: /* a keyed host that never sends its long id */
				close(fd);
				fd = room_register(ip, id, N4_EXT_TOKEN | N4_EXT_ROOM | N4_EXT_KEY);
				len = 0;
				break;
			}
			if (fd < 0)
				continue;
			if (len)
				send(fd, b, len, MSG_NOSIGNAL);
			if (i % 6 >= 4) {
				/* held open: only the server's deadline ends it */
				sleep_ms(2);
				continue;
			}
			close(fd);
		}
		return 0;
	}
	if (strcmp(what, "roomchurn") == 0) {
		rand_ident(id);
		int h = room_register(htonl(0x7fcd0001u), id, N4_EXT_TOKEN | N4_EXT_ROOM);
		if (h < 0 || read_msg(h, b, 3000) || b[1] != N4_ROOM_HOSTED)
			return verdict(false, "roomchurn: the host registers");
		int *fds = calloc((size_t)n, sizeof(int));
		for (long i = 0; i < n; i++) {
			uint8_t pid[6] = { 'c', 'h', (uint8_t)(i >> 8), (uint8_t)i };
			uint32_t ip = htonl(0x7fcd0100u + (unsigned)(i % 200) + 2u);
			if (i % 5 == 4) {
				/* a malformed ROOM message after READY */
				fds[i] = tcp_connect_from(ip);
				hello_bytes(b, id, N4_EXT_TOKEN | N4_EXT_ROOM);
				if (fds[i] >= 0 && send(fds[i], b, 8, MSG_NOSIGNAL) == 8 &&
				    read_msg(fds[i], b, 3000) == 0) {
					room_bytes(b, N4_ROOM_HOST, pid);
					send(fds[i], b, 8, MSG_NOSIGNAL);
				}
			} else {
				fds[i] = room_join(ip, id, pid);
			}
			if (fds[i] >= 0 && i % 2) {
				reset_close(fds[i]);
				fds[i] = -1;
			}
		}
		/* The host drains what it was told, then vanishes with a reset. */
		while (read_msg(h, b, 100) == 0)
			;
		reset_close(h);
		sleep_ms(100);
		for (long i = 0; i < n; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		free(fds);
		return 0;
	}
	if (strcmp(what, "roomticket") == 0) {
		rand_ident(id);
		int h = room_register(htonl(0x7fce0001u), id, N4_EXT_TOKEN | N4_EXT_ROOM);
		if (h < 0 || read_msg(h, b, 3000) || b[1] != N4_ROOM_HOSTED)
			return verdict(false, "roomticket: the host registers");
		uint8_t pid[6] = { 'v', 'i', 'c', 't', 'i', 'm' };
		int j = room_join(htonl(0x7fce0002u), id, pid);
		if (j < 0 || read_msg(h, b, 3000) || b[1] != N4_ROOM_JOIN)
			return verdict(false, "roomticket: the joiner is announced");
		uint8_t ticket[6];
		memcpy(ticket, b + 2, 6);
		long refused = 0;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (long i = 0; i < n; i++) {
			int g = tcp_connect_from(htonl(0x7fce0100u + (unsigned)(i % 200) + 3u));
			if (g < 0)
				continue;
			hello_bytes(b, id, N4_EXT_TOKEN | N4_EXT_ROOM);
			if (send(g, b, 8, MSG_NOSIGNAL) == 8 && read_msg(g, b, 3000) == 0 &&
			    b[0] == N4_CMD_READY) {
				uint8_t guess[6];
				for (int k = 0; k < 6; k++)
					guess[k] = (uint8_t)rand();
				if (memcmp(guess, ticket, 6) == 0)
					guess[0] ^= 1;
				room_bytes(b, N4_ROOM_ANSWER, guess);
				send(g, b, 8, MSG_NOSIGNAL);
				if (read_msg(g, b, 3000) == 0 && b[0] == N4_CMD_ROOM &&
				    b[1] == N4_ROOM_REFUSED && b[2] == 4 &&
				    read_msg(g, b, 3000) == -1)
					refused++;
			}
			close(g);
		}
		/* The joiner heard nothing: no guess paired it (a guesser linked
		 * with it would have closed it on leaving).  Its own exchange
		 * deadline may have closed it if the guesses took that long. */
		int r = read_msg(j, b, 200);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		/* the exchange deadline of test_hostile.sh's server: 1000 ms */
		bool late =
			(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 900;
		close(j);
		close(h);
		printf("hostile: %ld guessed tickets, %ld refused\n", n, refused);
		return verdict(refused == n && (r == -2 || (r == -1 && late)),
			       "roomticket: guessed tickets are refused and pair nobody");
	}
	fprintf(stderr, "hostile: unknown case %s\n", what);
	return 2;
}

/* A STAY registration (a kept connection) for ident, from 127.0.0.1. */
static int stay_conn(const char *ident)
{
	int fd = tcp_connect_from(0);
	uint8_t b[N4_MSG_SIZE];

	if (fd < 0)
		return -1;
	hello_bytes(b, ident, N4_EXT_STAY);
	b[0] = N4_CMD_STAY;
	if (send(fd, b, sizeof(b), MSG_NOSIGNAL) != (ssize_t)sizeof(b)) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int flow_flood(long n)
{
	enum { CHUNK = 64 };
	uint8_t buf[CHUNK * N4_MSG_SIZE], b[N4_MSG_SIZE];
	char id[7], id2[7];
	struct n4_flow_note f = { .from_port = 40000, .to_port = 5000 };
	struct n4_msg m;

	rand_ident(id);
	rand_ident(id2);
	int a = stay_conn(id), peer = stay_conn(id), c = stay_conn(id2), d = stay_conn(id2);
	if (a < 0 || peer < 0 || c < 0 || d < 0)
		return verdict(false, "flowflood: four STAY registrations");
	sleep_ms(100);
	for (int i = 0; i < CHUNK; i++) {
		f.nonce = (uint16_t)i;
		n4_flow_encode(&f, 0, &m);
		n4_wire_encode(&m, buf + i * N4_MSG_SIZE);
	}
	uint64_t t0 = mono_ms();
	bool other_ok = false, other_sent = false;
	for (long sent = 0; sent < n;) {
		size_t len = (size_t)(n - sent < CHUNK ? n - sent : CHUNK) * N4_MSG_SIZE;
		ssize_t w = send(a, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = { .fd = a, .events = POLLOUT };
			poll(&p, 1, 100);
			continue;
		}
		if (w < 0 || w % N4_MSG_SIZE) /* whole messages only, or the stream is cut */
			return verdict(false, "flowflood: the flood was sent");
		sent += w / N4_MSG_SIZE;
		if (!other_sent && sent >= n / 2) {
			/* Another identifier's kept connections, mid-flood. */
			f.nonce = 0x0707;
			n4_flow_encode(&f, 0, &m);
			n4_wire_encode(&m, b);
			other_sent = send(c, b, sizeof(b), MSG_NOSIGNAL) == (ssize_t)sizeof(b);
			other_ok = other_sent && read_msg(d, b, 1000) == 0 && b[0] == N4_CMD_FLOW &&
				   b[1] == N4_FLOW_FORWARDED && b[6] == 0x07 && b[7] == 0x07;
		}
	}
	long got = 0;
	while (read_msg(peer, b, 500) == 0)
		got += b[0] == N4_CMD_FLOW;
	uint64_t took = mono_ms() - t0;
	long most = 20 + (long)(took / 100) + 1;
	printf("hostile: %ld FLOWs in %llu ms, %ld passed on (at most %ld)\n", n,
	       (unsigned long long)took, got, most);
	close(a);
	close(peer);
	close(c);
	close(d);
	if (!other_ok)
		return verdict(false, "flowflood: another identifier's FLOW arrives within 1 s");
	return verdict(got >= 1 && got <= most,
		       "flowflood: the flooder's peer gets no more than the rate allows");
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr,
			"usage: hostile PORT CASE [ARG...] (see tests/helpers/hostile.c)\n");
		return 2;
	}
	srv.sin_family = AF_INET;
	srv.sin_port = htons((uint16_t)atoi(argv[1]));
	srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	const char *what = argv[2];
	long n = argc > 3 ? atol(argv[3]) : 10;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	uint8_t b[64];

	if (strcmp(what, "flowflood") == 0)
		return flow_flood(n);
	if (strcmp(what, "garbage") == 0) {
		for (long i = 0; i < n; i++) {
			int fd = tcp_connect_from(0);
			if (fd < 0)
				continue;
			for (size_t k = 0; k < sizeof(b); k++)
				b[k] = (uint8_t)rand();
			b[0] = (uint8_t)(b[0] | 0x80); /* never a valid command */
			send(fd, b, sizeof(b), MSG_NOSIGNAL);
			close(fd);
		}
		return 0;
	}
	if (strcmp(what, "partial") == 0 || strcmp(what, "slow") == 0 ||
	    strcmp(what, "halfopen") == 0) {
		int *fds = calloc((size_t)n, sizeof(int));
		char id[7];
		for (long i = 0; i < n; i++) {
			fds[i] = tcp_connect_from(
				htonl(0x7f000000u | (201u << 16) | (unsigned)(i + 1)));
			rand_ident(id);
			hello_bytes(b, id, 0);
			if (fds[i] < 0)
				continue;
			if (what[0] == 'p') {
				send(fds[i], b, 4, MSG_NOSIGNAL);
			} else if (what[0] == 'h') {
				send(fds[i], b, 8, MSG_NOSIGNAL);
				sleep_ms(20); /* let the kernel deliver the HELLO */
				int on = 1;
				if (setsockopt(fds[i], IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)))
					perror("hostile: TCP_REPAIR");
				close(fds[i]); /* silently: the server's side stays open */
				fds[i] = -1;
			}
		}
		if (what[0] == 's') {
			for (int k = 0; k < N4_MSG_SIZE; k++) {
				for (long i = 0; i < n; i++)
					if (fds[i] >= 0)
						send(fds[i], b + k, 1, MSG_NOSIGNAL);
				sleep_ms(1000);
			}
		} else if (what[0] == 'p') {
			sleep_ms(argc > 4 ? (unsigned)atoi(argv[4]) : 3000);
		}
		for (long i = 0; i < n; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		free(fds);
		return 0;
	}
	if (strcmp(what, "flood") == 0) {
		long refused = 0;
		unsigned hold_ms = argc > 4 ? (unsigned)atoi(argv[4]) : 0;
		int *fds = calloc((size_t)n, sizeof(int));
		char id[7];
		for (long i = 0; i < n; i++) {
			int fd = tcp_connect_from(htonl(INADDR_LOOPBACK));
			fds[i] = fd;
			if (fd < 0) {
				refused++;
				continue;
			}
			rand_ident(id);
			hello_bytes(b, id, 0);
			send(fd, b, 8, MSG_NOSIGNAL);
			if (!hold_ms) {
				close(fd);
				fds[i] = -1;
			}
		}
		sleep_ms(hold_ms);
		for (long i = 0; i < n; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		free(fds);
		printf("hostile: flood of %ld connections, %ld refused at connect\n", n, refused);
		return 0;
	}
	if (strcmp(what, "hellos") == 0) {
		int fd = tcp_connect_from(0);
		char id[7];
		for (long i = 0; fd >= 0 && i < n; i++) {
			rand_ident(id);
			hello_bytes(b, id, 0);
			if (send(fd, b, 8, MSG_NOSIGNAL) != 8)
				break;
		}
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (strcmp(what, "spoof") == 0) {
		struct pair p;
		char id[7];
		rand_ident(id);
		if (pair_ready(&p, id))
			return verdict(false, "spoof: the pair did not get READY");
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(0x7f424242u) };
		bind(u, (struct sockaddr *)&a, sizeof(a));
		struct n4_msg m;
		uint8_t wid[N4_PAYLOAD_SIZE];
		n4_ident_encode(id, wid);
		n4_msg_init(&m, N4_CMD_EXCHANGE, 0, wid);
		for (int i = 0; i < 200; i++) {
			n4_wire_encode(&m, b);
			if (i % 2) { /* token-style, with random tokens */
				b[1] = N4_EXT_TOKEN;
				for (int k = 2; k < 8; k++)
					b[k] = (uint8_t)rand();
			}
			sendto(u, b, 8, 0, (struct sockaddr *)&srv, sizeof(srv));
		}
		sleep_ms(50);
		return verdict(pair_complete(&p, id), "spoof: EXCHANGEs from another IP do not "
						      "take over a pair");
	}
	if (strcmp(what, "udpjunk") == 0) {
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(0x7f424242u) };
		bind(u, (struct sockaddr *)&a, sizeof(a));
		long secs = argc > 4 ? atol(argv[4]) : 3;
		time_t end = time(NULL) + secs;
		while (time(NULL) < end) {
			size_t len = (size_t)(rand() % (int)sizeof(b));
			for (size_t k = 0; k < len; k++)
				b[k] = (uint8_t)rand();
			if (len == 8 && rand() % 2)
				b[0] = N4_CMD_EXCHANGE; /* well-formed, for nobody */
			sendto(u, b, len, 0, (struct sockaddr *)&srv, sizeof(srv));
			sleep_ms(1);
		}
		return 0;
	}
	if (strcmp(what, "third") == 0) {
		struct pair p;
		char id[7];
		rand_ident(id);
		if (pair_ready(&p, id))
			return verdict(false, "third: the pair did not get READY");
		int t3 = tcp_connect_from(htonl(0x7f000000u | (202u << 16) | 1u));
		hello_bytes(b, id, 0);
		send(t3, b, 8, MSG_NOSIGNAL);
		sleep_ms(50);
		bool ok = pair_complete(&p, id);
		int r = read_msg(t3, b, 300);
		return verdict(ok && r == -2,
			       "third: a third HELLO for a paired identifier changes "
			       "nothing for the pair and just waits");
	}
	if (strcmp(what, "reset") == 0) {
		struct pair p;
		char id[7];
		rand_ident(id);
		if (pair_ready(&p, id))
			return verdict(false, "reset: the pair did not get READY");
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(p.t[0], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(p.t[0]);
		int r = read_msg(p.t[1], b, 2000);
		return verdict(r == -1, "reset: a reset mid-pairing closes the partner at once");
	}
	if (strcmp(what, "slowpair") == 0) {
		struct pair p;
		char id[7];
		rand_ident(id);
		if (pair_ready(&p, id))
			return verdict(false, "slowpair: the pair did not get READY");
		printf("hostile: paired\n");
		fflush(stdout);
		sleep_ms((unsigned)n);
		return verdict(pair_complete(&p, id), "slowpair: a pair in the exchange completes");
	}
	if (strncmp(what, "room", 4) == 0)
		return room_case(what, n);
	fprintf(stderr, "hostile: unknown case %s\n", what);
	return 2;
}

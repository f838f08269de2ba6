/* roomctl.c - the rooms protocol on the wire, for tests/server/test_rooms.sh: a
 * room's host, its answers, joiners, a flood of joiners, and the library's
 * n4_room_host.  Each mode prints one line per event on stdout (flushed), so that
 * the test can poll a log for it:
 *   HOSTED | TAKEN | REFUSED <reason> | CLOSED         the registration
 *   JOIN <ticket> <peer id> <ms since HOSTED>          a joiner announced
 *   ANSWERED <peer id> <ip:port> from <ip:port>        an answer's PEERINFO
 *   ANSWER_REFUSED <peer id> <reason>
 *   READY <ext> | UDP <ip:port> | PEERINFO <ip:port>   a joiner
 *   REFUSED <reason> | CLOSED | TIMEOUT
 * Hex is lower case without separators.  Loopback only.
 *
 * usage: roomctl PORT MODE ARGS...
 *   host IDENT [-k B] [-m MAX] [-a | -A] [-s S] [-f IP]
 *        register (ROOM HOST + HELLO; with -k the long id is 18 bytes of B), then
 *        print each join for S seconds (60); -a answers each (a connection of
 *        its own from the host's IP, HELLO, ANSWER, EXCHANGE, PEERINFO); -A
 *        answers without an EXCHANGE and closes at once (frees the held slot)
 *   join IDENT [-k B] [-p PEERID] [-f IP] [-t S] [-n]
 *        HELLO, READY, JOINER, EXCHANGE every 250 ms (none with -n) until
 *        PEERINFO, a refusal, the end of the connection or S seconds (10)
 *   answer IDENT [-k B] [-f IP] TICKET
 *        HELLO, READY, ANSWER with TICKET (hex): prints what comes back
 *        (REFUSED <reason>, then CLOSED)
 *   flood IDENT N [-t S] [-i MS]
 *        N joiners, one each MS ms (all at once: 0), each from its own
 *        127.88.x.y; for S seconds (3) prints when each was refused or closed,
 *        then a summary: "flood: ready=R refused1=A refused2=B refused3=C
 *        closed=D open=E span=<ms from the first joiner to the last>"
 *   libhost IDENT [-K KEYFILE] [-m MAX] [-s S]
 *        n4_room_host: "libhost rc=<-errno> why=<its message>", then holds the
 *        room connection for S seconds (0) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "key.h"
#include "n4.h"
#include "wire.h"

static struct sockaddr_in srv;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static int unhex(const char *s, uint8_t *b, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		b[i] = (uint8_t)v;
	}
	return 0;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static uint32_t ip_of(const char *s)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return htonl(INADDR_LOOPBACK);
	return a.s_addr;
}

/* A TCP connection to the server from ip (any port). */
static int tcp_from(uint32_t ip)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in b = { .sin_family = AF_INET, .sin_addr.s_addr = ip };

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&b, sizeof(b)) ||
	    connect(fd, (struct sockaddr *)&srv, sizeof(srv))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_msgs(int fd, const struct n4_msg *m, unsigned n)
{
	uint8_t buf[8 * N4_MSG_SIZE];

	for (unsigned i = 0; i < n; i++)
		n4_wire_encode(&m[i], buf + i * N4_MSG_SIZE);
	size_t len = n * N4_MSG_SIZE;
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* One message within ms: 0, -1 closed (EOF or reset), -2 timeout. */
static int read_msg(int fd, struct n4_msg *m, int ms)
{
	uint8_t buf[N4_MSG_SIZE];
	size_t have = 0;
	uint64_t end = now_ms() + (uint64_t)ms;

	while (have < N4_MSG_SIZE) {
		uint64_t t = now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, t >= end ? 0 : (int)(end - t));
		if (n == 0)
			return -2;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		ssize_t r = recv(fd, buf + have, N4_MSG_SIZE - have, 0);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	return n4_wire_decode(buf, sizeof(buf), 0, m) ? -1 : 0;
}

/* The long id: 18 bytes of b. */
static void send_long_id(int fd, uint8_t b, uint8_t first)
{
	struct n4_msg m[3];
	uint8_t pl[N4_PAYLOAD_SIZE];

	memset(pl, b, sizeof(pl));
	for (uint8_t i = 0; i < 3; i++)
		n4_msg_init(&m[i], N4_CMD_KEYID, (uint8_t)(first + i), pl);
	(void)send_msgs(fd, m, 3);
}

/* HELLO (and the long id when asked), up to READY.  Returns READY's ext, or -1
 * closed, -2 timeout, -100 - reason for REFUSED. */
static int hello_ready(int fd, const char *ident, int keyb, uint8_t token[N4_TOKEN_SIZE], int ms)
{
	struct n4_msg m;
	uint8_t id[N4_PAYLOAD_SIZE];
	uint8_t ext = N4_EXT_TOKEN | N4_EXT_ROOM | (keyb >= 0 ? N4_EXT_KEY : 0);

	n4_ident_encode(ident, id);
	n4_msg_init(&m, N4_CMD_HELLO, ext, id);
	if (send_msgs(fd, &m, 1))
		return -1;
	for (;;) {
		int rc = read_msg(fd, &m, ms);
		if (rc)
			return rc;
		if (m.cmd == N4_CMD_KEYID && keyb >= 0) {
			send_long_id(fd, (uint8_t)keyb, 0);
			continue;
		}
		if (m.cmd == N4_CMD_ROOM && m.ext == N4_ROOM_REFUSED)
			return -100 - m.payload[0];
		if (m.cmd != N4_CMD_READY)
			return -1;
		memcpy(token, m.payload, N4_TOKEN_SIZE);
		if (keyb >= 0)
			send_long_id(fd, 0x5a, 3); /* the round's nonce */
		return m.ext;
	}
}

static int udp_from(uint32_t ip, struct sockaddr_in *self)
{
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t l = sizeof(*self);

	*self = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = ip };
	if (u < 0 || bind(u, (struct sockaddr *)self, sizeof(*self)) ||
	    getsockname(u, (struct sockaddr *)self, &l)) {
		if (u >= 0)
			close(u);
		return -1;
	}
	return u;
}

static void exchange(int u, const uint8_t token[N4_TOKEN_SIZE])
{
	struct n4_msg m;
	uint8_t b[N4_MSG_SIZE];

	n4_msg_init(&m, N4_CMD_EXCHANGE, N4_EXT_TOKEN, token);
	n4_wire_encode(&m, b);
	(void)sendto(u, b, sizeof(b), 0, (struct sockaddr *)&srv, sizeof(srv));
}

static const char *addr_str(const struct sockaddr_in *a, char *b, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(b, len, "%s:%u", ip, ntohs(a->sin_port));
	return b;
}

/* After READY: EXCHANGE every 250 ms until PEERINFO (0), or the end. */
static int until_peerinfo(int fd, int u, const uint8_t token[N4_TOKEN_SIZE], int ms,
			  struct sockaddr_in *peer, uint8_t *reason, bool send_exchange)
{
	uint64_t end = now_ms() + (uint64_t)ms, next = 0;
	struct n4_msg m;

	for (;;) {
		uint64_t t = now_ms();
		if (t >= end)
			return -2;
		if (send_exchange && t >= next) {
			exchange(u, token);
			next = t + 250;
		}
		int rc = read_msg(fd, &m, 50);
		if (rc == -2)
			continue;
		if (rc)
			return rc;
		if (m.cmd == N4_CMD_ROOM && m.ext == N4_ROOM_REFUSED) {
			*reason = m.payload[0];
			return -3;
		}
		if (m.cmd == N4_CMD_PEERINFO)
			return n4_peerinfo_decode(m.payload, peer) ? -1 : 0;
		/* SELF, PLAN, TUNE and the like: not ours to check */
	}
}

/* ---- host ---- */

struct host_opts {
	const char *ident, *from;
	int keyb;
	unsigned max, secs;
	int answer; /* 0, 'a' or 'A' */
};

static void answer_one(const struct host_opts *o, const uint8_t ticket[N4_ROOM_ID_SIZE],
		       const char *pid)
{
	uint32_t ip = ip_of(o->from);
	int fd = tcp_from(ip);
	uint8_t token[N4_TOKEN_SIZE];
	struct sockaddr_in self, peer;
	char b[64];

	if (fd < 0) {
		say("ANSWER_REFUSED %s connect", pid);
		return;
	}
	int ext = hello_ready(fd, o->ident, o->keyb, token, 3000);
	if (ext < 0) {
		say("ANSWER_REFUSED %s hello%d", pid, ext);
		close(fd);
		return;
	}
	struct n4_msg m;
	n4_msg_init(&m, N4_CMD_ROOM, N4_ROOM_ANSWER, ticket);
	(void)send_msgs(fd, &m, 1);
	if (o->answer == 'A') {
		/* The server reads the ANSWER before the end of the connection:
		 * the joiner's slot is free at once (and the joiner is closed). */
		close(fd);
		return;
	}
	int u = udp_from(ip, &self);
	uint8_t reason = 0;
	char b2[64];
	int rc = until_peerinfo(fd, u, token, 5000, &peer, &reason, true);
	if (rc == 0)
		say("ANSWERED %s %s from %s", pid, addr_str(&peer, b, sizeof(b)),
		    addr_str(&self, b2, sizeof(b2)));
	else if (rc == -3)
		say("ANSWER_REFUSED %s %u", pid, reason);
	else
		say("ANSWER_REFUSED %s %s", pid, rc == -2 ? "timeout" : "closed");
	close(u);
	close(fd);
}

static int host_main(const struct host_opts *o)
{
	int fd = tcp_from(ip_of(o->from));
	uint8_t pl[N4_PAYLOAD_SIZE] = { (uint8_t)(o->max >> 8), (uint8_t)o->max };
	uint8_t id[N4_PAYLOAD_SIZE];
	struct n4_msg m[2];

	if (fd < 0) {
		say("CLOSED connect: %s", strerror(errno));
		return 1;
	}
	n4_ident_encode(o->ident, id);
	n4_msg_init(&m[0], N4_CMD_ROOM, N4_ROOM_HOST, pl);
	n4_msg_init(&m[1], N4_CMD_HELLO,
		    (uint8_t)(N4_EXT_TOKEN | N4_EXT_ROOM | (o->keyb >= 0 ? N4_EXT_KEY : 0)), id);
	if (send_msgs(fd, m, 2)) {
		say("CLOSED send");
		return 1;
	}
	for (;;) {
		int rc = read_msg(fd, &m[0], 5000);
		if (rc) {
			say(rc == -2 ? "TIMEOUT" : "CLOSED");
			return 0;
		}
		if (m[0].cmd == N4_CMD_KEYID && o->keyb >= 0) {
			send_long_id(fd, (uint8_t)o->keyb, 0);
			continue;
		}
		break;
	}
	if (m[0].cmd != N4_CMD_ROOM) {
		say("CLOSED unexpected command %u", m[0].cmd);
		return 1;
	}
	if (m[0].ext == N4_ROOM_TAKEN) {
		say("TAKEN");
		return 0;
	}
	if (m[0].ext == N4_ROOM_REFUSED) {
		say("REFUSED %u", m[0].payload[0]);
		return 0;
	}
	if (m[0].ext != N4_ROOM_HOSTED) {
		say("CLOSED unexpected subcode %u", m[0].ext);
		return 1;
	}
	uint64_t t0 = now_ms(), end = t0 + (uint64_t)o->secs * 1000u;
	say("HOSTED");
	for (;;) {
		uint64_t t = now_ms();
		if (t >= end)
			return 0;
		int rc = read_msg(fd, &m[0], (int)(end - t > 1000 ? 1000 : end - t));
		if (rc == -2)
			continue;
		if (rc) {
			say("CLOSED");
			return 0;
		}
		if (m[0].cmd != N4_CMD_ROOM || m[0].ext != N4_ROOM_JOIN ||
		    read_msg(fd, &m[1], 1000) || m[1].cmd != N4_CMD_ROOM ||
		    m[1].ext != N4_ROOM_JOIN_PEER) {
			say("CLOSED not JOIN + JOIN_PEER (%u %u)", m[0].cmd, m[0].ext);
			return 1;
		}
		char t_hex[13], p_hex[13];
		hex(m[0].payload, N4_ROOM_ID_SIZE, t_hex);
		hex(m[1].payload, N4_PAYLOAD_SIZE, p_hex);
		say("JOIN %s %s %llu", t_hex, p_hex, (unsigned long long)(now_ms() - t0));
		if (o->answer)
			answer_one(o, m[0].payload, p_hex);
	}
}

/* ---- join ---- */

static int join_main(const char *ident, int keyb, const uint8_t pid[N4_PAYLOAD_SIZE],
		     const char *from, unsigned secs, bool no_exchange)
{
	uint32_t ip = ip_of(from);
	int fd = tcp_from(ip);
	uint8_t token[N4_TOKEN_SIZE];
	struct sockaddr_in self, peer;
	char b[64];

	if (fd < 0) {
		say("CLOSED connect: %s", strerror(errno));
		return 1;
	}
	int ext = hello_ready(fd, ident, keyb, token, (int)secs * 1000);
	if (ext <= -100) {
		say("REFUSED %d", -100 - ext);
		return 0;
	}
	if (ext < 0) {
		say(ext == -2 ? "TIMEOUT" : "CLOSED");
		return 0;
	}
	say("READY 0x%02x", (unsigned)ext);
	int u = udp_from(ip, &self);
	say("UDP %s", addr_str(&self, b, sizeof(b)));
	struct n4_msg m;
	n4_msg_init(&m, N4_CMD_ROOM, N4_ROOM_JOINER, pid);
	(void)send_msgs(fd, &m, 1);
	uint8_t reason = 0;
	int rc = until_peerinfo(fd, u, token, (int)secs * 1000, &peer, &reason, !no_exchange);
	if (rc == 0)
		say("PEERINFO %s", addr_str(&peer, b, sizeof(b)));
	else if (rc == -3)
		say("REFUSED %u", reason);
	else
		say(rc == -2 ? "TIMEOUT" : "CLOSED");
	close(u);
	close(fd);
	return 0;
}

/* ---- answer: an ANSWER naming any ticket ---- */

static int answer_main(const char *ident, int keyb, const uint8_t ticket[N4_ROOM_ID_SIZE],
		       const char *from)
{
	int fd = tcp_from(ip_of(from));
	uint8_t token[N4_TOKEN_SIZE];
	struct n4_msg m;

	if (fd < 0) {
		say("CLOSED connect: %s", strerror(errno));
		return 1;
	}
	int ext = hello_ready(fd, ident, keyb, token, 3000);
	if (ext < 0) {
		say(ext <= -100 ? "REFUSED" : ext == -2 ? "TIMEOUT" : "CLOSED");
		return 0;
	}
	say("READY 0x%02x", (unsigned)ext);
	n4_msg_init(&m, N4_CMD_ROOM, N4_ROOM_ANSWER, ticket);
	(void)send_msgs(fd, &m, 1);
	for (;;) {
		int rc = read_msg(fd, &m, 3000);
		if (rc) {
			say(rc == -2 ? "TIMEOUT" : "CLOSED");
			return 0;
		}
		if (m.cmd == N4_CMD_ROOM && m.ext == N4_ROOM_REFUSED)
			say("REFUSED %u", m.payload[0]);
	}
}

/* ---- flood ---- */

struct fj {
	int fd;
	uint8_t in[N4_MSG_SIZE];
	unsigned have;
	int state; /* 0 HELLO sent, 1 READY (JOINER sent), 2 refused, 3 closed */
	uint8_t reason;
};

static int flood_main(const char *ident, unsigned n, unsigned secs, unsigned interval_ms)
{
	struct fj *j = calloc(n, sizeof(*j));
	struct pollfd *p = calloc(n, sizeof(*p));
	uint8_t id[N4_PAYLOAD_SIZE];
	unsigned ready = 0, refused[4] = { 0 }, closed = 0, started = 0;
	uint64_t t0 = now_ms(), last_start = t0;

	if (!j || !p)
		return 1;
	n4_ident_encode(ident, id);
	for (unsigned i = 0; i < n; i++)
		j[i].fd = -1;
	for (;;) {
		uint64_t t = now_ms();
		if (t >= t0 + (uint64_t)secs * 1000u)
			break;
		/* The next joiner, each interval_ms (all at once with 0). */
		while (started < n && t >= t0 + (uint64_t)started * interval_ms) {
			unsigned i = started++;
			uint32_t ip = htonl(0x7f580000u | ((i / 250u + 1u) << 8) | (i % 250u + 1u));
			struct n4_msg m;
			j[i].fd = tcp_from(ip);
			n4_msg_init(&m, N4_CMD_HELLO, N4_EXT_TOKEN | N4_EXT_ROOM, id);
			if (j[i].fd < 0 || send_msgs(j[i].fd, &m, 1)) {
				j[i].state = 3;
				closed++;
			}
			last_start = now_ms();
		}
		for (unsigned i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = j[i].state < 2 ? j[i].fd : -1,
						.events = POLLIN };
		int wait = started < n ? (int)interval_ms : 50;
		if (poll(p, n, wait > 50 ? 50 : wait) <= 0)
			continue;
		for (unsigned i = 0; i < n; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t r = recv(j[i].fd, j[i].in + j[i].have, N4_MSG_SIZE - j[i].have,
					 MSG_DONTWAIT);
			if (r <= 0) {
				j[i].state = 3;
				closed++;
				say("flood %u closed %llu", i, (unsigned long long)(now_ms() - t0));
				continue;
			}
			j[i].have += (unsigned)r;
			if (j[i].have < N4_MSG_SIZE)
				continue;
			j[i].have = 0;
			struct n4_msg m;
			if (n4_wire_decode(j[i].in, N4_MSG_SIZE, 0, &m))
				continue;
			if (m.cmd == N4_CMD_READY && j[i].state == 0) {
				uint8_t pid[N4_PAYLOAD_SIZE] = { 'f', 'l', (uint8_t)(i >> 8),
								 (uint8_t)i };
				struct n4_msg jm;
				n4_msg_init(&jm, N4_CMD_ROOM, N4_ROOM_JOINER, pid);
				(void)send_msgs(j[i].fd, &jm, 1);
				j[i].state = 1;
				ready++;
			} else if (m.cmd == N4_CMD_ROOM && m.ext == N4_ROOM_REFUSED) {
				j[i].state = 2;
				j[i].reason = m.payload[0];
				refused[m.payload[0] & 3]++;
				say("flood %u refused %u %llu", i, m.payload[0],
				    (unsigned long long)(now_ms() - t0));
			}
		}
	}
	unsigned open = 0;
	for (unsigned i = 0; i < n; i++)
		open += j[i].state == 1;
	say("flood: ready=%u refused1=%u refused2=%u refused3=%u closed=%u open=%u span=%llu",
	    ready, refused[1], refused[2], refused[3], closed, open,
	    (unsigned long long)(last_start - t0));
	for (unsigned i = 0; i < n; i++)
		if (j[i].fd >= 0)
			close(j[i].fd);
	free(j);
	free(p);
	return 0;
}

/* ---- libhost ---- */

static int libhost_main(const char *ident, const char *keyfile, unsigned max, unsigned secs)
{
	struct n4_client_cfg cfg;
	char why[512] = "";

	n4_client_cfg_init(&cfg);
	cfg.server_host = "127.0.0.1";
	cfg.server_port = ntohs(srv.sin_port);
	snprintf(cfg.ident, sizeof(cfg.ident), "%s", ident);
	cfg.timeout_ms = 5000;
	if (keyfile) {
		if (n4_key_load(keyfile, cfg.key, why, sizeof(why))) {
			say("libhost rc=-1 why=%s", why);
			return 1;
		}
		cfg.have_key = true;
	}
	int rc = n4_room_host(&cfg, max, why, sizeof(why));
	say("libhost rc=%d why=%s", rc >= 0 ? 0 : rc, rc >= 0 ? "" : why);
	if (rc >= 0) {
		uint64_t end = now_ms() + (uint64_t)secs * 1000u;
		struct n4_room_rx rx;
		memset(&rx, 0, sizeof(rx));
		while (now_ms() < end) {
			struct pollfd p = { .fd = rc, .events = POLLIN };
			if (poll(&p, 1, 100) <= 0)
				continue;
			struct n4_join jn;
			int r;
			while ((r = n4_room_poll(rc, &rx, &jn)) == 1) {
				char t_hex[13], p_hex[13];
				hex(jn.ticket, sizeof(jn.ticket), t_hex);
				hex(jn.peer_id, sizeof(jn.peer_id), p_hex);
				say("JOIN %s %s", t_hex, p_hex);
			}
			if (r < 0) {
				say("CLOSED");
				break;
			}
		}
		close(rc);
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: roomctl PORT host|join|answer|flood|libhost ... (tests/helpers/roomctl.c)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 4)
		usage();
	srv = (struct sockaddr_in){ .sin_family = AF_INET,
				    .sin_port = htons((uint16_t)atoi(argv[1])),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const char *mode = argv[2], *ident = argv[3];
	int keyb = -1, opt;
	unsigned max = 32, secs = 0, n = 0;
	const char *from = NULL, *keyfile = NULL;
	int answer = 0;
	bool no_exchange = false;
	uint8_t pid[N4_PAYLOAD_SIZE] = { 'r', 'o', 'o', 'm', 'c', 'l' };

	if (strcmp(mode, "flood") == 0) {
		if (argc < 5)
			usage();
		n = (unsigned)atoi(argv[4]);
		optind = 5;
	} else {
		optind = 4;
	}
	unsigned interval = 0;
	while ((opt = getopt(argc, argv, "k:K:m:aAs:f:p:t:ni:")) != -1) {
		switch (opt) {
		case 'k':
			keyb = (int)strtol(optarg, NULL, 0) & 0xff;
			break;
		case 'K':
			keyfile = optarg;
			break;
		case 'm':
			max = (unsigned)atoi(optarg);
			break;
		case 'a':
		case 'A':
			answer = opt;
			break;
		case 's':
		case 't':
			secs = (unsigned)atoi(optarg);
			break;
		case 'f':
			from = optarg;
			break;
		case 'p':
			if (unhex(optarg, pid, sizeof(pid)))
				usage();
			break;
		case 'n':
			no_exchange = true;
			break;
		case 'i':
			interval = (unsigned)atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (strcmp(mode, "host") == 0) {
		struct host_opts o = { .ident = ident,
				       .from = from,
				       .keyb = keyb,
				       .max = max,
				       .secs = secs ? secs : 60,
				       .answer = answer };
		return host_main(&o);
	}
	if (strcmp(mode, "join") == 0)
		return join_main(ident, keyb, pid, from, secs ? secs : 10, no_exchange);
	if (strcmp(mode, "flood") == 0)
		return flood_main(ident, n, secs ? secs : 3, interval);
	if (strcmp(mode, "answer") == 0) {
		uint8_t ticket[N4_ROOM_ID_SIZE];
		if (argc <= optind || unhex(argv[optind], ticket, sizeof(ticket)))
			usage();
		return answer_main(ident, keyb, ticket, from);
	}
	if (strcmp(mode, "libhost") == 0)
		return libhost_main(ident, keyfile, max, secs);
	usage();
	return 2;
}

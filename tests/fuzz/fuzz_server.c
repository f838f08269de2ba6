/* fuzz_server.c - libFuzzer target for the server's per-connection state machine
 * (lib/server_test.h): the input is a script of events - clients connecting from a
 * few addresses (IPv4 and IPv6), bytes they send (fragments of valid messages or
 * junk), clients closing or resetting, UDP datagrams from known or foreign
 * addresses, deadlines firing, a graceful shutdown - run against a real server whose
 * "TCP connections" are socketpairs.  After every event the server's bookkeeping
 * must agree with itself; at the end everything must be freed (LeakSanitizer).
 * LOCAL messages carry their sender's TCP address in a tagged local address
 * (172.31.X.Y, X its public IP's last byte), so that every PEERLOCAL a client
 * reads can be checked: it never crosses between two public IPs.  Keyed clients
 * present one of two long ids: no PEERINFO between different ones (server_test.c).
 * FLOWs (raw bytes on kept connections) reach the clients only well-formed and in
 * the server's form (reserved byte 0x01). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "n4.h"
#include "server_test.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CONNS 8

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static void make_addr(uint8_t sel, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (sel & 0x80) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr.s6_addr[0] = 0x20;
		a->sin6_addr.s6_addr[1] = 0x01;
		a->sin6_addr.s6_addr[15] = (uint8_t)(sel & 3);
		if (sel & 0x40) { /* v4-mapped */
			memset(a->sin6_addr.s6_addr, 0, 10);
			a->sin6_addr.s6_addr[10] = a->sin6_addr.s6_addr[11] = 0xff;
			a->sin6_addr.s6_addr[12] = 10;
		}
		a->sin6_port = htons(port);
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(0x0a000000u | (sel & 3));
		a->sin_port = htons(port);
		*len = sizeof(*a);
	}
}

/* What a client reads, split into messages (the server sends whole ones);
 * a tagged PEERLOCAL must name the reader's own public IP. */
struct reader {
	uint8_t part[N4_MSG_SIZE];
	size_t have;
	int pub;	 /* last byte of the public IP; -1: native IPv6 (unknown) */
	bool have_token; /* READY's token, so that EXCHANGEs can carry it */
	uint8_t token[N4_TOKEN_SIZE];
};

static void drain(int fd, struct reader *r)
{
	uint8_t buf[256];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			r->part[r->have++] = buf[i];
			if (r->have < N4_MSG_SIZE)
				continue;
			r->have = 0;
			/* The server passes on only FLOWs it checked, in its own form. */
			if (r->part[0] == N4_CMD_FLOW &&
			    (r->part[1] != N4_FLOW_FORWARDED || !(r->part[2] | r->part[3]) ||
			     !(r->part[4] | r->part[5])))
				abort();
			if (r->part[0] == N4_CMD_READY && (r->part[1] & N4_EXT_TOKEN)) {
				memcpy(r->token, r->part + 2, N4_TOKEN_SIZE);
				r->have_token = true;
			}
			/* A native IPv6 client (pub -1, tag 9) has no public IPv4 of
			 * its own here: its EXCHANGE may come from any, so only two
			 * IPv4 clients can be checked. */
			if (r->part[0] == N4_CMD_PEERLOCAL && r->part[2] == 172 &&
			    r->part[3] == 31 && r->pub >= 0 && r->part[4] != 9 &&
			    r->part[4] != r->pub)
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		n4_log_set_level(N4_LOG_QUIET);
		init = true;
	}
	struct n4_server_cfg cfg;
	n4_server_cfg_init(&cfg);
	cfg.bind_host = "127.0.0.1";
	cfg.family = AF_INET;
	cfg.port = 0;
	cfg.max_clients = 6;
	cfg.max_per_ip = 3;
	cfg.conn_rate_per_ip = 0;
	cfg.log_rate = 0;
	struct input in = { data, size };
	if (take(&in) & 1)
		cfg.only_ident = "n4n4n4";
	n4_server *s = n4_server_new(&cfg);
	if (!s)
		return 0;
	int peer[MAX_CONNS];
	struct reader rd[MAX_CONNS];
	memset(rd, 0, sizeof(rd));
	for (int i = 0; i < MAX_CONNS; i++)
		peer[i] = -1;

	while (in.left) {
		uint8_t op = take(&in), arg = take(&in);
		int k = arg % MAX_CONNS;
		switch (op % 10) {
		case 0: { /* connect */
			if (peer[k] >= 0)
				break;
			int sv[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
				break;
			struct sockaddr_storage ss;
			socklen_t len;
			uint8_t sel = take(&in);
			make_addr(sel, (uint16_t)(40000 + k), &ss, &len);
			if (n4_server_test_adopt(s, sv[0], (struct sockaddr *)&ss, len) == 0) {
				peer[k] = sv[1];
				rd[k] = (struct reader){
					.pub = (sel & 0xc0) == 0x80 ? -1 : (sel & 3),
				};
			} else {
				close(sv[1]);
			}
			break;
		}
		case 1: { /* a HELLO, maybe cut short */
			if (peer[k] < 0)
				break;
			uint8_t m[N4_MSG_SIZE] = { N4_CMD_HELLO, take(&in), 'n', '4',
						   'n',		 '4',	    'n', '4' };
			if (take(&in) & 1)
				m[7] = (uint8_t)('0' + (arg >> 4));
			if (arg & 8) /* or a STAY registration (N4_EXT_STAY) */
				m[0] = N4_CMD_STAY;
			size_t n = 1 + take(&in) % N4_MSG_SIZE;
			if (send(peer[k], m, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				break;
			break;
		}
		case 2: { /* raw bytes */
			if (peer[k] < 0)
				break;
			uint8_t n = take(&in) % 16;
			uint8_t buf[16];
			for (uint8_t i = 0; i < n; i++) {
				buf[i] = take(&in);
				if (buf[i] == 172) /* the LOCAL tag is op 8's alone */
					buf[i] = 171;
			}
			send(peer[k], buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			break;
		}
		case 3: /* client closes */
			if (peer[k] >= 0) {
				close(peer[k]);
				peer[k] = -1;
			}
			break;
		case 4: { /* EXCHANGE from the client's address or a foreign one */
			struct sockaddr_storage ss;
			socklen_t len;
			make_addr(take(&in), (uint16_t)(30000 + (arg >> 3)), &ss, &len);
			uint8_t m[N4_MSG_SIZE] = {
				N4_CMD_EXCHANGE, take(&in), 'n', '4', 'n', '4', 'n', '4'
			};
			/* now and then a numbered discovery probe (N4_EXT_SEQ) */
			bool probe = (arg & 7u) == 7u;
			if (probe)
				m[0] = N4_CMD_PROBE;
			uint8_t t = take(&in);
			/* a token one client read in its READY, or one guessed from nothing */
			if ((probe || (m[1] & N4_EXT_TOKEN)) && (t & 0x80) &&
			    rd[t % MAX_CONNS].have_token)
				memcpy(m + 2, rd[t % MAX_CONNS].token, N4_TOKEN_SIZE);
			else if (probe || (m[1] & N4_EXT_TOKEN))
				for (int i = 2; i < 8; i++)
					m[i] = take(&in);
			n4_server_test_udp(s, m, 8 - (take(&in) % 3 == 0 ? take(&in) % 8 : 0),
					   (struct sockaddr *)&ss, len);
			break;
		}
		case 5: /* time passes: every deadline fires */
			n4_server_test_expire(s);
			break;
		case 6: /* the clients read what they got */
			for (int i = 0; i < MAX_CONNS; i++)
				if (peer[i] >= 0)
					drain(peer[i], &rd[i]);
			break;
		case 7:
			n4_server_test_drain(s);
			break;
		case 8: { /* LOCAL (N4_EXT_LOCAL), tagged with the sender's public IP */
			if (peer[k] < 0)
				break;
			uint8_t f = take(&in);
			uint8_t m[N4_MSG_SIZE] = { N4_CMD_LOCAL,
						   (f & 0x80) ? take(&in) : N4_LOCAL_LAST,
						   172,
						   31,
						   (uint8_t)(rd[k].pub < 0 ? 9 : rd[k].pub),
						   (uint8_t)(k + 1),
						   take(&in),
						   take(&in) };
			if (f & 0x40) /* "no address" */
				memset(m + 2, 0, N4_PAYLOAD_SIZE);
			send(peer[k], m, N4_MSG_SIZE, MSG_NOSIGNAL | MSG_DONTWAIT);
			break;
		}
		case 9: { /* KEYID: a long id (one of two) or a nonce, in parts */
			if (peer[k] < 0)
				break;
			uint8_t f = take(&in), m[3 * N4_MSG_SIZE];
			uint8_t first = (f & 0x80) ? 3 : 0; /* the nonce after READY */
			for (uint8_t i = 0; i < 3; i++) {
				uint8_t *o = m + i * N4_MSG_SIZE;
				o[0] = N4_CMD_KEYID;
				o[1] = (uint8_t)(first + i);
				memset(o + 2, (f & 1) ? 0x22 : 0x11, N4_PAYLOAD_SIZE);
			}
			size_t n = (f & 0x40) ? 1 + take(&in) % sizeof(m) : sizeof(m);
			send(peer[k], m, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			break;
		}
		default:
			break;
		}
		n4_server_test_poll(s);
		if (n4_server_test_check(s))
			abort();
	}
	char line[640];
	n4_server_status(s, line, sizeof(line));
	n4_server_free(s);
	for (int i = 0; i < MAX_CONNS; i++)
		if (peer[i] >= 0)
			close(peer[i]);
	return 0;
}

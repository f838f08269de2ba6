/* server.c - the rendezvous server: one epoll loop, non-blocking sockets, TCP and
 * UDP on one port (IPv6 and IPv4), many pairs at once.  Pairing decisions live in
 * pairing.c and per-source limits in ipcap.c; this file moves bytes, admits and
 * refuses connections, enforces a deadline at every step and times the PEERINFOs.
 *
 * Every connection is in exactly one state (pairing.h) with exactly one deadline
 * armed, so nothing a client does or fails to do can hold resources for longer
 * than the sum of the configured timeouts. */
#include "n4.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "discover.h"
#include "ipcap.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "pairing.h"
#include "relay.h"
#include "server_test.h"
#include "wire.h"

/* PEERINFOs to one pair are timed to arrive together (see schedule_peerinfo);
 * never hold one back longer than this. */
#define MAX_SYNC_DELAY_MS 500
/* Accepts and datagrams handled per readiness event, so that a flood on one
 * socket cannot starve the other (epoll is level-triggered: the rest waits one
 * loop iteration). */
#define ACCEPT_BATCH 256
#define UDP_BATCH 1024
/* Descriptors kept for the listeners, the epoll fd, stdio and logs. */
#define FD_HEADROOM 64
/* When nothing caps it, aim for this many descriptors (root may raise the hard
 * limit up to fs.nr_open). */
#define FD_TARGET 65536

enum reject {
	REJ_BAD_HELLO,
	REJ_IDENT,
	REJ_HELLO_TIMEOUT,
	REJ_WAIT_TIMEOUT,
	REJ_EXCH_TIMEOUT,
	REJ_SEND_TIMEOUT,
	REJ_PROTOCOL,
	REJ_BAD_UDP,
	REJ_SPOOFED_UDP,
	REJ_UNKNOWN_UDP,
	REJ_IPV6_UDP,
	REJ_FULL,
	REJ_PER_IP,
	REJ_RATE,
	REJ_PARTNER_GONE,
	REJ_SHUTDOWN,
	REJ_COUNT
};

static const char *const reject_names[REJ_COUNT] = {
	"bad_hello", "ident",	"hello_timeout", "wait_timeout", "exchange_timeout", "send_timeout",
	"protocol",  "bad_udp", "spoofed_udp",	 "unknown_udp",	 "ipv6_udp",	     "full",
	"per_ip",    "rate",	"partner_gone",	 "shutdown",
};

struct conn {
	struct n4_pclient pc;
	struct n4_io io;
	struct n4_server *srv;
	union n4_sa tcp_addr;
	struct n4_ipkey src;
	uint8_t in[N4_MSG_SIZE];
	/* READY, TUNE, PLAN (or RELAY + RELAY_TOKEN), 4 SELF, the PEERLOCALs and
	 * PEERINFO at most */
	uint8_t out[(8 + N4_LOCAL_MAX) * N4_MSG_SIZE];
	uint8_t in_len, out_len;
	/* N4_EXT_KEY: KEYID messages received (long id, then the round's nonce),
	 * and the partner's nonce to pass on in SELF. */
	uint8_t keyid_parts;
	uint8_t nonce[3 * N4_PAYLOAD_SIZE], peer_nonce[3 * N4_PAYLOAD_SIZE];
	bool peer_nonce_ok;
	bool close_after_flush, closed;
	uint8_t peer_flags;
	uint64_t ready_ms, exch_ms;
	struct sockaddr_in peer_udp; /* what PEERINFO will carry */
	struct n4_timer deadline, peerinfo_timer;
	struct conn *prev, *next; /* all live connections, or the graveyard */
	struct disc_state *disc;  /* N4_EXT_PROBE clients, from pairing on */
	/* N4_EXT_RELAY: the client's lost rounds (its RELAY message), and the
	 * relay port granted to it when its pair is relayed. */
	uint8_t lost_rounds;
	bool relay_heard, relayed;
	struct n4_relay_grant grant;
	struct lan_state *lan;	  /* N4_EXT_LOCAL clients, from pairing on */
};

/* Same-LAN state (N4_EXT_LOCAL), allocated only for paired clients that
 * negotiated it: the local addresses the client announced after READY, and
 * the partner's that precede its PEERINFO (only when both share a public IP). */
struct lan_state {
	struct sockaddr_in own[N4_LOCAL_MAX], peer[N4_LOCAL_MAX];
	uint8_t nown, npeer, nmsgs;
	bool done; /* the client's last LOCAL arrived */
};

/* NAT discovery state, allocated only for paired clients that asked for it, so
 * that waiting clients stay small. */
struct disc_state {
	struct n4_discovery d;
	struct n4_timer timer;
	struct conn *owner;
};

struct n4_server {
	struct n4_server_cfg cfg;
	char only_ident[N4_IDENT_MAX + 1];
	uint8_t only_ident_wire[N4_PAYLOAD_SIZE];
	n4_loop *loop;
	n4_pairing *pairing;
	n4_ipcap *ipcap;
	struct n4_io tcp_io, udp_io;
	struct n4_io probe_io; /* port + 1: tells endpoint-independent NATs apart; -1: none */
	int spare_fd;	       /* given up to accept-and-close when out of descriptors */
	uint16_t port;
	int family;
	unsigned nclients, max_clients;
	unsigned long long fd_limit, fd_limit_was;
	unsigned long pairs_done, accepted, client_closed;
	unsigned long rejects[REJ_COUNT];
	unsigned long plans[N4_STATS_PLANS]; /* per side, by enum n4_plan_kind */
	struct conn *live;
	/* Closed connections are freed after the loop iteration, so that a chain of
	 * calls (send -> error -> close partner) never touches freed memory. */
	struct conn *graveyard;
	bool draining;
	uint64_t next_sweep_ms;
	n4_relay *relay; /* NULL: --no-relay, or no IPv4 to relay on */
	uint64_t rx_ms; /* kernel receive time of the datagram being handled */
};

void n4_server_cfg_init(struct n4_server_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->port = N4_DEFAULT_PORT;
	cfg->hello_timeout_ms = 5000;
	cfg->wait_timeout_ms = 60000;
	cfg->exchange_timeout_ms = 10000;
	cfg->drain_timeout_ms = 5000;
	cfg->max_per_ip = 64;
	cfg->conn_rate_per_ip = 20;
	cfg->conn_burst_per_ip = 64;
	cfg->log_rate = 100;
	cfg->port_budget = 512;
	cfg->relay_after = 2;
	cfg->relay_max = 1000;
	cfg->relay_per_ip = 16;
	/* Voice (Opus with headers, 50 packets/s) needs about 100 kbit/s, game
	 * state typically 50-500 kbit/s: 1 Mbit/s each way covers both with room,
	 * while 1000 pairs stay within a 1 Gbit/s uplink.  README "Relay". */
	cfg->relay_rate_kbit = 1000;
	cfg->relay_burst_kb = 64;
	cfg->relay_idle_s = 60;
}

static const char *conn_str(const struct conn *c, char *buf, size_t len)
{
	return n4_sa_str(&c->tcp_addr, buf, len);
}

/* Refused and broken connections are reset rather than closed: no TIME_WAIT
 * left behind for each of a flood's connections. */
static void close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void conn_close(struct conn *c, bool close_partner);
static void send_ready(struct conn *c);

static void conn_flush(struct conn *c)
{
	while (c->out_len > 0) {
		ssize_t n = send(c->io.fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			n4_loop_mod(c->srv->loop, &c->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
			return;
		}
		if (n <= 0) {
			char b[64];
			n4_info("%s: send failed: %s", conn_str(c, b, sizeof(b)),
				n < 0 ? strerror(errno) : "nothing sent");
			conn_close(c, true);
			return;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len = (uint8_t)(c->out_len - n);
	}
	if (c->close_after_flush)
		conn_close(c, false);
}

/* Append without sending yet: the next conn_send takes it along, in one
 * segment with what follows (send_peerinfo). */
static void conn_queue(struct conn *c, const struct n4_msg *m)
{
	if (c->closed)
		return;
	if ((size_t)c->out_len + N4_MSG_SIZE > sizeof(c->out)) {
		conn_close(c, true); /* cannot happen with our message flow */
		return;
	}
	n4_wire_encode(m, c->out + c->out_len);
	c->out_len = (uint8_t)(c->out_len + N4_MSG_SIZE);
}

static void conn_send(struct conn *c, const struct n4_msg *m)
{
	if (c->closed)
		return;
	if ((size_t)c->out_len + N4_MSG_SIZE > sizeof(c->out)) {
		conn_close(c, true); /* cannot happen with our message flow */
		return;
	}
	n4_wire_encode(m, c->out + c->out_len);
	c->out_len = (uint8_t)(c->out_len + N4_MSG_SIZE);
	conn_flush(c);
}

static void conn_close(struct conn *c, bool close_partner)
{
	struct n4_server *s = c->srv;
	struct conn *partner = c->pc.partner ? c->pc.partner->owner : NULL;

	if (c->closed)
		return;
	c->closed = true;
	n4_timer_cancel(s->loop, &c->deadline);
	n4_timer_cancel(s->loop, &c->peerinfo_timer);
	if (c->disc) {
		n4_timer_cancel(s->loop, &c->disc->timer);
		free(c->disc);
		c->disc = NULL;
	}
	free(c->lan);
	c->lan = NULL;
	struct n4_pclient *released = n4_pairing_remove(s->pairing, &c->pc);
	n4_loop_del(s->loop, &c->io);
	if (c->out_len > 0 || c->pc.state != N4_P_DONE)
		close_reset(c->io.fd); /* nothing more it can use: do not linger */
	else
		close(c->io.fd);
	n4_ipcap_release(s->ipcap, &c->src, n4_now_ms());
	s->nclients--;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = s->graveyard;
	s->graveyard = c;
	/* A partner still waiting for its PEERINFO can never get it now: close it
	 * so that its client starts a new round at once instead of timing out. */
	if (close_partner && partner && partner->pc.state == N4_P_PAIRED) {
		char b[64];
		s->rejects[REJ_PARTNER_GONE]++;
		n4_info("%s: partner left before the exchange completed",
			conn_str(partner, b, sizeof(b)));
		conn_close(partner, false);
	}
	if (released)
		send_ready(released->owner);
}

static void deadline_fired(n4_loop *loop, struct n4_timer *t)
{
	struct conn *c = t->arg;
	struct n4_server *s = c->srv;
	char b[64];
	(void)loop;

	switch (c->pc.state) {
	case N4_P_NEW:
		s->rejects[REJ_HELLO_TIMEOUT]++;
		n4_info("%s: no HELLO within %u ms (%u bytes received), dropped",
			conn_str(c, b, sizeof(b)), s->cfg.hello_timeout_ms, c->in_len);
		break;
	case N4_P_WAITING:
		s->rejects[REJ_WAIT_TIMEOUT]++;
		n4_info("%s: no partner within %u ms, dropped", conn_str(c, b, sizeof(b)),
			s->cfg.wait_timeout_ms);
		break;
	case N4_P_PAIRED:
		s->rejects[REJ_EXCH_TIMEOUT]++;
		n4_info("%s: no EXCHANGE from the pair within %u ms, dropped",
			conn_str(c, b, sizeof(b)), s->cfg.exchange_timeout_ms);
		break;
	default:
		s->rejects[REJ_SEND_TIMEOUT]++;
		n4_info("%s: PEERINFO could not be delivered, dropped", conn_str(c, b, sizeof(b)));
		break;
	}
	conn_close(c, true);
}

static void arm_deadline(struct conn *c, unsigned ms)
{
	if (c->closed)
		return;
	if (n4_timer_arm(c->srv->loop, &c->deadline, n4_now_ms() + ms, deadline_fired, c))
		conn_close(c, true);
}

static void send_ready(struct conn *c)
{
	struct n4_msg m;

	if (c->pc.held) {
		/* READY follows when the legacy client ahead of it is attributed
		 * (pairing.h); the exchange deadline covers the wait. */
		arm_deadline(c, c->srv->cfg.exchange_timeout_ms);
		return;
	}

	if (c->pc.ext & N4_EXT_PROBE) {
		c->disc = calloc(1, sizeof(*c->disc));
		if (c->disc) {
			c->disc->owner = c;
			c->disc->d.ordered = c->pc.ext & N4_EXT_SEQ;
		} else
			c->pc.ext &= (uint8_t)~N4_EXT_PROBE; /* plan without discovery */
	}
	if (c->pc.ext & N4_EXT_LOCAL) {
		c->lan = calloc(1, sizeof(*c->lan));
		if (!c->lan)
			c->pc.ext &= (uint8_t)~N4_EXT_LOCAL; /* the public path only */
	}
	c->in_len = 0; /* the HELLO is handled: in[] now takes LOCAL messages */
	n4_msg_init(&m, N4_CMD_READY, c->pc.ext, (c->pc.ext & N4_EXT_TOKEN) ? c->pc.token : NULL);
	c->ready_ms = n4_now_ms();
	arm_deadline(c, c->srv->cfg.exchange_timeout_ms);
	conn_send(c, &m);
}

static void pair_client(struct conn *c);

static void handle_hello(struct conn *c)
{
	struct n4_server *s = c->srv;
	struct n4_msg m;
	char ident[N4_PAYLOAD_SIZE + 1], b[64];

	if (n4_wire_decode(c->in, N4_MSG_SIZE, N4_CMD_HELLO, &m) ||
	    n4_ident_decode(m.payload, ident)) {
		s->rejects[REJ_BAD_HELLO]++;
		n4_info("%s: malformed HELLO (%02x %02x ...), closed", conn_str(c, b, sizeof(b)),
			c->in[0], c->in[1]);
		conn_close(c, false);
		return;
	}
	if (s->only_ident[0] && memcmp(m.payload, s->only_ident_wire, N4_PAYLOAD_SIZE) != 0) {
		s->rejects[REJ_IDENT]++;
		n4_info("%s: identifier '%s' is not '%s', closed", conn_str(c, b, sizeof(b)), ident,
			s->only_ident);
		conn_close(c, false);
		return;
	}
	memcpy(c->pc.ident, m.payload, N4_PAYLOAD_SIZE);
	c->pc.ext = m.ext & N4_EXT_ALL;
	/* Discovery rides on the token and needs the second UDP port. */
	if ((m.ext & N4_EXT_PROBE) && (c->pc.ext & N4_EXT_TOKEN) && s->probe_io.fd >= 0)
		c->pc.ext |= N4_EXT_PROBE;
	/* The relay's registration rides on the token's pairing too.  Keyed
	 * pairs are never relayed: only an authenticated PUNCH proves their peer. */
	if ((m.ext & N4_EXT_RELAY) && !(m.ext & N4_EXT_KEY) && (c->pc.ext & N4_EXT_TOKEN) &&
	    s->relay)
		c->pc.ext |= N4_EXT_RELAY;
	if ((m.ext & N4_EXT_SEQ) && (c->pc.ext & N4_EXT_PROBE))
		c->pc.ext |= N4_EXT_SEQ; /* numbered probes: jitter and loss (discover.c) */
	if ((m.ext & N4_EXT_LOCAL) && (c->pc.ext & N4_EXT_TOKEN))
		c->pc.ext |= N4_EXT_LOCAL;
	n4_info(" => Hello from %s ident '%s'%s", conn_str(c, b, sizeof(b)), ident,
		c->pc.ext ? " (n4 extensions)" : "");
	/* A keyed client pairs on its long id, which comes next (within the
	 * HELLO deadline): ask for it. */
	if ((m.ext & N4_EXT_KEY) && (c->pc.ext & N4_EXT_TOKEN)) {
		struct n4_msg ask;
		c->pc.ext |= N4_EXT_KEY;
		c->in_len = 0;
		n4_msg_init(&ask, N4_CMD_KEYID, N4_EXT_KEY, NULL);
		conn_send(c, &ask);
		return;
	}
	pair_client(c);
}

/* HELLO (and for keyed clients the long id) complete: pair or wait. */
static void pair_client(struct conn *c)
{
	struct n4_server *s = c->srv;
	char b[64];

	conn_str(c, b, sizeof(b));
	struct n4_pclient *w = n4_pairing_hello(s->pairing, &c->pc);
	if (!w) {
		arm_deadline(c, s->cfg.wait_timeout_ms);
		return;
	}
	struct conn *partner = w->owner;
	char b2[64];
	n4_info(" <= Ready to %s and %s", conn_str(partner, b2, sizeof(b2)), b);
	send_ready(partner);
	send_ready(c); /* if partner's send failed, c's READY fails too: c closed */
}

/* ---- relay hooks (the relay itself is relay.c) ---- */

/* A client granted N4_EXT_RELAY sends one RELAY message right after READY. */
static bool n4_srv_relay_wants_ask(const struct conn *c)
{
	return (c->pc.ext & N4_EXT_RELAY) && c->pc.state == N4_P_PAIRED && !c->relay_heard;
}

static void maybe_schedule(struct n4_server *s, struct conn *c);

static void handle_relay_ask(struct conn *c)
{
	struct n4_msg m;
	char b[64];

	if (n4_wire_decode(c->in, N4_MSG_SIZE, N4_CMD_RELAY, &m)) {
		c->srv->rejects[REJ_PROTOCOL]++;
		n4_info("%s: malformed RELAY message, closed", conn_str(c, b, sizeof(b)));
		conn_close(c, true);
		return;
	}
	c->relay_heard = true;
	c->lost_rounds = m.ext;
	maybe_schedule(c->srv, c);
}

/* Relay the pair when both sides accept it and punching is hopeless (the plan
 * says so) or has lost --relay-after rounds already.  False: punch. */
static bool relay_pair(struct n4_server *s, struct conn *a, struct conn *b)
{
	if (!s->relay || !(a->pc.ext & N4_EXT_RELAY) || !(b->pc.ext & N4_EXT_RELAY))
		return false;
	unsigned lost = a->lost_rounds > b->lost_rounds ? a->lost_rounds : b->lost_rounds;
	bool hopeless = (a->disc && a->disc->d.plan.kind == N4_PLAN_IMPOSSIBLE) ||
			(b->disc && b->disc->d.plan.kind == N4_PLAN_IMPOSSIBLE);
	/* Two clients behind one NAT that swapped local addresses (PEERLOCAL)
	 * try their LAN path first: only lost rounds send them to the relay. */
	bool lan = (a->lan && a->lan->npeer) || (b->lan && b->lan->npeer);
	if ((!hopeless || lan) && lost < s->cfg.relay_after)
		return false;
	struct n4_relay_side_in in[2] = { { .src = a->src, .udp_ip = a->pc.udp.sin_addr.s_addr },
					  { .src = b->src, .udp_ip = b->pc.udp.sin_addr.s_addr } };
	char b1[64], b2[64];
	int err = n4_relay_alloc(s->relay, &in[0], &in[1], &a->grant, &b->grant);
	if (err) {
		n4_warn("%s and %s: no relay (%s), punching instead", conn_str(a, b1, sizeof(b1)),
			conn_str(b, b2, sizeof(b2)), strerror(-err));
		return false;
	}
	n4_info(" <= Relay ports %u/%u for %s and %s (%s)", a->grant.port, b->grant.port,
		conn_str(a, b1, sizeof(b1)), conn_str(b, b2, sizeof(b2)),
		hopeless ? "unpunchable" : "punching lost rounds already");
	a->relayed = b->relayed = true;
	return true;
}

/* RELAY (port + token[0..3]) and RELAY_TOKEN (token[4..9]), before PEERINFO. */
static void send_relay(struct conn *c)
{
	struct n4_msg m;

	n4_msg_init(&m, N4_CMD_RELAY, 0, NULL);
	m.payload[0] = (uint8_t)(c->grant.port >> 8);
	m.payload[1] = (uint8_t)c->grant.port;
	memcpy(m.payload + 2, c->grant.token, 4);
	conn_send(c, &m);
	n4_msg_init(&m, N4_CMD_RELAY_TOKEN, 0, c->grant.token + 4);
	conn_send(c, &m);
}

/* A LOCAL message (N4_EXT_LOCAL, between READY and PEERINFO): one local
 * address of the client, at most N4_LOCAL_MAX messages, the last flagged. */
static void handle_local(struct conn *c)
{
	struct n4_server *s = c->srv;
	struct lan_state *l = c->lan;
	struct n4_msg m;
	struct sockaddr_in a;
	int r = -EPROTO;
	char b[64], b2[32];

	if (n4_wire_decode(c->in, N4_MSG_SIZE, N4_CMD_LOCAL, &m) == 0)
		r = n4_local_decode(&m, &a);
	l->nmsgs++;
	if (r < 0 || (l->nmsgs == N4_LOCAL_MAX && !(m.ext & N4_LOCAL_LAST))) {
		s->rejects[REJ_PROTOCOL]++;
		n4_info("%s: malformed LOCAL (%02x %02x ...), closed", conn_str(c, b, sizeof(b)),
			c->in[0], c->in[1]);
		conn_close(c, true);
		return;
	}
	if (r == 1) {
		l->own[l->nown++] = a;
		n4_debug("%s: local address %s", conn_str(c, b, sizeof(b)),
			 n4_addr_str(&a, b2, sizeof(b2)));
	}
	if (m.ext & N4_LOCAL_LAST) {
		l->done = true;
		maybe_schedule(s, c);
	}
}

/* One of the N4_LONGID_PARTS KEYID messages after a keyed HELLO, in order. */
static void handle_keyid(struct conn *c)
{
	struct n4_server *s = c->srv;
	struct n4_msg m;
	char b[64];

	c->in_len = 0;
	if (n4_wire_decode(c->in, N4_MSG_SIZE, N4_CMD_KEYID, &m) || m.ext != c->keyid_parts ||
	    (c->keyid_parts >= N4_LONGID_PARTS) != (c->pc.state == N4_P_PAIRED)) {
		s->rejects[REJ_BAD_HELLO]++;
		n4_info("%s: malformed KEYID (%02x %02x ...), closed", conn_str(c, b, sizeof(b)),
			c->in[0], c->in[1]);
		conn_close(c, false);
		return;
	}
	if (c->keyid_parts >= N4_LONGID_PARTS) {
		/* The round's nonce, passed on to the partner with its PEERINFO. */
		memcpy(c->nonce + N4_PAYLOAD_SIZE * (c->keyid_parts - N4_LONGID_PARTS), m.payload,
		       N4_PAYLOAD_SIZE);
		c->keyid_parts++;
		return;
	}
	memcpy(c->pc.long_id + N4_PAYLOAD_SIZE * c->keyid_parts, m.payload, N4_PAYLOAD_SIZE);
	if (++c->keyid_parts < N4_LONGID_PARTS)
		return;
	c->pc.keyed = true;
	n4_debug("%s: keyed pairing id received", conn_str(c, b, sizeof(b)));
	pair_client(c);
}

static void conn_readable(struct conn *c)
{
	for (;;) {
		uint8_t extra[64];
		/* After READY: a keyed client's nonce (three KEYID), with
		 * N4_EXT_LOCAL its LOCAL messages, with N4_EXT_RELAY its RELAY. */
		bool want_keyid = (c->pc.ext & N4_EXT_KEY) && c->pc.state == N4_P_PAIRED &&
				  c->keyid_parts < 2 * N4_LONGID_PARTS;
		bool want_local = c->pc.state == N4_P_PAIRED && c->lan && !c->lan->done;
		bool want_ask = n4_srv_relay_wants_ask(c);
		bool want_hello =
			c->pc.state == N4_P_NEW || want_keyid || want_local || want_ask;
		uint8_t *dst = want_hello ? c->in + c->in_len : extra;
		size_t want = want_hello ? (size_t)(N4_MSG_SIZE - c->in_len) : sizeof(extra);
		ssize_t n = recv(c->io.fd, dst, want, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		char b[64];
		if (n <= 0) {
			/* EOF or reset.  A client that half-closes after HELLO is
			 * treated as gone: the original never does, and a dead
			 * client must not be paired with a live one. */
			if (c->pc.state != N4_P_DONE) {
				c->srv->client_closed++;
				n4_info("%s: connection closed by client%s",
					conn_str(c, b, sizeof(b)), n < 0 ? " (reset)" : "");
			}
			conn_close(c, true);
			return;
		}
		if (!want_hello) {
			/* Nothing else may follow a HELLO: the protocol has no other
			 * client-to-server TCP message. */
			if (c->pc.state == N4_P_DONE)
				return; /* closing anyway once PEERINFO is out */
			c->srv->rejects[REJ_PROTOCOL]++;
			n4_info("%s: unexpected bytes after HELLO, closed",
				conn_str(c, b, sizeof(b)));
			conn_close(c, true);
			return;
		}
		c->in_len = (uint8_t)(c->in_len + n);
		if (c->in_len == N4_MSG_SIZE) {
			/* Several may follow READY: told apart by their command. */
			if (want_ask &&
			    (c->in[0] == N4_CMD_RELAY || (!want_local && !want_keyid))) {
				c->in_len = 0;
				handle_relay_ask(c); /* refuses anything but RELAY */
			} else if (want_local && (c->in[0] == N4_CMD_LOCAL || !want_keyid)) {
				c->in_len = 0;
				handle_local(c);
			} else if (c->pc.ext & N4_EXT_KEY) {
				handle_keyid(c);
			} else {
				handle_hello(c);
			}
			return; /* c may be gone; further bytes are seen on the next event */
		}
	}
}

static void conn_event(n4_loop *loop, struct n4_io *io, uint32_t events)
{
	struct conn *c = io->arg;
	(void)loop;

	if (events & EPOLLOUT) {
		n4_loop_mod(c->srv->loop, &c->io, EPOLLIN | EPOLLRDHUP);
		conn_flush(c);
		return; /* c may be gone */
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_readable(c);
}

/* A new TCP connection: admit it (capacity, per-source cap and rate) or reset it. */
static int conn_admit(struct n4_server *s, int fd, const union n4_sa *a)
{
	struct n4_ipkey src;
	char b[64];
	int err = 0;

	n4_ipkey_from_sa(a, &src);
	if (s->draining) {
		s->rejects[REJ_SHUTDOWN]++;
		err = -ESHUTDOWN;
	} else if (s->nclients >= s->max_clients) {
		s->rejects[REJ_FULL]++;
		n4_warn("%s: server full (%u clients), refused", n4_sa_str(a, b, sizeof(b)),
			s->nclients);
		err = -ENOSPC;
	} else if ((err = n4_ipcap_admit(s->ipcap, &src, n4_now_ms())) != 0) {
		enum reject r = err == -EMFILE ? REJ_PER_IP : err == -EAGAIN ? REJ_RATE : REJ_FULL;
		s->rejects[r]++;
		n4_debug("%s: refused (%s)", n4_sa_str(a, b, sizeof(b)), reject_names[r]);
	}
	if (err) {
		close_reset(fd);
		return err;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		n4_ipcap_release(s->ipcap, &src, n4_now_ms());
		s->rejects[REJ_FULL]++;
		close_reset(fd);
		return -ENOMEM;
	}
	c->srv = s;
	c->tcp_addr = *a;
	c->src = src;
	struct sockaddr_in v4;
	if (n4_sa_to_v4(a, &v4))
		c->pc.ip = v4.sin_addr.s_addr;
	else
		c->pc.tcp_v6 = true;
	c->pc.owner = c;
	c->io = (struct n4_io){ .fd = fd, .cb = conn_event, .arg = c };
	/* READY and PEERINFO are tiny and latency is the point: never let Nagle
	 * hold a PEERINFO behind an unacknowledged READY. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((err = n4_loop_add(s->loop, &c->io, EPOLLIN | EPOLLRDHUP)) != 0) {
		n4_ipcap_release(s->ipcap, &src, n4_now_ms());
		close_reset(fd);
		free(c);
		return err;
	}
	s->nclients++;
	s->accepted++;
	c->next = s->live;
	if (s->live)
		s->live->prev = c;
	s->live = c;
	n4_debug("%s: connected", n4_sa_str(a, b, sizeof(b)));
	arm_deadline(c, s->cfg.hello_timeout_ms);
	return 0;
}

/* Out of descriptors: accept with the spare one and reset at once, so that the
 * kernel's queue drains and level-triggered epoll does not spin. */
static void shed_one(struct n4_server *s, int lfd)
{
	if (s->spare_fd < 0)
		return;
	close(s->spare_fd);
	int fd = accept(lfd, NULL, NULL);
	if (fd >= 0) {
		s->rejects[REJ_FULL]++;
		close_reset(fd);
	}
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void accept_ready(n4_loop *loop, struct n4_io *io, uint32_t events)
{
	struct n4_server *s = io->arg;
	(void)loop;
	(void)events;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		union n4_sa a;
		socklen_t alen = sizeof(a);
		int fd = accept4(io->fd, &a.sa, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				n4_warn("accept: %s: refusing connections", strerror(errno));
				shed_one(s, io->fd);
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				n4_warn("accept: %s", strerror(errno));
			return;
		}
		conn_admit(s, fd, &a);
	}
}

static void send_peerinfo(struct conn *c)
{
	struct n4_msg m;
	char b[64], b2[64];

	if (c->relayed) {
		send_relay(c);
		if (c->closed)
			return;
	} else if ((c->pc.ext & N4_EXT_SEQ) && c->disc) {
		/* Queued, not flushed: TUNE, PLAN (SELF) and PEERINFO leave in
		 * one segment, so one lost segment (not one of three) delays them. */
		struct n4_msg tune;
		uint8_t flags;
		n4_msg_init(&tune, N4_CMD_TUNE, 0, NULL);
		c->disc->d.tune.max_pps = (uint16_t)c->srv->cfg.max_pps;
		n4_tune_encode(&c->disc->d.tune, &flags, tune.payload);
		tune.ext = flags;
		conn_queue(c, &tune);
		struct n4_msg plan;
		uint8_t kind;
		n4_msg_init(&plan, N4_CMD_PLAN, 0, NULL);
		n4_plan_encode(&c->disc->d.plan, &kind, plan.payload);
		plan.ext = kind;
		conn_queue(c, &plan);
		if (c->closed)
			return;
	} else if ((c->pc.ext & N4_EXT_PROBE) && c->disc) {
		struct n4_msg plan;
		uint8_t kind;
		n4_msg_init(&plan, N4_CMD_PLAN, 0, NULL);
		n4_plan_encode(&c->disc->d.plan, &kind, plan.payload);
		plan.ext = kind;
		conn_send(c, &plan);
		if (c->closed)
			return;
	}
	if (c->pc.ext & N4_EXT_KEY) {
		/* The client's own observed address, bound into its PUNCH MAC,
		 * and its partner's nonce for this round. */
		struct n4_msg self;
		n4_msg_init(&self, N4_CMD_SELF, 0, NULL);
		n4_peerinfo_encode(&c->pc.udp, self.payload);
		conn_queue(c, &self);
		for (uint8_t i = 0; c->peer_nonce_ok && i < 3 && !c->closed; i++) {
			n4_msg_init(&self, N4_CMD_SELF, (uint8_t)(i + 1),
				    c->peer_nonce + i * N4_PAYLOAD_SIZE);
			conn_queue(c, &self);
		}
		if (c->closed)
			return;
	}
	for (unsigned i = 0; c->lan && i < c->lan->npeer; i++) {
		struct n4_msg lm;
		n4_local_encode(N4_CMD_PEERLOCAL, &c->lan->peer[i], i + 1 == c->lan->npeer, &lm);
		conn_queue(c, &lm); /* in PEERINFO's segment */
		if (c->closed)
			return;
	}
	if (c->lan && c->lan->npeer)
		n4_info(" <= Peerlocal (%u address%s, same public IP) to %s", c->lan->npeer,
			c->lan->npeer == 1 ? "" : "es", conn_str(c, b, sizeof(b)));
	n4_msg_init(&m, N4_CMD_PEERINFO, c->pc.ext ? c->peer_flags : 0, NULL);
	n4_peerinfo_encode(&c->peer_udp, m.payload);
	n4_info(" <= Peerinfo %s to %s", n4_addr_str(&c->peer_udp, b2, sizeof(b2)),
		conn_str(c, b, sizeof(b)));
	c->pc.state = N4_P_DONE;
	/* It is sent; closing waits only for the kernel to take the bytes. */
	arm_deadline(c, c->srv->cfg.hello_timeout_ms);
	c->close_after_flush = true;
	conn_send(c, &m);
}

static void peerinfo_fired(n4_loop *loop, struct n4_timer *t)
{
	(void)loop;
	send_peerinfo(t->arg);
}

/* Local addresses cross only between partners behind one public IP: to anyone
 * else they would only reveal the layout of a LAN it cannot reach.  An address
 * the receiver announced itself is left out (two LANs numbered alike behind
 * one carrier NAT): a PUNCH there would come back to its sender. */
static void share_local(struct conn *to, const struct conn *from)
{
	if (!to->lan || !from->lan || to->pc.udp.sin_addr.s_addr != from->pc.udp.sin_addr.s_addr)
		return;
	for (unsigned i = 0; i < from->lan->nown; i++) {
		const struct sockaddr_in *a = &from->lan->own[i];
		bool mine = false;
		for (unsigned j = 0; j < to->lan->nown; j++)
			mine |= a->sin_addr.s_addr == to->lan->own[j].sin_addr.s_addr &&
				a->sin_port == to->lan->own[j].sin_port;
		if (!mine && to->lan->npeer < N4_LOCAL_MAX)
			to->lan->peer[to->lan->npeer++] = *a;
	}
}

/* Both clients start punching the moment their PEERINFO arrives.  Sending both
 * at once would let the nearer client's PUNCHes reach the farther NAT before
 * that side has opened its mappings (the conntrack clash), so each PEERINFO is
 * held back by half the difference of the measured READY->EXCHANGE round trips. */
/* READY -> EXCHANGE is one round trip, unless READY was lost and resent (the
 * TCP retransmission timeout, 200 ms and more, would be taken for distance and
 * throw the plan's timing off): the kernel's RTT of the connection, which
 * never samples a retransmitted segment, bounds it. */
static uint64_t conn_rtt_ms(const struct conn *c)
{
	uint64_t rtt = c->exch_ms - c->ready_ms;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if ((c->pc.ext & N4_EXT_SEQ) && !getsockopt(c->io.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) &&
	    len >= offsetof(struct tcp_info, tcpi_rttvar) && ti.tcpi_rtt > 0 &&
	    ti.tcpi_rtt / 1000 < rtt)
		rtt = ti.tcpi_rtt / 1000;
	return rtt;
}

static void schedule_peerinfo(struct n4_server *s, struct conn *a, struct conn *b)
{
	uint64_t rtt_a = conn_rtt_ms(a), rtt_b = conn_rtt_ms(b);
	uint64_t now = n4_now_ms();
	struct conn *pair[2] = { a, b };
	uint64_t delay[2];

	a->peer_udp = b->pc.udp;
	b->peer_udp = a->pc.udp;
	a->peer_nonce_ok = b->keyid_parts == 2 * N4_LONGID_PARTS;
	b->peer_nonce_ok = a->keyid_parts == 2 * N4_LONGID_PARTS;
	memcpy(a->peer_nonce, b->nonce, sizeof(a->peer_nonce));
	memcpy(b->peer_nonce, a->nonce, sizeof(b->peer_nonce));
	a->peer_flags = b->pc.ext ? N4_PEER_N4 : 0;
	b->peer_flags = a->pc.ext ? N4_PEER_N4 : 0;
	share_local(a, b);
	share_local(b, a);
	s->pairs_done++;
	for (int i = 0; i < 2; i++) {
		uint64_t mine = i == 0 ? rtt_a : rtt_b, other = i == 0 ? rtt_b : rtt_a;
		delay[i] = mine < other ? (other - mine) / 2 : 0;
		if (delay[i] > MAX_SYNC_DELAY_MS)
			delay[i] = MAX_SYNC_DELAY_MS;
	}
	if (a->disc && b->disc) {
		/* Each side's sweep opens its mappings when its PEERINFO arrives:
		 * sent now + delay, arriving half a round trip later, while its last
		 * probe was allocated half a round trip before we saw it. */
		double dt_a = (double)(now + delay[0] - n4_discovery_last_ms(&a->disc->d) + rtt_a);
		double dt_b = (double)(now + delay[1] - n4_discovery_last_ms(&b->disc->d) + rtt_b);
		n4_discovery_plan(&a->disc->d, &b->disc->d, dt_a, dt_b, s->cfg.port_budget);
	}
	if (relay_pair(s, a, b))
		delay[0] = delay[1] = 0; /* no race to synchronise */
	for (int i = 0; i < 2; i++) {
		unsigned kind = pair[i]->disc ? (unsigned)pair[i]->disc->d.plan.kind : N4_PLAN_NONE;
		s->plans[kind < N4_STATS_PLANS ? kind : N4_PLAN_NONE]++;
		if (pair[i]->closed)
			continue; /* a failed send to the first closed the second */
		if (delay[i] == 0 || n4_timer_arm(s->loop, &pair[i]->peerinfo_timer, now + delay[i],
						  peerinfo_fired, pair[i]))
			send_peerinfo(pair[i]);
	}
}

/* PEERINFOs go out once both EXCHANGEs are in and, for clients doing discovery,
 * their probes too (or the wait for them ran out). */
static void maybe_schedule(struct n4_server *s, struct conn *c)
{
	struct n4_pclient *p = c->pc.partner;

	if (!p || !c->pc.observed || !p->observed || c->pc.state != N4_P_PAIRED ||
	    c->peer_udp.sin_family != 0)
		return;
	struct conn *other = p->owner;
	if ((c->disc && !c->disc->d.complete) || (other->disc && !other->disc->d.complete))
		return;
	if (n4_srv_relay_wants_ask(c) || n4_srv_relay_wants_ask(other))
		return; /* its lost-round count decides between punch and relay */
	if ((c->lan && !c->lan->done) || (other->lan && !other->lan->done))
		return; /* bounded by the exchange deadline */
	schedule_peerinfo(s, c, other);
}

static void discovery_expired(n4_loop *loop, struct n4_timer *t)
{
	struct disc_state *ds = t->arg;
	(void)loop;

	ds->d.complete = true;
	maybe_schedule(ds->owner->srv, ds->owner);
}

/* A discovery probe: recorded for the plan, never taken as the EXCHANGE. */
static void udp_probe(struct n4_server *s, const struct n4_msg *m, const struct sockaddr_in *src,
		      bool second)
{
	struct n4_pclient *pc = n4_pairing_by_token(s->pairing, m->payload, src->sin_addr.s_addr);
	struct conn *c = pc ? pc->owner : NULL;

	if (!c || !c->disc || c->pc.state != N4_P_PAIRED) {
		s->rejects[REJ_UNKNOWN_UDP]++;
		return;
	}
	n4_discovery_record(&c->disc->d, ntohs(src->sin_port), second, second,
			    m->ext & N4_EXCH_LAST, s->rx_ms);
	maybe_schedule(s, c);
}

/* A numbered probe (N4_EXT_SEQ): like udp_probe, with its place in the
 * client's send schedule, so that jitter cannot reorder what it tells. */
static void udp_seq_probe(struct n4_server *s, const uint8_t *buf, size_t len,
			  const union n4_sa *from, bool second)
{
	struct sockaddr_in src;
	struct n4_seq_probe p;

	if (len != N4_MSG_SIZE || !n4_sa_to_v4(from, &src) || n4_seq_probe_parse(buf[1], &p)) {
		s->rejects[REJ_BAD_UDP]++;
		return;
	}
	struct n4_pclient *pc = n4_pairing_by_token(s->pairing, buf + 2, src.sin_addr.s_addr);
	struct conn *c = pc ? pc->owner : NULL;
	if (!c || !c->disc || !c->disc->d.ordered || c->pc.state != N4_P_PAIRED) {
		s->rejects[REJ_UNKNOWN_UDP]++;
		return;
	}
	n4_discovery_record_seq(&c->disc->d, ntohs(src.sin_port), second, &p, s->rx_ms);
	maybe_schedule(s, c);
}

static void udp_datagram(struct n4_server *s, const uint8_t *buf, size_t len,
			 const union n4_sa *from, bool second)
{
	struct n4_msg m;
	struct sockaddr_in src;
	char b[64], b2[64];

	if (len >= 1 && buf[0] == N4_CMD_PROBE) {
		udp_seq_probe(s, buf, len, from, second);
		return;
	}
	if (n4_wire_decode(buf, len, N4_CMD_EXCHANGE, &m)) {
		s->rejects[REJ_BAD_UDP]++;
		n4_debug("%s: malformed UDP datagram (%zu bytes), ignored",
			 n4_sa_str(from, b, sizeof(b)), len);
		return;
	}
	if (!n4_sa_to_v4(from, &src)) {
		/* PEERINFO carries 4 address bytes: an IPv6 observation is useless. */
		s->rejects[REJ_IPV6_UDP]++;
		n4_debug("%s: EXCHANGE over IPv6 cannot be reported in PEERINFO, ignored",
			 n4_sa_str(from, b, sizeof(b)));
		return;
	}
	if ((m.ext & N4_EXT_TOKEN) && (second || (m.ext & N4_EXCH_PROBE))) {
		udp_probe(s, &m, &src, second);
		return;
	}
	if (second) {
		s->rejects[REJ_UNKNOWN_UDP]++;
		return;
	}
	struct n4_pclient *pc = NULL;
	int err = n4_pairing_exchange(s->pairing, &m, &src, &pc);
	if (err == -EALREADY)
		return;
	if (err) {
		s->rejects[err == -EPERM ? REJ_SPOOFED_UDP : REJ_UNKNOWN_UDP]++;
		N4_LOG_AT(err == -EPERM ? N4_LOG_INFO : N4_LOG_DEBUG, "%s: EXCHANGE %s, ignored",
			  n4_sa_str(from, b, sizeof(b)),
			  err == -EPERM ? "from an IP that is not its TCP client's"
					: "for no waiting pair");
		return;
	}
	struct conn *c = pc->owner;
	c->exch_ms = n4_now_ms();
	n4_info(" => Exchange from %s (client %s)", n4_sa_str(from, b, sizeof(b)),
		conn_str(c, b2, sizeof(b2)));
	if (c->disc) {
		n4_discovery_record(&c->disc->d, ntohs(src.sin_port), false, true, false, s->rx_ms);
		unsigned wait_ms =
			c->disc->d.ordered ? N4_DISCOVERY_SEQ_WAIT_MS : N4_DISCOVERY_WAIT_MS;
		if (!c->disc->d.complete &&
		    n4_timer_arm(s->loop, &c->disc->timer, c->exch_ms + wait_ms, discovery_expired,
				 c->disc))
			c->disc->d.complete = true;
	}
	maybe_schedule(s, c);
	/* The next legacy client behind this IP and identifier may go now. */
	struct n4_pclient *released = n4_pairing_release(s->pairing, pc);
	if (released)
		send_ready(released->owner);
}

/* The kernel's receive time (CLOCK_REALTIME) on n4_now_ms's monotonic clock;
 * now when the datagram carries none. */
static uint64_t rx_time_ms(const struct msghdr *mh)
{
	uint64_t now = n4_now_ms();
	struct timespec real;

	for (const struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
	     cm = CMSG_NXTHDR((struct msghdr *)mh, (struct cmsghdr *)cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS ||
		    cm->cmsg_len < CMSG_LEN(sizeof(struct timespec)))
			continue;
		struct timespec ts;
		memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
		if (clock_gettime(CLOCK_REALTIME, &real))
			return now;
		int64_t age_ms = ((int64_t)real.tv_sec - (int64_t)ts.tv_sec) * 1000 +
				 ((int64_t)real.tv_nsec - (int64_t)ts.tv_nsec) / 1000000;
		/* A clock step between the two readings: trust our own clock. */
		if (age_ms < 0 || (uint64_t)age_ms > now || age_ms > 10000)
			return now;
		return now - (uint64_t)age_ms;
	}
	return now;
}

static void udp_ready(n4_loop *loop, struct n4_io *io, uint32_t events)
{
	struct n4_server *s = io->arg;
	(void)loop;
	(void)events;

	for (int i = 0; i < UDP_BATCH; i++) {
		uint8_t buf[64];
		union n4_sa from;
		/* SO_TIMESTAMPNS: when the kernel took the datagram, not when this
		 * loop got to it (probes to two sockets, a busy server). */
		union {
			struct cmsghdr align;
			uint8_t b[CMSG_SPACE(sizeof(struct timespec))];
		} ctl;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = { .msg_name = &from,
				     .msg_namelen = sizeof(from),
				     .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b) };
		ssize_t n = recvmsg(io->fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED)
				continue;
			return;
		}
		s->rx_ms = rx_time_ms(&mh);
		udp_datagram(s, buf, (size_t)n, &from, io == &s->probe_io);
	}
}

/* ---- listening ---- */

static int resolve_bind(const struct n4_server_cfg *cfg, union n4_sa *addr, bool *dual)
{
	const char *host = cfg->bind_host;
	int family = cfg->family;

	memset(addr, 0, sizeof(*addr));
	*dual = false;
	if (!host || strcmp(host, "::") == 0 || strcmp(host, "0.0.0.0") == 0) {
		bool want_v6 = family != AF_INET && !(host && strcmp(host, "0.0.0.0") == 0);
		if (want_v6) {
			addr->v6.sin6_family = AF_INET6;
			addr->v6.sin6_addr = in6addr_any;
			addr->v6.sin6_port = htons(cfg->port);
			*dual = family == 0;
		} else {
			addr->v4.sin_family = AF_INET;
			addr->v4.sin_addr.s_addr = htonl(INADDR_ANY);
			addr->v4.sin_port = htons(cfg->port);
		}
		return 0;
	}
	struct addrinfo hints = { .ai_family = family ? family : AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *res = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return -EADDRNOTAVAIL;
	if (res->ai_addrlen > sizeof(*addr)) {
		freeaddrinfo(res);
		return -EAFNOSUPPORT;
	}
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (addr->sa.sa_family == AF_INET)
		addr->v4.sin_port = htons(cfg->port);
	else
		addr->v6.sin6_port = htons(cfg->port);
	return 0;
}

static int open_socket(const union n4_sa *addr, int type, bool dual)
{
	int one = 1, zero = 0;
	int fd = socket(addr->sa.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	socklen_t len = addr->sa.sa_family == AF_INET ? sizeof(addr->v4) : sizeof(addr->v6);

	if (fd < 0)
		return -errno;
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->sa.sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual ? &zero : &one, sizeof(one));
	if (bind(fd, &addr->sa, len) || (type == SOCK_STREAM && listen(fd, 4096))) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int open_listeners(n4_server *s, union n4_sa *addr, bool dual)
{
	int tfd = open_socket(addr, SOCK_STREAM, dual);

	if (tfd == -EAFNOSUPPORT && dual) {
		/* A host without IPv6: serve IPv4 alone. */
		uint16_t port = addr->v6.sin6_port;
		memset(addr, 0, sizeof(*addr));
		addr->v4.sin_family = AF_INET;
		addr->v4.sin_port = port;
		dual = false;
		tfd = open_socket(addr, SOCK_STREAM, false);
	}
	if (tfd < 0)
		return tfd;
	union n4_sa bound;
	socklen_t blen = sizeof(bound);
	if (getsockname(tfd, &bound.sa, &blen)) {
		int err = -errno;
		close(tfd);
		return err;
	}
	/* UDP on the same port as TCP, also for port 0. */
	if (addr->sa.sa_family == AF_INET)
		addr->v4.sin_port = bound.v4.sin_port;
	else
		addr->v6.sin6_port = bound.v6.sin6_port;
	int ufd = open_socket(addr, SOCK_DGRAM, dual);
	if (ufd < 0) {
		close(tfd);
		return ufd;
	}
	/* Bursts of EXCHANGEs from thousands of pairs at once: the default buffer
	 * (net.core.rmem_max, 208 KiB) drops them, and the original client sends
	 * its three copies only once.  FORCE works for root (CAP_NET_ADMIN). */
	int rcvbuf = 8 << 20;
	if (setsockopt(ufd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(ufd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* The discovery port (port + 1); serving goes on without it. */
	union n4_sa paddr = *addr;
	uint16_t pport = (uint16_t)(ntohs(addr->sa.sa_family == AF_INET ? addr->v4.sin_port
									: addr->v6.sin6_port) +
				    N4_PROBE_PORT_DELTA);
	if (paddr.sa.sa_family == AF_INET)
		paddr.v4.sin_port = htons(pport);
	else
		paddr.v6.sin6_port = htons(pport);
	int pfd = pport > N4_PROBE_PORT_DELTA ? open_socket(&paddr, SOCK_DGRAM, dual) : -EINVAL;
	if (pfd < 0)
		n4_warn("discovery port %u unavailable (%s): clients get the original's guess",
			pport, strerror(-pfd));
	/* Kernel receive times for the discovery probes (udp_ready); without
	 * them the loop's own clock is used. */
	int on = 1;
	if (setsockopt(ufd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) ||
	    (pfd >= 0 && setsockopt(pfd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on))))
		n4_debug("SO_TIMESTAMPNS: %s", strerror(errno));
	s->probe_io = (struct n4_io){ .fd = pfd < 0 ? -1 : pfd, .cb = udp_ready, .arg = s };
	s->tcp_io = (struct n4_io){ .fd = tfd, .cb = accept_ready, .arg = s };
	s->udp_io = (struct n4_io){ .fd = ufd, .cb = udp_ready, .arg = s };
	s->port = ntohs(addr->sa.sa_family == AF_INET ? bound.v4.sin_port : bound.v6.sin6_port);
	s->family = dual ? 0 : addr->sa.sa_family;
	return 0;
}

static rlim_t nr_open(void)
{
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");
	unsigned long long v = 0;

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v ? (rlim_t)v : 1048576;
}

/* One descriptor per client: raise the soft limit to what the clients need (or
 * to the hard limit), and the hard limit too where allowed (root). */
static void raise_fd_limit(n4_server *s, unsigned want_clients)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		s->fd_limit = s->fd_limit_was = 1024;
		return;
	}
	s->fd_limit_was = rl.rlim_cur;
	rlim_t want = want_clients ? (rlim_t)want_clients + FD_HEADROOM : FD_TARGET;
	if (want > nr_open())
		want = nr_open();
	if (want > rl.rlim_max) {
		struct rlimit up = { .rlim_cur = want, .rlim_max = want };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < want) {
		rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	s->fd_limit = rl.rlim_cur;
}

static void bury(n4_server *s)
{
	while (s->graveyard) {
		struct conn *c = s->graveyard;
		s->graveyard = c->next;
		free(c);
	}
}

/* The relay binds where the UDP listener does; clients register over IPv4. */
static int relay_start(n4_server *s, const union n4_sa *addr)
{
	const struct n4_server_cfg *cfg = &s->cfg;
	struct n4_relay_cfg rc = { .max_pairs = cfg->relay_max,
				   .max_per_ip = cfg->relay_per_ip,
				   .rate_kbit = cfg->relay_rate_kbit,
				   .burst_kb = cfg->relay_burst_kb,
				   .total_kbit = cfg->relay_total_kbit,
				   .idle_s = cfg->relay_idle_s,
				   .port_lo = cfg->relay_port_lo,
				   .port_hi = cfg->relay_port_hi };

	if (s->family == AF_INET6) {
		n4_warn("IPv6-only: no relay (clients register over IPv4)");
		return 0;
	}
	if (!rc.max_pairs)
		return 0;
	if (rc.port_lo > rc.port_hi || (rc.port_hi && !rc.port_lo))
		return -EINVAL;
	s->relay = n4_relay_new(&rc, s->loop, addr);
	return s->relay ? 0 : -errno;
}

n4_server *n4_server_new(const struct n4_server_cfg *cfg)
{
	n4_server *s = calloc(1, sizeof(*s));
	union n4_sa addr;
	bool dual;
	int err;

	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->tcp_io.fd = s->udp_io.fd = s->probe_io.fd = s->spare_fd = -1;
	if (cfg->family != 0 && cfg->family != AF_INET && cfg->family != AF_INET6) {
		err = -EINVAL;
		goto out_free;
	}
	if (cfg->only_ident) {
		if (n4_ident_encode(cfg->only_ident, s->only_ident_wire)) {
			err = -EINVAL;
			goto out_free;
		}
		snprintf(s->only_ident, sizeof(s->only_ident), "%s", cfg->only_ident);
	}
	s->cfg.only_ident = NULL; /* not ours to keep */
	s->cfg.bind_host = NULL;
	err = resolve_bind(cfg, &addr, &dual);
	if (err)
		goto out_free;
	raise_fd_limit(s, cfg->max_clients);
	unsigned long long room =
		s->fd_limit > 2 * FD_HEADROOM ? s->fd_limit - FD_HEADROOM : FD_HEADROOM;
	unsigned by_fds = room > 1000000 ? 1000000 : (unsigned)room;
	s->max_clients = cfg->max_clients && cfg->max_clients < by_fds ? cfg->max_clients : by_fds;
	if (cfg->max_clients > by_fds)
		n4_warn("descriptor limit %llu holds only %u of the %u clients asked for",
			s->fd_limit, by_fds, cfg->max_clients);
	n4_log_set_rate(cfg->log_rate);
	s->loop = n4_loop_new();
	s->pairing = n4_pairing_new(s->max_clients);
	s->ipcap = n4_ipcap_new(cfg->max_per_ip, cfg->conn_rate_per_ip, cfg->conn_burst_per_ip,
				s->max_clients);
	if (!s->loop || !s->pairing || !s->ipcap) {
		err = -ENOMEM;
		goto out_free;
	}
	err = open_listeners(s, &addr, dual);
	if (err)
		goto out_free;
	if ((err = n4_loop_add(s->loop, &s->tcp_io, EPOLLIN)) ||
	    (err = n4_loop_add(s->loop, &s->udp_io, EPOLLIN)) ||
	    (s->probe_io.fd >= 0 && (err = n4_loop_add(s->loop, &s->probe_io, EPOLLIN))))
		goto out_free;
	if (!cfg->no_relay && (err = relay_start(s, &addr)) != 0)
		goto out_free;
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return s;
out_free:
	n4_server_free(s);
	errno = -err;
	return NULL;
}

uint16_t n4_server_port(const n4_server *s)
{
	return s->port;
}

unsigned n4_server_capacity(const n4_server *s)
{
	return s->max_clients;
}

static void after_iteration(n4_server *s)
{
	bury(s);
	uint64_t now = n4_now_ms();
	if (now >= s->next_sweep_ms) {
		n4_ipcap_sweep(s->ipcap, now);
		if (s->relay)
			n4_relay_sweep(s->relay, now);
		s->next_sweep_ms = now + 1000;
	}
	if (s->cfg.status_flag && *s->cfg.status_flag) {
		char line[1280];
		*s->cfg.status_flag = 0;
		n4_server_status(s, line, sizeof(line));
		/* Asked for by the operator: never lost to the cap on log lines. */
		n4_info_uncapped("status: %s", line);
	}
}

/* Stop accepting; clients that are not in an exchange cannot finish soon, so
 * they are closed (their clients retry elsewhere or later); pairs in the
 * exchange get drain_timeout_ms to complete. */
static void begin_drain(n4_server *s)
{
	unsigned finishing = 0;

	if (s->draining)
		return;
	s->draining = true;
	if (s->tcp_io.fd >= 0) {
		n4_loop_del(s->loop, &s->tcp_io);
		close(s->tcp_io.fd);
		s->tcp_io.fd = -1;
	}
	for (struct conn *c = s->live, *next; c; c = next) {
		next = c->next;
		if (c->pc.state == N4_P_NEW || c->pc.state == N4_P_WAITING) {
			s->rejects[REJ_SHUTDOWN]++;
			conn_close(c, false);
		} else {
			finishing++;
			uint64_t due = n4_now_ms() + s->cfg.drain_timeout_ms;
			if (!c->deadline.slot || c->deadline.due_ms > due)
				n4_timer_arm(s->loop, &c->deadline, due, deadline_fired, c);
		}
	}
	n4_info("shutting down: no new clients, %u in an exchange get up to %u ms", finishing,
		s->cfg.drain_timeout_ms);
}

int n4_server_run(n4_server *s, volatile sig_atomic_t *stop)
{
	char fam[32];

	snprintf(fam, sizeof(fam), "%s",
		 s->family == 0		? "IPv6 and IPv4"
		 : s->family == AF_INET ? "IPv4"
					: "IPv6");
	n4_info("serving on TCP and UDP port %u (%s); descriptor limit %llu (was %llu): "
		"up to %u clients, %u per source, %u new/s per source%s%s",
		s->port, fam, s->fd_limit, s->fd_limit_was, s->max_clients, s->cfg.max_per_ip,
		s->cfg.conn_rate_per_ip, s->only_ident[0] ? ", identifier " : "", s->only_ident);
	while (!stop || !*stop) {
		int n = n4_loop_run_once(s->loop, 200);
		after_iteration(s);
		if (n < 0 && n != -EINTR)
			return n;
	}
	begin_drain(s);
	uint64_t give_up = n4_now_ms() + s->cfg.drain_timeout_ms + MAX_SYNC_DELAY_MS + 1000;
	while (s->nclients > 0 && n4_now_ms() < give_up) {
		int n = n4_loop_run_once(s->loop, 100);
		after_iteration(s);
		if (n < 0 && n != -EINTR)
			return n;
	}
	return 0;
}

void n4_server_status(const n4_server *s, char *buf, size_t len)
{
	unsigned state[4] = { 0 };

	for (const struct conn *c = s->live; c; c = c->next)
		state[c->pc.state & 3]++;
	int n = snprintf(buf, len,
			 "clients=%u connecting=%u waiting=%u exchanging=%u accepted=%lu pairs=%lu "
			 "closed_by_client=%lu sources=%zu rejects:",
			 s->nclients, state[N4_P_NEW], state[N4_P_WAITING], state[N4_P_PAIRED],
			 s->accepted, s->pairs_done, s->client_closed, n4_ipcap_sources(s->ipcap));
	for (int i = 0; i < REJ_COUNT && n > 0 && (size_t)n < len; i++)
		n += snprintf(buf + n, len - (size_t)n, " %s=%lu", reject_names[i], s->rejects[i]);
	if (s->relay && n > 0 && (size_t)n < len)
		n4_relay_status(s->relay, buf + n, len - (size_t)n);
}

/* For the metrics endpoint (metrics.h): the counters above, read at a scrape. */
void n4_server_get_stats(const n4_server *s, struct n4_server_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (const struct conn *c = s->live; c; c = c->next)
		st->by_state[c->pc.state & 3]++;
	st->clients = s->nclients;
	st->capacity = s->max_clients;
	st->accepted = s->accepted;
	st->pairs = s->pairs_done;
	st->client_closed = s->client_closed;
	st->sources = n4_ipcap_sources(s->ipcap);
	st->draining = s->draining;
	st->nrejects = REJ_COUNT;
	st->reject_names = reject_names;
	st->rejects = s->rejects;
	memcpy(st->plans, s->plans, sizeof(st->plans));
	if (s->relay) {
		struct n4_relay_counts rc;
		n4_relay_counts(s->relay, &rc);
		st->has_relay = true;
		st->relay_active_pairs = rc.pairs;
		st->relay_pairs = (unsigned long)rc.allocated;
		st->relay_bytes = rc.bytes;
		st->relay_dropped = (unsigned long)rc.dropped;
	}
}

n4_loop *n4_server_loop(n4_server *s)
{
	return s->loop;
}

void n4_server_free(n4_server *s)
{
	if (!s)
		return;
	while (s->live)
		conn_close(s->live, false);
	bury(s);
	n4_relay_free(s->relay);
	if (s->tcp_io.fd >= 0)
		close(s->tcp_io.fd);
	if (s->udp_io.fd >= 0)
		close(s->udp_io.fd);
	if (s->probe_io.fd >= 0)
		close(s->probe_io.fd);
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	n4_loop_free(s->loop);
	n4_pairing_free(s->pairing);
	n4_ipcap_free(s->ipcap);
	free(s);
}

/* ---- test entry points (server_test.h) ---- */

int n4_server_test_adopt(n4_server *s, int fd, const struct sockaddr *addr, socklen_t len)
{
	union n4_sa a;

	memset(&a, 0, sizeof(a));
	memcpy(&a, addr, len < sizeof(a) ? len : sizeof(a));
	return conn_admit(s, fd, &a);
}

void n4_server_test_udp(n4_server *s, const void *buf, size_t len, const struct sockaddr *src,
			socklen_t src_len)
{
	union n4_sa a;

	memset(&a, 0, sizeof(a));
	memcpy(&a, src, src_len < sizeof(a) ? src_len : sizeof(a));
	s->rx_ms = n4_now_ms();
	udp_datagram(s, buf, len, &a, false);
	bury(s);
}

void n4_server_test_expire(n4_server *s)
{
	/* Firing one timer may close others (a partner): rescan from the start. */
	for (bool fired = true; fired;) {
		fired = false;
		for (struct conn *c = s->live; c; c = c->next) {
			struct n4_timer *t = c->peerinfo_timer.slot ? &c->peerinfo_timer
					     : c->deadline.slot	    ? &c->deadline
								    : NULL;
			if (!t)
				continue;
			n4_timer_cancel(s->loop, t);
			t->cb(s->loop, t);
			fired = true;
			break;
		}
	}
	bury(s);
}

int n4_server_test_poll(n4_server *s)
{
	int n = n4_loop_run_once(s->loop, 0);

	after_iteration(s);
	return n;
}

void n4_server_test_drain(n4_server *s)
{
	begin_drain(s);
	bury(s);
}

unsigned n4_server_test_clients(const n4_server *s)
{
	return s->nclients;
}

int n4_server_test_check(const n4_server *s)
{
	unsigned n = 0, waiting = 0;

	for (const struct conn *c = s->live; c; c = c->next) {
		n++;
		if (c->closed || c->srv != s)
			return -EFAULT;
		if (c->pc.state == N4_P_WAITING)
			waiting++;
		/* exactly one deadline while live (PEERINFO timer aside) */
		if (!c->deadline.slot)
			return -EFAULT;
		if (c->pc.state == N4_P_PAIRED && c->pc.partner && c->pc.partner->partner != &c->pc)
			return -EFAULT;
	}
	if (n != s->nclients || waiting != n4_pairing_waiting(s->pairing))
		return -EFAULT;
	if (s->nclients > s->max_clients)
		return -EFAULT;
	return 0;
}

/* client.c - one punching attempt from start to WIN: rounds of rendezvous
 * (rendezvous.c) and sweep (punch.c), deadlines, and the choice of timing per
 * strategy and per peer. */
#include "n4.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "auth.h"
#include "blake2s.h"
#include "cand6.h"
#include "fast.h"
#include "key.h"
#include "log.h"
#include "loop.h"
#include "punch.h"
#include "punch6.h"
#include "rand.h"
#include "relay_reg.h"
#include "rendezvous.h"
#include "resend.h"
#include "side.h"
#include "wire.h"

/* The final failure line: the caller's to write when it says so (the shim). */
#define give_up(c, ...) \
	N4_LOG_AT((c)->cfg.caller_reports ? N4_LOG_DEBUG : N4_LOG_ERROR, __VA_ARGS__)

/* The original's round: 10 s.  Ours, between two n4 peers whose PEERINFOs the
 * server synchronised, is decided within a few round trips; 2.5 s leaves room
 * for 100+ ms of WAN delay and loss while losing far less time per miss. */
#define CLASSIC_ROUND_MS 10000
#define AUTO_ROUND_MS 2500
/* Between pre-opening (low TTL) and the first full-TTL PUNCH: covers the skew
 * between the two sides' PEERINFO arrival that the server could not remove. */
#define AUTO_GUARD_MS 15
/* Waiting for READY is waiting for a partner; the server gives up at 60 s. */
#define READY_WAIT_MS 65000
#define EXCHANGE_WAIT_MS 10000
#define RECONNECT_MS 1000
/* run_round: the server called the pairing off (N4_CMD_AGAIN): HELLO again at
 * once, not a lost round.  After AGAIN_FAST in a row, with RECONNECT_MS between
 * (a server that says nothing else must not make us hammer it). */
#define ROUND_AGAIN 2
/* A fast flow's rendezvous did not happen (NO, no answer, no channel): an
 * ordinary rendezvous follows in the same round. */
#define ROUND_LONG_WAY 3
/* A fast flow's probe is resent this often until the answer (against loss). */
#define FAST_PROBE_RESEND_MS 200
#define AGAIN_FAST 3
/* Birthday rounds need about a second of probing per 98 %; give them three. */
#define BDAY_ROUND_MS 4000
/* A round with only the LAN path (the server found no public plan): a LAN
 * answers within milliseconds, so a second is plenty before refusing. */
#define LAN_ONLY_ROUND_MS 1000
/* Discovery probes from extra sockets (each costs one NAT port). */
#define NPROBES 4
/* Both sides register at the relay within this long of its grant (the relay
 * itself waits N4_RELAY_REG_TIMEOUT_S). */
#define RELAY_REG_WAIT_MS 10000
/* Once both are registered, a keyed peer proves itself within a few round trips
 * through the relay; after this long without proof, back to the server for
 * another partner, as after a lost punching round. */
#define RELAY_AUTH_MS 3000

struct n4_client {
	struct n4_client_cfg cfg;
	char *host;
	struct n4_waitctx ctx;
	struct n4_pool pool;
	int win_fd;
	struct sockaddr_in peer;
	uint8_t ident[N4_PAYLOAD_SIZE];
	uint8_t peer_id[N4_PAYLOAD_SIZE]; /* rooms: who we are to a host */
	enum n4_confirm_mode confirm_mode;
	bool won, confirmed, got_ack, relayed;
	/* The peer negotiated our extensions (res->peer_is_n4). */
	bool peer_is_n4;
	bool peer_is_host;     /* ... and is a room's host answering us (N4_PEER_HOST) */
	int stay_fd;	       /* N4_EXT_STAY: the server connection kept after the WIN */
	unsigned ports_used;   /* local ports of the last round's pool */
	unsigned lost_rounds;  /* rounds that punched and lost, told to the server */
	bool fast_tried;       /* cfg.fast: its one try is over (won, or went the long way) */
	struct n4_pacer pacer; /* --max-pps, across rounds */
	bool refused_nosweep;  /* the last refusal: a sweep that --no-sweep forbids */
	/* With a key: what it derives (the key itself is wiped), and the
	 * authentication state of the current round. */
	bool keyed;
	struct n4_keyed kid;
	struct n4_auth auth;
	/* IPv6 (cand6.h, punch6.h): our candidate and the server's IPv6 address
	 * (have_v6: both known at the start), this round's punching socket and,
	 * keyed, the socket its probe leaves from; the path when IPv6 won. */
	char *host6;
	bool have_v6;
	struct in6_addr cand6;
	struct sockaddr_in6 server6;
	int v6_fd, v6_probe_fd;
	struct n4_punch6 p6;
	int family;
	struct sockaddr_in6 peer6;
};

void n4_client_cfg_init(struct n4_client_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->server_port = N4_DEFAULT_PORT;
	snprintf(cfg->ident, sizeof(cfg->ident), "%s", N4_DEFAULT_IDENT);
	cfg->src_port = 30000;
	cfg->pool_size = 25;
	cfg->peer_offset = 20;
	cfg->strategy = N4_STRATEGY_AUTO;
	cfg->timeout_ms = 120000;
	cfg->low_ttl = 2;
	cfg->confirm_ms = 2000;
	cfg->max_ports = 512;
	cfg->max_pps = N4_DEFAULT_MAX_PPS;
	cfg->host_fd = -1;
}

int n4_client_cfg_check(const struct n4_client_cfg *cfg, char *why, size_t why_len)
{
	const char *w = NULL;

	if (!cfg->server_host || !*cfg->server_host)
		w = "no server host given";
	else if (n4_ident_check(cfg->ident))
		w = "identifier must be 1 to 6 printable ASCII characters without spaces";
	else if (cfg->pool_size < 1 || cfg->pool_size > 4096)
		w = "pool size must be between 1 and 4096";
	else if (cfg->src_port && (unsigned)cfg->src_port + cfg->pool_size - 1 > 65535)
		w = "source port + pool size exceeds 65535";
	else if (cfg->peer_offset < -65535 || cfg->peer_offset > 65535)
		w = "peer offset out of range";
	else if (cfg->max_ports < 1 || cfg->max_ports > 65535)
		w = "max ports must be between 1 and 65535";
	else if (cfg->low_ttl < 0 || cfg->low_ttl > 255)
		w = "TTL must be between 0 and 255";
	else if (cfg->strategy != N4_STRATEGY_AUTO && cfg->strategy != N4_STRATEGY_CLASSIC)
		w = "unknown strategy";
	else if (cfg->max_pps && (cfg->max_pps < 20 || cfg->max_pps > 1000000))
		w = "max packets per second must be 0 (unpaced) or 20-1000000";
	else if (cfg->no_sweep && cfg->strategy == N4_STRATEGY_CLASSIC)
		w = "no-sweep needs the auto strategy (classic always sweeps)";
	else if (cfg->room_nexclude && !cfg->room_exclude)
		w = "room_nexclude is set and room_exclude is NULL";
	else if (cfg->room_answer && (cfg->host_fd < 0 || cfg->strategy == N4_STRATEGY_CLASSIC))
		w = "a room's answer needs the host's socket and the auto strategy";
	if (w && why)
		snprintf(why, why_len, "%s", w);
	return w ? -EINVAL : 0;
}

n4_client *n4_client_new(const struct n4_client_cfg *cfg)
{
	if (n4_client_cfg_check(cfg, NULL, 0)) {
		errno = EINVAL;
		return NULL;
	}
	n4_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->host = strdup(cfg->server_host);
	if (!c->host) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	c->cfg.server_host = c->host;
	if (cfg->server6_host) {
		c->host6 = strdup(cfg->server6_host);
		if (!c->host6) {
			free(c->host);
			free(c);
			errno = ENOMEM;
			return NULL;
		}
	}
	c->cfg.server6_host = c->host6;
	c->v6_fd = c->v6_probe_fd = -1;
	c->family = AF_INET;
	c->ctx.cancel = cfg->cancel;
	c->ctx.return_on_eintr = cfg->return_on_eintr;
	c->win_fd = -1;
	c->stay_fd = -1;
	if (cfg->have_key) {
		c->keyed = true;
		(void)n4_key_derive(cfg->key, cfg->ident, &c->kid); /* ident checked above */
		n4_wipe(c->cfg.key, sizeof(c->cfg.key));
		/* On the wire (and to an original server) only the derived id. */
		n4_ident_encode(c->kid.short_id, c->ident);
	} else {
		n4_ident_encode(cfg->ident, c->ident);
	}
	n4_pacer_init(&c->pacer, cfg->max_pps);
	if (cfg->have_peer_id)
		memcpy(c->peer_id, cfg->peer_id, sizeof(c->peer_id));
	else if (n4_random_bytes(c->peer_id, sizeof(c->peer_id)) < 0)
		memset(c->peer_id, 0, sizeof(c->peer_id)); /* none: a host sees a new peer */
	return c;
}

void n4_client_free(n4_client *c)
{
	if (!c)
		return;
	n4_pool_close(&c->pool, -1);
	if (c->win_fd >= 0 && !(c->cfg.room_answer && c->win_fd == c->cfg.host_fd))
		close(c->win_fd);
	if (c->stay_fd >= 0)
		close(c->stay_fd);
	if (c->v6_fd >= 0)
		close(c->v6_fd);
	if (c->v6_probe_fd >= 0)
		close(c->v6_probe_fd);
	free(c->host);
	free(c->host6);
	n4_wipe(c, sizeof(*c));
	free(c);
}

int n4_client_take_stay_fd(n4_client *c)
{
	int fd = c->stay_fd;

	c->stay_fd = -1;
	return fd >= 0 ? fd : -ENOENT;
}

int n4_client_take_fd(n4_client *c)
{
	int fd = c->win_fd;

	c->win_fd = -1;
	return fd;
}

static int target_port(int observed, int offset)
{
	int p = observed + offset;

	/* Wrap like a NAT's port space would rather than aim at port 0. */
	while (p > 65535)
		p -= 64512;
	while (p < 1024)
		p += 64512;
	return p;
}

static const char *plan_name(enum n4_plan_kind k)
{
	static const char *const names[] = {
		"original guess",    "direct",		 "sweep",      "range",
		"birthday (listen)", "birthday (probe)", "impossible", "walk"
	};

	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

/* Size the pool and aim the sweep as the server's plan says (predict.h). */
static int apply_plan(n4_client *c, struct n4_sweep *sw)
{
	const struct n4_plan *p = &sw->plan;
	unsigned pool = c->pool.n;

	switch (p->kind) {
	case N4_PLAN_SWEEP:
	case N4_PLAN_BDAY_LISTEN:
		pool = p->pool;
		sw->target.sin_port = htons(p->lo);
		break;
	case N4_PLAN_DIRECT:
		pool = 1;
		sw->target.sin_port = htons(p->lo);
		break;
	case N4_PLAN_RANGE:
	case N4_PLAN_BDAY_PROBE:
	case N4_PLAN_WALK:
		pool = 1; /* socket 0 reaches every peer port (WALK: a room's host) */
		sw->target.sin_port = htons(p->lo);
		break;
	default:
		return 0;
	}
	if (pool > c->cfg.max_ports) {
		n4_info(" plan wants %u sockets, capped at --max-ports %u ", pool,
			c->cfg.max_ports);
		pool = c->cfg.max_ports;
	}
	/* The pre-opening and the first full pass go out whole (punch.c): both
	 * must fit the pacer's second. */
	unsigned pass_cap = c->pacer.pps ? c->pacer.pps / 2 : 65535;
	if (pool > pass_cap) {
		n4_info(" plan wants %u sockets, capped at %u by --max-pps %u ", pool, pass_cap,
			c->pacer.pps);
		pool = pass_cap;
	}
	if ((p->kind == N4_PLAN_RANGE || p->kind == N4_PLAN_WALK) && sw->plan.count > pass_cap)
		sw->plan.count = (uint16_t)pass_cap;
	int err = n4_pool_resize(&c->pool, pool);
	c->ports_used = c->pool.n;
	if (err) {
		n4_error("cannot open %u sockets for the plan: %s", pool, strerror(-err));
		return err;
	}
	if (p->kind == N4_PLAN_RANGE)
		n4_info(" Plan: %s, %u peer ports from %u step %u ", plan_name(p->kind), p->count,
			p->lo, p->step);
	else if (p->kind == N4_PLAN_WALK)
		n4_info(" Plan: %s, %u peer ports from %u step %d ", plan_name(p->kind), p->count,
			p->lo, p->walk_step);
	else if (p->kind == N4_PLAN_BDAY_PROBE)
		n4_info(" Plan: %s, %u random ports a second ", plan_name(p->kind), p->pool);
	else
		n4_info(" Plan: %s, %u sockets ", plan_name(p->kind), pool);
	return 0;
}

/* A keyed pair proves itself end to end through the relay, which forwards byte
 * for byte: the APUNCHes of a punch, bound to the same server-reported
 * addresses (the partner's observed address and our own, SELF) and this
 * round's nonces, so both sides compute the MACs identically.  Only the relay
 * may speak for the peer here.  1 = authenticated WIN, 0 = none (lost round),
 * <0 = error. */
struct relay_auth {
	n4_client *c;
	int fd;
	const struct sockaddr_in *relay;
	unsigned wait_ms;
};

static int relay_auth_send_flags(const struct relay_auth *a, uint8_t flags)
{
	uint8_t out[N4_APUNCH_SIZE];

	n4_auth_encode(&a->c->auth, flags, out);
	if (sendto(a->fd, out, sizeof(out), 0, (const struct sockaddr *)a->relay,
		   sizeof(*a->relay)) < 0 &&
	    errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED)
		return -errno;
	return 0;
}

static int relay_auth_send(void *arg)
{
	return relay_auth_send_flags(arg, 0);
}

/* One datagram: only the relay speaks for the peer. */
static int relay_auth_readable(void *arg, uint64_t *next_send)
{
	struct relay_auth *a = arg;
	uint8_t buf[128];
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	ssize_t r =
		recvfrom(a->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);

	if (r < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == ECONNREFUSED)
			return 0;
		return -errno;
	}
	if (flen < sizeof(from) || from.sin_family != AF_INET ||
	    from.sin_addr.s_addr != a->relay->sin_addr.s_addr ||
	    from.sin_port != a->relay->sin_port)
		return 0;
	enum n4_auth_verdict v = n4_auth_check(&a->c->auth, buf, (size_t)r);
	if (v == N4_AUTH_OTHER)
		return 0; /* a late registration ack, or noise */
	if (v == N4_AUTH_BAD) {
		if (a->c->auth.failures++ == 0)
			n4_warn("datagram from the relay failed authentication (no key, "
				"or another key)");
		return 0;
	}
	/* Authentic: answer at once, echoing the peer's nonce. */
	int err = relay_auth_send_flags(a, v == N4_AUTH_WIN ? N4_PUNCH_ACK : 0);
	if (err)
		return err;
	if (v == N4_AUTH_WIN) {
		n4_info(" => Peer authenticated through the relay ");
		return 1;
	}
	*next_send = n4_now_ms() + a->wait_ms;
	return 0;
}

static int relay_auth(n4_client *c, int fd, const struct sockaddr_in *relay, const struct n4_rv *rv,
		      unsigned wait_ms, uint64_t deadline)
{
	struct relay_auth a = { .c = c, .fd = fd, .relay = relay, .wait_ms = wait_ms };
	struct n4_resend r = { .fd = fd,
			       .interval_ms = wait_ms,
			       .deadline_ms = deadline,
			       .ctx = &c->ctx,
			       .send = relay_auth_send,
			       .readable = relay_auth_readable,
			       .arg = &a };

	n4_auth_bind(&c->auth, &rv->peer, rv->have_self ? &rv->self : NULL,
		     rv->have_peer_nonce ? rv->peer_nonce : NULL);
	return n4_resend_until(&r);
}

/* The kernel's port of fd, 0 if it cannot say. */
static uint16_t local_port_of(int fd)
{
	struct sockaddr_in local;
	socklen_t llen = sizeof(local);

	return getsockname(fd, (struct sockaddr *)&local, &llen) ? 0 : ntohs(local.sin_port);
}

/* The server relays this pair: register pool socket 0 at our relay port; WIN
 * when both sides are up (keyed: and the peer proved itself through the
 * relay).  Same contract as run_round. */
static int relay_round(n4_client *c, const struct sockaddr_in *server, const struct n4_rv *rv,
		       uint64_t deadline, struct n4_result *res)
{
	struct sockaddr_in relay = *server;
	char b[32];

	relay.sin_port = htons(rv->relay_port);
	n4_info(" => Relay: %s ", n4_addr_str(&relay, b, sizeof(b)));
	/* One registration per round trip (plus slack), so that acks do not
	 * arrive after the WIN, where they would reach the program. */
	unsigned wait_ms = 2 * rv->rtt_ms + 50;
	wait_ms = wait_ms < 100 ? 100 : wait_ms > 1000 ? 1000 : wait_ms;
	uint64_t until = n4_now_ms() + RELAY_REG_WAIT_MS;
	int err = n4_relay_register(c->pool.fds[0], &relay, rv->relay_token, wait_ms,
				    until < deadline ? until : deadline, &c->ctx);
	if (err) {
		n4_warn("relay registration failed: %s", strerror(-err));
		c->ports_used = c->pool.n;
		n4_pool_close(&c->pool, -1);
		return err;
	}
	if (c->keyed) {
		until = n4_now_ms() + RELAY_AUTH_MS;
		err = relay_auth(c, c->pool.fds[0], &relay, rv, wait_ms,
				 until < deadline ? until : deadline);
		if (err <= 0) {
			if (err == 0 && c->auth.failures)
				n4_warn("peer failed authentication (%u datagrams through the "
					"relay); asking the server for another partner",
					c->auth.failures);
			else if (err == 0)
				n4_warn("no authenticated answer through the relay");
			c->ports_used = c->pool.n;
			n4_pool_close(&c->pool, -1);
			return err;
		}
		c->got_ack = c->auth.peer_acked;
	}
	n4_info(" => Relay up: the pair is relayed ");
	c->win_fd = c->pool.fds[0];
	c->ports_used = c->pool.n;
	n4_pool_close(&c->pool, 0);
	c->peer = relay;
	c->won = c->relayed = c->peer_is_n4 = true;
	res->fd = c->win_fd;
	res->peer = relay;
	res->relayed = true;
	res->peer_is_n4 = true;
	memcpy(res->relay_token, rv->relay_token, N4_RELAY_TOKEN_SIZE);
	res->local_port = local_port_of(c->win_fd);
	return 1;
}

/* --- IPv6 ---------------------------------------------------------------- */

/* Whether this client tries IPv6 at all: our candidate and the server's IPv6
 * address, found once per run.  The classic strategy is the original on the
 * wire, and a room's answer punches from the host's one IPv4 socket. */
static void v6_setup(n4_client *c)
{
	const struct n4_client_cfg *cfg = &c->cfg;
	char b[INET6_ADDRSTRLEN];

	c->have_v6 = false;
	if (cfg->no_ipv6 || cfg->strategy == N4_STRATEGY_CLASSIC || cfg->room_answer)
		return;
	int err = n4_cand6_pick(NULL, &c->cand6);
	if (err) {
		n4_debug("IPv6: no candidate (%s): IPv4 only",
			 err == -ENOENT ? "no stable global address" : strerror(-err));
		return;
	}
	const char *h = cfg->server6_host ? cfg->server6_host : c->host;
	err = n4_resolve_v6(h, cfg->server_port, &c->server6);
	if (err) {
		N4_LOG_AT(cfg->server6_host ? N4_LOG_WARN : N4_LOG_DEBUG,
			  "IPv6: server '%s' has no IPv6 address: IPv4 only", h);
		return;
	}
	c->have_v6 = true;
	n4_info(" IPv6 candidate: %s ", inet_ntop(AF_INET6, &c->cand6, b, sizeof(b)));
}

static void v6_round_close(n4_client *c)
{
	if (c->v6_fd >= 0)
		close(c->v6_fd);
	if (c->v6_probe_fd >= 0)
		close(c->v6_probe_fd);
	c->v6_fd = c->v6_probe_fd = -1;
}

static int v6_socket(const struct in6_addr *addr)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = *addr };
	int one = 1;
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	/* Bound to the candidate: the kernel would pick a temporary address. */
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* After READY from our server: this round's punching socket and the V6 probe
 * (cand6.h).  Unkeyed, the probe leaves from the punching socket, whose address
 * the server passes on as seen.  Keyed, it leaves from another socket and
 * carries the punching socket's address sealed: the server learns our address
 * (it sees the IPv4 one too) but not the port, and can alter neither. */
static void v6_prepare(n4_client *c, struct n4_rv *rv)
{
	struct n4_v6probe p = { .kind = c->keyed ? N4_V6_PROBE_SEALED : N4_V6_PROBE };

	if (!c->have_v6 || !(rv->granted & N4_EXT_TOKEN) || (c->keyed && !rv->nonce))
		return;
	c->v6_fd = v6_socket(&c->cand6);
	if (c->v6_fd < 0) {
		n4_debug("IPv6 socket: %s", strerror(-c->v6_fd));
		c->v6_fd = -1;
		return;
	}
	memcpy(p.token, rv->token, N4_TOKEN_SIZE);
	int probe_fd = c->v6_fd;
	if (c->keyed) {
		struct sockaddr_in6 me;
		socklen_t len = sizeof(me);
		c->v6_probe_fd = v6_socket(&c->cand6);
		if (c->v6_probe_fd < 0 || getsockname(c->v6_fd, (struct sockaddr *)&me, &len)) {
			v6_round_close(c);
			return;
		}
		n4_cand6_seal(c->kid.mac_key, rv->nonce, &me, p.blob);
		probe_fd = c->v6_probe_fd;
	}
	n4_v6probe_encode(&p, rv->v6_probe);
	rv->server6 = c->server6;
	rv->v6_fd = probe_fd;
}

/* After PEERINFO: the partner's candidate, if the server passed one on and it is
 * usable.  1 = punch IPv6 too (c->p6 set up), 0 = IPv4 only. */
static int v6_peer(n4_client *c, const struct n4_rv *rv)
{
	struct sockaddr_in6 self, peer, me;
	socklen_t len = sizeof(me);
	char b[INET6_ADDRSTRLEN];
	int err;

	if (c->v6_probe_fd >= 0) {
		close(c->v6_probe_fd);
		c->v6_probe_fd = -1;
	}
	if (c->v6_fd < 0)
		return 0;
	if (rv->v6_bad || n4_v6rx_self(&rv->v6rx, &self)) {
		n4_debug(
			"IPv6: no report from the server (an older server, or our probe was lost)");
		goto none;
	}
	if (memcmp(&self.sin6_addr, &c->cand6, sizeof(c->cand6)) != 0)
		n4_warn("IPv6: the server saw our probe from %s, not our address: a translator "
			"on the path; trying it all the same",
			inet_ntop(AF_INET6, &self.sin6_addr, b, sizeof(b)));
	if (c->keyed) {
		uint8_t blob[N4_V6_SEALED_SIZE];
		if (n4_v6rx_sealed(&rv->v6rx, blob) || !rv->have_peer_nonce)
			goto none_peer;
		err = n4_cand6_open(c->kid.mac_key, rv->peer_nonce, blob, &peer);
		if (err) {
			n4_warn("IPv6: the partner's sealed candidate %s; IPv4 only",
				err == -EBADMSG ? "failed authentication" : "is unusable");
			goto none;
		}
	} else if ((err = n4_v6rx_peer(&rv->v6rx, &peer)) != 0) {
		if (err != -ENOENT)
			n4_warn("IPv6: the partner's candidate is unusable; IPv4 only");
		goto none_peer;
	}
	if (getsockname(c->v6_fd, (struct sockaddr *)&me, &len) == 0 &&
	    memcmp(&me.sin6_addr, &peer.sin6_addr, sizeof(peer.sin6_addr)) == 0 &&
	    me.sin6_port == peer.sin6_port)
		goto none; /* our own: a PUNCH there comes back to us */
	c->p6 = (struct n4_punch6){ .fd = c->v6_fd,
				    .peer = peer,
				    .any_ip = c->cfg.any_peer_ip,
				    .auth = c->keyed ? &c->auth : NULL };
	memcpy(c->p6.ident, c->ident, N4_PAYLOAD_SIZE);
	n4_info(" => Peer IPv6: [%s]:%u ", inet_ntop(AF_INET6, &peer.sin6_addr, b, sizeof(b)),
		ntohs(peer.sin6_port));
	return 1;
none_peer:
	n4_info(" IPv6: the partner has no candidate (no IPv6, or an older client): IPv4 only ");
none:
	v6_round_close(c);
	return 0;
}

/* This round's talk with the server up to the plan: HELLO, READY, then the
 * EXCHANGEs (with discovery probes when granted).  When the server keeps the
 * connection (N4_EXT_STAY) it is moved into *stay_fd; rv is closed on return.
 * 0, ROUND_AGAIN (the server called the pairing off), or <0. */
static int rendezvous(n4_client *c, const struct sockaddr_in *server, uint64_t deadline,
		      struct n4_rv *rv, int *stay_fd, bool *server_seen)
{
	const struct n4_client_cfg *cfg = &c->cfg;
	bool classic = cfg->strategy == N4_STRATEGY_CLASSIC;
	int probe_fds[NPROBES], err;
	unsigned nprobes = 0;

	/* classic = the original on the wire: no extension offered. */
	/* Keyed clients are relayed too: relay_auth proves the peer through it. */
	bool relay_ok = !cfg->no_relay;
	uint8_t offer = (uint8_t)(N4_EXT_TOKEN | N4_EXT_PROBE | N4_EXT_SEQ | N4_EXT_LOCAL |
				  (c->keyed ? N4_EXT_KEY : 0) | (relay_ok ? N4_EXT_RELAY : 0) |
				  (cfg->stay ? N4_EXT_STAY : 0) | N4_EXT_ROOM);
	n4_rv_init(rv, server, c->ident, classic ? 0 : offer);
	/* Rooms: the host's answer names its joiner; any other client says who it
	 * is, for a host to know it again after its recovery. */
	rv->room_sub = cfg->room_answer ? N4_ROOM_ANSWER : N4_ROOM_JOINER;
	memcpy(rv->room_payload, cfg->room_answer ? cfg->room_ticket : c->peer_id, N4_PAYLOAD_SIZE);
	rv->join_first = cfg->room_only && !cfg->room_answer && !classic;
	rv->lost_rounds = (uint8_t)(c->lost_rounds > 255 ? 255 : c->lost_rounds);
	rv->nosweep = cfg->no_sweep;
	if (c->keyed) {
		rv->long_id = c->kid.long_id;
		err = n4_auth_round(&c->auth, &c->kid); /* this round's nonce */
		if (err)
			return err;
		rv->nonce = c->auth.nonce;
	}
	uint64_t now = n4_now_ms();
	err = n4_rv_hello(rv, now + 5000 < deadline ? now + 5000 : deadline, &c->ctx);
	if (err)
		return err;
	*server_seen = true;
	now = n4_now_ms();
	err = n4_rv_ready(rv, now + READY_WAIT_MS < deadline ? now + READY_WAIT_MS : deadline,
			  &c->ctx);
	if (err == -ECONNRESET && rv->join_first) {
		n4_error("the server closed the connection at the room's join: it does not "
			 "support rooms (an original n4 server, or one run with --no-rooms)");
		return -EPROTONOSUPPORT;
	}
	if (err)
		return rv->again ? ROUND_AGAIN : err;
	v6_prepare(c, rv);
	if (rv->granted & N4_EXT_PROBE) {
		while (nprobes < NPROBES) {
			int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (fd < 0)
				break;
			probe_fds[nprobes++] = fd;
		}
		rv->probe_fds = probe_fds;
		rv->nprobes = nprobes;
	}
	now = n4_now_ms();
	err = n4_rv_exchange(rv, c->pool.fds[0],
			     now + EXCHANGE_WAIT_MS < deadline ? now + EXCHANGE_WAIT_MS : deadline,
			     &c->ctx);
	for (unsigned i = 0; i < nprobes; i++)
		close(probe_fds[i]);
	rv->probe_fds = NULL;
	rv->nprobes = 0;
	if (err && rv->again)
		err = ROUND_AGAIN;
	if (!err && (rv->granted & N4_EXT_STAY)) {
		*stay_fd = rv->tcp_fd; /* kept for REPUNCH notices, if this round wins */
		rv->tcp_fd = -1;
	}
	n4_rv_close(rv);
	return err;
}

static const char *fast_no_reason(uint8_t r)
{
	switch (r) {
	case N4_FAST_NO_PLAN:
		return "no plan from what it knows of both NATs";
	case N4_FAST_NO_PARTNER:
		return "the peer's request did not come";
	case N4_FAST_NO_LIMIT:
		return "its limits";
	case N4_FAST_NO_LONG:
		return "the peer went through an ordinary rendezvous";
	default:
		return "unknown reason";
	}
}

/* A fast flow's rendezvous (cfg.fast, fast.h): the request over the kept
 * connection and the probe from socket 0, resent until the answer, which fills
 * rv as an ordinary rendezvous leaves it (no TCP connection of its own, so no
 * kept one either).  0; ROUND_LONG_WAY (the server said NO, gave no answer, or
 * the channel failed: rendezvous as usual, at once); -EINTR, -ECANCELED. */
static int rendezvous_fast(n4_client *c, const struct sockaddr_in *server, uint64_t deadline,
			   struct n4_rv *rv, bool *server_seen)
{
	const struct n4_fast_chan *ch = c->cfg.fast;
	struct n4_fast_req r;
	uint8_t req[N4_FAST_REQ_MAX], probe[N4_MSG_SIZE];
	struct n4_fast_reply ans;
	int err;

	memset(&r, 0, sizeof(r));
	n4_rv_init(rv, server, c->ident, 0);
	rv->granted =
		(uint8_t)(N4_EXT_TOKEN | N4_EXT_PROBE | N4_EXT_SEQ | (c->keyed ? N4_EXT_KEY : 0));
	memcpy(r.ident, c->ident, N4_PAYLOAD_SIZE);
	r.tag = ch->tag;
	r.flags =
		(uint8_t)((c->keyed ? N4_FAST_KEYED : 0) | (c->cfg.no_sweep ? N4_FAST_NOSWEEP : 0));
	if (!r.tag || n4_random_bytes(r.token, sizeof(r.token)))
		return ROUND_LONG_WAY;
	if (c->keyed) {
		err = n4_auth_round(&c->auth, &c->kid); /* this round's nonce */
		if (err)
			return err;
		memcpy(r.nonce, c->auth.nonce, N4_NONCE_SIZE);
		rv->nonce = c->auth.nonce;
	}
	size_t len = n4_fast_req_encode(&r, req);
	err = ch->send(ch->arg, req, len);
	if (err < 0) {
		n4_debug("fast flow: request not sent (%s)", strerror(-err));
		return ROUND_LONG_WAY;
	}
	n4_fast_probe_encode(r.token, probe);
	uint64_t until = n4_now_ms() + N4_FAST_WAIT_MS;
	if (until > deadline)
		until = deadline;
	for (;;) {
		if (sendto(c->pool.fds[0], probe, sizeof(probe), MSG_NOSIGNAL,
			   (const struct sockaddr *)server, sizeof(*server)) < 0)
			n4_debug("fast flow: probe: %s", strerror(errno));
		uint64_t now = n4_now_ms();
		uint64_t slice =
			now + FAST_PROBE_RESEND_MS < until ? now + FAST_PROBE_RESEND_MS : until;
		err = ch->wait(ch->arg, ch->tag, &ans, slice);
		if (err == 1)
			break;
		if (c->cfg.cancel && *c->cfg.cancel)
			return -ECANCELED;
		if (err == -EINTR || err == -ECANCELED)
			return err;
		if (err == -ETIMEDOUT && n4_now_ms() < until)
			continue;
		n4_debug("fast flow: %s",
			 err == -ETIMEDOUT ? "no answer in time" : "the kept connection is gone");
		return ROUND_LONG_WAY;
	}
	*server_seen = true;
	if (ans.no) {
		n4_debug("fast flow: the server said no (%s)", fast_no_reason(ans.reason));
		return ROUND_LONG_WAY;
	}
	err = n4_rv_take_answer(rv, (const uint8_t(*)[N4_MSG_SIZE])ans.msgs, ans.n);
	if (err) {
		n4_warn("server sent a malformed fast flow answer; an ordinary rendezvous instead");
		return ROUND_LONG_WAY;
	}
	return 0;
}

/* Whether this round's plan may be swept (-ENOTSUP: it cannot, or --no-sweep
 * forbids it), at what pace, and whether the LAN path alone is tried. */
static int accept_plan(n4_client *c, struct n4_rv *rv, bool v6, bool *lan_only)
{
	const struct n4_client_cfg *cfg = &c->cfg;

	c->refused_nosweep = false;
	/* Without a public plan, or with one that --no-sweep forbids, the LAN
	 * path or the IPv6 one (direct: one port of the partner) may still do. */
	*lan_only =
		(rv->npeer_local > 0 || v6) && (rv->plan.kind == N4_PLAN_IMPOSSIBLE ||
						(cfg->no_sweep && rv->plan.kind != N4_PLAN_DIRECT));
	if (!*lan_only && rv->plan.kind == N4_PLAN_IMPOSSIBLE &&
	    (rv->tune.flags & N4_TUNE_NOSWEEP)) {
		n4_warn("this pair needs a sweep, which --no-sweep (here or at the peer) forbids");
		c->refused_nosweep = true;
		return -ENOTSUP;
	}
	if (!*lan_only && rv->plan.kind == N4_PLAN_IMPOSSIBLE) {
		n4_warn("the server judged both NATs unpredictable in this round");
		return -ENOTSUP;
	}
	if (!*lan_only && cfg->no_sweep && rv->plan.kind != N4_PLAN_DIRECT) {
		/* Only a direct path sends nothing but to the peer's one port. */
		n4_warn("the plan is a %s, and --no-sweep allows only direct paths",
			plan_name(rv->plan.kind));
		c->refused_nosweep = true;
		return -ENOTSUP;
	}
	/* The server's pace, if it sets one, is a ceiling on ours. */
	c->pacer.pps = cfg->max_pps;
	if (rv->tune.max_pps && (!c->pacer.pps || rv->tune.max_pps < c->pacer.pps))
		c->pacer.pps = rv->tune.max_pps;
	if (c->pacer.tokens > c->pacer.pps)
		c->pacer.tokens = c->pacer.pps;
	if (*lan_only) {
		n4_info(" Plan: none across the NAT; the %s alone ", v6 && rv->npeer_local
									     ? "LAN and IPv6 paths"
								     : v6 ? "IPv6 path"
									  : "LAN path");
		rv->plan.kind = N4_PLAN_IMPOSSIBLE; /* the sweep sends nothing across */
		return n4_pool_resize(&c->pool, 1); /* only socket 0 punches the LAN */
	}
	return 0;
}

/* The sweep this round runs: target, plan, authentication, and how long
 * (*round_ms) and in which confirmation mode, per strategy and peer. */
static int prepare_sweep(n4_client *c, const struct n4_rv *rv, bool lan_only, bool peer_is_n4,
			 struct n4_sweep *sw, unsigned *round_ms)
{
	const struct n4_client_cfg *cfg = &c->cfg;
	bool classic = cfg->strategy == N4_STRATEGY_CLASSIC;
	char b[32];

	*sw = (struct n4_sweep){ .pool = &c->pool,
				 .peer_ip = rv->peer.sin_addr,
				 .any_ip = cfg->any_peer_ip,
				 .plan = rv->plan,
				 .pacer = &c->pacer };
	memcpy(sw->ident, c->ident, N4_PAYLOAD_SIZE);
	sw->exclude = cfg->room_exclude;
	sw->nexclude = cfg->room_answer ? cfg->room_nexclude : 0;
	memcpy(sw->lan, rv->peer_local, sizeof(sw->lan));
	sw->nlan = rv->npeer_local;
	if (c->keyed) {
		n4_auth_bind(&c->auth, &rv->peer, rv->have_self ? &rv->self : NULL,
			     rv->have_peer_nonce ? rv->peer_nonce : NULL);
		sw->auth = &c->auth;
	}
	sw->target = rv->peer;
	sw->target.sin_port =
		htons((uint16_t)target_port(ntohs(rv->peer.sin_port), cfg->peer_offset));
	int err = apply_plan(c, sw);
	if (err)
		return err;
	n4_info(" [ Target: %s ] ", n4_addr_str(&sw->target, b, sizeof(b)));

	*round_ms = cfg->round_ms;
	if (!*round_ms &&
	    (rv->plan.kind == N4_PLAN_BDAY_LISTEN || rv->plan.kind == N4_PLAN_BDAY_PROBE))
		*round_ms = BDAY_ROUND_MS;
	if (!*round_ms && lan_only)
		*round_ms = LAN_ONLY_ROUND_MS;
	if (!*round_ms)
		*round_ms = classic || !peer_is_n4 ? CLASSIC_ROUND_MS : AUTO_ROUND_MS;
	if (classic) {
		sw->classic = true;
		c->confirm_mode = N4_CONFIRM_CLASSIC;
	} else {
		sw->low_ttl = cfg->low_ttl;
		/* Jitter skews the two PEERINFOs' arrival: the server widens the
		 * guard by what it measured (N4_EXT_SEQ). */
		sw->guard_ms = rv->tune.guard_ms ? rv->tune.guard_ms : AUTO_GUARD_MS;
		/* An original peer keeps its 10 s rounds and accepts only its exact
		 * PUNCH bytes: stay in step with it (round_ms above) and speak v1. */
		c->confirm_mode = peer_is_n4	? N4_CONFIRM_ACK
				  : rv->granted ? N4_CONFIRM_PLAIN
						: N4_CONFIRM_UNKNOWN;
	}
	return 0;
}

/* The sweep won: keep the winning socket, confirm if the peer expects it. */
static void take_win(n4_client *c, const struct n4_sweep *sw, bool peer_is_n4,
		     struct n4_result *res)
{
	if (sw->v6_won) {
		struct sockaddr_in6 me;
		socklen_t len = sizeof(me);
		n4_info(" => Punch from peer (IPv6) ");
		c->win_fd = c->v6_fd;
		c->v6_fd = -1;
		c->ports_used = c->pool.n;
		n4_pool_close(&c->pool, -1);
		c->family = AF_INET6;
		c->peer6 = sw->v6->from;
		c->got_ack = sw->v6->got_ack;
		c->won = true;
		c->peer_is_n4 = true;
		res->fd = c->win_fd;
		res->family = AF_INET6;
		res->peer6 = c->peer6;
		res->peer_is_n4 = true;
		res->local_port = getsockname(c->win_fd, (struct sockaddr *)&me, &len)
					  ? 0
					  : ntohs(me.sin6_port);
		n4_debug("won over IPv6 after %u IPv6 PUNCHes (%u over IPv4)", sw->v6->sent,
			 sw->sent);
		return;
	}
	v6_round_close(c);
	n4_info(" => Punch from peer ");
	if (sw->via_lan)
		n4_info(" [ Path: LAN, the partner's local address ] ");
	c->win_fd = c->pool.fds[sw->winner];
	c->ports_used = c->pool.n;
	n4_pool_close(&c->pool, (int)sw->winner);
	c->peer = sw->from;
	c->got_ack = sw->got_ack;
	c->won = true;
	c->peer_is_n4 = peer_is_n4;
	/* The original confirms before it reports; so does a RANGE walker, whose
	 * peer may have settled on another socket than the one heard first: its
	 * acknowledgement says which (n4_confirm). */
	if (c->cfg.strategy == N4_STRATEGY_CLASSIC || sw->plan.kind == N4_PLAN_RANGE)
		n4_client_confirm(c);
	res->fd = c->win_fd;
	res->peer = c->peer;
	res->peer_is_n4 = peer_is_n4;
	res->local_port = local_port_of(c->win_fd);
	n4_debug("won with %u PUNCHes sent from %u sockets", sw->sent, c->ports_used);
}

/* One round: rendezvous, then sweep.  1 = WIN, 0 = lost round, ROUND_AGAIN,
 * <0 = error. */
static int run_round(n4_client *c, const struct sockaddr_in *server, uint16_t src_port,
		     uint64_t deadline, struct n4_result *res, bool *server_seen)
{
	const struct n4_client_cfg *cfg = &c->cfg;
	struct n4_rv rv;
	struct n4_sweep sw;
	unsigned round_ms;
	bool lan_only;
	int err, stay_fd = -1;

	n4_info("==================");
	if (src_port)
		n4_info("Source port: %u-%u", src_port, src_port + cfg->pool_size);
	else
		n4_info("Source port: %u kernel-chosen ports", cfg->pool_size);
	if (cfg->room_answer)
		err = n4_pool_borrow(&c->pool, cfg->host_fd);
	else
		err = n4_pool_open(&c->pool, src_port, cfg->pool_size);
	if (err) {
		n4_error("cannot open %u UDP sockets from port %u: %s", cfg->pool_size, src_port,
			 strerror(-err));
		return err;
	}
	err = ROUND_LONG_WAY;
	if (cfg->fast && !c->fast_tried && !cfg->room_answer && !cfg->room_only) {
		/* One try: a lost round or a NO goes the long way from then on. */
		c->fast_tried = true;
		err = rendezvous_fast(c, server, deadline, &rv, server_seen);
	}
	if (err == ROUND_LONG_WAY)
		err = rendezvous(c, server, deadline, &rv, &stay_fd, server_seen);
	if (err)
		goto out;
	/* A room's host answers no SIDE: its peers are many, on one socket. */
	c->peer_is_host = rv.granted && (rv.peer_flags & N4_PEER_HOST);
	if (rv.relay_port) {
		v6_round_close(c);
		err = relay_round(c, server, &rv, deadline, res);
		if (err == 1) {
			/* A relayed path recovers and upgrades through REPUNCH too. */
			if (c->stay_fd >= 0)
				close(c->stay_fd);
			c->stay_fd = stay_fd;
		} else if (stay_fd >= 0) {
			close(stay_fd);
		}
		return err;
	}
	bool v6 = v6_peer(c, &rv) == 1;
	err = accept_plan(c, &rv, v6, &lan_only);
	if (err)
		goto out;
	/* A keyed peer that passes authentication is ours by construction. */
	bool peer_is_n4 = (rv.granted && (rv.peer_flags & N4_PEER_N4)) || c->keyed;
	err = prepare_sweep(c, &rv, lan_only, peer_is_n4, &sw, &round_ms);
	if (err)
		goto out;
	if (v6)
		sw.v6 = &c->p6;
	uint64_t now = n4_now_ms();
	int won = n4_sweep_run(&sw, now + round_ms < deadline ? now + round_ms : deadline, &c->ctx);
	if (won == 0 && c->keyed && c->auth.failures) {
		char pb[32];
		n4_warn("peer failed authentication (%u datagrams from %s); asking the server "
			"for another partner",
			c->auth.failures, n4_addr_str(&rv.peer, pb, sizeof(pb)));
	}
	if (won <= 0) {
		/* LAN alone lost: as unpunchable as without it (refused at two).
		 * IPv6 alone lost: a lost round, after which the server relays. */
		err = won == 0 && lan_only && !(v6 && !rv.npeer_local) ? -ENOTSUP : won;
		if (err == -ENOTSUP) {
			c->refused_nosweep = cfg->no_sweep || (rv.tune.flags & N4_TUNE_NOSWEEP);
			n4_warn("no answer from the partner's local address, and no plan "
				"across the NAT to fall back on");
		}
		goto out;
	}
	if (c->stay_fd >= 0)
		close(c->stay_fd);
	c->stay_fd = stay_fd;
	take_win(c, &sw, peer_is_n4, res);
	return 1;
out:
	v6_round_close(c);
	if (stay_fd >= 0)
		close(stay_fd);
	n4_rv_close(&rv);
	c->ports_used = c->pool.n;
	n4_pool_close(&c->pool, -1);
	return err;
}

/* Do not hammer a server that refuses, is restarting, or calls every pairing
 * off: RECONNECT_MS (at most until the deadline), interruptible like any wait. */
static int reconnect_pause(n4_client *c, uint64_t deadline)
{
	struct pollfd none = { .fd = -1 };
	uint64_t until = n4_now_ms() + RECONNECT_MS;

	return n4_wait(&none, 1, until < deadline ? until : deadline, &c->ctx);
}

int n4_client_run(n4_client *c, struct n4_result *res)
{
	const struct n4_client_cfg *cfg = &c->cfg;
	uint64_t start = n4_now_ms();
	uint64_t deadline = cfg->timeout_ms ? start + cfg->timeout_ms : UINT64_MAX;
	struct sockaddr_in server;
	uint16_t src = cfg->src_port;
	bool server_seen = false;
	int err = 0, last_failure = 0;
	unsigned unpunchable_rounds = 0, agains = 0;

	if (c->won)
		return -EALREADY;
	if (!c->keyed)
		n4_warn("no key: anyone who uses the identifier '%s' on this server can pair "
			"with you; see 'n4 genkey' and -k",
			cfg->ident);
	memset(res, 0, sizeof(*res));
	res->fd = -1;
	res->family = AF_INET;
	v6_setup(c);
	err = n4_resolve_v4(c->host, cfg->server_port, &server);
	if (err) {
		give_up(c, "cannot resolve server '%s'", c->host);
		return err;
	}
	for (unsigned round = 1;; round++) {
		err = run_round(c, &server, src, deadline, res, &server_seen);
		if (err == 1) {
			res->rounds = round;
			res->elapsed_ms = (unsigned)(n4_now_ms() - start);
			return 0;
		}
		if (err == ROUND_AGAIN) {
			/* Same ports: nothing was sent to a peer in this round. */
			if (n4_now_ms() >= deadline)
				break;
			n4_info("the server called this pairing off (its partner on the short "
				"id had another key, or left); HELLO again");
			if (++agains <= AGAIN_FAST)
				continue;
			int w = reconnect_pause(c, deadline);
			if (w < 0)
				return w;
			continue;
		}
		agains = 0;
		if (cfg->room_answer) {
			/* A ticket answers one join: the joiner's next round is a
			 * new join, with a new ticket. */
			give_up(c, "the room's joiner was not reached in one round");
			return err < 0 ? err : -ETIMEDOUT;
		}
		/* One misjudged measurement (a port counter wrapping mid-probe) must
		 * not end the attempt: refuse only when a second round agrees. */
		if (err == -ENOTSUP && ++unpunchable_rounds >= 2 && c->refused_nosweep) {
			give_up(c, "this pair can only be punched by sweeping ports, which "
				   "--no-sweep forbids: it needs a relay");
			return err;
		}
		if (err == -ENOTSUP && unpunchable_rounds >= 2) {
			give_up(c, "both NATs allocate unpredictable ports (random, or random "
				   "against per-destination): this pair cannot be punched "
				   "without a relay");
			return err;
		}
		if (err != -ENOTSUP)
			unpunchable_rounds = 0;
		if (err == 0 || err == -ENOTSUP)
			c->lost_rounds++;
		if (err == -EINTR || err == -ECANCELED || err == -EINVAL || err == -ENOMEM ||
		    err == -EADDRINUSE || err == -ERANGE || err == -EACCES ||
		    err == -EPROTONOSUPPORT)
			return err;
		if (err < 0 && err != -ETIMEDOUT)
			last_failure = err;
		if (n4_now_ms() >= deadline)
			break;
		if (err == 0) {
			n4_info("[ LOSE ]");
		} else if (err != -ENOTSUP) {
			char b[32];
			n4_warn("round %u failed: %s (server %s); retrying", round, strerror(-err),
				n4_addr_str(&server, b, sizeof(b)));
			int w = reconnect_pause(c, deadline);
			if (w < 0)
				return w;
		}
		/* Fresh local ports, fresh NAT mappings, as the original. */
		if (src) {
			unsigned used = c->ports_used ? c->ports_used : cfg->pool_size;
			unsigned next = (unsigned)src + used;
			src = (uint16_t)(next + cfg->pool_size - 1 > 65535 ? cfg->src_port : next);
		}
	}
	if (!server_seen) {
		char b[32];
		give_up(c, "server %s unreachable: %s", n4_addr_str(&server, b, sizeof(b)),
			last_failure ? strerror(-last_failure) : "no answer");
		return -EHOSTUNREACH;
	}
	give_up(c, "no WIN within %u s, giving up", cfg->timeout_ms / 1000);
	return -ETIMEDOUT;
}

int n4_client_confirm(n4_client *c)
{
	if (!c->won || c->win_fd < 0)
		return -EINVAL;
	if (c->confirmed || (c->relayed && !c->keyed))
		return 0; /* an unkeyed relayed peer gets no PUNCH to confirm */
	c->confirmed = true;
	if (c->family == AF_INET6) {
		int r6 = n4_confirm6(c->win_fd, &c->peer6, c->ident, c->keyed ? &c->auth : NULL,
				     c->got_ack, c->cfg.confirm_ms, &c->ctx);
		return r6 < 0 ? r6 : 0;
	}
	if (c->keyed) {
		int ra = n4_confirm_auth(c->win_fd, &c->peer, &c->auth, c->cfg.confirm_ms, &c->ctx);
		return ra < 0 ? ra : 0;
	}
	struct sockaddr_in won = c->peer;
	int r = n4_confirm(c->win_fd, &c->peer, c->ident, c->confirm_mode, c->got_ack,
			   c->cfg.confirm_ms, &c->ctx);
	/* An acknowledgement from another port moves the peer (a range walker kept
	 * another socket), unless that port is another peer of a room's host. */
	if (c->cfg.room_answer &&
	    n4_addr_excluded(&c->peer, c->cfg.room_exclude, c->cfg.room_nexclude))
		c->peer = won;
	return r < 0 ? r : 0;
}

int n4_client_side(n4_client *c, const struct n4_side *mine, struct n4_side *peer,
		   unsigned timeout_ms)
{
	if (!c->won || c->win_fd < 0)
		return -EINVAL;
	/* An original peer would take a SIDE for data; a room's host answers no
	 * SIDE (its peers are many, on one socket). */
	if (!c->peer_is_n4 || c->peer_is_host || c->cfg.room_answer || c->cfg.room_only)
		return 0;
	/* Over the path that won: IPv4, or the direct IPv6 one. */
	if (c->family == AF_INET6)
		return n4_side_exchange(c->win_fd, (const struct sockaddr *)&c->peer6,
					sizeof(c->peer6), c->ident, c->keyed ? &c->auth : NULL,
					mine, peer, timeout_ms, &c->ctx);
	return n4_side_exchange(c->win_fd, (const struct sockaddr *)&c->peer, sizeof(c->peer),
				c->ident, c->keyed ? &c->auth : NULL, mine, peer, timeout_ms,
				&c->ctx);
}

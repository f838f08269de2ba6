/* srv_proto.c - the server's protocol layer: decode and dispatch of every message
 * on TCP (HELLO, STAY, FLOW, KEYID, LOCAL, RELAY) and UDP (EXCHANGE, probes), the one
 * deadline each connection has and what its expiry means, the close rules (a
 * partner left alone is told AGAIN or closed), and the PEERINFO gate: when both
 * EXCHANGEs, long ids, probes, LOCALs and lost-round counts are in, PEERINFOs are
 * timed to arrive together.
 *
 * Every connection is in exactly one state (pairing.h) with exactly one deadline
 * armed, so nothing a client does or fails to do can hold resources for longer
 * than the sum of the configured timeouts.
 *
 * May call: the transport's connection functions (n4_srv_conn_*, srv_net.c), the
 * leaves (pairing.c, srv_disc.c, srv_relay.c, srv_stay.c, srv_lan.c, srv_room.c), loop.c's
 * timers, wire.c, log.c.  Called by the transport through n4_srv_proto_*. */
#include "n4.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "blake2s.h"
#include "log.h"
#include "server_int.h"

static void send_ready(struct conn *c);
static void send_again(struct conn *c);
static void maybe_schedule(struct n4_server *s, struct conn *c);
static void handle_room_first(struct conn *c);
static void host_hello(struct conn *c, const struct n4_msg *m);
static void register_host(struct conn *c);
static bool room_hello(struct conn *c, bool asked_key);
static bool room_long_id(struct conn *c);
static void handle_room_msg(struct conn *c);

/* --- deadlines --------------------------------------------------------- */

static unsigned keyid_wait_ms(const struct n4_server *s)
{
	return s->cfg.hello_timeout_ms < KEYID_WAIT_MS ? s->cfg.hello_timeout_ms : KEYID_WAIT_MS;
}

/* A keyed client whose long id is not in yet has until keyid_wait_ms. */
static unsigned deadline_ms(const struct conn *c, unsigned ms)
{
	if ((c->pc.ext & N4_EXT_KEY) && !c->pc.keyed)
		return keyid_wait_ms(c->srv);
	return ms;
}

/* Why a connection past its deadline is closed, counted and logged. */
static void deadline_reason(struct conn *c)
{
	struct n4_server *s = c->srv;
	char b[64];

	switch (c->pc.state) {
	case N4_P_NEW:
		s->rejects[REJ_HELLO_TIMEOUT]++;
		n4_info("%s: no HELLO within %u ms (%u bytes received), dropped",
			n4_srv_conn_str(c, b, sizeof(b)), s->cfg.hello_timeout_ms, c->in_len);
		break;
	case N4_P_WAITING:
		s->rejects[REJ_WAIT_TIMEOUT]++;
		n4_info("%s: no partner within %u ms, dropped", n4_srv_conn_str(c, b, sizeof(b)),
			s->cfg.wait_timeout_ms);
		break;
	case N4_P_PAIRED:
		s->rejects[REJ_EXCH_TIMEOUT]++;
		if (c->room.role == N4_ROLE_HELD || c->room.role == N4_ROLE_MEMBER)
			n4_info("%s: the room's host did not answer within %u ms, dropped",
				n4_srv_conn_str(c, b, sizeof(b)), s->cfg.exchange_timeout_ms);
		else
			n4_info("%s: no EXCHANGE from the pair within %u ms, dropped",
				n4_srv_conn_str(c, b, sizeof(b)), s->cfg.exchange_timeout_ms);
		break;
	default:
		if (c->room.role == N4_ROLE_HOST) {
			n4_info("%s: room connection closed after %u h (its host registers again)",
				n4_srv_conn_str(c, b, sizeof(b)), N4_ROOM_MAX_MS / 3600000u);
			break;
		}
		if (c->stay.on) {
			n4_info("%s: kept connection closed after %u s",
				n4_srv_conn_str(c, b, sizeof(b)), N4_STAY_MAX_MS / 1000);
			break;
		}
		if (c->again_sent) {
			n4_info("%s: its client did not close after AGAIN, closed",
				n4_srv_conn_str(c, b, sizeof(b)));
			break;
		}
		s->rejects[REJ_SEND_TIMEOUT]++;
		n4_info("%s: PEERINFO could not be delivered, dropped",
			n4_srv_conn_str(c, b, sizeof(b)));
		break;
	}
}

static void deadline_fired(n4_loop *loop, struct n4_timer *t)
{
	struct conn *c = t->arg;
	struct n4_server *s = c->srv;
	char b[64];
	(void)loop;

	if ((c->pc.ext & N4_EXT_KEY) && !c->pc.keyed &&
	    (c->pc.state == N4_P_WAITING || c->pc.state == N4_P_PAIRED)) {
		/* Our client sends its long id the moment it is asked: this one
		 * holds a short id it cannot prove.  If it was paired on it, the
		 * partner is told AGAIN (n4_srv_proto_closed) and the short id is
		 * paired on long ids alone for a while. */
		if (c->pc.state == N4_P_PAIRED)
			n4_pairing_contest(s->pairing, c->pc.ident);
		s->rejects[REJ_HELLO_TIMEOUT]++;
		n4_info("%s: no keyed id within %u ms, dropped", n4_srv_conn_str(c, b, sizeof(b)),
			keyid_wait_ms(s));
		n4_srv_conn_close(c, true);
		return;
	}
	deadline_reason(c);
	n4_srv_conn_close(c, true);
}

static void arm_deadline(struct conn *c, unsigned ms)
{
	if (c->closed)
		return;
	if (n4_timer_arm(c->srv->loop, &c->deadline, n4_now_ms() + ms, deadline_fired, c))
		n4_srv_conn_close(c, true);
}

/* --- the transport's hooks --------------------------------------------- */

void n4_srv_proto_opened(struct conn *c)
{
	struct sockaddr_in v4;

	if (n4_sa_to_v4(&c->tcp_addr, &v4))
		c->pc.ip = v4.sin_addr.s_addr;
	else
		c->pc.tcp_v6 = true;
	c->pc.owner = c;
	c->room.owner = c;
	arm_deadline(c, c->srv->cfg.hello_timeout_ms);
}

/* A client granted N4_EXT_RELAY sends one RELAY message right after READY. */
static bool wants_relay_ask(const struct conn *c)
{
	return (c->pc.ext & N4_EXT_RELAY) && c->pc.state == N4_P_PAIRED && !c->relay.heard;
}

/* After HELLO: a keyed client's long id (three KEYID); after READY: its nonce
 * (three more KEYID), with N4_EXT_LOCAL its LOCAL messages, with N4_EXT_RELAY its
 * RELAY. */
static bool wants_keyid(const struct conn *c)
{
	return (c->pc.ext & N4_EXT_KEY) &&
	       ((c->pc.state == N4_P_WAITING && c->keyid_parts < N4_LONGID_PARTS) ||
		(c->pc.state == N4_P_PAIRED && c->keyid_parts < 2 * N4_LONGID_PARTS));
}

/* A client granted N4_EXT_ROOM sends one ROOM message right after READY (after
 * a keyed client's nonce): a joiner's peer id, or a host's answer's ticket. */
static bool wants_room(const struct conn *c)
{
	return (c->pc.ext & N4_EXT_ROOM) && c->pc.state == N4_P_PAIRED && !c->room_heard;
}

static bool wants_local(const struct conn *c)
{
	return c->pc.state == N4_P_PAIRED && n4_srv_lan_pending(c->lan);
}

bool n4_srv_proto_wants(const struct conn *c)
{
	return c->pc.state == N4_P_NEW || c->stay.on || wants_keyid(c) || wants_local(c) ||
	       wants_relay_ask(c) || wants_room(c);
}

static void handle_hello(struct conn *c);
static void fast_long_way(struct n4_server *s, const struct conn *hello);
static void handle_keyid(struct conn *c);
static void handle_local(struct conn *c);
static void handle_relay_ask(struct conn *c);
static void handle_flow(struct conn *c);

void n4_srv_proto_message(struct conn *c)
{
	bool want_keyid = wants_keyid(c), want_local = wants_local(c);

	/* Several may follow READY: told apart by their command.  ROOM comes
	 * first (after a keyed client's nonce).  A kept connection carries FLOWs
	 * only. */
	if (c->stay.on) {
		c->in_len = 0;
		handle_flow(c);
	} else if (wants_room(c) && (c->in[0] == N4_CMD_ROOM || !want_keyid)) {
		c->in_len = 0;
		handle_room_msg(c);
	} else if (wants_relay_ask(c) &&
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
}

/* Nothing else may follow a HELLO: the protocol has no other client-to-server
 * TCP message. */
void n4_srv_proto_stray(struct conn *c)
{
	char b[64];

	if (c->pc.state == N4_P_DONE)
		return; /* closing anyway once PEERINFO is out */
	c->srv->rejects[REJ_PROTOCOL]++;
	n4_info("%s: unexpected bytes after HELLO, closed", n4_srv_conn_str(c, b, sizeof(b)));
	n4_srv_conn_close(c, true);
}

/* EOF or reset.  A client that half-closes after HELLO is treated as gone: the
 * original never does, and a dead client must not be paired with a live one. */
void n4_srv_proto_eof(struct conn *c, bool reset)
{
	char b[64];

	if (c->pc.state != N4_P_DONE) {
		c->srv->client_closed++;
		n4_info("%s: connection closed by client%s", n4_srv_conn_str(c, b, sizeof(b)),
			reset ? " (reset)" : "");
	}
	n4_srv_conn_close(c, true);
}

bool n4_srv_proto_detach(struct conn *c, struct n4_srv_detached *d)
{
	struct n4_server *s = c->srv;

	d->partner = c->pc.partner ? c->pc.partner->owner : NULL;
	n4_srv_stay_remove(&s->staying, &c->stay);
	n4_srv_fast_drop_all(s->loop, &s->fast, c->fast);
	n4_timer_cancel(s->loop, &c->deadline);
	n4_timer_cancel(s->loop, &c->peerinfo_timer);
	n4_srv_disc_free(s->loop, c->disc);
	c->disc = NULL;
	n4_srv_lan_free(c->lan);
	c->lan = NULL;
	if (c->room.role == N4_ROLE_HOST) {
		char b[64];
		n4_info("%s: the room's host left (the room waits %u s for it)",
			n4_srv_conn_str(c, b, sizeof(b)), N4_ROOM_LINGER_MS / 1000);
	}
	if (s->rooms)
		n4_srv_room_leave(s->rooms, &c->room, n4_now_ms());
	d->released = n4_pairing_remove(s->pairing, &c->pc);
	return c->pc.state == N4_P_DONE;
}

void n4_srv_proto_closed(struct conn *c, const struct n4_srv_detached *d, bool close_partner)
{
	struct n4_server *s = c->srv;
	struct conn *partner = d->partner;

	/* A partner still waiting for its PEERINFO can never get it now: close it
	 * so that its client starts a new round at once instead of timing out. */
	if (close_partner && partner && partner->pc.state == N4_P_PAIRED) {
		char b[64];
		s->rejects[REJ_PARTNER_GONE]++;
		n4_info("%s: partner left before the exchange completed",
			n4_srv_conn_str(partner, b, sizeof(b)));
		if (partner->pc.ext & N4_EXT_KEY)
			send_again(partner); /* it understands AGAIN */
		else
			n4_srv_conn_close(partner, false);
	}
	if (d->released)
		send_ready(d->released->owner);
}

/* Clients that are not in an exchange cannot finish soon: closed (their clients
 * retry elsewhere or later); pairs in the exchange get drain_timeout_ms.  So are
 * a room's connection (it lives for hours) and the joiners its host has not
 * answered (no answer connection is accepted any more). */
static bool cannot_finish(const struct conn *c)
{
	return c->pc.state == N4_P_NEW || c->pc.state == N4_P_WAITING || c->stay.on ||
	       c->room.role == N4_ROLE_HOST || c->room.role == N4_ROLE_MEMBER ||
	       c->room.role == N4_ROLE_HELD;
}

unsigned n4_srv_proto_drain(n4_server *s)
{
	unsigned finishing = 0;

	for (struct conn *c = s->live, *next; c; c = next) {
		next = c->next;
		if (cannot_finish(c)) {
			s->rejects[REJ_SHUTDOWN]++;
			n4_srv_conn_close(c, false);
		} else {
			finishing++;
			uint64_t due = n4_now_ms() + s->cfg.drain_timeout_ms;
			if (!c->deadline.slot || c->deadline.due_ms > due)
				n4_timer_arm(s->loop, &c->deadline, due, deadline_fired, c);
		}
	}
	return finishing;
}

/* --- STAY (srv_stay.c) ------------------------------------------------- */

/* Kept for a REPUNCH notice (N4_EXT_STAY); out of the pairing tables. */
static void start_staying(struct conn *c)
{
	struct n4_server *s = c->srv;

	n4_pairing_remove(s->pairing, &c->pc);
	n4_srv_stay_add(&s->staying, &c->stay, c->pc.ident, c);
	/* in[] now takes FLOWs: a STAY registration's own message is handled; a
	 * message cut by PEERINFO (a keyed client's nonce) completes first. */
	if (c->in_len == N4_MSG_SIZE)
		c->in_len = 0;
	arm_deadline(c, N4_STAY_MAX_MS);
}

/* One REPUNCH, and the kept connection is closed; its client opens a new one
 * with its next rendezvous. */
static void send_repunch(struct conn *to)
{
	struct n4_msg m;
	char b[64];

	n4_srv_stay_repunch(to->pc.ident, &m);
	n4_info(" <= Repunch to %s", n4_srv_conn_str(to, b, sizeof(b)));
	to->close_after_flush = true;
	n4_srv_conn_send(to, &m);
}

/* A HELLO for an identifier whose earlier pair kept connections: the peer of that
 * pair came back, so tell the ones still running to punch again. */
static void notify_staying(struct n4_server *s, const struct conn *hello)
{
	struct n4_srv_stay *n = n4_srv_stay_first(&s->staying, hello->pc.ident), *next;

	for (; n; n = next) {
		next = n4_srv_stay_next(n);
		send_repunch(n->owner);
	}
}

/* What a client may still send after PEERINFO went out: PEERINFO does not wait
 * for a keyed client's nonce, nor for a LOCAL, RELAY or ROOM message that came
 * too late to matter.  On a kept connection they are read and ignored. */
static bool late_rendezvous_msg(uint8_t cmd)
{
	return cmd == N4_CMD_KEYID || cmd == N4_CMD_LOCAL || cmd == N4_CMD_RELAY ||
	       cmd == N4_CMD_ROOM;
}

/* FLOW on a kept connection: its client punches a further flow to its peer
 * ("calls"), and the peer's side may only listen on that port; every other kept
 * connection of the identifier (the pair's peer; with a key the identifier is the
 * key's derived id) is told, and the connections stay open. */
static void handle_fast(struct conn *c);

static void handle_flow(struct conn *c)
{
	struct n4_server *s = c->srv;
	struct n4_flow_note f;
	struct n4_msg fwd;
	unsigned told = 0;
	char b[64];

	if (late_rendezvous_msg(c->in[0]))
		return;
	if (c->in[0] == N4_CMD_FAST) {
		handle_fast(c);
		return;
	}
	if (n4_srv_stay_flow(c->in, &fwd, &f)) {
		s->rejects[REJ_PROTOCOL]++;
		n4_info("%s: not a FLOW on a kept connection (%02x %02x ...), closed",
			n4_srv_conn_str(c, b, sizeof(b)), c->in[0], c->in[1]);
		n4_srv_conn_close(c, false);
		return;
	}
	if (!n4_srv_stay_flow_admit(&c->stay, n4_now_ms())) {
		s->flows_dropped++;
		n4_debug("%s: FLOW over %u/s, dropped", n4_srv_conn_str(c, b, sizeof(b)),
			 N4_STAY_FLOW_RATE);
		return;
	}
	struct n4_srv_stay *n = n4_srv_stay_first(&s->staying, c->pc.ident), *next;
	for (; n; n = next) {
		struct conn *to = n->owner;
		next = n4_srv_stay_next(n); /* a failed send closes to */
		/* One told REPUNCH is closing: its client registers again. */
		if (to == c || to->close_after_flush || !n4_srv_conn_has_room(to))
			continue;
		n4_srv_conn_send(to, &fwd);
		told++;
	}
	if (!told) {
		s->flows_dropped++;
		n4_debug("%s: FLOW and no other kept connection for it, dropped",
			 n4_srv_conn_str(c, b, sizeof(b)));
		return;
	}
	s->flows++;
	n4_info(" => Flow from %s, ports %u -> %u, to %u kept connection%s",
		n4_srv_conn_str(c, b, sizeof(b)), f.from_port, f.to_port, told,
		told == 1 ? "" : "s");
}

/* STAY as a connection's first message: a client whose kept connection was lost
 * (its NAT forgot the TCP mapping) registers again for notices.  If a client with
 * that identifier is already waiting for a partner, it is told at once.  The scan
 * of waiting clients happens only for these rare registrations. */
static void handle_stay(struct conn *c)
{
	struct n4_server *s = c->srv;
	char ident[N4_PAYLOAD_SIZE + 1], b[64];

	if (n4_srv_stay_decode(c->in, s->only_ident[0] ? s->only_ident_wire : NULL, c->pc.ident,
			       ident)) {
		s->rejects[REJ_BAD_HELLO]++;
		n4_info("%s: STAY for a bad or refused identifier, closed",
			n4_srv_conn_str(c, b, sizeof(b)));
		n4_srv_conn_close(c, false);
		return;
	}
	c->pc.ext = N4_EXT_STAY;
	c->pc.state = N4_P_DONE;
	n4_info(" => Stay from %s ident '%s'", n4_srv_conn_str(c, b, sizeof(b)), ident);
	start_staying(c);
	for (struct conn *w = s->live; w; w = w->next) {
		if (w != c && w->pc.state == N4_P_WAITING &&
		    memcmp(w->pc.ident, c->pc.ident, N4_PAYLOAD_SIZE) == 0) {
			send_repunch(c);
			return;
		}
	}
}

/* --- HELLO, KEYID, READY, AGAIN ---------------------------------------- */

static void send_ready(struct conn *c)
{
	struct n4_msg m;

	/* Its partner's READY failed and it was told AGAIN (or closed) meanwhile. */
	if (c->closed || c->pc.state != N4_P_PAIRED)
		return;
	if (c->pc.held) {
		/* READY follows when the legacy client ahead of it is attributed
		 * (pairing.h); the exchange deadline covers the wait. */
		arm_deadline(c, c->srv->cfg.exchange_timeout_ms);
		return;
	}
	if (c->pc.ext & N4_EXT_PROBE) {
		c->disc = n4_srv_disc_new(c->pc.ext & N4_EXT_SEQ);
		if (!c->disc)
			c->pc.ext &= (uint8_t)~N4_EXT_PROBE; /* plan without discovery */
	}
	if (c->pc.ext & N4_EXT_LOCAL) {
		c->lan = n4_srv_lan_new();
		if (!c->lan)
			c->pc.ext &= (uint8_t)~N4_EXT_LOCAL; /* the public path only */
	}
	/* The HELLO is handled: in[] now takes LOCAL messages.  A keyed client's
	 * in[] may hold part of a KEYID (it was paired while sending its long id):
	 * handle_keyid empties it after each message. */
	if (!(c->pc.ext & N4_EXT_KEY))
		c->in_len = 0;
	n4_msg_init(&m, N4_CMD_READY, c->pc.ext, (c->pc.ext & N4_EXT_TOKEN) ? c->pc.token : NULL);
	c->ready_ms = n4_now_ms();
	arm_deadline(c, deadline_ms(c, c->srv->cfg.exchange_timeout_ms));
	n4_srv_conn_send(c, &m);
}

static void send_ready_pair(struct conn *waiting, struct conn *c)
{
	char b[64], b2[64];

	n4_info(" <= Ready to %s and %s", n4_srv_conn_str(waiting, b2, sizeof(b2)),
		n4_srv_conn_str(c, b, sizeof(b)));
	send_ready(waiting);
	send_ready(c); /* nothing if the first failed: c was closed or told AGAIN */
}

/* The pairing fell through for a keyed client (N4_CMD_AGAIN): its partner
 * turned out to have another long id, or left.  Its client says HELLO again at
 * once, on a new connection; this one ends with the client's EOF. */
static void send_again(struct conn *c)
{
	struct n4_msg m;
	char b[64];

	if (c->closed)
		return;
	(void)n4_pairing_remove(c->srv->pairing, &c->pc); /* keyed: never holds */
	n4_timer_cancel(c->srv->loop, &c->peerinfo_timer);
	c->pc.state = N4_P_DONE;
	n4_info(" <= Again to %s", n4_srv_conn_str(c, b, sizeof(b)));
	arm_deadline(c, c->srv->cfg.hello_timeout_ms);
	c->shut_after_flush = c->again_sent = true;
	n4_msg_init(&m, N4_CMD_AGAIN, 0, c->pc.ident);
	n4_srv_conn_send(c, &m);
}

/* The extensions granted for what a HELLO asked (m->ext). */
static uint8_t grant_ext(const struct n4_server *s, uint8_t asked)
{
	uint8_t ext = asked & N4_EXT_ALL;

	/* Discovery rides on the token and needs the second UDP port. */
	if ((asked & N4_EXT_PROBE) && (ext & N4_EXT_TOKEN) && s->probe_io.fd >= 0)
		ext |= N4_EXT_PROBE;
	/* The relay's registration rides on the token's pairing too.  Keyed
	 * pairs are relayed as well: they authenticate each other through it. */
	if ((asked & N4_EXT_RELAY) && (ext & N4_EXT_TOKEN) && s->relay)
		ext |= N4_EXT_RELAY;
	if ((asked & N4_EXT_STAY) && (ext & N4_EXT_TOKEN))
		ext |= N4_EXT_STAY;
	if ((asked & N4_EXT_SEQ) && (ext & N4_EXT_PROBE))
		ext |= N4_EXT_SEQ; /* numbered probes: jitter and loss (discover.c) */
	if ((asked & N4_EXT_LOCAL) && (ext & N4_EXT_TOKEN))
		ext |= N4_EXT_LOCAL;
	if ((asked & N4_EXT_ROOM) && (ext & N4_EXT_TOKEN) && s->rooms)
		ext |= N4_EXT_ROOM;
	return ext;
}

static void handle_hello(struct conn *c)
{
	struct n4_server *s = c->srv;
	struct n4_msg m;
	char ident[N4_PAYLOAD_SIZE + 1], b[64];

	if (c->in[0] == N4_CMD_STAY) {
		handle_stay(c);
		return;
	}
	if (c->in[0] == N4_CMD_ROOM && c->room.role == N4_ROLE_NONE && c->srv->rooms) {
		handle_room_first(c);
		return;
	}
	if (n4_wire_decode(c->in, N4_MSG_SIZE, N4_CMD_HELLO, &m) ||
	    n4_ident_decode(m.payload, ident)) {
		s->rejects[REJ_BAD_HELLO]++;
		n4_info("%s: malformed HELLO (%02x %02x ...), closed",
			n4_srv_conn_str(c, b, sizeof(b)), c->in[0], c->in[1]);
		n4_srv_conn_close(c, false);
		return;
	}
	if (s->only_ident[0] && memcmp(m.payload, s->only_ident_wire, N4_PAYLOAD_SIZE) != 0) {
		s->rejects[REJ_IDENT]++;
		n4_info("%s: identifier '%s' is not '%s', closed", n4_srv_conn_str(c, b, sizeof(b)),
			ident, s->only_ident);
		n4_srv_conn_close(c, false);
		return;
	}
	memcpy(c->pc.ident, m.payload, N4_PAYLOAD_SIZE);
	if (c->room.role == N4_ROLE_HOSTING) {
		host_hello(c, &m);
		return;
	}
	c->pc.ext = grant_ext(s, m.ext);
	if (room_hello(c, (m.ext & N4_EXT_KEY) && (c->pc.ext & N4_EXT_TOKEN)))
		return;
	notify_staying(s, c);
	fast_long_way(s, c);
	n4_info(" => Hello from %s ident '%s'%s", n4_srv_conn_str(c, b, sizeof(b)), ident,
		c->pc.ext ? " (n4 extensions)" : "");
	/* A keyed client's long id comes next: ask for it.  The pairing does
	 * not wait for it (n4_pairing_hello): the request goes out in one
	 * segment with READY when a partner waits, and PEERINFO waits for both
	 * long ids instead. */
	if ((m.ext & N4_EXT_KEY) && (c->pc.ext & N4_EXT_TOKEN)) {
		struct n4_msg ask;
		c->pc.ext |= N4_EXT_KEY;
		c->in_len = 0;
		n4_msg_init(&ask, N4_CMD_KEYID, N4_EXT_KEY, NULL);
		n4_srv_conn_queue(c, &ask);
	}
	struct n4_pclient *w = n4_pairing_hello(s->pairing, &c->pc);
	if (!w) {
		arm_deadline(c, deadline_ms(c, s->cfg.wait_timeout_ms));
		n4_srv_conn_flush(c);
		return;
	}
	send_ready_pair(w->owner, c);
}

/* Two clients on one short id with different long ids: a stranger who learnt the
 * short id, or (rarely) two keys whose short ids collide.  Which one is ours
 * cannot be told: both start again, and the short id is now paired on long ids
 * alone. */
static void key_mismatch(struct conn *other, struct conn *c)
{
	char b[64], b2[64];

	c->srv->rejects[REJ_KEY_MISMATCH]++;
	n4_info("%s and %s: same short id, different keyed ids; both start again",
		n4_srv_conn_str(other, b2, sizeof(b2)), n4_srv_conn_str(c, b, sizeof(b)));
	send_again(other);
	send_again(c);
}

/* One of the KEYID messages of a keyed client, in order: its long id (after
 * HELLO, while waiting or already paired on the short id), then the round's
 * nonce (after READY). */
static void handle_keyid(struct conn *c)
{
	struct n4_server *s = c->srv;
	struct n4_msg m;
	char b[64];

	c->in_len = 0;
	bool nonce = c->keyid_parts >= N4_LONGID_PARTS;
	if (n4_wire_decode(c->in, N4_MSG_SIZE, N4_CMD_KEYID, &m) || m.ext != c->keyid_parts ||
	    (nonce && c->pc.state != N4_P_PAIRED)) {
		s->rejects[REJ_BAD_HELLO]++;
		n4_info("%s: malformed KEYID (%02x %02x ...), closed",
			n4_srv_conn_str(c, b, sizeof(b)), c->in[0], c->in[1]);
		n4_srv_conn_close(c, true);
		return;
	}
	if (nonce) {
		/* The round's nonce, passed on to the partner with its PEERINFO. */
		memcpy(c->nonce + N4_PAYLOAD_SIZE * (c->keyid_parts - N4_LONGID_PARTS), m.payload,
		       N4_PAYLOAD_SIZE);
		c->keyid_parts++;
		return;
	}
	memcpy(c->pc.long_id + N4_PAYLOAD_SIZE * c->keyid_parts, m.payload, N4_PAYLOAD_SIZE);
	if (++c->keyid_parts < N4_LONGID_PARTS)
		return;
	struct n4_pclient *w = NULL;
	n4_info(" => Keyid from %s", n4_srv_conn_str(c, b, sizeof(b)));
	if (c->room.role == N4_ROLE_HOSTING) {
		c->pc.keyed = true;
		register_host(c);
		return;
	}
	if (room_long_id(c))
		return;
	bool was_paired = c->pc.state == N4_P_PAIRED;
	enum n4_long_result r = n4_pairing_long_id(s->pairing, &c->pc, &w);
	/* Its long id is in: the usual deadlines from here on. */
	arm_deadline(c, was_paired ? s->cfg.exchange_timeout_ms : s->cfg.wait_timeout_ms);
	switch (r) {
	case N4_LONG_WAIT:
	case N4_LONG_PENDING:
		return;
	case N4_LONG_PAIRED:
		send_ready_pair(w->owner, c);
		return;
	case N4_LONG_CONFIRMED:
		maybe_schedule(s, c);
		return;
	case N4_LONG_MISMATCH:
		break;
	}
	key_mismatch(w->owner, c);
}

/* --- after READY: LOCAL, RELAY ----------------------------------------- */

/* A LOCAL message (N4_EXT_LOCAL, between READY and PEERINFO): one local
 * address of the client, at most N4_LOCAL_MAX messages, the last flagged. */
static void handle_local(struct conn *c)
{
	struct n4_server *s = c->srv;
	struct sockaddr_in a;
	char b[64], b2[32];

	int r = n4_srv_lan_local(c->lan, c->in, &a);
	if (r < 0) {
		s->rejects[REJ_PROTOCOL]++;
		n4_info("%s: malformed LOCAL (%02x %02x ...), closed",
			n4_srv_conn_str(c, b, sizeof(b)), c->in[0], c->in[1]);
		n4_srv_conn_close(c, true);
		return;
	}
	if (a.sin_family)
		n4_debug("%s: local address %s", n4_srv_conn_str(c, b, sizeof(b)),
			 n4_addr_str(&a, b2, sizeof(b2)));
	if (r == 1)
		maybe_schedule(s, c);
}

static void handle_relay_ask(struct conn *c)
{
	char b[64];

	if (n4_srv_relay_ask(&c->relay, c->in)) {
		c->srv->rejects[REJ_PROTOCOL]++;
		n4_info("%s: malformed RELAY message, closed", n4_srv_conn_str(c, b, sizeof(b)));
		n4_srv_conn_close(c, true);
		return;
	}
	maybe_schedule(c->srv, c);
}

/* --- rooms (srv_room.c) ------------------------------------------------- */

static const char *refusal_str(uint8_t reason)
{
	switch (reason) {
	case N4_ROOM_R_RATE:
		return "the room takes no more joins this second";
	case N4_ROOM_R_KEY:
		return "its keyed id is not the room's";
	case N4_ROOM_R_TICKET:
		return "an answer for no joiner held";
	default:
		return "the room is full, or its source hosts too many rooms";
	}
}

/* REFUSED, and the connection ends (its client says why and retries later). */
static void room_refuse(struct conn *c, uint8_t reason)
{
	struct n4_server *s = c->srv;
	struct n4_pclient *p = c->pc.partner;
	struct n4_msg r;
	char b[64];

	s->room_refused++;
	n4_info("%s: %s: refused", n4_srv_conn_str(c, b, sizeof(b)), refusal_str(reason));
	(void)n4_pairing_remove(s->pairing, &c->pc);
	c->pc.state = N4_P_DONE;
	n4_srv_room_reply(N4_ROOM_REFUSED, reason, &r);
	arm_deadline(c, s->cfg.hello_timeout_ms);
	c->close_after_flush = true;
	n4_srv_conn_send(c, &r);
	/* An ANSWER from one of two equals (no room: its host's room expired
	 * while the answer connected): the partner's PEERINFO can never come,
	 * and the unlink above hid it from the close rules (n4_srv_proto_closed):
	 * told here, as they would, instead of at its exchange deadline. */
	if (p && p->owner && p->state == N4_P_PAIRED) {
		struct conn *pc = p->owner;
		s->rejects[REJ_PARTNER_GONE]++;
		n4_info("%s: partner refused before the exchange completed",
			n4_srv_conn_str(pc, b, sizeof(b)));
		if (pc->pc.ext & N4_EXT_KEY)
			send_again(pc);
		else
			n4_srv_conn_close(pc, false);
	}
}

/* ROOM HOST as a connection's first message: the HELLO that follows registers a
 * room instead of pairing. */
static void handle_room_first(struct conn *c)
{
	struct n4_room_msg m;
	char b[64];

	if (n4_srv_room_decode(c->in, &m) || m.sub == N4_ROOM_ANSWER) {
		c->srv->rejects[REJ_BAD_HELLO]++;
		n4_info("%s: malformed ROOM before HELLO (%02x %02x ...), closed",
			n4_srv_conn_str(c, b, sizeof(b)), c->in[0], c->in[1]);
		n4_srv_conn_close(c, false);
		return;
	}
	if (m.sub == N4_ROOM_HOST) {
		c->room.role = N4_ROLE_HOSTING;
		c->room.max_joiners = m.max_joiners;
	} else {
		/* A joiner that pairs with a room's host only (a LAN game's
		 * listener): it waits for one rather than pair as an equal. */
		c->room.role = N4_ROLE_JOINING;
		memcpy(c->room.peer_id, m.id, N4_PAYLOAD_SIZE);
	}
	c->in_len = 0; /* the HELLO comes next */
}

static void host_hello(struct conn *c, const struct n4_msg *m)
{
	struct n4_server *s = c->srv;
	char b[64];

	if (!(m->ext & N4_EXT_ROOM) || !(m->ext & N4_EXT_TOKEN)) {
		s->rejects[REJ_PROTOCOL]++;
		n4_info("%s: a host's HELLO without the room extension, closed",
			n4_srv_conn_str(c, b, sizeof(b)));
		n4_srv_conn_close(c, false);
		return;
	}
	c->pc.ext = N4_EXT_TOKEN | N4_EXT_ROOM;
	c->pc.state = N4_P_WAITING; /* in no table: never paired */
	c->in_len = 0;
	if (m->ext & N4_EXT_KEY) {
		/* A keyed room: its long id is what joiners must match. */
		struct n4_msg ask;
		c->pc.ext |= N4_EXT_KEY;
		n4_msg_init(&ask, N4_CMD_KEYID, N4_EXT_KEY, NULL);
		arm_deadline(c, keyid_wait_ms(s));
		n4_srv_conn_send(c, &ask);
		return;
	}
	register_host(c);
}

/* A host's TCP connection lives for hours with nothing to say: keepalives find a
 * host that vanished (its room then lingers), within about two minutes. */
static void room_keepalive(struct conn *c)
{
	int on = 1, idle = 60, intvl = 10, cnt = 6;

	(void)setsockopt(c->io.fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	(void)setsockopt(c->io.fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(c->io.fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(c->io.fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void room_member(struct conn *c, struct n4_srv_room *room);
static void room_joiner(struct conn *c, const struct n4_room_msg *m);
static void wait_for_host(struct conn *c);

/* Clients of this room that said HELLO before it had a host and still wait for a
 * partner: joiners now.  A scan, for a rare event (a registration). */
static void adopt_waiting(struct conn *h)
{
	struct n4_server *s = h->srv;
	bool keyed = h->pc.ext & N4_EXT_KEY;

	for (struct conn *w = s->live, *next; w; w = next) {
		next = w->next;
		if (w == h || w->closed || w->pc.state != N4_P_WAITING ||
		    !(w->pc.ext & N4_EXT_ROOM) ||
		    (w->room.role != N4_ROLE_NONE && w->room.role != N4_ROLE_JOINING) ||
		    memcmp(w->pc.ident, h->pc.ident, N4_PAYLOAD_SIZE) != 0 ||
		    keyed != ((w->pc.ext & N4_EXT_KEY) != 0))
			continue;
		if (keyed &&
		    (!w->pc.keyed || !n4_ct_equal(w->pc.long_id, h->pc.long_id, N4_LONGID_SIZE)))
			continue; /* its long id decides when it arrives (room_long_id) */
		room_member(w, h->room.room);
	}
}

static void register_host(struct conn *c)
{
	struct n4_server *s = c->srv;
	bool keyed = c->pc.ext & N4_EXT_KEY;
	uint8_t reason = 0;
	struct n4_msg r, out[2];
	char b[64], ident[N4_PAYLOAD_SIZE + 1] = "";

	int rc = n4_srv_room_host(s->rooms, &c->room, keyed, c->pc.ident,
				  keyed ? c->pc.long_id : NULL, c->src.b, n4_now_ms(), &reason);
	c->pc.state = N4_P_DONE;
	if (!keyed && n4_ident_decode(c->pc.ident, ident))
		ident[0] = 0;
	if (rc) {
		s->room_refused++;
		n4_info("%s: %s%s%s %s", n4_srv_conn_str(c, b, sizeof(b)),
			keyed ? "a keyed room" : "room '", ident, keyed ? "" : "'",
			rc == -EADDRINUSE ? "has a host already: refused" : refusal_str(reason));
		n4_srv_room_reply(rc == -EADDRINUSE ? N4_ROOM_TAKEN : N4_ROOM_REFUSED, reason, &r);
		arm_deadline(c, s->cfg.hello_timeout_ms);
		c->close_after_flush = true;
		n4_srv_conn_send(c, &r);
		return;
	}
	s->rooms_hosted++;
	n4_info(" => Host from %s: %s%s%s, up to %u joiners at once",
		n4_srv_conn_str(c, b, sizeof(b)), keyed ? "a keyed room" : "room '", ident,
		keyed ? "" : "'", c->room.max_joiners);
	arm_deadline(c, N4_ROOM_MAX_MS);
	room_keepalive(c);
	n4_srv_room_reply(N4_ROOM_HOSTED, 0, &r);
	n4_srv_conn_queue(c, &r);
	/* Joiners held while the room had no host (it came back). */
	while (!c->closed && n4_srv_room_next_unannounced(c->room.room, out)) {
		n4_srv_conn_queue(c, &out[0]);
		n4_srv_conn_send(c, &out[1]);
	}
	n4_srv_conn_flush(c);
	if (!c->closed)
		adopt_waiting(c);
}

/* READY at once, without a partner: the client's ROOM message says whether it
 * joins or answers a joiner. */
static void room_member(struct conn *c, struct n4_srv_room *room)
{
	char b[64];

	bool joining = c->room.role == N4_ROLE_JOINING;

	n4_srv_room_enter(room, &c->room);
	/* No REPUNCH in a room: a joiner's path recovers through a new join. */
	c->pc.ext &= (uint8_t)~N4_EXT_STAY;
	n4_pairing_solo(c->srv->pairing, &c->pc);
	n4_info(" <= Ready to %s (room%s)", n4_srv_conn_str(c, b, sizeof(b)),
		n4_srv_room_hosted(room) ? "" : ", its host is away");
	send_ready(c);
	if (joining && !c->closed) {
		/* Its JOINER came before HELLO: none follows READY. */
		struct n4_room_msg m = { .sub = N4_ROOM_JOINER };
		memcpy(m.id, c->room.peer_id, N4_PAYLOAD_SIZE);
		c->room_heard = true;
		room_joiner(c, &m);
	}
}

/* A join-only client (N4_ROLE_JOINING) whose room has no host yet: it waits, in
 * no table, until a host registers (adopt_waiting) or its wait runs out.  One
 * more N4_P_WAITING outside the pairing tables: server_test.c's check lists them. */
static void wait_for_host(struct conn *c)
{
	char b[64];

	c->pc.state = N4_P_WAITING;
	n4_info("%s: waits for its room's host", n4_srv_conn_str(c, b, sizeof(b)));
	arm_deadline(c, deadline_ms(c, c->srv->cfg.wait_timeout_ms));
	n4_srv_conn_flush(c);
}

/* A HELLO (with N4_EXT_ROOM granted): true when a room took it. */
static bool room_hello(struct conn *c, bool asked_key)
{
	struct n4_server *s = c->srv;
	bool wrong = false;
	char b[64];

	bool joining = c->room.role == N4_ROLE_JOINING;

	if (!(c->pc.ext & N4_EXT_ROOM)) {
		if (!joining)
			return false;
		s->rejects[REJ_PROTOCOL]++;
		n4_info("%s: a joiner's HELLO without the room extension, closed",
			n4_srv_conn_str(c, b, sizeof(b)));
		n4_srv_conn_close(c, false);
		return true;
	}
	struct n4_srv_room *room =
		n4_srv_room_find(s->rooms, asked_key, c->pc.ident, NULL, &wrong, n4_now_ms());
	if (asked_key) {
		if (!wrong && !joining)
			return false; /* no keyed room on this short id */
		/* Its long id decides (room_long_id): the room's, or refused. */
		struct n4_msg ask;
		c->pc.ext |= N4_EXT_KEY;
		c->room_keyed_wait = true;
		c->pc.state = N4_P_WAITING; /* in no table until then */
		c->in_len = 0;
		n4_info(" => Hello from %s for a keyed room", n4_srv_conn_str(c, b, sizeof(b)));
		n4_msg_init(&ask, N4_CMD_KEYID, N4_EXT_KEY, NULL);
		arm_deadline(c, keyid_wait_ms(s));
		n4_srv_conn_send(c, &ask);
		return true;
	}
	if (!room && !joining)
		return false;
	n4_info(" => Hello from %s for a room", n4_srv_conn_str(c, b, sizeof(b)));
	if (room)
		room_member(c, room);
	else
		wait_for_host(c);
	return true;
}

/* A keyed client's long id is in, and it asked for rooms: true when that settled
 * it (a member of its room, or refused). */
static bool room_long_id(struct conn *c)
{
	struct n4_server *s = c->srv;
	bool wrong = false;

	if (!s->rooms || !(c->pc.ext & N4_EXT_ROOM) || c->pc.state != N4_P_WAITING)
		return false;
	struct n4_srv_room *room =
		n4_srv_room_find(s->rooms, true, c->pc.ident, c->pc.long_id, &wrong, n4_now_ms());
	c->pc.keyed = true;
	if (room) {
		c->room_keyed_wait = false;
		room_member(c, room);
		return true;
	}
	if (wrong) {
		/* A stranger who learnt the short id: never announced. */
		room_refuse(c, N4_ROOM_R_KEY);
		return true;
	}
	if (c->room.role == N4_ROLE_JOINING) {
		c->room_keyed_wait = false;
		wait_for_host(c);
		return true;
	}
	if (c->room_keyed_wait) {
		/* The room went away meanwhile: pair as an equal. */
		c->room_keyed_wait = false;
		arm_deadline(c, s->cfg.wait_timeout_ms);
		struct n4_pclient *w = n4_pairing_hello(s->pairing, &c->pc);
		if (w)
			send_ready_pair(w->owner, c);
	}
	return false;
}

static void room_joiner(struct conn *c, const struct n4_room_msg *m)
{
	struct n4_server *s = c->srv;
	struct n4_srv_room_side *host;
	struct n4_msg out[2];
	uint8_t reason = 0;
	char b[64], b2[64];

	int rc = n4_srv_room_joiner(s->rooms, &c->room, m->id, n4_now_ms(), &host, out, &reason);
	if (rc < 0) {
		room_refuse(c, reason);
		return;
	}
	s->room_joins++;
	if (rc == 0) {
		n4_info(" => Joiner %s held: the room's host is away",
			n4_srv_conn_str(c, b, sizeof(b)));
		return;
	}
	struct conn *h = host->owner;
	n4_info(" <= Join to host %s for %s", n4_srv_conn_str(h, b2, sizeof(b2)),
		n4_srv_conn_str(c, b, sizeof(b)));
	n4_srv_conn_queue(h, &out[0]);
	n4_srv_conn_send(h, &out[1]);
}

static void room_answer(struct conn *c, const struct n4_room_msg *m)
{
	struct n4_server *s = c->srv;
	char b[64], b2[64];

	struct n4_srv_room_side *j = n4_srv_room_answer(&c->room, m->id);
	if (!j) {
		room_refuse(c, N4_ROOM_R_TICKET);
		return;
	}
	struct conn *jc = j->owner;
	n4_pairing_link(&c->pc, &jc->pc);
	n4_srv_disc_room_host(c->disc);
	n4_info(" => Answer from %s for joiner %s", n4_srv_conn_str(c, b, sizeof(b)),
		n4_srv_conn_str(jc, b2, sizeof(b2)));
	/* The joiner waited for the host: the exchange starts now for both. */
	arm_deadline(jc, deadline_ms(jc, s->cfg.exchange_timeout_ms));
	maybe_schedule(s, c);
	if (!jc->closed)
		maybe_schedule(s, jc);
}

/* The ROOM message after READY. */
static void handle_room_msg(struct conn *c)
{
	struct n4_server *s = c->srv;
	struct n4_room_msg m;
	char b[64];

	c->room_heard = true;
	if (n4_srv_room_decode(c->in, &m) || m.sub == N4_ROOM_HOST) {
		s->rejects[REJ_PROTOCOL]++;
		n4_info("%s: malformed ROOM message (%02x %02x ...), closed",
			n4_srv_conn_str(c, b, sizeof(b)), c->in[0], c->in[1]);
		n4_srv_conn_close(c, true);
		return;
	}
	if (c->room.role == N4_ROLE_MEMBER) {
		if (m.sub == N4_ROOM_JOINER)
			room_joiner(c, &m);
		else
			room_answer(c, &m);
		return;
	}
	if (m.sub == N4_ROOM_ANSWER) {
		room_refuse(c, N4_ROOM_R_TICKET); /* no room: nobody to answer */
		return;
	}
	maybe_schedule(s, c); /* a pair of equals: the peer id is not needed */
}

/* --- PEERINFO ---------------------------------------------------------- */

/* TUNE (N4_EXT_SEQ) and PLAN before PEERINFO: with TUNE both are queued, not
 * flushed: TUNE, PLAN (SELF) and PEERINFO leave in one segment, so one lost
 * segment (not one of three) delays them. */
static void send_plan(struct conn *c)
{
	struct n4_msg out[2];
	unsigned n = n4_srv_disc_plan_msgs(c->disc, (uint16_t)c->srv->cfg.max_pps, out);

	for (unsigned i = 0; i < n; i++)
		n4_srv_conn_queue(c, &out[i]);
	if (n == 1)
		n4_srv_conn_flush(c);
}

static void send_relay(struct conn *c)
{
	struct n4_msg out[2];

	n4_srv_relay_msgs(&c->relay, out);
	n4_srv_conn_send(c, &out[0]);
	n4_srv_conn_send(c, &out[1]);
}

/* A keyed client's own observed address, bound into its PUNCH MAC, and its
 * partner's nonce for this round. */
static void queue_self(struct conn *c)
{
	struct n4_msg self;

	n4_msg_init(&self, N4_CMD_SELF, 0, NULL);
	n4_peerinfo_encode(&c->pc.udp, self.payload);
	n4_srv_conn_queue(c, &self);
	for (uint8_t i = 0; c->peer_nonce_ok && i < 3 && !c->closed; i++) {
		n4_msg_init(&self, N4_CMD_SELF, (uint8_t)(i + 1),
			    c->peer_nonce + i * N4_PAYLOAD_SIZE);
		n4_srv_conn_queue(c, &self);
	}
}

/* The V6 reports (cand6.h): the client's own probe as seen, and its partner's
 * candidate when both probed.  Only a client whose probe arrived gets them: it
 * is ours and reads them. */
static void queue_v6(struct conn *c)
{
	struct n4_msg out[N4_V6_REPORT_MAX];
	bool pass = c->v6_pass;
	bool sealed = c->v6_kind == N4_V6_PROBE_SEALED;
	unsigned n = n4_v6_report_msgs(&c->v6_src, pass && !sealed ? &c->v6_peer : NULL,
				       pass && sealed ? c->v6_peer_blob : NULL, out);
	char b[64];

	for (unsigned i = 0; i < n && !c->closed; i++)
		n4_srv_conn_queue(c, &out[i]);
	n4_info(" <= V6 %s to %s",
		!pass	 ? "self only (the partner sent no probe)"
		: sealed ? "self and the partner's sealed candidate"
			 : "self and the partner's candidate",
		n4_srv_conn_str(c, b, sizeof(b)));
}

static void send_peerinfo(struct conn *c)
{
	struct n4_msg m;
	char b[64], b2[64];

	if (c->relay.relayed)
		send_relay(c);
	else
		send_plan(c);
	if (c->closed)
		return;
	if (c->pc.ext & N4_EXT_KEY) {
		queue_self(c);
		if (c->closed)
			return;
	}
	if (c->v6_heard) {
		queue_v6(c);
		if (c->closed)
			return;
	}
	unsigned npeer = n4_srv_lan_npeer(c->lan);
	for (unsigned i = 0; i < npeer; i++) {
		struct n4_msg lm;
		n4_srv_lan_peerlocal(c->lan, i, &lm);
		n4_srv_conn_queue(c, &lm); /* in PEERINFO's segment */
		if (c->closed)
			return;
	}
	if (npeer)
		n4_info(" <= Peerlocal (%u address%s, same public IP) to %s", npeer,
			npeer == 1 ? "" : "es", n4_srv_conn_str(c, b, sizeof(b)));
	n4_msg_init(&m, N4_CMD_PEERINFO, c->pc.ext ? c->peer_flags : 0, NULL);
	n4_peerinfo_encode(&c->peer_udp, m.payload);
	n4_info(" <= Peerinfo %s to %s", n4_addr_str(&c->peer_udp, b2, sizeof(b2)),
		n4_srv_conn_str(c, b, sizeof(b)));
	c->pc.state = N4_P_DONE;
	if (c->pc.ext & N4_EXT_STAY) {
		start_staying(c);
		n4_srv_conn_send(c, &m);
		return;
	}
	/* It is sent; closing waits only for the kernel to take the bytes. */
	arm_deadline(c, c->srv->cfg.hello_timeout_ms);
	c->close_after_flush = true;
	n4_srv_conn_send(c, &m);
}

static void peerinfo_fired(n4_loop *loop, struct n4_timer *t)
{
	(void)loop;
	send_peerinfo(t->arg);
}

/* Local addresses cross only between partners behind one public IP: to anyone
 * else they would only reveal the layout of a LAN it cannot reach. */
static void share_local(struct conn *to, const struct conn *from)
{
	if (!to->lan || !from->lan || to->pc.udp.sin_addr.s_addr != from->pc.udp.sin_addr.s_addr)
		return;
	n4_srv_lan_share(to->lan, from->lan);
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

/* The relay leaf's decision for the pair (srv_relay.c). */
static bool relay_pair(struct n4_server *s, struct conn *a, struct conn *b)
{
	char na[64], nb[64];
	struct n4_srv_relay_cand ca = {
		.side = &a->relay,
		.granted = a->pc.ext & N4_EXT_RELAY,
		.hopeless = n4_srv_disc_plan_kind(a->disc) == N4_PLAN_IMPOSSIBLE,
		.lan = n4_srv_lan_npeer(a->lan) > 0 || (a->v6_pass && !a->relay.lost_rounds),
		.src = a->src,
		.udp_ip = a->pc.udp.sin_addr.s_addr,
		.name = n4_srv_conn_str(a, na, sizeof(na)),
	};
	struct n4_srv_relay_cand cb = {
		.side = &b->relay,
		.granted = b->pc.ext & N4_EXT_RELAY,
		.hopeless = n4_srv_disc_plan_kind(b->disc) == N4_PLAN_IMPOSSIBLE,
		.lan = n4_srv_lan_npeer(b->lan) > 0 || (b->v6_pass && !b->relay.lost_rounds),
		.src = b->src,
		.udp_ip = b->pc.udp.sin_addr.s_addr,
		.name = n4_srv_conn_str(b, nb, sizeof(nb)),
	};

	return n4_srv_relay_decide(s->relay, s->cfg.relay_after, &ca, &cb);
}

static void pass_on(struct conn *to, const struct conn *from)
{
	to->peer_udp = from->pc.udp;
	to->peer_nonce_ok = from->keyid_parts == 2 * N4_LONGID_PARTS;
	memcpy(to->peer_nonce, from->nonce, sizeof(to->peer_nonce));
	to->peer_flags = from->pc.ext ? N4_PEER_N4 : 0;
	if (from->room.role == N4_ROLE_ANSWERING)
		to->peer_flags |= N4_PEER_HOST;
	/* Candidates cross only between two clients that both probed, of one kind
	 * (both keyed or neither: keyed ones pair only with each other anyway). */
	to->v6_pass = to->v6_heard && from->v6_heard && to->v6_kind == from->v6_kind;
	to->v6_peer = from->v6_src;
	memcpy(to->v6_peer_blob, from->v6_blob, sizeof(to->v6_peer_blob));
}

/* Ports that sweeps the server planned behind ip open after since_ms and before
 * until_ms (the sweep they are counted for starts then: a later one allocates
 * after it).  Sweeps are noted when they start, so that may be in the future. */
static unsigned sweeps_behind(const struct n4_server *s, uint32_t ip, uint64_t since_ms,
			      uint64_t until_ms, uint64_t now)
{
	unsigned sum = 0;

	for (unsigned i = 0; i < SWEEP_RING; i++)
		if (s->sweeps[i].ms && s->sweeps[i].ip == ip && s->sweeps[i].ms > since_ms &&
		    s->sweeps[i].ms <= until_ms &&
		    (s->sweeps[i].ms > now || now - s->sweeps[i].ms < SWEEP_RING_MS))
			sum += s->sweeps[i].allocs;
	return sum;
}

/* NAT ports opened behind c's public IP since its last observation by sweeps the
 * server planned for others (a room's joiners, held in turn behind one NAT),
 * before c's own sweep starts at until_ms. */
static unsigned sweeps_since(const struct n4_server *s, const struct conn *c, uint64_t now,
			     uint64_t until_ms)
{
	uint64_t since = n4_srv_disc_last_ms(c->disc);

	if (!since)
		return 0;
	return sweeps_behind(s, c->pc.udp.sin_addr.s_addr, since, until_ms, now);
}

static void note_sweep(struct n4_server *s, const struct conn *c, uint64_t at)
{
	unsigned allocs = n4_srv_disc_allocs(c->disc);

	if (!allocs)
		return;
	s->sweeps[s->sweep_next].ip = c->pc.udp.sin_addr.s_addr;
	s->sweeps[s->sweep_next].allocs = allocs;
	s->sweeps[s->sweep_next].ms = at;
	s->sweep_next = (s->sweep_next + 1) % SWEEP_RING;
}

/* When the last sweep planned behind ip has opened its ports (0: none under way).
 * Two sweeps behind one NAT at once interleave their allocations, and each
 * misses its prediction: a pair waits for the one before it (the flows of a
 * call start together, behind the same two NATs). */
static uint64_t sweeping_until(const struct n4_server *s, uint32_t ip, uint64_t now)
{
	uint64_t until = 0;

	for (unsigned i = 0; i < SWEEP_RING; i++)
		if (s->sweeps[i].ms && s->sweeps[i].ip == ip &&
		    s->sweeps[i].ms + SWEEP_BUSY_MS > now &&
		    s->sweeps[i].ms + SWEEP_BUSY_MS > until)
			until = s->sweeps[i].ms + SWEEP_BUSY_MS;
	return until;
}

static void note_obs(struct n4_server *s, uint32_t ip, uint16_t port)
{
	s->obs[s->obs_next].ip = ip;
	s->obs[s->obs_next].port = port;
	s->obs[s->obs_next].ms = s->rx_ms ? s->rx_ms : n4_now_ms();
	s->obs_next = (s->obs_next + 1) % OBS_RING;
}

/* c's discovery learns which mappings behind its IP were other clients' (its own
 * are told apart by port, discover.c). */
static void known_obs(const struct n4_server *s, const struct conn *c)
{
	n4_srv_disc_known(c->disc, c->pc.udp.sin_addr.s_addr, s->obs, OBS_RING);
}

/* A room's host's answer (h) and its joiner (j): the joiner NAT's ports h's socket
 * walked lately, newest first, for h's plan to skip. */
static void walked_before(const struct n4_server *s, struct conn *h, const struct conn *j,
			  uint64_t now)
{
	struct n4_port_span spans[N4_WALKED_MAX];
	unsigned n = 0;

	for (unsigned k = 1; k <= WALK_RING && n < N4_WALKED_MAX; k++) {
		unsigned i = (s->walk_next + WALK_RING - k) % WALK_RING;
		if (!s->walks[i].ms || now - s->walks[i].ms >= WALK_STALE_MS)
			continue;
		if (s->walks[i].host_ip == h->pc.udp.sin_addr.s_addr &&
		    s->walks[i].host_port == h->pc.udp.sin_port &&
		    s->walks[i].peer_ip == j->pc.udp.sin_addr.s_addr)
			spans[n++] = s->walks[i].span;
	}
	n4_srv_disc_walked(h->disc, spans, n);
}

static void note_walk(struct n4_server *s, const struct conn *h, const struct conn *j,
		      uint64_t at)
{
	struct n4_port_span span;

	if (!n4_srv_disc_walk_span(h->disc, &span))
		return;
	if (n4_srv_disc_walk_skipped(h->disc))
		s->walk_skips++;
	s->walks[s->walk_next].host_ip = h->pc.udp.sin_addr.s_addr;
	s->walks[s->walk_next].host_port = h->pc.udp.sin_port;
	s->walks[s->walk_next].peer_ip = j->pc.udp.sin_addr.s_addr;
	s->walks[s->walk_next].span = span;
	s->walks[s->walk_next].ms = at ? at : 1;
	s->walk_next = (s->walk_next + 1) % WALK_RING;
}

static void schedule_peerinfo(struct n4_server *s, struct conn *a, struct conn *b)
{
	uint64_t rtt_a = conn_rtt_ms(a), rtt_b = conn_rtt_ms(b);
	uint64_t now = n4_now_ms();
	struct conn *pair[2] = { a, b };
	uint64_t delay[2];

	pass_on(a, b);
	pass_on(b, a);
	share_local(a, b);
	share_local(b, a);
	s->pairs_done++;
	for (int i = 0; i < 2; i++) {
		uint64_t mine = i == 0 ? rtt_a : rtt_b, other = i == 0 ? rtt_b : rtt_a;
		delay[i] = mine < other ? (other - mine) / 2 : 0;
		if (delay[i] > MAX_SYNC_DELAY_MS)
			delay[i] = MAX_SYNC_DELAY_MS;
	}
	uint64_t busy = sweeping_until(s, a->pc.udp.sin_addr.s_addr, now);
	uint64_t busy_b = sweeping_until(s, b->pc.udp.sin_addr.s_addr, now);
	if (busy_b > busy)
		busy = busy_b;
	/* Not for a room's answers: a host answers one join at a time already, and
	 * its walk's timing is planned for the joiner's own probes (sweeps_since). */
	bool room = a->room.role == N4_ROLE_ANSWERED || a->room.role == N4_ROLE_ANSWERING ||
		    b->room.role == N4_ROLE_ANSWERED || b->room.role == N4_ROLE_ANSWERING;
	if (busy > now && !room) {
		uint64_t wait = busy - now > MAX_SWEEP_WAIT_MS ? MAX_SWEEP_WAIT_MS : busy - now;
		delay[0] += wait;
		delay[1] += wait;
	}
	/* Sweeps planned behind a side's NAT since its probes open ports there
	 * before its own: a room's held joiners, and the flows of one call, whose
	 * pairs probe at once behind the same two NATs. */
	n4_srv_disc_extra(a->disc, sweeps_since(s, a, now, now + delay[0]));
	n4_srv_disc_extra(b->disc, sweeps_since(s, b, now, now + delay[1]));
	struct conn *host = a->room.role == N4_ROLE_ANSWERING   ? a
			    : b->room.role == N4_ROLE_ANSWERING ? b
								: NULL;
	struct conn *joiner = host == a ? b : a;
	if (host)
		walked_before(s, host, joiner, now);
	known_obs(s, a);
	known_obs(s, b);
	n4_srv_disc_plan(a->disc, b->disc, now, delay, rtt_a, rtt_b, s->cfg.port_budget);
	note_sweep(s, a, now + delay[0]);
	note_sweep(s, b, now + delay[1]);
	if (relay_pair(s, a, b))
		delay[0] = delay[1] = 0; /* no race to synchronise */
	else if (host)
		note_walk(s, host, joiner, now + (host == a ? delay[0] : delay[1]));
	for (int i = 0; i < 2; i++) {
		unsigned kind = n4_srv_disc_plan_kind(pair[i]->disc);
		s->plans[kind < N4_STATS_PLANS ? kind : N4_PLAN_NONE]++;
		if (pair[i]->closed)
			continue; /* a failed send to the first closed the second */
		if (delay[i] == 0 || n4_timer_arm(s->loop, &pair[i]->peerinfo_timer, now + delay[i],
						  peerinfo_fired, pair[i]))
			send_peerinfo(pair[i]);
	}
}

/* The PEERINFO gate: PEERINFOs go out once both EXCHANGEs are in and, for
 * clients doing discovery, their probes too (or the wait for them ran out). */
static void maybe_schedule(struct n4_server *s, struct conn *c)
{
	struct n4_pclient *p = c->pc.partner;

	if (!p || !c->pc.observed || !p->observed || c->pc.state != N4_P_PAIRED ||
	    c->peer_udp.sin_family != 0)
		return;
	if ((c->pc.ext & N4_EXT_KEY) && !n4_pairing_confirmed(&c->pc))
		return; /* paired on the short id: both long ids must agree first */
	struct conn *other = p->owner;
	if (!n4_srv_disc_complete(c->disc) || !n4_srv_disc_complete(other->disc))
		return;
	if (wants_relay_ask(c) || wants_relay_ask(other))
		return; /* its lost-round count decides between punch and relay */
	if (wants_room(c) || wants_room(other))
		return;
	if (n4_srv_lan_pending(c->lan) || n4_srv_lan_pending(other->lan))
		return; /* bounded by the exchange deadline */
	schedule_peerinfo(s, c, other);
}

/* --- FAST (srv_fast.c): a further flow over the kept connections -------- */

/* Tell q's client NO (it rendezvous as usual), and forget q. */
static void fast_no(struct n4_server *s, struct n4_srv_fast_req *q, uint8_t reason)
{
	struct conn *c = q->owner;
	struct n4_msg m;

	s->fast_no++;
	n4_fast_no_msg(q->r.tag, reason, &m);
	n4_srv_fast_drop(s->loop, &s->fast, q);
	if (n4_srv_conn_has_room(c))
		n4_srv_conn_send(c, &m);
}

static void fast_send_answer(struct n4_server *s, struct n4_srv_fast_req *q)
{
	struct conn *c = q->owner;
	unsigned n = q->nanswer;
	char b[64];

	n4_srv_fast_drop(s->loop, &s->fast, q);
	if (n4_srv_conn_room(c) < n) {
		n4_debug("%s: fast flow answer does not fit its buffer, dropped",
			 n4_srv_conn_str(c, b, sizeof(b)));
		return; /* its client rendezvous as usual after its wait */
	}
	for (unsigned i = 0; i < n; i++)
		n4_srv_conn_queue(c, &q->answer[i]);
	n4_srv_conn_flush(c);
}

static void fast_timer_fired(n4_loop *loop, struct n4_timer *t)
{
	struct n4_srv_fast_req *q = t->arg;
	struct conn *c = q->owner;
	(void)loop;

	if (q->planned) {
		fast_send_answer(c->srv, q);
		return;
	}
	/* No partner, or a probe missing: both sides go the long way. */
	struct n4_srv_fast_req *p = q->partner;
	char b[64];
	n4_info("%s: fast flow: %s in %u ms, told NO", n4_srv_conn_str(c, b, sizeof(b)),
		!p ? "no partner" : "no probe", N4_SRV_FAST_WAIT_MS);
	if (p)
		fast_no(c->srv, p, N4_FAST_NO_PARTNER);
	fast_no(c->srv, q, N4_FAST_NO_PARTNER);
}

static void note_sweep_at(struct n4_server *s, uint32_t ip, unsigned allocs, uint64_t at)
{
	if (!allocs)
		return;
	s->sweeps[s->sweep_next].ip = ip;
	s->sweeps[s->sweep_next].allocs = allocs;
	s->sweeps[s->sweep_next].ms = at;
	s->sweep_next = (s->sweep_next + 1) % SWEEP_RING;
}

static uint64_t conn_rtt_ms(const struct conn *c);
static uint64_t sweeping_until(const struct n4_server *s, uint32_t ip, uint64_t now);

/* Both requests and both probes are in: plan from the kept models, and answer
 * each side as its PEERINFO would have been answered (timed to arrive together,
 * after a sweep under way behind either NAT). */
static void fast_plan(struct n4_server *s, struct n4_srv_fast_req *a, struct n4_srv_fast_req *b)
{
	struct n4_srv_fast_req *q[2] = { a, b };
	struct conn *c[2] = { a->owner, b->owner };
	uint64_t now = n4_now_ms(), rtt[2], delay[2], start[2];
	struct n4_flow_probe probe[2];
	struct n4_msg pre[2][2];
	unsigned npre[2], allocs[2];
	double dt[2];
	char b1[64], b2[64];

	if (a->probe_ip == b->probe_ip) {
		/* One public IP: the LAN path (PEERLOCAL) is the ordinary rendezvous'. */
		fast_no(s, b, N4_FAST_NO_PLAN);
		fast_no(s, a, N4_FAST_NO_PLAN);
		return;
	}
	for (int i = 0; i < 2; i++)
		rtt[i] = conn_rtt_ms(c[i]);
	for (int i = 0; i < 2; i++) {
		uint64_t mine = rtt[i], other = rtt[1 - i];
		delay[i] = mine < other ? (other - mine) / 2 : 0;
		if (delay[i] > MAX_SYNC_DELAY_MS)
			delay[i] = MAX_SYNC_DELAY_MS;
	}
	uint64_t busy = sweeping_until(s, a->probe_ip, now);
	uint64_t busy_b = sweeping_until(s, b->probe_ip, now);
	if (busy_b > busy)
		busy = busy_b;
	if (busy > now) {
		uint64_t wait = busy - now > MAX_SWEEP_WAIT_MS ? MAX_SWEEP_WAIT_MS : busy - now;
		delay[0] += wait;
		delay[1] += wait;
	}
	for (int i = 0; i < 2; i++) {
		/* When this side's sweep opens its ports (as noted below). */
		start[i] = now + delay[i] + rtt[i] / 2 + N4_GUARD_BASE_MS;
		probe[i] = (struct n4_flow_probe){
			.port = q[i]->probe_port,
			.t_ms = q[i]->probe_ms,
			.extra_allocs = sweeps_behind(s, q[i]->probe_ip, q[i]->probe_ms,
						      start[i] - 1, now) +
					n4_srv_fast_later_probes(&s->fast, q[i])
		};
		dt[i] = (double)(now + delay[i] - q[i]->probe_ms + rtt[i]);
	}
	if (!n4_srv_disc_plan_flow(c[0]->disc, c[1]->disc, probe, dt, s->cfg.port_budget,
				   (uint16_t)s->cfg.max_pps, pre, npre, allocs)) {
		n4_info("%s and %s: fast flow: no plan from the kept models, told NO",
			n4_srv_conn_str(c[0], b1, sizeof(b1)),
			n4_srv_conn_str(c[1], b2, sizeof(b2)));
		fast_no(s, b, N4_FAST_NO_PLAN);
		fast_no(s, a, N4_FAST_NO_PLAN);
		return;
	}
	s->fast_flows++;
	for (int i = 0; i < 2; i++) {
		struct n4_srv_fast_req *me = q[i], *other = q[1 - i];
		struct sockaddr_in seen = { .sin_family = AF_INET,
					    .sin_port = htons(me->probe_port),
					    .sin_addr.s_addr = me->probe_ip };
		struct sockaddr_in peer = { .sin_family = AF_INET,
					    .sin_port = htons(other->probe_port),
					    .sin_addr.s_addr = other->probe_ip };
		unsigned n = 1;
		for (unsigned k = 0; k < npre[i]; k++)
			me->answer[n++] = pre[i][k];
		if (me->r.flags & N4_FAST_KEYED) {
			n4_msg_init(&me->answer[n], N4_CMD_SELF, 0, NULL);
			n4_peerinfo_encode(&seen, me->answer[n++].payload);
			for (uint8_t k = 0; k < N4_FAST_NONCE_PARTS; k++)
				n4_msg_init(&me->answer[n++], N4_CMD_SELF, (uint8_t)(k + 1),
					    other->r.nonce + k * N4_PAYLOAD_SIZE);
		}
		n4_msg_init(&me->answer[n], N4_CMD_PEERINFO, N4_PEER_N4, NULL);
		n4_peerinfo_encode(&peer, me->answer[n++].payload);
		n4_fast_answer_head(me->r.tag, n - 1, &me->answer[0]);
		me->nanswer = n;
		me->planned = true;
		/* Its sweep opens its ports once the answer has arrived and the
		 * guard has passed: a probe that arrives before then was allocated
		 * before it, and the sweep counts for that probe's flow
		 * (sweeps_behind). */
		note_sweep_at(s, me->probe_ip, allocs[i], start[i]);
	}
	n4_info(" <= Fast flow for %s and %s (delays %llu/%llu ms)",
		n4_srv_conn_str(c[0], b1, sizeof(b1)), n4_srv_conn_str(c[1], b2, sizeof(b2)),
		(unsigned long long)delay[0], (unsigned long long)delay[1]);
	for (int i = 0; i < 2; i++) {
		n4_timer_cancel(s->loop, &q[i]->timer);
		if (delay[i] == 0 ||
		    n4_timer_arm(s->loop, &q[i]->timer, now + delay[i], fast_timer_fired, q[i]))
			fast_send_answer(s, q[i]);
	}
}

static void fast_try(struct n4_server *s, struct n4_srv_fast_req *q)
{
	struct n4_srv_fast_req *p = q->partner;

	if (p && q->probed && p->probed && !q->planned && !p->planned)
		fast_plan(s, q, p);
}

/* A whole request on kept connection c. */
static void fast_request(struct conn *c, const struct n4_fast_req *r)
{
	struct n4_server *s = c->srv;
	uint64_t now = n4_now_ms();
	char b[64];

	struct n4_srv_fast_req *q = NULL;
	bool admitted = n4_srv_stay_flow_admit(&c->stay, now);
	if (admitted && c->pc.udp.sin_family == AF_INET && c->pc.udp.sin_addr.s_addr)
		q = n4_srv_fast_add(&s->fast, c->fast, r->tag, c);
	if (!q) {
		struct n4_msg m;
		s->fast_no++;
		n4_debug("%s: fast flow refused (%s)", n4_srv_conn_str(c, b, sizeof(b)),
			 admitted ? "requests under way, or no IPv4 observation" : "over the rate");
		n4_fast_no_msg(r->tag, N4_FAST_NO_LIMIT, &m);
		if (n4_srv_conn_has_room(c))
			n4_srv_conn_send(c, &m);
		return;
	}
	q->r = *r;
	q->created_ms = now;
	q->probe_ip = c->pc.udp.sin_addr.s_addr;
	/* The peer already waits in an ordinary rendezvous of this flow (its
	 * other flows were under way, or it has no kept connection): this side
	 * goes there too, at once. */
	if (n4_pairing_has_waiting(s->pairing, r->ident, (r->flags & N4_FAST_KEYED) != 0)) {
		fast_no(s, q, N4_FAST_NO_LONG);
		return;
	}
	/* Its partner: a request for the same flow on another kept connection of
	 * this pair's identifier. */
	struct n4_srv_stay *n = n4_srv_stay_first(&s->staying, c->pc.ident);
	for (; n && !q->partner; n = n4_srv_stay_next(n)) {
		struct conn *o = n->owner;
		struct n4_srv_fast_req *p = o == c ? NULL : n4_srv_fast_match(o->fast, q);
		if (p) {
			p->partner = q;
			q->partner = p;
		}
	}
	(void)n4_srv_fast_orphan_take(&s->fast, q, now);
	n4_debug("%s: fast flow request, tag %u%s", n4_srv_conn_str(c, b, sizeof(b)), r->tag,
		 q->partner ? ", paired" : "");
	if (n4_timer_arm(s->loop, &q->timer, now + N4_SRV_FAST_WAIT_MS, fast_timer_fired, q)) {
		fast_no(s, q, N4_FAST_NO_LIMIT);
		return;
	}
	fast_try(s, q);
}

static void handle_fast(struct conn *c)
{
	struct n4_server *s = c->srv;
	char b[64];

	if (!c->fast && !(c->fast = calloc(1, sizeof(*c->fast)))) {
		n4_warn("%s: out of memory for a fast flow, closed",
			n4_srv_conn_str(c, b, sizeof(b)));
		n4_srv_conn_close(c, false);
		return;
	}
	int rc = n4_fast_req_take(&c->fast->rx, c->in);
	if (rc < 0) {
		s->rejects[REJ_PROTOCOL]++;
		n4_info("%s: malformed fast flow request (%02x %02x ...), closed",
			n4_srv_conn_str(c, b, sizeof(b)), c->in[0], c->in[1]);
		n4_srv_conn_close(c, false);
		return;
	}
	if (rc == 1)
		fast_request(c, &c->fast->rx.r);
}

/* A HELLO for a flow some kept connection asked a fast rendezvous for: the
 * peer went the long way (an older client, or its wait ran out); so does the
 * requester, at once. */
static void fast_long_way(struct n4_server *s, const struct conn *hello)
{
	struct n4_srv_fast_req *q;

	while ((q = n4_srv_fast_by_ident(&s->fast, hello->pc.ident)) != NULL) {
		if (q->partner)
			fast_no(s, q->partner, N4_FAST_NO_LONG);
		fast_no(s, q, N4_FAST_NO_LONG);
	}
}

/* A fast flow's probe: its request is found by the token, and the source must
 * be the public IP its kept connection's first path was seen from. */
static void udp_fast_probe(struct n4_server *s, const uint8_t *buf, size_t len,
			   const union n4_sa *from, bool second)
{
	uint8_t token[N4_PAYLOAD_SIZE];
	struct sockaddr_in src;

	if (second || n4_fast_probe_decode(buf, len, token) || !n4_sa_to_v4(from, &src)) {
		s->rejects[REJ_BAD_UDP]++;
		return;
	}
	struct n4_srv_fast_req *q = n4_srv_fast_by_token(&s->fast, token);
	uint64_t at = s->rx_ms ? s->rx_ms : n4_now_ms();
	if (!q) {
		/* It overtook its request (UDP against TCP): kept a moment for it. */
		n4_srv_fast_orphan_add(&s->fast, token, src.sin_addr.s_addr, ntohs(src.sin_port),
				       at, ++s->fast.probe_seq);
		return;
	}
	if (q->probe_ip != src.sin_addr.s_addr) {
		s->rejects[REJ_SPOOFED_UDP]++;
		return;
	}
	if (q->probed)
		return; /* a copy resent against loss */
	q->probed = true;
	note_obs(s, src.sin_addr.s_addr, ntohs(src.sin_port));
	q->probe_port = ntohs(src.sin_port);
	q->probe_ms = at;
	q->probe_seq = ++s->fast.probe_seq;
	fast_try(s, q);
}

/* --- UDP: EXCHANGE and discovery probes -------------------------------- */

static void discovery_expired(n4_loop *loop, struct n4_timer *t)
{
	struct conn *c = t->arg;
	(void)loop;

	n4_srv_disc_expire(c->disc);
	maybe_schedule(c->srv, c);
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
	note_obs(s, src->sin_addr.s_addr, ntohs(src->sin_port));
	n4_srv_disc_probe(c->disc, ntohs(src->sin_port), second, m->ext & N4_EXCH_LAST, s->rx_ms);
	maybe_schedule(s, c);
}

/* A numbered probe (N4_EXT_SEQ): like udp_probe, with its place in the client's
 * send schedule, so that jitter cannot reorder what it tells. */
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
	if (!c || !c->disc || !n4_srv_disc_ordered(c->disc) || c->pc.state != N4_P_PAIRED) {
		s->rejects[REJ_UNKNOWN_UDP]++;
		return;
	}
	note_obs(s, src.sin_addr.s_addr, ntohs(src.sin_port));
	n4_srv_disc_seq_probe(c->disc, ntohs(src.sin_port), second, &p, s->rx_ms);
	maybe_schedule(s, c);
}

/* The pool's EXCHANGE, attributed to its client. */
static void exchange(struct n4_server *s, const struct n4_msg *m, const struct sockaddr_in *src,
		     const union n4_sa *from)
{
	struct n4_pclient *pc = NULL;
	char b[64], b2[64];

	int err = n4_pairing_exchange(s->pairing, m, src, &pc);
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
	note_obs(s, src->sin_addr.s_addr, ntohs(src->sin_port));
	c->exch_ms = n4_now_ms();
	n4_info(" => Exchange from %s (client %s)", n4_sa_str(from, b, sizeof(b)),
		n4_srv_conn_str(c, b2, sizeof(b2)));
	if (c->disc)
		n4_srv_disc_exchange(s->loop, c->disc, ntohs(src->sin_port), c->exch_ms, s->rx_ms,
				     discovery_expired, c);
	maybe_schedule(s, c);
	/* The next legacy client behind this IP and identifier may go now. */
	struct n4_pclient *released = n4_pairing_release(s->pairing, pc);
	if (released)
		send_ready(released->owner);
}

/* A V6 probe (cand6.h): over native IPv6 only, attributed by its token alone
 * (there is no IPv4 source to compare), from a client still in its exchange.
 * Its source is the client's candidate as the world sees it; nothing is sent
 * back over UDP, so the probe cannot be turned against a third party.  The
 * first one counts: the copies that follow it (resent against loss) change
 * nothing. */
static void udp_v6_probe(struct n4_server *s, const uint8_t *buf, size_t len,
			 const union n4_sa *from, bool second)
{
	struct n4_v6probe p;
	struct sockaddr_in v4;
	char b[64], b2[64];

	if (second || from->sa.sa_family != AF_INET6 || n4_sa_to_v4(from, &v4) ||
	    n4_v6probe_decode(buf, len, &p) || !n4_cand6_usable(&from->v6.sin6_addr, 0)) {
		s->rejects[REJ_BAD_UDP]++;
		return;
	}
	struct n4_pclient *pc = n4_pairing_by_token_only(s->pairing, p.token);
	struct conn *c = pc ? pc->owner : NULL;
	if (!c || c->pc.state != N4_P_PAIRED || !(c->pc.ext & N4_EXT_TOKEN) ||
	    (p.kind == N4_V6_PROBE_SEALED) != ((c->pc.ext & N4_EXT_KEY) != 0)) {
		s->rejects[REJ_UNKNOWN_UDP]++;
		return;
	}
	if (c->v6_heard)
		return;
	c->v6_heard = true;
	c->v6_kind = p.kind;
	c->v6_src = from->v6;
	memcpy(c->v6_blob, p.blob, sizeof(c->v6_blob));
	n4_info(" => V6 probe from %s (client %s)", n4_sa_str(from, b, sizeof(b)),
		n4_srv_conn_str(c, b2, sizeof(b2)));
}

void n4_srv_proto_datagram(n4_server *s, const uint8_t *buf, size_t len, const union n4_sa *from,
			   bool second)
{
	struct n4_msg m;
	struct sockaddr_in src;
	char b[64];

	if (len >= 1 && buf[0] == N4_CMD_PROBE) {
		udp_seq_probe(s, buf, len, from, second);
		return;
	}
	if (len >= 1 && buf[0] == N4_CMD_V6) {
		udp_v6_probe(s, buf, len, from, second);
		return;
	}
	if (len >= 1 && buf[0] == N4_CMD_FAST) {
		udp_fast_probe(s, buf, len, from, second);
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
	exchange(s, &m, &src, from);
}

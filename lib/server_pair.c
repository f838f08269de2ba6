/* server_pair.c - pairing on the wire: HELLO to READY, a keyed client's KEYID (the
 * pair stands on it, or AGAIN), the LOCAL addresses of clients behind one NAT,
 * EXCHANGEs attributed, PEERINFOs timed to arrive together (pairing.c keeps the
 * tables, this file talks). */
#include "n4.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "server_int.h"

static void send_ready_pair(struct conn *waiting, struct conn *c);

unsigned n4_srv_keyid_wait_ms(const struct n4_server *s)
{
	return s->cfg.hello_timeout_ms < KEYID_WAIT_MS ? s->cfg.hello_timeout_ms : KEYID_WAIT_MS;
}

/* A keyed client whose long id is not in yet has until n4_srv_keyid_wait_ms. */
static unsigned deadline_ms(const struct conn *c, unsigned ms)
{
	if ((c->pc.ext & N4_EXT_KEY) && !c->pc.keyed)
		return n4_srv_keyid_wait_ms(c->srv);
	return ms;
}

void n4_srv_send_ready(struct conn *c)
{
	struct n4_msg m;

	/* Its partner's READY failed and it was told AGAIN (or closed) meanwhile. */
	if (c->closed || c->pc.state != N4_P_PAIRED)
		return;
	if (c->pc.held) {
		/* READY follows when the legacy client ahead of it is attributed
		 * (pairing.h); the exchange deadline covers the wait. */
		n4_srv_arm_deadline(c, c->srv->cfg.exchange_timeout_ms);
		return;
	}

	n4_srv_disc_start(c);
	if (c->pc.ext & N4_EXT_LOCAL) {
		c->lan = calloc(1, sizeof(*c->lan));
		if (!c->lan)
			c->pc.ext &= (uint8_t)~N4_EXT_LOCAL; /* the public path only */
	}
	/* The HELLO is handled: in[] now takes LOCAL messages.  A keyed client's
	 * in[] may hold part of a KEYID (it was paired while sending its long id):
	 * n4_srv_handle_keyid empties it after each message. */
	if (!(c->pc.ext & N4_EXT_KEY))
		c->in_len = 0;
	n4_msg_init(&m, N4_CMD_READY, c->pc.ext, (c->pc.ext & N4_EXT_TOKEN) ? c->pc.token : NULL);
	c->ready_ms = n4_now_ms();
	n4_srv_arm_deadline(c, deadline_ms(c, c->srv->cfg.exchange_timeout_ms));
	n4_srv_conn_send(c, &m);
}

/* A HELLO for an identifier whose earlier pair kept connections (N4_EXT_STAY): the
 * peer of that pair came back (restarted program, or a recovery), so tell the ones
 * still running to punch again.  Each connection gets one REPUNCH and is closed; its
 * client opens a new one with its next rendezvous.  Linear in kept connections. */
static void notify_staying(struct n4_server *s, const struct conn *hello)
{
	for (struct conn *c = s->staying, *next; c; c = next) {
		next = c->stay_next;
		if (memcmp(c->pc.ident, hello->pc.ident, N4_PAYLOAD_SIZE) != 0)
			continue;
		struct n4_msg m;
		char b[64];
		n4_msg_init(&m, N4_CMD_REPUNCH, 0, c->pc.ident);
		n4_info(" <= Repunch to %s", n4_srv_conn_str(c, b, sizeof(b)));
		c->close_after_flush = true;
		n4_srv_conn_send(c, &m);
	}
}

/* Kept for a REPUNCH notice (N4_EXT_STAY); out of the pairing tables. */
void n4_srv_start_staying(struct conn *c)
{
	struct n4_server *s = c->srv;

	n4_pairing_remove(s->pairing, &c->pc);
	c->staying = true;
	c->stay_prev = NULL;
	c->stay_next = s->staying;
	if (s->staying)
		s->staying->stay_prev = c;
	s->staying = c;
	n4_srv_arm_deadline(c, STAY_MAX_MS);
}

/* STAY (N4_CMD_STAY) as a connection's first message: a client whose kept connection
 * was lost (its NAT forgot the TCP mapping) registers again for notices.  If a client
 * with that identifier is already waiting for a partner, it is told at once.  The
 * scan of waiting clients happens only for these rare registrations. */
static void handle_stay(struct conn *c)
{
	struct n4_server *s = c->srv;
	char ident[N4_PAYLOAD_SIZE + 1], b[64];

	if (n4_ident_decode(c->in + 2, ident) ||
	    (s->only_ident[0] && memcmp(c->in + 2, s->only_ident_wire, N4_PAYLOAD_SIZE) != 0)) {
		s->rejects[REJ_BAD_HELLO]++;
		n4_info("%s: STAY for a bad or refused identifier, closed",
			n4_srv_conn_str(c, b, sizeof(b)));
		n4_srv_conn_close(c, false);
		return;
	}
	memcpy(c->pc.ident, c->in + 2, N4_PAYLOAD_SIZE);
	c->pc.ext = N4_EXT_STAY;
	c->pc.state = N4_P_DONE;
	n4_info(" => Stay from %s ident '%s'", n4_srv_conn_str(c, b, sizeof(b)), ident);
	n4_srv_start_staying(c);
	for (struct conn *w = s->live; w; w = w->next) {
		if (w != c && w->pc.state == N4_P_WAITING &&
		    memcmp(w->pc.ident, c->pc.ident, N4_PAYLOAD_SIZE) == 0) {
			struct n4_msg m;
			n4_msg_init(&m, N4_CMD_REPUNCH, 0, c->pc.ident);
			n4_info(" <= Repunch to %s", n4_srv_conn_str(c, b, sizeof(b)));
			c->close_after_flush = true;
			n4_srv_conn_send(c, &m);
			return;
		}
	}
}

void n4_srv_handle_hello(struct conn *c)
{
	struct n4_server *s = c->srv;
	struct n4_msg m;
	char ident[N4_PAYLOAD_SIZE + 1], b[64];

	if (c->in[0] == N4_CMD_STAY) {
		handle_stay(c);
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
	c->pc.ext = m.ext & N4_EXT_ALL;
	/* Discovery rides on the token and needs the second UDP port. */
	if ((m.ext & N4_EXT_PROBE) && (c->pc.ext & N4_EXT_TOKEN) && s->probe_io.fd >= 0)
		c->pc.ext |= N4_EXT_PROBE;
	/* The relay's registration rides on the token's pairing too.  Keyed
	 * pairs are relayed as well: they authenticate each other through it. */
	if ((m.ext & N4_EXT_RELAY) && (c->pc.ext & N4_EXT_TOKEN) && s->relay)
		c->pc.ext |= N4_EXT_RELAY;
	if ((m.ext & N4_EXT_STAY) && (c->pc.ext & N4_EXT_TOKEN))
		c->pc.ext |= N4_EXT_STAY;
	notify_staying(s, c);
	if ((m.ext & N4_EXT_SEQ) && (c->pc.ext & N4_EXT_PROBE))
		c->pc.ext |= N4_EXT_SEQ; /* numbered probes: jitter and loss (discover.c) */
	if ((m.ext & N4_EXT_LOCAL) && (c->pc.ext & N4_EXT_TOKEN))
		c->pc.ext |= N4_EXT_LOCAL;
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
		n4_srv_arm_deadline(c, deadline_ms(c, s->cfg.wait_timeout_ms));
		n4_srv_conn_flush(c);
		return;
	}
	send_ready_pair(w->owner, c);
}

static void send_ready_pair(struct conn *waiting, struct conn *c)
{
	char b[64], b2[64];

	n4_info(" <= Ready to %s and %s", n4_srv_conn_str(waiting, b2, sizeof(b2)),
		n4_srv_conn_str(c, b, sizeof(b)));
	n4_srv_send_ready(waiting);
	n4_srv_send_ready(c); /* nothing if the first failed: c was closed or told AGAIN */
}

/* The pairing fell through for a keyed client (N4_CMD_AGAIN): its partner
 * turned out to have another long id, or left.  Its client says HELLO again at
 * once, on a new connection; this one ends with the client's EOF. */
void n4_srv_send_again(struct conn *c)
{
	struct n4_msg m;
	char b[64];

	if (c->closed)
		return;
	(void)n4_pairing_remove(c->srv->pairing, &c->pc); /* keyed: never holds */
	n4_timer_cancel(c->srv->loop, &c->peerinfo_timer);
	c->pc.state = N4_P_DONE;
	n4_info(" <= Again to %s", n4_srv_conn_str(c, b, sizeof(b)));
	n4_srv_arm_deadline(c, c->srv->cfg.hello_timeout_ms);
	c->shut_after_flush = c->again_sent = true;
	n4_msg_init(&m, N4_CMD_AGAIN, 0, c->pc.ident);
	n4_srv_conn_send(c, &m);
}

/* A LOCAL message (N4_EXT_LOCAL, between READY and PEERINFO): one local
 * address of the client, at most N4_LOCAL_MAX messages, the last flagged. */
void n4_srv_handle_local(struct conn *c)
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
		n4_info("%s: malformed LOCAL (%02x %02x ...), closed",
			n4_srv_conn_str(c, b, sizeof(b)), c->in[0], c->in[1]);
		n4_srv_conn_close(c, true);
		return;
	}
	if (r == 1) {
		l->own[l->nown++] = a;
		n4_debug("%s: local address %s", n4_srv_conn_str(c, b, sizeof(b)),
			 n4_addr_str(&a, b2, sizeof(b2)));
	}
	if (m.ext & N4_LOCAL_LAST) {
		l->done = true;
		n4_srv_maybe_schedule(s, c);
	}
}

/* One of the KEYID messages of a keyed client, in order: its long id (after
 * HELLO, while waiting or already paired on the short id), then the round's
 * nonce (after READY). */
void n4_srv_handle_keyid(struct conn *c)
{
	struct n4_server *s = c->srv;
	struct n4_msg m;
	char b[64], b2[64];

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
	bool was_paired = c->pc.state == N4_P_PAIRED;
	enum n4_long_result r = n4_pairing_long_id(s->pairing, &c->pc, &w);
	/* Its long id is in: the usual deadlines from here on. */
	n4_srv_arm_deadline(c, was_paired ? s->cfg.exchange_timeout_ms : s->cfg.wait_timeout_ms);
	switch (r) {
	case N4_LONG_WAIT:
	case N4_LONG_PENDING:
		return;
	case N4_LONG_PAIRED:
		send_ready_pair(w->owner, c);
		return;
	case N4_LONG_CONFIRMED:
		n4_srv_maybe_schedule(s, c);
		return;
	case N4_LONG_MISMATCH:
		break;
	}
	/* Two clients on one short id with different long ids: a stranger who
	 * learnt the short id, or (rarely) two keys whose short ids collide.
	 * Which one is ours cannot be told: both start again, and the short id
	 * is now paired on long ids alone. */
	struct conn *other = w->owner;
	s->rejects[REJ_KEY_MISMATCH]++;
	n4_info("%s and %s: same short id, different keyed ids; both start again",
		n4_srv_conn_str(other, b2, sizeof(b2)), n4_srv_conn_str(c, b, sizeof(b)));
	n4_srv_send_again(other);
	n4_srv_send_again(c);
}

void n4_srv_send_peerinfo(struct conn *c)
{
	struct n4_msg m;
	char b[64], b2[64];

	if (c->relayed)
		n4_srv_send_relay(c);
	else
		n4_srv_disc_send_plan(c);
	if (c->closed)
		return;
	if (c->pc.ext & N4_EXT_KEY) {
		/* The client's own observed address, bound into its PUNCH MAC,
		 * and its partner's nonce for this round. */
		struct n4_msg self;
		n4_msg_init(&self, N4_CMD_SELF, 0, NULL);
		n4_peerinfo_encode(&c->pc.udp, self.payload);
		n4_srv_conn_queue(c, &self);
		for (uint8_t i = 0; c->peer_nonce_ok && i < 3 && !c->closed; i++) {
			n4_msg_init(&self, N4_CMD_SELF, (uint8_t)(i + 1),
				    c->peer_nonce + i * N4_PAYLOAD_SIZE);
			n4_srv_conn_queue(c, &self);
		}
		if (c->closed)
			return;
	}
	for (unsigned i = 0; c->lan && i < c->lan->npeer; i++) {
		struct n4_msg lm;
		n4_local_encode(N4_CMD_PEERLOCAL, &c->lan->peer[i], i + 1 == c->lan->npeer, &lm);
		n4_srv_conn_queue(c, &lm); /* in PEERINFO's segment */
		if (c->closed)
			return;
	}
	if (c->lan && c->lan->npeer)
		n4_info(" <= Peerlocal (%u address%s, same public IP) to %s", c->lan->npeer,
			c->lan->npeer == 1 ? "" : "es", n4_srv_conn_str(c, b, sizeof(b)));
	n4_msg_init(&m, N4_CMD_PEERINFO, c->pc.ext ? c->peer_flags : 0, NULL);
	n4_peerinfo_encode(&c->peer_udp, m.payload);
	n4_info(" <= Peerinfo %s to %s", n4_addr_str(&c->peer_udp, b2, sizeof(b2)),
		n4_srv_conn_str(c, b, sizeof(b)));
	c->pc.state = N4_P_DONE;
	if (c->pc.ext & N4_EXT_STAY) {
		n4_srv_start_staying(c);
		n4_srv_conn_send(c, &m);
		return;
	}
	/* It is sent; closing waits only for the kernel to take the bytes. */
	n4_srv_arm_deadline(c, c->srv->cfg.hello_timeout_ms);
	c->close_after_flush = true;
	n4_srv_conn_send(c, &m);
}

static void peerinfo_fired(n4_loop *loop, struct n4_timer *t)
{
	(void)loop;
	n4_srv_send_peerinfo(t->arg);
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
	n4_srv_disc_plan(s, a, b, now, delay, rtt_a, rtt_b);
	if (n4_srv_relay_pair(s, a, b))
		delay[0] = delay[1] = 0; /* no race to synchronise */
	for (int i = 0; i < 2; i++) {
		unsigned kind = pair[i]->disc ? (unsigned)pair[i]->disc->d.plan.kind : N4_PLAN_NONE;
		s->plans[kind < N4_STATS_PLANS ? kind : N4_PLAN_NONE]++;
		if (pair[i]->closed)
			continue; /* a failed send to the first closed the second */
		if (delay[i] == 0 || n4_timer_arm(s->loop, &pair[i]->peerinfo_timer, now + delay[i],
						  peerinfo_fired, pair[i]))
			n4_srv_send_peerinfo(pair[i]);
	}
}

/* PEERINFOs go out once both EXCHANGEs are in and, for clients doing discovery,
 * their probes too (or the wait for them ran out). */
void n4_srv_maybe_schedule(struct n4_server *s, struct conn *c)
{
	struct n4_pclient *p = c->pc.partner;

	if (!p || !c->pc.observed || !p->observed || c->pc.state != N4_P_PAIRED ||
	    c->peer_udp.sin_family != 0)
		return;
	if ((c->pc.ext & N4_EXT_KEY) && !n4_pairing_confirmed(&c->pc))
		return; /* paired on the short id: both long ids must agree first */
	struct conn *other = p->owner;
	if (!n4_srv_disc_complete(c) || !n4_srv_disc_complete(other))
		return;
	if (n4_srv_relay_wants_ask(c) || n4_srv_relay_wants_ask(other))
		return; /* its lost-round count decides between punch and relay */
	if ((c->lan && !c->lan->done) || (other->lan && !other->lan->done))
		return; /* bounded by the exchange deadline */
	schedule_peerinfo(s, c, other);
}

void n4_srv_udp_datagram(struct n4_server *s, const uint8_t *buf, size_t len,
			 const union n4_sa *from, bool second)
{
	struct n4_msg m;
	struct sockaddr_in src;
	char b[64], b2[64];

	if (len >= 1 && buf[0] == N4_CMD_PROBE) {
		n4_srv_udp_seq_probe(s, buf, len, from, second);
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
		n4_srv_udp_probe(s, &m, &src, second);
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
		n4_srv_conn_str(c, b2, sizeof(b2)));
	n4_srv_disc_exchange(s, c, &src);
	n4_srv_maybe_schedule(s, c);
	/* The next legacy client behind this IP and identifier may go now. */
	struct n4_pclient *released = n4_pairing_release(s->pairing, pc);
	if (released)
		n4_srv_send_ready(released->owner);
}

void n4_srv_udp_ready(n4_loop *loop, struct n4_io *io, uint32_t events)
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
		s->rx_ms = n4_srv_rx_time_ms(&mh);
		n4_srv_udp_datagram(s, buf, (size_t)n, &from, io == &s->probe_io);
	}
}

/* rendezvous.c - talking to the rendezvous server, step by step, with deadlines.
 * Works unchanged against the original server: extensions are only used when the
 * server grants them in READY's reserved byte. */
#include "rendezvous.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "key.h"
#include "log.h"
#include "loop.h"

#define EXCHANGE_RESEND_MS 250

void n4_rv_init(struct n4_rv *rv, const struct sockaddr_in *server,
		const uint8_t ident[N4_PAYLOAD_SIZE], uint8_t offer)
{
	memset(rv, 0, sizeof(*rv));
	rv->tcp_fd = -1;
	rv->v6_fd = -1;
	rv->server = *server;
	memcpy(rv->ident, ident, N4_PAYLOAD_SIZE);
	rv->offer = offer;
}

void n4_rv_close(struct n4_rv *rv)
{
	if (rv->tcp_fd >= 0)
		close(rv->tcp_fd);
	rv->tcp_fd = -1;
}

static int send_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int n4_rv_hello(struct n4_rv *rv, uint64_t deadline_ms, const struct n4_waitctx *ctx)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	rv->tcp_fd = fd;
	if (connect(fd, (struct sockaddr *)&rv->server, sizeof(rv->server)) && errno != EINPROGRESS)
		return -errno;
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	uint64_t t0 = n4_now_ms();
	int n = n4_wait(&p, 1, deadline_ms, ctx);
	if (n <= 0)
		return n ? n : -ETIMEDOUT;
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len))
		return -errno;
	if (soerr)
		return -soerr;
	rv->rtt_ms = (unsigned)(n4_now_ms() - t0);
	/* Several small messages follow one another (a keyed client's nonce,
	 * RELAY, LOCAL): Nagle would hold each behind the server's delayed ACK of
	 * the one before, up to 40 ms, while the server waits for all of them
	 * before PEERINFO. */
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		n4_debug("TCP_NODELAY: %s", strerror(errno));
	struct n4_msg m;
	uint8_t buf[2 * N4_MSG_SIZE], *at = buf;
	if (rv->host_max) {
		/* Before HELLO: an original server closes the connection on it,
		 * instead of pairing the host 1:1 with a joiner. */
		uint8_t pl[N4_PAYLOAD_SIZE] = { (uint8_t)(rv->host_max >> 8),
						(uint8_t)rv->host_max };
		n4_msg_init(&m, N4_CMD_ROOM, N4_ROOM_HOST, pl);
		n4_wire_encode(&m, at);
		at += N4_MSG_SIZE;
	} else if (rv->join_first) {
		n4_msg_init(&m, N4_CMD_ROOM, N4_ROOM_JOINER, rv->room_payload);
		n4_wire_encode(&m, at);
		at += N4_MSG_SIZE;
	}
	n4_msg_init(&m, N4_CMD_HELLO, rv->offer, rv->ident);
	n4_wire_encode(&m, at);
	at += N4_MSG_SIZE;
	int err = send_all(fd, buf, (size_t)(at - buf));
	if (err)
		return err;
	n4_info(" <= Hello ");
	return 0;
}

static int send_exchange(const struct n4_rv *rv, int udp_fd, uint8_t flags, bool second_port)
{
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE];
	bool tok = rv->granted & N4_EXT_TOKEN;
	struct sockaddr_in to = rv->server;

	if (second_port)
		to.sin_port = htons((uint16_t)(ntohs(to.sin_port) + N4_PROBE_PORT_DELTA));
	n4_msg_init(&m, N4_CMD_EXCHANGE, (uint8_t)((tok ? N4_EXT_TOKEN : 0) | flags),
		    tok ? rv->token : rv->ident);
	n4_wire_encode(&m, buf);
	if (sendto(udp_fd, buf, sizeof(buf), 0, (const struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

/* A numbered discovery probe (N4_EXT_SEQ): seq 0 from socket 0 to the second
 * port, seq k from the k-th extra socket. */
static void send_seq_probe(const struct n4_rv *rv, int fd, unsigned seq, unsigned spacing_ms,
			   bool resent)
{
	struct n4_seq_probe p = { .seq = (uint8_t)seq,
				  .spacing_ms = (uint8_t)spacing_ms,
				  .resent = resent,
				  .nosweep = rv->nosweep };
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE];
	struct sockaddr_in to = rv->server;

	if (seq == 0)
		to.sin_port = htons((uint16_t)(ntohs(to.sin_port) + N4_PROBE_PORT_DELTA));
	n4_msg_init(&m, N4_CMD_PROBE, n4_seq_probe_ext(&p), rv->token);
	n4_wire_encode(&m, buf);
	if (sendto(fd, buf, sizeof(buf), 0, (const struct sockaddr *)&to, sizeof(to)) < 0)
		n4_debug("probe %u: %s", seq, strerror(errno));
}

/* Read exactly one 8-byte message from the server (any command; the caller
 * checks), running tick() whenever *next_tick_ms is due. */
static int recv_msg(struct n4_rv *rv, struct n4_msg *m, uint64_t deadline_ms,
		    const struct n4_waitctx *ctx, uint64_t (*tick)(struct n4_rv *, int, void *),
		    int udp_fd, void *tick_arg)
{
	uint8_t buf[N4_MSG_SIZE];
	size_t have = 0;
	uint64_t next = tick ? n4_now_ms() : UINT64_MAX;

	while (have < sizeof(buf)) {
		if (n4_now_ms() >= next)
			next = tick(rv, udp_fd, tick_arg);
		struct pollfd p = { .fd = rv->tcp_fd, .events = POLLIN };
		uint64_t until = next < deadline_ms ? next : deadline_ms;
		int n = n4_wait(&p, 1, until, ctx);
		if (n < 0)
			return n;
		if (n == 0) {
			if (until >= deadline_ms)
				return -ETIMEDOUT;
			continue;
		}
		ssize_t r = recv(rv->tcp_fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET;
		have += (size_t)r;
	}
	if (n4_wire_decode(buf, sizeof(buf), 0, m)) {
		n4_warn("server sent bytes that are no n4 message (%02x %02x ...)", buf[0], buf[1]);
		return -EPROTO;
	}
	return 0;
}

/* Our server asks a keyed client for its long pairing id before pairing it;
 * an original server never does (it pairs on the short id in HELLO). */
static int send_long_id(struct n4_rv *rv)
{
	uint8_t buf[N4_LONGID_PARTS * N4_MSG_SIZE];

	for (unsigned i = 0; i < N4_LONGID_PARTS; i++) {
		struct n4_msg m;
		n4_msg_init(&m, N4_CMD_KEYID, (uint8_t)i, rv->long_id + i * N4_PAYLOAD_SIZE);
		n4_wire_encode(&m, buf + i * N4_MSG_SIZE);
	}
	return send_all(rv->tcp_fd, buf, sizeof(buf));
}

/* AGAIN (N4_CMD_AGAIN) from a server we offered N4_EXT_KEY: the pairing is off.
 * Only our server sends it, and only to keyed clients. */
static bool called_off(struct n4_rv *rv, const struct n4_msg *m)
{
	rv->again = m->cmd == N4_CMD_AGAIN && (rv->offer & N4_EXT_KEY);
	return rv->again;
}

int n4_rv_host_reply(struct n4_rv *rv, uint64_t deadline_ms, uint8_t *sub, uint8_t *reason)
{
	struct n4_msg m;
	int err = recv_msg(rv, &m, deadline_ms, NULL, NULL, -1, NULL);

	if (!err && m.cmd == N4_CMD_KEYID && (rv->offer & N4_EXT_KEY) && rv->long_id) {
		err = send_long_id(rv);
		if (!err)
			err = recv_msg(rv, &m, deadline_ms, NULL, NULL, -1, NULL);
	}
	if (err)
		return err;
	if (m.cmd != N4_CMD_ROOM)
		return -EPROTO;
	*sub = m.ext;
	*reason = m.payload[0];
	return 0;
}

int n4_rv_ready(struct n4_rv *rv, uint64_t deadline_ms, const struct n4_waitctx *ctx)
{
	struct n4_msg m;
	int err = recv_msg(rv, &m, deadline_ms, ctx, NULL, -1, NULL);

	if (!err && m.cmd == N4_CMD_KEYID && (rv->offer & N4_EXT_KEY) && rv->long_id) {
		err = send_long_id(rv);
		if (!err)
			err = recv_msg(rv, &m, deadline_ms, ctx, NULL, -1, NULL);
	}
	if (err)
		return err;
	if (called_off(rv, &m))
		return -EAGAIN; /* paired, and the partner's READY failed */
	if (m.cmd == N4_CMD_ROOM && m.ext == N4_ROOM_REFUSED && (rv->offer & N4_EXT_ROOM)) {
		n4_warn("the server refused this client in the identifier's room (%s)",
			m.payload[0] == 3   ? "its key is not the room's"
			: m.payload[0] == 2 ? "too many joins a second"
					    : "the room is full");
		return -EACCES;
	}
	if (m.cmd != N4_CMD_READY) {
		n4_warn("server sent command %u where READY was expected", m.cmd);
		return -EPROTO;
	}
	/* An original server sends 0 here; only take what we offered. */
	rv->granted = m.ext & rv->offer;
	if (rv->granted & N4_EXT_TOKEN)
		memcpy(rv->token, m.payload, N4_TOKEN_SIZE);
	else
		rv->granted = 0; /* every extension rides on the token */
	if ((rv->granted & N4_EXT_KEY) && rv->nonce) {
		/* Our nonce reaches the partner with its PEERINFO: then the very
		 * first PUNCH each side receives can prove the other. */
		uint8_t buf[N4_LONGID_PARTS * N4_MSG_SIZE], part[3 * N4_PAYLOAD_SIZE] = { 0 };
		memcpy(part, rv->nonce, 16);
		for (unsigned i = 0; i < N4_LONGID_PARTS; i++) {
			struct n4_msg k;
			n4_msg_init(&k, N4_CMD_KEYID, (uint8_t)(N4_LONGID_PARTS + i),
				    part + i * N4_PAYLOAD_SIZE);
			n4_wire_encode(&k, buf + i * N4_MSG_SIZE);
		}
		err = send_all(rv->tcp_fd, buf, sizeof(buf));
		if (err)
			return err;
	}
	n4_info(" => Ready ");
	if ((rv->granted & N4_EXT_ROOM) && rv->room_sub && !rv->join_first) {
		uint8_t buf[N4_MSG_SIZE];
		n4_msg_init(&m, N4_CMD_ROOM, rv->room_sub, rv->room_payload);
		n4_wire_encode(&m, buf);
		err = send_all(rv->tcp_fd, buf, sizeof(buf));
		if (err)
			return err;
	}
	if (rv->granted & N4_EXT_RELAY) {
		/* The server waits for this before PEERINFO: how many rounds this
		 * attempt has lost decides between another punch and the relay. */
		uint8_t buf[N4_MSG_SIZE];
		n4_msg_init(&m, N4_CMD_RELAY, rv->lost_rounds, NULL);
		n4_wire_encode(&m, buf);
		err = send_all(rv->tcp_fd, buf, sizeof(buf));
		if (err)
			return err;
	}
	return 0;
}

/* Which local address we announce: the one the kernel chose for our route to
 * the server (the TCP connection's own address), with the port of the pool's
 * first socket.  That is the interface facing the NAT a partner would share
 * with us, so the one a host on the same LAN can reach.  The other interface
 * addresses are left out on purpose: container bridges and VPN tunnels carry
 * the same address on unrelated hosts (172.17.0.1 on every Docker host), so a
 * PUNCH there would reach our own host or a stranger's network, and each extra
 * address only tells the server more of the LAN's layout.  (The wire allows
 * N4_LOCAL_MAX, should two LANs of one host behind one NAT ever matter.) */
static int send_local(struct n4_rv *rv, int udp_fd)
{
	struct sockaddr_in tcp_local, udp_local;
	socklen_t tlen = sizeof(tcp_local), ulen = sizeof(udp_local);
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE];

	memset(&rv->own_local, 0, sizeof(rv->own_local));
	if (getsockname(rv->tcp_fd, (struct sockaddr *)&tcp_local, &tlen) == 0 &&
	    getsockname(udp_fd, (struct sockaddr *)&udp_local, &ulen) == 0 &&
	    tcp_local.sin_family == AF_INET && udp_local.sin_family == AF_INET) {
		rv->own_local = tcp_local;
		rv->own_local.sin_port = udp_local.sin_port;
	}
	/* A loopback route (server on this host) is no use to another host:
	 * validate with the receiver's own decoder, announce "none" if it fails. */
	n4_local_encode(N4_CMD_LOCAL, &rv->own_local, true, &m);
	struct sockaddr_in check;
	if (rv->own_local.sin_family != AF_INET || n4_local_decode(&m, &check) != 1) {
		memset(&rv->own_local, 0, sizeof(rv->own_local));
		n4_local_encode(N4_CMD_LOCAL, NULL, true, &m);
	}
	n4_wire_encode(&m, buf);
	char b[32];
	n4_debug("announcing local address %s",
		 rv->own_local.sin_family ? n4_addr_str(&rv->own_local, b, sizeof(b)) : "(none)");
	return send_all(rv->tcp_fd, buf, sizeof(buf));
}

/* A PEERLOCAL: keep a usable address of the partner.  Never our own (two LANs
 * numbered alike behind one carrier NAT): a PUNCH there comes back to us. */
static void take_peer_local(struct n4_rv *rv, const struct n4_msg *m)
{
	struct sockaddr_in a;
	char b[32];

	if (n4_local_decode(m, &a) != 1 || rv->npeer_local >= N4_LOCAL_MAX) {
		n4_debug("unusable PEERLOCAL ignored");
		return;
	}
	if (a.sin_addr.s_addr == rv->own_local.sin_addr.s_addr &&
	    a.sin_port == rv->own_local.sin_port)
		return;
	rv->peer_local[rv->npeer_local++] = a;
	n4_info(" => Peer local: %s ", n4_addr_str(&a, b, sizeof(b)));
}

/* The V6 probe: an original server never gets it (only after a grant), ours of
 * an older version counts it as a malformed datagram. */
static void send_v6_probe(const struct n4_rv *rv)
{
	if (rv->v6_fd < 0)
		return;
	if (sendto(rv->v6_fd, rv->v6_probe, sizeof(rv->v6_probe), 0,
		   (const struct sockaddr *)&rv->server6, sizeof(rv->server6)) < 0)
		n4_debug("V6 probe: %s", strerror(errno));
}

struct exch_sched {
	unsigned sent_probes;
	unsigned spacing_ms;
	uint64_t start, next_resend;
	int udp_fd;
	/* N4_EXT_SEQ: every probe again this often until PEERINFO, so that a
	 * lost one costs a round trip rather than the plan. */
	unsigned probe_resend_ms;
	uint64_t next_probe_resend;
};

/* Timed sends while waiting for PEERINFO: discovery probes (spaced so that
 * the server can measure how fast other hosts consume this NAT's ports) and
 * EXCHANGE resends against loss. */
static uint64_t exchange_tick(struct n4_rv *rv, int udp_fd, void *arg)
{
	struct exch_sched *s = arg;
	uint64_t now = n4_now_ms();

	bool seq = rv->granted & N4_EXT_SEQ;
	if (s->sent_probes < rv->nprobes &&
	    now >= s->start + (uint64_t)s->sent_probes * s->spacing_ms) {
		unsigned i = s->sent_probes++;
		uint8_t flags =
			(uint8_t)(N4_EXCH_PROBE | (i + 1 == rv->nprobes ? N4_EXCH_LAST : 0));
		int err = seq ? 0 : send_exchange(rv, rv->probe_fds[i], flags, false);
		if (seq)
			send_seq_probe(rv, rv->probe_fds[i], i + 1, s->spacing_ms, false);
		if (err)
			n4_debug("probe %u: %s", i, strerror(-err));
		if (s->sent_probes == rv->nprobes)
			s->next_probe_resend = now + s->probe_resend_ms;
	}
	if (seq && s->sent_probes == rv->nprobes && now >= s->next_probe_resend) {
		send_seq_probe(rv, s->udp_fd, 0, s->spacing_ms, true);
		for (unsigned i = 0; i < rv->nprobes; i++)
			send_seq_probe(rv, rv->probe_fds[i], i + 1, s->spacing_ms, true);
		s->next_probe_resend = now + s->probe_resend_ms;
	}
	if (now >= s->next_resend) {
		send_v6_probe(rv);
		int err = send_exchange(rv, udp_fd, 0, false);
		if (err)
			n4_debug("EXCHANGE resend: %s", strerror(-err));
		s->next_resend = now + EXCHANGE_RESEND_MS;
	}
	uint64_t next = s->next_resend;
	if (seq && s->sent_probes == rv->nprobes && s->next_probe_resend < next)
		next = s->next_probe_resend;
	if (s->sent_probes < rv->nprobes) {
		uint64_t p = s->start + (uint64_t)s->sent_probes * s->spacing_ms;
		if (p < next)
			next = p;
	}
	return next;
}

/* The first sends of the exchange: LOCAL, three EXCHANGEs, the first probe,
 * and the schedule of the rest (exchange_tick). */
static int exchange_start(struct n4_rv *rv, int udp_fd, bool probing, struct exch_sched *sched)
{
	rv->npeer_local = 0;
	/* First: the partner's candidate reaches us only if ours reached the
	 * server before it sends PEERINFO. */
	memset(&rv->v6rx, 0, sizeof(rv->v6rx));
	rv->v6_bad = false;
	send_v6_probe(rv);
	/* Over TCP before the EXCHANGE, so the server has it when the pair is
	 * complete; it waits for it from clients that negotiated it. */
	if (rv->granted & N4_EXT_LOCAL) {
		int err = send_local(rv, udp_fd);
		if (err)
			return err;
	}
	/* Three copies, as the original sends, against loss. */
	for (int i = 0; i < 3; i++) {
		int err = send_exchange(rv, udp_fd, 0, false);
		if (err)
			return err;
	}
	/* Spread the probes over about one round trip (5..40 ms apart): long
	 * enough to see other hosts' traffic, short enough not to delay.  A
	 * multiple of 5, as numbered probes carry it (predict.h). */
	sched->spacing_ms = rv->rtt_ms / 2 < 5 ? 5 : rv->rtt_ms / 2 > 40 ? 40 : rv->rtt_ms / 2;
	sched->spacing_ms -= sched->spacing_ms % 5;
	sched->udp_fd = udp_fd;
	sched->probe_resend_ms = rv->rtt_ms + 20 < 60	 ? 60
				 : rv->rtt_ms + 20 > 250 ? 250
							 : rv->rtt_ms + 20;
	if (!probing)
		rv->nprobes = 0;
	else if (rv->granted & N4_EXT_SEQ)
		send_seq_probe(rv, udp_fd, 0, sched->spacing_ms, false);
	else if (send_exchange(rv, udp_fd, N4_EXCH_PROBE, true))
		n4_debug("probe to the second port failed");
	n4_info(" <= Exchange ");
	sched->next_resend = sched->start + EXCHANGE_RESEND_MS;
	memset(&rv->plan, 0, sizeof(rv->plan));
	rv->relay_port = 0;
	memset(&rv->tune, 0, sizeof(rv->tune));
	return 0;
}

struct exch_seen {
	bool relay, token;
};

/* A message before PEERINFO: 1 taken (RELAY, RELAY_TOKEN, SELF, PLAN,
 * PEERLOCAL, TUNE), 0 it is PEERINFO, -EAGAIN called off, -EPROTO another. */
static int exchange_take(struct n4_rv *rv, const struct n4_msg *m, bool probing,
			 struct exch_seen *seen)
{
	if (m->cmd == N4_CMD_RELAY && (rv->granted & N4_EXT_RELAY) && !seen->relay) {
		rv->relay_port = (uint16_t)(m->payload[0] << 8 | m->payload[1]);
		memcpy(rv->relay_token, m->payload + 2, 4);
		seen->relay = true;
		return 1;
	}
	if (m->cmd == N4_CMD_RELAY_TOKEN && seen->relay && !seen->token) {
		memcpy(rv->relay_token + 4, m->payload, N4_RELAY_TOKEN_SIZE - 4);
		seen->token = true;
		return 1;
	}
	if (m->cmd == N4_CMD_SELF && (rv->granted & N4_EXT_KEY)) {
		if (m->ext == 0) {
			rv->have_self = n4_peerinfo_decode(m->payload, &rv->self) == 0;
		} else if (m->ext == rv->peer_nonce_parts + 1 && m->ext <= 3) {
			memcpy(rv->peer_nonce + N4_PAYLOAD_SIZE * rv->peer_nonce_parts, m->payload,
			       N4_PAYLOAD_SIZE);
			rv->have_peer_nonce = ++rv->peer_nonce_parts == 3;
		}
		return 1;
	}
	if (m->cmd == N4_CMD_PLAN && probing) {
		if (n4_plan_decode(m->ext, m->payload, &rv->plan)) {
			n4_warn("server sent an invalid plan; using the original's guess");
			memset(&rv->plan, 0, sizeof(rv->plan));
		}
		return 1;
	}
	if (m->cmd == N4_CMD_PEERLOCAL && (rv->granted & N4_EXT_LOCAL)) {
		take_peer_local(rv, m);
		return 1;
	}
	if (called_off(rv, m))
		return -EAGAIN;
	if (m->cmd == N4_CMD_V6 && rv->v6_fd >= 0) {
		if (n4_v6rx_take(&rv->v6rx, m) && !rv->v6_bad) {
			n4_warn("server sent a malformed IPv6 report; IPv4 only this round");
			rv->v6_bad = true;
		}
		return 1;
	}
	if (m->cmd == N4_CMD_TUNE && (rv->granted & N4_EXT_SEQ)) {
		if (n4_tune_decode(m->ext, m->payload, &rv->tune)) {
			n4_warn("server sent invalid timing; using the defaults");
			memset(&rv->tune, 0, sizeof(rv->tune));
		}
		return 1;
	}
	if (m->cmd == N4_CMD_ROOM && m->ext == N4_ROOM_REFUSED && (rv->granted & N4_EXT_ROOM)) {
		n4_warn("the server refused this client in the identifier's room (%s)",
			m->payload[0] == 4   ? "its join ticket is no longer held"
			: m->payload[0] == 3 ? "its key is not the room's"
			: m->payload[0] == 2 ? "too many joins a second"
					     : "the room is full");
		return -EACCES;
	}
	if (m->cmd != N4_CMD_PEERINFO) {
		n4_warn("server sent command %u where PEERINFO was expected", m->cmd);
		return -EPROTO;
	}
	return 0;
}

int n4_rv_exchange(struct n4_rv *rv, int udp_fd, uint64_t deadline_ms, const struct n4_waitctx *ctx)
{
	struct n4_msg m;
	bool probing = (rv->granted & N4_EXT_PROBE) && rv->nprobes > 0;
	struct exch_sched sched = { .start = n4_now_ms() };
	struct exch_seen seen = { false, false };
	int err = exchange_start(rv, udp_fd, probing, &sched);

	if (err)
		return err;
	do {
		err = recv_msg(rv, &m, deadline_ms, ctx, exchange_tick, udp_fd, &sched);
		if (err)
			return err;
		err = exchange_take(rv, &m, probing, &seen);
		if (err < 0)
			return err;
	} while (err == 1);
	if (seen.relay && (!seen.token || rv->relay_port == 0)) {
		n4_warn("server sent an incomplete relay grant");
		return -EPROTO;
	}
	if (n4_peerinfo_decode(m.payload, &rv->peer)) {
		n4_warn("server sent an invalid peer address");
		return -EPROTO;
	}
	rv->peer_flags = rv->granted ? m.ext : 0;
	char b[32];
	n4_info(" => Peer: %s ", n4_addr_str(&rv->peer, b, sizeof(b)));
	return 0;
}

int n4_rv_take_answer(struct n4_rv *rv, const uint8_t (*msgs)[N4_MSG_SIZE], unsigned n)
{
	struct exch_seen seen = { false, false };
	struct n4_msg m;
	int err = 1;

	for (unsigned i = 0; i < n && err == 1; i++) {
		if (n4_wire_decode(msgs[i], N4_MSG_SIZE, 0, &m))
			return -EPROTO;
		/* No relay, room or IPv6 report belongs in a fast answer. */
		if (m.cmd == N4_CMD_RELAY || m.cmd == N4_CMD_RELAY_TOKEN || m.cmd == N4_CMD_ROOM ||
		    m.cmd == N4_CMD_V6 || m.cmd == N4_CMD_AGAIN || m.cmd == N4_CMD_PEERLOCAL)
			return -EPROTO;
		err = exchange_take(rv, &m, true, &seen);
		if (err < 0)
			return err;
		if (err == 0 && i != n - 1)
			return -EPROTO;
	}
	if (err != 0 || n4_peerinfo_decode(m.payload, &rv->peer))
		return -EPROTO;
	rv->peer_flags = m.ext;
	char b[32];
	n4_info(" => Peer: %s (fast flow)", n4_addr_str(&rv->peer, b, sizeof(b)));
	return 0;
}

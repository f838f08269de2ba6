/* server.c - the rendezvous server: one epoll loop, non-blocking sockets, TCP and
 * UDP on one port, many pairs at once.  Pairing decisions live in pairing.c; this
 * file moves bytes, enforces deadlines and times the PEERINFOs. */
#include "n4.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "addr.h"
#include "log.h"
#include "loop.h"
#include "pairing.h"
#include "wire.h"

/* PEERINFOs to one pair are timed to arrive together (see schedule_peerinfo);
 * never hold one back longer than this. */
#define MAX_SYNC_DELAY_MS 500

enum reject {
	REJ_BAD_HELLO,
	REJ_IDENT,
	REJ_HELLO_TIMEOUT,
	REJ_WAIT_TIMEOUT,
	REJ_EXCH_TIMEOUT,
	REJ_PROTOCOL,
	REJ_BAD_UDP,
	REJ_SPOOFED_UDP,
	REJ_UNKNOWN_UDP,
	REJ_FULL,
	REJ_PARTNER_GONE,
	REJ_COUNT
};

static const char *const reject_names[REJ_COUNT] = {
	"bad_hello", "ident", "hello_timeout", "wait_timeout", "exchange_timeout", "protocol",
	"bad_udp", "spoofed_udp", "unknown_udp", "full", "partner_gone",
};

struct conn {
	struct n4_pclient pc;
	struct n4_io io;
	struct n4_server *srv;
	struct sockaddr_in tcp_addr;
	uint8_t in[N4_MSG_SIZE];
	size_t in_len;
	uint8_t out[4 * N4_MSG_SIZE];
	size_t out_len;
	bool close_after_flush;
	uint64_t ready_ms, exch_ms;
	struct sockaddr_in peer_udp; /* what PEERINFO will carry */
	uint8_t peer_flags;
	struct n4_timer deadline, peerinfo_timer;
	bool closed;
	struct conn *prev, *next; /* all live connections, or the graveyard */
};

struct n4_server {
	struct n4_server_cfg cfg;
	char only_ident[N4_IDENT_MAX + 1];
	uint8_t only_ident_wire[N4_PAYLOAD_SIZE];
	n4_loop *loop;
	n4_pairing *pairing;
	struct n4_io tcp_io, udp_io;
	uint16_t port;
	unsigned nclients, max_clients;
	unsigned long pairs_done, accepted;
	unsigned long rejects[REJ_COUNT];
	struct conn *live;
	/* Closed connections are freed after the loop iteration, so that a chain of
	 * calls (send -> error -> close partner) never touches freed memory. */
	struct conn *graveyard;
};

void n4_server_cfg_init(struct n4_server_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->port = N4_DEFAULT_PORT;
	cfg->hello_timeout_ms = 5000;
	cfg->wait_timeout_ms = 60000;
	cfg->exchange_timeout_ms = 10000;
	cfg->max_per_ip = 64;
}

static const char *conn_str(const struct conn *c, char *buf, size_t len)
{
	return n4_addr_str(&c->tcp_addr, buf, len);
}

static void conn_close(struct conn *c, bool close_partner);

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
			char b[32];
			n4_info("%s: send failed: %s", conn_str(c, b, sizeof(b)), strerror(errno));
			conn_close(c, true);
			return;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	if (c->close_after_flush)
		conn_close(c, false);
}

static void conn_send(struct conn *c, const struct n4_msg *m)
{
	if (c->closed)
		return;
	if (c->out_len + N4_MSG_SIZE > sizeof(c->out)) {
		conn_close(c, true); /* cannot happen with our message flow */
		return;
	}
	n4_wire_encode(m, c->out + c->out_len);
	c->out_len += N4_MSG_SIZE;
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
	n4_pairing_remove(s->pairing, &c->pc);
	n4_loop_del(s->loop, &c->io);
	close(c->io.fd);
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
		char b[32];
		s->rejects[REJ_PARTNER_GONE]++;
		n4_info("%s: partner left before the exchange completed", conn_str(partner, b, sizeof(b)));
		conn_close(partner, false);
	}
}

static void deadline_fired(n4_loop *loop, struct n4_timer *t)
{
	struct conn *c = t->arg;
	char b[32];
	(void)loop;

	switch (c->pc.state) {
	case N4_P_NEW:
		c->srv->rejects[REJ_HELLO_TIMEOUT]++;
		n4_info("%s: no HELLO within %u ms (%zu bytes received), dropped",
			conn_str(c, b, sizeof(b)), c->srv->cfg.hello_timeout_ms, c->in_len);
		break;
	case N4_P_WAITING:
		c->srv->rejects[REJ_WAIT_TIMEOUT]++;
		n4_info("%s: no partner within %u ms, dropped", conn_str(c, b, sizeof(b)),
			c->srv->cfg.wait_timeout_ms);
		break;
	default:
		c->srv->rejects[REJ_EXCH_TIMEOUT]++;
		n4_info("%s: no EXCHANGE from the pair within %u ms, dropped",
			conn_str(c, b, sizeof(b)), c->srv->cfg.exchange_timeout_ms);
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

	n4_msg_init(&m, N4_CMD_READY, c->pc.ext, (c->pc.ext & N4_EXT_TOKEN) ? c->pc.token : NULL);
	c->ready_ms = n4_now_ms();
	arm_deadline(c, c->srv->cfg.exchange_timeout_ms);
	conn_send(c, &m);
}

static void handle_hello(struct conn *c)
{
	struct n4_server *s = c->srv;
	struct n4_msg m;
	char ident[N4_PAYLOAD_SIZE + 1], b[32];

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
	n4_info(" => Hello from %s ident '%s'%s", conn_str(c, b, sizeof(b)), ident,
		c->pc.ext ? " (n4 extensions)" : "");
	struct n4_pclient *w = n4_pairing_hello(s->pairing, &c->pc);
	if (!w) {
		arm_deadline(c, s->cfg.wait_timeout_ms);
		return;
	}
	struct conn *partner = w->owner;
	char b2[32];
	n4_info(" <= Ready to %s and %s", conn_str(partner, b2, sizeof(b2)), b);
	send_ready(partner);
	send_ready(c);
}

static void conn_readable(struct conn *c)
{
	for (;;) {
		uint8_t extra[64];
		uint8_t *dst = c->pc.state == N4_P_NEW ? c->in + c->in_len : extra;
		size_t want = c->pc.state == N4_P_NEW ? N4_MSG_SIZE - c->in_len : sizeof(extra);
		ssize_t n = recv(c->io.fd, dst, want, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		char b[32];
		if (n <= 0) {
			if (c->pc.state != N4_P_DONE)
				n4_info("%s: connection closed by client", conn_str(c, b, sizeof(b)));
			conn_close(c, true);
			return;
		}
		if (c->pc.state != N4_P_NEW) {
			/* Nothing may follow a HELLO: the protocol has no other
			 * client-to-server TCP message. */
			c->srv->rejects[REJ_PROTOCOL]++;
			n4_info("%s: unexpected bytes after HELLO, closed", conn_str(c, b, sizeof(b)));
			conn_close(c, true);
			return;
		}
		c->in_len += (size_t)n;
		if (c->in_len == N4_MSG_SIZE) {
			handle_hello(c);
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

static void accept_ready(n4_loop *loop, struct n4_io *io, uint32_t events)
{
	struct n4_server *s = io->arg;
	(void)events;

	for (;;) {
		struct sockaddr_in a;
		socklen_t alen = sizeof(a);
		int fd = accept4(io->fd, (struct sockaddr *)&a, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				n4_warn("accept: %s", strerror(errno));
			return;
		}
		char b[32];
		if (s->nclients >= s->max_clients) {
			s->rejects[REJ_FULL]++;
			n4_warn("%s: server full (%u clients), refused", n4_addr_str(&a, b, sizeof(b)),
				s->nclients);
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = s;
		c->tcp_addr = a;
		c->pc.ip = a.sin_addr.s_addr;
		c->pc.owner = c;
		c->io = (struct n4_io){ .fd = fd, .cb = conn_event, .arg = c };
		if (n4_loop_add(loop, &c->io, EPOLLIN | EPOLLRDHUP)) {
			close(fd);
			free(c);
			continue;
		}
		s->nclients++;
		s->accepted++;
		c->next = s->live;
		if (s->live)
			s->live->prev = c;
		s->live = c;
		n4_debug("%s: connected", n4_addr_str(&a, b, sizeof(b)));
		arm_deadline(c, s->cfg.hello_timeout_ms);
	}
}

static void peerinfo_fired(n4_loop *loop, struct n4_timer *t)
{
	struct conn *c = t->arg;
	struct n4_msg m;
	char b[32], b2[32];
	(void)loop;

	n4_msg_init(&m, N4_CMD_PEERINFO, c->pc.ext ? c->peer_flags : 0, NULL);
	n4_peerinfo_encode(&c->peer_udp, m.payload);
	n4_info(" <= Peerinfo %s to %s", n4_addr_str(&c->peer_udp, b2, sizeof(b2)),
		conn_str(c, b, sizeof(b)));
	c->pc.state = N4_P_DONE;
	n4_timer_cancel(c->srv->loop, &c->deadline);
	c->close_after_flush = true;
	conn_send(c, &m);
}

/* Both clients start punching the moment their PEERINFO arrives.  Sending both
 * at once would let the nearer client's PUNCHes reach the farther NAT before
 * that side has opened its mappings (the conntrack clash), so each PEERINFO is
 * held back by half the difference of the measured READY->EXCHANGE round trips. */
static void schedule_peerinfo(struct n4_server *s, struct conn *a, struct conn *b)
{
	uint64_t rtt_a = a->exch_ms - a->ready_ms, rtt_b = b->exch_ms - b->ready_ms;
	uint64_t now = n4_now_ms();
	struct conn *pair[2] = { a, b };

	a->peer_udp = b->pc.udp;
	b->peer_udp = a->pc.udp;
	a->peer_flags = b->pc.ext ? N4_PEER_N4 : 0;
	b->peer_flags = a->pc.ext ? N4_PEER_N4 : 0;
	for (int i = 0; i < 2; i++) {
		uint64_t mine = i == 0 ? rtt_a : rtt_b, other = i == 0 ? rtt_b : rtt_a;
		uint64_t delay = mine < other ? (other - mine) / 2 : 0;
		if (delay > MAX_SYNC_DELAY_MS)
			delay = MAX_SYNC_DELAY_MS;
		if (n4_timer_arm(s->loop, &pair[i]->peerinfo_timer, now + delay, peerinfo_fired,
				 pair[i]))
			peerinfo_fired(s->loop, &pair[i]->peerinfo_timer);
	}
	s->pairs_done++;
}

static void udp_ready(n4_loop *loop, struct n4_io *io, uint32_t events)
{
	struct n4_server *s = io->arg;
	(void)loop;
	(void)events;

	for (int budget = 0; budget < 1024; budget++) {
		uint8_t buf[64];
		struct sockaddr_in src;
		socklen_t slen = sizeof(src);
		ssize_t n = recvfrom(io->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&src,
				     &slen);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED)
				continue;
			return;
		}
		struct n4_msg m;
		char b[32];
		if (src.sin_family != AF_INET ||
		    n4_wire_decode(buf, (size_t)n, N4_CMD_EXCHANGE, &m)) {
			s->rejects[REJ_BAD_UDP]++;
			n4_debug("%s: malformed UDP datagram (%zd bytes), ignored",
				 n4_addr_str(&src, b, sizeof(b)), n);
			continue;
		}
		struct n4_pclient *pc = NULL;
		int err = n4_pairing_exchange(s->pairing, &m, &src, &pc);
		if (err == -EALREADY)
			continue;
		if (err) {
			s->rejects[err == -EPERM ? REJ_SPOOFED_UDP : REJ_UNKNOWN_UDP]++;
			N4_LOG_AT(err == -EPERM ? N4_LOG_INFO : N4_LOG_DEBUG, "%s: EXCHANGE %s, ignored",
				  n4_addr_str(&src, b, sizeof(b)),
				err == -EPERM ? "from an IP that is not its TCP client's" :
						"for no waiting pair");
			continue;
		}
		struct conn *c = pc->owner;
		c->exch_ms = n4_now_ms();
		char b2[32];
		n4_info(" => Exchange from %s (client %s)", n4_addr_str(&src, b, sizeof(b)),
			conn_str(c, b2, sizeof(b2)));
		if (pc->partner && pc->partner->observed)
			schedule_peerinfo(s, c, pc->partner->owner);
	}
}

static int open_listeners(n4_server *s, struct sockaddr_in *addr)
{
	int one = 1;
	int tfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (tfd < 0)
		return -errno;
	setsockopt(tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(tfd, (struct sockaddr *)addr, sizeof(*addr)) || listen(tfd, 4096)) {
		int err = -errno;
		close(tfd);
		return err;
	}
	struct sockaddr_in bound;
	socklen_t blen = sizeof(bound);
	if (getsockname(tfd, (struct sockaddr *)&bound, &blen)) {
		int err = -errno;
		close(tfd);
		return err;
	}
	addr->sin_port = bound.sin_port; /* UDP on the same port as TCP, also for port 0 */
	int ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ufd < 0 || bind(ufd, (struct sockaddr *)addr, sizeof(*addr))) {
		int err = -errno;
		if (ufd >= 0)
			close(ufd);
		close(tfd);
		return err;
	}
	int rcvbuf = 4 << 20; /* bursts of EXCHANGEs from many pairs at once */
	setsockopt(ufd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	s->tcp_io = (struct n4_io){ .fd = tfd, .cb = accept_ready, .arg = s };
	s->udp_io = (struct n4_io){ .fd = ufd, .cb = udp_ready, .arg = s };
	s->port = ntohs(bound.sin_port);
	return 0;
}

/* Without a configured limit, hold as many clients as descriptors allow: raise
 * the soft limit to the hard one and keep some headroom for listeners and logs. */
static unsigned derive_max_clients(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 1000;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			n4_debug("descriptor limit raised to %llu", (unsigned long long)rl.rlim_cur);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	rlim_t n = rl.rlim_cur > 1000000 ? 1000000 : rl.rlim_cur;
	return n > 64 ? (unsigned)(n - 32) : 32;
}

static void bury(n4_server *s)
{
	while (s->graveyard) {
		struct conn *c = s->graveyard;
		s->graveyard = c->next;
		free(c);
	}
}

n4_server *n4_server_new(const struct n4_server_cfg *cfg)
{
	n4_server *s = calloc(1, sizeof(*s));
	struct sockaddr_in addr;
	int err;

	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->tcp_io.fd = s->udp_io.fd = -1;
	if (cfg->only_ident) {
		if (n4_ident_encode(cfg->only_ident, s->only_ident_wire)) {
			err = -EINVAL;
			goto out_free;
		}
		snprintf(s->only_ident, sizeof(s->only_ident), "%s", cfg->only_ident);
	}
	s->cfg.only_ident = NULL; /* not ours to keep */
	s->cfg.bind_host = NULL;
	err = n4_resolve_v4(cfg->bind_host ? cfg->bind_host : "0.0.0.0", cfg->port, &addr);
	if (err)
		goto out_free;
	s->max_clients = cfg->max_clients ? cfg->max_clients : derive_max_clients();
	s->loop = n4_loop_new();
	s->pairing = n4_pairing_new(s->max_clients);
	if (!s->loop || !s->pairing) {
		err = -ENOMEM;
		goto out_free;
	}
	err = open_listeners(s, &addr);
	if (err)
		goto out_free;
	if ((err = n4_loop_add(s->loop, &s->tcp_io, EPOLLIN)) ||
	    (err = n4_loop_add(s->loop, &s->udp_io, EPOLLIN)))
		goto out_free;
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

int n4_server_run(n4_server *s, volatile sig_atomic_t *stop)
{
	n4_info("serving on TCP and UDP port %u, up to %u clients%s%s", s->port, s->max_clients,
		s->only_ident[0] ? ", identifier " : "", s->only_ident);
	while (!stop || !*stop) {
		int n = n4_loop_run_once(s->loop, 200);
		bury(s);
		if (s->cfg.status_flag && *s->cfg.status_flag) {
			char line[512];
			*s->cfg.status_flag = 0;
			n4_server_status(s, line, sizeof(line));
			n4_info("status: %s", line);
		}
		if (n < 0 && n != -EINTR)
			return n;
	}
	return 0;
}

void n4_server_status(const n4_server *s, char *buf, size_t len)
{
	int n = snprintf(buf, len, "clients=%u waiting=%zu accepted=%lu pairs=%lu rejects:",
			 s->nclients, n4_pairing_waiting(s->pairing), s->accepted, s->pairs_done);
	for (int i = 0; i < REJ_COUNT && n > 0 && (size_t)n < len; i++)
		n += snprintf(buf + n, len - (size_t)n, " %s=%lu", reject_names[i], s->rejects[i]);
}

void n4_server_free(n4_server *s)
{
	if (!s)
		return;
	while (s->live)
		conn_close(s->live, false);
	bury(s);
	if (s->tcp_io.fd >= 0)
		close(s->tcp_io.fd);
	if (s->udp_io.fd >= 0)
		close(s->udp_io.fd);
	n4_loop_free(s->loop);
	n4_pairing_free(s->pairing);
	free(s);
}

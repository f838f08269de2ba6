/* server.c - the rendezvous server's core: one epoll loop, non-blocking sockets, TCP
 * and UDP on one port (IPv6 and IPv4), many pairs at once.  This file owns the loop,
 * the listeners, each connection's bytes, deadline and close, the server's lifecycle
 * and its status.  The rest, one job per file (server_int.h): pairing on the wire in
 * server_pair.c (tables in pairing.c), NAT discovery wiring in server_discover.c
 * (discover.c, predict.c), admission and limits in server_limits.c (ipcap.c), the
 * relay decision in server_relay.c (relay.c), test entry points in server_test.c.
 *
 * Every connection is in exactly one state (pairing.h) with exactly one deadline
 * armed, so nothing a client does or fails to do can hold resources for longer
 * than the sum of the configured timeouts. */
#include "n4.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"
#include "metrics.h"
#include "server_int.h"

const char *const n4_srv_reject_names[REJ_COUNT] = {
	"bad_hello", "ident",	"hello_timeout", "wait_timeout", "exchange_timeout", "send_timeout",
	"protocol",  "bad_udp", "spoofed_udp",	 "unknown_udp",	 "ipv6_udp",	     "full",
	"per_ip",    "rate",	"partner_gone",	 "shutdown",	 "key_mismatch",
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
	 * while 1000 pairs stay within a 1 Gbit/s uplink.  doc/RELAY.md. */
	cfg->relay_rate_kbit = 1000;
	cfg->relay_burst_kb = 64;
	cfg->relay_idle_s = 60;
}

const char *n4_srv_conn_str(const struct conn *c, char *buf, size_t len)
{
	return n4_sa_str(&c->tcp_addr, buf, len);
}

/* Refused and broken connections are reset rather than closed: no TIME_WAIT
 * left behind for each of a flood's connections. */
void n4_srv_close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

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
			n4_info("%s: send failed: %s", n4_srv_conn_str(c, b, sizeof(b)),
				n < 0 ? strerror(errno) : "nothing sent");
			n4_srv_conn_close(c, true);
			return;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len = (uint8_t)(c->out_len - n);
	}
	if (c->close_after_flush) {
		n4_srv_conn_close(c, false);
	} else if (c->shut_after_flush) {
		c->shut_after_flush = false;
		if (shutdown(c->io.fd, SHUT_WR))
			n4_srv_conn_close(c, false);
	}
}

/* Append without sending yet: the next n4_srv_conn_send takes it along, in one
 * segment with what follows (n4_srv_send_peerinfo). */
void n4_srv_conn_queue(struct conn *c, const struct n4_msg *m)
{
	if (c->closed)
		return;
	if ((size_t)c->out_len + N4_MSG_SIZE > sizeof(c->out)) {
		n4_srv_conn_close(c, true); /* cannot happen with our message flow */
		return;
	}
	n4_wire_encode(m, c->out + c->out_len);
	c->out_len = (uint8_t)(c->out_len + N4_MSG_SIZE);
}

void n4_srv_conn_flush(struct conn *c)
{
	if (!c->closed && c->out_len > 0)
		conn_flush(c);
}

void n4_srv_conn_send(struct conn *c, const struct n4_msg *m)
{
	n4_srv_conn_queue(c, m);
	n4_srv_conn_flush(c);
}

void n4_srv_conn_close(struct conn *c, bool close_partner)
{
	struct n4_server *s = c->srv;
	struct conn *partner = c->pc.partner ? c->pc.partner->owner : NULL;

	if (c->closed)
		return;
	c->closed = true;
	if (c->staying) {
		if (c->stay_prev)
			c->stay_prev->stay_next = c->stay_next;
		else
			s->staying = c->stay_next;
		if (c->stay_next)
			c->stay_next->stay_prev = c->stay_prev;
		c->staying = false;
	}
	n4_timer_cancel(s->loop, &c->deadline);
	n4_timer_cancel(s->loop, &c->peerinfo_timer);
	n4_srv_disc_free(s, c);
	free(c->lan);
	c->lan = NULL;
	struct n4_pclient *released = n4_pairing_remove(s->pairing, &c->pc);
	n4_loop_del(s->loop, &c->io);
	if (c->out_len > 0 || c->pc.state != N4_P_DONE)
		n4_srv_close_reset(c->io.fd); /* nothing more it can use: do not linger */
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
			n4_srv_conn_str(partner, b, sizeof(b)));
		if (partner->pc.ext & N4_EXT_KEY)
			n4_srv_send_again(partner); /* it understands AGAIN */
		else
			n4_srv_conn_close(partner, false);
	}
	if (released)
		n4_srv_send_ready(released->owner);
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
		 * partner is told AGAIN (n4_srv_conn_close) and the short id is
		 * paired on long ids alone for a while. */
		if (c->pc.state == N4_P_PAIRED)
			n4_pairing_contest(s->pairing, c->pc.ident);
		s->rejects[REJ_HELLO_TIMEOUT]++;
		n4_info("%s: no keyed id within %u ms, dropped", n4_srv_conn_str(c, b, sizeof(b)),
			n4_srv_keyid_wait_ms(s));
		n4_srv_conn_close(c, true);
		return;
	}
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
		n4_info("%s: no EXCHANGE from the pair within %u ms, dropped",
			n4_srv_conn_str(c, b, sizeof(b)), s->cfg.exchange_timeout_ms);
		break;
	default:
		if (c->staying) {
			n4_info("%s: kept connection closed after %u s",
				n4_srv_conn_str(c, b, sizeof(b)), STAY_MAX_MS / 1000);
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
	n4_srv_conn_close(c, true);
}

void n4_srv_arm_deadline(struct conn *c, unsigned ms)
{
	if (c->closed)
		return;
	if (n4_timer_arm(c->srv->loop, &c->deadline, n4_now_ms() + ms, deadline_fired, c))
		n4_srv_conn_close(c, true);
}

static void conn_readable(struct conn *c)
{
	for (;;) {
		uint8_t extra[64];
		/* After HELLO: a keyed client's long id (three KEYID); after
		 * READY: its nonce (three more KEYID), with
		 * N4_EXT_LOCAL its LOCAL messages, with N4_EXT_RELAY its RELAY. */
		bool want_keyid =
			(c->pc.ext & N4_EXT_KEY) &&
			((c->pc.state == N4_P_WAITING && c->keyid_parts < N4_LONGID_PARTS) ||
			 (c->pc.state == N4_P_PAIRED && c->keyid_parts < 2 * N4_LONGID_PARTS));
		bool want_local = c->pc.state == N4_P_PAIRED && c->lan && !c->lan->done;
		bool want_ask = n4_srv_relay_wants_ask(c);
		bool want_hello = c->pc.state == N4_P_NEW || want_keyid || want_local || want_ask;
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
					n4_srv_conn_str(c, b, sizeof(b)), n < 0 ? " (reset)" : "");
			}
			n4_srv_conn_close(c, true);
			return;
		}
		if (!want_hello) {
			/* Nothing else may follow a HELLO: the protocol has no other
			 * client-to-server TCP message. */
			if (c->pc.state == N4_P_DONE)
				return; /* closing anyway once PEERINFO is out */
			c->srv->rejects[REJ_PROTOCOL]++;
			n4_info("%s: unexpected bytes after HELLO, closed",
				n4_srv_conn_str(c, b, sizeof(b)));
			n4_srv_conn_close(c, true);
			return;
		}
		c->in_len = (uint8_t)(c->in_len + n);
		if (c->in_len == N4_MSG_SIZE) {
			/* Several may follow READY: told apart by their command. */
			if (want_ask &&
			    (c->in[0] == N4_CMD_RELAY || (!want_local && !want_keyid))) {
				c->in_len = 0;
				n4_srv_handle_relay_ask(c); /* refuses anything but RELAY */
			} else if (want_local && (c->in[0] == N4_CMD_LOCAL || !want_keyid)) {
				c->in_len = 0;
				n4_srv_handle_local(c);
			} else if (c->pc.ext & N4_EXT_KEY) {
				n4_srv_handle_keyid(c);
			} else {
				n4_srv_handle_hello(c);
			}
			return; /* c may be gone; further bytes are seen on the next event */
		}
	}
}

void n4_srv_conn_event(n4_loop *loop, struct n4_io *io, uint32_t events)
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
	/* Kernel receive times for the discovery probes (n4_srv_udp_ready); without
	 * them the loop's own clock is used. */
	int on = 1;
	if (setsockopt(ufd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) ||
	    (pfd >= 0 && setsockopt(pfd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on))))
		n4_debug("SO_TIMESTAMPNS: %s", strerror(errno));
	s->probe_io = (struct n4_io){ .fd = pfd < 0 ? -1 : pfd, .cb = n4_srv_udp_ready, .arg = s };
	s->tcp_io = (struct n4_io){ .fd = tfd, .cb = n4_srv_accept_ready, .arg = s };
	s->udp_io = (struct n4_io){ .fd = ufd, .cb = n4_srv_udp_ready, .arg = s };
	s->port = ntohs(addr->sa.sa_family == AF_INET ? bound.v4.sin_port : bound.v6.sin6_port);
	s->family = dual ? 0 : addr->sa.sa_family;
	return 0;
}

void n4_srv_bury(n4_server *s)
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
	n4_srv_raise_fd_limit(s, cfg->max_clients);
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
	if (!cfg->no_relay && (err = n4_srv_relay_start(s, &addr)) != 0)
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

void n4_srv_after_iteration(n4_server *s)
{
	n4_srv_bury(s);
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
void n4_srv_begin_drain(n4_server *s)
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
		if (c->pc.state == N4_P_NEW || c->pc.state == N4_P_WAITING || c->staying) {
			s->rejects[REJ_SHUTDOWN]++;
			n4_srv_conn_close(c, false);
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
		n4_srv_after_iteration(s);
		if (n < 0 && n != -EINTR)
			return n;
	}
	n4_srv_begin_drain(s);
	uint64_t give_up = n4_now_ms() + s->cfg.drain_timeout_ms + MAX_SYNC_DELAY_MS + 1000;
	while (s->nclients > 0 && n4_now_ms() < give_up) {
		int n = n4_loop_run_once(s->loop, 100);
		n4_srv_after_iteration(s);
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
		n += snprintf(buf + n, len - (size_t)n, " %s=%lu", n4_srv_reject_names[i],
			      s->rejects[i]);
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
	st->reject_names = n4_srv_reject_names;
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
		n4_srv_conn_close(s->live, false);
	n4_srv_bury(s);
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

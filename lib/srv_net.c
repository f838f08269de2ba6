/* srv_net.c - the server's transport layer: the listeners (TCP and UDP on one port,
 * IPv6 and IPv4, and the discovery port + 1), accept and admission, each
 * connection's bytes in and out, its close, and the UDP read loop.  It knows no
 * command: what the bytes mean, when a connection is done and what to do about a
 * partner is the protocol's (srv_proto.c, through the n4_srv_proto_* hooks).
 * May call: srv_proto.c's hooks, srv_admit.c, srv_sock.c, ipcap.c, loop.c, wire.c
 * (message encoding), log.c. */
#include "n4.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server_int.h"
#include "srv_admit.h"
#include "srv_sock.h"

const char *n4_srv_conn_str(const struct conn *c, char *buf, size_t len)
{
	return n4_sa_str(&c->tcp_addr, buf, len);
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

bool n4_srv_conn_has_room(const struct conn *c)
{
	return !c->closed && (size_t)c->out_len + N4_MSG_SIZE <= sizeof(c->out);
}

unsigned n4_srv_conn_room(const struct conn *c)
{
	return c->closed ? 0 : (unsigned)((sizeof(c->out) - c->out_len) / N4_MSG_SIZE);
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
	struct n4_srv_detached d;

	if (c->closed)
		return;
	c->closed = true;
	bool done = n4_srv_proto_detach(c, &d);
	n4_loop_del(s->loop, &c->io);
	if (c->out_len > 0 || !done)
		n4_sock_close_reset(c->io.fd); /* nothing more it can use: do not linger */
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
	n4_srv_proto_closed(c, &d, close_partner);
}

void n4_srv_bury(n4_server *s)
{
	while (s->graveyard) {
		struct conn *c = s->graveyard;
		s->graveyard = c->next;
		free(c->fast);
		free(c);
	}
}

static void conn_readable(struct conn *c)
{
	for (;;) {
		uint8_t extra[64];
		bool want = n4_srv_proto_wants(c);
		uint8_t *dst = want ? c->in + c->in_len : extra;
		size_t len = want ? (size_t)(N4_MSG_SIZE - c->in_len) : sizeof(extra);
		ssize_t n = recv(c->io.fd, dst, len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			n4_srv_proto_eof(c, n < 0);
			return;
		}
		if (!want) {
			n4_srv_proto_stray(c);
			return;
		}
		c->in_len = (uint8_t)(c->in_len + n);
		if (c->in_len == N4_MSG_SIZE) {
			n4_srv_proto_message(c);
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

static enum reject refusal(enum n4_admit v)
{
	switch (v) {
	case N4_ADMIT_SHUTDOWN:
		return REJ_SHUTDOWN;
	case N4_ADMIT_PER_IP:
		return REJ_PER_IP;
	case N4_ADMIT_RATE:
		return REJ_RATE;
	default:
		return REJ_FULL;
	}
}

/* Applies srv_admit.c's verdict: a refused connection is reset at once. */
static int admit(struct n4_server *s, int fd, const union n4_sa *a, struct n4_ipkey *src)
{
	struct n4_admit_in in = { .draining = s->draining,
				  .nclients = s->nclients,
				  .max_clients = s->max_clients,
				  .now_ms = n4_now_ms() };
	char b[64];
	int err;

	n4_ipkey_from_sa(a, &in.src);
	*src = in.src;
	enum n4_admit v = n4_srv_admit(s->ipcap, &in, &err);
	if (v == N4_ADMIT_OK)
		return 0;
	enum reject why = refusal(v);
	s->rejects[why]++;
	if (v == N4_ADMIT_FULL)
		n4_warn("%s: server full (%u clients), refused", n4_sa_str(a, b, sizeof(b)),
			s->nclients);
	else if (v != N4_ADMIT_SHUTDOWN)
		n4_debug("%s: refused (%s)", n4_sa_str(a, b, sizeof(b)), n4_srv_reject_names[why]);
	n4_sock_close_reset(fd);
	return err;
}

int n4_srv_conn_admit(struct n4_server *s, int fd, const union n4_sa *a)
{
	struct n4_ipkey src;
	char b[64];
	int err = admit(s, fd, a, &src);

	if (err)
		return err;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		n4_ipcap_release(s->ipcap, &src, n4_now_ms());
		s->rejects[REJ_FULL]++;
		n4_sock_close_reset(fd);
		return -ENOMEM;
	}
	c->srv = s;
	c->tcp_addr = *a;
	c->src = src;
	c->io = (struct n4_io){ .fd = fd, .cb = conn_event, .arg = c };
	/* READY and PEERINFO are tiny and latency is the point: never let Nagle
	 * hold a PEERINFO behind an unacknowledged READY. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((err = n4_loop_add(s->loop, &c->io, EPOLLIN | EPOLLRDHUP)) != 0) {
		n4_ipcap_release(s->ipcap, &src, n4_now_ms());
		n4_sock_close_reset(fd);
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
	n4_srv_proto_opened(c);
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
		n4_sock_close_reset(fd);
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
		n4_srv_conn_admit(s, fd, &a);
	}
}

void n4_srv_net_datagram(n4_server *s, const uint8_t *buf, size_t len, const union n4_sa *from,
			 bool second, uint64_t rx_ms)
{
	s->rx_ms = rx_ms;
	n4_srv_proto_datagram(s, buf, len, from, second);
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
		n4_srv_net_datagram(s, buf, (size_t)n, &from, io == &s->probe_io,
				    n4_sock_rx_time_ms(&mh));
	}
}

int n4_srv_net_resolve(const struct n4_server_cfg *cfg, union n4_sa *addr, bool *dual)
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

static void set_port(union n4_sa *a, uint16_t port_be)
{
	if (a->sa.sa_family == AF_INET)
		a->v4.sin_port = port_be;
	else
		a->v6.sin6_port = port_be;
}

static uint16_t get_port(const union n4_sa *a)
{
	return a->sa.sa_family == AF_INET ? a->v4.sin_port : a->v6.sin6_port;
}

/* The discovery port (port + 1); serving goes on without it: -1. */
static int open_probe_port(const union n4_sa *addr, bool dual)
{
	union n4_sa paddr = *addr;
	uint16_t pport = (uint16_t)(ntohs(get_port(addr)) + N4_PROBE_PORT_DELTA);

	set_port(&paddr, htons(pport));
	int pfd = pport > N4_PROBE_PORT_DELTA ? n4_sock_open(&paddr, SOCK_DGRAM, dual) : -EINVAL;
	if (pfd < 0)
		n4_warn("discovery port %u unavailable (%s): clients get the original's guess",
			pport, strerror(-pfd));
	return pfd < 0 ? -1 : pfd;
}

int n4_srv_net_listen(n4_server *s, union n4_sa *addr, bool dual)
{
	int tfd = n4_sock_open(addr, SOCK_STREAM, dual);

	if (tfd == -EAFNOSUPPORT && dual) {
		/* A host without IPv6: serve IPv4 alone. */
		uint16_t port = addr->v6.sin6_port;
		memset(addr, 0, sizeof(*addr));
		addr->v4.sin_family = AF_INET;
		addr->v4.sin_port = port;
		dual = false;
		tfd = n4_sock_open(addr, SOCK_STREAM, false);
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
	set_port(addr, get_port(&bound));
	int ufd = n4_sock_open(addr, SOCK_DGRAM, dual);
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
	int pfd = open_probe_port(addr, dual);
	/* Kernel receive times for the discovery probes (udp_ready); without them
	 * the loop's own clock is used. */
	int on = 1;
	if (setsockopt(ufd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) ||
	    (pfd >= 0 && setsockopt(pfd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on))))
		n4_debug("SO_TIMESTAMPNS: %s", strerror(errno));
	s->probe_io = (struct n4_io){ .fd = pfd, .cb = udp_ready, .arg = s };
	s->tcp_io = (struct n4_io){ .fd = tfd, .cb = accept_ready, .arg = s };
	s->udp_io = (struct n4_io){ .fd = ufd, .cb = udp_ready, .arg = s };
	s->port = ntohs(get_port(&bound));
	s->family = dual ? 0 : addr->sa.sa_family;
	int err;
	if ((err = n4_loop_add(s->loop, &s->tcp_io, EPOLLIN)) ||
	    (err = n4_loop_add(s->loop, &s->udp_io, EPOLLIN)) ||
	    (s->probe_io.fd >= 0 && (err = n4_loop_add(s->loop, &s->probe_io, EPOLLIN))))
		return err;
	return 0;
}

void n4_srv_net_stop_accepting(n4_server *s)
{
	if (s->tcp_io.fd >= 0) {
		n4_loop_del(s->loop, &s->tcp_io);
		close(s->tcp_io.fd);
		s->tcp_io.fd = -1;
	}
}

void n4_srv_net_raise_fd_limit(n4_server *s, unsigned want_clients)
{
	unsigned long long want =
		want_clients ? (unsigned long long)want_clients + FD_HEADROOM : FD_TARGET;

	s->fd_limit = n4_sock_raise_fd_limit(want, &s->fd_limit_was);
}

/* designate.c - turn a program's UDP socket into one punched through to the peer.
 *
 * The designating call (connect/sendto/... to the placeholder, or bind to N4_LISTEN)
 * starts libn4's rendezvous and sweep in a worker thread (keeper.c) and waits for it
 * (a bind does not wait: listening never blocks); a socket sending to a placeholder
 * whose path exists joins that path instead.  At the WIN the worker swaps the
 * winning port into the program's socket:
 *   - unbound socket: every pool socket is closed first (SO_REUSEPORT siblings would
 *     share its datagrams), then the program's own socket is bound to the winning
 *     port; the NAT mapping belongs to the 5-tuple, so it carries over;
 *   - socket the program bound itself: a bound UDP socket cannot be rebound, so the
 *     winning socket is dup2()ed over it, carrying what dup2 loses (file status flags,
 *     FD_CLOEXEC, the options the program set, its epoll registrations).
 * A recovery or a relay-to-direct upgrade later swaps a new socket in the same way,
 * make-before-break: the old one carries the program's datagrams until then.
 * No protocol logic here: libn4 does the exchange, and its path rules (n4_path)
 * decide when to recover or upgrade; we only call them. */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "rand.h"

/* Late PUNCHes: the peer confirms for up to its confirm_ms after its own WIN, which
 * is within a round trip of ours; filter confirm_ms plus this margin, and until its
 * first real datagram has been seen. */
#define SHIM_FILTER_MIN_MS 1000u

/* After our confirmation ends the peer may still be confirming (it stops when our
 * acknowledging PUNCH reaches it, up to a one-way delay later) and then needs a few
 * microseconds to move its port into its program's socket; a datagram sent in that
 * window is swallowed or refused there.  The designating call returns this much
 * later, so the datagram that triggered the rendezvous arrives. */
#define SHIM_SETTLE_MS 150

uint64_t shim_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool shim_to_v4(const struct sockaddr *addr, socklen_t len, struct sockaddr_in *v4)
{
	return addr && n4_addr_to_v4(addr, len, v4);
}

bool shim_is_placeholder(const struct shim_config *cfg, const struct sockaddr *addr, socklen_t len,
			 struct sockaddr_in *v4)
{
	if (!cfg->active || !shim_to_v4(addr, len, v4))
		return false;
	if (cfg->have_peer)
		return v4->sin_addr.s_addr == cfg->peer_ph.sin_addr.s_addr &&
		       v4->sin_port == cfg->peer_ph.sin_port;
	cfg = shim_config_resolved();
	if (!cfg->have_server_ip) {
		shim_config_report(cfg); /* unresolvable: nothing can be told apart */
		return false;
	}
	return v4->sin_addr.s_addr == cfg->server_ip.s_addr &&
	       v4->sin_port != htons(cfg->server_port) && v4->sin_port != htons(SHIM_DNS_PORT);
}

bool shim_names_peer(const struct shim_sock *s, const struct shim_config *cfg,
		     const struct sockaddr *addr, socklen_t len, struct sockaddr_in *v4)
{
	if (shim_is_placeholder(cfg, addr, len, v4))
		return true;
	if (!shim_to_v4(addr, len, v4))
		return false;
	if (__atomic_load_n(&s->alias_ph, __ATOMIC_ACQUIRE) &&
	    v4->sin_addr.s_addr == __atomic_load_n(&s->ph.sin_addr.s_addr, __ATOMIC_RELAXED) &&
	    v4->sin_port == __atomic_load_n(&s->ph.sin_port, __ATOMIC_RELAXED))
		return true;
	/* A known peer's other names: its LAN addresses, its placeholder's IP. */
	return shim_peer_names(addr, len);
}

/* `v4` in the family of the program's socket (v4-mapped for AF_INET6). */
socklen_t shim_to_family(int family, const struct sockaddr_in *v4, struct sockaddr_storage *out)
{
	return n4_addr_from_v4(family, v4, out);
}

socklen_t shim_view_dest(const struct shim_view *v, struct sockaddr_storage *out)
{
	if (v->path6) {
		memset(out, 0, sizeof(*out));
		memcpy(out, &v->peer6, sizeof(v->peer6));
		return sizeof(v->peer6);
	}
	return shim_to_family(v->family, &v->peer, out);
}

static bool is_native6(const struct sockaddr_storage *a, socklen_t len)
{
	return a->ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6) &&
	       !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

void shim_view_report(const struct shim_view *v, const struct sockaddr_storage *got, socklen_t glen,
		      struct sockaddr *addr, socklen_t *len, socklen_t cap)
{
	struct sockaddr_storage out;
	socklen_t n = glen < sizeof(out) ? glen : sizeof(out);
	struct sockaddr_in from;

	memset(&out, 0, sizeof(out));
	if (!addr || !len)
		return;
	if (is_native6(got, glen)) {
		const struct sockaddr_in6 *g6 = (const struct sockaddr_in6 *)got;
		if (v->path6 && v->have_ph && g6->sin6_port == v->peer6.sin6_port &&
		    IN6_ARE_ADDR_EQUAL(&g6->sin6_addr, &v->peer6.sin6_addr)) {
			n = shim_to_family(v->family, &v->ph, &out);
		} else if (v->family == AF_INET6) {
			memcpy(&out, got, n);
		} else {
			/* Somebody else over IPv6 (nobody knows this socket but the
			 * peer): an IPv4 program gets no address it cannot hold. */
			struct sockaddr_in *o = (struct sockaddr_in *)&out;
			o->sin_family = AF_INET;
			o->sin_port = g6->sin6_port;
			n = sizeof(*o);
		}
	} else {
		memcpy(&out, got, n);
		if (v->have_ph && shim_to_v4((const struct sockaddr *)got, glen, &from) &&
		    !v->path6 && from.sin_addr.s_addr == v->peer.sin_addr.s_addr &&
		    from.sin_port == v->peer.sin_port)
			n = shim_to_family(v->family, &v->ph, &out);
		else if (v->family == AF_INET && got->ss_family == AF_INET6 &&
			 shim_to_v4((const struct sockaddr *)got, glen, &from))
			n = shim_to_family(AF_INET, &from, &out); /* v4-mapped, for AF_INET */
	}
	memcpy(addr, &out, n < cap ? n : cap);
	*len = n;
}

void shim_report_addr(const struct shim_sock *s, struct sockaddr *addr, socklen_t *len,
		      socklen_t cap_in)
{
	struct sockaddr_in from;
	struct sockaddr_storage ph;

	if (!addr || !len || !s->have_ph || shim_state_of(s) != SHIM_WON)
		return;
	if (!shim_to_v4(addr, *len < cap_in ? *len : cap_in, &from) ||
	    from.sin_addr.s_addr != s->peer.sin_addr.s_addr || from.sin_port != s->peer.sin_port)
		return;
	socklen_t n = shim_to_family(s->family, &s->ph, &ph);
	memcpy(addr, &ph, n < cap_in ? n : cap_in);
	*len = n;
}

void shim_opt_as_v6(int fd, int level, int name, const void *val, socklen_t len)
{
	int v6name, v;

	if (level != IPPROTO_IP || !val)
		return;
	switch (name) {
	case IP_TOS:
		v6name = IPV6_TCLASS;
		break;
	case IP_TTL:
		v6name = IPV6_UNICAST_HOPS;
		break;
	case IP_MTU_DISCOVER: /* IP_PMTUDISC_* and IPV6_PMTUDISC_* are the same numbers */
		v6name = IPV6_MTU_DISCOVER;
		break;
	default:
		return; /* no IPv6 meaning, or none that changes what is sent */
	}
	if (len >= sizeof(int))
		memcpy(&v, val, sizeof(v));
	else if (len == 1 && name != IP_MTU_DISCOVER)
		v = *(const unsigned char *)val; /* IP_TOS and IP_TTL may be given as a byte */
	else
		return;
	if (name == IP_TOS)
		v &= 0xff;
	if (REAL(setsockopt)(fd, IPPROTO_IPV6, v6name, &v, sizeof(v)) < 0)
		n4_debug("IPv4 option %d has no IPv6 equivalent here: %s", name, strerror(errno));
}

/* Lock held.  Replace every descriptor of `s` by `newfd`, keeping what dup2 loses.
 * native6: newfd carries a direct IPv6 path, where the program's IPv4 options
 * (set as given, so that getsockopt reads them back) count through their IPv6
 * equivalents. */
static int swap_in(struct shim_sock *s, int newfd, bool native6)
{
	int fd = -1, fl;

	for (unsigned i = 0; i < s->fd_cap && fd < 0; i++)
		fd = s->fds[i];
	fl = REAL(fcntl)(fd, F_GETFL);
	if (fl >= 0 && REAL(fcntl)(newfd, F_SETFL, fl & (O_NONBLOCK | O_ASYNC)) < 0)
		n4_warn("cannot carry file status flags: %s", strerror(errno));
	for (unsigned i = 0; i < s->nopts; i++) {
		const struct shim_opt *o = &s->opts[i];
		if (o->level == SOL_SOCKET && o->name == SO_ATTACH_FILTER)
			continue; /* take_over attaches it, combined with ours */
		if (REAL(setsockopt)(newfd, o->level, o->name, o->val, o->len) < 0)
			n4_debug("socket option %d/%d not carried over: %s", o->level, o->name,
				 strerror(errno));
		if (native6)
			shim_opt_as_v6(newfd, o->level, o->name, o->val, o->len);
	}
	/* Keep the old socket: threads blocked on it are woken by its shutdown and
	 * retry on the new one (see shim_swaps); that happens once data waits on the
	 * new one, for poll() and select() re-check the descriptor only when woken. */
	int old = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, 0);
	for (unsigned i = 0; i < s->fd_cap; i++) {
		int d = s->fds[i];
		if (d < 0)
			continue;
		int fdfl = REAL(fcntl)(d, F_GETFD);
		if (REAL(dup3)(newfd, d, fdfl > 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
			int err = errno;
			if (old >= 0)
				REAL(close)(old);
			return -err;
		}
	}
	__atomic_add_fetch(&shim_swaps, 1, __ATOMIC_RELEASE);
	/* epoll registrations belong to the old open file (epoll(7)): add them again. */
	for (unsigned i = 0; i < s->nepoll; i++) {
		struct epoll_event ev = s->epoll[i].ev;
		if (REAL(epoll_ctl)(s->epoll[i].epfd, EPOLL_CTL_ADD, s->epoll[i].fd, &ev) < 0 &&
		    errno != EEXIST)
			n4_warn("cannot carry epoll registration of fd %d: %s", s->epoll[i].fd,
				strerror(errno));
	}
	if (old >= 0) {
		if (s->nold == SHIM_OLD_MAX) {
			shutdown(s->old_socks[0], SHUT_RDWR);
			REAL(close)(s->old_socks[0]);
			memmove(s->old_socks, s->old_socks + 1, (SHIM_OLD_MAX - 1) * sizeof(int));
			s->nold--;
		}
		s->old_socks[s->nold++] = old;
	}
	return 0;
}

static void any_addr(int family, uint16_t port, struct sockaddr_storage *out, socklen_t *len)
{
	memset(out, 0, sizeof(*out));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)out;
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*len = sizeof(*a4);
	}
}

/* The address to bind to: what the program asked for, with the winning port. */
static void winning_addr(const struct shim_sock *s, uint16_t port, struct sockaddr_storage *out,
			 socklen_t *len)
{
	any_addr(s->family, port, out, len);
	if (s->bound_len == 0 || s->bound_addr.ss_family != s->family)
		return;
	if (s->family == AF_INET6)
		((struct sockaddr_in6 *)out)->sin6_addr =
			((const struct sockaddr_in6 *)&s->bound_addr)->sin6_addr;
	else
		((struct sockaddr_in *)out)->sin_addr =
			((const struct sockaddr_in *)&s->bound_addr)->sin_addr;
}

static int bind_port(int fd, const struct shim_sock *s, uint16_t port)
{
	struct sockaddr_storage a;
	socklen_t len;
	int one = 1;

	winning_addr(s, port, &a, &len);
	if (REAL(bind)(fd, (struct sockaddr *)&a, len) == 0)
		return 0;
	if (errno == EADDRNOTAVAIL && s->bound_len) {
		any_addr(s->family, port, &a, &len);
		if (REAL(bind)(fd, (struct sockaddr *)&a, len) == 0)
			return 0;
	}
	if (errno != EADDRINUSE)
		return -errno;
	/* Pool sockets had SO_REUSEADDR; a straggler in the kernel's lookup can refuse us. */
	REAL(setsockopt)(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (REAL(bind)(fd, (struct sockaddr *)&a, len) == 0)
		return 0;
	return -errno;
}

static bool is_bound(int fd)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);

	if (REAL(getsockname)(fd, (struct sockaddr *)&a, &len) < 0)
		return false;
	if (a.ss_family == AF_INET)
		return ((struct sockaddr_in *)&a)->sin_port != 0;
	if (a.ss_family == AF_INET6)
		return ((struct sockaddr_in6 *)&a)->sin6_port != 0;
	return false;
}

/* Lock held.  Before a direct IPv6 path's socket goes under fd: remember the port
 * the program's socket has (or, never bound, the new path's), so that getsockname
 * keeps reporting the program's family and port across every later swap. */
static void keep_program_port(int fd, struct shim_sock *s, uint16_t fallback)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	uint16_t port = 0;

	bool have = s->bound_len && s->bound_addr.ss_family == s->family;
	struct sockaddr_in6 *b6 = (struct sockaddr_in6 *)&s->bound_addr;
	struct sockaddr_in *b4 = (struct sockaddr_in *)&s->bound_addr;

	if (have && (s->family == AF_INET6 ? b6->sin6_port : b4->sin_port))
		return; /* the program bound a port itself */
	if (REAL(getsockname)(fd, (struct sockaddr *)&a, &len) == 0 && a.ss_family == s->family)
		port = shim_port_of((struct sockaddr *)&a, len);
	if (!port)
		port = fallback;
	if (!have)
		any_addr(s->family, port, &s->bound_addr, &s->bound_len);
	else if (s->family == AF_INET6)
		b6->sin6_port = htons(port); /* bound to port 0: the one it got */
	else
		b4->sin_port = htons(port);
}

/* Lock held: put the winning socket's port under the program's descriptor(s), with
 * the late-PUNCH filter on the socket that will carry it. */
static int take_over(int fd, struct shim_sock *s, int winfd, const struct n4_result *res,
		     const char *ident)
{
	int rc, err, zero = 0;
	socklen_t elen = sizeof(err);
	bool filtered;
	const struct sockaddr_in6 *peer6 = res->family == AF_INET6 ? &res->peer6 : NULL;
	const uint8_t *relay_token = NULL;
#ifdef N4_RELAY_TOKEN_SIZE /* with the relay (lib/relay_reg.h): its acks are ours too */
	if (res->relayed)
		relay_token = res->relay_token;
#endif

	struct shim_filter_state fst;
	if (peer6) /* getsockname's answer, kept in the filter too for a new image */
		keep_program_port(fd, s, res->local_port);
	shim_filter_state_of(s, res, &fst);
	if (peer6) {
		/* A direct IPv6 path: its socket is bound to our global address, which
		 * no socket of the program's family could be, so it goes under every
		 * descriptor whatever the program did; the port the program has is
		 * what getsockname keeps saying (a recovery may move it again). */
		filtered =
			shim_filter_attach(winfd, ident, &fst, NULL, shim_sock_prog_filter(s)) == 0;
		rc = swap_in(s, winfd, true);
		REAL(close)(winfd);
		if (rc < 0)
			return rc;
	} else if (!is_bound(fd)) {
		REAL(close)(winfd); /* its siblings went with n4_client_free() */
		filtered = shim_filter_attach(fd, ident, &fst, relay_token,
					      shim_sock_prog_filter(s)) == 0;
		rc = bind_port(fd, s, res->local_port);
		if (rc < 0)
			return rc;
	} else if (s->family == AF_INET) {
		filtered = shim_filter_attach(winfd, ident, &fst, relay_token,
					      shim_sock_prog_filter(s)) == 0;
		rc = swap_in(s, winfd, false);
		REAL(close)(winfd);
		if (rc < 0)
			return rc;
	} else {
		/* AF_INET6 program socket, AF_INET pool: a v6 socket on the same port keeps
		 * the program's sockaddr_in6 calls valid.  Dual-stack even where
		 * net.ipv6.bindv6only=1 makes v6-only the default: the peer is IPv4. */
		REAL(close)(winfd);
		int nfd = REAL(socket)(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (nfd < 0)
			return -errno;
		if (REAL(setsockopt)(nfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
			n4_warn("cannot make the replacement socket dual-stack: %s",
				strerror(errno));
		filtered = shim_filter_attach(nfd, ident, &fst, relay_token,
					      shim_sock_prog_filter(s)) == 0;
		rc = bind_port(nfd, s, res->local_port);
		if (rc == 0)
			rc = swap_in(s, nfd, false);
		REAL(close)(nfd);
		if (rc < 0)
			return rc;
	}
	/* Without the kernel filter, the receive calls peek for late PUNCHes a while. */
	s->filter = !filtered;
	/* Errors from probes must not surface as the program's first recv error. */
	(void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
	if (s->connected_ph) {
		struct sockaddr_storage p;
		socklen_t plen = shim_to_family(s->family, &res->peer, &p);
		if (peer6) {
			memcpy(&p, peer6, sizeof(*peer6));
			plen = sizeof(*peer6);
		}
		if (REAL(connect)(fd, (struct sockaddr *)&p, plen) < 0)
			return -errno;
	}
	return 0;
}

static int public_errno(int rc)
{
	switch (rc) {
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -EINTR:
	case -EINVAL:
	case -EBADF:
	/* local causes (N4_SRC_PORT taken, out of descriptors): say so, not "no route" */
	case -EADDRINUSE:
	case -EMFILE:
	case -ENFILE:
	case -ENOMEM:
	case -ENOBUFS:
	case -EACCES:
	case -EPERM:
		return rc;
	default:
		return -EHOSTUNREACH;
	}
}

/* The one line the program's user sees: say what happened, not just an errno. */
static const char *failure_reason(int rc, const struct shim_config *cfg)
{
	static __thread char buf[320];

	switch (rc) {
	case -ETIMEDOUT:
		snprintf(buf, sizeof(buf), "no WIN within N4_TIMEOUT, %u s",
			 cfg->client.timeout_ms / 1000);
		return buf;
	case -EHOSTUNREACH:
		snprintf(buf, sizeof(buf), "rendezvous server %s:%u unreachable", cfg->server_host,
			 cfg->server_port);
		return buf;
	case -ENOTSUP:
		return "both NATs allocate unpredictable ports: this pair cannot be punched";
	default:
		return strerror(-rc);
	}
}

static const char *trigger_name(enum shim_trigger how)
{
	switch (how) {
	case SHIM_BY_BIND:
		return "bind";
	case SHIM_BY_CONNECT:
		return "connect";
	case SHIM_BY_RECOVER:
		return "recovery";
	case SHIM_BY_UPGRADE:
		return "upgrade";
	case SHIM_BY_FLOW:
		return "flow";
	default:
		return "send";
	}
}

static int any_fd(const struct shim_sock *s)
{
	for (unsigned i = 0; i < s->fd_cap; i++)
		if (s->fds[i] >= 0)
			return s->fds[i];
	return -1;
}

/* The peer of a WIN as a log line shows it: "IP:PORT", or "[IPv6]:PORT (IPv6)". */
static const char *peer_text(const struct n4_result *res, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (res->family == AF_INET6) {
		inet_ntop(AF_INET6, &res->peer6.sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u (IPv6)", ip, ntohs(res->peer6.sin6_port));
	} else {
		inet_ntop(AF_INET, &res->peer.sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(res->peer.sin_port));
	}
	return buf;
}

/* Lock held: the path now runs over the WIN `res` (either family). */
static void set_peer(struct shim_sock *s, const struct n4_result *res)
{
	s->peer = res->peer;
	s->path6 = res->family == AF_INET6;
	if (s->path6)
		s->peer6 = res->peer6;
	else
		memset(&s->peer6, 0, sizeof(s->peer6));
	s->local_port = res->local_port;
	s->relayed = res->relayed;
	s->res = *res;
}

/* A listener without N4_PEER shows its peer at the address first heard from; one
 * first heard over IPv6 has none an IPv4 program could hold: an address of
 * 198.18.0.0/15 (RFC 2544, never on the internet) derived from it, with its port. */
static void alias_of6(const struct sockaddr_in6 *p6, struct sockaddr_in *out)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < sizeof(p6->sin6_addr); i++)
		h = (h ^ p6->sin6_addr.s6_addr[i]) * 16777619u;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_addr.s_addr = htonl(0xc6120000u | (h & 0x1ffffu));
	out->sin_port = p6->sin6_port;
}

/* Lock held: the rendezvous of a path that was already punched ended (recovery or
 * upgrade).  On a WIN the new socket replaced the old one; otherwise the old one
 * stays and the path's rules (n4_path) say when to try again. */
static void finish_again(struct shim_sock *s, enum shim_trigger how, int rc, int fd,
			 const struct n4_result *res, const struct shim_config *cfg,
			 bool was_relayed)
{
	uint64_t now = shim_now_ms();
	unsigned took = (unsigned)(now - s->work_start_ms);
	char peer_str[INET6_ADDRSTRLEN + 20];
	struct n4_path_info why, after;

	n4_path_get_info(s->path, &why); /* what started it, before it is forgotten */
	n4_path_attempt_done(s->path, now, rc, rc == 0 && res->relayed, shim_path_tx(s),
			     shim_path_rx(s));
	if (rc < 0) {
		n4_path_get_info(s->path, &after);
		if (how == SHIM_BY_RECOVER)
			n4_warn("fd %d: recovery failed after %u ms (%s); the old path stays, "
				"next try in %u s",
				fd, took, failure_reason(rc, cfg), after.backoff_ms / 1000);
		return;
	}
	peer_text(res, peer_str, sizeof(peer_str));
	/* Past the log cap: the one line per recovery must not be lost in the
	 * rendezvous' progress lines (a recovery costs a rendezvous: bounded). */
	if (was_relayed && !res->relayed)
		n4_info_uncapped("fd %d: relayed path moved to direct in %u ms%s: local port %u "
				 "<-> peer %s",
				 fd, took, why.told ? " (the peer went first)" : "",
				 res->local_port, peer_str);
	else if (how == SHIM_BY_RECOVER && why.send_failed)
		n4_info_uncapped("fd %d: path recovered (cause: our sends failed, no route) in %u "
				 "ms: local port %u <-> peer %s",
				 fd, took, res->local_port, peer_str);
	else if (how == SHIM_BY_RECOVER && why.told)
		n4_info_uncapped(
			"fd %d: path recovered (cause: the peer punched again, told by the "
			"server) in %u ms: local port %u <-> peer %s",
			fd, took, res->local_port, peer_str);
	else if (how == SHIM_BY_RECOVER)
		n4_info_uncapped(
			"fd %d: path recovered (cause: nothing from the peer for %u ms %s) in "
			"%u ms: local port %u <-> peer %s",
			fd, why.silent_ms,
			why.by_stream ? "after a steady stream" : "while sending",
			took + why.silent_ms, res->local_port, peer_str);
	else
		n4_info_uncapped("fd %d: relayed path moved to direct in %u ms: local port %u <-> "
				 "peer %s",
				 fd, took, res->local_port, peer_str);
}

void shim_path_finish(struct shim_sock *s, enum shim_trigger how, int rc, int winfd,
		      const struct n4_result *res, const struct shim_config *cfg)
{
	bool again = how == SHIM_BY_RECOVER || how == SHIM_BY_UPGRADE;
	int fd = any_fd(s);
	char peer_str[INET6_ADDRSTRLEN + 20];

	if (fd < 0 || s->cancel) {
		/* Every descriptor was closed meanwhile: nothing to swap into. */
		if (winfd >= 0)
			REAL(close)(winfd);
		if (!again)
			shim_set_state(s, SHIM_CANDIDATE);
		else if (s->path)
			n4_path_attempt_done(s->path, shim_now_ms(), -ECANCELED, false, 0, 0);
		return;
	}
	/* An upgrade that came back relayed again changes nothing. */
	if (rc == 0 && how == SHIM_BY_UPGRADE && res->relayed) {
		REAL(close)(winfd);
		n4_path_attempt_done(s->path, shim_now_ms(), 0, true, 0, 0);
		return;
	}
	if (rc == 0 && !again && !s->have_ph) {
		/* A listener without N4_PEER knows its peer by the address it first
		 * hears it from: keep that one for the session (alias_ph).  Before the
		 * take-over, so the filter carries it across exec and fork. */
		shim_seq_begin(s);
		s->ph = res->peer;
		if (res->family == AF_INET6)
			alias_of6(&res->peer6, &s->ph);
		s->have_ph = true;
		__atomic_store_n(&s->alias_ph, true, __ATOMIC_RELEASE);
		shim_seq_end(s);
	}
	if (rc == 0) {
		rc = take_over(fd, s, winfd, res, s->wire_ident);
		if (rc < 0)
			n4_error("fd %d: cannot take over the punched port %u: %s", fd,
				 res->local_port, strerror(-rc));
	}
	if (again) {
		bool was_relayed = s->relayed;
		if (rc == 0) {
			shim_seq_begin(s);
			set_peer(s, res);
			shim_seq_end(s);
		}
		finish_again(s, how, rc, fd, res, cfg, was_relayed);
		return;
	}
	if (rc == -ECANCELED) {
		shim_set_state(s, SHIM_CANDIDATE);
		return;
	}
	if (rc < 0 && s->flow && rc != -EINVAL && ++s->flow_tries < SHIM_FLOW_TRIES) {
		/* Nobody answered (RTCP to a port the peer never binds): no sweep was
		 * spent, the rendezvous waited at the server.  The next send tries
		 * again, SHIM_FLOW_TRIES times in all. */
		n4_warn("fd %d: flow to the peer's port %u: no answer in %u s (attempt %u of %u); "
			"its datagrams are dropped until a later send tries again",
			fd, s->flow_pport, cfg->flow_timeout_s, s->flow_tries, SHIM_FLOW_TRIES);
		shim_set_state(s, SHIM_CANDIDATE);
		return;
	}
	if (rc < 0) {
		if (s->flow)
			rc = -EHOSTUNREACH;
		if (!cfg->error)
			n4_error("fd %d: %s failed (%s); its sends fail with %s", fd,
				 s->flow ? "flow" : "punching",
				 s->flow ? "the peer never answered this port"
					 : failure_reason(rc, cfg),
				 strerror(-public_errno(rc)));
		s->err = -public_errno(rc);
		shim_set_state(s, SHIM_FAILED);
		return;
	}
	uint64_t now = shim_now_ms();
	shim_seq_begin(s);
	set_peer(s, res);
	s->filter_until_ms = now + SHIM_FILTER_MIN_MS + cfg->client.confirm_ms;
	shim_set_state(s, SHIM_WON);
	shim_seq_end(s);
	s->settle_until_ms = now + SHIM_SETTLE_MS;
	shim_path_keep(s, res->relayed);
	peer_text(res, peer_str, sizeof(peer_str));
	if (s->flow)
		n4_info_uncapped("fd %d: flow %u -> the peer's port %u punched: local port %u <-> "
				 "peer %s in %u ms%s",
				 fd, s->flow_lport, s->flow_pport, res->local_port, peer_str,
				 res->elapsed_ms,
				 res->relayed ? " (relayed through the server)" : "");
	else
		n4_info("fd %d punched: local port %u <-> peer %s in %u ms%s", fd, res->local_port,
			peer_str, res->elapsed_ms,
			res->relayed ? " (relayed through the server)" : "");
	if (s->have_side && !s->flow)
		shim_peer_learn(s, &s->side_mine, &s->side_theirs);
}

int shim_await(int fd, struct shim_sock *s, uint64_t deadline_ms)
{
	int rc;

	while (shim_state_of(s) == SHIM_PENDING) {
		rc = shim_wait_change(deadline_ms);
		if (rc < 0)
			return rc;
		if (shim_sock_get(fd) != s)
			return -EBADF;
	}
	if (shim_state_of(s) == SHIM_FAILED)
		return -s->err;
	if (shim_state_of(s) != SHIM_WON)
		return -EBADF; /* closed and recycled: a retry starts over */
	/* Give the peer's last confirmation time to land (SHIM_SETTLE_MS). */
	uint64_t now = shim_now_ms();
	if (now < s->settle_until_ms) {
		struct timespec settle = { 0, (long)(s->settle_until_ms - now) * 1000000L };
		shim_unlock();
		while (nanosleep(&settle, &settle) < 0 && errno == EINTR)
			;
		shim_lock();
	}
	return 0;
}

/* Lock held: fd (entry s) sent to the placeholder of path p, which is punched: put
 * p's socket under fd too, carrying fd's FD_CLOEXEC and epoll registrations.
 * O_NONBLOCK belongs to the open file, so fd now shares p's. */
static int join_path(int fd, struct shim_sock *s, struct shim_sock *p)
{
	int src = any_fd(p);
	int fdfl = REAL(fcntl)(fd, F_GETFD);

	if (src < 0)
		return -EBADF;
	if (REAL(dup3)(src, fd, fdfl > 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
		return -errno;
	for (unsigned i = 0; i < s->nepoll; i++) {
		struct epoll_event ev = s->epoll[i].ev;
		if (REAL(epoll_ctl)(s->epoll[i].epfd, EPOLL_CTL_ADD, fd, &ev) < 0 &&
		    errno != EEXIST)
			n4_warn("cannot carry epoll registration of fd %d: %s", fd,
				strerror(errno));
		shim_sock_remember_epoll(p, s->epoll[i].epfd, fd, EPOLL_CTL_ADD, &ev);
	}
	bool connect_it = s->connected_ph && !p->connected_ph;
	int rc = shim_sock_attach(fd, p); /* drops s */
	if (rc < 0) {
		/* Fail closed: this descriptor no longer carries anything of the program's. */
		REAL(close)(fd);
		return rc;
	}
	if (connect_it) {
		struct sockaddr_storage a;
		struct shim_view v;
		shim_view_of(p, &v);
		socklen_t alen = shim_view_dest(&v, &a);
		p->connected_ph = true;
		if (REAL(connect)(fd, (struct sockaddr *)&a, alen) < 0)
			n4_debug("fd %d: connect to the peer: %s", fd, strerror(errno));
	}
	n4_info("fd %d joins the path of fd %d (same placeholder): no new rendezvous", fd, src);
	return 0;
}

int shim_room_join(int fd, struct shim_sock *s, const struct sockaddr_in *ph, uint16_t bound_port,
		   const struct sockaddr *bind_addr, socklen_t bind_len)
{
	/* A listener's rendezvous: in the background, waiting for the host as long
	 * as it takes (cfg.room_only: never another joiner). */
	int rc = shim_designate(fd, s, SHIM_BY_BIND, ph, bind_addr, bind_len);
	if (rc < 0)
		return rc;
	s->room = true;
	s->room_port = bound_port;
	/* ph names the host for this socket's sends, like a placeholder. */
	__atomic_store_n(&s->alias_ph, true, __ATOMIC_RELEASE);
	return 0;
}

/* Lock held.  The program's port of fd, which a flow's identifier is derived from
 * and the peer's program knows us by: the port it bound, or one we bind now (an
 * unbound socket keeps it across the swap, as getsockname shows).  0 + errno. */
static uint16_t flow_port(int fd, struct shim_sock *s)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	uint16_t port = 0;

	for (int pass = 0; pass < 2 && !port; pass++) {
		len = sizeof(a);
		if (REAL(getsockname)(fd, (struct sockaddr *)&a, &len) < 0)
			return 0;
		port = shim_port_of((struct sockaddr *)&a, len);
		if (!port && pass == 0) {
			struct sockaddr_storage any;
			socklen_t alen;
			any_addr(s->family, 0, &any, &alen);
			if (REAL(bind)(fd, (struct sockaddr *)&any, alen) < 0)
				return 0;
		}
	}
	if (port && !shim_port_of((struct sockaddr *)&s->bound_addr, s->bound_len)) {
		memcpy(&s->bound_addr, &a, len);
		s->bound_len = len;
	}
	s->prog_bound = true;
	return port;
}

/* Lock held.  Start the worker of `s` (its fields set): 0 or -errno, logged. */
static int start_worker(int fd, struct shim_sock *s, enum shim_trigger how,
			const struct shim_config *cfg)
{
	shim_guard++;
	if (s->flow)
		n4_info("fd %d designated (%s): port %u <-> the peer's port %u, in the background",
			fd, trigger_name(how), s->flow_lport, s->flow_pport);
	else
		n4_info("fd %d designated (%s): rendezvous via %s:%u, ident '%s'%s", fd,
			trigger_name(how), cfg->server_host, cfg->server_port, cfg->ident,
			how == SHIM_BY_BIND ? " (in the background)" : "");
	int rc = shim_worker_start(s, how);
	if (rc < 0) {
		n4_error("fd %d: cannot start the rendezvous: %s", fd, strerror(-rc));
		s->err = -rc;
		shim_set_state(s, SHIM_FAILED);
	}
	shim_guard--;
	return rc;
}

/* Lock held.  fd sends to (or connects to, or is told by the peer about) ph, an
 * address of the known peer pr on a port without a path: a flow of that peer, on
 * the identifier derived from both sides and both programs' ports.  Returns at once
 * (the rendezvous runs in the background): 0 or -errno.  `notify`: tell the peer
 * through the server, so that its socket bound to that port takes the flow even if
 * it never sends to us. */
static int designate_flow(int fd, struct shim_sock *s, const struct sockaddr_in *ph,
			  const struct shim_peer_ref *pr, bool notify)
{
	const struct shim_config *cfg = shim_config_get();
	uint16_t lport = flow_port(fd, s);

	if (!lport) {
		int err = errno ? errno : EINVAL;
		n4_error("fd %d: a flow to the peer needs a local port: %s", fd, strerror(err));
		return -err;
	}
	if (!s->flow || s->ph.sin_addr.s_addr != ph->sin_addr.s_addr ||
	    s->ph.sin_port != ph->sin_port)
		s->flow_tries = 0;
	shim_set_state(s, SHIM_PENDING);
	s->cancel = 0;
	s->listener = false;
	s->flow = true;
	s->flow_mine = pr->mine;
	s->flow_theirs = pr->theirs;
	s->flow_lport = lport;
	s->flow_pport = ntohs(ph->sin_port);
	s->have_peer_id = false;
	s->have_ph = true;
	s->ph = *ph;
	/* ph names the peer for this socket's sends and receives, whatever it is
	 * (the placeholder's IP, or a LAN address the peer told us). */
	__atomic_store_n(&s->alias_ph, true, __ATOMIC_RELEASE);
	int rc = start_worker(fd, s, SHIM_BY_FLOW, cfg);
	if (rc < 0)
		return rc;
	s->flow_notify = notify;
	if (notify) {
		(void)n4_random_bytes(&s->flow_nonce, sizeof(s->flow_nonce));
		shim_flow_notify(s);
	}
	return 0;
}

void shim_flow_notify(struct shim_sock *s)
{
	struct shim_peer_ref pr;

	/* The peer that names this flow's address, and its first path's kept
	 * connection: gone while that path recovers (the attempt opens its own). */
	if (!shim_peer_find(&s->ph, &pr) || !pr.base || pr.base->stay_fd < 0)
		return;
	int nrc = n4_stay_flow_send(pr.base->stay_fd, s->flow_lport, s->flow_pport, s->flow_nonce);
	if (nrc == -EAGAIN)
		return; /* its send buffer is full: at the next tick */
	s->flow_notify = false;
	if (nrc < 0)
		n4_debug("flow %u -> %u: notice to the peer: %s", s->flow_lport, s->flow_pport,
			 strerror(-nrc));
}

/* A base path (not a flow) to `ip` still punching: its peer may be known soon. */
static struct shim_sock *base_pending_to(in_addr_t ip, const struct shim_sock *self)
{
	int high = shim_fd_high();

	for (int fd = 0; fd <= high; fd++) {
		struct shim_sock *p = shim_sock_get(fd);
		if (p && p != self && !p->flow && p->have_ph && !p->alias_ph &&
		    shim_state_of(p) == SHIM_PENDING && p->ph.sin_addr.s_addr == ip)
			return p;
	}
	return NULL;
}

void shim_flow_notice(struct shim_sock *p, uint16_t from_port, uint16_t to_port)
{
	struct shim_peer_ref pr;
	int high = shim_fd_high();

	if (!from_port || !to_port || !shim_peer_of_base(p, &pr))
		return;
	for (int fd = 0; fd <= high; fd++) {
		struct shim_sock *s = shim_sock_get(fd);
		if (!s || s == p || s->host || shim_state_of(s) != SHIM_CANDIDATE || !s->bound_len)
			continue;
		if (shim_port_of((struct sockaddr *)&s->bound_addr, s->bound_len) != to_port)
			continue;
		/* The program sees the peer where its own SDP would put it: at its
		 * first LAN address, else at the address this path shows it by. */
		struct sockaddr_in ph = p->ph;
		if (pr.theirs.naddrs)
			ph.sin_addr = pr.theirs.addrs[0];
		ph.sin_port = htons(from_port);
		n4_info("fd %d: the peer opens a flow from its port %u to our port %u", fd,
			from_port, to_port);
		(void)designate_flow(fd, s, &ph, &pr, false);
		return;
	}
	n4_debug("the peer opens a flow to our port %u: no idle socket of ours is bound there",
		 to_port);
}

const char *shim_ident_of(int fd)
{
	const struct shim_sock *s =
		fd >= 0 && fd < SHIM_FD_LIMIT
			? __atomic_load_n((struct shim_sock **)&shim_fdtab[fd], __ATOMIC_ACQUIRE)
			: NULL;

	if (s && s->wire_ident[0])
		return s->wire_ident;
	return shim_config_get()->wire_ident;
}

int shim_designate(int fd, struct shim_sock *s, enum shim_trigger how, const struct sockaddr_in *ph,
		   const struct sockaddr *bind_addr, socklen_t bind_len)
{
	const struct shim_config *cfg = shim_config_get();
	int rc;

	if (cfg->error) {
		shim_config_report(cfg);
		s->err = -cfg->error;
		shim_set_state(s, SHIM_FAILED);
		return cfg->error;
	}
	/* One path per placeholder: a port hop joins the punched path. */
	if (how != SHIM_BY_BIND && ph) {
		struct shim_sock *p;
		while ((p = shim_path_find(ph, s->family, s)) != NULL) {
			if (shim_state_of(p) == SHIM_WON)
				return join_path(fd, s, p);
			rc = shim_wait_change(0);
			if (rc < 0)
				return rc;
			if (shim_sock_get(fd) != s)
				return -EBADF;
		}
		/* Another port of a peer we know (or one of its LAN addresses): a flow
		 * of that peer.  A first path to its IP still punching: wait for it,
		 * for it tells who the peer is. */
		for (;;) {
			struct shim_peer_ref pr;
			if (shim_peer_find(ph, &pr))
				return designate_flow(fd, s, ph, &pr, true);
			if (!base_pending_to(ph->sin_addr.s_addr, s))
				break;
			rc = shim_wait_change(0);
			if (rc < 0)
				return rc;
			if (shim_sock_get(fd) != s)
				return -EBADF;
		}
	}
	s->flow = false;
	snprintf(s->wire_ident, sizeof(s->wire_ident), "%s", cfg->wire_ident);
	shim_set_state(s, SHIM_PENDING);
	s->cancel = 0;
	s->listener = how == SHIM_BY_BIND;
	/* A new designation: an alias learnt from an earlier peer names nobody now
	 * (sends to it must not wait for, and go to, the next peer). */
	__atomic_store_n(&s->alias_ph, false, __ATOMIC_RELEASE);
	s->have_peer_id = false; /* and to a host, this is a new peer */
	s->have_ph = ph != NULL;
	if (ph)
		s->ph = *ph;
	if (bind_addr && bind_len <= sizeof(s->bound_addr)) {
		memcpy(&s->bound_addr, bind_addr, bind_len);
		s->bound_len = bind_len;
	}
	rc = start_worker(fd, s, how, cfg);
	if (rc < 0 || how == SHIM_BY_BIND)
		return rc;
	return shim_await(fd, s, 0);
}

int shim_before_send(int fd, const struct sockaddr *dest, socklen_t dest_len, bool is_ph,
		     const struct sockaddr_in *ph, bool *rewrite,
		     struct sockaddr_storage *real_dest, socklen_t *real_len)
{
	struct shim_sock *s;
	int rc;

	uint64_t deadline = 0;

	*rewrite = false;
	for (;;) {
		s = shim_sock_get(fd);
		if (!s)
			return 0;
		switch (shim_state_of(s)) {
		case SHIM_PENDING:
			/* A flow punches in the background: what the program sends
			 * meanwhile is lost, as UDP may lose it (1: report it sent). */
			if (s->flow)
				return is_ph || (!dest && s->connected_ph) ? 1 : 0;
			/* A listener's rendezvous has no end of its own: a send before
			 * its WIN waits at most N4_TIMEOUT. */
			if (s->listener && !deadline)
				deadline = shim_now_ms() + shim_config_get()->client.timeout_ms;
			rc = shim_await(fd, s, s->listener ? deadline : 0);
			if (rc < 0)
				return rc;
			continue;
		case SHIM_FAILED:
			return -s->err;
		case SHIM_WON:
			if (is_ph && dest && dest->sa_family == s->family) {
				struct shim_view v;
				shim_view_of(s, &v);
				*real_len = shim_view_dest(&v, real_dest);
				*rewrite = true;
			}
			return 0;
		default:
			if (!is_ph || !dest || dest->sa_family != s->family)
				return 0;
			(void)dest_len;
			rc = shim_designate(fd, s, SHIM_BY_SEND, ph, NULL, 0);
			if (rc < 0)
				return rc;
		}
	}
}

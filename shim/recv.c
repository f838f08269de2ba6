/* recv.c - the receiving calls on a designated socket: datagrams from the real peer
 * are reported as coming from the placeholder, and the peer's late PUNCHes (it keeps
 * confirming for a while after the WIN) are kept away from the program.  The filter
 * peeks before each receive only while late PUNCHes can still arrive; afterwards
 * the kernel hands the data over directly. */
#include "shim.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "wire.h"

enum { RC_RECVFROM, RC_RECVMSG, RC_READ };

struct rcall {
	int kind;
	void *buf;
	size_t len;
	int flags;
	struct sockaddr *from;
	socklen_t *from_len;
	struct msghdr *msg;
	bool readv; /* RC_RECVMSG made by readv(): no address, and a file reads too */
};

struct rview {
	int state;
	bool filter;
	struct shim_view path;
};

static void view_of(int fd, struct rview *v)
{
	memset(v, 0, sizeof(*v));
	shim_lock();
	/* A number reused by a file (closed behind our back) reads like one. */
	struct shim_sock *s = shim_sock_fresh(fd, shim_sock_get(fd));
	if (s) {
		v->state = shim_state_of(s);
		if (v->state == SHIM_WON) {
			v->filter = s->filter;
			shim_view_of(s, &v->path);
		}
	}
	shim_unlock();
}

static bool from_peer(const struct sockaddr_storage *a, socklen_t len, const struct shim_view *p)
{
	struct sockaddr_in v4;

	if (p->path6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
		return a->ss_family == AF_INET6 && len >= sizeof(*a6) &&
		       a6->sin6_port == p->peer6.sin6_port &&
		       IN6_ARE_ADDR_EQUAL(&a6->sin6_addr, &p->peer6.sin6_addr);
	}
	return shim_to_v4((const struct sockaddr *)a, len, &v4) &&
	       v4.sin_addr.s_addr == p->peer.sin_addr.s_addr && v4.sin_port == p->peer.sin_port;
}

static void filter_done(int fd)
{
	shim_lock();
	struct shim_sock *s = shim_sock_get(fd);
	if (s && s->filter && shim_now_ms() >= s->filter_until_ms) {
		__atomic_store_n(&s->filter, false, __ATOMIC_RELAXED);
		shim_guard++;
		n4_debug("fd %d: late PUNCH filter off", fd);
		shim_guard--;
	}
	shim_unlock();
}

/* Consume the PUNCHes at the head of the queue.  Blocks like the program's own
 * receive would (same socket, same MSG_DONTWAIT); returns 0 or -errno. */
static int drop_punches(int fd, const struct rview *v, int flags)
{
	const char *ident = shim_ident_of(fd);
	unsigned char buf[N4_APUNCH_SIZE + 1];

	for (;;) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = REAL(recvfrom)(fd, buf, sizeof(buf), MSG_PEEK | (flags & MSG_DONTWAIT),
					   (struct sockaddr *)&from, &flen);
		if (n < 0)
			return -errno;
		if (!from_peer(&from, flen, &v->path))
			return 0;
		if (!n4_is_punch(buf, (size_t)n, ident) && !n4_is_side(buf, (size_t)n, ident)) {
			filter_done(fd);
			return 0;
		}
		(void)REAL(recvfrom)(fd, buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL);
	}
}

static ssize_t call_real(int fd, struct rcall *c)
{
	switch (c->kind) {
	case RC_RECVMSG:
		if (c->readv)
			return REAL(readv)(fd, c->msg->msg_iov, (int)c->msg->msg_iovlen);
		return REAL(recvmsg)(fd, c->msg, c->flags);
	case RC_READ:
		return REAL(read)(fd, c->buf, c->len);
	default:
		return REAL(recvfrom)(fd, c->buf, c->len, c->flags, c->from, c->from_len);
	}
}

/* The kernel's receive, the source address into our own buffer (ss, *sl) when
 * the program wants one: the socket under its descriptor may be of another family
 * than its own (a direct IPv6 path under an IPv4 program), and is swapped under it
 * at any moment.  The program's buffer gets the address from name_out. */
static ssize_t call_real_named(int fd, struct rcall *c, struct sockaddr_storage *ss, socklen_t *sl)
{
	if (c->kind == RC_RECVFROM)
		return REAL(recvfrom)(fd, c->buf, c->len, c->flags, (struct sockaddr *)ss, sl);
	struct msghdr m = *c->msg;
	m.msg_name = ss;
	m.msg_namelen = *sl;
	ssize_t n = REAL(recvmsg)(fd, &m, c->flags);
	if (n >= 0) {
		c->msg->msg_controllen = m.msg_controllen;
		c->msg->msg_flags = m.msg_flags;
		*sl = m.msg_namelen;
	}
	return n;
}

/* The source of a datagram as the program sees it: the real peer becomes its
 * placeholder (or alias), in the program's family.  Lock-free when it can be. */
static void name_out(int fd, const struct shim_sock *s, const struct sockaddr_storage *ss,
		     socklen_t sl, struct sockaddr *addr, socklen_t *len, socklen_t cap)
{
	struct shim_view v;

	if (!s || !shim_read_view(s, &v)) {
		shim_lock();
		const struct shim_sock *t = shim_sock_get(fd);
		memset(&v, 0, sizeof(v));
		v.family = t ? t->family : ss->ss_family;
		if (t && shim_state_of(t) == SHIM_WON)
			shim_view_of(t, &v);
		shim_unlock();
	}
	shim_view_report(&v, ss, sl, addr, len, cap);
}

/* A receive that was already running when the rendezvous finished: it did not go
 * through the filter, so look at what it got. */
static bool late_punch(int fd, const struct rcall *c, ssize_t n)
{
	const void *data = c->buf;

	if (n <= 0 || n > N4_APUNCH_SIZE)
		return false;
	if (c->kind == RC_RECVMSG) {
		if (!c->msg->msg_iovlen || c->msg->msg_iov[0].iov_len < (size_t)n)
			return false;
		data = c->msg->msg_iov[0].iov_base;
	} else if (c->len < (size_t)n) {
		return false;
	}
	return n4_is_punch(data, (size_t)n, shim_ident_of(fd)) ||
	       n4_is_side(data, (size_t)n, shim_ident_of(fd));
}

/* A host's socket: the kernel's receive, then a peer's real address becomes its
 * alias.  Our datagrams never reach this socket (host.c steers them away). */
static ssize_t host_recv(int fd, const struct shim_sock *s, struct shim_host *h, struct rcall *c)
{
	socklen_t cap = 0;

	if (c->kind == RC_RECVFROM && c->from && c->from_len)
		cap = *c->from_len;
	else if (c->kind == RC_RECVMSG && c->msg->msg_name)
		cap = c->msg->msg_namelen;
	ssize_t n = call_real(fd, c);
	int err = errno;
	if (n >= 0 && cap) {
		if (c->kind == RC_RECVFROM)
			shim_host_in(h, s->family, c->from, c->from_len, cap);
		else
			shim_host_in(h, s->family, c->msg->msg_name, &c->msg->msg_namelen, cap);
	}
	errno = err;
	return n;
}

static ssize_t do_recv(int fd, struct rcall *c)
{
	struct rview v;

	if (c->flags & MSG_ERRQUEUE)
		return call_real(fd, c);
	for (;;) {
		struct shim_sock *s = shim_sock_get(fd);
		struct shim_host *h = s ? shim_host_of(s) : NULL;
		if (h)
			return host_recv(fd, s, h, c);
		int st = s ? shim_state_of(s) : SHIM_CANDIDATE;
		if (st == SHIM_CANDIDATE || st == SHIM_FAILED)
			return call_real(fd, c);
		socklen_t cap = 0;
		if (c->kind == RC_RECVFROM && c->from && c->from_len)
			cap = *c->from_len;
		else if (c->kind == RC_RECVMSG && c->msg->msg_name)
			cap = c->msg->msg_namelen;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct sockaddr *a = NULL;
		socklen_t *l = NULL;
		if (cap) {
			a = c->kind == RC_RECVFROM ? c->from : c->msg->msg_name;
			l = c->kind == RC_RECVFROM ? c->from_len : &c->msg->msg_namelen;
		}
		if (st == SHIM_WON && !__atomic_load_n(&s->filter, __ATOMIC_RELAXED)) {
			/* After the WIN: the kernel's path, nothing of ours in between but the
			 * source address, rewritten without the lock. */
			unsigned swaps = __atomic_load_n(&shim_swaps, __ATOMIC_ACQUIRE);
			ssize_t n = cap ? call_real_named(fd, c, &ss, &sl) : call_real(fd, c);
			int err = errno;
			if (n == 0 && __atomic_load_n(&shim_swaps, __ATOMIC_ACQUIRE) != swaps)
				continue;
			if (n >= 0)
				shim_count(&s->rx_count, 1); /* dead-path rule (keeper.c) */
			if (n >= 0 && cap)
				name_out(fd, s, &ss, sl, a, l, cap);
			errno = err;
			return n;
		}
		view_of(fd, &v);
		if (v.filter) {
			int rc = drop_punches(fd, &v, c->flags);
			if (rc < 0) {
				errno = -rc;
				return -1;
			}
		}
		unsigned swaps = __atomic_load_n(&shim_swaps, __ATOMIC_ACQUIRE);
		ssize_t n = cap ? call_real_named(fd, c, &ss, &sl) : call_real(fd, c);
		int err = errno;
		if (n == 0 && __atomic_load_n(&shim_swaps, __ATOMIC_ACQUIRE) != swaps)
			continue; /* woken on the socket that was swapped out: again, on the new one */
		if (v.state == SHIM_PENDING && n >= 0) {
			view_of(fd, &v);
			if (v.state == SHIM_WON && v.filter && late_punch(fd, c, n))
				continue;
		}
		if (n >= 0 && cap)
			name_out(fd, NULL, &ss, sl, a, l, cap);
		errno = err;
		return n;
	}
}

ssize_t shim_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
		      socklen_t *from_len)
{
	struct rcall c = { RC_RECVFROM, buf, len, flags, from, from_len, NULL, false };

	return do_recv(fd, &c);
}

ssize_t shim_recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct rcall c = { RC_RECVMSG, NULL, 0, flags, NULL, NULL, msg, false };

	if (!msg)
		return REAL(recvmsg)(fd, msg, flags);
	return do_recv(fd, &c);
}

ssize_t shim_read(int fd, void *buf, size_t len)
{
	struct rcall c = { RC_READ, buf, len, 0, NULL, NULL, NULL, false };

	return do_recv(fd, &c);
}

/* readv is recvmsg without an address on a socket: the same filter. */
ssize_t shim_readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct msghdr m;
	struct rcall c = { RC_RECVMSG, NULL, 0, 0, NULL, NULL, &m, true };

	if (iovcnt < 0)
		return REAL(readv)(fd, iov, iovcnt);
	memset(&m, 0, sizeof(m));
	m.msg_iov = (struct iovec *)iov;
	m.msg_iovlen = (size_t)iovcnt;
	return do_recv(fd, &c);
}

int shim_recvmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags, struct timespec *timeout)
{
	struct shim_sock *s = shim_sock_get(fd);
	struct rview v;
	struct shim_host *h = s ? shim_host_of(s) : NULL;
	int st = s ? shim_state_of(s) : SHIM_CANDIDATE;

	if (h && vec && !(flags & MSG_ERRQUEUE)) {
		socklen_t caps[64];
		unsigned ncap = vlen < 64 ? vlen : 64;
		for (unsigned i = 0; i < ncap; i++)
			caps[i] = vec[i].msg_hdr.msg_name ? vec[i].msg_hdr.msg_namelen : 0;
		int n = REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
		int err = errno;
		for (int i = 0; i < n; i++) {
			struct msghdr *m = &vec[i].msg_hdr;
			socklen_t cap = (unsigned)i < ncap ? caps[i] : m->msg_namelen;
			if (m->msg_name && cap)
				shim_host_in(h, s->family, m->msg_name, &m->msg_namelen, cap);
		}
		errno = err;
		return n;
	}
	if (st == SHIM_CANDIDATE || st == SHIM_FAILED || !vec || (flags & MSG_ERRQUEUE))
		return REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
	view_of(fd, &v);
	if (v.filter || v.state == SHIM_PENDING) {
		/* While late PUNCHes can arrive: one datagram at a time through the filter
		 * (the timeout is not applied in this short window). */
		unsigned i;
		for (i = 0; i < vlen; i++) {
			int f = flags & ~MSG_WAITFORONE;
			if (i > 0)
				f |= MSG_DONTWAIT;
			ssize_t n = shim_recvmsg(fd, &vec[i].msg_hdr, f);
			if (n < 0) {
				if (i > 0)
					break;
				return -1;
			}
			vec[i].msg_len = (unsigned)n;
		}
		return (int)i;
	}
	/* Our own headers with our own address buffers (the data is the program's):
	 * the socket under the descriptor may be of another family than its own. */
	struct mmsghdr own[64];
	struct sockaddr_storage names[64];
	if (vlen > 64)
		vlen = 64; /* a receive may always return fewer */
	for (unsigned i = 0; i < vlen; i++) {
		own[i] = vec[i];
		if (vec[i].msg_hdr.msg_name && vec[i].msg_hdr.msg_namelen) {
			own[i].msg_hdr.msg_name = &names[i];
			own[i].msg_hdr.msg_namelen = sizeof(names[i]);
		}
	}
	int n = REAL(recvmmsg)(fd, own, vlen, flags, timeout);
	int err = errno;
	if (n > 0)
		shim_count(&s->rx_count, (uint64_t)n);
	for (int i = 0; i < n; i++) {
		struct msghdr *m = &vec[i].msg_hdr;
		vec[i].msg_len = own[i].msg_len;
		m->msg_controllen = own[i].msg_hdr.msg_controllen;
		m->msg_flags = own[i].msg_hdr.msg_flags;
		if (m->msg_name && m->msg_namelen)
			name_out(fd, s, &names[i], own[i].msg_hdr.msg_namelen, m->msg_name,
				 &m->msg_namelen, m->msg_namelen);
	}
	errno = err;
	return n;
}

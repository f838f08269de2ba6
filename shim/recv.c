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
	bool rewrite;
	struct sockaddr_in peer;
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
			v->rewrite = s->have_ph;
			v->peer = s->peer;
		}
	}
	shim_unlock();
}

static bool from_peer(const struct sockaddr_storage *a, socklen_t len,
		      const struct sockaddr_in *peer)
{
	struct sockaddr_in v4;

	return shim_to_v4((const struct sockaddr *)a, len, &v4) &&
	       v4.sin_addr.s_addr == peer->sin_addr.s_addr && v4.sin_port == peer->sin_port;
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
		if (!from_peer(&from, flen, &v->peer))
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

/* After the WIN, without the lock: the real peer becomes the placeholder. */
static bool rewrite_fast(const struct shim_sock *s, struct sockaddr *addr, socklen_t *len,
			 socklen_t cap)
{
	struct sockaddr_in peer, ph, from;
	struct sockaddr_storage out;
	int family;

	if (!shim_read_won(s, &peer, &ph, &family))
		return false;
	if (!addr || !len || !shim_to_v4(addr, *len < cap ? *len : cap, &from))
		return true;
	if (from.sin_addr.s_addr != peer.sin_addr.s_addr || from.sin_port != peer.sin_port)
		return true;
	socklen_t n = shim_to_family(family, &ph, &out);
	memcpy(addr, &out, n < cap ? n : cap);
	*len = n;
	return true;
}

static void rewrite_from(int fd, struct sockaddr *addr, socklen_t *len, socklen_t cap)
{
	shim_lock();
	struct shim_sock *s = shim_sock_get(fd);
	if (s)
		shim_report_addr(s, addr, len, cap);
	shim_unlock();
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
		if (st == SHIM_WON && !__atomic_load_n(&s->filter, __ATOMIC_RELAXED)) {
			/* After the WIN: the kernel's path, nothing of ours in between but the
			 * source address, rewritten in place without the lock. */
			bool ph = cap && __atomic_load_n(&s->have_ph, __ATOMIC_RELAXED);
			unsigned swaps = __atomic_load_n(&shim_swaps, __ATOMIC_ACQUIRE);
			ssize_t n = call_real(fd, c);
			int err = errno;
			if (n == 0 && __atomic_load_n(&shim_swaps, __ATOMIC_ACQUIRE) != swaps)
				continue;
			if (n >= 0)
				shim_count(&s->rx_count, 1); /* dead-path rule (keeper.c) */
			if (n >= 0 && ph) {
				struct sockaddr *a =
					c->kind == RC_RECVFROM ? c->from : c->msg->msg_name;
				socklen_t *l =
					c->kind == RC_RECVFROM ? c->from_len : &c->msg->msg_namelen;
				if (!rewrite_fast(s, a, l, cap))
					rewrite_from(fd, a, l, cap);
			}
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
		ssize_t n = call_real(fd, c);
		int err = errno;
		if (n == 0 && __atomic_load_n(&shim_swaps, __ATOMIC_ACQUIRE) != swaps)
			continue; /* woken on the socket that was swapped out: again, on the new one */
		if (v.state == SHIM_PENDING && n >= 0) {
			view_of(fd, &v);
			if (v.state == SHIM_WON && v.filter && late_punch(fd, c, n))
				continue;
		}
		if (n >= 0 && cap && (v.rewrite || v.state == SHIM_PENDING)) {
			if (c->kind == RC_RECVFROM)
				rewrite_from(fd, c->from, c->from_len, cap);
			else
				rewrite_from(fd, c->msg->msg_name, &c->msg->msg_namelen, cap);
		}
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
	socklen_t caps[64];
	unsigned ncap = vlen < 64 ? vlen : 64;
	for (unsigned i = 0; i < ncap; i++)
		caps[i] = vec[i].msg_hdr.msg_name ? vec[i].msg_hdr.msg_namelen : 0;
	int n = REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
	int err = errno;
	if (n > 0)
		shim_count(&s->rx_count, (uint64_t)n);
	if (n > 0 && v.rewrite) {
		shim_lock();
		s = shim_sock_get(fd);
		for (int i = 0; s && i < n; i++) {
			struct msghdr *m = &vec[i].msg_hdr;
			socklen_t cap = (unsigned)i < ncap ? caps[i] : m->msg_namelen;
			if (m->msg_name && cap)
				shim_report_addr(s, m->msg_name, &m->msg_namelen, cap);
		}
		shim_unlock();
	}
	errno = err;
	return n;
}

/* send.c - the sending calls.  A send to the placeholder designates the socket (the
 * call blocks through the rendezvous) and afterwards goes to the real peer; every
 * other send on a socket that is not failed goes straight to the kernel.  A
 * destination is classified the way the kernel will read it (an AF_INET address on
 * a dual-stack AF_INET6 socket is its v4-mapped form): what names the placeholder
 * is never sent there raw. */
#include "shim.h"

#include "log.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t iov_total(const struct iovec *iov, size_t n)
{
	size_t t = 0;

	for (size_t i = 0; iov && i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* Lock-free: nothing to do for this call.  Sends on a punched path are counted for
 * the dead-path rule (keeper.c); a socket that is not designated pays nothing. */
static bool pass(struct shim_sock *s, bool is_ph)
{
	int st = shim_state_of(s);

	if (st == SHIM_WON)
		shim_count(&s->tx_count, 1);
	return (st == SHIM_CANDIDATE || st == SHIM_WON) && !is_ph;
}

const struct sockaddr *shim_as_family(int family, const struct sockaddr *addr, socklen_t *len,
				      struct sockaddr_storage *tmp)
{
	struct sockaddr_in v4;

	if (family != AF_INET6 || !addr || addr->sa_family != AF_INET ||
	    *len < sizeof(struct sockaddr_in))
		return addr; /* the kernel refuses a short one by itself */
	memcpy(&v4, addr, sizeof(v4));
	*len = shim_to_family(AF_INET6, &v4, tmp);
	return (const struct sockaddr *)tmp;
}

/* A direct IPv6 path whose route went away (or whose firewall answers with an
 * error): the datagram is lost, as UDP may lose it, and the program sees a gap,
 * never an error; the dead-path rule (keeper.c) moves the path to what works. */
static ssize_t lost6(const struct shim_sock *s, ssize_t n, size_t len)
{
	if (n >= 0 || !__atomic_load_n(&s->path6, __ATOMIC_RELAXED))
		return n;
	if (errno != ENETUNREACH && errno != EHOSTUNREACH && errno != EADDRNOTAVAIL &&
	    errno != EACCES && errno != EPERM)
		return n;
	/* The peer may still reach us, so its datagrams keep the dead-path rule
	 * quiet: tell the keeper (n4_path_send_failed). */
	__atomic_store_n((int *)&s->send_lost, 1, __ATOMIC_RELAXED);
	return (ssize_t)len;
}

static int family_of(const struct shim_sock *s)
{
	return __atomic_load_n(&s->family, __ATOMIC_RELAXED);
}

static int prepare(int fd, const struct sockaddr *dest, socklen_t dest_len, bool is_ph,
		   const struct sockaddr_in *ph, bool *rewrite, struct sockaddr_storage *rd,
		   socklen_t *rl)
{
	shim_lock();
	int rc = 0;
	*rewrite = false;
	/* A number closed behind our back and reused by a file must write like one.
	 * Not on a punched socket: its sends need no decision of ours (and a file
	 * refuses sendmsg by itself), and they must not pay for an fstat each. */
	struct shim_sock *s = shim_sock_get(fd);
	if (s && shim_state_of(s) != SHIM_WON)
		s = shim_sock_fresh(fd, s);
	if (s)
		rc = shim_before_send(fd, dest, dest_len, is_ph, ph, rewrite, rd, rl);
	shim_unlock();
	return rc;
}

/* N4_JOIN: a broadcast on one of the room's ports.  It goes out on this LAN exactly
 * as without the shim (its result is the call's); once the socket is in the room it
 * also goes to the room's host over the path, and until then the socket joins in the
 * background (the next broadcast reaches the host). */
static ssize_t room_bcast_send(int fd, struct shim_sock *s, const struct msghdr *msg, int flags,
			       const struct sockaddr_in *ph)
{
	ssize_t n = REAL(sendmsg)(fd, msg, flags);
	struct shim_view v;

	if (n < 0)
		return n;
	if (shim_read_view(s, &v)) {
		struct sockaddr_storage rd;
		struct msghdr m = *msg;
		m.msg_name = &rd;
		m.msg_namelen = shim_view_dest(&v, &rd);
		shim_count(&s->tx_count, 1);
		(void)REAL(sendmsg)(fd, &m, flags | MSG_DONTWAIT);
		return n;
	}
	int err = errno;
	shim_lock();
	struct shim_sock *t = shim_sock_get(fd);
	if (t && shim_state_of(t) == SHIM_CANDIDATE) {
		t = shim_sock_fresh(fd, t);
		if (t && shim_state_of(t) == SHIM_CANDIDATE) {
			int rc = shim_room_join(fd, t, ph, 0, NULL, 0);
			if (rc < 0)
				n4_debug("fd %d: cannot join the room: %s", fd, strerror(-rc));
		}
	}
	shim_unlock();
	errno = err;
	return n;
}

/* A host's send that went out: a broadcast or multicast reaches the room too. */
static void host_fanout(struct shim_host *h, int fd, int family, const void *buf, size_t len,
			int flags, const struct sockaddr *dest, socklen_t dest_len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr m = {
		.msg_name = (void *)dest, .msg_namelen = dest_len, .msg_iov = &iov, .msg_iovlen = 1
	};

	(void)shim_host_fanout(h, fd, family, &m, flags);
}

ssize_t shim_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *dest,
		    socklen_t dest_len)
{
	struct shim_sock *s = shim_sock_get(fd);
	struct sockaddr_in ph;
	struct sockaddr_storage rd;
	socklen_t rl;
	bool rewrite;

	if (!s)
		return REAL(sendto)(fd, buf, len, flags, dest, dest_len);
	struct shim_host *h = shim_host_of(s);
	if (h) {
		/* A host's socket: a peer's alias is where that peer really is now. */
		if (shim_host_out(h, family_of(s), dest, dest_len, &rd, &rl))
			return REAL(sendto)(fd, buf, len, flags, (struct sockaddr *)&rd, rl);
		ssize_t r = REAL(sendto)(fd, buf, len, flags, dest, dest_len);
		if (r >= 0 && dest) {
			int err = errno;
			host_fanout(h, fd, family_of(s), buf, len, flags, dest, dest_len);
			errno = err;
		}
		return r;
	}
	const struct shim_config *jc = shim_config_get();
	if (jc->njoin && shim_room_bcast(jc, dest, dest_len, &ph)) {
		struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
		struct msghdr m = { .msg_name = (void *)dest,
				    .msg_namelen = dest_len,
				    .msg_iov = &iov,
				    .msg_iovlen = 1 };
		return room_bcast_send(fd, s, &m, flags, &ph);
	}
	struct sockaddr_storage mapped;
	dest = shim_as_family(family_of(s), dest, &dest_len, &mapped);
	bool is_ph = dest && shim_names_peer(s, shim_config_get(), dest, dest_len, &ph);
	bool passes = pass(s, is_ph);
	if (passes && dest)
		return REAL(sendto)(fd, buf, len, flags, dest, dest_len);
	if (passes) /* connected: to the peer */
		return lost6(s, REAL(sendto)(fd, buf, len, flags, dest, dest_len), len);
	struct shim_view v;
	if (shim_read_view(s, &v) && dest->sa_family == v.family) {
		/* Punched, to the placeholder: the peer instead, without the lock. */
		rl = shim_view_dest(&v, &rd);
		return lost6(s, REAL(sendto)(fd, buf, len, flags, (struct sockaddr *)&rd, rl), len);
	}
	int rc = prepare(fd, dest, dest_len, is_ph, &ph, &rewrite, &rd, &rl);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	if (rc == 1)
		return (ssize_t)len; /* a flow punching: lost, as UDP may lose it */
	if (rewrite)
		return lost6(s, REAL(sendto)(fd, buf, len, flags, (struct sockaddr *)&rd, rl), len);
	return REAL(sendto)(fd, buf, len, flags, dest, dest_len);
}

ssize_t shim_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct shim_sock *s = shim_sock_get(fd);
	struct sockaddr_in ph;
	struct sockaddr_storage rd;
	socklen_t rl;
	bool rewrite;

	if (!s || !msg)
		return REAL(sendmsg)(fd, msg, flags);
	struct shim_host *h = shim_host_of(s);
	if (h) {
		if (!shim_host_out(h, family_of(s), msg->msg_name, msg->msg_namelen, &rd, &rl)) {
			ssize_t r = REAL(sendmsg)(fd, msg, flags);
			if (r >= 0) {
				int err = errno;
				(void)shim_host_fanout(h, fd, family_of(s), msg, flags);
				errno = err;
			}
			return r;
		}
		struct msghdr hm = *msg;
		hm.msg_name = &rd;
		hm.msg_namelen = rl;
		return REAL(sendmsg)(fd, &hm, flags);
	}
	const struct shim_config *jc = shim_config_get();
	if (jc->njoin && msg->msg_name && shim_room_bcast(jc, msg->msg_name, msg->msg_namelen, &ph))
		return room_bcast_send(fd, s, msg, flags, &ph);
	struct sockaddr_storage mapped;
	struct msghdr mm;
	socklen_t nl = msg->msg_namelen;
	if (shim_as_family(family_of(s), msg->msg_name, &nl, &mapped) != msg->msg_name) {
		mm = *msg;
		mm.msg_name = &mapped;
		mm.msg_namelen = nl;
		msg = &mm;
	}
	bool is_ph = msg->msg_name &&
		     shim_names_peer(s, shim_config_get(), msg->msg_name, msg->msg_namelen, &ph);
	bool passes = pass(s, is_ph);
	if (passes && msg->msg_name)
		return REAL(sendmsg)(fd, msg, flags);
	if (passes) /* connected: to the peer */
		return lost6(s, REAL(sendmsg)(fd, msg, flags),
			     iov_total(msg->msg_iov, msg->msg_iovlen));
	int rc = prepare(fd, msg->msg_name, msg->msg_namelen, is_ph, &ph, &rewrite, &rd, &rl);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	if (rc == 1)
		return (ssize_t)iov_total(msg->msg_iov, msg->msg_iovlen);
	if (!rewrite)
		return REAL(sendmsg)(fd, msg, flags);
	struct msghdr m = *msg;
	m.msg_name = &rd;
	m.msg_namelen = rl;
	return lost6(s, REAL(sendmsg)(fd, &m, flags), iov_total(msg->msg_iov, msg->msg_iovlen));
}

#define SHIM_MMSG_MAX 1024 /* UIO_MAXIOV: the kernel sends at most this many per call */

/* A host's socket: each alias becomes where its peer really is (headers copied,
 * never the data). */
static int host_sendmmsg(int fd, struct shim_host *h, int family, struct mmsghdr *vec,
			 unsigned vlen, int flags)
{
	struct mmsghdr v[32];
	struct sockaddr_storage names[32];
	unsigned done = 0;

	while (done < vlen) {
		unsigned k = vlen - done < 32 ? vlen - done : 32;
		bool any = false;
		for (unsigned i = 0; i < k; i++) {
			v[i] = vec[done + i];
			struct msghdr *m = &v[i].msg_hdr;
			socklen_t nl;
			if (shim_host_out(h, family, m->msg_name, m->msg_namelen, &names[i], &nl)) {
				m->msg_name = &names[i];
				m->msg_namelen = nl;
				any = true;
			}
		}
		int n = any ? REAL(sendmmsg)(fd, v, k, flags)
			    : REAL(sendmmsg)(fd, vec + done, k, flags);
		if (n < 0)
			return done ? (int)done : -1;
		/* Broadcasts among them reach the room too (aliases are no broadcast). */
		int err = errno;
		for (int i = 0; i < n; i++)
			if (v[i].msg_hdr.msg_name != &names[i])
				(void)shim_host_fanout(h, fd, family,
						       &vec[done + (unsigned)i].msg_hdr, flags);
		errno = err;
		for (int i = 0; any && i < n; i++)
			vec[done + (unsigned)i].msg_len = v[i].msg_len;
		done += (unsigned)n;
		if ((unsigned)n < k)
			break;
	}
	return (int)done;
}

static int sendmmsg_as_given(int fd, struct mmsghdr *vec, unsigned vlen, int flags)
{
	struct shim_sock *s = shim_sock_get(fd);
	struct sockaddr_in ph, any;
	struct sockaddr_storage rd;
	socklen_t rl;
	bool rewrite, is_ph = false;
	const struct sockaddr *first = NULL;
	socklen_t first_len = 0;

	if (!s || !vec)
		return REAL(sendmmsg)(fd, vec, vlen, flags);
	if (vlen > SHIM_MMSG_MAX)
		vlen = SHIM_MMSG_MAX;
	struct shim_host *h = shim_host_of(s);
	if (h)
		return host_sendmmsg(fd, h, family_of(s), vec, vlen, flags);
	const struct shim_config *cfg = shim_config_get();
	for (unsigned i = 0; i < vlen; i++) {
		const struct msghdr *m = &vec[i].msg_hdr;
		if (m->msg_name &&
		    shim_names_peer(s, cfg, m->msg_name, m->msg_namelen, is_ph ? &any : &ph)) {
			if (!is_ph) {
				first = m->msg_name;
				first_len = m->msg_namelen;
			}
			is_ph = true;
		}
	}
	if (pass(s, is_ph))
		return REAL(sendmmsg)(fd, vec, vlen, flags);
	int rc = prepare(fd, first, first_len, is_ph, &ph, &rewrite, &rd, &rl);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	if (rc == 1) {
		for (unsigned i = 0; i < vlen; i++)
			vec[i].msg_len = (unsigned)iov_total(vec[i].msg_hdr.msg_iov,
							     vec[i].msg_hdr.msg_iovlen);
		return (int)vlen;
	}
	if (!rewrite)
		return REAL(sendmmsg)(fd, vec, vlen, flags);
	/* Headers only are copied (with the peer as destination), never the data. */
	struct mmsghdr stackv[64], *v = stackv;
	if (vlen > 64) {
		v = malloc(vlen * sizeof(*v));
		if (!v) {
			errno = ENOMEM;
			return -1;
		}
	}
	for (unsigned i = 0; i < vlen; i++) {
		v[i] = vec[i];
		struct msghdr *m = &v[i].msg_hdr;
		if (m->msg_name && shim_names_peer(s, cfg, m->msg_name, m->msg_namelen, &any)) {
			m->msg_name = &rd;
			m->msg_namelen = rl;
		}
	}
	int n = REAL(sendmmsg)(fd, v, vlen, flags);
	int err = errno;
	for (int i = 0; i < n; i++)
		vec[i].msg_len = v[i].msg_len;
	if (v != stackv)
		free(v);
	errno = err;
	return n;
}

/* Our copy of the program's headers (never the data), its AF_INET names on an
 * AF_INET6 socket in their v4-mapped form: what the kernel would make of them. */
#define SHIM_MMSG_STACK 32

static bool needs_mapping(int family, const struct mmsghdr *vec, unsigned vlen)
{
	for (unsigned i = 0; family == AF_INET6 && i < vlen; i++) {
		const struct msghdr *m = &vec[i].msg_hdr;
		if (m->msg_name && m->msg_namelen >= sizeof(struct sockaddr_in) &&
		    ((const struct sockaddr *)m->msg_name)->sa_family == AF_INET)
			return true;
	}
	return false;
}

int shim_sendmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags)
{
	struct shim_sock *s = shim_sock_get(fd);
	struct mmsghdr stack_v[SHIM_MMSG_STACK], *v = stack_v;
	struct sockaddr_storage stack_names[SHIM_MMSG_STACK], *names = stack_names;

	if (!s || !vec)
		return REAL(sendmmsg)(fd, vec, vlen, flags);
	if (vlen > SHIM_MMSG_MAX)
		vlen = SHIM_MMSG_MAX;
	if (!needs_mapping(family_of(s), vec, vlen))
		return sendmmsg_as_given(fd, vec, vlen, flags);
	if (vlen > SHIM_MMSG_STACK) {
		v = malloc(vlen * sizeof(*v));
		names = malloc(vlen * sizeof(*names));
		if (!v || !names) {
			free(v);
			free(names);
			errno = ENOMEM;
			return -1;
		}
	}
	memcpy(v, vec, vlen * sizeof(*v));
	for (unsigned i = 0; i < vlen; i++) {
		struct msghdr *m = &v[i].msg_hdr;
		socklen_t nl = m->msg_namelen;
		if (shim_as_family(AF_INET6, m->msg_name, &nl, &names[i]) != m->msg_name) {
			m->msg_name = &names[i];
			m->msg_namelen = nl;
		}
	}
	int n = sendmmsg_as_given(fd, v, vlen, flags);
	int err = errno;
	for (int i = 0; i < n; i++)
		vec[i].msg_len = v[i].msg_len;
	if (v != stack_v) {
		free(v);
		free(names);
	}
	errno = err;
	return n;
}

/* No destination: only a running rendezvous or a failed one matter. */
static int before_plain_send(int fd, struct shim_sock *s)
{
	struct sockaddr_storage rd;
	socklen_t rl;
	bool rewrite;

	if (pass(s, false))
		return 0;
	return prepare(fd, NULL, 0, false, NULL, &rewrite, &rd, &rl);
}

/* write/writev on a designated socket: the rendezvous (or its error) first.
 * 0: write it; 1: a flow punching takes it (lost, as UDP may lose it); -1 + errno. */
static int plain_send_check(int fd)
{
	struct shim_sock *s = shim_sock_get(fd);
	int rc = s ? before_plain_send(fd, s) : 0;

	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return rc == 1;
}

ssize_t shim_write(int fd, const void *buf, size_t len)
{
	int c = plain_send_check(fd);
	struct shim_sock *s;

	if (c < 0)
		return -1;
	if (c)
		return (ssize_t)len;
	ssize_t n = REAL(write)(fd, buf, len);
	if (n < 0 && (s = shim_sock_get(fd)) != NULL)
		return lost6(s, n, len);
	return n;
}

ssize_t shim_writev(int fd, const struct iovec *iov, int iovcnt)
{
	int c = plain_send_check(fd);

	struct shim_sock *s;

	if (c == 1 && iovcnt >= 0)
		return (ssize_t)iov_total(iov, (size_t)iovcnt);
	if (c < 0)
		return -1;
	ssize_t n = REAL(writev)(fd, iov, iovcnt);
	if (n < 0 && iovcnt >= 0 && (s = shim_sock_get(fd)) != NULL)
		return lost6(s, n, iov_total(iov, (size_t)iovcnt));
	return n;
}

/* A signal handler that sends while its thread holds the table lock (the guard is
 * up) bypasses the shim: a datagram to the placeholder would then go to the
 * server's host in clear.  Refuse it as a full send buffer would; other sends pass.
 * Lock-free and without resolving names: async-signal-safe. */
bool shim_refuse_reentry(int fd, const struct sockaddr *dest, socklen_t len)
{
	struct sockaddr_in v4;

	if (!shim_tracked(fd) || !dest || !shim_to_v4(dest, len, &v4))
		return false;
	const struct shim_sock *s =
		__atomic_load_n((struct shim_sock **)&shim_fdtab[fd], __ATOMIC_ACQUIRE);
	const struct shim_config *cfg = shim_config_get();
	struct shim_host *h = s ? shim_host_of(s) : NULL;
	if (h) {
		/* A host's peer, raw to its alias: refused when that is not where it is. */
		struct sockaddr_storage real;
		socklen_t rl;
		struct sockaddr_in r;
		return shim_host_out(h, AF_INET, dest, len, &real, &rl) &&
		       shim_to_v4((struct sockaddr *)&real, rl, &r) &&
		       (r.sin_addr.s_addr != v4.sin_addr.s_addr || r.sin_port != v4.sin_port);
	}
	/* A listener's alias for its peer, once the peer has moved (recovery, relay):
	 * raw, it would go to the peer's old address. */
	if (s && __atomic_load_n(&s->alias_ph, __ATOMIC_ACQUIRE) &&
	    v4.sin_addr.s_addr == __atomic_load_n(&s->ph.sin_addr.s_addr, __ATOMIC_RELAXED) &&
	    v4.sin_port == __atomic_load_n(&s->ph.sin_port, __ATOMIC_RELAXED))
		return v4.sin_addr.s_addr !=
			       __atomic_load_n(&s->peer.sin_addr.s_addr, __ATOMIC_RELAXED) ||
		       v4.sin_port != __atomic_load_n(&s->peer.sin_port, __ATOMIC_RELAXED);
	if (cfg->have_peer)
		return v4.sin_addr.s_addr == cfg->peer_ph.sin_addr.s_addr &&
		       v4.sin_port == cfg->peer_ph.sin_port;
	/* not resolved yet: we cannot tell, so refuse */
	return !cfg->have_server_ip || v4.sin_addr.s_addr == cfg->server_ip.s_addr;
}

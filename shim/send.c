/* send.c - the sending calls.  A send to the placeholder designates the socket (the
 * call blocks through the rendezvous) and afterwards goes to the real peer; every
 * other send on a socket that is not failed goes straight to the kernel. */
#include "shim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Lock-free: nothing to do for this call.  Sends on a punched path are counted for
 * the dead-path rule (keeper.c); a socket that is not designated pays nothing. */
static bool pass(struct shim_sock *s, bool is_ph)
{
	int st = shim_state_of(s);

	if (st == SHIM_WON)
		shim_count(&s->tx_count, 1);
	return (st == SHIM_CANDIDATE || st == SHIM_WON) && !is_ph;
}

static int prepare(int fd, const struct sockaddr *dest, socklen_t dest_len, bool is_ph,
		   const struct sockaddr_in *ph, bool *rewrite, struct sockaddr_storage *rd,
		   socklen_t *rl)
{
	shim_lock();
	int rc = shim_before_send(fd, dest, dest_len, is_ph, ph, rewrite, rd, rl);
	shim_unlock();
	return rc;
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
	bool is_ph = dest && shim_is_placeholder(shim_config_get(), dest, dest_len, &ph);
	if (pass(s, is_ph))
		return REAL(sendto)(fd, buf, len, flags, dest, dest_len);
	struct sockaddr_in peer;
	int family;
	if (shim_read_won(s, &peer, NULL, &family) && dest->sa_family == family) {
		/* Punched, to the placeholder: the peer instead, without the lock. */
		rl = shim_to_family(family, &peer, &rd);
		return REAL(sendto)(fd, buf, len, flags, (struct sockaddr *)&rd, rl);
	}
	int rc = prepare(fd, dest, dest_len, is_ph, &ph, &rewrite, &rd, &rl);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	if (rewrite)
		return REAL(sendto)(fd, buf, len, flags, (struct sockaddr *)&rd, rl);
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
	bool is_ph = msg->msg_name &&
		     shim_is_placeholder(shim_config_get(), msg->msg_name, msg->msg_namelen, &ph);
	if (pass(s, is_ph))
		return REAL(sendmsg)(fd, msg, flags);
	int rc = prepare(fd, msg->msg_name, msg->msg_namelen, is_ph, &ph, &rewrite, &rd, &rl);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	if (!rewrite)
		return REAL(sendmsg)(fd, msg, flags);
	struct msghdr m = *msg;
	m.msg_name = &rd;
	m.msg_namelen = rl;
	return REAL(sendmsg)(fd, &m, flags);
}

#define SHIM_MMSG_MAX 1024 /* UIO_MAXIOV: the kernel sends at most this many per call */

int shim_sendmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags)
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
	const struct shim_config *cfg = shim_config_get();
	for (unsigned i = 0; i < vlen; i++) {
		const struct msghdr *m = &vec[i].msg_hdr;
		if (m->msg_name &&
		    shim_is_placeholder(cfg, m->msg_name, m->msg_namelen, is_ph ? &any : &ph)) {
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
		if (m->msg_name && shim_is_placeholder(cfg, m->msg_name, m->msg_namelen, &any)) {
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

/* write/writev on a designated socket: the rendezvous (or its error) first. */
static int plain_send_allowed(int fd)
{
	struct shim_sock *s = shim_sock_get(fd);
	int rc = s ? before_plain_send(fd, s) : 0;

	if (rc < 0) {
		errno = -rc;
		return 0;
	}
	return 1;
}

ssize_t shim_write(int fd, const void *buf, size_t len)
{
	return plain_send_allowed(fd) ? REAL(write)(fd, buf, len) : -1;
}

ssize_t shim_writev(int fd, const struct iovec *iov, int iovcnt)
{
	return plain_send_allowed(fd) ? REAL(writev)(fd, iov, iovcnt) : -1;
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
	const struct shim_config *cfg = shim_config_get();
	if (cfg->have_peer)
		return v4.sin_addr.s_addr == cfg->peer_ph.sin_addr.s_addr &&
		       v4.sin_port == cfg->peer_ph.sin_port;
	/* not resolved yet: we cannot tell, so refuse */
	return !cfg->have_server_ip || v4.sin_addr.s_addr == cfg->server_ip.s_addr;
}

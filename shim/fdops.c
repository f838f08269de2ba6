/* fdops.c - the calls that create, name, copy and close descriptors: they keep the
 * table in step with the kernel's descriptor table, record what a swap must carry
 * over (bound address, socket options, epoll registrations), and designate on
 * connect() to the placeholder or bind() to N4_LISTEN. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static bool is_udp_inet(int domain, int type, int protocol)
{
	return (domain == AF_INET || domain == AF_INET6) &&
	       (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_DGRAM &&
	       (protocol == 0 || protocol == IPPROTO_UDP);
}

int shim_socket(int domain, int type, int protocol)
{
	int fd = REAL(socket)(domain, type, protocol);

	if (fd < 0)
		return fd;
	if (is_udp_inet(domain, type, protocol) && shim_config_get()->active) {
		shim_lock();
		int rc = shim_sock_track(fd, domain, type);
		shim_unlock();
		if (rc < 0) {
			shim_guard++;
			n4_warn("fd %d not followed: %s", fd, strerror(-rc));
			shim_guard--;
		}
	} else if (shim_tracked(fd)) {
		shim_lock();
		shim_sock_detach(fd); /* the number was closed behind our back */
		shim_unlock();
	}
	return fd;
}

static uint16_t port_of(const struct sockaddr *addr, socklen_t len)
{
	if (!addr)
		return 0;
	if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		return ntohs(((const struct sockaddr_in *)addr)->sin_port);
	if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
	return 0;
}

static void remember_bind(struct shim_sock *s, const struct sockaddr *addr, socklen_t len)
{
	if (len <= sizeof(s->bound_addr)) {
		memcpy(&s->bound_addr, addr, len);
		s->bound_len = len;
	}
	s->prog_bound = true;
}

int shim_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	const struct shim_config *cfg = shim_config_get();
	struct shim_sock *t = shim_sock_get(fd);
	int rc;

	if (cfg->listen_port && addr && t && addr->sa_family == t->family &&
	    port_of(addr, len) == cfg->listen_port) {
		shim_lock();
		struct shim_sock *s = shim_sock_get(fd);
		if (!s || shim_state_of(s) != SHIM_CANDIDATE) {
			shim_unlock();
			return REAL(bind)(fd, addr, len);
		}
		remember_bind(s, addr, len);
		rc = shim_designate(fd, s, SHIM_BY_BIND, cfg->have_peer ? &cfg->peer_ph : NULL,
				    addr, len);
		if (rc < 0)
			s->prog_bound = false;
		shim_unlock();
		if (rc < 0) {
			errno = -rc;
			return -1;
		}
		return 0;
	}
	rc = REAL(bind)(fd, addr, len);
	if (rc == 0) {
		shim_lock();
		struct shim_sock *s = shim_sock_get(fd);
		if (s)
			remember_bind(s, addr, len);
		shim_unlock();
	}
	return rc;
}

int shim_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_in ph;
	bool is_ph = addr && shim_is_placeholder(shim_config_get(), addr, len, &ph);
	struct sockaddr_storage real;
	socklen_t real_len = 0;
	int rc;

	shim_lock();
	for (;;) {
		struct shim_sock *s = shim_sock_get(fd);
		if (!s)
			break;
		int st = shim_state_of(s);
		if (st == SHIM_PENDING) {
			rc = shim_await(fd, s,
					s->listener ? shim_now_ms() +
							      shim_config_get()->client.timeout_ms
						    : 0);
			if (rc < 0 && rc != -EBADF) {
				shim_unlock();
				errno = -rc;
				return -1;
			}
			continue;
		}
		if (!is_ph || addr->sa_family != s->family) {
			/* Elsewhere, or AF_UNSPEC: no longer talking to the placeholder. */
			s->connected_ph = false;
			break;
		}
		if (st == SHIM_FAILED) {
			rc = -s->err;
			shim_unlock();
			errno = -rc;
			return -1;
		}
		if (st == SHIM_CANDIDATE) {
			s->connected_ph = true;
			rc = shim_designate(fd, s, SHIM_BY_CONNECT, &ph, NULL, 0);
			if (rc < 0) {
				/* EINTR: the rendezvous goes on, as a TCP connect would */
				if (shim_sock_get(fd) == s && rc != -EINTR)
					s->connected_ph = false;
				shim_unlock();
				errno = -rc;
				return -1;
			}
			shim_unlock();
			return 0;
		}
		/* Already punched: connect to the real peer behind the placeholder. */
		struct sockaddr_in peer = s->peer;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&real;
		memset(&real, 0, sizeof(real));
		if (s->family == AF_INET6) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = peer.sin_port;
			a6->sin6_addr.s6_addr[10] = 0xff;
			a6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&a6->sin6_addr.s6_addr[12], &peer.sin_addr, 4);
			real_len = sizeof(*a6);
		} else {
			memcpy(&real, &peer, sizeof(peer));
			real_len = sizeof(peer);
		}
		s->connected_ph = true;
		break;
	}
	shim_unlock();
	if (real_len)
		return REAL(connect)(fd, (struct sockaddr *)&real, real_len);
	return REAL(connect)(fd, addr, len);
}

int shim_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	int rc = REAL(setsockopt)(fd, level, name, val, len);

	if (rc == 0) {
		shim_lock();
		struct shim_sock *s = shim_sock_get(fd);
		if (s)
			shim_sock_remember_opt(s, level, name, val, len);
		shim_unlock();
	}
	return rc;
}

int shim_getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	socklen_t cap = len ? *len : 0;
	int rc = REAL(getpeername)(fd, addr, len);

	if (rc == 0 && cap) {
		shim_lock();
		struct shim_sock *s = shim_sock_get(fd);
		if (s && s->connected_ph)
			shim_report_addr(s, addr, len, cap);
		shim_unlock();
	}
	return rc;
}

/* A socket we moved to the winning port still answers with the address the program
 * bound: programs compare it with what they asked for. */
int shim_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	socklen_t cap = len ? *len : 0;
	int rc = REAL(getsockname)(fd, addr, len);

	if (rc == 0 && cap && addr) {
		shim_lock();
		struct shim_sock *s = shim_sock_get(fd);
		if (s && (shim_state_of(s) == SHIM_WON || shim_state_of(s) == SHIM_PENDING) &&
		    s->bound_len && s->bound_addr.ss_family == addr->sa_family) {
			memcpy(addr, &s->bound_addr, s->bound_len < cap ? s->bound_len : cap);
			*len = s->bound_len;
		}
		shim_unlock();
	}
	return rc;
}

int shim_close(int fd)
{
	shim_lock();
	shim_sock_detach(fd);
	shim_unlock();
	return REAL(close)(fd);
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int shim_close_range(unsigned first, unsigned last, int flags)
{
	if (!shim_real.close_range && (shim_real_init(), !shim_real.close_range)) {
		errno = ENOSYS;
		return -1;
	}
	int rc = shim_real.close_range(first, last, flags);
	if (rc == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
		shim_lock();
		int high = shim_fd_high();
		for (long fd = first; fd <= (long)last && fd <= high; fd++)
			shim_sock_detach((int)fd);
		shim_unlock();
	}
	return rc;
}

/* 0, or -errno when the copy of a designated socket cannot be followed: then the
 * copy is closed again and the call fails (fail closed: an unfollowed copy would
 * send to the placeholder, the server's host, in clear). */
static int follow_dup(int oldfd, int newfd)
{
	int rc = 0;

	if (!shim_tracked(oldfd) && !shim_tracked(newfd))
		return 0;
	shim_lock();
	struct shim_sock *s = shim_sock_get(oldfd);
	if (s)
		rc = shim_sock_attach(newfd, s);
	else
		shim_sock_detach(newfd);
	shim_unlock();
	if (rc < 0)
		REAL(close)(newfd);
	return rc;
}

static int dup_result(int nfd, int rc)
{
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return nfd;
}

int shim_dup(int fd)
{
	int nfd = REAL(dup)(fd);

	if (nfd >= 0)
		return dup_result(nfd, follow_dup(fd, nfd));
	return nfd;
}

int shim_dup3(int oldfd, int newfd, int flags, bool is_dup2)
{
	int rc = is_dup2 ? REAL(dup2)(oldfd, newfd) : REAL(dup3)(oldfd, newfd, flags);

	if (rc >= 0 && oldfd != newfd)
		return dup_result(rc, follow_dup(oldfd, newfd));
	return rc;
}

int shim_fcntl(int fd, int cmd, void *arg, bool is64)
{
	int rc = is64 ? REAL(fcntl64)(fd, cmd, arg) : REAL(fcntl)(fd, cmd, arg);

	if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		return dup_result(rc, follow_dup(fd, rc));
	return rc;
}

int shim_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int rc = REAL(epoll_ctl)(epfd, op, fd, ev);

	if (rc == 0 && shim_tracked(fd)) {
		shim_lock();
		struct shim_sock *s = shim_sock_get(fd);
		if (s)
			shim_sock_remember_epoll(s, epfd, fd, op, ev);
		shim_unlock();
	}
	return rc;
}

static void atfork_prepare(void)
{
	shim_lock();
}

static void atfork_parent(void)
{
	shim_unlock();
}

static void atfork_child(void)
{
	char prefix[32];

	shim_fdtab_atfork_child();
	snprintf(prefix, sizeof(prefix), "n4shim[%d] ", (int)getpid());
	n4_log_set_prefix(prefix);
}

void shim_atfork_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

pid_t shim_fork(void)
{
	return REAL(fork)();
}

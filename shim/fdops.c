/* fdops.c - the calls that create, name, copy and close descriptors: they keep the
 * table in step with the kernel's descriptor table, record what a swap must carry
 * over (bound address, socket options, epoll registrations), and designate on
 * connect() to the placeholder or bind() to N4_LISTEN. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/* ------------------------------------------------------ the private stderr --- */

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

/* A datagram socket of ours-to-be must never receive a log line: a daemon that
 * closed stderr and then opened its UDP socket has that socket on descriptor 2. */
static bool is_inet_dgram(int fd)
{
	int domain, type;
	socklen_t len = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return false; /* not a socket at all */
	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return false;
	return (domain == AF_INET || domain == AF_INET6) && type == SOCK_DGRAM;
}

/* Duplicate stderr to a high number (programs use the low ones, and a program's
 * own dup2 onto a low number must not hit it), close-on-exec (a new image takes
 * its own).  Raw fcntl: this runs in our constructor, before dlsym is safe.  -1
 * when stderr is closed or is a UDP socket: then the shim stays silent. */
static int take_private_stderr(void)
{
	struct rlimit rl;
	long lim = 1024;

	if (is_inet_dgram(STDERR_FILENO))
		return -1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < 1024)
		lim = (long)rl.rlim_cur;
	const long mins[] = { lim - 1, lim - 16, lim / 2, 3 };
	for (unsigned i = 0; i < sizeof(mins) / sizeof(mins[0]); i++) {
		if (mins[i] < 3)
			continue;
		long fd = syscall(SYS_fcntl, STDERR_FILENO, F_DUPFD_CLOEXEC, mins[i]);
		if (fd >= 0)
			return (int)fd;
		if (errno == EBADF)
			return -1;
	}
	return -1;
}

static void log_open_once(void)
{
	int saved = errno;

	n4_log_set_fd(take_private_stderr());
	errno = saved;
}

void shim_log_open(void)
{
	pthread_once(&log_once, log_open_once);
}

/* The program closed or replaced the log's descriptor (a daemon closing every
 * descriptor, a dup2 onto it): stop writing there, then take a new copy of what
 * stderr is now (the same checks apply). */
static bool log_fd_in(long first, long last)
{
	int lfd = n4_log_get_fd();

	if (lfd < 0 || lfd < first || lfd > last)
		return false;
	n4_log_set_fd(-1);
	return true;
}

static void log_reopen(void)
{
	int saved = errno;

	n4_log_set_fd(take_private_stderr());
	errno = saved;
}

/* ------------------------------------------------- reused descriptor numbers --- */

void shim_sock_stamp(struct shim_sock *s, int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
}

/* Closes we cannot see (fclose(fdopen()) closes inside libc, syscall(SYS_close))
 * leave an entry behind; the number then names a file or another socket.  Checked
 * on the paths where the shim would act differently from libc, never on the
 * pass-through fast path.  Another inode that is still a UDP socket is taken to be
 * one the shim swapped in itself (recovery may swap without telling us): sockets
 * are created through socket(), which starts a fresh entry anyway. */
struct shim_sock *shim_sock_fresh(int fd, struct shim_sock *s)
{
	struct stat st;

	if (!s || !s->ino)
		return s;
	if (fstat(fd, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		return s;
	if (is_inet_dgram(fd)) {
		shim_sock_stamp(s, fd);
		return s;
	}
	shim_guard++;
	n4_debug("fd %d was closed behind the shim's back: no longer followed", fd);
	shim_guard--;
	shim_sock_detach(fd);
	return NULL;
}

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
		if (rc == 0)
			shim_sock_stamp(shim_sock_get(fd), fd);
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

uint16_t shim_port_of(const struct sockaddr *addr, socklen_t len)
{
	if (!addr)
		return 0;
	if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		return ntohs(((const struct sockaddr_in *)addr)->sin_port);
	if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
	return 0;
}

static void set_port(struct sockaddr *addr, socklen_t len, uint16_t port)
{
	if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		((struct sockaddr_in *)addr)->sin_port = htons(port);
	else if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		((struct sockaddr_in6 *)addr)->sin6_port = htons(port);
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
	    shim_port_of(addr, len) == cfg->listen_port) {
		shim_lock();
		struct shim_sock *s = shim_sock_fresh(fd, shim_sock_get(fd));
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
	struct sockaddr_in rph;
	if (cfg->njoin && addr && t && addr->sa_family == t->family &&
	    shim_join_port(cfg, shim_port_of(addr, len)) &&
	    shim_room_ph(cfg, shim_port_of(addr, len), &rph)) {
		/* A joiner's socket on a room port: it hears the host's broadcasts. */
		shim_lock();
		struct shim_sock *s = shim_sock_fresh(fd, shim_sock_get(fd));
		if (!s || shim_state_of(s) != SHIM_CANDIDATE) {
			shim_unlock();
			return REAL(bind)(fd, addr, len);
		}
		remember_bind(s, addr, len);
		rc = shim_room_join(fd, s, &rph, shim_port_of(addr, len), addr, len);
		if (rc < 0)
			s->prog_bound = false;
		shim_unlock();
		if (rc < 0) {
			errno = -rc;
			return -1;
		}
		return 0;
	}
	if (cfg->host_port && addr && t && addr->sa_family == t->family &&
	    shim_port_of(addr, len) == cfg->host_port) {
		shim_lock();
		struct shim_sock *s = shim_sock_fresh(fd, shim_sock_get(fd));
		if (s && shim_state_of(s) == SHIM_CANDIDATE && !s->host) {
			rc = shim_host_bind(fd, s, addr, len);
			if (rc == 0)
				remember_bind(s, addr, len);
			shim_unlock();
			return rc;
		}
		shim_unlock();
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
	struct sockaddr_storage mapped, real;
	struct shim_sock *t = shim_sock_get(fd);
	if (t)
		addr = shim_as_family(__atomic_load_n(&t->family, __ATOMIC_RELAXED), addr, &len,
				      &mapped);
	struct sockaddr_in ph;
	bool is_ph = addr && (t ? shim_names_peer(t, shim_config_get(), addr, len, &ph)
				: shim_is_placeholder(shim_config_get(), addr, len, &ph));
	socklen_t real_len = 0;
	int rc;

	shim_lock();
	for (bool checked = false;; checked = true) {
		struct shim_sock *s = shim_sock_get(fd);
		if (!checked)
			s = shim_sock_fresh(fd, s);
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
		struct shim_view v;
		shim_view_of(s, &v);
		real_len = shim_view_dest(&v, &real);
		s->connected_ph = true;
		break;
	}
	shim_unlock();
	if (real_len)
		return REAL(connect)(fd, (struct sockaddr *)&real, real_len);
	return REAL(connect)(fd, addr, len);
}

static void forget_opt(struct shim_sock *s, int level, int name)
{
	for (unsigned i = 0; i < s->nopts; i++) {
		if (s->opts[i].level != level || s->opts[i].name != name)
			continue;
		free(s->opts[i].heap);
		memmove(&s->opts[i], &s->opts[i + 1], (s->nopts - i - 1) * sizeof(s->opts[0]));
		s->nopts--;
		memset(&s->opts[s->nopts], 0, sizeof(s->opts[0])); /* its heap moved down */
		return;
	}
}

/* Lock held.  A classic filter program is given by pointer: replaying the
 * caller's pointer at swap time would read memory long since reused (or freed).
 * Keep our own copy of the instructions and point the remembered option at it. */
static void remember_filter(struct shim_sock *s, int fd, int name, const void *val, socklen_t len)
{
	const struct sock_fprog *prog = val;
	struct sock_filter *copy;

	forget_opt(s, SOL_SOCKET, name);
	if (!prog || len < sizeof(*prog) || !prog->filter || prog->len == 0 ||
	    !(copy = malloc(prog->len * sizeof(*copy)))) {
		n4_warn("fd %d: socket filter not remembered: a punched socket will not have it",
			fd);
		return;
	}
	memcpy(copy, prog->filter, prog->len * sizeof(*copy));
	struct sock_fprog mine = { .len = prog->len, .filter = copy };
	unsigned before = s->nopts;
	shim_sock_remember_opt(s, SOL_SOCKET, name, &mine, sizeof(mine));
	if (s->nopts == before) { /* the table of options is full */
		free(copy);
		n4_warn("fd %d: socket filter not remembered: a punched socket will not have it",
			fd);
		return;
	}
	s->opts[s->nopts - 1].heap = copy;
}

const struct sock_fprog *shim_sock_prog_filter(const struct shim_sock *s)
{
	for (unsigned i = 0; i < s->nopts; i++)
		if (s->opts[i].level == SOL_SOCKET && s->opts[i].name == SO_ATTACH_FILTER &&
		    s->opts[i].heap)
			return (const struct sock_fprog *)(const void *)s->opts[i].val;
	return NULL;
}

/* Punched, with our filter in the kernel: the program's setsockopt just replaced it;
 * put ours back, combined with what the program now has. */
static void refilter(int fd, struct shim_sock *s)
{
	if (shim_state_of(s) != SHIM_WON || s->filter)
		return;
	struct shim_filter_state st;
	shim_filter_state_of(s, NULL, &st);
	if (shim_filter_attach(fd, shim_config_get()->ident, &st, NULL, shim_sock_prog_filter(s)) <
	    0)
		s->filter = true; /* peek instead */
}

int shim_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	int rc = REAL(setsockopt)(fd, level, name, val, len);

	if (rc != 0)
		return rc;
	shim_lock();
	struct shim_sock *s = shim_sock_fresh(fd, shim_sock_get(fd));
	shim_guard++;
	if (!s) {
		/* not ours (any more) */
	} else if (level == SOL_SOCKET &&
		   (name == SO_ATTACH_FILTER || name == SO_ATTACH_REUSEPORT_CBPF)) {
		remember_filter(s, fd, name, val, len);
		if (name == SO_ATTACH_FILTER)
			refilter(fd, s);
	} else if (level == SOL_SOCKET && name == SO_DETACH_FILTER) {
		/* SO_DETACH_BPF is the same number: whatever was attached is gone. */
		forget_opt(s, SOL_SOCKET, SO_ATTACH_FILTER);
		forget_opt(s, SOL_SOCKET, SO_ATTACH_BPF);
		refilter(fd, s);
	} else if (level == SOL_SOCKET &&
		   (name == SO_ATTACH_BPF || name == SO_ATTACH_REUSEPORT_EBPF)) {
		/* The value is a descriptor of the program's: by swap time it may be closed
		 * or another file.  Not replayed; said once here. */
		forget_opt(s, level, name);
		n4_warn("fd %d: eBPF program (option %d) is not carried over to a punched socket",
			fd, name);
	} else {
		shim_sock_remember_opt(s, level, name, val, len);
		/* Over a direct IPv6 path, an IPv4 option counts through its equivalent. */
		if (shim_state_of(s) == SHIM_WON && s->path6)
			shim_opt_as_v6(fd, level, name, val, len);
	}
	shim_guard--;
	shim_unlock();
	return rc;
}

int shim_getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	socklen_t cap = len ? *len : 0;
	struct shim_sock *t = shim_sock_get(fd);

	if (t && __atomic_load_n(&t->path6, __ATOMIC_RELAXED) && addr && len) {
		/* A direct IPv6 path's socket: its peer as the program knows it, never
		 * an IPv6 address into an IPv4 program's buffer. */
		struct sockaddr_storage got;
		socklen_t glen = sizeof(got);
		int r = REAL(getpeername)(fd, (struct sockaddr *)&got, &glen);
		if (r < 0)
			return r;
		shim_lock();
		struct shim_sock *s = shim_sock_get(fd);
		struct shim_view v;
		if (s) {
			shim_view_of(s, &v);
			v.have_ph = v.have_ph && s->connected_ph;
		} else {
			memset(&v, 0, sizeof(v));
			v.family = AF_INET6;
		}
		shim_view_report(&v, &got, glen, addr, len, cap);
		shim_unlock();
		return 0;
	}
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
	struct shim_sock *t = shim_sock_get(fd);

	if (t && __atomic_load_n(&t->path6, __ATOMIC_RELAXED) && addr && len) {
		/* A direct IPv6 path's socket: the program's family and port (what it
		 * bound, or what it had when the path moved under it), never our
		 * global IPv6 address. */
		struct sockaddr_storage got;
		socklen_t glen = sizeof(got);
		int r = REAL(getsockname)(fd, (struct sockaddr *)&got, &glen);
		if (r < 0)
			return r;
		shim_lock();
		struct shim_sock *s = shim_sock_get(fd);
		if (s && s->path6 && s->bound_len) {
			memcpy(&got, &s->bound_addr, s->bound_len);
			glen = s->bound_len;
		}
		shim_unlock();
		memcpy(addr, &got, glen < cap ? glen : cap);
		*len = glen;
		return 0;
	}
	int rc = REAL(getsockname)(fd, addr, len);
	uint16_t real_port = rc == 0 && addr && len ? shim_port_of(addr, *len) : 0;

	if (rc == 0 && cap && addr) {
		shim_lock();
		struct shim_sock *s = shim_sock_get(fd);
		if (s && (shim_state_of(s) == SHIM_WON || shim_state_of(s) == SHIM_PENDING) &&
		    s->bound_len && s->bound_addr.ss_family == addr->sa_family) {
			memcpy(addr, &s->bound_addr, s->bound_len < cap ? s->bound_len : cap);
			*len = s->bound_len;
		}
		shim_unlock();
		/* Bound to port 0 ("any"): the port it really has is the answer (only
		 * into a buffer that holds the whole address). */
		socklen_t have = *len < cap ? *len : cap;
		if (real_port && shim_port_of(addr, have) == 0)
			set_port(addr, have, real_port);
	}
	return rc;
}

int shim_close(int fd)
{
	bool log = log_fd_in(fd, fd);

	shim_lock();
	shim_sock_detach(fd);
	shim_unlock();
	int rc = REAL(close)(fd);
	if (log) {
		int err = errno;
		log_reopen();
		errno = err;
	}
	return rc;
}

void shim_closefrom(int lowfd)
{
	long first = lowfd > 0 ? lowfd : 0;
	bool log = log_fd_in(first, LONG_MAX);

	shim_real_init();
	if (shim_real.closefrom)
		shim_real.closefrom((int)first);
	else
		(void)syscall(SYS_close_range, (unsigned)first, ~0U, 0);
	shim_lock();
	int high = shim_fd_high();
	for (long fd = first; fd <= high; fd++)
		shim_sock_detach((int)fd);
	shim_unlock();
	if (log)
		log_reopen();
}

/* dup2/dup3 onto the log's private descriptor: the program's file takes that number,
 * so the log stops writing there and takes a new copy of stderr. */
int shim_dup_over(int oldfd, int newfd, int flags, bool is_dup2)
{
	bool log = oldfd != newfd && log_fd_in(newfd, newfd);
	int rc = shim_dup3(oldfd, newfd, flags, is_dup2);
	int err = errno;

	if (log) {
		/* Failed before anything happened (a bad oldfd): the number is still ours. */
		if (rc < 0 && err == EBADF && (int)syscall(SYS_fcntl, newfd, F_GETFD) >= 0)
			n4_log_set_fd(newfd);
		else
			log_reopen();
	}
	errno = err;
	return rc;
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
	int log_fd_saved = n4_log_get_fd();
	bool log = !(flags & CLOSE_RANGE_CLOEXEC) && log_fd_in(first, last);
	int rc = shim_real.close_range(first, last, flags);
	int err = errno;
	if (rc == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
		shim_lock();
		int high = shim_fd_high();
		for (long fd = first; fd <= (long)last && fd <= high; fd++)
			shim_sock_detach((int)fd);
		shim_unlock();
	}
	if (log && rc < 0)
		n4_log_set_fd(log_fd_saved);
	else if (log)
		log_reopen();
	errno = err;
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

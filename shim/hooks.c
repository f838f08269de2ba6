/* hooks.c - the interposed libc names, and nothing else is exported (exports.map).
 * Each hook is two lines: a descriptor that is not in the table, or a call made
 * by the shim itself (libn4 runs inside us and its socket calls land here too),
 * goes straight to the real function; the rest goes to shim_<name>. */
#include "shim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

#define HOOK __attribute__((visibility("default")))
#define OURS(fd) (!shim_guard && shim_tracked(fd))

/* glibc declares the sockaddr arguments as transparent unions under _GNU_SOURCE. */
#if defined(__USE_GNU) && !defined(__cplusplus)
#define SA(a) ((a).__sockaddr__)
#else
#define SA(a) (a)
#endif

/* At load, before the program's main can close or reuse descriptor 2: take the
 * shim's private copy of stderr.  Only a few system calls, no dlsym; and only where
 * the shim has something to do (config.c reads the same variables), so that other
 * programs run with the library keep their descriptor table as it was. */
__attribute__((constructor)) static void shim_load(void)
{
	if (getenv("N4_SERVER") || getenv("N4_PEER") || getenv("N4_LISTEN"))
		shim_log_open();
}

HOOK int socket(int domain, int type, int protocol)
{
	if (shim_guard)
		return REAL(socket)(domain, type, protocol);
	return shim_socket(domain, type, protocol);
}

HOOK int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	if (!OURS(fd))
		return REAL(bind)(fd, SA(addr), len);
	return shim_bind(fd, SA(addr), len);
}

HOOK int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	if (!OURS(fd))
		return REAL(connect)(fd, SA(addr), len);
	return shim_connect(fd, SA(addr), len);
}

HOOK int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	if (!OURS(fd))
		return REAL(setsockopt)(fd, level, name, val, len);
	return shim_setsockopt(fd, level, name, val, len);
}

HOOK ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	if (!OURS(fd))
		return REAL(send)(fd, buf, len, flags);
	return shim_sendto(fd, buf, len, flags, NULL, 0);
}

/* Inside the shim (or a handler interrupting it): never to the placeholder. */
#define REENTRY_REFUSED(fd, dest, len) \
	(shim_guard && shim_refuse_reentry(fd, dest, len) && (errno = EAGAIN, 1))

HOOK ssize_t sendto(int fd, const void *buf, size_t len, int flags, __CONST_SOCKADDR_ARG dest,
		    socklen_t dest_len)
{
	if (REENTRY_REFUSED(fd, SA(dest), dest_len))
		return -1;
	if (!OURS(fd))
		return REAL(sendto)(fd, buf, len, flags, SA(dest), dest_len);
	return shim_sendto(fd, buf, len, flags, SA(dest), dest_len);
}

HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (msg && REENTRY_REFUSED(fd, msg->msg_name, msg->msg_namelen))
		return -1;
	if (!OURS(fd))
		return REAL(sendmsg)(fd, msg, flags);
	return shim_sendmsg(fd, msg, flags);
}

HOOK int sendmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags)
{
	if (vec && vlen && REENTRY_REFUSED(fd, vec[0].msg_hdr.msg_name, vec[0].msg_hdr.msg_namelen))
		return -1;
	if (!OURS(fd))
		return REAL(sendmmsg)(fd, vec, vlen, flags);
	return shim_sendmmsg(fd, vec, vlen, flags);
}

HOOK ssize_t write(int fd, const void *buf, size_t len)
{
	if (!OURS(fd)) {
		shim_real_init();
		if (!shim_real.write) /* only while dlsym runs */
			return syscall(SYS_write, fd, buf, len);
		return shim_real.write(fd, buf, len);
	}
	return shim_write(fd, buf, len);
}

HOOK ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	if (!OURS(fd))
		return REAL(writev)(fd, iov, iovcnt);
	return shim_writev(fd, iov, iovcnt);
}

HOOK ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	if (!OURS(fd))
		return REAL(recv)(fd, buf, len, flags);
	return shim_recvfrom(fd, buf, len, flags, NULL, NULL);
}

HOOK ssize_t recvfrom(int fd, void *buf, size_t len, int flags, __SOCKADDR_ARG from,
		      socklen_t *from_len)
{
	if (!OURS(fd))
		return REAL(recvfrom)(fd, buf, len, flags, SA(from), from_len);
	return shim_recvfrom(fd, buf, len, flags, SA(from), from_len);
}

HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (!OURS(fd))
		return REAL(recvmsg)(fd, msg, flags);
	return shim_recvmsg(fd, msg, flags);
}

HOOK int recvmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags, struct timespec *timeout)
{
	if (!OURS(fd))
		return REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
	return shim_recvmmsg(fd, vec, vlen, flags, timeout);
}

HOOK ssize_t read(int fd, void *buf, size_t len)
{
	if (!OURS(fd)) {
		shim_real_init();
		if (!shim_real.read) /* only while dlsym runs */
			return syscall(SYS_read, fd, buf, len);
		return shim_real.read(fd, buf, len);
	}
	return shim_read(fd, buf, len);
}

HOOK ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	if (!OURS(fd)) {
		shim_real_init();
		if (!shim_real.readv) /* only while dlsym runs */
			return syscall(SYS_readv, fd, iov, iovcnt);
		return shim_real.readv(fd, iov, iovcnt);
	}
	return shim_readv(fd, iov, iovcnt);
}

/* Fortified callers (_FORTIFY_SOURCE) import these instead of recv/recvfrom; the
 * real ones abort on len > buflen, so hand those over unchanged. */
HOOK ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (!OURS(fd) || len > buflen)
		return REAL(recv_chk)(fd, buf, len, buflen, flags);
	return shim_recvfrom(fd, buf, len, flags, NULL, NULL);
}

HOOK ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
			    struct sockaddr *from, socklen_t *from_len)
{
	if (!OURS(fd) || len > buflen)
		return REAL(recvfrom_chk)(fd, buf, len, buflen, flags, from, from_len);
	return shim_recvfrom(fd, buf, len, flags, from, from_len);
}

HOOK ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (!OURS(fd) || len > buflen) {
		shim_real_init();
		if (!shim_real.read_chk) { /* only while dlsym runs: what the real one does */
			if (len > buflen)
				abort();
			return syscall(SYS_read, fd, buf, len);
		}
		return shim_real.read_chk(fd, buf, len, buflen);
	}
	return shim_read(fd, buf, len);
}

HOOK int getpeername(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	if (!OURS(fd))
		return REAL(getpeername)(fd, SA(addr), len);
	return shim_getpeername(fd, SA(addr), len);
}

HOOK int getsockname(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	if (!OURS(fd))
		return REAL(getsockname)(fd, SA(addr), len);
	return shim_getsockname(fd, SA(addr), len);
}

/* The log's private descriptor also goes through shim_close: the program closing
 * it must not leave the log writing to whatever gets that number next. */
HOOK int close(int fd)
{
	if (!OURS(fd) && (shim_guard || fd != n4_log_get_fd())) {
		shim_real_init();
		if (!shim_real.close) /* only while dlsym runs */
			return (int)syscall(SYS_close, fd);
		return shim_real.close(fd);
	}
	return shim_close(fd);
}

HOOK int close_range(unsigned first, unsigned last, int flags)
{
	if (shim_guard)
		return (int)syscall(SYS_close_range, first, last, flags);
	return shim_close_range(first, last, flags);
}

/* glibc's closefrom() closes with the close_range system call, past our hooks. */
HOOK void closefrom(int lowfd)
{
	if (shim_guard) {
		(void)syscall(SYS_close_range, lowfd > 0 ? (unsigned)lowfd : 0U, ~0U, 0);
		return;
	}
	shim_closefrom(lowfd);
}

HOOK int dup(int fd)
{
	if (!OURS(fd))
		return REAL(dup)(fd);
	return shim_dup(fd);
}

/* dup2/dup3/F_DUPFD also matter when the target number is stale in the table. */
HOOK int dup2(int oldfd, int newfd)
{
	if (shim_guard)
		return REAL(dup2)(oldfd, newfd);
	return shim_dup_over(oldfd, newfd, 0, true);
}

HOOK int dup3(int oldfd, int newfd, int flags)
{
	if (shim_guard)
		return REAL(dup3)(oldfd, newfd, flags);
	return shim_dup_over(oldfd, newfd, flags, false);
}

HOOK int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *); /* as glibc does: int or pointer, one register */
	va_end(ap);
	if (!OURS(fd))
		return REAL(fcntl)(fd, cmd, arg);
	return shim_fcntl(fd, cmd, arg, false);
}

HOOK int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (!OURS(fd))
		return REAL(fcntl64)(fd, cmd, arg);
	return shim_fcntl(fd, cmd, arg, true);
}

HOOK int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	if (!OURS(fd))
		return REAL(epoll_ctl)(epfd, op, fd, ev);
	return shim_epoll_ctl(epfd, op, fd, ev);
}

HOOK pid_t fork(void)
{
	return shim_fork();
}

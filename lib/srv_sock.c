/* srv_sock.c - socket helpers (srv_sock.h).  Layer: below the transport; knows no
 * server, connection or message.  May call: the C library, log.c, loop.c's clock. */
#include "srv_sock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

void n4_sock_reset_on_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void n4_sock_close_reset(int fd)
{
	n4_sock_reset_on_close(fd);
	close(fd);
}

int n4_sock_open(const union n4_sa *addr, int type, bool dual)
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

uint64_t n4_sock_rx_time_ms(const struct msghdr *mh)
{
	uint64_t now = n4_now_ms();
	struct timespec real;

	for (const struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
	     cm = CMSG_NXTHDR((struct msghdr *)mh, (struct cmsghdr *)cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS ||
		    cm->cmsg_len < CMSG_LEN(sizeof(struct timespec)))
			continue;
		struct timespec ts;
		memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
		if (clock_gettime(CLOCK_REALTIME, &real))
			return now;
		int64_t age_ms = ((int64_t)real.tv_sec - (int64_t)ts.tv_sec) * 1000 +
				 ((int64_t)real.tv_nsec - (int64_t)ts.tv_nsec) / 1000000;
		/* A clock step between the two readings: trust our own clock. */
		if (age_ms < 0 || (uint64_t)age_ms > now || age_ms > 10000)
			return now;
		return now - (uint64_t)age_ms;
	}
	return now;
}

static rlim_t nr_open(void)
{
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");
	unsigned long long v = 0;

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v ? (rlim_t)v : 1048576;
}

unsigned long long n4_sock_raise_fd_limit(unsigned long long want_fds, unsigned long long *was)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)want_fds;

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		*was = 1024;
		return 1024;
	}
	*was = rl.rlim_cur;
	if (want > nr_open())
		want = nr_open();
	if (want > rl.rlim_max) {
		struct rlimit up = { .rlim_cur = want, .rlim_max = want };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < want) {
		rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	return rl.rlim_cur;
}

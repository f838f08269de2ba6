/* server_limits.c - admission and limits: each new TCP connection is admitted
 * (capacity, per-source cap and rate, via ipcap.c) or reset, descriptors are raised to
 * what the clients need and shed when they run out. */
#include "n4.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include "log.h"
#include "metrics.h"
#include "server_int.h"

/* A new TCP connection: admit it (capacity, per-source cap and rate) or reset it. */
int n4_srv_conn_admit(struct n4_server *s, int fd, const union n4_sa *a)
{
	struct n4_ipkey src;
	char b[64];
	int err = 0;

	n4_ipkey_from_sa(a, &src);
	if (s->draining) {
		s->rejects[REJ_SHUTDOWN]++;
		err = -ESHUTDOWN;
	} else if (s->nclients >= s->max_clients) {
		s->rejects[REJ_FULL]++;
		n4_warn("%s: server full (%u clients), refused", n4_sa_str(a, b, sizeof(b)),
			s->nclients);
		err = -ENOSPC;
	} else if ((err = n4_ipcap_admit(s->ipcap, &src, n4_now_ms())) != 0) {
		enum reject r = err == -EMFILE ? REJ_PER_IP : err == -EAGAIN ? REJ_RATE : REJ_FULL;
		s->rejects[r]++;
		n4_debug("%s: refused (%s)", n4_sa_str(a, b, sizeof(b)), n4_srv_reject_names[r]);
	}
	if (err) {
		n4_srv_close_reset(fd);
		return err;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		n4_ipcap_release(s->ipcap, &src, n4_now_ms());
		s->rejects[REJ_FULL]++;
		n4_srv_close_reset(fd);
		return -ENOMEM;
	}
	c->srv = s;
	c->tcp_addr = *a;
	c->src = src;
	struct sockaddr_in v4;
	if (n4_sa_to_v4(a, &v4))
		c->pc.ip = v4.sin_addr.s_addr;
	else
		c->pc.tcp_v6 = true;
	c->pc.owner = c;
	c->io = (struct n4_io){ .fd = fd, .cb = n4_srv_conn_event, .arg = c };
	/* READY and PEERINFO are tiny and latency is the point: never let Nagle
	 * hold a PEERINFO behind an unacknowledged READY. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((err = n4_loop_add(s->loop, &c->io, EPOLLIN | EPOLLRDHUP)) != 0) {
		n4_ipcap_release(s->ipcap, &src, n4_now_ms());
		n4_srv_close_reset(fd);
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
	n4_srv_arm_deadline(c, s->cfg.hello_timeout_ms);
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
		n4_srv_close_reset(fd);
	}
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void n4_srv_accept_ready(n4_loop *loop, struct n4_io *io, uint32_t events)
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

/* One descriptor per client: raise the soft limit to what the clients need (or
 * to the hard limit), and the hard limit too where allowed (root). */
void n4_srv_raise_fd_limit(n4_server *s, unsigned want_clients)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		s->fd_limit = s->fd_limit_was = 1024;
		return;
	}
	s->fd_limit_was = rl.rlim_cur;
	rlim_t want = want_clients ? (rlim_t)want_clients + FD_HEADROOM : FD_TARGET;
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
	s->fd_limit = rl.rlim_cur;
}

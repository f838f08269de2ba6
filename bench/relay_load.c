/* relay_load.c - the relay's forwarding cost with many pairs at once (not a test):
 * PAIRS relayed pairs on loopback (lib/relay.c in this process's event loop, as in
 * `n4 -s`), every side registered, then a sender thread sends SIZE-byte datagrams
 * round-robin from every side's socket for SECONDS while a receiver thread drains
 * all of them.  Reports datagrams forwarded per second, per CPU second of the
 * relay's thread (the "per core" figure: the other threads share the machine),
 * and what arrived.
 *   relay_load [PAIRS] [SECONDS] [SIZE] [BURST]     (1000 3 200 4)
 * BURST: datagrams each socket sends per turn (what one readiness event of a
 * relay port then finds: 1 is the worst case for batching).
 * Last line: "relay_load: pairs=N forwarded=N delivered=N seconds=S dgram_per_s=X
 *             relay_cpu_s=C dgram_per_cpu_s=Y" */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "relay.h"
#include "relay_reg.h"

struct client {
	int fd;
	uint16_t relay_port;
};

static struct client *clients;
static unsigned nclients, size_b, burst;
static atomic_int stop;
static atomic_ulong delivered, sent;

static double now_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *sender(void *arg)
{
	uint8_t buf[2048];
	struct mmsghdr m[16];
	struct iovec iov = { .iov_base = buf, .iov_len = size_b };
	(void)arg;

	memset(buf, 'r', sizeof(buf));
	memset(m, 0, sizeof(m));
	for (int i = 0; i < 16; i++) {
		m[i].msg_hdr.msg_iov = &iov;
		m[i].msg_hdr.msg_iovlen = 1;
	}
	while (!atomic_load(&stop)) {
		for (unsigned i = 0; i < nclients && !atomic_load(&stop); i++) {
			int n = sendmmsg(clients[i].fd, m, burst, MSG_DONTWAIT);
			if (n > 0)
				atomic_fetch_add(&sent, (unsigned long)n);
		}
	}
	return NULL;
}

static void *receiver(void *arg)
{
	int ep = *(int *)arg;
	struct epoll_event ev[256];
	static uint8_t bufs[16][2048];
	struct mmsghdr m[16];
	struct iovec iov[16];

	memset(m, 0, sizeof(m));
	for (int i = 0; i < 16; i++) {
		iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = sizeof(bufs[i]) };
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	while (!atomic_load(&stop)) {
		int n = epoll_wait(ep, ev, 256, 100);
		for (int i = 0; i < n; i++) {
			int r = recvmmsg(ev[i].data.fd, m, 16, MSG_DONTWAIT, NULL);
			if (r > 0)
				atomic_fetch_add(&delivered, (unsigned long)r);
		}
	}
	return NULL;
}

static unsigned long forwarded(const n4_relay *r)
{
	char st[1024];
	n4_relay_status(r, st, sizeof(st));
	const char *f = strstr(st, "relay_forwarded=");
	return f ? strtoul(f + 16, NULL, 10) : 0;
}

int main(int argc, char **argv)
{
	unsigned pairs = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;
	double secs = argc > 2 ? atof(argv[2]) : 3;
	size_b = argc > 3 ? (unsigned)atoi(argv[3]) : 200;
	burst = argc > 4 ? (unsigned)atoi(argv[4]) : 4;
	struct rlimit rl = { 65536, 65536 };

	if (size_b < 16 || size_b > 2048 || pairs < 1 || burst < 1 || burst > 16)
		return 2;
	setrlimit(RLIMIT_NOFILE, &rl);
	n4_log_set_level(N4_LOG_WARN);
	n4_loop *loop = n4_loop_new();
	union n4_sa where = { .v4 = { .sin_family = AF_INET } };
	where.v4.sin_addr.s_addr = htonl(0x7f000001);
	struct n4_relay_cfg cfg = { .max_pairs = pairs, .idle_s = 600, .burst_kb = 64 };
	n4_relay *r = loop ? n4_relay_new(&cfg, loop, &where) : NULL;
	if (!r) {
		perror("relay");
		return 1;
	}
	nclients = 2 * pairs;
	clients = calloc(nclients, sizeof(*clients));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct n4_relay_side_in in = { .udp_ip = htonl(0x7f000001) };
	for (unsigned p = 0; p < pairs; p++) {
		struct n4_relay_grant g[2];
		int err = n4_relay_alloc(r, &in, &in, &g[0], &g[1]);
		if (err) {
			fprintf(stderr, "alloc %u: %s\n", p, strerror(-err));
			return 1;
		}
		for (unsigned s = 0; s < 2; s++) {
			struct client *c = &clients[2 * p + s];
			struct sockaddr_in a = { .sin_family = AF_INET,
						 .sin_addr.s_addr = htonl(0x7f000001) };
			c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			c->relay_port = g[s].port;
			if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&a, sizeof(a))) {
				perror("client socket");
				return 1;
			}
			a.sin_port = htons(g[s].port);
			if (connect(c->fd, (struct sockaddr *)&a, sizeof(a))) {
				perror("connect");
				return 1;
			}
			struct n4_relay_reg reg = { .flags = 0 };
			uint8_t out[N4_RELAY_REG_SIZE];
			memcpy(reg.token, g[s].token, sizeof(reg.token));
			n4_relay_reg_encode(&reg, out);
			if (send(c->fd, out, sizeof(out), 0) < 0)
				perror("register");
			struct epoll_event ev = { .events = EPOLLIN, .data.fd = c->fd };
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
		}
		if (p % 64 == 63)
			while (n4_loop_run_once(loop, 0) > 0)
				;
	}
	for (int i = 0; i < 50; i++)
		n4_loop_run_once(loop, 10);
	char st[1024];
	n4_relay_status(r, st, sizeof(st));
	const char *up = strstr(st, "relay_up=");
	printf("registered: %.*s\n", up ? 14 : 0, up ? up : "");
	/* drain the acks so that only forwarded data is counted */
	usleep(100000);
	pthread_t ts, tr;
	pthread_create(&tr, NULL, receiver, &ep);
	usleep(200000);
	atomic_store(&delivered, 0);
	pthread_create(&ts, NULL, sender, NULL);
	unsigned long f0 = forwarded(r);
	double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
	while (now_s(CLOCK_MONOTONIC) - t0 < secs)
		n4_loop_run_once(loop, 50);
	double t1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_THREAD_CPUTIME_ID);
	unsigned long f1 = forwarded(r);
	atomic_store(&stop, 1);
	pthread_join(ts, NULL);
	pthread_join(tr, NULL);
	double el = t1 - t0, cpu = c1 - c0;
	printf("relay_load: pairs=%u size=%u burst=%u sent=%lu forwarded=%lu delivered=%lu seconds=%.2f "
	       "dgram_per_s=%.0f relay_cpu_s=%.2f dgram_per_cpu_s=%.0f\n",
	       pairs, size_b, burst, (unsigned long)atomic_load(&sent), f1 - f0,
	       (unsigned long)atomic_load(&delivered), el, (double)(f1 - f0) / el, cpu,
	       cpu > 0 ? (double)(f1 - f0) / cpu : 0);
	for (unsigned i = 0; i < nclients; i++)
		close(clients[i].fd);
	free(clients);
	close(ep);
	n4_relay_free(r);
	n4_loop_free(loop);
	return 0;
}

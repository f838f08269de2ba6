/* shim_epoll.c - the shim's test program: a UDP program of the kind the shim must
 * leave working, written as real ones are: a non-blocking socket on epoll,
 * sendmmsg/recvmmsg, a receiving thread and a sending thread, and a fork after the
 * first datagram went out (the child sends half of the data on the inherited
 * socket).  Each side sends COUNT numbered datagrams of varying length and checks
 * that every datagram of the other side arrives complete and unaltered; losses are
 * repaired with NACKs so that the check is about content, not about UDP.
 *
 *   shim_epoll -c IP:PORT [-b PORT] [-C] [-n COUNT] [-e IP:PORT] [-f] [-T S]
 *   shim_epoll -l PORT [-n COUNT] [-e IP:PORT] [-f] [-T S]
 * -c: send first to IP:PORT (the placeholder); -l: bind PORT, learn the peer from
 * its first datagram; -b: bind the socket first (the shim's dup2 path); -C: connect
 * instead of sendto; -e: every datagram must be reported as coming from IP:PORT;
 * -f: fork after the first send.  Prints one result line; exit 0 on success. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 1000000
#define BATCH 32
#define DGRAM_MAX 256
#define NACK_MAX 200

enum { T_DATA = 'D', T_FIN = 'F', T_ACK = 'A', T_NACK = 'N' };

static int sock = -1, ep = -1;
static unsigned count = 10000;
static bool use_connect, do_fork;
static struct sockaddr_in peer, expect;
static bool have_peer, have_expect;
static uint8_t *got;
static unsigned got_n, bad_content, bad_source, dup_n;
static bool rx_done, tx_acked, stop;
static unsigned resends;
static uint32_t resend_q[NACK_MAX * 4];
static unsigned resend_n;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t data_len(uint32_t seq)
{
	return 10 + 16 + seq % 200;
}

static uint8_t pattern(uint32_t seq, size_t i)
{
	return (uint8_t)(seq * 31u + i * 7u + 1u);
}

static size_t build_data(uint32_t seq, uint8_t *b)
{
	size_t len = data_len(seq);
	memset(b, 0, 10);
	b[0] = T_DATA;
	b[4] = (uint8_t)(seq >> 24);
	b[5] = (uint8_t)(seq >> 16);
	b[6] = (uint8_t)(seq >> 8);
	b[7] = (uint8_t)seq;
	b[8] = (uint8_t)(len >> 8);
	b[9] = (uint8_t)len;
	for (size_t i = 10; i < len; i++)
		b[i] = pattern(seq, i);
	return len;
}

static uint32_t get32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static bool parse_addr(const char *s, struct sockaddr_in *a)
{
	char ip[64];
	const char *c = strrchr(s, ':');
	if (!c || (size_t)(c - s) >= sizeof(ip))
		return false;
	memcpy(ip, s, (size_t)(c - s));
	ip[c - s] = '\0';
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)atoi(c + 1));
	return inet_pton(AF_INET, ip, &a->sin_addr) == 1;
}

static const char *addr_str(const struct sockaddr_in *a)
{
	static __thread char b[32];
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(b, sizeof(b), "%s:%u", ip, ntohs(a->sin_port));
	return b;
}

/* Send a batch; non-blocking socket: wait for room on EAGAIN. */
static int send_batch(struct mmsghdr *v, unsigned n)
{
	unsigned done = 0;
	while (done < n) {
		int r = sendmmsg(sock, v + done, n - done, 0);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ENOBUFS) {
				struct pollfd p = { .fd = sock, .events = POLLOUT };
				poll(&p, 1, 10);
				continue;
			}
			if (errno == ECONNREFUSED)
				continue; /* an ICMP from the punching phase: not ours */
			fprintf(stderr, "shim_epoll: sendmmsg: %s\n", strerror(errno));
			return -1;
		}
		done += (unsigned)r;
	}
	return 0;
}

static int send_one(const uint8_t *b, size_t len)
{
	struct iovec iov = { (void *)b, len };
	struct mmsghdr m;
	memset(&m, 0, sizeof(m));
	m.msg_hdr.msg_iov = &iov;
	m.msg_hdr.msg_iovlen = 1;
	if (!use_connect) {
		m.msg_hdr.msg_name = &peer;
		m.msg_hdr.msg_namelen = sizeof(peer);
	}
	return send_batch(&m, 1);
}

/* Send data seq in [from, to), BATCH at a time, paced so that the kernel queues on
 * the way (veth backlog, NAT) are not the thing being tested. */
static int send_range(uint32_t from, uint32_t to)
{
	static __thread uint8_t bufs[BATCH][DGRAM_MAX];
	struct iovec iov[BATCH];
	struct mmsghdr v[BATCH];

	for (uint32_t s = from; s < to;) {
		unsigned n = 0;
		memset(v, 0, sizeof(v));
		for (; n < BATCH && s < to; n++, s++) {
			iov[n].iov_base = bufs[n];
			iov[n].iov_len = build_data(s, bufs[n]);
			v[n].msg_hdr.msg_iov = &iov[n];
			v[n].msg_hdr.msg_iovlen = 1;
			if (!use_connect) {
				v[n].msg_hdr.msg_name = &peer;
				v[n].msg_hdr.msg_namelen = sizeof(peer);
			}
		}
		if (send_batch(v, n) < 0)
			return -1;
		usleep(200);
	}
	return 0;
}

static void handle(const uint8_t *b, size_t len, const struct sockaddr_in *from)
{
	uint8_t out[8 + NACK_MAX * 4];

	if (have_expect && (from->sin_addr.s_addr != expect.sin_addr.s_addr ||
			    from->sin_port != expect.sin_port)) {
		if (bad_source++ < 3)
			fprintf(stderr, "shim_epoll: datagram from %s, expected %s\n",
				addr_str(from), addr_str(&expect));
		return;
	}
	pthread_mutex_lock(&mu);
	if (!have_peer) {
		peer = *from;
		have_peer = true;
		pthread_cond_broadcast(&cv);
	}
	pthread_mutex_unlock(&mu);
	if (len < 8)
		goto bad;
	switch (b[0]) {
	case T_DATA: {
		uint32_t seq = get32(b + 4);
		if (seq >= count || len != data_len(seq) || (size_t)(b[8] << 8 | b[9]) != len)
			goto bad;
		for (size_t i = 10; i < len; i++)
			if (b[i] != pattern(seq, i))
				goto bad;
		pthread_mutex_lock(&mu);
		if (got[seq])
			dup_n++;
		else {
			got[seq] = 1;
			if (++got_n == count)
				rx_done = true;
		}
		pthread_mutex_unlock(&mu);
		return;
	}
	case T_FIN: {
		unsigned n = 0;
		memset(out, 0, 8);
		pthread_mutex_lock(&mu);
		for (uint32_t s = 0; s < count && n < NACK_MAX; s++)
			if (!got[s]) {
				out[8 + n * 4] = (uint8_t)(s >> 24);
				out[9 + n * 4] = (uint8_t)(s >> 16);
				out[10 + n * 4] = (uint8_t)(s >> 8);
				out[11 + n * 4] = (uint8_t)s;
				n++;
			}
		pthread_mutex_unlock(&mu);
		out[0] = n ? T_NACK : T_ACK;
		out[4] = (uint8_t)(n >> 8);
		out[5] = (uint8_t)n;
		send_one(out, 8 + n * 4);
		return;
	}
	case T_ACK:
		pthread_mutex_lock(&mu);
		tx_acked = true;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		return;
	case T_NACK: {
		unsigned n = (unsigned)(b[4] << 8 | b[5]);
		if (n > NACK_MAX || len != 8 + n * 4)
			goto bad;
		pthread_mutex_lock(&mu);
		for (unsigned i = 0; i < n && resend_n < sizeof(resend_q) / 4; i++)
			resend_q[resend_n++] = get32(b + 8 + i * 4);
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		return;
	}
	}
bad:
	if (bad_content++ < 3)
		fprintf(stderr, "shim_epoll: bad datagram of %zu bytes (type 0x%02x)\n", len,
			len ? b[0] : 0);
}

static void *receiver(void *arg)
{
	static uint8_t bufs[BATCH][DGRAM_MAX + 1];
	struct sockaddr_in from[BATCH];
	struct iovec iov[BATCH];
	struct mmsghdr v[BATCH];
	(void)arg;

	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		struct epoll_event ev;
		int n = epoll_wait(ep, &ev, 1, 100);
		if (n < 0 && errno != EINTR) {
			perror("shim_epoll: epoll_wait");
			exit(1);
		}
		if (n <= 0)
			continue;
		for (;;) {
			memset(v, 0, sizeof(v));
			for (unsigned i = 0; i < BATCH; i++) {
				iov[i].iov_base = bufs[i];
				iov[i].iov_len = sizeof(bufs[i]);
				v[i].msg_hdr.msg_iov = &iov[i];
				v[i].msg_hdr.msg_iovlen = 1;
				v[i].msg_hdr.msg_name = &from[i];
				v[i].msg_hdr.msg_namelen = sizeof(from[i]);
			}
			int r = recvmmsg(sock, v, BATCH, MSG_DONTWAIT, NULL);
			if (r < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				if (errno == ECONNREFUSED)
					continue;
				perror("shim_epoll: recvmmsg");
				exit(1);
			}
			for (int i = 0; i < r; i++) {
				if (v[i].msg_hdr.msg_namelen != sizeof(struct sockaddr_in)) {
					bad_source++;
					continue;
				}
				handle(bufs[i], v[i].msg_len, &from[i]);
			}
		}
	}
	return NULL;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void usage(void)
{
	fprintf(stderr, "usage: shim_epoll -c IP:PORT [-b PORT] [-C] | -l PORT  [-n COUNT] "
			"[-e IP:PORT] [-f] [-T SECONDS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int c, listen_port = 0, bind_port = 0;
	unsigned timeout_s = 50;
	bool connect_side = false;
	pthread_t rx;

	while ((c = getopt(argc, argv, "c:l:b:Cn:e:fT:")) != -1) {
		switch (c) {
		case 'c':
			if (!parse_addr(optarg, &peer))
				usage();
			connect_side = have_peer = true;
			break;
		case 'l':
			listen_port = atoi(optarg);
			break;
		case 'b':
			bind_port = atoi(optarg);
			break;
		case 'C':
			use_connect = true;
			break;
		case 'n':
			count = (unsigned)atoi(optarg);
			break;
		case 'e':
			if (!parse_addr(optarg, &expect))
				usage();
			have_expect = true;
			break;
		case 'f':
			do_fork = true;
			break;
		case 'T':
			timeout_s = (unsigned)atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if ((!connect_side && !listen_port) || count == 0 || count > MAX_COUNT)
		usage();
	got = calloc(count, 1);
	int fds_before = count_fds();
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sock < 0 || ep < 0 || !got) {
		perror("shim_epoll: socket");
		return 1;
	}
	int big = 8 << 20;
	if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) < 0)
		setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 7 };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sock, &ev) < 0) {
		perror("shim_epoll: epoll_ctl");
		return 1;
	}
	uint64_t deadline = now_ms() + timeout_s * 1000u;
	if (pthread_create(&rx, NULL, receiver, NULL)) {
		fprintf(stderr, "shim_epoll: pthread_create failed\n");
		return 1;
	}
	struct sockaddr_in local = { .sin_family = AF_INET };
	if (listen_port || bind_port) {
		local.sin_port = htons((uint16_t)(listen_port ? listen_port : bind_port));
		if (bind(sock, (struct sockaddr *)&local, sizeof(local)) < 0) {
			fprintf(stderr, "shim_epoll: bind: %s\n", strerror(errno));
			return 1;
		}
	}
	if (connect_side && use_connect &&
	    connect(sock, (struct sockaddr *)&peer, sizeof(peer)) < 0) {
		fprintf(stderr, "shim_epoll: connect: %s\n", strerror(errno));
		return 1;
	}
	/* Listen side: wait for the peer to show up. */
	pthread_mutex_lock(&mu);
	while (!have_peer && now_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&cv, &mu, &ts);
	}
	pthread_mutex_unlock(&mu);
	if (!have_peer) {
		fprintf(stderr, "shim_epoll: no datagram from the peer\n");
		return 1;
	}
	/* The first datagram designates (connect side): it blocks through the punch. */
	if (send_range(0, 1) < 0)
		return 1;
	pid_t child = -1;
	uint32_t half = count / 2;
	if (do_fork && count > 2) {
		child = fork();
		if (child < 0) {
			perror("shim_epoll: fork");
			return 1;
		}
		if (child == 0)
			_exit(send_range(half, count) < 0 ? 1 : 0);
	}
	if (send_range(1, child > 0 ? half : count) < 0)
		return 1;
	if (child > 0) {
		int st;
		if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "shim_epoll: the forked child failed to send\n");
			return 1;
		}
	}
	/* FIN until the peer has everything; resend what it asks for. */
	uint64_t next_fin = 0;
	for (;;) {
		pthread_mutex_lock(&mu);
		bool done = tx_acked && rx_done;
		uint32_t q[sizeof(resend_q) / 4];
		unsigned qn = resend_n;
		memcpy(q, resend_q, qn * 4);
		resend_n = 0;
		pthread_mutex_unlock(&mu);
		if (done || now_ms() >= deadline)
			break;
		for (unsigned i = 0; i < qn; i++)
			if (q[i] < count && send_range(q[i], q[i] + 1) == 0)
				resends++;
		if (!tx_acked && now_ms() >= next_fin) {
			uint8_t fin[8] = { T_FIN,
					   0,
					   0,
					   0,
					   (uint8_t)(count >> 24),
					   (uint8_t)(count >> 16),
					   (uint8_t)(count >> 8),
					   (uint8_t)count };
			send_one(fin, sizeof(fin));
			next_fin = now_ms() + 200;
		}
		usleep(5000);
	}
	/* Let the peer finish: keep answering its FINs for a moment. */
	uint64_t linger = now_ms() + 1500;
	while (now_ms() < linger && now_ms() < deadline)
		usleep(20000);
	__atomic_store_n(&stop, true, __ATOMIC_RELEASE);
	pthread_join(rx, NULL);
	close(ep);
	close(sock);
	/* Everything the punch opened (pool, probes, the server connection) is gone. */
	int fds_after = count_fds();
	bool ok = rx_done && tx_acked && !bad_content && !bad_source && fds_before == fds_after;
	printf("shim_epoll: %s: received %u/%u unaltered from %s (%u dups), sent %u (%u resent), "
	       "peer has all: %s, bad content %u, bad source %u, descriptors %d before, %d after\n",
	       ok ? "ok" : "FAILED", got_n, count, addr_str(&peer), dup_n, count, resends,
	       tx_acked ? "yes" : "no", bad_content, bad_source, fds_before, fds_after);
	return ok ? 0 : 1;
}

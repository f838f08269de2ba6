/*
 * nfq-delay: one-way delay, jitter and loss for the NAT lab's WAN router.
 *
 * The kernel of the lab machine has no netem qdisc, so the router namespace sends
 * forwarded packets to an NFQUEUE and this program holds each packet's verdict until
 * its release time.  Packets wait in a binary heap ordered by (release time, arrival
 * sequence), so equal delays keep FIFO order; the main loop polls the netlink socket
 * with a timeout up to the next release and never sleeps on the verdict path.
 *
 *   nfq-delay -q QUEUE -d DELAY_MS [-j JITTER_MS] [-l LOSS_PCT] [-s SEED]
 *
 * Prints "nfq-delay: queue N ready" on stdout once bound, so the lab can wait for it.
 * On SIGTERM/SIGINT every held packet is accepted at once before the queue is released.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>

/* 1000 noise flows/s from each side for 50 ms is ~100 packets; benchmarks may go far
 * higher, so the kernel queue and our heap both allow this many packets in flight. */
#define QUEUE_MAXLEN 65536u
/* Metadata-only messages are ~150 bytes; 8 MiB holds bursts of tens of thousands. */
#define RCVBUF_BYTES (8 * 1024 * 1024)
/* Bound the netlink messages handled per loop turn so due releases are not starved. */
#define RECV_BATCH 1024

struct held_pkt {
	uint64_t release_ns;
	uint64_t seq;
	uint32_t id;
};

struct delay_state {
	struct nfq_q_handle *qh;
	struct held_pkt *heap;
	size_t heap_len;
	size_t heap_cap;
	uint64_t seq;
	uint64_t delay_ns;
	uint64_t jitter_ns;
	double loss_pct;
	uint64_t rng;
	/* statistics, printed at exit */
	uint64_t n_seen;
	uint64_t n_lost;
	uint64_t n_accepted;
	uint64_t n_verdict_err;
	size_t max_held;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, seedable, good enough for loss and jitter draws. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15u);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static double rng_unit(uint64_t *state)
{
	return (double)(rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

static int pkt_before(const struct held_pkt *x, const struct held_pkt *y)
{
	if (x->release_ns != y->release_ns)
		return x->release_ns < y->release_ns;
	return x->seq < y->seq;
}

static int heap_push(struct delay_state *st, struct held_pkt pkt)
{
	size_t i;

	if (st->heap_len == st->heap_cap) {
		size_t cap = st->heap_cap ? st->heap_cap * 2 : 4096;
		struct held_pkt *heap = realloc(st->heap, cap * sizeof(*heap));

		if (!heap)
			return -ENOMEM;
		st->heap = heap;
		st->heap_cap = cap;
	}
	i = st->heap_len++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!pkt_before(&pkt, &st->heap[parent]))
			break;
		st->heap[i] = st->heap[parent];
		i = parent;
	}
	st->heap[i] = pkt;
	if (st->heap_len > st->max_held)
		st->max_held = st->heap_len;
	return 0;
}

static struct held_pkt heap_pop(struct delay_state *st)
{
	struct held_pkt top = st->heap[0];
	struct held_pkt last = st->heap[--st->heap_len];
	size_t i = 0;

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= st->heap_len)
			break;
		if (child + 1 < st->heap_len && pkt_before(&st->heap[child + 1], &st->heap[child]))
			child++;
		if (!pkt_before(&st->heap[child], &last))
			break;
		st->heap[i] = st->heap[child];
		i = child;
	}
	if (st->heap_len > 0)
		st->heap[i] = last;
	return top;
}

static void issue_verdict(struct delay_state *st, uint32_t id, uint32_t verdict)
{
	if (nfq_set_verdict(st->qh, id, verdict, 0, NULL) < 0) {
		st->n_verdict_err++;
		if (st->n_verdict_err <= 5)
			fprintf(stderr, "nfq-delay: verdict for packet %" PRIu32 " failed: %s\n",
				id, strerror(errno));
	}
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
		     void *data)
{
	struct delay_state *st = data;
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	struct held_pkt pkt;
	int64_t delay_ns;
	uint32_t id;

	(void)qh;
	(void)msg;
	if (!ph)
		return 0;
	id = ntohl(ph->packet_id);
	st->n_seen++;

	if (st->loss_pct > 0.0 && rng_unit(&st->rng) * 100.0 < st->loss_pct) {
		st->n_lost++;
		issue_verdict(st, id, NF_DROP);
		return 0;
	}

	delay_ns = (int64_t)st->delay_ns;
	if (st->jitter_ns > 0) {
		/* uniform in [-jitter, +jitter], never below zero */
		double offset = (rng_unit(&st->rng) * 2.0 - 1.0) * (double)st->jitter_ns;

		delay_ns += (int64_t)offset;
		if (delay_ns < 0)
			delay_ns = 0;
	}
	if (delay_ns == 0 && st->heap_len == 0) {
		st->n_accepted++;
		issue_verdict(st, id, NF_ACCEPT);
		return 0;
	}

	pkt.release_ns = now_ns() + (uint64_t)delay_ns;
	pkt.seq = st->seq++;
	pkt.id = id;
	if (heap_push(st, pkt) < 0) {
		/* out of memory: let the packet through rather than black-hole it */
		st->n_accepted++;
		issue_verdict(st, id, NF_ACCEPT);
	}
	return 0;
}

static void release_due(struct delay_state *st, uint64_t now)
{
	while (st->heap_len > 0 && st->heap[0].release_ns <= now) {
		struct held_pkt pkt = heap_pop(st);

		st->n_accepted++;
		issue_verdict(st, pkt.id, NF_ACCEPT);
	}
}

static int parse_ms(const char *arg, const char *what, uint64_t *out_ns)
{
	char *end;
	double ms;

	errno = 0;
	ms = strtod(arg, &end);
	if (errno || end == arg || *end || ms < 0.0 || ms > 600000.0) {
		fprintf(stderr, "nfq-delay: bad %s '%s' (milliseconds, 0..600000)\n", what, arg);
		return -EINVAL;
	}
	*out_ns = (uint64_t)(ms * 1e6);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nfq-delay -q QUEUE -d DELAY_MS [-j JITTER_MS] [-l LOSS_PCT] [-s SEED]\n");
}

/* Receive and dispatch queued messages until the socket is empty or a batch is done. */
static int drain_socket(struct nfq_handle *h, int fd)
{
	char buf[8192] __attribute__((aligned));
	int n;

	for (n = 0; n < RECV_BATCH; n++) {
		ssize_t len = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (len < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return 0;
			if (errno == ENOBUFS) {
				/* the kernel dropped messages (and their packets); keep going */
				fprintf(stderr, "nfq-delay: netlink receive buffer overrun\n");
				continue;
			}
			fprintf(stderr, "nfq-delay: recv: %s\n", strerror(errno));
			return -errno;
		}
		if (len == 0)
			return 0;
		nfq_handle_packet(h, buf, (int)len);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct delay_state st;
	struct nfq_handle *h;
	struct sigaction sa;
	sigset_t block, waitmask;
	long queue_num = -1;
	int have_delay = 0;
	int have_seed = 0;
	int opt, fd, one = 1, rcvbuf = RCVBUF_BYTES;
	int ret = EXIT_FAILURE;
	struct pollfd pfd;

	memset(&st, 0, sizeof(st));
	while ((opt = getopt(argc, argv, "q:d:j:l:s:h")) != -1) {
		char *end;

		switch (opt) {
		case 'q':
			errno = 0;
			queue_num = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || queue_num < 0 || queue_num > 65535) {
				fprintf(stderr, "nfq-delay: bad queue number '%s'\n", optarg);
				return EXIT_FAILURE;
			}
			break;
		case 'd':
			if (parse_ms(optarg, "delay", &st.delay_ns) < 0)
				return EXIT_FAILURE;
			have_delay = 1;
			break;
		case 'j':
			if (parse_ms(optarg, "jitter", &st.jitter_ns) < 0)
				return EXIT_FAILURE;
			break;
		case 'l':
			errno = 0;
			st.loss_pct = strtod(optarg, &end);
			if (errno || end == optarg || *end || st.loss_pct < 0.0 ||
			    st.loss_pct > 100.0) {
				fprintf(stderr, "nfq-delay: bad loss '%s' (percent, 0..100)\n",
					optarg);
				return EXIT_FAILURE;
			}
			break;
		case 's':
			errno = 0;
			st.rng = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end) {
				fprintf(stderr, "nfq-delay: bad seed '%s'\n", optarg);
				return EXIT_FAILURE;
			}
			have_seed = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_FAILURE;
		}
	}
	if (optind != argc || queue_num < 0 || !have_delay) {
		usage(stderr);
		return EXIT_FAILURE;
	}
	if (!have_seed)
		st.rng = now_ns() ^ ((uint64_t)getpid() << 32);

	/* Signals are blocked except inside ppoll, so a SIGTERM cannot slip in between the
	 * stop check and the wait. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) {
		perror("nfq-delay: sigaction");
		return EXIT_FAILURE;
	}
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigprocmask(SIG_BLOCK, &block, &waitmask) < 0) {
		perror("nfq-delay: sigprocmask");
		return EXIT_FAILURE;
	}
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);

	/* the default 50 us timer slack would add up to 50 us to every release */
	if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) < 0)
		perror("nfq-delay: PR_SET_TIMERSLACK (continuing)");

	h = nfq_open();
	if (!h) {
		fprintf(stderr, "nfq-delay: nfq_open: %s (is nfnetlink_queue available?)\n",
			strerror(errno));
		return EXIT_FAILURE;
	}
	st.qh = nfq_create_queue(h, (uint16_t)queue_num, on_packet, &st);
	if (!st.qh) {
		fprintf(stderr, "nfq-delay: cannot bind queue %ld: %s (already bound?)\n",
			queue_num, strerror(errno));
		goto out_close;
	}
	if (nfq_set_mode(st.qh, NFQNL_COPY_META, 0) < 0) {
		fprintf(stderr, "nfq-delay: nfq_set_mode: %s\n", strerror(errno));
		goto out_destroy;
	}
	/* held verdicts count against the kernel's queue length (default 1024) */
	if (nfq_set_queue_maxlen(st.qh, QUEUE_MAXLEN) < 0) {
		fprintf(stderr, "nfq-delay: nfq_set_queue_maxlen: %s\n", strerror(errno));
		goto out_destroy;
	}
	fd = nfq_fd(h);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) {
		fprintf(stderr, "nfq-delay: SO_RCVBUF: %s\n", strerror(errno));
		goto out_destroy;
	}
	/* an overrun is reported once per recv otherwise; we carry on either way */
	if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one)) < 0) {
		fprintf(stderr, "nfq-delay: NETLINK_NO_ENOBUFS: %s\n", strerror(errno));
		goto out_destroy;
	}

	printf("nfq-delay: queue %ld ready\n", queue_num);
	if (fflush(stdout) == EOF) {
		perror("nfq-delay: stdout");
		goto out_destroy;
	}

	pfd.fd = fd;
	pfd.events = POLLIN;
	while (!stop_requested) {
		struct timespec timeout, *tp = NULL;
		uint64_t now = now_ns();
		int n;

		release_due(&st, now);
		if (st.heap_len > 0) {
			uint64_t wait_ns = st.heap[0].release_ns - now;

			timeout.tv_sec = (time_t)(wait_ns / 1000000000u);
			timeout.tv_nsec = (long)(wait_ns % 1000000000u);
			tp = &timeout;
		}
		n = ppoll(&pfd, 1, tp, &waitmask);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("nfq-delay: ppoll");
			goto out_flush;
		}
		if (n > 0 && (pfd.revents & POLLIN) && drain_socket(h, fd) < 0)
			goto out_flush;
	}
	ret = EXIT_SUCCESS;

out_flush:
	/* accept whatever is still held so stopping the program loses no packets */
	release_due(&st, UINT64_MAX);
	fprintf(stderr,
		"nfq-delay: seen %" PRIu64 " accepted %" PRIu64 " lost %" PRIu64
		" verdict errors %" PRIu64 " max held %zu\n",
		st.n_seen, st.n_accepted, st.n_lost, st.n_verdict_err, st.max_held);
out_destroy:
	if (nfq_destroy_queue(st.qh) < 0)
		fprintf(stderr, "nfq-delay: nfq_destroy_queue: %s\n", strerror(errno));
out_close:
	if (nfq_close(h) < 0)
		fprintf(stderr, "nfq-delay: nfq_close: %s\n", strerror(errno));
	free(st.heap);
	return ret;
}

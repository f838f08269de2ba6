/*
 * noise: new UDP flows at a steady rate, the background traffic of a NAT lab.
 *
 * A small pool of UDP sockets sends a datagram RATE times per second, each to the next
 * destination port of a range (cycling) and from the next socket of the pool.  Every new destination port is a new conntrack
 * entry, so on a port-incrementing NAT each datagram consumes one public port, as other
 * hosts behind a carrier NAT do.
 *
 * Why a pool and not one socket: the kernel NAT looks for an existing mapping of the same
 * source (ip, port) by walking one hash chain (nf_nat bysource), so with one source port every
 * new flow walks all live flows: measured 1.6 ms per new flow at 22000 live flows, which caps
 * one socket near 500 flows/s.  Real hosts spread flows over many source ports.  Sends are paced on absolute CLOCK_MONOTONIC deadlines:
 * no drift, and when the process falls behind it sends the overdue datagrams in a batch.
 *
 *   noise -d DST_IP -r RATE [-p FIRST_PORT] [-P LAST_PORT] [-t SECONDS] [-S SOCKETS]
 *
 * With -t, exactly RATE*SECONDS datagrams are sent.  The default destination is the lab's
 * sink on the WAN router, which drops them silently.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#define DEFAULT_DST "192.0.2.250"
/* Must match the sink range the lab drops on the WAN router. */
#define DEFAULT_FIRST_PORT 10000
#define DEFAULT_LAST_PORT 59999
/* Cap one catch-up burst so a long stall (e.g. SIGSTOP) does not flood the NAT at once. */
#define MAX_BATCH 1000
/* 30 s of unreplied UDP state at 1000 flows/s is 30000 flows, ~120 per source port */
#define DEFAULT_SOCKETS 256
#define MAX_SOCKETS 4096

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t ts_to_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

static struct timespec ns_to_ts(uint64_t ns)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	return ts;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts_to_ns(&ts);
}

/* send time of datagram k, from the start so rounding never accumulates (no overflow:
 * k / rate is whole seconds) */
static uint64_t deadline_of(uint64_t start, uint64_t k, uint64_t rate)
{
	return start + k / rate * 1000000000u + k % rate * 1000000000u / rate;
}

static int parse_long(const char *arg, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(arg, &end, 10);
	return (errno || end == arg || *end || *out < lo || *out > hi) ? -EINVAL : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: noise -d DST_IP -r RATE [-p FIRST_PORT] [-P LAST_PORT] [-t SECONDS] "
		   "[-S SOCKETS]\n");
}

int main(int argc, char **argv)
{
	const char *dst_ip = DEFAULT_DST;
	long rate = -1, first_port = DEFAULT_FIRST_PORT, last_port = DEFAULT_LAST_PORT;
	long n_socks = DEFAULT_SOCKETS, sock_idx = 0, i;
	int *socks;
	double seconds = 0.0;
	uint64_t total = 0; /* 0: until signalled */
	uint64_t sent = 0, errors = 0, start, period_ns, k = 0;
	struct sockaddr_in dst;
	struct sigaction sa;
	long port;
	int opt, ret = EXIT_FAILURE;
	char payload[] = "n4-lab-noise";

	while ((opt = getopt(argc, argv, "d:r:p:P:t:S:h")) != -1) {
		char *end;

		switch (opt) {
		case 'd':
			dst_ip = optarg;
			break;
		case 'r':
			if (parse_long(optarg, 1, 1000000, &rate) < 0) {
				fprintf(stderr, "noise: bad rate '%s' (1..1000000 per second)\n",
					optarg);
				return EXIT_FAILURE;
			}
			break;
		case 'p':
		case 'P':
			if (parse_long(optarg, 1, 65535, opt == 'p' ? &first_port : &last_port) <
			    0) {
				fprintf(stderr, "noise: bad port '%s'\n", optarg);
				return EXIT_FAILURE;
			}
			break;
		case 't':
			errno = 0;
			seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end || seconds <= 0.0 || seconds > 1e6) {
				fprintf(stderr, "noise: bad duration '%s' (seconds)\n", optarg);
				return EXIT_FAILURE;
			}
			break;
		case 'S':
			if (parse_long(optarg, 1, MAX_SOCKETS, &n_socks) < 0) {
				fprintf(stderr, "noise: bad socket count '%s' (1..%d)\n", optarg,
					MAX_SOCKETS);
				return EXIT_FAILURE;
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_FAILURE;
		}
	}
	if (optind != argc || rate < 0) {
		usage(stderr);
		return EXIT_FAILURE;
	}
	if (first_port > last_port) {
		fprintf(stderr, "noise: first port %ld above last port %ld\n", first_port,
			last_port);
		return EXIT_FAILURE;
	}
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	if (inet_pton(AF_INET, dst_ip, &dst.sin_addr) != 1) {
		fprintf(stderr, "noise: bad IPv4 address '%s'\n", dst_ip);
		return EXIT_FAILURE;
	}
	if (seconds > 0.0) {
		total = (uint64_t)((double)rate * seconds + 0.5);
		if (total == 0)
			total = 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) {
		perror("noise: sigaction");
		return EXIT_FAILURE;
	}

	socks = calloc((size_t)n_socks, sizeof(*socks));
	if (!socks) {
		perror("noise: calloc");
		return EXIT_FAILURE;
	}
	for (i = 0; i < n_socks; i++) {
		socks[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (socks[i] < 0) {
			perror("noise: socket");
			n_socks = i;
			goto out_close;
		}
	}

	fprintf(stderr, "noise: %ld flows/s to %s ports %ld-%ld from %ld sockets\n", rate, dst_ip,
		first_port, last_port, n_socks);
	period_ns = 1000000000u / (uint64_t)rate;
	port = first_port;
	start = now_ns();
	while (!stop_requested && (total == 0 || sent + errors < total)) {
		uint64_t deadline = deadline_of(start, k, (uint64_t)rate);
		uint64_t now = now_ns();
		int batch = 0;

		if (deadline > now) {
			struct timespec ts = ns_to_ts(deadline);
			int err = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);

			if (err == EINTR)
				continue;
			if (err) {
				fprintf(stderr, "noise: clock_nanosleep: %s\n", strerror(err));
				goto out_close;
			}
			now = now_ns();
		}
		/* send everything that is due, in one burst when behind */
		while (batch < MAX_BATCH && (total == 0 || sent + errors < total) &&
		       deadline_of(start, k, (uint64_t)rate) <= now) {
			dst.sin_port = htons((uint16_t)port);
			if (sendto(socks[sock_idx], payload, sizeof(payload) - 1, 0,
				   (struct sockaddr *)&dst, sizeof(dst)) < 0) {
				/* ENOBUFS/EPERM under load: count it and keep the pace */
				if (errors++ < 5)
					fprintf(stderr, "noise: sendto port %ld: %s\n", port,
						strerror(errno));
			} else {
				sent++;
			}
			port = port == last_port ? first_port : port + 1;
			sock_idx = sock_idx + 1 == n_socks ? 0 : sock_idx + 1;
			k++;
			batch++;
		}
		if (batch == MAX_BATCH && deadline_of(start, k, (uint64_t)rate) + period_ns < now) {
			/* hopelessly behind: drop the backlog instead of bursting forever */
			k = (uint64_t)((double)(now - start) * (double)rate / 1e9);
		}
	}
	ret = EXIT_SUCCESS;
	fprintf(stderr, "noise: sent %" PRIu64 " errors %" PRIu64 " in %.3f s\n", sent, errors,
		(double)(now_ns() - start) / 1e9);
out_close:
	for (i = 0; i < n_socks; i++) {
		if (close(socks[i]) < 0) {
			perror("noise: close");
			ret = EXIT_FAILURE;
		}
	}
	free(socks);
	return ret;
}

/* shim_eintr.c - the shim's behaviour around a designating call that cannot win:
 *  1. a signal (SIGALRM, handler without SA_RESTART) during the rendezvous makes the
 *     call return EINTR instead of being swallowed;
 *  2. two threads sending to the placeholder on one socket at once get the same
 *     result (the second waits for the first's rendezvous: one rendezvous, not two);
 *  3. later sends on the failed socket fail the same way, at once: in less than half
 *     the time the failed rendezvous of step 2 took (N4_TIMEOUT), a bound relative to
 *     this run, so a loaded machine does not fail it for no defect.
 *   shim_eintr IP:PORT    (run with N4_TIMEOUT small and no partner)
 * Prints one line per step; exit 0 when all three hold. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in ph;
static int sock;
static int thread_err[2];

static void on_alarm(int sig)
{
	(void)sig;
}

static void *sender(void *arg)
{
	int i = (int)(long)arg;
	if (sendto(sock, "x", 1, 0, (struct sockaddr *)&ph, sizeof(ph)) < 0)
		thread_err[i] = errno;
	return NULL;
}

int main(int argc, char **argv)
{
	char ip[64];
	const char *colon = argc > 1 ? strrchr(argv[1], ':') : NULL;
	int fails = 0;

	if (!colon || (size_t)(colon - argv[1]) >= sizeof(ip))
		return 2;
	memcpy(ip, argv[1], (size_t)(colon - argv[1]));
	ip[colon - argv[1]] = '\0';
	ph.sin_family = AF_INET;
	ph.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, ip, &ph.sin_addr) != 1)
		return 2;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART */
	if (sigaction(SIGALRM, &sa, NULL) < 0) {
		perror("shim_eintr: sigaction");
		return 2;
	}
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	if (sock < 0) {
		perror("shim_eintr: socket");
		return 2;
	}
	alarm(1);
	ssize_t n = sendto(sock, "x", 1, 0, (struct sockaddr *)&ph, sizeof(ph));
	int err = errno;
	printf("%s signal during the rendezvous: sendto %s\n",
	       n < 0 && err == EINTR ? "ok" : "FAIL", n < 0 ? strerror(err) : "succeeded");
	fails += !(n < 0 && err == EINTR);

	pthread_t t[2];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < 2; i++) {
		int e = pthread_create(&t[i], NULL, sender, (void *)i);
		if (e) {
			fprintf(stderr, "shim_eintr: pthread_create: %s\n", strerror(e));
			return 2;
		}
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long rv_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	bool same = thread_err[0] && thread_err[0] == thread_err[1];
	printf("%s two threads: %s / %s\n", same ? "ok" : "FAIL", strerror(thread_err[0]),
	       strerror(thread_err[1]));
	fails += !same;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = sendto(sock, "x", 1, 0, (struct sockaddr *)&ph, sizeof(ph));
	err = errno;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	bool later = n < 0 && err == thread_err[0] && ms < rv_ms / 2;
	printf("%s later send fails at once: %s after %ld ms (the rendezvous took %ld ms)\n",
	       later ? "ok" : "FAIL", n < 0 ? strerror(err) : "succeeded", ms, rv_ms);
	fails += !later;
	return fails ? 1 : 0;
}

/* shim_sendto.c - the cost of one sendto() on a socket the shim does not designate.
 * Sends small datagrams on loopback to a socket nobody reads (the kernel drops them
 * at its full queue, which keeps the cost per call steady) and prints nanoseconds per
 * call.  bench/shim.sh runs it with and without LD_PRELOAD=libn4shim.so.
 *   shim_sendto [CALLS] */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 2000000;
	struct sockaddr_in dst = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(dst);
	int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
	int small = 4096;
	char buf[32] = "n4 shim sendto bench";
	struct timespec t0, t1;

	if (rx < 0 || tx < 0 || bind(rx, (struct sockaddr *)&dst, sizeof(dst)) < 0 ||
	    getsockname(rx, (struct sockaddr *)&dst, &len) < 0) {
		perror("shim_sendto");
		return 1;
	}
	setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	for (int i = 0; i < 10000; i++) /* warm up: fill the queue, resolve symbols */
		sendto(tx, buf, sizeof(buf), 0, (struct sockaddr *)&dst, sizeof(dst));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < calls; i++)
		if (sendto(tx, buf, sizeof(buf), 0, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
			perror("shim_sendto: sendto");
			return 1;
		}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
	printf("%.1f ns/sendto over %ld calls\n", ns / (double)calls, calls);
	return 0;
}

/* shim_flood.c - datagrams per second over a punched path.
 *   shim_flood -s IP:PORT [-p LOCALPORT] [-t SECONDS] [-z SIZE] [-w S]  send as fast as possible
 *   shim_flood -r [-p LOCALPORT] [-l LISTENPORT]                    count what arrives
 * The sender sends one datagram per sendto() (the per-call path is what the shim could
 * slow down) for SECONDS (after the first datagram and S seconds of rest), then a few "END" datagrams; the receiver counts datagrams
 * (after START, sent first) until END (or 2 s of silence within the flood) and prints the rate between the first and the last.
 * -p binds to LOCALPORT with SO_REUSEADDR (the port `n4 -c` punched); -l binds the
 * listening port (the shim designates it under N4_LISTEN).  Without the shim the
 * sender is given the real peer; with it, the placeholder. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	int c, recv_mode = 0, local_port = 0, size = 64;
	double seconds = 3, warmup = 0;
	char ip[64] = "";

	while ((c = getopt(argc, argv, "s:rp:l:t:z:w:")) != -1) {
		switch (c) {
		case 's': {
			char *colon = strrchr(optarg, ':');
			if (!colon || (size_t)(colon - optarg) >= sizeof(ip))
				return 2;
			memcpy(ip, optarg, (size_t)(colon - optarg));
			ip[colon - optarg] = '\0';
			dst.sin_port = htons((uint16_t)atoi(colon + 1));
			if (inet_pton(AF_INET, ip, &dst.sin_addr) != 1)
				return 2;
			break;
		}
		case 'r':
			recv_mode = 1;
			break;
		case 'p':
		case 'l':
			local_port = atoi(optarg);
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'z':
			size = atoi(optarg);
			break;
		case 'w':
			warmup = atof(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: shim_flood -s IP:PORT [-p PORT] [-t S] [-z SIZE] | -r [-p PORT]\n");
			return 2;
		}
	}
	if (size < 8 || size > 1400)
		size = 64;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1, big = 8 << 20;
	if (fd < 0)
		return 1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (local_port) {
		struct sockaddr_in me = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)local_port) };
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
			fprintf(stderr, "shim_flood: bind %d: %s\n", local_port, strerror(errno));
			return 1;
		}
	}
	char buf[1500];
	memset(buf, 'x', sizeof(buf));
	if (!recv_mode) {
		long sent = 0;
		double t0 = now_s(), end;
		/* The first one designates the socket under the shim (and blocks meanwhile). */
		if (sendto(fd, "START", 5, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
			fprintf(stderr, "shim_flood: sendto: %s\n", strerror(errno));
			return 1;
		}
		/* Steady state only: the late-PUNCH filter of a fresh punch is not measured. */
		usleep((useconds_t)(warmup * 1e6));
		t0 = now_s();
		end = t0 + seconds;
		while (now_s() < end) {
			for (int i = 0; i < 256; i++)
				if (sendto(fd, buf, (size_t)size, 0, (struct sockaddr *)&dst,
					   sizeof(dst)) == size)
					sent++;
		}
		double el = now_s() - t0;
		usleep(200000);
		for (int i = 0; i < 20; i++) {
			sendto(fd, "END", 3, 0, (struct sockaddr *)&dst, sizeof(dst));
			usleep(10000);
		}
		printf("sent %ld datagrams in %.2f s: %.0f/s\n", sent, el, (double)sent / el);
		return 0;
	}
	long got = 0;
	double first = 0, last = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, got ? 2000 : 60000) <= 0)
			break;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			continue;
		if (n == 3 && !memcmp(buf, "END", 3))
			break;
		if (n == 5 && !memcmp(buf, "START", 5))
			continue; /* the designating datagram; the flood starts after a rest */
		if (!got)
			first = now_s();
		last = now_s();
		got++;
	}
	double el = last - first;
	printf("received %ld datagrams in %.2f s: %.0f/s\n", got, el,
	       el > 0 ? (double)got / el : 0.0);
	return got ? 0 : 1;
}

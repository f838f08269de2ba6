/* host_hold.c - rooms whose host never answers, for bench/host.sh's server memory
 * figure: the server holds every joiner of such a room (N4_ROOM_HELD_MAX per room,
 * until its 10 s hold ends), so its memory per held joiner can be read off its RSS.
 *
 *   host_hold -h SERVER [-p PORT] IDENT...
 * Registers one room per IDENT (as n4_room_host does for the shim), reads the joins
 * the server announces and answers none.  Prints "hosted IDENT" per room, then
 * "joins N" each time the count of announced joins grows; runs until SIGTERM or
 * SIGINT, or until a room connection is lost ("lost IDENT"). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "n4.h"

#define MAX_ROOMS 8 /* N4_ROOMS_PER_SOURCE */

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	const char *server = NULL;
	unsigned port = N4_DEFAULT_PORT;
	int c;

	while ((c = getopt(argc, argv, "h:p:")) != -1) {
		if (c == 'h')
			server = optarg;
		else if (c == 'p')
			port = (unsigned)strtoul(optarg, NULL, 10);
		else
			server = NULL, optind = argc + 1;
	}
	int nrooms = argc - optind;
	if (!server || !port || port > 65535 || nrooms < 1 || nrooms > MAX_ROOMS) {
		fprintf(stderr, "usage: host_hold -h SERVER [-p PORT] IDENT... (1-%d)\n",
			MAX_ROOMS);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	struct pollfd fds[MAX_ROOMS];
	struct n4_room_rx rx[MAX_ROOMS];
	memset(rx, 0, sizeof(rx));
	for (int i = 0; i < nrooms; i++) {
		struct n4_client_cfg cfg;
		char why[256] = "";
		n4_client_cfg_init(&cfg);
		cfg.server_host = server;
		cfg.server_port = (uint16_t)port;
		snprintf(cfg.ident, sizeof(cfg.ident), "%s", argv[optind + i]);
		int fd = n4_room_host(&cfg, 64 /* the shim's N4_MAX_PEERS */, why, sizeof(why));
		if (fd < 0) {
			fprintf(stderr, "host_hold: %s: %s (%s)\n", cfg.ident, why, strerror(-fd));
			return 1;
		}
		fds[i] = (struct pollfd){ .fd = fd, .events = POLLIN };
		printf("hosted %s\n", cfg.ident);
	}
	unsigned long joins = 0;
	while (!stop) {
		if (poll(fds, (nfds_t)nrooms, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		for (int i = 0; i < nrooms; i++) {
			if (!fds[i].revents)
				continue;
			struct n4_join j;
			int r;
			while ((r = n4_room_poll(fds[i].fd, &rx[i], &j)) == 1)
				printf("joins %lu\n", ++joins);
			if (r < 0) {
				printf("lost %s: %s\n", argv[optind + i], strerror(-r));
				return 1;
			}
		}
	}
	return 0;
}

/* client_main.c - `n4 -c`: punch, print the result in the original's words. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "main.h"

static volatile sig_atomic_t cancel_flag;

static void on_signal(int sig)
{
	(void)sig;
	cancel_flag = 1;
}

int n4_client_main(const struct n4_opts *o)
{
	struct n4_client_cfg cfg = o->client;
	struct sigaction sa = { .sa_handler = on_signal };
	struct n4_result res;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	cfg.cancel = &cancel_flag;

	n4_client *c = n4_client_new(&cfg);
	if (!c) {
		n4_error("cannot start: %s", strerror(errno));
		return 1;
	}
	int err = n4_client_run(c, &res);
	if (err) {
		n4_client_free(c);
		switch (err) {
		case -ETIMEDOUT:
			return 1;
		case -EHOSTUNREACH:
			return 3;
		case -ENOTSUP:
			return 4;
		case -ECANCELED:
		case -EINTR:
			n4_info("interrupted");
			return 130;
		default:
			n4_error("failed: %s", strerror(-err));
			return 1;
		}
	}
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &res.peer.sin_addr, ip, sizeof(ip));
	unsigned port = ntohs(res.peer.sin_port);
	n4_info("------");
	n4_info("Local port:    %u", res.local_port);
	n4_info("Peer address:  %s:%u%s", ip, port, res.relayed ? " (the server's relay)" : "");
	n4_info("------");
	n4_info("[ WIN ]%s", res.relayed ? " relayed: no punch can join this pair; datagrams "
					   "pass unchanged through the server"
					 : "");
	n4_info("> nc -u -p %u %s %u", res.local_port, ip, port);
	n4_debug("round %u, %u ms from start to WIN, peer %s", res.rounds, res.elapsed_ms,
		 res.peer_is_n4 ? "n4" : "original or unknown");
	/* Reported already; now make sure the peer got our PUNCH before the port
	 * is handed to the user's program (the original spends 2 s before WIN). */
	n4_client_confirm(c);
	n4_client_free(c);
	return 0;
}

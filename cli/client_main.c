/* client_main.c - `n4 -c`: punch, print the result in the original's words. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blake2s.h"
#include "key.h"
#include "log.h"
#include "loop.h"
#include "main.h"
#include "report.h"

static volatile sig_atomic_t cancel_flag;

static void on_signal(int sig)
{
	(void)sig;
	cancel_flag = 1;
}

/* --json on a failure: the outcome, why, and the status n4 exits with. */
static int fail(const struct n4_opts *o, uint64_t start_ms, int status, const char *outcome,
		const char *reason)
{
	if (o->json) {
		struct n4_json_report r = { .outcome = outcome,
					    .elapsed_ms = (unsigned)(n4_now_ms() - start_ms),
					    .strategy = o->client.strategy,
					    .reason = reason,
					    .exec_status = -1,
					    .exit_status = status };
		n4_report_json(stdout, &r);
	}
	return status;
}

/* The port is released (n4_client_free closed it) just before CMD starts, so
 * CMD can bind it while the NAT mapping is still fresh. */
static int after_win(const struct n4_opts *o, const struct n4_result *res)
{
	struct n4_json_report r = { .outcome = "win",
				    .res = res,
				    .elapsed_ms = res->elapsed_ms,
				    .strategy = o->client.strategy,
				    .exec_status = -1 };
	char cmd[4096];
	int status = 0;

	if (o->exec_cmd) {
		int err = n4_exec_expand(o->exec_cmd, res, cmd, sizeof(cmd));
		if (!err) {
			n4_info("> %s", cmd);
			err = n4_exec_run(cmd, res, &cancel_flag);
		}
		if (err < 0) {
			n4_error("--exec: cannot run the command: %s", strerror(-err));
			status = 126;
			r.reason = "the --exec command could not be started";
		} else {
			status = err;
			r.exec_status = err;
		}
		r.exec_cmd = cmd;
	}
	r.exit_status = status;
	if (o->json)
		n4_report_json(stdout, &r);
	return status;
}

int n4_client_main(const struct n4_opts *o)
{
	uint64_t start_ms = n4_now_ms();
	struct n4_client_cfg cfg = o->client;
	struct sigaction sa = { .sa_handler = on_signal };
	struct n4_result res;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	cfg.cancel = &cancel_flag;
	if (o->key_file[0]) {
		char why[512];
		/* Nothing is sent anywhere before the key is known to be good. */
		if (n4_key_load(o->key_file, cfg.key, why, sizeof(why))) {
			fprintf(stderr, "n4: %s\n", why);
			return 2;
		}
		cfg.have_key = true;
	}

	n4_client *c = n4_client_new(&cfg);
	n4_wipe(cfg.key, sizeof(cfg.key));
	if (!c) {
		n4_error("cannot start: %s", strerror(errno));
		return fail(o, start_ms, 1, "error", strerror(errno));
	}
	int err = n4_client_run(c, &res);
	if (err) {
		n4_client_free(c);
		switch (err) {
		case -ETIMEDOUT:
			return fail(o, start_ms, 1, "timeout", "no WIN within the timeout");
		case -EHOSTUNREACH:
			return fail(o, start_ms, 3, "unreachable", "server unreachable");
		case -ENOTSUP:
			return fail(o, start_ms, 4, "impossible",
				    "this pair cannot be punched (both NATs unpredictable)");
		case -ECANCELED:
		case -EINTR:
			n4_info("interrupted");
			return fail(o, start_ms, 130, "interrupted", "interrupted");
		default:
			n4_error("failed: %s", strerror(-err));
			return fail(o, start_ms, 1, "error", strerror(-err));
		}
	}
	char ip[INET6_ADDRSTRLEN];
	if (!n4_result_peer_host(&res, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "?");
	unsigned port = n4_result_peer_port(&res);
	bool v6 = res.family == AF_INET6;
	n4_info("------");
	n4_info("Local port:    %u", res.local_port);
	n4_info("Peer address:  %s%s%s:%u%s", v6 ? "[" : "", ip, v6 ? "]" : "", port,
		res.relayed ? " (the server's relay)"
		: v6	    ? " (IPv6)"
			    : "");
	n4_info("------");
	n4_info("[ WIN ]%s", res.relayed ? " relayed: no punch can join this pair; datagrams "
					   "pass unchanged through the server"
					 : "");
	n4_info("> nc -u%s -p %u %s %u", v6 ? " -6" : "", res.local_port, ip, port);
	n4_debug("round %u, %u ms from start to WIN, peer %s", res.rounds, res.elapsed_ms,
		 res.peer_is_n4 ? "n4" : "original or unknown");
	/* Reported already; now make sure the peer got our PUNCH before the port
	 * is handed to the user's program (the original spends 2 s before WIN). */
	n4_client_confirm(c);
	n4_client_free(c);
	return after_win(o, &res);
}

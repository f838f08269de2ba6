/* server_main.c - `n4 -s`: run the rendezvous server until SIGTERM/SIGINT, then
 * shut down gracefully and exit 0; SIGUSR1 logs a one-line status.  The handlers
 * only set flags: nothing is logged from a signal handler. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "main.h"
#include "metrics.h"

static volatile sig_atomic_t stop_flag, status_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void on_status(int sig)
{
	(void)sig;
	status_flag = 1;
}

int n4_server_main(const struct n4_opts *o)
{
	struct n4_server_cfg cfg = o->server;
	struct sigaction sa = { .sa_handler = on_stop };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_status;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	cfg.log_rate = o->log_rate;
	cfg.status_flag = &status_flag;

	n4_server *s = n4_server_new(&cfg);
	if (!s) {
		n4_error("cannot serve on port %u: %s", cfg.port, strerror(errno));
		return 1;
	}
	n4_metrics *m = NULL;
	if (o->metrics[0]) {
		m = n4_metrics_new(n4_server_loop(s), o->metrics, s);
		if (!m) {
			n4_error("cannot serve metrics on %s: %s", o->metrics, strerror(errno));
			n4_server_free(s);
			return 1;
		}
		n4_info("metrics on %s, TCP %u: GET /metrics", o->metrics, n4_metrics_port(m));
	}
	int err = n4_server_run(s, &stop_flag);
	n4_metrics_free(m);
	char line[1280];
	n4_server_status(s, line, sizeof(line));
	n4_info_uncapped("stopped: %s", line); /* never lost to the log cap */
	n4_server_free(s);
	if (err) {
		n4_error("server loop failed: %s", strerror(-err));
		return 1;
	}
	return 0;
}

/* report.h - `n4 -c --json` (one JSON object on stdout) and `--exec CMD`. */
#ifndef N4_CLI_REPORT_H
#define N4_CLI_REPORT_H

#include <signal.h>
#include <stdio.h>

#include "n4.h"

/* The peer's address as text (IPv4, or IPv6 when res->family is AF_INET6) and port. */
const char *n4_result_peer_host(const struct n4_result *res, char *buf, size_t len);
unsigned n4_result_peer_port(const struct n4_result *res);

/* tmpl with %l (local port), %h (peer IP), %H (the same, in brackets when IPv6),
 * %p (peer port), %% ('%') replaced. */
int n4_exec_expand(const char *tmpl, const struct n4_result *res, char *out, size_t len);
/* Run cmd with /bin/sh -c (N4_LOCAL_PORT, N4_PEER_HOST, N4_PEER_PORT, N4_RELAYED,
 * N4_PEER_FAMILY (4 or 6) in
 * its environment) and wait for it.  Returns its exit status (128 + N when killed
 * by signal N) or a negative errno when it could not be started.  When *cancel
 * becomes set meanwhile, CMD gets one SIGTERM. */
int n4_exec_run(const char *cmd, const struct n4_result *res, volatile sig_atomic_t *cancel);

struct n4_json_report {
	const char *outcome;	     /* win, timeout, unreachable, impossible, interrupted, error */
	const struct n4_result *res; /* on a WIN, else NULL */
	unsigned elapsed_ms;
	enum n4_strategy strategy;
	const char *reason;   /* on failure */
	const char *exec_cmd; /* --exec, substituted; NULL without */
	int exec_status;      /* its status, -1 when it did not run */
	int exit_status;      /* n4's own */
};

void n4_report_json(FILE *f, const struct n4_json_report *r);

#endif

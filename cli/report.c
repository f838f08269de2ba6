/* report.c - what `n4 -c` hands to scripts: the one-line JSON result (--json) and
 * the command run right after the WIN (--exec, natmap's -e model). */
#include "report.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

const char *n4_result_peer_host(const struct n4_result *res, char *buf, size_t len)
{
	bool v6 = res->family == AF_INET6;
	const void *a =
		v6 ? (const void *)&res->peer6.sin6_addr : (const void *)&res->peer.sin_addr;

	if (!inet_ntop(v6 ? AF_INET6 : AF_INET, a, buf, (socklen_t)len))
		return NULL;
	return buf;
}

unsigned n4_result_peer_port(const struct n4_result *res)
{
	return ntohs(res->family == AF_INET6 ? res->peer6.sin6_port : res->peer.sin_port);
}

/* The substituted values are digits, dots, hexadecimal digits and colons, so they
 * cannot change how the shell splits or interprets the command: no quoting is
 * needed around them.  %H's brackets (IPv6) are a glob pattern to the shell:
 * quote it. */
int n4_exec_expand(const char *tmpl, const struct n4_result *res, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN], bracketed[INET6_ADDRSTRLEN + 2];
	size_t n = 0;

	if (!n4_result_peer_host(res, ip, sizeof(ip)))
		return -EINVAL;
	snprintf(bracketed, sizeof(bracketed), res->family == AF_INET6 ? "[%s]" : "%s", ip);
	for (const char *p = tmpl; *p; p++) {
		char num[8];
		const char *put = num;
		if (*p != '%') {
			num[0] = *p;
			num[1] = '\0';
		} else {
			switch (*++p) {
			case 'l':
				snprintf(num, sizeof(num), "%u", res->local_port);
				break;
			case 'h':
				put = ip;
				break;
			case 'H':
				put = bracketed;
				break;
			case 'p':
				snprintf(num, sizeof(num), "%u", n4_result_peer_port(res));
				break;
			case '%':
				put = "%";
				break;
			default:
				return -EINVAL; /* n4_exec_check refused it already */
			}
		}
		size_t plen = strlen(put);
		if (n + plen >= len)
			return -ENAMETOOLONG;
		memcpy(out + n, put, plen);
		n += plen;
	}
	out[n] = '\0';
	return 0;
}

int n4_exec_run(const char *cmd, const struct n4_result *res, volatile sig_atomic_t *cancel)
{
	char ip[INET6_ADDRSTRLEN], lport[8], pport[8];

	if (!n4_result_peer_host(res, ip, sizeof(ip)))
		return -EINVAL;
	snprintf(lport, sizeof(lport), "%u", res->local_port);
	snprintf(pport, sizeof(pport), "%u", n4_result_peer_port(res));
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* Ignored signals stay ignored across exec: give CMD the defaults. */
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		if (setenv("N4_LOCAL_PORT", lport, 1) || setenv("N4_PEER_HOST", ip, 1) ||
		    setenv("N4_PEER_PORT", pport, 1) ||
		    setenv("N4_RELAYED", res->relayed ? "1" : "0", 1) ||
		    setenv("N4_PEER_FAMILY", res->family == AF_INET6 ? "6" : "4", 1))
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	bool forwarded = false;
	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, 0);
		if (w == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (w < 0 && errno != EINTR)
			return -errno;
		/* Asked to stop (SIGTERM from a service manager, say): pass it on once
		 * and keep waiting, so that n4 still reports CMD's status. */
		if (cancel && *cancel && !forwarded) {
			kill(pid, SIGTERM);
			forwarded = true;
		}
	}
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void n4_report_json(FILE *f, const struct n4_json_report *r)
{
	fputs("{\"outcome\":", f);
	json_str(f, r->outcome);
	if (r->res) {
		char ip[INET6_ADDRSTRLEN] = "";
		bool v6 = r->res->family == AF_INET6;
		if (!n4_result_peer_host(r->res, ip, sizeof(ip)))
			ip[0] = '\0';
		unsigned port = n4_result_peer_port(r->res);
		fprintf(f,
			",\"local_port\":%u,\"peer\":\"%s%s%s:%u\",\"peer_host\":\"%s\","
			"\"peer_port\":%u,\"family\":\"%s\",\"relayed\":%s,\"peer_is_n4\":%s,"
			"\"rounds\":%u",
			r->res->local_port, v6 ? "[" : "", ip, v6 ? "]" : "", port, ip, port,
			v6 ? "ipv6" : "ipv4", r->res->relayed ? "true" : "false",
			r->res->peer_is_n4 ? "true" : "false", r->res->rounds);
	}
	fprintf(f, ",\"elapsed_ms\":%u,\"strategy\":\"%s\"", r->elapsed_ms,
		r->strategy == N4_STRATEGY_CLASSIC ? "classic" : "auto");
	if (r->reason) {
		fputs(",\"reason\":", f);
		json_str(f, r->reason);
	}
	if (r->exec_cmd) {
		fputs(",\"exec\":{\"command\":", f);
		json_str(f, r->exec_cmd);
		if (r->exec_status >= 0)
			fprintf(f, ",\"status\":%d}", r->exec_status);
		else
			fputs(",\"status\":null}", f);
	}
	fprintf(f, ",\"exit_status\":%d}\n", r->exit_status);
	fflush(f);
}

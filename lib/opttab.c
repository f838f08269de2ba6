/* opttab.c - the table of numeric settings (see opttab.h).
 *
 * Where the n4 option and the shim's variable once differed, one range was
 * chosen: N4_POOL takes 1-4096 as -n does (the library's own check); -r
 * takes 0 (the strategy's round) as N4_ROUND_MS does, and N4_ROUND_MS no
 * longer takes 1-99 ms rounds, which -r and sane pacing never allowed.
 * The timeouts stay two entries on purpose: -t 0 means "never" for n4 -c,
 * while the shim counts its deadline from the designating call, where 0
 * would fail at once. */
#include "opttab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY(i, s, l, e, lo, hi, nz, d, w) [i] = { i, s, l, e, lo, hi, nz, d, w }

const struct n4_opt_def n4_opt_table[N4_OPT_COUNT] = {
	ENTRY(N4_OPT_POOL, 'n', "count", "N4_POOL", 1, 4096, 0, 25, "pool size"),
	ENTRY(N4_OPT_OFFSET, 'o', "offset", "N4_OFFSET", -65535, 65535, 0, 20, "offset"),
	ENTRY(N4_OPT_SRC_PORT, 'b', "src-port", "N4_SRC_PORT", 0, 65535, 0, 30000, "port"),
	ENTRY(N4_OPT_ROUND_MS, 'r', "round-ms", "N4_ROUND_MS", 0, 600000, 100, 0, "milliseconds"),
	ENTRY(N4_OPT_CONFIRM_MS, 0, "confirm-ms", "N4_CONFIRM_MS", 0, 60000, 0, 2000,
	      "milliseconds"),
	ENTRY(N4_OPT_TTL, 0, "ttl", "N4_LOW_TTL", 0, 255, 0, 2, "TTL"),
	ENTRY(N4_OPT_MAX_PPS, 0, "max-pps", "N4_MAX_PPS", 0, 1000000, 20, 1000,
	      "packets per second"),
	ENTRY(N4_OPT_TIMEOUT, 't', "timeout", NULL, 0, 86400, 0, 120, "seconds"),
	ENTRY(N4_OPT_MAX_PORTS, 0, "max-ports", NULL, 1, 65535, 0, 512, "ports"),
	ENTRY(N4_OPT_PORT, 'p', "port", NULL, 1, 65535, 0, 1721, "port"),
	ENTRY(N4_OPT_SHIM_TIMEOUT, 0, NULL, "N4_TIMEOUT", 1, 86400, 0, 30, "seconds"),
	ENTRY(N4_OPT_SHIM_LISTEN, 0, NULL, "N4_LISTEN", 1, 65535, 0, 0, "port"),
	ENTRY(N4_OPT_KEEPALIVE, 0, NULL, "N4_KEEPALIVE", 0, 3600, 0, 15, "seconds"),
	ENTRY(N4_OPT_UPGRADE, 0, NULL, "N4_UPGRADE", 5, 86400, 0, 60, "seconds"),
	ENTRY(N4_OPT_SHIM_HOST, 0, NULL, "N4_HOST", 1, 65535, 0, 0, "port"),
	ENTRY(N4_OPT_MAX_PEERS, 0, NULL, "N4_MAX_PEERS", 1, 1024, 0, 64, "peers"),
	ENTRY(N4_OPT_PEER_TIMEOUT, 0, NULL, "N4_PEER_TIMEOUT", 10, 86400, 0, 180, "seconds"),
	ENTRY(N4_OPT_FLOW_TIMEOUT, 0, NULL, "N4_FLOW_TIMEOUT", 1, 3600, 0, 10, "seconds"),
	ENTRY(N4_OPT_LISTEN, 'l', "listen", NULL, 0, 65535, 0, 1721, "port"),
	ENTRY(N4_OPT_HELLO_TO, 0, "hello-timeout-ms", NULL, 100, 600000, 0, 5000, "milliseconds"),
	ENTRY(N4_OPT_WAIT_TO, 0, "wait-timeout", NULL, 1, 86400, 0, 60, "seconds"),
	ENTRY(N4_OPT_EXCH_TO, 0, "exchange-timeout-ms", NULL, 100, 600000, 0, 10000,
	      "milliseconds"),
	ENTRY(N4_OPT_DRAIN_TO, 0, "drain-timeout-ms", NULL, 0, 600000, 0, 5000, "milliseconds"),
	ENTRY(N4_OPT_MAX_CLIENTS, 0, "max-clients", NULL, 2, 10000000, 0, 0, "clients"),
	ENTRY(N4_OPT_MAX_PER_IP, 0, "max-per-ip", NULL, 0, 10000000, 0, 64, "connections"),
	ENTRY(N4_OPT_CONN_RATE, 0, "conn-rate", NULL, 0, 1000000, 0, 20, "connections/s"),
	ENTRY(N4_OPT_CONN_BURST, 0, "conn-burst", NULL, 1, 1000000, 0, 64, "connections"),
	ENTRY(N4_OPT_LOG_RATE, 0, "log-rate", NULL, 0, 1000000, 0, 100, "lines/s"),
	ENTRY(N4_OPT_PORT_BUDGET, 0, "port-budget", NULL, 6, 65535, 0, 512, "ports"),
	ENTRY(N4_OPT_RELAY_AFTER, 0, "relay-after", NULL, 0, 255, 0, 2, "rounds"),
	ENTRY(N4_OPT_RELAY_MAX, 0, "relay-max", NULL, 0, 100000, 0, 1000, "pairs"),
	ENTRY(N4_OPT_RELAY_PER_IP, 0, "relay-per-ip", NULL, 0, 100000, 0, 16, "pairs"),
	ENTRY(N4_OPT_RELAY_RATE, 0, "relay-rate", NULL, 0, 100000000, 0, 1000, "kbit/s"),
	ENTRY(N4_OPT_RELAY_BURST, 0, "relay-burst", NULL, 2, 1048576, 0, 64, "KiB"),
	ENTRY(N4_OPT_RELAY_TOTAL, 0, "relay-total", NULL, 0, 1000000000, 0, 0, "kbit/s"),
	ENTRY(N4_OPT_RELAY_IDLE, 0, "relay-idle", NULL, 5, 86400, 0, 60, "seconds"),
};

const struct n4_opt_def *n4_opt_get(enum n4_opt_id id)
{
	return (unsigned)id < N4_OPT_COUNT ? &n4_opt_table[id] : NULL;
}

const struct n4_opt_def *n4_opt_by_env(const char *name)
{
	for (size_t i = 0; i < N4_OPT_COUNT; i++)
		if (n4_opt_table[i].env && strcmp(n4_opt_table[i].env, name) == 0)
			return &n4_opt_table[i];
	return NULL;
}

int n4_opt_parse(const struct n4_opt_def *d, const char *s, long *out)
{
	const char *digits = s && (*s == '-' || *s == '+') ? s + 1 : s;
	char *end;

	/* No spaces, no empty string, no "0x": strtol would take all three. */
	if (!digits || *digits < '0' || *digits > '9')
		return -EINVAL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < d->min || v > d->max)
		return -EINVAL;
	if (d->nonzero_min > 0 && v != 0 && v < d->nonzero_min)
		return -EINVAL;
	*out = v;
	return 0;
}

const char *n4_opt_range(const struct n4_opt_def *d, char *buf, size_t len)
{
	if (d->nonzero_min > 0)
		snprintf(buf, len, "0 or %ld-%ld", d->nonzero_min, d->max);
	else if (d->min < 0)
		snprintf(buf, len, "%ld..%ld", d->min, d->max);
	else
		snprintf(buf, len, "%ld-%ld", d->min, d->max);
	return buf;
}

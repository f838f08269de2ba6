/* opttab.h - the one table of n4's numeric settings: for each, its n4 option,
 * the environment variable the shim reads for it, the accepted range and the
 * default.  cli/opts.c and shim/config.c parse through it, so a range is
 * written once; tests/unit/test_opttab.c checks --help and the man pages
 * against it. */
#ifndef N4_OPTTAB_H
#define N4_OPTTAB_H

#include <stdbool.h>
#include <stddef.h>

enum n4_opt_id {
	/* client, and the shim's variable for the same setting */
	N4_OPT_POOL,
	N4_OPT_OFFSET,
	N4_OPT_SRC_PORT,
	N4_OPT_ROUND_MS,
	N4_OPT_CONFIRM_MS,
	N4_OPT_TTL,
	N4_OPT_MAX_PPS,
	/* client only */
	N4_OPT_TIMEOUT,
	N4_OPT_MAX_PORTS,
	N4_OPT_PORT,
	/* shim only */
	N4_OPT_SHIM_TIMEOUT,
	N4_OPT_SHIM_LISTEN,
	N4_OPT_KEEPALIVE,
	N4_OPT_UPGRADE,
	N4_OPT_SHIM_HOST,
	N4_OPT_MAX_PEERS,
	N4_OPT_PEER_TIMEOUT,
	N4_OPT_FLOW_TIMEOUT,
	/* server */
	N4_OPT_LISTEN,
	N4_OPT_HELLO_TO,
	N4_OPT_WAIT_TO,
	N4_OPT_EXCH_TO,
	N4_OPT_DRAIN_TO,
	N4_OPT_MAX_CLIENTS,
	N4_OPT_MAX_PER_IP,
	N4_OPT_CONN_RATE,
	N4_OPT_CONN_BURST,
	N4_OPT_LOG_RATE,
	N4_OPT_PORT_BUDGET,
	N4_OPT_RELAY_AFTER,
	N4_OPT_RELAY_MAX,
	N4_OPT_RELAY_PER_IP,
	N4_OPT_RELAY_RATE,
	N4_OPT_RELAY_BURST,
	N4_OPT_RELAY_TOTAL,
	N4_OPT_RELAY_IDLE,
	N4_OPT_COUNT
};

struct n4_opt_def {
	enum n4_opt_id id;
	char short_name;       /* n4's letter, 0 if none */
	const char *long_name; /* n4's --name, or NULL (n4shim --keepalive: its env) */
	const char *env;       /* the shim's variable, or NULL */
	long min, max;
	long nonzero_min; /* > 0: besides 0, at least this (min is then 0) */
	long def;	  /* the default the help and man pages state */
	const char *what; /* noun for error messages: "pool size" */
};

extern const struct n4_opt_def n4_opt_table[N4_OPT_COUNT];

const struct n4_opt_def *n4_opt_get(enum n4_opt_id id);
/* The entry whose env is name, or NULL. */
const struct n4_opt_def *n4_opt_by_env(const char *name);
/* Parse decimal text (an optional sign, then digits only) within the entry's
 * range.  0, or -EINVAL. */
int n4_opt_parse(const struct n4_opt_def *d, const char *s, long *out);
/* The range as help and man pages print it: "1-4096", "-65535..65535",
 * "0 or 20-1000000". */
const char *n4_opt_range(const struct n4_opt_def *d, char *buf, size_t len);

#endif

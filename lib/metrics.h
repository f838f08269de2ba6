/* metrics.h - the server's counters as Prometheus text over plain HTTP/1.x
 * (`n4 -s --metrics ADDR:PORT`), served from the server's own event loop. */
#ifndef N4_METRICS_H
#define N4_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "n4.h"

/* Plan kinds counted per side (predict.h's enum n4_plan_kind, 0..6). */
#define N4_STATS_PLANS 7

/* A snapshot of the server's counters, read when a scrape arrives. */
struct n4_server_stats {
	unsigned clients;	/* connected now */
	unsigned by_state[4];	/* connecting, waiting, exchanging, closing (pairing.h) */
	unsigned capacity;	/* clients the server holds at most */
	unsigned long accepted; /* connections admitted since start */
	unsigned long pairs;	/* pairs that got their PEERINFOs */
	unsigned long client_closed;
	size_t sources; /* per-source entries tracked */
	bool draining;
	unsigned nrejects; /* rejects by reason: names[i] = count[i] */
	const char *const *reject_names;
	const unsigned long *rejects;
	unsigned long plans[N4_STATS_PLANS]; /* per side, by plan kind */
	/* Hook for the relay: it sets has_relay and fills these in
	 * n4_server_get_stats; until then the relay series are not exported. */
	bool has_relay;
	unsigned relay_active_pairs;
	unsigned long relay_pairs;
	unsigned long long relay_bytes;
	unsigned long relay_dropped;
};

/* Implemented by the server (server.c): a small accessor, no restructuring. */
void n4_server_get_stats(const n4_server *s, struct n4_server_stats *st);
n4_loop *n4_server_loop(n4_server *s);

typedef struct n4_metrics n4_metrics;

/* Listen on addr ("HOST:PORT", "[IPv6]:PORT"; port 0 = any) and answer
 * GET /metrics from loop's callbacks with srv's counters.  NULL + errno. */
n4_metrics *n4_metrics_new(n4_loop *loop, const char *addr, const n4_server *srv);
/* The bound port (useful with port 0). */
uint16_t n4_metrics_port(const n4_metrics *m);
/* Closes the listener and every open connection.  NULL is fine. */
void n4_metrics_free(n4_metrics *m);

/* The HTTP side, pure functions of the bytes received (fuzzed).  The head is
 * complete at its first blank line; bytes before `from` were already checked. */
bool n4_http_head_complete(const char *buf, size_t len, size_t from);
enum n4_http_verdict {
	N4_HTTP_METRICS,   /* GET or HEAD /metrics[?...] */
	N4_HTTP_NOT_FOUND, /* another path */
	N4_HTTP_METHOD,	   /* another method */
	N4_HTTP_BAD,	   /* not an HTTP/1.x request line */
	N4_HTTP_TOO_LARGE, /* request line over 255 bytes */
};
/* Classify a request by its first line; *head_only for HEAD. */
enum n4_http_verdict n4_http_request(const char *buf, size_t len, bool *head_only);

/* The exposition text for st (exported for tests): a malloc'd string in *out. */
int n4_metrics_render(const struct n4_server_stats *st, char **out, size_t *len);

#endif

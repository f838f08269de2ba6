/* server.c - the rendezvous server's lifecycle and its public API (n4.h): create
 * (resolve, limits, listeners, relay), run (one epoll loop, many pairs at once;
 * the graceful drain at the end), status and counters, free.  Layer: above the
 * transport (srv_net.c) and the protocol (srv_proto.c); server_int.h maps the
 * rest.  May call: srv_net.c, srv_proto.c's drain, srv_relay.c's start, pairing.c,
 * ipcap.c, relay.c's counters, loop.c, log.c. */
#include "n4.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "server_int.h"

const char *const n4_srv_reject_names[REJ_COUNT] = {
	"bad_hello", "ident",	"hello_timeout", "wait_timeout", "exchange_timeout", "send_timeout",
	"protocol",  "bad_udp", "spoofed_udp",	 "unknown_udp",	 "ipv6_udp",	     "full",
	"per_ip",    "rate",	"partner_gone",	 "shutdown",	 "key_mismatch",
};

void n4_server_cfg_init(struct n4_server_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->port = N4_DEFAULT_PORT;
	cfg->hello_timeout_ms = 5000;
	cfg->wait_timeout_ms = 60000;
	cfg->exchange_timeout_ms = 10000;
	cfg->drain_timeout_ms = 5000;
	cfg->max_per_ip = 64;
	cfg->conn_rate_per_ip = 20;
	cfg->conn_burst_per_ip = 64;
	cfg->log_rate = 100;
	cfg->port_budget = 512;
	cfg->relay_after = 2;
	cfg->relay_max = 1000;
	cfg->relay_per_ip = 16;
	/* Voice (Opus with headers, 50 packets/s) needs about 100 kbit/s, game
	 * state typically 50-500 kbit/s: 1 Mbit/s each way covers both with room,
	 * while 1000 pairs stay within a 1 Gbit/s uplink.  doc/RELAY.md. */
	cfg->relay_rate_kbit = 1000;
	cfg->relay_burst_kb = 64;
	cfg->relay_idle_s = 60;
}

n4_server *n4_server_new(const struct n4_server_cfg *cfg)
{
	n4_server *s = calloc(1, sizeof(*s));
	union n4_sa addr;
	bool dual;
	int err;

	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->tcp_io.fd = s->udp_io.fd = s->probe_io.fd = s->spare_fd = -1;
	if (cfg->family != 0 && cfg->family != AF_INET && cfg->family != AF_INET6) {
		err = -EINVAL;
		goto out_free;
	}
	if (cfg->only_ident) {
		if (n4_ident_encode(cfg->only_ident, s->only_ident_wire)) {
			err = -EINVAL;
			goto out_free;
		}
		snprintf(s->only_ident, sizeof(s->only_ident), "%s", cfg->only_ident);
	}
	s->cfg.only_ident = NULL; /* not ours to keep */
	s->cfg.bind_host = NULL;
	err = n4_srv_net_resolve(cfg, &addr, &dual);
	if (err)
		goto out_free;
	n4_srv_net_raise_fd_limit(s, cfg->max_clients);
	unsigned long long room =
		s->fd_limit > 2 * FD_HEADROOM ? s->fd_limit - FD_HEADROOM : FD_HEADROOM;
	unsigned by_fds = room > 1000000 ? 1000000 : (unsigned)room;
	s->max_clients = cfg->max_clients && cfg->max_clients < by_fds ? cfg->max_clients : by_fds;
	if (cfg->max_clients > by_fds)
		n4_warn("descriptor limit %llu holds only %u of the %u clients asked for",
			s->fd_limit, by_fds, cfg->max_clients);
	n4_log_set_rate(cfg->log_rate);
	n4_srv_stay_init(&s->staying);
	s->loop = n4_loop_new();
	s->pairing = n4_pairing_new(s->max_clients);
	s->ipcap = n4_ipcap_new(cfg->max_per_ip, cfg->conn_rate_per_ip, cfg->conn_burst_per_ip,
				s->max_clients);
	s->rooms = cfg->no_rooms ? NULL : n4_srv_rooms_new(s->max_clients / 4);
	if (!s->loop || !s->pairing || !s->ipcap || (!cfg->no_rooms && !s->rooms)) {
		err = -ENOMEM;
		goto out_free;
	}
	err = n4_srv_net_listen(s, &addr, dual);
	if (err)
		goto out_free;
	if (!cfg->no_relay &&
	    (err = n4_srv_relay_start(&s->cfg, s->family, s->loop, &addr, &s->relay)) != 0)
		goto out_free;
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return s;
out_free:
	n4_server_free(s);
	errno = -err;
	return NULL;
}

uint16_t n4_server_port(const n4_server *s)
{
	return s->port;
}

unsigned n4_server_capacity(const n4_server *s)
{
	return s->max_clients;
}

void n4_srv_after_iteration(n4_server *s)
{
	n4_srv_bury(s);
	uint64_t now = n4_now_ms();
	if (now >= s->next_sweep_ms) {
		n4_ipcap_sweep(s->ipcap, now);
		if (s->relay)
			n4_relay_sweep(s->relay, now);
		if (s->rooms)
			n4_srv_rooms_sweep(s->rooms, now);
		s->next_sweep_ms = now + 1000;
	}
	if (s->cfg.status_flag && *s->cfg.status_flag) {
		char line[1280];
		*s->cfg.status_flag = 0;
		n4_server_status(s, line, sizeof(line));
		/* Asked for by the operator: never lost to the cap on log lines. */
		n4_info_uncapped("status: %s", line);
	}
}

/* Stop accepting; clients that are not in an exchange cannot finish soon, so
 * they are closed (their clients retry elsewhere or later); pairs in the
 * exchange get drain_timeout_ms to complete. */
void n4_srv_begin_drain(n4_server *s)
{
	if (s->draining)
		return;
	s->draining = true;
	n4_srv_net_stop_accepting(s);
	unsigned finishing = n4_srv_proto_drain(s);
	n4_info("shutting down: no new clients, %u in an exchange get up to %u ms", finishing,
		s->cfg.drain_timeout_ms);
}

int n4_server_run(n4_server *s, volatile sig_atomic_t *stop)
{
	char fam[32];

	snprintf(fam, sizeof(fam), "%s",
		 s->family == 0		? "IPv6 and IPv4"
		 : s->family == AF_INET ? "IPv4"
					: "IPv6");
	n4_info("serving on TCP and UDP port %u (%s); descriptor limit %llu (was %llu): "
		"up to %u clients, %u per source, %u new/s per source%s%s",
		s->port, fam, s->fd_limit, s->fd_limit_was, s->max_clients, s->cfg.max_per_ip,
		s->cfg.conn_rate_per_ip, s->only_ident[0] ? ", identifier " : "", s->only_ident);
	while (!stop || !*stop) {
		int n = n4_loop_run_once(s->loop, 200);
		n4_srv_after_iteration(s);
		if (n < 0 && n != -EINTR)
			return n;
	}
	n4_srv_begin_drain(s);
	uint64_t give_up = n4_now_ms() + s->cfg.drain_timeout_ms + MAX_SYNC_DELAY_MS + 1000;
	while (s->nclients > 0 && n4_now_ms() < give_up) {
		int n = n4_loop_run_once(s->loop, 100);
		n4_srv_after_iteration(s);
		if (n < 0 && n != -EINTR)
			return n;
	}
	return 0;
}

void n4_server_status(const n4_server *s, char *buf, size_t len)
{
	unsigned state[4] = { 0 };

	for (const struct conn *c = s->live; c; c = c->next)
		state[c->pc.state & 3]++;
	int n = snprintf(buf, len,
			 "clients=%u connecting=%u waiting=%u exchanging=%u accepted=%lu pairs=%lu "
			 "closed_by_client=%lu sources=%zu rejects:",
			 s->nclients, state[N4_P_NEW], state[N4_P_WAITING], state[N4_P_PAIRED],
			 s->accepted, s->pairs_done, s->client_closed, n4_ipcap_sources(s->ipcap));
	for (int i = 0; i < REJ_COUNT && n > 0 && (size_t)n < len; i++)
		n += snprintf(buf + n, len - (size_t)n, " %s=%lu", n4_srv_reject_names[i],
			      s->rejects[i]);
	if (n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " flows=%lu flows_dropped=%lu", s->flows,
			      s->flows_dropped);
	if (n > 0 && (size_t)n < len && (s->fast_flows || s->fast_no))
		n += snprintf(buf + n, len - (size_t)n, " fast_flows=%lu fast_no=%lu",
			      s->fast_flows, s->fast_no);
	if (s->rooms && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n,
			      " rooms=%u hosted=%lu joins=%lu refused=%lu walk_skips=%lu",
			      n4_srv_rooms_count(s->rooms), s->rooms_hosted, s->room_joins,
			      s->room_refused, s->walk_skips);
	if (s->relay && n > 0 && (size_t)n < len)
		n4_relay_status(s->relay, buf + n, len - (size_t)n);
}

/* For the metrics endpoint (metrics.h): the counters above, read at a scrape. */
void n4_server_get_stats(const n4_server *s, struct n4_server_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (const struct conn *c = s->live; c; c = c->next)
		st->by_state[c->pc.state & 3]++;
	st->clients = s->nclients;
	st->capacity = s->max_clients;
	st->accepted = s->accepted;
	st->pairs = s->pairs_done;
	st->client_closed = s->client_closed;
	st->sources = n4_ipcap_sources(s->ipcap);
	st->draining = s->draining;
	st->nrejects = REJ_COUNT;
	st->reject_names = n4_srv_reject_names;
	st->rejects = s->rejects;
	memcpy(st->plans, s->plans, sizeof(st->plans));
	if (s->relay) {
		struct n4_relay_counts rc;
		n4_relay_counts(s->relay, &rc);
		st->has_relay = true;
		st->relay_active_pairs = rc.pairs;
		st->relay_pairs = (unsigned long)rc.allocated;
		st->relay_bytes = rc.bytes;
		st->relay_dropped = (unsigned long)rc.dropped;
	}
}

n4_loop *n4_server_loop(n4_server *s)
{
	return s->loop;
}

void n4_server_free(n4_server *s)
{
	if (!s)
		return;
	while (s->live)
		n4_srv_conn_close(s->live, false);
	n4_srv_bury(s);
	n4_relay_free(s->relay);
	if (s->tcp_io.fd >= 0)
		close(s->tcp_io.fd);
	if (s->udp_io.fd >= 0)
		close(s->udp_io.fd);
	if (s->probe_io.fd >= 0)
		close(s->probe_io.fd);
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	n4_loop_free(s->loop);
	n4_pairing_free(s->pairing);
	n4_ipcap_free(s->ipcap);
	n4_srv_rooms_free(s->rooms);
	free(s);
}

/* server_relay.c - the server's side of the relay (N4_EXT_RELAY): the client's
 * lost-round count, the decision to relay a pair, the grant sent before PEERINFO
 * (the relay itself, its ports and forwarding, is relay.c). */
#include "n4.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "server_int.h"

/* A client granted N4_EXT_RELAY sends one RELAY message right after READY. */
bool n4_srv_relay_wants_ask(const struct conn *c)
{
	return (c->pc.ext & N4_EXT_RELAY) && c->pc.state == N4_P_PAIRED && !c->relay_heard;
}

void n4_srv_handle_relay_ask(struct conn *c)
{
	struct n4_msg m;
	char b[64];

	if (n4_wire_decode(c->in, N4_MSG_SIZE, N4_CMD_RELAY, &m)) {
		c->srv->rejects[REJ_PROTOCOL]++;
		n4_info("%s: malformed RELAY message, closed", n4_srv_conn_str(c, b, sizeof(b)));
		n4_srv_conn_close(c, true);
		return;
	}
	c->relay_heard = true;
	c->lost_rounds = m.ext;
	n4_srv_maybe_schedule(c->srv, c);
}

/* Relay the pair when both sides accept it and punching is hopeless (the plan
 * says so) or has lost --relay-after rounds already.  False: punch. */
bool n4_srv_relay_pair(struct n4_server *s, struct conn *a, struct conn *b)
{
	if (!s->relay || !(a->pc.ext & N4_EXT_RELAY) || !(b->pc.ext & N4_EXT_RELAY))
		return false;
	unsigned lost = a->lost_rounds > b->lost_rounds ? a->lost_rounds : b->lost_rounds;
	bool hopeless = (a->disc && a->disc->d.plan.kind == N4_PLAN_IMPOSSIBLE) ||
			(b->disc && b->disc->d.plan.kind == N4_PLAN_IMPOSSIBLE);
	/* Two clients behind one NAT that swapped local addresses (PEERLOCAL)
	 * try their LAN path first: only lost rounds send them to the relay. */
	bool lan = (a->lan && a->lan->npeer) || (b->lan && b->lan->npeer);
	if ((!hopeless || lan) && lost < s->cfg.relay_after)
		return false;
	struct n4_relay_side_in in[2] = { { .src = a->src, .udp_ip = a->pc.udp.sin_addr.s_addr },
					  { .src = b->src, .udp_ip = b->pc.udp.sin_addr.s_addr } };
	char b1[64], b2[64];
	int err = n4_relay_alloc(s->relay, &in[0], &in[1], &a->grant, &b->grant);
	if (err) {
		n4_warn("%s and %s: no relay (%s), punching instead",
			n4_srv_conn_str(a, b1, sizeof(b1)), n4_srv_conn_str(b, b2, sizeof(b2)),
			strerror(-err));
		return false;
	}
	n4_info(" <= Relay ports %u/%u for %s and %s (%s)", a->grant.port, b->grant.port,
		n4_srv_conn_str(a, b1, sizeof(b1)), n4_srv_conn_str(b, b2, sizeof(b2)),
		hopeless ? "unpunchable" : "punching lost rounds already");
	a->relayed = b->relayed = true;
	return true;
}

/* RELAY (port + token[0..3]) and RELAY_TOKEN (token[4..9]), before PEERINFO. */
void n4_srv_send_relay(struct conn *c)
{
	struct n4_msg m;

	n4_msg_init(&m, N4_CMD_RELAY, 0, NULL);
	m.payload[0] = (uint8_t)(c->grant.port >> 8);
	m.payload[1] = (uint8_t)c->grant.port;
	memcpy(m.payload + 2, c->grant.token, 4);
	n4_srv_conn_send(c, &m);
	n4_msg_init(&m, N4_CMD_RELAY_TOKEN, 0, c->grant.token + 4);
	n4_srv_conn_send(c, &m);
}

/* The relay binds where the UDP listener does; clients register over IPv4. */
int n4_srv_relay_start(n4_server *s, const union n4_sa *addr)
{
	const struct n4_server_cfg *cfg = &s->cfg;
	struct n4_relay_cfg rc = { .max_pairs = cfg->relay_max,
				   .max_per_ip = cfg->relay_per_ip,
				   .rate_kbit = cfg->relay_rate_kbit,
				   .burst_kb = cfg->relay_burst_kb,
				   .total_kbit = cfg->relay_total_kbit,
				   .idle_s = cfg->relay_idle_s,
				   .port_lo = cfg->relay_port_lo,
				   .port_hi = cfg->relay_port_hi };

	if (s->family == AF_INET6) {
		n4_warn("IPv6-only: no relay (clients register over IPv4)");
		return 0;
	}
	if (!rc.max_pairs)
		return 0;
	if (rc.port_lo > rc.port_hi || (rc.port_hi && !rc.port_lo))
		return -EINVAL;
	s->relay = n4_relay_new(&rc, s->loop, addr);
	return s->relay ? 0 : -errno;
}

/* srv_relay.c - the relay leaf (srv_relay.h).  Layer: leaf; may call relay.c,
 * wire.c, log.c. */
#include "srv_relay.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

/* The relay binds where the UDP listener does; clients register over IPv4. */
int n4_srv_relay_start(const struct n4_server_cfg *cfg, int family, n4_loop *loop,
		       const union n4_sa *addr, n4_relay **out)
{
	struct n4_relay_cfg rc = { .max_pairs = cfg->relay_max,
				   .max_per_ip = cfg->relay_per_ip,
				   .rate_kbit = cfg->relay_rate_kbit,
				   .burst_kb = cfg->relay_burst_kb,
				   .total_kbit = cfg->relay_total_kbit,
				   .idle_s = cfg->relay_idle_s,
				   .port_lo = cfg->relay_port_lo,
				   .port_hi = cfg->relay_port_hi };

	*out = NULL;
	if (family == AF_INET6) {
		n4_warn("IPv6-only: no relay (clients register over IPv4)");
		return 0;
	}
	if (!rc.max_pairs)
		return 0;
	if (rc.port_lo > rc.port_hi || (rc.port_hi && !rc.port_lo))
		return -EINVAL;
	*out = n4_relay_new(&rc, loop, addr);
	return *out ? 0 : -errno;
}

int n4_srv_relay_ask(struct n4_srv_relay_side *side, const uint8_t *msg)
{
	struct n4_msg m;

	if (n4_wire_decode(msg, N4_MSG_SIZE, N4_CMD_RELAY, &m))
		return -EPROTO;
	side->heard = true;
	side->lost_rounds = m.ext;
	return 0;
}

bool n4_srv_relay_decide(n4_relay *relay, unsigned relay_after, struct n4_srv_relay_cand *a,
			 struct n4_srv_relay_cand *b)
{
	if (!relay || !a->granted || !b->granted)
		return false;
	unsigned lost = a->side->lost_rounds > b->side->lost_rounds ? a->side->lost_rounds
								    : b->side->lost_rounds;
	bool hopeless = a->hopeless || b->hopeless;
	/* Two clients behind one NAT that swapped local addresses (PEERLOCAL)
	 * try their LAN path first: only lost rounds send them to the relay. */
	bool lan = a->lan || b->lan;
	if ((!hopeless || lan) && lost < relay_after)
		return false;
	struct n4_relay_side_in in[2] = { { .src = a->src, .udp_ip = a->udp_ip },
					  { .src = b->src, .udp_ip = b->udp_ip } };
	int err = n4_relay_alloc(relay, &in[0], &in[1], &a->side->grant, &b->side->grant);
	if (err) {
		/* The per-source cap answers -EMFILE: say which limit it is. */
		n4_warn("%s and %s: no relay (%s), punching instead", a->name, b->name,
			err == -EMFILE ? "a source's relayed pairs are at --relay-per-ip; a "
					 "quiet pair is freed after --relay-idle"
				       : strerror(-err));
		return false;
	}
	n4_info(" <= Relay ports %u/%u for %s and %s (%s)", a->side->grant.port,
		b->side->grant.port, a->name, b->name,
		hopeless ? "unpunchable" : "punching lost rounds already");
	a->side->relayed = b->side->relayed = true;
	return true;
}

void n4_srv_relay_msgs(const struct n4_srv_relay_side *side, struct n4_msg out[2])
{
	n4_msg_init(&out[0], N4_CMD_RELAY, 0, NULL);
	out[0].payload[0] = (uint8_t)(side->grant.port >> 8);
	out[0].payload[1] = (uint8_t)side->grant.port;
	memcpy(out[0].payload + 2, side->grant.token, 4);
	n4_msg_init(&out[1], N4_CMD_RELAY_TOKEN, 0, side->grant.token + 4);
}

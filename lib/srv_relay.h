/* srv_relay.h - the server's relay leaf (N4_EXT_RELAY): a client's lost-round
 * count (its RELAY message after READY), the decision to relay a pair, and the
 * grant's messages before PEERINFO.  relay.c is the relay itself (ports, tokens,
 * forwarding).  Layer: leaf (see server_int.h "Leaves"): never sends, closes or
 * calls the protocol.  May call: relay.c, wire.c, log.c. */
#ifndef N4_SRV_RELAY_H
#define N4_SRV_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "n4.h"
#include "relay.h"
#include "wire.h"

/* One client's side, inside its connection. */
struct n4_srv_relay_side {
	uint8_t lost_rounds; /* from its RELAY message */
	bool heard;	     /* its RELAY message arrived */
	bool relayed;	     /* its pair is relayed: grant holds its port */
	struct n4_relay_grant grant;
};

/* The relay for a server bound at addr (family: 0 for IPv6 and IPv4): *out NULL
 * when the configuration asks for none or the server is IPv6-only.  0 or -errno. */
int n4_srv_relay_start(const struct n4_server_cfg *cfg, int family, n4_loop *loop,
		       const union n4_sa *addr, n4_relay **out);
/* The client's RELAY message (N4_MSG_SIZE bytes): 0, or -EPROTO when malformed. */
int n4_srv_relay_ask(struct n4_srv_relay_side *side, const uint8_t *msg);

/* What the decision needs of one side of a pair. */
struct n4_srv_relay_cand {
	struct n4_srv_relay_side *side;
	bool granted;  /* negotiated N4_EXT_RELAY */
	bool hopeless; /* its plan says punching cannot work */
	bool lan;      /* it gets its partner's local addresses, or (first round)
	                * its IPv6 candidate: a direct path to try first */
	struct n4_ipkey src;
	uint32_t udp_ip;  /* its EXCHANGE's IPv4, network order */
	const char *name; /* for the log */
};
/* Relay the pair when both sides accept it and punching is hopeless or has lost
 * relay_after rounds already: then both sides' grants are filled and true.
 * False: punch (also when the relay has no room). */
bool n4_srv_relay_decide(n4_relay *relay, unsigned relay_after, struct n4_srv_relay_cand *a,
			 struct n4_srv_relay_cand *b);
/* RELAY (port + token[0..3]) and RELAY_TOKEN (token[4..9]), in that order. */
void n4_srv_relay_msgs(const struct n4_srv_relay_side *side, struct n4_msg out[2]);

#endif

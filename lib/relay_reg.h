/* relay_reg.h - the relay's registration datagram (both sides) and the client's
 * registration exchange.
 *
 * A relayed client sends, from the socket it will use, to its relay port:
 *
 *   0     N4_CMD_RELAY_REG (0x0B)
 *   1     flags: 0 from a client; from the relay N4_RELAY_ACK, plus
 *         N4_RELAY_PEER_UP once the other side has registered too
 *   2..11 token: 10 random bytes (getrandom) the server granted to this side
 *         over its TCP connection (RELAY + RELAY_TOKEN), never sent elsewhere
 *  [12..27 MAC: reserved.  The pair key of N4_EXT_KEY never reaches the
 *         server, so it cannot key a MAC the relay checks; the token is the
 *         secret.  A MAC under a key server and client share (a signed relay
 *         allocation, doc/RELAY.md "Past one machine") would go here.]
 *
 * The relay answers each valid registration with one ack of the same size to
 * the registering address (never more bytes than it received), so a client
 * knows when both sides are up.  A registration is only valid from the IP the
 * server saw the client's EXCHANGE come from, with the token of that port: a
 * stranger can neither register nor move a registration.
 *
 * Refresh rule: a pair stays allocated while either side sends anything (data or
 * a registration) within the relay's idle timeout (--relay-idle, 60 s).  NATs
 * drop UDP mappings after 30 s or more, so a keeper should send a registration
 * every 15-25 s on a quiet path; it doubles as a liveness check (the ack).  A
 * registration from a new address (the NAT rebound the mapping) moves the side
 * to that address. */
#ifndef N4_RELAY_REG_H
#define N4_RELAY_REG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "n4.h"
#include "wait.h"

#define N4_RELAY_REG_SIZE (2 + N4_RELAY_TOKEN_SIZE)
#define N4_RELAY_ACK 0x01u
#define N4_RELAY_PEER_UP 0x02u

struct n4_relay_reg {
	uint8_t flags;
	uint8_t token[N4_RELAY_TOKEN_SIZE];
};

/* Serialise into exactly N4_RELAY_REG_SIZE bytes. */
void n4_relay_reg_encode(const struct n4_relay_reg *r, uint8_t out[N4_RELAY_REG_SIZE]);
/* Parse untrusted bytes: -EMSGSIZE for a wrong length, -EPROTO for another
 * command or unknown flags.  Says nothing about the token (the caller compares). */
int n4_relay_reg_decode(const void *buf, size_t len, struct n4_relay_reg *r);
/* Token comparison in constant time. */
bool n4_relay_token_equal(const uint8_t a[N4_RELAY_TOKEN_SIZE],
			  const uint8_t b[N4_RELAY_TOKEN_SIZE]);

/* The client's side: register fd at relay with token until the relay says both
 * sides are up (0), or deadline_ms (-ETIMEDOUT).  One registration per round
 * trip (wait_ms between resends), so acks rarely arrive after the return; a
 * datagram from the relay that is no ack (the peer's first data) also means
 * both are up and is left in the socket for the program. */
int n4_relay_register(int fd, const struct sockaddr_in *relay,
		      const uint8_t token[N4_RELAY_TOKEN_SIZE], unsigned wait_ms,
		      uint64_t deadline_ms, const struct n4_waitctx *ctx);

#endif

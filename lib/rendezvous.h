/* rendezvous.h - the client's side of the exchange with the server: HELLO,
 * READY, EXCHANGE, PEERINFO. */
#ifndef N4_RENDEZVOUS_H
#define N4_RENDEZVOUS_H

#include <netinet/in.h>
#include <stdint.h>

#include "cand6.h"
#include "n4.h"
#include "predict.h"
#include "wait.h"
#include "wire.h"

struct n4_rv {
	int tcp_fd;
	struct sockaddr_in server;
	uint8_t ident[N4_PAYLOAD_SIZE];
	uint8_t offer;	 /* extensions offered in HELLO (0: pure v1) */
	uint8_t granted; /* extensions the server granted (0: original server) */
	uint8_t token[N4_TOKEN_SIZE];
	struct sockaddr_in peer; /* from PEERINFO */
	uint8_t peer_flags;	 /* N4_PEER_N4 when the server says the peer is ours */
	unsigned rtt_ms;	 /* TCP connect time to the server */
	/* NAT discovery (N4_EXT_PROBE): extra sockets whose EXCHANGEs let the
	 * server measure this NAT, and the plan it sends back. */
	const int *probe_fds;
	unsigned nprobes;
	struct n4_plan plan;
	/* Relay (N4_EXT_RELAY): rounds lost so far, told to the server after READY;
	 * when it relays the pair, the port and token (relay_port 0: punch). */
	uint8_t lost_rounds;
	uint16_t relay_port;
	uint8_t relay_token[N4_RELAY_TOKEN_SIZE];
	/* N4_EXT_SEQ: numbered probes (resent until PEERINFO) and the TUNE the
	 * server sends before PLAN; nosweep is told to the server in each probe. */
	bool nosweep;
	struct n4_tune tune;
	/* N4_EXT_KEY: the long pairing id sent when the server asks (KEYID), and
	 * our own observed address from SELF (have_self). */
	const uint8_t *long_id;
	struct sockaddr_in self;
	bool have_self;
	/* ... our PUNCH nonce for this round, sent after READY, and the
	 * partner's as the server passed it on (have_peer_nonce: all of it). */
	const uint8_t *nonce; /* 16 bytes */
	uint8_t peer_nonce[3 * N4_PAYLOAD_SIZE];
	uint8_t peer_nonce_parts;
	bool have_peer_nonce;
	/* The server called this pairing off (N4_CMD_AGAIN, keyed only): the
	 * exchange returned -EAGAIN, HELLO again at once. */
	bool again;
	/* Same LAN (N4_EXT_LOCAL): the local address we announced (family 0:
	 * none) and the partner's, from PEERLOCAL (only when both sides share a
	 * public IP). */
	struct sockaddr_in own_local;
	struct sockaddr_in peer_local[N4_LOCAL_MAX];
	unsigned npeer_local;
	/* Rooms (N4_EXT_ROOM): sent right after READY when granted: a host's
	 * ANSWER (the ticket) or anyone else's JOINER (its peer id). */
	uint8_t room_sub;
	uint8_t room_payload[N4_PAYLOAD_SIZE];
	/* A room's registration (n4_room_host): n4_rv_hello sends ROOM HOST with
	 * this many joiners before HELLO (0: an ordinary client). */
	uint16_t host_max;
	/* A join-only client: ROOM JOINER (room_payload) before HELLO, none after READY. */
	bool join_first;
	/* IPv6 candidates (cand6.h): the V6 probe, sent from v6_fd to server6 before
	 * the first EXCHANGE and with each resend (v6_fd -1: none), and the server's
	 * reports before PEERINFO (v6_bad: malformed, unusable). */
	int v6_fd;
	struct sockaddr_in6 server6;
	uint8_t v6_probe[N4_V6_PROBE_SIZE];
	struct n4_v6rx v6rx;
	bool v6_bad;
};

void n4_rv_init(struct n4_rv *rv, const struct sockaddr_in *server,
		const uint8_t ident[N4_PAYLOAD_SIZE], uint8_t offer);
/* Connect and send HELLO.  -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT... */
int n4_rv_hello(struct n4_rv *rv, uint64_t deadline_ms, const struct n4_waitctx *ctx);
/* Wait for READY.  -ECONNRESET when the server closed, -EPROTO on garbage,
 * -EAGAIN and rv->again when the server called the pairing off (N4_CMD_AGAIN). */
/* After a registration's HELLO: answer the server's KEYID request (keyed), then
 * read its ROOM answer: 0 and *sub (HOSTED, TAKEN, REFUSED) and *reason, or
 * -errno (-ECONNRESET: the server closed the connection: no rooms there). */
int n4_rv_host_reply(struct n4_rv *rv, uint64_t deadline_ms, uint8_t *sub, uint8_t *reason);
int n4_rv_ready(struct n4_rv *rv, uint64_t deadline_ms, const struct n4_waitctx *ctx);
/* Send EXCHANGE from udp_fd (three at once, then again every 250 ms against
 * loss) until PEERINFO arrives on TCP (-EAGAIN and rv->again: the server called
 * the pairing off, see N4_CMD_AGAIN).  With N4_EXT_PROBE granted, also send the
 * discovery probes and take the PLAN that precedes PEERINFO.  With N4_EXT_LOCAL
 * granted, first announce our local address (udp_fd's port) and take the
 * partner's PEERLOCALs. */
int n4_rv_exchange(struct n4_rv *rv, int udp_fd, uint64_t deadline_ms,
		   const struct n4_waitctx *ctx);
void n4_rv_close(struct n4_rv *rv);

/* A fast flow's answer (fast.h): the n messages a rendezvous ends with (TUNE,
 * PLAN, SELF, PEERINFO last) taken into rv as n4_rv_exchange takes them (set
 * rv->granted first).  0, or -EPROTO for anything else in it. */
int n4_rv_take_answer(struct n4_rv *rv, const uint8_t (*msgs)[N4_MSG_SIZE], unsigned n);

#endif

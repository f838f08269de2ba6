/* wire.h - the n4 v1 wire format (8-byte messages) and our negotiated extensions.
 *
 * Extensions ride in the reserved byte (byte 1), which the original ignores in
 * HELLO and READY, so an original peer never sees anything but v1:
 *   HELLO.ext    = capabilities the client offers (N4_EXT_*); original: 0.
 *   READY.ext    = capabilities the server grants (only when offered); with
 *                  N4_EXT_TOKEN the READY payload carries a 6-byte token.
 *   EXCHANGE.ext = N4_EXT_TOKEN: the payload is that token instead of the
 *                  identifier, so two clients behind one public IP are told apart.
 *   PEERINFO.ext = (to extended clients only) N4_PEER_N4 when the partner is ours.
 *   PUNCH.ext    = N4_PUNCH_ACK: "I have received your PUNCH" (sent only to peers
 *                  known to be ours: the original accepts only its exact bytes).
 *   LOCAL        = (N4_EXT_LOCAL) client -> server over TCP after READY: one of its
 *                  local addresses, the last one flagged; PEERLOCAL = server -> client
 *                  before PEERINFO: the partner's, only when both share a public IP.
 */
#ifndef N4_WIRE_H
#define N4_WIRE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define N4_MSG_SIZE 8
#define N4_PAYLOAD_SIZE 6
#define N4_TOKEN_SIZE 6
#define N4_APUNCH_SIZE 68 /* N4_CMD_APUNCH datagram, laid out in auth.h */

enum n4_cmd {
	N4_CMD_HELLO = 0x01,
	N4_CMD_READY = 0x02,
	N4_CMD_EXCHANGE = 0x03,
	N4_CMD_PEERINFO = 0x04,
	N4_CMD_PUNCH = 0x05,
	/* Extension, only ever sent to clients that were granted N4_EXT_PROBE:
	 * server -> client over TCP before PEERINFO, the plan for this side
	 * (predict.h), the plan kind in the reserved byte. */
	N4_CMD_PLAN = 0x06,
	/* Extensions with N4_EXT_KEY (key.h, auth.h), only between parties that
	 * negotiated it.  KEYID: server -> client "send your long pairing id"
	 * (granting N4_EXT_KEY in the reserved byte) right after HELLO, in one
	 * segment with READY when a partner waits on the short id; then client ->
	 * server with the part index in the reserved byte and 6 bytes each: parts
	 * 0..2 the long id (at once), parts 3..5 this round's PUNCH nonce (after
	 * READY, 16 bytes and 2 zero bytes).  PEERINFO waits for both long ids to
	 * match (else AGAIN). */
	N4_CMD_KEYID = 0x07,
	/* SELF: server -> client TCP, just before PEERINFO.  Reserved byte 0: the
	 * client's own observed EXCHANGE address (PEERINFO layout), bound into the
	 * PUNCH MAC; 1..3: the partner's PUNCH nonce, 6 bytes each (when it came
	 * in time), so that the first authenticated PUNCH can already win. */
	N4_CMD_SELF = 0x08,
	/* APUNCH: the authenticated PUNCH between keyed clients (auth.h), UDP,
	 * N4_APUNCH_SIZE bytes: never an 8-byte message. */
	N4_CMD_APUNCH = 0x09,
	/* Relay (N4_EXT_RELAY, relay.h), only with clients granted the bit.
	 * RELAY over TCP: client -> server right after READY, ext = punching
	 * rounds this attempt has lost; server -> client before PEERINFO when the
	 * pair is relayed, payload = relay port (2, big-endian) + token[0..3].
	 * RELAY_REG: the UDP registration at the relay port (relay_reg.h).
	 * RELAY_TOKEN over TCP, server -> client right after RELAY: token[4..9]. */
	N4_CMD_RELAY = 0x0A,
	N4_CMD_RELAY_REG = 0x0B,
	N4_CMD_RELAY_TOKEN = 0x0C,
	/* Same-LAN extension (N4_EXT_LOCAL), both over TCP.  LOCAL: client ->
	 * server after READY, one local address of the client (payload as in
	 * PEERINFO), N4_LOCAL_LAST on the last; an all-zero payload with
	 * N4_LOCAL_LAST means "no (more) address".  PEERLOCAL: server -> client
	 * before PEERINFO, one local address of the partner, sent only when both
	 * partners negotiated the extension and share one public IP. */
	N4_CMD_LOCAL = 0x0D,
	N4_CMD_PEERLOCAL = 0x0E,
	/* Real networks (N4_EXT_SEQ only): PROBE, client -> server over UDP, a
	 * numbered discovery probe (predict.h struct n4_seq_probe in the reserved
	 * byte, the token as payload); TUNE, server -> client over TCP before PLAN,
	 * guard time, pace and measured jitter (predict.h struct n4_tune).  Outside
	 * 1..N4_CMD_MAX: n4_wire_decode accepts them by name. */
	N4_CMD_PROBE = 0x11,
	N4_CMD_TUNE = 0x12,
	/* AGAIN (N4_EXT_KEY only): server -> client over TCP after READY, "this
	 * pairing is off, say HELLO again at once" (not a lost round): the partner
	 * it was paired with on the short id turned out to have another long id,
	 * or it left before PEERINFO.  The server closes the connection after it. */
	N4_CMD_AGAIN = 0x13,
	/* SIDE: client <-> client, UDP, over the won path after a WIN, only with a
	 * peer that negotiated our extensions: the sender's side (a random id,
	 * its program's port, its LAN addresses) for the flows of a call (side.h,
	 * doc/PROTOCOL.md "Sides").  Never an 8-byte message; bytes 2..7 carry the
	 * path's wire identifier at the same place as PUNCH and APUNCH. */
	N4_CMD_SIDE = 0x15,
	/* FAST: a further flow's rendezvous over the pair's kept connections, and
	 * its UDP probe (fast.h, doc/PROTOCOL.md "Fast flows"); the subcode in the
	 * reserved byte.  Only on kept connections, never to an original peer. */
	N4_CMD_FAST = 0x18,
};
/* The highest command: 8-byte decoding accepts any up to it and each caller
 * checks the one it expects (APUNCH 0x09 and RELAY_REG 0x0B are never 8-byte
 * messages; their own decoders check them). */
#define N4_CMD_MAX N4_CMD_PEERLOCAL

/* Capability bits in HELLO/READY. */
#define N4_EXT_TOKEN 0x01u /* token-tagged EXCHANGE, synchronised PEERINFO */
#define N4_EXT_PROBE 0x02u /* NAT discovery: probe EXCHANGEs, PLAN before PEERINFO */
#define N4_EXT_KEY 0x04u   /* long keyed pairing id (KEYID), SELF before PEERINFO */
#define N4_EXT_RELAY 0x08u /* the server may relay the pair (RELAY before PEERINFO) */
#define N4_EXT_LOCAL 0x10u /* same-LAN: LOCAL after READY, PEERLOCAL before PEERINFO */
#define N4_EXT_SEQ 0x40u   /* numbered probes (N4_CMD_PROBE) and TUNE; rides on PROBE */
#define N4_EXT_ROOM 0x80u  /* rooms: a host and its joiners (N4_CMD_ROOM) */
#define N4_EXT_ALL N4_EXT_TOKEN
/* Shim sessions (lib/stay.h): after PEERINFO the client keeps its TCP connection;
 * when a client with the same identifier says HELLO, the server sends REPUNCH on
 * it, so a side that is still running but silent learns that its peer came back. */
#define N4_EXT_STAY 0x20u
/* Extension command, only to clients granted N4_EXT_STAY, on their kept connection;
 * payload: the identifier. */
#define N4_CMD_REPUNCH 0x0F
/* Extension command, client -> server, the first message of a new TCP connection
 * from a client granted N4_EXT_STAY before, whose kept connection was lost: keep this
 * one for REPUNCH instead (payload: the identifier). */
#define N4_CMD_STAY 0x10
/* Extension command, only on kept connections (N4_EXT_STAY): a further flow of a
 * pair ("calls"), so that the peer's side starts punching it even when its socket
 * only listens.  Client -> server, reserved byte 0; server -> every other kept
 * connection of the identifier, reserved byte N4_FLOW_FORWARDED.  Payload: the
 * sender's port, the receiver's port (as the sender sees them; 2 bytes each,
 * big-endian, never 0) and a 2-byte nonce the receiver echoes. */
#define N4_CMD_FLOW 0x16
#define N4_FLOW_FORWARDED 0x01u
/* Rooms (N4_EXT_ROOM only): one 8-byte command, what it says in the reserved byte
 * (doc/PROTOCOL.md "Rooms"). */
#define N4_CMD_ROOM 0x14
/* IPv6 candidates (cand6.h, doc/PROTOCOL.md "IPv6"): the V6 probe over UDP, and
 * the server's reports over TCP before PEERINFO, only to clients whose probe
 * arrived; the kind or part in the reserved byte. */
#define N4_CMD_V6 0x17
#define N4_ROOM_HOST 0x01      /* host -> server: host this room (max joiners, 2 bytes) */
#define N4_ROOM_JOINER 0x02    /* client -> server: my peer id */
#define N4_ROOM_ANSWER 0x03    /* host -> server, new connection: the join ticket */
#define N4_ROOM_HOSTED 0x10    /* server -> host: the room is yours */
#define N4_ROOM_TAKEN 0x11     /* server -> host: the room has a host already */
#define N4_ROOM_REFUSED 0x12   /* server -> client: refused, reason in payload[0] */
#define N4_ROOM_JOIN 0x20      /* server -> host: a joiner waits (the ticket) */
#define N4_ROOM_JOIN_PEER 0x21 /* server -> host, right after JOIN: its peer id */
/* EXCHANGE reserved-byte flags with N4_EXT_PROBE (on top of N4_EXT_TOKEN). */
#define N4_EXCH_PROBE 0x02u /* an extra discovery probe, not the pool's EXCHANGE */
#define N4_EXCH_LAST 0x04u  /* the last probe of this client */
/* The server's second UDP port, for telling endpoint-independent mappings
 * apart: its main port + 1. */
#define N4_PROBE_PORT_DELTA 1
/* PEERINFO reserved byte to extended clients. */
#define N4_PEER_N4 0x01u
/* ... and a room's host answering this joiner (it takes no SIDE, doc/PROTOCOL.md). */
#define N4_PEER_HOST 0x02u
/* PUNCH reserved byte. */
#define N4_PUNCH_ACK 0x01u
/* LOCAL / PEERLOCAL reserved byte: the last address of this side. */
#define N4_LOCAL_LAST 0x01u
/* Local addresses one side may announce (LOCAL messages after READY). */
#define N4_LOCAL_MAX 4

struct n4_msg {
	uint8_t cmd;
	uint8_t ext;
	uint8_t payload[N4_PAYLOAD_SIZE];
};

/* Serialise into exactly N4_MSG_SIZE bytes. */
void n4_wire_encode(const struct n4_msg *msg, uint8_t out[N4_MSG_SIZE]);

/* Parse untrusted bytes.  -EMSGSIZE when len != 8, -EPROTO when the command is
 * not a v1 command, or not `expect_cmd` when expect_cmd != 0. */
int n4_wire_decode(const void *buf, size_t len, uint8_t expect_cmd, struct n4_msg *msg);

/* Identifier: 1..6 printable ASCII characters without spaces, right-padded with
 * spaces on the wire.  -EINVAL otherwise. */
int n4_ident_check(const char *ident);
int n4_ident_encode(const char *ident, uint8_t out[N4_PAYLOAD_SIZE]);
/* Decode and validate a wire identifier into a NUL-terminated string. */
int n4_ident_decode(const uint8_t in[N4_PAYLOAD_SIZE], char out[N4_PAYLOAD_SIZE + 1]);

/* PEERINFO payload: IPv4 address then big-endian port.  Decode rejects port 0
 * and the unspecified / broadcast / multicast addresses (-EINVAL). */
void n4_peerinfo_encode(const struct sockaddr_in *addr, uint8_t out[N4_PAYLOAD_SIZE]);
int n4_peerinfo_decode(const uint8_t in[N4_PAYLOAD_SIZE], struct sockaddr_in *addr);

/* LOCAL / PEERLOCAL.  encode: addr NULL = "no address" (all-zero payload).
 * decode: 1 and *addr for an address, 0 for "no address" (only valid with
 * N4_LOCAL_LAST), -EPROTO for another command, -EINVAL for an address no
 * other host could use (port 0, unspecified, loopback, broadcast, multicast)
 * or unknown flags. */
void n4_local_encode(uint8_t cmd, const struct sockaddr_in *addr, bool last, struct n4_msg *msg);
int n4_local_decode(const struct n4_msg *msg, struct sockaddr_in *addr);

/* FLOW (N4_CMD_FLOW): ports and nonce in host order (struct n4_flow_note, n4.h).
 * decode: 0, -EMSGSIZE when len != 8, -EPROTO for another command, -EINVAL when
 * the reserved byte is not ext or a port is 0. */
struct n4_flow_note;
void n4_flow_encode(const struct n4_flow_note *f, uint8_t ext, struct n4_msg *msg);
int n4_flow_decode(const void *buf, size_t len, uint8_t ext, struct n4_flow_note *f);

/* Build a message in one call. */
void n4_msg_init(struct n4_msg *msg, uint8_t cmd, uint8_t ext, const uint8_t *payload);

/* The PUNCH an original client sends and accepts: 05 00 ident. */
void n4_punch_bytes(const uint8_t ident[N4_PAYLOAD_SIZE], uint8_t ext, uint8_t out[N4_MSG_SIZE]);

#endif

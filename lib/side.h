/* side.h - the SIDE datagram and the exchange of sides after a WIN.
 *
 * SIDE (N4_CMD_SIDE, UDP, client <-> client over the won path):
 *   0       N4_CMD_SIDE
 *   1       flags: N4_SIDE_HAVE = "I have your SIDE"
 *   2..7    the path's wire identifier, as its PUNCHes carry it (with a key:
 *           the derived short id), at the same place as in PUNCH and APUNCH
 *   8..15   the sender's side id (random, never all zero)
 *   16..17  the sender's program port (big-endian, never 0)
 *   18      naddrs, 0..N4_SIDE_MAX_ADDRS
 *   19..    naddrs IPv4 addresses, 4 bytes each (network order)
 *   [then, between keyed peers only: MAC = BLAKE2s-128(the sender's side key;
 *    every byte before it)]
 * So 19..35 bytes without a key, 35..51 with one; any other length, an
 * address no host could use (0/8, 127/8, 224/3) or unknown flags is malformed.
 *
 * The side keys: BLAKE2s(the pair's PUNCH MAC key; "n4 side mac key" 0 ||
 * sender's nonce || receiver's nonce) with this round's two PUNCH nonces (auth.h),
 * one per direction, so a SIDE is good for this pairing and round only, and one
 * reflected back to its sender fails. */
#ifndef N4_SIDE_H
#define N4_SIDE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "n4.h"
#include "wait.h"
#include "wire.h"

#define N4_SIDE_HEAD_SIZE 19
#define N4_SIDE_MIN_SIZE N4_SIDE_HEAD_SIZE
#define N4_SIDE_MAX_SIZE (N4_SIDE_HEAD_SIZE + 4 * N4_SIDE_MAX_ADDRS + N4_MAC_SIZE)
#define N4_SIDE_HAVE 0x01u
/* Between copies of our SIDE until the exchange is done. */
#define N4_SIDE_RESEND_MS 50

struct n4_side_msg {
	uint8_t flags;
	uint8_t ident[N4_PAYLOAD_SIZE];
	struct n4_side side;
	bool has_mac; /* the length says a MAC follows (not checked by decode) */
};

/* The two keys of one pairing's SIDEs, each direction its own. */
struct n4_side_keys {
	uint8_t tx[N4_KEY_SIZE];
	uint8_t rx[N4_KEY_SIZE];
};

/* From this round's authentication state (its MAC key and both nonces). */
void n4_side_keys_derive(const struct n4_auth *a, struct n4_side_keys *k);

/* Our SIDE into out; a MAC under tx_key when it is not NULL.  The length, or
 * -EINVAL when s has more than N4_SIDE_MAX_ADDRS addresses, an all-zero id or
 * port 0. */
int n4_side_encode(uint8_t flags, const uint8_t ident[N4_PAYLOAD_SIZE], const struct n4_side *s,
		   const uint8_t *tx_key, uint8_t out[N4_SIDE_MAX_SIZE]);

/* Parse untrusted bytes (fuzzed).  -EMSGSIZE for a length no SIDE has (or one
 * that disagrees with naddrs), -EPROTO for another command, unknown flags, an
 * all-zero id, port 0, naddrs over N4_SIDE_MAX_ADDRS or an unusable address.
 * The identifier is copied, the MAC is not checked. */
int n4_side_decode(const void *buf, size_t len, struct n4_side_msg *m);

/* Judge a datagram that came from the peer's IP: true when it is a well-formed
 * SIDE for ident, with a right MAC under rx_key when rx_key is not NULL and
 * without a MAC when it is NULL (*m filled); false otherwise.  *bad is set
 * when it was a SIDE for ident that failed (a wrong MAC, the wrong form). */
bool n4_side_check(const void *buf, size_t len, const uint8_t ident[N4_PAYLOAD_SIZE],
		   const uint8_t *rx_key, struct n4_side_msg *m, bool *bad);

/* The exchange on a won socket fd with the peer at peer_addr (the relay when
 * relayed), for the wire identifier ident; auth: the round's authentication
 * state of a keyed pair, NULL without a key.  Sends our SIDE every
 * N4_SIDE_RESEND_MS; a SIDE of the peer (from its IP, right MAC, another id
 * than ours) fills *peer; done once we have the peer's and its flag says it has
 * ours (then one last copy with our flag goes out), or when a datagram from
 * peer_addr that is neither a SIDE nor a late PUNCH / APUNCH / relay ack
 * arrives (the peer is done; the datagram stays in the socket), or at
 * timeout_ms.  1: *peer filled, 0: nothing from the peer in time, -EINVAL for a
 * side we cannot send, -EINTR / -ECANCELED / -errno. */
int n4_side_exchange(int fd, const struct sockaddr *peer_addr, socklen_t peer_len,
		     const uint8_t ident[N4_PAYLOAD_SIZE], const struct n4_auth *auth,
		     const struct n4_side *mine, struct n4_side *peer, unsigned timeout_ms,
		     const struct n4_waitctx *ctx);

#endif

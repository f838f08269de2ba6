/* auth.h - authenticated PUNCHes between two clients holding the same key.
 *
 * APUNCH (N4_APUNCH_SIZE bytes, UDP):
 *   0      N4_CMD_APUNCH
 *   1      flags: N4_PUNCH_ACK = "your nonce came back to me: I have won"
 *   2..7   the short pairing id (key.h), to tell our datagrams from others
 *   8..23  the sender's nonce, fresh from getrandom every round
 *   24..39 the receiver's nonce as the sender last saw it (zeros: none yet)
 *   40..45 the receiver's address as the server reported it to the sender
 *   46..51 the sender's address as the server reported it to the sender
 *          (SELF, our server only; zeros with an original server)
 *   52..67 MAC = BLAKE2s-128(mac key; bytes 0..51)
 *
 * A PUNCH authenticates the peer only when its MAC is right AND it echoes our
 * nonce of this round: only a holder of the key who has seen this round's
 * nonce can make it, so it can be neither forged nor replayed from another
 * round (or pairing: the addresses differ).  Two messages in each direction
 * suffice: the first one that arrives carries a nonce, its answer echoes it. */
#ifndef N4_AUTH_H
#define N4_AUTH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"
#include "wire.h"

#define N4_NONCE_SIZE 16
#define N4_MAC_SIZE 16
_Static_assert(N4_APUNCH_SIZE == 8 + 2 * N4_NONCE_SIZE + 2 * N4_PAYLOAD_SIZE + N4_MAC_SIZE,
	       "APUNCH layout");

struct n4_apunch {
	uint8_t flags;
	uint8_t ident[N4_PAYLOAD_SIZE];
	uint8_t nonce[N4_NONCE_SIZE];
	uint8_t echo[N4_NONCE_SIZE];
	uint8_t to[N4_PAYLOAD_SIZE];
	uint8_t from[N4_PAYLOAD_SIZE];
	uint8_t mac[N4_MAC_SIZE];
};

/* Parse untrusted bytes (fuzzed).  -EMSGSIZE / -EPROTO; the MAC is not checked. */
int n4_apunch_decode(const void *buf, size_t len, struct n4_apunch *m);

/* One round's state on one side. */
struct n4_auth {
	uint8_t mac_key[N4_KEY_SIZE];
	uint8_t ident[N4_PAYLOAD_SIZE];
	uint8_t nonce[N4_NONCE_SIZE];
	uint8_t peer_nonce[N4_NONCE_SIZE];  /* zeros until learnt */
	uint8_t peer_wire[N4_PAYLOAD_SIZE]; /* PEERINFO payload */
	uint8_t self_wire[N4_PAYLOAD_SIZE]; /* SELF payload, zeros when unknown */
	unsigned failures;		    /* datagrams from the peer's IP that failed */
	bool peer_acked;		    /* a valid ACK arrived */
};

enum n4_auth_verdict {
	N4_AUTH_BAD = -1,  /* for us (our id, from the peer) but not authentic */
	N4_AUTH_OTHER = 0, /* not an APUNCH of this pairing: ignore quietly */
	N4_AUTH_NONCE = 1, /* authentic; we learnt (or re-learnt) the peer's nonce */
	N4_AUTH_WIN = 2,   /* authentic and echoes our nonce: the peer is proven */
};

/* Start a round: fresh nonce from getrandom, nothing known of the peer.
 * -errno when the kernel has no randomness to give. */
int n4_auth_round(struct n4_auth *a, const struct n4_keyed *k);
/* What the server reported: the peer's address, ours (self, NULL when unknown)
 * and the peer's nonce (NULL when it did not pass it on). */
void n4_auth_bind(struct n4_auth *a, const struct sockaddr_in *peer, const struct sockaddr_in *self,
		  const uint8_t *peer_nonce);
/* Our APUNCH with the current state. */
void n4_auth_encode(const struct n4_auth *a, uint8_t flags, uint8_t out[N4_APUNCH_SIZE]);
/* Judge a datagram that came from the peer's IP (constant-time MAC check). */
enum n4_auth_verdict n4_auth_check(struct n4_auth *a, const void *buf, size_t len);

#endif

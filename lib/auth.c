/* auth.c - building and checking authenticated PUNCHes (format in auth.h). */
#include "auth.h"

#include <errno.h>
#include <string.h>

#include "blake2s.h"
#include "rand.h"

#define MAC_OFF (N4_APUNCH_SIZE - N4_MAC_SIZE)

int n4_apunch_decode(const void *buf, size_t len, struct n4_apunch *m)
{
	const uint8_t *b = buf;

	if (len != N4_APUNCH_SIZE)
		return -EMSGSIZE;
	if (b[0] != N4_CMD_APUNCH || (b[1] & (uint8_t)~N4_PUNCH_ACK))
		return -EPROTO;
	m->flags = b[1];
	memcpy(m->ident, b + 2, N4_PAYLOAD_SIZE);
	memcpy(m->nonce, b + 8, N4_NONCE_SIZE);
	memcpy(m->echo, b + 24, N4_NONCE_SIZE);
	memcpy(m->to, b + 40, N4_PAYLOAD_SIZE);
	memcpy(m->from, b + 46, N4_PAYLOAD_SIZE);
	memcpy(m->mac, b + MAC_OFF, N4_MAC_SIZE);
	return 0;
}

static void mac(const struct n4_auth *a, const uint8_t *msg, uint8_t out[N4_MAC_SIZE])
{
	(void)n4_blake2s(out, N4_MAC_SIZE, a->mac_key, sizeof(a->mac_key), msg, MAC_OFF);
}

void n4_auth_bind(struct n4_auth *a, const struct sockaddr_in *peer, const struct sockaddr_in *self,
		  const uint8_t *peer_nonce)
{
	n4_peerinfo_encode(peer, a->peer_wire);
	if (self)
		n4_peerinfo_encode(self, a->self_wire);
	/* Only a hint: a wrong one (a lying server) just means the first PUNCH
	 * does not win and the answer to it does. */
	if (peer_nonce)
		memcpy(a->peer_nonce, peer_nonce, N4_NONCE_SIZE);
}

int n4_auth_round(struct n4_auth *a, const struct n4_keyed *k)
{
	memset(a, 0, sizeof(*a));
	memcpy(a->mac_key, k->mac_key, sizeof(a->mac_key));
	n4_ident_encode(k->short_id, a->ident);
	return n4_random_bytes(a->nonce, sizeof(a->nonce));
}

void n4_auth_encode(const struct n4_auth *a, uint8_t flags, uint8_t out[N4_APUNCH_SIZE])
{
	out[0] = N4_CMD_APUNCH;
	out[1] = flags;
	memcpy(out + 2, a->ident, N4_PAYLOAD_SIZE);
	memcpy(out + 8, a->nonce, N4_NONCE_SIZE);
	memcpy(out + 24, a->peer_nonce, N4_NONCE_SIZE);
	memcpy(out + 40, a->peer_wire, N4_PAYLOAD_SIZE);
	memcpy(out + 46, a->self_wire, N4_PAYLOAD_SIZE);
	mac(a, out, out + MAC_OFF);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

enum n4_auth_verdict n4_auth_check(struct n4_auth *a, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	struct n4_apunch m;
	uint8_t want[N4_MAC_SIZE];

	/* A plain PUNCH with our id from the peer's IP: an original client (or an
	 * impostor) presenting the identifier without the key. */
	if (len == N4_MSG_SIZE && b[0] == N4_CMD_PUNCH &&
	    memcmp(b + 2, a->ident, N4_PAYLOAD_SIZE) == 0)
		return N4_AUTH_BAD;
	if (n4_apunch_decode(buf, len, &m))
		return N4_AUTH_OTHER;
	if (memcmp(m.ident, a->ident, N4_PAYLOAD_SIZE) != 0)
		return N4_AUTH_OTHER;
	mac(a, b, want);
	bool ok = n4_ct_equal(want, m.mac, N4_MAC_SIZE);
	n4_wipe(want, sizeof(want));
	if (!ok)
		return N4_AUTH_BAD;
	/* Authentic, but is it of this pairing and round?  What the server told
	 * the peer about us must be what it told us (when we know it), and what
	 * it told the peer about itself must be what it told us about the peer. */
	if (!all_zero(a->self_wire, N4_PAYLOAD_SIZE) &&
	    memcmp(m.to, a->self_wire, N4_PAYLOAD_SIZE) != 0)
		return N4_AUTH_OTHER;
	if (!all_zero(m.from, N4_PAYLOAD_SIZE) &&
	    memcmp(m.from, a->peer_wire, N4_PAYLOAD_SIZE) != 0)
		return N4_AUTH_OTHER;
	if (n4_ct_equal(m.echo, a->nonce, N4_NONCE_SIZE)) {
		memcpy(a->peer_nonce, m.nonce, N4_NONCE_SIZE);
		if (m.flags & N4_PUNCH_ACK)
			a->peer_acked = true;
		return N4_AUTH_WIN;
	}
	memcpy(a->peer_nonce, m.nonce, N4_NONCE_SIZE);
	return N4_AUTH_NONCE;
}

/* flow.c - the configuration of a further flow to a peer whose path won: an
 * identifier (or key) both sides derive alone from the two sides they exchanged
 * (side.c), so each flow of a call pairs with its own counterpart at the server
 * and nothing new is agreed on the wire.
 *
 * The material, the same on both sides: label 0 || ident 0 || id_lo || port_lo
 * || id_hi || port_hi, where lo is the side with the smaller id and port_x the
 * flow's port on side x (2 bytes, big-endian).  Unkeyed it is hashed (BLAKE2s)
 * into 6 letters or digits; keyed it is a PRF under the pair's key, as every
 * other keyed derivation (key.c), and the new key derives its ids as usual. */
#include "n4.h"

#include <errno.h>
#include <string.h>

#include "blake2s.h"
#include "key.h"
#include "wire.h"

static void add_side(struct n4_blake2s *s, const struct n4_side *side, uint16_t port)
{
	uint8_t p[2] = { (uint8_t)(port >> 8), (uint8_t)port };

	n4_blake2s_update(s, side->id, N4_SIDE_ID_SIZE);
	n4_blake2s_update(s, p, sizeof(p));
}

static void add_material(struct n4_blake2s *s, const char *label, const char *ident,
			 const struct n4_side *mine, const struct n4_side *peer, uint16_t my_port,
			 uint16_t peer_port)
{
	bool mine_first = memcmp(mine->id, peer->id, N4_SIDE_ID_SIZE) < 0;

	n4_blake2s_update(s, label, strlen(label) + 1);
	n4_blake2s_update(s, ident, strlen(ident) + 1);
	add_side(s, mine_first ? mine : peer, mine_first ? my_port : peer_port);
	add_side(s, mine_first ? peer : mine, mine_first ? peer_port : my_port);
}

int n4_flow_cfg(struct n4_client_cfg *cfg, const struct n4_side *mine, const struct n4_side *peer,
		uint16_t my_port, uint16_t peer_port)
{
	static const char alnum[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	struct n4_blake2s s;

	if (memcmp(mine->id, peer->id, N4_SIDE_ID_SIZE) == 0 || !my_port || !peer_port ||
	    n4_ident_check(cfg->ident))
		return -EINVAL;
	if (cfg->have_key) {
		uint8_t key[N4_KEY_SIZE];
		(void)n4_blake2s_init(&s, sizeof(key), cfg->key, sizeof(cfg->key));
		add_material(&s, "n4 flow key", cfg->ident, mine, peer, my_port, peer_port);
		n4_blake2s_final(&s, key);
		memcpy(cfg->key, key, sizeof(key));
		n4_wipe(key, sizeof(key));
		return 0;
	}
	/* Six letters or digits (35 bits) from 64: as a keyed short id (key.c),
	 * what the original's 6-byte printable field allows. */
	uint8_t r[8];
	(void)n4_blake2s_init(&s, sizeof(r), NULL, 0);
	add_material(&s, "n4 flow ident", cfg->ident, mine, peer, my_port, peer_port);
	n4_blake2s_final(&s, r);
	uint64_t v = 0;
	for (size_t i = 0; i < sizeof(r); i++)
		v = v << 8 | r[i];
	for (int i = 0; i < N4_IDENT_MAX; i++) {
		cfg->ident[i] = alnum[v % 62];
		v /= 62;
	}
	cfg->ident[N4_IDENT_MAX] = '\0';
	return 0;
}

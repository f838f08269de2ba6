/* pairing.h - the server's pairing state, without sockets: which client waits for
 * which identifier, which pair an EXCHANGE datagram belongs to.  O(1) per event,
 * also when every client uses the same identifier (the original's default) and
 * when an attacker picks identifiers that collide: the tables use a keyed hash. */
#ifndef N4_PAIRING_H
#define N4_PAIRING_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"
#include "wire.h"

/* A kind byte (identifier/token or long keyed id: separate name spaces), the id
 * (6 bytes, or N4_LONGID_SIZE), then an IPv4 address (4 bytes, 0 when unused). */
#define N4_HKEY_SIZE (1 + N4_LONGID_SIZE + 4)

struct n4_hnode {
	struct n4_hnode *next;
	uint8_t key[N4_HKEY_SIZE];
	bool linked;
};

enum n4_pstate {
	N4_P_NEW,     /* no HELLO yet */
	N4_P_WAITING, /* HELLO received, no partner yet */
	N4_P_PAIRED,  /* READY sent, collecting EXCHANGEs */
	N4_P_DONE,    /* PEERINFO sent */
};

struct n4_pclient {
	enum n4_pstate state;
	uint32_t ip;			/* TCP peer IPv4, network order (0 for IPv6) */
	bool tcp_v6;			/* TCP over native IPv6: see n4_pairing_exchange */
	uint8_t ident[N4_PAYLOAD_SIZE]; /* wire form */
	uint8_t ext;			/* extensions granted */
	uint8_t token[N4_TOKEN_SIZE];	/* with N4_EXT_TOKEN */
	struct n4_pclient *partner;
	bool observed;
	struct sockaddr_in udp; /* observed EXCHANGE source */
	struct n4_hnode wait_node, exch_node, exch_id_node, token_node;
	void *owner; /* the server's connection */
	/* N4_EXT_KEY (in ext): never paired with an unkeyed client.  The 6-byte
	 * ident above is then the short id derived from the key; the pair stands
	 * only once both long ids (key.h) arrived and are equal (keyed: this
	 * client's long id is in). */
	bool keyed;
	uint8_t long_id[N4_LONGID_SIZE];
	/* Legacy client whose READY waits: another legacy client with the same
	 * identifier and IP is in the exchange and unobserved, and v1 EXCHANGEs
	 * from one IP can only be told apart by arriving one pair at a time. */
	bool held;
	struct n4_hnode held_node;
};

typedef struct n4_pairing n4_pairing;

/* NULL + errno (ENOMEM, or the getrandom error: tokens need a secret). */
n4_pairing *n4_pairing_new(size_t expected_clients);
void n4_pairing_free(n4_pairing *p);

/* A valid HELLO arrived for c (ident, ext, ip set by the caller).  Returns the
 * partner when c completes a pair (both are then N4_P_PAIRED, tokens assigned),
 * NULL when c now waits.
 *
 * A keyed client (N4_EXT_KEY) is paired at once with a keyed client waiting on
 * the same short id (rather one whose long id is in), before the long ids
 * arrive: they cost a round trip, which the exchange then overlaps (READY goes
 * out with the request for it).
 * Such a pair is tentative until n4_pairing_long_id has both long ids.  Once a
 * short id has seen two different long ids (an impostor who knows it, or a
 * collision) it is contested for N4_CONTEST_MS: keyed clients on it then wait
 * for their long id and are paired on it alone. */
struct n4_pclient *n4_pairing_hello(n4_pairing *p, struct n4_pclient *c);

#define N4_CONTEST_MS 60000

/* Whether a client (keyed: on this short id) waits for a partner on ident: a
 * hash lookup, no scan. */
bool n4_pairing_has_waiting(const n4_pairing *p, const uint8_t ident[N4_PAYLOAD_SIZE], bool keyed);

enum n4_long_result {
	N4_LONG_WAIT,	   /* c waits: no client with its long id */
	N4_LONG_PAIRED,	   /* c was waiting and is now paired on its long id */
	N4_LONG_PENDING,   /* c is paired, its partner's long id is not in yet */
	N4_LONG_CONFIRMED, /* c's pair stands: both long ids are equal */
	N4_LONG_MISMATCH,  /* c's partner has another long id: the short id is
			    * now contested; both must start again */
};

/* c's long id (c->long_id, c->ext has N4_EXT_KEY) is complete.  *partner is set
 * for every result but N4_LONG_WAIT. */
enum n4_long_result n4_pairing_long_id(n4_pairing *p, struct n4_pclient *c,
				       struct n4_pclient **partner);

/* Pair keyed clients of this short id on their long ids alone for
 * N4_CONTEST_MS (a paired client that never sent its long id). */
void n4_pairing_contest(n4_pairing *p, const uint8_t ident[N4_PAYLOAD_SIZE]);

/* A keyed client's pair stands (both long ids in and equal). */
bool n4_pairing_confirmed(const struct n4_pclient *c);

/* Attribute an EXCHANGE from src (IPv4: PEERINFO can carry nothing else).  0 and
 * *out on success (out->observed set).  -ENOENT: no pair knows this identifier or
 * token; -EPERM: the source IP is not the TCP client's (spoofed or misrouted);
 * -EALREADY: a duplicate.  A client whose TCP came over native IPv6 cannot have
 * its IPv4 EXCHANGE matched by address: only a token (N4_EXT_TOKEN) attributes it,
 * a legacy one from that client is never matched. */
int n4_pairing_exchange(n4_pairing *p, const struct n4_msg *msg, const struct sockaddr_in *src,
			struct n4_pclient **out);

/* The paired client holding token, for discovery probes (nothing is attributed).
 * NULL when no client holds it or ip is not that client's (IPv6 TCP clients:
 * the token alone). */
struct n4_pclient *n4_pairing_by_token(n4_pairing *p, const uint8_t token[N4_TOKEN_SIZE],
				       uint32_t ip);
/* The same with no source to compare (a V6 probe over IPv6: the token is the proof). */
struct n4_pclient *n4_pairing_by_token_only(n4_pairing *p, const uint8_t token[N4_TOKEN_SIZE]);

/* Forget c (closed, timed out, done).  Its partner, if any, is unlinked from c.
 * Returns a held client that may now get its READY (see held), or NULL. */
struct n4_pclient *n4_pairing_remove(n4_pairing *p, struct n4_pclient *c);

/* After c's EXCHANGE was attributed: the held client (same identifier and IP)
 * that may now get its READY, or NULL.  It is no longer held. */
struct n4_pclient *n4_pairing_release(n4_pairing *p, const struct n4_pclient *c);

/* Rooms (srv_room.h): c gets its READY without a partner (N4_EXT_TOKEN: a token,
 * state N4_P_PAIRED); n4_pairing_link later makes a and b (both solo) partners. */
void n4_pairing_solo(n4_pairing *p, struct n4_pclient *c);
void n4_pairing_link(struct n4_pclient *a, struct n4_pclient *b);

size_t n4_pairing_waiting(const n4_pairing *p);

#endif

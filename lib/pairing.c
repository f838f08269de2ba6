/* pairing.c - chained hash tables: waiting clients by identifier, paired legacy
 * clients by identifier and TCP IP (their EXCHANGE carries only the identifier and
 * must come from that IP), paired legacy clients by identifier alone (only to tell
 * a spoofed EXCHANGE from a stray one), and extended clients by token (their
 * EXCHANGE carries a token, which is what tells apart two clients behind one public
 * IP).  Keys are hashed with a secret key, so chains stay short whatever
 * identifiers strangers pick. */
#include "pairing.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "blake2s.h"
#include "ipcap.h"
#include "loop.h"
#include "rand.h"

/* Legacy clients that finished, remembered briefly by (identifier, IP, port): a
 * late copy of their EXCHANGE must not be taken for the next legacy client
 * behind that IP (an original client moves its ports every round, so the next
 * one's EXCHANGE comes from another port).  Set-associative, four records per
 * client the server can hold, so that a record is rarely overwritten within
 * RECENT_MS even at thousands of pairs a second (a collision only forgets). */
#define RECENT_MS 3000
/* Records per set: a burst of finishes that hashes into one set evicts only the
 * record that expires first, not a fresh one (direct mapping lost ~1 % of them
 * at 4,000 pairs/s). */
#define RECENT_WAYS 4

struct recent {
	uint8_t key[N4_HKEY_SIZE];
	uint16_t port;
	uint64_t until_ms;
};

struct htable {
	struct n4_hnode **buckets;
	size_t mask;
	uint64_t hash_key[2];
};

struct n4_pairing {
	struct htable waiting, exchanging, exch_ids, tokens, held;
	size_t nwaiting;
	/* Tokens are BLAKE2s(token_secret; counter): unpredictable without the
	 * secret whatever tokens one has seen (a stranger behind the same IP must
	 * not guess another client's), and distinct (checked anyway). */
	uint8_t token_secret[N4_BLAKE2S_KEYBYTES];
	uint64_t token_counter;
	struct recent *recent;
	size_t recent_mask;
	uint64_t recent_hash_key[2];
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static void make_key(uint8_t out[N4_HKEY_SIZE], const uint8_t id[N4_PAYLOAD_SIZE], uint32_t ip)
{
	memset(out, 0, N4_HKEY_SIZE);
	memcpy(out + 1, id, N4_PAYLOAD_SIZE);
	memcpy(out + 1 + N4_LONGID_SIZE, &ip, 4);
}

/* The kind byte: keyed clients wait apart from unkeyed ones with the same
 * identifier, and contested short ids are remembered apart from finished
 * legacy clients (both in `recent`). */
#define KIND_KEYED 2
#define KIND_CONTESTED 3

static struct n4_hnode **bucket(const struct htable *t, const uint8_t key[N4_HKEY_SIZE])
{
	return &t->buckets[n4_keyed_hash(key, N4_HKEY_SIZE, t->hash_key) & t->mask];
}

static int ht_init(struct htable *t, size_t n)
{
	size_t size = 64;

	while (size < n && size < ((size_t)1 << 24))
		size <<= 1;
	t->buckets = calloc(size, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	t->mask = size - 1;
	n4_hash_key_init(t->hash_key);
	return 0;
}

static void ht_insert(struct htable *t, struct n4_hnode *n, const uint8_t key[N4_HKEY_SIZE])
{
	memcpy(n->key, key, N4_HKEY_SIZE);
	struct n4_hnode **b = bucket(t, n->key);
	n->next = *b;
	*b = n;
	n->linked = true;
}

static void ht_remove(struct htable *t, struct n4_hnode *n)
{
	if (!n->linked)
		return;
	for (struct n4_hnode **pp = bucket(t, n->key); *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	}
	n->linked = false;
	n->next = NULL;
}

static struct n4_hnode *ht_first(const struct htable *t, const uint8_t key[N4_HKEY_SIZE])
{
	for (struct n4_hnode *n = *bucket(t, key); n; n = n->next) {
		if (memcmp(n->key, key, N4_HKEY_SIZE) == 0)
			return n;
	}
	return NULL;
}

static struct n4_hnode *ht_next_same(struct n4_hnode *n)
{
	for (struct n4_hnode *m = n->next; m; m = m->next) {
		if (memcmp(m->key, n->key, N4_HKEY_SIZE) == 0)
			return m;
	}
	return NULL;
}

n4_pairing *n4_pairing_new(size_t expected_clients)
{
	n4_pairing *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	size_t slots = 4096;
	while (slots < 4 * expected_clients && slots < ((size_t)1 << 20))
		slots <<= 1;
	p->recent_mask = slots - 1;
	if (ht_init(&p->waiting, expected_clients) || ht_init(&p->exchanging, expected_clients) ||
	    ht_init(&p->exch_ids, expected_clients) || ht_init(&p->tokens, expected_clients) ||
	    ht_init(&p->held, 64) ||
	    !(p->recent = calloc(p->recent_mask + 1, sizeof(*p->recent)))) {
		n4_pairing_free(p);
		errno = ENOMEM;
		return NULL;
	}
	n4_hash_key_init(p->recent_hash_key);
	/* No weaker fallback: without a secret, tokens would be guessable. */
	int rc = n4_random_bytes(p->token_secret, sizeof(p->token_secret));
	if (rc < 0) {
		n4_pairing_free(p);
		errno = -rc;
		return NULL;
	}
	return p;
}

void n4_pairing_free(n4_pairing *p)
{
	if (!p)
		return;
	free(p->waiting.buckets);
	free(p->exchanging.buckets);
	free(p->exch_ids.buckets);
	free(p->tokens.buckets);
	free(p->held.buckets);
	free(p->recent);
	n4_wipe(p->token_secret, sizeof(p->token_secret));
	free(p);
}

/* A token is the only proof for a client whose TCP came over IPv6, and the one
 * thing telling apart clients behind one IP: a keyed PRF of a secret counter,
 * so that reading any number of tokens says nothing about the next ones. */
static void assign_token(n4_pairing *p, struct n4_pclient *c)
{
	uint8_t key[N4_HKEY_SIZE];

	do {
		uint64_t ctr = p->token_counter++;
		(void)n4_blake2s(c->token, N4_TOKEN_SIZE, p->token_secret, sizeof(p->token_secret),
				 &ctr, sizeof(ctr));
		make_key(key, c->token, 0);
	} while (ht_first(&p->tokens, key));
	ht_insert(&p->tokens, &c->token_node, key);
}

/* An unobserved legacy client in the exchange with c's identifier and IP. */
static bool legacy_busy(const n4_pairing *p, const uint8_t key[N4_HKEY_SIZE])
{
	for (struct n4_hnode *n = ht_first(&p->exchanging, key); n; n = ht_next_same(n)) {
		if (!container_of(n, struct n4_pclient, exch_node)->observed)
			return true;
	}
	return false;
}

static void enter_exchanging(n4_pairing *p, struct n4_pclient *c)
{
	uint8_t key[N4_HKEY_SIZE];

	make_key(key, c->ident, c->ip);
	ht_insert(&p->exchanging, &c->exch_node, key);
	make_key(key, c->ident, 0);
	ht_insert(&p->exch_ids, &c->exch_id_node, key);
}

static void enter_paired(n4_pairing *p, struct n4_pclient *c)
{
	uint8_t key[N4_HKEY_SIZE];

	c->state = N4_P_PAIRED;
	if (c->ext & N4_EXT_TOKEN) {
		assign_token(p, c);
		return;
	}
	make_key(key, c->ident, c->ip);
	/* Two legacy clients with one identifier and IP in the exchange at once
	 * could not be told apart: this one gets READY once the other's EXCHANGE
	 * is attributed (IPv6 TCP clients are never matched by IP anyway). */
	if (!c->tcp_v6 && legacy_busy(p, key)) {
		c->held = true;
		ht_insert(&p->held, &c->held_node, key);
		return;
	}
	enter_exchanging(p, c);
}

struct n4_pclient *n4_pairing_release(n4_pairing *p, const struct n4_pclient *c)
{
	uint8_t key[N4_HKEY_SIZE];

	if ((c->ext & N4_EXT_TOKEN) || c->tcp_v6)
		return NULL;
	make_key(key, c->ident, c->ip);
	if (legacy_busy(p, key))
		return NULL;
	/* The oldest held client first (new ones are inserted at the head). */
	struct n4_hnode *n = ht_first(&p->held, key), *last = NULL;
	for (; n; n = ht_next_same(n))
		last = n;
	if (!last)
		return NULL;
	struct n4_pclient *h = container_of(last, struct n4_pclient, held_node);
	ht_remove(&p->held, last);
	h->held = false;
	enter_exchanging(p, h);
	return h;
}

/* The first of the RECENT_WAYS records (ident, IP) and port may sit in. */
static struct recent *recent_set(const n4_pairing *p, const uint8_t key[N4_HKEY_SIZE],
				 uint16_t port)
{
	uint64_t h = n4_keyed_hash(key, N4_HKEY_SIZE, p->recent_hash_key) ^ port;

	size_t i = (size_t)(h * 0x9e3779b97f4a7c15ull >> 32) & p->recent_mask;

	return &p->recent[i & ~(size_t)(RECENT_WAYS - 1)];
}

static bool recently_done(const n4_pairing *p, const uint8_t key[N4_HKEY_SIZE], uint16_t port)
{
	const struct recent *set = recent_set(p, key, port);
	uint64_t now = n4_now_ms();

	for (unsigned i = 0; i < RECENT_WAYS; i++) {
		const struct recent *r = &set[i];
		if (r->port == port && r->until_ms > now && memcmp(r->key, key, N4_HKEY_SIZE) == 0)
			return true;
	}
	return false;
}

/* Remember a finished legacy client: in its own record if it has one, else in an
 * expired one, else over the one that expires first. */
static void recent_note(n4_pairing *p, const uint8_t key[N4_HKEY_SIZE], uint16_t port, unsigned ms)
{
	struct recent *set = recent_set(p, key, port), *r = &set[0];
	uint64_t now = n4_now_ms();

	for (unsigned i = 0; i < RECENT_WAYS; i++) {
		if (set[i].port == port && memcmp(set[i].key, key, N4_HKEY_SIZE) == 0) {
			r = &set[i];
			break;
		}
		if (set[i].until_ms < r->until_ms) /* an expired record is the least */
			r = &set[i];
	}
	memcpy(r->key, key, N4_HKEY_SIZE);
	r->port = port;
	r->until_ms = now + ms;
}

static void wait_key(uint8_t key[N4_HKEY_SIZE], const struct n4_pclient *c)
{
	make_key(key, c->ident, 0);
	if (c->ext & N4_EXT_KEY)
		key[0] = KIND_KEYED;
}

static void pair_up(n4_pairing *p, struct n4_pclient *w, struct n4_pclient *c)
{
	if (w->wait_node.linked) {
		ht_remove(&p->waiting, &w->wait_node);
		p->nwaiting--;
	}
	if (c->wait_node.linked) {
		ht_remove(&p->waiting, &c->wait_node);
		p->nwaiting--;
	}
	w->partner = c;
	c->partner = w;
	enter_paired(p, w);
	enter_paired(p, c);
}

static void contested_key(uint8_t key[N4_HKEY_SIZE], const uint8_t ident[N4_PAYLOAD_SIZE])
{
	make_key(key, ident, 0);
	key[0] = KIND_CONTESTED;
}

struct n4_pclient *n4_pairing_hello(n4_pairing *p, struct n4_pclient *c)
{
	uint8_t key[N4_HKEY_SIZE], ckey[N4_HKEY_SIZE];

	wait_key(key, c);
	struct n4_hnode *n = ht_first(&p->waiting, key);
	if (n && (c->ext & N4_EXT_KEY)) {
		/* Rather a client whose long id is in: a mismatch is then known
		 * one round trip from now.  One whose long id is still on its way
		 * (both started together) will do too: a stranger who never sends
		 * it holds the pair until the exchange deadline, which contests
		 * the short id (n4_pairing_contest). */
		for (struct n4_hnode *m = n; m; m = ht_next_same(m)) {
			if (container_of(m, struct n4_pclient, wait_node)->keyed) {
				n = m;
				break;
			}
		}
		contested_key(ckey, c->ident);
		if (recently_done(p, ckey, 0))
			n = NULL; /* paired on the long id alone (n4_pairing_long_id) */
	}
	if (!n) {
		c->state = N4_P_WAITING;
		ht_insert(&p->waiting, &c->wait_node, key);
		p->nwaiting++;
		return NULL;
	}
	struct n4_pclient *w = container_of(n, struct n4_pclient, wait_node);
	pair_up(p, w, c);
	return w;
}

bool n4_pairing_has_waiting(const n4_pairing *p, const uint8_t ident[N4_PAYLOAD_SIZE], bool keyed)
{
	uint8_t key[N4_HKEY_SIZE];

	make_key(key, ident, 0);
	if (keyed)
		key[0] = KIND_KEYED;
	return ht_first(&p->waiting, key) != NULL;
}

void n4_pairing_contest(n4_pairing *p, const uint8_t ident[N4_PAYLOAD_SIZE])
{
	uint8_t key[N4_HKEY_SIZE];

	contested_key(key, ident);
	recent_note(p, key, 0, N4_CONTEST_MS);
}

bool n4_pairing_confirmed(const struct n4_pclient *c)
{
	const struct n4_pclient *w = c->partner;

	return c->keyed && w && w->keyed && n4_ct_equal(c->long_id, w->long_id, N4_LONGID_SIZE);
}

enum n4_long_result n4_pairing_long_id(n4_pairing *p, struct n4_pclient *c,
				       struct n4_pclient **partner)
{
	uint8_t key[N4_HKEY_SIZE];

	c->keyed = true;
	if (c->state != N4_P_WAITING) {
		struct n4_pclient *w = c->partner;
		*partner = w;
		if (!w || !w->keyed)
			return N4_LONG_PENDING;
		if (n4_pairing_confirmed(c))
			return N4_LONG_CONFIRMED;
		n4_pairing_contest(p, c->ident);
		return N4_LONG_MISMATCH;
	}
	/* Waiting: only a client whose long id is in and equal.  The chain holds
	 * the keyed clients of one short id: one or two, unless strangers crowd
	 * a short id they learnt (each costs them a connection, ipcap.h). */
	wait_key(key, c);
	for (struct n4_hnode *n = ht_first(&p->waiting, key); n; n = ht_next_same(n)) {
		struct n4_pclient *w = container_of(n, struct n4_pclient, wait_node);
		if (w != c && w->keyed && n4_ct_equal(w->long_id, c->long_id, N4_LONGID_SIZE)) {
			pair_up(p, w, c);
			*partner = w;
			return N4_LONG_PAIRED;
		}
	}
	return N4_LONG_WAIT;
}

static int attribute(struct n4_pclient *c, const struct sockaddr_in *src)
{
	if (c->observed)
		return -EALREADY;
	c->observed = true;
	c->udp = *src;
	return 0;
}

struct n4_pclient *n4_pairing_by_token(n4_pairing *p, const uint8_t token[N4_TOKEN_SIZE],
				       uint32_t ip)
{
	uint8_t key[N4_HKEY_SIZE];

	make_key(key, token, 0);
	struct n4_hnode *n = ht_first(&p->tokens, key);
	if (!n)
		return NULL;
	struct n4_pclient *c = container_of(n, struct n4_pclient, token_node);
	return c->tcp_v6 || c->ip == ip ? c : NULL;
}

struct n4_pclient *n4_pairing_by_token_only(n4_pairing *p, const uint8_t token[N4_TOKEN_SIZE])
{
	uint8_t key[N4_HKEY_SIZE];

	make_key(key, token, 0);
	struct n4_hnode *n = ht_first(&p->tokens, key);
	return n ? container_of(n, struct n4_pclient, token_node) : NULL;
}

int n4_pairing_exchange(n4_pairing *p, const struct n4_msg *msg, const struct sockaddr_in *src,
			struct n4_pclient **out)
{
	uint32_t ip = src->sin_addr.s_addr;
	uint8_t key[N4_HKEY_SIZE];

	if (msg->ext & N4_EXT_TOKEN) {
		make_key(key, msg->payload, 0);
		struct n4_hnode *n = ht_first(&p->tokens, key);
		if (!n)
			return -ENOENT;
		struct n4_pclient *c = container_of(n, struct n4_pclient, token_node);
		/* An IPv6 TCP client has no IPv4 to compare with: the token it
		 * received over that TCP connection is the proof. */
		if (!c->tcp_v6 && c->ip != ip)
			return -EPERM;
		*out = c;
		return attribute(c, src);
	}
	/* Legacy: only the identifier and the source IP tell who sent it.  Repeats
	 * (clients send three) carry the exact address already recorded. */
	make_key(key, msg->payload, ip);
	struct n4_hnode *first = ht_first(&p->exchanging, key);
	if (!first) {
		make_key(key, msg->payload, 0);
		return ht_first(&p->exch_ids, key) ? -EPERM : -ENOENT;
	}
	struct n4_pclient *candidate = NULL;
	for (struct n4_hnode *n = first; n; n = ht_next_same(n)) {
		struct n4_pclient *c = container_of(n, struct n4_pclient, exch_node);
		if (c->observed && c->udp.sin_port == src->sin_port) {
			*out = c;
			return -EALREADY;
		}
		if (!candidate && !c->observed)
			candidate = c;
	}
	if (!candidate)
		return -EALREADY; /* both behind this IP already seen: a late copy */
	if (recently_done(p, key, src->sin_port))
		return -EALREADY; /* a late copy from a finished client */
	*out = candidate;
	return attribute(candidate, src);
}

struct n4_pclient *n4_pairing_remove(n4_pairing *p, struct n4_pclient *c)
{
	bool blocking = c->exch_node.linked && !c->observed;

	if (c->exch_node.linked && c->observed) {
		recent_note(p, c->exch_node.key, c->udp.sin_port, RECENT_MS);
	}

	if (c->wait_node.linked) {
		ht_remove(&p->waiting, &c->wait_node);
		p->nwaiting--;
	}
	ht_remove(&p->held, &c->held_node);
	c->held = false;
	ht_remove(&p->exchanging, &c->exch_node);
	ht_remove(&p->exch_ids, &c->exch_id_node);
	ht_remove(&p->tokens, &c->token_node);
	if (c->partner && c->partner->partner == c)
		c->partner->partner = NULL;
	c->partner = NULL;
	return blocking ? n4_pairing_release(p, c) : NULL;
}

void n4_pairing_solo(n4_pairing *p, struct n4_pclient *c)
{
	if (c->wait_node.linked) {
		ht_remove(&p->waiting, &c->wait_node);
		p->nwaiting--;
	}
	c->partner = NULL;
	enter_paired(p, c); /* room clients always have a token: never held */
}

void n4_pairing_link(struct n4_pclient *a, struct n4_pclient *b)
{
	a->partner = b;
	b->partner = a;
}

size_t n4_pairing_waiting(const n4_pairing *p)
{
	return p->nwaiting;
}

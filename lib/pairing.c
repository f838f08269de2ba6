/* pairing.c - three chained hash tables keyed by 6 bytes: waiting clients by
 * identifier, paired legacy clients by identifier (their EXCHANGE carries only the
 * identifier), and extended clients by token (their EXCHANGE carries a token, which
 * is what tells apart two clients behind one public IP). */
#include "pairing.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct htable {
	struct n4_hnode **buckets;
	size_t mask;
};

struct n4_pairing {
	struct htable waiting, exchanging, tokens;
	size_t nwaiting;
	uint64_t token_seed;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static size_t hash6(const uint8_t k[N4_PAYLOAD_SIZE])
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (int i = 0; i < N4_PAYLOAD_SIZE; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
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
	return 0;
}

static void ht_insert(struct htable *t, struct n4_hnode *n, const uint8_t key[N4_PAYLOAD_SIZE])
{
	struct n4_hnode **b = &t->buckets[hash6(key) & t->mask];

	memcpy(n->key, key, N4_PAYLOAD_SIZE);
	n->next = *b;
	*b = n;
	n->linked = true;
}

static void ht_remove(struct htable *t, struct n4_hnode *n)
{
	if (!n->linked)
		return;
	for (struct n4_hnode **pp = &t->buckets[hash6(n->key) & t->mask]; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	}
	n->linked = false;
	n->next = NULL;
}

static struct n4_hnode *ht_first(const struct htable *t, const uint8_t key[N4_PAYLOAD_SIZE])
{
	for (struct n4_hnode *n = t->buckets[hash6(key) & t->mask]; n; n = n->next) {
		if (memcmp(n->key, key, N4_PAYLOAD_SIZE) == 0)
			return n;
	}
	return NULL;
}

static struct n4_hnode *ht_next_same(struct n4_hnode *n)
{
	for (struct n4_hnode *m = n->next; m; m = m->next) {
		if (memcmp(m->key, n->key, N4_PAYLOAD_SIZE) == 0)
			return m;
	}
	return NULL;
}

n4_pairing *n4_pairing_new(size_t expected_clients)
{
	n4_pairing *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (ht_init(&p->waiting, expected_clients) || ht_init(&p->exchanging, expected_clients) ||
	    ht_init(&p->tokens, expected_clients)) {
		n4_pairing_free(p);
		errno = ENOMEM;
		return NULL;
	}
	if (getrandom(&p->token_seed, sizeof(p->token_seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(p->token_seed))
		p->token_seed = (uint64_t)(uintptr_t)p ^ 0x9e3779b97f4a7c15ull;
	return p;
}

void n4_pairing_free(n4_pairing *p)
{
	if (!p)
		return;
	free(p->waiting.buckets);
	free(p->exchanging.buckets);
	free(p->tokens.buckets);
	free(p);
}

/* Tokens only need to be unique and unguessable enough that a stranger cannot
 * redirect a pair's EXCHANGE; the source-IP check still applies on top. */
static void assign_token(n4_pairing *p, struct n4_pclient *c)
{
	do {
		uint64_t x = (p->token_seed += 0x9e3779b97f4a7c15ull);
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
		x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
		x ^= x >> 31;
		memcpy(c->token, &x, N4_TOKEN_SIZE);
	} while (ht_first(&p->tokens, c->token));
	ht_insert(&p->tokens, &c->token_node, c->token);
}

static void enter_paired(n4_pairing *p, struct n4_pclient *c)
{
	c->state = N4_P_PAIRED;
	if (c->ext & N4_EXT_TOKEN)
		assign_token(p, c);
	else
		ht_insert(&p->exchanging, &c->exch_node, c->ident);
}

struct n4_pclient *n4_pairing_hello(n4_pairing *p, struct n4_pclient *c)
{
	struct n4_hnode *n = ht_first(&p->waiting, c->ident);

	if (!n) {
		c->state = N4_P_WAITING;
		ht_insert(&p->waiting, &c->wait_node, c->ident);
		p->nwaiting++;
		return NULL;
	}
	struct n4_pclient *w = container_of(n, struct n4_pclient, wait_node);
	ht_remove(&p->waiting, n);
	p->nwaiting--;
	w->partner = c;
	c->partner = w;
	enter_paired(p, w);
	enter_paired(p, c);
	return w;
}

static int attribute(struct n4_pclient *c, const struct sockaddr_in *src)
{
	if (c->observed)
		return -EALREADY;
	c->observed = true;
	c->udp = *src;
	return 0;
}

int n4_pairing_exchange(n4_pairing *p, const struct n4_msg *msg, const struct sockaddr_in *src,
			struct n4_pclient **out)
{
	uint32_t ip = src->sin_addr.s_addr;

	if (msg->ext & N4_EXT_TOKEN) {
		struct n4_hnode *n = ht_first(&p->tokens, msg->payload);
		if (!n)
			return -ENOENT;
		struct n4_pclient *c = container_of(n, struct n4_pclient, token_node);
		if (c->ip != ip)
			return -EPERM;
		*out = c;
		return attribute(c, src);
	}
	/* Legacy: only the identifier and the source IP tell who sent it.  Repeats
	 * (clients send three) carry the exact address already recorded. */
	struct n4_hnode *first = ht_first(&p->exchanging, msg->payload);
	if (!first)
		return -ENOENT;
	struct n4_pclient *candidate = NULL;
	for (struct n4_hnode *n = first; n; n = ht_next_same(n)) {
		struct n4_pclient *c = container_of(n, struct n4_pclient, exch_node);
		if (c->observed && c->udp.sin_addr.s_addr == ip && c->udp.sin_port == src->sin_port) {
			*out = c;
			return -EALREADY;
		}
		if (!candidate && !c->observed && c->ip == ip)
			candidate = c;
	}
	if (!candidate)
		return -EPERM;
	*out = candidate;
	return attribute(candidate, src);
}

void n4_pairing_remove(n4_pairing *p, struct n4_pclient *c)
{
	if (c->wait_node.linked) {
		ht_remove(&p->waiting, &c->wait_node);
		p->nwaiting--;
	}
	ht_remove(&p->exchanging, &c->exch_node);
	ht_remove(&p->tokens, &c->token_node);
	if (c->partner && c->partner->partner == c)
		c->partner->partner = NULL;
	c->partner = NULL;
}

size_t n4_pairing_waiting(const n4_pairing *p)
{
	return p->nwaiting;
}

/* ipcap.c - per-source connection caps and rate limits for the server (see ipcap.h),
 * plus SipHash for the server's tables and IPv6-aware address helpers. */
#include "ipcap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "rand.h"

/* ---- SipHash-2-4 (Aumasson and Bernstein), enough for keys of a few bytes ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                   \
	do {                       \
		v0 += v1;          \
		v1 = ROTL(v1, 13); \
		v1 ^= v0;          \
		v0 = ROTL(v0, 32); \
		v2 += v3;          \
		v3 = ROTL(v3, 16); \
		v3 ^= v2;          \
		v0 += v3;          \
		v3 = ROTL(v3, 21); \
		v3 ^= v0;          \
		v2 += v1;          \
		v1 = ROTL(v1, 17); \
		v1 ^= v2;          \
		v2 = ROTL(v2, 32); \
	} while (0)

uint64_t n4_keyed_hash(const void *data, size_t len, const uint64_t key[2])
{
	const uint8_t *p = data;
	uint64_t v0 = 0x736f6d6570736575ull ^ key[0], v1 = 0x646f72616e646f6dull ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ key[0], v3 = 0x7465646279746573ull ^ key[1];
	uint64_t b = (uint64_t)len << 56;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t m;
		memcpy(&m, p + i, 8); /* little-endian hosts; the exact value is irrelevant */
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)p[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

void n4_hash_key_init(uint64_t key[2])
{
	if (n4_random_bytes_nowait(key, 2 * sizeof(key[0])) == 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)key;
	key[1] = (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ull ^ (uint64_t)(uintptr_t)&ts;
}

/* ---- addresses ---- */

bool n4_sa_to_v4(const union n4_sa *a, struct sockaddr_in *out)
{
	return n4_addr_to_v4(&a->sa, sizeof(*a), out);
}

const char *n4_sa_str(const union n4_sa *a, char *buf, size_t len)
{
	struct sockaddr_in v4;
	char ip[INET6_ADDRSTRLEN];

	if (n4_sa_to_v4(a, &v4)) {
		if (!inet_ntop(AF_INET, &v4.sin_addr, ip, sizeof(ip)))
			snprintf(ip, sizeof(ip), "?");
		snprintf(buf, len, "%s:%u", ip, ntohs(v4.sin_port));
	} else if (a->sa.sa_family == AF_INET6) {
		if (!inet_ntop(AF_INET6, &a->v6.sin6_addr, ip, sizeof(ip)))
			snprintf(ip, sizeof(ip), "?");
		snprintf(buf, len, "[%s]:%u", ip, ntohs(a->v6.sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

void n4_ipkey_from_sa(const union n4_sa *a, struct n4_ipkey *k)
{
	struct sockaddr_in v4;

	memset(k, 0, sizeof(*k));
	if (n4_sa_to_v4(a, &v4)) {
		k->b[10] = k->b[11] = 0xff;
		memcpy(k->b + 12, &v4.sin_addr, 4);
	} else if (a->sa.sa_family == AF_INET6) {
		memcpy(k->b, a->v6.sin6_addr.s6_addr, 8); /* the /64 */
	}
}

/* ---- the per-source table ---- */

struct src {
	struct src *next;		   /* hash chain */
	struct src *idle_prev, *idle_next; /* while count == 0: oldest first */
	struct n4_ipkey key;
	uint32_t count;
	uint64_t tokens_milli; /* the bucket, in thousandths of a connection */
	uint64_t bucket_ms;    /* when tokens_milli was last brought up to date */
	uint64_t idle_ms;      /* when count dropped to 0 */
};

struct n4_ipcap {
	struct src **buckets;
	size_t mask, nsources;
	unsigned max_per_ip, rate_per_s;
	uint64_t burst_milli, refill_ms; /* refill_ms: empty to full */
	struct src *idle_head, *idle_tail;
	uint64_t hash_key[2];
};

n4_ipcap *n4_ipcap_new(unsigned max_per_ip, unsigned rate_per_s, unsigned burst,
		       size_t expected_sources)
{
	n4_ipcap *c = calloc(1, sizeof(*c));
	size_t size = 64;

	if (!c)
		return NULL;
	while (size < expected_sources && size < ((size_t)1 << 20))
		size <<= 1;
	c->buckets = calloc(size, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	c->mask = size - 1;
	c->max_per_ip = max_per_ip;
	c->rate_per_s = rate_per_s;
	c->burst_milli = (uint64_t)(burst ? burst : 1) * 1000u;
	c->refill_ms = rate_per_s ? (c->burst_milli + rate_per_s - 1) / rate_per_s : 0;
	n4_hash_key_init(c->hash_key);
	return c;
}

void n4_ipcap_free(n4_ipcap *c)
{
	if (!c)
		return;
	for (size_t i = 0; i <= c->mask; i++) {
		while (c->buckets[i]) {
			struct src *s = c->buckets[i];
			c->buckets[i] = s->next;
			free(s);
		}
	}
	free(c->buckets);
	free(c);
}

static struct src **slot_of(n4_ipcap *c, const struct n4_ipkey *k)
{
	struct src **pp = &c->buckets[n4_keyed_hash(k->b, sizeof(k->b), c->hash_key) & c->mask];

	while (*pp && memcmp((*pp)->key.b, k->b, sizeof(k->b)) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void idle_unlink(n4_ipcap *c, struct src *s)
{
	if (s->idle_prev)
		s->idle_prev->idle_next = s->idle_next;
	else if (c->idle_head == s)
		c->idle_head = s->idle_next;
	else
		return; /* not on the list */
	if (s->idle_next)
		s->idle_next->idle_prev = s->idle_prev;
	else
		c->idle_tail = s->idle_prev;
	s->idle_prev = s->idle_next = NULL;
}

static void refill(const n4_ipcap *c, struct src *s, uint64_t now_ms)
{
	if (now_ms > s->bucket_ms) {
		uint64_t add = (now_ms - s->bucket_ms) * c->rate_per_s;
		s->tokens_milli = add >= c->burst_milli - s->tokens_milli ? c->burst_milli
									  : s->tokens_milli + add;
	}
	s->bucket_ms = now_ms;
}

static void idle_push(n4_ipcap *c, struct src *s, uint64_t now_ms)
{
	s->idle_ms = now_ms;
	s->idle_next = NULL;
	s->idle_prev = c->idle_tail;
	if (c->idle_tail)
		c->idle_tail->idle_next = s;
	else
		c->idle_head = s;
	c->idle_tail = s;
}

int n4_ipcap_admit(n4_ipcap *c, const struct n4_ipkey *k, uint64_t now_ms)
{
	if (!c->max_per_ip && !c->rate_per_s)
		return 0;
	struct src **pp = slot_of(c, k);
	struct src *s = *pp;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->key = *k;
		s->tokens_milli = c->burst_milli;
		s->bucket_ms = now_ms;
		*pp = s;
		c->nsources++;
		idle_push(c, s, now_ms); /* holds nothing yet: the sweep may take it */
	}
	if (c->max_per_ip && s->count >= c->max_per_ip)
		return -EMFILE;
	if (c->rate_per_s) {
		refill(c, s, now_ms);
		if (s->tokens_milli < 1000)
			return -EAGAIN;
		s->tokens_milli -= 1000;
	}
	if (s->count++ == 0)
		idle_unlink(c, s);
	return 0;
}

void n4_ipcap_release(n4_ipcap *c, const struct n4_ipkey *k, uint64_t now_ms)
{
	if (!c->max_per_ip && !c->rate_per_s)
		return;
	struct src *s = *slot_of(c, k);
	if (!s || s->count == 0)
		return;
	if (--s->count == 0)
		idle_push(c, s, now_ms);
}

void n4_ipcap_sweep(n4_ipcap *c, uint64_t now_ms)
{
	/* The idle list is in order of idle_ms.  An entry idle for refill_ms has a
	 * full bucket again (it spent nothing since), so forgetting it changes
	 * nothing for that source. */
	while (c->idle_head && now_ms - c->idle_head->idle_ms >= c->refill_ms) {
		struct src *s = c->idle_head;
		idle_unlink(c, s);
		struct src **pp = slot_of(c, &s->key);
		*pp = s->next;
		free(s);
		c->nsources--;
	}
}

size_t n4_ipcap_sources(const n4_ipcap *c)
{
	return c->nsources;
}

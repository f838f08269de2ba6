/* ipcap.h - the server's per-source limits: how many connections one source holds
 * at once, and a token bucket of new connections per source.  A source is an IPv4
 * address, or an IPv6 /64 (one subscriber usually gets a whole /64, so counting
 * single IPv6 addresses would be no limit at all).  Also the keyed hash the
 * server's tables use, and address helpers that know IPv6. */
#ifndef N4_IPCAP_H
#define N4_IPCAP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* SipHash-2-4 of a short key: tables keyed by attacker-chosen bytes (identifiers,
 * addresses) must not let an attacker pick colliding keys. */
uint64_t n4_keyed_hash(const void *data, size_t len, const uint64_t key[2]);
/* Two random words for n4_keyed_hash (from getrandom, else from the clock). */
void n4_hash_key_init(uint64_t key[2]);

/* Any socket address we deal with: IPv4, or IPv6 (possibly v4-mapped). */
union n4_sa {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

/* An IPv4 address (also a v4-mapped one) as sockaddr_in; false for native IPv6. */
bool n4_sa_to_v4(const union n4_sa *a, struct sockaddr_in *out);
/* "1.2.3.4:5" or "[2001:db8::1]:5" (v4-mapped shown as IPv4); buf >= 56 bytes. */
const char *n4_sa_str(const union n4_sa *a, char *buf, size_t len);

struct n4_ipkey {
	uint8_t b[16]; /* v4-mapped IPv4, or an IPv6 /64 with the host part zeroed */
};

void n4_ipkey_from_sa(const union n4_sa *a, struct n4_ipkey *k);

typedef struct n4_ipcap n4_ipcap;

/* max_per_ip: concurrent connections per source (0: no cap).  rate_per_s and
 * burst: a token bucket of new connections per source (rate 0: no limit).
 * expected_sources sizes the hash table. */
n4_ipcap *n4_ipcap_new(unsigned max_per_ip, unsigned rate_per_s, unsigned burst,
		       size_t expected_sources);
void n4_ipcap_free(n4_ipcap *c);

/* A new connection from k at now_ms.  0: admitted (release it later);
 * -EMFILE: the source already holds max_per_ip; -EAGAIN: over its rate;
 * -ENOMEM. */
int n4_ipcap_admit(n4_ipcap *c, const struct n4_ipkey *k, uint64_t now_ms);
/* A connection admitted for k has ended. */
void n4_ipcap_release(n4_ipcap *c, const struct n4_ipkey *k, uint64_t now_ms);
/* Free sources that hold no connection and whose bucket has refilled; call
 * about once a second.  Keeps memory bounded by live connections plus the
 * sources seen in the last burst/rate seconds. */
void n4_ipcap_sweep(n4_ipcap *c, uint64_t now_ms);
/* Sources currently tracked. */
size_t n4_ipcap_sources(const n4_ipcap *c);

#endif

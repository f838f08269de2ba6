/* blake2s.h - BLAKE2s (RFC 7693), plain and keyed, 1..32-byte digests.
 *
 * The one cryptographic primitive of n4: it derives pairing identifiers from a
 * key, authenticates PUNCHes (keyed mode is a MAC, RFC 7693 section 2.9) and
 * turns server secrets into unpredictable tokens.  Written here because the
 * design allows no crypto library. */
#ifndef N4_BLAKE2S_H
#define N4_BLAKE2S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define N4_BLAKE2S_OUTBYTES 32
#define N4_BLAKE2S_KEYBYTES 32
#define N4_BLAKE2S_BLOCKBYTES 64

struct n4_blake2s {
	uint32_t h[8];
	uint32_t t[2];
	uint8_t buf[N4_BLAKE2S_BLOCKBYTES];
	size_t buflen;
	size_t outlen;
};

/* outlen 1..32, keylen 0..32 (key may be NULL when 0).  -EINVAL otherwise. */
int n4_blake2s_init(struct n4_blake2s *s, size_t outlen, const void *key, size_t keylen);
void n4_blake2s_update(struct n4_blake2s *s, const void *in, size_t inlen);
/* Writes s->outlen bytes and wipes the state. */
void n4_blake2s_final(struct n4_blake2s *s, uint8_t *out);
/* One call: out = BLAKE2s-outlen(key; in). */
int n4_blake2s(uint8_t *out, size_t outlen, const void *key, size_t keylen, const void *in,
	       size_t inlen);

/* Compare in time that depends on len only, never on where the bytes differ. */
bool n4_ct_equal(const void *a, const void *b, size_t len);
/* Zero memory in a way the compiler may not drop. */
void n4_wipe(void *p, size_t len);

#endif

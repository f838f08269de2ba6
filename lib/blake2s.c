/* blake2s.c - BLAKE2s as specified in RFC 7693 (section 3 for the compression
 * function G and F, section 2.5 for the parameter block of a keyed hash).
 * Straightforward and portable: speed is not the point, the inputs are tens of
 * bytes. */
#include "blake2s.h"

#include <errno.h>
#include <string.h>

static const uint32_t blake2s_iv[8] = {
	0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
	0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u,
};

/* RFC 7693 section 2.7: message word schedule for the ten rounds. */
static const uint8_t sigma[10][16] = {
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
	{ 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
	{ 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
	{ 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
	{ 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
	{ 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
	{ 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
	{ 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
	{ 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
};

static uint32_t rotr32(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static uint32_t load32_le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store32_le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* RFC 7693 section 3.1, with BLAKE2s's rotations R1..R4 = 16, 12, 8, 7. */
static void mix(uint32_t v[16], int a, int b, int c, int d, uint32_t x, uint32_t y)
{
	v[a] = v[a] + v[b] + x;
	v[d] = rotr32(v[d] ^ v[a], 16);
	v[c] = v[c] + v[d];
	v[b] = rotr32(v[b] ^ v[c], 12);
	v[a] = v[a] + v[b] + y;
	v[d] = rotr32(v[d] ^ v[a], 8);
	v[c] = v[c] + v[d];
	v[b] = rotr32(v[b] ^ v[c], 7);
}

/* RFC 7693 section 3.2: the compression function F. */
static void compress(struct n4_blake2s *s, const uint8_t block[N4_BLAKE2S_BLOCKBYTES], bool last)
{
	uint32_t v[16], m[16];

	for (int i = 0; i < 16; i++)
		m[i] = load32_le(block + 4 * i);
	for (int i = 0; i < 8; i++) {
		v[i] = s->h[i];
		v[i + 8] = blake2s_iv[i];
	}
	v[12] ^= s->t[0];
	v[13] ^= s->t[1];
	if (last)
		v[14] = ~v[14];
	for (int r = 0; r < 10; r++) {
		const uint8_t *z = sigma[r];
		mix(v, 0, 4, 8, 12, m[z[0]], m[z[1]]);
		mix(v, 1, 5, 9, 13, m[z[2]], m[z[3]]);
		mix(v, 2, 6, 10, 14, m[z[4]], m[z[5]]);
		mix(v, 3, 7, 11, 15, m[z[6]], m[z[7]]);
		mix(v, 0, 5, 10, 15, m[z[8]], m[z[9]]);
		mix(v, 1, 6, 11, 12, m[z[10]], m[z[11]]);
		mix(v, 2, 7, 8, 13, m[z[12]], m[z[13]]);
		mix(v, 3, 4, 9, 14, m[z[14]], m[z[15]]);
	}
	for (int i = 0; i < 8; i++)
		s->h[i] ^= v[i] ^ v[i + 8];
	n4_wipe(v, sizeof(v));
	n4_wipe(m, sizeof(m));
}

static void count_bytes(struct n4_blake2s *s, uint32_t n)
{
	s->t[0] += n;
	if (s->t[0] < n)
		s->t[1]++;
}

int n4_blake2s_init(struct n4_blake2s *s, size_t outlen, const void *key, size_t keylen)
{
	if (outlen < 1 || outlen > N4_BLAKE2S_OUTBYTES || keylen > N4_BLAKE2S_KEYBYTES ||
	    (keylen && !key))
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	memcpy(s->h, blake2s_iv, sizeof(s->h));
	/* Parameter block word 0: digest length, key length, fanout 1, depth 1. */
	s->h[0] ^= 0x01010000u ^ ((uint32_t)keylen << 8) ^ (uint32_t)outlen;
	s->outlen = outlen;
	if (keylen) {
		/* The key, zero-padded to a full block, is the first block. */
		memcpy(s->buf, key, keylen);
		s->buflen = N4_BLAKE2S_BLOCKBYTES;
	}
	return 0;
}

void n4_blake2s_update(struct n4_blake2s *s, const void *in, size_t inlen)
{
	const uint8_t *p = in;

	while (inlen > 0) {
		/* The last block is compressed in final (with the flag set), so a
		 * full buffer is compressed only once more input is known to follow. */
		if (s->buflen == N4_BLAKE2S_BLOCKBYTES) {
			count_bytes(s, N4_BLAKE2S_BLOCKBYTES);
			compress(s, s->buf, false);
			s->buflen = 0;
		}
		size_t take = N4_BLAKE2S_BLOCKBYTES - s->buflen;
		if (take > inlen)
			take = inlen;
		memcpy(s->buf + s->buflen, p, take);
		s->buflen += take;
		p += take;
		inlen -= take;
	}
}

void n4_blake2s_final(struct n4_blake2s *s, uint8_t *out)
{
	uint8_t full[N4_BLAKE2S_OUTBYTES];

	count_bytes(s, (uint32_t)s->buflen);
	memset(s->buf + s->buflen, 0, N4_BLAKE2S_BLOCKBYTES - s->buflen);
	compress(s, s->buf, true);
	for (int i = 0; i < 8; i++)
		store32_le(full + 4 * i, s->h[i]);
	memcpy(out, full, s->outlen);
	n4_wipe(full, sizeof(full));
	n4_wipe(s, sizeof(*s));
}

int n4_blake2s(uint8_t *out, size_t outlen, const void *key, size_t keylen, const void *in,
	       size_t inlen)
{
	struct n4_blake2s s;
	int err = n4_blake2s_init(&s, outlen, key, keylen);

	if (err)
		return err;
	n4_blake2s_update(&s, in, inlen);
	n4_blake2s_final(&s, out);
	return 0;
}

bool n4_ct_equal(const void *a, const void *b, size_t len)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= (uint8_t)(x[i] ^ y[i]);
	return diff == 0;
}

void n4_wipe(void *p, size_t len)
{
	volatile uint8_t *v = p;

	while (len--)
		*v++ = 0;
}

/* test_trust.c - BLAKE2s against published vectors, key files, derivations and
 * the authenticated PUNCH (accept, one flipped bit, replay, wrong round). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "blake2s.h"
#include "key.h"
#include "test.h"

static void unhex(const char *hex, uint8_t *out)
{
	for (size_t i = 0; hex[2 * i]; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

TEST(blake2s_rfc7693_appendix_b_abc)
{
	uint8_t out[32], want[32];

	unhex("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982", want);
	CHECK_EQ(n4_blake2s(out, 32, NULL, 0, "abc", 3), 0);
	CHECK(memcmp(out, want, 32) == 0);
}

/* Keyed known answers from the BLAKE2 reference (testvectors/blake2s-test.txt):
 * key 00..1f, input 00..(len-1).  Lengths around the 64-byte block edge. */
TEST(blake2s_reference_keyed_vectors)
{
	static const struct {
		size_t len;
		const char *hash;
	} kat[] = {
		{ 0, "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49" },
		{ 1, "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1" },
		{ 3, "1d220dbe2ee134661fdf6d9e74b41704710556f2f6e5a091b227697445dbea6b" },
		{ 32, "c03bc642b20959cbe133a0303e0c1abff3e31ec8e1a328ec8565c36decff5265" },
		{ 63, "c65382513f07460da39833cb666c5ed82e61b9e998f4b0c4287cee56c3cc9bcd" },
		{ 64, "8975b0577fd35566d750b362b0897a26c399136df07bababbde6203ff2954ed4" },
		{ 65, "21fe0ceb0052be7fb0f004187cacd7de67fa6eb0938d927677f2398c132317a8" },
		{ 66, "2ef73f3c26f12d93889f3c78b6a66c1d52b649dc9e856e2c172ea7c58ac2b5e3" },
	};
	uint8_t key[32], in[80], out[32], want[32];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 80; i++)
		in[i] = (uint8_t)i;
	for (size_t k = 0; k < sizeof(kat) / sizeof(kat[0]); k++) {
		unhex(kat[k].hash, want);
		CHECK_EQ(n4_blake2s(out, 32, key, 32, in, kat[k].len), 0);
		CHECK(memcmp(out, want, 32) == 0);
		/* The same through byte-by-byte updates (buffer edges). */
		struct n4_blake2s s;
		CHECK_EQ(n4_blake2s_init(&s, 32, key, 32), 0);
		for (size_t j = 0; j < kat[k].len; j++)
			n4_blake2s_update(&s, in + j, 1);
		n4_blake2s_final(&s, out);
		CHECK(memcmp(out, want, 32) == 0);
	}
}

TEST(blake2s_rejects_bad_lengths_and_ct_equal_compares)
{
	uint8_t out[32], key[33] = { 0 };

	CHECK_EQ(n4_blake2s(out, 0, NULL, 0, "", 0), -EINVAL);
	CHECK_EQ(n4_blake2s(out, 33, NULL, 0, "", 0), -EINVAL);
	CHECK_EQ(n4_blake2s(out, 32, key, 33, "", 0), -EINVAL);
	CHECK(n4_ct_equal("abcd", "abcd", 4));
	CHECK(!n4_ct_equal("abcd", "abce", 4));
	CHECK(!n4_ct_equal("xbcd", "abcd", 4));
}

TEST(key_encode_decode_roundtrip_and_rejects_malformed)
{
	uint8_t key[32], back[32];
	char text[N4_KEY_B64_LEN + 1], line[64];

	CHECK_EQ(n4_key_generate(key), 0);
	n4_key_encode(key, text);
	CHECK_EQ(strlen(text), 44);
	CHECK_EQ(n4_key_decode(text, strlen(text), back), 0);
	CHECK(memcmp(key, back, 32) == 0);
	snprintf(line, sizeof(line), "  %s\n", text);
	CHECK_EQ(n4_key_decode(line, strlen(line), back), 0);
	CHECK_EQ(n4_key_decode(text, 43, back), 0); /* unpadded */
	CHECK_EQ(n4_key_decode(text, 42, back), -EINVAL);
	CHECK_EQ(n4_key_decode("", 0, back), -EINVAL);
	snprintf(line, sizeof(line), "%s", text);
	line[10] = '*';
	CHECK_EQ(n4_key_decode(line, strlen(line), back), -EINVAL);
	snprintf(line, sizeof(line), "%sAAAA", text);
	CHECK_EQ(n4_key_decode(line, strlen(line), back), -EINVAL);
	/* Non-canonical last symbol (stray low bits) is not the same key. */
	snprintf(line, sizeof(line), "%s", text);
	line[42] = line[42] == 'B' ? 'C' : 'B';
	CHECK(n4_key_decode(line, 43, back) == -EINVAL || memcmp(back, key, 32) != 0);
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) && chmod(path, mode) == 0 ? 0 : -1;
}

TEST(key_file_checks_name_the_file)
{
	char dir[] = "/tmp/n4keyXXXXXX", path[64], why[256];
	uint8_t key[32], got[32];
	char text[N4_KEY_B64_LEN + 1], body[64];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/k", dir);
	CHECK_EQ(n4_key_generate(key), 0);
	n4_key_encode(key, text);
	snprintf(body, sizeof(body), "%s\n", text);
	CHECK_EQ(write_file(path, body, 0600), 0);
	CHECK_EQ(n4_key_load(path, got, why, sizeof(why)), 0);
	CHECK(memcmp(key, got, 32) == 0);
	CHECK_EQ(write_file(path, body, 0644), 0);
	CHECK_EQ(n4_key_load(path, got, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, path) && strstr(why, "group or others"));
	CHECK_EQ(write_file(path, "not a key\n", 0600), 0);
	CHECK_EQ(n4_key_load(path, got, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, path) && strstr(why, "not a key"));
	unlink(path);
	CHECK_EQ(n4_key_load(path, got, why, sizeof(why)), -ENOENT);
	CHECK(strstr(why, path) != NULL);
	rmdir(dir);
}

TEST(key_derivations_depend_on_key_and_room)
{
	uint8_t k1[32] = { 1 }, k2[32] = { 2 };
	struct n4_keyed a, b, c;

	CHECK_EQ(n4_key_derive(k1, "n4n4n4", &a), 0);
	CHECK_EQ(n4_key_derive(k1, "n4n4n4", &b), 0);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	CHECK_EQ(n4_ident_check(a.short_id), 0);
	CHECK_EQ(n4_key_derive(k2, "n4n4n4", &c), 0);
	CHECK(memcmp(a.long_id, c.long_id, sizeof(a.long_id)) != 0);
	CHECK(strcmp(a.short_id, c.short_id) != 0);
	CHECK_EQ(n4_key_derive(k1, "room2", &c), 0);
	CHECK(memcmp(a.long_id, c.long_id, sizeof(a.long_id)) != 0);
	CHECK(memcmp(a.mac_key, c.mac_key, sizeof(a.mac_key)) != 0);
	CHECK(memcmp(a.mac_key, k1, 32) != 0);
	CHECK_EQ(n4_key_derive(k1, "bad id", &c), -EINVAL);
}

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

/* Two sides of one pairing: A reported at 1.1.1.1:1000, B at 2.2.2.2:2000. */
static void two_sides(struct n4_auth *a, struct n4_auth *b, const uint8_t key[32], bool self)
{
	struct n4_keyed k;
	struct sockaddr_in pa = v4("1.1.1.1", 1000), pb = v4("2.2.2.2", 2000);

	n4_key_derive(key, "n4n4n4", &k);
	n4_auth_round(a, &k);
	n4_auth_round(b, &k);
	n4_auth_bind(a, &pb, self ? &pa : NULL, NULL);
	n4_auth_bind(b, &pa, self ? &pb : NULL, NULL);
}

TEST(auth_two_messages_prove_each_side)
{
	uint8_t key[32] = { 7 }, m[N4_APUNCH_SIZE];
	struct n4_auth a, b;

	for (int self = 0; self < 2; self++) {
		two_sides(&a, &b, key, self);
		n4_auth_encode(&a, 0, m); /* A's first PUNCH: no echo yet */
		CHECK_EQ(n4_auth_check(&b, m, sizeof(m)), N4_AUTH_NONCE);
		n4_auth_encode(&b, 0, m); /* B answers with A's nonce */
		CHECK_EQ(n4_auth_check(&a, m, sizeof(m)), N4_AUTH_WIN);
		n4_auth_encode(&a, N4_PUNCH_ACK, m);
		CHECK_EQ(n4_auth_check(&b, m, sizeof(m)), N4_AUTH_WIN);
		CHECK(b.peer_acked);
	}
}

TEST(auth_rejects_flipped_bits_other_keys_and_plain_punches)
{
	uint8_t key[32] = { 7 }, other[32] = { 8 }, m[N4_APUNCH_SIZE], plain[N4_MSG_SIZE];
	struct n4_auth a, b, x, y;

	two_sides(&a, &b, key, true);
	n4_auth_encode(&b, 0, m);
	CHECK_EQ(n4_auth_check(&a, m, sizeof(m)), N4_AUTH_NONCE);
	n4_auth_encode(&a, 0, m);
	for (size_t bit = 8 * 8; bit < 8 * sizeof(m); bit++) {
		uint8_t f[N4_APUNCH_SIZE];
		memcpy(f, m, sizeof(f));
		f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct n4_auth bb = b;
		CHECK(n4_auth_check(&bb, f, sizeof(f)) <= N4_AUTH_OTHER);
	}
	CHECK_EQ(n4_auth_check(&b, m, sizeof(m)), N4_AUTH_WIN);
	/* Someone with another key but the same short id (forced) fails. */
	two_sides(&x, &y, other, true);
	memcpy(x.ident, a.ident, sizeof(x.ident));
	n4_auth_encode(&x, 0, m);
	CHECK_EQ(n4_auth_check(&a, m, sizeof(m)), N4_AUTH_BAD);
	n4_punch_bytes(a.ident, 0, plain);
	CHECK_EQ(n4_auth_check(&a, plain, sizeof(plain)), N4_AUTH_BAD);
	CHECK_EQ(n4_auth_check(&a, m, sizeof(m) - 1), N4_AUTH_OTHER);
}

TEST(auth_replayed_punch_of_an_earlier_round_never_wins)
{
	uint8_t key[32] = { 9 }, m[N4_APUNCH_SIZE], old[N4_APUNCH_SIZE];
	struct n4_auth a, b;

	/* Without SELF (original server) addresses may repeat: the nonce alone
	 * must stop the replay. */
	two_sides(&a, &b, key, false);
	n4_auth_encode(&a, 0, m);
	CHECK_EQ(n4_auth_check(&b, m, sizeof(m)), N4_AUTH_NONCE);
	n4_auth_encode(&b, N4_PUNCH_ACK, old); /* echoes A's nonce of round 1 */
	CHECK_EQ(n4_auth_check(&a, old, sizeof(old)), N4_AUTH_WIN);
	two_sides(&a, &b, key, false); /* round 2: fresh nonces */
	CHECK(n4_auth_check(&a, old, sizeof(old)) != N4_AUTH_WIN);
	CHECK(n4_auth_check(&a, old, sizeof(old)) != N4_AUTH_WIN);
}

TEST(auth_nonce_passed_on_by_the_server_wins_at_the_first_punch)
{
	uint8_t key[32] = { 5 }, m[N4_APUNCH_SIZE];
	struct n4_keyed k;
	struct n4_auth a, b;
	struct sockaddr_in pa = v4("1.1.1.1", 1000), pb = v4("2.2.2.2", 2000);

	n4_key_derive(key, "n4n4n4", &k);
	n4_auth_round(&a, &k);
	n4_auth_round(&b, &k);
	n4_auth_bind(&a, &pb, &pa, b.nonce);
	n4_auth_bind(&b, &pa, &pb, a.nonce);
	n4_auth_encode(&a, 0, m);
	CHECK_EQ(n4_auth_check(&b, m, sizeof(m)), N4_AUTH_WIN);
	n4_auth_encode(&b, 0, m);
	CHECK_EQ(n4_auth_check(&a, m, sizeof(m)), N4_AUTH_WIN);
	/* A server that passes on a wrong nonce costs one exchange, no more. */
	uint8_t wrong[N4_NONCE_SIZE] = { 1 };
	n4_auth_round(&a, &k);
	n4_auth_round(&b, &k);
	n4_auth_bind(&a, &pb, &pa, wrong);
	n4_auth_bind(&b, &pa, &pb, wrong);
	n4_auth_encode(&a, 0, m);
	CHECK_EQ(n4_auth_check(&b, m, sizeof(m)), N4_AUTH_NONCE);
	n4_auth_encode(&b, 0, m);
	CHECK_EQ(n4_auth_check(&a, m, sizeof(m)), N4_AUTH_WIN);
}

/* Through the relay (client.c relay_auth) the datagrams come from the relay's
 * address, never the peer's: the proof rests on the MAC alone, over the
 * addresses the server reported to both sides (the same in relay mode) and this
 * round's nonces.  An APUNCH of another pairing under the same key (two rooms of
 * one key relayed at once, or a relay that crossed its ports) never wins. */
TEST(auth_relayed_pair_proves_itself_and_rejects_another_pairings_punch)
{
	uint8_t key[32] = { 3 }, m[N4_APUNCH_SIZE];
	struct n4_keyed k;
	struct n4_auth a, b, c, d;
	struct sockaddr_in pa = v4("1.1.1.1", 1000), pb = v4("2.2.2.2", 2000);
	struct sockaddr_in pc = v4("1.1.1.1", 1001), pd = v4("2.2.2.2", 2001);

	n4_key_derive(key, "n4n4n4", &k);
	n4_auth_round(&a, &k);
	n4_auth_round(&b, &k);
	n4_auth_round(&c, &k);
	n4_auth_round(&d, &k);
	n4_auth_bind(&a, &pb, &pa, b.nonce);
	n4_auth_bind(&b, &pa, &pb, a.nonce);
	n4_auth_bind(&c, &pd, &pc, d.nonce);
	n4_auth_bind(&d, &pc, &pd, c.nonce);
	/* C's PUNCH echoing A's nonce (C learnt it from a forwarded datagram):
	 * authentic under the key, but bound to C/D's addresses. */
	memcpy(c.peer_nonce, a.nonce, N4_NONCE_SIZE);
	n4_auth_encode(&c, 0, m);
	CHECK_EQ(n4_auth_check(&a, m, sizeof(m)), N4_AUTH_OTHER);
	CHECK(!a.peer_acked);
	/* The pair's own exchange still wins at the first datagram each way. */
	n4_auth_encode(&b, 0, m);
	CHECK_EQ(n4_auth_check(&a, m, sizeof(m)), N4_AUTH_WIN);
	n4_auth_encode(&a, N4_PUNCH_ACK, m);
	CHECK_EQ(n4_auth_check(&b, m, sizeof(m)), N4_AUTH_WIN);
	CHECK(b.peer_acked);
}

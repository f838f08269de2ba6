/* cand6.c - IPv6 candidates and their wire (format in cand6.h).  The decoders
 * parse untrusted bytes: fuzzed by tests/fuzz/fuzz_cand6.c. */
#include "cand6.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blake2s.h"

#define IF_INET6 "/proc/net/if_inet6"

bool n4_cand6_usable(const struct in6_addr *a, unsigned flags)
{
	const uint8_t *b = a->s6_addr;

	if (flags &
	    (N4_IFA_F_TEMPORARY | N4_IFA_F_DADFAILED | N4_IFA_F_DEPRECATED | N4_IFA_F_TENTATIVE))
		return false;
	if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_MULTICAST(a) ||
	    IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_SITELOCAL(a) || IN6_IS_ADDR_V4MAPPED(a) ||
	    IN6_IS_ADDR_V4COMPAT(a))
		return false;
	if ((b[0] & 0xfe) == 0xfc) /* unique-local fc00::/7: no route between sites */
		return false;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "20010db8000a00000000000000000002 02 40 00 80 eth0": address, interface
 * index, prefix length, scope, flags (hex), name. */
int n4_cand6_parse_line(const char *line, struct in6_addr *a, unsigned *flags)
{
	unsigned idx, plen, scope, fl;
	char name[64];

	for (int i = 0; i < 16; i++) {
		int hi = hexval(line[2 * i]), lo = hi < 0 ? -1 : hexval(line[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		a->s6_addr[i] = (uint8_t)(hi << 4 | lo);
	}
	if (line[32] != ' ' ||
	    sscanf(line + 32, "%x %x %x %x %63s", &idx, &plen, &scope, &fl, name) != 5)
		return -EINVAL;
	*flags = fl;
	return 0;
}

int n4_cand6_pick(const char *path, struct in6_addr *out)
{
	FILE *f = fopen(path ? path : IF_INET6, "re");
	char line[256];
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		struct in6_addr a;
		unsigned flags;
		if (n4_cand6_parse_line(line, &a, &flags) == 0 && n4_cand6_usable(&a, flags)) {
			*out = a;
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

void n4_v6addr_encode(const struct sockaddr_in6 *a, uint8_t out[N4_V6_ADDR_SIZE])
{
	memcpy(out, a->sin6_addr.s6_addr, 16);
	memcpy(out + 16, &a->sin6_port, 2); /* network order: big-endian */
}

int n4_v6addr_decode(const uint8_t in[N4_V6_ADDR_SIZE], struct sockaddr_in6 *a)
{
	memset(a, 0, sizeof(*a));
	a->sin6_family = AF_INET6;
	memcpy(a->sin6_addr.s6_addr, in, 16);
	memcpy(&a->sin6_port, in + 16, 2);
	if (a->sin6_port == 0 || !n4_cand6_usable(&a->sin6_addr, 0))
		return -EINVAL;
	return 0;
}

void n4_v6probe_encode(const struct n4_v6probe *p, uint8_t out[N4_V6_PROBE_SIZE])
{
	out[0] = N4_CMD_V6;
	out[1] = p->kind;
	memcpy(out + 2, p->token, N4_TOKEN_SIZE);
	memcpy(out + 2 + N4_TOKEN_SIZE, p->blob, N4_V6_SEALED_SIZE);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

int n4_v6probe_decode(const void *buf, size_t len, struct n4_v6probe *p)
{
	const uint8_t *b = buf;

	if (len != N4_V6_PROBE_SIZE)
		return -EMSGSIZE;
	if (b[0] != N4_CMD_V6 || (b[1] != N4_V6_PROBE && b[1] != N4_V6_PROBE_SEALED))
		return -EPROTO;
	p->kind = b[1];
	memcpy(p->token, b + 2, N4_TOKEN_SIZE);
	memcpy(p->blob, b + 2 + N4_TOKEN_SIZE, N4_V6_SEALED_SIZE);
	if (p->kind == N4_V6_PROBE && !all_zero(p->blob, sizeof(p->blob)))
		return -EPROTO;
	return 0;
}

int n4_v6rx_take(struct n4_v6rx *rx, const struct n4_msg *m)
{
	uint8_t base = m->ext & 0xf0, part = m->ext & 0x0f;

	if (m->cmd != N4_CMD_V6)
		return -EPROTO;
	if (base == N4_V6_SELF && part == rx->self_parts && part < N4_V6_ADDR_PARTS) {
		/* 18 bytes in three parts: the last part's 6 bytes fill it */
		memcpy(rx->self + N4_PAYLOAD_SIZE * part, m->payload, N4_PAYLOAD_SIZE);
		rx->self_parts++;
		return 0;
	}
	if (base == N4_V6_PEER && part == rx->peer_parts && part < N4_V6_ADDR_PARTS &&
	    !rx->sealed_parts) {
		memcpy(rx->peer + N4_PAYLOAD_SIZE * part, m->payload, N4_PAYLOAD_SIZE);
		rx->peer_parts++;
		return 0;
	}
	if (base == N4_V6_SEALED && part == rx->sealed_parts && part < N4_V6_SEALED_PARTS &&
	    !rx->peer_parts) {
		memcpy(rx->peer + N4_PAYLOAD_SIZE * part, m->payload, N4_PAYLOAD_SIZE);
		rx->sealed_parts++;
		return 0;
	}
	return -EPROTO;
}

int n4_v6rx_self(const struct n4_v6rx *rx, struct sockaddr_in6 *a)
{
	if (rx->self_parts != N4_V6_ADDR_PARTS)
		return -ENOENT;
	return n4_v6addr_decode(rx->self, a);
}

int n4_v6rx_peer(const struct n4_v6rx *rx, struct sockaddr_in6 *a)
{
	if (rx->peer_parts != N4_V6_ADDR_PARTS)
		return -ENOENT;
	return n4_v6addr_decode(rx->peer, a);
}

int n4_v6rx_sealed(const struct n4_v6rx *rx, uint8_t blob[N4_V6_SEALED_SIZE])
{
	if (rx->sealed_parts != N4_V6_SEALED_PARTS)
		return -ENOENT;
	memcpy(blob, rx->peer, N4_V6_SEALED_SIZE);
	return 0;
}

static unsigned parts_msgs(uint8_t base, const uint8_t *bytes, size_t len, struct n4_msg *out)
{
	unsigned n = 0;

	for (size_t off = 0; off < len; off += N4_PAYLOAD_SIZE, n++) {
		uint8_t pl[N4_PAYLOAD_SIZE] = { 0 };
		memcpy(pl, bytes + off, len - off < N4_PAYLOAD_SIZE ? len - off : N4_PAYLOAD_SIZE);
		n4_msg_init(&out[n], N4_CMD_V6, (uint8_t)(base + n), pl);
	}
	return n;
}

unsigned n4_v6_report_msgs(const struct sockaddr_in6 *self, const struct sockaddr_in6 *peer,
			   const uint8_t *sealed, struct n4_msg out[N4_V6_REPORT_MAX])
{
	uint8_t b[N4_V6_ADDR_SIZE];
	unsigned n = 0;

	if (self) {
		n4_v6addr_encode(self, b);
		n += parts_msgs(N4_V6_SELF, b, sizeof(b), out + n);
	}
	if (peer) {
		n4_v6addr_encode(peer, b);
		n += parts_msgs(N4_V6_PEER, b, sizeof(b), out + n);
	} else if (sealed) {
		n += parts_msgs(N4_V6_SEALED, sealed, N4_V6_SEALED_SIZE, out + n);
	}
	return n;
}

/* The per-round key: the pair's MAC key, separated from its use for APUNCH
 * (whose messages start with N4_CMD_APUNCH) by the label. */
static void seal_key(const uint8_t mac_key[32], const uint8_t nonce[16], uint8_t k[32])
{
	static const char label[] = "n4 v6 candidate";
	uint8_t in[sizeof(label) - 1 + 16];

	memcpy(in, label, sizeof(label) - 1);
	memcpy(in + sizeof(label) - 1, nonce, 16);
	(void)n4_blake2s(k, 32, mac_key, 32, in, sizeof(in));
}

static void seal_mac(const uint8_t k[32], const uint8_t ct[N4_V6_ADDR_SIZE], uint8_t mac[16])
{
	uint8_t in[3 + N4_V6_ADDR_SIZE];

	memcpy(in, "mac", 3);
	memcpy(in + 3, ct, N4_V6_ADDR_SIZE);
	(void)n4_blake2s(mac, 16, k, 32, in, sizeof(in));
}

void n4_cand6_seal(const uint8_t mac_key[32], const uint8_t nonce[16],
		   const struct sockaddr_in6 *cand, uint8_t out[N4_V6_SEALED_SIZE])
{
	uint8_t k[32], ks[N4_V6_ADDR_SIZE];

	seal_key(mac_key, nonce, k);
	(void)n4_blake2s(ks, sizeof(ks), k, sizeof(k), "enc", 3);
	n4_v6addr_encode(cand, out);
	for (size_t i = 0; i < N4_V6_ADDR_SIZE; i++)
		out[i] ^= ks[i];
	seal_mac(k, out, out + N4_V6_ADDR_SIZE);
	n4_wipe(k, sizeof(k));
	n4_wipe(ks, sizeof(ks));
}

int n4_cand6_open(const uint8_t mac_key[32], const uint8_t nonce[16],
		  const uint8_t in[N4_V6_SEALED_SIZE], struct sockaddr_in6 *cand)
{
	uint8_t k[32], ks[N4_V6_ADDR_SIZE], mac[16], pt[N4_V6_ADDR_SIZE];
	int err = 0;

	seal_key(mac_key, nonce, k);
	seal_mac(k, in, mac);
	if (!n4_ct_equal(mac, in + N4_V6_ADDR_SIZE, sizeof(mac))) {
		err = -EBADMSG;
		goto out;
	}
	(void)n4_blake2s(ks, sizeof(ks), k, sizeof(k), "enc", 3);
	for (size_t i = 0; i < N4_V6_ADDR_SIZE; i++)
		pt[i] = in[i] ^ ks[i];
	err = n4_v6addr_decode(pt, cand);
out:
	n4_wipe(k, sizeof(k));
	n4_wipe(ks, sizeof(ks));
	return err;
}

/* test_pairing.c - the server's pairing tables and per-source limits. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "ipcap.h"
#include "pairing.h"
#include "test.h"

static void client(struct n4_pclient *c, const char *ident, uint32_t ip_host, uint8_t ext)
{
	memset(c, 0, sizeof(*c));
	n4_ident_encode(ident, c->ident);
	c->ip = htonl(ip_host);
	c->ext = ext;
}

static struct sockaddr_in v4(uint32_t ip_host, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(ip_host);
	return a;
}

TEST(pairing_two_hellos_pair_and_exchanges_are_attributed_by_ip)
{
	n4_pairing *p = n4_pairing_new(16);
	struct n4_pclient a, b, *out = NULL;
	struct n4_msg m;
	client(&a, "n4n4n4", 0x0a000001, 0);
	client(&b, "n4n4n4", 0x0a000002, 0);
	CHECK(n4_pairing_hello(p, &a) == NULL);
	CHECK_EQ(n4_pairing_waiting(p), 1);
	CHECK(n4_pairing_hello(p, &b) == &a);
	CHECK_EQ(n4_pairing_waiting(p), 0);
	n4_msg_init(&m, N4_CMD_EXCHANGE, 0, a.ident);
	struct sockaddr_in spoof = v4(0x0a000009, 5000), src = v4(0x0a000002, 4000);
	CHECK_EQ(n4_pairing_exchange(p, &m, &spoof, &out), -EPERM);
	CHECK_EQ(n4_pairing_exchange(p, &m, &src, &out), 0);
	CHECK(out == &b && b.observed && b.udp.sin_port == htons(4000));
	CHECK_EQ(n4_pairing_exchange(p, &m, &src, &out), -EALREADY);
	n4_pairing_remove(p, &a);
	n4_pairing_remove(p, &b);
	CHECK_EQ(n4_pairing_exchange(p, &m, &src, &out), -ENOENT);
	n4_pairing_free(p);
}

TEST(pairing_tokens_tell_apart_two_clients_behind_one_ip)
{
	n4_pairing *p = n4_pairing_new(16);
	struct n4_pclient a, b, *out = NULL;
	struct n4_msg m;
	client(&a, "x", 0x0a000001, N4_EXT_TOKEN);
	client(&b, "x", 0x0a000001, N4_EXT_TOKEN);
	n4_pairing_hello(p, &a);
	CHECK(n4_pairing_hello(p, &b) == &a);
	CHECK(memcmp(a.token, b.token, N4_TOKEN_SIZE) != 0);
	n4_msg_init(&m, N4_CMD_EXCHANGE, N4_EXT_TOKEN, b.token);
	struct sockaddr_in src = v4(0x0a000001, 7000);
	CHECK_EQ(n4_pairing_exchange(p, &m, &src, &out), 0);
	CHECK(out == &b);
	n4_msg_init(&m, N4_CMD_EXCHANGE, N4_EXT_TOKEN, a.token);
	struct sockaddr_in other = v4(0x0a000005, 7000);
	CHECK_EQ(n4_pairing_exchange(p, &m, &other, &out), -EPERM);
	n4_pairing_free(p);
}

TEST(pairing_many_clients_one_identifier_stay_separate)
{
	enum { N = 2000 };
	static struct n4_pclient c[N];
	n4_pairing *p = n4_pairing_new(N);
	for (int i = 0; i < N; i++) {
		client(&c[i], "n4n4n4", 0x0a000000u + (uint32_t)i, 0);
		struct n4_pclient *w = n4_pairing_hello(p, &c[i]);
		CHECK(i % 2 ? w == &c[i - 1] : w == NULL);
	}
	struct n4_msg m;
	n4_msg_init(&m, N4_CMD_EXCHANGE, 0, c[0].ident);
	for (int i = 0; i < N; i++) {
		struct n4_pclient *out = NULL;
		struct sockaddr_in src = v4(0x0a000000u + (uint32_t)i, 9000);
		CHECK_EQ(n4_pairing_exchange(p, &m, &src, &out), 0);
		CHECK(out == &c[i]);
	}
	n4_pairing_free(p);
}

TEST(ipcap_caps_concurrent_connections_and_rate_per_source)
{
	n4_ipcap *c = n4_ipcap_new(2, 10, 3, 16);
	union n4_sa a = { .v4 = v4(0x0a000001, 1) };
	struct n4_ipkey k;
	n4_ipkey_from_sa(&a, &k);
	CHECK_EQ(n4_ipcap_admit(c, &k, 1000), 0);
	CHECK_EQ(n4_ipcap_admit(c, &k, 1000), 0);
	CHECK_EQ(n4_ipcap_admit(c, &k, 1000), -EMFILE);
	n4_ipcap_release(c, &k, 1000);
	CHECK_EQ(n4_ipcap_admit(c, &k, 1000), 0); /* third token of the burst */
	n4_ipcap_release(c, &k, 1000);
	CHECK_EQ(n4_ipcap_admit(c, &k, 1000), -EAGAIN); /* bucket empty */
	CHECK_EQ(n4_ipcap_admit(c, &k, 1100), 0);	/* 10/s: one more after 100 ms */
	n4_ipcap_release(c, &k, 1100);
	n4_ipcap_release(c, &k, 1100);
	CHECK_EQ(n4_ipcap_sources(c), 1);
	n4_ipcap_sweep(c, 1200);
	CHECK_EQ(n4_ipcap_sources(c), 1); /* bucket not full yet: remembered */
	n4_ipcap_sweep(c, 1500);
	CHECK_EQ(n4_ipcap_sources(c), 0);
	n4_ipcap_free(c);
}

TEST(ipcap_ipv6_sources_are_slash64)
{
	union n4_sa a, b;
	struct n4_ipkey ka, kb;
	memset(&a, 0, sizeof(a));
	a.v6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:1:2::1", &a.v6.sin6_addr);
	b = a;
	inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &b.v6.sin6_addr);
	n4_ipkey_from_sa(&a, &ka);
	n4_ipkey_from_sa(&b, &kb);
	CHECK(memcmp(&ka, &kb, sizeof(ka)) == 0);
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &b.v6.sin6_addr);
	struct sockaddr_in v;
	CHECK(n4_sa_to_v4(&b, &v) && v.sin_addr.s_addr == htonl(0x0a000001));
	CHECK(!n4_sa_to_v4(&a, &v));
}

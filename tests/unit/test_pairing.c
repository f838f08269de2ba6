/* test_pairing.c - the server's pairing tables, per-source limits and admission, and
 * the STAY and same-LAN leaves' state. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ipcap.h"
#include "n4.h"
#include "pairing.h"
#include "srv_admit.h"
#include "srv_lan.h"
#include "srv_stay.h"
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

/* Admission is a check of counts, source and clock: the verdict and its -errno,
 * in the order the server applies them (draining, capacity, then the source). */
TEST(admission_refuses_for_shutdown_capacity_source_and_rate_in_that_order)
{
	n4_ipcap *c = n4_ipcap_new(1, 10, 2, 16);
	union n4_sa a = { .v4 = v4(0x0a000002, 1) };
	struct n4_admit_in in = { .nclients = 5, .max_clients = 6, .now_ms = 1000 };
	int err = 0;
	n4_ipkey_from_sa(&a, &in.src);
	in.draining = true;
	CHECK_EQ(n4_srv_admit(c, &in, &err), N4_ADMIT_SHUTDOWN);
	CHECK_EQ(err, -ESHUTDOWN);
	in.draining = false;
	in.nclients = 6;
	CHECK_EQ(n4_srv_admit(c, &in, &err), N4_ADMIT_FULL);
	CHECK_EQ(err, -ENOSPC);
	CHECK_EQ(n4_ipcap_sources(c), 0); /* refused before the source was counted */
	in.nclients = 5;
	CHECK_EQ(n4_srv_admit(c, &in, &err), N4_ADMIT_OK);
	CHECK_EQ(err, 0);
	CHECK_EQ(n4_srv_admit(c, &in, &err), N4_ADMIT_PER_IP);
	CHECK_EQ(err, -EMFILE);
	n4_ipcap_release(c, &in.src, 1000);
	CHECK_EQ(n4_srv_admit(c, &in, &err), N4_ADMIT_OK); /* second token of the burst */
	n4_ipcap_release(c, &in.src, 1000);
	CHECK_EQ(n4_srv_admit(c, &in, &err), N4_ADMIT_RATE);
	CHECK_EQ(err, -EAGAIN);
	n4_ipcap_free(c);
}

static bool stay_table_empty(const struct n4_srv_stay_list *l)
{
	for (unsigned i = 0; i < N4_STAY_BUCKETS; i++)
		if (l->bucket[i])
			return false;
	return true;
}

/* Kept connections are found by identifier; removing one (a send failed and
 * closed it) leaves the others findable, and removing twice is harmless. */
TEST(stay_list_finds_every_kept_connection_of_an_identifier)
{
	static struct n4_srv_stay_list l;
	struct n4_srv_stay n[3] = { { 0 } };
	uint8_t x[N4_PAYLOAD_SIZE], y[N4_PAYLOAD_SIZE];
	int owners[3];
	n4_srv_stay_init(&l);
	n4_ident_encode("xxxxxx", x);
	n4_ident_encode("yyyyyy", y);
	n4_srv_stay_add(&l, &n[0], x, &owners[0]);
	n4_srv_stay_add(&l, &n[1], y, &owners[1]);
	n4_srv_stay_add(&l, &n[2], x, &owners[2]);
	struct n4_srv_stay *f = n4_srv_stay_first(&l, x);
	CHECK(f == &n[2] && f->owner == &owners[2]);
	f = n4_srv_stay_next(f);
	CHECK(f == &n[0]);
	CHECK(n4_srv_stay_next(f) == NULL);
	n4_srv_stay_remove(&l, &n[2]);
	n4_srv_stay_remove(&l, &n[2]);
	CHECK(n4_srv_stay_first(&l, x) == &n[0]);
	CHECK(n4_srv_stay_first(&l, y) == &n[1]);
	n4_srv_stay_remove(&l, &n[0]);
	n4_srv_stay_remove(&l, &n[1]);
	CHECK(stay_table_empty(&l));
	/* STAY carries its identifier like HELLO; a server with one identifier
	 * refuses the others. */
	struct n4_msg m;
	uint8_t wire[N4_MSG_SIZE], got[N4_PAYLOAD_SIZE];
	char text[N4_PAYLOAD_SIZE + 1];
	n4_msg_init(&m, N4_CMD_STAY, N4_EXT_STAY, x);
	n4_wire_encode(&m, wire);
	CHECK_EQ(n4_srv_stay_decode(wire, NULL, got, text), 0);
	CHECK(memcmp(got, x, sizeof(x)) == 0 && strcmp(text, "xxxxxx") == 0);
	CHECK_EQ(n4_srv_stay_decode(wire, y, got, text), -EINVAL);
}

/* More identifiers than buckets: chains are shared, and each identifier still
 * finds exactly its own kept connections. */
TEST(stay_table_keeps_identifiers_apart_in_shared_buckets)
{
	enum { N = 3 * N4_STAY_BUCKETS };
	static struct n4_srv_stay_list l;
	static struct n4_srv_stay n[N];
	static uint8_t id[N / 2][N4_PAYLOAD_SIZE];
	n4_srv_stay_init(&l);
	for (unsigned i = 0; i < N / 2; i++) {
		char text[8];
		snprintf(text, sizeof(text), "k%u", i);
		n4_ident_encode(text, id[i]);
	}
	for (unsigned i = 0; i < N; i++)
		n4_srv_stay_add(&l, &n[i], id[i % (N / 2)], &n[i]);
	for (unsigned i = 0; i < N / 2; i++) {
		unsigned found = 0;
		for (struct n4_srv_stay *f = n4_srv_stay_first(&l, id[i]); f;
		     f = n4_srv_stay_next(f)) {
			CHECK(f == &n[i] || f == &n[i + N / 2]);
			found++;
		}
		CHECK_EQ(found, 2);
	}
	for (unsigned i = 0; i < N; i += 2)
		n4_srv_stay_remove(&l, &n[i]);
	for (unsigned i = 1; i < N; i += 2)
		n4_srv_stay_remove(&l, &n[i]);
	CHECK(stay_table_empty(&l));
}

/* A FLOW from a client (reserved byte 0, no port 0) is passed on byte for byte,
 * but for the reserved byte; anything else on a kept connection is refused. */
TEST(stay_leaf_passes_flows_on_and_refuses_the_rest)
{
	const uint8_t flow[N4_MSG_SIZE] = { N4_CMD_FLOW, 0, 0x9c, 0x40, 0x13, 0x88, 0xbe, 0xef };
	uint8_t bad[N4_MSG_SIZE], wire[N4_MSG_SIZE];
	struct n4_flow_note f;
	struct n4_msg fwd;
	CHECK_EQ(n4_srv_stay_flow(flow, &fwd, &f), 0);
	CHECK(f.from_port == 40000 && f.to_port == 5000 && f.nonce == 0xbeef);
	n4_wire_encode(&fwd, wire);
	CHECK(wire[0] == N4_CMD_FLOW && wire[1] == N4_FLOW_FORWARDED);
	CHECK(memcmp(wire + 2, flow + 2, N4_PAYLOAD_SIZE) == 0);
	memcpy(bad, flow, sizeof(bad));
	bad[1] = N4_FLOW_FORWARDED; /* the server's own form, echoed back */
	CHECK_EQ(n4_srv_stay_flow(bad, &fwd, &f), -EINVAL);
	memcpy(bad, flow, sizeof(bad));
	bad[2] = bad[3] = 0; /* port 0 */
	CHECK_EQ(n4_srv_stay_flow(bad, &fwd, &f), -EINVAL);
	memcpy(bad, flow, sizeof(bad));
	bad[4] = bad[5] = 0;
	CHECK_EQ(n4_srv_stay_flow(bad, &fwd, &f), -EINVAL);
	memcpy(bad, flow, sizeof(bad));
	bad[0] = N4_CMD_HELLO;
	CHECK_EQ(n4_srv_stay_flow(bad, &fwd, &f), -EINVAL);
	bad[0] = N4_CMD_STAY;
	CHECK_EQ(n4_srv_stay_flow(bad, &fwd, &f), -EINVAL);
}

/* 10 FLOWs a second with bursts of 20: 20 at once, then one per 100 ms; a long
 * pause refills the burst, never beyond it. */
TEST(stay_flow_rate_allows_a_burst_then_the_rate)
{
	struct n4_srv_stay n = { 0 };
	uint64_t t = 5000;
	unsigned ok = 0;
	for (int i = 0; i < 100; i++)
		ok += n4_srv_stay_flow_admit(&n, t);
	CHECK_EQ(ok, N4_STAY_FLOW_BURST);
	CHECK(!n4_srv_stay_flow_admit(&n, t + 99));
	CHECK(n4_srv_stay_flow_admit(&n, t + 100));
	CHECK(!n4_srv_stay_flow_admit(&n, t + 100));
	ok = 0;
	for (uint64_t ms = t + 101; ms <= t + 1100; ms++)
		ok += n4_srv_stay_flow_admit(&n, ms);
	CHECK_EQ(ok, N4_STAY_FLOW_RATE);
	ok = 0;
	for (int i = 0; i < 100; i++)
		ok += n4_srv_stay_flow_admit(&n, t + 3600000);
	CHECK_EQ(ok, N4_STAY_FLOW_BURST);
}

/* A LOCAL announces one address; the last is flagged; a fourth unflagged one is
 * a protocol error.  Shared addresses skip those the receiver announced itself. */
TEST(lan_leaf_takes_locals_and_shares_only_foreign_addresses)
{
	struct n4_srv_lan *a = n4_srv_lan_new(), *b = n4_srv_lan_new();
	struct sockaddr_in l1 = v4(0xc0a80002, 5000), l2 = v4(0xc0a80003, 5001), got;
	struct n4_msg m;
	uint8_t wire[N4_MSG_SIZE];
	CHECK(a && b);
	n4_local_encode(N4_CMD_LOCAL, &l1, false, &m);
	n4_wire_encode(&m, wire);
	CHECK_EQ(n4_srv_lan_local(a, wire, &got), 0);
	CHECK(got.sin_addr.s_addr == l1.sin_addr.s_addr && n4_srv_lan_pending(a));
	n4_local_encode(N4_CMD_LOCAL, &l2, true, &m);
	n4_wire_encode(&m, wire);
	CHECK_EQ(n4_srv_lan_local(a, wire, &got), 1);
	CHECK(!n4_srv_lan_pending(a));
	n4_local_encode(N4_CMD_LOCAL, &l1, true, &m); /* b shares l1 with a */
	n4_wire_encode(&m, wire);
	CHECK_EQ(n4_srv_lan_local(b, wire, &got), 1);
	n4_srv_lan_share(b, a);
	CHECK_EQ(n4_srv_lan_npeer(b), 1);
	CHECK(b->peer[0].sin_addr.s_addr == l2.sin_addr.s_addr);
	n4_srv_lan_peerlocal(b, 0, &m);
	CHECK(m.cmd == N4_CMD_PEERLOCAL && (m.ext & N4_LOCAL_LAST));
	CHECK_EQ(n4_srv_lan_npeer(NULL), 0);
	n4_srv_lan_free(a);
	n4_srv_lan_free(b);
	struct n4_srv_lan *c = n4_srv_lan_new();
	CHECK(c);
	n4_local_encode(N4_CMD_LOCAL, &l1, false, &m);
	n4_wire_encode(&m, wire);
	for (int i = 0; i < N4_LOCAL_MAX - 1; i++)
		CHECK_EQ(n4_srv_lan_local(c, wire, &got), 0);
	CHECK_EQ(n4_srv_lan_local(c, wire, &got), -EPROTO);
	n4_srv_lan_free(c);
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

/* splitmix64's output function and its inverse: the old token generator. */
static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t unxorshift(uint64_t x, unsigned s)
{
	uint64_t y = x;
	for (int i = 0; i < 64; i++)
		y = x ^ (y >> s);
	return y;
}

static uint64_t inv_mul(uint64_t c)
{
	uint64_t inv = c;
	for (int i = 0; i < 6; i++)
		inv *= 2 - c * inv;
	return inv;
}

static uint64_t unmix64(uint64_t x)
{
	x = unxorshift(x, 31) * inv_mul(0x94d049bb133111ebull);
	x = unxorshift(x, 27) * inv_mul(0xbf58476d1ce4e5b9ull);
	return unxorshift(x, 30);
}

static uint64_t low48(const uint8_t t[N4_TOKEN_SIZE])
{
	uint64_t v = 0;
	memcpy(&v, t, N4_TOKEN_SIZE); /* little-endian host, as the server */
	return v & 0xffffffffffffull;
}

/* The attack issue 8 describes: from two consecutive tokens recover the
 * generator's state (16 unknown bits) and predict the third.  Returns true
 * when some candidate state predicts t3 exactly. */
static bool predictable(const uint8_t t1[6], const uint8_t t2[6], const uint8_t t3[6])
{
	const uint64_t golden = 0x9e3779b97f4a7c15ull;
	for (uint64_t hi = 0; hi < 65536; hi++) {
		uint64_t seed = unmix64(hi << 48 | low48(t1));
		if ((mix64(seed + golden) & 0xffffffffffffull) != low48(t2))
			continue;
		if ((mix64(seed + 2 * golden) & 0xffffffffffffull) == low48(t3))
			return true;
	}
	return false;
}

TEST(pairing_tokens_of_past_pairings_do_not_predict_the_next)
{
	n4_pairing *p = n4_pairing_new(64);
	struct n4_pclient c[16];
	uint8_t tok[16][N4_TOKEN_SIZE];

	CHECK(p != NULL);
	for (int i = 0; i < 16; i += 2) {
		client(&c[i], "n4n4n4", 0x0a000001, N4_EXT_TOKEN);
		client(&c[i + 1], "n4n4n4", 0x0a000002, N4_EXT_TOKEN);
		CHECK(n4_pairing_hello(p, &c[i]) == NULL);
		CHECK(n4_pairing_hello(p, &c[i + 1]) == &c[i]);
		memcpy(tok[i], c[i].token, N4_TOKEN_SIZE);
		memcpy(tok[i + 1], c[i + 1].token, N4_TOKEN_SIZE);
	}
	/* The check itself can fail: it breaks the old generator. */
	uint8_t old[3][N4_TOKEN_SIZE];
	uint64_t seed = 12345;
	for (int i = 0; i < 3; i++) {
		uint64_t x = mix64(seed += 0x9e3779b97f4a7c15ull);
		memcpy(old[i], &x, N4_TOKEN_SIZE);
	}
	CHECK(predictable(old[0], old[1], old[2]));
	/* Ours: no pair of consecutive tokens predicts the next one, and no
	 * token repeats or differs from its predecessor by a constant step. */
	for (int i = 0; i + 2 < 16; i++)
		CHECK(!predictable(tok[i], tok[i + 1], tok[i + 2]));
	for (int i = 0; i < 16; i++)
		for (int j = i + 1; j < 16; j++)
			CHECK(memcmp(tok[i], tok[j], N4_TOKEN_SIZE) != 0);
	CHECK(low48(tok[1]) - low48(tok[0]) != low48(tok[2]) - low48(tok[1]));
	/* A second server (another secret) hands out other tokens. */
	n4_pairing *q = n4_pairing_new(64);
	struct n4_pclient a, b;
	client(&a, "n4n4n4", 0x0a000001, N4_EXT_TOKEN);
	client(&b, "n4n4n4", 0x0a000002, N4_EXT_TOKEN);
	CHECK(q && n4_pairing_hello(q, &a) == NULL && n4_pairing_hello(q, &b) == &a);
	CHECK(memcmp(a.token, tok[0], N4_TOKEN_SIZE) != 0);
	n4_pairing_free(q);
	n4_pairing_free(p);
}

TEST(pairing_second_legacy_pair_behind_one_ip_waits_for_the_first_exchange)
{
	n4_pairing *p = n4_pairing_new(16);
	struct n4_pclient a, b, c, d, *out = NULL;
	struct n4_msg m;

	/* a and c share an IP and the identifier; b and d are elsewhere. */
	client(&a, "n4n4n4", 0x0a000001, 0);
	client(&b, "n4n4n4", 0x0a000002, 0);
	client(&c, "n4n4n4", 0x0a000001, 0);
	client(&d, "n4n4n4", 0x0a000003, 0);
	CHECK(n4_pairing_hello(p, &a) == NULL);
	CHECK(n4_pairing_hello(p, &b) == &a);
	CHECK(!a.held && !b.held);
	CHECK(n4_pairing_hello(p, &c) == NULL);
	CHECK(n4_pairing_hello(p, &d) == &c);
	CHECK(c.held && !d.held);
	n4_msg_init(&m, N4_CMD_EXCHANGE, 0, a.ident);
	struct sockaddr_in from_a = v4(0x0a000001, 4000);
	/* Only a can have sent this: c has no READY yet. */
	CHECK_EQ(n4_pairing_exchange(p, &m, &from_a, &out), 0);
	CHECK(out == &a);
	CHECK(n4_pairing_release(p, &a) == &c);
	CHECK(!c.held);
	struct sockaddr_in from_c = v4(0x0a000001, 5000);
	CHECK_EQ(n4_pairing_exchange(p, &m, &from_a, &out), -EALREADY); /* a's copy */
	CHECK_EQ(n4_pairing_exchange(p, &m, &from_c, &out), 0);
	CHECK(out == &c && c.udp.sin_port == htons(5000));
	n4_pairing_free(p);
}

TEST(pairing_legacy_pair_on_one_ip_gets_ready_one_after_the_other)
{
	n4_pairing *p = n4_pairing_new(16);
	struct n4_pclient a, b, *out = NULL;
	struct n4_msg m;

	client(&a, "n4n4n4", 0x0a000001, 0);
	client(&b, "n4n4n4", 0x0a000001, 0);
	CHECK(n4_pairing_hello(p, &a) == NULL);
	CHECK(n4_pairing_hello(p, &b) == &a);
	CHECK(!a.held && b.held);
	/* a leaves before its EXCHANGE: b is released (the server then closes
	 * it as partner-gone, but it must not stay held forever). */
	CHECK(n4_pairing_remove(p, &a) == &b);
	CHECK(!b.held);
	n4_msg_init(&m, N4_CMD_EXCHANGE, 0, b.ident);
	struct sockaddr_in src = v4(0x0a000001, 4000);
	CHECK_EQ(n4_pairing_exchange(p, &m, &src, &out), 0);
	CHECK(out == &b);
	n4_pairing_free(p);
}

static void keyed(struct n4_pclient *c, uint32_t ip_host, uint8_t id_byte)
{
	client(c, "abcdef", ip_host, N4_EXT_TOKEN | N4_EXT_KEY);
	memset(c->long_id, id_byte, sizeof(c->long_id)); /* arrives later */
}

TEST(pairing_keyed_clients_pair_on_the_short_id_and_stand_on_the_long_id)
{
	n4_pairing *p = n4_pairing_new(16);
	struct n4_pclient k1, k2, plain, *w = NULL;

	keyed(&k1, 0x0a000001, 0x11);
	keyed(&k2, 0x0a000002, 0x11);
	client(&plain, "abcdef", 0x0a000003, N4_EXT_TOKEN);
	CHECK(n4_pairing_hello(p, &k1) == NULL);
	CHECK_EQ(n4_pairing_long_id(p, &k1, &w), N4_LONG_WAIT);
	/* Same short id, no key: never paired with the keyed one. */
	CHECK(n4_pairing_hello(p, &plain) == NULL);
	/* k2 is paired before its long id is in, but the pair does not stand. */
	CHECK(n4_pairing_hello(p, &k2) == &k1);
	CHECK(k2.state == N4_P_PAIRED && !n4_pairing_confirmed(&k2) && !n4_pairing_confirmed(&k1));
	CHECK_EQ(n4_pairing_long_id(p, &k2, &w), N4_LONG_CONFIRMED);
	CHECK(w == &k1 && n4_pairing_confirmed(&k1) && n4_pairing_confirmed(&k2));
	CHECK_EQ(n4_pairing_waiting(p), 1); /* plain */
	n4_pairing_free(p);
}

TEST(pairing_keyed_mismatch_contests_the_short_id)
{
	n4_pairing *p = n4_pairing_new(16);
	struct n4_pclient k1, imp, k1b, k2, imp2, *w = NULL;

	keyed(&k1, 0x0a000001, 0x11);
	keyed(&imp, 0x0a000009, 0x22); /* knows the short id, not the key */
	CHECK(n4_pairing_hello(p, &imp) == NULL);
	CHECK_EQ(n4_pairing_long_id(p, &imp, &w), N4_LONG_WAIT);
	CHECK(n4_pairing_hello(p, &k1) == &imp);
	CHECK_EQ(n4_pairing_long_id(p, &k1, &w), N4_LONG_MISMATCH);
	CHECK(w == &imp && !n4_pairing_confirmed(&k1));
	n4_pairing_remove(p, &imp);
	n4_pairing_remove(p, &k1);
	/* Contested: keyed clients now pair on the long id alone, whoever
	 * waits on the short id. */
	keyed(&imp2, 0x0a000009, 0x22);
	keyed(&k1b, 0x0a000001, 0x11);
	keyed(&k2, 0x0a000002, 0x11);
	CHECK(n4_pairing_hello(p, &imp2) == NULL);
	CHECK_EQ(n4_pairing_long_id(p, &imp2, &w), N4_LONG_WAIT);
	CHECK(n4_pairing_hello(p, &k1b) == NULL);
	CHECK_EQ(n4_pairing_long_id(p, &k1b, &w), N4_LONG_WAIT);
	CHECK(n4_pairing_hello(p, &k2) == NULL);
	CHECK_EQ(n4_pairing_long_id(p, &k2, &w), N4_LONG_PAIRED);
	CHECK(w == &k1b && n4_pairing_confirmed(&k2) && k1b.state == N4_P_PAIRED);
	CHECK(imp2.state == N4_P_WAITING && imp2.partner == NULL);
	CHECK_EQ(n4_pairing_waiting(p), 1);
	n4_pairing_free(p);
}

TEST(pairing_keyed_pairs_before_the_long_ids_unless_contested)
{
	n4_pairing *p = n4_pairing_new(16);
	struct n4_pclient k3, k4, *w = NULL;

	/* A waiter whose long id is on its way (both started together) is
	 * taken; the pair stands once both are in. */
	keyed(&k3, 0x0a000003, 0x33);
	keyed(&k4, 0x0a000004, 0x33);
	CHECK(n4_pairing_hello(p, &k3) == NULL);
	CHECK(n4_pairing_hello(p, &k4) == &k3);
	CHECK_EQ(n4_pairing_long_id(p, &k4, &w), N4_LONG_PENDING);
	CHECK(!n4_pairing_confirmed(&k4));
	CHECK_EQ(n4_pairing_long_id(p, &k3, &w), N4_LONG_CONFIRMED);
	CHECK(w == &k4 && n4_pairing_confirmed(&k4));
	/* A contested short id: no pairing before the long id. */
	struct n4_pclient k5, k6;
	keyed(&k5, 0x0a000005, 0x55);
	keyed(&k6, 0x0a000006, 0x55);
	n4_pairing_contest(p, k5.ident);
	CHECK(n4_pairing_hello(p, &k5) == NULL);
	CHECK(n4_pairing_hello(p, &k6) == NULL);
	CHECK_EQ(n4_pairing_long_id(p, &k6, &w), N4_LONG_WAIT);
	CHECK_EQ(n4_pairing_long_id(p, &k5, &w), N4_LONG_PAIRED);
	CHECK(w == &k6);
	n4_pairing_free(p);
}

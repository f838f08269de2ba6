/* test_side.c - the SIDE datagram (round trips, bad MAC, wrong identifier, wrong
 * lengths), the derivation of a flow's configuration (symmetric, one per port
 * pair), the exchange on loopback sockets (keyed and not, a silent peer, lost
 * datagrams through a forwarder, the peer's data left for the program) and the
 * whole path: two clients pair at our server on derived identifiers and keys,
 * then exchange their sides. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "blake2s.h"
#include "key.h"
#include "loop.h"
#include "n4.h"
#include "side.h"
#include "test.h"
#include "wire.h"

static struct n4_side side_of(uint8_t id_byte, uint16_t port, unsigned naddrs)
{
	struct n4_side s;

	memset(&s, 0, sizeof(s));
	memset(s.id, id_byte, sizeof(s.id));
	s.port = port;
	s.naddrs = naddrs;
	for (unsigned i = 0; i < naddrs; i++)
		s.addrs[i].s_addr = htonl(0xc0a80100u + id_byte + i); /* 192.168.1.x */
	return s;
}

static bool same_side(const struct n4_side *a, const struct n4_side *b)
{
	if (memcmp(a->id, b->id, sizeof(a->id)) || a->port != b->port || a->naddrs != b->naddrs)
		return false;
	for (unsigned i = 0; i < a->naddrs; i++)
		if (a->addrs[i].s_addr != b->addrs[i].s_addr)
			return false;
	return true;
}

/* The two ends of one keyed round: one MAC key, each the other's nonce. */
static void auth_pair(struct n4_auth *a, struct n4_auth *b, const char *short_id)
{
	memset(a, 0, sizeof(*a));
	memset(a->mac_key, 0x5a, sizeof(a->mac_key));
	n4_ident_encode(short_id, a->ident);
	memset(a->nonce, 0x11, sizeof(a->nonce));
	memset(a->peer_nonce, 0x22, sizeof(a->peer_nonce));
	*b = *a;
	memcpy(b->nonce, a->peer_nonce, sizeof(b->nonce));
	memcpy(b->peer_nonce, a->nonce, sizeof(b->peer_nonce));
}

TEST(side_round_trip_every_address_count_keyed_and_not)
{
	uint8_t id[N4_PAYLOAD_SIZE], out[N4_SIDE_MAX_SIZE];
	struct n4_side_keys ka, kb;
	struct n4_auth a, b;
	struct n4_side_msg m;
	bool bad;

	n4_ident_encode("n4n4n4", id);
	auth_pair(&a, &b, "n4n4n4");
	n4_side_keys_derive(&a, &ka);
	n4_side_keys_derive(&b, &kb);
	CHECK(memcmp(ka.tx, kb.rx, N4_KEY_SIZE) == 0 && memcmp(ka.rx, kb.tx, N4_KEY_SIZE) == 0);
	CHECK(memcmp(ka.tx, ka.rx, N4_KEY_SIZE) != 0);
	for (unsigned n = 0; n <= N4_SIDE_MAX_ADDRS; n++) {
		struct n4_side s = side_of(0x31, 5060, n);
		int len = n4_side_encode(N4_SIDE_HAVE, id, &s, NULL, out);
		CHECK_EQ(len, N4_SIDE_HEAD_SIZE + 4 * n);
		/* What the shim's filter matches: the command and the identifier at
		 * PUNCH's place. */
		CHECK(out[0] == N4_CMD_SIDE && memcmp(out + 2, id, N4_PAYLOAD_SIZE) == 0);
		CHECK(out[16] == 5060 >> 8 && out[17] == (5060 & 0xff) && out[18] == n);
		CHECK(n4_side_check(out, (size_t)len, id, NULL, &m, &bad));
		CHECK(m.flags == N4_SIDE_HAVE && !m.has_mac && same_side(&m.side, &s));
		CHECK(n4_is_side(out, (size_t)len, "n4n4n4"));
		len = n4_side_encode(0, id, &s, ka.tx, out);
		CHECK_EQ(len, N4_SIDE_HEAD_SIZE + 4 * n + N4_MAC_SIZE);
		CHECK(n4_side_check(out, (size_t)len, id, kb.rx, &m, &bad));
		CHECK(m.flags == 0 && m.has_mac && same_side(&m.side, &s));
		/* Reflected to its sender, it fails: each direction has its key. */
		CHECK(!n4_side_check(out, (size_t)len, id, ka.rx, &m, &bad) && bad);
		/* A keyed receiver takes no unkeyed SIDE, and the reverse. */
		CHECK(!n4_side_check(out, (size_t)len, id, NULL, &m, &bad) && bad);
	}
}

TEST(side_bad_mac_wrong_ident_and_malformed_are_refused)
{
	uint8_t id[N4_PAYLOAD_SIZE], other[N4_PAYLOAD_SIZE], out[N4_SIDE_MAX_SIZE], copy[64];
	struct n4_side s = side_of(0x31, 5060, 2);
	struct n4_side_keys ka, kb;
	struct n4_auth a, b;
	struct n4_side_msg m;
	bool bad;

	n4_ident_encode("abc", id);
	n4_ident_encode("abd", other);
	auth_pair(&a, &b, "abc");
	n4_side_keys_derive(&a, &ka);
	n4_side_keys_derive(&b, &kb);
	int len = n4_side_encode(0, id, &s, ka.tx, out);
	CHECK(len > 0);
	/* Every flipped bit fails: the MAC covers all (the length included). */
	for (int i = 0; i < len * 8; i++) {
		memcpy(copy, out, (size_t)len);
		copy[i / 8] ^= (uint8_t)(1u << (i % 8));
		CHECK(!n4_side_check(copy, (size_t)len, id, kb.rx, &m, &bad));
	}
	/* Another round's nonce: another key. */
	struct n4_auth b2 = b;
	b2.peer_nonce[0] ^= 1;
	struct n4_side_keys kb2;
	n4_side_keys_derive(&b2, &kb2);
	CHECK(!n4_side_check(out, (size_t)len, id, kb2.rx, &m, &bad) && bad);
	/* Another path's identifier: not ours at all (not "bad"). */
	CHECK(!n4_side_check(out, (size_t)len, other, kb.rx, &m, &bad) && !bad);
	CHECK(!n4_is_side(out, (size_t)len, "abd") && n4_is_side(out, (size_t)len, "abc"));
	/* Truncated, one byte long, naddrs over 4 or against the length. */
	len = n4_side_encode(0, id, &s, NULL, out);
	for (int cut = 0; cut < len; cut++)
		CHECK(n4_side_decode(out, (size_t)cut, &m) < 0);
	memcpy(copy, out, (size_t)len);
	copy[len] = 0;
	CHECK_EQ(n4_side_decode(copy, (size_t)len + 1, &m), -EMSGSIZE);
	copy[18] = 5;
	CHECK_EQ(n4_side_decode(copy, (size_t)len, &m), -EPROTO);
	uint8_t big[N4_SIDE_HEAD_SIZE + 4 * 5];
	memcpy(big, out, (size_t)len);
	big[18] = 5;
	for (size_t i = (size_t)len; i < sizeof(big); i++)
		big[i] = 10;
	CHECK(n4_side_decode(big, sizeof(big), &m) < 0 && !n4_is_side(big, sizeof(big), "abc"));
	/* Unknown flags, an all-zero id, port 0, a loopback or multicast address. */
	memcpy(copy, out, (size_t)len);
	copy[1] = 0x02;
	CHECK_EQ(n4_side_decode(copy, (size_t)len, &m), -EPROTO);
	memcpy(copy, out, (size_t)len);
	memset(copy + 8, 0, N4_SIDE_ID_SIZE);
	CHECK_EQ(n4_side_decode(copy, (size_t)len, &m), -EPROTO);
	memcpy(copy, out, (size_t)len);
	copy[16] = copy[17] = 0;
	CHECK_EQ(n4_side_decode(copy, (size_t)len, &m), -EPROTO);
	memcpy(copy, out, (size_t)len);
	copy[19] = 127;
	CHECK_EQ(n4_side_decode(copy, (size_t)len, &m), -EPROTO);
	copy[19] = 239;
	CHECK_EQ(n4_side_decode(copy, (size_t)len, &m), -EPROTO);
	/* PUNCH and APUNCH are not SIDEs. */
	uint8_t punch[N4_MSG_SIZE];
	n4_punch_bytes(id, 0, punch);
	CHECK(!n4_is_side(punch, sizeof(punch), "abc"));
	/* What we cannot send. */
	struct n4_side z = side_of(0, 5060, 0);
	CHECK_EQ(n4_side_encode(0, id, &z, NULL, out), -EINVAL);
	z = side_of(1, 0, 0);
	CHECK_EQ(n4_side_encode(0, id, &z, NULL, out), -EINVAL);
	z = side_of(1, 5060, 0);
	z.naddrs = 5;
	CHECK_EQ(n4_side_encode(0, id, &z, NULL, out), -EINVAL);
}

TEST(side_local_addrs_are_usable_and_at_most_four)
{
	struct n4_side s = side_of(1, 1, 0);

	s.naddrs = 99;
	CHECK_EQ(n4_side_local_addrs(&s), 0);
	CHECK(s.naddrs <= N4_SIDE_MAX_ADDRS);
	for (unsigned i = 0; i < s.naddrs; i++) {
		uint32_t h = ntohl(s.addrs[i].s_addr);
		CHECK(h >> 24 != 127 && h >> 16 != 0xa9fe && h >> 24 != 0);
		for (unsigned k = 0; k < i; k++)
			CHECK(s.addrs[k].s_addr != s.addrs[i].s_addr);
	}
}

static bool alnum6(const char *id)
{
	if (strlen(id) != 6)
		return false;
	for (int i = 0; i < 6; i++) {
		char c = id[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

TEST(flow_cfg_is_symmetric_and_one_per_port_pair)
{
	struct n4_side a = side_of(0x10, 5060, 1), b = side_of(0x20, 5062, 2);
	struct n4_client_cfg ca, cb, c2;
	uint8_t wire[N4_PAYLOAD_SIZE];
	char back[N4_PAYLOAD_SIZE + 1];

	n4_client_cfg_init(&ca);
	cb = ca;
	CHECK_EQ(n4_flow_cfg(&ca, &a, &b, 4000, 4002), 0);
	CHECK_EQ(n4_flow_cfg(&cb, &b, &a, 4002, 4000), 0);
	CHECK(strcmp(ca.ident, cb.ident) == 0 && alnum6(ca.ident));
	CHECK(strcmp(ca.ident, N4_DEFAULT_IDENT) != 0 && !ca.have_key);
	/* What the server's HELLO validation reads back. */
	CHECK_EQ(n4_ident_encode(ca.ident, wire), 0);
	CHECK_EQ(n4_ident_decode(wire, back), 0);
	CHECK(strcmp(back, ca.ident) == 0);
	/* Each port pair its own; which side holds which port matters. */
	n4_client_cfg_init(&c2);
	CHECK_EQ(n4_flow_cfg(&c2, &a, &b, 4001, 4002), 0);
	CHECK(strcmp(c2.ident, ca.ident) != 0);
	n4_client_cfg_init(&c2);
	CHECK_EQ(n4_flow_cfg(&c2, &a, &b, 4002, 4000), 0);
	CHECK(strcmp(c2.ident, ca.ident) != 0);
	/* Another first identifier, another flow identifier. */
	n4_client_cfg_init(&c2);
	snprintf(c2.ident, sizeof(c2.ident), "%s", "call1");
	CHECK_EQ(n4_flow_cfg(&c2, &a, &b, 4000, 4002), 0);
	CHECK(strcmp(c2.ident, ca.ident) != 0);
	/* Only the ids and ports count: the addresses and program ports may differ. */
	struct n4_side b2 = b;
	b2.naddrs = 0;
	b2.port = 9;
	n4_client_cfg_init(&c2);
	CHECK_EQ(n4_flow_cfg(&c2, &a, &b2, 4000, 4002), 0);
	CHECK(strcmp(c2.ident, ca.ident) == 0);
	/* Equal ids (our own side reflected), port 0, a bad identifier. */
	n4_client_cfg_init(&c2);
	CHECK_EQ(n4_flow_cfg(&c2, &a, &a, 4000, 4002), -EINVAL);
	CHECK_EQ(n4_flow_cfg(&c2, &a, &b, 0, 4002), -EINVAL);
	CHECK_EQ(n4_flow_cfg(&c2, &a, &b, 4000, 0), -EINVAL);
	CHECK(strcmp(c2.ident, N4_DEFAULT_IDENT) == 0);
	c2.ident[0] = ' ';
	CHECK_EQ(n4_flow_cfg(&c2, &a, &b, 4000, 4002), -EINVAL);
}

TEST(flow_cfg_keyed_derives_the_key_and_keeps_the_ident)
{
	struct n4_side a = side_of(0x10, 5060, 1), b = side_of(0x20, 5062, 2);
	struct n4_client_cfg ca, cb, c2;
	struct n4_keyed ka, kb, k0;

	n4_client_cfg_init(&ca);
	ca.have_key = true;
	memset(ca.key, 7, sizeof(ca.key));
	cb = c2 = ca;
	CHECK_EQ(n4_flow_cfg(&ca, &a, &b, 4000, 4002), 0);
	CHECK_EQ(n4_flow_cfg(&cb, &b, &a, 4002, 4000), 0);
	CHECK(memcmp(ca.key, cb.key, sizeof(ca.key)) == 0);
	CHECK(memcmp(ca.key, c2.key, sizeof(ca.key)) != 0);
	CHECK(strcmp(ca.ident, N4_DEFAULT_IDENT) == 0 && ca.have_key);
	/* The server pairs on what the new key derives: both sides the same,
	 * other than the first path's. */
	CHECK_EQ(n4_key_derive(ca.key, ca.ident, &ka), 0);
	CHECK_EQ(n4_key_derive(cb.key, cb.ident, &kb), 0);
	CHECK_EQ(n4_key_derive(c2.key, c2.ident, &k0), 0);
	CHECK(strcmp(ka.short_id, kb.short_id) == 0 && strcmp(ka.short_id, k0.short_id) != 0);
	CHECK(memcmp(ka.long_id, kb.long_id, N4_LONGID_SIZE) == 0);
	CHECK(memcmp(ka.long_id, k0.long_id, N4_LONGID_SIZE) != 0);
	/* Another port pair, another key; the keyless derivation does not give it. */
	CHECK_EQ(n4_flow_cfg(&c2, &a, &b, 4004, 4002), 0);
	CHECK(memcmp(ca.key, c2.key, sizeof(ca.key)) != 0);
}

/* ---- the exchange on loopback sockets ---- */

static int udp_bound(const char *ip, struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	socklen_t len = sizeof(*addr);

	if (fd < 0)
		return -1;
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &addr->sin_addr);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) ||
	    getsockname(fd, (struct sockaddr *)addr, &len)) {
		close(fd);
		return -1;
	}
	return fd;
}

struct end {
	int fd;
	struct sockaddr_in peer_addr;
	uint8_t ident[N4_PAYLOAD_SIZE];
	const struct n4_auth *auth;
	struct n4_side mine, got;
	unsigned timeout_ms, start_after_ms;
	bool lose_early; /* what arrived before the start is lost */
	int rc;
	unsigned took_ms;
};

static void *run_end(void *arg)
{
	struct end *e = arg;
	struct n4_waitctx ctx = { .cancel = NULL };

	if (e->start_after_ms)
		usleep(e->start_after_ms * 1000);
	uint8_t buf[128];
	while (e->lose_early && recv(e->fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
	uint64_t t0 = n4_now_ms();
	e->rc = n4_side_exchange(e->fd, (const struct sockaddr *)&e->peer_addr,
				 sizeof(e->peer_addr), e->ident, e->auth, &e->mine, &e->got,
				 e->timeout_ms, &ctx);
	e->took_ms = (unsigned)(n4_now_ms() - t0);
	return NULL;
}

/* A relay in miniature that loses the first drop_ab datagrams from a to b and
 * the first drop_ba from b to a. */
struct lossy {
	int fd;
	struct sockaddr_in a, b;
	unsigned drop_ab, drop_ba, forwarded;
	volatile sig_atomic_t stop;
};

static void *run_lossy(void *arg)
{
	struct lossy *l = arg;

	while (!l->stop) {
		struct pollfd p = { .fd = l->fd, .events = POLLIN };
		if (poll(&p, 1, 20) <= 0)
			continue;
		uint8_t buf[256];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t r = recvfrom(l->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (r < 0)
			continue;
		bool from_a = from.sin_port == l->a.sin_port;
		unsigned *drop = from_a ? &l->drop_ab : &l->drop_ba;
		if (*drop) {
			(*drop)--;
			continue;
		}
		const struct sockaddr_in *to = from_a ? &l->b : &l->a;
		if (sendto(l->fd, buf, (size_t)r, 0, (const struct sockaddr *)to, sizeof(*to)) == r)
			l->forwarded++;
	}
	return NULL;
}

/* Two ends on loopback, directly or through a lossy forwarder. */
static int pair_run(struct end *a, struct end *b, const struct n4_auth *aa,
		    const struct n4_auth *ab, struct lossy *l)
{
	struct sockaddr_in addr_a, addr_b;
	pthread_t ta, tb, tl;
	int rc = -1;

	a->fd = udp_bound("127.0.0.1", &addr_a);
	b->fd = udp_bound("127.0.0.1", &addr_b);
	if (a->fd < 0 || b->fd < 0)
		goto out;
	n4_ident_encode("sip", a->ident);
	memcpy(b->ident, a->ident, N4_PAYLOAD_SIZE);
	a->auth = aa;
	b->auth = ab;
	a->peer_addr = addr_b;
	b->peer_addr = addr_a;
	if (l) {
		struct sockaddr_in addr_l;
		l->fd = udp_bound("127.0.0.1", &addr_l);
		if (l->fd < 0)
			goto out;
		l->a = addr_a;
		l->b = addr_b;
		a->peer_addr = b->peer_addr = addr_l;
		if (pthread_create(&tl, NULL, run_lossy, l))
			goto out_lossy;
	}
	if (pthread_create(&ta, NULL, run_end, a) == 0) {
		if (pthread_create(&tb, NULL, run_end, b) == 0) {
			pthread_join(tb, NULL);
			rc = 0;
		}
		pthread_join(ta, NULL);
	}
	if (l) {
		l->stop = 1;
		pthread_join(tl, NULL);
	}
out_lossy:
	if (l)
		close(l->fd);
out:
	if (a->fd >= 0)
		close(a->fd);
	if (b->fd >= 0)
		close(b->fd);
	return rc;
}

static void ends_init(struct end *a, struct end *b, unsigned timeout_ms)
{
	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	a->mine = side_of(0x41, 5060, 2);
	b->mine = side_of(0x42, 5062, 1);
	a->timeout_ms = b->timeout_ms = timeout_ms;
}

TEST(side_exchange_unkeyed_and_keyed_both_learn_and_stop_early)
{
	struct end a, b;
	struct n4_auth aa, ab;

	ends_init(&a, &b, 3000);
	CHECK_EQ(pair_run(&a, &b, NULL, NULL, NULL), 0);
	CHECK_EQ(a.rc, 1);
	CHECK_EQ(b.rc, 1);
	CHECK(same_side(&a.got, &b.mine) && same_side(&b.got, &a.mine));
	CHECK(a.took_ms < 1000 && b.took_ms < 1000);

	ends_init(&a, &b, 3000);
	auth_pair(&aa, &ab, "sip");
	CHECK_EQ(pair_run(&a, &b, &aa, &ab, NULL), 0);
	CHECK_EQ(a.rc, 1);
	CHECK_EQ(b.rc, 1);
	CHECK(same_side(&a.got, &b.mine) && same_side(&b.got, &a.mine));
	CHECK(a.took_ms < 1000 && b.took_ms < 1000);
}

TEST(side_exchange_keyed_with_another_key_learns_nothing)
{
	struct end a, b;
	struct n4_auth aa, ab;

	ends_init(&a, &b, 300);
	auth_pair(&aa, &ab, "sip");
	memset(ab.mac_key, 0x5b, sizeof(ab.mac_key));
	CHECK_EQ(pair_run(&a, &b, &aa, &ab, NULL), 0);
	CHECK_EQ(a.rc, 0);
	CHECK_EQ(b.rc, 0);
}

TEST(side_exchange_survives_lost_datagrams_through_a_forwarder)
{
	struct end a, b;
	struct n4_auth aa, ab;
	struct lossy l;

	ends_init(&a, &b, 3000);
	memset(&l, 0, sizeof(l));
	l.drop_ab = 3;
	l.drop_ba = 4;
	auth_pair(&aa, &ab, "sip");
	CHECK_EQ(pair_run(&a, &b, &aa, &ab, &l), 0);
	CHECK_EQ(a.rc, 1);
	CHECK_EQ(b.rc, 1);
	CHECK(same_side(&a.got, &b.mine) && same_side(&b.got, &a.mine));
	/* Lost copies are made up by the next ones, 50 ms apart. */
	CHECK(a.took_ms >= 100 && a.took_ms < 1500);

	/* The peer starts late and what reached it before is lost: a's next
	 * copies do. */
	ends_init(&a, &b, 3000);
	b.start_after_ms = 300;
	b.lose_early = true;
	CHECK_EQ(pair_run(&a, &b, NULL, NULL, NULL), 0);
	CHECK_EQ(a.rc, 1);
	CHECK_EQ(b.rc, 1);
	CHECK(a.took_ms >= 250);
}

TEST(side_exchange_with_a_silent_peer_gives_up_at_the_timeout)
{
	struct sockaddr_in addr_a, addr_b;
	int fa = udp_bound("127.0.0.1", &addr_a), fb = udp_bound("127.0.0.1", &addr_b);
	struct n4_side mine = side_of(0x41, 5060, 1), got;
	struct n4_waitctx ctx = { .cancel = NULL };
	uint8_t id[N4_PAYLOAD_SIZE];

	CHECK(fa >= 0 && fb >= 0);
	n4_ident_encode("sip", id);
	uint64_t t0 = n4_now_ms();
	CHECK_EQ(n4_side_exchange(fa, (const struct sockaddr *)&addr_b, sizeof(addr_b), id, NULL,
				  &mine, &got, 250, &ctx),
		 0);
	uint64_t took = n4_now_ms() - t0;
	CHECK(took >= 240 && took < 1000);
	/* It sent a copy every 50 ms, each a SIDE of this path. */
	unsigned copies = 0;
	uint8_t buf[128];
	ssize_t r;
	while ((r = recv(fb, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		copies += n4_is_side(buf, (size_t)r, "sip");
	CHECK(copies >= 2 && copies <= 7); /* a loaded machine wakes late */
	close(fa);
	close(fb);
}

TEST(side_exchange_leaves_the_peers_data_and_ignores_strangers)
{
	struct sockaddr_in addr_a, addr_b, addr_x;
	int fa = udp_bound("127.0.0.1", &addr_a), fb = udp_bound("127.0.0.1", &addr_b);
	int fx = udp_bound("127.0.0.2", &addr_x);
	struct n4_side mine = side_of(0x41, 5060, 1), peer = side_of(0x42, 5062, 2), got;
	struct n4_side liar = side_of(0x43, 5064, 1);
	struct n4_waitctx ctx = { .cancel = NULL };
	struct n4_auth aa, ab;
	struct n4_side_keys kb;
	uint8_t id[N4_PAYLOAD_SIZE], out[N4_SIDE_MAX_SIZE], buf[64];

	CHECK(fa >= 0 && fb >= 0 && fx >= 0);
	auth_pair(&aa, &ab, "sip");
	n4_side_keys_derive(&ab, &kb);
	memcpy(id, aa.ident, sizeof(id));
	/* Queued before a starts: a stranger's SIDE (right MAC, wrong IP), one
	 * with a wrong MAC from the peer, a late APUNCH, the peer's SIDE, then
	 * its program's first datagram. */
	int len = n4_side_encode(0, id, &liar, kb.tx, out);
	CHECK(sendto(fx, out, (size_t)len, 0, (struct sockaddr *)&addr_a, sizeof(addr_a)) == len);
	len = n4_side_encode(0, id, &liar, kb.rx, out);
	CHECK(sendto(fb, out, (size_t)len, 0, (struct sockaddr *)&addr_a, sizeof(addr_a)) == len);
	uint8_t ap[N4_APUNCH_SIZE];
	n4_auth_encode(&ab, N4_PUNCH_ACK, ap);
	CHECK(sendto(fb, ap, sizeof(ap), 0, (struct sockaddr *)&addr_a, sizeof(addr_a)) ==
	      (ssize_t)sizeof(ap));
	len = n4_side_encode(0, id, &peer, kb.tx, out);
	CHECK(sendto(fb, out, (size_t)len, 0, (struct sockaddr *)&addr_a, sizeof(addr_a)) == len);
	CHECK(sendto(fb, "DATA", 4, 0, (struct sockaddr *)&addr_a, sizeof(addr_a)) == 4);
	uint64_t t0 = n4_now_ms();
	CHECK_EQ(n4_side_exchange(fa, (const struct sockaddr *)&addr_b, sizeof(addr_b), id, &aa,
				  &mine, &got, 2000, &ctx),
		 1);
	CHECK(n4_now_ms() - t0 < 500);
	CHECK(same_side(&got, &peer));
	/* The program's datagram is still there, and nothing before it. */
	CHECK_EQ(recv(fa, buf, sizeof(buf), MSG_DONTWAIT), 4);
	CHECK(memcmp(buf, "DATA", 4) == 0);
	close(fa);
	close(fb);
	close(fx);
}

/* ---- the whole path: our server pairs the derived flows ---- */

struct srv {
	n4_server *s;
	volatile sig_atomic_t stop;
};

static void *run_srv(void *arg)
{
	struct srv *v = arg;

	n4_server_run(v->s, &v->stop);
	return NULL;
}

struct cli {
	struct n4_client_cfg cfg;
	struct n4_side mine, got;
	int run_rc, side_rc;
};

static void *run_cli(void *arg)
{
	struct cli *k = arg;
	struct n4_result res;
	n4_client *c = n4_client_new(&k->cfg);

	k->run_rc = k->side_rc = -100;
	if (!c)
		return NULL;
	k->run_rc = n4_client_run(c, &res);
	if (k->run_rc == 0) {
		n4_client_confirm(c);
		k->side_rc = n4_client_side(c, &k->mine, &k->got, 3000);
	}
	n4_client_free(c);
	return NULL;
}

/* Two clients on flow (4000 <-> 4002) of the first path between sides a and b. */
static int flow_pair(uint16_t server_port, bool keyed, struct cli *ka, struct cli *kb)
{
	struct n4_side a = side_of(0x51, 5060, 1), b = side_of(0x52, 5062, 0);
	pthread_t ta, tb;

	memset(ka, 0, sizeof(*ka));
	n4_client_cfg_init(&ka->cfg);
	ka->cfg.server_host = "127.0.0.1";
	ka->cfg.server_port = server_port;
	ka->cfg.src_port = 0;
	ka->cfg.pool_size = 4;
	ka->cfg.timeout_ms = 10000;
	ka->cfg.have_key = keyed;
	memset(ka->cfg.key, 9, sizeof(ka->cfg.key));
	*kb = *ka;
	ka->mine = a;
	kb->mine = b;
	if (n4_flow_cfg(&ka->cfg, &a, &b, 4000, 4002) || n4_flow_cfg(&kb->cfg, &b, &a, 4002, 4000))
		return -1;
	if (pthread_create(&ta, NULL, run_cli, ka))
		return -1;
	if (pthread_create(&tb, NULL, run_cli, kb)) {
		pthread_join(ta, NULL);
		return -1;
	}
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	return 0;
}

TEST(flow_pairs_at_our_server_keyed_and_not_then_sides_cross)
{
	struct n4_server_cfg scfg;
	struct srv v = { .stop = 0 };
	struct cli ka, kb;
	pthread_t ts;

	n4_server_cfg_init(&scfg);
	scfg.bind_host = "127.0.0.1";
	scfg.family = AF_INET;
	scfg.port = 0;
	scfg.conn_rate_per_ip = 0;
	scfg.log_rate = 0;
	v.s = n4_server_new(&scfg);
	CHECK(v.s != NULL);
	if (pthread_create(&ts, NULL, run_srv, &v)) {
		n4_server_free(v.s);
		CHECK(!"server thread");
	}
	uint16_t port = n4_server_port(v.s);
	int unkeyed = flow_pair(port, false, &ka, &kb);
	struct cli ua = ka, ub = kb;
	int keyed = flow_pair(port, true, &ka, &kb);
	v.stop = 1;
	pthread_join(ts, NULL);
	n4_server_free(v.s);

	CHECK_EQ(unkeyed, 0);
	CHECK(strcmp(ua.cfg.ident, ub.cfg.ident) == 0);
	CHECK_EQ(ua.run_rc, 0);
	CHECK_EQ(ub.run_rc, 0);
	CHECK_EQ(ua.side_rc, 1);
	CHECK_EQ(ub.side_rc, 1);
	CHECK(same_side(&ua.got, &ub.mine) && same_side(&ub.got, &ua.mine));
	CHECK_EQ(keyed, 0);
	CHECK_EQ(ka.run_rc, 0);
	CHECK_EQ(kb.run_rc, 0);
	CHECK_EQ(ka.side_rc, 1);
	CHECK_EQ(kb.side_rc, 1);
	CHECK(same_side(&ka.got, &kb.mine) && same_side(&kb.got, &ka.mine));
}

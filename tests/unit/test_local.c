/* test_local.c - the same-LAN extension (N4_EXT_LOCAL): LOCAL / PEERLOCAL encoding and
 * every rejection of the decoder, then the server's decision, driven through
 * lib/server_test.h: partners behind one public IP get each other's local address
 * before PEERINFO, partners behind two never do, and a malformed LOCAL closes only
 * its sender; and the sweep accepts a LAN PUNCH only from the announced address. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "n4.h"
#include "punch.h"
#include "server_test.h"
#include "test.h"
#include "wire.h"

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

TEST(local_roundtrip_and_bytes)
{
	struct sockaddr_in a = v4("192.168.1.20", 30000), back;
	struct n4_msg m, parsed;
	uint8_t buf[N4_MSG_SIZE];
	const uint8_t want[N4_MSG_SIZE] = { 0x0d, 0x01, 192, 168, 1, 20, 0x75, 0x30 };

	n4_local_encode(N4_CMD_LOCAL, &a, true, &m);
	n4_wire_encode(&m, buf);
	CHECK(memcmp(buf, want, sizeof(want)) == 0);
	CHECK_EQ(n4_wire_decode(buf, sizeof(buf), N4_CMD_LOCAL, &parsed), 0);
	CHECK_EQ(n4_local_decode(&parsed, &back), 1);
	CHECK_EQ(back.sin_family, AF_INET);
	CHECK_EQ(back.sin_addr.s_addr, a.sin_addr.s_addr);
	CHECK_EQ(back.sin_port, a.sin_port);

	n4_local_encode(N4_CMD_PEERLOCAL, &a, false, &m);
	CHECK_EQ(m.cmd, N4_CMD_PEERLOCAL);
	CHECK_EQ(m.ext, 0);
	CHECK_EQ(n4_local_decode(&m, &back), 1);
}

TEST(local_none_only_as_last)
{
	struct n4_msg m;
	struct sockaddr_in a;

	n4_local_encode(N4_CMD_LOCAL, NULL, true, &m);
	CHECK_EQ(n4_local_decode(&m, &a), 0);
	n4_local_encode(N4_CMD_LOCAL, NULL, false, &m);
	CHECK_EQ(n4_local_decode(&m, &a), -EINVAL);
}

TEST(local_rejects_unusable_addresses)
{
	static const char *const bad[] = { "127.0.0.1",	      "127.1.2.3", "0.1.2.3",
					   "255.255.255.255", "224.0.0.1", "239.1.1.1" };
	struct n4_msg m;
	struct sockaddr_in a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sockaddr_in x = v4(bad[i], 1000);
		n4_local_encode(N4_CMD_LOCAL, &x, true, &m);
		CHECK_EQ(n4_local_decode(&m, &a), -EINVAL);
	}
	struct sockaddr_in port0 = v4("10.0.0.1", 0);
	n4_local_encode(N4_CMD_LOCAL, &port0, true, &m);
	CHECK_EQ(n4_local_decode(&m, &a), -EINVAL);
	struct sockaddr_in ok = v4("10.0.0.1", 1000);
	n4_local_encode(N4_CMD_LOCAL, &ok, true, &m);
	m.ext = 0x81; /* unknown flag */
	CHECK_EQ(n4_local_decode(&m, &a), -EINVAL);
	m.ext = N4_LOCAL_LAST;
	m.cmd = N4_CMD_PEERINFO;
	CHECK_EQ(n4_local_decode(&m, &a), -EPROTO);
}

/* ---- the server's side ---- */

struct cl {
	int fd; /* our end of the socketpair */
	uint8_t token[N4_TOKEN_SIZE];
};

static n4_server *server(void)
{
	struct n4_server_cfg cfg;

	n4_server_cfg_init(&cfg);
	cfg.bind_host = "127.0.0.1";
	cfg.family = AF_INET;
	cfg.port = 0;
	cfg.conn_rate_per_ip = 0;
	cfg.log_rate = 0;
	return n4_server_new(&cfg);
}

static int connect_client(n4_server *s, const char *ip, uint16_t port, struct cl *c)
{
	int sv[2];
	struct sockaddr_in a = v4(ip, port);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		return -errno;
	if (n4_server_test_adopt(s, sv[0], (struct sockaddr *)&a, sizeof(a))) {
		close(sv[1]);
		return -EIO;
	}
	c->fd = sv[1];
	return 0;
}

static int send_msg(int fd, const struct n4_msg *m)
{
	uint8_t buf[N4_MSG_SIZE];

	n4_wire_encode(m, buf);
	return send(fd, buf, sizeof(buf), MSG_NOSIGNAL) == (ssize_t)sizeof(buf) ? 0 : -EIO;
}

/* Every whole message the server has sent to c, in order (at most max). */
static int read_msgs(int fd, struct n4_msg *out, int max)
{
	int n = 0;
	uint8_t buf[N4_MSG_SIZE];

	while (n < max && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) == (ssize_t)sizeof(buf)) {
		if (n4_wire_decode(buf, sizeof(buf), 0, &out[n]))
			return -EPROTO;
		n++;
	}
	return n;
}

static void hello(n4_server *s, struct cl *c, uint8_t ext)
{
	uint8_t ident[N4_PAYLOAD_SIZE];
	struct n4_msg m;

	n4_ident_encode("lan", ident);
	n4_msg_init(&m, N4_CMD_HELLO, ext, ident);
	send_msg(c->fd, &m);
	n4_server_test_poll(s);
}

static int take_ready(struct cl *c)
{
	struct n4_msg m;

	if (read_msgs(c->fd, &m, 1) != 1 || m.cmd != N4_CMD_READY)
		return -EPROTO;
	memcpy(c->token, m.payload, N4_TOKEN_SIZE);
	return m.ext;
}

static void exchange(n4_server *s, const struct cl *c, const char *ip, uint16_t port)
{
	struct sockaddr_in src = v4(ip, port);
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE];

	n4_msg_init(&m, N4_CMD_EXCHANGE, N4_EXT_TOKEN, c->token);
	n4_wire_encode(&m, buf);
	n4_server_test_udp(s, buf, sizeof(buf), (struct sockaddr *)&src, sizeof(src));
}

static void local(const struct cl *c, const char *ip, uint16_t port)
{
	struct sockaddr_in a = v4(ip, port);
	struct n4_msg m;

	n4_local_encode(N4_CMD_LOCAL, &a, true, &m);
	send_msg(c->fd, &m);
}

/* Run a pair whose TCP (and UDP) come from ip_a and ip_b; returns the messages
 * each got after READY in ma/mb and their counts in na/nb. */
static int pair(const char *ip_a, const char *ip_b, struct n4_msg *ma, int *na, struct n4_msg *mb,
		int *nb)
{
	n4_server *s = server();
	struct cl a, b;
	const uint8_t ext = N4_EXT_TOKEN | N4_EXT_LOCAL;

	if (!s)
		return -ENOMEM;
	if (connect_client(s, ip_a, 40000, &a) || connect_client(s, ip_b, 40001, &b)) {
		n4_server_free(s);
		return -EIO;
	}
	hello(s, &a, ext);
	hello(s, &b, ext);
	int ra = take_ready(&a), rb = take_ready(&b);
	if (ra < 0 || rb < 0 || !(ra & N4_EXT_LOCAL) || !(rb & N4_EXT_LOCAL)) {
		n4_server_free(s);
		close(a.fd);
		close(b.fd);
		return -EPROTO;
	}
	local(&a, "192.168.7.2", 30000);
	local(&b, "192.168.7.3", 30001);
	n4_server_test_poll(s);
	exchange(s, &a, ip_a, 20000);
	exchange(s, &b, ip_b, 20001);
	n4_server_test_expire(s); /* PEERINFO timers, if any */
	n4_server_test_poll(s);
	*na = read_msgs(a.fd, ma, 8);
	*nb = read_msgs(b.fd, mb, 8);
	if (n4_server_test_check(s))
		*na = -EFAULT;
	n4_server_free(s);
	close(a.fd);
	close(b.fd);
	return 0;
}

TEST(server_hands_local_addresses_behind_one_public_ip)
{
	struct n4_msg ma[8], mb[8];
	struct sockaddr_in got;
	int na, nb;

	CHECK_EQ(pair("198.51.100.2", "198.51.100.2", ma, &na, mb, &nb), 0);
	CHECK_EQ(na, 2);
	CHECK_EQ(nb, 2);
	CHECK_EQ(ma[0].cmd, N4_CMD_PEERLOCAL);
	CHECK_EQ(n4_local_decode(&ma[0], &got), 1);
	CHECK(got.sin_addr.s_addr == v4("192.168.7.3", 0).sin_addr.s_addr);
	CHECK_EQ(ntohs(got.sin_port), 30001);
	CHECK_EQ(ma[1].cmd, N4_CMD_PEERINFO);
	CHECK_EQ(mb[0].cmd, N4_CMD_PEERLOCAL);
	CHECK_EQ(n4_local_decode(&mb[0], &got), 1);
	CHECK(got.sin_addr.s_addr == v4("192.168.7.2", 0).sin_addr.s_addr);
	CHECK_EQ(mb[1].cmd, N4_CMD_PEERINFO);
}

TEST(server_never_hands_local_addresses_across_public_ips)
{
	struct n4_msg ma[8], mb[8];
	int na, nb;

	CHECK_EQ(pair("198.51.100.2", "203.0.113.2", ma, &na, mb, &nb), 0);
	CHECK_EQ(na, 1);
	CHECK_EQ(nb, 1);
	CHECK_EQ(ma[0].cmd, N4_CMD_PEERINFO);
	CHECK_EQ(mb[0].cmd, N4_CMD_PEERINFO);
}

TEST(server_closes_a_malformed_local_only)
{
	n4_server *s = server();
	struct cl a, b;
	struct n4_msg m;
	const uint8_t ext = N4_EXT_TOKEN | N4_EXT_LOCAL;

	CHECK(s != NULL);
	CHECK_EQ(connect_client(s, "198.51.100.2", 40000, &a), 0);
	CHECK_EQ(connect_client(s, "198.51.100.2", 40001, &b), 0);
	hello(s, &a, ext);
	hello(s, &b, ext);
	CHECK(take_ready(&a) >= 0);
	CHECK(take_ready(&b) >= 0);
	struct sockaddr_in lo = v4("127.0.0.1", 30000);
	n4_local_encode(N4_CMD_LOCAL, &lo, true, &m); /* loopback: no use to a partner */
	CHECK_EQ(send_msg(a.fd, &m), 0);
	n4_server_test_poll(s);
	n4_server_test_poll(s);
	/* a is closed, and b with it (its PEERINFO can never come) */
	CHECK_EQ(n4_server_test_clients(s), 0);
	CHECK_EQ(n4_server_test_check(s), 0);
	n4_server_free(s);
	close(a.fd);
	close(b.fd);
}

TEST(server_grants_local_only_with_token)
{
	n4_server *s = server();
	struct cl a, b;

	CHECK(s != NULL);
	CHECK_EQ(connect_client(s, "198.51.100.2", 40000, &a), 0);
	CHECK_EQ(connect_client(s, "198.51.100.2", 40001, &b), 0);
	hello(s, &a, N4_EXT_LOCAL);		   /* no token: nothing granted */
	hello(s, &b, N4_EXT_TOKEN | N4_EXT_LOCAL); /* both */
	CHECK_EQ(take_ready(&a), 0);
	CHECK_EQ(take_ready(&b), N4_EXT_TOKEN | N4_EXT_LOCAL);
	n4_server_free(s);
	close(a.fd);
	close(b.fd);
}

/* ---- the sweep's side: the one accept function takes LAN PUNCHes ---- */

static int udp_bound(struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	socklen_t len = sizeof(*a);

	*a = v4("127.0.0.1", 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof(*a)) ||
	    getsockname(fd, (struct sockaddr *)a, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int sweep_for(struct n4_sweep *sw, unsigned ms)
{
	struct n4_waitctx ctx = { 0 };

	return n4_sweep_run(sw, n4_now_ms() + ms, &ctx);
}

TEST(sweep_lan_path_alone_accepts_only_the_announced_address)
{
	struct n4_pool pool;
	struct sockaddr_in b_addr, c_addr, a_addr;
	uint8_t punch[N4_MSG_SIZE], ident[N4_PAYLOAD_SIZE], buf[64];

	CHECK_EQ(n4_pool_open(&pool, 0, 1), 0);
	a_addr = v4("127.0.0.1", n4_pool_local_port(&pool, 0));
	int b = udp_bound(&b_addr), c = udp_bound(&c_addr);
	CHECK(b >= 0 && c >= 0);
	n4_ident_encode("lan", ident);
	n4_punch_bytes(ident, 0, punch);

	struct n4_sweep sw = { .pool = &pool, .peer_ip = v4("192.0.2.1", 0).sin_addr };
	memcpy(sw.ident, ident, sizeof(ident));
	sw.plan.kind = N4_PLAN_IMPOSSIBLE; /* no public plan: the LAN path alone */
	sw.lan[0] = b_addr;
	sw.nlan = 1;
	/* a PUNCH from the right IP but another port is not the partner's */
	CHECK(sendto(c, punch, sizeof(punch), 0, (struct sockaddr *)&a_addr, sizeof(a_addr)) ==
	      (ssize_t)sizeof(punch));
	CHECK_EQ(sweep_for(&sw, 100), 0);
	/* the partner got our LAN PUNCHes, the stranger nothing */
	CHECK(recv(b, buf, sizeof(buf), MSG_DONTWAIT) == (ssize_t)sizeof(punch));
	CHECK(memcmp(buf, punch, sizeof(punch)) == 0);
	CHECK(recv(c, buf, sizeof(buf), MSG_DONTWAIT) < 0);
	/* the partner's own PUNCH wins, flagged as the LAN path */
	CHECK(sendto(b, punch, sizeof(punch), 0, (struct sockaddr *)&a_addr, sizeof(a_addr)) ==
	      (ssize_t)sizeof(punch));
	CHECK_EQ(sweep_for(&sw, 1000), 1);
	CHECK(sw.via_lan);
	CHECK_EQ(sw.winner, 0);
	CHECK_EQ(sw.from.sin_port, b_addr.sin_port);
	n4_pool_close(&pool, -1);
	close(b);
	close(c);
}

/* test_relay.c - the relay (lib/relay.c) over real loopback sockets: registration
 * by token and source IP, byte-for-byte forwarding both ways, strangers dropped,
 * per-pair rate, caps, the port range, and the registration/idle sweep; and the
 * registration datagram's encoding (lib/relay_reg.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "relay.h"
#include "relay_reg.h"
#include "test.h"
#include "wire.h"

TEST(relay_reg_round_trip_and_rejects)
{
	struct n4_relay_reg r = { .flags = N4_RELAY_ACK }, back;
	uint8_t buf[N4_RELAY_REG_SIZE + 1];
	for (unsigned i = 0; i < N4_RELAY_TOKEN_SIZE; i++)
		r.token[i] = (uint8_t)(i * 7 + 1);
	n4_relay_reg_encode(&r, buf);
	CHECK_EQ(buf[0], N4_CMD_RELAY_REG);
	CHECK_EQ(n4_relay_reg_decode(buf, N4_RELAY_REG_SIZE, &back), 0);
	CHECK(back.flags == N4_RELAY_ACK && memcmp(back.token, r.token, sizeof(r.token)) == 0);
	CHECK(n4_relay_token_equal(back.token, r.token));
	back.token[9] ^= 1;
	CHECK(!n4_relay_token_equal(back.token, r.token));
	CHECK_EQ(n4_relay_reg_decode(buf, N4_RELAY_REG_SIZE - 1, &back), -EMSGSIZE);
	CHECK_EQ(n4_relay_reg_decode(buf, N4_RELAY_REG_SIZE + 1, &back), -EMSGSIZE);
	buf[1] = 0x80;
	CHECK_EQ(n4_relay_reg_decode(buf, N4_RELAY_REG_SIZE, &back), -EPROTO);
	buf[1] = 0;
	buf[0] = N4_CMD_PUNCH;
	CHECK_EQ(n4_relay_reg_decode(buf, N4_RELAY_REG_SIZE, &back), -EPROTO);
}

TEST(relay_refresh_and_ack_helpers_carry_the_token)
{
	struct n4_result res = { .relayed = true };
	uint8_t out[N4_RELAY_REFRESH_SIZE];
	memset(res.relay_token, 0x5a, sizeof(res.relay_token));
	CHECK_EQ(n4_relay_refresh_build(&res, out), N4_RELAY_REFRESH_SIZE);
	CHECK(!n4_is_relay_ack(out, sizeof(out), &res)); /* a registration, not an ack */
	out[1] = N4_RELAY_ACK | N4_RELAY_PEER_UP;
	CHECK(n4_is_relay_ack(out, sizeof(out), &res));
	out[5] ^= 1;
	CHECK(!n4_is_relay_ack(out, sizeof(out), &res));
	res.relayed = false;
	out[5] ^= 1;
	CHECK(!n4_is_relay_ack(out, sizeof(out), &res));
}

struct rig {
	n4_loop *loop;
	n4_relay *relay;
	struct n4_relay_grant ga, gb;
	int fa, fb, fs; /* side A, side B, a stranger on 127.0.0.1 */
};

static int udp_on(const char *ip)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, ip, &a.sin_addr);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct n4_relay_cfg cfg_default(void)
{
	return (struct n4_relay_cfg){
		.max_pairs = 4, .max_per_ip = 0, .idle_s = 60, .burst_kb = 64
	};
}

static int rig_up(struct rig *g, const struct n4_relay_cfg *cfg)
{
	union n4_sa bind = { .v4 = { .sin_family = AF_INET } };
	struct n4_relay_side_in in = { .udp_ip = htonl(0x7f000001) };

	memset(g, 0, sizeof(*g));
	g->fa = g->fb = g->fs = -1;
	bind.v4.sin_addr.s_addr = htonl(0x7f000001);
	g->loop = n4_loop_new();
	g->relay = g->loop ? n4_relay_new(cfg, g->loop, &bind) : NULL;
	if (!g->relay)
		return -ENOMEM;
	int err = n4_relay_alloc(g->relay, &in, &in, &g->ga, &g->gb);
	if (err)
		return err;
	g->fa = udp_on("127.0.0.1");
	g->fb = udp_on("127.0.0.1");
	g->fs = udp_on("127.0.0.1");
	return g->fa < 0 || g->fb < 0 || g->fs < 0 ? -EIO : 0;
}

static void rig_down(struct rig *g)
{
	n4_relay_free(g->relay);
	n4_loop_free(g->loop);
	if (g->fa >= 0)
		close(g->fa);
	if (g->fb >= 0)
		close(g->fb);
	if (g->fs >= 0)
		close(g->fs);
}

static void send_to_port(int fd, uint16_t port, const void *buf, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(0x7f000001);
	(void)!sendto(fd, buf, len, 0, (struct sockaddr *)&a, sizeof(a));
}

static void reg(int fd, const struct n4_relay_grant *g)
{
	struct n4_relay_reg r = { .flags = 0 };
	uint8_t out[N4_RELAY_REG_SIZE];
	memcpy(r.token, g->token, sizeof(r.token));
	n4_relay_reg_encode(&r, out);
	send_to_port(fd, g->port, out, sizeof(out));
}

/* Run the loop until fd has a datagram (up to ~wait_ms); its length, or -1. */
static ssize_t pump_recv(struct rig *g, int fd, uint8_t *buf, size_t len, uint16_t *from_port,
			 int wait_ms)
{
	for (int i = 0; i < wait_ms / 5; i++) {
		n4_loop_run_once(g->loop, 5);
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		if (n >= 0) {
			if (from_port)
				*from_port = ntohs(from.sin_port);
			return n;
		}
	}
	return -1;
}

/* Both sides register and get their ack: a relay ready to forward.  0 or -1. */
static int rig_register_both(struct rig *g)
{
	uint8_t buf[256];

	reg(g->fa, &g->ga);
	reg(g->fb, &g->gb);
	if (pump_recv(g, g->fa, buf, sizeof(buf), NULL, 500) <= 0 ||
	    pump_recv(g, g->fb, buf, sizeof(buf), NULL, 500) <= 0)
		return -1;
	return 0;
}

TEST(relay_registers_both_sides_and_forwards_byte_for_byte)
{
	struct rig g;
	struct n4_relay_cfg cfg = cfg_default();
	uint8_t buf[2048];
	uint16_t from = 0;

	CHECK_EQ(rig_up(&g, &cfg), 0);
	CHECK(g.ga.port != 0 && g.gb.port != 0 && g.ga.port != g.gb.port);
	CHECK(memcmp(g.ga.token, g.gb.token, N4_RELAY_TOKEN_SIZE) != 0);
	reg(g.fa, &g.ga);
	CHECK_EQ(pump_recv(&g, g.fa, buf, sizeof(buf), &from, 500), N4_RELAY_REG_SIZE);
	CHECK(buf[1] == N4_RELAY_ACK && from == g.ga.port); /* up, the peer not yet */
	/* data before the peer registered goes nowhere */
	send_to_port(g.fa, g.ga.port, "early", 5);
	reg(g.fb, &g.gb);
	CHECK_EQ(pump_recv(&g, g.fb, buf, sizeof(buf), &from, 500), N4_RELAY_REG_SIZE);
	CHECK(buf[1] == (N4_RELAY_ACK | N4_RELAY_PEER_UP));
	uint8_t big[1400];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 31);
	send_to_port(g.fa, g.ga.port, big, sizeof(big));
	CHECK_EQ(pump_recv(&g, g.fb, buf, sizeof(buf), &from, 500), sizeof(big));
	CHECK(memcmp(buf, big, sizeof(big)) == 0 && from == g.gb.port);
	send_to_port(g.fb, g.gb.port, "back", 4);
	CHECK_EQ(pump_recv(&g, g.fa, buf, sizeof(buf), &from, 500), 4);
	CHECK(memcmp(buf, "back", 4) == 0 && from == g.ga.port);
	/* a 12-byte datagram that looks like a registration with another token,
	 * from a registered address, is data */
	uint8_t fake[N4_RELAY_REG_SIZE] = {
		N4_CMD_RELAY_REG, 0, 'n', 'o', 't', 'a', 't', 'o', 'k', 'e', 'n', '!'
	};
	send_to_port(g.fa, g.ga.port, fake, sizeof(fake));
	CHECK_EQ(pump_recv(&g, g.fb, buf, sizeof(buf), NULL, 500), sizeof(fake));
	char st[1024];
	n4_relay_status(g.relay, st, sizeof(st));
	CHECK(strstr(st, "relay_up=1 ") && strstr(st, "relay_forwarded=3 ") &&
	      strstr(st, "relay_drop_unregistered=1 "));
	rig_down(&g);
}

TEST(relay_drops_strangers_and_wrong_tokens)
{
	struct rig g;
	struct n4_relay_cfg cfg = cfg_default();
	uint8_t buf[256];

	CHECK_EQ(rig_up(&g, &cfg), 0);
	CHECK_EQ(rig_register_both(&g), 0);
	/* a stranger's data on either port reaches nobody */
	send_to_port(g.fs, g.ga.port, "spray", 5);
	send_to_port(g.fs, g.gb.port, "spray", 5);
	/* a wrong token, and B's token on A's port: no registration, no ack */
	struct n4_relay_grant wrong = g.ga;
	wrong.port = g.ga.port;
	wrong.token[0] ^= 0xff;
	reg(g.fs, &wrong);
	struct n4_relay_grant cross = g.gb;
	cross.port = g.ga.port;
	reg(g.fs, &cross);
	CHECK_EQ(pump_recv(&g, g.fs, buf, sizeof(buf), NULL, 200), -1);
	CHECK_EQ(pump_recv(&g, g.fa, buf, sizeof(buf), NULL, 100), -1);
	CHECK_EQ(pump_recv(&g, g.fb, buf, sizeof(buf), NULL, 100), -1);
	/* the right token from the wrong IP (127.0.0.2) does not register either */
	int f2 = udp_on("127.0.0.2");
	CHECK(f2 >= 0);
	reg(f2, &g.ga);
	CHECK_EQ(pump_recv(&g, f2, buf, sizeof(buf), NULL, 200), -1);
	close(f2);
	/* the session still works */
	send_to_port(g.fa, g.ga.port, "still", 5);
	CHECK_EQ(pump_recv(&g, g.fb, buf, sizeof(buf), NULL, 500), 5);
	char st[1024];
	n4_relay_status(g.relay, st, sizeof(st));
	CHECK(strstr(st, "relay_drop_stranger=2 ") && strstr(st, "relay_drop_bad_reg=3 ") &&
	      strstr(st, "relay_moved=0 "));
	rig_down(&g);
}

TEST(relay_registration_moves_with_a_rebinding)
{
	struct rig g;
	struct n4_relay_cfg cfg = cfg_default();
	uint8_t buf[256];

	CHECK_EQ(rig_up(&g, &cfg), 0);
	CHECK_EQ(rig_register_both(&g), 0);
	/* A's NAT gave it a new port: the stranger socket stands in for it */
	reg(g.fs, &g.ga);
	CHECK_EQ(pump_recv(&g, g.fs, buf, sizeof(buf), NULL, 500), N4_RELAY_REG_SIZE);
	send_to_port(g.fb, g.gb.port, "to new", 6);
	CHECK_EQ(pump_recv(&g, g.fs, buf, sizeof(buf), NULL, 500), 6);
	send_to_port(g.fa, g.ga.port, "old", 3); /* the old address is a stranger now */
	CHECK_EQ(pump_recv(&g, g.fb, buf, sizeof(buf), NULL, 200), -1);
	rig_down(&g);
}

TEST(relay_rate_limits_a_pair_to_its_bucket)
{
	struct rig g;
	struct n4_relay_cfg cfg = cfg_default();
	uint8_t buf[2048], blob[500] = { 0 };

	cfg.rate_kbit = 8; /* 1 byte per ms: negligible refill during the test */
	cfg.burst_kb = 2;  /* 2048 bytes: four datagrams of 500 */
	CHECK_EQ(rig_up(&g, &cfg), 0);
	CHECK_EQ(rig_register_both(&g), 0);
	for (int i = 0; i < 20; i++)
		send_to_port(g.fa, g.ga.port, blob, sizeof(blob));
	int got = 0;
	while (pump_recv(&g, g.fb, buf, sizeof(buf), NULL, 100) > 0)
		got++;
	CHECK(got >= 4 && got <= 6);
	/* the other direction has its own bucket */
	send_to_port(g.fb, g.gb.port, blob, sizeof(blob));
	CHECK_EQ(pump_recv(&g, g.fa, buf, sizeof(buf), NULL, 500), sizeof(blob));
	rig_down(&g);
}

TEST(relay_caps_pairs_sources_and_ports)
{
	union n4_sa bind = { .v4 = { .sin_family = AF_INET } };
	struct n4_relay_side_in in = { .udp_ip = htonl(0x7f000001) };
	struct n4_relay_grant a, b;
	n4_loop *loop = n4_loop_new();
	struct n4_relay_cfg cfg = cfg_default();

	bind.v4.sin_addr.s_addr = htonl(0x7f000001);
	CHECK(loop);
	cfg.max_pairs = 1;
	n4_relay *r = n4_relay_new(&cfg, loop, &bind);
	CHECK(r);
	CHECK_EQ(n4_relay_alloc(r, &in, &in, &a, &b), 0);
	CHECK_EQ(n4_relay_alloc(r, &in, &in, &a, &b), -ENOSPC);
	n4_relay_free(r);
	cfg.max_pairs = 4;
	cfg.max_per_ip = 2; /* a pair whose sides share a source takes two */
	r = n4_relay_new(&cfg, loop, &bind);
	CHECK(r);
	CHECK_EQ(n4_relay_alloc(r, &in, &in, &a, &b), 0);
	CHECK_EQ(n4_relay_alloc(r, &in, &in, &a, &b), -EMFILE);
	CHECK_EQ(n4_relay_pairs(r), 1);
	n4_relay_free(r);
	/* a range of two ports holds one pair */
	cfg.max_per_ip = 0;
	cfg.port_lo = 47311;
	cfg.port_hi = 47312;
	r = n4_relay_new(&cfg, loop, &bind);
	CHECK(r);
	CHECK_EQ(n4_relay_alloc(r, &in, &in, &a, &b), 0);
	CHECK(a.port >= 47311 && a.port <= 47312 && b.port >= 47311 && b.port <= 47312);
	CHECK_EQ(n4_relay_alloc(r, &in, &in, &a, &b), -EADDRINUSE);
	CHECK_EQ(n4_relay_pairs(r), 1);
	n4_relay_free(r);
	n4_loop_free(loop);
}

TEST(relay_sweep_frees_unregistered_and_idle_pairs)
{
	struct rig g;
	struct n4_relay_cfg cfg = cfg_default();

	cfg.idle_s = 5;
	CHECK_EQ(rig_up(&g, &cfg), 0);
	struct n4_relay_side_in in = { .udp_ip = htonl(0x7f000001) };
	struct n4_relay_grant a, b;
	CHECK_EQ(n4_relay_alloc(g.relay, &in, &in, &a, &b), 0); /* never registers */
	CHECK_EQ(rig_register_both(&g), 0);
	uint64_t now = n4_now_ms();
	n4_relay_sweep(g.relay, now + 4000);
	CHECK_EQ(n4_relay_pairs(g.relay), 2);
	n4_relay_sweep(g.relay, now + 6000); /* the registered pair is idle */
	CHECK_EQ(n4_relay_pairs(g.relay), 1);
	n4_relay_sweep(g.relay, now + N4_RELAY_REG_TIMEOUT_S * 1000 + 1000);
	CHECK_EQ(n4_relay_pairs(g.relay), 0);
	char st[1024];
	n4_relay_status(g.relay, st, sizeof(st));
	CHECK(strstr(st, "relay_expired_idle=1 relay_expired_unregistered=1"));
	rig_down(&g);
}

TEST(relay_batches_of_one_size_arrive_as_separate_datagrams)
{
	struct rig g;
	struct n4_relay_cfg cfg = cfg_default();
	uint8_t buf[2048], d[400];
	const size_t sizes[] = { 300, 300, 300, 300, 120, 300, 300, 400, 400, 17 };
	const unsigned n = sizeof(sizes) / sizeof(sizes[0]);

	CHECK_EQ(rig_up(&g, &cfg), 0);
	CHECK_EQ(rig_register_both(&g), 0);
	/* all queued before the relay reads: one batch, runs sent with GSO */
	for (unsigned i = 0; i < n; i++) {
		memset(d, (int)('a' + i), sizeof(d));
		send_to_port(g.fa, g.ga.port, d, sizes[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		ssize_t got = pump_recv(&g, g.fb, buf, sizeof(buf), NULL, 500);
		CHECK_EQ(got, sizes[i]);
		CHECK(buf[0] == 'a' + i && buf[got - 1] == 'a' + i);
	}
	CHECK_EQ(pump_recv(&g, g.fb, buf, sizeof(buf), NULL, 100), -1);
	rig_down(&g);
}

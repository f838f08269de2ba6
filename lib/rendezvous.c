/* rendezvous.c - talking to the rendezvous server, step by step, with deadlines.
 * Works unchanged against the original server: extensions are only used when the
 * server grants them in READY's reserved byte. */
#include "rendezvous.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "addr.h"
#include "log.h"
#include "loop.h"

#define EXCHANGE_RESEND_MS 250

void n4_rv_init(struct n4_rv *rv, const struct sockaddr_in *server,
		const uint8_t ident[N4_PAYLOAD_SIZE], uint8_t offer)
{
	memset(rv, 0, sizeof(*rv));
	rv->tcp_fd = -1;
	rv->server = *server;
	memcpy(rv->ident, ident, N4_PAYLOAD_SIZE);
	rv->offer = offer;
}

void n4_rv_close(struct n4_rv *rv)
{
	if (rv->tcp_fd >= 0)
		close(rv->tcp_fd);
	rv->tcp_fd = -1;
}

static int send_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int n4_rv_hello(struct n4_rv *rv, uint64_t deadline_ms, const struct n4_waitctx *ctx)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	rv->tcp_fd = fd;
	if (connect(fd, (struct sockaddr *)&rv->server, sizeof(rv->server)) && errno != EINPROGRESS)
		return -errno;
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int n = n4_wait(&p, 1, deadline_ms, ctx);
	if (n <= 0)
		return n ? n : -ETIMEDOUT;
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len))
		return -errno;
	if (soerr)
		return -soerr;
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE];
	n4_msg_init(&m, N4_CMD_HELLO, rv->offer, rv->ident);
	n4_wire_encode(&m, buf);
	int err = send_all(fd, buf, sizeof(buf));
	if (err)
		return err;
	n4_info(" <= Hello ");
	return 0;
}

static int send_exchange(const struct n4_rv *rv, int udp_fd)
{
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE];
	bool tok = rv->granted & N4_EXT_TOKEN;

	n4_msg_init(&m, N4_CMD_EXCHANGE, tok ? N4_EXT_TOKEN : 0, tok ? rv->token : rv->ident);
	n4_wire_encode(&m, buf);
	if (sendto(udp_fd, buf, sizeof(buf), 0, (const struct sockaddr *)&rv->server,
		   sizeof(rv->server)) < 0)
		return -errno;
	return 0;
}

/* Read exactly one 8-byte message from the server; while waiting, resend the
 * EXCHANGE from udp_fd (if >= 0) against loss. */
static int recv_msg(struct n4_rv *rv, uint8_t expect, struct n4_msg *m, uint64_t deadline_ms,
		    const struct n4_waitctx *ctx, int udp_fd)
{
	uint8_t buf[N4_MSG_SIZE];
	size_t have = 0;
	uint64_t next_resend = n4_now_ms() + EXCHANGE_RESEND_MS;

	while (have < sizeof(buf)) {
		struct pollfd p = { .fd = rv->tcp_fd, .events = POLLIN };
		uint64_t until = udp_fd >= 0 && next_resend < deadline_ms ? next_resend : deadline_ms;
		int n = n4_wait(&p, 1, until, ctx);
		if (n < 0)
			return n;
		if (n == 0) {
			if (until == deadline_ms)
				return -ETIMEDOUT;
			int err = send_exchange(rv, udp_fd);
			if (err)
				n4_debug("EXCHANGE resend: %s", strerror(-err));
			next_resend += EXCHANGE_RESEND_MS;
			continue;
		}
		ssize_t r = recv(rv->tcp_fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET;
		have += (size_t)r;
	}
	int err = n4_wire_decode(buf, sizeof(buf), expect, m);
	if (err) {
		n4_warn("server sent %02x %02x ... where command %u was expected", buf[0], buf[1],
			expect);
		return -EPROTO;
	}
	return 0;
}

int n4_rv_ready(struct n4_rv *rv, uint64_t deadline_ms, const struct n4_waitctx *ctx)
{
	struct n4_msg m;
	int err = recv_msg(rv, N4_CMD_READY, &m, deadline_ms, ctx, -1);

	if (err)
		return err;
	/* An original server sends 0 here; only grant what we offered. */
	rv->granted = m.ext & rv->offer;
	if (rv->granted & N4_EXT_TOKEN)
		memcpy(rv->token, m.payload, N4_TOKEN_SIZE);
	n4_info(" => Ready ");
	return 0;
}

int n4_rv_exchange(struct n4_rv *rv, int udp_fd, uint64_t deadline_ms,
		   const struct n4_waitctx *ctx)
{
	struct n4_msg m;

	/* Three copies, as the original sends, against loss. */
	for (int i = 0; i < 3; i++) {
		int err = send_exchange(rv, udp_fd);
		if (err)
			return err;
	}
	n4_info(" <= Exchange ");
	int err = recv_msg(rv, N4_CMD_PEERINFO, &m, deadline_ms, ctx, udp_fd);
	if (err)
		return err;
	if (n4_peerinfo_decode(m.payload, &rv->peer)) {
		n4_warn("server sent an invalid peer address");
		return -EPROTO;
	}
	rv->peer_flags = rv->granted ? m.ext : 0;
	char b[32];
	n4_info(" => Peer: %s ", n4_addr_str(&rv->peer, b, sizeof(b)));
	return 0;
}

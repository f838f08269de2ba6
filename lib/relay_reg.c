/* relay_reg.c - the relay's registration datagram and the client's registration
 * exchange (layout and rules in relay_reg.h).  The decoder reads untrusted
 * bytes: fuzzed by tests/fuzz/fuzz_relay_reg.c. */
#include "relay_reg.h"

#include "resend.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "loop.h"
#include "wire.h"

void n4_relay_reg_encode(const struct n4_relay_reg *r, uint8_t out[N4_RELAY_REG_SIZE])
{
	out[0] = N4_CMD_RELAY_REG;
	out[1] = r->flags;
	memcpy(out + 2, r->token, N4_RELAY_TOKEN_SIZE);
}

int n4_relay_reg_decode(const void *buf, size_t len, struct n4_relay_reg *r)
{
	const uint8_t *b = buf;

	if (len != N4_RELAY_REG_SIZE)
		return -EMSGSIZE;
	if (b[0] != N4_CMD_RELAY_REG || (b[1] & ~(N4_RELAY_ACK | N4_RELAY_PEER_UP)))
		return -EPROTO;
	r->flags = b[1];
	memcpy(r->token, b + 2, N4_RELAY_TOKEN_SIZE);
	return 0;
}

bool n4_relay_token_equal(const uint8_t a[N4_RELAY_TOKEN_SIZE],
			  const uint8_t b[N4_RELAY_TOKEN_SIZE])
{
	uint8_t d = 0;

	/* No early exit: the time taken says nothing about how much matched. */
	for (size_t i = 0; i < N4_RELAY_TOKEN_SIZE; i++)
		d |= (uint8_t)(a[i] ^ b[i]);
	return d == 0;
}

size_t n4_relay_refresh_build(const struct n4_result *res, uint8_t out[N4_RELAY_REFRESH_SIZE])
{
	struct n4_relay_reg r = { .flags = 0 };

	memcpy(r.token, res->relay_token, N4_RELAY_TOKEN_SIZE);
	n4_relay_reg_encode(&r, out);
	return N4_RELAY_REG_SIZE;
}

bool n4_is_relay_ack(const void *buf, size_t len, const struct n4_result *res)
{
	struct n4_relay_reg r;

	if (!res->relayed || n4_relay_reg_decode(buf, len, &r) || !(r.flags & N4_RELAY_ACK))
		return false;
	return n4_relay_token_equal(r.token, res->relay_token);
}

static bool from_relay(const struct sockaddr_in *from, socklen_t flen,
		       const struct sockaddr_in *relay)
{
	return flen >= sizeof(*from) && from->sin_family == AF_INET &&
	       from->sin_addr.s_addr == relay->sin_addr.s_addr && from->sin_port == relay->sin_port;
}

struct reg_run {
	int fd;
	const struct sockaddr_in *relay;
	const uint8_t *token;
	uint8_t out[N4_RELAY_REG_SIZE];
	unsigned wait_ms, sent;
};

static int reg_send(void *arg)
{
	struct reg_run *g = arg;

	if (sendto(g->fd, g->out, sizeof(g->out), 0, (const struct sockaddr *)g->relay,
		   sizeof(*g->relay)) < 0 &&
	    errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED)
		return -errno;
	g->sent++;
	return 0;
}

/* 1: registered (the peer is up, or its data already arrives), 0: go on. */
static int reg_readable(void *arg, uint64_t *next_send_ms)
{
	struct reg_run *g = arg;
	uint8_t buf[64];
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	/* Peek first: the peer's first datagram must stay for the program. */
	ssize_t r = recvfrom(g->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT,
			     (struct sockaddr *)&from, &flen);
	if (r < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == ECONNREFUSED)
			return 0;
		return -errno;
	}
	struct n4_relay_reg ack;
	bool is_ack = from_relay(&from, flen, g->relay) &&
		      n4_relay_reg_decode(buf, (size_t)r, &ack) == 0 &&
		      (ack.flags & N4_RELAY_ACK) && n4_relay_token_equal(ack.token, g->token);
	if (from_relay(&from, flen, g->relay) && !is_ack) {
		n4_debug("relay: data before the ack: both sides are up");
		return 1;
	}
	/* Ours, or a stranger's / a late PUNCH: take it out of the way. */
	if (recv(g->fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno != EAGAIN &&
	    errno != EWOULDBLOCK && errno != EINTR && errno != ECONNREFUSED)
		return -errno;
	if (!is_ack)
		return 0;
	if (ack.flags & N4_RELAY_PEER_UP) {
		n4_debug("relay: registered after %u registration(s), peer up", g->sent);
		return 1;
	}
	/* Registered; the peer is not yet: ask again after a short pause rather
	 * than a whole wait, its registration is on the way. */
	uint64_t soon = n4_now_ms() + (g->wait_ms < 50 ? g->wait_ms : 50);
	if (soon < *next_send_ms)
		*next_send_ms = soon;
	return 0;
}

int n4_relay_register(int fd, const struct sockaddr_in *relay,
		      const uint8_t token[N4_RELAY_TOKEN_SIZE], unsigned wait_ms,
		      uint64_t deadline_ms, const struct n4_waitctx *ctx)
{
	struct n4_relay_reg reg = { .flags = 0 };
	struct reg_run g = { .fd = fd, .relay = relay, .token = token, .wait_ms = wait_ms };

	memcpy(reg.token, token, N4_RELAY_TOKEN_SIZE);
	n4_relay_reg_encode(&reg, g.out);
	struct n4_resend r = { .fd = fd,
			       .interval_ms = wait_ms,
			       .deadline_ms = deadline_ms,
			       .ctx = ctx,
			       .send = reg_send,
			       .readable = reg_readable,
			       .arg = &g };
	int rc = n4_resend_until(&r);
	if (rc == 0)
		return -ETIMEDOUT;
	return rc < 0 ? rc : 0;
}

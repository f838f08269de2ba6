/* punch.c - the sweep: every pool socket sends PUNCH to one predicted target
 * (the original's scheme), optionally pre-opened with a low TTL. */
#include "punch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "addr.h"
#include "log.h"
#include "loop.h"

int n4_pool_open(struct n4_pool *pool, uint16_t first_port, unsigned n)
{
	int one = 1;

	pool->n = 0;
	pool->first_port = first_port;
	if (n == 0 || (first_port && (unsigned)first_port + n - 1 > 65535))
		return -ERANGE;
	pool->fds = calloc(n, sizeof(*pool->fds));
	if (!pool->fds)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			goto fail;
		pool->fds[pool->n++] = fd;
		struct sockaddr_in a = { .sin_family = AF_INET };
		if (first_port) {
			a.sin_port = htons((uint16_t)(first_port + i));
			if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
			    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
				goto fail;
		}
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
			goto fail;
	}
	return 0;
fail:;
	int err = -errno;
	n4_pool_close(pool, -1);
	return err;
}

void n4_pool_close(struct n4_pool *pool, int keep)
{
	for (unsigned i = 0; i < pool->n; i++) {
		if ((int)i != keep && pool->fds[i] >= 0)
			close(pool->fds[i]);
		pool->fds[i] = -1;
	}
	free(pool->fds);
	pool->fds = NULL;
	pool->n = 0;
}

uint16_t n4_pool_local_port(const struct n4_pool *pool, unsigned i)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	if (pool->first_port)
		return (uint16_t)(pool->first_port + i);
	if (getsockname(pool->fds[i], (struct sockaddr *)&a, &len))
		return 0;
	return ntohs(a.sin_port);
}

static void send_pass(struct n4_sweep *sw, const uint8_t msg[N4_MSG_SIZE])
{
	for (unsigned i = 0; i < sw->pool->n; i++) {
		if (sendto(sw->pool->fds[i], msg, N4_MSG_SIZE, 0, (struct sockaddr *)&sw->target,
			   sizeof(sw->target)) == N4_MSG_SIZE)
			sw->sent++;
		else
			n4_debug("PUNCH from pool socket %u: %s", i, strerror(errno));
	}
}

/* A low TTL lets the packet cross our own NAT (creating the mapping) and die
 * before the peer's NAT, so that it cannot occupy the tuple the peer's NAT is
 * about to use (the conntrack clash, nat-lab.md).  -1 restores the default. */
static void set_ttl(const struct n4_pool *pool, int ttl)
{
	for (unsigned i = 0; i < pool->n; i++) {
		if (setsockopt(pool->fds[i], IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)))
			n4_debug("IP_TTL %d: %s", ttl, strerror(errno));
	}
}

/* Returns 1 when fd holds a valid PUNCH from the peer (drains others). */
static int read_punches(struct n4_sweep *sw, int fd)
{
	for (;;) {
		uint8_t buf[64];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &flen);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED || errno == EHOSTUNREACH)
				continue; /* ICMP errors from our own probes */
			return 0;
		}
		if (n != N4_MSG_SIZE || buf[0] != N4_CMD_PUNCH ||
		    memcmp(buf + 2, sw->ident, N4_PAYLOAD_SIZE) != 0 || from.sin_family != AF_INET)
			continue;
		if (!sw->any_ip && from.sin_addr.s_addr != sw->peer_ip.s_addr) {
			char b[32];
			n4_debug("PUNCH from unexpected %s ignored (use -x to accept)",
				 n4_addr_str(&from, b, sizeof(b)));
			continue;
		}
		sw->from = from;
		sw->got_ack = buf[1] & N4_PUNCH_ACK;
		return 1;
	}
}

/* Full-TTL resend schedule (ms after the first pass): early repeats catch the
 * peer as soon as its mappings exist, later ones survive loss. */
static uint64_t next_resend_ms(unsigned k)
{
	static const unsigned early[] = { 20, 40, 80, 160, 320 };

	if (k < sizeof(early) / sizeof(early[0]))
		return early[k];
	return 320 + 250ull * (k - 4);
}

int n4_sweep_run(struct n4_sweep *sw, uint64_t deadline_ms, const struct n4_waitctx *ctx)
{
	const struct n4_pool *pool = sw->pool;
	uint8_t msg[N4_MSG_SIZE];
	struct pollfd *pfd = calloc(pool->n, sizeof(*pfd));
	int ret = 0;

	if (!pfd)
		return -ENOMEM;
	for (unsigned i = 0; i < pool->n; i++)
		pfd[i] = (struct pollfd){ .fd = pool->fds[i], .events = POLLIN };
	n4_punch_bytes(sw->ident, 0, msg);
	sw->sent = 0;

	uint64_t start = n4_now_ms(), first_full = start, next_send = start;
	unsigned passes = 0;
	if (sw->classic) {
		for (int pass = 0; pass < 5; pass++)
			send_pass(sw, msg);
		n4_info(" <= Punch ");
		next_send = UINT64_MAX;
	} else if (sw->low_ttl > 0) {
		set_ttl(pool, sw->low_ttl);
		send_pass(sw, msg);
		set_ttl(pool, -1);
		first_full = next_send = start + sw->guard_ms;
	}
	for (;;) {
		if (n4_now_ms() >= next_send) {
			send_pass(sw, msg);
			if (passes == 0)
				n4_info(" <= Punch ");
			next_send = first_full + next_resend_ms(passes++);
		}
		uint64_t until = next_send < deadline_ms ? next_send : deadline_ms;
		int n = n4_wait(pfd, pool->n, until, ctx);
		if (n < 0) {
			ret = n;
			break;
		}
		if (n == 0) {
			if (until >= deadline_ms)
				break;
			continue;
		}
		for (unsigned i = 0; i < pool->n; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			if (read_punches(sw, pfd[i].fd)) {
				sw->winner = i;
				ret = 1;
				goto out;
			}
		}
	}
out:
	free(pfd);
	return ret;
}

int n4_confirm(int fd, const struct sockaddr_in *peer, const uint8_t ident[N4_PAYLOAD_SIZE],
	       enum n4_confirm_mode mode, bool already_acked, unsigned confirm_ms,
	       const struct n4_waitctx *ctx)
{
	uint8_t plain[N4_MSG_SIZE], ack[N4_MSG_SIZE];
	uint64_t start = n4_now_ms(), end = start + confirm_ms;
	unsigned tick_ms = (mode == N4_CONFIRM_ACK || mode == N4_CONFIRM_UNKNOWN) ? 100 : 200;
	unsigned sent = 0;
	bool acked = already_acked;

	n4_punch_bytes(ident, 0, plain);
	n4_punch_bytes(ident, N4_PUNCH_ACK, ack);
	if (mode == N4_CONFIRM_CLASSIC)
		end = UINT64_MAX; /* exactly ten, however long they take */
	for (uint64_t next = start;;) {
		uint64_t now = n4_now_ms();
		if (now >= next) {
			bool last = acked && mode != N4_CONFIRM_CLASSIC && mode != N4_CONFIRM_PLAIN;
			if (mode != N4_CONFIRM_ACK)
				sendto(fd, plain, sizeof(plain), 0, (const struct sockaddr *)peer,
				       sizeof(*peer));
			if (mode == N4_CONFIRM_ACK || mode == N4_CONFIRM_UNKNOWN)
				sendto(fd, ack, sizeof(ack), 0, (const struct sockaddr *)peer,
				       sizeof(*peer));
			sent++;
			next = now + tick_ms;
			/* One acknowledgement answers the peer's: then both know. */
			if (last || (mode == N4_CONFIRM_CLASSIC && sent >= 10))
				break;
		}
		if (now >= end)
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = n4_wait(&p, 1, next < end ? next : end, ctx);
		if (n < 0)
			return n;
		while (n > 0) {
			uint8_t buf[64];
			struct sockaddr_in from;
			socklen_t flen = sizeof(from);
			ssize_t r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
					     (struct sockaddr *)&from, &flen);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == ECONNREFUSED || errno == EHOSTUNREACH))
				continue;
			if (r < 0)
				break;
			if (r == N4_MSG_SIZE && buf[0] == N4_CMD_PUNCH && (buf[1] & N4_PUNCH_ACK) &&
			    memcmp(buf + 2, ident, N4_PAYLOAD_SIZE) == 0 &&
			    from.sin_addr.s_addr == peer->sin_addr.s_addr && !acked) {
				acked = true;
				next = 0; /* answer it at once */
			}
		}
	}
	if (mode == N4_CONFIRM_CLASSIC)
		n4_info(" <= Punch ");
	return acked ? 1 : 0;
}

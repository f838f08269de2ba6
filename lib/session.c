/* session.c - keepalive datagrams and the dead-path rule (session.h). */
#include "session.h"

#include "n4.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

int n4_keepalive_send(int fd, const struct sockaddr *peer, socklen_t peer_len,
		      const uint8_t ident[N4_PAYLOAD_SIZE], int ttl)
{
	uint8_t msg[N4_MSG_SIZE];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = msg, .iov_len = sizeof(msg) };
	struct msghdr mh = {
		.msg_name = (void *)peer,
		.msg_namelen = peer_len,
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};

	n4_punch_bytes(ident, 0, msg);
	memset(&ctl, 0, sizeof(ctl));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	/* SOL_IP also on an AF_INET6 socket: a v4-mapped destination goes out through
	 * the IPv4 path, which reads IPv4 ancillary data.  A native IPv6 peer (the
	 * direct IPv6 path): the hop limit, which refreshes our own firewall's state
	 * and dies before the peer's. */
	bool native6 = peer_len >= sizeof(struct sockaddr_in6) && peer->sa_family == AF_INET6 &&
		       !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)peer)->sin6_addr);
	cm->cmsg_level = native6 ? IPPROTO_IPV6 : IPPROTO_IP;
	cm->cmsg_type = native6 ? IPV6_HOPLIMIT : IP_TTL;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &ttl, sizeof(ttl));
	if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

void n4_liveness_reset(struct n4_liveness *l, uint64_t tx, uint64_t rx)
{
	memset(l, 0, sizeof(*l));
	l->last_tx = tx;
	l->last_rx = rx;
}

bool n4_liveness_tick(struct n4_liveness *l, uint64_t now_ms, uint64_t tx, uint64_t rx)
{
	bool sent = tx != l->last_tx, got = rx != l->last_rx;

	l->last_tx = tx;
	l->last_rx = rx;
	if (sent)
		l->sent = true;
	if (got) {
		l->heard = true;
		l->unanswered_since_ms = 0;
		if (!l->run_start_ms || now_ms - l->last_heard_ms > N4_STREAM_GAP_MS)
			l->run_start_ms = now_ms;
		l->last_heard_ms = now_ms;
		return false;
	}
	if (sent && !l->unanswered_since_ms) {
		l->unanswered_since_ms = now_ms;
		l->tx_at_unanswered = tx;
	}
	if (l->heard && l->unanswered_since_ms && now_ms - l->unanswered_since_ms >= N4_DEAD_MS &&
	    tx - l->tx_at_unanswered >= N4_DEAD_SENDS) {
		l->by_stream = false;
		return true;
	}
	l->by_stream = !l->sent && l->run_start_ms &&
		       l->last_heard_ms - l->run_start_ms >= N4_STREAM_MS &&
		       now_ms - l->last_heard_ms >= N4_DEAD_MS;
	return l->by_stream;
}

unsigned n4_liveness_silent_ms(const struct n4_liveness *l, uint64_t now_ms)
{
	if (l->by_stream)
		return (unsigned)(now_ms - l->last_heard_ms);
	return l->unanswered_since_ms ? (unsigned)(now_ms - l->unanswered_since_ms) : 0;
}

int n4_path_keepalive_send(int fd, const struct sockaddr *peer, socklen_t peer_len,
			   const char *ident, int ttl)
{
	uint8_t id[N4_PAYLOAD_SIZE];

	if (!peer || ttl < 1 || ttl > 255 || n4_ident_encode(ident, id) < 0)
		return -EINVAL;
	return n4_keepalive_send(fd, peer, peer_len, id, ttl);
}

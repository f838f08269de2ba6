/* stay.c - the client's end of a kept server connection (N4_EXT_STAY): the server
 * writes one REPUNCH when a client with our identifier says HELLO, i.e. when our
 * peer's program restarted or its shim punches again; then we punch again too.
 * Both peers' kept connections also carry FLOW notices: "I punch a further flow
 * from my port to yours", passed on by the server. */
#include "stay.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "fast.h"
#include "loop.h"
#include "n4.h"
#include "wait.h"

int n4_stay_decode(const uint8_t *buf, size_t len, const uint8_t ident[N4_PAYLOAD_SIZE])
{
	if (len != N4_MSG_SIZE || buf[0] != N4_CMD_REPUNCH)
		return -EPROTO;
	if (memcmp(buf + 2, ident, N4_PAYLOAD_SIZE) != 0)
		return -EPROTO;
	return 0;
}

int n4_stay_flow_decode(const uint8_t *buf, size_t len, struct n4_flow_note *note)
{
	return n4_flow_decode(buf, len, N4_FLOW_FORWARDED, note) ? -EPROTO : 0;
}

int n4_stay_keepalive(int fd, unsigned idle_s)
{
	int one = 1, idle = idle_s ? (int)idle_s : 15, intvl = 2, cnt = 3;

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0)
		return -errno;
	return 0;
}

/* The next whole message: 1 (in buf), 0 none yet, -ECONNRESET, other -errno. */
static int read_msg(int fd, uint8_t buf[N4_MSG_SIZE])
{
	for (;;) {
		/* MSG_PEEK first: a message split over two segments stays queued until
		 * it is whole. */
		ssize_t n = recv(fd, buf, N4_MSG_SIZE, MSG_DONTWAIT | MSG_PEEK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
		if (n == 0)
			return -ECONNRESET;
		if (n < N4_MSG_SIZE)
			return 0;
		n = recv(fd, buf, N4_MSG_SIZE, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		return n == N4_MSG_SIZE ? 1 : 0;
	}
}

/* A fast flow's answer (fast.h) at the head of the stream: 1 taken (in *r, or
 * dropped when r is NULL), 0 not whole yet, -EPROTO none there (or malformed:
 * its first 8 bytes are then read and ignored like any unknown message). */
static int read_fast(int fd, struct n4_fast_reply *r)
{
	uint8_t buf[(1 + N4_FAST_REPLY_MAX) * N4_MSG_SIZE];
	struct n4_fast_reply tmp;
	ssize_t n;

	do
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK);
	while (n < 0 && errno == EINTR);
	if (n < N4_MSG_SIZE)
		return 0;
	int whole = n4_fast_answer_decode(buf, (size_t)n, r ? r : &tmp);
	if (whole == 0)
		return 0;
	size_t take = whole > 0 ? (size_t)whole : N4_MSG_SIZE;
	do
		n = recv(fd, buf, take, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)take)
		return 0;
	return whole > 0 ? 1 : -EPROTO;
}

/* One notice, skipping what is not one (anything unknown from the server on this
 * connection is ignored); FLOW notices too when note is not NULL, fast answers
 * when reply is not NULL. */
static int poll_one(int fd, const uint8_t id[N4_PAYLOAD_SIZE], struct n4_flow_note *note,
		    struct n4_fast_reply *reply)
{
	uint8_t buf[N4_MSG_SIZE];
	int rc;

	for (;;) {
		/* A fast answer is several messages: read whole or not at all. */
		uint8_t first;
		ssize_t n;
		do
			n = recv(fd, &first, 1, MSG_DONTWAIT | MSG_PEEK);
		while (n < 0 && errno == EINTR);
		if (n == 1 && first == N4_CMD_FAST) {
			rc = read_fast(fd, reply);
			if (rc == 0)
				return 0;
			if (rc == 1 && reply)
				return 3;
			continue;
		}
		if ((rc = read_msg(fd, buf)) != 1)
			return rc;
		if (n4_stay_decode(buf, sizeof(buf), id) == 0)
			return 1;
		if (note && n4_stay_flow_decode(buf, sizeof(buf), note) == 0)
			return 2;
	}
}

int n4_stay_poll_any(int fd, const char *ident, struct n4_flow_note *note,
		     struct n4_fast_reply *reply)
{
	uint8_t id[N4_PAYLOAD_SIZE];

	if (!note || n4_ident_encode(ident, id) < 0)
		return -EINVAL;
	return poll_one(fd, id, note, reply);
}

int n4_stay_poll_note(int fd, const char *ident, struct n4_flow_note *note)
{
	return n4_stay_poll_any(fd, ident, note, NULL);
}

int n4_stay_poll(int fd, const char *ident)
{
	uint8_t id[N4_PAYLOAD_SIZE];
	int got = 0, rc;

	if (n4_ident_encode(ident, id) < 0)
		return -EINVAL;
	/* Every REPUNCH queued counts as one; the end of the connection right after
	 * one is reported by the next call. */
	while ((rc = poll_one(fd, id, NULL, NULL)) == 1)
		got = 1;
	if (rc == 0 || (rc == -ECONNRESET && got))
		return got;
	return rc;
}

int n4_stay_flow_send(int fd, uint16_t my_port, uint16_t peer_port, uint16_t nonce)
{
	struct n4_flow_note f = { .from_port = my_port, .to_port = peer_port, .nonce = nonce };
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE];
	ssize_t n;

	if (!my_port || !peer_port)
		return -EINVAL;
	n4_flow_encode(&f, 0, &m);
	n4_wire_encode(&m, buf);
	do
		n = send(fd, buf, sizeof(buf), MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(buf))
		return 0;
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? -EAGAIN : -errno;
	/* A part went out (the socket buffer filled in between): the rest would be
	 * read as the start of the next message. */
	return -EIO;
}

int n4_stay_register(const char *host, uint16_t port, const char *ident, unsigned timeout_ms)
{
	struct sockaddr_in server;
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE], id[N4_PAYLOAD_SIZE];
	int err = n4_ident_encode(ident, id);

	if (err)
		return err;
	err = n4_resolve_v4(host, port, &server);
	if (err)
		return err;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&server, sizeof(server)) < 0 && errno != EINPROGRESS)
		goto out_errno;
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int n = n4_wait(&p, 1, n4_now_ms() + timeout_ms, NULL);
	if (n <= 0) {
		err = n ? n : -ETIMEDOUT;
		goto out_close;
	}
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		goto out_errno;
	if (soerr) {
		err = -soerr;
		goto out_close;
	}
	n4_msg_init(&m, N4_CMD_STAY, N4_EXT_STAY, id);
	n4_wire_encode(&m, buf);
	if (send(fd, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t)sizeof(buf))
		goto out_errno;
	return fd;
out_errno:
	err = errno ? -errno : -EIO;
out_close:
	close(fd);
	return err;
}

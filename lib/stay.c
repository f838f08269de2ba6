/* stay.c - the client's end of a kept server connection (N4_EXT_STAY): the server
 * writes one REPUNCH when a client with our identifier says HELLO, i.e. when our
 * peer's program restarted or its shim punches again; then we punch again too. */
#include "stay.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
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

int n4_stay_poll(int fd, const char *ident)
{
	uint8_t buf[4 * N4_MSG_SIZE], id[N4_PAYLOAD_SIZE];
	int got = 0;

	if (n4_ident_encode(ident, id) < 0)
		return -EINVAL;
	for (;;) {
		/* MSG_PEEK first: a message split over two segments stays queued until
		 * it is whole. */
		ssize_t n = recv(fd, buf, N4_MSG_SIZE, MSG_DONTWAIT | MSG_PEEK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? got : -errno;
		if (n == 0)
			return got ? got : -ECONNRESET;
		if (n < N4_MSG_SIZE)
			return got;
		n = recv(fd, buf, N4_MSG_SIZE, MSG_DONTWAIT);
		if (n != N4_MSG_SIZE)
			return got;
		/* Anything else from the server on this connection is ignored. */
		if (n4_stay_decode(buf, (size_t)n, id) == 0)
			got = 1;
	}
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

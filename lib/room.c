/* room.c - a room's host, its side of the server: register the room (HELLO, READY
 * granting N4_EXT_ROOM, ROOM HOST) and read the joins the server announces on the
 * room connection.  Each join is then answered by a run of the client
 * (cfg.room_answer, client.c), which pairs with that joiner alone.
 * The messages are in doc/PROTOCOL.md "Rooms". */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "blake2s.h"
#include "key.h"
#include "log.h"
#include "loop.h"
#include "n4.h"
#include "rendezvous.h"
#include "wait.h"
#include "wire.h"

#define ROOM_TIMEOUT_MS 10000

static void why_set(char *why, size_t len, const char *fmt, const char *a)
{
	if (why && len)
		snprintf(why, len, fmt, a);
}

/* The server's answer to the registration: 0 hosted, or -errno with the reason. */
static int host_answer(struct n4_rv *rv, uint64_t deadline, const char *server, char *why,
		       size_t len)
{
	uint8_t sub = 0, reason = 0;
	int err = n4_rv_host_reply(rv, deadline, &sub, &reason);

	if (err == -ECONNRESET) {
		/* An original server closes a connection whose first message is
		 * not HELLO; so does ours with --no-rooms. */
		why_set(why, len,
			"%s does not support hosting (an original n4 server, or one run with "
			"--no-rooms): refusing to pair as two equals instead",
			server);
		return -ENOTSUP;
	}
	if (err) {
		why_set(why, len, "no answer from %s to the room's registration", server);
		return err;
	}
	if (sub == N4_ROOM_HOSTED)
		return 0;
	if (sub == N4_ROOM_TAKEN) {
		why_set(why, len,
			"the room already has a host (another program hosts this "
			"identifier at %s)",
			server);
		return -EADDRINUSE;
	}
	if (sub == N4_ROOM_REFUSED) {
		why_set(why, len, "%s refused the room (its limits: rooms per address, or memory)",
			server);
		(void)reason;
		return -EACCES;
	}
	why_set(why, len, "%s answered the room's registration with nonsense", server);
	return -EPROTO;
}

int n4_room_host(const struct n4_client_cfg *cfg, unsigned max_joiners, char *why, size_t why_len)
{
	struct sockaddr_in server;
	struct n4_rv rv;
	struct n4_keyed kid;
	uint8_t id[N4_PAYLOAD_SIZE];
	char sname[300];
	uint64_t deadline = n4_now_ms() + (cfg->timeout_ms ? cfg->timeout_ms : ROOM_TIMEOUT_MS);

	snprintf(sname, sizeof(sname), "the server %s", cfg->server_host ? cfg->server_host : "?");
	if (n4_client_cfg_check(cfg, why, why_len) < 0)
		return -EINVAL;
	int err = n4_resolve_v4(cfg->server_host, cfg->server_port, &server);
	if (err) {
		why_set(why, why_len, "cannot resolve the server '%s'", cfg->server_host);
		return err;
	}
	if (cfg->have_key) {
		(void)n4_key_derive(cfg->key, cfg->ident, &kid);
		n4_ident_encode(kid.short_id, id);
	} else {
		n4_ident_encode(cfg->ident, id);
	}
	n4_rv_init(&rv, &server, id,
		   (uint8_t)(N4_EXT_TOKEN | N4_EXT_ROOM | (cfg->have_key ? N4_EXT_KEY : 0)));
	if (cfg->have_key)
		rv.long_id = kid.long_id;
	rv.host_max = (uint16_t)(max_joiners < 1 ? 1 : max_joiners > 1024 ? 1024 : max_joiners);
	err = n4_rv_hello(&rv, deadline, NULL);
	if (err) {
		char e[400];
		snprintf(e, sizeof(e), "%s: %s", sname, strerror(-err));
		why_set(why, why_len, "%s", e);
		goto out;
	}
	err = host_answer(&rv, deadline, sname, why, why_len);
	if (!err) {
		int fd = rv.tcp_fd;
		rv.tcp_fd = -1;
		n4_rv_close(&rv);
		n4_wipe(&kid, sizeof(kid));
		return fd;
	}
out:
	n4_rv_close(&rv);
	n4_wipe(&kid, sizeof(kid));
	return err;
}

/* One 8-byte message from the room connection. */
static int room_take(struct n4_room_rx *rx, const uint8_t *b, struct n4_join *j)
{
	if (b[0] != N4_CMD_ROOM)
		return -EPROTO;
	switch (b[1]) {
	case N4_ROOM_JOIN:
		memcpy(rx->join.ticket, b + 2, N4_ROOM_ID_SIZE);
		rx->have_ticket = true;
		return 0;
	case N4_ROOM_JOIN_PEER:
		if (!rx->have_ticket)
			return -EPROTO;
		memcpy(rx->join.peer_id, b + 2, N4_ROOM_ID_SIZE);
		rx->have_ticket = false;
		*j = rx->join;
		return 1;
	case N4_ROOM_REFUSED:
		return -EACCES;
	default:
		return 0; /* a later extension's notice: not ours to act on */
	}
}

int n4_room_poll(int fd, struct n4_room_rx *rx, struct n4_join *j)
{
	for (;;) {
		while (rx->n >= N4_MSG_SIZE) {
			uint8_t b[N4_MSG_SIZE];
			memcpy(b, rx->buf, sizeof(b));
			rx->n -= N4_MSG_SIZE;
			memmove(rx->buf, rx->buf + N4_MSG_SIZE, rx->n);
			int rc = room_take(rx, b, j);
			if (rc != 0)
				return rc;
		}
		ssize_t r = recv(fd, rx->buf + rx->n, sizeof(rx->buf) - rx->n, MSG_DONTWAIT);
		if (r > 0) {
			rx->n += (unsigned)r;
			continue;
		}
		if (r == 0)
			return -ECONNRESET;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

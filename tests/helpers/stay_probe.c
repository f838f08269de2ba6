/* stay_probe.c - the server's side of N4_EXT_STAY over loopback: two clients that
 * offer it are paired, keep their connections after PEERINFO, and both receive one
 * REPUNCH (0x0F + identifier) and then EOF when a third client says HELLO with
 * their identifier; a client that did not offer it is closed after PEERINFO; a STAY
 * registration (a lost kept connection, registered again) is kept and told the same
 * way, and at once when a client with its identifier is already waiting.
 *   stay_probe PORT IDENT
 * Prints "ok ..." / "FAIL ..." lines; exit 0 when all hold. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"

static struct sockaddr_in srv;
static int fails;

static void result(bool ok, const char *what)
{
	printf("%s %s\n", ok ? "ok" : "FAIL", what);
	fails += !ok;
}

static int tcp_msg(uint8_t cmd, const char *ident, uint8_t ext)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE], id[N4_PAYLOAD_SIZE];

	if (fd < 0 || connect(fd, (struct sockaddr *)&srv, sizeof(srv)) < 0) {
		printf("FAIL connecting to the server: %s\n", strerror(errno));
		exit(1);
	}
	n4_ident_encode(ident, id);
	n4_msg_init(&m, cmd, ext, id);
	n4_wire_encode(&m, buf);
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
		printf("FAIL writing a message to the server: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

static int tcp_hello(const char *ident, uint8_t ext)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE], id[N4_PAYLOAD_SIZE];

	if (fd < 0 || connect(fd, (struct sockaddr *)&srv, sizeof(srv)) < 0) {
		printf("FAIL connecting to the server: %s\n", strerror(errno));
		exit(1);
	}
	n4_ident_encode(ident, id);
	n4_msg_init(&m, N4_CMD_HELLO, ext, id);
	n4_wire_encode(&m, buf);
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
		printf("FAIL writing HELLO to the server: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

/* One 8-byte message within timeout_ms: 1, 0 on EOF, -1 on timeout. */
static int read_msg(int fd, uint8_t out[N4_MSG_SIZE], int timeout_ms)
{
	size_t have = 0;

	while (have < N4_MSG_SIZE) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, timeout_ms) <= 0)
			return -1;
		ssize_t n = read(fd, out + have, N4_MSG_SIZE - have);
		if (n <= 0)
			return 0;
		have += (size_t)n;
	}
	return 1;
}

int main(int argc, char **argv)
{
	uint8_t buf[N4_MSG_SIZE], id[N4_PAYLOAD_SIZE];
	int tcp[2], udp[2];

	if (argc < 3) {
		printf("FAIL usage: stay_probe PORT IDENT\n");
		return 2;
	}
	srv.sin_family = AF_INET;
	srv.sin_port = htons((uint16_t)atoi(argv[1]));
	srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	n4_ident_encode(argv[2], id);
	for (int i = 0; i < 2; i++) {
		tcp[i] = tcp_hello(argv[2], N4_EXT_TOKEN | N4_EXT_STAY);
		udp[i] = socket(AF_INET, SOCK_DGRAM, 0);
		if (udp[i] < 0) {
			printf("FAIL a UDP socket: %s\n", strerror(errno));
			return 1;
		}
	}
	bool granted = true;
	for (int i = 0; i < 2; i++) {
		struct n4_msg m;
		if (read_msg(tcp[i], buf, 3000) != 1 || n4_wire_decode(buf, 8, N4_CMD_READY, &m)) {
			result(false, "READY");
			return 1;
		}
		granted &= (m.ext & N4_EXT_STAY) != 0;
		n4_msg_init(&m, N4_CMD_EXCHANGE, N4_EXT_TOKEN, m.payload);
		n4_wire_encode(&m, buf);
		for (int k = 0; k < 3; k++)
			if (sendto(udp[i], buf, sizeof(buf), 0, (struct sockaddr *)&srv,
				   sizeof(srv)) != (ssize_t)sizeof(buf))
				printf("FAIL sending EXCHANGE: %s\n", strerror(errno));
	}
	result(granted, "the server grants N4_EXT_STAY to clients that offer it");
	bool peerinfo = true;
	for (int i = 0; i < 2; i++)
		peerinfo &= read_msg(tcp[i], buf, 3000) == 1 && buf[0] == N4_CMD_PEERINFO;
	result(peerinfo, "both get PEERINFO");
	bool kept = true;
	for (int i = 0; i < 2; i++)
		kept &= read_msg(tcp[i], buf, 700) == -1; /* neither data nor EOF */
	result(kept, "both connections are kept after PEERINFO");

	int third = tcp_hello(argv[2], N4_EXT_TOKEN | N4_EXT_STAY);
	bool told = true, closed = true;
	for (int i = 0; i < 2; i++) {
		told &= read_msg(tcp[i], buf, 3000) == 1 && buf[0] == N4_CMD_REPUNCH &&
			memcmp(buf + 2, id, N4_PAYLOAD_SIZE) == 0;
		closed &= read_msg(tcp[i], buf, 3000) == 0;
	}
	result(told, "a HELLO with their identifier: both get one REPUNCH");
	result(closed, "... and are closed after it");
	close(third);

	/* Without the offer: closed after PEERINFO, as always. */
	int plain[2];
	for (int i = 0; i < 2; i++)
		plain[i] = tcp_hello("plain", N4_EXT_TOKEN);
	bool plain_closed = true;
	for (int i = 0; i < 2; i++) {
		struct n4_msg m;
		if (read_msg(plain[i], buf, 3000) != 1 ||
		    n4_wire_decode(buf, 8, N4_CMD_READY, &m)) {
			result(false, "READY for a client that did not offer it");
			return 1;
		}
		plain_closed &= !(m.ext & N4_EXT_STAY);
		n4_msg_init(&m, N4_CMD_EXCHANGE, N4_EXT_TOKEN, m.payload);
		n4_wire_encode(&m, buf);
		if (sendto(udp[i], buf, sizeof(buf), 0, (struct sockaddr *)&srv, sizeof(srv)) !=
		    (ssize_t)sizeof(buf))
			printf("FAIL sending EXCHANGE: %s\n", strerror(errno));
	}
	for (int i = 0; i < 2; i++)
		plain_closed &= read_msg(plain[i], buf, 3000) == 1 && buf[0] == N4_CMD_PEERINFO &&
				read_msg(plain[i], buf, 3000) == 0;
	result(plain_closed, "a client that did not offer it is closed after PEERINFO");

	/* STAY registration: kept, then told by a HELLO with its identifier. */
	uint8_t rid[N4_PAYLOAD_SIZE];
	n4_ident_encode("rst", rid);
	int st = tcp_msg(N4_CMD_STAY, "rst", N4_EXT_STAY);
	result(read_msg(st, buf, 700) == -1, "a STAY registration is kept");
	int h = tcp_hello("rst", N4_EXT_TOKEN);
	result(read_msg(st, buf, 3000) == 1 && buf[0] == N4_CMD_REPUNCH &&
		       memcmp(buf + 2, rid, N4_PAYLOAD_SIZE) == 0 && read_msg(st, buf, 3000) == 0,
	       "... and told (REPUNCH, then closed) by a HELLO with its identifier");
	close(h);
	close(st);
	/* A client already waiting: the registration is told at once. */
	int waiting = tcp_hello("wst", N4_EXT_TOKEN);
	bool told_at_once = false;
	/* Until the server has taken the HELLO (it answers a registration at once then). */
	for (int tries = 0; tries < 20 && !told_at_once; tries++) {
		st = tcp_msg(N4_CMD_STAY, "wst", N4_EXT_STAY);
		told_at_once = read_msg(st, buf, 250) == 1 && buf[0] == N4_CMD_REPUNCH;
		close(st);
	}
	result(told_at_once, "a STAY registration is told at once when its identifier is waiting");
	close(waiting);
	return fails ? 1 : 0;
}

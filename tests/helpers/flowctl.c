/* flowctl.c - FLOW notices (N4_CMD_FLOW) over kept connections, against a server on
 * loopback, for tests/server/test_flow.sh.  Kept connections come from a pairing
 * (HELLO offering N4_EXT_STAY, EXCHANGE, PEERINFO; keyed: the long id and the nonce
 * too) or from a STAY registration (n4_stay_register); FLOWs are sent and read with
 * the library's n4_stay_flow_send and n4_stay_poll_note.
 *   flowctl PORT IDENT
 * Prints one "ok ..." / "FAIL ..." line per verdict (see main); exit 0 when all
 * hold.  IDENT is a prefix (at most 4 characters): each case takes its own. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "key.h"
#include "n4.h"
#include "wire.h"

static struct sockaddr_in srv;
static uint16_t srv_port;
static int fails;

static void result(bool ok, const char *what)
{
	printf("%s %s\n", ok ? "ok" : "FAIL", what);
	fflush(stdout);
	fails += !ok;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int tcp_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&srv, sizeof(srv)) < 0) {
		printf("FAIL connecting to the server: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

static void send_msg(int fd, const struct n4_msg *m)
{
	uint8_t b[N4_MSG_SIZE];

	n4_wire_encode(m, b);
	if (send(fd, b, sizeof(b), MSG_NOSIGNAL) != (ssize_t)sizeof(b))
		printf("# sending a message: %s\n", strerror(errno));
}

/* One 8-byte message within ms: 1, 0 when the connection ended, -1 on timeout. */
static int read_raw(int fd, uint8_t out[N4_MSG_SIZE], int ms)
{
	size_t have = 0;
	uint64_t end = now_ms() + (uint64_t)ms;

	while (have < N4_MSG_SIZE) {
		uint64_t t = now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, t >= end ? 0 : (int)(end - t));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		ssize_t r = recv(fd, out + have, N4_MSG_SIZE - have, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return 0;
		have += (size_t)r;
	}
	return 1;
}

/* The next notice within ms (n4_stay_poll_note): 2 FLOW, 1 REPUNCH, 0 none,
 * < 0 the connection ended. */
static int wait_note(int fd, const char *ident, int ms, struct n4_flow_note *note)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	for (;;) {
		int rc = n4_stay_poll_note(fd, ident, note);
		if (rc != 0)
			return rc;
		uint64_t t = now_ms();
		if (t >= end)
			return 0;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		(void)poll(&p, 1, (int)(end - t));
	}
}

/* Nothing at all within ms (neither data nor the end). */
static bool quiet(int fd, const char *ident, int ms)
{
	struct n4_flow_note n;
	return wait_note(fd, ident, ms, &n) == 0;
}

/* The connection ends within ms (EOF or reset), whatever comes before. */
static bool ends(int fd, int ms)
{
	uint8_t b[N4_MSG_SIZE];
	int rc;

	while ((rc = read_raw(fd, b, ms)) == 1)
		;
	return rc == 0;
}

static int stay_register(const char *ident)
{
	int fd = n4_stay_register("127.0.0.1", srv_port, ident, 3000);
	if (fd < 0) {
		printf("FAIL a STAY registration for '%s': %s\n", ident, strerror(-fd));
		exit(1);
	}
	return fd;
}

/* Two clients paired on wire identifier id (keyed: with long_id, else NULL), both
 * offering N4_EXT_STAY: their connections, kept after PEERINFO, in fd[]. */
static bool pair_kept(const char *id, const uint8_t *long_id, int fd[2])
{
	uint8_t wid[N4_PAYLOAD_SIZE], token[2][N4_TOKEN_SIZE], b[N4_MSG_SIZE];
	uint8_t ext = N4_EXT_TOKEN | N4_EXT_STAY | (long_id ? N4_EXT_KEY : 0);
	int udp[2];
	struct n4_msg m;

	n4_ident_encode(id, wid);
	for (int i = 0; i < 2; i++) {
		fd[i] = tcp_connect();
		n4_msg_init(&m, N4_CMD_HELLO, ext, wid);
		send_msg(fd[i], &m);
	}
	for (int i = 0; i < 2; i++) {
		for (;;) {
			if (read_raw(fd[i], b, 3000) != 1 || n4_wire_decode(b, sizeof(b), 0, &m))
				return false;
			if (m.cmd == N4_CMD_KEYID && long_id) { /* the long id, in three parts */
				for (uint8_t k = 0; k < N4_LONGID_PARTS; k++) {
					struct n4_msg part;
					n4_msg_init(&part, N4_CMD_KEYID, k,
						    long_id + k * N4_PAYLOAD_SIZE);
					send_msg(fd[i], &part);
				}
				continue;
			}
			if (m.cmd != N4_CMD_READY || !(m.ext & N4_EXT_STAY))
				return false;
			memcpy(token[i], m.payload, N4_TOKEN_SIZE);
			break;
		}
		if (long_id) { /* this round's PUNCH nonce: parts 3..5 */
			uint8_t nonce[3 * N4_PAYLOAD_SIZE] = { 0 };
			memset(nonce, 0x40 + i, 16);
			for (uint8_t k = 0; k < 3; k++) {
				struct n4_msg part;
				n4_msg_init(&part, N4_CMD_KEYID, (uint8_t)(3 + k),
					    nonce + k * N4_PAYLOAD_SIZE);
				send_msg(fd[i], &part);
			}
		}
	}
	for (int i = 0; i < 2; i++) {
		udp[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		n4_msg_init(&m, N4_CMD_EXCHANGE, N4_EXT_TOKEN, token[i]);
		n4_wire_encode(&m, b);
		for (int k = 0; k < 3; k++)
			(void)sendto(udp[i], b, sizeof(b), 0, (struct sockaddr *)&srv, sizeof(srv));
	}
	bool ok = true;
	for (int i = 0; i < 2 && ok; i++) {
		for (;;) { /* PLAN, SELF ... then PEERINFO */
			if (read_raw(fd[i], b, 3000) != 1) {
				ok = false;
				break;
			}
			if (b[0] == N4_CMD_PEERINFO)
				break;
		}
	}
	close(udp[0]);
	close(udp[1]);
	return ok;
}

/* What a client sends (n4_stay_flow_send) reaches the others as it was sent. */
static bool flow_reaches(int from, int to, const char *to_ident, uint16_t a, uint16_t b,
			 uint16_t nonce)
{
	struct n4_flow_note n;

	if (n4_stay_flow_send(from, a, b, nonce))
		return false;
	return wait_note(to, to_ident, 2000, &n) == 2 && n.from_port == a && n.to_port == b &&
	       n.nonce == nonce;
}

static void raw_flow(int fd, uint8_t ext, uint16_t a, uint16_t b)
{
	struct n4_flow_note f = { .from_port = a, .to_port = b, .nonce = 7 };
	struct n4_msg m;

	n4_flow_encode(&f, ext, &m); /* as given, port 0 too: the server must refuse it */
	send_msg(fd, &m);
}

int main(int argc, char **argv)
{
	char id[N4_IDENT_MAX + 1], other[N4_IDENT_MAX + 1], tmp[N4_IDENT_MAX + 1];
	uint8_t b[N4_MSG_SIZE];
	int kept[2];

	if (argc < 3 || strlen(argv[2]) > 4) {
		printf("FAIL usage: flowctl PORT IDENT (IDENT: at most 4 characters)\n");
		return 2;
	}
	srv_port = (uint16_t)atoi(argv[1]);
	srv.sin_family = AF_INET;
	srv.sin_port = htons(srv_port);
	srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(id, sizeof(id), "%sp", argv[2]);
	snprintf(other, sizeof(other), "%so", argv[2]);

	/* A pair kept after PEERINFO, a STAY registration of its identifier, and one
	 * of another identifier. */
	if (!pair_kept(id, NULL, kept)) {
		result(false, "a pair offering N4_EXT_STAY is paired and kept");
		return 1;
	}
	result(quiet(kept[0], id, 300) && quiet(kept[1], id, 1),
	       "a pair offering N4_EXT_STAY is paired and kept");
	int reg = stay_register(id), stranger = stay_register(other);
	sleep_ms(100); /* the registrations are in before the FLOW */

	/* The exact bytes: the client's message, reserved byte 0x01. */
	struct n4_flow_note f = { .from_port = 40000, .to_port = 5004, .nonce = 0xbeef };
	struct n4_msg m;
	uint8_t sent[N4_MSG_SIZE];
	n4_flow_encode(&f, 0, &m);
	n4_wire_encode(&m, sent);
	bool exact = n4_stay_flow_send(kept[0], 40000, 5004, 0xbeef) == 0 &&
		     read_raw(kept[1], b, 2000) == 1 && b[0] == N4_CMD_FLOW && b[1] == 0x01 &&
		     memcmp(b + 2, sent + 2, N4_PAYLOAD_SIZE) == 0;
	result(exact, "a FLOW reaches the peer's kept connection: 16 01 and the sender's payload");
	result(wait_note(reg, id, 2000, &f) == 2 && f.from_port == 40000 && f.to_port == 5004 &&
		       f.nonce == 0xbeef,
	       "... and every other kept connection of the identifier (a STAY registration)");
	result(quiet(kept[0], id, 300), "... never its sender");
	result(quiet(stranger, other, 1), "... nor a kept connection of another identifier");
	result(flow_reaches(kept[1], kept[0], id, 5004, 40000, 0x0102) &&
		       flow_reaches(kept[1], reg, id, 5004, 40000, 0x0102),
	       "the connections stay open: the peer's FLOW comes back the other way");

	/* Rate: 100 at once, at most a burst of 20 passed on. */
	uint8_t burst[100 * N4_MSG_SIZE];
	for (int i = 0; i < 100; i++) {
		struct n4_flow_note bf = { .from_port = 41000,
					   .to_port = (uint16_t)(6000 + i),
					   .nonce = (uint16_t)i };
		n4_flow_encode(&bf, 0, &m);
		n4_wire_encode(&m, burst + i * N4_MSG_SIZE);
	}
	while (wait_note(kept[0], id, 100, &f) == 2) /* the second one's copy */
		;
	sleep_ms(2100); /* kept[1]'s bucket is full again */
	uint64_t t0 = now_ms();
	bool burst_sent = send(kept[1], burst, sizeof(burst), MSG_NOSIGNAL) == sizeof(burst);
	int got = 0;
	while (wait_note(kept[0], id, 400, &f) == 2)
		got++;
	uint64_t took = now_ms() - t0;
	/* 20 at once, 10 a second after them: more only if the server took long. */
	int most = 20 + (int)(took / 100);
	char what[160];
	snprintf(what, sizeof(what),
		 "100 FLOWs at once: %d passed on within %llu ms (a burst of 20, then 10/s)", got,
		 (unsigned long long)took);
	result(burst_sent && got >= 18 && got <= most, what);
	while (wait_note(reg, id, 100, &f) == 2) /* its copies */
		;
	sleep_ms(1100);
	result(flow_reaches(kept[1], kept[0], id, 41000, 7000, 1),
	       "... and after a second without FLOWs the next one is passed on");
	while (wait_note(reg, id, 100, &f) == 2)
		;

	/* Nobody else kept for the identifier: dropped, the sender kept. */
	snprintf(tmp, sizeof(tmp), "%sa", argv[2]);
	int alone = stay_register(tmp);
	sleep_ms(100);
	result(n4_stay_flow_send(alone, 1000, 2000, 3) == 0 && quiet(alone, tmp, 300) &&
		       quiet(stranger, other, 1) && quiet(kept[0], id, 1),
	       "a FLOW with no other kept connection is dropped; its sender is kept");

	/* Malformed on a kept connection: closed.  Not a kept connection: closed. */
	int bad = stay_register(tmp);
	raw_flow(bad, 0, 0, 2000);
	result(ends(bad, 2000), "a FLOW with port 0 closes the kept connection");
	close(bad);
	bad = stay_register(tmp);
	raw_flow(bad, N4_FLOW_FORWARDED, 1000, 2000);
	result(ends(bad, 2000), "a FLOW with reserved byte 0x01 (the server's) closes it");
	close(bad);
	bad = stay_register(tmp);
	uint8_t wtmp[N4_PAYLOAD_SIZE];
	n4_ident_encode(tmp, wtmp);
	n4_msg_init(&m, N4_CMD_HELLO, N4_EXT_TOKEN, wtmp);
	send_msg(bad, &m);
	result(ends(bad, 2000), "another message (HELLO) on a kept connection closes it");
	close(bad);
	result(quiet(alone, tmp, 200), "... and the identifier's other kept connection stays");
	/* What PEERINFO does not wait for (a keyed client's nonce, a late LOCAL) may
	 * still come after it: read and ignored. */
	bad = stay_register(tmp);
	n4_msg_init(&m, N4_CMD_KEYID, 3, NULL);
	send_msg(bad, &m);
	n4_msg_init(&m, N4_CMD_LOCAL, N4_LOCAL_LAST, NULL);
	send_msg(bad, &m);
	result(quiet(bad, tmp, 300) && flow_reaches(bad, alone, tmp, 1000, 2001, 4),
	       "a late KEYID or LOCAL on a kept connection is ignored; it keeps working");
	close(bad);
	int first = tcp_connect();
	raw_flow(first, 0, 1000, 2000);
	result(ends(first, 2000), "a FLOW as a connection's first message closes it");
	close(first);
	snprintf(tmp, sizeof(tmp), "%sw", argv[2]);
	int waiting = tcp_connect();
	n4_ident_encode(tmp, wtmp);
	n4_msg_init(&m, N4_CMD_HELLO, N4_EXT_TOKEN | N4_EXT_STAY, wtmp);
	send_msg(waiting, &m);
	sleep_ms(100);
	raw_flow(waiting, 0, 1000, 2000);
	result(ends(waiting, 2000), "a FLOW from a client waiting for its partner closes it");
	close(waiting);

	/* Keyed: the identifier is the key's derived id; a plain client of the same
	 * text identifier is told nothing. */
	uint8_t key[N4_KEY_SIZE];
	struct n4_keyed kd;
	for (int i = 0; i < N4_KEY_SIZE; i++)
		key[i] = (uint8_t)(i * 7 + 1);
	snprintf(tmp, sizeof(tmp), "%sk", argv[2]);
	int keyed[2];
	if (n4_key_derive(key, tmp, &kd) || !pair_kept(kd.short_id, kd.long_id, keyed)) {
		result(false, "a keyed pair offering N4_EXT_STAY is paired and kept");
		return 1;
	}
	int plain = stay_register(tmp);
	sleep_ms(100);
	result(flow_reaches(keyed[0], keyed[1], kd.short_id, 50000, 50001, 0x4b) &&
		       quiet(plain, tmp, 300) && quiet(keyed[0], kd.short_id, 1),
	       "keyed: a FLOW reaches the keyed peer, not a plain client of the same identifier");
	result(n4_stay_flow_send(plain, 1, 2, 3) == 0 && quiet(keyed[0], kd.short_id, 300) &&
		       quiet(keyed[1], kd.short_id, 1),
	       "keyed: the plain client's FLOW reaches neither keyed side");

	/* REPUNCH as before: a HELLO with the identifier, one REPUNCH, then closed. */
	int hello = tcp_connect();
	n4_ident_encode(id, wtmp);
	n4_msg_init(&m, N4_CMD_HELLO, N4_EXT_TOKEN, wtmp);
	send_msg(hello, &m);
	result(wait_note(kept[0], id, 2000, &f) == 1 && ends(kept[0], 2000),
	       "after FLOWs a HELLO with the identifier still means one REPUNCH, then closed");
	close(hello);
	return fails ? 1 : 0;
}

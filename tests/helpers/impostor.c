/* impostor.c - a client that presents a keyed pairing's identifiers without the
 * key, as the server's operator (who sees them) could: HELLO with the short id
 * and, when our server asks, the long id; then it punches the client it is
 * paired with using plain PUNCHes and APUNCHes with made-up MACs, for a while,
 * from its EXCHANGE socket, and records every datagram it receives.
 *
 * usage: impostor HOST PORT SHORT_ID LONG_ID_HEX SECONDS OUTFILE [relay|leave]
 * With "relay" it also offers the relay (N4_EXT_RELAY); when the server relays the
 * pair it registers at its relay port and sends all of the above through it
 * ("impostor: relayed via port N").  With "leave" it closes its connection as soon
 * as it is paired (READY) and prints "impostor: left after READY".
 * A pairing the server calls off (AGAIN) prints "impostor: rendezvous failed".
 * Prints "impostor: paired with IP:PORT", then
 * "impostor: received N datagrams (A APUNCH, P PUNCH, O other), WIN-worthy 0"
 * and writes the received bytes to OUTFILE (so a test can look for a payload). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "key.h"
#include "loop.h"
#include "relay_reg.h"
#include "rendezvous.h"
#include "wire.h"

static int unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t ident[N4_PAYLOAD_SIZE], long_id[N4_LONGID_SIZE];
	struct sockaddr_in srv = { .sin_family = AF_INET };

	bool relay = argc == 8 && strcmp(argv[7], "relay") == 0;
	bool leave = argc == 8 && strcmp(argv[7], "leave") == 0;

	if ((argc != 7 && !relay && !leave) || inet_pton(AF_INET, argv[1], &srv.sin_addr) != 1 ||
	    n4_ident_encode(argv[3], ident) || unhex(argv[4], long_id, sizeof(long_id))) {
		fprintf(stderr, "usage: impostor HOST PORT SHORT_ID LONG_ID_HEX SECONDS OUTFILE "
				"[relay|leave]\n");
		return 2;
	}
	srv.sin_port = htons((uint16_t)atoi(argv[2]));
	unsigned secs = (unsigned)atoi(argv[5]);
	FILE *out = fopen(argv[6], "wb");
	int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in any = { .sin_family = AF_INET };
	if (!out || udp < 0 || bind(udp, (struct sockaddr *)&any, sizeof(any))) {
		perror("impostor");
		return 1;
	}
	struct n4_rv rv;
	uint64_t deadline = n4_now_ms() + secs * 1000ull;
	n4_rv_init(&rv, &srv, ident,
		   (uint8_t)(N4_EXT_TOKEN | N4_EXT_KEY | (relay ? N4_EXT_RELAY : 0)));
	rv.long_id = long_id;
	/* Claim lost rounds: the server relays such a pair at once. */
	rv.lost_rounds = relay ? 255 : 0;
	int err = n4_rv_hello(&rv, deadline, NULL);
	if (!err)
		err = n4_rv_ready(&rv, deadline, NULL);
	if (!err && leave) {
		n4_rv_close(&rv);
		printf("impostor: left after READY\n");
		return 0;
	}
	if (!err)
		err = n4_rv_exchange(&rv, udp, deadline, NULL);
	n4_rv_close(&rv);
	if (err) {
		fprintf(stderr, "impostor: rendezvous failed: %s\n", strerror(-err));
		return 1;
	}
	char b[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &rv.peer.sin_addr, b, sizeof(b));
	printf("impostor: paired with %s:%u\n", b, ntohs(rv.peer.sin_port));
	uint8_t reg[N4_RELAY_REG_SIZE];
	struct sockaddr_in relay_to = srv;
	if (rv.relay_port) {
		struct n4_relay_reg r = { .flags = 0 };
		memcpy(r.token, rv.relay_token, N4_RELAY_TOKEN_SIZE);
		n4_relay_reg_encode(&r, reg);
		relay_to.sin_port = htons(rv.relay_port);
		printf("impostor: relayed via port %u\n", rv.relay_port);
	}
	fflush(stdout);

	unsigned total = 0, apunch = 0, punch = 0, other = 0;
	uint64_t next = 0, end = n4_now_ms() + secs * 1000ull;
	while (n4_now_ms() < end) {
		if (n4_now_ms() >= next) {
			/* A plain PUNCH and an APUNCH with a random MAC and nonces, to
			 * the peer's port and the next few (offsets a client may use). */
			uint8_t plain[N4_MSG_SIZE], forged[N4_APUNCH_SIZE];
			n4_punch_bytes(ident, 0, plain);
			if (getrandom(forged, sizeof(forged), 0) != (ssize_t)sizeof(forged))
				return 1;
			forged[0] = N4_CMD_APUNCH;
			forged[1] = 0;
			memcpy(forged + 2, ident, N4_PAYLOAD_SIZE);
			if (rv.relay_port) {
				sendto(udp, reg, sizeof(reg), 0, (struct sockaddr *)&relay_to,
				       sizeof(relay_to));
				sendto(udp, plain, sizeof(plain), 0, (struct sockaddr *)&relay_to,
				       sizeof(relay_to));
				sendto(udp, forged, sizeof(forged), 0, (struct sockaddr *)&relay_to,
				       sizeof(relay_to));
			}
			for (int d = 0; d <= 20 && !rv.relay_port; d++) {
				struct sockaddr_in to = rv.peer;
				to.sin_port = htons((uint16_t)(ntohs(rv.peer.sin_port) + d));
				sendto(udp, plain, sizeof(plain), 0, (struct sockaddr *)&to,
				       sizeof(to));
				sendto(udp, forged, sizeof(forged), 0, (struct sockaddr *)&to,
				       sizeof(to));
			}
			next = n4_now_ms() + 100;
		}
		struct pollfd p = { .fd = udp, .events = POLLIN };
		if (poll(&p, 1, 20) <= 0)
			continue;
		uint8_t buf[2048];
		ssize_t n = recv(udp, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			continue;
		total++;
		if (n == N4_APUNCH_SIZE && buf[0] == N4_CMD_APUNCH)
			apunch++;
		else if (n == N4_MSG_SIZE && buf[0] == N4_CMD_PUNCH)
			punch++;
		else
			other++;
		fwrite(buf, 1, (size_t)n, out);
	}
	fclose(out);
	printf("impostor: received %u datagrams (%u APUNCH, %u PUNCH, %u other)\n", total, apunch,
	       punch, other);
	return 0;
}

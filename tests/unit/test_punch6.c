/* test_punch6.c - what wins over IPv6 (lib/punch6.c): only an ACK of the peer's,
 * the proof that our PUNCHes reach it.  Hearing a plain PUNCH (or, keyed, an APUNCH
 * that echoes our nonce, which the peer knows from the server) is answered with an
 * ACK and wins nothing; after no_ack the answer commits to nothing.  Two UDP sockets
 * on ::1; without IPv6 loopback the tests pass vacuously. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "punch6.h"
#include "test.h"
#include "wire.h"

static const uint8_t IDENT[N4_PAYLOAD_SIZE] = { 'v', '6', 't', 'e', 's', 't' };

/* A socket on ::1 and its address; -1 without IPv6 loopback. */
static int loopback6(struct sockaddr_in6 *a)
{
	socklen_t len = sizeof(*a);
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	*a = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	if (bind(fd, (struct sockaddr *)a, sizeof(*a)) ||
	    getsockname(fd, (struct sockaddr *)a, &len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The flags byte of the last datagram waiting on fd (loopback delivers at once);
 * -1 when none. */
static int last_flags(int fd)
{
	uint8_t buf[128];
	int flags = -1;

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 2)
		flags = buf[1];
	return flags;
}

static void send_to(int fd, const struct sockaddr_in6 *to, const uint8_t *buf, size_t len)
{
	(void)sendto(fd, buf, len, 0, (const struct sockaddr *)to, sizeof(*to));
}

TEST(punch6_plain_punch_is_answered_with_ack_and_wins_nothing)
{
	struct sockaddr_in6 a, b;
	int fa = loopback6(&a), fb = loopback6(&b);
	uint8_t msg[N4_MSG_SIZE];

	if (fa < 0 || fb < 0)
		goto out;
	struct n4_punch6 p = { .fd = fa, .peer = b };
	memcpy(p.ident, IDENT, sizeof(IDENT));
	n4_punch6_start(&p);
	CHECK_EQ(last_flags(fb), 0);

	/* the peer's PUNCH arrives: our answer says we hear it; no WIN */
	n4_punch_bytes(IDENT, 0, msg);
	send_to(fb, &a, msg, sizeof(msg));
	CHECK_EQ(n4_punch6_read(&p), 0);
	CHECK(!p.won);
	CHECK(p.acked_ms != 0);
	CHECK_EQ(last_flags(fb), N4_PUNCH_ACK);

	/* its ACK: ours reached it; WIN, answered with an ACK */
	n4_punch_bytes(IDENT, N4_PUNCH_ACK, msg);
	send_to(fb, &a, msg, sizeof(msg));
	CHECK_EQ(n4_punch6_read(&p), 1);
	CHECK(p.won);
	CHECK_EQ(last_flags(fb), N4_PUNCH_ACK);
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
}

TEST(punch6_no_ack_answers_without_committing)
{
	struct sockaddr_in6 a, b;
	int fa = loopback6(&a), fb = loopback6(&b);
	uint8_t msg[N4_MSG_SIZE];

	if (fa < 0 || fb < 0)
		goto out;
	struct n4_punch6 p = { .fd = fa, .peer = b };
	memcpy(p.ident, IDENT, sizeof(IDENT));
	n4_punch6_start(&p);
	(void)last_flags(fb);
	p.no_ack = true; /* the window is over: we may take IPv4 */
	n4_punch_bytes(IDENT, 0, msg);
	send_to(fb, &a, msg, sizeof(msg));
	CHECK_EQ(n4_punch6_read(&p), 0);
	CHECK_EQ(p.acked_ms, 0);
	CHECK_EQ(last_flags(fb), 0);
	/* an ACK still wins: the peer heard us, and we take IPv6 */
	n4_punch_bytes(IDENT, N4_PUNCH_ACK, msg);
	send_to(fb, &a, msg, sizeof(msg));
	CHECK_EQ(n4_punch6_read(&p), 1);
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
}

/* Two sides of one keyed round, each knowing the other's nonce from the server. */
static void keyed_pair(struct n4_auth *ours, struct n4_auth *theirs)
{
	memset(ours, 0, sizeof(*ours));
	memset(ours->mac_key, 0x42, sizeof(ours->mac_key));
	memcpy(ours->ident, IDENT, sizeof(IDENT));
	memset(ours->nonce, 0x11, sizeof(ours->nonce));
	*theirs = *ours;
	memset(theirs->nonce, 0x22, sizeof(theirs->nonce));
	memcpy(ours->peer_nonce, theirs->nonce, sizeof(ours->peer_nonce));
	memcpy(theirs->peer_nonce, ours->nonce, sizeof(theirs->peer_nonce));
}

TEST(punch6_keyed_echo_alone_wins_nothing)
{
	struct sockaddr_in6 a, b;
	int fa = loopback6(&a), fb = loopback6(&b);
	struct n4_auth ours, theirs;
	uint8_t msg[N4_APUNCH_SIZE];

	if (fa < 0 || fb < 0)
		goto out;
	keyed_pair(&ours, &theirs);
	ours.peer_acked = true; /* an ACK over IPv4 says nothing of IPv6 */
	struct n4_punch6 p = { .fd = fa, .peer = b, .auth = &ours };
	memcpy(p.ident, IDENT, sizeof(IDENT));
	n4_punch6_start(&p);
	(void)last_flags(fb);

	/* authentic, echoes our nonce (known from the server): answered with ACK */
	n4_auth_encode(&theirs, 0, msg);
	send_to(fb, &a, msg, sizeof(msg));
	CHECK_EQ(n4_punch6_read(&p), 0);
	CHECK(!p.won);
	CHECK_EQ(last_flags(fb), N4_PUNCH_ACK);

	/* with ACK: it heard one of ours */
	n4_auth_encode(&theirs, N4_PUNCH_ACK, msg);
	send_to(fb, &a, msg, sizeof(msg));
	CHECK_EQ(n4_punch6_read(&p), 1);
	CHECK(p.won);
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
}

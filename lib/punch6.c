/* punch6.c - the direct IPv6 path: PUNCHes between two candidates, and the
 * confirmation after an IPv6 WIN (punch6.h). */
#include "punch6.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "loop.h"
#include "resend.h"

/* As the sweep's resends: dense while both firewalls open, then every 250 ms. */
static uint64_t resend_at_ms(unsigned k)
{
	static const unsigned early[] = { 20, 40, 80, 160, 320 };

	if (k < sizeof(early) / sizeof(early[0]))
		return early[k];
	return 320 + 250ull * (k - 4);
}

static const char *v6_str(const struct sockaddr_in6 *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (!inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "?");
	snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6_port));
	return buf;
}

void n4_punch6_send(struct n4_punch6 *p, uint8_t flags)
{
	uint8_t buf[N4_APUNCH_SIZE];
	size_t len;

	if (p->auth) {
		n4_auth_encode(p->auth, flags, buf);
		len = N4_APUNCH_SIZE;
	} else {
		n4_punch_bytes(p->ident, flags, buf);
		len = N4_MSG_SIZE;
	}
	if (sendto(p->fd, buf, len, 0, (const struct sockaddr *)&p->peer, sizeof(p->peer)) ==
	    (ssize_t)len) {
		p->sent++;
		if (flags & N4_PUNCH_ACK)
			p->acked_ms = n4_now_ms();
		return;
	}
	/* No route, no address: nothing will ever leave, so IPv4 need not wait. */
	if (errno == ENETUNREACH || errno == EHOSTUNREACH || errno == EADDRNOTAVAIL ||
	    errno == EAFNOSUPPORT || errno == EINVAL) {
		if (!p->dead)
			n4_info(" IPv6 path unusable here: %s ", strerror(errno));
		p->dead = true;
	} else {
		n4_debug("IPv6 PUNCH: %s", strerror(errno));
	}
}

uint64_t n4_punch6_start(struct n4_punch6 *p)
{
	char b[64];

	p->start_ms = n4_now_ms();
	p->won = p->got_ack = p->heard = p->dead = p->no_ack = false;
	p->sent = 0;
	p->acked_ms = 0;
	n4_info(" <= Punch (IPv6 %s) ", v6_str(&p->peer, b, sizeof(b)));
	n4_punch6_send(p, 0);
	p->next_ms = p->start_ms + resend_at_ms(0);
	p->passes = 1;
	return p->dead ? UINT64_MAX : p->next_ms;
}

uint64_t n4_punch6_due(struct n4_punch6 *p)
{
	if (p->dead || p->won)
		return UINT64_MAX;
	if (n4_now_ms() >= p->next_ms) {
		n4_punch6_send(p, 0);
		p->next_ms = p->start_ms + resend_at_ms(p->passes++);
	}
	return p->dead ? UINT64_MAX : p->next_ms;
}

static bool from_peer(const struct n4_punch6 *p, const struct sockaddr_in6 *from)
{
	return p->any_ip ||
	       memcmp(&from->sin6_addr, &p->peer.sin6_addr, sizeof(from->sin6_addr)) == 0;
}

/* The answer to a PUNCH of the peer's that did not win: an ACK unless we may take
 * IPv4 now (no_ack), or the PUNCH may be an old round's. */
static void answer(struct n4_punch6 *p, bool may_ack)
{
	n4_punch6_send(p, may_ack && !p->no_ack ? N4_PUNCH_ACK : 0);
}

/* Hearing the peer proves nothing about our way to it: a firewall that drops all
 * inbound IPv6 at its site still lets its PUNCHes out, and a keyed peer knows our
 * nonce from the server.  So a PUNCH of the peer is answered at once with an ACK
 * ("I hear you over IPv6"), and only an ACK wins: the peer heard one of ours.  While
 * no_ack, the answer is a plain PUNCH, which commits us to nothing (punch6.h). */
static int take(struct n4_punch6 *p, const uint8_t *buf, size_t len,
		const struct sockaddr_in6 *from)
{
	char b[64];
	struct sockaddr_in6 was = p->peer;
	bool ack;

	p->heard = true;
	p->peer = *from; /* answers go where the peer's socket is */
	if (p->auth) {
		enum n4_auth_verdict v = n4_auth_check(p->auth, buf, len);
		if (v == N4_AUTH_BAD && p->auth->failures++ == 0)
			n4_warn("IPv6 PUNCH from %s failed authentication (no key, or another key)",
				v6_str(from, b, sizeof(b)));
		if (v <= N4_AUTH_OTHER) {
			p->peer = was;
			return 0;
		}
		/* The flag of this APUNCH, under its MAC, not auth->peer_acked: that
		 * one an ACK over IPv4 sets too.  One that does not echo our nonce
		 * (N4_AUTH_NONCE) may be an old round's: answered, never acknowledged. */
		ack = v == N4_AUTH_WIN && (buf[1] & N4_PUNCH_ACK);
		if (!ack) {
			answer(p, v == N4_AUTH_WIN);
			return 0;
		}
	} else {
		if (len != N4_MSG_SIZE || buf[0] != N4_CMD_PUNCH ||
		    memcmp(buf + 2, p->ident, N4_PAYLOAD_SIZE) != 0) {
			p->peer = was;
			return 0;
		}
		ack = buf[1] & N4_PUNCH_ACK;
		if (!ack) {
			/* Only our clients exchange candidates: the peer reads an ACK. */
			answer(p, true);
			return 0;
		}
	}
	/* Ours reached the peer and its reach us: answered, the peer wins too. */
	n4_punch6_send(p, N4_PUNCH_ACK);
	/* Not got_ack: the peer's answer to our PUNCH is an ACK as well, before it
	 * has won; n4_confirm6 resends ours until the peer acknowledges again. */
	p->got_ack = false;
	p->from = *from;
	p->won = true;
	return 1;
}

int n4_punch6_read(struct n4_punch6 *p)
{
	for (;;) {
		uint8_t buf[128];
		struct sockaddr_in6 from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(p->fd, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &flen);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED || errno == EHOSTUNREACH ||
			    errno == ENETUNREACH)
				continue; /* ICMPv6 errors from our own PUNCHes */
			return 0;
		}
		if (flen < sizeof(from) || from.sin6_family != AF_INET6 || !from_peer(p, &from))
			continue;
		if (take(p, buf, (size_t)n, &from))
			return 1;
	}
}

/* The state n4_confirm6's resend loop works on. */
struct confirm6 {
	int fd;
	const struct sockaddr_in6 *peer;
	const uint8_t *ident;
	struct n4_auth *auth;
	bool acked;
};

static int confirm6_send(void *arg)
{
	struct confirm6 *k = arg;
	uint8_t buf[N4_APUNCH_SIZE];
	size_t len = N4_MSG_SIZE;

	if (k->auth) {
		n4_auth_encode(k->auth, N4_PUNCH_ACK, buf);
		len = N4_APUNCH_SIZE;
	} else {
		n4_punch_bytes(k->ident, N4_PUNCH_ACK, buf);
	}
	(void)sendto(k->fd, buf, len, 0, (const struct sockaddr *)k->peer, sizeof(*k->peer));
	return k->acked; /* one acknowledgement answers the peer's */
}

static int confirm6_readable(void *arg, uint64_t *next_send)
{
	struct confirm6 *k = arg;
	uint8_t buf[128];

	for (;;) {
		struct sockaddr_in6 from;
		socklen_t flen = sizeof(from);
		ssize_t r = recvfrom(k->fd, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &flen);
		if (r < 0) {
			if (errno == EINTR || errno == ECONNREFUSED || errno == EHOSTUNREACH)
				continue;
			return 0;
		}
		if (flen < sizeof(from) || k->acked ||
		    memcmp(&from.sin6_addr, &k->peer->sin6_addr, sizeof(from.sin6_addr)) != 0)
			continue;
		/* keyed: this APUNCH's flag, not auth->peer_acked (set since the WIN) */
		bool ack = k->auth ? n4_auth_check(k->auth, buf, (size_t)r) == N4_AUTH_WIN &&
					     (buf[1] & N4_PUNCH_ACK)
				   : r == N4_MSG_SIZE && buf[0] == N4_CMD_PUNCH &&
					     (buf[1] & N4_PUNCH_ACK) &&
					     memcmp(buf + 2, k->ident, N4_PAYLOAD_SIZE) == 0;
		if (ack) {
			k->acked = true;
			*next_send = 0; /* answer it at once */
		}
	}
}

int n4_confirm6(int fd, const struct sockaddr_in6 *peer, const uint8_t ident[N4_PAYLOAD_SIZE],
		struct n4_auth *auth, bool already_acked, unsigned confirm_ms,
		const struct n4_waitctx *ctx)
{
	struct confirm6 k = {
		.fd = fd, .peer = peer, .ident = ident, .auth = auth, .acked = already_acked
	};
	struct n4_resend r = { .fd = fd,
			       .interval_ms = 100,
			       .deadline_ms = n4_now_ms() + confirm_ms,
			       .send_at_deadline = true,
			       .ctx = ctx,
			       .send = confirm6_send,
			       .readable = confirm6_readable,
			       .arg = &k };
	int rc = n4_resend_until(&r);

	return rc < 0 ? rc : k.acked ? 1 : 0;
}

/* side.c - the SIDE datagram (layout in side.h), this host's side, and the
 * exchange of sides over a won path.  The decoder reads untrusted bytes: fuzzed
 * by tests/fuzz/fuzz_side.c. */
#include "side.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>

#include "blake2s.h"
#include "log.h"
#include "loop.h"
#include "resend.h"

#define ID_OFF 8
#define PORT_OFF 16
#define NADDRS_OFF 18

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* An address another host of the LAN could send to: not 0/8, not loopback, not
 * multicast, reserved or broadcast (224/3). */
static bool usable(struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);

	return (h >> 24) != 0 && (h >> 24) != 127 && (h >> 29) != 7;
}

static bool side_ok(const struct n4_side *s)
{
	return s->naddrs <= N4_SIDE_MAX_ADDRS && s->port != 0 && !all_zero(s->id, N4_SIDE_ID_SIZE);
}

int n4_side_local_addrs(struct n4_side *s)
{
	struct ifaddrs *ifs;

	if (getifaddrs(&ifs))
		return -errno;
	s->naddrs = 0;
	for (struct ifaddrs *i = ifs; i && s->naddrs < N4_SIDE_MAX_ADDRS; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		struct in_addr a =
			((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr;
		/* Link-local addresses mean nothing to the peer's signalling. */
		if ((ntohl(a.s_addr) >> 16) == 0xa9fe || !usable(a))
			continue;
		bool seen = false;
		for (unsigned k = 0; k < s->naddrs; k++)
			seen |= s->addrs[k].s_addr == a.s_addr;
		if (!seen)
			s->addrs[s->naddrs++] = a;
	}
	freeifaddrs(ifs);
	return 0;
}

void n4_side_keys_derive(const struct n4_auth *a, struct n4_side_keys *k)
{
	static const char label[] = "n4 side mac key"; /* with its NUL */
	struct n4_blake2s s;

	/* Cannot fail: the lengths are constants within range. */
	(void)n4_blake2s_init(&s, sizeof(k->tx), a->mac_key, sizeof(a->mac_key));
	n4_blake2s_update(&s, label, sizeof(label));
	n4_blake2s_update(&s, a->nonce, N4_NONCE_SIZE);
	n4_blake2s_update(&s, a->peer_nonce, N4_NONCE_SIZE);
	n4_blake2s_final(&s, k->tx);
	(void)n4_blake2s_init(&s, sizeof(k->rx), a->mac_key, sizeof(a->mac_key));
	n4_blake2s_update(&s, label, sizeof(label));
	n4_blake2s_update(&s, a->peer_nonce, N4_NONCE_SIZE);
	n4_blake2s_update(&s, a->nonce, N4_NONCE_SIZE);
	n4_blake2s_final(&s, k->rx);
}

int n4_side_encode(uint8_t flags, const uint8_t ident[N4_PAYLOAD_SIZE], const struct n4_side *s,
		   const uint8_t *tx_key, uint8_t out[N4_SIDE_MAX_SIZE])
{
	if (!side_ok(s))
		return -EINVAL;
	out[0] = N4_CMD_SIDE;
	out[1] = flags;
	memcpy(out + 2, ident, N4_PAYLOAD_SIZE);
	memcpy(out + ID_OFF, s->id, N4_SIDE_ID_SIZE);
	out[PORT_OFF] = (uint8_t)(s->port >> 8);
	out[PORT_OFF + 1] = (uint8_t)s->port;
	out[NADDRS_OFF] = (uint8_t)s->naddrs;
	size_t len = N4_SIDE_HEAD_SIZE;
	for (unsigned i = 0; i < s->naddrs; i++, len += 4)
		memcpy(out + len, &s->addrs[i].s_addr, 4);
	if (tx_key) {
		(void)n4_blake2s(out + len, N4_MAC_SIZE, tx_key, N4_KEY_SIZE, out, len);
		len += N4_MAC_SIZE;
	}
	return (int)len;
}

int n4_side_decode(const void *buf, size_t len, struct n4_side_msg *m)
{
	const uint8_t *b = buf;

	if (len < N4_SIDE_MIN_SIZE || len > N4_SIDE_MAX_SIZE)
		return -EMSGSIZE;
	if (b[0] != N4_CMD_SIDE || (b[1] & (uint8_t)~N4_SIDE_HAVE))
		return -EPROTO;
	unsigned n = b[NADDRS_OFF];
	if (n > N4_SIDE_MAX_ADDRS)
		return -EPROTO;
	size_t body = N4_SIDE_HEAD_SIZE + 4 * (size_t)n;
	if (len != body && len != body + N4_MAC_SIZE)
		return -EMSGSIZE;
	memset(m, 0, sizeof(*m));
	m->flags = b[1];
	memcpy(m->ident, b + 2, N4_PAYLOAD_SIZE);
	memcpy(m->side.id, b + ID_OFF, N4_SIDE_ID_SIZE);
	m->side.port = (uint16_t)(b[PORT_OFF] << 8 | b[PORT_OFF + 1]);
	m->side.naddrs = n;
	for (unsigned i = 0; i < n; i++) {
		memcpy(&m->side.addrs[i].s_addr, b + N4_SIDE_HEAD_SIZE + 4 * i, 4);
		if (!usable(m->side.addrs[i]))
			return -EPROTO;
	}
	if (!side_ok(&m->side))
		return -EPROTO;
	m->has_mac = len != body;
	return 0;
}

bool n4_side_check(const void *buf, size_t len, const uint8_t ident[N4_PAYLOAD_SIZE],
		   const uint8_t *rx_key, struct n4_side_msg *m, bool *bad)
{
	const uint8_t *b = buf;

	*bad = false;
	if (len < N4_SIDE_MIN_SIZE || b[0] != N4_CMD_SIDE ||
	    memcmp(b + 2, ident, N4_PAYLOAD_SIZE) != 0)
		return false; /* not a SIDE of this path at all */
	if (n4_side_decode(buf, len, m) || m->has_mac != (rx_key != NULL)) {
		*bad = true;
		return false;
	}
	if (!rx_key)
		return true;
	uint8_t want[N4_MAC_SIZE];
	size_t body = len - N4_MAC_SIZE;
	(void)n4_blake2s(want, sizeof(want), rx_key, N4_KEY_SIZE, b, body);
	bool ok = n4_ct_equal(want, b + body, N4_MAC_SIZE);
	n4_wipe(want, sizeof(want));
	*bad = !ok;
	return ok;
}

bool n4_is_side(const void *buf, size_t len, const char *ident)
{
	uint8_t id[N4_PAYLOAD_SIZE];
	struct n4_side_msg m;

	if (n4_ident_encode(ident, id) || n4_side_decode(buf, len, &m))
		return false;
	return memcmp(m.ident, id, N4_PAYLOAD_SIZE) == 0;
}

/* The state of one exchange, for the resend loop (resend.h). */
struct side_run {
	int fd;
	const struct sockaddr *peer_addr; /* AF_INET, or AF_INET6 (a direct IPv6 path) */
	socklen_t peer_len;
	const uint8_t *ident;
	const uint8_t *tx, *rx; /* NULL without a key */
	const struct n4_side *mine;
	struct n4_side *peer;
	bool have_peer, peer_has_ours, done;
	unsigned sent, bad;
};

static int side_send(void *arg)
{
	struct side_run *x = arg;
	uint8_t out[N4_SIDE_MAX_SIZE];
	int len = n4_side_encode(x->have_peer ? N4_SIDE_HAVE : 0, x->ident, x->mine, x->tx, out);

	if (len < 0)
		return len;
	if (sendto(x->fd, out, (size_t)len, 0, x->peer_addr, x->peer_len) < 0 && errno != EAGAIN &&
	    errno != EWOULDBLOCK && errno != EINTR && errno != ECONNREFUSED &&
	    errno != EHOSTUNREACH && errno != ENETUNREACH && errno != ENOBUFS)
		return -errno;
	x->sent++;
	/* Both have both: this copy tells the peer so, and was the last. */
	return x->done;
}

/* Ours, whatever its state: a SIDE, a late PUNCH or APUNCH of this path, or
 * (relayed) a late registration ack.  A program would never want these. */
static bool ours(const uint8_t *b, size_t len, const uint8_t *ident)
{
	if (len >= N4_SIDE_MIN_SIZE && len <= N4_SIDE_MAX_SIZE && b[0] == N4_CMD_SIDE)
		return memcmp(b + 2, ident, N4_PAYLOAD_SIZE) == 0;
	if ((len == N4_MSG_SIZE && b[0] == N4_CMD_PUNCH) ||
	    (len == N4_APUNCH_SIZE && b[0] == N4_CMD_APUNCH))
		return memcmp(b + 2, ident, N4_PAYLOAD_SIZE) == 0;
	return len == 2 + N4_RELAY_TOKEN_SIZE && b[0] == N4_CMD_RELAY_REG;
}

static void take_side(struct side_run *x, const struct n4_side_msg *m, uint64_t *next_send_ms)
{
	char b[INET_ADDRSTRLEN];

	if (!x->have_peer) {
		n4_debug("SIDE from the peer: program port %u, %u LAN address(es)%s%s",
			 m->side.port, m->side.naddrs, m->side.naddrs ? ", first " : "",
			 m->side.naddrs ? inet_ntop(AF_INET, &m->side.addrs[0], b, sizeof(b)) : "");
		*next_send_ms = 0; /* tell the peer at once that we have it */
	}
	*x->peer = m->side;
	x->have_peer = true;
	if (m->flags & N4_SIDE_HAVE)
		x->peer_has_ours = true;
	if (x->peer_has_ours && !x->done) {
		x->done = true;
		*next_send_ms = 0;
	}
}

/* Whether from (as recvfrom filled it) is the peer's IP; *port: and its port. */
static bool same_host(const struct sockaddr_storage *from, socklen_t flen,
		      const struct sockaddr *peer, bool *port)
{
	if (from->ss_family != peer->sa_family)
		return false;
	if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *f = (const struct sockaddr_in6 *)from;
		const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)(const void *)peer;
		if (flen < sizeof(*f) || memcmp(&f->sin6_addr, &p->sin6_addr, sizeof(p->sin6_addr)))
			return false;
		*port = f->sin6_port == p->sin6_port;
		return true;
	}
	const struct sockaddr_in *f = (const struct sockaddr_in *)from;
	const struct sockaddr_in *p = (const struct sockaddr_in *)(const void *)peer;
	if (flen < sizeof(*f) || f->sin_addr.s_addr != p->sin_addr.s_addr)
		return false;
	*port = f->sin_port == p->sin_port;
	return true;
}

/* One datagram.  Peeked first: the peer's program data must stay for the
 * program.  1 when the peer is done (its data arrives), else 0. */
static int side_readable(void *arg, uint64_t *next_send_ms)
{
	struct side_run *x = arg;
	uint8_t buf[128];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	ssize_t r = recvfrom(x->fd, buf, sizeof(buf), MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT,
			     (struct sockaddr *)&from, &flen);

	if (r < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
			return 0;
		return -errno;
	}
	bool same_port = false;
	bool from_ip = same_host(&from, flen, x->peer_addr, &same_port);
	bool is_ours = (size_t)r <= sizeof(buf) && ours(buf, (size_t)r, x->ident);
	if (from_ip && same_port && !is_ours) {
		n4_debug("SIDE exchange: the peer's data arrives: it is done");
		return 1;
	}
	/* Ours, or a stranger's: take it out of the way. */
	if (recv(x->fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno != EAGAIN &&
	    errno != EWOULDBLOCK && errno != EINTR && errno != ECONNREFUSED &&
	    errno != EHOSTUNREACH && errno != ENETUNREACH)
		return -errno;
	if (!from_ip || !is_ours)
		return 0;
	struct n4_side_msg m;
	bool bad;
	if (!n4_side_check(buf, (size_t)r, x->ident, x->rx, &m, &bad)) {
		if (bad && x->bad++ == 0)
			n4_warn("a SIDE from the peer's address failed its check (%s): ignored",
				x->rx ? "no key, another key or another round" : "malformed");
		return 0;
	}
	if (memcmp(m.side.id, x->mine->id, N4_SIDE_ID_SIZE) == 0)
		return 0; /* our own, reflected */
	take_side(x, &m, next_send_ms);
	return 0;
}

int n4_side_exchange(int fd, const struct sockaddr *peer_addr, socklen_t peer_len,
		     const uint8_t ident[N4_PAYLOAD_SIZE], const struct n4_auth *auth,
		     const struct n4_side *mine, struct n4_side *peer, unsigned timeout_ms,
		     const struct n4_waitctx *ctx)
{
	struct n4_side_keys keys;
	struct side_run x = { .fd = fd,
			      .peer_addr = peer_addr,
			      .peer_len = peer_len,
			      .ident = ident,
			      .mine = mine,
			      .peer = peer };

	if (!peer_addr ||
	    (peer_addr->sa_family == AF_INET && peer_len < sizeof(struct sockaddr_in)) ||
	    (peer_addr->sa_family == AF_INET6 && peer_len < sizeof(struct sockaddr_in6)) ||
	    (peer_addr->sa_family != AF_INET && peer_addr->sa_family != AF_INET6))
		return -EINVAL;

	if (!side_ok(mine))
		return -EINVAL;
	if (auth) {
		n4_side_keys_derive(auth, &keys);
		x.tx = keys.tx;
		x.rx = keys.rx;
	}
	struct n4_resend r = { .fd = fd,
			       .interval_ms = N4_SIDE_RESEND_MS,
			       .deadline_ms = n4_now_ms() + timeout_ms,
			       .ctx = ctx,
			       .send = side_send,
			       .readable = side_readable,
			       .arg = &x };
	int rc = n4_resend_until(&r);
	if (auth)
		n4_wipe(&keys, sizeof(keys));
	if (rc < 0)
		return rc;
	n4_debug("SIDE exchange: %s after %u SIDE(s) sent",
		 !x.have_peer ? "no SIDE from the peer"
		 : x.done     ? "both sides have both"
			      : "the peer's SIDE, not its word that it has ours",
		 x.sent);
	return x.have_peer ? 1 : 0;
}

/* punch.c - the sweep: every pool socket sends PUNCH to one predicted target
 * (the original's scheme), optionally pre-opened with a low TTL. */
#include "punch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "loop.h"
#include "rand.h"
#include "resend.h"

static int open_one(struct n4_pool *pool, unsigned i)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };

	if (fd < 0)
		return -errno;
	if (pool->first_port) {
		a.sin_port = htons((uint16_t)(pool->first_port + i));
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) {
			int err = -errno;
			close(fd);
			return err;
		}
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		int err = -errno;
		close(fd);
		return err;
	}
	pool->fds[i] = fd;
	return 0;
}

int n4_pool_resize(struct n4_pool *pool, unsigned n)
{
	if (n == 0 || (pool->first_port && (unsigned)pool->first_port + n - 1 > 65535))
		return -ERANGE;
	if (pool->borrowed)
		n = 1; /* one socket, ours to use, not to multiply */
	for (unsigned i = n; i < pool->n; i++) {
		close(pool->fds[i]); /* i >= n >= 1: never the borrowed socket 0 */
		pool->fds[i] = -1;
	}
	if (n <= pool->n) {
		pool->n = n;
		return 0;
	}
	int *fds = realloc(pool->fds, n * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	pool->fds = fds;
	for (unsigned i = pool->n; i < n; i++) {
		int err = open_one(pool, i);
		if (err)
			return err; /* pool->n still counts only the open ones */
		pool->n = i + 1;
	}
	return 0;
}

int n4_pool_open(struct n4_pool *pool, uint16_t first_port, unsigned n)
{
	pool->fds = NULL;
	pool->n = 0;
	pool->first_port = first_port;
	pool->borrowed = false;
	int err = n4_pool_resize(pool, n);
	if (err)
		n4_pool_close(pool, -1);
	return err;
}

int n4_pool_borrow(struct n4_pool *pool, int fd)
{
	pool->fds = malloc(sizeof(*pool->fds));
	if (!pool->fds)
		return -ENOMEM;
	pool->fds[0] = fd;
	pool->borrowed = true;
	pool->n = 1;
	pool->first_port = 0;
	return 0;
}

void n4_pool_close(struct n4_pool *pool, int keep)
{
	for (unsigned i = 0; i < pool->n; i++) {
		if ((int)i != keep && pool->fds[i] >= 0 && !(i == 0 && pool->borrowed))
			close(pool->fds[i]);
		pool->fds[i] = -1;
	}
	free(pool->fds);
	pool->fds = NULL;
	pool->n = 0;
	pool->borrowed = false;
}

uint16_t n4_pool_local_port(const struct n4_pool *pool, unsigned i)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	if (pool->first_port)
		return (uint16_t)(pool->first_port + i);
	if (getsockname(pool->fds[i], (struct sockaddr *)&a, &len))
		return 0;
	return ntohs(a.sin_port);
}

void n4_pacer_init(struct n4_pacer *p, unsigned pps)
{
	p->pps = pps;
	p->tokens = pps;
	p->last_ms = n4_now_ms();
}

static void pacer_refill(struct n4_pacer *p, uint64_t now)
{
	if (now > p->last_ms) {
		p->tokens += (double)(now - p->last_ms) * p->pps / 1000.0;
		if (p->tokens > p->pps)
			p->tokens = p->pps;
		p->last_ms = now;
	}
}

/* One datagram's worth of the budget, or false when it must wait. */
static bool pacer_take(struct n4_pacer *p)
{
	if (!p || !p->pps)
		return true;
	pacer_refill(p, n4_now_ms());
	if (p->tokens < 1.0)
		return false;
	p->tokens -= 1.0;
	return true;
}

/* When the next datagram may go. */
static uint64_t pacer_next_ms(const struct n4_pacer *p)
{
	double wait = p && p->pps && p->tokens < 1.0 ? (1.0 - p->tokens) * 1000.0 / p->pps : 0;

	return n4_now_ms() + 1 + (uint64_t)wait;
}

static void send_one(struct n4_sweep *sw, unsigned sock, uint16_t port,
		     const uint8_t msg[N4_MSG_SIZE])
{
	struct sockaddr_in to = sw->target;
	const uint8_t *m = sw->auth ? sw->amsg : msg;
	size_t len = sw->auth ? N4_APUNCH_SIZE : N4_MSG_SIZE;

	to.sin_port = htons(port);
	if (sendto(sw->pool->fds[sock], m, len, 0, (struct sockaddr *)&to, sizeof(to)) ==
	    (ssize_t)len)
		sw->sent++;
	else
		n4_debug("PUNCH from pool socket %u to port %u: %s", sock, port, strerror(errno));
}

/* One pass of the plan: every pool socket to the one target, or socket 0
 * across a range of the peer's ports (endpoint-independent side).  A paced
 * pass stops when the pacer runs dry and resumes where it stopped: returns
 * true once the pass is complete.  burst: a pass that opens the mappings,
 * sent whole (the sweep's prediction needs its ports contiguous; plans are
 * capped so that it fits the pacer's second), and charged to the pacer. */
static bool send_pass_from(struct n4_sweep *sw, const uint8_t msg[N4_MSG_SIZE], bool burst)
{
	uint16_t target = ntohs(sw->target.sin_port);

	while (sw->pass_pos < sw->pass_len) {
		unsigned k = sw->pass_pos;
		if (burst && sw->pacer && sw->pacer->pps) {
			pacer_refill(sw->pacer, n4_now_ms());
			sw->pacer->tokens -= 1.0;
		} else if (!pacer_take(sw->pacer)) {
			return false;
		}
		sw->pass_pos++;
		if (sw->plan.kind == N4_PLAN_WALK) {
			/* In the peer NAT's allocation order: our NAT gives our k-th
			 * destination its k-th port (predict.c, n4_plan_host). */
			long port = (long)sw->plan.lo + (long)k * sw->plan.walk_step;
			if (port < 1 || port > 65535) {
				sw->pass_pos = sw->pass_len;
				break;
			}
			send_one(sw, 0, (uint16_t)port, msg);
		} else if (sw->plan.kind == N4_PLAN_RANGE) {
			unsigned port = sw->plan.lo + k * sw->plan.step;
			if (port > 65535) {
				sw->pass_pos = sw->pass_len;
				break;
			}
			send_one(sw, 0, (uint16_t)port, msg);
		} else {
			send_one(sw, k, target, msg);
		}
	}
	return true;
}

static bool send_pass(struct n4_sweep *sw, const uint8_t msg[N4_MSG_SIZE], bool burst)
{
	sw->pass_pos = 0;
	sw->pass_len = sw->plan.kind == N4_PLAN_RANGE || sw->plan.kind == N4_PLAN_WALK
			       ? sw->plan.count
			       : sw->pool->n;
	return send_pass_from(sw, msg, burst);
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* A low TTL lets the packet cross our own NAT (creating the mapping) and die
 * before the peer's NAT, so that it cannot occupy the tuple the peer's NAT is
 * about to use (the conntrack clash, doc/STRATEGIES.md).  -1 restores the default. */
static void set_ttl(const struct n4_pool *pool, int ttl)
{
	for (unsigned i = 0; i < pool->n; i++) {
		if (setsockopt(pool->fds[i], IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)))
			n4_debug("IP_TTL %d: %s", ttl, strerror(errno));
	}
}

/* One pass with the low TTL, then back to the default TTL. */
static void preopen_pass(struct n4_sweep *sw, const uint8_t msg[N4_MSG_SIZE])
{
	set_ttl(sw->pool, sw->low_ttl);
	send_pass(sw, msg, true);
	set_ttl(sw->pool, -1);
}

/* From one of the partner's local addresses, exactly: nothing translates
 * between two hosts of one LAN, so its PUNCH keeps the announced port. */
static bool from_lan(const struct n4_sweep *sw, const struct sockaddr_in *from)
{
	for (unsigned i = 0; i < sw->nlan; i++) {
		if (from->sin_addr.s_addr == sw->lan[i].sin_addr.s_addr &&
		    from->sin_port == sw->lan[i].sin_port)
			return true;
	}
	return false;
}

/* The LAN path: pool socket 0 (the announced port) to each local address of
 * the partner, at the default TTL (the low TTL is for crossing NATs); the
 * same PUNCH (keyed: APUNCH) as across the NAT. */
static void send_lan(struct n4_sweep *sw, const uint8_t msg[N4_MSG_SIZE])
{
	const uint8_t *m = sw->auth ? sw->amsg : msg;
	size_t len = sw->auth ? N4_APUNCH_SIZE : N4_MSG_SIZE;

	for (unsigned i = 0; i < sw->nlan; i++) {
		if (sendto(sw->pool->fds[0], m, len, 0, (struct sockaddr *)&sw->lan[i],
			   sizeof(sw->lan[i])) == (ssize_t)len)
			sw->sent++;
		else
			n4_debug("PUNCH to the partner's local address %u: %s", i, strerror(errno));
	}
}

/* Keyed: judge an APUNCH from the peer's IP or one of its local addresses.
 * Every authentic one is answered at once from the socket it reached, carrying
 * the peer's nonce back: that answer is what proves us to the peer.  True on
 * an authenticated WIN. */
static bool auth_punch(struct n4_sweep *sw, int fd, const uint8_t *buf, size_t len,
		       const struct sockaddr_in *from)
{
	char b[32];

	bool lan = from_lan(sw, from);
	if (!sw->any_ip && !lan && from->sin_addr.s_addr != sw->peer_ip.s_addr)
		return false;
	enum n4_auth_verdict v = n4_auth_check(sw->auth, buf, len);
	if (v == N4_AUTH_BAD) {
		if (sw->auth->failures++ == 0)
			n4_warn("PUNCH from %s failed authentication (no key, or another key)",
				n4_addr_str(from, b, sizeof(b)));
		return false;
	}
	if (v == N4_AUTH_OTHER)
		return false;
	uint8_t reply[N4_APUNCH_SIZE];
	n4_auth_encode(sw->auth, v == N4_AUTH_WIN ? N4_PUNCH_ACK : 0, reply);
	if (sendto(fd, reply, sizeof(reply), 0, (const struct sockaddr *)from, sizeof(*from)) < 0)
		n4_debug("APUNCH answer to %s: %s", n4_addr_str(from, b, sizeof(b)),
			 strerror(errno));
	n4_auth_encode(sw->auth, 0, sw->amsg); /* later passes echo the nonce too */
	if (v != N4_AUTH_WIN)
		return false;
	sw->from = *from;
	sw->got_ack = sw->auth->peer_acked;
	sw->via_lan = lan;
	return true;
}

/* Returns 1 when fd holds a valid PUNCH from the peer (drains others). */
bool n4_addr_excluded(const struct sockaddr_in *from, const struct sockaddr_in *ex, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (ex[i].sin_addr.s_addr == from->sin_addr.s_addr &&
		    ex[i].sin_port == from->sin_port)
			return true;
	return false;
}

static int read_punches(struct n4_sweep *sw, int fd)
{
	for (;;) {
		uint8_t buf[128];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &flen);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED || errno == EHOSTUNREACH)
				continue; /* ICMP errors from our own probes */
			return 0;
		}
		if (sw->nexclude && n4_addr_excluded(&from, sw->exclude, sw->nexclude))
			continue; /* another peer of the room's host */
		if (sw->auth) {
			if (from.sin_family == AF_INET && auth_punch(sw, fd, buf, (size_t)n, &from))
				return 1;
			continue;
		}
		if (n != N4_MSG_SIZE || buf[0] != N4_CMD_PUNCH ||
		    memcmp(buf + 2, sw->ident, N4_PAYLOAD_SIZE) != 0 || from.sin_family != AF_INET)
			continue;
		bool lan = from_lan(sw, &from);
		if (!sw->any_ip && !lan && from.sin_addr.s_addr != sw->peer_ip.s_addr) {
			char b[32];
			n4_debug("PUNCH from unexpected %s ignored (use -x to accept)",
				 n4_addr_str(&from, b, sizeof(b)));
			continue;
		}
		sw->from = from;
		sw->got_ack = buf[1] & N4_PUNCH_ACK;
		sw->via_lan = lan;
		return 1;
	}
}

/* Full-TTL resend schedule (ms after the first pass): early repeats catch the
 * peer as soon as its mappings exist, later ones survive loss. */
static uint64_t next_resend_ms(unsigned k)
{
	static const unsigned early[] = { 20, 40, 80, 160, 320 };

	if (k < sizeof(early) / sizeof(early[0]))
		return early[k];
	return 320 + 250ull * (k - 4);
}

/* Birthday probing pace: BDAY_CHUNK random ports every BDAY_TICK_MS, about
 * 1000 probes a second (frp paces its range sends at 1-2 ms). */
#define BDAY_CHUNK 8
#define BDAY_TICK_MS 8
/* One pending datagram from fd without blocking: its length, or -1 when nothing
 * is left.  EINTR and the ICMP errors our own probes leave queued are skipped. */
static ssize_t recv_pending(int fd, void *buf, size_t cap, struct sockaddr_in *from)
{
	for (;;) {
		socklen_t flen = sizeof(*from);
		ssize_t r = recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)from, &flen);
		if (r >= 0)
			return r;
		if (errno != EINTR && errno != ECONNREFUSED && errno != EHOSTUNREACH)
			return -1;
	}
}

/* The peer acknowledges from the socket it kept (a range walker may keep another
 * one than ours aimed at): that is where its program will be. */
static void adopt_ack_port(struct sockaddr_in *peer, const struct sockaddr_in *from)
{
	if (from->sin_port == peer->sin_port)
		return;
	n4_info(" peer settled on port %u, not %u: adopting it ", ntohs(from->sin_port),
		ntohs(peer->sin_port));
	peer->sin_port = from->sin_port;
}

/* A listening side re-opens its mappings (low TTL) this often. */
#define REOPEN_MS 1000

/* When each kind of send of a sweep is due. */
struct sweep_clock {
	uint64_t start, first_full, next_send;
	uint64_t lan_next;  /* the LAN path's next resend */
	uint64_t pub_start; /* the public plan's first send */
	uint64_t pass_wait; /* a paced pass resumes then */
	unsigned passes, lan_passes;
	bool pub_started, low_ttl;
	uint64_t rng;
};

static void sweep_clock_init(const struct n4_sweep *sw, struct sweep_clock *k)
{
	enum n4_plan_kind kind = sw->plan.kind;

	memset(k, 0, sizeof(*k));
	if (n4_random_bytes_nowait(&k->rng, sizeof(k->rng)) < 0 || k->rng == 0)
		k->rng = n4_now_ms() * 0x9e3779b97f4a7c15ull + (uint64_t)getpid();
	k->start = k->first_full = n4_now_ms();
	k->low_ttl = sw->low_ttl > 0 && kind != N4_PLAN_BDAY_PROBE;
	/* The LAN path first (see N4_LAN_FIRST_MS), on the same resend schedule
	 * and unpaced (it crosses no NAT and no uplink); both sides of a pair get
	 * the same head start, so the public plan stays synchronised.  No plan
	 * (both NATs random): the LAN path alone. */
	k->lan_next = sw->nlan ? k->start : UINT64_MAX;
	k->pub_start = kind == N4_PLAN_IMPOSSIBLE ? UINT64_MAX
		       : sw->nlan		  ? k->start + N4_LAN_FIRST_MS
						  : k->start;
	k->next_send = k->pub_start;
	k->pass_wait = UINT64_MAX;
}

/* The public plan's first send: the original's five passes, or the
 * low-TTL pre-opening followed by a guard. */
static void sweep_start_public(struct n4_sweep *sw, struct sweep_clock *k, const uint8_t *msg,
			       uint64_t now)
{
	k->pub_started = true;
	k->first_full = k->next_send = now;
	if (sw->classic) {
		/* exactly the original: five passes at once, unpaced */
		sw->pacer = NULL;
		for (int pass = 0; pass < 5; pass++)
			send_pass(sw, msg, false);
		n4_info(" <= Punch ");
		k->next_send = UINT64_MAX;
	} else if (k->low_ttl) {
		preopen_pass(sw, msg);
		k->first_full = k->next_send = now + sw->guard_ms;
	}
}

/* A pass of the public plan, by its kind. */
static void sweep_pass(struct n4_sweep *sw, struct sweep_clock *k, const uint8_t *msg, uint64_t now)
{
	enum n4_plan_kind kind = sw->plan.kind;

	if (k->passes++ == 0)
		n4_info(" <= Punch ");
	if (kind == N4_PLAN_BDAY_LISTEN && k->low_ttl) {
		/* Full-TTL packets would reach the peer's NAT and, on a
		 * stateful NAT, occupy the very tuple its probes need:
		 * only keep our mappings open and wait to be found. */
		preopen_pass(sw, msg);
		k->next_send = now + REOPEN_MS;
	} else if (kind == N4_PLAN_BDAY_PROBE) {
		for (int i = 0; i < BDAY_CHUNK && pacer_take(sw->pacer); i++) {
			uint64_t r = rng_next(&k->rng) % sw->plan.count;
			send_one(sw, 0, (uint16_t)(sw->plan.lo + r), msg);
		}
		k->next_send = now + BDAY_TICK_MS;
	} else {
		/* the first full-TTL pass goes whole, as the pre-opening */
		if (!send_pass(sw, msg, k->passes == 1))
			k->pass_wait = pacer_next_ms(sw->pacer);
		k->next_send = k->first_full + next_resend_ms(k->passes - 1);
	}
}

/* Everything due now; returns when to wake for the next send. */
static uint64_t sweep_send_due(struct n4_sweep *sw, struct sweep_clock *k, const uint8_t *msg)
{
	uint64_t now = n4_now_ms();

	if (now >= k->lan_next) {
		if (k->lan_passes == 0)
			n4_info(" <= Punch (local address) ");
		send_lan(sw, msg);
		k->lan_next = k->start + next_resend_ms(k->lan_passes++);
	}
	if (!k->pub_started && now >= k->pub_start)
		sweep_start_public(sw, k, msg, now);
	if (sw->pass_pos < sw->pass_len)
		k->pass_wait =
			send_pass_from(sw, msg, false) ? UINT64_MAX : pacer_next_ms(sw->pacer);
	else if (now >= k->next_send)
		sweep_pass(sw, k, msg, now);
	/* A paced pass still going: the next one waits for it. */
	uint64_t until = sw->pass_pos < sw->pass_len ? k->pass_wait : k->next_send;
	return k->lan_next < until ? k->lan_next : until;
}

/* A WIN over IPv4 with an IPv6 path running: give IPv6 N4_V6_WINDOW_MS (one
 * more PUNCH there now, so that a peer whose firewall is open answers with the
 * ACK that wins).  Not when nothing can leave over IPv6. */
static bool v6_window(struct n4_sweep *sw, uint64_t *until)
{
	if (!sw->v6 || sw->v6->dead)
		return false;
	n4_punch6_send(sw->v6, 0);
	*until = n4_now_ms() + N4_V6_WINDOW_MS;
	return true;
}

/* IPv6's race is over (the window, or the round): no more ACKs, but the peer may
 * win on the last one sent, and answers it with its own.  Until when to wait for
 * that answer; 0: no ACK within a window, nothing to wait for. */
static uint64_t v6_settle(struct n4_sweep *sw)
{
	struct n4_punch6 *p = sw->v6;

	if (!p || p->dead || !p->acked_ms)
		return 0;
	p->no_ack = true;
	uint64_t end = p->acked_ms + N4_V6_WINDOW_MS;
	return end > n4_now_ms() ? end : 0;
}

int n4_sweep_run(struct n4_sweep *sw, uint64_t deadline_ms, const struct n4_waitctx *ctx)
{
	const struct n4_pool *pool = sw->pool;
	uint8_t msg[N4_MSG_SIZE];
	/* The pool, then the IPv6 socket (-1, ignored by poll, without one). */
	struct pollfd *pfd = calloc(pool->n + 1, sizeof(*pfd));
	struct sweep_clock k;
	uint64_t window_end = 0; /* non-zero: IPv4 has won, IPv6 has until then */
	uint64_t settle_end = 0; /* non-zero: IPv6 only waits for an answer to its ACK */
	int ret = 0;

	if (!pfd)
		return -ENOMEM;
	for (unsigned i = 0; i < pool->n; i++)
		pfd[i] = (struct pollfd){ .fd = pool->fds[i], .events = POLLIN };
	pfd[pool->n] = (struct pollfd){ .fd = sw->v6 ? sw->v6->fd : -1, .events = POLLIN };
	n4_punch_bytes(sw->ident, 0, msg);
	if (sw->auth)
		n4_auth_encode(sw->auth, 0, sw->amsg);
	sw->sent = 0;
	sw->v6_won = false;
	sweep_clock_init(sw, &k);
	uint64_t v6_next = sw->v6 ? n4_punch6_start(sw->v6) : UINT64_MAX;
	for (;;) {
		bool racing = !window_end && !settle_end;
		uint64_t until = settle_end ? settle_end : window_end;
		if (racing) {
			until = sweep_send_due(sw, &k, msg);
			if (sw->v6) {
				v6_next = n4_punch6_due(sw->v6);
				until = v6_next < until ? v6_next : until;
			}
			until = until < deadline_ms ? until : deadline_ms;
		}
		int n = n4_wait(pfd, pool->n + 1, until, ctx);
		if (n < 0) {
			ret = n;
			break;
		}
		if (n > 0 && (pfd[pool->n].revents & POLLIN) && n4_punch6_read(sw->v6)) {
			sw->v6_won = true;
			ret = 1;
			break;
		}
		for (unsigned i = 0; n > 0 && racing && i < pool->n; i++) {
			if (!(pfd[i].revents & POLLIN) || !read_punches(sw, pfd[i].fd))
				continue;
			sw->winner = i;
			ret = 1;
			if (!v6_window(sw, &window_end))
				goto out;
			break;
		}
		uint64_t now = n4_now_ms();
		if (!settle_end && (window_end ? now >= window_end : now >= deadline_ms)) {
			/* IPv4's WIN stands (ret 1), or the round is lost (0), unless
			 * the peer answers our last ACK over IPv6 in time. */
			settle_end = v6_settle(sw);
			if (!settle_end)
				break;
		} else if (settle_end && now >= settle_end) {
			break;
		}
		if (window_end || settle_end) {
			/* The pool waits: its late PUNCHes are for n4_confirm. */
			for (unsigned j = 0; j < pool->n; j++)
				pfd[j].events = 0;
		}
	}
out:
	free(pfd);
	return ret;
}

/* The state n4_confirm's resend loop works on (resend.h). */
struct confirm {
	int fd;
	struct sockaddr_in *peer;
	const uint8_t *ident;
	enum n4_confirm_mode mode;
	uint8_t plain[N4_MSG_SIZE], ack[N4_MSG_SIZE];
	unsigned sent;
	bool acked;
};

static int confirm_send(void *arg)
{
	struct confirm *k = arg;
	bool last = k->acked && k->mode != N4_CONFIRM_CLASSIC && k->mode != N4_CONFIRM_PLAIN;

	if (k->mode != N4_CONFIRM_ACK)
		sendto(k->fd, k->plain, sizeof(k->plain), 0, (const struct sockaddr *)k->peer,
		       sizeof(*k->peer));
	if (k->mode == N4_CONFIRM_ACK || k->mode == N4_CONFIRM_UNKNOWN)
		sendto(k->fd, k->ack, sizeof(k->ack), 0, (const struct sockaddr *)k->peer,
		       sizeof(*k->peer));
	k->sent++;
	/* One acknowledgement answers the peer's: then both know. */
	return last || (k->mode == N4_CONFIRM_CLASSIC && k->sent >= 10);
}

static int confirm_readable(void *arg, uint64_t *next_send)
{
	struct confirm *k = arg;
	uint8_t buf[64];
	struct sockaddr_in from;
	ssize_t r;

	while ((r = recv_pending(k->fd, buf, sizeof(buf), &from)) >= 0) {
		if (r == N4_MSG_SIZE && buf[0] == N4_CMD_PUNCH && (buf[1] & N4_PUNCH_ACK) &&
		    memcmp(buf + 2, k->ident, N4_PAYLOAD_SIZE) == 0 &&
		    from.sin_addr.s_addr == k->peer->sin_addr.s_addr && !k->acked) {
			adopt_ack_port(k->peer, &from);
			k->acked = true;
			*next_send = 0; /* answer it at once */
		}
	}
	return 0;
}

int n4_confirm(int fd, struct sockaddr_in *peer, const uint8_t ident[N4_PAYLOAD_SIZE],
	       enum n4_confirm_mode mode, bool already_acked, unsigned confirm_ms,
	       const struct n4_waitctx *ctx)
{
	struct confirm k = {
		.fd = fd, .peer = peer, .ident = ident, .mode = mode, .acked = already_acked
	};
	struct n4_resend r = {
		.fd = fd,
		.interval_ms = (mode == N4_CONFIRM_ACK || mode == N4_CONFIRM_UNKNOWN) ? 100 : 200,
		/* classic: exactly ten, however long they take */
		.deadline_ms = mode == N4_CONFIRM_CLASSIC ? UINT64_MAX : n4_now_ms() + confirm_ms,
		.send_at_deadline = true,
		.ctx = ctx,
		.send = confirm_send,
		.readable = confirm_readable,
		.arg = &k,
	};

	n4_punch_bytes(ident, 0, k.plain);
	n4_punch_bytes(ident, N4_PUNCH_ACK, k.ack);
	int rc = n4_resend_until(&r);
	if (rc < 0)
		return rc;
	if (mode == N4_CONFIRM_CLASSIC)
		n4_info(" <= Punch ");
	return k.acked ? 1 : 0;
}

struct confirm_auth {
	int fd;
	struct sockaddr_in *peer;
	struct n4_auth *auth;
	bool acked;
};

static int confirm_auth_send(void *arg)
{
	struct confirm_auth *k = arg;
	uint8_t ack[N4_APUNCH_SIZE];

	n4_auth_encode(k->auth, N4_PUNCH_ACK, ack);
	sendto(k->fd, ack, sizeof(ack), 0, (const struct sockaddr *)k->peer, sizeof(*k->peer));
	return k->acked; /* one acknowledgement answers the peer's */
}

static int confirm_auth_readable(void *arg, uint64_t *next_send)
{
	struct confirm_auth *k = arg;
	uint8_t buf[128];
	struct sockaddr_in from;
	ssize_t r;

	while ((r = recv_pending(k->fd, buf, sizeof(buf), &from)) >= 0) {
		if (from.sin_addr.s_addr != k->peer->sin_addr.s_addr)
			continue;
		if (n4_auth_check(k->auth, buf, (size_t)r) == N4_AUTH_WIN && k->auth->peer_acked &&
		    !k->acked) {
			adopt_ack_port(k->peer, &from);
			k->acked = true;
			*next_send = 0; /* answer it at once */
		}
	}
	return 0;
}

int n4_confirm_auth(int fd, struct sockaddr_in *peer, struct n4_auth *auth, unsigned confirm_ms,
		    const struct n4_waitctx *ctx)
{
	struct confirm_auth k = { .fd = fd, .peer = peer, .auth = auth, .acked = auth->peer_acked };
	struct n4_resend r = { .fd = fd,
			       .interval_ms = 100,
			       .deadline_ms = n4_now_ms() + confirm_ms,
			       .send_at_deadline = true,
			       .ctx = ctx,
			       .send = confirm_auth_send,
			       .readable = confirm_auth_readable,
			       .arg = &k };
	int rc = n4_resend_until(&r);

	return rc < 0 ? rc : k.acked ? 1 : 0;
}

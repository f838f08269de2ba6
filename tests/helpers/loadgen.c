/* loadgen.c - load generator for the rendezvous server: many pairs of clients at
 * once over loopback, each speaking the protocol (HELLO, READY, EXCHANGE copies over
 * UDP, PEERINFO), every PEERINFO checked: each side must receive the UDP address its
 * partner sent EXCHANGE from (with a shared identifier, whoever the server chose as
 * partner must have received ours).
 *
 * One epoll thread, non-blocking sockets; each client slot keeps its UDP socket for
 * the whole run (bound once), so a pair costs the generator two TCP connects, two
 * small writes, a few datagrams and two reads.  It reports its own CPU time, so a
 * run shows whether the generator or the server was the busy side.
 *
 * usage: loadgen -p PORT [-H HOST] [-U UDPHOST] [-c PAIRS_AT_ONCE] [-n PAIRS]
 *                [-a IDENT (shared by all)] [--legacy] [--copies N] [-t SECONDS]
 *                [--ips N] [--hold N] [-j JOBS] [-q]
 *   --legacy   pure v1 clients (HELLO reserved 0, EXCHANGE with the identifier);
 *              default: offer N4_EXT_TOKEN as our client does
 *   --ips N    spread clients over N loopback addresses 127.x.y.z, each round of a
 *              slot on the next one (default: max(8192, clients); 1 = all from
 *              127.0.0.1), so the server's per-source limits see many sources
 *   --hold N   open N clients with distinct identifiers and no partner, print
 *              "loadgen: holding N clients" once all HELLOs are out, keep them
 *              until SIGTERM/SIGINT (memory per waiting client)
 *   -j JOBS    split the clients over JOBS worker processes (descriptors: one
 *              process may hold only so many)
 * Last line: "loadgen: pairs=N ok=N bad=N failed=N elapsed_s=X pairs_per_s=Y cpu_s=Z";
 * exit 0 when every pair was verified and nothing failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

enum cstate { C_IDLE, C_CONNECTING, C_WAIT_READY, C_WAIT_PEER, C_GOT, C_HOLD };

/* A UDP socket of a client slot, bound to one loopback address. */
struct usock {
	int fd;
	struct sockaddr_in addr;
	struct client *owner;
	struct usock *hnext; /* map from UDP address to socket */
};

struct client {
	int tfd;
	struct usock *socks; /* nsocks per slot: the slot moves to the next
	                              * address every round, so that no address goes
	                              * over the server's per-source rate */
	unsigned cur;
	struct usock *u; /* this round's */
	enum cstate state;
	uint8_t rbuf[N4_MSG_SIZE];
	unsigned rlen;
	struct sockaddr_in got; /* from PEERINFO */
	uint8_t token[N4_TOKEN_SIZE];
	bool tok;
	unsigned pair;	  /* index of its pair slot */
	uint32_t gen;	  /* bumped per connection: stale events are skipped */
	uint64_t exch_ms; /* last EXCHANGE sent */
};

struct pairslot {
	uint8_t ident[N4_PAYLOAD_SIZE];
	unsigned resolved; /* members verified (or failed) this round */
	bool active;
};

static struct client *clients;
static struct pairslot *pairs;
static unsigned nclients, npairs_slots;
static struct usock **umap;
static unsigned nsocks = 1;
static size_t umap_mask;
static int ep;
static struct sockaddr_storage srv_tcp;
static socklen_t srv_tcp_len;
static struct sockaddr_in srv_udp;
static bool legacy, quiet;
static unsigned copies = 3, want_pairs = 1, started_pairs, ok_pairs, bad_pairs, failed_clients;
static unsigned long ident_counter, ident_base;
static uint8_t shared_ident[N4_PAYLOAD_SIZE];
static bool have_shared;
static volatile sig_atomic_t stop;
static unsigned conc = 1, timeout_s = 60, nips, hold, jobs = 1, job;

/* What each worker process reports (shared memory when -j > 1). */
struct result {
	unsigned ok, bad, failed, unfinished, held, holding;
	double elapsed, cpu;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static size_t addr_hash(const struct sockaddr_in *a)
{
	uint64_t x = ((uint64_t)a->sin_addr.s_addr << 16) ^ a->sin_port;
	x *= 0x9e3779b97f4a7c15ull;
	return (size_t)(x >> 20);
}

/* With -j and a shared identifier the server pairs clients of different worker
 * processes: every UDP address and the PEERINFO it received also go into a
 * table shared by the workers (open addressing, set before the fork), so that
 * such a pair is verified too, by whichever side settles it first. */
#define GSLOTS (1u << 18)
struct gslot {
	_Atomic uint64_t addr; /* ip << 16 | port, 0 = free */
	_Atomic uint64_t got;  /* PEERINFO received, same form, 0 = none yet */
	_Atomic int settled;
};
static struct gslot *gtab;

static uint64_t gkey(const struct sockaddr_in *a)
{
	return (uint64_t)ntohl(a->sin_addr.s_addr) << 16 | ntohs(a->sin_port);
}

static struct gslot *gfind(uint64_t k, bool insert)
{
	for (uint64_t i = (k * 0x9e3779b97f4a7c15ull) >> 46, n = 0; n < GSLOTS; n++, i++) {
		struct gslot *g = &gtab[i & (GSLOTS - 1)];
		uint64_t cur = atomic_load(&g->addr);
		if (cur == k)
			return g;
		if (cur == 0) {
			if (!insert)
				return NULL;
			uint64_t zero = 0;
			if (atomic_compare_exchange_strong(&g->addr, &zero, k) || zero == k)
				return g;
		}
	}
	return NULL;
}

/* The client currently sending from a (NULL when none is). */
static struct client *umap_find(const struct sockaddr_in *a)
{
	for (struct usock *u = umap[addr_hash(a) & umap_mask]; u; u = u->hnext) {
		if (u->addr.sin_addr.s_addr == a->sin_addr.s_addr &&
		    u->addr.sin_port == a->sin_port)
			return u->owner->u == u ? u->owner : NULL;
	}
	return NULL;
}

/* Distinct printable identifiers, base 62, so pairs never meet by accident. */
static void next_ident(uint8_t out[N4_PAYLOAD_SIZE])
{
	static const char digits[] =
		"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	unsigned long v = ++ident_counter;

	for (int i = 0; i < N4_PAYLOAD_SIZE; i++) {
		out[i] = (uint8_t)digits[v % 62];
		v /= 62;
	}
}

static void client_close_tcp(struct client *c)
{
	if (c->tfd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->tfd, NULL);
		close(c->tfd);
	}
	c->tfd = -1;
}

static void pair_start(unsigned p);

static void pair_member_resolved(unsigned p)
{
	struct pairslot *ps = &pairs[p];

	if (++ps->resolved < 2)
		return;
	ps->active = false;
	if (!stop && started_pairs < want_pairs)
		pair_start(p);
}

static void client_fail(struct client *c, const char *why)
{
	if (c->state == C_IDLE)
		return;
	failed_clients++;
	if (!quiet)
		fprintf(stderr, "loadgen: client %u (pair %u): %s\n", (unsigned)(c - clients),
			c->pair, why);
	client_close_tcp(c);
	bool holding = c->state == C_HOLD;
	c->state = C_IDLE;
	if (!holding)
		pair_member_resolved(c->pair);
}

/* An original client moves its source ports every round (its pool window), so
 * legacy clients send each round from a fresh UDP port of their address: the
 * server may then recognise late copies from a finished round by their port. */
static int rebind_udp(struct usock *u)
{
	size_t h = addr_hash(&u->addr) & umap_mask;
	for (struct usock **pp = &umap[h]; *pp; pp = &(*pp)->hnext) {
		if (*pp == u) {
			*pp = u->hnext;
			break;
		}
	}
	close(u->fd);
	u->addr.sin_port = 0;
	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t sl = sizeof(u->addr);
	if (u->fd < 0 || bind(u->fd, (struct sockaddr *)&u->addr, sizeof(u->addr)) ||
	    getsockname(u->fd, (struct sockaddr *)&u->addr, &sl))
		return -errno;
	if (gtab && !gfind(gkey(&u->addr), true))
		return -ENOSPC;
	h = addr_hash(&u->addr) & umap_mask;
	u->hnext = umap[h];
	umap[h] = u;
	return 0;
}

static int client_start(struct client *c, bool holding)
{
	int fd = socket(srv_tcp.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	c->u = &c->socks[c->cur++ % nsocks];
	if (legacy && c->cur > 1) {
		int err = rebind_udp(c->u);
		if (err) {
			close(fd);
			return err;
		}
	}
	if (gtab) {
		struct gslot *g = gfind(gkey(&c->u->addr), false);
		if (g) {
			atomic_store(&g->got, 0);
			atomic_store(&g->settled, 0);
		}
	}
	if (srv_tcp.ss_family == AF_INET) {
		struct sockaddr_in b = c->u->addr;
		b.sin_port = 0;
		int on = 1; /* the port is chosen at connect: much cheaper than at bind */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof(on));
		if (bind(fd, (struct sockaddr *)&b, sizeof(b))) {
			int err = -errno;
			close(fd);
			return err;
		}
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&srv_tcp, srv_tcp_len) && errno != EINPROGRESS) {
		int err = -errno;
		close(fd);
		return err;
	}
	c->gen++;
	struct epoll_event ev = { .events = EPOLLOUT,
				  .data.u64 = (uint64_t)(c - clients) << 32 | c->gen };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		int err = -errno;
		close(fd);
		return err;
	}
	c->tfd = fd;
	c->rlen = 0;
	c->tok = false;
	c->state = holding ? C_HOLD : C_CONNECTING;
	return 0;
}

static void pair_start(unsigned p)
{
	struct pairslot *ps = &pairs[p];

	started_pairs++;
	ps->active = true;
	ps->resolved = 0;
	if (have_shared)
		memcpy(ps->ident, shared_ident, N4_PAYLOAD_SIZE);
	else
		next_ident(ps->ident);
	for (int i = 0; i < 2; i++) {
		struct client *c = &clients[2 * p + (unsigned)i];
		c->state = C_CONNECTING; /* so that a failure below is counted */
		int err = client_start(c, false);
		if (err)
			client_fail(c, strerror(-err));
	}
}

static void send_msg(struct client *c, uint8_t cmd, uint8_t ext, const uint8_t *payload)
{
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE];

	n4_msg_init(&m, cmd, ext, payload);
	n4_wire_encode(&m, buf);
	if (send(c->tfd, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t)sizeof(buf))
		client_fail(c, "HELLO not sent");
}

static void send_exchange(struct client *c)
{
	struct n4_msg m;
	uint8_t buf[N4_MSG_SIZE];

	n4_msg_init(&m, N4_CMD_EXCHANGE, (uint8_t)(c->tok ? N4_EXT_TOKEN : 0),
		    c->tok ? c->token : pairs[c->pair].ident);
	n4_wire_encode(&m, buf);
	c->exch_ms = now_ms();
	for (unsigned i = 0; i < copies; i++)
		sendto(c->u->fd, buf, sizeof(buf), 0, (struct sockaddr *)&srv_udp, sizeof(srv_udp));
}

/* c received PEERINFO: find who sent EXCHANGE from that address and check that
 * it, in turn, received ours.  Whoever of the two arrives second settles it. */
static void got_peerinfo(struct client *c)
{
	struct client *p = umap_find(&c->got);

	c->state = C_GOT;
	client_close_tcp(c);
	if (!p && have_shared && gtab) {
		/* Partner in another worker: publish ours, then look at theirs. */
		struct gslot *mine = gfind(gkey(&c->u->addr), false);
		struct gslot *theirs = gfind(gkey(&c->got), false);
		if (mine && theirs) {
			atomic_store(&mine->got, gkey(&c->got));
			uint64_t tg = atomic_load(&theirs->got);
			c->state = C_IDLE;
			pair_member_resolved(c->pair);
			if (tg == 0)
				return; /* the other side settles it */
			struct gslot *lo = mine < theirs ? mine : theirs;
			int zero = 0;
			if (!atomic_compare_exchange_strong(&lo->settled, &zero, 1))
				return; /* both saw both: the other one counted it */
			if (tg == gkey(&c->u->addr)) {
				ok_pairs++;
			} else {
				bad_pairs++;
				fprintf(stderr,
					"loadgen: client %u: its partner in another "
					"worker got a PEERINFO that is not ours "
					"(ours %llx, it got %llx)\n",
					(unsigned)(c - clients),
					(unsigned long long)gkey(&c->u->addr),
					(unsigned long long)tg);
			}
			return;
		}
	}
	if (!p || p == c ||
	    (!have_shared && p != &clients[c->pair * 2 + (c == &clients[c->pair * 2] ? 1 : 0)])) {
		bad_pairs++;
		char b[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &c->got.sin_addr, b, sizeof(b));
		fprintf(stderr,
			"loadgen: client %u got a PEERINFO %s:%u that is not its partner's (%s)\n",
			(unsigned)(c - clients), b, ntohs(c->got.sin_port),
			!p	 ? "nobody's"
			: p == c ? "its own"
				 : "another client's");
		c->state = C_IDLE;
		pair_member_resolved(c->pair);
		return;
	}
	if (p->state != C_GOT)
		return; /* p settles it when its PEERINFO comes */
	if (p->got.sin_addr.s_addr == c->u->addr.sin_addr.s_addr &&
	    p->got.sin_port == c->u->addr.sin_port)
		ok_pairs++;
	else
		bad_pairs++;
	c->state = p->state = C_IDLE;
	pair_member_resolved(c->pair);
	pair_member_resolved(p->pair);
}

static void on_tcp(struct client *c, uint32_t events)
{
	if (c->state == C_CONNECTING ||
	    (c->state == C_HOLD && c->rlen == 0 && (events & EPOLLOUT))) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->tfd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			client_fail(c, strerror(err));
			return;
		}
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP,
					  .data.u64 = (uint64_t)(c - clients) << 32 | c->gen };
		epoll_ctl(ep, EPOLL_CTL_MOD, c->tfd, &ev);
		bool holding = c->state == C_HOLD;
		if (!holding)
			c->state = C_WAIT_READY;
		send_msg(c, N4_CMD_HELLO, (uint8_t)(legacy ? 0 : N4_EXT_TOKEN),
			 pairs[c->pair].ident);
		if (holding)
			c->rlen = 1; /* marks "HELLO sent" */
		return;
	}
	if (c->state == C_HOLD) {
		client_fail(c, "the server closed a waiting client");
		return;
	}
	ssize_t n = recv(c->tfd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_fail(c, n < 0 ? strerror(errno) : "server closed the connection");
		return;
	}
	c->rlen += (unsigned)n;
	if (c->rlen < N4_MSG_SIZE)
		return;
	c->rlen = 0;
	struct n4_msg m;
	if (c->state == C_WAIT_READY) {
		if (n4_wire_decode(c->rbuf, N4_MSG_SIZE, N4_CMD_READY, &m)) {
			client_fail(c, "no READY");
			return;
		}
		if (!legacy && (m.ext & N4_EXT_TOKEN)) {
			c->tok = true;
			memcpy(c->token, m.payload, N4_TOKEN_SIZE);
		}
		c->state = C_WAIT_PEER;
		send_exchange(c);
		return;
	}
	if (c->state == C_WAIT_PEER) {
		if (n4_wire_decode(c->rbuf, N4_MSG_SIZE, N4_CMD_PEERINFO, &m) ||
		    n4_peerinfo_decode(m.payload, &c->got)) {
			client_fail(c, "no valid PEERINFO");
			return;
		}
		got_peerinfo(c);
	}
}

static int parse_host(const char *host, uint16_t port, struct sockaddr_storage *out, socklen_t *len)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		*len = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		*len = sizeof(*v6);
		return 0;
	}
	return -1;
}

static void raise_nofile(unsigned need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur >= need)
		return;
	struct rlimit up = { .rlim_cur = need,
			     .rlim_max = need > rl.rlim_max ? need : rl.rlim_max };
	if (setrlimit(RLIMIT_NOFILE, &up)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int run(struct result *res)
{
	if (hold && hold < jobs)
		jobs = 1;
	/* This worker's share. */
	hold = hold / jobs + (job < hold % jobs ? 1 : 0);
	want_pairs = want_pairs / jobs + (job < want_pairs % jobs ? 1 : 0);
	conc = conc / jobs + (job < conc % jobs ? 1 : 0);
	if (!conc)
		conc = 1;
	/* Distinct from other workers and from other loadgen runs against the same
	 * server (a random start in 62^6). */
	ident_counter = ident_base + (unsigned long)job * 1000000000ul;
	if (hold) {
		npairs_slots = nclients = hold; /* each alone, with its own identifier */
		want_pairs = 0;
	} else {
		if (conc > want_pairs)
			conc = want_pairs;
		npairs_slots = conc;
		nclients = 2 * conc;
	}
	if (!nips)
		nips = nclients < 8192 ? 8192 : nclients;
	nsocks = (nips + nclients - 1) / nclients;
	raise_nofile((nsocks + 1) * nclients + 64);
	clients = calloc(nclients, sizeof(*clients));
	pairs = calloc(npairs_slots, sizeof(*pairs));
	size_t msize = 1024;
	while (msize < 2 * (size_t)nclients * nsocks)
		msize <<= 1;
	umap = calloc(msize, sizeof(*umap));
	umap_mask = msize - 1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!clients || !pairs || !umap || ep < 0) {
		perror("loadgen");
		return 1;
	}
	/* Slot i sends from 127.a.b.c (distinct per slot unless --ips is smaller),
	 * the same address for TCP and UDP as a real client behind one NAT. */
	for (unsigned i = 0; i < nclients; i++) {
		struct client *c = &clients[i];
		c->tfd = -1;
		c->pair = hold ? i : i / 2;
		c->socks = calloc(nsocks, sizeof(*c->socks));
		if (!c->socks) {
			perror("loadgen");
			return 1;
		}
		for (unsigned k = 0; k < nsocks; k++) {
			struct usock *u = &c->socks[k];
			unsigned idx = (job * nclients * nsocks + i + k * nclients) % 15000000u;
			u->owner = c;
			u->addr.sin_family = AF_INET;
			u->addr.sin_addr.s_addr =
				nips == 1 ? htonl(0x7f000001u)
					  : htonl(0x7f000000u | ((1 + idx / 62500) << 16) |
						  ((idx / 250 % 250) << 8) | (idx % 250 + 1));
			u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (u->fd < 0 ||
			    bind(u->fd, (struct sockaddr *)&u->addr, sizeof(u->addr))) {
				perror("loadgen: UDP socket");
				return 1;
			}
			socklen_t sl = sizeof(u->addr);
			getsockname(u->fd, (struct sockaddr *)&u->addr, &sl);
			if (gtab && !gfind(gkey(&u->addr), true)) {
				fprintf(stderr, "loadgen: shared address table full\n");
				return 1;
			}
			size_t h = addr_hash(&u->addr) & umap_mask;
			u->hnext = umap[h];
			umap[h] = u;
		}
	}
	uint64_t t0 = now_ms(), deadline = t0 + (uint64_t)timeout_s * 1000u;
	double cpu0 = cpu_s();
	if (hold) {
		for (unsigned i = 0; i < hold; i++) {
			next_ident(pairs[i].ident);
			int err = client_start(&clients[i], true);
			if (err) {
				fprintf(stderr, "loadgen: connect: %s\n", strerror(-err));
				return 1;
			}
		}
	} else {
		for (unsigned p = 0; p < npairs_slots && started_pairs < want_pairs; p++)
			pair_start(p);
	}
	bool announced = false;
	uint64_t next_resend = 0;
	struct epoll_event evs[512];
	while (!stop) {
		/* With pairs across workers a worker may settle more than it
		 * started: it stops only once its own pairs are all resolved. */
		if (!hold && !gtab && ok_pairs + bad_pairs >= want_pairs)
			break;
		if (!hold) {
			bool any = false;
			for (unsigned p = 0; p < npairs_slots && !any; p++)
				any = pairs[p].active;
			if (!any && started_pairs >= want_pairs)
				break;
		}
		uint64_t now = now_ms();
		if (!hold && now >= deadline) {
			fprintf(stderr, "loadgen: timeout after %u s\n", timeout_s);
			break;
		}
		/* Like our client: EXCHANGE again every 250 ms until PEERINFO, since
		 * thousands of pairs readied at once can overflow the server's
		 * UDP buffer (the original client would lose that round). */
		if (now >= next_resend) {
			for (unsigned i = 0; i < nclients; i++) {
				if (clients[i].state == C_WAIT_PEER &&
				    now - clients[i].exch_ms >= 250)
					send_exchange(&clients[i]);
			}
			next_resend = now + 50;
		}
		int n = epoll_wait(ep, evs, 512, 50);
		for (int i = 0; i < n; i++) {
			struct client *c = &clients[evs[i].data.u64 >> 32];
			if (c->tfd >= 0 && c->gen == (uint32_t)evs[i].data.u64)
				on_tcp(c, evs[i].events);
		}
		if (hold && !announced) {
			unsigned sent = 0;
			for (unsigned i = 0; i < hold; i++)
				sent += clients[i].state == C_HOLD && clients[i].rlen == 1;
			if (sent == hold) {
				res->holding = 1;
				announced = true;
			}
		}
	}
	double elapsed = (double)(now_ms() - t0) / 1000.0;
	unsigned unfinished = 0;
	for (unsigned i = 0; i < nclients; i++) {
		if (clients[i].state != C_IDLE && clients[i].state != C_HOLD)
			unfinished++;
		if (clients[i].tfd >= 0)
			close(clients[i].tfd);
		for (unsigned k = 0; k < nsocks; k++)
			close(clients[i].socks[k].fd);
	}
	res->elapsed = elapsed;
	res->cpu = cpu_s() - cpu0;
	res->ok = ok_pairs;
	res->bad = bad_pairs;
	res->failed = failed_clients;
	res->unfinished = unfinished;
	for (unsigned i = 0; hold && i < hold; i++)
		res->held += clients[i].state == C_HOLD;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "legacy", no_argument, NULL, 'L' },
		{ "copies", required_argument, NULL, 'C' },
		{ "ips", required_argument, NULL, 'I' },
		{ "hold", required_argument, NULL, 'W' },
		{ "jobs", required_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1", *udp_host = NULL;
	unsigned port = 0;
	int o;

	while ((o = getopt_long(argc, argv, "p:H:U:c:n:a:t:qj:", lo, NULL)) != -1) {
		switch (o) {
		case 'p':
			port = (unsigned)atoi(optarg);
			break;
		case 'H':
			host = optarg;
			break;
		case 'U':
			udp_host = optarg;
			break;
		case 'c':
			conc = (unsigned)atoi(optarg);
			break;
		case 'n':
			want_pairs = (unsigned)atoi(optarg);
			break;
		case 'a':
			if (n4_ident_encode(optarg, shared_ident)) {
				fprintf(stderr, "loadgen: bad identifier\n");
				return 2;
			}
			have_shared = true;
			break;
		case 't':
			timeout_s = (unsigned)atoi(optarg);
			break;
		case 'q':
			quiet = true;
			break;
		case 'L':
			legacy = true;
			break;
		case 'C':
			copies = (unsigned)atoi(optarg);
			break;
		case 'I':
			nips = (unsigned)atoi(optarg);
			break;
		case 'W':
			hold = (unsigned)atoi(optarg);
			break;
		case 'j':
			jobs = (unsigned)atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: see the comment at the top of tests/helpers/loadgen.c\n");
			return 2;
		}
	}
	if (!port || port > 65535 || !conc || (!want_pairs && !hold) ||
	    parse_host(host, (uint16_t)port, &srv_tcp, &srv_tcp_len)) {
		fprintf(stderr, "loadgen: need -p PORT, a numeric -H, -c >= 1, -n >= 1\n");
		return 2;
	}
	struct sockaddr_storage us;
	socklen_t ul;
	if (parse_host(udp_host			      ? udp_host
		       : srv_tcp.ss_family == AF_INET ? host
						      : "127.0.0.1",
		       (uint16_t)port, &us, &ul) ||
	    us.ss_family != AF_INET) {
		fprintf(stderr, "loadgen: -U must be an IPv4 address (PEERINFO is IPv4)\n");
		return 2;
	}
	memcpy(&srv_udp, &us, sizeof(srv_udp));
	if (hold && jobs > hold)
		jobs = hold;
	if (!hold && jobs > conc)
		jobs = conc;
	if (!jobs)
		jobs = 1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	struct result *res = mmap(NULL, jobs * sizeof(*res), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		perror("loadgen: mmap");
		return 1;
	}
	if (jobs > 1 && have_shared) {
		gtab = mmap(NULL, GSLOTS * sizeof(*gtab), PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (gtab == MAP_FAILED) {
			perror("loadgen: mmap");
			return 1;
		}
	}
	pid_t pids[64];
	if (jobs > 64)
		jobs = 64;
	unsigned total_hold = hold, total_pairs = want_pairs;
	if (getrandom(&ident_base, sizeof(ident_base), 0) != (ssize_t)sizeof(ident_base))
		ident_base = (unsigned long)time(NULL) * 2654435761ul ^ (unsigned long)getpid();
	ident_base %= 50000000000ul;
	for (job = 0; job < jobs; job++) {
		pids[job] = fork();
		if (pids[job] == 0)
			_exit(run(&res[job]) ? 3 : 0);
		if (pids[job] < 0) {
			perror("loadgen: fork");
			return 1;
		}
	}
	/* The workers share the work; this process adds up what they report. */
	bool announced = false;
	int running = (int)jobs, worker_err = 0;
	while (running > 0) {
		int st;
		pid_t w = waitpid(-1, &st, WNOHANG);
		if (w > 0) {
			running--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				worker_err = 1;
			continue;
		}
		if (stop) {
			for (unsigned j = 0; j < jobs; j++)
				kill(pids[j], SIGTERM);
			stop = 0;
		}
		if (total_hold && !announced) {
			unsigned h = 0;
			for (unsigned j = 0; j < jobs; j++)
				h += res[j].holding;
			if (h == jobs) {
				printf("loadgen: holding %u clients\n", total_hold);
				fflush(stdout);
				announced = true;
			}
		}
		usleep(20000);
	}
	struct result t = { 0 };
	for (unsigned j = 0; j < jobs; j++) {
		t.ok += res[j].ok;
		t.bad += res[j].bad;
		t.failed += res[j].failed;
		t.unfinished += res[j].unfinished;
		t.held += res[j].held;
		t.cpu += res[j].cpu;
		if (res[j].elapsed > t.elapsed)
			t.elapsed = res[j].elapsed;
	}
	if (total_hold) {
		printf("loadgen: held=%u of %u failed=%u cpu_s=%.2f\n", t.held, total_hold,
		       t.failed, t.cpu);
		return t.held == total_hold && !worker_err ? 0 : 1;
	}
	printf("loadgen: pairs=%u ok=%u bad=%u failed=%u unfinished=%u elapsed_s=%.3f "
	       "pairs_per_s=%.0f cpu_s=%.2f\n",
	       total_pairs, t.ok, t.bad, t.failed, t.unfinished, t.elapsed,
	       t.elapsed > 0 ? t.ok / t.elapsed : 0.0, t.cpu);
	return t.ok == total_pairs && !t.bad && !t.failed && !worker_err ? 0 : 1;
}

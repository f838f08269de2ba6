/* host.c - N4_HOST=PORT: the program's socket bound to PORT hosts a room, and holds
 * a path to every joiner at once.
 *
 * A symmetric NAT gives one local port a new public port per destination, so the
 * host punches each joiner from the program's own local port: our helper socket
 * is bound to the same address with SO_REUSEPORT (the NAT cannot tell the two
 * apart), runs libn4's answer to each join (cfg.room_answer), and sends the
 * keepalives and relay refreshes.  A classic BPF program attached to the reuseport
 * group (SO_ATTACH_REUSEPORT_CBPF) steers our datagrams (PUNCHes for our
 * identifier, relay answers) to the helper and everything else to the program, so
 * the program never sees them and its own socket is never swapped: every
 * joiner's traffic goes through the kernel with nothing of ours in between but
 * the address in the call.
 *
 * Each peer has one address for the program for the whole session (its alias):
 * the first real address it had, kept across recoveries, relays and the move back
 * to direct (a joiner that comes back with the same peer id is the same peer).
 * A first address that is already another peer's is replaced by one from
 * 198.18.0.0/15 (RFC 2544: never on the internet) with the same port.
 *
 * The table of peers is read by the fast paths without the lock (a seqlock, like
 * the shim_sock's); the keeper (keeper.c) ticks every host: room connection,
 * joins (one at a time, in a worker thread), keepalives, forgetting silent peers,
 * the status file.  A host is never freed (type-stable, like shim_sock): a fast
 * path that read it just before the program closed the socket still reads a
 * table. */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "relay_reg.h"
#include "side.h"
#include "wire.h"

#define UDP_HDR 8
#define JOIN_QUEUE 32 /* joins waiting for the one running */
#define JOIN_TIMEOUT_MS \
	8000			/* one answer (one round), from JOIN to WIN or failure: below
				 * the 10 s the server holds a joiner */
#define ROOM_RETRY_MIN_MS 1000	/* a lost room connection: again after this ... */
#define ROOM_RETRY_MAX_MS 30000 /* ... doubling up to this */
#define STATUS_EVERY_MS 1000

struct shim_peer {
	bool used, relayed, have_id;
	uint8_t id[N4_ROOM_ID_SIZE];
	struct sockaddr_in alias, real;
	struct n4_result res; /* relayed: what refreshes the registration */
	n4_path *path;
	uint64_t tx, rx;	    /* bumped by the fast paths (relaxed) */
	uint64_t rx_seen, heard_ms; /* keeper: rx at the last tick, when it last moved */
	time_t since;		    /* wall clock of its first WIN */
	time_t path_since;	    /* ... of its current path */
	unsigned rtt_ms;	    /* UINT_MAX: not measured (relayed) */
	uint16_t room_port;	    /* its socket listens for the room's broadcasts on this
				    * port (its peer id's last two bytes), 0: none */
};

struct shim_host {
	struct shim_host *next;
	struct shim_sock *s; /* the program's socket (NULL once closed) */
	pid_t pid;	     /* the process that hosts (a forked child does not) */
	int helper;	     /* ours, same address, SO_REUSEPORT; -1 once closed */
	int room_fd;	     /* the room connection, -1 while there is none */
	struct n4_room_rx rx;
	struct sockaddr_in bound;
	unsigned gen;	  /* seqlock over peers[]: odd while they change */
	unsigned cap, hi; /* slots, and 1 + the highest used one */
	struct shim_peer *peers;
	struct n4_join queue[JOIN_QUEUE];
	unsigned qn;
	bool joining, registering, refused, dead, steer_ok;
	volatile sig_atomic_t cancel;
	uint64_t retry_ms, retry_wait_ms, status_ms;
	unsigned synth; /* 198.18.x.y aliases handed out */
	/* Broadcast fan-out: a token bucket (FANOUT_RATE a second), under its own
	 * spin of atomics: the send calls run in the program's threads. */
	double fan_tokens;
	uint64_t fan_ms;
	unsigned long fan_dropped;
	bool fan_warned;
	unsigned status_peers;
};

static struct shim_host *hosts; /* lock held */

/* --------------------------------------------------------------- fast paths --- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool same(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* Lock-free: the peer whose alias (out) or real address (!out) is *a; rewrites *a
 * to the other one.  False when no peer has it. */
static bool lookup(struct shim_host *h, struct sockaddr_in *a, bool out)
{
	for (;;) {
		unsigned g = __atomic_load_n(&h->gen, __ATOMIC_ACQUIRE);
		if (g & 1)
			continue;
		unsigned hi = __atomic_load_n(&h->hi, __ATOMIC_RELAXED);
		struct sockaddr_in to;
		struct shim_peer *hit = NULL;
		for (unsigned i = 0; i < hi && !hit; i++) {
			struct shim_peer *p = &h->peers[i];
			if (!__atomic_load_n(&p->used, __ATOMIC_RELAXED))
				continue;
			if (same(out ? &p->alias : &p->real, a)) {
				to = out ? p->real : p->alias;
				hit = p;
			}
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&h->gen, __ATOMIC_RELAXED) != g)
			continue;
		if (!hit)
			return false;
		shim_count(out ? &hit->tx : &hit->rx, 1);
		to.sin_family = AF_INET;
		*a = to;
		return true;
	}
}

bool shim_host_out(struct shim_host *h, int family, const struct sockaddr *dest, socklen_t len,
		   struct sockaddr_storage *out, socklen_t *out_len)
{
	struct sockaddr_in v4;

	if (!dest || !shim_to_v4(dest, len, &v4) || !lookup(h, &v4, true))
		return false;
	*out_len = shim_to_family(family, &v4, out);
	return true;
}

/* The room is one broadcast domain: the host's broadcast or multicast to port P
 * also reaches every peer whose socket listens on P (a joiner bound to one of its
 * N4_JOIN ports), one unicast datagram each, from the program's own socket: the
 * kernel carries them, zero bytes added.  At most FANOUT_RATE a second (a host that
 * announces in a tight loop must not flood every joiner's uplink); beyond that its
 * broadcasts stay on its LAN. */
#define FANOUT_RATE 20.0
#define FANOUT_BURST 40.0

static pthread_mutex_t fan_mu = PTHREAD_MUTEX_INITIALIZER;

static bool fanout_take(struct shim_host *h)
{
	bool ok;

	pthread_mutex_lock(&fan_mu);
	uint64_t now = shim_now_ms();
	if (!h->fan_ms)
		h->fan_tokens = FANOUT_BURST;
	else
		h->fan_tokens += (double)(now - h->fan_ms) * FANOUT_RATE / 1000.0;
	h->fan_ms = now;
	if (h->fan_tokens > FANOUT_BURST)
		h->fan_tokens = FANOUT_BURST;
	ok = h->fan_tokens >= 1.0;
	if (ok)
		h->fan_tokens -= 1.0;
	else
		h->fan_dropped++;
	bool warn = !ok && !h->fan_warned;
	if (warn)
		h->fan_warned = true;
	pthread_mutex_unlock(&fan_mu);
	if (warn)
		n4_warn("host: more than %.0f broadcasts a second: the rest stay on this LAN "
			"(joiners do not get them)",
			FANOUT_RATE);
	return ok;
}

/* Lock-free: up to `max` real addresses of peers listening on port, from peer
 * index *from on (advanced past the last one scanned). */
static unsigned fanout_scan(struct shim_host *h, uint16_t port, unsigned *from,
			    struct sockaddr_in *to, unsigned max)
{
	for (;;) {
		unsigned g = __atomic_load_n(&h->gen, __ATOMIC_ACQUIRE);
		if (g & 1)
			continue;
		unsigned hi = __atomic_load_n(&h->hi, __ATOMIC_RELAXED), i = *from, n = 0;
		for (; i < hi && n < max; i++) {
			struct shim_peer *p = &h->peers[i];
			if (__atomic_load_n(&p->used, __ATOMIC_RELAXED) && p->room_port == port)
				to[n++] = p->real;
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&h->gen, __ATOMIC_RELAXED) == g) {
			*from = i;
			return n;
		}
	}
}

unsigned shim_host_fanout(struct shim_host *h, int fd, int family, const struct msghdr *msg,
			  int flags)
{
	struct sockaddr_in v4, to[64]; /* on the stack: a send may run in a signal handler */
	unsigned sent = 0, from = 0, n;
	bool allowed = false;

	if (!msg->msg_name || !shim_to_v4(msg->msg_name, msg->msg_namelen, &v4) ||
	    (!shim_is_multicast(v4.sin_addr.s_addr) && !shim_is_broadcast(v4.sin_addr.s_addr)))
		return 0;
	uint16_t port = ntohs(v4.sin_port);
	while ((n = fanout_scan(h, port, &from, to, sizeof(to) / sizeof(to[0]))) > 0) {
		if (!sent && !allowed && !(allowed = fanout_take(h)))
			return 0;
		for (unsigned i = 0; i < n; i++) {
			struct sockaddr_storage a;
			struct msghdr m = *msg;
			to[i].sin_family = AF_INET;
			m.msg_name = &a;
			m.msg_namelen = shim_to_family(family, &to[i], &a);
			(void)REAL(sendmsg)(fd, &m, flags | MSG_DONTWAIT);
			sent++;
		}
	}
	return sent;
}

void shim_host_in(struct shim_host *h, int family, struct sockaddr *from, socklen_t *len,
		  socklen_t cap)
{
	struct sockaddr_in v4;
	struct sockaddr_storage out;

	if (!from || !len || !cap || !shim_to_v4(from, *len < cap ? *len : cap, &v4) ||
	    !lookup(h, &v4, false))
		return;
	socklen_t n = shim_to_family(family, &v4, &out);
	memcpy(from, &out, n < cap ? n : cap);
	*len = n;
}

/* ------------------------------------------------------------------ steering --- */

/* The reuseport group's program: 1 (the helper, our second socket) for a PUNCH or
 * APUNCH carrying our identifier, and for a relay's 12-byte answer from the server
 * that carries one of our relayed peers' tokens, or, while a join runs, comes from
 * a port of the server that is not a known peer's relay (the new join's relay).
 * 0 (the program's socket) for everything else.  The data starts at the UDP
 * payload; the source IP is read through SKF_NET_OFF. */
static int steer(struct shim_host *h, const struct shim_config *cfg)
{
	uint8_t id[N4_PAYLOAD_SIZE];
	unsigned nrelay = 0, n = 0;

	for (unsigned i = 0; i < h->hi; i++)
		nrelay += h->peers[i].used && h->peers[i].relayed;
	if (n4_ident_encode(cfg->wire_ident, id) < 0)
		return -EINVAL;
	struct sock_filter *c = calloc(37 + 9 * nrelay, sizeof(*c));
	if (!c)
		return -ENOMEM;
#define S(code, k) (c[n++] = (struct sock_filter)BPF_STMT(code, k))
#define JEQ(k, jt, jf) (c[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf))
	S(BPF_LD | BPF_W | BPF_LEN, 0);		 /* 0 */
	JEQ(N4_MSG_SIZE, 0, 2);			 /* 1 */
	S(BPF_LD | BPF_B | BPF_ABS, 0);		 /* 2 */
	JEQ(N4_CMD_PUNCH, 3, 8);		 /* 3 */
	JEQ(N4_APUNCH_SIZE, 0, 8);		 /* 4: A = len */
	S(BPF_LD | BPF_B | BPF_ABS, 0);		 /* 5 */
	JEQ(N4_CMD_APUNCH, 0, 5);		 /* 6 */
	S(BPF_LD | BPF_W | BPF_ABS, 2);		 /* 7: the identifier, bytes 2..7 */
	JEQ(be32(id), 0, 3);			 /* 8 */
	S(BPF_LD | BPF_H | BPF_ABS, 6);		 /* 9 */
	JEQ((uint32_t)id[4] << 8 | id[5], 0, 1); /* 10 */
	S(BPF_RET | BPF_K, 1);			 /* 11 */
	S(BPF_RET | BPF_K, 0);			 /* 12 */
	/* 13: A = len.  A joiner's late SIDE (an older joiner sends one, a
	 * host takes none) carries the identifier at the same place. */
	c[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, N4_SIDE_MIN_SIZE, 0, 9);
	c[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, N4_SIDE_MAX_SIZE, 8, 0);
	S(BPF_LD | BPF_B | BPF_ABS, 0);				 /* 15 */
	JEQ(N4_CMD_SIDE, 0, 5);					 /* 16 */
	S(BPF_LD | BPF_W | BPF_ABS, 2);				 /* 17 */
	JEQ(be32(id), 0, 3);					 /* 18 */
	S(BPF_LD | BPF_H | BPF_ABS, 6);				 /* 19 */
	JEQ((uint32_t)id[4] << 8 | id[5], 0, 1);		 /* 20 */
	S(BPF_RET | BPF_K, 1);					 /* 21 */
	S(BPF_RET | BPF_K, 0);					 /* 22 */
	JEQ(N4_RELAY_REG_SIZE, 1, 0);				 /* 23: A = len */
	S(BPF_RET | BPF_K, 0);					 /* 24 */
	S(BPF_LD | BPF_B | BPF_ABS, 0);				 /* 25 */
	JEQ(N4_CMD_RELAY_REG, 1, 0);				 /* 26 */
	S(BPF_RET | BPF_K, 0);					 /* 27 */
	S(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12); /* 28: source IP */
	JEQ(ntohl(cfg->server_ip.s_addr), 1, 0);		 /* 29 */
	S(BPF_RET | BPF_K, 0);					 /* 30 */
	S(BPF_LD | BPF_B | BPF_ABS, (uint32_t)SKF_NET_OFF);	 /* 31: X = IP header length */
	S(BPF_ALU | BPF_AND | BPF_K, 0xf);			 /* 32 */
	S(BPF_ALU | BPF_LSH | BPF_K, 2);			 /* 33 */
	S(BPF_MISC | BPF_TAX, 0);				 /* 34 */
	S(BPF_LD | BPF_H | BPF_IND, (uint32_t)SKF_NET_OFF);	 /* 35: A = source port */
	for (unsigned i = 0; i < h->hi; i++) {
		const struct shim_peer *p = &h->peers[i];
		if (!p->used || !p->relayed)
			continue;
		const uint8_t *t = p->res.relay_token;
		JEQ(ntohs(p->real.sin_port), 0, 8); /* not its relay: the next block */
		S(BPF_LD | BPF_W | BPF_ABS, 2);
		JEQ(be32(t), 0, 5);
		S(BPF_LD | BPF_W | BPF_ABS, 6);
		JEQ(be32(t + 4), 0, 3);
		S(BPF_LD | BPF_H | BPF_ABS, 10);
		JEQ((uint32_t)t[8] << 8 | t[9], 0, 1);
		S(BPF_RET | BPF_K, 1);
		S(BPF_RET | BPF_K, 0);
	}
	/* No known peer's relay port: a new join's relay, or the program's data. */
	S(BPF_RET | BPF_K, h->joining ? 1u : 0u);
#undef S
#undef JEQ
	struct sock_fprog prog = { .len = (unsigned short)n, .filter = c };
	int rc = 0;
	if (REAL(setsockopt)(h->helper, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) <
	    0)
		rc = -errno;
	free(c);
	return rc;
}

/* ------------------------------------------------------------------- peers --- */

static void log_peer(const struct shim_peer *p, const char *what)
{
	char a[32], r[32];

	n4_info_uncapped("host: peer %s %s (%s, real %s)", n4_addr_str(&p->alias, a, sizeof(a)),
			 what, p->relayed ? "relayed" : "direct",
			 n4_addr_str(&p->real, r, sizeof(r)));
}

static void seq_begin(struct shim_host *h)
{
	__atomic_store_n(&h->gen, h->gen + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void seq_end(struct shim_host *h)
{
	__atomic_store_n(&h->gen, h->gen + 1, __ATOMIC_RELEASE);
}

/* Lock held. */
static void peer_drop(struct shim_host *h, struct shim_peer *p, const char *why)
{
	log_peer(p, why);
	seq_begin(h);
	__atomic_store_n(&p->used, false, __ATOMIC_RELAXED);
	while (h->hi && !h->peers[h->hi - 1].used)
		h->hi--;
	seq_end(h);
	n4_path_free(p->path);
	p->path = NULL;
}

static bool addr_taken(const struct shim_host *h, const struct sockaddr_in *a,
		       const struct shim_peer *self)
{
	for (unsigned i = 0; i < h->hi; i++) {
		const struct shim_peer *p = &h->peers[i];
		if (p->used && p != self && (same(&p->alias, a) || same(&p->real, a)))
			return true;
	}
	return false;
}

static bool id_zero(const uint8_t *id)
{
	for (unsigned i = 0; i < N4_ROOM_ID_SIZE; i++)
		if (id[i])
			return false;
	return true;
}

static struct shim_peer *peer_by_id(struct shim_host *h, const uint8_t *id)
{
	if (id_zero(id))
		return NULL;
	for (unsigned i = 0; i < h->hi; i++)
		if (h->peers[i].used && h->peers[i].have_id &&
		    memcmp(h->peers[i].id, id, N4_ROOM_ID_SIZE) == 0)
			return &h->peers[i];
	return NULL;
}

static struct shim_peer *peer_free_slot(struct shim_host *h)
{
	for (unsigned i = 0; i < h->cap; i++)
		if (!h->peers[i].used)
			return &h->peers[i];
	return NULL;
}

static void keep_peer(struct shim_peer *p, const struct shim_config *cfg)
{
	if (!p->path) {
		struct n4_path_cfg pc;
		n4_path_cfg_init(&pc);
		pc.keepalive_s = cfg->keepalive_s;
		/* A joiner recovers and upgrades its side, and its new rendezvous
		 * reaches us as a join with its peer id: nothing for us to start. */
		pc.recover = false;
		pc.upgrade_s = 0;
		pc.stay = false;
		p->path = n4_path_new(&pc);
		if (!p->path) {
			n4_warn("host: %s: a peer gets no keepalive", strerror(errno));
			return;
		}
	}
	n4_path_won(p->path, shim_now_ms(), p->relayed, p->tx, p->rx);
}

/* Lock held: the answer to `j` won (res).  The peer keeps its alias if it had
 * one; another peer at the same real address is gone (its NAT gave the address
 * to this one). */
static void peer_won(struct shim_host *h, const struct n4_join *j, const struct n4_result *res,
		     unsigned rtt_ms, const struct shim_config *cfg)
{
	struct shim_peer *p = peer_by_id(h, j->peer_id);
	bool had = p != NULL, was_relayed = p && p->relayed;

	for (unsigned i = 0; i < h->hi; i++) {
		struct shim_peer *o = &h->peers[i];
		if (o->used && o != p && same(&o->real, &res->peer))
			peer_drop(h, o, "gone (its address went to a new peer)");
	}
	if (!p)
		p = peer_free_slot(h);
	if (!p) {
		char r[32];
		n4_warn("host: %u peers already (N4_MAX_PEERS): %s not added", h->cap,
			n4_addr_str(&res->peer, r, sizeof(r)));
		return;
	}
	seq_begin(h);
	if (!had) {
		memset(p, 0, sizeof(*p));
		p->alias = res->peer;
		if (addr_taken(h, &p->alias, p)) {
			h->synth++;
			p->alias.sin_addr.s_addr = htonl(0xc6120000u | (h->synth & 0x1ffffu));
		}
		p->have_id = !id_zero(j->peer_id);
		memcpy(p->id, j->peer_id, sizeof(p->id));
		p->room_port = (uint16_t)(j->peer_id[4] << 8 | j->peer_id[5]);
		p->since = time(NULL);
		p->heard_ms = shim_now_ms();
	}
	p->real = res->peer;
	p->relayed = res->relayed;
	p->res = *res;
	p->rtt_ms = rtt_ms;
	p->path_since = time(NULL);
	__atomic_store_n(&p->used, true, __ATOMIC_RELAXED);
	unsigned idx = (unsigned)(p - h->peers);
	if (idx + 1 > h->hi)
		h->hi = idx + 1;
	seq_end(h);
	keep_peer(p, cfg);
	if (!had)
		log_peer(p, "joined");
	else if (was_relayed != p->relayed)
		log_peer(p, p->relayed ? "relayed" : "direct");
	else
		log_peer(p, "recovered");
}

/* ------------------------------------------------------------------- joins --- */

struct join_work {
	struct shim_host *h;
	struct n4_join j;
};

/* Datagrams an earlier join left for the helper (late PUNCHes) must not be taken
 * for this one's. */
static void drain(int fd)
{
	unsigned char buf[128];

	while (REAL(recvfrom)(fd, buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL) >= 0)
		;
}

static void *join_main(void *arg)
{
	struct join_work *w = arg;
	struct shim_host *h = w->h;
	struct n4_result res;
	unsigned rtt = UINT_MAX;
	int rc;

	shim_guard++;
	const struct shim_config *cfg = shim_config_resolved();
	struct n4_client_cfg cc = cfg->client;
	cc.no_ipv6 = true; /* a room's paths share the host's IPv4 socket */
	cc.room_answer = true;
	memcpy(cc.room_ticket, w->j.ticket, sizeof(cc.room_ticket));
	cc.host_fd = h->helper;
	cc.timeout_ms = JOIN_TIMEOUT_MS;
	cc.caller_reports = true;
	cc.return_on_eintr = false;
	cc.cancel = &h->cancel;
	cc.stay = false;
	cc.have_peer_id = false;
	/* The other peers' PUNCHes (late ones, keepalives) carry our identifier, often
	 * from this joiner's NAT: never this joiner's WIN.  The joiner's own old
	 * address stays allowed (a port-preserving NAT gives it again). */
	struct sockaddr_in *ex = NULL;
	unsigned nex = 0;
	shim_lock();
	if (h->hi && (ex = malloc(h->hi * sizeof(*ex))) != NULL) {
		for (unsigned i = 0; i < h->hi; i++) {
			const struct shim_peer *p = &h->peers[i];
			if (p->used &&
			    !(p->have_id && memcmp(p->id, w->j.peer_id, sizeof(p->id)) == 0))
				ex[nex++] = p->real;
		}
	}
	shim_unlock();
	cc.room_exclude = ex;
	cc.room_nexclude = nex;
	drain(h->helper);
	memset(&res, 0, sizeof(res));
	n4_client *client = n4_client_new(&cc);
	rc = client ? n4_client_run(client, &res) : -errno;
	if (rc == 0) {
		/* The confirmation is one exchange of acknowledged PUNCHes with the
		 * joiner: its length is the path's round trip, as first seen. */
		uint64_t t0 = shim_now_ms();
		int crc = n4_client_confirm(client);
		if (crc == 0 && !res.relayed)
			rtt = (unsigned)(shim_now_ms() - t0);
	}
	n4_client_free(client);
	free(ex);
	shim_lock();
	if (rc == 0 && !h->dead)
		peer_won(h, &w->j, &res, rtt, cfg);
	else if (rc < 0 && !h->dead)
		n4_warn("host: a joiner could not be reached: %s", strerror(-rc));
	h->joining = false;
	if (!h->dead) {
		int src = steer(h, cfg);
		if (src < 0)
			n4_warn("host: cannot update the datagram steering: %s", strerror(-src));
	}
	shim_unlock();
	shim_guard--;
	free(w);
	return NULL;
}

/* Lock held: answer the next join in line. */
static void join_next(struct shim_host *h, const struct shim_config *cfg)
{
	if (h->joining || !h->qn)
		return;
	struct join_work *w = malloc(sizeof(*w));
	if (!w)
		return; /* next tick */
	w->h = h;
	w->j = h->queue[0];
	memmove(h->queue, h->queue + 1, (h->qn - 1) * sizeof(h->queue[0]));
	h->qn--;
	h->joining = true;
	int src = steer(h, cfg); /* a new relay's answers to the helper */
	if (src < 0)
		n4_warn("host: cannot update the datagram steering: %s", strerror(-src));
	int rc = shim_spawn(join_main, w);
	if (rc < 0) {
		n4_warn("host: cannot start a thread for a joiner: %s", strerror(-rc));
		h->joining = false;
		free(w);
	}
}

/* Lock held: a join the server told us about.  A peer we do not know while the
 * table is full is not answered (the joiner then waits at the server in vain,
 * rather than winning a path that we would not show to the program). */
static void join_queue(struct shim_host *h, const struct n4_join *j)
{
	char hex[2 * N4_ROOM_ID_SIZE + 1];

	if (!peer_by_id(h, j->peer_id) && !peer_free_slot(h)) {
		n4_warn("host: room full (N4_MAX_PEERS=%u): a joiner is turned away", h->cap);
		return;
	}
	if (h->qn == JOIN_QUEUE) {
		n4_warn("host: %u joiners already wait: one is turned away", JOIN_QUEUE);
		return;
	}
	for (unsigned i = 0; i < N4_ROOM_ID_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", j->peer_id[i]);
	n4_debug("host: a joiner (peer id %s) waits", hex);
	h->queue[h->qn++] = *j;
}

/* ------------------------------------------------------------------ the room --- */

static void *room_main(void *arg)
{
	struct shim_host *h = arg;
	char why[256] = "";

	shim_guard++;
	const struct shim_config *cfg = shim_config_resolved();
	int fd = cfg->error ? cfg->error : n4_room_host(&cfg->client, h->cap, why, sizeof(why));
	shim_lock();
	h->registering = false;
	if (fd >= 0 && h->dead) {
		REAL(close)(fd);
	} else if (fd >= 0) {
		h->room_fd = fd;
		memset(&h->rx, 0, sizeof(h->rx));
		h->retry_wait_ms = ROOM_RETRY_MIN_MS;
		n4_info("host: room '%s' open at %s port %u, local port %u, up to %u peers",
			cfg->ident, cfg->server_host, cfg->server_port, ntohs(h->bound.sin_port),
			h->cap);
	} else if (cfg->error) {
		shim_config_report(cfg);
		h->refused = true;
	} else if (fd == -ENOTSUP || fd == -EADDRINUSE || fd == -EACCES) {
		/* Final: the program's socket goes on as a plain one. */
		n4_error("host: cannot host room '%s': %s", cfg->ident, why);
		h->refused = true;
	} else {
		n4_warn("host: room '%s' not registered (%s): again in %u s", cfg->ident,
			why[0] ? why : strerror(-fd), (unsigned)(h->retry_wait_ms / 1000));
		h->retry_ms = shim_now_ms() + h->retry_wait_ms;
		h->retry_wait_ms = h->retry_wait_ms * 2 > ROOM_RETRY_MAX_MS ? ROOM_RETRY_MAX_MS
									    : h->retry_wait_ms * 2;
	}
	shim_unlock();
	shim_guard--;
	return NULL;
}

/* Lock held: the room connection (register it, read the joins on it). */
static void room_tick(struct shim_host *h, const struct shim_config *cfg, uint64_t now)
{
	if (h->room_fd < 0) {
		if (h->registering || h->refused || now < h->retry_ms)
			return;
		h->registering = true;
		int rc = shim_spawn(room_main, h);
		if (rc < 0) {
			h->registering = false;
			h->retry_ms = now + ROOM_RETRY_MIN_MS;
		}
		return;
	}
	for (;;) {
		struct n4_join j;
		int rc = n4_room_poll(h->room_fd, &h->rx, &j);
		if (rc == 1) {
			join_queue(h, &j);
			continue;
		}
		if (rc < 0) {
			n4_warn("host: room connection lost (%s): registering again",
				strerror(-rc));
			REAL(close)(h->room_fd);
			h->room_fd = -1;
			h->retry_ms = now;
		}
		break;
	}
	join_next(h, cfg);
}

/* ------------------------------------------------------------------- upkeep --- */

static void peer_keepalive(struct shim_host *h, struct shim_peer *p, const struct shim_config *cfg)
{
	if (p->relayed) {
		uint8_t reg[N4_RELAY_REFRESH_SIZE];
		size_t n = n4_relay_refresh_build(&p->res, reg);
		if (REAL(sendto)(h->helper, reg, n, MSG_DONTWAIT | MSG_NOSIGNAL,
				 (struct sockaddr *)&p->real, sizeof(p->real)) < 0)
			n4_debug("host: relay refresh: %s", strerror(errno));
		return;
	}
	int rc = n4_path_keepalive_send(h->helper, (struct sockaddr *)&p->real, sizeof(p->real),
					cfg->wire_ident,
					cfg->client.low_ttl > 0 ? cfg->client.low_ttl : 2);
	if (rc < 0)
		n4_debug("host: keepalive: %s", strerror(-rc));
}

/* Lock held: each peer's keepalive, and forgetting the silent ones. */
static void peers_tick(struct shim_host *h, const struct shim_config *cfg, uint64_t now)
{
	for (unsigned i = 0; i < h->hi; i++) {
		struct shim_peer *p = &h->peers[i];
		if (!p->used)
			continue;
		uint64_t rx = __atomic_load_n(&p->rx, __ATOMIC_RELAXED);
		if (rx != p->rx_seen) {
			p->rx_seen = rx;
			p->heard_ms = now;
		}
		if (now - p->heard_ms >= (uint64_t)cfg->peer_timeout_s * 1000u) {
			peer_drop(h, p, "gone (silent)");
			continue;
		}
		struct n4_path_todo todo;
		if (!p->path)
			continue;
		unsigned act = n4_path_tick(p->path, now, __atomic_load_n(&p->tx, __ATOMIC_RELAXED),
					    rx, &todo);
		if (act & (N4_PATH_KEEPALIVE | N4_PATH_RELAY_REFRESH))
			peer_keepalive(h, p, cfg);
	}
}

/* Lock held: N4_STATUS, rewritten whole (a reader never sees half a file). */
static void status_write(struct shim_host *h, const struct shim_config *cfg, uint64_t now)
{
	char tmp[sizeof(cfg->status_path) + 16], a[32], r[32];

	if (!cfg->status_path[0] || now < h->status_ms)
		return;
	h->status_ms = now + STATUS_EVERY_MS;
	snprintf(tmp, sizeof(tmp), "%s.%d", cfg->status_path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		n4_debug("host: %s: %s", tmp, strerror(errno));
		return;
	}
	FILE *f = fdopen(fd, "w");
	if (!f) {
		REAL(close)(fd);
		return;
	}
	unsigned n = 0;
	for (unsigned i = 0; i < h->hi; i++)
		n += h->peers[i].used;
	fprintf(f, "# n4shim host: room '%s', local port %u, %s, %u peers, at %lld\n", cfg->ident,
		ntohs(h->bound.sin_port),
		h->room_fd >= 0 ? "open" : (h->refused ? "refused" : "registering"), n,
		(long long)time(NULL));
	for (unsigned i = 0; i < h->hi; i++) {
		const struct shim_peer *p = &h->peers[i];
		if (!p->used)
			continue;
		fprintf(f, "peer %s real %s %s rtt ", n4_addr_str(&p->alias, a, sizeof(a)),
			n4_addr_str(&p->real, r, sizeof(r)), p->relayed ? "relayed" : "direct");
		if (p->rtt_ms != UINT_MAX)
			fprintf(f, "%u", p->rtt_ms);
		else
			fputc('-', f);
		fprintf(f, " since %lld path-since %lld\n", (long long)p->since,
			(long long)p->path_since);
	}
	bool ok = fflush(f) == 0;
	ok = fclose(f) == 0 && ok; /* fclose closes fd through libc, not our hooks' table */
	if (!ok || rename(tmp, cfg->status_path) < 0) {
		n4_debug("host: %s: %s", cfg->status_path, strerror(errno));
		unlink(tmp);
	}
}

/* Lock held: the program closed its socket; we let go of everything. */
static void host_end(struct shim_host *h)
{
	if (h->helper >= 0) {
		REAL(close)(h->helper);
		h->helper = -1;
	}
	if (h->room_fd >= 0) {
		REAL(close)(h->room_fd);
		h->room_fd = -1;
	}
	for (unsigned i = 0; i < h->hi; i++)
		if (h->peers[i].used)
			peer_drop(h, &h->peers[i], "gone (the program closed its socket)");
	h->qn = 0;
}

void shim_hosts_tick(uint64_t now)
{
	const struct shim_config *cfg = shim_config_get();

	for (struct shim_host *h = hosts; h; h = h->next) {
		if (h->pid != getpid())
			continue; /* a forked child: the parent hosts */
		if (h->dead) {
			/* A worker still running returns to a dead host and lets go. */
			if (!h->joining && !h->registering && h->helper >= 0)
				host_end(h);
			continue;
		}
		room_tick(h, cfg, now);
		peers_tick(h, cfg, now);
		status_write(h, cfg, now);
	}
}

/* ------------------------------------------------------------ the bind call --- */

/* Lock held: the helper socket, bound where the program's is. */
static int helper_open(const struct shim_sock *s, const struct sockaddr *addr, socklen_t len)
{
	int one = 1;
	/* libn4 punches over IPv4 from an AF_INET socket, and an AF_INET socket cannot
	 * share a port with a dual-stack one. */
	if (s->family != AF_INET)
		return -EAFNOSUPPORT;
	int fd = REAL(socket)(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	if (REAL(setsockopt)(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    REAL(bind)(fd, addr, len) < 0) {
		int e = errno;
		REAL(close)(fd);
		return -e;
	}
	return fd;
}

static struct shim_host *host_new(struct shim_sock *s, const struct shim_config *cfg)
{
	struct shim_host *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->peers = calloc(cfg->max_peers, sizeof(*h->peers));
	if (!h->peers) {
		free(h);
		return NULL;
	}
	h->cap = cfg->max_peers;
	h->s = s;
	h->pid = getpid();
	h->helper = h->room_fd = -1;
	h->retry_wait_ms = ROOM_RETRY_MIN_MS;
	return h;
}

int shim_host_bind(int fd, struct shim_sock *s, const struct sockaddr *addr, socklen_t len)
{
	const struct shim_config *cfg = shim_config_get();
	int one = 1;

	if (cfg->error) {
		shim_config_report(cfg);
		return REAL(bind)(fd, addr, len); /* a plain socket, as without us */
	}
	if (s->family != AF_INET) {
		n4_error("host: port %u is not hosted: only an AF_INET socket can host (this "
			 "one is IPv6)",
			 cfg->host_port);
		return REAL(bind)(fd, addr, len);
	}
	struct shim_host *h = host_new(s, cfg);
	if (!h) {
		n4_error("host: out of memory: port %u is not hosted", cfg->host_port);
		return REAL(bind)(fd, addr, len);
	}
	/* The reuseport group forms at bind: the program's socket first (index 0). */
	if (REAL(setsockopt)(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		n4_error("host: SO_REUSEPORT: %s: port %u is not hosted", strerror(errno),
			 cfg->host_port);
		free(h->peers);
		free(h);
		return REAL(bind)(fd, addr, len);
	}
	if (REAL(bind)(fd, addr, len) < 0) {
		int e = errno;
		free(h->peers);
		free(h);
		errno = e;
		return -1;
	}
	socklen_t bl = sizeof(struct sockaddr_storage);
	struct sockaddr_storage b;
	int hfd = -1, src = -EINVAL;
	if (REAL(getsockname)(fd, (struct sockaddr *)&b, &bl) == 0)
		hfd = helper_open(s, (struct sockaddr *)&b, bl);
	if (hfd >= 0) {
		h->helper = hfd;
		shim_to_v4((struct sockaddr *)&b, bl, &h->bound);
		src = steer(h, cfg);
	}
	if (hfd < 0 || src < 0) {
		/* The program's bind stands: it gets a plain socket and one clear line. */
		n4_error("host: cannot set up hosting on port %u: %s%s", cfg->host_port,
			 strerror(-(hfd < 0 ? hfd : src)),
			 hfd == -EAFNOSUPPORT ? " (only an AF_INET socket can host)" : "");
		if (hfd >= 0)
			REAL(close)(hfd);
		free(h->peers);
		free(h);
		return 0;
	}
	h->next = hosts;
	hosts = h;
	__atomic_store_n(&s->host, h, __ATOMIC_RELEASE);
	int krc = shim_keeper_start();
	if (krc < 0)
		n4_warn("host: no keeper thread (%s): the room is not registered", strerror(-krc));
	return 0;
}

void shim_host_release(struct shim_sock *s)
{
	struct shim_host *h = s->host;

	if (!h)
		return;
	__atomic_store_n(&s->host, NULL, __ATOMIC_RELEASE);
	h->s = NULL;
	h->dead = true;
	h->cancel = 1;
	if (!h->joining && !h->registering)
		host_end(h);
}

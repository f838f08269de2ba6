/* keeper.c - the life of a path after its designation, off the program's threads.
 *
 * One keeper thread per process, started with the first designation, runs one
 * steady tick.  What to do for each punched path (keepalive or relay refresh,
 * recovery on a dead path or a server notice, the slow retry of a direct punch on
 * a relayed path, registering a lost server connection again) is libn4's decision
 * (n4_path_tick, lib/path.c); the keeper does it: sends, spawns the rendezvous,
 * swaps sockets.  It also hands over paths shared through fork() and ends the
 * deadlines of designating calls that wait.
 * Each rendezvous (a listener's, a recovery's, a send's) runs in its own short-lived
 * worker thread, because libn4's client blocks; it installs its result under the
 * table lock (shim_path_finish) and wakes the waiters.  Keeper and workers run with
 * every signal blocked, so the program's handlers only ever run on its own threads,
 * and with the guard set, so their socket calls never enter the hooks.
 *
 * Program threads never run protocol code: a designating call waits in read() on an
 * eventfd of its own, which the kernel restarts after a SA_RESTART handler and
 * interrupts (EINTR) after any other, exactly as for a blocking receive. */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "key.h"
#include "log.h"
#include "loop.h"
#include "rand.h"

/* The pace at which libn4's path rules sample a path's counters (n4_path_tick),
 * and waiters' deadlines are checked. */
#define KEEPER_TICK_MS 100

/* The SIDE exchange after a first path's WIN: a round trip or two; an older n4
 * peer never answers, and costs its designation this much. */
#define SHIM_SIDE_MS 300

/* Flows of this process start their rendezvous at least this far apart: a
 * rendezvous' NAT discovery takes a few tens of ms on a quiet NAT. */
#define FLOW_STAGGER_MS 80
static uint64_t flow_next_ms; /* lock held */

struct shim_waiter {
	int efd;
	uint64_t deadline_ms;
	struct shim_waiter *next;
};

static struct shim_sock *paths; /* lock held */
static struct shim_waiter *waiters;
static bool keeper_running;
static pid_t fork_parent; /* in a child of fork(): the parent, which keeps its paths */
static pid_t pid_at_fork; /* getpid() just before fork(): a parent that exits at
			   * once may be gone before the child's handler runs */
static bool atfork_set;

static void keeper_atfork_prepare(void)
{
	pid_at_fork = getpid();
}

struct work {
	struct shim_sock *s;
	enum shim_trigger how;
};

void shim_path_add(struct shim_sock *s)
{
	if (s->in_paths)
		return;
	s->in_paths = true;
	s->next_path = paths;
	paths = s;
}

void shim_path_remove(struct shim_sock *s)
{
	if (!s->in_paths)
		return;
	for (struct shim_sock **pp = &paths; *pp; pp = &(*pp)->next_path) {
		if (*pp == s) {
			*pp = s->next_path;
			break;
		}
	}
	s->in_paths = false;
	s->next_path = NULL;
}

static bool has_fd(const struct shim_sock *s)
{
	for (unsigned i = 0; i < s->fd_cap; i++)
		if (s->fds[i] >= 0)
			return true;
	return false;
}

static int first_fd(const struct shim_sock *s)
{
	for (unsigned i = 0; i < s->fd_cap; i++)
		if (s->fds[i] >= 0)
			return s->fds[i];
	return -1;
}

struct shim_sock *shim_path_find(const struct sockaddr_in *ph, int family,
				 const struct shim_sock *self)
{
	for (struct shim_sock *p = paths; p; p = p->next_path) {
		int st = shim_state_of(p);
		if (p == self || !p->have_ph || p->family != family || !has_fd(p))
			continue;
		if (st != SHIM_PENDING && st != SHIM_WON)
			continue;
		if (p->ph.sin_addr.s_addr == ph->sin_addr.s_addr && p->ph.sin_port == ph->sin_port)
			return p;
	}
	return NULL;
}

void shim_wake_all(void)
{
	uint64_t one = 1;

	for (struct shim_waiter *w = waiters; w; w = w->next)
		if (write(w->efd, &one, sizeof(one)) < 0)
			n4_debug("cannot wake a waiting call: %s", strerror(errno));
}

int shim_wait_change(uint64_t deadline_ms)
{
	uint64_t v;

	if (deadline_ms && shim_now_ms() >= deadline_ms)
		return -ETIMEDOUT;
	int efd = eventfd(0, EFD_CLOEXEC);
	if (efd < 0) {
		shim_wait(); /* no eventfd: a condition variable, signals never interrupt it */
		return 0;
	}
	struct shim_waiter w = { efd, deadline_ms, waiters };
	waiters = &w;
	shim_unlock();
	ssize_t n = REAL(read)(efd, &v, sizeof(v));
	int err = errno;
	shim_lock();
	for (struct shim_waiter **pp = &waiters; *pp; pp = &(*pp)->next) {
		if (*pp == &w) {
			*pp = w.next;
			break;
		}
	}
	REAL(close)(efd);
	if (n < 0 && err == EINTR)
		return -EINTR;
	if (deadline_ms && shim_now_ms() >= deadline_ms)
		return -ETIMEDOUT;
	return 0;
}

/* --------------------------------------------------------------- fast flows --- */

/* A flow's rendezvous over its first path's kept connection (n4_client_cfg.fast,
 * doc/PROTOCOL.md "Fast flows").  That connection is read by whoever holds the
 * lock: the keeper's tick, or a flow's worker waiting for its answer (so that
 * the answer is taken when it arrives, not at the next tick).  Answers go to the
 * slot of their tag. */
#define FAST_SLOTS 16
/* A waiting worker looks at the kept connection at least this often, besides
 * waking on its data (the connection may be swapped meanwhile). */
#define FAST_POLL_MS 50
static struct {
	bool busy, have;
	uint8_t tag;
	struct n4_fast_reply r;
} fast_slot[FAST_SLOTS]; /* lock held */
static uint8_t fast_next_tag;
/* The server closed a kept connection while a fast request was under way: an
 * older server of ours (it closes on any message it does not know there).
 * Flows of this process then rendezvous as before. */
static bool fast_off;

struct fast_ctx {
	struct shim_sock *s; /* the flow */
	int slot;
	struct n4_fast_chan ch;
};

static int poll_stay(struct shim_sock *p, const struct shim_config *cfg, uint64_t now);

/* Lock held: a free slot with a tag no other request uses, or -1. */
static int fast_slot_take(void)
{
	for (int i = 0; i < FAST_SLOTS; i++) {
		if (fast_slot[i].busy)
			continue;
		bool used;
		do {
			fast_next_tag = (uint8_t)(fast_next_tag + 1 ? fast_next_tag + 1 : 1);
			used = false;
			for (int k = 0; k < FAST_SLOTS; k++)
				used |= fast_slot[k].busy && fast_slot[k].tag == fast_next_tag;
		} while (used);
		fast_slot[i].busy = true;
		fast_slot[i].have = false;
		fast_slot[i].tag = fast_next_tag;
		return i;
	}
	return -1;
}

/* Lock held: an answer read from a kept connection goes to its request. */
static void fast_deliver(const struct n4_fast_reply *r)
{
	for (int i = 0; i < FAST_SLOTS; i++) {
		if (fast_slot[i].busy && fast_slot[i].tag == r->tag) {
			fast_slot[i].r = *r;
			fast_slot[i].have = true;
			shim_fast_broadcast();
			return;
		}
	}
	n4_debug("fast flow answer for tag %u: nobody waits for it (given up), dropped", r->tag);
}

/* Lock held: the kept connection of flow s's first path (its base), or NULL. */
static struct shim_sock *fast_base(const struct shim_sock *s)
{
	struct shim_peer_ref pr;

	if (!shim_peer_find(&s->ph, &pr) || !pr.base || pr.base->working || pr.base->stay_fd < 0)
		return NULL;
	return pr.base;
}

static int fast_send(void *arg, const uint8_t *buf, size_t len)
{
	struct fast_ctx *f = arg;
	ssize_t n = -1;
	int rc;

	shim_lock();
	struct shim_sock *b = fast_base(f->s);
	if (!b) {
		shim_unlock();
		return -EPIPE;
	}
	do
		n = REAL(send)(b->stay_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	rc = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
	if (rc == -EIO) {
		/* Part of it went out: the stream is out of step; a new one. */
		REAL(close)(b->stay_fd);
		b->stay_fd = -1;
		n4_path_stay_lost(b->path, shim_now_ms());
	}
	shim_unlock();
	return rc;
}

/* One worker at a time reads a kept connection (b->fast_reading): it polls it,
 * reads what came (answers go to their slots, fast_deliver) and wakes the
 * others, who wait on a condition meanwhile.  Two workers polling one socket
 * lost answers for up to FAST_POLL_MS: the one that read took its neighbour's
 * answer too, and the neighbour, not yet in poll(), slept on an empty socket
 * (50 ms late, against a peer whose sweep was on time: the first of two flows
 * opened at once lost its round behind Linux NATs). */
static int fast_wait(void *arg, uint8_t tag, struct n4_fast_reply *r, uint64_t deadline_ms)
{
	struct fast_ctx *f = arg;
	(void)tag; /* the slot's */

	shim_lock();
	for (;;) {
		struct shim_sock *b = fast_base(f->s);
		if (fast_slot[f->slot].have) {
			*r = fast_slot[f->slot].r;
			fast_slot[f->slot].have = false;
			shim_unlock();
			return 1;
		}
		int fd = b ? b->stay_fd : -1;
		uint64_t now = n4_now_ms();
		int rc = f->s->cancel ? -ECANCELED : fd < 0 ? -EPIPE : now >= deadline_ms ? -ETIMEDOUT : 0;
		if (rc) {
			shim_unlock();
			return rc;
		}
		uint64_t ms = deadline_ms - now < FAST_POLL_MS ? deadline_ms - now : FAST_POLL_MS;
		if (b->fast_reading) {
			shim_fast_wait(shim_now_ms() + ms);
			continue;
		}
		b->fast_reading = true;
		shim_unlock();
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		(void)poll(&pf, 1, (int)ms);
		shim_lock();
		b->fast_reading = false;
		if (fast_base(f->s) == b && b->stay_fd == fd) {
			/* Closed on us (not a REPUNCH, which closes it too). */
			int prc = poll_stay(b, shim_config_get(), shim_now_ms());
			if (prc == -ECONNRESET && !fast_slot[f->slot].have && !fast_off) {
				fast_off = true;
				n4_info("the server closed its connection at a fast flow request (an "
					"older n4 server?): this process's flows rendezvous as before");
			}
		}
		shim_fast_broadcast();
	}
}

/* ------------------------------------------------------------------ workers --- */

static void *worker_main(void *arg)
{
	struct work *w = arg;
	struct shim_sock *s = w->s;
	enum shim_trigger how = w->how;
	struct n4_client_cfg ccfg;
	struct n4_result res;
	int rc, winfd = -1, stay_fd = -1;
	bool want_side = false, fast = false;
	uint64_t stagger_ms = 0;
	struct n4_side mine, theirs;
	struct fast_ctx fctx = { .s = s, .slot = -1 };

	memset(&mine, 0, sizeof(mine));
	memset(&theirs, 0, sizeof(theirs));
	free(w);
	memset(&res, 0, sizeof(res));
	shim_guard++;
	const struct shim_config *cfg = shim_config_resolved();
	if (cfg->error) {
		shim_config_report(cfg);
		rc = cfg->error;
		goto out;
	}
	ccfg = cfg->client;
	ccfg.cancel = &s->cancel;
	shim_lock();
	if (!s->have_peer_id && n4_random_bytes(s->peer_id, sizeof(s->peer_id)) == 0)
		s->have_peer_id = true;
	/* Its last two bytes: the port this socket hears the room's broadcasts on. */
	s->peer_id[4] = (uint8_t)(s->room_port >> 8);
	s->peer_id[5] = (uint8_t)s->room_port;
	ccfg.have_peer_id = s->have_peer_id;
	memcpy(ccfg.peer_id, s->peer_id, sizeof(ccfg.peer_id));
	/* A flow: the identifier (or key) derived from both sides and both ports,
	 * which the peer derives too; its PUNCHes carry it. */
	if (s->flow) {
		rc = n4_flow_cfg(&ccfg, &s->flow_mine, &s->flow_theirs, s->flow_lport,
				 s->flow_pport);
		if (rc < 0) {
			shim_unlock();
			goto out;
		}
		if (how == SHIM_BY_FLOW)
			ccfg.timeout_ms = cfg->flow_timeout_s * 1000u;
		/* Its first attempt goes over the first path's kept connection
		 * (fast flows), unless that path is IPv6 (a flow's own rendezvous
		 * races IPv6 and wins it directly), relayed (a NAT no model
		 * predicts: the server would say NO), or the server cannot. */
		struct shim_sock *b = fast_base(s);
		if (how == SHIM_BY_FLOW && s->flow_tries == 0 && !fast_off && b && !b->path6 &&
		    !b->res.relayed && (fctx.slot = fast_slot_take()) >= 0) {
			fctx.ch = (struct n4_fast_chan){ .send = fast_send,
							 .wait = fast_wait,
							 .arg = &fctx,
							 .tag = fast_slot[fctx.slot].tag };
			ccfg.fast = &fctx.ch;
			fast = true;
		}
		/* Flows started together (RTP and RTCP of a call) would probe our
		 * NAT at once: each would see the others' ports in its own and
		 * misread the NAT, losing its round.  One at a time, FLOW_STAGGER_MS
		 * apart: the server then counts each one's ports for the next.  A
		 * fast flow probes once, and the server orders the sweeps. */
		uint64_t now = shim_now_ms();
		if (!fast) {
			if (flow_next_ms > now)
				stagger_ms = flow_next_ms - now;
			flow_next_ms = now + stagger_ms + FLOW_STAGGER_MS;
		}
		struct n4_keyed k;
		if (!ccfg.have_key)
			snprintf(s->wire_ident, sizeof(s->wire_ident), "%s", ccfg.ident);
		else if (n4_key_derive(ccfg.key, ccfg.ident, &k) == 0)
			snprintf(s->wire_ident, sizeof(s->wire_ident), "%s", k.short_id);
	}
	/* Rooms stay on IPv4 (doc/LIMITS.md); a flow races IPv6 like its first
	 * path did. */
	if (s->room)
		ccfg.no_ipv6 = true;
	/* A first path to a peer: learn its side after the WIN. */
	if (!s->flow && !s->room &&
	    (how == SHIM_BY_SEND || how == SHIM_BY_CONNECT || how == SHIM_BY_BIND))
		want_side = true;
	shim_unlock();
	if (stagger_ms) {
		struct timespec ts = { 0, (long)stagger_ms * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	ccfg.caller_reports = true;
	ccfg.return_on_eintr = false; /* no signal ever reaches this thread */
	/* A listener waits for its peer as long as a bound socket would. */
	if (how == SHIM_BY_BIND)
		ccfg.timeout_ms = 0;
#ifdef N4_RELAY_REFRESH_SIZE
	/* From a relayed path: a direct punch or nothing, never a second relay. */
	if (how == SHIM_BY_UPGRADE)
		ccfg.no_relay = true;
#endif
	/* Our old kept connection goes first: the server would tell it about our own
	 * new HELLO. */
	shim_lock();
	if (s->stay_fd >= 0) {
		REAL(close)(s->stay_fd);
		s->stay_fd = -1;
	}
	shim_unlock();
	n4_client *client = n4_client_new(&ccfg);
	if (!client) {
		rc = -errno;
		goto out;
	}
	rc = n4_client_run(client, &res);
	if (rc == 0) {
		int crc = n4_client_confirm(client);
		if (crc < 0)
			n4_debug("confirmation ended early: %s", strerror(-crc));
		if (want_side) {
			/* The program's port: what it bound, or the winning one. */
			uint16_t port = res.local_port;
			shim_lock();
			port = shim_port_of((struct sockaddr *)&s->bound_addr, s->bound_len);
			shim_unlock();
			if (!port)
				port = res.local_port;
			int src = shim_side_mine(&mine, port);
			if (src == 0)
				src = n4_client_side(client, &mine, &theirs, SHIM_SIDE_MS);
			if (src < 0)
				n4_debug("the peer's side: %s", strerror(-src));
			else if (src == 0 && res.family == AF_INET6)
				n4_debug("over IPv6 no side is learnt: no flows or LAN aliases");
			else if (src == 0)
				n4_debug(
					"the peer told no side (an older n4): no flows or LAN aliases");
			want_side = src == 1;
		}
		winfd = n4_client_take_fd(client);
		if (winfd < 0)
			rc = winfd;
		stay_fd = n4_client_take_stay_fd(client);
	}
	n4_client_free(client);
out:
	shim_lock();
	if (fctx.slot >= 0)
		fast_slot[fctx.slot].busy = false;
	if (rc == 0 && want_side) {
		s->have_side = true;
		s->side_mine = mine;
		s->side_theirs = theirs;
	}
	shim_path_finish(s, how, rc, winfd, &res, cfg);
	if (fast && rc == 0 && stay_fd < 0 && shim_state_of(s) == SHIM_WON && s->path) {
		/* A fast flow has no server connection of its own: the keeper
		 * registers one for its notices, off the flow's first datagrams. */
		n4_path_stay_up(s->path);
		n4_path_stay_lost(s->path, shim_now_ms());
	}
	if (stay_fd >= 0) {
		if (rc == 0 && shim_state_of(s) == SHIM_WON && !s->cancel && s->stay_fd < 0) {
			s->stay_fd = stay_fd;
			if (s->path)
				n4_path_stay_up(s->path);
			int krc = n4_stay_keepalive(stay_fd, cfg->keepalive_s);
			if (krc < 0)
				n4_debug("server connection keepalive: %s", strerror(-krc));
		} else
			REAL(close)(stay_fd);
	}
	s->working = false;
	shim_wake_all();
	shim_broadcast();
	shim_sock_put(s);
	shim_unlock();
	shim_guard--;
	return NULL;
}

int shim_spawn(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;

	if (pthread_attr_init(&attr))
		return -ENOMEM;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits it */
	int rc = pthread_create(&t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return -rc;
}

static int keeper_ensure(void);
static bool forked_path_ours(struct shim_sock *p, const struct shim_config *cfg);

int shim_worker_start(struct shim_sock *s, enum shim_trigger how)
{
	struct work *w = malloc(sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->s = s;
	w->how = how;
	s->refs++;
	s->working = true;
	s->work = (int)how;
	s->work_start_ms = shim_now_ms();
	shim_path_add(s);
	int rc = shim_spawn(worker_main, w);
	if (rc < 0) {
		free(w);
		s->working = false;
		s->refs--;
		return rc;
	}
	rc = keeper_ensure();
	if (rc < 0)
		n4_warn("no keeper thread (%s): no keepalive or recovery", strerror(-rc));
	return 0;
}

/* ------------------------------------------------------------------- keeper --- */

void shim_path_keep(struct shim_sock *s, bool relayed)
{
	if (!s->path) {
		const struct shim_config *cfg = shim_config_get();
		struct n4_path_cfg pc;
		n4_path_cfg_init(&pc);
		pc.keepalive_s = cfg->keepalive_s;
		pc.upgrade_s = cfg->upgrade_s;
		pc.recover = cfg->recover;
		pc.keyed = cfg->client.have_key;
		pc.stay = cfg->stay;
		s->path = n4_path_new(&pc);
		if (!s->path) {
			n4_warn("fd %d: %s: this path gets no keepalive or recovery", first_fd(s),
				strerror(errno));
			return;
		}
	}
	n4_path_won(s->path, shim_now_ms(), relayed, shim_path_tx(s), shim_path_rx(s));
}

uint64_t shim_path_tx(const struct shim_sock *s)
{
	return __atomic_load_n(&s->tx_count, __ATOMIC_RELAXED);
}

/* Datagrams the program has not read yet count as heard (rx_queued_ticks). */
uint64_t shim_path_rx(const struct shim_sock *s)
{
	return __atomic_load_n(&s->rx_count, __ATOMIC_RELAXED) + s->rx_queued_ticks;
}

static void send_keepalive(struct shim_sock *p, const struct shim_config *cfg, bool relayed)
{
	struct sockaddr_storage to;
	struct shim_view v;
	int fd = first_fd(p);

	shim_view_of(p, &v);
	socklen_t len = shim_view_dest(&v, &to); /* IPv6 path: its TTL is the hop limit */

	if (relayed) {
		uint8_t reg[N4_RELAY_REFRESH_SIZE];
		size_t n = n4_relay_refresh_build(&p->res, reg);
		if (sendto(fd, reg, n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&to, len) <
		    0)
			n4_debug("fd %d: relay refresh: %s", fd, strerror(errno));
		return;
	}
	int rc = n4_path_keepalive_send(fd, (struct sockaddr *)&to, len, p->wire_ident,
					cfg->client.low_ttl > 0 ? cfg->client.low_ttl : 2);
	if (rc < 0)
		n4_debug("fd %d: keepalive: %s", fd, strerror(-rc));
}

/* A kept connection was lost (our NAT forgot its TCP mapping, the server restarted):
 * register a new one (N4_CMD_STAY), in a thread of its own since it connects. */
static void *stay_main(void *arg)
{
	struct shim_sock *s = arg;

	shim_guard++;
	const struct shim_config *cfg = shim_config_get();
	int fd = n4_stay_register(cfg->server_host, cfg->server_port, s->wire_ident, 5000);
	shim_lock();
	s->stay_busy = false;
	if (fd >= 0 && shim_state_of(s) == SHIM_WON && !s->cancel && s->stay_fd < 0 &&
	    !s->working && s->path) {
		s->stay_fd = fd;
		n4_path_stay_up(s->path);
		int krc = n4_stay_keepalive(fd, cfg->keepalive_s);
		if (krc < 0)
			n4_debug("server connection keepalive: %s", strerror(-krc));
		n4_debug("server connection for notices registered again");
	} else {
		if (fd >= 0)
			REAL(close)(fd);
		else
			n4_debug("server connection for notices: %s", strerror(-fd));
		if (s->path)
			n4_path_stay_lost(s->path, shim_now_ms());
	}
	shim_sock_put(s);
	shim_unlock();
	shim_guard--;
	return NULL;
}

static void stay_again(struct shim_sock *p, uint64_t now)
{
	if (p->stay_busy)
		return; /* the one under way reports */
	p->refs++;
	p->stay_busy = true;
	if (shim_spawn(stay_main, p) < 0) {
		p->stay_busy = false;
		p->refs--;
		n4_path_stay_lost(p->path, now);
	}
}

/* The kept connection: a notice that the peer punches again (its program
 * restarted, or its shim found the path dead first), or its loss.  Returns what
 * ended the reading: 0 nothing more yet, 1 a REPUNCH, or -errno (closed). */
static int poll_stay(struct shim_sock *p, const struct shim_config *cfg, uint64_t now)
{
	struct n4_flow_note note = { 0, 0, 0 };
	int rc;

	(void)cfg;
	/* FLOW notices (the peer opens a flow to a port of ours) leave it open. */
	struct n4_fast_reply fr;
	while ((rc = n4_stay_poll_any(p->stay_fd, p->wire_ident, &note, &fr)) >= 2) {
		if (rc == 2)
			shim_flow_notice(p, note.from_port, note.to_port);
		else
			fast_deliver(&fr);
	}
	if (rc == 0)
		return 0;
	REAL(close)(p->stay_fd);
	p->stay_fd = -1;
	n4_path_stay_lost(p->path, now);
	if (rc < 0)
		n4_debug("fd %d: server connection for notices closed: %s", first_fd(p),
			 strerror(-rc));
	else
		n4_path_notice(p->path, now);
	return rc;
}

static void start_attempt(struct shim_sock *p, enum shim_trigger how, uint64_t now)
{
	struct n4_path_info info;
	int fd = first_fd(p);

	n4_path_get_info(p->path, &info);
	if (how == SHIM_BY_UPGRADE)
		n4_debug("fd %d: relayed: trying a direct punch", fd);
	else if (info.told)
		n4_debug("fd %d: the peer punches again (server notice): so do we", fd);
	else if (info.send_failed)
		n4_debug("fd %d: our sends on the path fail (no route): punching again", fd);
	else
		n4_debug("fd %d: nothing from the peer for %u ms while sending: punching again", fd,
			 info.silent_ms);
	if (shim_worker_start(p, how) < 0) {
		n4_debug("fd %d: %s attempt not started", fd,
			 how == SHIM_BY_UPGRADE ? "direct punch" : "recovery");
		n4_path_attempt_not_started(p->path, now);
	}
}

/* Lock held: one path's tick, as libn4's rules say (n4_path_tick). */
static void keep(struct shim_sock *p, const struct shim_config *cfg, uint64_t now)
{
	int queued = 0;

	if (!p->working) {
		/* A fast flow's worker reading it does this (fast_wait). */
		if (p->stay_fd >= 0 && !p->fast_reading)
			poll_stay(p, cfg, now);
		if (ioctl(first_fd(p), FIONREAD, &queued) == 0 && queued > 0)
			p->rx_queued_ticks++;
	}
	/* Data waits on the swapped-in socket: wake the sleepers of the old ones. */
	if (p->nold && (queued > 0 || (ioctl(first_fd(p), FIONREAD, &queued) == 0 && queued > 0)))
		shim_sock_release_old(p);
	if (__atomic_exchange_n(&p->send_lost, 0, __ATOMIC_RELAXED))
		n4_path_send_failed(p->path, now);
	unsigned act = n4_path_tick(p->path, now, shim_path_tx(p), shim_path_rx(p), NULL);
	if (act & (N4_PATH_KEEPALIVE | N4_PATH_RELAY_REFRESH))
		send_keepalive(p, cfg, act & N4_PATH_RELAY_REFRESH);
	if (act & N4_PATH_REGISTER)
		stay_again(p, now);
	if (act & N4_PATH_NOTICE_IGNORED)
		n4_info("fd %d: a re-punch notice ignored: the peer is still talking "
			"(without a key, anyone with the identifier can cause one)",
			first_fd(p));
	if (act & N4_PATH_RECOVER)
		start_attempt(p, SHIM_BY_RECOVER, now);
	if (act & N4_PATH_UPGRADE)
		start_attempt(p, SHIM_BY_UPGRADE, now);
	if (act & N4_PATH_GIVE_UP)
		n4_warn("fd %d: giving up on this path: recovery failed too often", first_fd(p));
}

static void tick(void)
{
	const struct shim_config *cfg = shim_config_get();
	uint64_t now = shim_now_ms(), one = 1;

	shim_lock();
	for (struct shim_waiter *w = waiters; w; w = w->next)
		if (w->deadline_ms && now >= w->deadline_ms && write(w->efd, &one, sizeof(one)) < 0)
			n4_debug("cannot wake a waiting call: %s", strerror(errno));
	for (struct shim_sock *p = paths; p; p = p->next_path) {
		if (!has_fd(p) || !forked_path_ours(p, cfg))
			continue;
		if (p->flow_notify && shim_state_of(p) == SHIM_PENDING)
			shim_flow_notify(p);
		if (shim_state_of(p) != SHIM_WON || !p->path)
			continue;
		keep(p, cfg, now);
	}
	shim_hosts_tick(now);
	shim_unlock();
}

/* A plain periodic sleep rather than libn4's epoll loop: the keeper then holds no
 * descriptor of its own in the program (programs and our tests count them). */
static void *keeper_main(void *arg)
{
	(void)arg;
	shim_guard++;
	for (;;) {
		struct timespec t = { 0, KEEPER_TICK_MS * 1000000L };
		while (nanosleep(&t, &t) < 0 && errno == EINTR)
			;
		tick();
	}
	return NULL;
}

/* Lock held. */
static int keeper_ensure(void)
{
	if (keeper_running)
		return 0;
	if (!atfork_set && pthread_atfork(keeper_atfork_prepare, NULL, NULL) == 0)
		atfork_set = true;
	int rc = shim_spawn(keeper_main, NULL);
	if (rc < 0)
		return rc;
	keeper_running = true;
	return 0;
}

int shim_keeper_start(void)
{
	return keeper_ensure();
}

/* After fork the child has only the forking thread: no keeper, no workers, nobody
 * waiting.  Paths stay; the keeper comes back with the next designation. */
/* After fork the child has only the forking thread: no keeper, no workers, nobody
 * waiting.  Its paths share their sockets with the parent, so exactly one process
 * may keep them, or both would punch again with one identifier and meet each
 * other: the parent, while it lives.  The child's keeper watches: a rendezvous the
 * parent wins on the shared socket shows in the socket's filter (adopted as after
 * exec); when the parent is gone (a daemon's parent exits after fork, as mosh-server's
 * does) the child takes its paths over and runs a rendezvous that was running there. */
/* The child's copies of the parent's connections to the server (a rendezvous in
 * progress, kept connections): closed, or a parent that exits would leave its HELLO
 * waiting at the server, alive through our copy, for the peer (or our own next
 * HELLO) to be paired with.  Raw system calls over the low descriptors: the program's
 * own connections to the rendezvous port of the n4 server would go too. */
static void close_server_copies(void)
{
	const struct shim_config *cfg = shim_config_get();

	if (!cfg->have_server_ip)
		return;
	for (int fd = 0; fd < 1024; fd++) {
		int type = 0;
		socklen_t tl = sizeof(type);
		struct sockaddr_in a;
		socklen_t al = sizeof(a);
		if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
		    type != SOCK_STREAM || syscall(SYS_getpeername, fd, &a, &al) < 0 ||
		    a.sin_family != AF_INET || a.sin_addr.s_addr != cfg->server_ip.s_addr ||
		    a.sin_port != htons(cfg->server_port))
			continue;
		(void)syscall(SYS_close, fd);
	}
}

void shim_keeper_atfork_child(void)
{
	bool any = false, server_conns = false;

	keeper_running = false;
	waiters = NULL;
	fork_parent = pid_at_fork ? pid_at_fork : getppid();
	for (struct shim_sock *p = paths; p; p = p->next_path) {
		if (p->working) {
			p->working = false;
			p->refs--; /* the worker's reference, in the parent */
			server_conns = true;
			/* Its attempt (a recovery, an upgrade) ran in the parent's worker:
			 * none runs here, so the child's copy of the path may start one. */
			if (p->path)
				n4_path_attempt_not_started(p->path, shim_now_ms());
		}
		if (p->stay_fd >= 0) {
			p->stay_fd = -1; /* the parent's; ours is registered when we take over */
			server_conns = true;
		}
		if (p->stay_busy) {
			p->stay_busy = false;
			p->refs--; /* that registering thread's, in the parent */
		}
		p->forked = true;
		any = true;
	}
	if (server_conns)
		close_server_copies();
	if (any && keeper_ensure() < 0)
		n4_warn("no keeper in the child of fork(): its paths are the parent's");
}

/* Lock held.  A path inherited through fork(): false while it is the parent's. */
static bool forked_path_ours(struct shim_sock *p, const struct shim_config *cfg)
{
	if (!p->forked)
		return true;
	if (getppid() == fork_parent) {
		struct shim_filter_state fs;
		int fd = first_fd(p);
		/* The parent won on the shared socket: take what it left in the filter
		 * (a listener's alias for its peer included). */
		if (shim_state_of(p) == SHIM_PENDING && shim_filter_read(fd, &fs)) {
			shim_seq_begin(p);
			p->peer = fs.peer;
			p->path6 = fs.path6;
			p->peer6 = fs.peer6;
			p->ph = fs.ph;
			p->have_ph = fs.have_ph;
			__atomic_store_n(&p->alias_ph, fs.alias, __ATOMIC_RELEASE);
			shim_set_state(p, SHIM_WON);
			shim_seq_end(p);
			shim_path_keep(p, false);
			shim_wake_all();
			n4_info("fd %d: punched by the parent process", fd);
		}
		return false;
	}
	p->forked = false;
	n4_info("fd %d: the parent process is gone: its path is ours now", first_fd(p));
	if (shim_state_of(p) == SHIM_PENDING &&
	    shim_worker_start(p, p->listener ? SHIM_BY_BIND : SHIM_BY_SEND) < 0)
		n4_warn("fd %d: cannot restart its rendezvous", first_fd(p));
	(void)cfg;
	return true;
}

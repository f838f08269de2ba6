/* shim.h - internal interfaces of libn4shim.so: real symbols, the descriptor table,
 * the configuration read from the environment, and designation (rendezvous + swap). */
#ifndef N4_SHIM_H
#define N4_SHIM_H

#include <linux/filter.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "n4.h"

/* ------------------------------------------------------------------ real.c --- */

struct shim_real {
	int (*socket)(int, int, int);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned, int);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned, int, struct timespec *);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*read_chk)(int, void *, size_t, size_t);
	ssize_t (*recv_chk)(int, void *, size_t, size_t, int);
	ssize_t (*recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*close)(int);
	int (*close_range)(unsigned, unsigned, int);
	void (*closefrom)(int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	pid_t (*fork)(void);
};

/* Resolved once (pthread_once), on first use from any hook. */
extern struct shim_real shim_real;
void shim_real_init(void);

/* Non-zero while this thread runs the shim's own code (libn4 included): every hook
 * then goes straight to the real function.  initial-exec: LD_PRELOAD libraries are
 * loaded at start, and the fast path must not call __tls_get_addr. */
extern __thread int shim_guard __attribute__((tls_model("initial-exec")));

#define REAL(name) (shim_real_init(), shim_real.name)

/* ---------------------------------------------------------------- config.c --- */

#define SHIM_JOIN_MAX 8 /* N4_JOIN's ports */
#define SHIM_OLD_MAX 4	/* swapped-out sockets kept for their sleepers */

struct shim_config {
	bool active;		    /* something can be designated at all */
	int error;		    /* 0, or the -errno every designated call fails with */
	char why[512];		    /* the one error line */
	bool have_peer;		    /* N4_PEER given */
	struct sockaddr_in peer_ph; /* N4_PEER placeholder */
	bool have_server_ip;	    /* server host resolved (or literal) */
	struct in_addr server_ip;
	uint16_t server_port;
	uint16_t listen_port;	 /* N4_LISTEN, 0 = none */
	uint16_t host_port;	 /* N4_HOST: the socket bound to it hosts a room, 0 = none */
	unsigned max_peers;	 /* N4_MAX_PEERS: a host's peers at once */
	unsigned peer_timeout_s; /* N4_PEER_TIMEOUT: a host forgets a silent peer */
	char status_path[256];	 /* N4_STATUS: a host's list of peers, rewritten each second */
	uint16_t join_ports[SHIM_JOIN_MAX]; /* N4_JOIN: this process joins the room; the */
	unsigned njoin;			    /* room's broadcast ports */
	struct n4_client_cfg client;	    /* server_host points at server_host below */
	char server_host[256];
	char ident[N4_IDENT_MAX + 1];
	unsigned keepalive_s;	 /* N4_KEEPALIVE: 15, 0 = off */
	bool recover;		 /* N4_RECOVER: 1, 0 = off */
	bool stay;		 /* N4_STAY: 1, keep the server connection for REPUNCH */
	bool ipv6;		 /* N4_IPV6: 1, race a direct IPv6 path beside IPv4 */
	char server6_host[256];	 /* N4_SERVER6, or N4_SERVER's AAAA: "" = none */
	unsigned upgrade_s;	 /* N4_UPGRADE: relayed path, direct punch tried this often */
	unsigned flow_timeout_s; /* N4_FLOW_TIMEOUT: a further flow's attempt, 10 s */
	char wire_ident[N4_IDENT_MAX + 1]; /* what PUNCHes carry: ident, or the key's id */
};

/* Whether port is one of N4_JOIN's. */
bool shim_join_port(const struct shim_config *cfg, uint16_t port);

/* Parsed on first need: cheap part (environment only) on the first socket(), the
 * server name resolved on the first UDP destination seen.  Never NULL. */
const struct shim_config *shim_config_get(void);
/* Same, resolving N4_SERVER's name if not done yet (may block: DNS). */
const struct shim_config *shim_config_resolved(void);
/* Log the configuration error once per process (the "one clear error line"). */
void shim_config_report(const struct shim_config *cfg);

/* ---------------------------------------------------------------- fdtab.c --- */

enum shim_state {
	SHIM_CANDIDATE = 0, /* an AF_INET/AF_INET6 UDP socket of the program */
	SHIM_PENDING,	    /* a designating call is running the rendezvous */
	SHIM_WON,	    /* swapped to the winning port; traffic goes to the peer */
	SHIM_FAILED,	    /* punching failed: sends fail with `err` */
};

#include "session.h"

#define SHIM_MAX_OPTS 16 /* socket options remembered for a swap */
#define SHIM_OPT_LEN 64
#define SHIM_MAX_EPOLL 8 /* epoll registrations remembered for a swap */

struct shim_opt {
	int level, name;
	socklen_t len;
	unsigned char val[SHIM_OPT_LEN];
	void *heap; /* what a pointer in val points at (a filter program), owned here */
};

struct shim_epoll {
	int epfd;
	int fd;
	struct epoll_event ev;
};

/* A shim_sock is a *path*: the connection to one peer, carried by one kernel socket
 * that every descriptor in `fds` points at (dups, a second socket that sent to the
 * same placeholder).  Swapping that socket under all of them is how a late listener
 * WIN, a recovery and a relay-to-direct upgrade reach the program.
 * Entries are never freed, only recycled (type-stable memory): the fast paths read
 * `state` without the lock, and a slot read just before a concurrent close() must
 * still point at a shim_sock. */
struct shim_sock {
	struct shim_sock *next_free;
	unsigned gen;	 /* seqlock: odd while peer/state change, bumped on reuse */
	unsigned refs;	 /* table slots + running rendezvous workers */
	int *fds;	 /* descriptors pointing at this path, -1 = free (kept on reuse) */
	unsigned fd_cap; /* entries in fds */
	int family;	 /* AF_INET or AF_INET6 */
	int type;	 /* SOCK_DGRAM | flags as given to socket() */
	int state;	 /* enum shim_state; read lock-free in fast paths */
	int err;	 /* SHIM_FAILED: positive errno */
	bool prog_bound; /* the program bound it (or we did for it) */
	struct sockaddr_storage bound_addr; /* what the program asked bind() for */
	socklen_t bound_len;
	/* The socket's inode: a number reused behind our back (fclose(fdopen()), a raw
	 * close) no longer matches it (fdops.c). */
	dev_t dev;
	ino_t ino;
	bool connected_ph; /* the program connect()ed to the placeholder */
	bool have_ph;	   /* ph known: rewrite peer <-> placeholder */
	/* ph is the address the peer first had (a listener without N4_PEER): it stands
	 * for the peer for the whole session, whatever recovery and relays change
	 * under it, as a placeholder does for the side that dialled. */
	bool alias_ph;
	struct sockaddr_in ph;	 /* the placeholder this socket was designated with */
	struct sockaddr_in peer; /* the real peer (SHIM_WON), over IPv4 */
	/* A direct IPv6 path won (n4_result.family AF_INET6): the socket under the
	 * descriptors is an AF_INET6 socket bound to our global address, its peer
	 * peer6 (peer is then all zero).  The program never sees it: every call
	 * reports ph in the program's family (send.c, recv.c, fdops.c). */
	bool path6;
	struct sockaddr_in6 peer6;
	uint16_t local_port;	      /* the winning port */
	bool filter;		      /* late PUNCHes from the peer may still arrive */
	uint64_t filter_until_ms;     /* ... at least until then */
	volatile sig_atomic_t cancel; /* set when the last descriptor is closed */
	unsigned nopts, nepoll;
	struct shim_opt opts[SHIM_MAX_OPTS];
	struct shim_epoll epoll[SHIM_MAX_EPOLL];
	/* keeper.c: the path's life after designation */
	struct shim_sock *next_path; /* the keeper's list of designated paths */
	bool in_paths;
	bool listener;		     /* bind to N4_LISTEN: rendezvous in the background */
	bool working;		     /* a worker thread runs a rendezvous for this path */
	bool relayed;		     /* the peer is reached through a relay (n4_result) */
	int work;		     /* enum shim_trigger of the running worker */
	uint64_t tx_count, rx_count; /* bumped by the fast paths (relaxed, may lose a few) */
	int send_lost; /* a send on the direct IPv6 path failed in our kernel (no route) */
	uint64_t rx_queued_ticks; /* keeper ticks that found datagrams waiting */
	/* What to do with the path after its WIN: libn4's rules (n4.h "path"); NULL
	 * before the WIN, or when it could not be allocated (then not kept). */
	n4_path *path;
	uint64_t work_start_ms, settle_until_ms;
	bool forked;	      /* inherited through fork(): the parent keeps it while alive */
	int stay_fd;	      /* N4_EXT_STAY: our kept server connection, -1 = none */
	bool fast_reading;    /* a fast flow's worker reads stay_fd (keeper.c fast_wait) */
	bool stay_busy;	      /* a thread is registering again */
	struct n4_result res; /* the last WIN (a relayed path refreshes with it) */
	/* Who this path's side is to a room's host: random, kept across recoveries
	 * and upgrades, so the host shows us at one address throughout. */
	bool have_peer_id;
	uint8_t peer_id[6];
	/* N4_JOIN: this socket is in the room (a broadcast to, or a bind on, one of
	 * its ports); bound to it: that port, which the host reads from our peer id's
	 * last two bytes to send us its broadcasts.  0 otherwise. */
	bool room;
	uint16_t room_port;
	/* Sockets swapped out from under the descriptors, kept open until data waits
	 * on the new one: a thread blocked in poll()/select() without a timeout
	 * sleeps on the old socket's queue and checks the descriptor again only when
	 * woken; shut down then, it finds the data (keeper.c). */
	int old_socks[SHIM_OLD_MAX];
	unsigned nold;
	/* host.c: bound to N4_HOST, this socket hosts a room (never designated). */
	struct shim_host *host;
	/* The identifier this path's PUNCHes and kept connection carry: the
	 * configuration's, or a flow's own (n4_flow_cfg). */
	char wire_ident[N4_IDENT_MAX + 1];
	/* peer.c: a path to one of our peers learnt its side (the SIDE exchange). */
	bool have_side;
	struct n4_side side_mine, side_theirs;
	/* A flow of a known peer (peer.c): its rendezvous runs on the identifier
	 * derived from both sides and both ports, in the background. */
	bool flow;
	struct n4_side flow_mine, flow_theirs;
	uint16_t flow_lport, flow_pport; /* the program's ports, host order */
	unsigned flow_tries;		 /* attempts that ended without a WIN */
	bool flow_notify; /* the peer is still to be told (its first path was recovering) */
	uint16_t flow_nonce;
};

/* The table: one slot per descriptor, read without the lock for the O(1) check. */
#define SHIM_FD_LIMIT (1 << 20)
extern struct shim_sock *_Atomic shim_fdtab[SHIM_FD_LIMIT];

static inline bool shim_tracked(int fd)
{
	return fd >= 0 && fd < SHIM_FD_LIMIT &&
	       __atomic_load_n((struct shim_sock **)&shim_fdtab[fd], __ATOMIC_RELAXED) != NULL;
}

void shim_lock(void);
void shim_unlock(void);
/* Wait (lock held) until some designation finishes. */
void shim_wait(void);
void shim_broadcast(void);
/* Fast flow answers (keeper.c): wait (lock held) until shim_fast_broadcast or
 * deadline_ms (shim_now_ms's clock), the lock released meanwhile. */
void shim_fast_wait(uint64_t deadline_ms);
void shim_fast_broadcast(void);

/* All below: lock held. */
struct shim_sock *shim_sock_get(int fd);
int shim_sock_track(int fd, int family, int type); /* new socket() */
int shim_sock_attach(int fd, struct shim_sock *s); /* dup: fd -> s; 0 or -ENOMEM */
void shim_sock_detach(int fd);			   /* close / reuse */
void shim_sock_put(struct shim_sock *s);
/* Lock held: wake whoever sleeps on the swapped-out sockets, and close them. */
void shim_sock_release_old(struct shim_sock *s); /* drop a reference */
void shim_sock_remember_opt(struct shim_sock *s, int level, int name, const void *val,
			    socklen_t len);
void shim_sock_remember_epoll(struct shim_sock *s, int epfd, int fd, int op,
			      const struct epoll_event *ev);
void shim_set_state(struct shim_sock *s, enum shim_state st);
/* What the fast paths need of a punched path, read at once without the lock. */
struct shim_view {
	int family; /* the program's */
	bool path6, have_ph;
	struct sockaddr_in peer, ph;
	struct sockaddr_in6 peer6;
};
/* Lock-free: false when `s` is not SHIM_WON or changed while it was read. */
bool shim_read_view(const struct shim_sock *s, struct shim_view *v);
/* Lock held. */
void shim_view_of(const struct shim_sock *s, struct shim_view *v);
/* Where the kernel socket reaches the peer: peer6 on an IPv6 path, else peer in
 * the program's family.  Returns the length. */
socklen_t shim_view_dest(const struct shim_view *v, struct sockaddr_storage *out);
/* A datagram's source `got` as the kernel reported it, into the program's buffer
 * (addr, *len, capacity cap): the peer becomes the placeholder; on an IPv6 path,
 * never an address the program's family cannot hold. */
void shim_view_report(const struct shim_view *v, const struct sockaddr_storage *got, socklen_t glen,
		      struct sockaddr *addr, socklen_t *len, socklen_t cap);
void shim_seq_begin(struct shim_sock *s);
void shim_seq_end(struct shim_sock *s);
static inline int shim_state_of(const struct shim_sock *s)
{
	return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}
/* Highest descriptor ever tracked (bounds close_range and fork scans). */
int shim_fd_high(void);
/* Number of socket swaps done by dup2 so far: a receive that returns 0 while it
 * changed was woken on the old socket and is retried on the new one. */
extern unsigned shim_swaps;
void shim_fdtab_atfork_child(void);

/* ------------------------------------------------------------- designate.c --- */

/* Without N4_PEER every port of the server's IP is a placeholder but these: the
 * rendezvous port, and DNS (the server host is often the resolver too). */
#define SHIM_DNS_PORT 53

/* Does `addr` (family-aware, v4-mapped included) name a placeholder?  Fills v4. */
bool shim_is_placeholder(const struct shim_config *cfg, const struct sockaddr *addr, socklen_t len,
			 struct sockaddr_in *v4);
/* ... or, on a punched socket whose peer has an alias (alias_ph), that alias:
 * the address the program knows its peer by.  Lock-free. */
bool shim_names_peer(const struct shim_sock *s, const struct shim_config *cfg,
		     const struct sockaddr *addr, socklen_t len, struct sockaddr_in *v4);
/* `v4` in a socket family's terms (v4-mapped for AF_INET6); returns the length. */
socklen_t shim_to_family(int family, const struct sockaddr_in *v4, struct sockaddr_storage *out);
/* The port of an AF_INET or AF_INET6 address (host order), 0 for anything else. */
uint16_t shim_port_of(const struct sockaddr *addr, socklen_t len);
/* Convert a sockaddr (AF_INET or v4-mapped AF_INET6) to AF_INET. */
bool shim_to_v4(const struct sockaddr *addr, socklen_t len, struct sockaddr_in *v4);

enum shim_trigger {
	SHIM_BY_SEND,
	SHIM_BY_CONNECT,
	SHIM_BY_BIND,	 /* N4_LISTEN: returns at once, rendezvous in the background */
	SHIM_BY_RECOVER, /* the keeper found the path dead: punch again, same identifier */
	SHIM_BY_UPGRADE, /* relayed path: try a direct punch now and then */
	SHIM_BY_FLOW,	 /* a further flow of a known peer: in the background, bounded */
};

/* Lock held on entry and on return (dropped while waiting).  Starts the rendezvous
 * for `s` (which has descriptor fd) in a worker thread, or joins the path already
 * punched (or being punched) for the same placeholder; waits for the WIN unless it
 * is a bind.  0 or -errno (-EINTR when a handler without SA_RESTART interrupted the
 * wait: the rendezvous goes on, and a retry waits for it again). */
/* Lock held.  N4_JOIN: the socket joins its room in the background (a broadcast to
 * ph's port, or bound to it: bound_port), the host appearing at ph.  0 or -errno. */
int shim_room_join(int fd, struct shim_sock *s, const struct sockaddr_in *ph, uint16_t bound_port,
		   const struct sockaddr *bind_addr, socklen_t bind_len);
int shim_designate(int fd, struct shim_sock *s, enum shim_trigger how, const struct sockaddr_in *ph,
		   const struct sockaddr *bind_addr, socklen_t bind_len);

/* Worker thread, lock held: the rendezvous for `s` ended with rc (0: res/winfd are
 * the WIN).  Moves the punched socket in (or records the failure), logs one line. */
void shim_path_finish(struct shim_sock *s, enum shim_trigger how, int rc, int winfd,
		      const struct n4_result *res, const struct shim_config *cfg);

/* Lock held: wait until the state of `s` has left SHIM_PENDING.  deadline_ms 0 =
 * none of our own (the rendezvous has its timeout).  0, -EINTR, -ETIMEDOUT, or
 * -EBADF when fd was closed meanwhile; a failed path gives its error. */
int shim_await(int fd, struct shim_sock *s, uint64_t deadline_ms);

/* Lock held.  Before sending on a tracked descriptor: waits out a running rendezvous,
 * designates when dest is a placeholder (is_ph/ph, computed without the lock).
 * Returns 0 when the call may proceed, with *rewrite set when the destination must
 * become real_dest (the peer), or -errno. */
int shim_before_send(int fd, const struct sockaddr *dest, socklen_t dest_len, bool is_ph,
		     const struct sockaddr_in *ph, bool *rewrite,
		     struct sockaddr_storage *real_dest, socklen_t *real_len);

/* On a direct IPv6 path's socket: the IPv6 equivalent of the program's IPv4
 * option (IP_TOS -> IPV6_TCLASS, IP_TTL -> IPV6_UNICAST_HOPS, IP_MTU_DISCOVER),
 * if it has one. */
void shim_opt_as_v6(int fd, int level, int name, const void *val, socklen_t len);

/* Build the address to report for `from` (rewrite real peer -> placeholder). */
void shim_report_addr(const struct shim_sock *s, struct sockaddr *addr, socklen_t *len,
		      socklen_t cap_in);

uint64_t shim_now_ms(void);

/* ---------------------------------------------------------------- keeper.c --- */

/* Lock held.  Put `s` on the keeper's list (keepalive, dead-path checks). */
void shim_path_add(struct shim_sock *s);
void shim_path_remove(struct shim_sock *s);
/* Lock held.  A designated path with placeholder ph (and family) other than `self`
 * that is punched or being punched and still has a descriptor: NULL if none. */
struct shim_sock *shim_path_find(const struct sockaddr_in *ph, int family,
				 const struct shim_sock *self);
/* Lock held.  Run a rendezvous for `s` in a new worker thread (signals blocked). */
int shim_worker_start(struct shim_sock *s, enum shim_trigger how);
/* Lock held.  Sleep until shim_wake_all() or deadline_ms (0 = none), in a read()
 * the kernel restarts after a SA_RESTART handler and interrupts otherwise:
 * 0 (woken: look again), -EINTR, -ETIMEDOUT. */
int shim_wait_change(uint64_t deadline_ms);
/* Lock held: wake every waiting designating call. */
void shim_wake_all(void);
void shim_keeper_atfork_child(void);
/* Lock held: make sure the keeper runs (inherited paths).  0 or -errno. */
int shim_keeper_start(void);
/* Lock held: `s` won (or was adopted): keep it from now on by libn4's path rules
 * (n4_path_won), creating its n4_path on the first call. */
void shim_path_keep(struct shim_sock *s, bool relayed);
/* Lock held: the path's counters as the dead-path rule reads them. */
uint64_t shim_path_tx(const struct shim_sock *s);
uint64_t shim_path_rx(const struct shim_sock *s);

/* Fast-path counters for the dead-path rule: a relaxed load and store, no lock. */
static inline void shim_count(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* Lock held.  Start a thread with every signal blocked.  0 or -errno. */
int shim_spawn(void *(*fn)(void *), void *arg);

/* ------------------------------------------------------------------ host.c --- */

struct shim_host;
/* Lock held.  The program binds its N4_HOST socket: bind it (joining a reuseport
 * group with our helper) and start hosting.  The bind's own result: 0, or -1 and
 * errno; hosting that cannot start leaves a plain bound socket and one line. */
int shim_host_bind(int fd, struct shim_sock *s, const struct sockaddr *addr, socklen_t len);
/* Lock held: the last descriptor of s is gone. */
void shim_host_release(struct shim_sock *s);
/* Lock-free.  dest is a peer's alias: *out is where it really is now. */
bool shim_host_out(struct shim_host *h, int family, const struct sockaddr *dest, socklen_t len,
		   struct sockaddr_storage *out, socklen_t *out_len);
/* Lock-free.  from is a peer's real address: rewrite it to its alias. */
void shim_host_in(struct shim_host *h, int family, struct sockaddr *from, socklen_t *len,
		  socklen_t cap);
/* Lock-free.  msg goes to a broadcast or multicast address: send it to every peer
 * listening on its port too (rate-limited); how many. */
unsigned shim_host_fanout(struct shim_host *h, int fd, int family, const struct msghdr *msg,
			  int flags);
/* Lock held, from the keeper's tick. */
void shim_hosts_tick(uint64_t now);

/* ------------------------------------------------------------------ peer.c --- */

#define SHIM_PEER_MAX 8	  /* peers with a learnt side at once */
#define SHIM_FLOW_TRIES 3 /* a flow nobody answers: attempts in all */

struct shim_peer_ref {
	struct shim_sock *base; /* the path that learnt the peer */
	in_addr_t ph_ip;	/* its placeholder's IP (the dialling side), or 0 */
	struct n4_side mine, theirs;
};
/* Our side for a path whose program port is `port`: the process's random side id
 * and this host's LAN addresses.  0 or -errno. */
int shim_side_mine(struct n4_side *mine, uint16_t port);
/* Lock held: base path s learnt its peer's side. */
void shim_peer_learn(struct shim_sock *s, const struct n4_side *mine, const struct n4_side *theirs);
/* Lock held: s is gone, and so is what it learnt. */
void shim_peer_forget(struct shim_sock *s);
/* Lock-free: v4 names a known peer (its placeholder's IP, or a LAN alias that is
 * neither ours nor a live neighbour); *out (may be NULL) says which. */
bool shim_peer_find(const struct sockaddr_in *v4, struct shim_peer_ref *out);
bool shim_peer_names(const struct sockaddr *addr, socklen_t len);
/* Lock held: the peer base path s learnt. */
bool shim_peer_of_base(const struct shim_sock *s, struct shim_peer_ref *out);
/* Lock held, from the keeper: the peer of base path p opened a flow to our port
 * note->to_port; a socket of ours bound there and idle takes it.  */
void shim_flow_notice(struct shim_sock *p, uint16_t from_port, uint16_t to_port);
/* Lock held: tell the peer of flow s about it through the server (its first
 * path's kept connection), now or, while that path recovers, at a later tick. */
void shim_flow_notify(struct shim_sock *s);
/* The identifier the PUNCHes reaching fd carry (a flow's own, or N4_IDENT's). */
const char *shim_ident_of(int fd);

/* ----------------------------------------------------------------- bcast.c --- */

/* The limited broadcast, or the directed broadcast of one of this host's
 * interfaces (looked up at most every 5 s). */
bool shim_is_broadcast(in_addr_t a);
bool shim_is_multicast(in_addr_t a);
/* A joiner (N4_JOIN): dest is a broadcast on one of the room's ports; *ph is where
 * the room's host appears (the placeholder's IP, that port). */
bool shim_room_bcast(const struct shim_config *cfg, const struct sockaddr *dest, socklen_t len,
		     struct sockaddr_in *ph);
/* The placeholder a room's host appears at on `port`. */
bool shim_room_ph(const struct shim_config *cfg, uint16_t port, struct sockaddr_in *ph);
static inline struct shim_host *shim_host_of(const struct shim_sock *s)
{
	return __atomic_load_n(&s->host, __ATOMIC_ACQUIRE);
}

/* ---------------------------------------------------------------- filter.c --- */

/* The program's classic filter remembered for `s` (fdops.c), or NULL.  Lock held. */
const struct sock_fprog *shim_sock_prog_filter(const struct shim_sock *s);
/* The path state a filter carries (exec, fork).  path6: the peer is peer6, and
 * the program's socket (of prog_family, at prog_port, host order) never sees it. */
struct shim_filter_state {
	struct sockaddr_in peer, ph;
	struct sockaddr_in6 peer6;
	bool have_ph, alias, connected, path6;
	int prog_family;
	uint16_t prog_port;
};
/* Lock held: what `s` would carry, with res's peer when res is not NULL. */
void shim_filter_state_of(const struct shim_sock *s, const struct n4_result *res,
			  struct shim_filter_state *st);
/* Attach the classic BPF filter that drops PUNCHes (and keepalives) for ident before
 * they are queued, so the program's poll never wakes for them; then drop the ones
 * already queued at the head.  0 or -errno (the caller falls back to peeking).
 * `user`: the program's own classic filter, combined with ours (NULL: none). */
int shim_filter_attach(int fd, const char *ident, const struct shim_filter_state *st,
		       const uint8_t *relay_token, const struct sock_fprog *user);
/* The path state an earlier image left in fd's filter (exec): false if none. */
bool shim_filter_read(int fd, struct shim_filter_state *st);

/* ------------------------------------------ send.c, recv.c, fdops.c (the calls) --- */

int shim_socket(int domain, int type, int protocol);
int shim_bind(int fd, const struct sockaddr *addr, socklen_t len);
int shim_connect(int fd, const struct sockaddr *addr, socklen_t len);
int shim_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int shim_getpeername(int fd, struct sockaddr *addr, socklen_t *len);
int shim_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int shim_close(int fd);
int shim_close_range(unsigned first, unsigned last, int flags);
void shim_closefrom(int lowfd);
/* dup2/dup3 as the program called them, keeping the log off the target number. */
int shim_dup_over(int oldfd, int newfd, int flags, bool is_dup2);
/* The shim's log goes to a private duplicate of stderr taken at load (close-on-exec,
 * high number), never to descriptor 2 itself: a program that closed stderr may have
 * its socket there.  Called from the constructor and on first configuration. */
void shim_log_open(void);
/* Record the socket's inode for `s` (after socket() and after a swap); lock held. */
void shim_sock_stamp(struct shim_sock *s, int fd);
/* Lock held: `s`, or NULL when fd's number now names another file (the entry is
 * dropped). */
struct shim_sock *shim_sock_fresh(int fd, struct shim_sock *s);
/* An AF_INET destination on an AF_INET6 socket in its v4-mapped form (what Linux
 * does with it on a dual-stack socket); anything else unchanged. */
const struct sockaddr *shim_as_family(int family, const struct sockaddr *addr, socklen_t *len,
				      struct sockaddr_storage *tmp);
int shim_dup(int fd);
int shim_dup3(int oldfd, int newfd, int flags, bool is_dup2);
int shim_fcntl(int fd, int cmd, void *arg, bool is64);
int shim_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
pid_t shim_fork(void);
void shim_atfork_init(void);

ssize_t shim_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *dest,
		    socklen_t dest_len);
ssize_t shim_sendmsg(int fd, const struct msghdr *msg, int flags);
int shim_sendmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags);
bool shim_refuse_reentry(int fd, const struct sockaddr *dest, socklen_t len);
ssize_t shim_write(int fd, const void *buf, size_t len);
ssize_t shim_writev(int fd, const struct iovec *iov, int iovcnt);

ssize_t shim_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
		      socklen_t *from_len);
ssize_t shim_recvmsg(int fd, struct msghdr *msg, int flags);
int shim_recvmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags, struct timespec *timeout);
ssize_t shim_read(int fd, void *buf, size_t len);
ssize_t shim_readv(int fd, const struct iovec *iov, int iovcnt);

#endif

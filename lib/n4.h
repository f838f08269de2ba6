/* n4.h - public API of libn4: punch UDP through two NAT4s, and serve the rendezvous.
 *
 * Everything returns 0 (or a count) on success and a negative errno-style code on
 * failure; pointer-returning functions return NULL with errno set.  The library has
 * no global mutable state except the logger's settings (log.h), installs no signal
 * handlers and never writes to stdout.
 */
#ifndef N4_H
#define N4_H

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define N4_DEFAULT_PORT 1721
#define N4_DEFAULT_IDENT "n4n4n4"
#define N4_IDENT_MAX 6
/* Random bytes that let one side of a relayed pair register (doc/PROTOCOL.md "Relay wire"). */
#define N4_RELAY_TOKEN_SIZE 10
/* A home router survives it: doc/STRATEGIES.md "Gentle sweeps". */
#define N4_DEFAULT_MAX_PPS 1000

/* ---------------------------------------------------------------- client --- */

enum n4_strategy {
	/* Default: the original's sweep plus low-TTL pre-opening (defeats the Linux
	 * conntrack clash), synchronised start, short rounds and immediate WIN. */
	N4_STRATEGY_AUTO = 0,
	/* Exactly the original n4: port+offset, pool sweep, 10 s rounds, WIN after
	 * ten 0.2 s-spaced confirmations.  Kept as the benchmark baseline. */
	N4_STRATEGY_CLASSIC = 1,
};

struct n4_client_cfg {
	const char *server_host;       /* required: name or IPv4 literal */
	uint16_t server_port;	       /* N4_DEFAULT_PORT */
	char ident[N4_IDENT_MAX + 1];  /* N4_DEFAULT_IDENT; printable ASCII, no spaces at the end */
	uint16_t src_port;	       /* first local port of the pool: 30000 */
	unsigned pool_size;	       /* local sockets per round: 25 */
	int peer_offset;	       /* added to the peer's observed port: 20 */
	bool any_peer_ip;	       /* -x: accept PUNCH from any IP */
	enum n4_strategy strategy;     /* N4_STRATEGY_AUTO */
	unsigned round_ms;	       /* 0: per strategy (classic 10000, auto 2500) */
	unsigned timeout_ms;	       /* give up after this long in total: 120000; 0 = never */
	int low_ttl;		       /* TTL of pre-opening packets (auto): 2; 0 = off */
	unsigned confirm_ms;	       /* max time to keep confirming after WIN: 2000 */
	unsigned max_ports;	       /* NAT ports one round may spend (carrier quotas are
	                              * often 512-2048): 512; plans are clamped to it */
	unsigned max_pps;	       /* PUNCH datagrams per second at most (a sweep's first
	                              * pass goes whole, so plans are capped at half):
	                              * N4_DEFAULT_MAX_PPS; 0 = unpaced */
	bool no_sweep;		       /* accept only a direct path (networks that forbid
	                              * sweeping): other pairs are refused (-ENOTSUP) */
	bool return_on_eintr;	       /* a signal makes n4_client_run return -EINTR */
	bool caller_reports;	       /* the caller logs the final failure itself: the
	                              * library's give-up lines drop to debug level */
	volatile sig_atomic_t *cancel; /* optional: set non-zero to abort with -ECANCELED */
	bool stay;		       /* offer N4_EXT_STAY: keep the server connection after
	                              * the WIN (n4_client_take_stay_fd) */
	/* Never accept a relay: punch only (a pair no punch can join then ends
	 * with -ENOTSUP).  A keeper that is relayed and retries punching in the
	 * background sets this, so that its attempt either wins a direct path or
	 * fails, and never lands on a second relay (doc/RELAY.md "Back to direct"). */
	bool no_relay;
	/* Pre-shared key (n4 genkey; -k): pair on an identifier derived from it
	 * and ident, and accept only PUNCHes authenticated with it.  The key is
	 * never sent; n4_client_new keeps only what it derives. */
	bool have_key;
	uint8_t key[32];
	/* Rooms (N4_EXT_ROOM, doc/PROTOCOL.md "Rooms").  room_answer: this run is a
	 * host answering one joiner (the ticket from n4_room_poll); its only socket is
	 * host_fd, which the client neither closes nor hands over: the WIN's fd is
	 * host_fd.  host_fd is -1 otherwise. */
	bool room_answer;
	uint8_t room_ticket[6];
	int host_fd;
	/* A joiner's peer id (random, kept across its recoveries): a host shows each
	 * peer id at one address for the whole session. */
	bool have_peer_id;
	uint8_t peer_id[6];
	/* Pair only with the host of the identifier's room (JOINER before HELLO):
	 * wait for one rather than pair as an equal.  Our server only: an original
	 * one closes the connection (-ENOTSUP). */
	bool room_only;
	/* A room's answer: addresses of the host's other peers.  Their late or
	 * keepalive PUNCHes carry the same identifier, often from the same NAT:
	 * never taken for this joiner's. */
	const struct sockaddr_in *room_exclude;
	unsigned room_nexclude;
	/* IPv6 (doc/PROTOCOL.md "IPv6"): when this host has a global IPv6 address
	 * and the server an IPv6 address, a direct IPv6 path is punched beside the
	 * IPv4 plan and preferred.  no_ipv6: never (IPv4 exactly as without it).
	 * server6_host: the server's IPv6 name or literal; NULL: server_host's
	 * IPv6 address, if it has one (an IPv4 literal has none). */
	bool no_ipv6;
	const char *server6_host;
	/* A further flow of a pair whose first path kept its server connection
	 * (doc/PROTOCOL.md "Fast flows"): its rendezvous goes over that kept
	 * connection, planned from what the server knows of both NATs, instead of
	 * a rendezvous of its own.  NULL: an ordinary rendezvous.  When the server
	 * answers NO, is an older one, or gives no answer in N4_FAST_WAIT_MS, the
	 * round goes on as an ordinary rendezvous at once. */
	const struct n4_fast_chan *fast;
};

/* Fill cfg with the defaults above (server_host NULL). */
void n4_client_cfg_init(struct n4_client_cfg *cfg);

/* Validate a config; on error returns -EINVAL and writes a one-line reason. */
int n4_client_cfg_check(const struct n4_client_cfg *cfg, char *why, size_t why_len);

struct n4_result {
	int fd;			 /* the winning UDP socket, bound to local_port */
	uint16_t local_port;	 /* its local port */
	struct sockaddr_in peer; /* the peer's address, as packets arrive from it (its
	                          * local one when the LAN path won) */
	unsigned rounds;	 /* rounds used, 1 = first */
	unsigned elapsed_ms;	 /* from n4_client_run to WIN */
	bool peer_is_n4;	 /* the peer negotiated our extensions */
	bool relayed;		 /* peer is the server's relay port for this side: datagrams
	                          * sent there reach the peer unchanged */
	/* When relayed: what re-registers this socket (n4_relay_refresh_build). */
	uint8_t relay_token[N4_RELAY_TOKEN_SIZE];
	/* AF_INET6 when the direct IPv6 path won: fd is then an AF_INET6 socket
	 * bound to our global address, peer6 the peer's address and peer all zero.
	 * AF_INET otherwise (peer6 all zero). */
	int family;
	struct sockaddr_in6 peer6;
};

typedef struct n4_client n4_client;

/* Copies cfg (server_host is copied too).  NULL + errno on failure. */
n4_client *n4_client_new(const struct n4_client_cfg *cfg);

/* Rendezvous and punch until WIN, timeout, cancel or error.  Blocks.
 * On WIN returns 0 and fills res; res->fd stays owned by the client until
 * n4_client_take_fd() or n4_client_free().
 * Errors: -ETIMEDOUT (timeout_ms elapsed), -EINTR, -ECANCELED, -EHOSTUNREACH
 * (server unreachable), -EPROTO (server spoke garbage), -ENOTSUP (the pair
 * cannot be punched), other -errno from the system. */
int n4_client_run(n4_client *c, struct n4_result *res);

/* After WIN: make sure the peer received our PUNCH (an acknowledged PUNCH
 * from an n4 peer, or confirm_ms of confirmations for an original peer), and
 * swallow the peer's late PUNCHes.  Blocks at most confirm_ms. */
int n4_client_confirm(n4_client *c);

/* Hand the winning socket to the caller (who then owns and closes it). */
int n4_client_take_fd(n4_client *c);

/* After a WIN with cfg.stay and a server that granted N4_EXT_STAY: the kept TCP
 * connection (non-blocking, the caller owns it), to watch with n4_stay_poll();
 * -ENOENT when there is none. */
int n4_client_take_stay_fd(n4_client *c);

/* Read what the server sent on a kept connection.  1: REPUNCH (a client with our
 * identifier is at the server: punch again), 0: nothing yet, -ECONNRESET: the
 * server closed it (no more notices), other -errno.  Reads everything queued; FLOW
 * notices are consumed and ignored (n4_stay_poll_note reports them).  Never blocks. */
int n4_stay_poll(int fd, const char *ident);

/* A further flow of the pair ("calls", N4_CMD_FLOW): another local port to another
 * port of the peer.  Host order; as its sender sees them: from_port is the sender's
 * port, to_port the receiver's. */
struct n4_flow_note {
	uint16_t from_port, to_port, nonce;
};

/* Ask the server to tell the pair's peer, on its kept connection, about a flow from
 * my_port to peer_port (neither 0: -EINVAL), so that a peer whose socket only
 * listens starts its side too; nonce (random) comes back in the peer's note.  fd is
 * a kept connection (non-blocking; n4_client_take_stay_fd, n4_stay_register).  0,
 * -EAGAIN (its socket buffer is full: try later), -EIO (only part of the message
 * went out: the connection is out of step, close it and register again), or -errno.
 * The server forwards at most 10 a second (bursts of 20) per kept connection and
 * drops the rest silently, as it drops a FLOW nobody else's kept connection waits for. */
int n4_stay_flow_send(int fd, uint16_t my_port, uint16_t peer_port, uint16_t nonce);

/* Like n4_stay_poll, one notice per call, FLOW notices too: 1 REPUNCH, 2 FLOW (*note
 * filled as the peer sent it: from_port is the peer's port, to_port ours), 0 nothing
 * (yet), -ECONNRESET the server closed it, other -errno.  Several notices may wait:
 * call it until it returns 0 (or less).  Never blocks. */
int n4_stay_poll_note(int fd, const char *ident, struct n4_flow_note *note);

/* Fast flows (n4_client_cfg.fast, doc/PROTOCOL.md "Fast flows").  The server's
 * answer to one request on a kept connection, as n4_stay_poll_any reads it. */
#define N4_FAST_REPLY_MAX 8
#define N4_FAST_WAIT_MS 2500 /* a request's answer, its partner's included */
enum n4_fast_no {
	N4_FAST_NO_PLAN = 1,	/* no NAT model to plan from, or a pair no punch joins */
	N4_FAST_NO_PARTNER = 2, /* the peer's request did not come in time */
	N4_FAST_NO_LIMIT = 3,	/* the server's limits */
	N4_FAST_NO_LONG = 4,	/* the peer came through an ordinary rendezvous */
};
struct n4_fast_reply {
	uint8_t tag;
	bool no;	/* NO: reason, no messages */
	uint8_t reason; /* enum n4_fast_no (others: unknown, treated alike) */
	uint8_t n;	/* messages, the last one PEERINFO */
	uint8_t msgs[N4_FAST_REPLY_MAX][8];
};

/* How a fast flow's rendezvous reaches the kept connection, which its owner
 * reads (n4_stay_poll_any) while the flow's client waits.  send: write the
 * request (len bytes) in one piece: 0, or -errno (the client then rendezvous as
 * usual).  wait: the answer tagged `tag`, at most until deadline_ms (n4_now_ms's
 * clock, CLOCK_MONOTONIC in ms): 1 (*r filled), -ETIMEDOUT, -EPIPE (the kept
 * connection is gone), -EINTR/-ECANCELED.  tag: 1..255, unique among this kept
 * connection's requests under way. */
struct n4_fast_chan {
	int (*send)(void *arg, const uint8_t *buf, size_t len);
	int (*wait)(void *arg, uint8_t tag, struct n4_fast_reply *r, uint64_t deadline_ms);
	void *arg;
	uint8_t tag;
};

/* Like n4_stay_poll_note, and fast answers too: 3 and *reply when one is whole
 * (reply NULL: skipped).  Never blocks. */
int n4_stay_poll_any(int fd, const char *ident, struct n4_flow_note *note,
		     struct n4_fast_reply *reply);

/* TCP keepalive on a kept connection, every idle_s seconds of silence: it keeps the
 * connection's NAT mapping, and after our NAT lost its state the first probe makes a
 * new one, so the server's (retransmitted) notice still reaches us.  0 or -errno. */
int n4_stay_keepalive(int fd, unsigned idle_s);

/* A new kept connection for ident after the old one was lost (N4_CMD_STAY): connect
 * to the server (at most timeout_ms) and register.  Only for a client the server
 * granted N4_EXT_STAY before.  The connected socket (caller owns it) or -errno. */
int n4_stay_register(const char *host, uint16_t port, const char *ident, unsigned timeout_ms);

void n4_client_free(n4_client *c);

/* True when buf/len is a PUNCH datagram for ident (any reserved byte), or an
 * authenticated PUNCH of keyed peers carrying ident (with a key: the derived
 * id, see n4 keyid): used to keep late PUNCHes away from programs. */
bool n4_is_punch(const void *buf, size_t len, const char *ident);

/* ----------------------------------------------------------------- sides --- */

/* A call (SIP, RTP, RTCP) is several UDP flows between the same two hosts, and
 * its signalling carries each side's LAN addresses.  After the first path to a
 * peer wins, the two sides tell each other who they are over it (a SIDE,
 * doc/PROTOCOL.md "Sides"); each further flow then pairs on an identifier (or
 * key) both derive from the two sides (n4_flow_cfg), and the peer's LAN
 * addresses are known to be the peer's. */
#define N4_SIDE_ID_SIZE 8
#define N4_SIDE_MAX_ADDRS 4
struct n4_side {
	uint8_t id[N4_SIDE_ID_SIZE];		 /* random per process (getrandom), never 0 */
	uint16_t port;				 /* the program's port of this path, host order */
	unsigned naddrs;			 /* 0..N4_SIDE_MAX_ADDRS */
	struct in_addr addrs[N4_SIDE_MAX_ADDRS]; /* this host's own LAN IPv4 addresses */
};

/* Fill s->addrs and s->naddrs (nothing else) with this host's IPv4 interface
 * addresses that are up, not loopback and not link-local 169.254/16
 * (getifaddrs), at most N4_SIDE_MAX_ADDRS, each once.  0 or -errno. */
int n4_side_local_addrs(struct n4_side *s);

/* After n4_client_run's WIN (and n4_client_confirm), before n4_client_take_fd:
 * tell the peer `mine` and learn its side, end to end over the won socket
 * (through the relay when relayed: it forwards datagrams unchanged).  With a key
 * each SIDE carries a MAC under a key derived from the pair's key and this
 * round's two PUNCH nonces, so nobody else can slip LAN addresses in; without
 * one the path is trusted as the PUNCHes are.  The addresses never go to the
 * server.  Only with a peer that negotiated our extensions (res.peer_is_n4),
 * and neither in a room's answer (cfg.room_answer) nor as a join-only joiner
 * (cfg.room_only), whose peer is a room's host: otherwise returns 0 at once
 * without sending.  Sends every 50 ms until both sides know they have each
 * other's; a datagram from the peer that is not ours (its program's first
 * data: it is done) ends the exchange and stays in the socket for the program.
 * Blocks at most timeout_ms.  1: *peer filled; 0: no answer in time (the peer
 * may be an older n4); -EINVAL (no WIN, the socket taken, mine has id 0 or too
 * many addresses), -EINTR, -ECANCELED, other -errno. */
int n4_client_side(n4_client *c, const struct n4_side *mine, struct n4_side *peer,
		   unsigned timeout_ms);

/* True when buf/len is a well-formed SIDE datagram for ident (with a key: the
 * derived id, as n4_is_punch): the shim keeps late ones away from programs. */
bool n4_is_side(const void *buf, size_t len, const char *ident);

/* Make cfg the configuration of the flow (my_port <-> peer_port) with the peer
 * whose path gave mine/peer (n4_client_side): deterministic and symmetric, the
 * peer calling with the sides and the ports swapped gets the same.  Unkeyed:
 * cfg->ident becomes 6 characters [A-Za-z0-9] from BLAKE2s of cfg->ident, both
 * side ids and both ports (each with its side, ordered by side id); keyed
 * (cfg->have_key): cfg->key becomes BLAKE2s keyed with cfg->key over the same,
 * and cfg->ident stays (only holders of the key can pair the flow, and the
 * server still sees only ids derived from a key).  Nothing else changes.
 * -EINVAL when the side ids are equal, a port is 0 or cfg->ident is invalid. */
int n4_flow_cfg(struct n4_client_cfg *cfg, const struct n4_side *mine, const struct n4_side *peer,
		uint16_t my_port, uint16_t peer_port);

/* Relayed results (res->relayed): the registration that keeps res->fd's side
 * of the relay alive and follows a NAT rebinding.  Send it to res->peer from
 * res->fd when the path has been quiet for 15-25 s (the relay frees a pair after
 * --relay-idle, 60 s by default, without a datagram from either side).  Writes
 * N4_RELAY_REFRESH_SIZE bytes; returns that size. */
#define N4_RELAY_REFRESH_SIZE (2 + N4_RELAY_TOKEN_SIZE)
size_t n4_relay_refresh_build(const struct n4_result *res, uint8_t out[N4_RELAY_REFRESH_SIZE]);
/* True when buf/len is the relay's answer to such a registration (it carries
 * the result's token): keep it away from the program, as late PUNCHes. */
bool n4_is_relay_ack(const void *buf, size_t len, const struct n4_result *res);

/* ----------------------------------------------------------------- rooms --- */

/* A room: one host and any number of joiners, who pair only with the host.  The
 * host keeps one connection to the server (the room connection) and answers
 * each joiner it is told about with a run of n4_client (cfg.room_answer). */
#define N4_ROOM_ID_SIZE 6
struct n4_join {
	uint8_t ticket[N4_ROOM_ID_SIZE];  /* single use, for cfg.room_ticket */
	uint8_t peer_id[N4_ROOM_ID_SIZE]; /* all zero: the joiner sent none */
};
/* What n4_room_poll has read of a message split across segments. */
struct n4_room_rx {
	uint8_t buf[16];
	unsigned n;
	bool have_ticket;
	struct n4_join join;
};
/* Register a room for cfg's identifier (and key) with at most max_joiners at
 * once; blocks up to cfg->timeout_ms (0: 10 s).  Returns the room connection
 * (non-blocking, close-on-exec), or -errno with a one-line reason in why:
 * -ENOTSUP the server does not support hosting, -EADDRINUSE the room has a host,
 * -EACCES the server refused it (its limits), others: no connection. */
int n4_room_host(const struct n4_client_cfg *cfg, unsigned max_joiners, char *why, size_t why_len);
/* Read what the server sent on a room connection, without blocking: 1 = a joiner
 * waits (*j), 0 = nothing more for now, -errno = the connection is gone (its room
 * with it) or spoke nonsense (-EPROTO). */
int n4_room_poll(int fd, struct n4_room_rx *rx, struct n4_join *j);

/* ------------------------------------------------------------------ path --- */

/* Keeping a punched (or relayed) path for hours, for any caller that holds the
 * winning socket: the shim, or a program of its own that took res->fd.
 *
 * n4_path decides and does no I/O.  The caller feeds it the clock and two counters
 * it keeps (datagrams sent, datagrams received on the path's socket) at a steady
 * tick, and what happened (a re-punch notice from the server, the end of an attempt,
 * the kept server connection lost or registered again); n4_path_tick says what to do
 * now and when to ask again.  The caller does it: sends the keepalive or the relay
 * refresh, runs a new rendezvous for a recovery or an upgrade (make-before-break:
 * the old socket carries the program's datagrams until the new one has won), and
 * reports back.  The rules:
 *   - keepalive: a low-TTL datagram every keepalive_s (it refreshes our own NAT's
 *     mapping and dies before the peer's NAT); a relayed path re-registers with
 *     the relay (n4_relay_refresh_build) instead;
 *   - dead path: heard once, then 3 datagrams sent over 2 s with nothing back; or a
 *     steady one-way stream (2 s without a gap over 500 ms) stopped for 2 s.  A
 *     one-way sender is never judged: its receiver is, and the server tells it;
 *   - a re-punch notice (the peer's side punches again, N4_EXT_STAY): with a key it
 *     is proven and acted on at once; without one anyone who knows the identifier
 *     can cause it, so it is acted on only once the peer has been silent for 1 s,
 *     and dropped (N4_PATH_NOTICE_IGNORED) after 5 s of the peer talking;
 *   - a failed recovery backs off 2, 4, 8 ... 60 s (the old path stays meanwhile);
 *     give_up_after failures in a row end the path (N4_PATH_GIVE_UP);
 *   - a relayed path tries a direct punch every upgrade_s;
 *   - a lost kept server connection is registered again, then every 10 s.
 * Not thread-safe: one caller (or one lock) per path. */
typedef struct n4_path n4_path;

struct n4_path_cfg {
	unsigned keepalive_s;	/* refresh our NAT's mapping this often: 15; 0 = never */
	unsigned upgrade_s;	/* relayed: try a direct punch this often: 60; 0 = never */
	bool recover;		/* punch again on a dead path or a notice: true */
	bool keyed;		/* the pair holds a key: notices are acted on at once */
	bool stay;		/* register a lost server connection again: true */
	unsigned give_up_after; /* failed recoveries in a row that end the path: 0 = never */
};

/* What n4_path_tick asks for (a bit set). */
enum {
	N4_PATH_KEEPALIVE = 1 << 0,	 /* send a keepalive to the peer */
	N4_PATH_RELAY_REFRESH = 1 << 1,	 /* send the relay registration (relayed) */
	N4_PATH_RECOVER = 1 << 2,	 /* start a new rendezvous; the old path stays */
	N4_PATH_UPGRADE = 1 << 3,	 /* relayed: start a direct-only rendezvous */
	N4_PATH_REGISTER = 1 << 4,	 /* register the kept server connection again */
	N4_PATH_NOTICE_IGNORED = 1 << 5, /* an unproven notice was dropped: log it */
	N4_PATH_GIVE_UP = 1 << 6,	 /* recovery failed give_up_after times: stop */
};

enum n4_path_state {
	N4_PATH_IDLE = 0, /* not won yet */
	N4_PATH_DIRECT,
	N4_PATH_RELAYED,
	N4_PATH_GONE, /* gave up */
};

enum n4_path_attempt {
	N4_PATH_NO_ATTEMPT = 0,
	N4_PATH_RECOVERING,
	N4_PATH_UPGRADING,
};

struct n4_path_todo {
	unsigned actions; /* N4_PATH_* bits */
	uint64_t next_ms; /* call n4_path_tick again no later than this (the clock's) */
};

/* For log lines: why the current (or last) attempt started, how it went. */
struct n4_path_info {
	enum n4_path_state state;
	enum n4_path_attempt attempt; /* running now */
	bool told;		      /* the recovery follows a notice from the server */
	bool by_stream;		      /* ... or a one-way stream that stopped */
	unsigned silent_ms;	      /* ... or the peer was silent this long while we sent */
	bool send_failed;	      /* ... or our own sends failed (no route any more) */
	unsigned backoff_ms;	      /* after a failure: the wait before the next try */
	unsigned failures;	      /* failed recoveries in a row */
};

/* The defaults above. */
void n4_path_cfg_init(struct n4_path_cfg *cfg);
/* NULL + errno on failure (EINVAL: a bad config). */
n4_path *n4_path_new(const struct n4_path_cfg *cfg);
void n4_path_free(n4_path *p);

/* The rendezvous won (or a won path was adopted): start keeping it.  tx/rx: the
 * counters now. */
void n4_path_won(n4_path *p, uint64_t now_ms, bool relayed, uint64_t tx, uint64_t rx);
/* What to do now.  Call it at a steady tick (every 100 ms is what the dead-path
 * rule is tuned for) or at todo->next_ms at the latest.  Returns todo->actions.
 * N4_PATH_RECOVER / N4_PATH_UPGRADE start an attempt: report its end with
 * n4_path_attempt_done, or n4_path_attempt_not_started. */
unsigned n4_path_tick(n4_path *p, uint64_t now_ms, uint64_t tx, uint64_t rx,
		      struct n4_path_todo *todo);
/* The attempt ended.  rc 0: it won, on a relay when relayed; the caller moved the
 * path onto the new socket (an upgrade that came back relayed changes nothing,
 * and the caller keeps the old socket).  rc < 0: it failed, the old path stays. */
void n4_path_attempt_done(n4_path *p, uint64_t now_ms, int rc, bool relayed, uint64_t tx,
			  uint64_t rx);
/* The attempt asked for could not even start (no thread, no memory): 2 s later. */
void n4_path_attempt_not_started(n4_path *p, uint64_t now_ms);
/* The server says the peer punches again (n4_stay_poll returned 1). */
void n4_path_notice(n4_path *p, uint64_t now_ms);
/* Our sends on the path fail in our own kernel (ENETUNREACH: the route of a direct
 * IPv6 path went away).  The peer may still reach us, so the dead-path rule never
 * fires and, without a key, its notice is ignored while it talks: recover now. */
void n4_path_send_failed(n4_path *p, uint64_t now_ms);
/* The kept server connection: up (granted at the WIN, or registered again), or
 * lost (closed, or registering failed: then tried again 10 s later). */
void n4_path_stay_up(n4_path *p);
void n4_path_stay_lost(n4_path *p, uint64_t now_ms);
void n4_path_get_info(const n4_path *p, struct n4_path_info *info);

/* Send one keepalive for ident from fd to peer (AF_INET, AF_INET6 with a
 * v4-mapped address, or a native IPv6 peer of the direct IPv6 path: then ttl is
 * the hop limit) with IP TTL ttl, as ancillary data: the caller's own
 * datagrams keep theirs.  Never blocks.  0 or -errno. */
int n4_path_keepalive_send(int fd, const struct sockaddr *peer, socklen_t peer_len,
			   const char *ident, int ttl);

/* ---------------------------------------------------------------- server --- */

struct n4_server_cfg {
	const char *bind_host;	/* NULL: every address, IPv6 and IPv4 (see family) */
	uint16_t port;		/* TCP and UDP port: N4_DEFAULT_PORT; 0 = any */
	const char *only_ident; /* -a: accept only this identifier; NULL = any */
	/* 0: one dual-stack IPv6 socket that also takes IPv4 (IPv4 only when the
	 * host has no IPv6); AF_INET: IPv4 only; AF_INET6: IPv6 only.  PEERINFO can
	 * carry only IPv4: a client whose TCP comes over IPv6 must send its EXCHANGE
	 * over IPv4 with a token (our client's N4_EXT_TOKEN), see doc/PROTOCOL.md "IPv6". */
	int family;
	unsigned hello_timeout_ms;    /* connect to complete HELLO (slow or silent): 5000 */
	unsigned wait_timeout_ms;     /* HELLO to a partner's HELLO: 60000 */
	unsigned exchange_timeout_ms; /* READY to both EXCHANGEs: 10000 */
	unsigned drain_timeout_ms;    /* on stop: pairs in the exchange get this long: 5000 */
	unsigned max_clients;	      /* 0: derived from the descriptor limit (raised) */
	unsigned max_per_ip;	      /* concurrent connections per source IP / IPv6 /64:
	                              * 64; 0 = no cap */
	unsigned conn_rate_per_ip;    /* new connections per second per source: 20; 0 = none */
	unsigned conn_burst_per_ip;   /* ... with bursts of up to this many: 64 */
	unsigned log_rate;	      /* log lines per second, applied to the logger by
	                              * n4_server_new: 100; 0 = no cap */
	volatile sig_atomic_t *status_flag; /* set (e.g. by SIGUSR1): log status, clear */
	unsigned port_budget;		    /* NAT ports a punching plan may spend per side: 512 */
	/* Relay (relay.h, doc/RELAY.md): pairs no punch can join, or whose punch
	 * lost relay_after rounds, talk through two UDP ports of this server. */
	bool no_relay;		   /* --no-relay: refuse such pairs as the original */
	bool no_rooms;		   /* --no-rooms: no hosts (N4_EXT_ROOM never granted) */
	unsigned relay_after;	   /* lost punching rounds before relaying: 2; 0 = at once */
	unsigned relay_max;	   /* relayed pairs at once: 1000 */
	unsigned relay_per_ip;	   /* relayed pairs per client source: 16; 0 = no cap */
	unsigned relay_rate_kbit;  /* per pair and direction, kbit/s: 1000; 0 = none */
	unsigned relay_burst_kb;   /* ... in bursts of up to this many KiB: 64 */
	unsigned relay_total_kbit; /* all pairs together, kbit/s: 0 = no cap */
	unsigned relay_idle_s;	   /* a pair silent this long is freed: 60 */
	uint16_t relay_port_lo;	   /* relay ports from this range; 0 = any */
	uint16_t relay_port_hi;
	unsigned max_pps; /* PUNCH datagrams per second a client may send, told
	                                    * to N4_EXT_SEQ clients (a ceiling on theirs): 0 = theirs */
};

void n4_server_cfg_init(struct n4_server_cfg *cfg);

typedef struct n4_server n4_server;

/* Opens the listeners, raises the descriptor limit.  NULL + errno on failure
 * (EINVAL for a bad identifier or config, EADDRINUSE...). */
n4_server *n4_server_new(const struct n4_server_cfg *cfg);
/* The bound port (useful when cfg->port was 0). */
uint16_t n4_server_port(const n4_server *s);
/* Clients the server will hold at once (max_clients, or what descriptors allow). */
unsigned n4_server_capacity(const n4_server *s);
/* Serve until *stop becomes non-zero (checked at least every 200 ms), then shut
 * down gracefully: stop accepting, close clients that are not in an exchange,
 * let pairs in the exchange finish for up to drain_timeout_ms, return 0. */
int n4_server_run(n4_server *s, volatile sig_atomic_t *stop);
/* One-line status (clients waiting, pairs completed, rejects by reason) into buf. */
void n4_server_status(const n4_server *s, char *buf, size_t len);
void n4_server_free(n4_server *s);

#endif

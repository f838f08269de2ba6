/* server_int.h - what the layers of the server share.  Internal: not part of n4.h.
 *
 *   server.c     lifecycle: the public API (n4_server_new/run/free, status, stats)
 *   srv_net.c    transport: listeners, accept, each connection's bytes in and out,
 *                its close, the UDP read loop.  Knows no command.
 *   srv_proto.c  protocol: decode and dispatch of every message, deadlines, close
 *                rules, when PEERINFO may go out.  The only caller of the leaves.
 *   leaves       pairing.c (tables), srv_disc.c (discovery), srv_relay.c (relay),
 *                srv_stay.c (STAY/REPUNCH/FLOW), srv_lan.c (LOCAL/PEERLOCAL), and
 *                srv_admit.c (admission, called by the transport).
 *
 * Calls go down only: server.c -> srv_net.c / srv_proto.c; srv_net.c -> the
 * protocol's hooks below (n4_srv_proto_*) and srv_admit.c; srv_proto.c -> the
 * transport's connection functions (n4_srv_conn_*) and the leaves.
 *
 * Leaves: each keeps its own state (a struct embedded in, or allocated for, a
 * connection), decodes its own messages from bytes and returns what to do: a
 * result code and the messages to send (struct n4_msg).  A leaf never includes
 * this header, never sends, closes or calls the protocol; the one timer a leaf
 * arms (discovery's wait) calls back the function the protocol handed it.  A new
 * extension (host rooms) is one more srv_X.[ch] of that shape, a field in struct
 * conn, and its lines in srv_proto.c's dispatch. */
#ifndef N4_SERVER_INT_H
#define N4_SERVER_INT_H

#include "n4.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "cand6.h"
#include "ipcap.h"
#include "loop.h"
#include "metrics.h"
#include "pairing.h"
#include "relay.h"
#include "srv_disc.h"
#include "srv_fast.h"
#include "srv_lan.h"
#include "srv_relay.h"
#include "srv_room.h"
#include "srv_stay.h"
#include "wire.h"

/* PEERINFOs to one pair are timed to arrive together (srv_proto.c); never hold
 * one back longer than this. */
#define MAX_SYNC_DELAY_MS 500

/* Accepts and datagrams handled per readiness event, so that a flood on one
 * socket cannot starve the other (epoll is level-triggered: the rest waits one
 * loop iteration). */
#define ACCEPT_BATCH 256

#define UDP_BATCH 1024

/* Sweeps remembered for the clients planned after them behind the same NAT. */
#define SWEEP_RING 64
#define SWEEP_RING_MS 30000
/* A sweep's first pass opens its NAT ports within this (pools of tens of sockets,
 * paced at 1000/s at most); a later pair behind that NAT waits for it, at most
 * MAX_SWEEP_WAIT_MS. */
#define SWEEP_BUSY_MS 60
/* The walks a room's host made lately (by its socket's public address and the
 * joiner's public IP): its NAT keeps a mapping for every port walked, for 30 s
 * (Linux, unanswered) to several minutes (RFC 4787 asks at least 2 for any),
 * and a later walk must not cross them (predict.c, n4_plan_host_avoid). */
#define WALK_RING 64
/* The last mappings clients showed the server (EXCHANGE, probes): a client's
 * probes interleaved with another's behind the same NAT are not that NAT's
 * background traffic (discover.h, n4_discovery_known_between). */
#define OBS_RING 512
#define WALK_STALE_MS 120000
#define MAX_SWEEP_WAIT_MS 500

/* Descriptors kept for the listeners, the epoll fd, stdio and logs. */
#define FD_HEADROOM 64

/* When nothing caps it, aim for this many descriptors (root may raise the hard
 * limit up to fs.nr_open). */
#define FD_TARGET 65536

/* How long a keyed client may take to send its long id after HELLO (and after
 * READY when it was paired before it): a round trip and a retransmission or
 * two, at most the HELLO deadline. */
#define KEYID_WAIT_MS 3000u

enum reject {
	REJ_BAD_HELLO,
	REJ_IDENT,
	REJ_HELLO_TIMEOUT,
	REJ_WAIT_TIMEOUT,
	REJ_EXCH_TIMEOUT,
	REJ_SEND_TIMEOUT,
	REJ_PROTOCOL,
	REJ_BAD_UDP,
	REJ_SPOOFED_UDP,
	REJ_UNKNOWN_UDP,
	REJ_IPV6_UDP,
	REJ_FULL,
	REJ_PER_IP,
	REJ_RATE,
	REJ_PARTNER_GONE,
	REJ_SHUTDOWN,
	REJ_KEY_MISMATCH,
	REJ_COUNT
};

struct conn {
	/* Transport (srv_net.c): the socket, its bytes, its place in the lists. */
	struct n4_io io;
	struct n4_server *srv;
	union n4_sa tcp_addr;
	struct n4_ipkey src;
	uint8_t in[N4_MSG_SIZE]; /* the message being read; the protocol consumes it */
	/* READY, TUNE, PLAN (or RELAY + RELAY_TOKEN), 4 SELF, the PEERLOCALs, the
	 * V6 reports and PEERINFO at most */
	uint8_t out[(8 + N4_LOCAL_MAX + N4_V6_REPORT_MAX) * N4_MSG_SIZE];
	uint8_t in_len, out_len;
	bool close_after_flush, closed;
	/* AGAIN: once it is out, only our side is shut (the client's nonce or
	 * LOCAL may still be on its way: a close now would answer them with a
	 * reset, and the client would lose AGAIN to "broken pipe"); the client's
	 * EOF or the deadline closes the connection. */
	bool shut_after_flush;
	struct conn *prev, *next; /* all live connections, or the graveyard */

	/* Protocol (srv_proto.c). */
	struct n4_pclient pc; /* pairing.c's part */
	struct n4_timer deadline, peerinfo_timer;
	/* N4_EXT_KEY: KEYID messages received (long id, then the round's nonce),
	 * and the partner's nonce to pass on in SELF. */
	uint8_t keyid_parts;
	uint8_t nonce[3 * N4_PAYLOAD_SIZE], peer_nonce[3 * N4_PAYLOAD_SIZE];
	bool peer_nonce_ok;
	bool again_sent;
	uint8_t peer_flags;
	uint64_t ready_ms, exch_ms;
	struct sockaddr_in peer_udp; /* what PEERINFO will carry */
	/* IPv6 candidates (cand6.h): this client's V6 probe (its source, and a keyed
	 * client's sealed candidate), and whether its partner's is passed on. */
	bool v6_heard, v6_pass;
	uint8_t v6_kind;
	struct sockaddr_in6 v6_src, v6_peer; /* v6_peer, v6_peer_blob: the partner's */
	uint8_t v6_blob[N4_V6_SEALED_SIZE], v6_peer_blob[N4_V6_SEALED_SIZE];

	/* Leaves' state. */
	struct n4_srv_disc *disc;	/* N4_EXT_PROBE clients, from READY on */
	struct n4_srv_relay_side relay; /* N4_EXT_RELAY */
	struct n4_srv_stay stay;	/* N4_EXT_STAY: kept after PEERINFO */
	struct n4_srv_lan *lan;		/* N4_EXT_LOCAL clients, from READY on */
	struct n4_srv_room_side room;	/* N4_EXT_ROOM: its part in a room */
	bool room_heard;		/* N4_EXT_ROOM: its ROOM message after READY is in */
	bool room_keyed_wait;		/* keyed, a room has its short id: its long id
					 * decides between the room and a pair */
	struct n4_srv_fast *fast;	/* N4_EXT_STAY: its fast flows (freed with it) */
};

struct n4_server {
	struct n4_server_cfg cfg;
	char only_ident[N4_IDENT_MAX + 1];
	uint8_t only_ident_wire[N4_PAYLOAD_SIZE];
	n4_loop *loop;
	n4_pairing *pairing;
	n4_ipcap *ipcap;
	struct n4_io tcp_io, udp_io;
	struct n4_io probe_io; /* port + 1: tells endpoint-independent NATs apart; -1: none */
	int spare_fd;	       /* given up to accept-and-close when out of descriptors */
	uint16_t port;
	int family;
	unsigned nclients, max_clients;
	unsigned long long fd_limit, fd_limit_was;
	unsigned long pairs_done, accepted, client_closed;
	unsigned long rejects[REJ_COUNT];
	unsigned long plans[N4_STATS_PLANS]; /* per side, by enum n4_plan_kind */
	struct conn *live;
	/* Closed connections are freed after the loop iteration, so that a chain of
	 * calls (send -> error -> close partner) never touches freed memory. */
	struct conn *graveyard;
	bool draining;
	uint64_t next_sweep_ms;
	n4_relay *relay;		 /* NULL: --no-relay, or no IPv4 to relay on */
	struct n4_srv_stay_list staying; /* N4_EXT_STAY connections kept after PEERINFO */
	n4_srv_rooms *rooms;		 /* N4_EXT_ROOM; NULL: no rooms */
	/* FLOW notices passed on (to at least one kept connection), and dropped
	 * (over the rate, nobody else's kept connection, or its buffer full). */
	unsigned long flows, flows_dropped;
	/* Fast flows (srv_fast.c): requests under way; pairs answered, and
	 * requests told NO. */
	struct n4_srv_fast_list fast;
	unsigned long fast_flows, fast_no;
	/* The last sweeps planned, by public IP: a client held meanwhile (a room's
	 * joiner waiting for its host's answer) behind the same NAT finds that NAT's
	 * counter moved on by their ports (srv_proto.c, schedule_peerinfo). */
	struct {
		uint32_t ip;
		unsigned allocs;
		uint64_t ms;
	} sweeps[SWEEP_RING];
	unsigned sweep_next;
	struct {
		uint32_t host_ip, peer_ip;
		uint16_t host_port;
		struct n4_port_span span;
		uint64_t ms;
	} walks[WALK_RING];
	unsigned walk_next;
	struct n4_seen_map obs[OBS_RING];
	unsigned obs_next;
	unsigned long walk_skips; /* plans whose walk skipped ports walked lately */
	unsigned long rooms_hosted, room_joins, room_refused;
	uint64_t rx_ms; /* kernel receive time of the datagram being handled */
};

/* server.c */
extern const char *const n4_srv_reject_names[REJ_COUNT];
void n4_srv_after_iteration(n4_server *s);
void n4_srv_begin_drain(n4_server *s);

/* srv_net.c: the transport, for server.c and the protocol. */
int n4_srv_net_resolve(const struct n4_server_cfg *cfg, union n4_sa *addr, bool *dual);
int n4_srv_net_listen(n4_server *s, union n4_sa *addr, bool dual);
void n4_srv_net_stop_accepting(n4_server *s);
void n4_srv_net_raise_fd_limit(n4_server *s, unsigned want_clients);
/* As if fd had just been accepted from a: admission applied (reset when refused). */
int n4_srv_conn_admit(n4_server *s, int fd, const union n4_sa *a);
/* Append without sending yet: the next n4_srv_conn_send takes it along, in one
 * segment with what follows. */
void n4_srv_conn_queue(struct conn *c, const struct n4_msg *m);
void n4_srv_conn_flush(struct conn *c);
/* Whether one more message fits in c's buffer (a kept connection whose client
 * does not read fills it: what does not fit is the protocol's to drop). */
bool n4_srv_conn_has_room(const struct conn *c);
/* How many more messages fit in c's buffer. */
unsigned n4_srv_conn_room(const struct conn *c);
void n4_srv_conn_send(struct conn *c, const struct n4_msg *m);
/* Closes the socket (reset unless the protocol is done and all bytes went out)
 * after the protocol's detach hook; the protocol's closed hook runs last. */
void n4_srv_conn_close(struct conn *c, bool close_partner);
const char *n4_srv_conn_str(const struct conn *c, char *buf, size_t len);
/* One datagram as if read from the UDP port (second: the discovery port). */
void n4_srv_net_datagram(n4_server *s, const uint8_t *buf, size_t len, const union n4_sa *from,
			 bool second, uint64_t rx_ms);
void n4_srv_bury(n4_server *s);

/* srv_proto.c: the hooks the transport calls, and the protocol's entry points. */
void n4_srv_proto_opened(struct conn *c);
/* Whether a message is expected now (its bytes go to c->in). */
bool n4_srv_proto_wants(const struct conn *c);
/* c->in holds a whole expected message. */
void n4_srv_proto_message(struct conn *c);
/* Bytes arrived when no message was expected. */
void n4_srv_proto_stray(struct conn *c);
/* The client closed (reset: with a reset). */
void n4_srv_proto_eof(struct conn *c, bool reset);
/* Closing: the protocol lets go of c (timers, leaves, pairing).  True when the
 * exchange was done (the socket may close gracefully). */
struct n4_srv_detached {
	struct conn *partner;
	struct n4_pclient *released;
};
bool n4_srv_proto_detach(struct conn *c, struct n4_srv_detached *d);
/* After the socket is closed: the partner and the client released by it. */
void n4_srv_proto_closed(struct conn *c, const struct n4_srv_detached *d, bool close_partner);
void n4_srv_proto_datagram(n4_server *s, const uint8_t *buf, size_t len, const union n4_sa *from,
			   bool second);
/* Graceful shutdown: close what cannot finish soon; returns how many get
 * drain_timeout_ms to finish their exchange. */
unsigned n4_srv_proto_drain(n4_server *s);

#endif

/* server_int.h - what the files of the server share (server.c: the loop, connections,
 * listeners, lifecycle and status; server_pair.c: pairing on the wire;
 * server_discover.c: NAT discovery wiring; server_limits.c: admission and limits;
 * server_relay.c: the relay decision and grant; server_test.c: test entry points).
 * Internal: not part of n4.h. */
#ifndef N4_SERVER_INT_H
#define N4_SERVER_INT_H

#include "n4.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "discover.h"
#include "ipcap.h"
#include "loop.h"
#include "pairing.h"
#include "relay.h"
#include "wire.h"

/* PEERINFOs to one pair are timed to arrive together (see schedule_peerinfo);
 * never hold one back longer than this. */
#define MAX_SYNC_DELAY_MS 500
/* N4_EXT_STAY: how long a connection is kept after PEERINFO for a REPUNCH notice.
 * Sessions last hours; the client opens a new one with every rendezvous. */
#define STAY_MAX_MS (6u * 3600u * 1000u)

/* Accepts and datagrams handled per readiness event, so that a flood on one
 * socket cannot starve the other (epoll is level-triggered: the rest waits one
 * loop iteration). */
#define ACCEPT_BATCH 256

#define UDP_BATCH 1024

/* Descriptors kept for the listeners, the epoll fd, stdio and logs. */
#define FD_HEADROOM 64

/* When nothing caps it, aim for this many descriptors (root may raise the hard
 * limit up to fs.nr_open). */
#define FD_TARGET 65536

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
	struct n4_pclient pc;
	struct n4_io io;
	struct n4_server *srv;
	union n4_sa tcp_addr;
	struct n4_ipkey src;
	uint8_t in[N4_MSG_SIZE];
	/* READY, TUNE, PLAN (or RELAY + RELAY_TOKEN), 4 SELF, the PEERLOCALs and
	 * PEERINFO at most */
	uint8_t out[(8 + N4_LOCAL_MAX) * N4_MSG_SIZE];
	uint8_t in_len, out_len;
	/* N4_EXT_KEY: KEYID messages received (long id, then the round's nonce),
	 * and the partner's nonce to pass on in SELF. */
	uint8_t keyid_parts;
	uint8_t nonce[3 * N4_PAYLOAD_SIZE], peer_nonce[3 * N4_PAYLOAD_SIZE];
	bool peer_nonce_ok;
	bool close_after_flush, closed;
	/* AGAIN: once it is out, only our side is shut (the client's nonce or
	 * LOCAL may still be on its way: a close now would answer them with a
	 * reset, and the client would lose AGAIN to "broken pipe"); the client's
	 * EOF or the deadline closes the connection. */
	bool shut_after_flush, again_sent;
	uint8_t peer_flags;
	uint64_t ready_ms, exch_ms;
	struct sockaddr_in peer_udp; /* what PEERINFO will carry */
	struct n4_timer deadline, peerinfo_timer;
	struct conn *prev, *next; /* all live connections, or the graveyard */
	struct disc_state *disc;  /* N4_EXT_PROBE clients, from pairing on */
	/* N4_EXT_RELAY: the client's lost rounds (its RELAY message), and the
	 * relay port granted to it when its pair is relayed. */
	uint8_t lost_rounds;
	bool relay_heard, relayed;
	struct n4_relay_grant grant;
	bool staying; /* N4_EXT_STAY: kept after PEERINFO (stay list) */
	struct conn *stay_prev, *stay_next;
	struct lan_state *lan; /* N4_EXT_LOCAL clients, from pairing on */
};

/* Same-LAN state (N4_EXT_LOCAL), allocated only for paired clients that
 * negotiated it: the local addresses the client announced after READY, and
 * the partner's that precede its PEERINFO (only when both share a public IP). */
struct lan_state {
	struct sockaddr_in own[N4_LOCAL_MAX], peer[N4_LOCAL_MAX];
	uint8_t nown, npeer, nmsgs;
	bool done; /* the client's last LOCAL arrived */
};

/* NAT discovery state, allocated only for paired clients that asked for it, so
 * that waiting clients stay small. */
struct disc_state {
	struct n4_discovery d;
	struct n4_timer timer;
	struct conn *owner;
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
	n4_relay *relay;      /* NULL: --no-relay, or no IPv4 to relay on */
	struct conn *staying; /* N4_EXT_STAY connections kept after PEERINFO */
	uint64_t rx_ms;	 /* kernel receive time of the datagram being handled */
};

/* server.c */
void n4_srv_after_iteration(n4_server *s);
void n4_srv_arm_deadline(struct conn *c, unsigned ms);
void n4_srv_begin_drain(n4_server *s);
void n4_srv_bury(n4_server *s);
void n4_srv_close_reset(int fd);
void n4_srv_conn_close(struct conn *c, bool close_partner);
void n4_srv_conn_flush(struct conn *c);
void n4_srv_conn_event(n4_loop *loop, struct n4_io *io, uint32_t events);
void n4_srv_conn_queue(struct conn *c, const struct n4_msg *m);
void n4_srv_conn_send(struct conn *c, const struct n4_msg *m);
const char *n4_srv_conn_str(const struct conn *c, char *buf, size_t len);
extern const char *const n4_srv_reject_names[REJ_COUNT];
/* server_discover.c */
/* A client granted N4_EXT_PROBE gets its discovery state at READY (none when
 * memory is short: it then plans without discovery); freed when it closes. */
void n4_srv_disc_start(struct conn *c);
void n4_srv_disc_free(struct n4_server *s, struct conn *c);
/* The pool's EXCHANGE arrived: record it, wait for the last probes. */
void n4_srv_disc_exchange(struct n4_server *s, struct conn *c, const struct sockaddr_in *src);
/* All probes in (or the wait ran out); true without discovery. */
bool n4_srv_disc_complete(const struct conn *c);
/* Plans for both sides, timed to when their sweeps will start. */
void n4_srv_disc_plan(struct n4_server *s, struct conn *a, struct conn *b, uint64_t now,
		      const uint64_t delay[2], uint64_t rtt_a, uint64_t rtt_b);
/* TUNE (N4_EXT_SEQ) and PLAN before PEERINFO. */
void n4_srv_disc_send_plan(struct conn *c);
void n4_srv_discovery_expired(n4_loop *loop, struct n4_timer *t);
uint64_t n4_srv_rx_time_ms(const struct msghdr *mh);
void n4_srv_udp_probe(struct n4_server *s, const struct n4_msg *m, const struct sockaddr_in *src,
		      bool second);
void n4_srv_udp_seq_probe(struct n4_server *s, const uint8_t *buf, size_t len,
			  const union n4_sa *from, bool second);
/* server_limits.c */
void n4_srv_accept_ready(n4_loop *loop, struct n4_io *io, uint32_t events);
int n4_srv_conn_admit(struct n4_server *s, int fd, const union n4_sa *a);
void n4_srv_raise_fd_limit(n4_server *s, unsigned want_clients);
/* server_pair.c */
void n4_srv_handle_hello(struct conn *c);
void n4_srv_handle_keyid(struct conn *c);
void n4_srv_send_again(struct conn *c);
/* How long a keyed client may take to send its long id after HELLO (and after
 * READY when it was paired before it): a round trip and a retransmission or
 * two, at most the HELLO deadline. */
#define KEYID_WAIT_MS 3000u
unsigned n4_srv_keyid_wait_ms(const struct n4_server *s);
void n4_srv_handle_local(struct conn *c);
void n4_srv_maybe_schedule(struct n4_server *s, struct conn *c);
void n4_srv_send_peerinfo(struct conn *c);
/* N4_EXT_STAY (server_pair.c): keep a connection for a REPUNCH notice. */
void n4_srv_start_staying(struct conn *c);
void n4_srv_send_ready(struct conn *c);
void n4_srv_udp_datagram(struct n4_server *s, const uint8_t *buf, size_t len,
			 const union n4_sa *from, bool second);
void n4_srv_udp_ready(n4_loop *loop, struct n4_io *io, uint32_t events);
/* server_relay.c */
void n4_srv_handle_relay_ask(struct conn *c);
bool n4_srv_relay_wants_ask(const struct conn *c);
bool n4_srv_relay_pair(struct n4_server *s, struct conn *a, struct conn *b);
int n4_srv_relay_start(n4_server *s, const union n4_sa *addr);
void n4_srv_send_relay(struct conn *c);

#endif

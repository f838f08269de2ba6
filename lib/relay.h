/* relay.h - the server's relay for pairs no punch can join: two UDP ports per
 * pair, one per side, forwarding datagrams byte for byte between the two
 * registered addresses (zero bytes of overhead, so a program's socket moves
 * onto a relayed path exactly as onto a punched one).
 *
 * Life of a pair:
 *   n4_relay_alloc()   when the server decides to relay (server.c): two ports,
 *                      two tokens from getrandom, sent to each client over its
 *                      TCP connection (N4_CMD_RELAY + N4_CMD_RELAY_TOKEN).
 *   registration       each client sends a RELAY_REG datagram (relay_reg.h) to
 *                      its port from the socket it will use; accepted only from
 *                      the IP its EXCHANGE came from, with its token.  Both
 *                      sides must register within N4_RELAY_REG_TIMEOUT_S.
 *   forwarding         a datagram arriving on A's port from A's registered
 *                      address leaves B's port to B's registered address, and
 *                      back; everything else is dropped and counted.
 *   idle               the pair is freed when neither side has sent anything
 *                      (data or registration) for idle_s (--relay-idle, 60 s).
 *                      Keepers refresh with a registration every 15-25 s.
 *
 * Never a reflector: the relay only ever sends to registered addresses, one
 * datagram out per datagram in from the other side (or one ack per valid
 * registration, of the same size), within per-pair and total token buckets. */
#ifndef N4_RELAY_H
#define N4_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "ipcap.h"
#include "loop.h"
#include "n4.h"

/* Both sides must register within this long of the allocation. */
#define N4_RELAY_REG_TIMEOUT_S 30

struct n4_relay_cfg {
	unsigned max_pairs;	   /* relayed pairs at once */
	unsigned max_per_ip;	   /* pairs per client source (either side); 0 = no cap */
	unsigned rate_kbit;	   /* per pair and direction; 0 = no limit */
	unsigned burst_kb;	   /* bucket size per direction */
	unsigned total_kbit;	   /* all pairs; 0 = no limit */
	unsigned idle_s;	   /* free a pair silent for this long */
	uint16_t port_lo, port_hi; /* 0, 0: ports the kernel picks */
};

/* One side of a pair to allocate: where its TCP came from (per-source cap) and
 * the IPv4 its EXCHANGE came from (the only IP that may register). */
struct n4_relay_side_in {
	struct n4_ipkey src;
	uint32_t udp_ip; /* network order */
};

/* What the server sends to that side. */
struct n4_relay_grant {
	uint16_t port; /* host order */
	uint8_t token[N4_RELAY_TOKEN_SIZE];
};

typedef struct n4_relay n4_relay;

/* bind: the server's UDP address (port ignored).  NULL + errno on failure. */
n4_relay *n4_relay_new(const struct n4_relay_cfg *cfg, n4_loop *loop, const union n4_sa *bind);
void n4_relay_free(n4_relay *r);

/* Allocate a pair.  0 and the two grants; -ENOSPC (relay_max), -EMFILE (a
 * source holds max_per_ip), -EADDRINUSE (no free port in the range), other
 * -errno from the system. */
int n4_relay_alloc(n4_relay *r, const struct n4_relay_side_in *a, const struct n4_relay_side_in *b,
		   struct n4_relay_grant *ga, struct n4_relay_grant *gb);

/* Free pairs past their registration or idle deadline; call about once a second. */
void n4_relay_sweep(n4_relay *r, uint64_t now_ms);

/* " relay: pairs=... forwarded=... dropped:..." appended to a status line. */
void n4_relay_status(const n4_relay *r, char *buf, size_t len);

/* Totals for the metrics endpoint (metrics.h). */
struct n4_relay_counts {
	unsigned pairs; /* allocated now */
	unsigned long long allocated, forwarded, bytes;
	unsigned long long dropped; /* every drop reason together */
};
void n4_relay_counts(const n4_relay *r, struct n4_relay_counts *out);

/* For tests: pairs allocated now. */
unsigned n4_relay_pairs(const n4_relay *r);
/* For tests (server_test.h): feed one datagram as if it arrived on side `side`
 * (0 or 1) of the newest pair; forwarding really sends. */
void n4_relay_test_input(n4_relay *r, unsigned side, const void *buf, size_t len,
			 const union n4_sa *from);

#endif

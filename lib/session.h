/* session.h - keeping a punched path alive, and telling when it has died.
 *
 * Not about interposition: the shim and any embedder that keeps a punched socket
 * for long use the same rules.  A path is refreshed with low-TTL datagrams that
 * cross one's own NAT only, and is judged dead from two counters the caller
 * keeps (datagrams sent, datagrams received) sampled at a steady tick.  Embedders
 * get these rules through the path module (n4.h "path", lib/path.c). */
#ifndef N4_SESSION_H
#define N4_SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

/* Linux forgets an unreplied UDP mapping after 30 s, Tailscale assumes the same of
 * real NATs, RFC 8445 keeps ICE alive every 15 s (doc/SHIM.md "Paths that last"): 15 s is
 * under every figure we know, at one 8-byte datagram per path per interval. */
#define N4_KEEPALIVE_DEFAULT_S 15
/* Sending for this long without hearing anything back means the path is dead.
 * Tailscale trusts a path 6.5 s after a reply; a two-way stream hears its peer
 * every few hundred ms, and recovery is make-before-break (the old path carries
 * on while we punch again), so being early costs the program nothing. */
#define N4_DEAD_MS 2000
/* ... and having sent at least this many datagrams meanwhile: one unanswered
 * request is not a dead path, a stream that gets no answer is. */
#define N4_DEAD_SENDS 3
/* A receiver that never sends (the sink of a one-way stream, whose sender hears
 * nothing and so cannot judge) goes by the stream itself: data arriving without a
 * pause over N4_STREAM_GAP_MS for at least N4_STREAM_MS, then nothing for
 * N4_DEAD_MS.  A sender that merely paused costs one needless re-punch (the server
 * tells it, N4_EXT_STAY), never a gap.  A side that ever sent leaves the judging to
 * its peer, which hears it. */
#define N4_STREAM_MS 2000
#define N4_STREAM_GAP_MS 500

/* Send a keepalive: a PUNCH for ident to peer with IP TTL `ttl` (per datagram, as
 * ancillary data, so the program's own datagrams on the same socket keep their TTL).
 * With a TTL that crosses our NAT but not the peer's, the mapping is refreshed
 * (RFC 4787 REQ-6: outbound refresh) and nothing reaches the peer; if it did, it is
 * a PUNCH, which the peer's n4 drops.  peer may be AF_INET or AF_INET6 (v4-mapped).
 * Never blocks.  0 or -errno. */
int n4_keepalive_send(int fd, const struct sockaddr *peer, socklen_t peer_len,
		      const uint8_t ident[N4_PAYLOAD_SIZE], int ttl);

/* Liveness of one path from the caller's counters, sampled by n4_liveness_tick. */
struct n4_liveness {
	uint64_t last_tx, last_rx;	      /* counters at the previous tick */
	uint64_t unanswered_since_ms;	      /* first tick with sends and no receive, 0 = none */
	uint64_t tx_at_unanswered;	      /* tx counter then */
	bool heard;			      /* something was ever received on the path */
	uint64_t last_heard_ms, run_start_ms; /* the current run of received data */
	bool by_stream;			      /* the last verdict came from the receiver's rule */
	bool sent;			      /* the caller ever sent on the path */
};

void n4_liveness_reset(struct n4_liveness *l, uint64_t tx, uint64_t rx);
/* Returns true when the path is dead: it was heard once, and since then the caller
 * sent N4_DEAD_SENDS datagrams over N4_DEAD_MS without receiving one; or a steady
 * stream was arriving (N4_STREAM_MS) and stopped for N4_DEAD_MS.  A one-way sender
 * (never heard) is never judged dead: there is nothing to tell it by; its receiver
 * is, and the server tells the sender (N4_EXT_STAY). */
bool n4_liveness_tick(struct n4_liveness *l, uint64_t now_ms, uint64_t tx, uint64_t rx);
/* For the log line: how long the path has been silent. */
unsigned n4_liveness_silent_ms(const struct n4_liveness *l, uint64_t now_ms);

#endif

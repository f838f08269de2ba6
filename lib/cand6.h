/* cand6.h - IPv6 candidates (doc/PROTOCOL.md "IPv6"): which of this host's
 * addresses may carry a direct path, and their wire: the V6 probe a client sends
 * the server over UDP, the server's V6 reports before PEERINFO, and the sealing
 * of a keyed client's candidate so that the server can neither read nor alter it.
 *
 * V6 probe (UDP, client -> the server's IPv6 address and port, N4_V6_PROBE_SIZE):
 *   0      N4_CMD_V6
 *   1      N4_V6_PROBE (unkeyed: sent from the punching socket itself, the blob
 *          all zero) or N4_V6_PROBE_SEALED (keyed: sent from another socket bound
 *          to the same address, the blob is the sealed candidate)
 *   2..7   the token READY granted (the proof: no IPv4 source to compare)
 *   8..41  blob: N4_V6_SEALED_SIZE bytes
 * Reports (TCP, server -> client, 8-byte messages, only to a client whose probe
 * arrived, queued in PEERINFO's segment), the part in the reserved byte:
 *   N4_V6_SELF + 0..2   the client's own probe as the server saw it (address 16,
 *                       port 2, in 6-byte parts)
 *   N4_V6_PEER + 0..2   unkeyed: the partner's probe as seen (its punching socket)
 *   N4_V6_SEALED + 0..5 keyed: the partner's blob, 34 bytes and 2 zero bytes
 */
#ifndef N4_CAND6_H
#define N4_CAND6_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define N4_V6_ADDR_SIZE 18   /* address + big-endian port */
#define N4_V6_SEALED_SIZE 34 /* N4_V6_ADDR_SIZE encrypted + 16-byte MAC */
#define N4_V6_PROBE_SIZE (2 + N4_TOKEN_SIZE + N4_V6_SEALED_SIZE)

/* Probe kinds (byte 1 of the probe). */
#define N4_V6_PROBE 0x01
#define N4_V6_PROBE_SEALED 0x02
/* Report parts (reserved byte of N4_CMD_V6 over TCP). */
#define N4_V6_SELF 0x10
#define N4_V6_PEER 0x20
#define N4_V6_SEALED 0x30
#define N4_V6_ADDR_PARTS 3
#define N4_V6_SEALED_PARTS 6

/* Kernel address flags as /proc/net/if_inet6 shows them (linux/if_addr.h). */
#define N4_IFA_F_TEMPORARY 0x01
#define N4_IFA_F_DADFAILED 0x08
#define N4_IFA_F_DEPRECATED 0x20
#define N4_IFA_F_TENTATIVE 0x40

/* Whether an address may be a candidate: never loopback, unspecified, multicast,
 * link-local (fe80::/10), unique-local (fc00::/7), v4-mapped or v4-compatible;
 * and (flags: the kernel's) never a temporary (privacy) address, nor one that is
 * tentative, deprecated or failed DAD.  Documentation addresses (2001:db8::/32)
 * are accepted: they reach nothing outside a lab, and a candidate is used only
 * when its probe reached the server. */
bool n4_cand6_usable(const struct in6_addr *a, unsigned flags);
/* One line of /proc/net/if_inet6: its address and flags.  -EINVAL otherwise. */
int n4_cand6_parse_line(const char *line, struct in6_addr *a, unsigned *flags);
/* The first usable address listed in path (NULL: /proc/net/if_inet6).
 * -ENOENT when there is none, -errno when the file cannot be read. */
int n4_cand6_pick(const char *path, struct in6_addr *out);

/* Address + port <-> 18 bytes.  Decode rejects what no peer could use (as
 * n4_cand6_usable with no flags) and port 0: -EINVAL. */
void n4_v6addr_encode(const struct sockaddr_in6 *a, uint8_t out[N4_V6_ADDR_SIZE]);
int n4_v6addr_decode(const uint8_t in[N4_V6_ADDR_SIZE], struct sockaddr_in6 *a);

struct n4_v6probe {
	uint8_t kind; /* N4_V6_PROBE or N4_V6_PROBE_SEALED */
	uint8_t token[N4_TOKEN_SIZE];
	uint8_t blob[N4_V6_SEALED_SIZE];
};
void n4_v6probe_encode(const struct n4_v6probe *p, uint8_t out[N4_V6_PROBE_SIZE]);
/* Parse untrusted bytes (fuzzed): -EMSGSIZE, -EPROTO (another command, kind,
 * or an unkeyed probe whose blob is not zero). */
int n4_v6probe_decode(const void *buf, size_t len, struct n4_v6probe *p);

/* A client's collection of the server's reports. */
struct n4_v6rx {
	uint8_t self[N4_V6_ADDR_SIZE];
	uint8_t peer[N4_V6_SEALED_PARTS * N4_PAYLOAD_SIZE];
	uint8_t self_parts, peer_parts, sealed_parts;
};
/* Take one report (m->cmd == N4_CMD_V6).  Parts come in order: 0, or -EPROTO
 * for an unknown or out-of-order part (the reports are then unusable). */
int n4_v6rx_take(struct n4_v6rx *rx, const struct n4_msg *m);
/* What the reports say: 0 and the address, -ENOENT when incomplete, -EINVAL
 * when unusable. */
int n4_v6rx_self(const struct n4_v6rx *rx, struct sockaddr_in6 *a);
int n4_v6rx_peer(const struct n4_v6rx *rx, struct sockaddr_in6 *a);
/* 0 and the blob when all its parts are in, else -ENOENT. */
int n4_v6rx_sealed(const struct n4_v6rx *rx, uint8_t blob[N4_V6_SEALED_SIZE]);

/* The server's reports for one client: self (its probe's source), then either
 * the partner's source (peer, unkeyed) or its blob (sealed, keyed); either may
 * be NULL.  Writes at most N4_V6_REPORT_MAX messages, returns how many. */
#define N4_V6_REPORT_MAX (N4_V6_ADDR_PARTS + N4_V6_SEALED_PARTS)
unsigned n4_v6_report_msgs(const struct sockaddr_in6 *self, const struct sockaddr_in6 *peer,
			   const uint8_t *sealed, struct n4_msg out[N4_V6_REPORT_MAX]);

/* Keyed pairs: the candidate sealed under the pair's MAC key and the sender's
 * nonce of this round (both sides have them; the server never has the key).
 * k = BLAKE2s(mac_key; "n4 v6 candidate" || nonce), the address XORed with
 * BLAKE2s-18(k; "enc"), then BLAKE2s-16(k; "mac" || ciphertext). */
void n4_cand6_seal(const uint8_t mac_key[32], const uint8_t nonce[16],
		   const struct sockaddr_in6 *cand, uint8_t out[N4_V6_SEALED_SIZE]);
/* 0 and the candidate, -EBADMSG when the MAC is wrong, -EINVAL when the
 * address inside is unusable. */
int n4_cand6_open(const uint8_t mac_key[32], const uint8_t nonce[16],
		  const uint8_t in[N4_V6_SEALED_SIZE], struct sockaddr_in6 *cand);

#endif

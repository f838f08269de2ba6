/* peer.c - the peers a process talks to, and the addresses that stand for them.
 *
 * A path's WIN against one of our peers ends with the SIDE exchange (libn4,
 * n4_client_side): each side tells the other, end to end, its random side id, the
 * program's port of the path and its own LAN addresses.  From then on that peer is
 * known here, and more than one address names it:
 *   - its placeholder's IP, for the side that dialled (any port of it), and on a
 *     listener the IP of the address the peer was first heard from;
 *   - each LAN address it told us: VoIP tools put those in their SDP and their SIP
 *     Contact, and send media and in-dialog requests there.
 * A send to such an address on a port without a path becomes a *flow* of the peer
 * (designate.c), punched on an identifier derived from both sides (n4_flow_cfg).
 *
 * Home LANs often use one subnet at both ends.  A LAN alias is therefore never one
 * of our own addresses, and a live neighbour wins over it: an address our neighbour
 * table holds a complete entry for is on our LAN, and a datagram to it goes there,
 * as without the shim.  (A neighbour the kernel has not resolved yet cannot be told
 * from the peer's address: doc/SHIM.md "Calls".)
 *
 * The table is read without the lock by the send hooks (a sequence count), and
 * written with it held. */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "rand.h"

#define NEIGH_REFRESH_MS 1000 /* the neighbour table is read at most this often */
#define NEIGH_MAX 64

struct shim_peer {
	bool used;
	struct shim_sock *base; /* the path that learnt it */
	in_addr_t ph_ip;	/* its placeholder's IP (a dialler), 0 = none */
	struct n4_side mine;	/* what we told it */
	struct n4_side theirs;	/* what it told us */
};

static struct shim_peer peers[SHIM_PEER_MAX];
static unsigned peers_gen; /* odd while a writer changes the table */

/* Our side id: one per process, from getrandom, never all zero. */
static uint8_t side_id[N4_SIDE_ID_SIZE];
static bool have_side_id;

int shim_side_mine(struct n4_side *mine, uint16_t port)
{
	memset(mine, 0, sizeof(*mine));
	while (!have_side_id) {
		if (n4_random_bytes(side_id, sizeof(side_id)) < 0)
			return -EIO;
		for (unsigned i = 0; i < sizeof(side_id); i++)
			if (side_id[i])
				have_side_id = true;
	}
	memcpy(mine->id, side_id, sizeof(side_id));
	mine->port = port;
	shim_guard++; /* getifaddrs opens a netlink socket of its own */
	int rc = n4_side_local_addrs(mine);
	shim_guard--;
	if (rc < 0)
		n4_debug("own LAN addresses: %s (none told to the peer)", strerror(-rc));
	return 0;
}

void shim_peer_learn(struct shim_sock *s, const struct n4_side *mine, const struct n4_side *theirs)
{
	struct shim_peer *slot = NULL;

	for (unsigned i = 0; i < SHIM_PEER_MAX; i++) {
		if (peers[i].used && peers[i].base == s) {
			slot = &peers[i];
			break;
		}
		if (!peers[i].used && !slot)
			slot = &peers[i];
	}
	if (!slot) {
		n4_warn("fd %d: more than %u peers at once: this one gets no flows or LAN aliases",
			s->fds ? s->fds[0] : -1, SHIM_PEER_MAX);
		return;
	}
	__atomic_add_fetch(&peers_gen, 1, __ATOMIC_ACQ_REL);
	slot->used = true;
	slot->base = s;
	/* The IP the program knows the peer by: its placeholder's (a dialler), or
	 * on a listener the IP of the address it first heard the peer from (the
	 * program learnt that IP from us alone: another port of it is the peer). */
	slot->ph_ip = s->have_ph ? s->ph.sin_addr.s_addr : 0;
	slot->mine = *mine;
	slot->theirs = *theirs;
	__atomic_add_fetch(&peers_gen, 1, __ATOMIC_RELEASE);
	char b[N4_SIDE_MAX_ADDRS * (INET_ADDRSTRLEN + 1) + 1] = "";
	for (unsigned i = 0; i < theirs->naddrs; i++) {
		char one[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &theirs->addrs[i], one, sizeof(one));
		strcat(b, i ? " " : "");
		strcat(b, one);
	}
	n4_info("fd %d: the peer's program port is %u; its LAN addresses stand for it: %s",
		s->fds ? s->fds[0] : -1, theirs->port, theirs->naddrs ? b : "(none)");
}

void shim_peer_forget(struct shim_sock *s)
{
	for (unsigned i = 0; i < SHIM_PEER_MAX; i++) {
		if (peers[i].used && peers[i].base == s) {
			__atomic_add_fetch(&peers_gen, 1, __ATOMIC_ACQ_REL);
			peers[i].used = false;
			peers[i].base = NULL;
			__atomic_add_fetch(&peers_gen, 1, __ATOMIC_RELEASE);
		}
	}
}

/* ------------------------------------------------------------- neighbours --- */

static pthread_mutex_t neigh_mu = PTHREAD_MUTEX_INITIALIZER;
static in_addr_t neigh[NEIGH_MAX];
static unsigned neigh_n;
static uint64_t neigh_at;

/* The kernel's IPv4 neighbour table: complete entries only (ATF_COM, 0x2). */
static void neigh_refresh(void)
{
	shim_guard++;
	FILE *f = fopen("/proc/net/arp", "re");
	shim_guard--;
	neigh_n = 0;
	if (!f)
		return;
	char line[256], ip[64];
	unsigned flags;
	if (!fgets(line, sizeof(line), f)) { /* the header */
		fclose(f);
		return;
	}
	while (neigh_n < NEIGH_MAX && fgets(line, sizeof(line), f)) {
		struct in_addr a;
		if (sscanf(line, "%63s %*s %x", ip, &flags) == 2 && (flags & 0x2) &&
		    inet_pton(AF_INET, ip, &a) == 1)
			neigh[neigh_n++] = a.s_addr;
	}
	fclose(f);
}

static bool is_live_neighbour(in_addr_t a)
{
	bool found = false;
	uint64_t now = shim_now_ms();

	pthread_mutex_lock(&neigh_mu);
	if (!neigh_at || now - neigh_at >= NEIGH_REFRESH_MS) {
		neigh_refresh();
		neigh_at = now;
	}
	for (unsigned i = 0; i < neigh_n && !found; i++)
		found = neigh[i] == a;
	pthread_mutex_unlock(&neigh_mu);
	return found;
}

/* ----------------------------------------------------------------- lookup --- */

/* Which of the peer's addresses a matches: 1 its placeholder's IP, 2 a LAN alias
 * (before the neighbour rule), 0 none. */
static int match(const struct shim_peer *p, in_addr_t a)
{
	if (p->ph_ip && p->ph_ip == a)
		return 1;
	for (unsigned i = 0; i < p->theirs.naddrs && i < N4_SIDE_MAX_ADDRS; i++) {
		if (p->theirs.addrs[i].s_addr != a)
			continue;
		for (unsigned j = 0; j < p->mine.naddrs && j < N4_SIDE_MAX_ADDRS; j++)
			if (p->mine.addrs[j].s_addr == a)
				return 0; /* our own address: always local */
		return 2;
	}
	return 0;
}

bool shim_peer_find(const struct sockaddr_in *v4, struct shim_peer_ref *out)
{
	in_addr_t a = v4->sin_addr.s_addr;
	unsigned gen;
	int how;

	for (;;) {
		gen = __atomic_load_n(&peers_gen, __ATOMIC_ACQUIRE);
		how = 0;
		if (!(gen & 1)) {
			for (unsigned i = 0; i < SHIM_PEER_MAX && !how; i++) {
				if (!__atomic_load_n(&peers[i].used, __ATOMIC_RELAXED))
					continue;
				how = match(&peers[i], a);
				if (how && out) {
					out->base = peers[i].base;
					out->mine = peers[i].mine;
					out->theirs = peers[i].theirs;
					out->ph_ip = peers[i].ph_ip;
				}
			}
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!(gen & 1) && gen == __atomic_load_n(&peers_gen, __ATOMIC_RELAXED))
			break;
	}
	/* DNS and the rendezvous port are never the peer's: a relayed peer is heard
	 * from the server's IP, and a dialler's placeholder IP is often the server's
	 * (the same exceptions as for the placeholder, designate.c). */
	if (how == 1) {
		const struct shim_config *cfg = shim_config_get();
		if (v4->sin_port == htons(SHIM_DNS_PORT) ||
		    (cfg->have_server_ip && a == cfg->server_ip.s_addr &&
		     v4->sin_port == htons(cfg->server_port)))
			return false;
	}
	/* The neighbour rule, outside the sequence: it reads a file. */
	return how == 1 || (how == 2 && !is_live_neighbour(a));
}

bool shim_peer_names(const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_in v4;

	if (!__atomic_load_n(&peers_gen, __ATOMIC_RELAXED) || !shim_to_v4(addr, len, &v4))
		return false; /* no peer ever learnt: one load */
	return shim_peer_find(&v4, NULL);
}

bool shim_peer_of_base(const struct shim_sock *s, struct shim_peer_ref *out)
{
	for (unsigned i = 0; i < SHIM_PEER_MAX; i++) {
		if (peers[i].used && peers[i].base == s) {
			out->base = peers[i].base;
			out->mine = peers[i].mine;
			out->theirs = peers[i].theirs;
			out->ph_ip = peers[i].ph_ip;
			return true;
		}
	}
	return false;
}

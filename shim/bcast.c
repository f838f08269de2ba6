/* bcast.c - a room is one broadcast domain: which IPv4 destinations are broadcasts
 * (the limited one, or the directed broadcast of one of this host's interfaces) or
 * multicast groups, and where a joiner's broadcast on one of its room's ports goes
 * besides its own LAN (the room's host, at the placeholder).  send.c acts on it; the
 * host's fan-out is host.c's. */
#include "shim.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <pthread.h>
#include <string.h>

#define IF_MAX 32
#define IF_REFRESH_MS 5000 /* interfaces come and go (a VPN, a new DHCP lease) */

/* Read lock-free (a host's send calls ask): a sequence count, odd while the one
 * refreshing thread (if_mu) rewrites the list. */
static pthread_mutex_t if_mu = PTHREAD_MUTEX_INITIALIZER;
static in_addr_t if_bcast[IF_MAX];
static unsigned if_n, if_gen;
static uint64_t if_at;

/* Lock held: this host's directed broadcast addresses.  getifaddrs opens a netlink
 * socket of its own: the guard keeps our hooks out of it. */
static void if_refresh(uint64_t now)
{
	struct ifaddrs *ifs = NULL;

	__atomic_store_n(&if_at, now, __ATOMIC_RELAXED);
	shim_guard++;
	int rc = getifaddrs(&ifs);
	shim_guard--;
	if (rc < 0)
		return; /* keep what we knew */
	__atomic_add_fetch(&if_gen, 1, __ATOMIC_RELEASE);
	unsigned n = 0;
	for (struct ifaddrs *i = ifs; i && n + 1 < IF_MAX; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    !(i->ifa_flags & IFF_BROADCAST))
			continue;
		in_addr_t a = ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
		/* The subnet's all-ones address: the kernel routes it as a broadcast
		 * even for an address added without "brd" (getifaddrs then reports
		 * the address itself as the broadcast one). */
		if (i->ifa_netmask && i->ifa_netmask->sa_family == AF_INET) {
			in_addr_t m = ((const struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr;
			if (~ntohl(m) >= 3u)
				__atomic_store_n(&if_bcast[n++], a | ~m, __ATOMIC_RELAXED);
		}
		if (i->ifa_broadaddr) {
			in_addr_t b =
				((const struct sockaddr_in *)i->ifa_broadaddr)->sin_addr.s_addr;
			if (b != a)
				__atomic_store_n(&if_bcast[n++], b, __ATOMIC_RELAXED);
		}
	}
	__atomic_store_n(&if_n, n, __ATOMIC_RELAXED);
	__atomic_add_fetch(&if_gen, 1, __ATOMIC_RELEASE);
	freeifaddrs(ifs);
}

bool shim_is_broadcast(in_addr_t a)
{
	if (a == htonl(INADDR_BROADCAST))
		return true;
	/* A directed broadcast has its host part all ones: at least the last two
	 * bits (no subnet has fewer than two host bits). */
	if ((ntohl(a) & 3u) != 3u)
		return false;
	uint64_t now = shim_now_ms();
	if ((!__atomic_load_n(&if_at, __ATOMIC_RELAXED) ||
	     now - __atomic_load_n(&if_at, __ATOMIC_RELAXED) >= IF_REFRESH_MS) &&
	    pthread_mutex_trylock(&if_mu) == 0) {
		if_refresh(now);
		pthread_mutex_unlock(&if_mu);
	}
	for (;;) {
		unsigned g = __atomic_load_n(&if_gen, __ATOMIC_ACQUIRE);
		if (g & 1)
			continue;
		bool hit = false;
		unsigned n = __atomic_load_n(&if_n, __ATOMIC_RELAXED);
		for (unsigned i = 0; i < n && i < IF_MAX && !hit; i++)
			hit = __atomic_load_n(&if_bcast[i], __ATOMIC_RELAXED) == a;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&if_gen, __ATOMIC_RELAXED) == g)
			return hit;
	}
}

bool shim_is_multicast(in_addr_t a)
{
	return (ntohl(a) & 0xf0000000u) == 0xe0000000u;
}

bool shim_room_bcast(const struct shim_config *cfg, const struct sockaddr *dest, socklen_t len,
		     struct sockaddr_in *ph)
{
	struct sockaddr_in v4;

	if (!cfg->njoin || !dest || !shim_to_v4(dest, len, &v4) ||
	    !shim_join_port(cfg, ntohs(v4.sin_port)) || !shim_is_broadcast(v4.sin_addr.s_addr))
		return false;
	return shim_room_ph(cfg, ntohs(v4.sin_port), ph);
}

/* N4_PEER's address, else the server's: the shim's placeholder (designate.c). */
bool shim_room_ph(const struct shim_config *cfg, uint16_t port, struct sockaddr_in *ph)
{
	if (cfg->have_peer) {
		*ph = cfg->peer_ph;
	} else {
		cfg = shim_config_resolved();
		if (!cfg->have_server_ip)
			return false; /* no placeholder to show the host at: LAN only */
		memset(ph, 0, sizeof(*ph));
		ph->sin_family = AF_INET;
		ph->sin_addr = cfg->server_ip;
	}
	ph->sin_port = htons(port);
	return true;
}

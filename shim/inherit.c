/* inherit.c - punched paths that cross exec().  The old image's table is gone, but
 * its sockets are not: each punched socket carries its peer and placeholder in its
 * late-PUNCH filter (filter.c).  At load, before main() can send anything, we look
 * for such sockets among the inherited descriptors and take them into the table, so
 * a send to the placeholder still goes to the peer (issue 8: fail closed; without
 * this it would go to the server's host in clear).  Copies of one socket (dups) share
 * one path, as they did before the exec.
 *
 * Only raw system calls until a socket is found: this runs in a constructor, where
 * resolving symbols has crashed gdb and valgrind for another interposer (cwrap
 * socket_wrapper, which resolved everything in its constructor). */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/* Inherited descriptors looked at: programs that keep sockets above this across an
 * exec are rare; the scan costs one system call per closed number. */
#define INHERIT_SCAN_MAX 1024
#define INHERIT_MAX 64

static int raw_sockopt(int fd, int name, int *val)
{
	socklen_t len = sizeof(*val);

	return (int)syscall(SYS_getsockopt, fd, SOL_SOCKET, name, val, &len);
}

static void adopt(int fd, int family, int type, const struct shim_filter_state *st,
		  struct shim_sock **by_ino_sock, ino_t *by_ino, unsigned *n, ino_t ino)
{
	for (unsigned i = 0; i < *n; i++) {
		if (by_ino[i] == ino) {
			if (shim_sock_attach(fd, by_ino_sock[i]) < 0)
				n4_warn("fd %d: inherited copy of a punched socket not followed",
					fd);
			return;
		}
	}
	/* A direct IPv6 path's socket under an IPv4 program: the program's family. */
	if (st->path6)
		family = st->prog_family;
	if (shim_sock_track(fd, family, type) < 0)
		return;
	struct shim_sock *s = shim_sock_get(fd);
	char peer_str[INET6_ADDRSTRLEN];
	shim_seq_begin(s);
	s->peer = st->peer;
	s->path6 = st->path6;
	s->peer6 = st->peer6;
	s->have_ph = st->have_ph;
	s->ph = st->ph;
	s->alias_ph = st->alias; /* a listener's peer keeps its first address */
	s->connected_ph = st->connected;
	s->prog_bound = true;
	if (st->path6 && st->prog_port) { /* getsockname: the program's family and port */
		struct sockaddr_storage a;
		struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = htons(st->prog_port) };
		s->bound_len = shim_to_family(family, &v4, &a);
		if (family == AF_INET6) /* [::], not the v4-mapped 0.0.0.0 */
			memset(&((struct sockaddr_in6 *)&a)->sin6_addr, 0, sizeof(struct in6_addr));
		memcpy(&s->bound_addr, &a, s->bound_len);
	}
	shim_set_state(s, SHIM_WON);
	shim_seq_end(s);
	shim_path_keep(s, false);
	shim_path_add(s);
	if (*n < INHERIT_MAX) {
		by_ino[*n] = ino;
		by_ino_sock[(*n)++] = s;
	}
	if (st->path6)
		inet_ntop(AF_INET6, &st->peer6.sin6_addr, peer_str, sizeof(peer_str));
	else
		inet_ntop(AF_INET, &st->peer.sin_addr, peer_str, sizeof(peer_str));
	n4_info("fd %d: punched path inherited across exec (peer %s%s%s:%u)", fd,
		st->path6 ? "[" : "", peer_str, st->path6 ? "]" : "",
		ntohs(st->path6 ? st->peer6.sin6_port : st->peer.sin_port));
}

__attribute__((constructor)) static void inherit_paths(void)
{
	struct shim_sock *socks[INHERIT_MAX];
	ino_t inos[INHERIT_MAX];
	unsigned n = 0;
	bool locked = false;

	if (!getenv("N4_SERVER") && !getenv("N4_PEER") && !getenv("N4_LISTEN"))
		return;
	for (int fd = 0; fd < INHERIT_SCAN_MAX; fd++) {
		int type, family;
		struct shim_filter_state fs;
		struct stat st;
		if (raw_sockopt(fd, SO_TYPE, &type) < 0 || type != SOCK_DGRAM ||
		    raw_sockopt(fd, SO_DOMAIN, &family) < 0 ||
		    (family != AF_INET && family != AF_INET6) || !shim_filter_read(fd, &fs) ||
		    syscall(SYS_fstat, fd, &st) < 0)
			continue;
		if (!locked) {
			if (!shim_config_get()->active)
				return;
			shim_lock();
			locked = true;
		}
		adopt(fd, family, type, &fs, socks, inos, &n, st.st_ino);
	}
	if (!locked)
		return;
	if (n && shim_keeper_start() < 0)
		n4_warn("no keeper for inherited paths: no keepalive or recovery");
	shim_unlock();
}

/* addr.h - addresses: resolving, formatting, small socket helpers. */
#ifndef N4_ADDR_H
#define N4_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Resolve an IPv4 host name or literal.  -EINVAL for an empty name,
 * -EHOSTUNREACH when it does not resolve to an IPv4 address. */
int n4_resolve_v4(const char *host, uint16_t port, struct sockaddr_in *out);

/* Resolve an IPv6 host name or literal (the server's IPv6 address, for the V6
 * probe).  -EINVAL for an empty name, -EHOSTUNREACH without an IPv6 address. */
int n4_resolve_v6(const char *host, uint16_t port, struct sockaddr_in6 *out);

/* Parse "HOST[:PORT]" into host (copied into buf) and port (default_port if
 * absent).  -EINVAL on a bad or out-of-range port or an over-long host. */
int n4_parse_hostport(const char *s, char *host, size_t host_len, uint16_t default_port,
		      uint16_t *port);

/* Parse a decimal number in [min, max]; -EINVAL otherwise. */
int n4_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* "a.b.c.d:port" into buf (at least 22 bytes). */
const char *n4_addr_str(const struct sockaddr_in *a, char *buf, size_t len);

int n4_set_nonblock(int fd);

/* The one conversion between IPv4 and its v4-mapped IPv6 form (::ffff:a.b.c.d),
 * which dual-stack sockets report and expect for IPv4 peers.
 * n4_addr_to_v4: an AF_INET address, or a v4-mapped AF_INET6 one, as
 * sockaddr_in; false for native IPv6, another family, NULL or a short len. */
bool n4_addr_to_v4(const struct sockaddr *a, socklen_t len, struct sockaddr_in *out);
/* n4_addr_from_v4: v4 in the given family (v4-mapped for AF_INET6, as is
 * otherwise); returns the length to pass with out. */
socklen_t n4_addr_from_v4(int family, const struct sockaddr_in *v4, struct sockaddr_storage *out);

#endif

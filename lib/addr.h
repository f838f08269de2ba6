/* addr.h - addresses: resolving, formatting, small socket helpers. */
#ifndef N4_ADDR_H
#define N4_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

/* Resolve an IPv4 host name or literal.  -EINVAL for an empty name,
 * -EHOSTUNREACH when it does not resolve to an IPv4 address. */
int n4_resolve_v4(const char *host, uint16_t port, struct sockaddr_in *out);

/* Parse "HOST[:PORT]" into host (copied into buf) and port (default_port if
 * absent).  -EINVAL on a bad or out-of-range port or an over-long host. */
int n4_parse_hostport(const char *s, char *host, size_t host_len, uint16_t default_port,
		      uint16_t *port);

/* Parse a decimal number in [min, max]; -EINVAL otherwise. */
int n4_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* "a.b.c.d:port" into buf (at least 22 bytes). */
const char *n4_addr_str(const struct sockaddr_in *a, char *buf, size_t len);

int n4_set_nonblock(int fd);

#endif

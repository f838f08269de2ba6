/* addr.c - resolving and formatting IPv4 endpoints, parsing user input. */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int n4_resolve_v4(const char *host, uint16_t port, struct sockaddr_in *out)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM };
	struct addrinfo *res = NULL;

	if (!host || !*host)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons(port);
	if (inet_pton(AF_INET, host, &out->sin_addr) == 1)
		return 0;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return -EHOSTUNREACH;
	out->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
	freeaddrinfo(res);
	return 0;
}

int n4_resolve_v6(const char *host, uint16_t port, struct sockaddr_in6 *out)
{
	struct addrinfo hints = { .ai_family = AF_INET6, .ai_socktype = SOCK_DGRAM };
	struct addrinfo *res = NULL;

	if (!host || !*host)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->sin6_family = AF_INET6;
	out->sin6_port = htons(port);
	if (inet_pton(AF_INET6, host, &out->sin6_addr) == 1)
		return 0;
	if (inet_pton(AF_INET, host, &out->sin6_addr) == 1)
		return -EHOSTUNREACH; /* an IPv4 literal: no lookup */
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return -EHOSTUNREACH;
	out->sin6_addr = ((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
	freeaddrinfo(res);
	if (IN6_IS_ADDR_V4MAPPED(&out->sin6_addr))
		return -EHOSTUNREACH;
	return 0;
}

int n4_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int n4_parse_hostport(const char *s, char *host, size_t host_len, uint16_t default_port,
		      uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	unsigned long p = default_port;

	if (n == 0 || n >= host_len)
		return -EINVAL;
	if (colon && n4_parse_uint(colon + 1, 1, 65535, &p))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	*port = (uint16_t)p;
	return 0;
}

const char *n4_addr_str(const struct sockaddr_in *a, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "?");
	snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
	return buf;
}

int n4_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

bool n4_addr_to_v4(const struct sockaddr *a, socklen_t len, struct sockaddr_in *out)
{
	if (!a)
		return false;
	if (a->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		memcpy(out, a, sizeof(*out));
		return true;
	}
	if (a->sa_family != AF_INET6 || len < sizeof(struct sockaddr_in6))
		return false;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	if (!IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
		return false;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = a6->sin6_port;
	memcpy(&out->sin_addr, a6->sin6_addr.s6_addr + 12, 4);
	return true;
}

socklen_t n4_addr_from_v4(int family, const struct sockaddr_in *v4, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = v4->sin_port;
		a6->sin6_addr.s6_addr[10] = 0xff;
		a6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(a6->sin6_addr.s6_addr + 12, &v4->sin_addr, 4);
		return sizeof(*a6);
	}
	memcpy(out, v4, sizeof(*v4));
	return sizeof(*v4);
}

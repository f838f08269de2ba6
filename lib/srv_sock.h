/* srv_sock.h - socket helpers for the server's transport layer (srv_net.c) and the
 * metrics endpoint (metrics.c).  Layer: below the transport; knows no server, no
 * connection and no message.  May call: the C library, log.c. */
#ifndef N4_SRV_SOCK_H
#define N4_SRV_SOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ipcap.h"

/* Close fd with a reset instead of a FIN: refused and broken connections leave no
 * TIME_WAIT behind (a flood would otherwise fill the table). */
void n4_sock_close_reset(int fd);
/* Only arm the reset: the owner's close (later, with its other cleanup) sends it. */
void n4_sock_reset_on_close(int fd);
/* A non-blocking socket bound to addr (listening, for SOCK_STREAM); dual: an IPv6
 * socket that takes IPv4 too.  The fd, or -errno. */
int n4_sock_open(const union n4_sa *addr, int type, bool dual);
/* The kernel's receive time of a datagram read with SO_TIMESTAMPNS, on
 * n4_now_ms's monotonic clock; now when the datagram carries none. */
uint64_t n4_sock_rx_time_ms(const struct msghdr *mh);
/* One descriptor per client: raise RLIMIT_NOFILE to want (or to the hard limit),
 * the hard limit too where allowed (root).  *was: the soft limit before; returns
 * the soft limit after. */
unsigned long long n4_sock_raise_fd_limit(unsigned long long want, unsigned long long *was);

#endif

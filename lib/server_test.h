/* server_test.h - internal entry points that let unit tests and the fuzzer drive
 * the server's per-connection state machine without a network: hand it a connected
 * stream socket (one end of a socketpair) as if accepted from an address, feed UDP
 * datagrams as if received, fire every pending deadline at once, run the loop
 * without waiting, and check the server's own bookkeeping.  Not part of n4.h. */
#ifndef N4_SERVER_TEST_H
#define N4_SERVER_TEST_H

#include <stddef.h>
#include <sys/socket.h>

#include "n4.h"

/* As if fd had just been accepted from addr: the same admission checks (max
 * clients, per-source cap and rate) apply.  The server owns fd afterwards (it is
 * closed at once when refused).  0, or the negative reason it was refused. */
int n4_server_test_adopt(n4_server *s, int fd, const struct sockaddr *addr, socklen_t len);
/* As if buf had arrived on the UDP port from src. */
void n4_server_test_udp(n4_server *s, const void *buf, size_t len, const struct sockaddr *src,
			socklen_t src_len);
/* Fire every armed deadline and PEERINFO timer now, as if their time had come. */
void n4_server_test_expire(n4_server *s);
/* Fire every fast-flow request's timer now (its wait for the partner and the
 * probes, or its answer's send delay), as if its time had come. */
void n4_server_test_expire_fast(n4_server *s);
/* One loop iteration without waiting; returns the callbacks run. */
int n4_server_test_poll(n4_server *s);
/* Begin the graceful shutdown (what n4_server_run does when *stop is set). */
void n4_server_test_drain(n4_server *s);
/* Clients connected now. */
unsigned n4_server_test_clients(const n4_server *s);
/* 0 when the server's counters agree with its lists and tables, else -EFAULT. */
int n4_server_test_check(const n4_server *s);

#endif

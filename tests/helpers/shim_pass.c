/* shim_pass.c - pass-through check for the shim: TCP and UDP exchanges on loopback
 * through every interposed call (sendto/recvfrom, sendmsg/recvmsg, sendmmsg/
 * recvmmsg, read/write/writev, send/recv, dup/dup2/dup3/F_DUPFD, epoll, fork,
 * getsockname/getpeername, close_range), printing a transcript without ephemeral
 * numbers.  Run with and without LD_PRELOAD: the transcripts must be identical, and
 * the descriptor count must be the same at the end as at the start. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

#define EXPECT(cond, what)                                                         \
	do {                                                                       \
		bool ok_ = (cond);                                                 \
		printf("%s %s\n", ok_ ? "ok" : "FAIL", what);                      \
		if (!ok_) {                                                        \
			failures++;                                                \
			fprintf(stderr, "shim_pass: %s failed (errno %s)\n", what, \
				strerror(errno));                                  \
		}                                                                  \
	} while (0)

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static void udp(void)
{
	struct sockaddr_in lo = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in a1, a2, from;
	socklen_t len = sizeof(a1);
	char buf[64];

	int s1 = socket(AF_INET, SOCK_DGRAM, 0);
	int s2 = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	EXPECT(s1 >= 0 && s2 >= 0, "udp socket");
	EXPECT(bind(s1, (struct sockaddr *)&lo, sizeof(lo)) == 0, "udp bind");
	EXPECT(getsockname(s1, (struct sockaddr *)&a1, &len) == 0 && a1.sin_port != 0,
	       "udp getsockname");
	EXPECT(connect(s2, (struct sockaddr *)&a1, sizeof(a1)) == 0, "udp connect");
	len = sizeof(a2);
	EXPECT(getsockname(s2, (struct sockaddr *)&a2, &len) == 0, "udp getsockname (autobound)");
	len = sizeof(from);
	EXPECT(getpeername(s2, (struct sockaddr *)&from, &len) == 0 && same_addr(&from, &a1),
	       "udp getpeername");

	EXPECT(write(s2, "ping", 4) == 4, "udp write");
	len = sizeof(from);
	EXPECT(recvfrom(s1, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len) == 4 &&
		       !memcmp(buf, "ping", 4) && same_addr(&from, &a2),
	       "udp recvfrom (source is the sender)");
	EXPECT(sendto(s1, "pong", 4, 0, (struct sockaddr *)&a2, sizeof(a2)) == 4, "udp sendto");
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN }, got;
	EXPECT(epoll_ctl(ep, EPOLL_CTL_ADD, s2, &ev) == 0, "epoll_ctl add");
	EXPECT(epoll_wait(ep, &got, 1, 2000) == 1, "epoll_wait");
	EXPECT(read(s2, buf, sizeof(buf)) == 4 && !memcmp(buf, "pong", 4), "udp read");
	EXPECT(recv(s2, buf, sizeof(buf), 0) < 0 && errno == EAGAIN,
	       "udp recv EAGAIN (non-blocking)");

	struct iovec iov[2] = { { "ab", 2 }, { "cd", 2 } };
	struct msghdr m = {
		.msg_name = &a1, .msg_namelen = sizeof(a1), .msg_iov = iov, .msg_iovlen = 2
	};
	EXPECT(sendmsg(s2, &m, 0) == 4, "udp sendmsg");
	EXPECT(writev(s2, iov, 2) == 4, "udp writev");
	struct mmsghdr mm[2];
	char b0[16], b1[16];
	struct iovec ri[2] = { { b0, sizeof(b0) }, { b1, sizeof(b1) } };
	struct sockaddr_in f2[2];
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 2; i++) {
		mm[i].msg_hdr.msg_iov = &ri[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_name = &f2[i];
		mm[i].msg_hdr.msg_namelen = sizeof(f2[i]);
	}
	EXPECT(recvmmsg(s1, mm, 2, MSG_WAITFORONE, NULL) >= 1 && mm[0].msg_len == 4 &&
		       same_addr(&f2[0], &a2),
	       "udp recvmmsg");
	if (mm[1].msg_len == 0) /* the second one may not have been there yet */
		(void)recv(s1, buf, sizeof(buf), 0);
	struct mmsghdr sm[2];
	struct iovec si[2] = { { "x1", 2 }, { "x2", 2 } };
	memset(sm, 0, sizeof(sm));
	for (int i = 0; i < 2; i++) {
		sm[i].msg_hdr.msg_iov = &si[i];
		sm[i].msg_hdr.msg_iovlen = 1;
		sm[i].msg_hdr.msg_name = &a2;
		sm[i].msg_hdr.msg_namelen = sizeof(a2);
	}
	EXPECT(sendmmsg(s1, sm, 2, 0) == 2, "udp sendmmsg");
	EXPECT(epoll_wait(ep, &got, 1, 2000) == 1, "epoll_wait again");
	struct msghdr rm = {
		.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = ri, .msg_iovlen = 1
	};
	EXPECT(recvmsg(s2, &rm, 0) == 2 && same_addr(&from, &a1), "udp recvmsg");

	int d1 = dup(s2), d2 = fcntl(s2, F_DUPFD_CLOEXEC, 100), d3 = dup3(s2, 200, O_CLOEXEC);
	EXPECT(d1 >= 0 && d2 >= 100 && d3 == 200, "dup, F_DUPFD_CLOEXEC, dup3");
	EXPECT(fcntl(d2, F_GETFD) == FD_CLOEXEC && (fcntl(d1, F_GETFL) & O_NONBLOCK),
	       "fcntl flags on dups");
	EXPECT(dup2(s1, d1) == d1, "dup2 over a dup");
	EXPECT(recv(d3, buf, sizeof(buf), 0) == 2 && !memcmp(buf, "x2", 2), "recv on a dup");
	pid_t pid = fork();
	if (pid == 0)
		_exit(send(d3, "kid", 3, 0) == 3 ? 0 : 1);
	int st = -1;
	EXPECT(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "fork: the child sends");
	EXPECT(recv(s1, buf, sizeof(buf), 0) == 3 && !memcmp(buf, "kid", 3),
	       "the child's datagram");
	EXPECT(close(d1) == 0 && close(d2) == 0 && close_range(200, 200, 0) == 0,
	       "close, close_range");
	EXPECT(close(ep) == 0 && close(s1) == 0 && close(s2) == 0, "udp close");
	EXPECT(close(s1) < 0 && errno == EBADF, "double close is EBADF");
}

static void tcp(void)
{
	struct sockaddr_in lo = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(lo);
	char buf[64];
	int one = 1;

	int l = socket(AF_INET, SOCK_STREAM, 0);
	EXPECT(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0, "tcp setsockopt");
	EXPECT(bind(l, (struct sockaddr *)&lo, sizeof(lo)) == 0 && listen(l, 1) == 0, "tcp listen");
	EXPECT(getsockname(l, (struct sockaddr *)&lo, &len) == 0, "tcp getsockname");
	int c = socket(AF_INET, SOCK_STREAM, 0);
	EXPECT(connect(c, (struct sockaddr *)&lo, sizeof(lo)) == 0, "tcp connect");
	int a = accept(l, NULL, NULL);
	EXPECT(a >= 0, "tcp accept");
	EXPECT(write(c, "hello", 5) == 5 && send(c, "!", 1, 0) == 1, "tcp write, send");
	size_t got = 0;
	while (got < 6) {
		ssize_t n = read(a, buf + got, sizeof(buf) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	EXPECT(got == 6 && !memcmp(buf, "hello!", 6), "tcp read");
	EXPECT(sendto(a, "back", 4, 0, NULL, 0) == 4, "tcp sendto without address");
	EXPECT(recv(c, buf, 4, MSG_WAITALL) == 4 && !memcmp(buf, "back", 4), "tcp recv");
	EXPECT(shutdown(c, SHUT_WR) == 0 && read(a, buf, sizeof(buf)) == 0, "tcp eof");
	EXPECT(close(a) == 0 && close(c) == 0 && close(l) == 0, "tcp close");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int before = count_fds();
	udp();
	tcp();
	int after = count_fds();
	EXPECT(before == after, "no descriptor leaked");
	printf("shim_pass: %s\n", failures ? "FAILED" : "all ok");
	return failures ? 1 : 0;
}

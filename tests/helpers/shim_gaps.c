/* shim_gaps.c - small programs that drive the shim into the corners of issues 8 and 9,
 * one per mode; tests/shim/test_shim_gaps.sh runs them under LD_PRELOAD on loopback and
 * checks what they print and what reaches the placeholder and the peer.
 *
 *   peer PORT                 the other side (N4_LISTEN=PORT): prints "got DATA" per
 *                             datagram, answers "hello-filter" with a PUNCH, "Xdrop"
 *                             then "keep", and "hello-punch" with a PUNCH then "real";
 *                             exits on "bye"
 *   v4on6 IP PORT HOW         AF_INET6 socket, AF_INET destination; HOW: sendto,
 *                             connect (then send), sendmsg, sendmmsg
 *   stderr IP PORT [closeall] closes stderr, so its socket is descriptor 2; connect+write
 *                             (closeall: first closes every descriptor above 2, as
 *                             daemons do, the shim's private copy of stderr included)
 *   bound0 IP PORT            binds to port 0, attaches a classic filter from memory it
 *                             then wipes and frees, sends; prints getsockname's port and
 *                             the first datagram it receives
 *   punchread IP PORT HOW     connect+send, then the first datagram through HOW: readv
 *                             or __read_chk
 *   reuse IP PORT HOW         a send that fails (no server), then HOW: closefrom or
 *                             fclose(fdopen()); a file opened next gets the number and
 *                             must write like a file
 *   dns IP                    one datagram to IP:53
 * Exit status 0 when every step the mode itself can judge went as expected. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "n4.h"
#include "wire.h"

ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);

static struct sockaddr_in addr_of(const char *ip, const char *port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)atoi(port));
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
		fprintf(stderr, "shim_gaps: bad address %s\n", ip);
		exit(2);
	}
	return a;
}

static void say(const char *fmt, const char *a)
{
	printf(fmt, a);
	printf("\n");
	fflush(stdout);
}

static void timeout_s(int fd, int s)
{
	struct timeval tv = { s, 0 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		perror("SO_RCVTIMEO");
}

/* A late PUNCH, as the peer's confirmation would send: the shim's filter's job. */
static int send_punch(int fd, const struct sockaddr_in *to, socklen_t len)
{
	uint8_t id[N4_PAYLOAD_SIZE], punch[N4_MSG_SIZE];
	const char *ident = getenv("N4_IDENT");

	if (n4_ident_encode(ident ? ident : N4_DEFAULT_IDENT, id) != 0)
		return -1;
	n4_punch_bytes(id, 0, punch);
	if (sendto(fd, punch, sizeof(punch), 0, (const struct sockaddr *)to, len) !=
	    (ssize_t)sizeof(punch))
		return -1;
	return 0;
}

static int peer(const char *port)
{
	struct sockaddr_in me = addr_of("0.0.0.0", port);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char buf[256];

	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
		perror("peer: socket/bind");
		return 1;
	}
	say("bound %s", port);
	timeout_s(fd, 20);
	for (;;) {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen);
		if (n < 0) {
			perror("peer: recvfrom");
			return 1;
		}
		buf[n] = '\0';
		say("got %s", buf);
		if (strcmp(buf, "bye") == 0)
			return 0;
		if (strcmp(buf, "hello-filter") == 0) {
			/* The program's filter on the other side drops what starts with 'X',
			 * the shim's the late PUNCH: both must apply. */
			if (send_punch(fd, &from, flen) < 0 ||
			    sendto(fd, "Xdrop", 5, 0, (struct sockaddr *)&from, flen) != 5 ||
			    sendto(fd, "keep", 4, 0, (struct sockaddr *)&from, flen) != 4)
				perror("peer: sendto");
		} else if (strcmp(buf, "hello-punch") == 0) {
			if (send_punch(fd, &from, flen) < 0 ||
			    sendto(fd, "real", 4, 0, (struct sockaddr *)&from, flen) != 4)
				perror("peer: sendto");
		}
	}
}

static int v4on6(const char *ip, const char *port, const char *how)
{
	struct sockaddr_in ph = addr_of(ip, port);
	int fd = socket(AF_INET6, SOCK_DGRAM, 0);
	char msg[64];
	ssize_t n = -1;

	if (fd < 0) {
		perror("socket");
		return 1;
	}
	snprintf(msg, sizeof(msg), "v4on6-%s", how);
	struct iovec iov = { msg, strlen(msg) };
	struct msghdr m = {
		.msg_name = &ph, .msg_namelen = sizeof(ph), .msg_iov = &iov, .msg_iovlen = 1
	};
	if (strcmp(how, "sendto") == 0) {
		n = sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&ph, sizeof(ph));
	} else if (strcmp(how, "connect") == 0) {
		if (connect(fd, (struct sockaddr *)&ph, sizeof(ph)) == 0)
			n = send(fd, msg, strlen(msg), 0);
	} else if (strcmp(how, "sendmsg") == 0) {
		n = sendmsg(fd, &m, 0);
	} else if (strcmp(how, "sendmmsg") == 0) {
		struct mmsghdr mm = { .msg_hdr = m };
		n = sendmmsg(fd, &mm, 1, 0) == 1 ? (ssize_t)mm.msg_len : -1;
	}
	if (n != (ssize_t)strlen(msg)) {
		fprintf(stderr, "shim_gaps: %s: %s\n", how, strerror(errno));
		return 1;
	}
	say("sent %s", msg);
	if (sendto(fd, "bye", 3, 0, (struct sockaddr *)&ph, sizeof(ph)) != 3)
		return 1;
	return 0;
}

static int stderr_sock(const char *ip, const char *port, bool closeall)
{
	struct sockaddr_in ph = addr_of(ip, port);

	for (int fd = 3; closeall && fd < 1024; fd++)
		(void)close(fd);
	close(2);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd != 2) {
		say("socket is not descriptor 2%s", "");
		return 1;
	}
	if (connect(fd, (struct sockaddr *)&ph, sizeof(ph)) < 0) {
		say("connect failed: %s", strerror(errno));
		return 1;
	}
	if (write(fd, "data-1", 6) != 6 || write(fd, "bye", 3) != 3) {
		say("write failed: %s", strerror(errno));
		return 1;
	}
	say("sent%s", "");
	return 0;
}

static int bound0(const char *ip, const char *port)
{
	struct sockaddr_in ph = addr_of(ip, port), any = addr_of("0.0.0.0", "0"), me;
	socklen_t len = sizeof(me);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char buf[64], num[16];

	if (fd < 0 || bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0)
		return 1;
	/* Payload byte 0 (after the 8-byte UDP header) == 'X': drop, else accept. */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 'X', 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
	};
	struct sock_filter *heap = malloc(sizeof(code));
	if (!heap)
		return 1;
	memcpy(heap, code, sizeof(code));
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), heap };
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
		perror("SO_ATTACH_FILTER");
		return 1;
	}
	/* The program is done with it: nothing may read it later. */
	memset(heap, 0xff, sizeof(code));
	free(heap);
	if (sendto(fd, "hello-filter", 12, 0, (struct sockaddr *)&ph, sizeof(ph)) != 12) {
		perror("sendto");
		return 1;
	}
	if (getsockname(fd, (struct sockaddr *)&me, &len) < 0)
		return 1;
	snprintf(num, sizeof(num), "%u", ntohs(me.sin_port));
	say("port %s", num);
	timeout_s(fd, 5);
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	say("first %s", n > 0 ? buf : strerror(errno));
	(void)sendto(fd, "bye", 3, 0, (struct sockaddr *)&ph, sizeof(ph));
	return 0;
}

static int punchread(const char *ip, const char *port, const char *how)
{
	struct sockaddr_in ph = addr_of(ip, port);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char buf[64];
	ssize_t n = -1;

	if (fd < 0 || connect(fd, (struct sockaddr *)&ph, sizeof(ph)) < 0 ||
	    send(fd, "hello-punch", 11, 0) != 11) {
		perror("connect/send");
		return 1;
	}
	timeout_s(fd, 5);
	if (strcmp(how, "readv") == 0) {
		struct iovec iov[2] = { { buf, 4 }, { buf + 4, sizeof(buf) - 5 } };
		n = readv(fd, iov, 2);
	} else {
		n = __read_chk(fd, buf, sizeof(buf) - 1, sizeof(buf));
	}
	if (n < 0) {
		say("first: %s", strerror(errno));
		return 1;
	}
	/* Printable or not, show what came: a PUNCH starts with a control byte. */
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			buf[i] = '?';
	buf[n] = '\0';
	say("first %s", buf);
	(void)send(fd, "bye", 3, 0);
	return 0;
}

static int reuse(const char *ip, const char *port, const char *how, const char *path)
{
	struct sockaddr_in ph = addr_of(ip, port);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		return 1;
	if (sendto(fd, "x", 1, 0, (struct sockaddr *)&ph, sizeof(ph)) >= 0) {
		say("the designating send should have failed%s", "");
		return 1;
	}
	say("designation failed: %s", strerror(errno));
	if (strcmp(how, "closefrom") == 0) {
		closefrom(fd);
	} else {
		FILE *f = fdopen(fd, "w");
		if (!f || fclose(f) != 0)
			return 1;
	}
	int file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (file != fd) {
		say("the file did not get the socket's number%s", "");
		return 1;
	}
	if (write(file, "file-data\n", 10) != 10) {
		say("write to the file failed: %s", strerror(errno));
		return 1;
	}
	say("write to the file ok%s", "");
	return close(file) == 0 ? 0 : 1;
}

static int dns(const char *ip)
{
	struct sockaddr_in ph = addr_of(ip, "53");
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || sendto(fd, "dns-query", 9, 0, (struct sockaddr *)&ph, sizeof(ph)) != 9) {
		say("sendto failed: %s", strerror(errno));
		return 1;
	}
	say("sent%s", "");
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	if (strcmp(mode, "peer") == 0 && argc == 3)
		return peer(argv[2]);
	if (strcmp(mode, "v4on6") == 0 && argc == 5)
		return v4on6(argv[2], argv[3], argv[4]);
	if (strcmp(mode, "stderr") == 0 && (argc == 4 || argc == 5))
		return stderr_sock(argv[2], argv[3], argc == 5 && strcmp(argv[4], "closeall") == 0);
	if (strcmp(mode, "bound0") == 0 && argc == 4)
		return bound0(argv[2], argv[3]);
	if (strcmp(mode, "punchread") == 0 && argc == 5)
		return punchread(argv[2], argv[3], argv[4]);
	if (strcmp(mode, "reuse") == 0 && argc == 6)
		return reuse(argv[2], argv[3], argv[4], argv[5]);
	if (strcmp(mode, "dns") == 0 && argc == 3)
		return dns(argv[2]);
	fprintf(stderr, "usage: shim_gaps peer PORT | v4on6 IP PORT HOW | stderr IP PORT |\n"
			"       bound0 IP PORT | punchread IP PORT HOW | reuse IP PORT HOW FILE |\n"
			"       dns IP\n");
	return 2;
}

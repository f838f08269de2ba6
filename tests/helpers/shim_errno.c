/* shim_errno.c - the errno a program sees from its designating call, printed by name,
 * so that a test asserts on what the call returned and not on words that the shim's
 * own log line also contains.
 *   shim_errno connect IP:PORT   connect() then send() of one line, as `nc -u` does
 *   shim_errno sendto IP:PORT    one sendto(), as `socat UDP-SENDTO` does
 * Prints one line, "CALL: ENAME" for the first call that failed ("send: ETIMEDOUT")
 * or "CALL: ok" when every call succeeded; exit 0 either way, 2 on bad usage or when
 * the socket itself cannot be made. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void report(const char *call, ssize_t rc, int err)
{
	const char *name = strerrorname_np(err);

	if (rc < 0)
		printf("%s: %s\n", call, name ? name : "unknown");
	else
		printf("%s: ok\n", call);
}

int main(int argc, char **argv)
{
	static const char line[] = "shim_errno\n";
	struct sockaddr_in to = { .sin_family = AF_INET };
	char ip[64];
	const char *colon = argc == 3 ? strrchr(argv[2], ':') : NULL;

	if (!colon || (size_t)(colon - argv[2]) >= sizeof(ip) ||
	    (strcmp(argv[1], "connect") && strcmp(argv[1], "sendto"))) {
		fprintf(stderr, "usage: shim_errno connect|sendto IP:PORT\n");
		return 2;
	}
	memcpy(ip, argv[2], (size_t)(colon - argv[2]));
	ip[colon - argv[2]] = '\0';
	to.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, ip, &to.sin_addr) != 1) {
		fprintf(stderr, "shim_errno: bad address %s\n", argv[2]);
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("shim_errno: socket");
		return 2;
	}
	ssize_t rc;
	if (strcmp(argv[1], "connect") == 0) {
		rc = connect(fd, (struct sockaddr *)&to, sizeof(to));
		if (rc < 0) {
			report("connect", rc, errno);
		} else {
			rc = send(fd, line, sizeof(line) - 1, 0);
			report("send", rc, errno);
		}
	} else {
		rc = sendto(fd, line, sizeof(line) - 1, 0, (struct sockaddr *)&to, sizeof(to));
		report("sendto", rc, errno);
	}
	if (close(fd) < 0)
		perror("shim_errno: close");
	return 0;
}

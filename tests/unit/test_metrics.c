/* test_metrics.c - the metrics endpoint: the exposition text, the HTTP decoding,
 * and a scrape through a real server's loop (answer, oversized head, too many
 * connections) without a network beyond loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"
#include "n4.h"
#include "server_test.h"
#include "test.h"

TEST(metrics_render_has_help_type_and_values)
{
	static const char *const names[] = { "bad_hello", "rate" };
	static const unsigned long counts[] = { 3, 7 };
	struct n4_server_stats st = { .by_state = { 1, 2, 3, 4 },
				      .capacity = 100,
				      .pairs = 42,
				      .nrejects = 2,
				      .reject_names = names,
				      .rejects = counts };
	char *text = NULL;
	size_t len = 0;

	st.plans[2] = 5;
	CHECK_EQ(n4_metrics_render(&st, &text, &len), 0);
	CHECK(text && strlen(text) == len);
	CHECK(strstr(text, "# TYPE n4_pairs_total counter\nn4_pairs_total 42\n"));
	CHECK(strstr(text, "n4_clients{state=\"waiting\"} 2\n"));
	CHECK(strstr(text, "n4_clients{state=\"closing\"} 4\n"));
	CHECK(strstr(text, "n4_plans_total{plan=\"sweep\"} 5\n"));
	CHECK(strstr(text, "n4_rejects_total{reason=\"rate\"} 7\n"));
	CHECK(strstr(text, "# HELP n4_rejects_total "));
	CHECK(!strstr(text, "n4_relay_")); /* no relay: no relay series */
	free(text);

	st.has_relay = true;
	st.relay_bytes = 1ull << 40;
	CHECK_EQ(n4_metrics_render(&st, &text, &len), 0);
	CHECK(strstr(text, "n4_relay_bytes_total 1099511627776\n"));
	free(text);
}

TEST(metrics_http_request_classified)
{
	bool head;

	CHECK_EQ(n4_http_request("GET /metrics HTTP/1.1\r\n\r\n", 25, &head), N4_HTTP_METRICS);
	CHECK(!head);
	CHECK_EQ(n4_http_request("HEAD /metrics?x=1 HTTP/1.0\n\n", 28, &head), N4_HTTP_METRICS);
	CHECK(head);
	CHECK_EQ(n4_http_request("GET / HTTP/1.1\r\n\r\n", 18, &head), N4_HTTP_NOT_FOUND);
	CHECK_EQ(n4_http_request("GET /metricsX HTTP/1.1\r\n\r\n", 26, &head), N4_HTTP_NOT_FOUND);
	CHECK_EQ(n4_http_request("POST /metrics HTTP/1.1\r\n\r\n", 26, &head), N4_HTTP_METHOD);
	CHECK_EQ(n4_http_request("GET /metrics SPDY/3\r\n\r\n", 23, &head), N4_HTTP_BAD);
	CHECK_EQ(n4_http_request("GET\r\n\r\n", 7, &head), N4_HTTP_BAD);
	CHECK_EQ(n4_http_request("GET /metrics\0 HTTP/1.1\r\n\r\n", 26, &head), N4_HTTP_BAD);
	char big[400];
	memset(big, 'a', sizeof(big));
	CHECK_EQ(n4_http_request(big, sizeof(big), &head), N4_HTTP_TOO_LARGE);
}

TEST(metrics_http_head_end_found_incrementally)
{
	const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t n = strlen(req);

	CHECK(n4_http_head_complete(req, n, 0));
	CHECK(!n4_http_head_complete(req, n - 1, 0));
	CHECK(n4_http_head_complete(req, n, n - 1)); /* the last byte completes it */
	CHECK(n4_http_head_complete("x\n\n", 3, 2));
	CHECK(!n4_http_head_complete("x\r\n\rx", 5, 0));
}

/* Read what the server answers on fd, driving its loop, until EOF. */
static size_t scrape(n4_server *s, int fd, char *out, size_t cap)
{
	size_t got = 0;

	for (int i = 0; i < 2000; i++) {
		n4_server_test_poll(s);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1) <= 0)
			continue;
		ssize_t n = recv(fd, out + got, cap - 1 - got, MSG_DONTWAIT);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	return got;
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

TEST(metrics_scrape_through_the_server_loop)
{
	struct n4_server_cfg cfg;
	n4_server_cfg_init(&cfg);
	cfg.port = 0;
	cfg.bind_host = "127.0.0.1";
	n4_server *s = n4_server_new(&cfg);
	CHECK(s);
	n4_metrics *m = n4_metrics_new(n4_server_loop(s), "127.0.0.1:0", s);
	CHECK(m);
	char buf[16384];

	int fd = connect_to(n4_metrics_port(m));
	CHECK(fd >= 0);
	CHECK(send(fd, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 34, 0) == 34);
	shutdown(fd, SHUT_WR);
	scrape(s, fd, buf, sizeof(buf));
	close(fd);
	CHECK(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(strstr(buf, "\r\n\r\n# HELP n4_build_info"));
	CHECK(strstr(buf, "n4_rejects_total{reason=\"shutdown\"} 0\n"));

	/* A head that never ends: 431 once the buffer is full. */
	fd = connect_to(n4_metrics_port(m));
	CHECK(fd >= 0);
	char junk[4096];
	memset(junk, 'A', sizeof(junk));
	CHECK(send(fd, junk, sizeof(junk), 0) > 0);
	scrape(s, fd, buf, sizeof(buf));
	close(fd);
	CHECK(strncmp(buf, "HTTP/1.1 431 ", 13) == 0);

	/* More connections than the cap: the extra ones are reset, the rest wait. */
	int fds[20];
	for (int i = 0; i < 20; i++)
		fds[i] = connect_to(n4_metrics_port(m));
	for (int i = 0; i < 50; i++)
		n4_server_test_poll(s);
	int reset = 0;
	for (int i = 0; i < 20; i++) {
		CHECK(fds[i] >= 0);
		char c;
		if (recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0 && errno != EAGAIN)
			reset++;
		close(fds[i]);
	}
	CHECK_EQ(reset, 4);
	n4_metrics_free(m);
	n4_server_free(s);
}

/* metrics.c - Prometheus text exposition of the server's counters over plain
 * HTTP/1.x, with no library, inside the server's one event loop.
 *
 * Whoever can reach the port may be hostile, so nothing an HTTP client does can
 * stall or starve the rendezvous: every socket is non-blocking, a connection gets
 * METRICS_DEADLINE_MS in total for request, answer and close, a request head is
 * at most METRICS_HEAD_MAX bytes, at most METRICS_CONNS connections are open at
 * once (more are reset on accept), and at most METRICS_ACCEPT_BATCH are accepted
 * per loop iteration.  Answers are rendered in a few microseconds; nothing is
 * logged per request above debug level. */
#include "metrics.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "srv_sock.h"

#define METRICS_HEAD_MAX 2048
#define METRICS_CONNS 16
#define METRICS_ACCEPT_BATCH 16
#define METRICS_DEADLINE_MS 5000
/* After the answer, the client gets this long to close its side: closing with
 * its unread bytes pending would reset the connection and could lose the answer. */
#define METRICS_LINGER_MS 1000
/* A scrape walks every client (states); with a million clients that is a few ms,
 * so a flood of scrapes is served from an answer at most this old. */
#define METRICS_CACHE_MS 100

#ifndef N4_VERSION
#define N4_VERSION "unknown"
#endif

enum mstate { M_READ, M_WRITE, M_LINGER };

enum mcount { MC_OK, MC_NOT_FOUND, MC_BAD, MC_METHOD, MC_TOO_LARGE, MC_BUSY, MC_TIMEOUT, MC_N };

static const char *const mcount_names[MC_N] = {
	"ok", "not_found", "bad_request", "bad_method", "too_large", "busy", "timeout",
};

struct mconn {
	struct n4_io io;
	struct n4_timer deadline;
	struct n4_metrics *m;
	enum mstate state;
	char in[METRICS_HEAD_MAX];
	size_t in_len;
	char *out;
	size_t out_len, out_off;
	struct mconn *prev, *next;
};

struct n4_metrics {
	n4_loop *loop;
	const n4_server *srv;
	struct n4_io listen_io;
	struct n4_timer resume; /* re-listen after running out of descriptors */
	uint16_t port;
	unsigned nconns;
	struct mconn *conns;
	unsigned long counts[MC_N];
	time_t started;
	char *cache; /* the last rendered body */
	size_t cache_len;
	uint64_t cache_ms;
};

static void conn_free(struct mconn *c)
{
	struct n4_metrics *m = c->m;

	n4_timer_cancel(m->loop, &c->deadline);
	n4_loop_del(m->loop, &c->io);
	close(c->io.fd);
	free(c->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		m->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	m->nconns--;
	free(c);
}

/* ---- rendering ---- */

static const char *const state_names[4] = { "connecting", "waiting", "exchanging", "closing" };
static const char *const plan_names[N4_STATS_PLANS] = {
	"none", "direct", "sweep", "range", "birthday_listen", "birthday_probe", "impossible",
};

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int render(const struct n4_server_stats *st, const struct n4_metrics *m, char **out,
		  size_t *len)
{
	FILE *f = open_memstream(out, len);

	if (!f)
		return -errno;
	family(f, "n4_build_info", "gauge", "Version of the running n4 server.");
	fprintf(f, "n4_build_info{version=\"%s\"} 1\n", N4_VERSION);
	family(f, "n4_clients", "gauge", "Clients connected now, by state.");
	for (int i = 0; i < 4; i++)
		fprintf(f, "n4_clients{state=\"%s\"} %u\n", state_names[i], st->by_state[i]);
	family(f, "n4_clients_capacity", "gauge", "Clients the server holds at most at once.");
	fprintf(f, "n4_clients_capacity %u\n", st->capacity);
	family(f, "n4_sources", "gauge", "Client sources (IPv4 address or IPv6 /64) tracked.");
	fprintf(f, "n4_sources %zu\n", st->sources);
	family(f, "n4_draining", "gauge", "1 while the server shuts down gracefully.");
	fprintf(f, "n4_draining %d\n", st->draining ? 1 : 0);
	family(f, "n4_connections_accepted_total", "counter",
	       "TCP connections admitted since start.");
	fprintf(f, "n4_connections_accepted_total %lu\n", st->accepted);
	family(f, "n4_pairs_total", "counter", "Pairs that were sent their PEERINFOs.");
	fprintf(f, "n4_pairs_total %lu\n", st->pairs);
	family(f, "n4_clients_closed_total", "counter",
	       "Clients that closed their connection before PEERINFO.");
	fprintf(f, "n4_clients_closed_total %lu\n", st->client_closed);
	family(f, "n4_plans_total", "counter",
	       "Punching plans sent, per side, by kind (none: no discovery).");
	for (int i = 0; i < N4_STATS_PLANS; i++)
		fprintf(f, "n4_plans_total{plan=\"%s\"} %lu\n", plan_names[i], st->plans[i]);
	family(f, "n4_rejects_total", "counter",
	       "Connections, messages and datagrams refused or dropped, by reason.");
	for (unsigned i = 0; i < st->nrejects; i++)
		fprintf(f, "n4_rejects_total{reason=\"%s\"} %lu\n", st->reject_names[i],
			st->rejects[i]);
	if (st->has_relay) {
		family(f, "n4_relay_active_pairs", "gauge", "Pairs relayed now.");
		fprintf(f, "n4_relay_active_pairs %u\n", st->relay_active_pairs);
		family(f, "n4_relay_pairs_total", "counter", "Pairs relayed since start.");
		fprintf(f, "n4_relay_pairs_total %lu\n", st->relay_pairs);
		family(f, "n4_relay_bytes_total", "counter", "Bytes forwarded by the relay.");
		fprintf(f, "n4_relay_bytes_total %llu\n", st->relay_bytes);
		family(f, "n4_relay_dropped_total", "counter",
		       "Datagrams the relay dropped (unregistered source, over rate).");
		fprintf(f, "n4_relay_dropped_total %lu\n", st->relay_dropped);
	}
	if (m) {
		family(f, "n4_metrics_requests_total", "counter",
		       "Requests to this metrics endpoint, by result.");
		for (int i = 0; i < MC_N; i++)
			fprintf(f, "n4_metrics_requests_total{result=\"%s\"} %lu\n",
				mcount_names[i], m->counts[i]);
		family(f, "n4_start_time_seconds", "gauge",
		       "Start of the metrics endpoint, seconds since the Unix epoch.");
		fprintf(f, "n4_start_time_seconds %lld\n", (long long)m->started);
	}
	if (ferror(f)) {
		fclose(f);
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	if (fclose(f)) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

int n4_metrics_render(const struct n4_server_stats *st, char **out, size_t *len)
{
	return render(st, NULL, out, len);
}

/* ---- one HTTP exchange ---- */

static void conn_expired(n4_loop *loop, struct n4_timer *t)
{
	struct mconn *c = t->arg;
	(void)loop;

	if (c->state != M_LINGER) {
		c->m->counts[MC_TIMEOUT]++;
		n4_debug("metrics: connection timed out after %u ms, reset", METRICS_DEADLINE_MS);
		n4_sock_reset_on_close(c->io.fd);
	}
	conn_free(c);
}

static void conn_write(struct mconn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->io.fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (n4_loop_mod(c->m->loop, &c->io, EPOLLOUT))
				conn_free(c);
			return; /* a client that does not read runs into the deadline */
		}
		if (n <= 0) {
			conn_free(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	/* Answered: half-close, then wait briefly for the client's FIN. */
	free(c->out);
	c->out = NULL;
	shutdown(c->io.fd, SHUT_WR);
	c->state = M_LINGER;
	uint64_t due = n4_now_ms() + METRICS_LINGER_MS;
	if (n4_loop_mod(c->m->loop, &c->io, EPOLLIN | EPOLLRDHUP) ||
	    (due < c->deadline.due_ms &&
	     n4_timer_arm(c->m->loop, &c->deadline, due, conn_expired, c)))
		conn_free(c);
}

static void respond(struct mconn *c, enum mcount what, const char *status, const char *body,
		    size_t body_len, bool head_only)
{
	const char *type = what == MC_OK ? "text/plain; version=0.0.4; charset=utf-8"
					 : "text/plain; charset=utf-8";
	char hdr[256];
	int h = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, type, body_len);

	c->m->counts[what]++;
	if (h < 0 || (size_t)h >= sizeof(hdr) || !(c->out = malloc((size_t)h + body_len))) {
		conn_free(c);
		return;
	}
	memcpy(c->out, hdr, (size_t)h);
	c->out_len = (size_t)h;
	if (!head_only) {
		memcpy(c->out + h, body, body_len);
		c->out_len += body_len;
	}
	c->state = M_WRITE;
	conn_write(c);
}

static void respond_text(struct mconn *c, enum mcount what, const char *status, const char *text)
{
	respond(c, what, status, text, strlen(text), false);
}

enum n4_http_verdict n4_http_request(const char *buf, size_t len, bool *head_only)
{
	const char *eol = memchr(buf, '\n', len);
	size_t line_len = eol ? (size_t)(eol - buf) : len;
	char line[256], method[16], path[200], version[16];

	*head_only = false;
	if (line_len >= sizeof(line))
		return N4_HTTP_TOO_LARGE;
	if (memchr(buf, '\0', line_len))
		return N4_HTTP_BAD; /* it would hide the rest of the line from sscanf */
	memcpy(line, buf, line_len);
	line[line_len] = '\0';
	if (line_len && line[line_len - 1] == '\r')
		line[line_len - 1] = '\0';
	if (sscanf(line, "%15s %199s %15s", method, path, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0)
		return N4_HTTP_BAD;
	*head_only = strcmp(method, "HEAD") == 0;
	if (!*head_only && strcmp(method, "GET") != 0)
		return N4_HTTP_METHOD;
	size_t plen = strcspn(path, "?");
	if (plen != strlen("/metrics") || strncmp(path, "/metrics", plen) != 0)
		return N4_HTTP_NOT_FOUND;
	return N4_HTTP_METRICS;
}

/* A complete head: answer it. */
static void handle_request(struct mconn *c)
{
	bool head = false;

	switch (n4_http_request(c->in, c->in_len, &head)) {
	case N4_HTTP_TOO_LARGE:
		respond_text(c, MC_TOO_LARGE, "414 URI Too Long", "request line too long\n");
		return;
	case N4_HTTP_METHOD:
		respond_text(c, MC_METHOD, "405 Method Not Allowed", "GET /metrics\n");
		return;
	case N4_HTTP_NOT_FOUND:
		respond(c, MC_NOT_FOUND, "404 Not Found", "try /metrics\n", 13, head);
		return;
	case N4_HTTP_METRICS:
		break;
	default:
		respond_text(c, MC_BAD, "400 Bad Request", "bad request\n");
		return;
	}
	struct n4_metrics *m = c->m;
	uint64_t now = n4_now_ms();
	if (!m->cache || now - m->cache_ms >= METRICS_CACHE_MS) {
		struct n4_server_stats st;
		char *body = NULL;
		size_t len = 0;
		n4_server_get_stats(m->srv, &st);
		if (render(&st, m, &body, &len)) {
			conn_free(c);
			return;
		}
		free(m->cache);
		m->cache = body;
		m->cache_len = len;
		m->cache_ms = now;
	}
	respond(c, MC_OK, "200 OK", m->cache, m->cache_len, head);
}

/* A blank line ends the head; only bytes from `from` on (and the three before
 * them) can complete it, so a byte-a-second client costs O(1) per byte. */
bool n4_http_head_complete(const char *buf, size_t len, size_t from)
{
	for (size_t i = from > 3 ? from - 3 : 1; i < len; i++) {
		if (buf[i] == '\n' &&
		    (buf[i - 1] == '\n' || (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')))
			return true;
	}
	return false;
}

static void conn_read(struct mconn *c)
{
	for (;;) {
		char sink[512];
		bool reading = c->state == M_READ;
		char *dst = reading ? c->in + c->in_len : sink;
		size_t want = reading ? sizeof(c->in) - c->in_len : sizeof(sink);
		ssize_t n = recv(c->io.fd, dst, want, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_free(c); /* EOF or reset: nothing more to say to it */
			return;
		}
		if (!reading)
			continue; /* lingering: discard until the client's FIN */
		size_t from = c->in_len;
		c->in_len += (size_t)n;
		if (n4_http_head_complete(c->in, c->in_len, from)) {
			handle_request(c);
			return; /* c may be gone */
		}
		if (c->in_len == sizeof(c->in)) {
			respond_text(c, MC_TOO_LARGE, "431 Request Header Fields Too Large",
				     "request head too large\n");
			return;
		}
	}
}

static void conn_event(n4_loop *loop, struct n4_io *io, uint32_t events)
{
	struct mconn *c = io->arg;
	(void)loop;

	if (c->state == M_WRITE) {
		if (events & (EPOLLERR | EPOLLHUP))
			conn_free(c);
		else
			conn_write(c);
		return;
	}
	conn_read(c);
}

static void accept_ready(n4_loop *loop, struct n4_io *io, uint32_t events);

static void resume_listen(n4_loop *loop, struct n4_timer *t)
{
	struct n4_metrics *m = t->arg;

	if (n4_loop_add(loop, &m->listen_io, EPOLLIN))
		n4_timer_arm(loop, &m->resume, n4_now_ms() + 1000, resume_listen, m);
}

static void accept_ready(n4_loop *loop, struct n4_io *io, uint32_t events)
{
	struct n4_metrics *m = io->arg;
	(void)loop;
	(void)events;

	for (int i = 0; i < METRICS_ACCEPT_BATCH; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* Out of descriptors: the listener stays readable, so a
			 * level-triggered loop would spin; the server's own spare
			 * descriptor is not ours to use.  Stop listening a while. */
			if ((errno == EMFILE || errno == ENFILE) && !n4_loop_del(loop, io) &&
			    n4_timer_arm(loop, &m->resume, n4_now_ms() + 200, resume_listen, m))
				n4_loop_add(loop, io, EPOLLIN);
			return; /* EAGAIN: the rest waits for the next event */
		}
		struct mconn *c = m->nconns < METRICS_CONNS ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			m->counts[MC_BUSY]++;
			n4_sock_close_reset(fd); /* no TIME_WAIT per flood connection */
			continue;
		}
		c->m = m;
		c->io = (struct n4_io){ .fd = fd, .cb = conn_event, .arg = c };
		if (n4_loop_add(m->loop, &c->io, EPOLLIN | EPOLLRDHUP) ||
		    n4_timer_arm(m->loop, &c->deadline, n4_now_ms() + METRICS_DEADLINE_MS,
				 conn_expired, c)) {
			n4_loop_del(m->loop, &c->io);
			n4_sock_close_reset(fd);
			free(c);
			continue;
		}
		c->next = m->conns;
		if (m->conns)
			m->conns->prev = c;
		m->conns = c;
		m->nconns++;
	}
}

/* ---- setup ---- */

static int parse_addr(const char *spec, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon = strrchr(spec, ':');

	if (!colon || !colon[1])
		return -EINVAL;
	const char *h = spec;
	size_t n = (size_t)(colon - spec);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	} else if (memchr(spec, ':', n)) {
		return -EINVAL; /* a bare IPv6 address needs brackets */
	}
	if (n == 0 || n >= hlen || strlen(colon + 1) >= plen)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	snprintf(port, plen, "%s", colon + 1);
	return 0;
}

static int open_listener(const char *spec, uint16_t *bound_port)
{
	char host[256], port[8];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int one = 1, err;

	if (parse_addr(spec, host, sizeof(host), port, sizeof(port)))
		return -EINVAL;
	if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
		return -EADDRNOTAVAIL;
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto out_free;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 64)) {
		err = -errno;
		goto out_close;
	}
	struct sockaddr_storage a;
	socklen_t alen = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &alen)) {
		err = -errno;
		goto out_close;
	}
	*bound_port = ntohs(a.ss_family == AF_INET ? ((struct sockaddr_in *)&a)->sin_port
						   : ((struct sockaddr_in6 *)&a)->sin6_port);
	freeaddrinfo(res);
	return fd;
out_close:
	close(fd);
out_free:
	freeaddrinfo(res);
	return err;
}

n4_metrics *n4_metrics_new(n4_loop *loop, const char *addr, const n4_server *srv)
{
	n4_metrics *m = calloc(1, sizeof(*m));
	int fd;

	if (!m)
		return NULL;
	fd = open_listener(addr, &m->port);
	if (fd < 0) {
		free(m);
		errno = -fd;
		return NULL;
	}
	m->loop = loop;
	m->srv = srv;
	m->started = time(NULL);
	m->listen_io = (struct n4_io){ .fd = fd, .cb = accept_ready, .arg = m };
	int err = n4_loop_add(loop, &m->listen_io, EPOLLIN);
	if (err) {
		close(fd);
		free(m);
		errno = -err;
		return NULL;
	}
	return m;
}

uint16_t n4_metrics_port(const n4_metrics *m)
{
	return m->port;
}

void n4_metrics_free(n4_metrics *m)
{
	if (!m)
		return;
	while (m->conns)
		conn_free(m->conns);
	n4_timer_cancel(m->loop, &m->resume);
	n4_loop_del(m->loop, &m->listen_io);
	close(m->listen_io.fd);
	free(m->cache);
	free(m);
}

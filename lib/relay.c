/* relay.c - the server's relay (relay.h): per relayed pair two UDP ports in the
 * server's event loop, registration by token, byte-for-byte forwarding in
 * batches (recvmmsg/sendmmsg), token buckets per direction and in total, and
 * the idle sweep. */
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "rand.h"
#include "relay_reg.h"
#include "wire.h"

/* Datagrams taken per readiness event: enough to amortise the system calls,
 * few enough that one busy pair cannot starve the others (level-triggered
 * epoll comes back for the rest). */
#define BATCH 64
/* Largest datagram relayed.  Paths carry at most ~1500 bytes; 16 KiB leaves
 * room for jumbo frames and fragmented datagrams.  Larger ones are dropped
 * (counted as oversize) rather than truncated. */
#define SLOT_SIZE 16384
/* The total bucket holds a tenth of a second of the total rate (at least one
 * pair's burst), so short bursts of many pairs pass. */
#define TOTAL_BURST_MS 100
/* Receive buffer of each relay port (a limit, not an allocation). */
#define SOCK_BUF_BYTES (1 << 20)
/* Datagrams of one size to one address leave as one UDP GSO send (the kernel
 * splits it): one route lookup and one wake-up of the receiver per run instead
 * of per datagram.  Kernel limits: 64 segments, 64 KiB in all. */
#define GSO_MAX_SEGS 64
#define GSO_MAX_BYTES 65000

struct side {
	struct n4_io io;
	struct pair *pair;
	unsigned idx;
	uint16_t port;
	uint8_t token[N4_RELAY_TOKEN_SIZE];
	uint32_t udp_ip;
	struct n4_ipkey src;
	union n4_sa reg;
	socklen_t reg_len;
	bool registered;
	double bucket; /* bytes this side may still send toward the other */
	uint64_t bucket_ms;
};

struct pair {
	struct side side[2];
	struct n4_relay *relay;
	uint64_t created_ms, last_ms;
	struct pair *prev, *next;
};

struct n4_relay {
	struct n4_relay_cfg cfg;
	n4_loop *loop;
	union n4_sa bind;
	socklen_t bind_len;
	n4_ipcap *cap;
	struct pair *pairs;
	unsigned npairs, nup;
	uint16_t next_port;
	double rate_bpms, burst_b; /* per direction, bytes per ms and bytes */
	double total_bpms, total_burst_b, total_bucket;
	uint64_t total_ms;
	unsigned long long allocated, forwarded, forwarded_bytes, registrations, moved;
	unsigned long long refused_full, refused_per_ip, refused_ports, refused_other;
	unsigned long long drop_stranger, drop_bad_reg, drop_unreg, drop_rate, drop_total,
		drop_oversize, drop_send, expired_idle, expired_unreg;
	struct mmsghdr in[BATCH], out[BATCH];
	struct iovec in_iov[BATCH], out_iov[BATCH];
	unsigned out_n[BATCH]; /* datagrams in each out[] entry (GSO runs) */
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} out_cmsg[BATCH];
	bool gso_off; /* the kernel or the route refused UDP_SEGMENT once */
	union n4_sa from[BATCH];
	uint8_t (*buf)[SLOT_SIZE];
};

static socklen_t sa_len(const union n4_sa *a)
{
	return a->sa.sa_family == AF_INET ? sizeof(a->v4) : sizeof(a->v6);
}

static bool sa_equal(const union n4_sa *a, const union n4_sa *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->v4.sin_port == b->v4.sin_port &&
		       a->v4.sin_addr.s_addr == b->v4.sin_addr.s_addr;
	return a->v6.sin6_port == b->v6.sin6_port &&
	       memcmp(&a->v6.sin6_addr, &b->v6.sin6_addr, sizeof(a->v6.sin6_addr)) == 0;
}

n4_relay *n4_relay_new(const struct n4_relay_cfg *cfg, n4_loop *loop, const union n4_sa *bind)
{
	n4_relay *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->cfg = *cfg;
	r->loop = loop;
	r->bind = *bind;
	if (r->bind.sa.sa_family == AF_INET)
		r->bind.v4.sin_port = 0;
	else
		r->bind.v6.sin6_port = 0;
	r->bind_len = sa_len(&r->bind);
	r->next_port = cfg->port_lo;
	r->rate_bpms = cfg->rate_kbit / 8.0; /* kbit/s = 1000 bit / 1000 ms */
	r->burst_b = cfg->burst_kb * 1024.0;
	r->total_bpms = cfg->total_kbit / 8.0;
	r->total_burst_b = r->total_bpms * TOTAL_BURST_MS;
	if (r->total_burst_b < r->burst_b)
		r->total_burst_b = r->burst_b;
	r->total_bucket = r->total_burst_b;
	r->total_ms = n4_now_ms();
	r->cap = n4_ipcap_new(cfg->max_per_ip, 0, 1, cfg->max_pairs ? cfg->max_pairs : 16);
	r->buf = malloc((size_t)BATCH * SLOT_SIZE);
	if (!r->cap || !r->buf) {
		n4_relay_free(r);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned i = 0; i < BATCH; i++) {
		r->in_iov[i] = (struct iovec){ .iov_base = r->buf[i], .iov_len = SLOT_SIZE };
		r->in[i].msg_hdr.msg_iov = &r->in_iov[i];
		r->in[i].msg_hdr.msg_iovlen = 1;
		r->in[i].msg_hdr.msg_name = &r->from[i];
		r->out[i].msg_hdr.msg_iov = &r->out_iov[i];
		r->out[i].msg_hdr.msg_iovlen = 1;
	}
	return r;
}

static void pair_free(n4_relay *r, struct pair *p)
{
	for (unsigned i = 0; i < 2; i++) {
		struct side *s = &p->side[i];
		if (s->io.fd < 0)
			continue;
		n4_loop_del(r->loop, &s->io);
		close(s->io.fd);
		n4_ipcap_release(r->cap, &s->src, n4_now_ms());
	}
	if (p->side[0].registered && p->side[1].registered)
		r->nup--;
	if (p->prev)
		p->prev->next = p->next;
	else if (r->pairs == p)
		r->pairs = p->next;
	if (p->next)
		p->next->prev = p->prev;
	r->npairs--;
	free(p);
}

void n4_relay_free(n4_relay *r)
{
	if (!r)
		return;
	while (r->pairs)
		pair_free(r, r->pairs);
	n4_ipcap_free(r->cap);
	free(r->buf);
	free(r);
}

/* A UDP socket on the server's address: a port from the range, or any. */
static int open_port(n4_relay *r, uint16_t *port)
{
	unsigned span = r->cfg.port_lo ? (unsigned)(r->cfg.port_hi - r->cfg.port_lo) + 1 : 1;

	for (unsigned tries = 0; tries < span; tries++) {
		int fd = socket(r->bind.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		union n4_sa a = r->bind;
		if (r->cfg.port_lo) {
			uint16_t p = r->next_port;
			r->next_port = p >= r->cfg.port_hi ? r->cfg.port_lo : (uint16_t)(p + 1);
			if (a.sa.sa_family == AF_INET)
				a.v4.sin_port = htons(p);
			else
				a.v6.sin6_port = htons(p);
		}
		if (a.sa.sa_family == AF_INET6) {
			int zero = 0; /* IPv4 clients register on a dual-stack server */
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		}
		/* A burst of a fast pair must not overflow the default buffer
		 * (~208 KiB) while the loop serves other ports; FORCE needs
		 * CAP_NET_ADMIN, else the system's maximum applies. */
		int buf = SOCK_BUF_BYTES;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)))
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		if (bind(fd, &a.sa, r->bind_len) == 0) {
			union n4_sa got;
			socklen_t glen = sizeof(got);
			if (getsockname(fd, &got.sa, &glen)) {
				int err = -errno;
				close(fd);
				return err;
			}
			*port = ntohs(got.sa.sa_family == AF_INET ? got.v4.sin_port
								  : got.v6.sin6_port);
			return fd;
		}
		int err = -errno;
		close(fd);
		if (err != -EADDRINUSE)
			return err;
	}
	return -EADDRINUSE;
}

static void side_ready(n4_loop *loop, struct n4_io *io, uint32_t events);

int n4_relay_alloc(n4_relay *r, const struct n4_relay_side_in *a, const struct n4_relay_side_in *b,
		   struct n4_relay_grant *ga, struct n4_relay_grant *gb)
{
	const struct n4_relay_side_in *in[2] = { a, b };
	struct n4_relay_grant *g[2] = { ga, gb };
	uint64_t now = n4_now_ms();
	int err;

	if (r->npairs >= r->cfg.max_pairs) {
		r->refused_full++;
		return -ENOSPC;
	}
	struct pair *p = calloc(1, sizeof(*p));
	if (!p) {
		r->refused_other++;
		return -ENOMEM;
	}
	p->relay = r;
	p->created_ms = p->last_ms = now;
	p->side[0].io.fd = p->side[1].io.fd = -1;
	r->npairs++;
	p->next = r->pairs;
	if (r->pairs)
		r->pairs->prev = p;
	r->pairs = p;
	for (unsigned i = 0; i < 2; i++) {
		struct side *s = &p->side[i];
		s->pair = p;
		s->idx = i;
		s->udp_ip = in[i]->udp_ip;
		s->src = in[i]->src;
		s->bucket = r->burst_b;
		s->bucket_ms = now;
		if ((err = n4_ipcap_admit(r->cap, &s->src, now)) != 0) {
			if (err == -EMFILE)
				r->refused_per_ip++;
			else
				r->refused_other++;
			goto out_free;
		}
		/* The token is what keeps strangers out: never from a weak source. */
		if (n4_random_bytes(s->token, sizeof(s->token)) < 0) {
			err = -EIO;
			r->refused_other++;
			n4_ipcap_release(r->cap, &s->src, now);
			goto out_free;
		}
		int fd = open_port(r, &s->port);
		if (fd < 0) {
			err = fd;
			if (err == -EADDRINUSE)
				r->refused_ports++;
			else
				r->refused_other++;
			n4_ipcap_release(r->cap, &s->src, now);
			goto out_free;
		}
		s->io = (struct n4_io){ .fd = fd, .cb = side_ready, .arg = s };
		if ((err = n4_loop_add(r->loop, &s->io, EPOLLIN)) != 0) {
			close(fd);
			s->io.fd = -1;
			r->refused_other++;
			n4_ipcap_release(r->cap, &s->src, now);
			goto out_free;
		}
		g[i]->port = s->port;
		memcpy(g[i]->token, s->token, N4_RELAY_TOKEN_SIZE);
	}
	r->allocated++;
	return 0;
out_free:
	pair_free(r, p);
	return err;
}

static void refill(double *bucket, uint64_t *at_ms, double rate_bpms, double cap, uint64_t now)
{
	if (now > *at_ms) {
		*bucket += (double)(now - *at_ms) * rate_bpms;
		if (*bucket > cap)
			*bucket = cap;
		*at_ms = now;
	}
}

/* A registration for s from `from`: true when it was valid (and consumed). */
static bool try_register(n4_relay *r, struct side *s, const uint8_t *b, size_t len,
			 const union n4_sa *from, uint64_t now)
{
	struct n4_relay_reg reg;
	struct sockaddr_in v4;
	char addr[64];

	if (n4_relay_reg_decode(b, len, &reg) || reg.flags != 0 ||
	    !n4_relay_token_equal(reg.token, s->token) || !n4_sa_to_v4(from, &v4) ||
	    v4.sin_addr.s_addr != s->udp_ip)
		return false;
	struct side *o = &s->pair->side[!s->idx];
	bool was_up = s->registered && o->registered;
	if (!s->registered || !sa_equal(&s->reg, from)) {
		if (s->registered)
			r->moved++;
		n4_info("relay port %u: side %c registered from %s%s", s->port, 'A' + (int)s->idx,
			n4_sa_str(from, addr, sizeof(addr)), s->registered ? " (moved)" : "");
		s->reg = *from;
		s->reg_len = sa_len(from);
		s->registered = true;
	}
	r->registrations++;
	s->pair->last_ms = now;
	if (!was_up && o->registered) {
		r->nup++;
		n4_info("relay ports %u/%u: pair up", s->pair->side[0].port, s->pair->side[1].port);
	}
	/* One ack of the registration's size, to the address that proved it
	 * holds the token: nothing to amplify, nothing to reflect. */
	struct n4_relay_reg ack = { .flags = (uint8_t)(N4_RELAY_ACK |
						       (o->registered ? N4_RELAY_PEER_UP : 0)) };
	uint8_t out[N4_RELAY_REG_SIZE];
	memcpy(ack.token, s->token, N4_RELAY_TOKEN_SIZE);
	n4_relay_reg_encode(&ack, out);
	if (sendto(s->io.fd, out, sizeof(out), MSG_DONTWAIT, &s->reg.sa, s->reg_len) < 0)
		r->drop_send++;
	return true;
}

/* Group the k datagrams in out_iov[] into out[] entries to `to`: runs of one
 * size as one GSO send each (unless gso_off), else one entry per datagram.
 * Returns the number of entries. */
static unsigned build_sends(n4_relay *r, struct side *to, unsigned k)
{
	unsigned e = 0;

	for (unsigned i = 0; i < k;) {
		size_t seg = r->out_iov[i].iov_len, total = seg;
		unsigned n = 1;
		/* a run: equal sizes; the last one may be shorter (GSO's rule) */
		while (!r->gso_off && i + n < k && n < GSO_MAX_SEGS &&
		       total + r->out_iov[i + n].iov_len <= GSO_MAX_BYTES &&
		       r->out_iov[i + n].iov_len <= seg && r->out_iov[i + n - 1].iov_len == seg) {
			total += r->out_iov[i + n].iov_len;
			n++;
		}
		struct msghdr *h = &r->out[e].msg_hdr;
		memset(h, 0, sizeof(*h));
		h->msg_name = &to->reg;
		h->msg_namelen = to->reg_len;
		h->msg_iov = &r->out_iov[i];
		h->msg_iovlen = n;
		if (n > 1) {
			h->msg_control = r->out_cmsg[e].buf;
			h->msg_controllen = sizeof(r->out_cmsg[e].buf);
			struct cmsghdr *cm = CMSG_FIRSTHDR(h);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			uint16_t gso = (uint16_t)seg;
			memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
		}
		r->out_n[e++] = n;
		i += n;
	}
	return e;
}

static void send_batch(n4_relay *r, struct side *to, unsigned k)
{
	unsigned entries = build_sends(r, to, k), done = 0;

	while (done < entries) {
		int m = sendmmsg(to->io.fd, r->out + done, entries - done, MSG_DONTWAIT);
		if (m < 0) {
			if (errno == EINTR)
				continue;
			if (r->out_n[done] > 1 && (errno == EIO || errno == EINVAL ||
						   errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
				/* No UDP GSO here (old kernel, a route that cannot
				 * offload checksums): one datagram per send from now. */
				n4_info("relay: UDP GSO unavailable (%s), sending datagrams one by one",
					strerror(errno));
				r->gso_off = true;
				unsigned first = 0;
				for (unsigned e = 0; e < done; e++)
					first += r->out_n[e];
				memmove(r->out_iov, r->out_iov + first,
					(k - first) * sizeof(*r->out_iov));
				send_batch(r, to, k - first);
				return;
			}
			/* Full socket buffer or an error for this datagram (an
			 * unreachable peer): drop it, as a router would, go on. */
			r->drop_send += r->out_n[done];
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				for (unsigned e = done + 1; e < entries; e++)
					r->drop_send += r->out_n[e];
				return;
			}
			done++;
			continue;
		}
		for (unsigned i = 0; i < (unsigned)m; i++) {
			r->forwarded_bytes += r->out[done + i].msg_len;
			r->forwarded += r->out_n[done + i];
		}
		done += (unsigned)m;
	}
}

/* n datagrams arrived on s's port (in r->in / r->buf / r->from). */
static void handle_batch(n4_relay *r, struct side *s, unsigned n)
{
	struct pair *p = s->pair;
	struct side *o = &p->side[!s->idx];
	uint64_t now = n4_now_ms();
	unsigned k = 0;

	if (r->cfg.rate_kbit)
		refill(&s->bucket, &s->bucket_ms, r->rate_bpms, r->burst_b, now);
	if (r->cfg.total_kbit)
		refill(&r->total_bucket, &r->total_ms, r->total_bpms, r->total_burst_b, now);
	for (unsigned i = 0; i < n; i++) {
		size_t len = r->in[i].msg_len;
		const uint8_t *b = r->buf[i];
		const union n4_sa *from = &r->from[i];
		if (r->in[i].msg_hdr.msg_flags & MSG_TRUNC) {
			r->drop_oversize++;
			continue;
		}
		if (len == N4_RELAY_REG_SIZE && b[0] == N4_CMD_RELAY_REG &&
		    try_register(r, s, b, len, from, now))
			continue;
		if (!s->registered || !sa_equal(from, &s->reg)) {
			if (len == N4_RELAY_REG_SIZE && b[0] == N4_CMD_RELAY_REG)
				r->drop_bad_reg++;
			else
				r->drop_stranger++;
			continue;
		}
		p->last_ms = now;
		if (!o->registered) {
			r->drop_unreg++;
			continue;
		}
		if (r->cfg.rate_kbit) {
			if (s->bucket < (double)len) {
				r->drop_rate++;
				continue;
			}
			s->bucket -= (double)len;
		}
		if (r->cfg.total_kbit) {
			if (r->total_bucket < (double)len) {
				r->drop_total++;
				continue;
			}
			r->total_bucket -= (double)len;
		}
		r->out_iov[k++] = (struct iovec){ .iov_base = r->buf[i], .iov_len = len };
	}
	if (k)
		send_batch(r, o, k);
}

static void side_ready(n4_loop *loop, struct n4_io *io, uint32_t events)
{
	struct side *s = io->arg;
	n4_relay *r = s->pair->relay;
	(void)loop;
	(void)events;

	for (unsigned i = 0; i < BATCH; i++) {
		r->in[i].msg_hdr.msg_namelen = sizeof(r->from[i]);
		r->in[i].msg_hdr.msg_flags = 0;
	}
	int n = recvmmsg(io->fd, r->in, BATCH, MSG_DONTWAIT, NULL);
	if (n > 0)
		handle_batch(r, s, (unsigned)n);
}

void n4_relay_sweep(n4_relay *r, uint64_t now_ms)
{
	for (struct pair *p = r->pairs, *next; p; p = next) {
		next = p->next;
		bool up = p->side[0].registered && p->side[1].registered;
		if (!up && now_ms >= p->created_ms + N4_RELAY_REG_TIMEOUT_S * 1000ull) {
			r->expired_unreg++;
			n4_info("relay ports %u/%u: not both registered within %u s, freed",
				p->side[0].port, p->side[1].port, N4_RELAY_REG_TIMEOUT_S);
			pair_free(r, p);
		} else if (up && now_ms >= p->last_ms + r->cfg.idle_s * 1000ull) {
			r->expired_idle++;
			n4_info("relay ports %u/%u: idle for %u s, freed", p->side[0].port,
				p->side[1].port, r->cfg.idle_s);
			pair_free(r, p);
		}
	}
}

void n4_relay_status(const n4_relay *r, char *buf, size_t len)
{
	/* Every name unique in the whole status line (scripts pick fields by name). */
	snprintf(buf, len,
		 " relay: relay_pairs=%u relay_max=%u relay_up=%u relay_allocated=%llu "
		 "relay_forwarded=%llu relay_bytes=%llu relay_registrations=%llu relay_moved=%llu "
		 "relay_refused_full=%llu relay_refused_per_ip=%llu relay_refused_ports=%llu "
		 "relay_refused_other=%llu relay_drop_stranger=%llu relay_drop_bad_reg=%llu "
		 "relay_drop_unregistered=%llu relay_drop_rate=%llu relay_drop_total_rate=%llu "
		 "relay_drop_oversize=%llu relay_drop_send=%llu relay_expired_idle=%llu "
		 "relay_expired_unregistered=%llu",
		 r->npairs, r->cfg.max_pairs, r->nup, r->allocated, r->forwarded,
		 r->forwarded_bytes, r->registrations, r->moved, r->refused_full, r->refused_per_ip,
		 r->refused_ports, r->refused_other, r->drop_stranger, r->drop_bad_reg,
		 r->drop_unreg, r->drop_rate, r->drop_total, r->drop_oversize, r->drop_send,
		 r->expired_idle, r->expired_unreg);
}

void n4_relay_counts(const n4_relay *r, struct n4_relay_counts *out)
{
	out->pairs = r->npairs;
	out->allocated = r->allocated;
	out->forwarded = r->forwarded;
	out->bytes = r->forwarded_bytes;
	out->dropped = r->drop_stranger + r->drop_bad_reg + r->drop_unreg + r->drop_rate +
		       r->drop_total + r->drop_oversize + r->drop_send;
}

unsigned n4_relay_pairs(const n4_relay *r)
{
	return r->npairs;
}

void n4_relay_test_input(n4_relay *r, unsigned side, const void *buf, size_t len,
			 const union n4_sa *from)
{
	if (!r->pairs || side > 1)
		return;
	if (len > SLOT_SIZE)
		len = SLOT_SIZE;
	memcpy(r->buf[0], buf, len);
	r->in[0].msg_len = (unsigned)len;
	r->in[0].msg_hdr.msg_flags = 0;
	r->from[0] = *from;
	handle_batch(r, &r->pairs->side[side], 1);
}

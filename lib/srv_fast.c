/* srv_fast.c - fast-flow requests under way (srv_fast.h).  The lists are short
 * (N4_SRV_FAST_MAX, each request lives at most N4_SRV_FAST_WAIT_MS), so a probe's
 * token is looked up by a scan, which only FAST datagrams pay for. */
#include "srv_fast.h"

#include <string.h>

struct n4_srv_fast_req *n4_srv_fast_add(struct n4_srv_fast_list *l, struct n4_srv_fast *f,
					uint8_t tag, void *owner)
{
	struct n4_srv_fast_req *free_q = NULL;

	if (l->n >= N4_SRV_FAST_MAX)
		return NULL;
	for (unsigned i = 0; i < N4_SRV_FAST_PER_CONN; i++) {
		if (f->req[i].used && f->req[i].r.tag == tag)
			return NULL;
		if (!f->req[i].used && !free_q)
			free_q = &f->req[i];
	}
	if (!free_q)
		return NULL;
	memset(free_q, 0, sizeof(*free_q));
	free_q->used = true;
	free_q->owner = owner;
	free_q->live_at = l->n;
	l->live[l->n++] = free_q;
	return free_q;
}

void n4_srv_fast_drop(n4_loop *loop, struct n4_srv_fast_list *l, struct n4_srv_fast_req *q)
{
	if (!q->used)
		return;
	n4_timer_cancel(loop, &q->timer);
	if (q->partner && q->partner->partner == q)
		q->partner->partner = NULL;
	q->partner = NULL;
	/* The last one takes its place. */
	unsigned at = q->live_at;
	if (at < l->n && l->live[at] == q) {
		l->live[at] = l->live[--l->n];
		l->live[at]->live_at = at;
	}
	q->used = false;
}

void n4_srv_fast_drop_all(n4_loop *loop, struct n4_srv_fast_list *l, struct n4_srv_fast *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < N4_SRV_FAST_PER_CONN; i++)
		n4_srv_fast_drop(loop, l, &f->req[i]);
}

struct n4_srv_fast_req *n4_srv_fast_by_token(const struct n4_srv_fast_list *l,
					     const uint8_t token[N4_PAYLOAD_SIZE])
{
	for (unsigned i = 0; i < l->n; i++)
		if (memcmp(l->live[i]->r.token, token, N4_PAYLOAD_SIZE) == 0)
			return l->live[i];
	return NULL;
}

struct n4_srv_fast_req *n4_srv_fast_match(struct n4_srv_fast *f, const struct n4_srv_fast_req *q)
{
	if (!f)
		return NULL;
	for (unsigned i = 0; i < N4_SRV_FAST_PER_CONN; i++) {
		struct n4_srv_fast_req *o = &f->req[i];
		if (o->used && o != q && !o->partner && !o->planned &&
		    memcmp(o->r.ident, q->r.ident, N4_PAYLOAD_SIZE) == 0 &&
		    (o->r.flags & N4_FAST_KEYED) == (q->r.flags & N4_FAST_KEYED))
			return o;
	}
	return NULL;
}

struct n4_srv_fast_req *n4_srv_fast_by_ident(const struct n4_srv_fast_list *l,
					     const uint8_t ident[N4_PAYLOAD_SIZE])
{
	for (unsigned i = 0; i < l->n; i++)
		if (memcmp(l->live[i]->r.ident, ident, N4_PAYLOAD_SIZE) == 0)
			return l->live[i];
	return NULL;
}

void n4_srv_fast_orphan_add(struct n4_srv_fast_list *l, const uint8_t token[N4_PAYLOAD_SIZE],
			    uint32_t ip, uint16_t port, uint64_t now_ms, uint64_t seq)
{
	struct n4_srv_fast_orphan *o = &l->orphan[l->orphan_next];

	/* A copy of one kept already changes nothing; one from another IP (not
	 * its request's, a stranger's) must not keep the real one out. */
	for (unsigned i = 0; i < N4_SRV_FAST_ORPHANS; i++)
		if (l->orphan[i].ms && l->orphan[i].ip == ip &&
		    memcmp(l->orphan[i].token, token, N4_PAYLOAD_SIZE) == 0)
			return;
	memcpy(o->token, token, N4_PAYLOAD_SIZE);
	o->ip = ip;
	o->port = port;
	o->ms = now_ms ? now_ms : 1;
	o->seq = seq;
	l->orphan_next = (l->orphan_next + 1) % N4_SRV_FAST_ORPHANS;
}

bool n4_srv_fast_orphan_take(struct n4_srv_fast_list *l, struct n4_srv_fast_req *q, uint64_t now_ms)
{
	for (unsigned i = 0; i < N4_SRV_FAST_ORPHANS; i++) {
		struct n4_srv_fast_orphan *o = &l->orphan[i];
		if (!o->ms || now_ms - o->ms > N4_SRV_FAST_ORPHAN_MS ||
		    memcmp(o->token, q->r.token, N4_PAYLOAD_SIZE) != 0 || o->ip != q->probe_ip)
			continue;
		q->probed = true;
		q->probe_port = o->port;
		q->probe_ms = o->ms;
		q->probe_seq = o->seq;
		o->ms = 0;
		return true;
	}
	return false;
}

unsigned n4_srv_fast_later_probes(const struct n4_srv_fast_list *l, const struct n4_srv_fast_req *q)
{
	unsigned n = 0;

	for (unsigned i = 0; i < l->n; i++) {
		const struct n4_srv_fast_req *o = l->live[i];
		if (o != q && o->probed && o->probe_ip == q->probe_ip &&
		    o->probe_seq > q->probe_seq)
			n++;
	}
	return n;
}

/* server_test.c - the entry points of server_test.h: drive the state machine without
 * a network (unit tests and the fuzzer).  Enters where the transport would
 * (srv_net.c) and reads the server's bookkeeping; no layer calls it. */
#include "n4.h"

#include <errno.h>
#include <string.h>

#include "metrics.h"
#include "server_int.h"

int n4_server_test_adopt(n4_server *s, int fd, const struct sockaddr *addr, socklen_t len)
{
	union n4_sa a;

	memset(&a, 0, sizeof(a));
	memcpy(&a, addr, len < sizeof(a) ? len : sizeof(a));
	return n4_srv_conn_admit(s, fd, &a);
}

void n4_server_test_udp(n4_server *s, const void *buf, size_t len, const struct sockaddr *src,
			socklen_t src_len)
{
	union n4_sa a;

	memset(&a, 0, sizeof(a));
	memcpy(&a, src, src_len < sizeof(a) ? src_len : sizeof(a));
	n4_srv_net_datagram(s, buf, len, &a, false, n4_now_ms());
	n4_srv_bury(s);
}

void n4_server_test_expire(n4_server *s)
{
	/* Firing one timer may close others (a partner): rescan from the start. */
	for (bool fired = true; fired;) {
		fired = false;
		for (struct conn *c = s->live; c; c = c->next) {
			struct n4_timer *t = c->peerinfo_timer.slot ? &c->peerinfo_timer
					     : c->deadline.slot	    ? &c->deadline
								    : NULL;
			if (!t)
				continue;
			n4_timer_cancel(s->loop, t);
			t->cb(s->loop, t);
			fired = true;
			break;
		}
	}
	n4_srv_bury(s);
}

void n4_server_test_expire_fast(n4_server *s)
{
	/* A timer that fires drops its request (and may drop its partner's): the
	 * list changes under us, so rescan from the start. */
	for (bool fired = true; fired;) {
		fired = false;
		for (unsigned i = 0; i < s->fast.n; i++) {
			struct n4_timer *t = &s->fast.live[i]->timer;
			if (!t->slot)
				continue;
			n4_timer_cancel(s->loop, t);
			t->cb(s->loop, t);
			fired = true;
			break;
		}
	}
	n4_srv_bury(s);
}

int n4_server_test_poll(n4_server *s)
{
	int n = n4_loop_run_once(s->loop, 0);

	n4_srv_after_iteration(s);
	return n;
}

void n4_server_test_drain(n4_server *s)
{
	n4_srv_begin_drain(s);
	n4_srv_bury(s);
}

unsigned n4_server_test_clients(const n4_server *s)
{
	return s->nclients;
}

/* Clients in N4_P_WAITING that no pairing table holds (srv_proto.c), because
 * they must never pair as equals: a room's host and a keyed client of a keyed
 * room wait for their long id (host_hello, room_hello), and a join-only client
 * (ROOM JOINER before HELLO) waits for its room's host, keyed or not, before and
 * after its long id (wait_for_host). */
static bool waits_outside_pairing(const struct conn *c)
{
	return c->room.role == N4_ROLE_HOSTING || c->room.role == N4_ROLE_JOINING ||
	       c->room_keyed_wait;
}

int n4_server_test_check(const n4_server *s)
{
	unsigned n = 0, waiting = 0;

	for (const struct conn *c = s->live; c; c = c->next) {
		n++;
		if (c->closed || c->srv != s)
			return -EFAULT;
		/* N4_P_WAITING is in the pairing table exactly when the client may
		 * pair as an equal (both ways: one left in it, or one that never got
		 * in, would each be a bug the count alone can hide). */
		bool in_table = c->pc.state == N4_P_WAITING && !waits_outside_pairing(c);
		if (c->pc.wait_node.linked != in_table)
			return -EFAULT;
		if (in_table)
			waiting++;
		/* exactly one deadline while live (PEERINFO timer aside) */
		if (!c->deadline.slot)
			return -EFAULT;
		if (c->pc.state == N4_P_PAIRED && c->pc.partner && c->pc.partner->partner != &c->pc)
			return -EFAULT;
		/* PEERINFO scheduled for a keyed client: only with its long id. */
		if ((c->pc.ext & N4_EXT_KEY) && c->peer_udp.sin_family && c->pc.partner &&
		    !n4_pairing_confirmed(&c->pc))
			return -EFAULT;
		/* A kept connection is done with the rendezvous and found under its
		 * identifier (HELLOs and FLOWs reach it there). */
		if (c->stay.on) {
			const struct n4_srv_stay *f = n4_srv_stay_first(&s->staying, c->pc.ident);
			while (f && f != &c->stay)
				f = n4_srv_stay_next(f);
			if (!f || c->pc.state != N4_P_DONE)
				return -EFAULT;
		}
	}
	if (n != s->nclients || waiting != n4_pairing_waiting(s->pairing))
		return -EFAULT;
	if (s->nclients > s->max_clients)
		return -EFAULT;
	return 0;
}

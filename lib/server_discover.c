/* server_discover.c - the server's wiring of NAT discovery (N4_EXT_PROBE, N4_EXT_SEQ):
 * each client's discovery state from READY to close, its probe datagrams (plain and
 * numbered, with kernel receive times), the wait for its last probe, the plans and the
 * TUNE/PLAN messages before PEERINFO.  discover.c measures, predict.c plans. */
#include "n4.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "server_int.h"

void n4_srv_discovery_expired(n4_loop *loop, struct n4_timer *t)
{
	struct disc_state *ds = t->arg;
	(void)loop;

	ds->d.complete = true;
	n4_srv_maybe_schedule(ds->owner->srv, ds->owner);
}

/* A discovery probe: recorded for the plan, never taken as the EXCHANGE. */
void n4_srv_udp_probe(struct n4_server *s, const struct n4_msg *m, const struct sockaddr_in *src,
		      bool second)
{
	struct n4_pclient *pc = n4_pairing_by_token(s->pairing, m->payload, src->sin_addr.s_addr);
	struct conn *c = pc ? pc->owner : NULL;

	if (!c || !c->disc || c->pc.state != N4_P_PAIRED) {
		s->rejects[REJ_UNKNOWN_UDP]++;
		return;
	}
	n4_discovery_record(&c->disc->d, ntohs(src->sin_port), second, second,
			    m->ext & N4_EXCH_LAST, s->rx_ms);
	n4_srv_maybe_schedule(s, c);
}

/* A numbered probe (N4_EXT_SEQ): like n4_srv_udp_probe, with its place in the
 * client's send schedule, so that jitter cannot reorder what it tells. */
void n4_srv_udp_seq_probe(struct n4_server *s, const uint8_t *buf, size_t len,
			  const union n4_sa *from, bool second)
{
	struct sockaddr_in src;
	struct n4_seq_probe p;

	if (len != N4_MSG_SIZE || !n4_sa_to_v4(from, &src) || n4_seq_probe_parse(buf[1], &p)) {
		s->rejects[REJ_BAD_UDP]++;
		return;
	}
	struct n4_pclient *pc = n4_pairing_by_token(s->pairing, buf + 2, src.sin_addr.s_addr);
	struct conn *c = pc ? pc->owner : NULL;
	if (!c || !c->disc || !c->disc->d.ordered || c->pc.state != N4_P_PAIRED) {
		s->rejects[REJ_UNKNOWN_UDP]++;
		return;
	}
	n4_discovery_record_seq(&c->disc->d, ntohs(src.sin_port), second, &p, s->rx_ms);
	n4_srv_maybe_schedule(s, c);
}

/* The kernel's receive time (CLOCK_REALTIME) on n4_now_ms's monotonic clock;
 * now when the datagram carries none. */
uint64_t n4_srv_rx_time_ms(const struct msghdr *mh)
{
	uint64_t now = n4_now_ms();
	struct timespec real;

	for (const struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
	     cm = CMSG_NXTHDR((struct msghdr *)mh, (struct cmsghdr *)cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS ||
		    cm->cmsg_len < CMSG_LEN(sizeof(struct timespec)))
			continue;
		struct timespec ts;
		memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
		if (clock_gettime(CLOCK_REALTIME, &real))
			return now;
		int64_t age_ms = ((int64_t)real.tv_sec - (int64_t)ts.tv_sec) * 1000 +
				 ((int64_t)real.tv_nsec - (int64_t)ts.tv_nsec) / 1000000;
		/* A clock step between the two readings: trust our own clock. */
		if (age_ms < 0 || (uint64_t)age_ms > now || age_ms > 10000)
			return now;
		return now - (uint64_t)age_ms;
	}
	return now;
}

void n4_srv_disc_start(struct conn *c)
{
	if (!(c->pc.ext & N4_EXT_PROBE))
		return;
	c->disc = calloc(1, sizeof(*c->disc));
	if (c->disc) {
		c->disc->owner = c;
		c->disc->d.ordered = c->pc.ext & N4_EXT_SEQ;
	} else {
		c->pc.ext &= (uint8_t)~N4_EXT_PROBE; /* plan without discovery */
	}
}

void n4_srv_disc_free(struct n4_server *s, struct conn *c)
{
	if (!c->disc)
		return;
	n4_timer_cancel(s->loop, &c->disc->timer);
	free(c->disc);
	c->disc = NULL;
}

void n4_srv_disc_exchange(struct n4_server *s, struct conn *c, const struct sockaddr_in *src)
{
	if (!c->disc)
		return;
	n4_discovery_record(&c->disc->d, ntohs(src->sin_port), false, true, false, s->rx_ms);
	unsigned wait_ms = c->disc->d.ordered ? N4_DISCOVERY_SEQ_WAIT_MS : N4_DISCOVERY_WAIT_MS;
	if (!c->disc->d.complete && n4_timer_arm(s->loop, &c->disc->timer, c->exch_ms + wait_ms,
						 n4_srv_discovery_expired, c->disc))
		c->disc->d.complete = true;
}

bool n4_srv_disc_complete(const struct conn *c)
{
	return !c->disc || c->disc->d.complete;
}

void n4_srv_disc_plan(struct n4_server *s, struct conn *a, struct conn *b, uint64_t now,
		      const uint64_t delay[2], uint64_t rtt_a, uint64_t rtt_b)
{
	if (!a->disc || !b->disc)
		return;
	/* Each side's sweep opens its mappings when its PEERINFO arrives: sent
	 * now + delay, arriving half a round trip later, while its last probe was
	 * allocated half a round trip before we saw it. */
	double dt_a = (double)(now + delay[0] - n4_discovery_last_ms(&a->disc->d) + rtt_a);
	double dt_b = (double)(now + delay[1] - n4_discovery_last_ms(&b->disc->d) + rtt_b);
	n4_discovery_plan(&a->disc->d, &b->disc->d, dt_a, dt_b, s->cfg.port_budget);
}

void n4_srv_disc_send_plan(struct conn *c)
{
	if (!c->disc)
		return;
	struct n4_msg plan;
	uint8_t kind;
	n4_msg_init(&plan, N4_CMD_PLAN, 0, NULL);
	n4_plan_encode(&c->disc->d.plan, &kind, plan.payload);
	plan.ext = kind;
	if (!(c->pc.ext & N4_EXT_SEQ)) {
		n4_srv_conn_send(c, &plan);
		return;
	}
	/* Queued, not flushed: TUNE, PLAN (SELF) and PEERINFO leave in one
	 * segment, so one lost segment (not one of three) delays them. */
	struct n4_msg tune;
	uint8_t flags;
	n4_msg_init(&tune, N4_CMD_TUNE, 0, NULL);
	c->disc->d.tune.max_pps = (uint16_t)c->srv->cfg.max_pps;
	n4_tune_encode(&c->disc->d.tune, &flags, tune.payload);
	tune.ext = flags;
	n4_srv_conn_queue(c, &tune);
	n4_srv_conn_queue(c, &plan);
}

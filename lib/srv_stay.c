/* srv_stay.c - the STAY leaf (srv_stay.h).  Layer: leaf; may call wire.c and
 * ipcap.c's keyed hash only. */
#include "srv_stay.h"

#include <errno.h>
#include <string.h>

#include "ipcap.h"
#include "n4.h"

static unsigned bucket_of(const struct n4_srv_stay_list *l, const uint8_t *ident)
{
	return (unsigned)(n4_keyed_hash(ident, N4_PAYLOAD_SIZE, l->hash_key) % N4_STAY_BUCKETS);
}

void n4_srv_stay_init(struct n4_srv_stay_list *l)
{
	memset(l->bucket, 0, sizeof(l->bucket));
	n4_hash_key_init(l->hash_key);
}

void n4_srv_stay_add(struct n4_srv_stay_list *l, struct n4_srv_stay *node, const uint8_t *ident,
		     void *owner)
{
	unsigned b = bucket_of(l, ident);

	node->ident = ident;
	node->owner = owner;
	node->on = true;
	node->bucket = b;
	node->flow_tat_ms = 0;
	node->prev = NULL;
	node->next = l->bucket[b];
	if (l->bucket[b])
		l->bucket[b]->prev = node;
	l->bucket[b] = node;
}

void n4_srv_stay_remove(struct n4_srv_stay_list *l, struct n4_srv_stay *node)
{
	if (!node->on)
		return;
	if (node->prev)
		node->prev->next = node->next;
	else
		l->bucket[node->bucket] = node->next;
	if (node->next)
		node->next->prev = node->prev;
	node->on = false;
}

static struct n4_srv_stay *find(struct n4_srv_stay *from, const uint8_t *ident)
{
	while (from && memcmp(from->ident, ident, N4_PAYLOAD_SIZE) != 0)
		from = from->next;
	return from;
}

struct n4_srv_stay *n4_srv_stay_first(const struct n4_srv_stay_list *l, const uint8_t *ident)
{
	return find(l->bucket[bucket_of(l, ident)], ident);
}

struct n4_srv_stay *n4_srv_stay_next(const struct n4_srv_stay *node)
{
	return find(node->next, node->ident);
}

int n4_srv_stay_decode(const uint8_t *msg, const uint8_t *only_ident, uint8_t *ident,
		       char text[N4_PAYLOAD_SIZE + 1])
{
	/* The command byte is what routed the message here; the identifier is
	 * checked like HELLO's. */
	if (n4_ident_decode(msg + 2, text) ||
	    (only_ident && memcmp(msg + 2, only_ident, N4_PAYLOAD_SIZE) != 0))
		return -EINVAL;
	memcpy(ident, msg + 2, N4_PAYLOAD_SIZE);
	return 0;
}

void n4_srv_stay_repunch(const uint8_t *ident, struct n4_msg *m)
{
	n4_msg_init(m, N4_CMD_REPUNCH, 0, ident);
}

int n4_srv_stay_flow(const uint8_t *msg, struct n4_msg *fwd, struct n4_flow_note *f)
{
	if (n4_flow_decode(msg, N4_MSG_SIZE, 0, f))
		return -EINVAL;
	/* Passed on as it came: the ports are the sender's view, its peer reads
	 * them that way round. */
	n4_flow_encode(f, N4_FLOW_FORWARDED, fwd);
	return 0;
}

bool n4_srv_stay_flow_admit(struct n4_srv_stay *node, uint64_t now_ms)
{
	/* GCRA: one FLOW every 1000/RATE ms on average, BURST of them at once. */
	const uint64_t interval_ms = 1000u / N4_STAY_FLOW_RATE;
	const uint64_t tolerance_ms = (N4_STAY_FLOW_BURST - 1u) * interval_ms;

	if (node->flow_tat_ms < now_ms)
		node->flow_tat_ms = now_ms;
	if (node->flow_tat_ms - now_ms > tolerance_ms)
		return false;
	node->flow_tat_ms += interval_ms;
	return true;
}

/* srv_stay.c - the STAY leaf (srv_stay.h).  Layer: leaf; may call wire.c only. */
#include "srv_stay.h"

#include <errno.h>
#include <string.h>

void n4_srv_stay_add(struct n4_srv_stay_list *l, struct n4_srv_stay *node, const uint8_t *ident,
		     void *owner)
{
	node->ident = ident;
	node->owner = owner;
	node->on = true;
	node->prev = NULL;
	node->next = l->head;
	if (l->head)
		l->head->prev = node;
	l->head = node;
}

void n4_srv_stay_remove(struct n4_srv_stay_list *l, struct n4_srv_stay *node)
{
	if (!node->on)
		return;
	if (node->prev)
		node->prev->next = node->next;
	else
		l->head = node->next;
	if (node->next)
		node->next->prev = node->prev;
	node->on = false;
}

struct n4_srv_stay *n4_srv_stay_find(struct n4_srv_stay *from, const uint8_t *ident)
{
	while (from && memcmp(from->ident, ident, N4_PAYLOAD_SIZE) != 0)
		from = from->next;
	return from;
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

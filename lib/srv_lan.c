/* srv_lan.c - the same-LAN leaf (srv_lan.h).  Layer: leaf; may call wire.c only. */
#include "srv_lan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct n4_srv_lan *n4_srv_lan_new(void)
{
	return calloc(1, sizeof(struct n4_srv_lan));
}

void n4_srv_lan_free(struct n4_srv_lan *l)
{
	free(l);
}

bool n4_srv_lan_pending(const struct n4_srv_lan *l)
{
	return l && !l->done;
}

int n4_srv_lan_local(struct n4_srv_lan *l, const uint8_t *msg, struct sockaddr_in *added)
{
	struct n4_msg m;
	struct sockaddr_in a;
	int r = -EPROTO;

	memset(added, 0, sizeof(*added));
	if (n4_wire_decode(msg, N4_MSG_SIZE, N4_CMD_LOCAL, &m) == 0)
		r = n4_local_decode(&m, &a);
	l->nmsgs++;
	if (r < 0 || (l->nmsgs == N4_LOCAL_MAX && !(m.ext & N4_LOCAL_LAST)))
		return -EPROTO;
	if (r == 1) {
		l->own[l->nown++] = a;
		*added = a;
		added->sin_family = AF_INET;
	}
	if (m.ext & N4_LOCAL_LAST) {
		l->done = true;
		return 1;
	}
	return 0;
}

void n4_srv_lan_share(struct n4_srv_lan *to, const struct n4_srv_lan *from)
{
	for (unsigned i = 0; i < from->nown; i++) {
		const struct sockaddr_in *a = &from->own[i];
		bool mine = false;
		for (unsigned j = 0; j < to->nown; j++)
			mine |= a->sin_addr.s_addr == to->own[j].sin_addr.s_addr &&
				a->sin_port == to->own[j].sin_port;
		if (!mine && to->npeer < N4_LOCAL_MAX)
			to->peer[to->npeer++] = *a;
	}
}

unsigned n4_srv_lan_npeer(const struct n4_srv_lan *l)
{
	return l ? l->npeer : 0;
}

void n4_srv_lan_peerlocal(const struct n4_srv_lan *l, unsigned i, struct n4_msg *m)
{
	n4_local_encode(N4_CMD_PEERLOCAL, &l->peer[i], i + 1 == l->npeer, m);
}

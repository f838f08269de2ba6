/* srv_admit.c - admission as a check (srv_admit.h).  Layer: leaf under the
 * transport; no I/O, no logging (the transport logs what it applies).  May call:
 * ipcap.c. */
#include "srv_admit.h"

#include <errno.h>

enum n4_admit n4_srv_admit(n4_ipcap *cap, const struct n4_admit_in *in, int *err)
{
	*err = 0;
	if (in->draining) {
		*err = -ESHUTDOWN;
		return N4_ADMIT_SHUTDOWN;
	}
	if (in->nclients >= in->max_clients) {
		*err = -ENOSPC;
		return N4_ADMIT_FULL;
	}
	*err = n4_ipcap_admit(cap, &in->src, in->now_ms);
	if (!*err)
		return N4_ADMIT_OK;
	if (*err == -EMFILE)
		return N4_ADMIT_PER_IP;
	if (*err == -EAGAIN)
		return N4_ADMIT_RATE;
	return N4_ADMIT_SOURCES;
}

/* srv_admit.h - admission of a new TCP connection as a check: the server's state
 * and the source's limits in, admit or refuse (with the reason) out.  Layer: a
 * leaf below the transport (srv_net.c applies the verdict: resets, counts, logs).
 * No I/O; may call ipcap.c only. */
#ifndef N4_SRV_ADMIT_H
#define N4_SRV_ADMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "ipcap.h"

enum n4_admit {
	N4_ADMIT_OK,
	N4_ADMIT_SHUTDOWN, /* draining: no new clients */
	N4_ADMIT_FULL,	   /* max clients reached */
	N4_ADMIT_SOURCES,  /* the table of sources is full (counted as full too) */
	N4_ADMIT_PER_IP,   /* the source holds max_per_ip connections already */
	N4_ADMIT_RATE,	   /* the source's bucket of new connections is empty */
};

struct n4_admit_in {
	bool draining;
	unsigned nclients, max_clients;
	struct n4_ipkey src;
	uint64_t now_ms;
};

/* N4_ADMIT_OK counts the connection against its source in cap (release it with
 * n4_ipcap_release when it closes); *err is 0, or the refusal as -errno
 * (-ESHUTDOWN, -ENOSPC, or n4_ipcap_admit's). */
enum n4_admit n4_srv_admit(n4_ipcap *cap, const struct n4_admit_in *in, int *err);

#endif

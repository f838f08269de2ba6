/* stay.h - kept server connections (N4_EXT_STAY, wire.h). */
#ifndef N4_STAY_H
#define N4_STAY_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* 0 when buf/len is a REPUNCH for ident, -EPROTO otherwise. */
int n4_stay_decode(const uint8_t *buf, size_t len, const uint8_t ident[N4_PAYLOAD_SIZE]);
/* 0 and *note when buf/len is a FLOW as the server forwards it (reserved byte
 * N4_FLOW_FORWARDED, no port 0); -EPROTO otherwise. */
struct n4_flow_note;
int n4_stay_flow_decode(const uint8_t *buf, size_t len, struct n4_flow_note *note);

#endif

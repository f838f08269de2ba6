/* fuzz_path.c - libFuzzer target for lib/path.c: any sequence of events and clock
 * steps keeps the path module's promises.
 *
 * Input: byte 0 configures the path (bit 0 keyed, bit 1 recover off, bit 2 stay off,
 * bit 3 keepalive off, bits 4-5 give_up_after 0-3, bit 6 starts relayed); then pairs
 * of bytes (op, arg): op % 8 is
 *   0 tick after arg*10 ms, sending arg%4 and receiving (arg/4)%4 datagrams;
 *   1 end the running attempt (arg bit 0: failed, bit 1: landed on the relay);
 *   2 the attempt could not start;   3 a REPUNCH notice;
 *   4 the kept connection is up;     5 it is lost;
 *   6 a long pause (arg seconds) then a tick;   7 the path is won again.
 * Promises checked (abort on a broken one):
 *   - RECOVER and UPGRADE never come while an attempt runs, nor together;
 *   - with recover off, no RECOVER ever;
 *   - keepalives only with keepalive_s, and at most one per tick;
 *   - a relayed path refreshes the relay, a direct one sends keepalives, never both;
 *   - REGISTER never comes in the same tick as an attempt, and only after the
 *     kept connection was up once;
 *   - GIVE_UP comes at most once per gone path, only with give_up_after, and a
 *     gone path asks for nothing and has no next time;
 *   - next_ms is 0 (nothing to do) or not in the past beyond one sample (100 ms). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "n4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ATTEMPTS (N4_PATH_RECOVER | N4_PATH_UPGRADE)

struct model {
	bool attempt;	/* one is running, as far as the caller knows */
	bool relayed;	/* what the path was told last */
	bool stay_seen; /* the kept connection was up once */
	bool gone_said;
};

static void check_tick(const struct n4_path_cfg *cfg, struct model *m, n4_path *p, uint64_t now,
		       uint64_t tx, uint64_t rx)
{
	struct n4_path_todo todo;
	struct n4_path_info info;
	unsigned a = n4_path_tick(p, now, tx, rx, &todo);

	n4_path_get_info(p, &info);
	if (a != todo.actions)
		abort();
	if ((a & ATTEMPTS) == ATTEMPTS || ((a & ATTEMPTS) && m->attempt))
		abort();
	if ((a & N4_PATH_RECOVER) && !cfg->recover)
		abort();
	if ((a & (N4_PATH_KEEPALIVE | N4_PATH_RELAY_REFRESH)) && !cfg->keepalive_s)
		abort();
	if ((a & N4_PATH_KEEPALIVE) && (a & N4_PATH_RELAY_REFRESH))
		abort();
	if ((a & N4_PATH_RELAY_REFRESH) && !m->relayed)
		abort();
	if ((a & N4_PATH_KEEPALIVE) && m->relayed)
		abort();
	if ((a & N4_PATH_REGISTER) && ((a & ATTEMPTS) || !m->stay_seen || !cfg->stay))
		abort();
	if ((a & N4_PATH_UPGRADE) && !m->relayed)
		abort();
	if (a & N4_PATH_GIVE_UP) {
		if (m->gone_said || !cfg->give_up_after || info.state != N4_PATH_GONE)
			abort();
		m->gone_said = true;
	}
	if (info.state == N4_PATH_GONE && ((a & ~(unsigned)N4_PATH_GIVE_UP) || todo.next_ms))
		abort();
	if (todo.next_ms && todo.next_ms + 100 < now)
		abort();
	if (a & ATTEMPTS) {
		m->attempt = true;
		if (info.attempt == N4_PATH_NO_ATTEMPT)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct n4_path_cfg cfg;
	struct model m;
	uint64_t now = 1000, tx = 0, rx = 0;

	if (size < 1)
		return 0;
	n4_path_cfg_init(&cfg);
	cfg.keyed = data[0] & 1;
	cfg.recover = !(data[0] & 2);
	cfg.stay = !(data[0] & 4);
	cfg.keepalive_s = data[0] & 8 ? 0 : 1;
	cfg.give_up_after = (data[0] >> 4) & 3;
	cfg.upgrade_s = 5;
	n4_path *p = n4_path_new(&cfg);
	if (!p)
		abort();
	memset(&m, 0, sizeof(m));
	m.relayed = data[0] & 64;
	n4_path_won(p, now, m.relayed, tx, rx);
	for (size_t i = 1; i + 1 < size; i += 2) {
		uint8_t op = data[i] % 8, arg = data[i + 1];
		switch (op) {
		case 0:
			now += (uint64_t)arg * 10;
			tx += arg % 4;
			rx += (arg / 4) % 4;
			check_tick(&cfg, &m, p, now, tx, rx);
			break;
		case 1: {
			bool failed = arg & 1, relayed = arg & 2;
			struct n4_path_info info;
			n4_path_get_info(p, &info);
			bool upgrade = info.attempt == N4_PATH_UPGRADING;
			n4_path_attempt_done(p, now, failed ? -110 : 0, relayed, tx, rx);
			if (m.attempt && !failed && !(upgrade && relayed))
				m.relayed = relayed;
			m.attempt = false;
			n4_path_get_info(p, &info);
			if (info.attempt != N4_PATH_NO_ATTEMPT)
				abort();
			break;
		}
		case 2:
			n4_path_attempt_not_started(p, now);
			m.attempt = false;
			break;
		case 3:
			n4_path_notice(p, now);
			break;
		case 4:
			n4_path_stay_up(p);
			m.stay_seen = true;
			break;
		case 5:
			n4_path_stay_lost(p, now);
			break;
		case 6:
			now += (uint64_t)arg * 1000;
			check_tick(&cfg, &m, p, now, tx, rx);
			break;
		default:
			m.relayed = arg & 1;
			m.attempt = false;
			m.gone_said = false;
			n4_path_won(p, now, m.relayed, tx, rx);
			break;
		}
	}
	n4_path_free(p);
	return 0;
}

/* path.c - the life of a punched path after its WIN, as decisions (n4.h "path").
 *
 * No I/O and no clock of its own: the caller says what time it is and what it saw,
 * and is told what to do.  That keeps every rule here testable with a fake clock
 * (tests/unit/test_path.c), and the same for the shim's keeper thread, `n4 -c` and
 * embedders.  The dead-path rule itself is session.c's (n4_liveness). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "n4.h"
#include "session.h"
#include "wire.h"

/* A recovery that could not even start (no thread) is tried again after this. */
#define RETRY_NOT_STARTED_MS 2000
/* A failed recovery waits 2 s, then twice as long each time, up to a minute: a
 * peer that is gone for good costs one rendezvous a minute, and one that comes
 * back is found within a minute. */
#define BACKOFF_FIRST_MS 2000
#define BACKOFF_MAX_MS 60000
/* A lost server connection for notices is registered again at most this often. */
#define STAY_RETRY_MS 10000
/* Without a key, a REPUNCH notice is acted on only once the peer has been silent
 * this long, and forgotten if the peer keeps talking for NOTICE_KEEP_MS: anyone
 * who knows the identifier can say HELLO and make the server send one. */
#define NOTICE_SILENT_MS 1000
#define NOTICE_KEEP_MS 5000
/* The dead-path rule samples the counters at this pace (session.h's figures are
 * tuned for it); a caller that idles longer is asked back this soon. */
#define SAMPLE_MS 100

enum stay_state {
	STAY_NONE,	  /* never granted: nothing to keep */
	STAY_UP,	  /* a kept connection is open */
	STAY_LOST,	  /* lost: register again at next_stay_ms */
	STAY_REGISTERING, /* N4_PATH_REGISTER asked, result pending */
};

struct n4_path {
	struct n4_path_cfg cfg;
	enum n4_path_state state;
	enum n4_path_attempt attempt;
	struct n4_liveness live;
	uint64_t next_keepalive_ms;
	uint64_t next_attempt_ms; /* recovery backoff, or the next upgrade when relayed */
	unsigned backoff_ms;
	unsigned failures;
	uint64_t notice_ms; /* an unproven notice waiting for the peer to fall silent */
	bool told, by_stream;
	bool send_failed;     /* our sends fail: recover at the next step */
	bool send_failed_why; /* the attempt under way (or last) was for that */
	bool gone_said; /* N4_PATH_GIVE_UP was returned */
	unsigned silent_ms;
	enum stay_state stay;
	uint64_t next_stay_ms;
};

void n4_path_cfg_init(struct n4_path_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->keepalive_s = N4_KEEPALIVE_DEFAULT_S;
	/* Tailscale re-probes a relayed (DERP) path for a direct one every minute. */
	cfg->upgrade_s = 60;
	cfg->recover = true;
	cfg->stay = true;
}

n4_path *n4_path_new(const struct n4_path_cfg *cfg)
{
	/* An interval past a day is a mistake (n4shim caps N4_UPGRADE there). */
	if (!cfg || cfg->keepalive_s > 86400 || cfg->upgrade_s > 86400) {
		errno = EINVAL;
		return NULL;
	}
	n4_path *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->cfg = *cfg;
	return p;
}

void n4_path_free(n4_path *p)
{
	free(p);
}

static uint64_t after_s(uint64_t now_ms, unsigned s)
{
	return now_ms + (uint64_t)s * 1000u;
}

void n4_path_won(n4_path *p, uint64_t now_ms, bool relayed, uint64_t tx, uint64_t rx)
{
	p->state = relayed ? N4_PATH_RELAYED : N4_PATH_DIRECT;
	p->attempt = N4_PATH_NO_ATTEMPT;
	p->next_keepalive_ms = after_s(now_ms, p->cfg.keepalive_s);
	p->next_attempt_ms = relayed && p->cfg.upgrade_s ? after_s(now_ms, p->cfg.upgrade_s) : 0;
	p->backoff_ms = 0;
	p->failures = 0;
	p->notice_ms = 0;
	p->told = p->by_stream = false;
	p->send_failed = false;
	p->silent_ms = 0;
	p->gone_said = false;
	n4_liveness_reset(&p->live, tx, rx);
}

static bool live(const n4_path *p)
{
	return p->state == N4_PATH_DIRECT || p->state == N4_PATH_RELAYED;
}

static unsigned start(n4_path *p, enum n4_path_attempt what)
{
	p->attempt = what;
	/* The server connection goes with the attempt: the new rendezvous opens its
	 * own, and the server would tell the old one about our own new HELLO. */
	if (p->stay != STAY_NONE)
		p->stay = STAY_LOST;
	return what == N4_PATH_RECOVERING ? N4_PATH_RECOVER : N4_PATH_UPGRADE;
}

static unsigned recover_told(n4_path *p)
{
	p->notice_ms = 0;
	p->told = true;
	p->send_failed_why = false;
	p->by_stream = false;
	p->silent_ms = 0;
	return start(p, N4_PATH_RECOVERING);
}

/* The first step that applies, in the order of precedence: a proven notice, the
 * upgrade of a relayed path, the dead-path rule, an unproven notice. */
static unsigned decide(n4_path *p, uint64_t now_ms, uint64_t tx, uint64_t rx)
{
	if (p->notice_ms && p->cfg.keyed)
		return recover_told(p);
	if (p->send_failed && p->cfg.recover && now_ms >= p->next_attempt_ms) {
		p->send_failed = false;
		p->notice_ms = 0;
		p->told = p->by_stream = false;
		p->silent_ms = 0;
		p->send_failed_why = true;
		return start(p, N4_PATH_RECOVERING);
	}
	if (p->state == N4_PATH_RELAYED && p->cfg.upgrade_s && now_ms >= p->next_attempt_ms) {
		p->next_attempt_ms = after_s(now_ms, p->cfg.upgrade_s);
		return start(p, N4_PATH_UPGRADING);
	}
	if (n4_liveness_tick(&p->live, now_ms, tx, rx) && p->cfg.recover &&
	    now_ms >= p->next_attempt_ms) {
		p->notice_ms = 0; /* this recovery answers it too */
		p->told = false;
		p->send_failed_why = false;
		p->by_stream = p->live.by_stream;
		p->silent_ms = n4_liveness_silent_ms(&p->live, now_ms);
		return start(p, N4_PATH_RECOVERING);
	}
	if (!p->notice_ms)
		return 0;
	/* Quiet since the last datagram heard; a path that never heard its peer (a
	 * one-way sender, or one just punched) since the notice. */
	uint64_t quiet_since = p->live.heard ? p->live.last_heard_ms : p->notice_ms;
	if (now_ms - quiet_since >= NOTICE_SILENT_MS)
		return recover_told(p);
	if (now_ms - p->notice_ms >= NOTICE_KEEP_MS) {
		p->notice_ms = 0;
		return N4_PATH_NOTICE_IGNORED;
	}
	return 0;
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return a < b ? a : b;
}

static uint64_t next_call(const n4_path *p, uint64_t now_ms)
{
	uint64_t next = 0;

	if (p->state == N4_PATH_GONE || p->state == N4_PATH_IDLE)
		return 0;
	if (p->cfg.keepalive_s)
		next = earliest(next, p->next_keepalive_ms);
	if (p->attempt != N4_PATH_NO_ATTEMPT)
		return next;
	if (p->stay == STAY_LOST && p->cfg.stay)
		next = earliest(next, p->next_stay_ms > now_ms ? p->next_stay_ms : now_ms);
	/* The counters are sampled at a steady pace (liveness, notices). */
	if (p->cfg.recover || p->notice_ms)
		next = earliest(next, now_ms + SAMPLE_MS);
	if (p->state == N4_PATH_RELAYED && p->cfg.upgrade_s)
		next = earliest(next, p->next_attempt_ms);
	return next;
}

unsigned n4_path_tick(n4_path *p, uint64_t now_ms, uint64_t tx, uint64_t rx,
		      struct n4_path_todo *todo)
{
	unsigned act = 0;

	if (live(p)) {
		if (p->cfg.keepalive_s && now_ms >= p->next_keepalive_ms) {
			p->next_keepalive_ms = after_s(now_ms, p->cfg.keepalive_s);
			act |= p->state == N4_PATH_RELAYED ? N4_PATH_RELAY_REFRESH
							   : N4_PATH_KEEPALIVE;
		}
		if (p->attempt == N4_PATH_NO_ATTEMPT) {
			act |= decide(p, now_ms, tx, rx);
			/* An attempt opens a server connection of its own. */
			if (p->attempt == N4_PATH_NO_ATTEMPT && p->stay == STAY_LOST &&
			    p->cfg.stay && now_ms >= p->next_stay_ms) {
				p->stay = STAY_REGISTERING;
				act |= N4_PATH_REGISTER;
			}
		}
	} else if (p->state == N4_PATH_GONE && !p->gone_said) {
		p->gone_said = true;
		act |= N4_PATH_GIVE_UP;
	}
	if (todo) {
		todo->actions = act;
		todo->next_ms = next_call(p, now_ms);
	}
	return act;
}

void n4_path_attempt_done(n4_path *p, uint64_t now_ms, int rc, bool relayed, uint64_t tx,
			  uint64_t rx)
{
	enum n4_path_attempt what = p->attempt;

	if (what == N4_PATH_NO_ATTEMPT || !live(p))
		return;
	p->attempt = N4_PATH_NO_ATTEMPT;
	if (rc == 0 && what == N4_PATH_UPGRADING && relayed)
		return; /* relayed again: nothing changed, the next try is scheduled */
	if (rc < 0) {
		p->told = false;
		p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_FIRST_MS;
		if (p->backoff_ms > BACKOFF_MAX_MS)
			p->backoff_ms = BACKOFF_MAX_MS;
		if (what == N4_PATH_RECOVERING) {
			p->next_attempt_ms = now_ms + p->backoff_ms;
			p->failures++;
			if (p->cfg.give_up_after && p->failures >= p->cfg.give_up_after)
				p->state = N4_PATH_GONE;
		}
	} else {
		p->state = relayed ? N4_PATH_RELAYED : N4_PATH_DIRECT;
		p->told = false;
		p->backoff_ms = 0;
		p->failures = 0;
		/* Landed on a relay (no direct path): try direct again later. */
		p->next_attempt_ms =
			relayed && p->cfg.upgrade_s ? after_s(now_ms, p->cfg.upgrade_s) : 0;
	}
	bool heard = p->live.heard;
	uint64_t last_heard_ms = p->live.last_heard_ms, run_start_ms = p->live.run_start_ms;
	n4_liveness_reset(&p->live, tx, rx);
	/* A failed attempt leaves the old path as it was: still dead if it was, so
	 * the rule fires again once the backoff is over (it needs a peer once heard). */
	if (rc < 0 && heard) {
		p->live.heard = true;
		p->live.last_heard_ms = last_heard_ms;
		p->live.run_start_ms = run_start_ms;
	}
}

void n4_path_attempt_not_started(n4_path *p, uint64_t now_ms)
{
	if (p->attempt == N4_PATH_RECOVERING)
		p->next_attempt_ms = now_ms + RETRY_NOT_STARTED_MS;
	p->attempt = N4_PATH_NO_ATTEMPT;
}

void n4_path_notice(n4_path *p, uint64_t now_ms)
{
	if (!live(p) || !p->cfg.recover)
		return;
	/* A repeated notice (our kept connection registered again while the peer
	 * waits) does not restart the wait. */
	if (!p->notice_ms)
		p->notice_ms = now_ms ? now_ms : 1;
}

void n4_path_send_failed(n4_path *p, uint64_t now_ms)
{
	(void)now_ms;
	if (live(p) && p->cfg.recover && p->attempt == N4_PATH_NO_ATTEMPT)
		p->send_failed = true;
}

void n4_path_stay_up(n4_path *p)
{
	p->stay = STAY_UP;
}

void n4_path_stay_lost(n4_path *p, uint64_t now_ms)
{
	if (p->stay == STAY_NONE)
		return; /* never granted: nothing to register again */
	/* A connection that was never up (the first registration) waits as long. */
	p->next_stay_ms = p->stay == STAY_REGISTERING ? now_ms + STAY_RETRY_MS : now_ms;
	p->stay = STAY_LOST;
}

void n4_path_get_info(const n4_path *p, struct n4_path_info *info)
{
	memset(info, 0, sizeof(*info));
	info->state = p->state;
	info->attempt = p->attempt;
	info->told = p->told;
	info->by_stream = p->by_stream;
	info->silent_ms = p->silent_ms;
	info->send_failed = p->send_failed_why;
	info->backoff_ms = p->backoff_ms;
	info->failures = p->failures;
}

/* test_path.c - the path module's decisions (lib/path.c), driven by a fake clock.
 *
 * A run ticks every 100 ms, as the shim's keeper does, with the traffic a case
 * describes: datagrams sent and received per tick.  Each case checks what the path
 * asks for, and when. */
#include <errno.h>
#include <string.h>

#include "n4.h"
#include "opttab.h"
#include "test.h"

struct sim {
	n4_path *p;
	uint64_t t, tx, rx;
	unsigned seen;	      /* every action asked for during the last run */
	uint64_t first_at[8]; /* when each action (by bit) was first asked for, 0 = never */
	unsigned count[8];    /* how often */
	uint64_t next_ms;     /* the last todo.next_ms */
};

static n4_path *new_path(unsigned keepalive_s, bool keyed)
{
	struct n4_path_cfg cfg;

	n4_path_cfg_init(&cfg);
	cfg.keepalive_s = keepalive_s;
	cfg.keyed = keyed;
	return n4_path_new(&cfg);
}

static void sim_start(struct sim *s, n4_path *p, bool relayed)
{
	memset(s, 0, sizeof(*s));
	s->p = p;
	s->t = 10000;
	n4_path_won(p, s->t, relayed, 0, 0);
}

/* Run for ms, sending `out` and receiving `in` datagrams per tick; stop early at
 * the first tick that asks for one of `stop_on`. */
static unsigned sim_run(struct sim *s, unsigned ms, unsigned out, unsigned in, unsigned stop_on)
{
	struct n4_path_todo todo;

	s->seen = 0;
	memset(s->first_at, 0, sizeof(s->first_at));
	memset(s->count, 0, sizeof(s->count));
	for (uint64_t end = s->t + ms; s->t < end;) {
		s->t += 100;
		s->tx += out;
		s->rx += in;
		unsigned a = n4_path_tick(s->p, s->t, s->tx, s->rx, &todo);
		s->next_ms = todo.next_ms;
		for (unsigned b = 0; b < 8; b++) {
			if (!(a & (1u << b)))
				continue;
			if (!s->first_at[b])
				s->first_at[b] = s->t;
			s->count[b]++;
		}
		s->seen |= a;
		if (a & stop_on)
			break;
	}
	return s->seen;
}

/* 3 s of two-way stream, then the NAT forgets (we send, nothing comes back) until
 * the path asks for a recovery: true when it did. */
static bool sim_lose_path(struct sim *s)
{
	sim_run(s, 3000, 1, 1, 0);
	return sim_run(s, 5000, 1, 0, N4_PATH_RECOVER) & N4_PATH_RECOVER;
}

static unsigned bit(unsigned action)
{
	return (unsigned)__builtin_ctz(action);
}

TEST(path_silence_on_both_sides_only_keeps_alive)
{
	struct sim s;
	n4_path *p = new_path(15, false);

	CHECK(p);
	sim_start(&s, p, false);
	sim_run(&s, 2000, 1, 1, 0); /* a conversation, then both fall silent */
	unsigned a = sim_run(&s, 120000, 0, 0, 0);
	CHECK(!(a & (N4_PATH_RECOVER | N4_PATH_UPGRADE | N4_PATH_GIVE_UP)));
	CHECK(a & N4_PATH_KEEPALIVE);
	/* one every 15 s: 8 in two minutes, on time */
	CHECK_EQ(s.count[bit(N4_PATH_KEEPALIVE)], 8);
	CHECK(s.next_ms > s.t && s.next_ms <= s.t + 100);
	n4_path_free(p);
}

TEST(path_keepalive_off_sends_none_and_relayed_refreshes_instead)
{
	struct sim s;
	n4_path *p = new_path(0, false);

	sim_start(&s, p, false);
	CHECK(!(sim_run(&s, 60000, 0, 0, 0) & (N4_PATH_KEEPALIVE | N4_PATH_RELAY_REFRESH)));
	n4_path_free(p);
	p = new_path(15, false);
	sim_start(&s, p, true);
	unsigned a = sim_run(&s, 31000, 1, 1, 0);
	CHECK(a & N4_PATH_RELAY_REFRESH);
	CHECK(!(a & N4_PATH_KEEPALIVE));
	CHECK_EQ(s.count[bit(N4_PATH_RELAY_REFRESH)], 2);
	n4_path_free(p);
}

TEST(path_nat_state_loss_mid_stream_recovers_after_dead_ms)
{
	struct sim s;
	struct n4_path_info info;
	n4_path *p = new_path(15, false);

	sim_start(&s, p, false);
	sim_run(&s, 3000, 1, 1, 0);
	uint64_t lost_at = s.t; /* the NAT forgets: our datagrams go, nothing comes */
	CHECK(sim_run(&s, 10000, 1, 0, N4_PATH_RECOVER) & N4_PATH_RECOVER);
	uint64_t took = s.first_at[bit(N4_PATH_RECOVER)] - lost_at;
	CHECK(took >= 2000 && took <= 2200);
	n4_path_get_info(p, &info);
	CHECK_EQ(info.attempt, N4_PATH_RECOVERING);
	CHECK(!info.told);
	CHECK(!info.by_stream);
	CHECK(info.silent_ms >= 2000);
	/* nothing more is asked while the attempt runs, keepalives apart */
	CHECK(!(sim_run(&s, 5000, 1, 0, 0) & ~(unsigned)N4_PATH_KEEPALIVE));
	n4_path_attempt_done(p, s.t, 0, false, s.tx, s.rx);
	n4_path_get_info(p, &info);
	CHECK_EQ(info.state, N4_PATH_DIRECT);
	CHECK_EQ(info.attempt, N4_PATH_NO_ATTEMPT);
	CHECK_EQ(info.failures, 0);
	/* the new path talks: nothing to do */
	CHECK(!(sim_run(&s, 10000, 1, 1, 0) & N4_PATH_RECOVER));
	n4_path_free(p);
}

TEST(path_one_way_stream_sender_is_never_judged_receiver_is)
{
	struct sim s;
	struct n4_path_info info;
	n4_path *snd = new_path(15, false), *rcv = new_path(15, false);

	sim_start(&s, snd, false);
	CHECK(!(sim_run(&s, 60000, 1, 0, 0) & N4_PATH_RECOVER));
	n4_path_free(snd);

	sim_start(&s, rcv, false);
	sim_run(&s, 3000, 0, 1, 0); /* a steady one-way stream arrives */
	uint64_t stopped = s.t;
	CHECK(sim_run(&s, 5000, 0, 0, N4_PATH_RECOVER) & N4_PATH_RECOVER);
	uint64_t took = s.first_at[bit(N4_PATH_RECOVER)] - stopped;
	CHECK(took >= 2000 && took <= 2200);
	n4_path_get_info(rcv, &info);
	CHECK(info.by_stream);
	n4_path_free(rcv);
}

TEST(path_a_short_burst_that_stops_is_not_a_stream)
{
	struct sim s;
	n4_path *p = new_path(15, false);

	sim_start(&s, p, false);
	sim_run(&s, 1000, 0, 1, 0); /* 1 s of data: under N4_STREAM_MS */
	CHECK(!(sim_run(&s, 30000, 0, 0, 0) & N4_PATH_RECOVER));
	n4_path_free(p);
}

TEST(path_strangers_notice_without_key_waits_for_silence_then_is_dropped)
{
	struct sim s;
	struct n4_path_info info;
	n4_path *p = new_path(15, false);

	sim_start(&s, p, false);
	sim_run(&s, 2000, 1, 1, 0);
	/* a stranger with our identifier says HELLO: the server tells us */
	n4_path_notice(p, s.t);
	uint64_t notice_at = s.t;
	unsigned a = sim_run(&s, 8000, 1, 1, 0); /* our peer keeps talking */
	CHECK(!(a & N4_PATH_RECOVER));
	CHECK(a & N4_PATH_NOTICE_IGNORED);
	uint64_t dropped = s.first_at[bit(N4_PATH_NOTICE_IGNORED)] - notice_at;
	CHECK(dropped >= 5000 && dropped <= 5100);
	/* a repeated notice does not restart the wait */
	n4_path_notice(p, s.t);
	uint64_t second = s.t;
	sim_run(&s, 3000, 1, 1, 0);
	n4_path_notice(p, s.t);
	a = sim_run(&s, 2100, 1, 1, 0);
	CHECK(a & N4_PATH_NOTICE_IGNORED);
	CHECK(s.first_at[bit(N4_PATH_NOTICE_IGNORED)] - second <= 5100);
	n4_path_get_info(p, &info);
	CHECK_EQ(info.attempt, N4_PATH_NO_ATTEMPT);
	n4_path_free(p);
}

TEST(path_notice_without_key_moves_once_the_peer_is_silent)
{
	struct sim s;
	struct n4_path_info info;
	n4_path *p = new_path(15, false);

	sim_start(&s, p, false);
	sim_run(&s, 2000, 1, 1, 0);
	uint64_t quiet = s.t; /* the peer's program restarted: its old socket is silent */
	n4_path_notice(p, s.t);
	CHECK(sim_run(&s, 3000, 0, 0, N4_PATH_RECOVER) & N4_PATH_RECOVER);
	uint64_t took = s.first_at[bit(N4_PATH_RECOVER)] - quiet;
	CHECK(took >= 1000 && took <= 1100);
	n4_path_get_info(p, &info);
	CHECK(info.told);
	n4_path_free(p);
}

TEST(path_notice_with_key_acts_at_once_and_recover_off_ignores_it)
{
	struct sim s;
	struct n4_path_cfg cfg;
	n4_path *p = new_path(15, true);

	sim_start(&s, p, false);
	sim_run(&s, 2000, 1, 1, 0);
	n4_path_notice(p, s.t);
	CHECK(sim_run(&s, 100, 1, 1, 0) & N4_PATH_RECOVER);
	n4_path_free(p);

	n4_path_cfg_init(&cfg);
	cfg.recover = false;
	cfg.keyed = true;
	p = n4_path_new(&cfg);
	sim_start(&s, p, false);
	n4_path_notice(p, s.t);
	/* nor does a dead path: recovery is off */
	sim_run(&s, 2000, 1, 1, 0);
	CHECK(!(sim_run(&s, 20000, 1, 0, 0) & N4_PATH_RECOVER));
	n4_path_free(p);
}

TEST(path_relayed_tries_direct_every_upgrade_s_and_moves)
{
	struct sim s;
	struct n4_path_info info;
	n4_path *p = new_path(15, false);

	sim_start(&s, p, true);
	uint64_t won = s.t;
	CHECK(sim_run(&s, 70000, 1, 1, N4_PATH_UPGRADE) & N4_PATH_UPGRADE);
	CHECK_EQ(s.first_at[bit(N4_PATH_UPGRADE)] - won, 60000);
	/* it came back relayed: nothing changes, the next try a minute later */
	n4_path_attempt_done(p, s.t, 0, true, s.tx, s.rx);
	n4_path_get_info(p, &info);
	CHECK_EQ(info.state, N4_PATH_RELAYED);
	uint64_t again = s.t;
	CHECK(sim_run(&s, 70000, 1, 1, N4_PATH_UPGRADE) & N4_PATH_UPGRADE);
	CHECK_EQ(s.first_at[bit(N4_PATH_UPGRADE)] - again, 60000);
	/* this time a direct punch won */
	n4_path_attempt_done(p, s.t, 0, false, s.tx, s.rx);
	n4_path_get_info(p, &info);
	CHECK_EQ(info.state, N4_PATH_DIRECT);
	unsigned a = sim_run(&s, 120000, 1, 1, 0);
	CHECK(!(a & (N4_PATH_UPGRADE | N4_PATH_RELAY_REFRESH)));
	CHECK(a & N4_PATH_KEEPALIVE);
	n4_path_free(p);
}

TEST(path_recovery_that_lands_on_a_relay_schedules_an_upgrade)
{
	struct sim s;
	struct n4_path_info info;
	n4_path *p = new_path(15, false);

	sim_start(&s, p, false);
	CHECK(sim_lose_path(&s));
	n4_path_attempt_done(p, s.t, 0, true, s.tx, s.rx);
	n4_path_get_info(p, &info);
	CHECK_EQ(info.state, N4_PATH_RELAYED);
	uint64_t landed = s.t;
	CHECK(sim_run(&s, 61000, 1, 1, N4_PATH_UPGRADE) & N4_PATH_UPGRADE);
	CHECK_EQ(s.first_at[bit(N4_PATH_UPGRADE)] - landed, 60000);
	n4_path_free(p);
}

TEST(path_repeated_failures_back_off_to_a_minute)
{
	struct sim s;
	struct n4_path_info info;
	n4_path *p = new_path(15, false);
	const unsigned want[] = { 2000, 4000, 8000, 16000, 32000, 60000, 60000 };

	sim_start(&s, p, false);
	CHECK(sim_lose_path(&s));
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		n4_path_attempt_done(p, s.t, -ETIMEDOUT, false, s.tx, s.rx);
		n4_path_get_info(p, &info);
		CHECK_EQ(info.backoff_ms, want[i]);
		CHECK_EQ(info.failures, i + 1);
		CHECK_EQ(info.state, N4_PATH_DIRECT); /* the old path stays */
		uint64_t failed = s.t;
		/* still dead: the next recovery comes after the backoff, not before
		 * (the dead-path rule needs its own 2 s first) */
		CHECK(sim_run(&s, 70000, 1, 0, N4_PATH_RECOVER) & N4_PATH_RECOVER);
		uint64_t gap = s.first_at[bit(N4_PATH_RECOVER)] - failed;
		unsigned floor = want[i] > 2000 ? want[i] : 2000;
		CHECK(gap >= floor && gap <= floor + 200);
	}
	/* a success resets the backoff */
	n4_path_attempt_done(p, s.t, 0, false, s.tx, s.rx);
	n4_path_get_info(p, &info);
	CHECK_EQ(info.backoff_ms, 0);
	CHECK_EQ(info.failures, 0);
	n4_path_free(p);
}

TEST(path_gives_up_after_the_configured_failures)
{
	struct sim s;
	struct n4_path_cfg cfg;
	struct n4_path_info info;

	n4_path_cfg_init(&cfg);
	cfg.give_up_after = 2;
	n4_path *p = n4_path_new(&cfg);
	sim_start(&s, p, false);
	CHECK(sim_lose_path(&s));
	n4_path_attempt_done(p, s.t, -ETIMEDOUT, false, s.tx, s.rx);
	CHECK(sim_run(&s, 10000, 1, 0, N4_PATH_RECOVER) & N4_PATH_RECOVER);
	n4_path_attempt_done(p, s.t, -ETIMEDOUT, false, s.tx, s.rx);
	unsigned a = sim_run(&s, 30000, 1, 0, 0);
	CHECK(a & N4_PATH_GIVE_UP);
	CHECK_EQ(s.count[bit(N4_PATH_GIVE_UP)], 1);
	CHECK(!(a & (N4_PATH_RECOVER | N4_PATH_KEEPALIVE)));
	CHECK_EQ(s.next_ms, 0);
	n4_path_get_info(p, &info);
	CHECK_EQ(info.state, N4_PATH_GONE);
	n4_path_free(p);
}

TEST(path_attempt_not_started_retries_after_two_seconds)
{
	struct sim s;
	n4_path *p = new_path(15, false);

	sim_start(&s, p, false);
	CHECK(sim_lose_path(&s));
	n4_path_attempt_not_started(p, s.t);
	uint64_t at = s.t;
	CHECK(sim_run(&s, 5000, 1, 0, N4_PATH_RECOVER) & N4_PATH_RECOVER);
	uint64_t gap = s.first_at[bit(N4_PATH_RECOVER)] - at;
	CHECK(gap >= 2000 && gap <= 2100);
	n4_path_free(p);
}

TEST(path_lost_server_connection_is_registered_again_then_every_ten_seconds)
{
	struct sim s;
	n4_path *p = new_path(15, false);

	sim_start(&s, p, false);
	/* never granted: nothing to register, even when told it was lost */
	CHECK(!(sim_run(&s, 20000, 1, 1, 0) & N4_PATH_REGISTER));
	n4_path_stay_lost(p, s.t);
	CHECK(!(sim_run(&s, 20000, 1, 1, 0) & N4_PATH_REGISTER));
	n4_path_stay_up(p);
	CHECK(!(sim_run(&s, 5000, 1, 1, 0) & N4_PATH_REGISTER));
	n4_path_stay_lost(p, s.t);
	CHECK(sim_run(&s, 100, 1, 1, 0) & N4_PATH_REGISTER);
	/* that registration failed: 10 s later, once */
	n4_path_stay_lost(p, s.t);
	uint64_t failed = s.t;
	CHECK(sim_run(&s, 20000, 1, 1, N4_PATH_REGISTER) & N4_PATH_REGISTER);
	CHECK_EQ(s.first_at[bit(N4_PATH_REGISTER)] - failed, 10000);
	n4_path_stay_up(p);
	CHECK(!(sim_run(&s, 30000, 1, 1, 0) & N4_PATH_REGISTER));
	n4_path_free(p);
}

TEST(path_an_attempt_takes_the_server_connection_along)
{
	struct sim s;
	n4_path *p = new_path(15, true);

	sim_start(&s, p, false);
	n4_path_stay_up(p);
	n4_path_notice(p, s.t);
	CHECK(sim_run(&s, 100, 1, 1, 0) & N4_PATH_RECOVER);
	/* the attempt failed and brought no new connection: register one */
	n4_path_attempt_done(p, s.t, -ETIMEDOUT, false, s.tx, s.rx);
	CHECK(sim_run(&s, 100, 1, 1, 0) & N4_PATH_REGISTER);
	n4_path_free(p);
}

TEST(path_before_its_win_and_with_a_bad_config_does_nothing)
{
	struct n4_path_cfg cfg;
	struct n4_path_todo todo;

	n4_path_cfg_init(&cfg);
	cfg.upgrade_s = 100000;
	errno = 0;
	CHECK(n4_path_new(&cfg) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(n4_path_new(NULL) == NULL);
	n4_path_cfg_init(&cfg);
	n4_path *p = n4_path_new(&cfg);
	CHECK(p);
	n4_path_notice(p, 1000);
	CHECK_EQ(n4_path_tick(p, 100000, 10, 0, &todo), 0);
	CHECK_EQ(todo.next_ms, 0);
	n4_path_free(p);
	n4_path_free(NULL);
}

TEST(path_keepalive_send_checks_its_arguments)
{
	struct sockaddr_in to = { .sin_family = AF_INET };

	CHECK_EQ(n4_path_keepalive_send(-1, (struct sockaddr *)&to, sizeof(to), "n4n4n4", 0),
		 -EINVAL);
	CHECK_EQ(n4_path_keepalive_send(-1, (struct sockaddr *)&to, sizeof(to), "toolongid", 2),
		 -EINVAL);
	CHECK_EQ(n4_path_keepalive_send(-1, NULL, 0, "n4n4n4", 2), -EINVAL);
	CHECK_EQ(n4_path_keepalive_send(-1, (struct sockaddr *)&to, sizeof(to), "n4n4n4", 2),
		 -EBADF);
}

TEST(path_a_stopped_stream_whose_recovery_failed_is_tried_again)
{
	struct sim s;
	n4_path *p = new_path(15, false);

	sim_start(&s, p, false);
	sim_run(&s, 3000, 0, 1, 0);
	CHECK(sim_run(&s, 5000, 0, 0, N4_PATH_RECOVER) & N4_PATH_RECOVER);
	n4_path_attempt_done(p, s.t, -ETIMEDOUT, false, s.tx, s.rx);
	uint64_t failed = s.t;
	CHECK(sim_run(&s, 5000, 0, 0, N4_PATH_RECOVER) & N4_PATH_RECOVER);
	uint64_t gap = s.first_at[bit(N4_PATH_RECOVER)] - failed;
	CHECK(gap >= 2000 && gap <= 2100);
	n4_path_free(p);
}

TEST(path_defaults_are_the_ones_the_option_table_states)
{
	struct n4_path_cfg cfg;

	n4_path_cfg_init(&cfg);
	CHECK_EQ(n4_opt_get(N4_OPT_KEEPALIVE)->def, cfg.keepalive_s);
	CHECK_EQ(n4_opt_get(N4_OPT_UPGRADE)->def, cfg.upgrade_s);
	CHECK(n4_opt_get(N4_OPT_UPGRADE)->min <= (long)cfg.upgrade_s);
}

TEST(path_our_sends_failing_recovers_though_the_peer_still_talks)
{
	struct sim s;
	struct n4_path_info info;
	n4_path *p = new_path(15, false);

	sim_start(&s, p, false);
	sim_run(&s, 3000, 1, 1, 0);
	/* Both ways still counted (the peer reaches us): the dead-path rule is quiet. */
	CHECK(!(sim_run(&s, 5000, 1, 1, 0) & N4_PATH_RECOVER));
	n4_path_send_failed(p, s.t);
	CHECK(sim_run(&s, 500, 1, 1, N4_PATH_RECOVER) & N4_PATH_RECOVER);
	CHECK(s.first_at[bit(N4_PATH_RECOVER)] - s.t <= 500);
	n4_path_get_info(p, &info);
	CHECK_EQ(info.attempt, N4_PATH_RECOVERING);
	CHECK(info.send_failed);
	CHECK(!info.told);
	n4_path_free(p);
}

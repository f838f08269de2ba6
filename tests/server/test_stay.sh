#!/usr/bin/env bash
# test_stay.sh - N4_EXT_STAY on the server, over loopback: connections kept after
# PEERINFO for the clients that asked, one REPUNCH to each when their identifier says
# HELLO again, closed after it; everyone else is closed after PEERINFO as always.
source "$(dirname "$0")/lib.sh"
need_bins
make -s "$BUILD/tests/stay_probe" >/dev/null || { notok "building stay_probe"; finish; exit 1; }
# stay_probe's verdicts, one "ok"/"FAIL" line each; a probe that stops early (a
# connection refused, a READY that never came) prints fewer, and that is a failure too.
VERDICTS=9

start_server "$BUILD/n4" || { notok "the server started"; finish; exit 1; }
"$BUILD/tests/stay_probe" "$SPORT" stay1 >"$TMP/stay.out" 2>&1
rc=$?
n_ok=0
while read -r verdict what; do
	if [[ $verdict == ok ]]; then
		ok "$what"
		n_ok=$((n_ok + 1))
	else
		notok "$verdict $what"
	fi
done <"$TMP/stay.out"
check "stay_probe exits 0 (status $rc)" [ "$rc" = 0 ]
check "stay_probe gave all $VERDICTS verdicts, each ok ($n_ok ok)" [ "$n_ok" = "$VERDICTS" ]
check "the server logged the REPUNCHes" grep -q "Repunch to" "$SLOG"
finish

#!/usr/bin/env bash
# test_stay.sh - N4_EXT_STAY on the server, over loopback: connections kept after
# PEERINFO for the clients that asked, one REPUNCH to each when their identifier says
# HELLO again, closed after it; everyone else is closed after PEERINFO as always.
source "$(dirname "$0")/lib.sh"
need_bins
make -s "$BUILD/tests/stay_probe" >/dev/null || exit 1

start_server "$BUILD/n4" || exit 1
"$BUILD/tests/stay_probe" "$SPORT" stay1 >"$TMP/stay.out" 2>&1
while read -r verdict what; do
	if [[ $verdict == ok ]]; then ok "$what"; else notok "$what"; fi
done <"$TMP/stay.out"
check "the server logged the REPUNCHes" grep -q "Repunch to" "$SLOG"
finish

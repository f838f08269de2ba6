#!/usr/bin/env bash
# test_flow.sh - FLOW notices (N4_CMD_FLOW) over kept connections, against the
# ASan+UBSan server on loopback: a FLOW from one kept connection reaches every
# other kept connection of its identifier (reserved byte 0x01, the same payload),
# never its sender nor another identifier's; the connections stay open; 100 at once
# pass at most a burst of 20; a FLOW nobody waits for is dropped; anything else on a
# kept connection, and a FLOW on any other connection, closes it; keyed identifiers
# are the key's derived id.  The status line counts flows= and flows_dropped=.
source "$(dirname "$0")/lib.sh"
need_bins
make -s "$BUILD/tests/flowctl" >/dev/null || { notok "building flowctl"; finish; exit 1; }
N4SAN=$(san_n4) || { notok "building the ASan+UBSan server"; finish; exit 1; }
check "the server under test is the ASan+UBSan build" sanitized "$N4SAN"
# flowctl's verdicts, one "ok"/"FAIL" line each; a run that stops early prints
# fewer, and that is a failure too.
VERDICTS=19

start_server "$N4SAN" --log-rate 0 || { notok "the server started"; finish; exit 1; }
before=$(status)
"$BUILD/tests/flowctl" "$SPORT" fl >"$TMP/flow.out" 2>&1
rc=$?
n_ok=0
while read -r verdict what; do
	if [[ $verdict == ok ]]; then
		ok "$what"
		n_ok=$((n_ok + 1))
	elif [[ $verdict != "#" ]]; then
		notok "$verdict $what"
	fi
done <"$TMP/flow.out"
check "flowctl exits 0 (status $rc)" [ "$rc" = 0 ]
check "flowctl gave all $VERDICTS verdicts, each ok ($n_ok ok)" [ "$n_ok" = "$VERDICTS" ]

st=$(status)
echo "# $st"
check "the status line had flows=0 flows_dropped=0 at the start" \
	grep -q " flows=0 flows_dropped=0" <<<"$before"
flows=$(sed -n 's/.* flows=\([0-9]*\) .*/\1/p' <<<"$st")
dropped=$(sed -n 's/.* flows_dropped=\([0-9]*\).*/\1/p' <<<"$st")
# Passed on: 1 + 2 back, the burst (about 20), 1 after it, 1 keyed.
check "flows= counts the FLOWs passed on ($flows)" [ "${flows:-0}" -ge 20 ] && [ "${flows:-0}" -le 30 ]
# Dropped: about 80 of the burst, the lone one, the plain client's beside the keyed pair.
check "flows_dropped= counts the FLOWs over the rate or with nobody to tell ($dropped)" \
	[ "${dropped:-0}" -ge 75 ] && [ "${dropped:-0}" -le 90 ]
prot=$(sed -n 's/.* protocol=\([0-9]*\).*/\1/p' <<<"$st")
check "bad messages on kept connections and FLOWs elsewhere counted as protocol ($prot)" \
	[ "${prot:-0}" -ge 4 ]
check "the server logged the FLOWs it passed on" grep -q "=> Flow from .* ports 40000 -> 5004, to 2 kept connections" "$SLOG"
check "server alive and exits 0 on SIGTERM" stop_server
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error' '$SLOG'"
finish

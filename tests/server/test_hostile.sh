#!/usr/bin/env bash
# test_hostile.sh - every hostile input of issue 5 against the server built with
# ASan+UBSan, each while a legitimate pair completes alongside: random bytes,
# partial messages, slow senders, HELLO floods, spoofed EXCHANGEs, junk datagrams,
# a third client for a paired identifier, half-open TCP, resets mid-pairing,
# rooms: registrations flooding from one source, broken registrations, joiners
# churning under a host that resets, guessed tickets, and a FLOW flood on a kept
# connection.  The server must stay up, count each case, close everything in time
# and leak no descriptor (and ASan must stay silent).
source "$(dirname "$0")/lib.sh"
need_bins
N4SAN=$(san_n4) || { notok "building the ASan+UBSan server"; finish; exit 1; }
check "the server under test is the ASan+UBSan build" sanitized "$N4SAN"
H=$BUILD/tests/hostile
LG=$BUILD/tests/loadgen

start_server "$N4SAN" --hello-timeout-ms 1000 --wait-timeout 2 --exchange-timeout-ms 1000 \
	--log-rate 0 || { notok "the server started"; finish; exit 1; }
fds0=$(fd_count)

legit() { # a legitimate pair (ours, then an original one) must complete meanwhile
	"$LG" -p "$SPORT" -c 1 -n 1 -q -t 10 >/dev/null && "$LG" -p "$SPORT" -c 1 -n 1 -q -t 10 --legacy >/dev/null
}

# alongside DESCRIPTION COUNTER HOSTILE-ARGS...: run the case in the background,
# a legitimate pair meanwhile, then wait for the case and for its counter.
alongside() {
	local d=$1 counter=$2
	shift 2
	"$H" "$SPORT" "$@" >"$TMP/h.out" 2>&1 &
	local hp=$!
	sleep 0.1
	check "$d: a legitimate pair completes alongside" legit
	wait "$hp"
	local rc=$?
	check "$d: the hostile client ran to its end (status $rc)" [ "$rc" = 0 ]
	if [[ -n $counter ]]; then
		local v=0 end=$((SECONDS + 5))
		while ((SECONDS < end)); do
			v=$(stat "$counter")
			((${v:-0} > 0)) && break
			sleep 0.2
		done
		check "$d: counted as $counter ($v)" [ "${v:-0}" -gt 0 ]
	fi
}

alongside "random bytes" bad_hello garbage 200
alongside "partial messages" hello_timeout partial 50 1500
alongside "slow sender, one byte a second" hello_timeout slow 20
alongside "HELLO flood from one IP, connections held" per_ip flood 1000 1000
alongside "HELLO flood from one IP, connect and close" rate flood 3000
alongside "many HELLOs on one connection" protocol hellos 1000
out=$("$H" "$SPORT" spoof)
echo "# $out"
check "EXCHANGEs spoofed from another IP do not take over a pair" grep -q "^ok" <<<"$out"
v=$(stat spoofed_udp)
check "spoofed EXCHANGEs counted as spoofed_udp ($v)" [ "${v:-0}" -ge 100 ]
alongside "junk datagrams" bad_udp udpjunk x 2
alongside "half-open TCP (client vanished without FIN)" "" halfopen 20
check "half-open TCP: dropped at the wait deadline" wait_until 6 bash -c \
	"[ \"\$(grep -c 'no partner within' '$SLOG')\" -ge 20 ]"

out=$("$H" "$SPORT" third)
echo "# $out"
check "a third client for an identifier already paired changes nothing" grep -q "^ok" <<<"$out"
out=$("$H" "$SPORT" reset)
echo "# $out"
check "a reset mid-pairing closes the partner at once" grep -q "^ok" <<<"$out"
v=$(stat partner_gone)
check "reset mid-pairing counted as partner_gone ($v)" [ "${v:-0}" -gt 0 ]

# Rooms.
out=$("$H" "$SPORT" roomflood 20)
echo "# $out"
check "room registrations from one source: 8 hosted, the rest refused" grep -q "^ok" <<<"$out"
v=$(stat refused)
check "... counted as room refusals ($v)" [ "${v:-0}" -ge 12 ]
alongside "broken room registrations (bad, twice, no extension, cut, no long id)" "" roomjunk 60
alongside "joiners churning (resets, malformed ROOM) under a host that resets" "" roomchurn 40
out=$("$H" "$SPORT" roomticket 30)
echo "# $out"
check "guessed tickets are refused and pair nobody with the held joiner" grep -q "^ok" <<<"$out"
# Kept connections: a FLOW flood disturbs neither the pairs nor other kept connections.
alongside "a FLOW flood from one kept connection" flows_dropped flowflood 50000
out=$(cat "$TMP/h.out")
echo "# $out"
check "a FLOW flood: other identifiers' FLOWs pass, the flooder's peer gets only the rate" \
	grep -q "^ok - flowflood" <<<"$out"

st=$(status)
check "the status line counts the rooms and their refusals" \
	grep -qE " rooms=[0-9]+ hosted=[1-9][0-9]* joins=[1-9][0-9]* refused=[1-9][0-9]+" <<<"$st"

check "every hostile client is gone after the deadlines" wait_until 8 bash -c \
	"[ \"\$(ls /proc/$SPID/fd | wc -l)\" -le $fds0 ]"
check "no descriptor leaked (before $fds0, after $(fd_count))" [ "$(fd_count)" -le "$fds0" ]
echo "# $(status)"
check "server alive and exits 0 on SIGTERM" stop_server
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error' '$SLOG'"
finish

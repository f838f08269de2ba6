#!/usr/bin/env bash
# test_load.sh - the server under load over loopback, with its default limits:
# 1,000 clients at once (500 pairs) completing thousands of pairs, our clients and
# original (pure v1) ones, every PEERINFO checked by the load generator; 10,000
# clients waiting at once; no descriptor left behind.
source "$(dirname "$0")/lib.sh"
need_bins

start_server "$BUILD/n4" || { notok "the server started"; finish; exit 1; }
fds0=$(fd_count)
LG=$BUILD/tests/loadgen

out=$("$LG" -p "$SPORT" -c 500 -n 5000 -j 2 -q -t 40)
echo "# $out"
check "1000 concurrent clients (ours): 5000 pairs, every PEERINFO right" grep -q "ok=5000 bad=0 failed=0" <<<"$out"

out=$("$LG" -p "$SPORT" -c 500 -n 3000 -j 2 -q -t 40 --legacy)
echo "# $out"
check "1000 concurrent original (v1) clients: 3000 pairs, every PEERINFO right" grep -q "ok=3000 bad=0 failed=0" <<<"$out"

out=$("$LG" -p "$SPORT" -c 200 -n 2000 -q -t 40 --legacy -a n4n4n4)
echo "# $out"
check "400 concurrent v1 clients all with the default identifier n4n4n4" grep -q "ok=2000 bad=0 failed=0" <<<"$out"

# 9,900 original clients at once (one generator process, so that it verifies every
# PEERINFO itself; two descriptors each fit the 20,000 limit), all n4n4n4: 10,000 pairs,
# not one wrong PEERINFO.
out=$("$LG" -p "$SPORT" -c 4950 -n 10000 -j 1 -q -t 60 --legacy -a n4n4n4)
echo "# $out"
check "9900 concurrent v1 clients, all n4n4n4: 10000 pairs, zero wrong PEERINFOs" grep -q "ok=10000 bad=0 failed=0" <<<"$out"

"$LG" -p "$SPORT" --hold 10000 -j 2 >"$TMP/hold.out" 2>&1 &
hold=$!
if wait_until 30 grep -q "holding 10000" "$TMP/hold.out"; then
	w=$(stat waiting)
	rss=$(awk '/VmRSS/ {print $2}' /proc/"$SPID"/status)
	echo "# waiting=$w, server RSS ${rss} kB"
	check "10000 clients waiting at once" [ "$w" = 10000 ]
	# ...and pairs still complete while they wait
	out=$("$LG" -p "$SPORT" -c 50 -n 500 -q -t 20)
	check "pairs complete while 10000 clients wait" grep -q "ok=500 bad=0 failed=0" <<<"$out"
else
	notok "10000 clients waiting at once: $(cat "$TMP/hold.out")"
fi
kill "$hold" 2>/dev/null
wait "$hold" 2>/dev/null
check "waiting clients that leave are forgotten" wait_until 10 bash -c "[ \"\$(ls /proc/$SPID/fd | wc -l)\" -le $fds0 ]"
check "no descriptor leaked (before $fds0, after $(fd_count))" [ "$(fd_count)" -le "$fds0" ]
st=$(status)
echo "# $st"
check "nobody refused for a limit under legitimate load" grep -q "full=0 per_ip=0 rate=0" <<<"$st"
check "server exits 0 on SIGTERM" stop_server

# Original clients that really share one IP and the identifier (all from 127.0.0.1,
# per-source caps off): their READYs go out one at a time per IP, late copies of a
# finished client's EXCHANGE are recognised by their port, and no PEERINFO is crossed.
start_server "$BUILD/n4" --max-per-ip 0 --conn-rate 0 || { notok "the server started"; finish; exit 1; }
out=$("$LG" -p "$SPORT" -c 20 -n 400 -q -t 40 --legacy -a n4n4n4 --ips 1)
echo "# $out"
check "40 v1 clients on one IP, all n4n4n4: 400 pairs, zero wrong PEERINFOs" grep -q "ok=400 bad=0 failed=0" <<<"$out"
check "server (no limits) exits 0 on SIGTERM" stop_server
finish

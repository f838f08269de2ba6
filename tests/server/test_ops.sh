#!/usr/bin/env bash
# test_ops.sh - operating the server: SIGUSR1 status line, graceful shutdown on
# SIGTERM (stop accepting, let a pair in the exchange finish, exit 0), IPv6 and
# IPv4 on one socket, IPv4-only, and a valgrind run that must find no leak.
source "$(dirname "$0")/lib.sh"
need_bins
H=$BUILD/tests/hostile
LG=$BUILD/tests/loadgen

start_server "$BUILD/n4" || { notok "the server started"; finish; exit 1; }
st=$(status)
echo "# $st"
check "SIGUSR1 logs one status line with waiting, pairs and rejects by reason" \
	grep -qE "^clients=[0-9]+ .*waiting=[0-9]+ .*pairs=[0-9]+ .*rejects: bad_hello=[0-9]+ .*per_ip=[0-9]+ rate=[0-9]+" <<<"$st"
check "the start line says how many clients it can hold" grep -qE "up to [0-9]+ clients" "$SLOG"

if [[ -e /proc/net/if_inet6 ]] && ping -6 -c1 -W1 ::1 >/dev/null 2>&1 || ip -6 addr show lo 2>/dev/null | grep -q "::1"; then
	# all from ::1, one source: stay within the per-source burst (64)
	out=$("$LG" -p "$SPORT" -H ::1 -c 5 -n 25 -q -t 20)
	echo "# $out"
	check "clients over IPv6 (EXCHANGE over IPv4 with a token) pair" grep -q "ok=25 bad=0 failed=0" <<<"$out"
	out=$("$LG" -p "$SPORT" -H 127.0.0.1 -c 20 -n 200 -q -t 20 --legacy)
	check "clients over IPv4 on the same dual-stack socket pair" grep -q "ok=200 bad=0 failed=0" <<<"$out"
else
	echo "skip - needs root: no IPv6 loopback (::1) for the IPv6 cases (tests/run.sh enables it as root)"
fi

# Graceful shutdown: a pair in the exchange finishes, waiting clients are closed,
# new connections are refused, exit status 0.
# at_least NAME N: the counter NAME of a fresh status line is N or more.
at_least() { local v; v=$(stat "$1") && [[ -n $v ]] && ((v >= $2)); }
"$H" "$SPORT" slowpair 800 >"$TMP/slow.out" 2>&1 &
hp=$!
check "a pair is in the exchange before SIGTERM" wait_until 5 grep -q "paired" "$TMP/slow.out"
"$H" "$SPORT" partial 3 30000 & # held open longer than this test: only the server closes them
# One client that said a whole HELLO and waits for a partner, from an address of its
# own (127.0.0.1 has used up its per-source rate; the log rate-limits its HELLO lines,
# so the status counts it): socat ends when the server closes
# the connection (FIN or RST), and only then.  (hostile's partial clients are half a
# HELLO in.)
{ printf '\001\000wait01' && sleep 30; } |
	socat - TCP4:127.0.0.1:"$SPORT",bind=127.0.0.9 >/dev/null 2>"$TMP/waiter.err" &
waiter=$!
check "before SIGTERM: the partial clients are connected" wait_until 5 at_least connecting 3
check "before SIGTERM: ... and ss shows them" \
	test "$(ss -tnH state established src 127.201.0.0/16 dst 127.0.0.1:"$SPORT" | wc -l)" -ge 3
check "before SIGTERM: the whole-HELLO client is waiting" wait_until 5 at_least waiting 1
kill -TERM "$SPID"
# Its "shutting down" line may fall to the log's rate limit after the floods above:
# the effect is the listening socket going away.
check "SIGTERM: the server closes its listening socket" \
	wait_until 5 bash -c "! ss -tlnH 'sport = :$SPORT' | grep -q ."
check "after SIGTERM no new connection is accepted" bash -c "! exec 3<>/dev/tcp/127.0.0.1/$SPORT" 2>/dev/null
check "after SIGTERM the waiting client's connection is closed (its socat ends)" \
	wait_until 5 bash -c "! kill -0 $waiter 2>/dev/null"
wait "$hp"
check "after SIGTERM a pair in the exchange still completes" grep -q "^ok" "$TMP/slow.out"
wait_until 10 bash -c "! kill -0 $SPID 2>/dev/null"
wait "$SPID"
rc=$?
SPID=
check "server exits 0 after SIGTERM (status $rc)" [ "$rc" = 0 ]
check "the last line is the final status" bash -c "tail -1 '$SLOG' | grep -q 'stopped: clients='"

start_server "$BUILD/n4" --ipv4-only || { notok "the server started"; finish; exit 1; }
check "--ipv4-only listens on IPv4 only" grep -q "(IPv4)" "$SLOG"
out=$("$LG" -p "$SPORT" -c 5 -n 20 -q -t 10)
check "--ipv4-only serves IPv4 clients" grep -q "ok=20 bad=0 failed=0" <<<"$out"
kill -INT "$SPID"
check "SIGINT stops it within 10 s" wait_until 10 bash -c "! kill -0 $SPID 2>/dev/null"
kill -9 "$SPID" 2>/dev/null # one that did not stop must not hang the wait below
wait "$SPID"
rc=$?
SPID=
check "SIGINT stops it with status 0 too (status $rc)" [ "$rc" = 0 ]

if command -v valgrind >/dev/null; then
	SLOG=$TMP/valgrind.log
	valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
		--error-exitcode=9 "$BUILD/n4" -s -l 0 --hello-timeout-ms 300 2>"$SLOG" &
	SPID=$!
	if wait_until 30 grep -q "serving on" "$SLOG"; then
		SPORT=$(grep -o 'port [0-9]*' "$SLOG" | head -1 | cut -d' ' -f2)
		"$LG" -p "$SPORT" -c 10 -n 50 -q -t 30 >/dev/null
		"$H" "$SPORT" garbage 10
		"$H" "$SPORT" partial 5 200
		"$H" "$SPORT" reset >/dev/null
		"$LG" -p "$SPORT" --hold 20 >"$TMP/hold.out" &
		lp=$!
		check "valgrind: 20 clients held open before they vanish" \
			wait_until 30 grep -q "holding 20 clients" "$TMP/hold.out"
		kill "$lp"
		wait "$lp"
		stop_server
		rc=$?
		check "valgrind: no leak and no error in a short server run (status $rc)" [ "$rc" = 0 ]
		grep -E "definitely lost|indirectly lost|ERROR SUMMARY|All heap blocks" "$SLOG" | sed 's/^/# /'
	else
		notok "valgrind: server did not start"
	fi
else
	echo "skip - valgrind not installed: leak check (tests/deps.sh installs it)"
fi
finish

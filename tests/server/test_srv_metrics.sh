#!/usr/bin/env bash
# test_srv_metrics.sh - `n4 -s --metrics`: the endpoint's output passes
# `promtool check metrics`, and hostile HTTP clients (slow, oversized, garbage,
# more connections than the cap, a connect flood) cannot hurt the rendezvous: real
# pairs complete meanwhile, every hostile connection is closed in time, no
# descriptor is left, and the ASan+UBSan server stays silent.
source "$(dirname "$0")/lib.sh"
need_bins
N4SAN=$(san_n4) || { notok "building the ASan+UBSan server"; finish; exit 1; }
check "the server under test is the ASan+UBSan build" sanitized "$N4SAN"
LG=$BUILD/tests/loadgen

start_server "$N4SAN" --metrics 127.0.0.1:0 || { notok "the server started"; finish; exit 1; }
MPORT=$(sed -n 's/.*metrics on .*, TCP \([0-9]*\): GET \/metrics.*/\1/p' "$SLOG" | head -1)
check "the server logs the metrics port" [ -n "$MPORT" ]
URL=http://127.0.0.1:$MPORT/metrics
fds0=$(fd_count)

scrape() { curl -s -m 5 "$URL"; }
metric() { # NAME{LABELS}: its value in a fresh scrape
	scrape | awk -v k="$1" '$1 == k { print $2 }'
}

out=$("$LG" -p "$SPORT" -c 2 -n 4 -q -t 10)
check "pairs complete before scraping" grep -q "ok=4 bad=0 failed=0" <<<"$out"
scrape >"$TMP/m1"
check "GET /metrics answers with counters" grep -q '^n4_pairs_total 4$' "$TMP/m1"
if command -v promtool >/dev/null; then
	promtool check metrics <"$TMP/m1" >"$TMP/promtool.out" 2>&1
	rc=$?
	sed 's/^/# /' "$TMP/promtool.out"
	check "promtool check metrics passes (status $rc)" [ "$rc" = 0 ]
else
	notok "promtool missing (tests/deps.sh installs prometheus)"
fi
hdr=$(curl -s -m 5 -D - -o /dev/null "$URL" | tr -d '\r')
check "Content-Type is the Prometheus text format 0.0.4" \
	grep -q '^Content-Type: text/plain; version=0.0.4' <<<"$hdr"
check "other paths are 404" [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/")" = 404 ]
check "other methods are 405" [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST "$URL")" = 405 ]

# ---- hostile content while a real pair completes: oversized heads, garbage
pids=()
big=$(head -c 65536 /dev/zero | tr '\0' 'A')
for ((i = 0; i < 6; i++)); do
	(exec 3<>/dev/tcp/127.0.0.1/"$MPORT" && printf '%s' "$big" >&3; cat <&3 >/dev/null) 2>/dev/null &
	pids+=($!)
	(exec 3<>/dev/tcp/127.0.0.1/"$MPORT" && head -c 100 /dev/urandom | tr -d '\n' >&3 &&
		printf '\r\n\r\n' >&3; cat <&3 >/dev/null) 2>/dev/null &
	pids+=($!)
done
out=$("$LG" -p "$SPORT" -c 1 -n 2 -q -t 10)
check "pairs complete alongside oversized and garbage requests" grep -q "ok=2 bad=0 failed=0" <<<"$out"
wait "${pids[@]}"
scrape >"$TMP/m2"
v() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/m2"; }
check "oversized heads got 431 (too_large=$(v 'n4_metrics_requests_total{result="too_large"}'))" \
	[ "$(v 'n4_metrics_requests_total{result="too_large"}')" = 6 ]
check "garbage got 400 (bad_request=$(v 'n4_metrics_requests_total{result="bad_request"}'))" \
	[ "$(v 'n4_metrics_requests_total{result="bad_request"}')" = 6 ]

# ---- every slot taken: more idle connections than the cap (16, the rest are
# reset at accept), slow clients (a byte a second, the attack's own pace, never a
# complete head) and a connect flood, while real pairs complete.
(
	fds=()
	for ((i = 0; i < 40; i++)); do
		exec {fd}<>/dev/tcp/127.0.0.1/"$MPORT" && fds+=("$fd")
	done
	echo "holding ${#fds[@]}" >"$TMP/held"
	exec sleep 30
) 2>/dev/null &
holder=$!
pids=()
for ((i = 0; i < 4; i++)); do
	(
		exec 3<>/dev/tcp/127.0.0.1/"$MPORT" || exit 0
		for ((j = 0; j < 8; j++)); do
			printf 'G' >&3 || exit 0
			sleep 1
		done
	) 2>/dev/null &
	pids+=($!)
done
wait_until 10 test -s "$TMP/held"
echo "# $(cat "$TMP/held") connections"
for ((i = 0; i < 200; i++)); do
	(exec 3<>/dev/tcp/127.0.0.1/"$MPORT") 2>/dev/null
done &
pids+=($!)
t0=$(date +%s%N)
out=$("$LG" -p "$SPORT" -c 2 -n 10 -q -t 10)
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# $out"
check "10 pairs complete while hostile HTTP clients hold every slot ($ms ms)" \
	bash -c "grep -q 'ok=10 bad=0 failed=0' <<<'$out' && ((ms < 5000))"
wait "${pids[@]}"
# The holder keeps its connections open: the server closes them at their deadline
# (5 s), and only then can a scrape get a slot again.
check "after the deadline the endpoint answers again" \
	wait_until 15 bash -c "curl -s -m 2 '$URL' | grep -q '^n4_pairs_total 16$'"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
scrape >"$TMP/m2"
echo "# $(grep '^n4_metrics_requests_total' "$TMP/m2" | tr '\n' ' ')"
check "connections over the cap were reset (busy=$(v 'n4_metrics_requests_total{result="busy"}'))" \
	[ "$(v 'n4_metrics_requests_total{result="busy"}')" -gt 0 ]
check "idle and slow clients were closed at the deadline (timeout=$(v 'n4_metrics_requests_total{result="timeout"}'))" \
	[ "$(v 'n4_metrics_requests_total{result="timeout"}')" -gt 0 ]
check "no descriptor left behind ($(fd_count) now, $fds0 before)" wait_until 10 bash -c "(( \$(ls /proc/$SPID/fd | wc -l) <= $fds0 ))"
stop_server
rc=$?
check "the server exits 0 on SIGTERM (status $rc)" [ "$rc" = 0 ]
check "ASan and UBSan stayed silent" bash -c "! grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' '$SLOG'"
finish

#!/usr/bin/env bash
# bench/server.sh - the rendezvous server's benchmark (not a test): completed pairs
# per second with 1,000 and 10,000 clients at once, and server memory per waiting
# client, ours against bench/server_baseline.c (blocking, one pair at a time) in the
# same run, both fed by tests/helpers/loadgen.c over loopback.  Prints a table.
#   PAIRS=20000 bench/server.sh
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${N4_BUILD:-build}
PAIRS=${PAIRS:-20000}
make -s "$BUILD/n4" "$BUILD/tests/loadgen" "$BUILD/bench/server_baseline" >/dev/null || exit 1
TMP=$(mktemp -d /tmp/n4-bench.XXXX)
SPID=
trap '[[ -n $SPID ]] && kill -9 $SPID 2>/dev/null; rm -rf "$TMP"' EXIT
LG=$BUILD/tests/loadgen

start() { # log-file command...
	local log=$1
	shift
	"$@" 2>"$log" &
	SPID=$!
	for _ in $(seq 200); do
		grep -q "serving on" "$log" && break
		sleep 0.05
	done
	PORT=$(grep -o 'port [0-9]*' "$log" | head -1 | cut -d' ' -f2)
}
stop() { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=; }
cpu_ticks() { awk '{print $14+$15}' /proc/"$SPID"/stat; }
rss_kb() { awk '/VmRSS/ {print $2}' /proc/"$SPID"/status; }

# run NAME CLIENTS LOADGEN-ARGS...: one throughput measurement, one table row.
run() {
	local name=$1 clients=$2
	shift 2
	local t0 out c1 hz
	hz=$(getconf CLK_TCK)
	t0=$(cpu_ticks)
	out=$("$LG" -p "$PORT" -c $((clients / 2)) -j 2 -q "$@" 2>/dev/null)
	c1=$(cpu_ticks)
	local rate ok el lcpu
	rate=$(grep -o 'pairs_per_s=[0-9]*' <<<"$out" | cut -d= -f2)
	ok=$(grep -o ' ok=[0-9]*' <<<"$out" | cut -d= -f2)
	el=$(grep -o 'elapsed_s=[0-9.]*' <<<"$out" | cut -d= -f2)
	lcpu=$(grep -o 'cpu_s=[0-9.]*' <<<"$out" | cut -d= -f2)
	local scpu
	scpu=$(awk -v t=$((c1 - t0)) -v hz="$hz" -v e="$el" 'BEGIN { if (e > 0) printf "%.0f%%", 100 * t / hz / e; else print "-" }')
	local gcpu
	gcpu=$(awk -v c="$lcpu" -v e="$el" 'BEGIN { if (e > 0) printf "%.0f%%", 100 * c / e; else print "-" }')
	printf "%-34s %8s %10s %10s %10s %10s\n" "$name" "$clients" "${rate:-0}" "${ok:-0}" "$scpu" "$gcpu"
}

# hold NAME CLIENTS: RSS growth of the server per waiting client.
hold() {
	local name=$1 n=$2 r0 r1
	r0=$(rss_kb)
	"$LG" -p "$PORT" --hold "$n" -j 2 >"$TMP/hold.out" 2>&1 &
	local lp=$!
	for _ in $(seq 600); do
		grep -q "holding" "$TMP/hold.out" && break
		sleep 0.05
	done
	sleep 0.5
	r1=$(rss_kb)
	kill "$lp"
	wait "$lp" 2>/dev/null
	local held
	held=$(grep -o 'held=[0-9]*' "$TMP/hold.out" | cut -d= -f2)
	printf "%-34s %8s %14s %14s\n" "$name" "$n" "$(awk -v a="$r0" -v b="$r1" -v n="$n" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')" "${held:-0}"
}

echo "n4 server benchmark, $(nproc) cores, loopback, $PAIRS pairs per run"
echo "(server cpu / loadgen cpu: share of one core over the run; the loadgen's 2 workers"
echo " together.  Whichever side is near its limit is the bottleneck.)"
printf "\n%-34s %8s %10s %10s %10s %10s\n" "throughput" "clients" "pairs/s" "pairs ok" "server" "loadgen"
for n in 1000 10000; do
	start "$TMP/ours.log" "$BUILD/n4" -s -l 0
	run "ours, our clients (token)" "$n" -n "$PAIRS" -t 60
	run "ours, v1 clients, ident n4n4n4" "$n" -n "$PAIRS" -t 60 --legacy -a n4n4n4
	stop
	start "$TMP/base.log" "$BUILD/bench/server_baseline" 0
	run "baseline, v1 clients, n4n4n4" "$n" -n "$PAIRS" -t 60 --legacy -a n4n4n4
	stop
done
printf "\n%-34s %8s %14s %14s\n" "memory" "waiting" "bytes/client" "held"
for n in 1000 10000; do
	start "$TMP/ours.log" "$BUILD/n4" -s -l 0
	hold "ours (server RSS growth)" "$n"
	stop
done
echo "baseline: holds one client at a time; the others wait in the kernel's listen"
echo "backlog (at most net.core.somaxconn), so it has no per-client memory to show and"
echo "cannot hold 10,000 waiting clients at all."

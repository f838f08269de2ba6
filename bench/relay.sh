#!/usr/bin/env bash
# bench/relay.sh - the relay's benchmark (not a test), side by side in one run:
#   lab (root):  one pair punched directly vs the same NATs relayed through the
#                server: datagrams/s and Mbit/s (one flat-out sender, 1000-byte
#                datagrams), round trips p50/p99, server CPU per relayed Mbit/s;
#   loopback:    round trips direct vs relayed (added latency p50/p99);
#   loopback:    1,000 relayed pairs at once (bench/relay_load.c): datagrams
#                forwarded per second and per CPU second of the relay's thread.
#   N=200000 bench/relay.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
BUILD=${N4_BUILD:-build}
N=${N:-200000}
make -s "$BUILD/n4" "$BUILD/tests/udpflow" "$BUILD/bench/relay_load" >/dev/null || exit 1
FLOW=$BUILD/tests/udpflow
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' /proc/"$1"/stat; }

# ---- lab: direct vs relayed ----
if [[ $(id -u) == 0 ]]; then
	source tests/lab/lib.sh
	source tests/lab/punch_lib.sh
	trap 'lab_down' EXIT
	lab_up --nat-a cone --nat-b cone >/dev/null || exit 1
	printf '\n| lab, one pair (cone/cone) | datagrams/s | Mbit/s | delivered | sent/s | rtt p50 us | rtt p99 us | server CPU %% | CPU %% per Mbit/s |\n'
	printf '|---|---|---|---|---|---|---|---|---|\n'
	for mode in direct relayed direct2 relayed2; do
		lab_flush
		if [[ $mode == relayed* ]]; then
			start_server --relay-after 0 --relay-rate 0 || exit 1
		else
			start_server --no-relay || exit 1
		fi
		run_pair "$mode" -a "b$RANDOM" -t 20 || { echo "| $mode | no WIN |"; stop_server; continue; }
		la=$(local_port "$LOG_A") lb=$(local_port "$LOG_B") peer=$(peer_addr "$LOG_A")
		rx=$(lab_bg b "$LAB_DIR/$mode.rx" "$FLOW" recv "$lb" 1500 30)
		lab_wait_for lab_exec b sh -c "ss -ulnH | grep -q ':$lb '" --timeout 5 >/dev/null
		t0=$(ticks "$SRV_PID")
		tx=$(lab_exec a "$FLOW" send "$la" "$peer" "$N" 1000 0)
		wait_pids 40 "$rx"
		t1=$(ticks "$SRV_PID")
		read -r _ got _ bytes _ pps _ mbit < "$LAB_DIR/$mode.rx"
		secs=$(sed -nE 's/sent [0-9]+ in ([0-9.]+) s/\1/p' <<<"$tx")
		sps=$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
		# CPU over the receiver's active span (first to last datagram)
		span=$(awk -v g="$got" -v p="$pps" 'BEGIN { print (p > 0 ? g / p : 0) }')
		cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v s="$span" 'BEGIN { printf "%.0f", (s > 0 ? 100 * t / hz / s : 0) }')
		per=$(awk -v c="$cpu" -v m="$mbit" 'BEGIN { printf "%.2f", (m > 0 ? c / m : 0) }')
		ep=$(lab_bg b "$LAB_DIR/$mode.echo" "$FLOW" echo "$lb" 8)
		sleep 0.2 # the echo binds its port; a lost first ping would only count as lost
		read -r _ _ p50 _ p99 _ lost < <(lab_exec a "$FLOW" ping "$la" "$peer" 2000 100 1000)
		lab_stop_pid "$ep"
		[[ $mode == direct* ]] && cpu=- per=-
		printf '| %s | %s | %s | %s of %s | %s | %s | %s | %s | %s |\n' "$mode" "$pps" "$mbit" "$got" "$N" "$sps" "$p50" "$p99" "$cpu" "$per"
		stop_server
	done
	lab_down
	trap - EXIT
else
	echo "(lab part skipped: needs root)"
fi

# ---- loopback: added latency ----
TMP=$(mktemp -d /tmp/n4-relay-bench.XXXX)
SPID=
trap '[[ -n $SPID ]] && kill $SPID 2>/dev/null; rm -rf "$TMP"' EXIT
"$BUILD/n4" -s -l 0 --relay-after 0 --relay-rate 0 2>"$TMP/srv.log" &
SPID=$!
for _ in $(seq 100); do grep -q "serving on" "$TMP/srv.log" && break; sleep 0.05; done
port=$(grep -o 'port [0-9]*' "$TMP/srv.log" | head -1 | cut -d' ' -f2)
"$BUILD/n4" -c -h 127.0.0.1 -p "$port" -a blo -b 0 -n 1 -t 10 >"$TMP/a.log" 2>&1 &
ca=$!
"$BUILD/n4" -c -h 127.0.0.1 -p "$port" -a blo -b 0 -n 1 -t 10 >"$TMP/b.log" 2>&1
wait "$ca"
lp() { sed -nE 's/.*Local port: +([0-9]+).*/\1/p' "$1"; }
la=$(lp "$TMP/a.log") lb=$(lp "$TMP/b.log")
relay=$(sed -nE 's/.*Peer address: +([0-9.]+:[0-9]+).*/\1/p' "$TMP/a.log")
"$FLOW" echo "$lb" 6 &
ep=$!
sleep 0.2
printf '\n| loopback, 100-byte pings | rtt p50 us | rtt p99 us | lost |\n|---|---|---|---|\n'
for mode in direct relayed direct relayed; do
	dst=127.0.0.1:$lb
	[[ $mode == relayed ]] && dst=$relay
	read -r _ _ p50 _ p99 _ lost < <("$FLOW" ping "$la" "$dst" 3000 100 300)
	printf '| %s | %s | %s | %s |\n' "$mode" "$p50" "$p99" "$lost"
done
kill "$ep" 2>/dev/null
kill "$SPID"
wait "$SPID" 2>/dev/null
SPID=

# ---- loopback: 1,000 pairs ----
printf '\n| 1,000 relayed pairs, 200-byte datagrams | burst | forwarded/s | relay CPU s | forwarded per CPU s |\n|---|---|---|---|---|\n'
for burst in 1 4 16; do
	out=$("$BUILD/bench/relay_load" 1000 3 200 "$burst" | tail -n 1)
	f() { sed -nE "s/.* $1=([0-9.]+).*/\1/p" <<<"$out"; }
	printf '| loopback | %s | %s | %s | %s |\n' "$burst" "$(f dgram_per_s)" "$(f relay_cpu_s)" "$(f dgram_per_cpu_s)"
done

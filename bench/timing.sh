#!/usr/bin/env bash
# bench/timing.sh - the figures the lab tests used to hold against tight thresholds
# (issue 23: speed belongs here, the tests keep bounds a loaded machine cannot break).
# Not a test: it prints numbers and never fails on them.  In one NAT lab (inc/inc):
#  1. AGAIN -> next HELLO: a keyed client whose partner leaves before PEERINFO is told
#     AGAIN; ms until it says HELLO again (test_lab_trust.sh bounds it below a failed
#     round's 1 s pause);
#  2. bind() under N4_LISTEN with no client anywhere, in ms (test_shim_sessions.sh
#     requires only that it returns);
#  3. the longest read() after poll() in netcat's pattern, the peer sending every
#     100 ms with a late PUNCH every 5th datagram (test_shim_sessions.sh: < 200 ms with
#     a 400 ms interval);
#  4. a later send on a socket whose rendezvous failed, in ms, against the rendezvous
#     itself (tests/helpers/shim_eintr.c: under half of it);
#  5. UDP round trips a <-> srv with a 20 ms WAN delay each way (test_lab.sh: the
#     fastest in [40, 80) ms).
# LAN WIN times are bench/lan.sh's.
# usage: bench/timing.sh [-n TRIALS]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/lab/lib.sh"
source "$here/../tests/lab/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
PROG=$N4_BIN/tests/shim_session
PH=192.0.2.77:7777
TRIALS=5
while getopts "n:" o; do
	case $o in
	n) TRIALS=$OPTARG ;;
	*) echo "usage: $0 [-n TRIALS]" >&2; exit 2 ;;
	esac
done
lab_require_root || exit 1
trap lab_down EXIT
lab_up --nat-a inc --nat-b inc >/dev/null || exit 1
start_server || exit 1

# stats: min / median / max of the numbers on stdin, or "no samples".
stats() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "no samples"; exit }
		printf "min %s  median %s  max %s  (%d samples)\n", v[1], v[int((NR + 1) / 2)], v[NR], NR }'
}

# 1. AGAIN -> HELLO
K=$LAB_DIR/k
(umask 077 && "$N4" genkey >"$K") || exit 1
ID=$("$N4" keyid "$K" -a room) LONG=$("$N4" keyid "$K" -a room --long)
for ((i = 1; i <= TRIALS; i++)); do
	lab_flush
	log=$LAB_DIR/again-$i.log
	n0=$(grep -c "=> Keyid from" "$SRV_LOG")
	imp=$(lab_bg b "$LAB_DIR/imp-$i.out" "$N4_BIN/tests/impostor" "$LAB_SRV_IP" 1721 "$ID" \
		"$LONG" 4 "$LAB_DIR/imp-$i.bytes" leave)
	lab_wait_for bash -c "[ \$(grep -c '=> Keyid from' '$SRV_LOG') -gt $n0 ]" --timeout 5 ||
		continue
	pa=$(client a "$log" -k "$K" -a room -t 4)
	wait_pids 10 "$pa" "$imp" || kill "$pa" "$imp" 2>/dev/null
	awk -F'[][ ,:]+' '
		function ms() { return (($3 * 60 + $4) * 60 + $5) * 1000 + $6 }
		/called this pairing off/ { t = ms(); next }
		t && /<= Hello/ { print ms() - t; exit }' "$log"
done | stats | sed 's/^/AGAIN -> HELLO (ms): /'

# 2. bind() under N4_LISTEN, nobody around
for ((i = 1; i <= TRIALS; i++)); do
	log=$LAB_DIR/bind-$i.log
	lab_exec b env N4_SERVER="$LAB_SRV_IP" N4_IDENT="bd$i" N4_LISTEN=5000 LD_PRELOAD="$SHIM" \
		timeout 10 "$PROG" -l 5000 -i 0 -d 1 >"$log" 2>&1
	sed -nE 's/^bind ([0-9]+).*/\1/p' "$log"
done | stats | sed 's/^/bind under N4_LISTEN (ms): /'

# 3. read() after poll(), the peer every 100 ms with late PUNCHes
for ((i = 1; i <= TRIALS; i++)); do
	lab_flush
	la=$LAB_DIR/rb-$i-a.log lb=$LAB_DIR/rb-$i-b.log
	pb=$(lab_bg b "$lb" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="rb$i" N4_PEER="$PH" N4_LISTEN=5000 \
		LD_PRELOAD="$SHIM" "$PROG" -l 5000 -p "$PH" -d 5 -P)
	pa=$(lab_bg a "$la" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="rb$i" N4_PEER="$PH" \
		LD_PRELOAD="$SHIM" "$PROG" -c "$PH" -d 4 -K)
	wait_pids 20 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	sed -nE 's/.*readblock ([0-9]+).*/\1/p' "$lb"
done | stats | sed 's/^/longest read() after poll (ms): /'

# 4. a later send on a failed socket, against the failed rendezvous
for ((i = 1; i <= TRIALS; i++)); do
	lab_exec a env N4_SERVER="$LAB_SRV_IP" N4_IDENT="ei$i" N4_TIMEOUT=2 LD_PRELOAD="$SHIM" \
		"$N4_BIN/tests/shim_eintr" "$LAB_SRV_IP:5000" 2>/dev/null |
		sed -nE 's/.*later send fails at once: .* after ([0-9]+) ms \(the rendezvous took ([0-9]+) ms\).*/\1 \2/p'
done | awk '{ print "later send " $1 " ms, the failed rendezvous " $2 " ms" }'

# 5. round trips with 20 ms each way, over one socket (socat's start-up not counted)
rtts() {
	local i t0 t1 line to from pid
	coproc RTT { exec ip netns exec "$(lab_ns a)" socat - "UDP:$LAB_SRV_IP:7100"; }
	pid=$RTT_PID
	exec {to}>&"${RTT[1]}" {from}<&"${RTT[0]}"
	for ((i = 0; i <= TRIALS; i++)); do
		t0=$EPOCHREALTIME
		printf 'x%d\n' "$i" >&"$to" && read -r -t 2 line <&"$from" && [[ $line == "x$i" ]] || break
		t1=$EPOCHREALTIME
		((i == 0)) && continue # ARP
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'
	done
	exec {to}>&- {from}<&-
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
if lab_set_delay 20; then
	echo_pid=$(lab_bg srv "$LAB_DIR/echo.log" socat UDP-LISTEN:7100 PIPE)
	if lab_wait_for lab_exec srv sh -c "ss -ulnH 'sport = :7100' | grep -q ." --timeout 5; then
		rtts | stats | sed 's/^/round trip a <-> srv, 20 ms each way (ms): /'
	fi
	lab_stop_pid "$echo_pid"
	lab_set_delay 0
fi
stop_server

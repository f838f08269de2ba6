#!/usr/bin/env bash
# bench/sessions.sh - paths that last, measured (not a test: prints numbers).
#  1. recovery: a two-way stream (100 ms each way) through the shim, NAT A loses all
#     its state (conntrack -F); the time from the flush to the first datagram heard
#     again, at each side, over N trials on inc/inc (and inc-linux/inc-linux with -l).
#  2. keepalive cost: datagrams and bytes the keepalive puts on NAT A's outside link
#     during 60 s of silence with N4_KEEPALIVE=15, and the keeper thread's CPU time.
# usage: bench/sessions.sh [-n TRIALS] [-l]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/lab/lib.sh"
source "$here/../tests/lab/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
PROG=$N4_BIN/tests/shim_session
PH=192.0.2.77:7777
TRIALS=20
FLAVORS=inc
while getopts "n:l" o; do
	case $o in
	n) TRIALS=$OPTARG ;;
	l) FLAVORS="inc inc-linux" ;;
	*) echo "usage: $0 [-n TRIALS] [-l]" >&2; exit 2 ;;
	esac
done
lab_require_root || exit 1
trap lab_down EXIT
lab_up --nat-a inc --nat-b inc || exit 1
start_server || exit 1

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
side() {
	local node=$1 log=$2 ident=$3
	shift 3
	lab_bg "$node" "$log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" N4_PEER="$PH" \
		N4_LISTEN=5000 LD_PRELOAD="$SHIM" ${EXTRA_ENV:-} "$PROG" "$@"
}
pct() { # P: percentile of stdin (nearest rank)
	sort -g | awk -v p="$1" '{ v[NR] = $1 } END { if (!NR) { print "-"; exit }
		i = int((p / 100) * NR + 0.999); if (i < 1) i = 1; print v[i] }'
}

for f in $FLAVORS; do
	[[ $f != inc ]] && { lab_set_nat a "$f"; lab_set_nat b "$f"; }
	echo "== 1. recovery after conntrack -F on NAT A, $f/$f, $TRIALS trials"
	results=()
	failed=0
	for ((i = 1; i <= TRIALS; i++)); do
		la=$LAB_DIR/b$i-a.log lb=$LAB_DIR/b$i-b.log
		lab_flush
		pa=$(side a "$la" "bn$i" -c "$PH" -d 9)
		pb=$(side b "$lb" "bn$i" -l 5000 -d 9)
		lab_wait_for both_punched "$la" "$lb" --timeout 10 >/dev/null 2>&1
		sleep 1.5 # steady stream
		t=$(now_ms)
		lab_exec nata conntrack -F >/dev/null 2>&1
		wait_pids 20 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
		ra=$(resume_ms "$la" "$t") rb=$(resume_ms "$lb" "$t")
		if [[ -z $ra || -z $rb ]]; then
			failed=$((failed + 1))
			echo "trial $i: did not resume (a ${ra:-never}, b ${rb:-never}); logs kept in ${KEEP:-/tmp}/bench-sessions-$i-*.log"
			cp "$la" "${KEEP:-/tmp}/bench-sessions-$i-a.log"
			cp "$lb" "${KEEP:-/tmp}/bench-sessions-$i-b.log"
			continue
		fi
		results+=("$((ra > rb ? ra : rb))")
		echo "trial $i: resumed after $ra ms at a, $rb ms at b"
	done
	if ((${#results[@]})); then
		printf 'recovery %s: n=%d failed=%d  min %s  p50 %s  p90 %s  max %s ms (later side)\n' "$f" \
			"${#results[@]}" "$failed" \
			"$(printf '%s\n' "${results[@]}" | pct 0)" "$(printf '%s\n' "${results[@]}" | pct 50)" \
			"$(printf '%s\n' "${results[@]}" | pct 90)" "$(printf '%s\n' "${results[@]}" | pct 100)"
	fi
done

echo
echo "== 2. keepalive cost: 60 s of silence, N4_KEEPALIVE=15 (default)"
lab_set_nat a inc && lab_set_nat b inc
lab_flush
la=$LAB_DIR/ka-a.log lb=$LAB_DIR/ka-b.log cap=$LAB_DIR/ka.txt
: >"$cap"
pa=$(side a "$la" kacost -c "$PH" -d 64 -q 2:100)
pb=$(side b "$lb" kacost -l 5000 -d 64 -q 2:100)
lab_wait_for both_punched "$la" "$lb" --timeout 10 >/dev/null
sleep 3
cpid=$(lab_bg nata "$cap" timeout 60 tcpdump -n -l -i wan0 "udp and not port 1721 and not port 1722")
sleep 1
# CPU of the shim's threads (every thread but the program's main one: the keeper)
shim_cpu() { local t sum=0; for t in /proc/$1/task/*; do [[ ${t##*/} == "$1" ]] && continue; sum=$((sum + $(awk '{ print $14 + $15 }' "$t/stat"))); done; echo $sum; }
main_cpu() { awk '{ print $14 + $15 }' "/proc/$1/task/$1/stat"; }
cpu0=$(shim_cpu "$pa") m0=$(main_cpu "$pa")
wait_pids 70 "$cpid"
cpu1=$(shim_cpu "$pa") m1=$(main_cpu "$pa")
pkts=$(grep -c "UDP, length 8" "$cap")
echo "keepalive: $pkts datagrams of 8 bytes (36 on the wire) left NAT A in 60 s for one path"
echo "keepalive: the keeper thread used $(((cpu1 - cpu0) * 10)) ms of CPU in those 60 s (tick every 100 ms); the idle program's own thread $(((m1 - m0) * 10)) ms"
lab_stop_pid "$pa"
lab_stop_pid "$pb"

#!/usr/bin/env bash
# test_punch.sh - n4 -c pairs punch through real kernel NATs (issue: foundation).
# Each case brings up the NAT flavours it needs, flushes NAT state between cases,
# and asserts on what the programs print and what crosses the NATs.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/punch_lib.sh"

lab_require_root || exit 1
trap 'lab_down' EXIT

# ---------------------------------------------------------------- inc / inc
need_up punch "the lab (inc/inc)" lab_up --nat-a inc --nat-b inc
need_up punch "the server" start_server

check "inc/inc: both n4 clients report [ WIN ]" run_pair incinc -t 30
check "inc/inc: a datagram crosses a -> b on the punched ports" \
	message_crosses a "$LOG_A" b "$LOG_B"
check "inc/inc: a datagram crosses b -> a on the punched ports" \
	message_crosses b "$LOG_B" a "$LOG_A"
check "inc/inc: each side's peer address is the other NAT's public IP" \
	bash -c "[[ '$(peer_addr "$LOG_A")' == $LAB_NATB_IP:* && '$(peer_addr "$LOG_B")' == $LAB_NATA_IP:* ]]"

lab_flush
# An original-protocol client (raw v1 bytes) pairs and wins with ours.
V1_LOG=$LAB_DIR/v1.log
v1=$(lab_bg a "$V1_LOG" "$N4_BIN/tests/v1client" "$LAB_SRV_IP" 1721 n4n4n4 31000 25 20 40)
ours=$(client b "$LAB_DIR/v1-ours.log" -t 40)
wait_pids 60 "$v1" "$ours"
check "original v1 client and ours: the original reports [ WIN ]" won "$V1_LOG"
check "original v1 client and ours: ours reports [ WIN ]" won "$LAB_DIR/v1-ours.log"

lab_flush
# Three pairs with different identifiers at once through one server.
p1a=$(client a "$LAB_DIR/p1-a.log" -a pair1 -b 32000 -t 30)
p1b=$(client b "$LAB_DIR/p1-b.log" -a pair1 -b 32000 -t 30)
p2a=$(client a2 "$LAB_DIR/p2-a.log" -a pair2 -b 33000 -t 30)
p2b=$(client b2 "$LAB_DIR/p2-b.log" -a pair2 -b 33000 -t 30)
p3a=$(client a "$LAB_DIR/p3-a.log" -a pair3 -b 34000 -t 30)
p3b=$(client b "$LAB_DIR/p3-b.log" -a pair3 -b 34000 -t 30)
wait_pids 60 "$p1a" "$p1b" "$p2a" "$p2b" "$p3a" "$p3b"
for p in p1 p2 p3; do
	check "three pairs at once: $p wins on both sides" \
		bash -c "grep -q '\[ WIN \]' '$LAB_DIR/$p-a.log' && grep -q '\[ WIN \]' '$LAB_DIR/$p-b.log'"
done

lab_flush
# Hostile clients against the server while a real pair completes.
h=()
h+=("$(lab_bg a2 /dev/null sh -c "head -c 4096 /dev/urandom | socat -u STDIN TCP:$LAB_SRV_IP:1721")")
h+=("$(lab_bg a2 /dev/null sh -c "printf '\005\000n4n4n4' | socat -t 3 - TCP:$LAB_SRV_IP:1721")")
# A short message, then silence; and a client that never says anything (the
# sleeps only hold the connections open, they synchronise nothing).
h+=("$(lab_bg b2 /dev/null sh -c "(printf '\001\000n'; sleep 30) | socat - TCP:$LAB_SRV_IP:1721")")
h+=("$(lab_bg b2 /dev/null sh -c "sleep 30 | socat - TCP:$LAB_SRV_IP:1721")")
h+=("$(lab_bg a2 /dev/null sh -c "head -c 64 /dev/urandom | socat -u STDIN UDP4-SENDTO:$LAB_SRV_IP:1721")")
check "hostile clients around: a real pair still wins" run_pair hostile -t 30
check "server dropped the garbage and wrong-command clients with a log line" \
	grep -q "malformed HELLO" "$SRV_LOG"
check "server drops a short, then silent, client after its deadline" \
	lab_wait_for grep -q "no HELLO within.*(3 bytes" "$SRV_LOG" --timeout 10
check "server drops a silent client after its deadline" \
	lab_wait_for grep -q "no HELLO within.*(0 bytes" "$SRV_LOG" --timeout 10
check "server is still serving after the hostile clients" kill -0 "$SRV_PID"
kill "${h[@]}" 2>/dev/null

lab_flush
stop_server
need_up punch "a fresh server" start_server # a fresh server log for the next case
# Two clients behind the same NAT (and so one public IP) are each told the
# other's address, not their own.
sa=$(client a "$LAB_DIR/same-a.log" -a same -t 3 -b 35000)
sb=$(client a2 "$LAB_DIR/same-a2.log" -a same -t 3 -b 35000)
wait_pids 30 "$sa" "$sb"
# The server's own record of the first round: who sent which EXCHANGE, and
# which address each TCP client was told.  Each must be told the other's.
mapfile -t exch < <(sed -nE 's/.* => Exchange from ([0-9.]+:[0-9]+) \(client ([0-9.]+:[0-9]+)\).*/\2 \1/p' "$SRV_LOG" | head -n 2)
mapfile -t told < <(sed -nE 's/.* <= Peerinfo ([0-9.]+:[0-9]+) to ([0-9.]+:[0-9]+).*/\2 \1/p' "$SRV_LOG" | head -n 2)
same_nat_ok() {
	[[ ${#exch[@]} -eq 2 && ${#told[@]} -eq 2 ]] || return 1
	local t c addr own other
	for t in "${told[@]}"; do
		read -r c addr <<<"$t"
		own=$(printf '%s\n' "${exch[@]}" | awk -v c="$c" '$1 == c { print $2 }')
		other=$(printf '%s\n' "${exch[@]}" | awk -v c="$c" '$1 != c { print $2 }')
		[[ -n $own && $addr == "$other" && $addr != "$own" ]] || return 1
	done
}
check "same NAT: the server tells each client the other's EXCHANGE address" same_nat_ok
pa1=$(told_peer "$LAB_DIR/same-a.log" | head -n 1)
pa2=$(told_peer "$LAB_DIR/same-a2.log" | head -n 1)
check "same NAT: hosts a and a2 are told two different addresses on their NAT" \
	bash -c "[[ '$pa1' == $LAB_NATA_IP:* && '$pa2' == $LAB_NATA_IP:* && '$pa1' != '$pa2' ]]"
check "same NAT: those are the two EXCHANGE addresses the server saw" \
	bash -c "printf '%s\n' ${exch[*]} | grep -qx '$pa1' && printf '%s\n' ${exch[*]} | grep -qx '$pa2'"
stop_server
lab_down

# ------------------------------------------- inc-linux / inc-linux (conntrack clash)
for delay in 0 20; do
	need_up punch "the lab (inc-linux/inc-linux, $delay ms)" \
		lab_up --nat-a inc-linux --nat-b inc-linux --delay "$delay"
	need_up punch "the server" start_server
	check "inc-linux/inc-linux, ${delay} ms: both win (default strategy)" run_pair "il$delay" -t 30
	check "inc-linux/inc-linux, ${delay} ms: first round" \
		bash -c "[[ \$(grep -c 'Source port' '$LOG_A') -eq 1 ]]"
	stop_server
	lab_down
done

# ------------------------------------------------------------ cone / cone, cone / inc
for flavours in "cone cone" "cone inc"; do
	set -- $flavours
	need_up punch "the lab ($1/$2)" lab_up --nat-a "$1" --nat-b "$2"
	need_up punch "the server" start_server
	check "$1/$2: both win" run_pair "$1$2" -t 30
	check "$1/$2: a datagram crosses a -> b" message_crosses a "$LOG_A" b "$LOG_B"
	stop_server
	lab_down
done

summary punch

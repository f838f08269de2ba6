#!/usr/bin/env bash
# test_strategies.sh - each plan of the default strategy wins in the lab condition
# it is for (issue: punch engine for hard NATs), NATs that count down or step by 2,
# jitter (issue: real networks), and a datagram crosses both ways after every WIN;
# the impossible pair is refused early with the documented message and exit status;
# --no-sweep and --max-pps keep their promises.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/punch_lib.sh"

lab_require_root || exit 1
trap 'lab_down' EXIT

# up WHAT LAB_UP_ARGS...: a lab and a server, or a "not ok" that says which part did
# not come up (a part of the suite that cannot run is a failure, never a silent skip).
up() {
	local what=$1
	shift
	if ! lab_up "$@" >/dev/null; then
		not_ok "$what: the lab came up (lab_up $*)"
		lab_down
		return 1
	fi
	if ! start_server; then
		not_ok "$what: the server came up"
		lab_down
		return 1
	fi
}
# up_or_end WHAT LAB_UP_ARGS...: as up, and when it fails the suite ends, counted.
up_or_end() {
	up "$@" && return 0
	summary strategies
	exit 1
}

plan_of() { sed -nE 's/.* Plan: ([a-z]+).*/\1/p' "$1" | head -n 1; }
rounds() { grep -c 'Source port' "$1"; }

# cell NATA NATB DELAY NOISE EXPECTED_PLAN [JITTER]: bring up, run a pair, check plan
# and win, and that a datagram then crosses both ways on the punched ports.
cell() {
	local na=$1 nb=$2 delay=$3 noise=$4 plan=$5 jitter=${6:-0}
	local args=(--nat-a "$na" --nat-b "$nb")
	((delay > 0)) && args+=(--delay "$delay" --jitter "$jitter")
	((noise > 0)) && args+=(--noise-a "$noise" --noise-b "$noise")
	local what="$na/$nb, ${delay} ms"
	((jitter > 0)) && what+=" +-$jitter ms"
	what+=", $noise flows/s"
	up "$what" "${args[@]}" || return 1
	check "$what: both win within 10 s" run_pair "$na-$nb-$delay-$noise" -t 10
	check "$what: the server chose '$plan'" \
		bash -c "[[ '$(plan_of "$LOG_A")' == '$plan' || '$(plan_of "$LOG_B")' == '$plan' ]]"
	if ((jitter == 0)); then
		check "$what: won in the first round" bash -c "[[ $(rounds "$LOG_A") -eq 1 ]]"
	fi
	check "$what: a datagram crosses A -> B" message_crosses a "$LOG_A" b "$LOG_B"
	check "$what: a datagram crosses B -> A" message_crosses b "$LOG_B" a "$LOG_A"
	stop_server
	lab_down
}

# Busy carrier NATs: 20 ms one-way WAN delay, 1000 new flows/s behind each NAT.
cell inc inc 20 1000 sweep
# The Linux conntrack clash at zero delay: low-TTL pre-opening.
cell inc-linux inc-linux 0 0 sweep
# Endpoint-independent against incrementing: range walk from one socket.
cell cone inc 0 300 range
# Random against cone: birthday probing.
cell random cone 0 0 birthday
# Both cone: direct.
cell cone cone 20 0 direct
# NATs that count down, step by 2, or mix (issue: real networks).
cell dec dec 0 300 sweep
cell dec inc 20 300 sweep
cell inc2 inc2 0 300 sweep
cell dec-linux inc-linux 0 0 sweep
cell cone dec 0 300 range
# Jitter reorders the probes; numbered probes keep the order.
cell inc inc 20 300 sweep 10

# --no-sweep: a direct pair still wins; a pair that needs a sweep is refused on
# both sides (exit 4, the reason printed) and the refusing side never sent a
# datagram to the peer's NAT.  (Without --no-relay our server relays such a pair:
# tests/lab/test_lab_relay.sh.)
up_or_end "--no-sweep, cone/cone" --nat-a cone --nat-b cone --delay 10
check "--no-sweep, cone/cone: both win (direct)" run_pair ns-cone -t 10 --no-sweep
check "--no-sweep, cone/cone: a datagram crosses A -> B" message_crosses a "$LOG_A" b "$LOG_B"
stop_server
lab_down
up_or_end "--no-sweep, inc/inc" --nat-a inc --nat-b inc
lab_bg b "$LAB_DIR/ns-b.log" "$N4" -c -h "$LAB_SRV_IP" -t 20 -a nosw --no-relay >/dev/null
start=$SECONDS
lab_exec a "$N4" -c -h "$LAB_SRV_IP" -t 20 -a nosw --no-sweep --no-relay >"$LAB_DIR/ns-a.log" 2>&1
rc=$?
check "--no-sweep, inc/inc: refused with exit status 4 (got $rc)" bash -c "[[ $rc -eq 4 ]]"
check "--no-sweep, inc/inc: refused within 5 s" bash -c "(( $SECONDS - $start <= 5 ))"
check "--no-sweep, inc/inc: the reason is printed" grep -q "no-sweep forbids" "$LAB_DIR/ns-a.log"
check "--no-sweep, inc/inc: the peer is refused too" \
	lab_wait_for grep -q "no-sweep forbids" "$LAB_DIR/ns-b.log" --timeout 10
# The control: the same listing shows A's mappings toward the server (the rendezvous's
# UDP), so an empty answer is not a failed conntrack.
n_srv=$(lab_exec nata conntrack -L -p udp -d "$LAB_SRV_IP" 2>/dev/null | grep -c .)
check "--no-sweep, inc/inc: conntrack lists A's UDP toward the server ($n_srv)" \
	bash -c "[[ $n_srv -gt 0 ]]"
n=$(lab_exec nata conntrack -L -p udp -d "$LAB_NATB_IP" 2>/dev/null | grep -c .)
check "--no-sweep, inc/inc: no mapping from A toward B's NAT (got $n)" bash -c "[[ $n -eq 0 ]]"
stop_server
lab_down

# --max-pps: birthday probing (the one plan that sends steadily) from the cone side at
# 100 datagrams a second, counted where they leave its NAT.
up_or_end "--max-pps" --nat-a random --nat-b cone
printf 'table ip n4pace {\n\tchain post {\n\t\ttype filter hook postrouting priority 200; policy accept;\n\t\toifname "wan0" ip daddr %s meta l4proto udp counter\n\t}\n}\n' \
	"$LAB_NATA_IP" >"$LAB_DIR/pace.nft"
check "--max-pps: the counter on NAT B is loaded" lab_exec natb nft -f "$LAB_DIR/pace.nft"
t0=$(_lab_now_ms)
pa=$(client a "$LAB_DIR/pace-a.log" -t 3)
pb=$(client b "$LAB_DIR/pace-b.log" -t 3 --max-pps 100)
check "--max-pps: both clients end by themselves" wait_pids 20 "$pa" "$pb"
ms=$(($(_lab_now_ms) - t0))
sent=$(lab_exec natb nft list table ip n4pace | sed -nE 's/.*packets ([0-9]+).*/\1/p')
check "--max-pps 100: at most 100 PUNCHes a second left the prober (${sent:-0} in $ms ms)" \
	bash -c "(( ${sent:-0} > 0 && ${sent:-0} <= 100 * $ms / 1000 + 100 ))"
stop_server
lab_down

# random/random with --no-relay: refused at once, exit status 4, a clear reason
# (relayed by default: tests/lab/test_lab_relay.sh).
up_or_end "random/random" --nat-a random --nat-b random
LOG_A=$LAB_DIR/rr-a.log
LOG_B=$LAB_DIR/rr-b.log
start=$SECONDS
pa=$(client a "$LOG_A" -t 30 --no-relay)
pb=$(client b "$LOG_B" -t 30 --no-relay)
wait_pids 40 "$pa" "$pb"
check "random/random: refused within 5 s, not after the 30 s timeout" \
	bash -c "(( $SECONDS - $start <= 5 ))"
check "random/random: the reason is printed" grep -q "cannot be punched without a relay" "$LOG_A"
# exit status: run one more client pair in the foreground to read it
lab_bg b "$LAB_DIR/rr-b2.log" "$N4" -c -h "$LAB_SRV_IP" -t 30 -a rr2 --no-relay >/dev/null
lab_exec a "$N4" -c -h "$LAB_SRV_IP" -t 30 -a rr2 --no-relay >"$LAB_DIR/rr-a2.log" 2>&1
rc=$?
check "random/random: exit status 4 (got $rc)" bash -c "[[ $rc -eq 4 ]]"
stop_server
lab_down

# An original-protocol peer (raw v1) still pairs and wins with ours; ours keeps
# the original's timing and bytes for it.
up_or_end "v1 peer" --nat-a inc --nat-b inc
v1=$(lab_bg a "$LAB_DIR/v1.log" "$N4_BIN/tests/v1client" "$LAB_SRV_IP" 1721 n4n4n4 31000 25 20 40)
ours=$(client b "$LAB_DIR/v1-ours.log" -t 40)
wait_pids 60 "$v1" "$ours"
check "v1 peer with ours (discovery on our side only): the original wins" won "$LAB_DIR/v1.log"
check "v1 peer with ours: ours wins" won "$LAB_DIR/v1-ours.log"
check "v1 peer with ours: ours used the original's guess" \
	bash -c "! grep -q ' Plan: ' '$LAB_DIR/v1-ours.log'"

summary strategies

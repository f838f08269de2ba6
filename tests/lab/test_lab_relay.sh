#!/usr/bin/env bash
# test_lab_relay.sh - pairs no punch can join talk through the server's relay (issue:
# every pair connects).  random/random: `n4 -c` on both sides exits 0 with a relayed
# WIN and the printed nc lines carry data both ways; two shimmed netcats exchange
# both ways; a stranger spraying the relay's ports reaches neither program; a pair
# over its rate is limited while another is not; --no-relay keeps exit status 4, and
# so does a full relay (--relay-max); a --no-sweep pair is relayed without a datagram
# toward the peer's NAT.
# (The move back to a direct path belongs to the shim's keeper: not tested here.)
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
FLOW=$N4_BIN/tests/udpflow
SHIM=$N4_BIN/libn4shim.so
PH_PORT=5000

lab_with_server relay --nat-a random --nat-b random

# rclient NODE LOG args...: `n4 -c` in NODE; its exit status lands in LOG.
rclient() {
	local node=$1 log=$2
	shift 2
	lab_bg "$node" "$log" sh -c '"$0" "$@"; echo "exit status $?"' "$N4" -c -h "$LAB_SRV_IP" "$@"
}
exited() { grep -q "^exit status $2\$" "$1"; }
relayed() { grep -q '\[ WIN \] relayed' "$1"; }
nc_line() { sed -nE 's/.*> (nc -u -p [0-9]+ [0-9.]+ [0-9]+)$/\1/p' "$1" | tail -n 1; }
relay_ports() { sed -nE 's/.*<= Relay ports ([0-9]+)\/([0-9]+) .*/\1 \2/p' "$SRV_LOG" | tail -n 1; }
at_least() { (($1 >= $2)); } # VALUE MIN

# ---- 1. n4 -c on both sides: relayed WIN, exit 0 ----
A=$LAB_DIR/c-a.log B=$LAB_DIR/c-b.log
pa=$(rclient a "$A" -a rly1 -t 30)
pb=$(rclient b "$B" -a rly1 -t 30)
wait_pids 40 "$pa" "$pb"
check "n4 -c: A exits 0 with a relayed WIN" bash -c "grep -q '^exit status 0$' '$A' && grep -q '\[ WIN \] relayed' '$A'"
check "n4 -c: B exits 0 with a relayed WIN" bash -c "grep -q '^exit status 0$' '$B' && grep -q '\[ WIN \] relayed' '$B'"
check "n4 -c: the peer is the server's relay" bash -c "[[ \$(sed -nE 's/.*Peer address: +([0-9.]+):.*/\1/p' '$A') == $LAB_SRV_IP ]]"

# ---- 2. the printed nc lines carry data both ways ----
nca=$(nc_line "$A") ncb=$(nc_line "$B")
d=$LAB_DIR/nc
mkdir -p "$d" && mkfifo "$d/in-a" "$d/in-b" && : >"$d/out-a" && : >"$d/out-b"
exec {fa}<>"$d/in-a" {fb}<>"$d/in-b"
pna=$(lab_bg a "$d/err-a" sh -c "exec $nca <'$d/in-a' >'$d/out-a'")
pnb=$(lab_bg b "$d/err-b" sh -c "exec $ncb <'$d/in-b' >'$d/out-b'")
check "nc lines: B's nc is up" lab_wait_for lab_exec b sh -c "ss -unH | grep -q ':${ncb##* }'" --timeout 5
echo "from a $RANDOM" >&"$fa"
check "nc lines: A's line reaches B" lab_wait_for grep -q "from a" "$d/out-b" --timeout 5
echo "from b $RANDOM" >&"$fb"
check "nc lines: B's line reaches A" lab_wait_for grep -q "from b" "$d/out-a" --timeout 5

# ---- 3. a stranger sprays the relay's ports during the session ----
read -r p1 p2 < <(relay_ports)
if [[ -n ${p1:-} && -n ${p2:-} ]]; then
	for port in "$p1" "$p2"; do
		# from the WAN (another IP) and from a2, behind A's NAT (A's public IP):
		# data, and registrations with a wrong token
		lab_exec wan "$FLOW" send 40001 "$LAB_SRV_IP:$port" 200 64 0 >/dev/null
		lab_exec a2 "$FLOW" send 40001 "$LAB_SRV_IP:$port" 200 64 0 >/dev/null
		for node in wan a2; do
			lab_exec "$node" sh -c "printf '\\013\\000STRANGER!!' | socat -u STDIN UDP4-SENDTO:$LAB_SRV_IP:$port,sourceport=40002,reuseaddr"
		done
	done
	echo "after spray from a" >&"$fa"
	check "stranger: the session still carries A's line" \
		lab_wait_for grep -q "after spray from a" "$d/out-b" --timeout 5
	check "stranger: nothing of the spray reached either program" \
		bash -c "! grep -qaE 'xxxx|STRANGER' '$d/out-a' '$d/out-b'"
	n=$(status_field relay_drop_stranger)
	check "stranger: the server dropped and counted it (${n:-?} of 800)" at_least "${n:-0}" 800
	n=$(status_field relay_drop_bad_reg)
	check "stranger: the bad registrations were counted (${n:-?} of 4)" at_least "${n:-0}" 4
else
	not_ok "stranger: relay ports not found in the server log"
fi
exec {fa}>&- {fb}>&-
lab_stop_pid "$pna"
lab_stop_pid "$pnb"

# ---- 4. --no-relay on the clients keeps exit status 4 ----
lab_flush
A4=$LAB_DIR/nr-a.log B4=$LAB_DIR/nr-b.log
pa=$(rclient a "$A4" -a rly4 -t 30 --no-relay)
pb=$(rclient b "$B4" -a rly4 -t 30 --no-relay)
wait_pids 40 "$pa" "$pb"
check "--no-relay: both exit with status 4" bash -c "grep -q '^exit status 4$' '$A4' && grep -q '^exit status 4$' '$B4'"

# ---- 5. two shimmed netcats talk through the relay ----
lab_flush
d=$LAB_DIR/shim
mkdir -p "$d" && mkfifo "$d/in-a" "$d/in-b" && : >"$d/out-a" && : >"$d/out-b"
exec {fa}<>"$d/in-a" {fb}<>"$d/in-b"
shim_env=(env N4_SERVER="$LAB_SRV_IP" N4_IDENT=rly5 LD_PRELOAD="$SHIM")
psa=$(lab_bg a "$d/a.log" "${shim_env[@]}" sh -c "exec nc -u $LAB_SRV_IP $PH_PORT <'$d/in-a' >'$d/out-a'")
psb=$(lab_bg b "$d/b.log" "${shim_env[@]}" N4_LISTEN=$PH_PORT sh -c "exec nc -u -l $PH_PORT <'$d/in-b' >'$d/out-b'")
check "shim: A's netcat is on the relay" lab_wait_for grep -q "punched.*relayed" "$d/a.log" --timeout 40
check "shim: B's netcat is on the relay" lab_wait_for grep -q "punched.*relayed" "$d/b.log" --timeout 10
echo "shim line from a" >&"$fa"
check "shim: A's line reaches B" lab_wait_for grep -q "shim line from a" "$d/out-b" --timeout 5
echo "shim line from b" >&"$fb"
check "shim: B's line reaches A" lab_wait_for grep -q "shim line from b" "$d/out-a" --timeout 5
check "shim: no relay control bytes reached the programs" \
	bash -c "! grep -qa \$'\\x0b' '$d/out-a' '$d/out-b'"
exec {fa}>&- {fb}>&-
lab_stop_pid "$psa"
lab_stop_pid "$psb"

# ---- 6. a pair over its rate is limited, another is not ----
stop_server
lab_flush
need_up relay "the server (--relay-rate 400)" start_server --relay-rate 400 --relay-burst 8
R1A=$LAB_DIR/r1-a.log R1B=$LAB_DIR/r1-b.log R2A=$LAB_DIR/r2-a.log R2B=$LAB_DIR/r2-b.log
pids=("$(rclient a "$R1A" -a rly6 -t 30 -b 31000)" "$(rclient b "$R1B" -a rly6 -t 30 -b 31000)"
	"$(rclient a2 "$R2A" -a rly7 -t 30 -b 32000)" "$(rclient b2 "$R2B" -a rly7 -t 30 -b 32000)")
wait_pids 40 "${pids[@]}"
if relayed "$R1A" && relayed "$R1B" && relayed "$R2A" && relayed "$R2B"; then
	ok "rate: both pairs relayed"
	rx1=$(lab_bg b "$LAB_DIR/rx1" "$FLOW" recv "$(local_port "$R1B")" 1000 8)
	rx2=$(lab_bg b2 "$LAB_DIR/rx2" "$FLOW" recv "$(local_port "$R2B")" 1000 8)
	check "rate: pair 1's receiver is up" \
		lab_wait_for lab_exec b sh -c "ss -ulnH | grep -q ':$(local_port "$R1B") '" --timeout 5
	check "rate: pair 2's receiver is up" \
		lab_wait_for lab_exec b2 sh -c "ss -ulnH | grep -q ':$(local_port "$R2B") '" --timeout 5
	# pair 1: 1000 x 1000 bytes at 2000/s (16 Mbit/s) against 400 kbit/s;
	# pair 2: 100 x 200 bytes at 100/s (160 kbit/s), within its rate
	lab_bg a "$LAB_DIR/tx1" "$FLOW" send "$(local_port "$R1A")" "$(peer_addr "$R1A")" 1000 1000 2000 >/dev/null
	lab_exec a2 "$FLOW" send "$(local_port "$R2A")" "$(peer_addr "$R2A")" 100 200 100 >/dev/null
	wait_pids 15 "$rx1" "$rx2"
	n1=$(sed -nE 's/received ([0-9]+) .*/\1/p' "$LAB_DIR/rx1")
	n2=$(sed -nE 's/received ([0-9]+) .*/\1/p' "$LAB_DIR/rx2")
	check "rate: the pair over its rate got part through (${n1:-?} of 1000)" \
		bash -c "(( ${n1:-0} > 0 && ${n1:-0} < 500 ))"
	check "rate: the pair within its rate got everything (${n2:-?} of 100)" \
		bash -c "(( ${n2:-0} >= 98 ))"
	n=$(status_field relay_drop_rate)
	check "rate: the server counted rate drops (${n:-?})" at_least "${n:-0}" 1
else
	not_ok "rate: both pairs relayed"
fi

# ---- 7. a full relay refuses the next pair as before (exit 4), and counts it ----
stop_server
lab_flush
need_up relay "the server (--relay-max 1)" start_server --relay-max 1
F1A=$LAB_DIR/f1-a.log F1B=$LAB_DIR/f1-b.log F2A=$LAB_DIR/f2-a.log F2B=$LAB_DIR/f2-b.log
pids=("$(rclient a "$F1A" -a rly8 -t 30 -b 33000)" "$(rclient b "$F1B" -a rly8 -t 30 -b 33000)")
wait_pids 40 "${pids[@]}"
pids=("$(rclient a2 "$F2A" -a rly9 -t 30 -b 34000)" "$(rclient b2 "$F2B" -a rly9 -t 30 -b 34000)")
wait_pids 40 "${pids[@]}"
check "--relay-max 1: the first pair is relayed" bash -c "grep -q 'WIN \] relayed' '$F1A' && grep -q 'WIN \] relayed' '$F1B'"
check "--relay-max 1: the second pair is refused with exit status 4" \
	bash -c "grep -q '^exit status 4$' '$F2A' && grep -q '^exit status 4$' '$F2B'"
n=$(status_field relay_refused_full)
check "--relay-max 1: the refusal is counted (${n:-?})" at_least "${n:-0}" 1

# ---- 8. --no-sweep: a pair that would need a sweep is relayed, nothing sent to B's NAT ----
stop_server
lab_set_nat a inc && lab_set_nat b inc && lab_flush
need_up relay "the server" start_server
N1=$LAB_DIR/ns-a.log N2=$LAB_DIR/ns-b.log
pids=("$(rclient a "$N1" -a rlyns -t 30 --no-sweep)" "$(rclient b "$N2" -a rlyns -t 30)")
wait_pids 40 "${pids[@]}"
check "--no-sweep, inc/inc: both sides exit 0 relayed" \
	bash -c "grep -q 'WIN \] relayed' '$N1' && grep -q 'WIN \] relayed' '$N2' && grep -q '^exit status 0$' '$N1'"
n=$(lab_exec nata conntrack -L -p udp -d "$LAB_NATB_IP" 2>/dev/null | grep -c .)
check "--no-sweep, inc/inc: no mapping from A toward B's NAT (got $n)" bash -c "[[ $n -eq 0 ]]"

summary relay

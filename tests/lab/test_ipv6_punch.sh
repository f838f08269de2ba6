#!/usr/bin/env bash
# test_ipv6_punch.sh - direct over IPv6 whenever both hosts have it (issue 22).
#   - random/random NATs, IPv6 on both sides behind stateful firewalls: n4 -c wins over
#     IPv6 directly, never relayed; a capture at the WAN shows the PUNCHes as IPv6
#     datagrams between the two hosts' own addresses; a datagram crosses afterwards;
#     --json and --exec report the IPv6 peer;
#   - inc/inc NATs (IPv4 punchable), IPv6 on both: IPv6 preferred; the same pair with
#     --no-ipv6 wins over IPv4: times to WIN of both, side by side;
#   - IPv6 on one side only (the other with --no-ipv6): IPv4 as today (punched inc/inc,
#     relayed random/random);
#   - firewalls that drop all IPv6: the IPv4 result unchanged, within 10 % (+20 ms) of
#     IPv4 alone in the same run;
#   - IPv6 one way only (b's firewall drops all inbound IPv6, the server still reached):
#     both sides on the same path, IPv4 (inc/inc, unkeyed and keyed) or the relay
#     (random/random), never one over IPv6 and the other without a WIN;
#   - keyed pair over IPv6 (the candidates sealed: the server's log and the wire never
#     show the punching port); a keyed stranger (same short id, another key) never wins.
# Each case has its own identifier and fresh NAT and firewall state.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"

lab_require_root || exit 1
lab_with_server ipv6-punch --nat-a random --nat-b random --ipv6 on

V6=(--server6 "$LAB_SRV_IP6")
peer6() { sed -nE 's/.*Peer address: +\[([0-9a-f:]+)\]:([0-9]+) \(IPv6\).*/\1/p' "$1" | tail -n 1; }
peer6_port() { sed -nE 's/.*Peer address: +\[[0-9a-f:]+\]:([0-9]+) \(IPv6\).*/\1/p' "$1" | tail -n 1; }
relayed() { grep -q "the server's relay" "$1"; }

# pair TAG ARGS_A -- ARGS_B: n4 -c on a and b (common args in ARGS_A and ARGS_B each).
pair() {
	local tag=$1 aa=() bb=()
	shift
	while [[ $1 != -- ]]; do
		aa+=("$1")
		shift
	done
	shift
	bb=("$@")
	LOG_A=$LAB_DIR/$tag-a.log LOG_B=$LAB_DIR/$tag-b.log
	lab_flush
	local pa pb
	pa=$(client a "$LOG_A" -a "$tag" -t 20 "${aa[@]}")
	pb=$(client b "$LOG_B" -a "$tag" -t 20 "${bb[@]}")
	wait_pids 30 "$pa" "$pb" || kill "$pa" "$pb" 2>/dev/null
	won "$LOG_A" && won "$LOG_B"
}
v6_won() { # both won over IPv6, each at the other's global address
	[[ $(peer6 "$LOG_A") == "$LAB_B_IP6" && $(peer6 "$LOG_B") == "$LAB_A_IP6" ]]
}
dump() { tail -n 15 "$LOG_A" "$LOG_B" >&2; }

# --------------------------------------------------------------- random/random
pcap=$LAB_DIR/v6-rr.pcap
capture_start wan any "$pcap" ip6 and udp
if pair v6rr "${V6[@]}" -- "${V6[@]}" && v6_won; then
	ok "random/random, IPv6 on both: both win over IPv6 ($(peer6 "$LOG_A"), $(peer6 "$LOG_B")) in $(win_ms "$LOG_A")/$(win_ms "$LOG_B") ms"
else
	not_ok "random/random, IPv6 on both: both win over IPv6"
	dump
fi
capture_stop
check "random/random, IPv6 on both: not relayed" bash -c "! grep -q 'Relay' '$LOG_A' '$LOG_B'"
# PUNCH: 8 bytes, 05 xx, the identifier: between the two hosts' own addresses at the WAN
punches6=$(tcpdump -n -r "$pcap" -x "src $LAB_A_IP6 and dst $LAB_B_IP6 and udp" 2>/dev/null |
	grep -c "UDP, length 8")
punches6b=$(tcpdump -n -r "$pcap" "src $LAB_B_IP6 and dst $LAB_A_IP6 and udp" 2>/dev/null |
	grep -c "UDP, length 8")
check "random/random: the WAN saw PUNCHes as IPv6 both ways ($punches6 a->b, $punches6b b->a)" \
	test "$punches6" -ge 1 -a "$punches6b" -ge 1
lport=$(local_port "$LOG_B") pport=$(peer6_port "$LOG_A") aport=$(local_port "$LOG_A")
msg_v6() {
	local out=$LAB_DIR/v6-msg.out rpid
	: >"$out"
	rpid=$(lab_bg b "$out" timeout 10 socat -u "UDP6-RECV:$lport,reuseaddr" STDOUT)
	lab_wait_for lab_exec b sh -c "ss -ulnH 'sport = :$lport' | grep -q ." --timeout 5 || return 1
	lab_exec a sh -c "echo hello-v6 | socat -u STDIN 'UDP6-SENDTO:[$LAB_B_IP6]:$pport,sourceport=$aport,reuseaddr'"
	lab_wait_for grep -q hello-v6 "$out" --timeout 5
	local rc=$?
	kill "$rpid" 2>/dev/null
	return $rc
}
check "random/random: a datagram crosses a -> b over IPv6 on the punched ports ($aport -> $pport)" \
	test "$pport" = "$lport"
check "random/random: ... and arrives through both firewalls" msg_v6

# --json and --exec
json=$LAB_DIR/v6json
if pair v6js "${V6[@]}" --json --exec 'echo "EXEC %h %H %p %l $N4_PEER_FAMILY"' -- "${V6[@]}"; then
	out=$(grep -o '{"outcome".*' "$LOG_A")
	check "--json: family ipv6, peer [addr]:port, peer_host the address" \
		bash -c "grep -q '\"family\":\"ipv6\"' <<<'$out' && grep -q '\"peer\":\"\\[$LAB_B_IP6\\]:[0-9]*\"' <<<'$out' && grep -q '\"peer_host\":\"$LAB_B_IP6\"' <<<'$out'"
	check "--exec: %h the address, %H in brackets, N4_PEER_FAMILY=6" \
		grep -qE "^EXEC $LAB_B_IP6 \[$LAB_B_IP6\] [0-9]+ [0-9]+ 6\$" "$LOG_A"
else
	not_ok "--json/--exec pair won"
	dump
fi

# ----------------------------------------------------------- one side only
if pair v6one "${V6[@]}" -- "${V6[@]}" --no-ipv6 && relayed "$LOG_A" && relayed "$LOG_B"; then
	ok "random/random, IPv6 on one side only: relayed over IPv4 as today"
else
	not_ok "random/random, IPv6 on one side only: relayed over IPv4 as today"
	dump
fi

# --------------------------------------------------------------- keyed
ka=$LAB_DIR/k1 kb=$LAB_DIR/k2
(umask 077 && "$N4" genkey >"$ka" && "$N4" genkey >"$kb")
if pair v6key "${V6[@]}" -k "$ka" -- "${V6[@]}" -k "$ka" && v6_won; then
	ok "keyed, random/random: both win over IPv6, authenticated"
else
	not_ok "keyed, random/random: both win over IPv6"
	dump
fi
b_port=$(local_port "$LOG_B")
check "keyed: the server never learnt b's punching port ($b_port)" \
	bash -c "! grep -q ':$b_port\\b' '$SRV_LOG'"
if pair v6str "${V6[@]}" -k "$ka" -t 6 -- "${V6[@]}" -k "$kb" -t 6; then
	not_ok "keyed stranger: no WIN"
	dump
else
	check "keyed stranger (same short id, another key): neither wins, nothing over IPv6" \
		bash -c "! grep -q '\[ WIN \]' '$LOG_A' '$LOG_B' && ! grep -q 'IPv6)' '$LOG_A' '$LOG_B'"
fi

# ---------------------------------------------------------- inc/inc: timing
lab_set_nat a inc && lab_set_nat b inc
if pair v6inc "${V6[@]}" -- "${V6[@]}" && v6_won; then
	ok "inc/inc, IPv6 on both: IPv6 preferred over the IPv4 punch"
else
	not_ok "inc/inc, IPv6 on both: IPv6 preferred"
	dump
fi
t6=$(win_ms "$LOG_A")
pair v4inc --no-ipv6 -- --no-ipv6
t4=$(win_ms "$LOG_A")
check "inc/inc --no-ipv6: wins over IPv4" bash -c "[[ '$(peer_addr "$LOG_A")' == $LAB_NATB_IP:* ]]"
echo "# time to WIN at a: IPv6 $t6 ms, IPv4 alone $t4 ms"

if pair v6oi "${V6[@]}" -- --no-ipv6 && [[ $(peer_addr "$LOG_A") == $LAB_NATB_IP:* ]]; then
	ok "inc/inc, IPv6 on one side only: punched over IPv4 as today"
else
	not_ok "inc/inc, IPv6 on one side only: punched over IPv4"
	dump
fi

# ---------------------------------------------------------- broken IPv6
lab_set_v6fw a drop && lab_set_v6fw b drop
pair v6dr "${V6[@]}" -- "${V6[@]}"
td=$(win_ms "$LOG_A")
pair v4dr --no-ipv6 -- --no-ipv6
t4b=$(win_ms "$LOG_A")
check "IPv6 dropped at both sites: the IPv4 result unchanged" \
	bash -c "[[ '$(peer_addr "$LAB_DIR/v6dr-a.log")' == $LAB_NATB_IP:* ]]"
echo "# time to WIN at a, IPv6 dropped: $td ms, IPv4 alone: $t4b ms"
check "IPv6 dropped: time to WIN $td ms within 10 % (+20 ms) of IPv4 alone ($t4b ms)" \
	awk -v a="$td" -v b="$t4b" 'BEGIN { exit !(a >= 0 && a <= b * 1.1 + 20) }'
lab_set_v6fw a stateful && lab_set_v6fw b stateful

# ---------------------------------------------------------- one-way IPv6
# b's firewall drops all inbound IPv6, a's is stateful: b's probe reaches the server, the
# candidates cross and b's PUNCHes reach a, but nothing reaches b.  Hearing the peer is
# no proof that it hears us: both sides must take the same path, here IPv4.
lab_set_v6fw b noinbound
v4_both() {
	[[ $(peer_addr "$LOG_A") == $LAB_NATB_IP:* && $(peer_addr "$LOG_B") == $LAB_NATA_IP:* ]] &&
		! grep -q '(IPv6)' "$LOG_A" "$LOG_B"
}
if pair v6ow "${V6[@]}" -- "${V6[@]}" && v4_both; then
	ok "inc/inc, b drops inbound IPv6: both win over IPv4 in $(win_ms "$LOG_A")/$(win_ms "$LOG_B") ms"
else
	not_ok "inc/inc, b drops inbound IPv6: both win over IPv4"
	dump
fi
# keyed: the echo of a's nonce proves nothing (b knows it from the server)
if pair v6owk "${V6[@]}" -k "$ka" -- "${V6[@]}" -k "$ka" && v4_both; then
	ok "keyed inc/inc, b drops inbound IPv6: both win over IPv4 in $(win_ms "$LOG_A")/$(win_ms "$LOG_B") ms"
else
	not_ok "keyed inc/inc, b drops inbound IPv6: both win over IPv4"
	dump
fi
lab_set_nat a random && lab_set_nat b random
if pair v6owr "${V6[@]}" -- "${V6[@]}" && relayed "$LOG_A" && relayed "$LOG_B"; then
	ok "random/random, b drops inbound IPv6: both relayed in $(win_ms "$LOG_A")/$(win_ms "$LOG_B") ms"
else
	not_ok "random/random, b drops inbound IPv6: both relayed"
	dump
fi
lab_set_v6fw b stateful

summary ipv6-punch

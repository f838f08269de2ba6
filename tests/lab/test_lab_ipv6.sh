#!/usr/bin/env bash
# test_lab_ipv6.sh - the lab's routed IPv6 (lab_up --ipv6 on), the foundation of issue 22.
# Global addresses reach the server without NAT; each site router's stateful firewall drops
# an unsolicited datagram from the WAN and admits the answer to one that left its LAN, and
# a simultaneous open passes both ways; lab_set_v6fw drop breaks IPv6; lab_flush forgets
# the firewall state; IPv4 is still NATed and n4 -c still punches it; the delay applies to
# IPv6; the extra sites and the second LAN have IPv6 too.  Root only; about 30 s.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/punch_lib.sh"

SUITE=lab-ipv6
DGRAM=$LAB_TOOLS/dgram
ECHO_PORT=7002 # dgram -e on srv: answers every datagram with "echo PAYLOAD"
TCP_PORT=7001  # socat on srv: answers a connection with the address it came from

lab_require_root || exit 1
t_start=$(_lab_now_ms)
for tool in dgram nfq-delay; do
	if [[ ! -x $LAB_TOOLS/$tool ]]; then
		not_ok "$LAB_TOOLS/$tool exists (run make lab-tools)"
		summary "$SUITE"
		exit 1
	fi
done
trap 'lab_down' EXIT
need_up "$SUITE" "the lab (inc/inc, c cone, --ipv6 on, --sites 3, --lan2 on)" \
	lab_up --nat-a inc --nat-b inc --nat-c cone --ipv6 on --sites 3 --lan2 on
echo "# lab_up in $(($(_lab_now_ms) - t_start)) ms"
need_up "$SUITE" "the server" start_server

# fw_drops SIDE: packets counted by the last rule of natSIDE's IPv6 firewall, the drop
# (new from the WAN in stateful mode, everything in drop mode)
fw_drops() {
	lab_exec "nat$1" nft list chain ip6 n4lab_fw6 forward | awk '$NF == "drop" {
		for (i = 1; i < NF; i++) if ($i == "packets") { print $(i + 1); exit } }'
}
drops_reach() { # SIDE MIN
	local n
	n=$(fw_drops "$1") && [[ -n $n ]] && ((n >= $2))
}
# peer NODE LOG ARGS...: dgram in NODE in the background, its output in LOG; waits until
# its socket is bound; sets PEER_PID.
peer() {
	local node=$1 log=$2
	shift 2
	: >"$log"
	PEER_PID=$(lab_bg "$node" "$log" "$DGRAM" "$@") || return 1
	lab_wait_for grep -q "^ready" "$log" --timeout 5
}
# heard LOG ADDR PORT PAYLOAD: LOG's dgram received PAYLOAD from ADDR PORT
heard() { grep -qF "from $2 $3: $4" "$1"; }
heard_nothing() { ! grep -q "^from" "$1"; }
v6_state() { # SIDE DPORT: natSIDE's conntrack entries for UDP to DPORT over IPv6
	lab_exec "nat$1" conntrack -L -f ipv6 -p udp --orig-port-dst "$2" 2>/dev/null
}

# ------------------------------------------------------------------ addresses
addr_ok() { # NODE ADDR: ADDR/64 on eth0, usable now (not tentative: no DAD)
	lab_exec "$1" ip -6 addr show dev eth0 | grep "inet6 $2/64 " | grep -vq tentative
}
bad=""
for n in a a2 b b2 c a3 srv; do
	v=LAB_${n^^}_IP6
	addr_ok "$n" "${!v}" || bad+=" $n"
done
check "every host has its global address, usable at once (missing or tentative:${bad:- none})" \
	test -z "$bad"

srv_echo_log=$LAB_DIR/srv-echo.log
peer srv "$srv_echo_log" -l "$ECHO_PORT" -e -w 600
# reach_srv NODE LPORT TAG: NODE's datagram reaches srv from NODE's global address and
# the echo comes back
reach_srv() {
	local node=$1 lport=$2 tag=$3 v log
	v=LAB_${node^^}_IP6
	log=$LAB_DIR/reach-$tag.log
	lab_exec "$node" "$DGRAM" -l "$lport" -d "$LAB_SRV_IP6" -D "$ECHO_PORT" -t "$tag" -x 1 -w 3 \
		>"$log" 2>&1
	heard "$srv_echo_log" "${!v}" "$lport" "$tag 1" &&
		heard "$log" "$LAB_SRV_IP6" "$ECHO_PORT" "echo $tag 1"
}

# ------------------------------------------------------------------ a <-> srv
lab_flush
check "UDP over IPv6: a's datagram reaches srv from a's own address $LAB_A_IP6 (no NAT), the echo returns" \
	reach_srv a 40001 a-udp
lab_bg srv "$LAB_DIR/srv-tcp.log" socat "TCP6-LISTEN:$TCP_PORT,fork,reuseaddr" \
	"SYSTEM:echo \"\$SOCAT_PEERADDR\"" >/dev/null
lab_wait_for lab_exec srv sh -c "ss -tlnH 'sport = :$TCP_PORT' | grep -q ." --timeout 5
tcp_seen=$(lab_exec a socat -T 3 - "TCP6:[$LAB_SRV_IP6]:$TCP_PORT,connect-timeout=3" </dev/null)
# socat writes every digit of the address; getent prints it back in the usual short form
tcp_seen=$(getent ahostsv6 "${tcp_seen//[][]/}" | awk 'NR == 1 { print $1 }')
check "TCP over IPv6: a connects to srv, which sees a's own address (saw '${tcp_seen}')" \
	test "$tcp_seen" = "$LAB_A_IP6"
check "UDP over IPv6: a2 reaches srv from its own address $LAB_A2_IP6" reach_srv a2 40002 a2-udp
check "UDP over IPv6: b reaches srv from its own address $LAB_B_IP6" reach_srv b 40003 b-udp

# ------------------------------------------------------------------ unsolicited
lab_flush
la=$LAB_DIR/unsol-a.log
peer a "$la" -l 5001 -w 30
pa=$PEER_PID
d0=$(fw_drops a)
lab_exec b "$DGRAM" -l 5002 -d "$LAB_A_IP6" -D 5001 -t unsolicited -w 0 >/dev/null
check "stateful: b's unsolicited datagram to a is dropped at nata ($(fw_drops a) drops, was $d0)" \
	lab_wait_for drops_reach a $((d0 + 1)) --timeout 5
check "stateful: a received nothing" heard_nothing "$la"
check "stateful: the dropped datagram left no state at nata" test -z "$(v6_state a 5001)"
lab_stop_pid "$pa"

# a sends first (dropped at natb: nothing left b's LAN to a yet; b's datagram above
# did, hence the flush), then b's answer passes
lab_flush
d0=$(fw_drops b)
peer a "$la" -l 5001 -d "$LAB_B_IP6" -D 5002 -t a-first -w 30
pa=$PEER_PID
lab_wait_for grep -q "^sent a-first 1" "$la" --timeout 5
check "stateful: a's first datagram to b is dropped at natb" \
	lab_wait_for drops_reach b $((d0 + 1)) --timeout 5
lab_exec b "$DGRAM" -l 5002 -d "$LAB_A_IP6" -D 5001 -t b-answer -w 0 >/dev/null
check "stateful: after a sent to b, b's datagram to a passes nata" \
	lab_wait_for heard "$la" "$LAB_B_IP6" 5002 "b-answer 1" --timeout 5
lab_stop_pid "$pa"

# ------------------------------------------------------------------ simultaneous open
# Both send 20 datagrams over a second from the same moment, as a punch does: whichever
# arrives before the other side's first has left is dropped, the rest pass both ways.
# The start is a second ahead so that both are bound by then even on a loaded machine.
lab_flush
la=$LAB_DIR/sim-a.log lb=$LAB_DIR/sim-b.log
da0=$(fw_drops a) db0=$(fw_drops b)
t=$(($(_lab_now_ms) + 1000))
peer a "$la" -l 5101 -d "$LAB_B_IP6" -D 5102 -n 20 -i 50 -a "$t" -t sim-a -w 1
pa=$PEER_PID
peer b "$lb" -l 5102 -d "$LAB_A_IP6" -D 5101 -n 20 -i 50 -a "$t" -t sim-b -w 1
pb=$PEER_PID
late=$(($(_lab_now_ms) - t))
check "simultaneous open: a hears b through both firewalls" \
	lab_wait_for grep -qF "from $LAB_B_IP6 5102: sim-b" "$la" --timeout 5
check "simultaneous open: b hears a through both firewalls" \
	lab_wait_for grep -qF "from $LAB_A_IP6 5101: sim-a" "$lb" --timeout 5
wait_pids 10 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
first_payload() { grep -m1 '^from' "$1" | sed 's/^from [^ ]* [0-9]*: //'; }
echo "# simultaneous open: both bound $((late < 0 ? -late : 0)) ms before the start" \
	"(late by $((late > 0 ? late : 0)) ms); a heard $(grep -c '^from' "$la") of 20," \
	"b $(grep -c '^from' "$lb") of 20; first heard: a '$(first_payload "$la")', b '$(first_payload "$lb")';" \
	"drops at nata $(($(fw_drops a) - da0)), natb $(($(fw_drops b) - db0))"

# ------------------------------------------------------------------ drop mode
lab_set_v6fw a drop
lab_flush
d0=$(fw_drops a)
lab_exec a "$DGRAM" -l 5201 -d "$LAB_SRV_IP6" -D "$ECHO_PORT" -t dropped-out -w 0 >/dev/null
check "drop: a's datagram to srv is dropped at nata" \
	lab_wait_for drops_reach a $((d0 + 1)) --timeout 5
check "drop: srv never heard it" bash -c "! grep -q dropped-out '$srv_echo_log'"
la=$LAB_DIR/drop-a.log lb=$LAB_DIR/drop-b.log
d0=$(fw_drops a)
t=$(($(_lab_now_ms) + 300))
peer a "$la" -l 5202 -d "$LAB_B_IP6" -D 5203 -n 5 -i 50 -a "$t" -t drop-a -w 10
pa=$PEER_PID
peer b "$lb" -l 5203 -d "$LAB_A_IP6" -D 5202 -n 5 -i 50 -a "$t" -t drop-b -w 10
pb=$PEER_PID
# a's 5 going out and b's 5 coming in (natb lets b's out: it is stateful); both still
# listen when the last is counted
check "drop: a simultaneous open a <-> b is dropped at nata both ways (10 datagrams)" \
	lab_wait_for drops_reach a $((d0 + 10)) --timeout 5
lab_stop_pid "$pa"
lab_stop_pid "$pb"
check "drop: neither a nor b heard anything" bash -c "! grep -q '^from' '$la' '$lb'"
v4_log=$LAB_DIR/drop-v4.log
lab_exec a "$DGRAM" -l 5204 -d "$LAB_SRV_IP" -D "$ECHO_PORT" -t v4 -x 1 -w 3 >"$v4_log" 2>&1
check "drop: IPv4 is untouched, a still reaches srv, NATed to nata's public address" \
	bash -c "grep -q 'from $LAB_SRV_IP $ECHO_PORT: echo v4 1' '$v4_log' &&
		grep -q 'from $LAB_NATA_IP [0-9]*: v4 1' '$srv_echo_log'"
lab_set_v6fw a stateful

# ------------------------------------------------------------------ lab_flush
lab_flush
la=$LAB_DIR/flush-a.log
peer a "$la" -l 5301 -d "$LAB_B_IP6" -D 5302 -t open-the-way -w 30
pa=$PEER_PID
lab_wait_for grep -q "^sent open-the-way 1" "$la" --timeout 5
lab_exec b "$DGRAM" -l 5302 -d "$LAB_A_IP6" -D 5301 -t before-flush -w 0 >/dev/null
check "flush: before the flush, b's answer reaches a" \
	lab_wait_for heard "$la" "$LAB_B_IP6" 5302 "before-flush 1" --timeout 5
check "flush: nata holds the flow's state" test -n "$(v6_state a 5302)"
lab_flush
check "flush: lab_flush removed it" test -z "$(v6_state a 5302)"
d0=$(fw_drops a)
lab_exec b "$DGRAM" -l 5302 -d "$LAB_A_IP6" -D 5301 -t after-flush -w 0 >/dev/null
check "flush: after the flush, the same datagram from b is unsolicited again and dropped" \
	lab_wait_for drops_reach a $((d0 + 1)) --timeout 5
check "flush: a did not receive it" bash -c "! grep -q after-flush '$la'"
lab_stop_pid "$pa"

# ------------------------------------------------------------------ open
lab_set_v6fw b open
lab_flush
lb=$LAB_DIR/open-b.log
peer b "$lb" -l 5501 -w 30
pb=$PEER_PID
lab_exec a "$DGRAM" -l 5502 -d "$LAB_B_IP6" -D 5501 -t unsolicited-open -w 0 >/dev/null
check "open: with natb's firewall open, a's unsolicited datagram reaches b" \
	lab_wait_for heard "$lb" "$LAB_A_IP6" 5502 "unsolicited-open 1" --timeout 5
lab_stop_pid "$pb"
lab_set_v6fw b stateful

# ------------------------------------------------------------------ sites, LAN 2, delay
lab_flush
check "sites: c reaches srv over IPv6 from its own address $LAB_C_IP6" reach_srv c 40004 c-udp
check "lan2: a3 reaches srv over IPv6 from its own address $LAB_A3_IP6" reach_srv a3 40005 a3-udp
la=$LAB_DIR/lan2-a.log
peer a "$la" -l 5401 -w 30
pa=$PEER_PID
lab_exec a3 "$DGRAM" -l 5402 -d "$LAB_A_IP6" -D 5401 -t guest -w 0 >/dev/null
# the isolation table's counter says the datagram reached nata and went no further
isolated() { lab_exec nata nft list table ip6 n4lab_isolate | grep -q 'counter packets [1-9]'; }
check "lan2: a3's datagram to a is dropped between nata's two LANs" \
	lab_wait_for isolated --timeout 5
check "lan2: a did not receive it" heard_nothing "$la"
lab_stop_pid "$pa"

rtt=""
if lab_set_delay 20; then
	rtt=$(lab_exec a ping -6 -n -c 6 -i 0.2 -W 2 "$LAB_SRV_IP6" |
		sed -nE 's|^rtt min/avg/max/mdev = ([0-9.]+)/.*|\1|p')
fi
lab_set_delay 0
check "delay 20: IPv6 crosses the delay too, min RTT a <-> srv in [40, 80) ms (${rtt:-none})" \
	awk -v r="${rtt:-0}" 'BEGIN { exit !(r >= 40 && r < 80) }'

# ------------------------------------------------------------------ IPv4 punch
lab_flush
t=$(_lab_now_ms)
check "IPv4 with --ipv6 on: n4 -c a <-> b still wins through inc/inc" run_pair v4punch -t 30
echo "# IPv4 punch: $(($(_lab_now_ms) - t)) ms for both clients (a won in $(win_ms "$LOG_A") ms)"
check "IPv4 with --ipv6 on: a datagram crosses a -> b on the punched ports" \
	message_crosses a "$LOG_A" b "$LOG_B"
check "IPv4 with --ipv6 on: each side's peer is the other NAT's public IPv4" \
	bash -c "[[ '$(peer_addr "$LOG_A")' == $LAB_NATB_IP:* && '$(peer_addr "$LOG_B")' == $LAB_NATA_IP:* ]]"

echo "# total $(($(_lab_now_ms) - t_start)) ms before lab_down"
summary "$SUITE"

#!/usr/bin/env bash
# Tests of the NAT lab itself: the NAT flavours map ports as documented, unsolicited inbound
# packets leave (or do not leave) state, hop counts, the delay and the noise are what the
# n4 lab tests assume, and lab_down leaves nothing behind.  Root only.
# Prints one line per check and ends with "lab: N passed, N failed".
set -uo pipefail # not -e: a failed check must not stop the others

# shellcheck source=tests/lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PASSED=0
FAILED=0
SINK_PORT=5000
ECHO_PORT=7000
SINK_LOG=""
NEXT_SPORT=40000

ok() {
	printf 'ok - %s\n' "$*"
	PASSED=$((PASSED + 1))
}

not_ok() {
	printf 'not ok - %s\n' "$*"
	FAILED=$((FAILED + 1))
}

# check DESCRIPTION CMD...: one line of output for one assertion
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

finish() {
	local rc=$?
	trap - EXIT
	lab_down "${LAB_ID:-}" || true
	printf 'lab: %d passed, %d failed\n' "$PASSED" "$FAILED"
	if ((FAILED > 0 || rc != 0)); then exit 1; fi
	exit 0
}

udp_listening() { # NODE PORT
	[[ -n "$(lab_exec "$1" ss -Hlun "sport = :$2")" ]]
}

# nft_packets NODE TABLE CHAIN: packets counted by the first counter in the chain
nft_packets() {
	lab_exec "$1" nft list chain ip "$2" "$3" | awk '/counter packets/ {
		for (i = 1; i < NF; i++) if ($i == "packets") { print $(i + 1); exit } }'
}

counter_at_least() { # NODE TABLE CHAIN MIN
	local n
	n=$(nft_packets "$1" "$2" "$3") && [[ -n "$n" ]] && ((n >= $4))
}

# probe NODE TAG: send one datagram from a fresh source port to the sink on srv; sets
# PROBE_IP and PROBE_PORT to the address srv saw it from (empty on failure).  No output,
# so it runs in this shell and NEXT_SPORT advances.
probe() {
	local node=$1 tag=$2 sport=$NEXT_SPORT
	NEXT_SPORT=$((NEXT_SPORT + 1))
	PROBE_IP="" PROBE_PORT=""
	lab_exec "$node" socat -u - "UDP-SENDTO:$LAB_SRV_IP:$SINK_PORT,sp=$sport" <<<"$tag" ||
		return 1
	lab_wait_for grep -q "^$tag " "$SINK_LOG" --timeout 3 || return 1
	read -r PROBE_IP PROBE_PORT < <(awk -v t="$tag" \
		'$1 == t { n = split($2, a, ":"); print a[1], a[n]; exit }' "$SINK_LOG")
	[[ -n "$PROBE_PORT" ]]
}

# probe_pair NODE TAG: two probes in a row; sets ip1 p1 ip2 p2 of the caller
probe_pair() {
	ip1="" p1="" ip2="" p2=""
	probe "$1" "$2-1" || return 1
	ip1=$PROBE_IP p1=$PROBE_PORT
	probe "$1" "$2-2" || return 1
	ip2=$PROBE_IP p2=$PROBE_PORT
}

start_sink() {
	# one line per datagram: "PAYLOAD PEERADDR:PEERPORT" (socat forks per datagram)
	# shellcheck disable=SC2016 # the script expands them
	printf '#!/bin/sh\nprintf "%%s %%s:%%s\\n" "$(cat)" "$SOCAT_PEERADDR" "$SOCAT_PEERPORT" >>%s\n' \
		"$SINK_LOG" >"$LAB_DIR/sink.sh"
	: >"$SINK_LOG"
	lab_bg srv "$LAB_DIR/sink-socat.log" socat -u "UDP-RECVFROM:$SINK_PORT,fork" \
		"SYSTEM:sh $LAB_DIR/sink.sh" >/dev/null || return 1
	lab_wait_for udp_listening srv "$SINK_PORT" --timeout 5
}

# rtt_ms_samples N: N UDP round trips a <-> srv over one socket, in ms, after one warm-up
rtt_ms_samples() {
	local n=$1 i t0 t1 line pid rc=0
	lab_bg srv "$LAB_DIR/echo.log" socat "UDP-LISTEN:$ECHO_PORT" PIPE >/dev/null || return 1
	lab_wait_for udp_listening srv "$ECHO_PORT" --timeout 5 || return 1
	coproc RTT { exec ip netns exec "$(lab_ns a)" socat - "UDP:$LAB_SRV_IP:$ECHO_PORT"; }
	pid=$RTT_PID
	exec {to_rtt}>&"${RTT[1]}" {from_rtt}<&"${RTT[0]}"
	for ((i = 0; i <= n; i++)); do
		t0=$EPOCHREALTIME
		if ! printf 'x%d\n' "$i" >&"$to_rtt" || ! read -r -t 2 line <&"$from_rtt" ||
			[[ "$line" != "x$i" ]]; then
			printf 'rtt: no echo for probe %d\n' "$i" >&2
			rc=1
			break
		fi
		t1=$EPOCHREALTIME
		((i == 0)) && continue # ARP, socat start-up
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
	done
	exec {to_rtt}>&- {from_rtt}<&-
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pkill_node_socat_echo
	return "$rc"
}

pkill_node_socat_echo() {
	local p
	for p in $(ip netns pids "$(lab_ns srv)"); do
		grep -q "UDP-LISTEN:$ECHO_PORT" "/proc/$p/cmdline" 2>/dev/null && lab_stop_pid "$p"
	done
	return 0
}

main() {
	local t_start t_up
	lab_require_root || {
		not_ok "lab prerequisites"
		return 1
	}
	for tool in nfq-delay noise; do
		if [[ ! -x "$LAB_TOOLS/$tool" ]]; then
			not_ok "$LAB_TOOLS/$tool exists (run make lab-tools)"
			return 1
		fi
	done
	t_start=$(_lab_now_ms)
	if ! lab_up --id "$$" --nat-a inc --nat-b inc; then
		not_ok "lab_up"
		return 1
	fi
	t_up=$(_lab_now_ms)
	ok "lab_up (inc/inc) in $((t_up - t_start)) ms"
	SINK_LOG="$LAB_DIR/sink.txt"
	check "udp sink on srv" start_sink || return 1

	local ip1 p1 ip2 p2
	# (1) inc: consecutive mappings +1, public address of the NAT; B has its own base
	probe_pair a inc
	check "inc: a's mappings arrive from $LAB_NATA_IP (got ${ip1:-none}, ${ip2:-none})" \
		test "${ip1:-}" == "$LAB_NATA_IP" -a "${ip2:-}" == "$LAB_NATA_IP"
	check "inc: consecutive mappings +1 (ports ${p1:-?} ${p2:-?})" \
		test "$((${p2:-0} - ${p1:-0}))" == 1
	probe b incb
	ip1=$PROBE_IP p1=$PROBE_PORT
	check "inc: b maps to $LAB_NATB_IP from its own base $LAB_INC_BASE_B (got ${ip1:-none}:${p1:-?})" \
		test "${ip1:-}" == "$LAB_NATB_IP" -a "${p1:-0}" -ge "$LAB_INC_BASE_B" \
		-a "${p1:-0}" -lt "$((LAB_INC_BASE_B + LAB_INC_SIZE))"

	# (2) cone: port preserved
	lab_set_nat a cone && lab_flush
	local sport=$NEXT_SPORT
	probe a cone
	ip1=$PROBE_IP p1=$PROBE_PORT
	check "cone: source port $sport preserved (got ${ip1:-none}:${p1:-?})" \
		test "${ip1:-}" == "$LAB_NATA_IP" -a "${p1:-}" == "$sport"

	# (3) random: not +1 (three pairs, so a coincidence cannot fail the test)
	lab_set_nat a random && lab_flush
	local i plus1=0 pairs="" in_range=1
	for i in 1 2 3; do
		probe_pair a "rnd$i"
		pairs+=" ${p1:-?}/${p2:-?}"
		[[ -n "${p2:-}" && -n "${p1:-}" && $((p2 - p1)) == 1 ]] && plus1=$((plus1 + 1))
		[[ -n "${p2:-}" && "${p1:-}" != "$p2" ]] || in_range=0
		for p in "${p1:-0}" "${p2:-0}"; do
			((p >= 10000 && p <= 60000)) || in_range=0
		done
	done
	check "random: distinct mappings in 10000-60000, not all +1 (pairs$pairs)" \
		test "$plus1" -lt 3 -a "$in_range" == 1

	# (4) unsolicited inbound: no state on inc, state on inc-linux
	lab_exec nata nft -f - <<EOF
table ip n4test {
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		udp dport 7777 counter
	}
}
EOF
	lab_set_nat a inc && lab_flush
	lab_exec srv socat -u - "UDP-SENDTO:$LAB_NATA_IP:7777,sp=5555" <<<unsolicited
	local seen=0 entries
	lab_wait_for counter_at_least nata n4test pre 1 --timeout 3 && seen=1
	entries=$(lab_exec nata conntrack -L -p udp --orig-port-dst 7777 2>/dev/null | wc -l)
	check "inc: unsolicited inbound reached nata and left no conntrack entry (entries $entries)" \
		test "$seen" == 1 -a "$entries" == 0
	lab_set_nat a inc-linux && lab_flush
	lab_exec srv socat -u - "UDP-SENDTO:$LAB_NATA_IP:7777,sp=5556" <<<unsolicited
	check "inc-linux: unsolicited inbound leaves a conntrack entry" \
		lab_wait_for conntrack_has nata 7777 --timeout 3
	lab_set_nat a inc && lab_flush

	# (5) hop count: TTL 2 from a crosses nata, expires at wan, never reaches natb
	lab_exec wan nft -f - <<EOF
table ip n4test {
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		ip saddr $LAB_NATA_IP udp dport 7778 ip ttl 1 counter
	}
}
EOF
	lab_exec natb nft -f - <<EOF
table ip n4test {
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		udp dport 7778 counter
	}
}
EOF
	lab_exec a socat -u - "UDP-SENDTO:$LAB_NATB_IP:7778,sp=$NEXT_SPORT,ttl=2" <<<ttl2
	NEXT_SPORT=$((NEXT_SPORT + 1))
	check "ttl 2 from a reaches wan with ttl 1" \
		lab_wait_for counter_at_least wan n4test pre 1 --timeout 3
	# a later TTL 64 packet to the same place does arrive, so natb's counter works
	lab_exec a socat -u - "UDP-SENDTO:$LAB_NATB_IP:7778,sp=$NEXT_SPORT" <<<ttl64
	NEXT_SPORT=$((NEXT_SPORT + 1))
	lab_wait_for counter_at_least natb n4test pre 1 --timeout 3
	check "ttl 2 from a never reaches natb (natb saw $(nft_packets natb n4test pre) of 2, only ttl 64)" \
		test "$(nft_packets natb n4test pre)" == 1

	# (6) delay: 20 ms per crossing of wan, so a round trip a <-> srv takes 40 ms
	local samples min max
	if lab_set_delay 20; then
		samples=$(rtt_ms_samples 5) || samples=""
	fi
	lab_set_delay 0
	min=$(sort -n <<<"$samples" | head -n1)
	max=$(sort -n <<<"$samples" | tail -n1)
	# Load only adds time: the fastest sample says the delay is applied once each way
	# (>= 40), not twice (>= 80).  The figures are bench/timing.sh's to print.
	check "delay 20: the fastest round trip is >= 40 and < 80 ms (samples: $(echo "$samples" | tr '\n' ' '))" \
		awk -v a="${min:-0}" -v s="$samples" \
		'BEGIN { exit !(s != "" && a >= 40 && a < 80) }'

	# (7) noise: 500 flows/s for ~1 s from a2 moves nata's next port by ~500
	lab_flush
	local before after sent noise_s expect
	probe a noise0
	before=$PROBE_PORT
	lab_set_noise 500 0
	sleep 1 # the measured interval itself, not a wait for an event
	lab_set_noise 0 0
	probe a noise1
	after=$PROBE_PORT
	read -r sent noise_s < <(awk '/^noise: sent/ { s = $3; t = $7 } END { print s, t }' \
		"$LAB_DIR/noise-a.log")
	expect=$(awk -v t="${noise_s:-0}" 'BEGIN { printf "%d", 500 * t }')
	local moved=$((${after:-0} - ${before:-0} - 1))
	check "noise 500/s for ${noise_s:-?} s: next port moved by $moved (sent ${sent:-?}, expect $expect +-30%)" \
		awk -v m="$moved" -v e="$expect" 'BEGIN { exit !(e > 0 && m >= 0.7 * e && m <= 1.3 * e) }'

	# (8) lab_down leaves no namespace and no process behind, helpers running included
	lab_set_delay 5 && lab_set_noise 50 50
	local pids=() n pid stray=() left
	for n in "${LAB_NODES[@]}"; do
		while read -r pid; do pids+=("$pid"); done < <(ip netns pids "$(lab_ns "$n")")
	done
	local t_down
	t_down=$(_lab_now_ms)
	lab_down "$LAB_ID"
	t_down=$(($(_lab_now_ms) - t_down))
	left=$(ip netns list | grep -c "^n4-$LAB_ID-")
	for pid in "${pids[@]}"; do
		_lab_pid_alive "$pid" && stray+=("$pid")
	done
	check "lab_down in $t_down ms: no namespace left ($left), no stray process (${#stray[@]} of ${#pids[@]})" \
		test "$left" == 0 -a "${#stray[@]}" == 0 -a ! -e "$LAB_DIR"
	check "lab_down again is a no-op" lab_down "$LAB_ID"
	printf '# total %d ms\n' "$(($(_lab_now_ms) - t_start))"
}

conntrack_has() { # NODE DPORT
	[[ -n "$(lab_exec "$1" conntrack -L -p udp --orig-port-dst "$2" 2>/dev/null)" ]]
}

trap finish EXIT
main

#!/usr/bin/env bash
# test_shim_listener.sh - a listener without N4_PEER keeps its peer at one address.
#
# Many game servers and VoIP tools key a peer by the address they first heard it
# from and answer only that one (tests/helpers/shim_session -L).  Behind the shim a
# listener without N4_PEER sees its peer's real address; after a recovery that
# address changes (the peer's NAT maps a new port), and such a program would answer
# the old one for ever.  The shim keeps the first address as the peer's alias: the
# program goes on hearing the peer from it and its answers to it reach the peer.
#   silence: both NATs forget idle UDP after 5 s, 20 s of silence with the default
#            keepalive (15 s): the path is lost and must recover;
#   flush:   the far side's NAT (A, the dialler's) loses its state mid-stream, on an
#            incrementing NAT and a plain-Linux one.
# Each case checks that the peer's real address did change (the case exercised the
# alias), that the listener never heard from another address, and that both sides
# hear each other afterwards.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
PROG=$N4_BIN/tests/shim_session
PH=192.0.2.77:7777 # the dialler's placeholder; the listener has none

lab_with_server shim-listener --nat-a inc --nat-b inc
[[ -n ${KEEP_LOGS:-} ]] && trap 'cp "$LAB_DIR"/*.log "$KEEP_LOGS"/ 2>/dev/null; lab_down' EXIT

dialler() { # LOG IDENT ARGS...
	local log=$1 ident=$2
	shift 2
	lab_bg a "$log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" N4_PEER="$PH" \
		LD_PRELOAD="$SHIM" "$PROG" -c "$PH" "$@"
}
listener() { # LOG IDENT ARGS...: binds 5000, N4_LISTEN, no N4_PEER, latched
	local log=$1 ident=$2
	shift 2
	lab_bg b "$log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" N4_LISTEN=5000 \
		LD_PRELOAD="$SHIM" "$PROG" -l 5000 -L "$@"
}
streaming() { grep -q "^first heard from" "$1"; }
# The peer's real address at the WIN, and after the last recovery (the shim's log).
first_peer() { sed -nE 's/.*punched: local port [0-9]+ <-> peer ([0-9.]+:[0-9]+).*/\1/p' "$1" | head -n 1; }
last_peer() { sed -nE 's/.*path recovered .*<-> peer ([0-9.]+:[0-9]+).*/\1/p' "$1" | tail -n 1; }
first_heard() { sed -nE 's/^first heard from ([0-9.]+:[0-9]+).*/\1/p' "$1" | head -n 1; }

# The checks every case makes on the listener's log lb and the dialler's la.
alias_checks() { # NAME LA LB [MIN_HEARD]
	local name=$1 la=$2 lb=$3 min=${4:-} p0 p1 fh others ha hb
	p0=$(first_peer "$lb") p1=$(last_peer "$lb") fh=$(first_heard "$lb")
	others=$(field "$lb" others) ha=$(field "$la" heard-after-quiet) hb=$(field "$lb" heard-after-quiet)
	echo "# $name: peer at the WIN ${p0:-?}, after recovery ${p1:-none}, the program first heard ${fh:-nothing}"
	check "$name: the listener's path recovered onto a new peer address (${p0:-?} -> ${p1:-none})" \
		test -n "$p0" -a -n "$p1" -a "$p0" != "${p1:-}"
	check "$name: the program first heard its peer at its address at the WIN ($fh)" \
		test -n "$fh" -a "$fh" = "$p0"
	check "$name: the program never heard from another address (${others:-?} datagrams)" \
		test "${others:-1}" -eq 0
	[[ -z $min ]] && return
	check "$name: the dialler hears the listener again ($ha datagrams)" test "${ha:-0}" -ge "$min"
	check "$name: the listener hears the dialler again ($hb datagrams)" test "${hb:-0}" -ge "$min"
}

# 20 s of silence behind NATs that forget after 5 s, default keepalive (15 s).
silence_case() {
	local la=$LAB_DIR/sil-a.log lb=$LAB_DIR/sil-b.log pa pb
	lab_flush
	set_udp_timeout 5
	pb=$(listener "$lb" lsil -d 36 -q 2:22)
	pa=$(dialler "$la" lsil -d 36 -q 2:22)
	wait_pids 60 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	set_udp_timeout 30
	alias_checks "silence" "$la" "$lb" 20
}

# NAT A (the far side) loses its state mid-stream.
last_rx() { sed -nE 's/^done .* last-rx ([-0-9]+).*/\1/p' "$1"; }
flush_case() { # FLAVOR
	local f=$1 la=$LAB_DIR/fl-$1-a.log lb=$LAB_DIR/fl-$1-b.log pa pb t
	lab_flush
	[[ $f != inc ]] && { lab_set_nat a "$f"; lab_set_nat b "$f"; }
	pb=$(listener "$lb" lfl${f:4:1} -d 16)
	pa=$(dialler "$la" lfl${f:4:1} -d 16)
	if ! lab_wait_for both_punched "$la" "$lb" --timeout 10 ||
		! lab_wait_for streaming "$lb" --timeout 5; then
		not_ok "flush ($f): the pair never punched"
		lab_stop_pid "$pa"
		lab_stop_pid "$pb"
		return
	fi
	t=$((${EPOCHREALTIME/[.,]/} / 1000))
	lab_exec nata conntrack -F >/dev/null 2>&1
	wait_pids 30 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	local ra rb
	ra=$(resume_ms "$la" "$t") rb=$(resume_ms "$lb" "$t")
	echo "# flush ($f): resumed after ${ra:-never} ms at a, ${rb:-never} ms at b"
	# Heard again after the flush, and still hearing at the end of the 16 s run
	# (the last datagram within its last second): the stream carried on.
	check "flush ($f): the dialler hears the listener again and to the end (${ra:-never} ms, last at $(last_rx "$la") ms)" \
		test -n "$ra" -a "$(last_rx "$la")" -ge 15000
	check "flush ($f): the listener hears the dialler again and to the end (${rb:-never} ms, last at $(last_rx "$lb") ms)" \
		test -n "$rb" -a "$(last_rx "$lb")" -ge 15000
	alias_checks "flush ($f)" "$la" "$lb"
	if [[ -z $ra || -z $rb ]]; then # what the two sides saw, for the failure report
		tail -n 12 "$la" | sed 's/^/# a: /'
		tail -n 12 "$lb" | sed 's/^/# b: /'
	fi
	[[ $f != inc ]] && { lab_set_nat a inc; lab_set_nat b inc; }
}

silence_case
flush_case inc
flush_case inc-linux
summary shim-listener

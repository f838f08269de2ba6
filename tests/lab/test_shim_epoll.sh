#!/usr/bin/env bash
# test_shim_epoll.sh - our own test program through the shim across two NAT4s: a
# non-blocking socket on epoll, sendmmsg/recvmmsg, two threads, a fork after the WIN;
# 10,000 numbered datagrams each way arrive complete and unaltered, reported as coming
# from the placeholder, and the punch leaves no descriptor behind.  Three shapes of
# program socket: unbound + sendto (the shim binds it to the winning port), bound by
# the program + connect (the winning socket is dup2()ed in, epoll registration and
# options carried over), and an explicit N4_PEER placeholder on both sides.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
PROG=$N4_BIN/tests/shim_epoll
COUNT=10000

lab_with_server shim --nat-a inc --nat-b inc

# run_case NAME IDENT "ENV_A" "ARGS_A" "ENV_B" "ARGS_B"
run_case() {
	local name=$1 ident=$2 env_a=$3 args_a=$4 env_b=$5 args_b=$6 pa pb
	lab_flush
	# shellcheck disable=SC2086 # word splitting of the argument strings is intended
	pa=$(lab_bg a "$LAB_DIR/$ident-a.log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" \
		LD_PRELOAD="$SHIM" $env_a "$PROG" -n $COUNT -T 50 $args_a)
	# shellcheck disable=SC2086
	pb=$(lab_bg b "$LAB_DIR/$ident-b.log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" \
		N4_LISTEN=5000 LD_PRELOAD="$SHIM" $env_b "$PROG" -n $COUNT -T 50 -l 5000 $args_b)
	wait_pids 55 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	for side in a b; do
		local log=$LAB_DIR/$ident-$side.log
		if grep -q "^shim_epoll: ok: received $COUNT/$COUNT" "$log"; then
			ok "$name: $side received $COUNT/$COUNT unaltered, no descriptor leaked"
		else
			not_ok "$name: $side received $COUNT/$COUNT unaltered, no descriptor leaked"
			grep -v " INFO " "$log" | tail -n 5 >&2
		fi
	done
	grep "^shim_epoll:" "$LAB_DIR/$ident-a.log" "$LAB_DIR/$ident-b.log" | sed 's/^/# /'
}

run_case "unbound socket, sendto, fork" ep1 "" "-c $LAB_SRV_IP:5000 -e $LAB_SRV_IP:5000 -f" "" "-f"
run_case "program-bound socket, connect (dup2 swap)" ep2 "" \
	"-c $LAB_SRV_IP:5000 -b 6000 -C -e $LAB_SRV_IP:5000" "" ""
ph=192.0.2.77:7777
run_case "N4_PEER placeholder on both sides" ep3 "N4_PEER=$ph" "-c $ph -e $ph -f" \
	"N4_PEER=$ph" "-e $ph -f"

summary shim

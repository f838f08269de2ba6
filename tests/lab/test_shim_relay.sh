#!/usr/bin/env bash
# test_shim_relay.sh - a relayed path through the shim, and back to direct: two
# random-port NATs make the server relay the pair; the keeper refreshes the relay
# registration and its acks never reach the program; then both NATs become
# port-incrementing and the keepers' next direct attempt (N4_UPGRADE) moves the path to
# a punched one, make-before-break, with one line each; the stream goes on throughout.
# Then the same with a pre-shared key (N4_KEY).  Needs the server's relay (N4_EXT_RELAY); without it the suite fails.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
PROG=$N4_BIN/tests/shim_session
PH=192.0.2.77:7777

if ! "$N4" --help 2>&1 | grep -q -- "--no-relay"; then
	not_ok "n4 --help names --no-relay: this build has no relay to test"
	summary shim-relay
	exit 1
fi
lab_with_server shim-relay --nat-a random --nat-b random
[[ -n ${KEEP_LOGS:-} ]] && trap 'cp "$LAB_DIR"/*.log "$KEEP_LOGS"/ 2>/dev/null; lab_down' EXIT

# side NODE LOG ARGS...: the session program under the shim; KEY_ENV adds a key.
side() {
	local node=$1 log=$2
	shift 2
	lab_bg "$node" "$log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT=rly N4_PEER="$PH" \
		N4_LISTEN=5000 N4_UPGRADE=5 N4_KEEPALIVE=2 ${KEY_ENV:-} LD_PRELOAD="$SHIM" "$PROG" "$@"
}
relayed() { grep -q "punched: .*(relayed through the server)" "$1"; }

# relay_case TAG: random/random NATs, relayed; then both become inc, and the path
# moves to direct.  With KEY_ENV the pair is keyed: proven through the relay, and
# again on the direct path before the move.
relay_case() {
	local t=$1 la=$LAB_DIR/$1-a.log lb=$LAB_DIR/$1-b.log pa pb
	lab_set_nat a random && lab_set_nat b random
	lab_flush
	pa=$(side a "$la" -c "$PH" -d 22)
	pb=$(side b "$lb" -l 5000 -d 22)
	if lab_wait_for relayed "$la" --timeout 15 && lab_wait_for relayed "$lb" --timeout 5; then
		ok "$t: random/random: both sides relayed"
	else
		not_ok "$t: random/random: both sides relayed"
	fi
	# New mappings are punchable from now on; the relayed ones stay as they are.
	lab_set_nat a inc && lab_set_nat b inc
	check "$t: the next direct attempt moves A to a punched path" \
		lab_wait_for grep -q "relayed path moved to direct" "$la" --timeout 15
	check "$t: ... and B" lab_wait_for grep -q "relayed path moved to direct" "$lb" --timeout 5
	# The effect, not only the log line: once both moved, the stream no longer
	# passes through the relay (a few datagrams in flight during the switch at most).
	local f_moved f_end ga gb
	f_moved=$(status_field relay_forwarded)
	wait_pids 20 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	f_end=$(status_field relay_forwarded)
	check "$t: after the move the relay forwarded ${f_moved:-?} -> ${f_end:-?} datagrams (<= 4 more)" \
		test -n "$f_moved" -a -n "$f_end" -a $((${f_end:-0} - ${f_moved:-0})) -le 4
	grep -h "moved to direct" "$la" "$lb" | sed 's/^.*INFO/# /'
	ga=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$la") gb=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$lb")
	check "$t: the stream went on throughout (a got $ga, b got $gb of ~215)" \
		test "${ga:-0}" -ge 180 -a "${gb:-0}" -ge 180
	check "$t: no relay registration or ack reached either program" \
		test -z "$(grep -h '^got a relay registration\|^got a PUNCH' "$la" "$lb")"
	if [[ -n ${KEY_ENV:-} ]]; then
		check "$t: both sides were keyed (no 'no key' warning, long ids sent)" \
			bash -c "! grep -q 'no key:' '$la' '$lb' && grep -q '=> Keyid from' '$SRV_LOG'"
	fi
}

relay_case plain
KEY_ENV="N4_KEY=$("$N4" genkey)" relay_case keyed
summary shim-relay

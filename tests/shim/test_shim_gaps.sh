#!/usr/bin/env bash
# test_shim_gaps.sh - the shim's corners (issue 8 item 6, issue 9 item 5), each with
# the program that shows it (tests/helpers/shim_gaps.c), on the loopback of a network
# namespace of its own with `n4 -s` in it.  Two shimmed programs pair on loopback; a
# listener on the placeholder (127.0.0.2:5000, N4_PEER) records anything sent there
# raw.  Checked:
#   - an AF_INET destination on an AF_INET6 socket (sendto, connect+send, sendmsg,
#     sendmmsg) designates and reaches the peer; nothing reaches the placeholder;
#   - a program whose socket is descriptor 2 (stderr closed): the peer receives only
#     the program's data, and the shim's log still reaches the original stderr;
#   - a socket bound to port 0: getsockname gives the real port after the WIN, and a
#     classic socket filter given from memory the program freed still filters;
#   - readv and __read_chk never return the peer's late PUNCH;
#   - after closefrom() or fclose(fdopen()) on a failed socket, a file that gets the
#     number writes like a file;
#   - without N4_PEER, a datagram to port 53 of the server's IP is not designated.
# N4_SHIM=path runs the same cases against another build of the library (e.g. the one
# before a fix: each case fails there).
set -u
# The namespace is unshare(1)'s: a user namespace makes it without root (make check).
if [[ -z ${N4_GAPS_NETNS:-} ]]; then
	uflag=-rn
	unshare -rn true 2>/dev/null || uflag=-n
	if ! unshare "$uflag" true 2>/dev/null; then
		echo "skip - needs root: no user namespaces here, and unshare -n needs root"
		echo "shim_gaps: 0 passed, 0 failed, 1 skipped"
		exit 0
	fi
	exec unshare "$uflag" env N4_GAPS_NETNS=1 bash "$0" "$@"
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${N4_BUILD:-$HERE/../../build}
SHIM=${N4_SHIM:-$BUILD/libn4shim.so}
GAPS=$BUILD/tests/shim_gaps
N4=$BUILD/n4
PH=127.0.0.2
PH_PORT=5000
LISTEN=6000
TMP=$(mktemp -d)
pass=0
fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $*"; fail=$((fail + 1)); }
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

ip link set lo up
in_ns() { "$@"; }
# wait_for SECONDS CMD...: poll until CMD succeeds.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.05
	done
}
listening() { in_ns ss -Hlun "sport = :$1" | grep -q .; }
gone() { ! kill -0 "$1" 2>/dev/null; }

in_ns "$N4" -s >"$TMP/server.log" 2>&1 &
PIDS+=($!)
wait_for 5 grep -q "serving on" "$TMP/server.log" || {
	cat "$TMP/server.log"
	echo "shim_gaps: 0 passed, 1 failed"
	exit 1
}
# Everything sent to the placeholder raw lands here.  One control datagram, sent on
# purpose without the shim, must land too: "nothing reaches the placeholder" then
# means the listener was alive to see it.
in_ns socat -u "UDP4-RECV:$PH_PORT,bind=$PH" STDOUT >"$TMP/ph.out" 2>/dev/null &
PIDS+=($!)
check "the placeholder's listener is up" wait_for 5 listening "$PH_PORT"
CONTROL="control-$RANDOM-$RANDOM"
printf '%s\n' "$CONTROL" | in_ns socat -u STDIN "UDP4-SENDTO:$PH:$PH_PORT"
check "the placeholder's listener records a control datagram sent to it raw" \
	wait_for 5 grep -qxF "$CONTROL" "$TMP/ph.out"
# only_control_at_placeholder: the listener got nothing but the control datagram.
only_control_at_placeholder() { ! grep -qvxF "$CONTROL" "$TMP/ph.out"; }

# pair ID -- ARGS...: the peer (N4_LISTEN) and `shim_gaps ARGS` (placeholder $PH:$PH_PORT)
# pair on identifier ID; outputs in $TMP/ID.{peer,a}[.err].  A's status in $A_RC.
pair() {
	local id=$1
	shift 2
	in_ns env N4_SERVER=127.0.0.1 N4_IDENT="$id" N4_LISTEN=$LISTEN N4_TIMEOUT=15 \
		LD_PRELOAD="$SHIM" "$GAPS" peer $LISTEN >"$TMP/$id.peer" 2>"$TMP/$id.peer.err" &
	local ppid=$!
	PIDS+=($ppid)
	in_ns env N4_SERVER=127.0.0.1 N4_PEER=$PH:$PH_PORT N4_IDENT="$id" N4_TIMEOUT=15 \
		LD_PRELOAD="$SHIM" timeout 30 "$GAPS" "$@" >"$TMP/$id.a" 2>"$TMP/$id.a.err"
	A_RC=$?
	# The peer leaves on "bye"; one that never got it is stopped.
	wait_for 5 gone "$ppid" || kill "$ppid" 2>/dev/null
}
peer_got() { grep -qxF "got $2" "$TMP/$1.peer"; }
raw_at_placeholder() { grep -qF "$1" "$TMP/ph.out"; }

# 1. AF_INET destination on an AF_INET6 socket.
for how in sendto connect sendmsg sendmmsg; do
	id=v6${how:4:4}
	pair "$id" -- v4on6 $PH $PH_PORT "$how"
	check "v4 destination on a v6 socket ($how): the call succeeds" test "$A_RC" -eq 0
	check "v4 destination on a v6 socket ($how): the peer gets the data" \
		peer_got "$id" "v4on6-$how"
	if raw_at_placeholder "v4on6-$how"; then
		not_ok "v4 destination on a v6 socket ($how): nothing reaches the placeholder"
	else
		ok "v4 destination on a v6 socket ($how): nothing reaches the placeholder"
	fi
done

# 2. The program's socket is descriptor 2 (closeall: after closing every descriptor
# above 2 first, the shim's private copy of stderr included, as daemons do).
for variant in plain closeall; do
	id=err${variant:0:3}
	args=(stderr $PH $PH_PORT)
	[[ $variant == closeall ]] && args+=(closeall)
	pair "$id" -- "${args[@]}"
	what="socket on descriptor 2 ($variant)"
	check "$what: the program ran (status $A_RC)" test "$A_RC" -eq 0
	printf 'got data-1\ngot bye\n' >"$TMP/$id.want"
	grep -v '^bound' "$TMP/$id.peer" >"$TMP/$id.got"
	check "$what: the peer receives only the program's data" \
		cmp -s "$TMP/$id.got" "$TMP/$id.want"
	sed 's/^/# peer: /' "$TMP/$id.got" | head -n 5
	check "$what: the shim's log still reaches the original stderr" \
		grep -q "punched: local port" "$TMP/$id.a.err"
	check "$what: nothing reaches the placeholder" only_control_at_placeholder
done

# 3. Bound to port 0: getsockname and a filter program from freed memory.
pair bnd0 -- bound0 $PH $PH_PORT
port=$(sed -n 's/^port //p' "$TMP/bnd0.a")
won=$(sed -nE 's/.*punched: local port ([0-9]+).*/\1/p' "$TMP/bnd0.a.err")
check "bound to port 0: getsockname reports the real port after the WIN (${port:-?} = ${won:-?})" \
	test -n "$port" -a "$port" != 0 -a "$port" = "$won"
check "bound to port 0: the program's socket filter and the shim's late-PUNCH filter both apply" \
	grep -qx "first keep" "$TMP/bnd0.a"
sed 's/^/# a: /' "$TMP/bnd0.a"

# 4. readv and __read_chk go through the late-PUNCH filter.
for how in readv read_chk; do
	id=rd${how:5:3}${how:0:1}
	pair "$id" -- punchread $PH $PH_PORT "$how"
	check "$how: the peer's late PUNCH never reaches the program" \
		grep -qx "first real" "$TMP/$id.a"
	sed 's/^/# a: /' "$TMP/$id.a"
done

# 5. Numbers reused after closes the shim does not see.  No server reachable: the
# designating send fails at once and the entry is left failed.
for how in closefrom fclose; do
	in_ns env N4_SERVER=192.0.2.1 N4_PEER=$PH:$PH_PORT N4_TIMEOUT=5 LD_PRELOAD="$SHIM" \
		timeout 20 "$GAPS" reuse $PH $PH_PORT "$how" "$TMP/reuse-$how.file" \
		>"$TMP/reuse-$how.a" 2>"$TMP/reuse-$how.err"
	check "after $how, a file given the socket's number writes like a file" \
		grep -q "write to the file ok" "$TMP/reuse-$how.a"
	sed 's/^/# /' "$TMP/reuse-$how.a"
done

# 6. Without N4_PEER the server's IP is the placeholder, but not its DNS port.
in_ns socat -u "UDP4-RECV:53,bind=127.0.0.1" STDOUT >"$TMP/dns.out" 2>/dev/null &
PIDS+=($!)
check "port 53: the listener is up" wait_for 5 listening 53
in_ns env N4_SERVER=127.0.0.1 N4_IDENT=dns N4_TIMEOUT=3 LD_PRELOAD="$SHIM" \
	timeout 20 "$GAPS" dns 127.0.0.1 >"$TMP/dns.a" 2>"$TMP/dns.err"
check "port 53 of the server's IP is not a placeholder: the datagram goes out" \
	wait_for 3 grep -q "dns-query" "$TMP/dns.out"
check "port 53: the shim did not designate the socket" \
	test "$(grep -c designated "$TMP/dns.err")" -eq 0

echo "shim_gaps: $pass passed, $fail failed"
((fail == 0))

#!/usr/bin/env bash
# test_shim_passthrough.sh - with libn4shim.so loaded and nothing designated, programs
# behave exactly as without it: our transcript program (every interposed call, TCP and
# UDP on loopback, fork, dups, epoll) prints the same lines and leaks no descriptor, and
# nc exchanges the same bytes over TCP and UDP.  Loopback only: no lab needed.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${N4_BUILD:-$HERE/../../build}
SHIM=$BUILD/libn4shim.so
PASS_PROG=$BUILD/tests/shim_pass
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $*"; fail=$((fail + 1)); }
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# Active but nothing matches: the server is elsewhere, loopback is not a placeholder.
shim_env=(N4_SERVER=192.0.2.1 N4_LISTEN=5999 LD_PRELOAD="$SHIM")

# Control: with this environment the shim really is in the process (else every
# "same as without it" below would pass for nothing).
check "control: the shim is loaded with this environment" \
	env "${shim_env[@]}" grep -q libn4shim.so /proc/self/maps

timeout 20 "$PASS_PROG" >"$TMP/plain.txt" 2>&1
check "transcript program passes without the shim" test $? -eq 0
timeout 20 env "${shim_env[@]}" "$PASS_PROG" >"$TMP/shim.txt" 2>&1
check "transcript program passes with the shim" test $? -eq 0
check "transcripts are identical ($(wc -l <"$TMP/plain.txt") lines)" \
	cmp -s "$TMP/plain.txt" "$TMP/shim.txt"
check "no descriptor leaked with the shim" grep -q "^ok no descriptor leaked" "$TMP/shim.txt"
diff "$TMP/plain.txt" "$TMP/shim.txt" | head -n 10 | sed 's/^/# /'

# nc over loopback, TCP then UDP, with and without the shim: same bytes both ways.
free_port() {
	local p
	for p in $(shuf -i 20000-60000 -n 20); do
		ss -Htanu "sport = :$p" | grep -q . || {
			echo "$p"
			return
		}
	done
}
# lines_within FILE N: poll (up to 15 s: a loaded machine) until FILE has N lines.
lines_within() {
	local i
	for ((i = 0; i < 750; i++)); do
		[[ -e $1 ]] && (($(wc -l <"$1") >= $2)) && return 0
		sleep 0.02
	done
	return 1
}
exchange() { # PROTO(tcp|udp) PRELOAD(0|1) OUT
	local proto=$1 pre=$2 out=$3 port u=() envs=()
	port=$(free_port)
	[[ $proto == udp ]] && u=(-u)
	((pre)) && envs=("${shim_env[@]}")
	seq 1 200 >"$TMP/in-client"
	seq 1000 1100 >"$TMP/in-server"
	: >"$out.server"
	: >"$out.client"
	# The server answers once the client's data arrived; the client's stdin stays
	# open until the answer is in (at most 15 s: polled, not slept on); both quit when
	# their stdin ends.
	(lines_within "$out.server" 200; cat "$TMP/in-server") | env "${envs[@]}" timeout 20 nc "${u[@]}" -q 1 -l 127.0.0.1 "$port" \
		>"$out.server" 2>"$out.server.err" &
	local spid=$!
	local i
	for i in $(seq 50); do
		ss -Hln"${proto:0:1}" "sport = :$port" | grep -q . && break
		sleep 0.02
	done
	(cat "$TMP/in-client"; lines_within "$out.client" 101) | env "${envs[@]}" timeout 20 nc "${u[@]}" -q 1 127.0.0.1 "$port" \
		>"$out.client" 2>"$out.client.err"
	wait "$spid"
	cmp -s "$out.server" "$TMP/in-client" && cmp -s "$out.client" "$TMP/in-server"
}
for proto in tcp udp; do
	exchange "$proto" 0 "$TMP/$proto-plain"
	r0=$?
	exchange "$proto" 1 "$TMP/$proto-shim"
	r1=$?
	check "nc $proto on loopback without the shim" test $r0 -eq 0
	check "nc $proto on loopback with the shim, same bytes both ways" test $r1 -eq 0
	check "nc $proto: the shim printed nothing" test ! -s "$TMP/$proto-shim.client.err" -a \
		! -s "$TMP/$proto-shim.server.err"
done

echo "shim: $pass passed, $fail failed"
((fail == 0))

#!/usr/bin/env bash
# examples/mosh.sh - mosh between two hosts behind two NAT4s: mosh-server and
# mosh-client unmodified, under libn4shim.so.  No ssh is involved: mosh-server is
# started by hand on B and its key is passed to A, as `mosh --ssh` would do.
#
# In the real world (server S running `n4 -s`):
#   host B:  n4shim -s S -L 60001 -- mosh-server new -p 60001
#            (prints "MOSH CONNECT 60001 KEY", then detaches)
#   host A:  MOSH_KEY=KEY n4shim -s S -- mosh-client S 60001
# mosh-server binds its port, prints its key and waits: its bind to N4_LISTEN must
# return at once with the rendezvous in the background (the shim's non-blocking
# listener), or the key is never printed.  mosh needs a UTF-8 locale on both sides.
#
# Here both hosts live in the NAT lab (network namespaces, root needed); a command is
# typed into the client and its output, computed on B, shows in A's terminal.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/lab/lib.sh"
source "$here/../tests/lab/punch_lib.sh"
WRAP=$N4_BIN/n4shim
lab_require_root || exit 1
spid=
trap '[[ -n $spid ]] && kill "$spid" 2>/dev/null; lab_down' EXIT
lab_up --nat-a "${NAT:-inc}" --nat-b "${NAT:-inc}" || exit 1
start_server || exit 1
S=$LAB_SRV_IP
d=$LAB_DIR
export LANG=C.UTF-8 LC_ALL=C.UTF-8

echo "host b: n4shim -s $S -L 60001 -- mosh-server new -p 60001 -- /bin/sh"
lab_bg b "$d/b.log" env MOSH_SERVER_NETWORK_TMOUT=30 "$WRAP" -s "$S" -L 60001 -- \
	mosh-server new -p 60001 -- /bin/sh >/dev/null
lab_wait_for grep -q "^MOSH CONNECT" "$d/b.log" --timeout 10 || {
	echo "mosh-server did not print its key:"
	cat "$d/b.log"
	exit 1
}
key=$(sed -nE 's/^MOSH CONNECT [0-9]+ ([^ ]+).*/\1/p' "$d/b.log" | head -n 1)
spid=$(sed -nE 's/.*mosh-server detached, pid = ([0-9]+).*/\1/p' "$d/b.log" | head -n 1)
echo "host a: MOSH_KEY=... n4shim -s $S -- mosh-client $S 60001   (in a terminal)"
mkfifo "$d/keys"
exec {keys}<>"$d/keys"
: >"$d/a.term"
lab_bg a "$d/a.log" env TERM=xterm MOSH_KEY="$key" sh -c \
	'exec script -qfec "stty rows 24 cols 80; exec $1 -s $2 -- mosh-client $2 60001 2>>$3" /dev/null <"$4" >"$5"' \
	sh "$WRAP" "$S" "$d/a.log" "$d/keys" "$d/a.term" >/dev/null
lab_wait_for grep -q punched "$d/a.log" --timeout 40 || { cat "$d/a.log"; exit 1; }
echo "--- the shims say:"
grep -h "punched" "$d/a.log" "$d/b.log"
printf 'echo computed on b: $((6*7))\r' >&"$keys"
lab_wait_for grep -qa "computed on b: 42" "$d/a.term" --timeout 10 || exit 1
echo "--- a's terminal shows:"
grep -ao "computed on b: 42[^[:cntrl:]]*" "$d/a.term" | tail -n 1

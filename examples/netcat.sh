#!/usr/bin/env bash
# examples/netcat.sh - two unmodified netcat-openbsd processes behind two NAT4s talk
# through libn4shim.so, started with the n4shim wrapper.
#
# In the real world (server S running `n4 -s`):
#   host B (receives first):  n4shim -s S -L 5000 -- nc -u -l 5000
#   host A:                   n4shim -s S -- nc -u S 5000
# A's "S 5000" is a placeholder: any UDP port on the server's IP except 1721 designates
# the socket; nc's connect() blocks while the shim punches, then nc talks to B directly.
#
# Here both hosts live in the NAT lab (network namespaces, root needed).  Lines typed on
# one side appear on the other; the script types a few itself and shows the result.
set -uo pipefail
source "$(dirname "$0")/lab_example.sh"
mkfifo "$d/in-a" "$d/in-b"
exec {fa}<>"$d/in-a" {fb}<>"$d/in-b"

echo "host b: n4shim -s $S -L 5000 -- nc -u -l 5000"
lab_bg b "$d/b.err" sh -c "exec '$WRAP' -s $S -L 5000 -- nc -u -l 5000 <'$d/in-b' >'$d/b.out'" >/dev/null
echo "host a: n4shim -s $S -- nc -u $S 5000"
lab_bg a "$d/a.err" sh -c "exec '$WRAP' -s $S -- nc -u $S 5000 <'$d/in-a' >'$d/a.out'" >/dev/null

lab_wait_for grep -q punched "$d/a.err" --timeout 40 || { cat "$d/a.err"; exit 1; }
lab_wait_for grep -q punched "$d/b.err" --timeout 10 || { cat "$d/b.err"; exit 1; }
echo "--- the shim on a says:"; grep -E "designated|Peer:|punched" "$d/a.err"
echo "--- the shim on b says:"; grep -E "designated|Peer:|punched" "$d/b.err"

echo "hello b, this is a" >&"$fa"
lab_wait_for grep -q "this is a" "$d/b.out" --timeout 5
echo "hello a, b here" >&"$fb"
lab_wait_for grep -q "b here" "$d/a.out" --timeout 5
echo "--- nc on a printed:"; cat "$d/a.out"
echo "--- nc on b printed:"; cat "$d/b.out"
grep -q "b here" "$d/a.out" && grep -q "this is a" "$d/b.out"

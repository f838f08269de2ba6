#!/usr/bin/env bash
# examples/socat.sh - socat on both sides of two NAT4s through libn4shim.so, with an
# explicit placeholder address (N4_PEER) that both programs use for "the other side".
#
# In the real world (server S running `n4 -s`):
#   host B:  LD_PRELOAD=/usr/local/lib/libn4shim.so N4_SERVER=S N4_PEER=10.255.0.1:4000 \
#              N4_LISTEN=4000 socat STDIO UDP-LISTEN:4000
#   host A:  LD_PRELOAD=/usr/local/lib/libn4shim.so N4_SERVER=S N4_PEER=10.255.0.1:4000 \
#              socat STDIO UDP:10.255.0.1:4000
# Datagrams from the real peer are reported as coming from 10.255.0.1:4000 on both
# sides, so socat's source checks (and its log) see the placeholder.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/lab/lib.sh"
source "$here/../tests/lab/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
PH=10.255.0.1:4000
lab_require_root || exit 1
trap lab_down EXIT
lab_up --nat-a "${NAT:-inc-linux}" --nat-b "${NAT:-inc-linux}" || exit 1
start_server || exit 1
d=$LAB_DIR
mkfifo "$d/in-a" "$d/in-b"
exec {fa}<>"$d/in-a" {fb}<>"$d/in-b"
envs="LD_PRELOAD=$SHIM N4_SERVER=$LAB_SRV_IP N4_PEER=$PH"

echo "host b: $envs N4_LISTEN=4000 socat STDIO UDP-LISTEN:4000"
lab_bg b "$d/b.err" sh -c "exec env $envs N4_LISTEN=4000 socat -d -d STDIO UDP-LISTEN:4000 <'$d/in-b' >'$d/b.out'" >/dev/null
echo "host a: $envs socat STDIO UDP:$PH"
lab_bg a "$d/a.err" sh -c "exec env $envs socat STDIO UDP:$PH <'$d/in-a' >'$d/a.out'" >/dev/null

lab_wait_for grep -q punched "$d/a.err" --timeout 40 || { cat "$d/a.err"; exit 1; }
lab_wait_for grep -q punched "$d/b.err" --timeout 10 || { cat "$d/b.err"; exit 1; }
echo "ping from a" >&"$fa"
lab_wait_for grep -q "ping from a" "$d/b.out" --timeout 5
echo "pong from b" >&"$fb"
lab_wait_for grep -q "pong from b" "$d/a.out" --timeout 5
echo "--- socat on b accepted the datagram from (its log):"
grep -E "accepting UDP connection from|starting data transfer" "$d/b.err" | sed 's/^/    /'
echo "--- a printed: $(cat "$d/a.out")"
echo "--- b printed: $(cat "$d/b.out")"
grep -q "pong from b" "$d/a.out" && grep -q "ping from a" "$d/b.out"

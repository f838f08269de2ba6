#!/usr/bin/env bash
# examples/demo.sh - `make demo`: a lab with two port-incrementing NAT4s, the n4
# server on the "public" host, then
#   1. two `n4 -c` clients punch and print [ WIN ]; a message crosses on the punched ports;
#   2. two unmodified `nc` processes talk through both NATs via libn4shim.so.
# Everything runs in network namespaces created here and removed at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/lab/lib.sh"
source "$here/../tests/lab/punch_lib.sh"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
lab_require_root || exit 1
trap 'lab_down' EXIT

say "Bringing up the lab: hosts a and b, each behind a port-incrementing NAT4 (nftables)"
lab_up --nat-a inc --nat-b inc || exit 1
echo "server 192.0.2.2 | a 10.1.0.2 behind NAT 198.51.100.2 | b 10.2.0.2 behind NAT 203.0.113.2"
start_server || exit 1

say "1. n4 -c on both sides"
run_pair demo -t 30
rc=$?
echo "--- host a:"; grep -E 'Peer:|Target|Plan|WIN|Local port|Peer address|> nc' "$LOG_A"
echo "--- host b:"; grep -E 'Peer:|Target|Plan|WIN|Local port|Peer address|> nc' "$LOG_B"
((rc == 0)) || { echo "demo: the n4 clients did not win"; exit 1; }
if message_crosses a "$LOG_A" b "$LOG_B" && message_crosses b "$LOG_B" a "$LOG_A"; then
	echo "a message crossed both NATs each way on the punched ports:"
	cat "$LAB_DIR"/msg-*.out
else
	echo "demo: no message crossed"; exit 1
fi

SHIM=$N4_BIN/libn4shim.so
if [[ ! -e $SHIM ]]; then
	echo "demo: $SHIM not built"; exit 1
fi
lab_flush
say "2. Two unmodified nc through both NAT4s, via LD_PRELOAD=libn4shim.so"
echo "host b: N4_SERVER=192.0.2.2 N4_LISTEN=5000 nc -u -l 5000"
echo "host a: N4_SERVER=192.0.2.2 nc -u 192.0.2.2 5000   (the server's IP is the placeholder for the peer)"
fifo_a=$LAB_DIR/nc-a.in
mkfifo "$fifo_a"
out_a=$LAB_DIR/nc-a.out
out_b=$LAB_DIR/nc-b.out
nb=$(lab_bg b "$out_b" env LD_PRELOAD="$SHIM" N4_SERVER="$LAB_SRV_IP" N4_LISTEN=5000 \
	sh -c "echo 'hello from b (nc -l)' | timeout 40 nc -u -l 5000")
na=$(lab_bg a "$out_a" env LD_PRELOAD="$SHIM" N4_SERVER="$LAB_SRV_IP" \
	sh -c "timeout 40 nc -u $LAB_SRV_IP 5000 < '$fifo_a'")
exec 9>"$fifo_a"
echo "hello from a (nc)" >&9
ok_b=0 ok_a=0
lab_wait_for grep -q "hello from a" "$out_b" --timeout 30 && ok_b=1
lab_wait_for grep -q "hello from b" "$out_a" --timeout 10 && ok_a=1
exec 9>&-
kill "$na" "$nb" 2>/dev/null
echo "--- what nc on b printed:"; grep -v '^\[' "$out_b" || true
echo "--- what nc on a printed:"; grep -v '^\[' "$out_a" || true
if ((ok_a && ok_b)); then
	say "Done: two unmodified nc talked through two NAT4s. Tearing the lab down."
else
	echo "demo: the shimmed nc did not exchange both lines"; echo "--- a:"; cat "$out_a"; echo "--- b:"; cat "$out_b"
	exit 1
fi

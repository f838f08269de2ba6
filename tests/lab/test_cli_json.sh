#!/usr/bin/env bash
# test_cli_json.sh - `n4 -c --json --exec` through two real port-incrementing NATs:
# the command runs right after the WIN on the released port, and the NAT mappings
# the punch made still carry its datagram (socat on one side receives what socat on
# the other sends from its punched port); the JSON objects report the WIN, the
# peer's public address and the commands' status.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/punch_lib.sh"

lab_require_root || exit 1
lab_with_server test_cli_json --nat-a inc --nat-b inc

jqe() { jq -e "$@" >/dev/null; }
recv=$LAB_DIR/recv.out
: >"$recv"
# A receives one datagram on its punched port; B repeats its datagram until A's
# socat has bound that port (a retry, not a wait).
pa=$(lab_bg a "$LAB_DIR/a.log" "$N4" -c -h "$LAB_SRV_IP" -a exec1 -t 20 --json \
	--exec "socat -u UDP4-RECVFROM:%l - >$recv")
lab_exec b "$N4" -c -h "$LAB_SRV_IP" -a exec1 -t 20 --json \
	--exec 'for i in $(seq 30); do echo "hello-from-%l"; sleep 0.1; done | socat -u - UDP4-SENDTO:%h:%p,sourceport=%l' \
	>"$LAB_DIR/b.json" 2>"$LAB_DIR/b.log"
rb=$?
wait_pids 10 "$pa"
grep '^{' "$LAB_DIR/a.log" | tail -n 1 >"$LAB_DIR/a.json"

check "B: WIN, and n4 exits with its command's status (0: $rb)" [ "$rb" = 0 ]
check "B: one JSON object, outcome win, exec status 0" \
	jqe '.outcome == "win" and .exec.status == 0 and .exit_status == 0' "$LAB_DIR/b.json"
check "A: its JSON object reports the command's status 0" \
	jqe '.outcome == "win" and .exec.status == 0 and .exit_status == 0' "$LAB_DIR/a.json"
check "A sees B's NAT ($LAB_NATB_IP) as the peer, not B's own address" \
	jqe --arg ip "$LAB_NATB_IP" '.peer_host == $ip and .relayed == false' "$LAB_DIR/a.json"
lb=$(jq -r .local_port "$LAB_DIR/b.json")
check "the datagram crossed both NATs on the released ports ($(head -c 40 "$recv"))" \
	grep -qx "hello-from-$lb" "$recv"
stop_server
summary test_cli_json

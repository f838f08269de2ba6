#!/usr/bin/env bash
# test_json.sh - `n4 -c --json` and `--exec` on loopback: one JSON object on
# stdout for a WIN and for each kind of failure, and --exec running the command
# right after the WIN with %l %h %p substituted and the port released (socat binds
# it and a datagram crosses), n4 exiting with the command's status.
source "$(dirname "$0")/lib.sh"
need_bins
N4=$BUILD/n4
command -v jq >/dev/null || { notok "jq missing (tests/deps.sh installs it)"; finish; exit 1; }

start_server "$N4" || { notok "the server started"; finish; exit 1; }

# A pair of clients; CMD_A / CMD_B are --exec commands (empty: none).
pair() { # IDENT [EXEC_A [EXEC_B]]
	local id=$1 ea=${2:-} eb=${3:-}
	"$N4" -c -h 127.0.0.1 -p "$SPORT" -a "$id" -b 0 -t 20 --json ${ea:+--exec "$ea"} \
		>"$TMP/a.json" 2>"$TMP/a.log" &
	local pa=$!
	"$N4" -c -h 127.0.0.1 -p "$SPORT" -a "$id" -b 0 -t 20 --json ${eb:+--exec "$eb"} \
		>"$TMP/b.json" 2>"$TMP/b.log"
	RB=$?
	wait "$pa"
	RA=$?
}
field() { jq -r "$2" "$1"; }
jqe() { jq -e "$@" >/dev/null; }

pair js1
check "a pair wins (status $RA, $RB)" [ "$RA" = 0 -a "$RB" = 0 ]
check "stdout is exactly one JSON object" bash -c "[ \$(wc -l <'$TMP/a.json') = 1 ] && jq -e 'type == \"object\"' '$TMP/a.json' >/dev/null"
check "outcome win, exit_status 0, not relayed, strategy auto" \
	jqe '.outcome == "win" and .exit_status == 0 and .relayed == false and .strategy == "auto"' "$TMP/a.json"
check "local port, peer address, rounds and elapsed time are numbers" \
	jqe '(.local_port|type) == "number" and .local_port > 0 and (.peer_port|type) == "number" and
		.peer == "\(.peer_host):\(.peer_port)" and .rounds >= 1 and (.elapsed_ms|type) == "number"' "$TMP/a.json"
check "each side's peer port is the other side's local port" \
	bash -c "[ \"\$(jq .peer_port '$TMP/a.json')\" = \"\$(jq .local_port '$TMP/b.json')\" ]"
check "the log lines stay on stderr" grep -q "\[ WIN \]" "$TMP/a.log"

# --exec: A receives on the punched port, B sends to A from its punched port.
# B repeats its datagram until A's socat has bound the port (a retry, not a wait).
pair js2 "socat -u UDP-RECVFROM:%l - >$TMP/recv" \
	"for i in \$(seq 30); do echo hello-from-%l; sleep 0.1; done | socat -u - UDP-SENDTO:%h:%p,sourceport=%l"
check "--exec on both sides: n4 exits with the commands' status (0, $RA, $RB)" [ "$RA" = 0 -a "$RB" = 0 ]
lb=$(field "$TMP/b.json" .local_port)
check "the datagram crossed the released ports ($(head -c 40 "$TMP/recv" 2>/dev/null))" \
	grep -qx "hello-from-$lb" "$TMP/recv"
check "%l %h %p were substituted and reported in exec.command" \
	jqe '.exec.command | test("UDP-SENDTO:\\d+\\.\\d+\\.\\d+\\.\\d+:\\d+,sourceport=\\d+$")' "$TMP/b.json"
check "exec.status and exit_status are the command's" \
	jqe '.exec.status == 0 and .exit_status == 0 and .outcome == "win"' "$TMP/a.json"

pair js3 'echo "%%l=%l N4_LOCAL_PORT=$N4_LOCAL_PORT"; exit 7' 'exit 0'
check "n4 exits with CMD's status (7: $RA)" [ "$RA" = 7 ]
check "CMD's output comes first, the JSON object last" \
	bash -c "head -1 '$TMP/a.json' | grep -qE '^%l=([0-9]+) N4_LOCAL_PORT=\\1\$' && tail -1 '$TMP/a.json' | jq -e '.exec.status == 7 and .exit_status == 7' >/dev/null"

# Failures: the reason and the exit status, in the same one object.
"$N4" -c -h 127.0.0.1 -p "$SPORT" -a lonely -t 1 --json >"$TMP/t.json" 2>/dev/null
rc=$?
check "no partner: outcome timeout, exit 1 ($rc)" \
	bash -c "[ $rc = 1 ] && jq -e '.outcome == \"timeout\" and .exit_status == 1 and (.reason|type) == \"string\" and (has(\"local_port\")|not)' '$TMP/t.json' >/dev/null"
"$N4" -c -h 127.0.0.1 -p 9 -t 1 --json >"$TMP/u.json" 2>/dev/null
rc=$?
check "server unreachable: outcome unreachable, exit 3 ($rc)" \
	bash -c "[ $rc = 3 ] && jq -e '.outcome == \"unreachable\" and .exit_status == 3' '$TMP/u.json' >/dev/null"
"$N4" -c -h 127.0.0.1 --exec 'echo %x' --json >"$TMP/x.json" 2>"$TMP/x.err"
rc=$?
check "a bad --exec template is a usage error before anything runs (exit $rc)" \
	bash -c "[ $rc = 2 ] && [ ! -s '$TMP/x.json' ] && grep -q -- '--exec' '$TMP/x.err'"
stop_server
finish

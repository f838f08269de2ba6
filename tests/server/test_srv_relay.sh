#!/usr/bin/env bash
# test_srv_relay.sh - the relay under hostile input, in the server built with
# ASan+UBSan: a relayed pair on loopback, then junk of every size on both relay
# ports, registrations with wrong tokens and from another IP, an oversize datagram
# from a registered address, a malformed RELAY message over TCP.  The session must
# keep working, everything must be counted in the SIGUSR1 status, the idle pair
# must be freed with its descriptors, and ASan must stay silent.
source "$(dirname "$0")/lib.sh"
need_bins
make -s "$BUILD/tests/udpflow" >/dev/null || { notok "building udpflow"; finish; exit 1; }
N4SAN=$(san_n4) || { notok "building the ASan+UBSan server"; finish; exit 1; }
check "the server under test is the ASan+UBSan build" sanitized "$N4SAN"
FLOW=$BUILD/tests/udpflow

# A long exchange deadline: the raw pair below must be closed by the malformed-RELAY
# rule, not by its exchange timing out while the checks wait.
start_server "$N4SAN" --relay-after 0 --relay-idle 5 --log-rate 0 --exchange-timeout-ms 60000 || { notok "the server started"; finish; exit 1; }
fds0=$(fd_count)

"$BUILD/n4" -c -h 127.0.0.1 -p "$SPORT" -a hrly -b 0 -n 1 -t 20 >"$TMP/a.log" 2>&1 &
pa=$!
"$BUILD/n4" -c -h 127.0.0.1 -p "$SPORT" -a hrly -b 0 -n 1 -t 20 >"$TMP/b.log" 2>&1
rcb=$?
wait "$pa"
rca=$?
check "a pair on loopback is relayed (exit $rca/$rcb)" bash -c \
	"[[ $rca == 0 && $rcb == 0 ]] && grep -q 'WIN \] relayed' '$TMP/a.log' '$TMP/b.log'"
peer_a=$(sed -nE 's/.*Peer address: +([0-9.]+:[0-9]+).*/\1/p' "$TMP/a.log")
peer_b=$(sed -nE 's/.*Peer address: +([0-9.]+:[0-9]+).*/\1/p' "$TMP/b.log")
pta=${peer_a##*:} ptb=${peer_b##*:}
lport() { sed -nE 's/.*Local port: +([0-9]+).*/\1/p' "$1"; }
la=$(lport "$TMP/a.log") lb=$(lport "$TMP/b.log")

# junk of many sizes on both ports, from a stranger's port and from 127.0.0.2
for port in "$pta" "$ptb"; do
	for size in 8 12 13 100 1400 9000; do
		"$FLOW" send 0 "127.0.0.1:$port" 20 "$size" 0 >/dev/null
	done
	printf '\013\000wrongtoken' | socat -u STDIN "UDP4-SENDTO:127.0.0.1:$port,bind=127.0.0.1"
	printf '\013\000wrongtoken' | socat -u STDIN "UDP4-SENDTO:127.0.0.1:$port,bind=127.0.0.2"
	printf '\013\001wrongflags' | socat -u STDIN "UDP4-SENDTO:127.0.0.1:$port,bind=127.0.0.1"
done
v=$(stat relay_drop_stranger)
# 240 sent; the kernel may drop some of the large ones before the relay reads them
check "junk from strangers dropped and counted ($v)" [ "${v:-0}" -ge 150 ]
v=$(stat relay_drop_bad_reg)
check "registrations with wrong tokens or flags counted ($v)" [ "${v:-0}" -ge 6 ]

# an oversize datagram from A's registered address is dropped, not truncated
"$FLOW" recv "$lb" 1000 5 >"$TMP/rx" &
rx=$!
check "the receiver on B's port is up" wait_until 5 bash -c "ss -ulnH | grep -q ':$lb '"
"$FLOW" send "$la" "$peer_a" 1 20000 0 >/dev/null
"$FLOW" send "$la" "$peer_a" 5 1000 0 >/dev/null
wait "$rx"
check "the session still forwards after the junk ($(cat "$TMP/rx"))" grep -q "^received 5 " "$TMP/rx"
v=$(stat relay_drop_oversize)
check "the oversize datagram was dropped and counted ($v)" [ "${v:-0}" -ge 1 ]

# a malformed RELAY message from a client granted the relay: closed, partner told
hello() { printf '\001\011hbad  ' >&"$1"; }
exec {t1}<>/dev/tcp/127.0.0.1/"$SPORT" {t2}<>/dev/tcp/127.0.0.1/"$SPORT"
hello "$t1"
hello "$t2"
check "two raw clients are paired (READY to both)" \
	wait_until 5 bash -c "[ \"\$(grep -c 'Ready to' '$SLOG')\" -ge 2 ]"
printf '\007\000garbag' >&"$t1"
check "a malformed RELAY message is refused" wait_until 5 grep -q "malformed RELAY message" "$SLOG"
# closed_within FD: reading FD to its end takes under 5 s: the server closed it (EOF,
# or a reset: it does not linger), where timeout's 124 means it was left open.
closed_within() {
	local rc
	timeout 5 cat <&"$1" >/dev/null 2>"$TMP/closed.err"
	rc=$?
	[[ $rc == 0 ]] || { [[ $rc == 1 ]] && grep -q "reset by peer" "$TMP/closed.err"; }
}
check "... and its sender's connection is closed (EOF or reset)" closed_within "$t1"
check "... and so is its partner's" closed_within "$t2"
exec {t1}>&- {t2}>&-

check "the idle pair is freed after --relay-idle" wait_until 12 grep -q "idle for 5 s, freed" "$SLOG"
check "its descriptors are closed (before $fds0, after $(fd_count))" \
	wait_until 5 bash -c "[ \"\$(ls /proc/$SPID/fd | wc -l)\" -le $fds0 ]"
echo "# $(status)"
check "server alive and exits 0 on SIGTERM" stop_server
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error' '$SLOG'"
finish

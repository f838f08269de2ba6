#!/usr/bin/env bash
# test_lab_trust.sh - keys (issue 8): a keyed pair wins and the server only ever sees the
# derived identifier; a client with another key and the same -a, waiting first, is
# never paired with them; an impostor presenting the key's identifiers (to our server
# with a test client, and an original-protocol client on an original-protocol server)
# gets no WIN and none of the program's data, captured on the impostor's host; keyed
# clients still pair and win through an original-protocol server.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
BASELINE=$N4_BIN/bench/server_baseline

lab_with_server trust --nat-a inc --nat-b inc

K1=$LAB_DIR/k1
K2=$LAB_DIR/k2
(umask 077 && "$N4" genkey >"$K1" && "$N4" genkey >"$K2")
ID1=$("$N4" keyid "$K1" -a room)
LONG1=$("$N4" keyid "$K1" -a room --long)
echo "# key id for -a room: $ID1 (long: $LONG1)"
hellos() { grep -c "=> Hello from" "$SRV_LOG"; }
# again_gap_ms LOG: ms from the client's AGAIN to its next HELLO (log timestamps).
again_gap_ms() {
	awk -F'[][ ,:]+' '
		function ms() { return (($3 * 60 + $4) * 60 + $5) * 1000 + $6 }
		/called this pairing off/ { t = ms(); next }
		t && /<= Hello/ { print ms() - t; exit }' "$1"
}

# 1. A keyed pair wins through the inc NATs; the server sees the derived id only:
# checked on the wire, in the server's TCP traffic from each NAT, with the HELLO that
# carries the derived id as the control that the capture saw the exchange.
lab_flush
check "keyed pair: the capture of the server's TCP traffic is up" \
	capture_start srv eth0 "$LAB_DIR/srv-tcp.pcap" tcp port 1721
run_pair keyed -k "$K1" -a room -t 30
capture_stop
check "keyed pair: a reports [ WIN ]" won "$LOG_A"
check "keyed pair: b reports [ WIN ]" won "$LOG_B"
check "keyed pair: the punched ports carry a datagram a -> b" message_crosses a "$LOG_A" b "$LOG_B"
check "keyed pair: the server logged the derived id '$ID1'" grep -q "ident '$ID1'" "$SRV_LOG"
key_text=$(tr -d '\n' <"$K1" | hex_of) key_raw=$(base64 -d <"$K1" | hex_of)
room=$(printf room | hex_of) id1=$(printf '%s' "$ID1" | hex_of)
for nat in "$LAB_NATA_IP" "$LAB_NATB_IP"; do
	sent=$(tcp_payloads "$LAB_DIR/srv-tcp.pcap" "dst port 1721 and src host $nat" | tr -d '\n')
	check "keyed pair, on the wire from $nat: the HELLO with the derived id reached the server" \
		grep -qE "^(..)*01..$id1" <<<"$sent"
	check "keyed pair, on the wire from $nat: neither the key (raw or as text) nor the room name" \
		test -n "$sent" -a -n "$key_raw" -a "${sent/$key_raw/}" = "$sent" -a \
		"${sent/$key_text/}" = "$sent" -a "${sent/$room/}" = "$sent"
done

# 2. Another key, same -a, waiting first: never paired with the keyed pair.
# Its HELLO (its own derived id, from NAT A) must be seen by the server first, and it
# must end by itself with a failure status: only then do "never paired" and "no WIN"
# say anything.
lab_flush
ID2=$("$N4" keyid "$K2" -a room)
OTHER=$LAB_DIR/other.log
other=$(lab_bg a2 "$OTHER" sh -c '"$0" "$@"; echo "exit status $?"' "$N4" -c -h "$LAB_SRV_IP" \
	-k "$K2" -a room -t 12)
check "other key waiting first: the server took its HELLO (id '$ID2')" \
	lab_wait_for grep -q "Hello from $LAB_NATA_IP:[0-9]* ident '$ID2'" "$SRV_LOG" --timeout 5
run_pair keyed2 -k "$K1" -a room -t 30
check "other key waiting first: the keyed pair still wins (a)" won "$LOG_A"
check "other key waiting first: the keyed pair still wins (b)" won "$LOG_B"
check "other key waiting first: it ended by itself within its timeout" wait_pids 20 "$other" ||
	kill "$other" 2>/dev/null
check "other key waiting first: ... with a failure status ($(sed -n 's/^exit status //p' "$OTHER"))" \
	grep -q '^exit status [1-9]' "$OTHER"
check "other key waiting first: it was never paired (no PEERINFO)" \
	bash -c "! grep -q '=> Peer:' '$OTHER'"
check "other key waiting first: no WIN" bash -c "! grep -q '\[ WIN \]' '$OTHER'"

# 2b. A stranger who learnt the short id (any original server's log shows it) but not
# the long id waits first.  The keyed client that comes next is paired with it on the
# short id (the long ids are checked while the exchange runs); they differ, so the
# server calls the pairing off for both (AGAIN), pairs this short id on long ids alone
# from then on, and the keyed pair still wins.  The stranger never gets a PEERINFO.
lab_flush
n0=$(grep -c "=> Keyid from" "$SRV_LOG")
fake=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
imp=$(lab_bg b "$LAB_DIR/imp-short.out" "$N4_BIN/tests/impostor" "$LAB_SRV_IP" 1721 "$ID1" \
	"$fake" 8 "$LAB_DIR/imp-short.bytes")
check "short id only: the server took the stranger's long id" \
	lab_wait_for bash -c "[ \$(grep -c '=> Keyid from' '$SRV_LOG') -gt $n0 ]" --timeout 5
pa=$(client a "$LAB_DIR/short-a.log" -k "$K1" -a room -t 30)
check "short id only: the server compared the long ids" \
	lab_wait_for grep -q "different keyed ids" "$SRV_LOG" --timeout 5
pb=$(client b "$LAB_DIR/short-b.log" -k "$K1" -a room -t 30)
wait_pids 40 "$pa" "$pb" || kill "$pa" "$pb" 2>/dev/null
check "short id only: the stranger ended by itself" wait_pids 10 "$imp" || kill "$imp" 2>/dev/null
grep -E "Hello|Ready|Peer:|off|WIN|WARN|ERROR" "$LAB_DIR/short-a.log" | sed 's/^/# a: /'
check "short id only: the server found the long ids differ and called it off" \
	grep -q "same short id, different keyed ids; both start again" "$SRV_LOG"
gap=$(again_gap_ms "$LAB_DIR/short-a.log")
# A failed round pauses 1 s before its next HELLO: any gap under that is no pause (the
# figure itself is bench/trust.sh's to print).
check "short id only: the keyed client was told and said HELLO again without a round's pause (${gap:-never} ms)" \
	test "${gap:-99999}" -lt 1000
check "short id only: the keyed pair still wins (a)" won "$LAB_DIR/short-a.log"
check "short id only: the keyed pair still wins (b)" won "$LAB_DIR/short-b.log"
check "short id only: the stranger got no PEERINFO" \
	bash -c "grep -q 'rendezvous failed' '$LAB_DIR/imp-short.out' && ! grep -q 'paired with' '$LAB_DIR/imp-short.out'"

# 2c. A paired keyed client whose partner leaves before PEERINFO is told AGAIN and
# starts over at once (no lost round), and wins with the next partner.
lab_flush
n0=$(grep -c "=> Keyid from" "$SRV_LOG")
imp=$(lab_bg b "$LAB_DIR/imp-leave.out" "$N4_BIN/tests/impostor" "$LAB_SRV_IP" 1721 "$ID1" \
	"$LONG1" 8 "$LAB_DIR/imp-leave.bytes" leave)
check "partner left: the server took the impostor's long id" \
	lab_wait_for bash -c "[ \$(grep -c '=> Keyid from' '$SRV_LOG') -gt $n0 ]" --timeout 5
pa=$(client a "$LAB_DIR/leave-a.log" -k "$K1" -a room -t 30)
check "partner left: the keyed client was called off" \
	lab_wait_for grep -q "called this pairing off" "$LAB_DIR/leave-a.log" --timeout 10
pb=$(client b "$LAB_DIR/leave-b.log" -k "$K1" -a room -t 30)
wait_pids 40 "$pa" "$pb" || kill "$pa" "$pb" 2>/dev/null
check "partner left: the impostor ended by itself" wait_pids 10 "$imp" || kill "$imp" 2>/dev/null
grep -E "Hello|Ready|Peer:|off|WIN|WARN|ERROR" "$LAB_DIR/leave-a.log" | sed 's/^/# a: /'
grep -E "Again|left|Ready to" "$SRV_LOG" | tail -5 | sed 's/^/# srv: /'
check "partner left: it was paired, then left" grep -q "left after READY" "$LAB_DIR/imp-leave.out"
check "partner left: the keyed client was told AGAIN" \
	grep -q "called this pairing off" "$LAB_DIR/leave-a.log"
gap=$(again_gap_ms "$LAB_DIR/leave-a.log")
check "partner left: HELLO again at once, not after a failed round's 1 s pause (${gap:-never} ms)" \
	test "${gap:-99999}" -lt 1000
check "partner left: the keyed pair still wins (a)" won "$LAB_DIR/leave-a.log"
check "partner left: the keyed pair still wins (b)" won "$LAB_DIR/leave-b.log"

# The impostor cases use cone NATs, so that the impostor's datagrams and the keyed
# client's surely reach each other: what is refused is refused for the key alone.
# A WAN delay lets each side's own (low-TTL) packets open its NAT before the other
# side's arrive, so that the original-protocol client, which has no pre-opening,
# cannot make the Linux conntrack clash (nat-lab.md) decide these cases instead.
lab_set_nat a cone && lab_set_nat b cone && lab_set_delay 30 && lab_flush
secret="SECRET-$RANDOM-$RANDOM-PAYLOAD"
printf '%s\n' "$secret" >"$LAB_DIR/secret"
CAP=$LAB_DIR/impostor.pcap
start_capture() { # on the impostor's host, after its NAT: everything it receives
	capture_start b eth0 "$CAP" udp
}
captured_from_a() { tcpdump -n -r "$CAP" "src host $LAB_NATA_IP" 2>/dev/null | wc -l; }
no_secret_captured() { ! tcpdump -n -r "$CAP" -A 2>/dev/null | grep -qF "$secret"; }
# keyed_program LOG PORT: socat under the shim with the key sends the secret to its
# placeholder peer; the rendezvous goes to the server on PORT.
keyed_program() {
	lab_exec a env N4_SERVER="$LAB_SRV_IP:$2" N4_KEY_FILE="$K1" N4_IDENT=room N4_TIMEOUT=8 \
		N4_OFFSET=0 N4_PEER=192.0.2.77:7777 LD_PRELOAD="$SHIM" \
		socat -u STDIN UDP-SENDTO:192.0.2.77:7777 <"$LAB_DIR/secret" >/dev/null 2>"$1"
}

# 3. Impostor on our server: it knows both identifiers, not the key.
check "impostor (our server): the capture on its host is up" start_capture
n0=$(hellos)
imp=$(lab_bg b "$LAB_DIR/imp.out" "$N4_BIN/tests/impostor" "$LAB_SRV_IP" 1721 "$ID1" "$LONG1" 8 \
	"$LAB_DIR/imp.bytes")
check "impostor (our server): the server took its HELLO" \
	lab_wait_for bash -c "[ \$(grep -c '=> Hello from' '$SRV_LOG') -gt $n0 ]" --timeout 5
keyed_program "$LAB_DIR/keyed-imp.log" 1721
rc=$?
check "impostor (our server): it ended by itself" wait_pids 20 "$imp" || kill "$imp" 2>/dev/null
capture_stop
sed 's/^/# /' "$LAB_DIR/imp.out"
grep -E "Peer:|Target|Plan|auth|WIN|ERROR" "$LAB_DIR/keyed-imp.log" | sed 's/^/# keyed: /'
check "impostor (our server): it was paired with the keyed client" grep -q "paired with" "$LAB_DIR/imp.out"
check "impostor (our server): the keyed client saw its PUNCHes fail authentication" \
	grep -q "failed authentication" "$LAB_DIR/keyed-imp.log"
check "impostor (our server): 'peer failed authentication', back to the server" \
	grep -q "peer failed authentication" "$LAB_DIR/keyed-imp.log"
check "impostor (our server): no WIN, the program's send failed (status $rc)" \
	bash -c "[ $rc -ne 0 ] && ! grep -q 'Punch from peer' '$LAB_DIR/keyed-imp.log'"
check "impostor (our server): the keyed client's datagrams did reach it ($(captured_from_a) captured)" \
	test "$(captured_from_a)" -gt 0
check "impostor (our server): none of the program's data reached it (capture)" no_secret_captured
check "impostor (our server): none of the program's data reached it (its socket)" \
	bash -c "! grep -qF '$secret' '$LAB_DIR/imp.bytes'"

lab_flush # the impostor case above left mappings on both NATs
# 4. An original-protocol client presenting the key's id on an original-protocol
# server (bench/server_baseline, one pair at a time on one identifier; not on 1722,
# which is our server's second UDP port).
lab_flush
: >"$LAB_DIR/baseline.log"
base=$(lab_bg srv "$LAB_DIR/baseline.log" "$BASELINE" 1731 "$ID1")
check "v1 impostor: the original-protocol server listens" \
	lab_wait_for lab_exec srv sh -c "ss -tlnH 'sport = :1731' | grep -q ." --timeout 5
check "v1 impostor: the capture on its host is up" start_capture
v1=$(lab_bg b "$LAB_DIR/v1imp.log" "$N4_BIN/tests/v1client" "$LAB_SRV_IP" 1731 "$ID1" 31000 25 0 10)
check "v1 impostor: it is connected to the original server" \
	lab_wait_for lab_exec srv sh -c "ss -tnH state established 'sport = :1731' | grep -q ." --timeout 5
keyed_program "$LAB_DIR/keyed-v1.log" 1731
rc=$?
check "v1 impostor: it ended by itself" wait_pids 20 "$v1" || kill "$v1" 2>/dev/null
capture_stop
grep -E "Peer:|Target|Plan|auth|WIN|ERROR" "$LAB_DIR/keyed-v1.log" | sed 's/^/# keyed: /'
check "v1 impostor (original server): the keyed client was paired with it" \
	grep -q "=> Peer: $LAB_NATB_IP" "$LAB_DIR/keyed-v1.log"
check "v1 impostor (original server): its PUNCHes failed authentication" \
	grep -q "peer failed authentication" "$LAB_DIR/keyed-v1.log"
check "v1 impostor (original server): no WIN on the keyed side (status $rc)" \
	bash -c "[ $rc -ne 0 ] && ! grep -q 'Punch from peer' '$LAB_DIR/keyed-v1.log'"
check "v1 impostor (original server): the impostor got no WIN" \
	bash -c "! grep -q '\[ WIN \]' '$LAB_DIR/v1imp.log'"
check "v1 impostor (original server): the keyed client's datagrams did reach it ($(captured_from_a))" \
	test "$(captured_from_a)" -gt 0
check "v1 impostor (original server): none of the program's data reached it" no_secret_captured

# 5. Keyed clients through the original-protocol server: the 6-character id pairs
# them, the authenticated PUNCH proves them.
lab_flush
run_pair keyed-v1srv -p 1731 -k "$K1" -a room -o 0 -t 30
check "keyed pair through an original server: a wins" won "$LOG_A"
check "keyed pair through an original server: b wins" won "$LOG_B"
lab_stop_pid "$base"

# 6. A bad key for the shim: one line naming it, EINVAL, and not a packet leaves.  The
# capture must be up, and one datagram sent on purpose after the three runs must be
# in it: then "nothing else" means nothing else left.
lab_flush
CAP=$LAB_DIR/badkey.pcap
check "bad keys: the capture on host a is up" capture_start a eth0 "$CAP" 'tcp or udp'
chmod 644 "$K2"
for kv in "N4_KEY_FILE=$K2" "N4_KEY_FILE=$LAB_DIR/missing" "N4_KEY=not-a-key"; do
	log=$LAB_DIR/badkey.log
	lab_exec a env N4_SERVER="$LAB_SRV_IP" "$kv" N4_PEER=192.0.2.77:7777 LD_PRELOAD="$SHIM" \
		socat -u STDIN UDP-SENDTO:192.0.2.77:7777 <"$LAB_DIR/secret" >/dev/null 2>"$log"
	rc=$?
	check "bad key ${kv%%=*}=${kv#*=}: the send fails with EINVAL (status $rc)" \
		bash -c "[ $rc -ne 0 ] && grep -q 'Invalid argument' '$log'"
	check "bad key ${kv%%=*}: exactly one shim line names it" \
		test "$(grep -c "ERROR.*${kv%%=*}" "$log")" -eq 1
done
control="CONTROL-$RANDOM-$RANDOM"
lab_exec a sh -c "printf '%s\n' '$control' | socat -u STDIN UDP4-SENDTO:$LAB_SRV_IP:7009"
check "bad keys: the control datagram is in the capture" \
	lab_wait_for bash -c "tcpdump -n -r '$CAP' -A 2>/dev/null | grep -qF '$control'" --timeout 5
capture_stop
check "bad keys: not a packet left host a but the control ($(tcpdump -n -r "$CAP" 2>/dev/null | wc -l) captured)" \
	test "$(tcpdump -n -r "$CAP" 2>/dev/null | wc -l)" -eq 1

stop_server
summary trust

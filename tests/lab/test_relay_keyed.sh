#!/usr/bin/env bash
# test_relay_keyed.sh - keyed pairs are relayed too (issues 8 and 10): random/random,
# `n4 -c -k` on both sides exits 0 with a relayed WIN that only an authenticated
# datagram through the relay gave, and the printed nc lines carry data both ways; a
# client with another key and the same -a gets no WIN and none of a keyed program's
# data (captured on its host); an impostor presenting the key's identifiers without
# the key, relayed with a keyed client, gets "peer failed authentication", no WIN and
# none of the program's data.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so

lab_with_server relayk --nat-a random --nat-b random

K1=$LAB_DIR/k1
K2=$LAB_DIR/k2
(umask 077 && "$N4" genkey >"$K1" && "$N4" genkey >"$K2")

# rclient NODE LOG args...: `n4 -c` in NODE; its exit status lands in LOG.
rclient() {
	local node=$1 log=$2
	shift 2
	lab_bg "$node" "$log" sh -c '"$0" "$@"; echo "exit status $?"' "$N4" -c -h "$LAB_SRV_IP" "$@"
}
nc_line() { sed -nE 's/.*> (nc -u -p [0-9]+ [0-9.]+ [0-9]+)$/\1/p' "$1" | tail -n 1; }
relayed_ok() { grep -q '^exit status 0$' "$1" && grep -q '\[ WIN \] relayed' "$1"; }

# ---- 1. a keyed pair: relayed WIN, exit 0, nc lines both ways ----
A=$LAB_DIR/c-a.log B=$LAB_DIR/c-b.log
pa=$(rclient a "$A" -k "$K1" -a rlyk -t 20)
pb=$(rclient b "$B" -k "$K1" -a rlyk -t 20)
wait_pids 30 "$pa" "$pb"
grep -E "Relay|auth|WIN|ERROR|WARN" "$A" | sed 's/^/# a: /'
check "keyed: A exits 0 with a relayed WIN" relayed_ok "$A"
check "keyed: B exits 0 with a relayed WIN" relayed_ok "$B"
check "keyed: the server relayed the keyed pair" grep -q "<= Relay ports" "$SRV_LOG"
check "keyed: both sides authenticated the peer through the relay" \
	bash -c "grep -q 'Peer authenticated through the relay' '$A' && grep -q 'Peer authenticated through the relay' '$B'"
check "keyed: no authentication failure on either side" \
	bash -c "! grep -q 'failed authentication' '$A' '$B'"

nca=$(nc_line "$A") ncb=$(nc_line "$B")
d=$LAB_DIR/nc
mkdir -p "$d" && mkfifo "$d/in-a" "$d/in-b" && : >"$d/out-a" && : >"$d/out-b"
exec {fa}<>"$d/in-a" {fb}<>"$d/in-b"
pna=$(lab_bg a "$d/err-a" sh -c "exec $nca <'$d/in-a' >'$d/out-a'")
pnb=$(lab_bg b "$d/err-b" sh -c "exec $ncb <'$d/in-b' >'$d/out-b'")
check "keyed nc lines: B's nc is up" \
	lab_wait_for lab_exec b sh -c "ss -unH | grep -q ':${ncb##* }'" --timeout 5
echo "from a $RANDOM" >&"$fa"
check "keyed nc lines: A's line reaches B" lab_wait_for grep -q "from a" "$d/out-b" --timeout 5
echo "from b $RANDOM" >&"$fb"
check "keyed nc lines: B's line reaches A" lab_wait_for grep -q "from b" "$d/out-a" --timeout 5
check "keyed nc lines: no APUNCH reached the programs" \
	bash -c "! grep -qaP '\\x09' '$d/out-a' '$d/out-b'"
lab_stop_pid "$pna"
lab_stop_pid "$pnb"
exec {fa}>&- {fb}>&-

# ---- 2. two shimmed programs with the key: relayed, both ways, no APUNCH leaks ----
lab_flush
PROG=$N4_BIN/tests/shim_session PH=192.0.2.77:7777
side() {
	local node=$1 log=$2
	shift 2
	lab_bg "$node" "$log" env N4_SERVER="$LAB_SRV_IP" N4_KEY_FILE="$K1" N4_IDENT=rlyks \
		N4_PEER="$PH" N4_LISTEN=5000 LD_PRELOAD="$SHIM" "$PROG" "$@"
}
la=$LAB_DIR/s-a.log lb=$LAB_DIR/s-b.log
sa=$(side a "$la" -c "$PH" -d 6)
sb=$(side b "$lb" -l 5000 -d 6)
wait_pids 15 "$sa" "$sb" || { lab_stop_pid "$sa"; lab_stop_pid "$sb"; }
check "shim, keyed: A's path is relayed" grep -q "punched: .*(relayed through the server)" "$la"
check "shim, keyed: B's path is relayed" grep -q "punched: .*(relayed through the server)" "$lb"
ga=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$la" | tail -n 1) gb=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$lb" | tail -n 1)
check "shim, keyed: datagrams crossed both ways (a got ${ga:-0}, b got ${gb:-0})" \
	test "${ga:-0}" -ge 10 -a "${gb:-0}" -ge 10
check "shim, keyed: no APUNCH, PUNCH or relay ack reached either program" \
	test -z "$(grep -h '^got a relay registration\|^got a PUNCH\|^got an APUNCH' "$la" "$lb")"

# control_captured WHAT: a datagram sent on purpose from b (to the server's port 7009,
# where nothing listens) shows in the capture, payload and all: the capture ran and
# its payloads can be searched.  Sent just before the capture stops.
control_captured() {
	local control="CONTROL-$RANDOM-$RANDOM"
	lab_exec b sh -c "printf '%s\n' '$control' | socat -u STDIN UDP4-SENDTO:$LAB_SRV_IP:7009"
	check "$1: a control datagram shows in the capture on b" \
		lab_wait_for bash -c "tcpdump -n -r '$CAP' -A 2>/dev/null | grep -qF '$control'" --timeout 5
}

# ---- 3. another key, same -a: no WIN, none of the keyed program's data ----
lab_flush
secret="SECRET-$RANDOM-$RANDOM-PAYLOAD"
printf '%s\n' "$secret" >"$LAB_DIR/secret"
CAP=$LAB_DIR/wrongkey.pcap
check "wrong key: the capture on b is up" capture_start b eth0 "$CAP" udp
W=$LAB_DIR/wrong.log
ID2=$("$N4" keyid "$K2" -a rlyk)
pw=$(rclient b "$W" -k "$K2" -a rlyk -t 6)
check "wrong key: the server took the other key's HELLO (id '$ID2')" \
	lab_wait_for grep -q "Hello from $LAB_NATB_IP:[0-9]* ident '$ID2'" "$SRV_LOG" --timeout 5
lab_exec a env N4_SERVER="$LAB_SRV_IP" N4_KEY_FILE="$K1" N4_IDENT=rlyk N4_TIMEOUT=6 \
	N4_PEER=192.0.2.77:7777 LD_PRELOAD="$SHIM" \
	socat -u STDIN UDP-SENDTO:192.0.2.77:7777 <"$LAB_DIR/secret" >/dev/null 2>"$LAB_DIR/keyed.log"
rc=$?
wait_pids 15 "$pw" || kill "$pw" 2>/dev/null
control_captured "wrong key"
capture_stop
check "wrong key: no WIN for the client with the other key" bash -c "! grep -q '\[ WIN \]' '$W'"
check "wrong key: it exits non-zero" bash -c "grep -q '^exit status [1-9]' '$W'"
check "wrong key: no WIN for the keyed program, its send failed (status $rc)" \
	bash -c "[ $rc -ne 0 ] && ! grep -q 'relayed\|punched' '$LAB_DIR/keyed.log'"
check "wrong key: none of the keyed program's data reached its host" \
	bash -c "! tcpdump -n -r '$CAP' -A 2>/dev/null | grep -qF '$secret'"

# ---- 4. an impostor with the key's identifiers (not the key), relayed with it ----
lab_flush
ID=$("$N4" keyid "$K1" -a rlyk) LONG=$("$N4" keyid "$K1" -a rlyk --long)
CAP=$LAB_DIR/impostor.pcap
check "impostor: the capture on b is up" capture_start b eth0 "$CAP" udp
n0=$(grep -c "=> Hello from" "$SRV_LOG")
imp=$(lab_bg b "$LAB_DIR/imp.out" "$N4_BIN/tests/impostor" "$LAB_SRV_IP" 1721 "$ID" "$LONG" 6 \
	"$LAB_DIR/imp.bytes" relay)
check "impostor: the server took its HELLO" \
	lab_wait_for bash -c "[ \$(grep -c '=> Hello from' '$SRV_LOG') -gt $n0 ]" --timeout 5
lab_exec a env N4_SERVER="$LAB_SRV_IP" N4_KEY_FILE="$K1" N4_IDENT=rlyk N4_TIMEOUT=6 \
	N4_PEER=192.0.2.77:7777 LD_PRELOAD="$SHIM" \
	socat -u STDIN UDP-SENDTO:192.0.2.77:7777 <"$LAB_DIR/secret" >/dev/null 2>"$LAB_DIR/keyed-imp.log"
rc=$?
check "impostor: it ended by itself" wait_pids 15 "$imp" || kill "$imp" 2>/dev/null
control_captured "impostor"
capture_stop
sed 's/^/# /' "$LAB_DIR/imp.out"
check "impostor: the server relayed it with the keyed client" grep -q "relayed via port" "$LAB_DIR/imp.out"
check "impostor: 'peer failed authentication' through the relay" \
	grep -q "peer failed authentication (.*through the relay)" "$LAB_DIR/keyed-imp.log"
check "impostor: ... and the keyed client went back to the server for another partner" \
	test "$(grep -c '<= Hello' "$LAB_DIR/keyed-imp.log")" -ge 2
check "impostor: no WIN, the keyed program's send failed (status $rc)" \
	bash -c "[ $rc -ne 0 ] && ! grep -q 'relayed through the server\|authenticated through' '$LAB_DIR/keyed-imp.log'"
check "impostor: the keyed client's APUNCHes did reach it through the relay" \
	bash -c "grep -q 'received [1-9][0-9]* datagrams ([1-9]' '$LAB_DIR/imp.out'"
check "impostor: the capture holds the relayed datagrams ($(tcpdump -n -r "$CAP" "src host $LAB_SRV_IP" 2>/dev/null | wc -l) from the server)" \
	test "$(tcpdump -n -r "$CAP" "src host $LAB_SRV_IP" 2>/dev/null | wc -l)" -gt 0
check "impostor: none of the program's data reached it (capture, socket)" \
	bash -c "! tcpdump -n -r '$CAP' -A 2>/dev/null | grep -qF '$secret' && ! grep -qF '$secret' '$LAB_DIR/imp.bytes'"

stop_server
summary relay_keyed

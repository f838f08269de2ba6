#!/usr/bin/env bash
# test_shim_fail.sh - how the shim fails: with no partner within N4_TIMEOUT the
# designating call fails with ETIMEDOUT (an unreachable server: EHOSTUNREACH) and the
# shim says so in one line, and a capture on NAT A's outside shows that not a byte of
# the program's data left; a bad setting gives one clear line and EINVAL at the first
# designated call while every other socket keeps working.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so

lab_with_server shim --nat-a inc --nat-b inc

CAP=$LAB_DIR/wan0.pcap
start_capture() {
	: >"$LAB_DIR/tcpdump.log"
	CAP_PID=$(lab_bg nata "$LAB_DIR/tcpdump.log" tcpdump -n -i wan0 -U -s 0 -w "$CAP" 'tcp or udp')
	lab_wait_for grep -q "listening on" "$LAB_DIR/tcpdump.log" --timeout 5
}
stop_capture() {
	lab_stop_pid "$CAP_PID"
}
# payload_left STRING: the string appears in a captured packet.
payload_left() {
	tcpdump -n -r "$CAP" -A 2>/dev/null | grep -qF "$1"
}
packets() {
	tcpdump -n -r "$CAP" 2>/dev/null | wc -l
}
shim_errors() { # LOG: the shim's own error lines (not libn4's progress)
	grep -c "ERROR \[designate.c" "$1"
}
# program_says LOG TEXT: TEXT on a line of LOG that is not one of the shim's or
# libn4's own (those say "its sends fail with Connection timed out" themselves).
program_says() {
	grep -v "\] [A-Z]\+ \[" "$1" | grep -qF "$2"
}
# errno_is NODE CALL WANT ENV...: tests/helpers/shim_errno CALL (connect or sendto) to
# the placeholder under the shim in NODE with ENV; its first failing call reported
# errno WANT (a name, "send: ETIMEDOUT").
ERRNO=$N4_BIN/tests/shim_errno
errno_is() {
	local node=$1 call=$2 want=$3 dst=$4 got
	shift 4
	got=$(lab_exec "$node" env "$@" LD_PRELOAD="$SHIM" "$ERRNO" "$call" "$dst" 2>>"$LAB_DIR/errno.err")
	echo "# shim_errno $call: ${got:-nothing}"
	[[ $got =~ ^[a-z]+:\ $want$ ]]
}

# 1. No partner: nc's connect() to the placeholder fails, socat's sendto() too.  nc -u
# prints no error line of its own (only its status says it failed); the errno each
# call saw is shim_errno's to report.
secret="SECRET-$RANDOM-PAYLOAD"
lab_flush
start_capture
log=$LAB_DIR/nc-alone.log
printf '%s\n' "$secret" >"$LAB_DIR/secret"
lab_exec a env N4_SERVER="$LAB_SRV_IP" N4_IDENT=alone N4_TIMEOUT=3 LD_PRELOAD="$SHIM" \
	nc -u "$LAB_SRV_IP" 5000 <"$LAB_DIR/secret" >/dev/null 2>"$log"
rc=$?
check "no partner: nc fails (status $rc)" test "$rc" -ne 0
check "no partner: exactly one shim line says why" test "$(shim_errors "$log")" -eq 1
grep "ERROR \[designate.c" "$log" | sed 's/^/# /'
log=$LAB_DIR/socat-alone.log
lab_exec a env N4_SERVER="$LAB_SRV_IP" N4_IDENT=alone2 N4_TIMEOUT=3 LD_PRELOAD="$SHIM" \
	socat -u STDIN "UDP-SENDTO:$LAB_SRV_IP:5000" <"$LAB_DIR/secret" >/dev/null 2>"$log"
rc=$?
check "no partner: socat's sendto fails (status $rc)" test "$rc" -ne 0
check "no partner: socat's own error line says ETIMEDOUT" program_says "$log" "Connection timed out"
check "no partner: exactly one shim line for socat" test "$(shim_errors "$log")" -eq 1
check "no partner: connect+send (as nc) fails with ETIMEDOUT" \
	errno_is a connect ETIMEDOUT "$LAB_SRV_IP:5000" N4_SERVER="$LAB_SRV_IP" N4_IDENT=alone3 N4_TIMEOUT=3
check "no partner: sendto (as socat) fails with ETIMEDOUT" \
	errno_is a sendto ETIMEDOUT "$LAB_SRV_IP:5000" N4_SERVER="$LAB_SRV_IP" N4_IDENT=alone4 N4_TIMEOUT=3
stop_capture
check "no partner: the capture on nata wan0 saw the rendezvous ($(packets) packets)" \
	test "$(packets)" -gt 0
if payload_left "$secret"; then
	not_ok "no partner: none of the program's payload left NAT A"
else
	ok "no partner: none of the program's payload left NAT A"
fi

# 1b. A signal during the rendezvous gives EINTR; two threads sending at once share one
# rendezvous and get the same error; later sends fail at once.
log=$LAB_DIR/eintr.log
lab_exec a env N4_SERVER="$LAB_SRV_IP" N4_IDENT=eintr N4_TIMEOUT=2 LD_PRELOAD="$SHIM" \
	"$N4_BIN/tests/shim_eintr" "$LAB_SRV_IP:5000" >"$log.out" 2>"$log"
check "signal: EINTR is returned, not swallowed" grep -q "^ok signal" "$log.out"
check "two threads during one rendezvous get the same result" grep -q "^ok two threads" "$log.out"
check "two threads: one rendezvous, one failure line" test "$(shim_errors "$log")" -eq 1
check "a later send on the failed socket fails at once" grep -q "^ok later send" "$log.out"
sed 's/^/# /' "$log.out"

# 2. Unreachable server: EHOSTUNREACH.
log=$LAB_DIR/unreach.log
lab_exec a env N4_SERVER=192.0.2.99 N4_TIMEOUT=3 LD_PRELOAD="$SHIM" \
	nc -u 192.0.2.99 5000 </dev/null >/dev/null 2>"$log"
rc=$?
check "unreachable server: nc fails (status $rc)" test "$rc" -ne 0
check "unreachable server: exactly one shim line" test "$(shim_errors "$log")" -eq 1
check "unreachable server: connect+send fails with EHOSTUNREACH" \
	errno_is a connect EHOSTUNREACH 192.0.2.99:5000 N4_SERVER=192.0.2.99 N4_TIMEOUT=3

# 3. Bad settings: one clear line and EINVAL at the first designated call; a socket
# that is not designated works as before.
log=$LAB_DIR/badident.log
: >"$LAB_DIR/rx"
rx=$(lab_bg srv "$LAB_DIR/rx" timeout 10 socat -u UDP4-RECV:7000 STDOUT)
check "bad N4_IDENT: the receiver for the undesignated socket is up" \
	lab_wait_for lab_exec srv sh -c "ss -ulnH 'sport = :7000' | grep -q ." --timeout 5
lab_exec a env N4_SERVER="$LAB_SRV_IP" N4_PEER=192.0.2.77:7777 N4_IDENT=waytoolong \
	LD_PRELOAD="$SHIM" sh -c "echo undesignated | socat -u STDIN UDP-SENDTO:$LAB_SRV_IP:7000;
		echo designated | socat -u STDIN UDP-SENDTO:192.0.2.77:7777" >/dev/null 2>"$log"
rc=$?
check "bad N4_IDENT: the designated socat fails (status $rc)" test "$rc" -ne 0
check "bad N4_IDENT: one clear line naming it" test "$(grep -c "N4_IDENT" "$log")" -eq 1
check "bad N4_IDENT: socat's own error line says EINVAL" program_says "$log" "Invalid argument"
check "bad N4_IDENT: the designated sendto fails with EINVAL" \
	errno_is a sendto EINVAL 192.0.2.77:7777 N4_SERVER="$LAB_SRV_IP" N4_PEER=192.0.2.77:7777 N4_IDENT=waytoolong
check "bad N4_IDENT: a socket that is not designated still works" \
	lab_wait_for grep -q undesignated "$LAB_DIR/rx" --timeout 5
lab_stop_pid "$rx"
sed 's/^/# /' "$log"

# 4. Bad N4_JOIN (discovery in rooms): the designated call fails with EINVAL, one line
# names the variable.
for bad in 0 70000 abc 2342, 1,2,3,4,5,6,7,8,9 2342,1721x; do
	: >"$LAB_DIR/errno.err"
	check "bad N4_JOIN='$bad': the designated sendto fails with EINVAL" \
		errno_is a sendto EINVAL 192.0.2.77:7777 N4_SERVER="$LAB_SRV_IP" \
		N4_PEER=192.0.2.77:7777 N4_JOIN="$bad"
	check "bad N4_JOIN='$bad': one line names it" \
		test "$(grep -c "N4_JOIN" "$LAB_DIR/errno.err")" -eq 1
done
: >"$LAB_DIR/errno.err"
check "N4_JOIN on N4_HOST's port: EINVAL" errno_is a sendto EINVAL 192.0.2.77:7777 \
	N4_SERVER="$LAB_SRV_IP" N4_PEER=192.0.2.77:7777 N4_JOIN=2342 N4_HOST=2342
check "N4_JOIN on N4_HOST's port: one line says why" \
	grep -q "N4_JOIN: port 2342 is also N4_HOST" "$LAB_DIR/errno.err"

summary shim

# punch_lib.sh - helpers for lab tests that run the n4 server and clients.
# Source after tests/lab/lib.sh.  Every helper fails loudly (non-zero + message).

N4_BIN=${N4_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
N4=$N4_BIN/n4

pass=0
fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $*"; fail=$((fail + 1)); }
check() { # description, command...; fails when the check does (check ... || cleanup)
	local what=$1
	shift
	if "$@"; then ok "$what"; else
		not_ok "$what"
		return 1
	fi
}
summary() { # suite name
	echo "$1: $pass passed, $fail failed"
	((fail == 0))
}

# status_field NAME: the value of NAME=... in a fresh SIGUSR1 status line of the
# server started by start_server (relay counters, rejects...).
status_field() {
	local before
	before=$(grep -c "status:.*relay:" "$SRV_LOG")
	lab_exec srv kill -USR1 "$SRV_PID"
	lab_wait_for bash -c "(( \$(grep -c 'status:.*relay:' '$SRV_LOG') > $before ))" --timeout 5 >/dev/null
	grep "status:" "$SRV_LOG" | tail -n 1 | grep -oE " $1=[0-9]+" | tail -n 1 | cut -d= -f2
}

# Start `n4 -s` in srv; wait until it serves.  Extra args go to the server.
SRV_N=0
start_server() {
	SRV_N=$((SRV_N + 1))
	SRV_LOG=$LAB_DIR/server.$SRV_N.log
	: >"$SRV_LOG"
	SRV_PID=$(lab_bg srv "$SRV_LOG" "$N4" -s ${N4_SRV_ARGS:-} "$@")
	lab_wait_for grep -q "serving on" "$SRV_LOG" --timeout 5 || {
		echo "server did not start:" >&2
		cat "$SRV_LOG" >&2
		return 1
	}
}

stop_server() {
	[[ -n ${SRV_PID:-} ]] && lab_stop_pid "$SRV_PID"
	SRV_PID=
	return 0
}

# client NODE LOG args...: start `n4 -c` in NODE, echo its pid.
client() {
	local node=$1 log=$2
	shift 2
	lab_bg "$node" "$log" "$N4" -c -h "$LAB_SRV_IP" "$@"
}

# wait_pids TIMEOUT_S pid...: wait for processes to exit (polling /proc).
wait_pids() {
	local t=$1
	shift
	local end=$((SECONDS + t))
	for p in "$@"; do
		while kill -0 "$p" 2>/dev/null; do
			((SECONDS < end)) || return 1
			sleep 0.05
		done
	done
}

won() { grep -q '\[ WIN \]' "$1"; }
local_port() { sed -nE 's/.*Local port: +([0-9]+).*/\1/p' "$1" | tail -n 1; }
peer_addr() { sed -nE 's/.*Peer address: +([0-9.]+:[0-9]+).*/\1/p' "$1" | tail -n 1; }
told_peer() { sed -nE 's/.* => Peer: ([0-9.]+:[0-9]+).*/\1/p' "$1"; } # one line per round
# Milliseconds from the first log line to [ WIN ].
win_ms() {
	awk -F'[][ ,:]+' '/\[ WIN \]/ { w = ($3*3600+$4*60+$5)*1000+$6 }
		NR == 1 { s = ($3*3600+$4*60+$5)*1000+$6 }
		END { if (w) print w - s; else print -1 }' "$1"
}

# Run one pair a<->b with the given client args; sets LOG_A/LOG_B; returns 0
# when both report [ WIN ].
run_pair() {
	local tag=$1
	shift
	LOG_A=$LAB_DIR/$tag-a.log
	LOG_B=$LAB_DIR/$tag-b.log
	local pa pb
	pa=$(client a "$LOG_A" "$@")
	pb=$(client b "$LOG_B" "$@")
	wait_pids 60 "$pa" "$pb" || { kill "$pa" "$pb" 2>/dev/null; }
	won "$LOG_A" && won "$LOG_B"
}

# message_crosses FROM_NODE FROM_LOG TO_NODE TO_LOG: after a WIN, a datagram sent
# from FROM's punched port to the address it was given arrives at TO's punched
# port, through both NATs, with no n4 process left running.
message_crosses() {
	local from=$1 from_log=$2 to=$3 to_log=$4
	local lport rport peer out msg
	lport=$(local_port "$from_log")
	rport=$(local_port "$to_log")
	peer=$(peer_addr "$from_log")
	[[ -n $lport && -n $rport && -n $peer ]] || return 1
	out=$LAB_DIR/msg-$from-$to.out
	msg="hello from $from $RANDOM"
	: >"$out"
	local rpid
	rpid=$(lab_bg "$to" "$out" timeout 10 socat -u "UDP4-RECV:$rport,reuseaddr" STDOUT)
	lab_wait_for lab_exec "$to" sh -c "ss -ulnH 'sport = :$rport' | grep -q ." --timeout 5 || return 1
	lab_exec "$from" sh -c "printf '%s\n' '$msg' | socat -u STDIN UDP4-SENDTO:$peer,sourceport=$lport,reuseaddr"
	lab_wait_for grep -qF "$msg" "$out" --timeout 5
	local rc=$?
	kill "$rpid" 2>/dev/null
	return $rc
}

# lab_with_server SUITE LAB_UP_ARGS...: bring up a lab (torn down on exit) with the
# n4 server running; on failure, report the suite as failed and exit the script.
lab_with_server() {
	local suite=$1
	shift
	trap lab_down EXIT
	if ! lab_up "$@" || ! start_server; then
		echo "$suite: 0 passed, 1 failed"
		exit 1
	fi
}

# capture_start NODE IFACE PCAP FILTER...: tcpdump in NODE writing PCAP (its own log
# beside it); succeeds only once tcpdump says it is listening, so that a capture that
# shows nothing is known to have been running.  Sets CAP_PID; capture_stop ends it.
capture_start() {
	local node=$1 ifc=$2 pcap=$3
	shift 3
	: >"$pcap.log"
	CAP_PID=$(lab_bg "$node" "$pcap.log" tcpdump -n -i "$ifc" -U -s 0 -w "$pcap" "$@") || return 1
	lab_wait_for grep -q "listening on" "$pcap.log" --timeout 5
}
capture_stop() {
	[[ -n ${CAP_PID:-} ]] && lab_stop_pid "$CAP_PID"
	CAP_PID=
	return 0
}

# tcp_payloads PCAP FILTER: the TCP payload of each matching packet, one line of hex
# digits per packet (empty payloads skipped).
tcp_payloads() {
	tcpdump -r "$1" -n -x "$2" 2>/dev/null | awk '
	function hex(s,   i, v) {
		v = 0
		for (i = 1; i <= length(s); i++)
			v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
		return v
	}
	function flush(   i, ihl, doff, tot, p) {
		if (nb == 0) return
		ihl = (hex(b[0]) % 16) * 4
		tot = hex(b[2] b[3])
		doff = int(hex(b[ihl + 12]) / 16) * 4
		p = ""
		for (i = ihl + doff; i < tot; i++)
			p = p b[i]
		if (p != "") print p
		nb = 0
	}
	/^[0-9]/ { flush() }
	/^\t0x/ { for (i = 2; i <= NF; i++) { b[nb++] = substr($i, 1, 2); if (length($i) > 2) b[nb++] = substr($i, 3, 2) } }
	END { flush() }'
}
# hex_of: stdin as lowercase hex digits on one line.
hex_of() { od -An -v -tx1 | tr -d ' \n'; }

# need_up SUITE WHAT CMD...: run CMD (lab_up, start_server); when it fails, WHAT is a
# "not ok" and the suite ends with its summary: a part that could not run is counted,
# never a silent exit.
need_up() {
	local suite=$1 what=$2
	shift 2
	"$@" && return 0
	not_ok "$what came up"
	summary "$suite"
	exit 1
}

# --- shim sessions (test_shim_sessions, test_shim_listener, bench/sessions.sh) -----
# field LOG NAME: the number after "NAME " on the last such line of LOG.
field() { sed -nE "s/^$2 ([-0-9]+).*/\1/p" "$1" | tail -n 1; }
both_punched() { grep -q "punched" "$1" && grep -q "punched" "$2"; }
# resume_ms LOG T: ms from T to the end of the first silence ("gap" line) that spans T.
resume_ms() {
	awk -v t="$2" '$1 == "gap" && $2 <= t + 200 && $3 >= t { print $3 - t; exit }' "$1"
}
set_udp_timeout() { # SECONDS on both NATs (unreplied and stream)
	local n
	for n in nata natb; do
		lab_exec $n sysctl -qw net.netfilter.nf_conntrack_udp_timeout="$1" \
			net.netfilter.nf_conntrack_udp_timeout_stream="$1"
	done
}

#!/usr/bin/env bash
# test_shim_sessions.sh - paths that last, through the shim, between two NAT4s:
#   keepalive: both NATs forget idle UDP after 5 s; 20 s of silence; both directions
#              are heard again (N4_RECOVER=0: the keepalive alone holds the path);
#   recovery:  NAT A loses its state mid-stream (conntrack flush), then a NAT reload
#              that also moves its port counter: a two-way stream resumes, time measured,
#              one log line per recovery with its cause;
#   one-way:   a sink whose sender never hears it: the sink notices, the server tells
#              the sender;
#   poll/read: netcat's pattern never blocks in read() after poll (late PUNCH filter);
#   SA_RESTART: a 20 ms SA_RESTART timer does not break the designating sendto, and
#              its handler may dup and close the socket (async-signal-safe hooks);
#   listeners: bind to N4_LISTEN returns at once; a program that binds again serves
#              three clients in turn;
#              and one socket serves three clients one after another;
#   port hops: a client that moves to a new socket every 2 s keeps its path;
#   restart:   one side's program restarts and the session resumes, although the other
#              side is an echo server that never speaks first (the server tells it);
#   dups:      five copies of the socket, sending on the last one only;
#   exec:      the program execs itself on the fifth copy and keeps sending;
#   v6only:    an AF_INET6 program socket on a host with net.ipv6.bindv6only=1;
#   daemon:    a listener forks after bind and its parent exits (mosh-server does).
# Usage: test_shim_sessions.sh [FLAVOR] (inc or inc-linux; default inc, and the
# recovery, listener, hop and restart cases run on inc-linux too).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
PROG=$N4_BIN/tests/shim_session
PH=192.0.2.77:7777 # N4_PEER on both sides: the program's peer never changes

lab_with_server shim-sessions --nat-a inc --nat-b inc
# KEEP_LOGS=DIR: copy the logs there before the lab goes (debugging).
[[ -n ${KEEP_LOGS:-} ]] && trap 'cp "$LAB_DIR"/*.log "$KEEP_LOGS"/ 2>/dev/null; lab_down' EXIT

# side NODE LOG IDENT ARGS...: a shimmed shim_session in NODE; prints its pid.
side() {
	local node=$1 log=$2 ident=$3
	shift 3
	lab_bg "$node" "$log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" N4_PEER="$PH" \
		N4_LISTEN=5000 LD_PRELOAD="$SHIM" ${EXTRA_ENV:-} "$PROG" "$@"
}
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
# lines_over LOG N: LOG has more than N lines now (a function, so that a wait
# re-counts at every poll).
lines_over() { (($(grep -c . "$1") > $2)); }
both_heard() { grep -q "^heard 10" "$1" && grep -q "^heard 10" "$2"; }
# two_way_at_nata: NAT A's conntrack holds a UDP flow toward NAT B that has seen
# replies (ASSURED): the stream runs both ways through it.
two_way_at_nata() {
	lab_exec nata conntrack -L -p udp -d "$LAB_NATB_IP" 2>/dev/null | grep -q ASSURED
}

# --- keepalive --------------------------------------------------------------------
keepalive_case() {
	local f=$1 la=$LAB_DIR/ka-$1-a.log lb=$LAB_DIR/ka-$1-b.log pa pb
	lab_flush
	# NATs that forget after 3 s, 10 s of silence, a keepalive every second.
	set_udp_timeout 3
	pa=$(EXTRA_ENV="N4_RECOVER=0 N4_KEEPALIVE=${KA_S:-1}" side a "$la" ka${f:4:1}x -c "$PH" -d 13 -q 1:11)
	pb=$(EXTRA_ENV="N4_RECOVER=0 N4_KEEPALIVE=${KA_S:-1}" side b "$lb" ka${f:4:1}x -l 5000 -d 13 -q 1:11)
	wait_pids 40 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	set_udp_timeout 30
	local ha hb
	ha=$(field "$la" heard-after-quiet) hb=$(field "$lb" heard-after-quiet)
	check "keepalive ($f): a hears b after 10 s of silence ($ha datagrams)" test "${ha:-0}" -ge 10
	check "keepalive ($f): b hears a after 10 s of silence ($hb datagrams)" test "${hb:-0}" -ge 10
}

# --- recovery ---------------------------------------------------------------------
# recovery_case FLAVOR HOW: HOW = flush (conntrack -F on NAT A) or reload (ruleset
# reloaded with the port counter moved, and its state lost)
recovery_case() {
	local f=$1 how=$2 tag=${3:-} la=$LAB_DIR/rec-$1-$2${3:-}-a.log lb=$LAB_DIR/rec-$1-$2${3:-}-b.log pa pb t
	lab_flush
	pa=$(side a "$la" r${how:0:1}${f:4:1}x$tag -c "$PH" -d 7)
	pb=$(side b "$lb" r${how:0:1}${f:4:1}x$tag -l 5000 -d 7)
	check "recovery ($f, $how$tag): both sides punched" \
		lab_wait_for both_punched "$la" "$lb" --timeout 10
	check "recovery ($f, $how$tag): a is streaming" lab_wait_for lines_over "$la" 3 --timeout 5
	# A steady two-way stream before NAT A forgets: ten datagrams heard on each side
	# (a second of it), and NAT A has seen it both ways.
	check "recovery ($f, $how$tag): each side heard ten datagrams" \
		lab_wait_for both_heard "$la" "$lb" --timeout 5
	check "recovery ($f, $how$tag): the stream runs both ways through NAT A" \
		lab_wait_for two_way_at_nata --timeout 5
	if [[ $how == reload ]]; then
		LAB_INC_BASE_A=$((LAB_INC_BASE_A + 1000)) lab_set_nat a "$f"
	fi
	t=$(now_ms)
	lab_exec nata conntrack -F >/dev/null 2>&1
	wait_pids 20 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	local ra rb
	ra=$(resume_ms "$la" "$t") rb=$(resume_ms "$lb" "$t")
	echo "# recovery ($f, $how$tag): resumed after ${ra:-never} ms at a, ${rb:-never} ms at b"
	check "recovery ($f, $how$tag): a hears b again within 5 s (${ra:-never} ms)" \
		test "${ra:-99999}" -le 5000
	check "recovery ($f, $how$tag): b hears a again within 5 s (${rb:-never} ms)" \
		test "${rb:-99999}" -le 5000
	check "recovery ($f, $how$tag): one log line with cause and duration on each side" \
		test "$(grep -c 'path recovered (cause' "$la")" -ge 1 -a \
		"$(grep -c 'path recovered (cause' "$lb")" -ge 1
	grep -h "path recovered" "$la" "$lb" | sed 's/^.*INFO/# /'
	[[ $how == reload ]] && lab_set_nat a "$f"
}

# One-way stream: the sender never hears anything, so only its sink can tell the
# path died; the server tells the sender (N4_EXT_STAY).
oneway_case() {
	local f=$1 la=$LAB_DIR/ow-$1-a.log lb=$LAB_DIR/ow-$1-b.log pa pb t rb
	lab_flush
	pa=$(EXTRA_ENV=N4_KEEPALIVE=2 side a "$la" ow${f:4:1}x -c "$PH" -d 8)
	pb=$(side b "$lb" ow${f:4:1}x -l 5000 -Z -d 8)
	check "one-way stream ($f): both sides punched" \
		lab_wait_for both_punched "$la" "$lb" --timeout 10
	# A steady one-way stream first (25 datagrams at the sink, 2.5 s of it).
	check "one-way stream ($f): the sink heard 25 datagrams" \
		lab_wait_for grep -q "^heard 25" "$lb" --timeout 10
	t=$(now_ms)
	lab_exec ${OW_NAT:-nata} conntrack -F >/dev/null 2>&1 # the sender's NAT: its kept server connection too
	wait_pids 20 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	rb=$(resume_ms "$lb" "$t")
	echo "# one-way ($f): the sink hears the sender again after ${rb:-never} ms"
	check "one-way stream ($f): resumes within 5 s (${rb:-never} ms)" test "${rb:-99999}" -le 5000
	grep -h "path recovered" "$la" "$lb" | sed 's/^.*INFO/# /'
}

# --- listeners ---------------------------------------------------------------------
rebind_case() {
	local f=$1 ll=$LAB_DIR/rebind-$1.log pl k ok_all=1
	lab_flush
	pl=$(lab_bg b "$ll" env N4_SERVER="$LAB_SRV_IP" N4_IDENT=rb${f:4:1}x N4_LISTEN=5000 \
		LD_PRELOAD="$SHIM" "$PROG" -l 5000 -B 3)
	# No client exists yet: a bind that waited for a rendezvous would never return
	# here.  (How long it takes is bench/sessions.sh's figure.)
	check "listener ($f): bind to N4_LISTEN returns before any client comes" \
		lab_wait_for grep -q "^bind " "$ll" --timeout 5
	for k in 1 2 3; do
		local lc=$LAB_DIR/rebind-$f-c$k.log
		lab_exec a env N4_SERVER="$LAB_SRV_IP" N4_IDENT=rb${f:4:1}x LD_PRELOAD="$SHIM" \
			timeout 20 "$PROG" -c "$LAB_SRV_IP:5000" -1 -d 15 >"$lc" 2>&1
		grep -q "pong $k" "$lc" || ok_all=0
	done
	wait_pids 5 "$pl" || lab_stop_pid "$pl"
	echo "# listener ($f): bind took $(field "$ll" bind) ms"
	check "listener ($f): a program binding the port again serves 3 clients in turn" \
		test "$ok_all" = 1 -a "$(grep -c '^served' "$ll")" = 3
}

# One socket, one N4_LISTEN program, three clients one after another: each new
# client's HELLO makes the server tell the listener (N4_EXT_STAY), which punches again
# to it under the same socket.
serial_case() {
	local f=$1 ll=$LAB_DIR/serial-$1.log pl k ok_all=1
	lab_flush
	pl=$(side b "$ll" sr${f:4:1}x -l 5000 -i 0 -d 25)
	for k in 1 2 3; do
		local lc=$LAB_DIR/serial-$f-c$k.log
		lab_exec a env N4_SERVER="$LAB_SRV_IP" N4_IDENT=sr${f:4:1}x N4_PEER="$PH" \
			LD_PRELOAD="$SHIM" timeout 10 "$PROG" -c "$PH" -1 -d 8 >"$lc" 2>&1
		grep -q "^pong" "$lc" || ok_all=0
	done
	lab_stop_pid "$pl"
	check "listener ($f): one socket serves 3 clients one after another" test "$ok_all" = 1
	check "listener ($f): clients 2 and 3 each moved the path (server notice), one line each" \
		test "$(grep -c 'path recovered (cause: the peer punched again' "$ll")" = 2
}

hop_case() {
	local f=$1 la=$LAB_DIR/hop-$1-a.log lb=$LAB_DIR/hop-$1-b.log pa pb
	lab_flush
	pa=$(side a "$la" hp${f:4:1}x -c "$PH" -d 7 -H 2)
	pb=$(side b "$lb" hp${f:4:1}x -l 5000 -d 7)
	wait_pids 20 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	check "port hops ($f): every hop joins the path, one rendezvous" \
		test "$(grep -c 'joins the path' "$la")" -ge 3 -a "$(grep -c 'designated' "$la")" -le 4
	# A hop that lost the path would be silent until a recovery (seconds); a loaded
	# machine may delay a datagram past the helper's 500 ms gap line.
	check "port hops ($f): no silence over 1.5 s at either side" \
		test -z "$(awk '$1 == "gap" && $3 - $2 > 1500' "$la" "$lb")"
}

restart_case() {
	local f=$1 la=$LAB_DIR/rs-$1-a.log lb=$LAB_DIR/rs-$1-b.log lb2=$LAB_DIR/rs-$1-b2.log
	local pa pb t0 first
	lab_flush
	# An echo server: it never speaks first, so only the server's notice (N4_EXT_STAY)
	# can tell it that its peer came back.
	pa=$(side a "$la" rs${f:4:1}x -l 5000 -i 0 -d 8)
	pb=$(side b "$lb" rs${f:4:1}x -c "$PH" -d 30)
	lab_wait_for both_punched "$la" "$lb" --timeout 10
	# The echo server's kept connection is lost (as when its NAT forgets the TCP
	# mapping): its shim registers a new one (N4_CMD_STAY) before the peer restarts.
	lab_wait_for grep -q "Peerinfo .* to $LAB_NATA_IP" "$SRV_LOG" --timeout 5
	lab_exec srv ss -K -t state established dst "$LAB_NATA_IP" >/dev/null 2>&1
	check "restart ($f): a lost server connection is registered again" \
		lab_wait_for grep -q "=> Stay from $LAB_NATA_IP" "$SRV_LOG" --timeout 5
	lab_stop_pid "$pb"
	t0=$(now_ms)
	pb=$(side b "$lb2" rs${f:4:1}x -c "$PH" -d 5)
	wait_pids 25 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	first=$(sed -nE 's/.*first-rx ([-0-9]+).*/\1/p' "$lb2")
	start=$(field "$lb2" start)
	echo "# restart ($f): the restarted side heard its peer $((start + first - t0)) ms after it started"
	check "restart ($f): the session resumes within 5 s of the restarted side's first send" \
		test "${first:--1}" -ge 0 -a "$((start + first - t0))" -le 5000
}

# --- the program's own I/O --------------------------------------------------------
io_case() {
	local la=$LAB_DIR/io-a.log lb=$LAB_DIR/io-b.log pa pb
	lab_flush
	pb=$(side b "$lb" io -l 5000 -p "$PH" -d 6 -P)
	sleep 1 # the client's designating sendto waits a second under its 20 ms timer
	# Every 400 ms: a read() that waited for the next real datagram after a filtered
	# PUNCH would block for about that long, well over the bound below.
	pa=$(side a "$la" io -c "$PH" -d 5 -i 400 -R -S -X -K)
	wait_pids 20 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	local waited
	waited=$(sed -nE 's/^first send returned after ([0-9]+) ms.*/\1/p' "$lb")
	check "listener: a send before the WIN waits for it (${waited:-?} ms), then goes" \
		test "${waited:-0}" -ge 500
	check "SA_RESTART: the designating sendto succeeds under a 20 ms timer" \
		grep -q "first send returned after" "$la"
	check "signal handler that dups and closes the socket: no deadlock, run completes" \
		grep -q "^done" "$la"
	grep -h "first send" "$la" | sed 's/^/# /'
	local rb
	rb=$(sed -nE 's/.*readblock ([0-9]+).*/\1/p' "$lb")
	check "poll/read: read() after poll never blocks (longest ${rb:-?} ms, the next datagram is 400 ms away)" \
		test "${rb:-999}" -lt 200
	check "late-PUNCH filter: none of the PUNCHes the peer sent reached the program" \
		test -z "$(grep '^got a PUNCH' "$lb")"
	local got
	got=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$lb")
	if grep -q "now on the fifth copy" "$la" && ((${got:-0} >= 5)); then
		ok "dups: five copies, sending on the last one reaches the peer ($got)"
	else
		not_ok "dups: five copies, sending on the last one reaches the peer (${got:-0})"
	fi
}

# ONLY=REGEX runs only the cases whose name matches (keepalive, recovery, rebind...).
# --- a stranger behind the same NAT ----------------------------------------------
# Without a key, anyone who knows the identifier can say HELLO, and the server then
# tells the kept connections to punch again (N4_EXT_STAY).  A live two-way session
# must not follow that notice to the stranger: it goes on both ways without a gap.
# (The listening side may still punch with the stranger as its next partner, as a
# serial listener does: without a key that is the documented risk.)
stranger_case() {
	local la=$LAB_DIR/st-a.log lb=$LAB_DIR/st-b.log ls=$LAB_DIR/st-s.log pa pb ps
	lab_flush
	pa=$(side a "$la" stx -c "$PH" -d 9)
	pb=$(side b "$lb" stx -l 5000 -d 9)
	lab_wait_for both_punched "$la" "$lb" --timeout 10
	lab_wait_for grep -q "first send returned" "$la" --timeout 5
	lab_wait_for grep -q "first send returned" "$lb" --timeout 5
	ps=$(lab_bg a2 "$ls" "$N4" -c -h "$LAB_SRV_IP" -a stx -t 5)
	wait_pids 25 "$pa" "$pb" "$ps" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; lab_stop_pid "$ps"; }
	check "stranger: the server did tell the session to punch again" \
		grep -q "<= Repunch to" "$SRV_LOG"
	local gaps ga gb
	gaps=$(awk '$1 == "gap" && $3 - $2 > 1000' "$la" "$lb" | wc -l)
	ga=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$la") gb=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$lb")
	check "stranger: the stream went on without a gap over 1 s (a got $ga, b got $gb)" \
		test "$gaps" -eq 0 -a "${ga:-0}" -ge 60 -a "${gb:-0}" -ge 60
}

want() {
	[[ -z ${ONLY:-} || $1 =~ $ONLY ]] && return 0
	echo "skip - not selected by ONLY=$ONLY: $1"
	return 1
}
# net.ipv6.bindv6only=1: the program's AF_INET6 socket is v6-only; the socket the
# shim puts under it must still reach the IPv4 peer.
v6only_case() {
	local la=$LAB_DIR/v6-a.log lb=$LAB_DIR/v6-b.log pa pb ga gb
	lab_flush
	lab_exec a sysctl -qw net.ipv6.bindv6only=1
	pb=$(side b "$lb" v6 -l 5000 -d 4)
	pa=$(side a "$la" v6 -c "$PH" -6 -d 3)
	wait_pids 15 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	lab_exec a sysctl -qw net.ipv6.bindv6only=0
	ga=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$la") gb=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$lb")
	check "bindv6only=1: an AF_INET6 program socket talks both ways ($ga/$gb received)" \
		test "${ga:-0}" -ge 10 -a "${gb:-0}" -ge 10
}

# A daemon: the listener forks right after its bind and the parent exits before any
# peer came; the child's shim takes the rendezvous over.
daemon_case() {
	local la=$LAB_DIR/dm-a.log lb=$LAB_DIR/dm-b.log pa pb ga gb
	lab_flush
	pb=$(EXTRA_ENV=N4_LOG=${DM_LOG:-info} side b "$lb" dm -l 5000 -F -d 5)
	check "daemon: the listener's parent says it exits" \
		lab_wait_for grep -q "parent exits" "$lb" --timeout 5
	check "daemon: the parent is gone before the client comes" wait_pids 5 "$pb"
	pa=$(side a "$la" dm -c "$PH" -d 4)
	wait_pids 15 "$pa" || lab_stop_pid "$pa"
	lab_wait_for grep -q "^done" "$lb" --timeout 5
	ga=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$la") gb=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$lb")
	check "daemon: the child of a listener whose parent exited is punched ($ga/$gb received)" \
		test "${ga:-0}" -ge 20 -a "${gb:-0}" -ge 20
}

# A listener alone: its send before any WIN fails after N4_TIMEOUT, not never.
alone_case() {
	local lb=$LAB_DIR/alone-b.log pb
	pb=$(EXTRA_ENV=N4_TIMEOUT=1 side b "$lb" alone -l 5000 -p "$PH" -d 4)
	wait_pids 10 "$pb" || lab_stop_pid "$pb"
	local waited
	waited=$(sed -nE 's/^sendto: Connection timed out after ([0-9]+) ms.*/\1/p' "$lb")
	check "listener alone: a send fails with ETIMEDOUT after N4_TIMEOUT, not never (${waited:-no ETIMEDOUT} ms)" \
		test "${waited:-0}" -ge 1000 -a "${waited:-0}" -lt 5000
}

exec_case() {
	local la=$LAB_DIR/exec-a.log lb=$LAB_DIR/exec-b.log pa pb got
	lab_flush
	pb=$(side b "$lb" ex -l 5000 -p "$PH" -d 5)
	pa=$(side a "$la" ex -c "$PH" -d 5 -X -E)
	wait_pids 20 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
	check "exec: the new image takes over the punched path (five copies)" \
		grep -q "punched path inherited across exec" "$la"
	got=$(sed -nE 's/.*got ([0-9]+).*/\1/p' "$lb")
	check "exec: its sends to the placeholder still reach the peer ($got received)" \
		test "${got:-0}" -ge 25
}

flavors=${1:-inc inc-linux}
for f in $flavors; do
	if [[ $f != inc ]]; then
		lab_set_nat a "$f" && lab_set_nat b "$f"
	fi
	[[ $f == inc ]] && want keepalive && keepalive_case "$f"
	want recovery && recovery_case "$f" flush
	want reload && recovery_case "$f" reload
	# With a pre-shared key (N4_KEY): the recovery pairs and punches keyed too.
	[[ $f == inc ]] && want keyed &&
		EXTRA_ENV="N4_KEY=$("$N4" genkey)" recovery_case "$f" flush k
	[[ $f == inc ]] && want oneway && oneway_case "$f"
	want rebind && rebind_case "$f"
	[[ $f == inc ]] && want serial && serial_case "$f"
	want hop && hop_case "$f"
	want restart && restart_case "$f"
	[[ $f == inc ]] && want io && io_case
	[[ $f == inc ]] && want exec && exec_case
	[[ $f == inc ]] && want alone && alone_case
	[[ $f == inc ]] && want v6only && v6only_case
	[[ $f == inc ]] && want daemon && daemon_case
	[[ $f == inc ]] && want stranger && stranger_case
done

summary shim-sessions

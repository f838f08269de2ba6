#!/usr/bin/env bash
# test_shim_flows.sh - many sockets to one peer, and the peer's LAN addresses (issue 20).
#
# One program behind NAT A talks to one program behind NAT B (tests/helpers/flowpeer,
# under libn4shim.so on both sides; B with N4_LISTEN=5000).  A first path is made by a
# control socket (A: to the placeholder SERVER:5000; B: its socket bound to 5000);
# then other sockets of the same programs send to other ports of the peer, at its
# placeholder IP, at the listener's peer address, or at the peer's LAN address: each
# must become a flow of that peer and reach the socket the peer bound to that port.
#   multi:     three sockets of A to three ports of B at its placeholder IP, and a
#              fourth to B's LAN address, opened at once; B's four sockets only answer
#              (echo).  Every socket of A is answered, from the exact address it sent
#              to, within 5 s, and its sends never blocked for 1 s; the server planned
#              four fast flows (issue 20) and told none NO;
#   media:     mirrored pairs (both send first, from bound ports): A at B's
#              placeholder IP, B at A's address as B's listener sees it; and both at
#              each other's LAN addresses, as RTP from an SDP does; then a listen-only
#              flow; each side opens them one after the other.  All three went the
#              fast way: three fast flows, none told NO, no rendezvous (pairs, HELLO)
#              but the first path's;
#   dead:      a flow to a port B never binds (N4_FLOW_TIMEOUT=3): the sends return,
#              fail with EHOSTUNREACH within 3 attempts of 3 s (+2 s each), and NAT A's
#              WAN side carries at most a handful of datagrams toward NAT B for it;
#   burst:     three mirrored flows opened at once by both sides at 20 ms one-way
#              delay: each shim punched each flow in under 2 s (no lost round), by
#              the fast way as in media;
#   fallback:  A with N4_STAY=0 (no kept connection): two mirrored flows still work,
#              by ordinary rendezvous (B asked for the fast way and fell back);
#   keyed:     multi with a key (N4_KEY_FILE, both sides), its flows opened one after
#              the other: its three flows and its flow to B's LAN address (the keyed
#              alias) are keyed paths, by the fast way as in media;
#   then, in a lab where both LANs are 10.1.0.0/24 (lab_up --same-subnet on):
#   same-subnet: A sends to B's LAN address, inside A's own subnet: reaches B;
#   neighbour: a host on A's LAN (a2) owns B's LAN address and is in A's neighbour
#              table: the datagram reaches a2, not B; and B also holds A's own address,
#              which stays A's own: A's datagram to it reaches A's own socket.
# Over each lab's whole run, a capture in the server's namespace: no datagram or TCP
# segment the server received carries a LAN address of either site (the 4 bytes) in
# its payload: LAN addresses go end to end, never through the server.
# ONLY=REGEX runs the cases whose name matches; KEEP_LOGS=DIR keeps the lab directory.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
FP=$N4_BIN/tests/flowpeer
A_S=12 # how long A's program runs (s); B's runs 4 s longer
MIN_ANSWERS=30 # at one every 100 ms: 3 s of answers in a 12 s run
FIRST_MS=5000  # a flow's first answer within this of its first send
FLOW_TIMEOUT=3 # N4_FLOW_TIMEOUT of the dead case

if [[ ! -x $FP || ! -e $SHIM ]]; then
	not_ok "$FP and $SHIM are built (make)"
	summary shim_flows
	exit 1
fi
keep_logs() { [[ -z ${KEEP_LOGS:-} || -z ${LAB_DIR:-} ]] || cp -r "$LAB_DIR" "$KEEP_LOGS"/ 2>/dev/null; }
trap 'keep_logs; lab_down' EXIT
KEYENV=()
CASE_N=0

want() { [[ -z ${ONLY:-} || $1 =~ $ONLY ]]; }

# shimmed NODE LOG IDENT [N4_VAR=VALUE...] -- FLOWPEER_ARGS...: flowpeer under the shim
# in NODE (the case's key in KEYENV); prints its pid.
shimmed() {
	local node=$1 log=$2 ident=$3 envs=()
	shift 3
	while (($#)) && [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	lab_bg "$node" "$log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" ${KEYENV[@]+"${KEYENV[@]}"} \
		${envs[@]+"${envs[@]}"} LD_PRELOAD="$SHIM" "$FP" "$@"
}

# sf LOG I NAME: the value after NAME on spec I's report line.
sf() {
	awk -v i="$2" -v k="$3" '$1 == "spec" && $2 == i { for (j = 3; j < NF; j++) if ($j == k) print $(j + 1) }' "$1"
}

# srv_counts: the server's counters from a fresh status line (SIGUSR1, lib/server.c):
# prints "ACCEPTED PAIRS FAST_FLOWS FAST_NO LINE" (TCP connections accepted; rendezvous
# paired; fast flows planned; fast requests told NO; the status line's number in the log).
srv_counts() {
	local before
	before=$(grep -c " status: clients=" "$SRV_LOG")
	lab_exec srv kill -USR1 "$SRV_PID" || return 1
	lab_wait_for bash -c "(( \$(grep -c ' status: clients=' '$SRV_LOG') > $before ))" \
		--timeout 5 >/dev/null || return 1
	grep -n " status: clients=" "$SRV_LOG" | tail -n 1 | awk '{
		for (i = 1; i <= NF; i++) { n = index($i, "="); if (n) v[substr($i, 1, n - 1)] = substr($i, n + 1) }
		split($1, l, ":")
		print v["accepted"] + 0, v["pairs"] + 0, v["fast_flows"] + 0, v["fast_no"] + 0, l[1] }'
}

# run_pair NAME B_ARGS -- A_ARGS: B's program (listener on 5000) first, A's once B's
# runs; waits for both (bounded).  Sets LA, LB.  B_ENV/A_ENV: more variables.
# With COUNT set, the server's counters (srv_counts) before the pair (C0) and once
# every socket of both programs has received its first datagram (C2).
run_pair() {
	local name=$1 b=() a=() pa pb na nb
	shift
	while [[ $1 != -- ]]; do
		b+=("$1")
		shift
	done
	shift
	a=("$@")
	LA=$LAB_DIR/$name-a.log LB=$LAB_DIR/$name-b.log
	PAIRS_RUN=$((PAIRS_RUN + 1))
	lab_flush
	C0="" C2=""
	[[ -z ${COUNT:-} ]] || C0=$(srv_counts)
	pb=$(shimmed b "$LB" "$IDENT" N4_LISTEN=5000 ${B_ENV[@]+"${B_ENV[@]}"} -- -t $((A_S + 4)) "${b[@]}")
	if ! lab_wait_for grep -q "^start 0" "$LB" --timeout 5; then
		not_ok "$name: B's program started"
		lab_stop_pid "$pb"
		return 1
	fi
	pa=$(shimmed a "$LA" "$IDENT" ${A_ENV[@]+"${A_ENV[@]}"} -- -t $A_S "${a[@]}")
	if [[ -n ${COUNT:-} ]]; then
		na=$(printf '%s\n' "${a[@]}" | grep -cE '^(send|echo):')
		nb=$(printf '%s\n' "${b[@]}" | grep -cE '^(send|echo):')
		lab_wait_for bash -c "(( \$(grep -c '^first ' '$LA') >= $na && \$(grep -c '^first ' '$LB') >= $nb ))" \
			--timeout $A_S >/dev/null || echo "# $name: not every socket heard its peer in $A_S s"
		C2=$(srv_counts)
	fi
	if ! wait_pids $((A_S + 25)) "$pa" "$pb"; then
		not_ok "$name: both programs ended within their run time + 25 s (no hang)"
		lab_stop_pid "$pa"
		lab_stop_pid "$pb"
	fi
	if ! grep -q "^done" "$LA" || ! grep -q "^done" "$LB"; then
		tail -n 15 "$LA" | sed 's/^/# a: /'
		tail -n 15 "$LB" | sed 's/^/# b: /'
	fi
	grep -iE 'n4shim.*(flow|alias|lan addr)' "$LA" | head -n 8 | sed 's/^/# a shim: /'
	grep -iE 'n4shim.*(flow|alias|lan addr)' "$LB" | head -n 8 | sed 's/^/# b shim: /'
	return 0
}

# answered WHAT LOG I: spec I (a sender) heard its destination, only it, soon, and its
# sends never blocked long.
answered() {
	local what=$1 log=$2 i=$3 dst fd fo fr ms
	dst=$(sf "$log" "$i" dst) fd=$(sf "$log" "$i" from_dst) fo=$(sf "$log" "$i" from_other)
	fr=$(sf "$log" "$i" first_rx_ms) ms=$(sf "$log" "$i" max_send_ms)
	check "$what: answered from $dst itself ($fd datagrams, first after ${fr:-?} ms; >= $MIN_ANSWERS within $FIRST_MS ms)" \
		test "${fd:-0}" -ge $MIN_ANSWERS -a "${fr:--1}" -ge 0 -a "${fr:--1}" -le $FIRST_MS
	check "$what: nothing from any other address (${fo:-?})" test "${fo:-1}" -eq 0
	check "$what: no send blocked for 1 s (longest ${ms:-?} ms)" test "${ms:-99999}" -lt 1000
}

# fast_paths WHAT N [concurrent]: after a run_pair with COUNT, the pair's N flows went
# the fast way (issue 20), by the server's counters: it planned N fast flows and told
# no request NO; it paired one rendezvous, the first path's; and its log holds two
# HELLOs from the pair's start until every socket was answered, the first path's
# (there is no counter of HELLOs: "accepted" also counts the kept connection each
# punched flow opens).  "concurrent": flows opened at once with no delay, where a fast
# round can be lost (bench/RESULTS.md "Calls"); the flow then recovers by an ordinary
# rendezvous, which is counted and shown but not failed.
fast_paths() {
	local what=$1 n=$2 how=${3:-} p0 f0 n0 l0 p2 f2 n2 l2 hellos
	read -r _ p0 f0 n0 l0 <<<"${C0:-x}"
	read -r _ p2 f2 n2 l2 <<<"${C2:-x}"
	echo "# $what: server: accepted pairs fast_flows fast_no (log line): before: ${C0:-?}; all answered: ${C2:-?}"
	if [[ ! "$C0 $C2" =~ ^([0-9]+ ){9}[0-9]+$ ]]; then
		not_ok "$what: the server's status line was read twice ('$C0' '$C2')"
		return
	fi
	check "$what: the server planned $n fast flows for its $n flows (fast_flows $f0 -> $f2) and told none NO (fast_no $n0 -> $n2)" \
		test $((f2 - f0)) -eq "$n" -a $((n2 - n0)) -eq 0
	hellos=$(sed -n "${l0},${l2}p" "$SRV_LOG" | grep -c "=> Hello from")
	if [[ $how == concurrent ]]; then
		echo "# $what: $((p2 - p0 - 1)) of $n flows lost their fast round and took an ordinary rendezvous ($hellos HELLOs)"
		return
	fi
	check "$what: one rendezvous paired, the first path's (pairs $p0 -> $p2), and $hellos HELLOs meanwhile (2: the first path's; none for a flow)" \
		test $((p2 - p0)) -eq 1 -a "$hellos" -eq 2
}

# punched_ms LOG LPORT PPORT: the shim's "flow LPORT -> the peer's port PPORT punched:
# ... in N ms" line's N (empty when there is none).
punched_ms() {
	grep -oE "flow $2 -> the peer's port $3 punched: .* in [0-9]+ ms" "$1" | tail -n 1 |
		grep -oE '[0-9]+ ms$' | cut -d' ' -f1
}

# echoed WHAT LOG I: echo spec I heard someone.
echoed() {
	local rx
	rx=$(sf "$2" "$3" rx)
	check "$1 (${rx:-?} datagrams)" test "${rx:-0}" -gt 0
}

# --- the server's capture -------------------------------------------------------------
# lan_in_payloads PCAP HEX...: the UDP and TCP packets to the server whose payload holds
# one of the 4-byte patterns (byte-aligned); prints "PACKETS SCANNED_BYTES HITS LOCALS",
# then the payload of each hit ("hit HEX").  LOCALS: the TCP packets where each address
# found is the address of an 8-byte LOCAL message (command 0x0D, doc/PROTOCOL.md: the
# same-LAN extension N4_EXT_LOCAL tells the server up to 4 local addresses, by design,
# for pairs behind one NAT); those are counted apart, not as hits.
lan_in_payloads() {
	local pcap=$1
	shift
	tcpdump -r "$pcap" -n -x "dst host $LAB_SRV_IP and (udp or tcp)" 2>/dev/null | awk -v pats="$*" '
	function hex(s,   i, v) {
		v = 0
		for (i = 1; i <= length(s); i++)
			v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
		return v
	}
	function flush(   i, ihl, off, tot, p, k, pos, rest, found, other, m) {
		if (nb == 0) return
		ihl = (hex(b[0]) % 16) * 4
		tot = hex(b[2] b[3])
		if (b[9] == "11") off = ihl + 8
		else off = ihl + int(hex(b[ihl + 12]) / 16) * 4
		p = ""
		for (i = off; i < tot && i < nb; i++) p = p b[i]
		pkts++; bytes += length(p) / 2
		found = 0; other = 0
		for (k = 1; k <= np; k++) {
			rest = p; pos = 0
			while ((i = index(rest, pat[k])) > 0) {
				m = pos + i - 1 # hex digit offset in p
				if (m % 2 == 0) {
					found = 1
					# a LOCAL: 0d at byte m/2-2 of a TCP payload, on a message boundary
					if (!(b[9] == "06" && (m / 2 - 2) % 8 == 0 && substr(p, m - 3, 2) == "0d"))
						other = 1
				}
				pos += i; rest = substr(rest, i + 1)
			}
		}
		if (other) { hits++; if (shown++ < 5) lines = lines "hit " p "\n" }
		else if (found) locals++
		nb = 0
	}
	BEGIN { np = split(pats, pat, " ") }
	/^[0-9]/ { flush() }
	/^\t0x/ { for (i = 2; i <= NF; i++) { b[nb++] = substr($i, 1, 2); if (length($i) > 2) b[nb++] = substr($i, 3, 2) } }
	END { flush(); printf "%d %d %d %d\n%s", pkts, bytes, hits, locals, lines }'
}
ip_hex() { printf '%02x' ${1//./ }; }

SRV_PCAP=
server_capture() { # start one for this lab
	SRV_PCAP=$LAB_DIR/server.pcap
	capture_start srv eth0 "$SRV_PCAP" "dst host $LAB_SRV_IP" || {
		not_ok "a capture runs in the server's namespace"
		SRV_PCAP=
	}
	SRV_CAP_PID=$CAP_PID
	PAIRS_RUN=0
}
server_check() { # WHAT IP...: stop the capture and look for the addresses
	local what=$1 out pk by hits locals pats=() ip
	shift
	[[ -n $SRV_PCAP ]] || return
	CAP_PID=$SRV_CAP_PID capture_stop
	((PAIRS_RUN > 0)) || return 0 # ONLY left this lab's cases out
	for ip in "$@"; do pats+=("$(ip_hex "$ip")"); done
	out=$(lan_in_payloads "$SRV_PCAP" "${pats[@]}")
	read -r pk by hits locals <<<"$out"
	sed -n 's/^hit /# payload with a LAN address: /p' <<<"$out"
	echo "# $what: ${locals:-?} LOCAL messages (the same-LAN extension) told the server local addresses"
	check "$what: the server received no LAN address ($*) in any payload but LOCAL's ($pk packets, $by payload bytes scanned, $hits with one)" \
		test "${pk:-0}" -gt 0 -a "${hits:-1}" -eq 0
}

# --- the cases --------------------------------------------------------------------------
# multi TAG [-q]: three flows at B's placeholder IP, one at B's LAN address; opened at
# once, or with -q one after the other (each once the one before is answered).
multi() {
	local name=$1 ph=$LAB_SRV_IP seq=${2:-}
	IDENT=fl$((++CASE_N))
	run_pair "$name" echo:5000 echo:6001 echo:6002 echo:6003 echo:6004 -- \
		-g ${seq:+"$seq"} "send:$ph:5000" "send:$ph:6001" "send:$ph:6002" "send:$ph:6003" "send:$LAB_B_IP:6004"
	answered "$name: the control socket (first path)" "$LA" 0
	local i
	for i in 1 2 3; do
		answered "$name: flow $i to the placeholder's port 600$i" "$LA" $i
		echoed "$name: B's socket on 600$i heard A" "$LB" $i
	done
	answered "$name: LAN alias: A's socket to B's LAN address $LAB_B_IP:6004" "$LA" 4
	echoed "$name: LAN alias: B's socket on 6004 heard A" "$LB" 4
	if [[ -n ${COUNT:-} && -n $seq ]]; then
		fast_paths "$name: one at a time" 4
	elif [[ -n ${COUNT:-} ]]; then
		fast_paths "$name: four at once" 4 concurrent
	fi
}

# media TAG: mirrored flows, both sides sending first from bound ports, and a
# listen-only flow (B's socket only echoes); each side opens its flows one at a time.
media() {
	local name=$1
	IDENT=fl$((++CASE_N))
	run_pair "$name" -g -q echo:5000 send:peer:16000@17000 "send:$LAB_A_IP:16002@17002" echo:6001 -- \
		-g -q "send:$LAB_SRV_IP:5000" "send:$LAB_SRV_IP:17000@16000" "send:$LAB_B_IP:17002@16002" \
		"send:$LAB_SRV_IP:6001"
	answered "$name: A 16000 -> B's placeholder IP:17000, mirrored" "$LA" 1
	answered "$name: B 17000 -> A's address as B's listener sees it, port 16000, mirrored" "$LB" 1
	answered "$name: A 16002 -> B's LAN address $LAB_B_IP:17002, mirrored (RTP from an SDP)" "$LA" 2
	answered "$name: B 17002 -> A's LAN address $LAB_A_IP:16002, mirrored" "$LB" 2
	answered "$name: A -> B's placeholder IP:6001, listen-only" "$LA" 3
	echoed "$name: listen-only: B's socket on 6001 heard A" "$LB" 3
	[[ -z ${COUNT:-} ]] || fast_paths "$name" 3
}

# dead: a flow to a port B never binds.
dead() {
	local name=dead pcap=$LAB_DIR/dead-nata.pcap ctl n eu er en ms limit t1
	IDENT=fl$((++CASE_N))
	capture_start nata wan0 "$pcap" "udp and src host $LAB_NATA_IP and dst host $LAB_NATB_IP" || {
		not_ok "$name: a capture runs on NAT A's WAN side"
		return
	}
	local save=$A_S
	A_S=20
	A_ENV=(N4_FLOW_TIMEOUT=$FLOW_TIMEOUT) B_ENV=(N4_FLOW_TIMEOUT=$FLOW_TIMEOUT)
	run_pair "$name" echo:5000 -- -g "send:$LAB_SRV_IP:5000" "send:$LAB_SRV_IP:6999"
	A_ENV=() B_ENV=() A_S=$save
	capture_stop
	answered "$name: the control socket (first path)" "$LA" 0
	eu=$(sf "$LA" 1 eunreach_at) er=$(sf "$LA" 1 errors) en=$(sf "$LA" 1 first_errno)
	ms=$(sf "$LA" 1 max_send_ms)
	limit=$((3 * (FLOW_TIMEOUT + 2) * 1000))
	check "$name: no send to the dead port blocked for 1 s (longest ${ms:-?} ms)" \
		test "${ms:-99999}" -lt 1000
	check "$name: its sends fail with EHOSTUNREACH after >= $FLOW_TIMEOUT s and within 3 attempts ($limit ms): at ${eu:-?} ms ($er errors, first errno $en)" \
		test "${eu:--1}" -ge $((FLOW_TIMEOUT * 1000)) -a "${eu:--1}" -le $limit -a "${en:-0}" -eq 113
	# From the dead flow's first send on (the wall clock flowpeer printed), outside the
	# control path: its own datagrams (data, keepalives) leave from its public port,
	# which B's program saw first.  (Before, the first path's own sweep.)
	ctl=$(sf "$LB" 0 first_from)
	ctl=${ctl##*:}
	t1=$(awk '$1 == "start" && $2 == 1 { print $4 }' "$LA")
	n=$(tcpdump -r "$pcap" -n -tt "not src port ${ctl:-0}" 2>/dev/null |
		awk -v t="${t1:-0}" '{ split($1, a, "."); if (a[1] * 1000 + substr(a[2], 1, 3) >= t) n++ }
			END { print n + 0 }')
	check "$name: NAT A's WAN side sent at most 5 datagrams toward NAT B for the flow (outside the control path, port ${ctl:-?}, since its first send): $n (no sweep)" \
		test -n "$ctl" -a -n "$t1" -a "$n" -le 5
}

# burst: three mirrored flows opened at once (both sides) at a one-way delay of 20 ms:
# each punched in its first fast round, none lost (a lost round costs seconds).
burst() {
	local name=burst i ms side log lp pp save=$A_S
	IDENT=fl$((++CASE_N))
	if ! lab_set_delay 20; then
		not_ok "$name: a one-way delay of 20 ms at the WAN router"
		return
	fi
	A_S=8
	COUNT=1 run_pair "$name" -g echo:5000 send:peer:16001@17001 send:peer:16002@17002 \
		send:peer:16003@17003 -- -g "send:$LAB_SRV_IP:5000" "send:$LAB_SRV_IP:17001@16001" \
		"send:$LAB_SRV_IP:17002@16002" "send:$LAB_SRV_IP:17003@16003"
	A_S=$save
	lab_set_delay 0 || not_ok "$name: the delay is lifted"
	for i in 1 2 3; do
		answered "$name: A 1600$i -> B's placeholder IP:1700$i" "$LA" $i
		answered "$name: B 1700$i -> A's address, port 1600$i" "$LB" $i
		for side in A B; do
			[[ $side == A ]] && log=$LA lp=1600$i pp=1700$i || log=$LB lp=1700$i pp=1600$i
			ms=$(punched_ms "$log" $lp $pp)
			check "$name: $side's shim punched flow $lp -> $pp in ${ms:-?} ms, under 2000 (no lost round)" \
				test "${ms:-99999}" -lt 2000
		done
	done
	fast_paths "$name" 3
}

# fallback: A keeps no server connection (N4_STAY=0), so its flows rendezvous the
# ordinary way; B's shim asks for the fast way, is told NO (no partner) or gives up,
# and rendezvous too: the flows work all the same.  Mirrored flows only: a listen-only
# flow needs a FLOW notice on the kept connections of both (doc/SHIM.md "Flows").
fallback() {
	local name=fallback p0 f0 n0 p2 f2 n2
	IDENT=fl$((++CASE_N))
	A_ENV=(N4_STAY=0)
	COUNT=1 run_pair "$name" -g -q echo:5000 send:peer:16000@17000 "send:$LAB_A_IP:16002@17002" -- \
		-g -q "send:$LAB_SRV_IP:5000" "send:$LAB_SRV_IP:17000@16000" "send:$LAB_B_IP:17002@16002"
	A_ENV=()
	answered "$name: A 16000 -> B's placeholder IP:17000, mirrored" "$LA" 1
	answered "$name: B 17000 -> A's address, port 16000, mirrored" "$LB" 1
	answered "$name: A 16002 -> B's LAN address $LAB_B_IP:17002, mirrored" "$LA" 2
	answered "$name: B 17002 -> A's LAN address $LAB_A_IP:16002, mirrored" "$LB" 2
	read -r _ p0 f0 n0 _ <<<"${C0:-x}"
	read -r _ p2 f2 n2 _ <<<"${C2:-x}"
	echo "# $name: server: accepted pairs fast_flows fast_no (log line): before: ${C0:-?}; all answered: ${C2:-?}"
	if [[ ! "$C0 $C2" =~ ^([0-9]+ ){9}[0-9]+$ ]]; then
		not_ok "$name: the server's status line was read twice ('$C0' '$C2')"
		return
	fi
	check "$name: no fast flow planned (fast_flows $f0 -> $f2; B told NO $((n2 - n0)) times), the two flows paired by ordinary rendezvous (pairs $p0 -> $p2: the first path and 2)" \
		test "$f2" -eq "$f0" -a $((p2 - p0)) -eq 3
}

# --- lab 1: the usual numbering ------------------------------------------------------
need_up shim_flows "the lab" lab_up --nat-a inc --nat-b inc
need_up shim_flows "the n4 server" start_server
KEY=$LAB_DIR/flows.key
need_up shim_flows "a key (n4 genkey, mode 0600)" bash -c "umask 077 && '$N4' genkey >'$KEY'"
server_capture
want multi && COUNT=1 multi multi
want media && COUNT=1 media media
want dead && dead
want burst && burst
want fallback && fallback
KEYENV=(N4_KEY_FILE="$KEY")
want keyed && COUNT=1 multi keyed-multi -q
KEYENV=()
CASE_N=0
server_check "lab 1" "$LAB_A_IP" "$LAB_A2_IP" "$LAB_B_IP" "$LAB_B2_IP"
stop_server
keep_logs
lab_down

# --- lab 2: both LANs 10.1.0.0/24 -----------------------------------------------------
# same_subnet TAG: A to B's LAN address, which is in A's own subnet (no neighbour owns it).
same_subnet() {
	local name=$1 st
	IDENT=fl$((++CASE_N))
	run_pair "$name" echo:5000 echo:6004 -- -g "send:$LAB_SRV_IP:5000" "send:$LAB_B_IP:6004"
	answered "$name: A's socket to B's LAN address $LAB_B_IP:6004 (A's own subnet)" "$LA" 1
	echoed "$name: B's socket on 6004 heard A" "$LB" 1
}

# neighbour: a2 owns B's LAN address on A's LAN and is A's neighbour; B also holds A's
# own address.
neighbour() {
	local name=neighbour pn st rx own
	IDENT=fl$((++CASE_N))
	local ln=$LAB_DIR/neighbour-a2.log
	if ! lab_exec a2 ip addr add "$LAB_B_IP/24" dev eth0 ||
		! lab_exec b ip addr add "$LAB_A_IP/24" dev eth0 ||
		! lab_exec a ping -c 1 -W 2 "$LAB_B_IP" >/dev/null; then
		not_ok "$name: a2 holds $LAB_B_IP, b holds $LAB_A_IP, a reaches a2 there"
		return
	fi
	st=$(lab_exec a ip neigh show "$LAB_B_IP" dev eth0)
	check "$name: $LAB_B_IP is a complete entry of a's neighbour table ($st)" \
		grep -qE 'REACHABLE|STALE|DELAY|PROBE|PERMANENT' <<<"$st"
	# bound to b's address, so that a2 answers from it (not from its first address)
	pn=$(lab_bg a2 "$ln" "$FP" -t $((A_S + 6)) -b "$LAB_B_IP" echo:6004)
	lab_wait_for grep -q "^start 0" "$ln" --timeout 5
	run_pair "$name" echo:5000 echo:6004 echo:6005 -- \
		-g "send:$LAB_SRV_IP:5000" "send:$LAB_B_IP:6004" echo:6005 "send:$LAB_A_IP:6005"
	wait_pids 10 "$pn" || lab_stop_pid "$pn"
	rx=$(sf "$ln" 0 rx)
	check "$name: the neighbour a2 got A's datagrams to $LAB_B_IP:6004 (${rx:-?})" test "${rx:-0}" -gt 0
	rx=$(sf "$LB" 1 rx)
	check "$name: B's socket on 6004 got none of them (${rx:-?})" test "${rx:-1}" -eq 0
	answered "$name: A's socket to $LAB_B_IP:6004 answered (by a2)" "$LA" 1
	own=$(sf "$LA" 2 rx)
	check "$name: A's datagrams to its own address $LAB_A_IP:6005 reached its own socket (${own:-?})" \
		test "${own:-0}" -gt 0
	rx=$(sf "$LB" 2 rx)
	check "$name: B's socket on 6005 got none of them (${rx:-?})" test "${rx:-1}" -eq 0
	lab_exec a2 ip addr del "$LAB_B_IP/24" dev eth0
	lab_exec b ip addr del "$LAB_A_IP/24" dev eth0
	lab_exec a ip neigh flush dev eth0
}

if want 'same-subnet|neighbour'; then
	need_up shim_flows "the lab with one subnet" lab_up --nat-a inc --nat-b inc --same-subnet on
	need_up shim_flows "the n4 server" start_server
	server_capture
	want same-subnet && same_subnet same-subnet
	want neighbour && neighbour
	server_check "lab 2" "$LAB_A_IP" "$LAB_A2_IP" "$LAB_B_IP" "$LAB_B2_IP"
fi
summary shim_flows

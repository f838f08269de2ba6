#!/usr/bin/env bash
# test_room_discovery.sh - LAN games find a room's host across the NATs (N4_JOIN).
#
# A LAN game finds its server by broadcasting on the game's port, and a game server
# announces itself by broadcast or multicast on it.  The host is an unmodified game
# server (tests/helpers/lan_announcer) behind NAT A with N4_HOST=PORT; the joiners are
# unmodified browsers (tests/helpers/lan_browser) and listeners (lan_announcer) behind
# the other sites' NATs with N4_JOIN=PORT, none of them given an address:
#   browse:   a browser behind B (inc-linux) broadcasts queries: answered within 3 s of
#             its first query, from the placeholder (the server's IP) with the game's
#             port; then PLAY/ACK by unicast to that address (>= 90%); the host hears
#             it at one address; its broadcasts still go out raw on its own LAN (a
#             capture on NAT B's LAN, a plain program beside it hears them all);
#   two:      two browsers at once behind B (inc-linux, 255.255.255.255) and C (dec, its
#             LAN's directed broadcast, its address configured with it as DHCP does;
#             N4_PEER set: its placeholder is N4_PEER's IP), both
#             answered and playing; a joined listener of the room behind D hears the
#             host's announcements but never a browser's query, and neither browser
#             hears the other's (joiners never reach joiners);
#   nobrd:    a browser broadcasting to its LAN's directed broadcast address on an
#             interface whose address was added without an explicit broadcast (as the
#             lab's are): the kernel broadcasts it, and it is answered as in two;
#   announce: a keyed room whose host broadcasts ANN every 500 ms: two joined
#             listeners behind B and C each hear >= 90% of them after their first, all
#             from the placeholder; a plain program on the host's LAN hears them raw; a
#             listener with another key hears none; a listener of another room (its own
#             host behind D, broadcasting too) hears its own room only;
#   multicast: the same with the announcements sent to a group the listeners joined;
#   rate:     a host announcing 50 times a second: a joined listener gets 20 a second
#             (after a burst), the host's LAN all of them, and one warning line.
# Every case has its own identifiers and fresh NAT state.  ONLY=REGEX runs the cases
# whose name matches; KEEP_LOGS=DIR keeps the logs.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
BROWSER=$N4_BIN/tests/lan_browser
ANNOUNCER=$N4_BIN/tests/lan_announcer
PORT=27015              # the game's port (N4_HOST, N4_JOIN)
GROUP=239.255.42.1      # the game's announcement group (administratively scoped)
PH_PEER=192.0.2.77:7777 # N4_PEER of one browser: its placeholder IP instead of the server's

lab_with_server room-discovery --sites 5 --nat-a inc --nat-b inc-linux --nat-c dec \
	--nat-d cone --nat-e inc
[[ -n ${KEEP_LOGS:-} ]] && trap 'cp "$LAB_DIR"/*.log "$KEEP_LOGS"/ 2>/dev/null; lab_down' EXIT

PIDS=() # every program of the current case

# shimmed NODE LOG IDENT [VAR=VALUE...] -- CMD...: CMD under the shim in NODE for the
# room IDENT; echoes its pid.
shimmed() {
	local node=$1 log=$2 ident=$3 envs=()
	shift 3
	while [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	lab_bg "$node" "$log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" LD_PRELOAD="$SHIM" \
		"${envs[@]}" "$@"
}

# room_host NODE LOG IDENT [VAR=VALUE...] -- ARGS...: lan_announcer hosting the room
# IDENT on PORT; waits until the room is open.
room_host() {
	local node=$1 log=$2 ident=$3 envs=() pid
	shift 3
	while [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	pid=$(shimmed "$node" "$log" "$ident" N4_HOST=$PORT "${envs[@]}" -- \
		"$ANNOUNCER" -p $PORT "$@")
	PIDS+=("$pid")
	lab_wait_for grep -q "room '$ident' open" "$log" --timeout 10
}

# joined_listener NODE LOG IDENT [VAR=VALUE...] -- ARGS...: lan_announcer bound to PORT
# under the shim with N4_JOIN=PORT (it joins at bind); waits until it is bound.
joined_listener() {
	local node=$1 log=$2 ident=$3 envs=() pid
	shift 3
	while [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	pid=$(shimmed "$node" "$log" "$ident" N4_JOIN=$PORT "${envs[@]}" -- \
		"$ANNOUNCER" -p $PORT "$@")
	PIDS+=("$pid")
	lab_wait_for grep -q "^bound" "$log" --timeout 5
}

# plain NODE LOG ARGS...: lan_announcer on PORT without the shim (a program on a LAN).
plain() {
	local node=$1 log=$2 pid
	shift 2
	pid=$(lab_bg "$node" "$log" "$ANNOUNCER" -p $PORT "$@")
	PIDS+=("$pid")
	lab_wait_for grep -q "^bound" "$log" --timeout 5
}

# browser NODE LOG IDENT [VAR=VALUE...] -- ARGS...: a shimmed lan_browser joining the
# room IDENT by its broadcasts; sets PID.
browser() {
	local node=$1 log=$2 ident=$3 envs=()
	shift 3
	while [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	PID=$(shimmed "$node" "$log" "$ident" N4_JOIN=$PORT "${envs[@]}" -- "$BROWSER" "$@" $PORT)
	PIDS+=("$PID")
}

stop_all() {
	local p
	for p in "${PIDS[@]}"; do
		lab_stop_pid "$p" 5
	done
	PIDS=()
}

# --- reading the logs ----------------------------------------------------------------
# done_of LOG NAME: NAME's value on the program's last line ("done ... NAME N ...").
done_of() { sed -nE "s/^done(.* | )$2 ([-0-9]+).*/\2/p" "$1" | tail -n 1; }
first_answer_ms() { sed -nE 's/^first-answer ([0-9]+) from .*/\1/p' "$1" | head -n 1; }
first_answer_from() { sed -nE 's/^first-answer [0-9]+ from ([0-9.]+:[0-9]+).*/\1/p' "$1" | head -n 1; }
answered() { grep -q "^first-answer" "$1"; }
finished() { grep -q "^done" "$1"; }
# pct_of N D: N as a whole percentage of D (0 when D is 0).
pct_of() { if (($2 > 0)); then echo $(($1 * 100 / $2)); else echo 0; fi; }
# addrs LOG KIND: the distinct addresses lines "rx KIND ..." came from.
addrs() { sed -nE "s/^rx $2 .*from ([0-9.]+:[0-9]+) at .*/\1/p" "$1" | sort -u | tr '\n' ' '; }
# count_rx LOG KIND [FROM_REGEX]: lines "rx KIND ... from ADDR" (ADDR matching).
count_rx() {
	awk -v k="$2" -v f="${3:-.}" '$1 == "rx" && $2 == k {
		for (i = 3; i < NF; i++) if ($i == "from") a = $(i + 1)
		if (a ~ f) n++ } END { print n + 0 }' "$1"
}
# anns LOG TAG FROM_REGEX: the distinct sequence numbers of TAG's ANNs from FROM.
ann_seqs() {
	awk -v t="$2" -v f="$3" '$1 == "rx" && $2 == "ann" && $4 == t && $6 ~ f { print $3 }' "$1" |
		sort -un
}
got_ann() { (($(count_rx "$1" ann "${2:-.}") > 0)); }
all_got_ann() { local l; for l in "$@"; do got_ann "$l" || return 1; done; }
# ann_pct LOG TAG FROM_REGEX LAST: the share of the ANNs FIRST..LAST heard, FIRST being
# the first one heard (0 when none was).
ann_pct() {
	local seqs first n
	seqs=$(ann_seqs "$1" "$2" "$3")
	[[ -z $seqs ]] && { echo 0; return; }
	first=$(head -n 1 <<<"$seqs")
	n=$(awk -v l="$4" '$1 <= l' <<<"$seqs" | wc -l)
	pct_of "$n" $(($4 - first + 1))
}
has_seq() { ann_seqs "$1" "$2" "$3" | grep -qx "$4"; }
# host_new LOG OWN: the addresses the host program heard first, but its own.
host_new() { sed -nE 's/^new ([0-9.]+:[0-9]+) .*/\1/p' "$1" | grep -vxF "$2" | sort -u | tr '\n' ' '; }
# behind "ADDR..." IP...: one address per IP, each behind that IP, and no other.
behind() {
	local list ip
	read -r -a list <<<"$1"
	shift
	((${#list[@]} == $#)) || return 1
	for ip in "$@"; do
		[[ " ${list[*]} " == *" $ip:"* ]] || return 1
	done
}
# shim_lines LOG [N]: the shim's join and room lines, as comments (for a failure report).
shim_lines() {
	grep -E "room|join|broadcast|multicast|punched|WARN|ERROR" "$1" |
		sed -E 's/^\[[^]]*\] //; s/^/#   /' | head -n "${2:-6}"
}
# pcap_count PCAP FILTER: the packets of PCAP that match FILTER.
pcap_count() { tcpdump -r "$1" -n "$2" 2>/dev/null | wc -l; }
# pcap_has PCAP FILTER N: at least N of them (a capture catching up before it stops).
pcap_has() { (($(pcap_count "$1" "$2") >= $3)); }
# an address regex: the IP's dots literal, any port or the one given
re_of() { local ip=${1//./\\.}; echo "^$ip:${2:-[0-9]+}\$"; }

want() {
	[[ -z ${ONLY:-} || $1 =~ $ONLY ]] && return 0
	echo "skip - not selected by ONLY=$ONLY: $1"
	return 1
}

# --- doom: the real game server of the host issue, found by a LAN browser -----------
# chocolate-server (unmodified) hosts behind NAT A; doom_query -B behind NAT C (dec)
# and NAT D (cone) broadcasts QUERY to 255.255.255.255:2342 as Chocolate Doom's LAN
# search does, then polls the server that answered, at that address.
DOOM=/usr/games/chocolate-server
DOOM_PORT=2342
doom_case() {
	local hl=$LAB_DIR/doom-host.log st=$LAB_DIR/doom.status l node ms from pct
	lab_flush
	if [[ ! -x $DOOM ]]; then
		not_ok "doom: $DOOM is installed (tests/deps.sh)"
		return
	fi
	PIDS+=("$(lab_bg a "$hl" env N4_SERVER="$LAB_SRV_IP" N4_IDENT=ddisc N4_HOST=$DOOM_PORT \
		N4_STATUS="$st" LD_PRELOAD="$SHIM" "$DOOM" -port $DOOM_PORT -privateserver)")
	if ! lab_wait_for grep -q "room 'ddisc' open" "$hl" --timeout 10; then
		not_ok "doom: chocolate-server's room opened"
		shim_lines "$hl" >&2
		stop_all
		return
	fi
	for node in c d; do
		l=$LAB_DIR/doom-$node.log
		PIDS+=("$(shimmed "$node" "$l" ddisc N4_JOIN=$DOOM_PORT -- \
			"$N4_BIN/tests/doom_query" -B -d 8 -i 500 255.255.255.255:$DOOM_PORT)")
	done
	for node in c d; do
		l=$LAB_DIR/doom-$node.log
		lab_wait_for grep -q "^stray\|^malformed" "$l" --timeout 20 >/dev/null
		ms=$(field "$l" first-answer-ms) pct=$(field "$l" answered-pct)
		from=$(sed -nE 's/^answer-from ([0-9.]+:[0-9]+).*/\1/p' "$l" | head -n 1)
		echo "# doom-$node: first answer ${ms:-never} ms from ${from:-nobody}, ${pct:-0}% after it"
		check "doom: the browser behind NAT ${node^^} finds chocolate-server within 3 s of its first query (${ms:-never} ms)" \
			test "${ms:--1}" -ge 0 -a "${ms:-99999}" -le 3000
		check "doom: ... at the placeholder with the game's port (${from:-none})" \
			test "$from" = "$LAB_SRV_IP:$DOOM_PORT"
		check "doom: ... and then polls it there: ${pct:-0}% answered, nothing stray or malformed" \
			test "${pct:-0}" -ge 90 -a "$(field "$l" stray)" = 0 -a "$(field "$l" malformed)" = 0
	done
	stop_all
}

# --- browse: one browser behind NAT B ---------------------------------------------
browse_case() {
	local hl=$LAB_DIR/browse-host.log bl=$LAB_DIR/browse-b.log nl=$LAB_DIR/browse-b2.log
	local pcap=$LAB_DIR/browse-lanb.pcap ms from q plays acks heard
	lab_flush
	if ! room_host a "$hl" dsc1 -- -a; then
		not_ok "browse: the host's room opened"
		shim_lines "$hl" >&2
		stop_all
		return
	fi
	plain b2 "$nl"
	capture_start natb br0 "$pcap" udp and dst port $PORT || not_ok "browse: capture on NAT B's LAN"
	browser b "$bl" dsc1 -- -p -n 50 -t 30
	if ! lab_wait_for finished "$bl" --timeout 40; then
		lab_stop_pid "$PID" 5
	fi
	local filter="src host $LAB_B_IP and dst host 255.255.255.255 and udp dst port $PORT"
	q=$(done_of "$bl" queries)
	lab_wait_for pcap_has "$pcap" "$filter" "${q:-0}" --timeout 2 >/dev/null
	capture_stop
	stop_all

	ms=$(first_answer_ms "$bl") from=$(first_answer_from "$bl")
	plays=$(done_of "$bl" plays) acks=$(done_of "$bl" acks)
	echo "# browse: $(grep '^done' "$bl")"
	echo "# browse: the host heard queries from $(addrs "$hl" q)"
	check "browse: the browser is answered within 3 s of its first query (${ms:-never} ms)" \
		test -n "$ms" -a "${ms:-99999}" -le 3000 || shim_lines "$bl"
	check "browse: the answer comes from the placeholder with the game's port (${from:-none})" \
		test "$from" = "$LAB_SRV_IP:$PORT"
	check "browse: every answer from there ($(done_of "$bl" sources) sources), nothing foreign ($(done_of "$bl" foreign))" \
		test "$(done_of "$bl" sources)" = 1 -a "$(done_of "$bl" foreign)" = 0
	check "browse: PLAY/ACK by unicast to that address: $acks of ${plays:-0} acked (>= 90%)" \
		test "${plays:-0}" -ge 50 -a "$(pct_of "${acks:-0}" "${plays:-0}")" -ge 90
	heard=$(host_new "$hl" "")
	check "browse: the host program heard the joiner at one address, behind NAT B (${heard:-none})" \
		behind "$heard" "$LAB_NATB_IP"
	check "browse: the host answered queries ($(done_of "$hl" q)) and PLAYs ($(done_of "$hl" play)) from it" \
		test "$(done_of "$hl" q)" -ge 1 -a "$(done_of "$hl" play)" -ge 45
	local seen raw
	seen=$(pcap_count "$pcap" "$filter")
	check "browse: NAT B's LAN carried each of its $q broadcast queries raw ($seen captured)" \
		test "${q:-0}" -ge 1 -a "$seen" -eq "${q:-0}"
	raw=$(count_rx "$nl" q "$(re_of "$LAB_B_IP")")
	check "browse: a plain program beside it heard them all from $LAB_B_IP ($raw of $q)" \
		test "$raw" -eq "${q:-0}"
}

# --- two: two browsers at once; a joined listener hears no query ---------------------
two_case() {
	local hl=$LAB_DIR/two-host.log b1=$LAB_DIR/two-b.log b2=$LAB_DIR/two-c.log
	local ll=$LAB_DIR/two-d.log pcap=$LAB_DIR/two-lanc.pcap p1 p2 l
	lab_flush
	# C's address with its broadcast address set, as DHCP clients and networkd set it
	# (the lab's addresses have none: see nobrd)
	# (ip addr replace keeps the old broadcast: add it again, and the route it took along)
	if ! lab_exec c ip -4 -o addr show dev eth0 | grep -qF " brd "; then
		{ lab_exec c ip addr del "$LAB_C_IP/24" dev eth0 &&
			lab_exec c ip addr add "$LAB_C_IP/24" brd + dev eth0 &&
			lab_exec c ip route add default via 10.4.0.1; } ||
			not_ok "two: C's address has its broadcast address"
	fi
	# the host announces too: the listener behind D proves it has joined by hearing it
	if ! room_host a "$hl" dsc2 -- -a -b -T dsc2; then
		not_ok "two: the host's room opened"
		stop_all
		return
	fi
	joined_listener d "$ll" dsc2 -- || not_ok "two: the listener behind D is bound"
	capture_start natc br0 "$pcap" udp and dst port $PORT || not_ok "two: capture on NAT C's LAN"
	browser b "$b1" dsc2 -- -p -n 50 -t 30
	p1=$PID
	browser c "$b2" dsc2 N4_PEER=$PH_PEER -- -b 10.4.0.255 -p -n 50 -t 30
	p2=$PID
	lab_wait_for finished "$b1" --timeout 40 || lab_stop_pid "$p1" 5
	lab_wait_for finished "$b2" --timeout 10 || lab_stop_pid "$p2" 5
	lab_wait_for got_ann "$ll" --timeout 5 >/dev/null
	local q2 filter="ether broadcast and src host $LAB_C_IP and dst host 10.4.0.255 and udp dst port $PORT"
	q2=$(done_of "$b2" queries)
	lab_wait_for pcap_has "$pcap" "$filter" "${q2:-0}" --timeout 2 >/dev/null
	capture_stop
	stop_all

	for l in "$b1" "$b2"; do
		echo "# two: $(basename "$l" .log): $(grep '^done' "$l")"
	done
	local m1 m2 f1 f2
	m1=$(first_answer_ms "$b1") m2=$(first_answer_ms "$b2")
	f1=$(first_answer_from "$b1") f2=$(first_answer_from "$b2")
	check "two: both browsers are answered within 3 s of their first query (${m1:-never} ms, ${m2:-never} ms)" \
		test -n "$m1" -a -n "$m2" -a "${m1:-99999}" -le 3000 -a "${m2:-99999}" -le 3000 ||
		{ shim_lines "$b1"; shim_lines "$b2"; }
	check "two: from their placeholders: the server's IP (${f1:-none}), N4_PEER's IP for the one with N4_PEER (${f2:-none})" \
		test "$f1" = "$LAB_SRV_IP:$PORT" -a "$f2" = "${PH_PEER%:*}:$PORT"
	check "two: both play: $(done_of "$b1" acks) and $(done_of "$b2" acks) of 50 PLAYs acked (>= 90% each)" \
		test "$(pct_of "$(done_of "$b1" acks)" 50)" -ge 90 -a "$(pct_of "$(done_of "$b2" acks)" 50)" -ge 90
	local heard
	heard=$(host_new "$hl" "$LAB_A_IP:$PORT")
	check "two: the host program heard two joiners, behind B and C (${heard:-none})" \
		behind "$heard" "$LAB_NATB_IP" "$LAB_NATC_IP"
	local seen
	seen=$(pcap_count "$pcap" "$filter")
	check "two: the directed broadcast went out raw on NAT C's LAN too ($seen of ${q2:-0})" \
		test "${q2:-0}" -ge 1 -a "$seen" -eq "${q2:-0}"
	# joiners never reach joiners
	echo "# two: the listener behind D: $(grep '^done' "$ll")"
	check "two: the joined listener behind D hears the host's announcements ($(count_rx "$ll" ann "$(re_of "$LAB_SRV_IP" $PORT)") from the placeholder)" \
		got_ann "$ll" "$(re_of "$LAB_SRV_IP" $PORT)"
	# (the queries did reach the room: the host heard them from both browsers)
	check "two: ... and none of the queries the host heard from both browsers ($(count_rx "$ll" q) heard, $(done_of "$ll" other) other)" \
		test "$(count_rx "$ll" q)" -eq 0 -a "$(done_of "$ll" other)" = 0 -a \
		"$(count_rx "$hl" q "^($LAB_NATB_IP|$LAB_NATC_IP):")" -ge 2 -a -n "$(first_answer_ms "$b1")"
	check "two: neither browser heard anything but its answers (foreign $(done_of "$b1" foreign), $(done_of "$b2" foreign))" \
		test "$(done_of "$b1" foreign)$(done_of "$b2" foreign)" = 00 -a -n "$(first_answer_ms "$b2")"
}

# --- nobrd: a directed broadcast on an interface configured without one -------------
# `ip addr add 10.6.0.2/24` (the lab, many scripts) sets no broadcast address:
# getifaddrs then reports the interface's own address as its ifa_broadaddr.  The kernel
# still installs the broadcast route for 10.6.0.255 and sends there as a link-layer
# broadcast: for the program it is its LAN's directed broadcast as on any other.
nobrd_case() {
	local hl=$LAB_DIR/nobrd-host.log bl=$LAB_DIR/nobrd-e.log pcap=$LAB_DIR/nobrd-lane.pcap
	local q seen ms acks plays
	local filter="ether broadcast and src host $LAB_E_IP and dst host 10.6.0.255 and udp dst port $PORT"
	lab_flush
	if ! room_host a "$hl" dsc3 -- -a; then
		not_ok "nobrd: the host's room opened"
		stop_all
		return
	fi
	capture_start nate br0 "$pcap" udp and dst port $PORT || not_ok "nobrd: capture on NAT E's LAN"
	browser e "$bl" dsc3 -- -b 10.6.0.255 -p -n 20 -t 10
	lab_wait_for finished "$bl" --timeout 15 || lab_stop_pid "$PID" 5
	q=$(done_of "$bl" queries)
	lab_wait_for pcap_has "$pcap" "$filter" "${q:-0}" --timeout 2 >/dev/null
	capture_stop
	stop_all
	seen=$(pcap_count "$pcap" "$filter")
	ms=$(first_answer_ms "$bl") plays=$(done_of "$bl" plays) acks=$(done_of "$bl" acks)
	echo "# nobrd: E's address: $(lab_exec e ip -4 -o addr show dev eth0 | awk '{ print $4, $5, $6 }')"
	echo "# nobrd: $(grep '^done' "$bl")"
	check "nobrd: the kernel sends to 10.6.0.255 as a broadcast on E's LAN ($seen of ${q:-0} queries captured)" \
		test "${q:-0}" -ge 1 -a "$seen" -eq "${q:-0}"
	check "nobrd: the browser is answered within 3 s of its first query (${ms:-never} ms)" \
		test -n "$ms" -a "${ms:-99999}" -le 3000 || shim_lines "$bl"
	check "nobrd: ... and plays: ${acks:-0} of ${plays:-0} PLAYs acked (>= 90%)" \
		test "${plays:-0}" -ge 20 -a "$(pct_of "${acks:-0}" "${plays:-0}")" -ge 90
}

# --- announce / multicast: the host's broadcasts reach the joined listeners ------------
# ann_case NAME DEST_ARGS JOIN_ARGS: DEST_ARGS how the hosts announce (lan_announcer -b
# options), JOIN_ARGS what every listener adds (a group to join).
ann_case() {
	local name=$1 dest=$2 join=$3 id=${1:0:3}
	local hl=$LAB_DIR/$name-host.log h2=$LAB_DIR/$name-host2.log
	local l1=$LAB_DIR/$name-b.log l2=$LAB_DIR/$name-c.log raw=$LAB_DIR/$name-a2.log
	local sk=$LAB_DIR/$name-b2.log so=$LAB_DIR/$name-e.log k1 k2 ph
	lab_flush
	k1=$("$N4" genkey) k2=$("$N4" genkey)
	ph=$(re_of "$LAB_SRV_IP" $PORT)
	# shellcheck disable=SC2086 # word-split option lists
	if ! room_host a "$hl" "${id}1" N4_KEY="$k1" -- -b -T "${id}1" $dest ||
		! room_host d "$h2" "${id}2" N4_KEY="$k1" -- -b -T "${id}2" $dest; then
		not_ok "$name: both rooms opened"
		shim_lines "$hl" >&2
		stop_all
		return
	fi
	local hpid=${PIDS[0]} h2pid=${PIDS[1]}
	# shellcheck disable=SC2086
	{
		plain a2 "$raw" $join &&
			joined_listener b "$l1" "${id}1" N4_KEY="$k1" -- $join &&
			joined_listener c "$l2" "${id}1" N4_KEY="$k1" -- $join &&
			joined_listener b2 "$sk" "${id}1" N4_KEY="$k2" -- $join &&
			joined_listener e "$so" "${id}2" N4_KEY="$k1" -- $join
	} || not_ok "$name: the listeners are bound"
	local f
	if ! lab_wait_for all_got_ann "$l1" "$l2" "$so" --timeout 20; then
		for f in "$l1" "$l2" "$so"; do
			got_ann "$f" || { echo "# $name: $(basename "$f" .log) heard nothing"; shim_lines "$f"; }
		done
	fi
	# ten seconds of announcements (20) after the later listener's first
	local s0
	s0=$(grep -c "^rx ann [0-9]* ${id}1 " "$raw")
	lab_wait_for bash -c "(( \$(grep -c '^rx ann [0-9]* ${id}1 ' '$raw') >= ${s0:-0} + 20 ))" \
		--timeout 15 >/dev/null
	lab_stop_pid "$hpid" 5
	lab_stop_pid "$h2pid" 5
	local last last2
	last=$(done_of "$hl" sent) last2=$(done_of "$h2" sent)
	# the last announcement is on its way: wait for it (a lost one is a miss anyway)
	lab_wait_for has_seq "$l1" "${id}1" "$ph" "${last:-0}" --timeout 2 >/dev/null
	lab_wait_for has_seq "$l2" "${id}1" "$ph" "${last:-0}" --timeout 1 >/dev/null
	stop_all

	local p1 p2 pr
	p1=$(ann_pct "$l1" "${id}1" "$ph" "${last:-0}") p2=$(ann_pct "$l2" "${id}1" "$ph" "${last:-0}")
	pr=$(ann_pct "$raw" "${id}1" "$(re_of "$LAB_A_IP" $PORT)" "${last:-0}")
	echo "# $name: the host sent ${last:-?} announcements; behind B: $(ann_seqs "$l1" "${id}1" "$ph" | wc -l) from #$(ann_seqs "$l1" "${id}1" "$ph" | head -n 1), behind C: $(ann_seqs "$l2" "${id}1" "$ph" | wc -l) from #$(ann_seqs "$l2" "${id}1" "$ph" | head -n 1)"
	check "$name: the joined listener behind B hears >= 90% of the announcements after its first ($p1%)" \
		test "$p1" -ge 90
	check "$name: the joined listener behind C too ($p2%)" test "$p2" -ge 90
	check "$name: ... each from the placeholder only (B: $(addrs "$l1" ann), C: $(addrs "$l2" ann))" \
		test "$(count_rx "$l1" ann)" -eq "$(count_rx "$l1" ann "$ph")" -a \
		"$(count_rx "$l2" ann)" -eq "$(count_rx "$l2" ann "$ph")" -a "$(count_rx "$l1" ann)" -gt 0
	local x1 x2
	x1=$(grep -c " ${id}2 from" "$l1") x2=$(grep -c " ${id}2 from" "$l2")
	# (while the other room's announcements do reach its own listener)
	check "$name: ... and nothing of the other room's ($x1 behind B, $x2 behind C)" \
		test "$x1" -eq 0 -a "$x2" -eq 0 -a "$(grep -c " ${id}2 from" "$so")" -gt 0
	check "$name: a plain program on the host's LAN hears them raw from $LAB_A_IP:$PORT ($pr%, $(addrs "$raw" ann))" \
		test "$pr" -ge 90
	check "$name: the listener with another key hears none ($(count_rx "$sk" ann) ANNs), those with the key do" \
		test "$(count_rx "$sk" ann)" -eq 0 -a "$(done_of "$sk" received)" = 0 -a "$p1" -gt 0
	shim_lines "$sk" 3
	local own other
	own=$(grep -c " ${id}2 from" "$so") other=$(grep -c " ${id}1 from" "$so")
	check "$name: the listener of the other room hears its own room ($own of ${last2:-?}) and none of this one ($other)" \
		test "$own" -gt 0 -a "$other" -eq 0
}

# --- rate: a host announcing in a tight loop -----------------------------------------
# 50 a second: the joiner gets at most 20 a second of them after a burst (doc/SHIM.md), the
# host's LAN all of them, and the host's shim says so once.
rate_case() {
	local hl=$LAB_DIR/rate-host.log ll=$LAB_DIR/rate-b.log raw=$LAB_DIR/rate-a2.log hpid
	lab_flush
	if ! room_host a "$hl" rate1 -- -b -i 20 -T rate1; then
		not_ok "rate: the host's room opened"
		stop_all
		return
	fi
	hpid=${PIDS[0]}
	if ! plain a2 "$raw" || ! joined_listener b "$ll" rate1 --; then
		not_ok "rate: the listeners are bound"
	fi
	lab_wait_for got_ann "$ll" --timeout 20 >/dev/null
	# five seconds from the listener's first
	local t0 now
	t0=$(awk '$1 == "rx" && $2 == "ann" { print $NF; exit }' "$ll")
	lab_wait_for bash -c "(( \${EPOCHREALTIME/[.,]/} / 1000 >= ${t0:-0} + 5000 ))" --timeout 25 >/dev/null
	lab_stop_pid "$hpid" 5
	stop_all
	local sent n rate raw_n
	sent=$(done_of "$hl" sent)
	raw_n=$(ann_pct "$raw" rate1 "$(re_of "$LAB_A_IP" $PORT)" "${sent:-0}")
	# the rate once the burst (40) is spent: from the listener's 3rd second to its last
	rate=$(awk -v t0="${t0:-0}" '$1 == "rx" && $2 == "ann" { t = $NF; if (t >= t0 + 2000) { n++; if (!f) f = t; l = t } }
		END { if (n > 1 && l > f) printf "%.1f", (n - 1) * 1000 / (l - f); else print 0 }' "$ll")
	n=$(count_rx "$ll" ann)
	echo "# rate: the host sent ${sent:-?}; the listener heard $n, at $rate/s after its first 2 s"
	check "rate: the joined listener hears them at most 20 a second after the burst ($rate/s)" \
		awk -v r="$rate" 'BEGIN { exit !(r >= 15 && r <= 21) }'
	check "rate: the host's LAN hears them all (a plain program there: $raw_n% after its first)" \
		test "$raw_n" -ge 99
	check "rate: the host's shim says so, once ($(grep -c "more than 20 broadcasts a second" "$hl") lines)" \
		test "$(grep -c "more than 20 broadcasts a second" "$hl")" -eq 1
}

want doom && doom_case
want browse && browse_case
want two && two_case
want nobrd && nobrd_case
want announce && ann_case announce "" ""
want multicast && ann_case multicast "-m $GROUP" "-j $GROUP"
want rate && rate_case
summary room-discovery

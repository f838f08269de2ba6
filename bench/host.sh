#!/usr/bin/env bash
# bench/host.sh - a hosted room (N4_HOST) under load.  Not a test: prints numbers and
# ratios, never fails a build.  Lab of five sites: the host behind NAT A (inc), the
# joiners behind B (inc), C (inc-linux), D (dec) and E (cone), 4 per site.
#  1. joins: 16 joiners (tests/helpers/game_player under the shim, 4 processes per
#     site) join one game server (tests/helpers/game_host, N4_HOST) over 10 s, one
#     every 625 ms, flavours in turn, and poll it for 20 s each.  Per joiner: ms from
#     its start to its first answer, % of its 200 ms polls answered from then on.
#     In the same run, a lone joiner per flavour (a fresh host otherwise idle, NAT
#     state flushed; LONE trials, median) is the baseline each joiner's time is
#     divided by.  Targets: within 1.5x, >= 95 % answered.
#  2. data path: datagrams/s a game server (bench/host_flood.c) answers to 16 players
#     that keep 8 polls each in flight, over SECONDS: shimmed (a room, punched paths)
#     against the same program unshimmed (cone NATs, a port forward on NAT A), the
#     shimmed one both on the joins' NATs (shim) and on the same cone NATs
#     (shim-cone).  Each round runs them one after the other (ratios within a round,
#     medians over ROUNDS), then both at once (plain on PORT + 1, shim-cone on PORT,
#     16 players each, one window: the machine's other load weighs on both alike).
#     Also CPU per answered datagram, of the server process and of the players.
#     Target >= 0.95.
#  3. memory: per peer in the shim (sizeof from the build's debug info: the peer's
#     slot and its n4_path; the host's RSS with 0 and 16 peers from part 1) and per
#     held joiner in the server (sizeof of what a joiner's connection allocates;
#     RSS of a fresh `n4 -s` with 0 and 64 joiners held in two rooms whose host
#     never answers, bench/host_hold.c; default settings and --max-clients 256).
# usage: bench/host.sh [-n LONE] [-r ROUNDS] [-t SECONDS] [-p 1|2|3] [-V VARIANTS]
#   -p: only that part; -V: part 2's variants ("plain shim-cone shim")
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/lab/lib.sh"
source "$here/../tests/lab/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
GAME_HOST=$N4_BIN/tests/game_host
GAME_PLAYER=$N4_BIN/tests/game_player
FLOOD=$N4_BIN/bench/host_flood
HOLD=$N4_BIN/bench/host_hold
PH=192.0.2.77:7777 # the joiners' placeholder for the server
PORT=5000	   # the game server's port (N4_HOST)
LONE=3
ROUNDS=5
SECS=5
PART=
VARIANTS="plain shim-cone shim"
while getopts "n:r:t:p:V:" o; do
	case $o in
	n) LONE=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	t) SECS=$OPTARG ;;
	p) PART=$OPTARG ;;
	V) VARIANTS=$OPTARG ;;
	*) echo "usage: $0 [-n LONE] [-r ROUNDS] [-t SECONDS] [-p 1|2|3] [-V VARIANTS]" >&2; exit 2 ;;
	esac
done
SITES=(b c d e)
FLAVORS=(inc inc-linux dec cone) # of SITES, in order
JOINERS=16
KEEP=${KEEP:-/tmp}

lab_require_root || exit 1
for f in "$SHIM" "$GAME_HOST" "$GAME_PLAYER" "$FLOOD" "$HOLD"; do
	[[ -x $f ]] || { echo "$f missing: run make, make helpers" >&2; exit 1; }
done
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do lab_stop_pid "$p" 2; done
	lab_down
}
trap cleanup EXIT
lab_up --sites 5 --nat-a inc --nat-b "${FLAVORS[0]}" --nat-c "${FLAVORS[1]}" \
	--nat-d "${FLAVORS[2]}" --nat-e "${FLAVORS[3]}" || exit 1
start_server || exit 1

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
# median, minimum, maximum of the numbers on stdin ("-": none)
median() { sort -g | awk 'NF { v[++n] = $1 } END { if (!n) { print "-"; exit }
	if (n % 2) print v[(n + 1) / 2]; else print (v[n / 2] + v[n / 2 + 1]) / 2 }'; }
minimum() { sort -g | awk 'NF { print; n++; exit } END { if (!n) print "-" }'; }
maximum() { sort -g | awk 'NF { v = $1; n++ } END { print n ? v : "-" }'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# sum LOG NAME: NAME's value on game_player's summary line.
sum() { sed -nE "s/^summary .* $2 ([-0-9.]+).*/\1/p" "$1" | tail -n 1; }
answered() { grep -q "^first-answer" "$1"; }
status_peers() { grep -c "^peer " "$1" 2>/dev/null || true; }
status_has() { local n; n=$(status_peers "$1"); ((${n:-0} >= $2)); }
all_have() { # PATTERN LOG...: each LOG has a line matching PATTERN
	local p=$1 l
	shift
	for l in "$@"; do grep -q "$p" "$l" || return 1; done
}
keep_logs() { # TAG FILE...: copy for a post-mortem
	local tag=$1 f
	shift
	for f in "$@"; do cp "$f" "$KEEP/bench-host-$tag-$(basename "$f")" 2>/dev/null; done
	echo "   (logs kept as $KEEP/bench-host-$tag-*)"
}

# host_start NODE LOG IDENT PROGRAM...: PROGRAM under the shim hosting room IDENT on
# PORT (status file: LOG's name with .status); sets HPID; waits for the room.
host_start() {
	local node=$1 log=$2 ident=$3
	shift 3
	HPID=$(lab_bg "$node" "$log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" N4_HOST=${HOST_PORT:-$PORT} \
		N4_STATUS="${log%.log}.status" LD_PRELOAD="$SHIM" "$@")
	PIDS+=("$HPID")
	lab_wait_for grep -q "room '$ident' open" "$log" --timeout 10
}
# player NODE LOG IDENT SECONDS: a shimmed game_player polling the placeholder for
# SECONDS; sets PID.
player() {
	PID=$(lab_bg "$1" "$2" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$3" N4_PEER="$PH" \
		N4_TIMEOUT="$4" LD_PRELOAD="$SHIM" "$GAME_PLAYER" "$PH" -d "$4")
	PIDS+=("$PID")
}
set_nats() { # FLAVOUR_A FLAVOUR_B..E, then a flush
	local s i=0
	lab_set_nat a "$1" || return 1
	shift
	for s in "${SITES[@]}"; do
		lab_set_nat "$s" "${1:-${FLAVORS[i]}}" || return 1
		shift
		i=$((i + 1))
	done
	lab_flush
}

# ------------------------------------------------------------------- 1. joins ---
RSS0= RSS1= RSS16=
part1() {
	echo "== 1. joins: $JOINERS joiners ($((JOINERS / 4)) per site) over 10 s against a lone joiner per flavour ($LONE trials each, median)"
	set_nats inc "${FLAVORS[@]}" || return
	local i s f log hl trial ident
	declare -gA LONE_MS=() LONE_PCT=()
	lone_trial() { # TRIAL
		local t=$1 k
		for k in 0 1 2 3; do
			s=${SITES[k]} f=${FLAVORS[k]} ident=l$t$s
			hl=$LAB_DIR/lone-$t-$s-host.log log=$LAB_DIR/lone-$t-$s.log
			lab_flush
			if ! host_start a "$hl" "$ident" "$GAME_HOST" -p $PORT; then
				echo "lone $f trial $t: the room did not open"
				keep_logs "lone$t$s" "$hl"
				continue
			fi
			player "$s" "$log" "$ident" 10
			wait_pids 30 "$PID" || lab_stop_pid "$PID"
			lab_stop_pid "$HPID" 5
			local ms pc
			ms=$(sum "$log" first-ms) pc=$(sum "$log" after-pct)
			if [[ -z $ms || $ms == -1 ]]; then
				echo "lone $f trial $t: never answered"
				keep_logs "lone$t$s" "$hl" "$log"
				continue
			fi
			LONE_MS[$f]+="$ms " LONE_PCT[$f]+="$pc "
			printf 'lone %-9s trial %d: first answer after %5s ms, %5s%% answered after it\n' \
				"$f" "$t" "$ms" "$pc"
		done
	}
	# half the baseline before the crowd, half after: the machine's load drifts
	local before=$(((LONE + 1) / 2))
	for ((trial = 1; trial <= before; trial++)); do lone_trial "$trial"; done

	hl=$LAB_DIR/crowd-host.log
	local st=$LAB_DIR/crowd-host.status logs=() sites=() t0 target now
	lab_flush
	if ! host_start a "$hl" crowd "$GAME_HOST" -p $PORT; then
		echo "crowd: the room did not open"
		keep_logs crowd "$hl"
		return
	fi
	RSS0=$(rss_kb "$HPID")
	t0=$(now_ms)
	local ppids=()
	for ((i = 0; i < JOINERS; i++)); do
		target=$((t0 + i * 625)) now=$(now_ms)
		((target > now)) && sleep "$(printf '0.%03d' $((target - now)))"
		# the host's RSS with its first peer (its join's one-time costs paid)
		((i == 1)) && (($(grep -c "host: peer .* joined" "$hl") == 1)) && RSS1=$(rss_kb "$HPID")
		s=${SITES[i % 4]}
		log=$LAB_DIR/crowd-$i-$s.log
		player "$s" "$log" crowd 20
		ppids+=("$PID") logs+=("$log") sites+=("$s")
	done
	local t_started=$(($(now_ms) - t0))
	lab_wait_for status_has "$st" $JOINERS --timeout 25 >/dev/null
	RSS16=$(rss_kb "$HPID")
	local npeers
	npeers=$(status_peers "$st")
	wait_pids 60 "${ppids[@]}" || for i in "${ppids[@]}"; do lab_stop_pid "$i"; done
	lab_stop_pid "$HPID" 5
	echo "crowd: $JOINERS started over $t_started ms; the host's status listed $npeers peers ($(grep -c ' direct ' "$st" 2>/dev/null) direct)"

	for ((trial = before + 1; trial <= LONE; trial++)); do lone_trial "$trial"; done

	# per flavour: the lone median, each crowd joiner's ratio to it
	local ratios=() pcts=() failed=0 k
	declare -A BASE=()
	echo
	printf '| %-15s | %-22s | %-7s | %-25s | %-22s | %-24s |\n' "flavour (site)" \
		"lone first ms (trials)" "lone %" "crowd first ms (4 each)" "ratio to lone median" \
		"crowd % after 1st answer"
	printf '|-%s-|-%s-|-%s-|-%s-|-%s-|-%s-|\n' "$(printf '%.0s-' {1..15})" \
		"$(printf '%.0s-' {1..22})" "$(printf '%.0s-' {1..7})" "$(printf '%.0s-' {1..25})" \
		"$(printf '%.0s-' {1..22})" "$(printf '%.0s-' {1..24})"
	for ((k = 0; k < 4; k++)); do
		f=${FLAVORS[k]} s=${SITES[k]}
		local base cms="" crs="" cps="" lp
		base=$(printf '%s\n' ${LONE_MS[$f]:-} | median)
		lp=$(printf '%s\n' ${LONE_PCT[$f]:-} | minimum)
		BASE[$f]=$base
		for ((i = 0; i < JOINERS; i++)); do
			[[ ${sites[i]} == "$s" ]] || continue
			local ms pc r
			ms=$(sum "${logs[i]}" first-ms) pc=$(sum "${logs[i]}" after-pct)
			if [[ -z $ms || $ms == -1 ]]; then
				failed=$((failed + 1))
				cms+="never " crs+="- " cps+="- "
				keep_logs "crowd$i" "${logs[i]}"
				continue
			fi
			cms+="$ms " cps+="$pc "
			pcts+=("$pc")
			if [[ $base != - ]]; then
				r=$(awk -v a="$ms" -v b="$base" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
				ratios+=("$r") crs+="$r "
			fi
		done
		printf '| %-15s | %-22s | %-7s | %-25s | %-22s | %-24s |\n' "$f ($s)" \
			"$base (${LONE_MS[$f]% })" "${lp:--}" "${cms% }" "${crs% }" "${cps% }"
	done
	echo
	if ((${#ratios[@]})); then
		printf 'joins: %d of %d answered; first answer / lone median: median %s, max %s (target <= 1.5); %% answered after the first answer: min %s (target >= 95)\n' \
			"$((JOINERS - failed))" "$JOINERS" "$(printf '%s\n' "${ratios[@]}" | median)" \
			"$(printf '%s\n' "${ratios[@]}" | maximum)" "$(printf '%s\n' "${pcts[@]}" | minimum)"
	fi
	if ((failed)) || awk -v m="$(printf '%s\n' "${pcts[@]}" | minimum)" 'BEGIN { exit !(m + 0 < 95) }'; then
		keep_logs crowd "$hl" "$st"
		grep -E "host: |WARN|ERROR" "$hl" | head -n 40 | sed 's/^/   host: /'
	fi
	echo "host RSS: $RSS0 kB with the room open and no peer, ${RSS1:-?} kB with 1, ${RSS16:-?} kB with $npeers peers"
}

# --------------------------------------------------------------- 2. data path ---
WINDOW=8
# host_rate LOG GO: answered/s and CPU us per answered datagram between GO + 500 ms
# and GO + SECS * 1000 - 250 ms, from the server's count lines
host_rate() {
	awk -v w0=$(($2 + 500)) -v w1=$(($2 + SECS * 1000 - 250)) '
		$1 == "count" && $2 >= w0 && !t0 { t0 = $2; a0 = $4; c0 = $10 }
		$1 == "count" && $2 <= w1 { t1 = $2; a1 = $4; c1 = $10 }
		END { if (!t0 || t1 <= t0 || a1 <= a0) { print "- -"; exit }
			printf "%d %.2f\n", (a1 - a0) * 1000 / (t1 - t0), (c1 - c0) / (a1 - a0) }' "$1"
}
fwd_on() { # PORT: NAT A forwards it to a (a game server's port forward)
	lab_exec nata nft -f - <<EOF
table ip n4bench_fwd {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan0" udp dport $1 dnat to $LAB_A_IP:$1
	}
}
EOF
}
fwd_off() { lab_exec nata nft delete table ip n4bench_fwd 2>/dev/null; }

# flood_host KIND LOG IDENT HPORT: the game server on HPORT in a, plain or under the
# shim hosting IDENT; sets HPID.
flood_host() {
	if [[ $1 == plain ]]; then
		HPID=$(lab_bg a "$2" "$FLOOD" -l "$4")
		PIDS+=("$HPID")
		lab_wait_for grep -q "^bound" "$2" --timeout 5 >/dev/null
	else
		HOST_PORT=$4 host_start a "$2" "$3" "$FLOOD" -l "$4"
	fi
}
# flood_players KIND TAG IDENT DST GO: JOINERS players, SITES in turn, plain (to DST)
# or shimmed (to the placeholder); their logs and pids are added to FL_LOGS, FL_PIDS.
flood_players() {
	local kind=$1 tag=$2 ident=$3 dst=$4 go=$5 i s log
	for ((i = 0; i < JOINERS; i++)); do
		s=${SITES[i % 4]} log=$LAB_DIR/flood-$tag-$i.log
		if [[ $kind == plain ]]; then
			PID=$(lab_bg "$s" "$log" "$FLOOD" -c "$dst" -g "$go" -t "$SECS" -w $WINDOW)
		else
			PID=$(lab_bg "$s" "$log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" \
				N4_PEER="$PH" N4_TIMEOUT=30 LD_PRELOAD="$SHIM" \
				"$FLOOD" -c "$PH" -g "$go" -t "$SECS" -w $WINDOW)
		fi
		PIDS+=("$PID") FL_PIDS+=("$PID") FL_LOGS+=("$log")
		sleep 0.1 # (a crowd arriving, not an event to wait for)
	done
}
# flood_result HOSTLOG GO_MS PLAYERLOG...: sets RATE, CPU (the server's) and PCPU
# (the players', per answer) and LINE (a summary).
flood_result() {
	local hl=$1 go_ms=$2 sent ans lost paths=""
	shift 2
	read -r RATE CPU < <(host_rate "$hl" "$go_ms")
	read -r sent ans lost PCPU < <(awk '$1 == "flood" { s += $3; a += $5; l += $7; c += $11 }
		END { printf "%d %d %d %.2f\n", s, a, l, a ? c / a : 0 }' "$@")
	# shimmed: the paths, and how long the joins took (100 ms apart: they queue)
	[[ -e ${hl%.log}.status ]] &&
		paths=", $(grep -c ' direct ' "${hl%.log}.status") direct, $(grep -c ' relayed ' "${hl%.log}.status") relayed; joined after median $(sed -nE 's/^joined [0-9]+ took ([0-9]+)/\1/p' "$@" | median) ms, max $(sed -nE 's/^joined [0-9]+ took ([0-9]+)/\1/p' "$@" | maximum)"
	LINE=$(printf 'server answered %6s/s, %5s us CPU per answered datagram; players: sent %d answered %d lost %d, %s us CPU per answer%s' \
		"$RATE" "$CPU" "$sent" "$ans" "$lost" "$PCPU" "$paths")
}
# flood_go GO HOSTLOG...: wait until every player joined (and each shimmed server
# lists its peers), start the flood, wait for the players' end, stop the players and
# FL_HOSTS.  Sets GO_MS.
flood_go() {
	local go=$1 hl i ok=0
	shift
	if lab_wait_for all_have "^joined" "${FL_LOGS[@]}" --timeout 60 >/dev/null; then
		ok=1
		for hl in "$@"; do
			[[ -e ${hl%.log}.status ]] &&
				lab_wait_for status_has "${hl%.log}.status" $JOINERS --timeout 5 >/dev/null
		done
		GO_MS=$(now_ms)
		: >"$go"
		wait_pids $((SECS + 15)) "${FL_PIDS[@]}"
	else
		echo "   $(grep -l '^joined' "${FL_LOGS[@]}" | wc -l) of ${#FL_LOGS[@]} players joined in 60 s"
	fi
	for i in "${FL_PIDS[@]}"; do lab_stop_pid "$i" 2; done
	for i in "${FL_HOSTS[@]}"; do lab_stop_pid "$i" 5; done
	((ok))
}

# flood_round VARIANT ROUND: one server alone: plain (cone NATs, a port forward, no
# shim), shim-cone (the same NATs, a room, no forward) or shim (the joins' NATs);
# prints a line, sets RATE, CPU and PCPU.
flood_round() {
	local v=$1 r=$2 hl=$LAB_DIR/flood-$1-$2-host.log go=$LAB_DIR/go-$1-$2
	local ident=f$r${v:0:1}${v: -1}
	RATE=- CPU=- PCPU=- FL_LOGS=() FL_PIDS=() FL_HOSTS=()
	rm -f "$go"
	case $v in
	plain) set_nats cone cone cone cone cone && fwd_on $PORT ;;
	shim-cone) fwd_off; set_nats cone cone cone cone cone ;;
	shim) fwd_off; set_nats inc "${FLAVORS[@]}" ;;
	esac
	if ! flood_host "${v%%-*}" "$hl" "$ident" $PORT; then
		echo "round $r $v: the server did not start"
		keep_logs "flood-$v-$r" "$hl"
		return 1
	fi
	FL_HOSTS=("$HPID")
	flood_players "${v%%-*}" "$v-$r" "$ident" "$LAB_NATA_IP:$PORT" "$go"
	if ! flood_go "$go" "$hl"; then
		echo "round $r $v: no flood"
		keep_logs "flood-$v-$r" "$hl" "${FL_LOGS[@]}"
		return 1
	fi
	flood_result "$hl" "$GO_MS" "${FL_LOGS[@]}"
	printf 'round %d %-9s: %s\n' "$r" "$v" "$LINE"
	[[ $RATE == - ]] && keep_logs "flood-$v-$r" "$hl"
	return 0
}

# flood_together ROUND: both servers at once on the cone NATs, the plain one on
# PORT + 1 (forwarded), the shimmed one on PORT (a room), 16 players each, one flood
# window: whatever else runs on the machine weighs on both alike.  Sets T_RATIO,
# T_CPU, T_PCPU (shimmed / plain: answered/s, CPU per datagram of the servers and
# of the players).
flood_together() {
	local r=$1 hp=$LAB_DIR/both-$1-plain.log hs=$LAB_DIR/both-$1-shim.log go=$LAB_DIR/go-both-$1
	local ident=f${r}bo pl sl prate pcpu ppc
	T_RATIO=- T_CPU=- T_PCPU=- FL_LOGS=() FL_PIDS=() FL_HOSTS=()
	rm -f "$go"
	set_nats cone cone cone cone cone && fwd_on $((PORT + 1))
	if ! flood_host plain "$hp" - $((PORT + 1)); then
		echo "together $r: the plain server did not start"
		fwd_off
		return 1
	fi
	FL_HOSTS+=("$HPID")
	if ! flood_host shim "$hs" "$ident" $PORT; then
		echo "together $r: the room did not open"
		keep_logs "both-$r" "$hs"
		lab_stop_pid "${FL_HOSTS[0]}"
		fwd_off
		return 1
	fi
	FL_HOSTS+=("$HPID")
	flood_players plain "both-$r-plain" - "$LAB_NATA_IP:$((PORT + 1))" "$go"
	pl=("${FL_LOGS[@]}")
	flood_players shim "both-$r-shim" "$ident" - "$go"
	sl=("${FL_LOGS[@]:JOINERS}")
	if ! flood_go "$go" "$hp" "$hs"; then
		echo "together $r: no flood"
		keep_logs "both-$r" "$hp" "$hs" "${FL_LOGS[@]}"
		fwd_off
		return 1
	fi
	fwd_off
	flood_result "$hp" "$GO_MS" "${pl[@]}"
	printf 'together %d plain    : %s\n' "$r" "$LINE"
	prate=$RATE pcpu=$CPU ppc=$PCPU
	flood_result "$hs" "$GO_MS" "${sl[@]}"
	printf 'together %d shim-cone: %s\n' "$r" "$LINE"
	if [[ $prate != - && $RATE != - ]]; then
		T_RATIO=$(ratio_of "$RATE" "$prate") T_CPU=$(ratio_of "$CPU" "$pcpu")
		T_PCPU=$(ratio_of "$PCPU" "$ppc")
		echo "together $r: shimmed/plain answered/s $T_RATIO, server CPU per datagram $T_CPU, players' $T_PCPU"
	fi
}

ratio_of() { # A B: A / B to 3 places, nothing when either is missing
	awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && a != "-" && b != "-" && b + 0 != 0)
		printf "%.3f\n", a / b }'
}
range_of() { printf '%s\n' "$@" | sort -g | awk 'NF { v[++n] = $1 } END { if (n) printf "%s-%s", v[1], v[n]; else printf "-" }'; }

part2() {
	echo
	echo "== 2. data path: $JOINERS players, $WINDOW polls each in flight, $ROUNDS rounds of $SECS s"
	local r v variants order n
	read -ra variants <<<"$VARIANTS"
	n=${#variants[@]}
	declare -A rate=() cpu=() pcpu=()
	echo "-- one server at a time, variants in turn: ${variants[*]}"
	for ((r = 1; r <= ROUNDS; r++)); do
		# rotate the order: the machine's load drifts
		order=("${variants[@]:r % n}" "${variants[@]:0:r % n}")
		for v in "${order[@]}"; do
			flood_round "$v" "$r" || continue
			[[ $RATE == - ]] && continue
			rate[$v,$r]=$RATE cpu[$v,$r]=$CPU pcpu[$v,$r]=$PCPU
		done
	done
	fwd_off
	local tr=() tc=() tp=()
	echo "-- both at once (plain on port $((PORT + 1)), shim-cone on $PORT), cone NATs"
	for ((r = 1; r <= ROUNDS; r++)); do
		flood_together "$r" || continue
		[[ $T_RATIO == - || -z $T_RATIO ]] && continue
		tr+=("$T_RATIO") tc+=("$T_CPU") tp+=("$T_PCPU")
	done
	echo
	for v in "${variants[@]}"; do
		local rs=() rr=() cr=() pr=() x
		for ((r = 1; r <= ROUNDS; r++)); do
			[[ -n ${rate[$v,$r]:-} ]] || continue
			rs+=("${rate[$v,$r]}")
			[[ $v == plain ]] && continue
			x=$(ratio_of "${rate[$v,$r]}" "${rate[plain,$r]:-}")
			[[ -n $x ]] && rr+=("$x")
			x=$(ratio_of "${cpu[$v,$r]}" "${cpu[plain,$r]:-}")
			[[ -n $x ]] && cr+=("$x")
			x=$(ratio_of "${pcpu[$v,$r]}" "${pcpu[plain,$r]:-}")
			[[ -n $x ]] && pr+=("$x")
		done
		printf '%-9s alone: answered/s median %s (%s)' "$v" \
			"$(printf '%s\n' "${rs[@]}" | median)" "$(range_of "${rs[@]}")"
		((${#rr[@]})) &&
			printf '; / plain of the same round: answered/s median %s (%s), server CPU per datagram %s (%s), players %s' \
				"$(printf '%s\n' "${rr[@]}" | median)" "$(range_of "${rr[@]}")" \
				"$(printf '%s\n' "${cr[@]}" | median)" "$(range_of "${cr[@]}")" \
				"$(printf '%s\n' "${pr[@]}" | median)"
		echo
	done
	if ((${#tr[@]})); then
		printf 'shim-cone and plain at once: shimmed/plain answered/s median %s (%s, %d rounds; target >= 0.95), server CPU per datagram %s (%s), players %s\n' \
			"$(printf '%s\n' "${tr[@]}" | median)" "$(range_of "${tr[@]}")" "${#tr[@]}" \
			"$(printf '%s\n' "${tc[@]}" | median)" "$(range_of "${tc[@]}")" \
			"$(printf '%s\n' "${tp[@]}" | median)"
	fi
}

# ------------------------------------------------------------------ 3. memory ---
part3() {
	echo
	echo "== 3. memory"
	local sp np nh
	if command -v gdb >/dev/null; then
		read -r sp np < <(gdb -batch -ex 'p sizeof(struct shim_peer)' \
			-ex 'p sizeof(struct n4_path)' "$SHIM" 2>/dev/null | awk '{ printf "%s ", $3 }')
		local conn disc lan
		read -r conn disc lan < <(gdb -batch -ex 'p sizeof(struct conn)' \
			-ex 'p sizeof(struct n4_srv_disc)' -ex 'p sizeof(struct n4_srv_lan)' "$N4" \
			2>/dev/null | awk '{ printf "%s ", $3 }')
		# glibc malloc: 8 bytes of header, chunks in steps of 16, 32 at least
		chunk() { echo $((($1 + 8 + 15) / 16 * 16 < 32 ? 32 : ($1 + 8 + 15) / 16 * 16)); }
		echo "shim, sizeof (debug info of $(basename "$SHIM")): struct shim_peer $sp bytes (a slot of the host's table, N4_MAX_PEERS of them allocated when the room opens), struct n4_path $np bytes (calloc per joined peer, a $(chunk "$np")-byte chunk): $((sp + $(chunk "$np"))) bytes per peer"
		echo "server, sizeof (debug info of n4): struct conn $conn, struct n4_srv_disc $disc, struct n4_srv_lan $lan bytes (calloc each: chunks of $(chunk "$conn") + $(chunk "$disc") + $(chunk "$lan") = $(($(chunk "$conn") + $(chunk "$disc") + $(chunk "$lan"))) bytes per joiner; its room part and pairing entry are inside struct conn)"
	else
		echo "(no gdb: sizeof figures skipped)"
	fi
	if [[ -n $RSS0 && -n $RSS16 ]]; then
		echo -n "shim, RSS: the hosting game_host $RSS0 kB with no peer, ${RSS1:-?} kB with 1, $RSS16 kB with $JOINERS (part 1): $(((RSS16 - RSS0) * 1024 / JOINERS)) bytes per peer from 0"
		[[ -n $RSS1 ]] && echo -n ", $(((RSS16 - RSS1) * 1024 / (JOINERS - 1))) from 1 to $JOINERS"
		echo
	fi

	set_nats inc "${FLAVORS[@]}"
	# The server's hash tables are sized at start for --max-clients (calloc: pages
	# count once touched), so a few dozen joiners also touch table pages; with
	# --max-clients 256 the tables are a page or two and the growth is the joiners'.
	hold_rss "default settings"
	hold_rss "--max-clients 256" --max-clients 256
}

# hold_rss WHAT [SERVER ARGS...]: a fresh server, two rooms that never answer, 64
# joiners held (32 per room: N4_ROOM_HELD_MAX); its RSS before and after.
hold_rss() {
	local what=$1 hh hpid r0 r64 i node jl jpids=() nj
	shift
	stop_server
	start_server "$@" || return
	hh=$LAB_DIR/hold-$SRV_N.log
	hpid=$(lab_bg a2 "$hh" "$HOLD" -h "$LAB_SRV_IP" hold1 hold2)
	PIDS+=("$hpid")
	if ! lab_wait_for grep -q "hosted hold2" "$hh" --timeout 10; then
		echo "server, RSS: host_hold could not host:"; sed 's/^/   /' "$hh"
		return
	fi
	r0=$(rss_kb "$SRV_PID")
	local nodes=(b2 c d e)
	for ((i = 0; i < 64; i++)); do
		node=${nodes[i % 4]} jl=$LAB_DIR/hold-$SRV_N-j$i.log
		jpids+=("$(client "$node" "$jl" -a "hold$((i % 2 + 1))" -t 20)")
		PIDS+=("${jpids[-1]}")
		sleep 0.03 # (under the rooms' 40 joins burst and the server's per-source rate)
	done
	lab_wait_for grep -q "^joins 64$" "$hh" --timeout 15 >/dev/null
	r64=$(rss_kb "$SRV_PID")
	nj=$(grep -c "^joins" "$hh")
	echo "server, RSS ($what): a fresh n4 -s with two rooms $r0 kB, with $nj joiners held (announced to the host, unanswered) $r64 kB: $(((r64 - r0) * 1024 / (nj ? nj : 1))) bytes per held joiner"
	for i in "${jpids[@]}"; do lab_stop_pid "$i" 2; done
	lab_stop_pid "$hpid"
}

[[ -z $PART || $PART == 1 ]] && part1
[[ -z $PART || $PART == 2 ]] && part2
[[ -z $PART || $PART == 3 ]] && part3
exit 0

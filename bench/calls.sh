#!/usr/bin/env bash
# bench/calls.sh - flows to one peer (issue 20, calls): how long a second flow's path
# takes against the first's, as a SIP call adds RTP and RTCP after its signalling.
# Not a test: prints tables and ratios, never fails a build.
#
# One pair of programs per repetition (bench/flow_bench.c under the shim): A behind
# NAT A dials the placeholder (socket 0, the first path), B behind NAT B listens on it
# (N4_LISTEN).  Then, one after the other over the same pair of processes, phases of
# flows opened at once: 1, 2 and 4 mirrored flows (both programs send first, from bound
# ports to each other's ports: A to the placeholder's IP, B to A's LAN address, the one
# A's SDP would carry, given on B's command line) and 1, 2 and 4 listen-only flows
# (B's sockets, bound from the start, only echo: the shim tells B's shim through the
# server).  A starts a phase with "GO" on socket 0 (B answers it, as a 200 answers an
# INVITE) and its flows at once; B's mirrored flows start when the GO arrives.  Flows
# send every 20 ms (an RTP packet's pace) until answered.
# Per flow: ms from its first send to its first answer (the program's figure), and
# the shim's own "flow ... punched ... in N ms" line; the first path's figure is the
# same span for socket 0 (the blocking first sendto included).  Medians over REPS
# repetitions; ratio = a flow's time / its repetition's first path.  Cells: NAT A /
# NAT B / one-way delay at the WAN router (ms, every WAN crossing).  random/random is
# relayed (first path and flows alike).  The plain cell is the same programs without
# the shim on one LAN (a and a2): what the program sees when nothing is in the way.
#
#
# Part 2, calls: two unmodified baresip user agents (tests/lab/sip_lib.sh: ausine tone,
# PCMU, sndfile dumps, a capture per UA) under the shim, a behind NAT A dialling b
# behind NAT B at the placeholder (b: N4_LISTEN=5060), as tests/lab/test_sip_nat.sh
# does; CALLS calls of CALL_S seconds per cell, new user agents per cell.  Per call and
# side: ms from the answer (the first SIP 200 in the UA's capture) to the first RTP
# datagram it received; audio lost after the first 500 ms, from the capture: the RTP
# datagrams (20 ms each) missing between the answer + 500 ms and the BYE; and, as a
# cross-check, the seconds of the peer's tone the peer sent (its tx dump) less those
# this side received (its rx dump, tests/helpers/wav_tone.c), the first 500 ms
# included.  The plain cell: the same user agents without the shim on one LAN (a, a2).
#
# usage: bench/calls.sh [-n REPS] [-c CALLS] [-t CALL_S] [-p 1|2] [-o FILE] [CELL...]
#   CELL: A/B/DELAY (default: inc/inc/0 inc/inc/20 inc-linux/inc-linux/0
#   inc-linux/inc-linux/20 random/random/0 random/random/20) or plain
#   -p: only that part; -o FILE: append the tables to FILE as well
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/lab/lib.sh"
source "$here/../tests/lab/punch_lib.sh"
SIP_SETUP_S=${SIP_SETUP_S:-35} # the INVITE waits in sendto for the first path
source "$here/../tests/lab/sip_lib.sh"
SHIM=$N4_BIN/libn4shim.so
FB=$N4_BIN/bench/flow_bench
PH_IP=192.0.2.77 # A's placeholder for B
PORT=5060	 # socket 0 (B's N4_LISTEN), SIP's port
PHASES=m1,m2,m4,l1,l2,l4
REPS=10
CALLS=3
CALL_S=8 # as test_sip_nat.sh: more than libre's 5 s RTCP interval
PART=
OUT=
KEEP=${KEEP:-/tmp}
while getopts "n:c:t:p:o:" o; do
	case $o in
	n) REPS=$OPTARG ;;
	c) CALLS=$OPTARG ;;
	t) CALL_S=$OPTARG ;;
	p) PART=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) echo "usage: $0 [-n REPS] [-c CALLS] [-t CALL_S] [-p 1|2] [-o FILE] [CELL...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
cells=("$@")
((${#cells[@]})) || cells=(plain inc/inc/0 inc/inc/20 inc-linux/inc-linux/0 \
	inc-linux/inc-linux/20 random/random/0 random/random/20)
sip_cells=("${cells[@]}")

lab_require_root || exit 1
for f in "$SHIM" "$FB"; do
	[[ -x $f || -f $f ]] || { echo "$f missing: run make" >&2; exit 1; }
done
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do lab_stop_pid "$p" 2; done
	lab_down
}
trap cleanup EXIT
T_START=$SECONDS
lab_up --nat-a inc --nat-b inc >/dev/null || exit 1
start_server || exit 1

# median and maximum of the numbers on stdin ("-": none)
median() { sort -g | awk 'NF { v[++n] = $1 } END { if (!n) { print "-"; exit }
	if (n % 2) print v[(n + 1) / 2]; else print (v[n / 2] + v[n / 2 + 1]) / 2 }'; }
maximum() { sort -g | awk 'NF { v = $1; n++ } END { print n ? v : "-" }'; }
keep_logs() { # TAG FILE...: copy for a post-mortem
	local tag=$1 f
	shift
	for f in "$@"; do cp "$f" "$KEEP/bench-calls-$tag-$(basename "$f")" 2>/dev/null; done
	echo "   (logs kept as $KEEP/bench-calls-$tag-*)"
}

# rep CELLNO CELL REP: one pair of programs; appends its figures to DATA as lines
#   first REP PROG_MS SHIM_MS
#   flow REP PHASE FLOW SIDE PROG_MS|never SHIM_MS|-
rep() {
	local c=$1 cell=$2 r=$3 ident la lb apid bpid
	ident=$(printf 'c%d%02d' "$c" "$r")
	la=$LAB_DIR/calls-$c-$r-a.log lb=$LAB_DIR/calls-$c-$r-b.log
	rm -f "$la" "$lb"
	# A fresh server and NAT state: each repetition on its own (relayed pairs outlive
	# their programs for --relay-idle, and count against --relay-per-ip)
	stop_server
	start_server || return
	lab_flush
	if [[ $cell == plain ]]; then
		bpid=$(lab_bg a2 "$lb" "$FB" -B $PORT -P "$LAB_A_IP" -m $PHASES)
	else
		bpid=$(lab_bg b "$lb" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" N4_LISTEN=$PORT \
			LD_PRELOAD="$SHIM" "$FB" -B $PORT -P "$LAB_A_IP" -m $PHASES)
	fi
	PIDS+=("$bpid")
	if ! lab_wait_for grep -q "^bound" "$lb" --timeout 5 >/dev/null; then
		echo "$cell rep $r: B did not start"
		keep_logs "$c-$r" "$lb"
		lab_stop_pid "$bpid"
		return
	fi
	if [[ $cell == plain ]]; then
		apid=$(lab_bg a "$la" "$FB" -A "$LAB_A2_IP:$PORT" -P "$LAB_A2_IP" -m $PHASES)
	else
		apid=$(lab_bg a "$la" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" \
			N4_PEER="$PH_IP:$PORT" LD_PRELOAD="$SHIM" "$FB" -A "$PH_IP:$PORT" -P "$PH_IP" \
			-m $PHASES)
	fi
	PIDS+=("$apid")
	wait_pids 120 "$apid" || lab_stop_pid "$apid"
	wait_pids 3 "$bpid" || lab_stop_pid "$bpid"
	# the program's lines, then the shim's punched lines by the flow's port
	awk -v r="$r" '
		$1 == "first-path" { print "first", r, ($2 == "never" ? "never" : $3), fs }
		/\] fd [0-9]+ punched: / && !fs { match($0, /in [0-9]+ ms/); fs = substr($0, RSTART + 3, RLENGTH - 6) }' "$la" >>"$DATA"
	local s log base
	for s in A B; do
		[[ $s == A ]] && log=$la base=12000 || log=$lb base=14000
		awk -v r="$r" -v side=$s -v base=$base '
			/\] fd [0-9]+: flow [0-9]+ -> .* punched: / {
				for (i = 1; i <= NF; i++) if ($i == "flow") { p = $(i + 1); break }
				match($0, /in [0-9]+ ms/); shim[p] = substr($0, RSTART + 3, RLENGTH - 6) }
			$1 == "flow" && NF >= 4 && $2 ~ /^[0-9]+$/ {
				k = $2; f = $3; t = ($4 == "ms") ? $5 : "never"
				row[++n] = k " " f " " t }
			END { for (j = 1; j <= n; j++) { split(row[j], x, " ")
				p = base + 10 * x[1] + x[2]
				print "flow", r, x[1], x[2], side, x[3], (p in shim) ? shim[p] : "-" } }' "$log" >>"$DATA"
	done
	# anything the shim found worth a warning: kept, and counted
	local odd
	odd=$(grep -hE "recovered|no answer in|EHOSTUNREACH|ERROR|failed" "$la" "$lb" | grep -vc 'no key')
	local slow
	slow=$(awk -v r="$r" '$1 == "flow" && $2 == r && $6 != "never" && $6 > 2000' "$DATA" | wc -l)
	if ((odd || slow)) || grep -q "never" "$la" "$lb"; then
		ODD+=("$cell rep $r: $odd warning lines, $slow flow sides over 2 s")
		keep_logs "$c-$r" "$la" "$lb" "$SRV_LOG"
		grep -hE "recovered|no answer in|EHOSTUNREACH|ERROR|failed|never" "$la" "$lb" |
			grep -v 'no key' | head -n 6 | sed 's/^/   /'
	fi
}

phase_name() { # K
	local p=${PHASES//,/ } a
	read -ra a <<<"$p"
	case ${a[$1]:0:1} in m) printf '%s mirrored' "${a[$1]:1}" ;; l) printf '%s listen-only' "${a[$1]:1}" ;; esac
}

TABLE=()
emit() { TABLE+=("$1"); echo "$1"; }
ROW='| %-30s | %-14s | %8s | %8s | %7s | %5s | %8s | %9s | %5s | %8s |'
row() { emit "$(printf "$ROW" "$@")"; }
SROW='| %-30s | %5s | %10s | %10s | %10s | %10s | %9s | %9s | %9s | %9s |'

# report CELL: the table rows of one cell from DATA
report() {
	local cell=$1 fp fps k nph np fl
	fp=$(awk '$1 == "first" && $3 != "never" { print $3 }' "$DATA" | median)
	fps=$(awk '$1 == "first" && $4 != "" { print $4 }' "$DATA" | median)
	np=$(awk '$1 == "first" && $3 != "never"' "$DATA" | wc -l)
	row "$cell" "first path" "$np/$(awk '$1 == "first"' "$DATA" | wc -l)" "$fp" "${fps:--}" 1 \
		- - - -
	nph=$(tr ',' '\n' <<<"$PHASES" | wc -l)
	for ((k = 0; k < nph; k++)); do
		local a_ms a_max a_shim ratio allup b_ms n nn slow
		# A's flows of phase k: answered / all, program ms, shim ms, ratio to the
		# repetition's first path, the last flow of the phase per repetition
		read -r n nn < <(awk -v k=$k '$1 == "flow" && $3 == k && $5 == "A" { t++; if ($6 != "never") a++ }
			END { print a + 0, t + 0 }' "$DATA")
		a_ms=$(awk -v k=$k '$1 == "flow" && $3 == k && $5 == "A" && $6 != "never" { print $6 }' "$DATA" | median)
		a_max=$(awk -v k=$k '$1 == "flow" && $3 == k && $5 == "A" && $6 != "never" { print $6 }' "$DATA" | maximum)
		a_shim=$(awk -v k=$k '$1 == "flow" && $3 == k && $5 == "A" && $7 != "-" { print $7 }' "$DATA" | median)
		ratio=$(awk -v k=$k '$1 == "first" && $3 != "never" { f[$2] = $3 }
			$1 == "flow" && $3 == k && $5 == "A" && $6 != "never" && ($2 in f) && f[$2] > 0 {
				printf "%.2f\n", $6 / f[$2] }' "$DATA" | median)
		allup=$(awk -v k=$k '$1 == "flow" && $3 == k && $5 == "A" { if ($6 == "never") bad[$2] = 1
				else if ($6 > m[$2]) m[$2] = $6 }
			END { for (r in m) if (!bad[r]) print m[r] }' "$DATA" | median)
		b_ms=$(awk -v k=$k '$1 == "flow" && $3 == k && $5 == "B" && $6 != "never" { print $6 }' "$DATA" | median)
		slow=$(awk -v k=$k '$1 == "flow" && $3 == k && $5 == "A" && $6 != "never" && $6 > 2000' "$DATA" | wc -l)
		row "" "$(phase_name $k)" "$n/$nn" "$a_ms" "$a_shim" "$ratio" "$a_max" "$allup" "$slow" "$b_ms"
	done
}

part1() {
	ODD=()
	echo "== calls: flows to one peer; $REPS repetitions per cell, phases $PHASES"
	row "cell (A/B/delay ms)" "flows at once" answered "A med ms" "shim ms" ratio "A max ms" \
		"all up ms" "> 2 s" "B med ms"
	emit "|$(printf -- '-%.0s' {1..32})|$(printf -- '-%.0s' {1..16})|----------|----------|---------|-------|----------|-----------|-------|----------|"
	c=0
	for cell in "${cells[@]}"; do
		c=$((c + 1))
		DATA=$LAB_DIR/calls-$c.data
		: >"$DATA"
		if [[ $cell != plain ]]; then
			IFS=/ read -r na nb d <<<"$cell"
			lab_set_nat a "$na" >/dev/null && lab_set_nat b "$nb" >/dev/null && lab_set_delay "${d:-0}" >/dev/null || {
				echo "$cell: cannot set up the lab"
				continue
			}
		fi
		t0=$SECONDS
		for ((r = 1; r <= REPS; r++)); do rep "$c" "$cell" "$r"; done
		report "$cell ($((SECONDS - t0)) s)"
		cp "$DATA" "$KEEP/bench-calls-$c.data" 2>/dev/null
	done
	lab_set_delay 0 >/dev/null
	echo
	echo "columns: answered = flows answered / opened (first path: repetitions); A med ms = median"
	echo "over the flows of A (all repetitions) from a flow's first send to its first answer;"
	echo "shim ms = median of A's shim's own 'punched ... in N ms'; ratio = median of each flow's"
	echo "time / its repetition's first path; A max ms = the slowest flow; all up ms = median over"
	echo "repetitions of the phase's slowest flow; > 2 s = A's flows that took longer (a lost"
	echo "punching round); B med ms = B's mirrored flows, from the GO's arrival at B to their"
	echo "first answer."
	if ((${#ODD[@]})); then
		echo "repetitions with warnings or unanswered flows:"
		printf '  %s\n' "${ODD[@]}"
	fi
}

# ------------------------------------------------------ 2. calls (baresip) ---
SIP_PCAP_BYE='udp[8:4] = 0x42594520' # "BYE ", sent or received

# pcap_first_us PCAP FILTER: the first matching datagram's time, us since the epoch
pcap_first_us() {
	tcpdump -r "$1" -n -tt -c 1 "$2" 2>/dev/null |
		awk 'NR == 1 { split($1, t, "."); printf "%d%06d", t[1], t[2] }'
}

# rtp_lost_s DIR: seconds of RTP (a datagram per 20 ms of PCMU) missing at the UA in
# its last call between its answer + 500 ms and the BYE; "-" without either.
rtp_lost_s() {
	local cd ip t0 t1 n
	cd=$(sip_call_dir "$1") && ip=$(_sip_get "$1" ip) || return 1
	t0=$(pcap_first_us "$cd/in.pcap" "$SIP_PCAP_200")
	t1=$(pcap_first_us "$cd/in.pcap" "$SIP_PCAP_BYE")
	if [[ -z $t0 || -z $t1 ]] || ((t1 - t0 <= 500000)); then
		printf -- '-'
		return 0
	fi
	n=$(tcpdump -r "$cd/in.pcap" -n -tt "dst host $ip and ($SIP_PCAP_RTP)" 2>/dev/null |
		awk -v a=$((t0 + 500000)) -v b="$t1" '{ split($1, t, "."); u = t[1] * 1000000 + t[2] }
			u >= a && u <= b { n++ } END { print n + 0 }')
	awk -v n="$n" -v span=$((t1 - t0 - 500000)) \
		'BEGIN { l = (span / 20000 - n) * 0.02; printf "%.2f", l < 0 ? 0 : l }'
}

# tone_lost_s DIR PEER_DIR: seconds of its tone the peer sent less those DIR received
# in the last call (the first 500 ms included)
tone_lost_s() {
	local tx rx
	tx=$(sip_tx_tone_s "$2") rx=$(sip_rx_tone_s "$1")
	awk -v t="${tx:-}" -v r="${rx:-}" 'BEGIN { if (t == "" || r == "") print "-"
		else printf "%.1f", t - r }'
}

# sip_cell CELLNO CELL: new user agents, CALLS calls; a table row
sip_cell() {
	local c=$1 cell=$2 ua_a ua_b ip_b uri i ok=0 na nb d
	local ca=() cb=() la=() lb=() ta=() tb=() x
	ua_a=$LAB_DIR/sip-$c-a ua_b=$LAB_DIR/sip-$c-b
	if [[ $cell == plain ]]; then
		ip_b=$LAB_A2_IP uri=
	else
		IFS=/ read -r na nb d <<<"$cell"
		ip_b=$LAB_B_IP uri=sip:b@$LAB_SRV_IP:5060
		lab_set_nat a "$na" >/dev/null && lab_set_nat b "$nb" >/dev/null &&
			lab_set_delay "${d:-0}" >/dev/null || {
			echo "$cell: cannot set up the lab"
			return
		}
	fi
	lab_flush
	local ident
	ident=$(printf 's%d' "$c")
	if ! sip_ua_config "$ua_a" a "$LAB_A_IP" 5060 16000-16019 440 ||
		! sip_ua_config "$ua_b" b "$ip_b" 5060 17000-17019 1000 ||
		{ [[ $cell != plain ]] &&
			{ ! sip_ua_shim "$ua_a" N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" ||
				! sip_ua_shim "$ua_b" N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" \
					N4_LISTEN=5060; }; } ||
		! sip_ua_start "$([[ $cell == plain ]] && echo a2 || echo b)" "$ua_b" ||
		! sip_ua_start a "$ua_a"; then
		echo "$cell: the user agents did not start"
		sip_ua_stop "$ua_a"
		sip_ua_stop "$ua_b"
		return
	fi
	for ((i = 1; i <= CALLS; i++)); do
		if ! sip_call "$ua_a" "$ua_b" "$CALL_S" $uri 2>"$LAB_DIR/sip-$c-$i.err"; then
			echo "$cell call $i: failed ($(head -n 1 "$LAB_DIR/sip-$c-$i.err"))"
			keep_logs "sip-$c-$i" "$(sip_call_dir "$ua_a")/baresip.log" "$LAB_DIR/sip-$c-$i.err"
			continue
		fi
		ok=$((ok + 1))
		ca+=("$(sip_answer_rtp_ms "$ua_a")") cb+=("$(sip_answer_rtp_ms "$ua_b")")
		la+=("$(rtp_lost_s "$ua_a")") lb+=("$(rtp_lost_s "$ua_b")")
		ta+=("$(tone_lost_s "$ua_a" "$ua_b")") tb+=("$(tone_lost_s "$ua_b" "$ua_a")")
		printf '%s call %d: answer -> first RTP caller %s ms, callee %s ms; RTP lost after 500 ms caller %s s, callee %s s; tone sent - received caller %s s, callee %s s\n' \
			"$cell" "$i" "${ca[-1]}" "${cb[-1]}" "${la[-1]}" "${lb[-1]}" "${ta[-1]}" "${tb[-1]}"
		x=$(grep -hE "recovered|no answer in|EHOSTUNREACH|ERROR|LOSE" \
			"$(sip_call_dir "$ua_a")/baresip.log" "$(sip_call_dir "$ua_b")/baresip.log" | head -n 4)
		[[ -n $x ]] && sed 's/^/   /' <<<"$x"
	done
	sip_ua_stop "$ua_a"
	sip_ua_stop "$ua_b"
	nums() { printf '%s\n' "$@" | grep -E '^[0-9.]+$'; }
	emit "$(printf "$SROW" "$cell" \
		"$ok/$CALLS" "$(nums "${ca[@]}" | median)" "$(nums "${ca[@]}" | maximum)" \
		"$(nums "${cb[@]}" | median)" "$(nums "${cb[@]}" | maximum)" \
		"$(nums "${la[@]}" | maximum)" "$(nums "${lb[@]}" | maximum)" \
		"$(nums "${ta[@]}" | median)" "$(nums "${tb[@]}" | median)")"
}

part2() {
	echo
	echo "== calls (baresip): $CALLS calls of $CALL_S s per cell, a dials b"
	if ! declare -F sip_ua_shim >/dev/null || ! declare -F sip_answer_rtp_ms >/dev/null; then
		echo "(skipped: tests/lab/sip_lib.sh has no sip_ua_shim or sip_answer_rtp_ms)"
		return
	fi
	if ! sip_need 2>&1; then
		echo "(skipped)"
		return
	fi
	emit ""
	emit "$(printf "$SROW" \
		"cell (A/B/delay ms)" calls "caller med" "caller max" "callee med" "callee max" \
		"lost a s" "lost b s" "tone a s" "tone b s")"
	emit "|$(printf -- '-%.0s' {1..32})|-------|------------|------------|------------|------------|-----------|-----------|-----------|-----------|"
	local c=0 cell
	for cell in "${sip_cells[@]}"; do
		c=$((c + 1))
		sip_cell "$c" "$cell"
	done
	lab_set_delay 0 >/dev/null
	echo
	echo "columns: caller/callee med/max = ms from the answer (the first SIP 200 in the UA's"
	echo "capture) to the first RTP it received; lost a/b s = the most audio (s) any call lost"
	echo "at the caller/callee after the first 500 ms (RTP datagrams missing from the answer"
	echo "+ 500 ms to the BYE); tone a/b s = median of the peer's tone sent less received,"
	echo "the first 500 ms included (wav_tone, one decimal)."
}

[[ -z $PART || $PART == 1 ]] && part1
[[ -z $PART || $PART == 2 ]] && part2
echo "calls.sh took $((SECONDS - T_START)) s"
if [[ -n $OUT ]]; then
	printf '%s\n' "${TABLE[@]}" >>"$OUT"
fi
exit 0

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
# usage: bench/calls.sh [-n REPS] [-o FILE] [CELL...]
#   CELL: A/B/DELAY (default: inc/inc/0 inc/inc/20 inc-linux/inc-linux/0
#   inc-linux/inc-linux/20 random/random/0 random/random/20) or plain
#   -o FILE: append the tables to FILE as well
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/lab/lib.sh"
source "$here/../tests/lab/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
FB=$N4_BIN/bench/flow_bench
PH_IP=192.0.2.77 # A's placeholder for B
PORT=5060	 # socket 0 (B's N4_LISTEN), SIP's port
PHASES=m1,m2,m4,l1,l2,l4
REPS=10
OUT=
KEEP=${KEEP:-/tmp}
while getopts "n:o:" o; do
	case $o in
	n) REPS=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) echo "usage: $0 [-n REPS] [-o FILE] [CELL...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
cells=("$@")
((${#cells[@]})) || cells=(plain inc/inc/0 inc/inc/20 inc-linux/inc-linux/0 \
	inc-linux/inc-linux/20 random/random/0 random/random/20)

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
		[[ $s == A ]] && log=$la base=31000 || log=$lb base=41000
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
		keep_logs "$c-$r" "$la" "$lb"
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

# report CELL: the table rows of one cell from DATA
report() {
	local cell=$1 fp fps k nph np fl
	fp=$(awk '$1 == "first" && $3 != "never" { print $3 }' "$DATA" | median)
	fps=$(awk '$1 == "first" && $4 != "" { print $4 }' "$DATA" | median)
	np=$(awk '$1 == "first" && $3 != "never"' "$DATA" | wc -l)
	emit "$(printf '| %-22s | %-14s | %6s | %9s | %9s | %-6s | %9s | %9s | %7s |' "$cell" \
		"first path" "$np/$(awk '$1 == "first"' "$DATA" | wc -l)" "$fp" "${fps:--}" "1" "-" "-" "-")"
	nph=$(tr ',' '\n' <<<"$PHASES" | wc -l)
	for ((k = 0; k < nph; k++)); do
		local a_ms a_max a_shim ratio allup b_ms n nn
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
		emit "$(printf '| %-22s | %-14s | %6s | %9s | %9s | %-6s | %9s | %9s | %7s |' "" \
			"$(phase_name $k)" "$n/$nn" "$a_ms" "$a_shim" "$ratio" "$a_max" "$allup" "$b_ms")"
	done
}

ODD=()
echo "== calls: flows to one peer; $REPS repetitions per cell, phases $PHASES"
emit "$(printf '| %-22s | %-14s | %6s | %9s | %9s | %-6s | %9s | %9s | %7s |' "cell (A/B/delay ms)" \
	"flows at once" answered "A med ms" "shim ms" "ratio" "A max ms" "all up ms" "B med ms")"
emit "|------------------------|----------------|--------|-----------|-----------|--------|-----------|-----------|---------|"
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
echo "repetitions of the phase's slowest flow; B med ms = B's mirrored flows, from the GO's"
echo "arrival at B to their first answer."
if ((${#ODD[@]})); then
	echo "repetitions with warnings or unanswered flows:"
	printf '  %s\n' "${ODD[@]}"
fi
echo "calls.sh took $((SECONDS - T_START)) s"
cp "$SRV_LOG" "$KEEP/bench-calls-server.log" 2>/dev/null
if [[ -n $OUT ]]; then
	printf '%s\n' "${TABLE[@]}" >>"$OUT"
fi
exit 0

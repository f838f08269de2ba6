#!/usr/bin/env bash
# bench/punch.sh - time to [ WIN ] and success rate, `classic` (the original's
# behaviour) against the default strategy, side by side in the same lab run; and in the
# IPv6 cells (issue 22), IPv4 alone (`--no-ipv6`) against IPv6 on both hosts.
# Not a test: it prints a table (and, with -o FILE, appends it as markdown).
#
# usage: bench/punch.sh [-k TRIALS] [-c CLASSIC_TRIALS] [-t TIMEOUT_S] [-o FILE]
#                       [-s "classic auto"] [-f FAILDIR] [-d DATAFILE] [-r RAWFILE]
#                       [CELL...]
#   -d  also append one tab-separated line per cell and strategy to DATAFILE
#       (cell, strategy, wins, trials, median ms, p95 ms; IPv6 cells add: trials won
#       over IPv6, over IPv4, relayed, median ms of the relayed): bench/heatmap.sh draws it
#   -s  strategies to run (default both, side by side); "keyed" is auto with a
#       pre-shared key (-k: keyed pairing id, authenticated PUNCHes), e.g.
#       bench/punch.sh -s "auto keyed" inc/inc/0/0 inc/inc/20/0
#   -f  keep the logs of every trial that did not win in FAILDIR
#   -r  IPv6 cells: also append one tab-separated line per trial to RAWFILE (cell,
#       path, trial, outcome won/relayed/lost, family, ms), for the spread and for
#       paired comparisons of the two paths
#   CELL = NATA/NATB/DELAY_MS/NOISE_PER_S[/JITTER_MS/LOSS_PCT][@v6|@v6drop], e.g.
#          inc-linux/inc-linux/0/0 or inc-linux/inc-linux/50/300/30/5 (50 ms one way,
#          +-30 ms jitter, 5 % loss)
#   @v6      an IPv6 cell: both hosts also have global IPv6 behind stateful firewalls
#            (lab_up --ipv6 on); auto with --no-ipv6 on both ("v4") against auto with
#            --server6 on both ("v6"), -k trials each, -s ignored; the server relays
#            (as deployed), so that a pair IPv4 cannot punch shows as relayed, and the
#            family and relay flag of every WIN come from --json
#   @v6drop  the same with both firewalls dropping all IPv6: the IPv4 result, and its
#            time against IPv4 alone
#   default cells: the foundation set and its IPv6 cells (see below)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/lab/lib.sh"
source "$here/../tests/lab/punch_lib.sh"

K=10
KC=
TIMEOUT=10
OUT=
STRATEGIES="classic auto"
FAILDIR=
DATA=
RAW=
while getopts "k:c:t:o:s:f:d:r:" o; do
	case $o in
	k) K=$OPTARG ;;
	c) KC=$OPTARG ;;
	t) TIMEOUT=$OPTARG ;;
	o) OUT=$OPTARG ;;
	s) STRATEGIES=$OPTARG ;;
	f) FAILDIR=$OPTARG ;;
	d) DATA=$OPTARG ;;
	r) RAW=$OPTARG ;;
	*) echo "usage: $0 [-k TRIALS] [-t TIMEOUT_S] [-o FILE] [CELL...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
KC=${KC:-$K}
cells=("$@")
((${#cells[@]})) || cells=(inc/inc/0/0 inc-linux/inc-linux/0/0 inc-linux/inc-linux/20/0 cone/cone/0/0 cone/inc/0/0
	random/random/0/0@v6 inc/inc/0/0@v6 inc-linux/inc-linux/0/0@v6 inc-linux/inc-linux/20/0@v6
	cone/cone/0/0@v6 cone/inc/0/0@v6 inc/inc/0/0@v6drop)
cells4=() cells6=()
for cell in "${cells[@]}"; do
	if [[ $cell == *@* ]]; then cells6+=("$cell"); else cells4+=("$cell"); fi
done

lab_require_root || exit 1
KEYDIR=$(mktemp -d /tmp/n4-bench-key.XXXX)
trap 'lab_down; rm -rf "$KEYDIR"' EXIT
(umask 077 && "$N4" genkey >"$KEYDIR/key") || exit 1

# median and max of numbers on stdin (ms), "-" when none
stats() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit }
	m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[NR] }'; }
p95() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
	i = int(NR * 0.95 + 0.999); if (i > NR) i = NR; print v[i] }'; }

# cell_up CELL [--ipv6 on]: the lab of one cell, its server running; the server relays
# only with --ipv6 on (IPv6 cells, see the usage)
cell_up() {
	local na nb delay noise jitter loss
	IFS=/ read -r na nb delay noise jitter loss <<<"${1%@*}"
	shift
	jitter=${jitter:-0} loss=${loss:-0}
	local args=(--nat-a "$na" --nat-b "$nb")
	((delay > 0 || jitter > 0 || loss > 0)) && args+=(--delay "$delay" --jitter "$jitter" --loss "$loss")
	((noise > 0)) && args+=(--noise-a "$noise" --noise-b "$noise")
	lab_up "${args[@]}" "$@" >/dev/null || { echo "cannot bring up $cell" >&2; return 1; }
	# punching only: a pair relayed after lost rounds must not count as a WIN
	local sargs=(--no-relay)
	# IPv6 cells relay.  A relayed pair is held for --relay-idle (60 s) after its clients
	# are gone and every trial comes from the same two NATs: without the per-source cap
	# (16), a cell of more than 8 relayed trials per path is not refused the relay
	(($#)) && sargs=(--relay-per-ip 0)
	start_server "${sargs[@]}" || { lab_down; return 1; }
}
keep_fail() { # TAG: the logs of a trial that did not win, with -f
	[[ -n $FAILDIR ]] || return 0
	mkdir -p "$FAILDIR/${cell//\//_}-$1"
	cp "$LOG_A" "$LOG_B" "$SRV_LOG" "$FAILDIR/${cell//\//_}-$1/"
}

rows=()
header=$(printf '| %-34s | %-8s | %6s | %9s | %9s | %9s | %7s | %7s |' \
	"cell (A/B/delay ms/noise/s)" strategy wins "median ms" "p95 ms" "worst ms" packets ports)
sep=$(printf '|%s|%s|%s|%s|%s|%s|%s|%s|' ------------------------------------ ---------- -------- \
	----------- ----------- ----------- --------- ---------)
((${#cells4[@]})) && echo "$header" && echo "$sep"
for cell in "${cells4[@]}"; do
	cell_up "$cell" || continue
	for strategy in $STRATEGIES; do
		times=()
		wins=0
		pkts=0
		ports=0
		k=$K
		[[ $strategy == classic ]] && k=$KC
		for ((i = 1; i <= k; i++)); do
			lab_flush
			tag=$strategy-$i
			sargs=(--strategy "$strategy")
			[[ $strategy == keyed ]] && sargs=(--strategy auto -k "$KEYDIR/key")
			run_pair "$tag" "${sargs[@]}" -t "$TIMEOUT" --log debug -b $((20000 + (i % 10) * 1000)) >/dev/null
			if won "$LOG_A" && won "$LOG_B"; then
				wins=$((wins + 1))
				ta=$(win_ms "$LOG_A")
				tb=$(win_ms "$LOG_B")
				times+=($((ta > tb ? ta : tb)))
			else
				keep_fail "$tag"
			fi
			pkts=$((pkts + $(cat "$LOG_A" "$LOG_B" | sed -nE 's/.*won with ([0-9]+) PUNCHes.*/\1/p' | awk '{s+=$1} END {print s+0}')))
			ports=$((ports + $(cat "$LOG_A" "$LOG_B" | sed -nE 's/.*from ([0-9]+) sockets.*/\1/p' | awk '{s+=$1} END {print s+0}')))
		done
		read -r med worst < <(printf '%s\n' "${times[@]}" | grep . | stats)
		pp=$(printf '%s\n' "${times[@]}" | grep . | p95)
		[[ -n $DATA ]] && printf '%s\t%s\t%d\t%d\t%s\t%s\n' "$cell" "$strategy" "$wins" "$k" "$med" "$pp" >>"$DATA"
		row=$(printf '| %-34s | %-8s | %3d/%-2d | %9s | %9s | %9s | %7s | %7s |' "$cell" "$strategy" \
			"$wins" "$k" "$med" "$pp" "$worst" "$(( wins ? pkts / (2 * wins) : 0 ))" "$(( wins ? ports / (2 * wins) : 0 ))")
		echo "$row"
		rows+=("$row")
	done
	stop_server
	lab_down
done
((${#cells4[@]})) && echo "(times: start of both clients to the later [ WIN ]; packets/ports: per side, per won attempt)"

# IPv6 cells: IPv4 alone and IPv6 on, the same lab, server and NATs, trials interleaved
# (v4, v6, v6, v4, v4, v6...) so that load from other work on the machine falls on both
# alike, and neither always runs first after the other.
json_of() { grep -o '{"outcome".*' "$1" | tail -n 1; }
json_field() { sed -nE "s/.*\"$2\":\"?([a-z0-9]+).*/\\1/p" <<<"$1"; }
rows6=()
header6=$(printf '| %-34s | %-9s | %6s | %9s | %9s | %9s | %-10s | %-12s | %8s |' \
	"cell (A/B/delay ms/noise/s)" path wins "median ms" "p95 ms" "worst ms" "won over" \
	"relayed (ms)" "x IPv4")
sep6=$(printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|' ------------------------------------ ----------- \
	-------- ----------- ----------- ----------- ------------ -------------- ----------)
((${#cells6[@]})) && echo && echo "$header6" && echo "$sep6"
for cell in "${cells6[@]}"; do
	cell_up "$cell" --ipv6 on || continue
	if [[ ${cell#*@} == v6drop ]]; then
		lab_set_v6fw a drop && lab_set_v6fw b drop || { stop_server; lab_down; continue; }
	fi
	declare -A tms=() nwin=() won6=() won4=() nrel=() trel=()
	for ((i = 1; i <= K; i++)); do
		order="v4 v6"
		((i % 2)) || order="v6 v4"
		for path in $order; do
			lab_flush
			tag=$path-$i
			pargs=(--no-ipv6)
			[[ $path == v6 ]] && pargs=(--server6 "$LAB_SRV_IP6")
			run_pair "$tag" --strategy auto "${pargs[@]}" --json -t "$TIMEOUT" --log debug \
				-b $((20000 + (i % 10) * 1000)) >/dev/null
			outcome=lost fam=- t=-
			if won "$LOG_A" && won "$LOG_B"; then
				ja=$(json_of "$LOG_A") jb=$(json_of "$LOG_B")
				ta=$(win_ms "$LOG_A") tb=$(win_ms "$LOG_B")
				t=$((ta > tb ? ta : tb))
				if [[ $(json_field "$ja" relayed) == true || $(json_field "$jb" relayed) == true ]]; then
					nrel[$path]=$((${nrel[$path]:-0} + 1))
					trel[$path]+="$t "
					outcome=relayed
				else
					outcome=won fam=ipv4
					nwin[$path]=$((${nwin[$path]:-0} + 1))
					tms[$path]+="$t "
					# both sides report one path; a disagreement would show as IPv4
					if [[ $(json_field "$ja" family) == ipv6 && $(json_field "$jb" family) == ipv6 ]]; then
						won6[$path]=$((${won6[$path]:-0} + 1))
						fam=ipv6
					else
						won4[$path]=$((${won4[$path]:-0} + 1))
					fi
				fi
			else
				keep_fail "$tag"
			fi
			[[ -n $RAW ]] && printf '%s\t%s\t%d\t%s\t%s\t%s\n' "$cell" "$path" "$i" "$outcome" \
				"$fam" "$t" >>"$RAW"
		done
	done
	med4='' rmed4=''
	for path in v4 v6; do
		read -r med worst < <(printf '%s\n' ${tms[$path]:-} | grep . | stats)
		pp=$(printf '%s\n' ${tms[$path]:-} | grep . | p95)
		read -r rmed _ < <(printf '%s\n' ${trel[$path]:-} | grep . | stats)
		w=${nwin[$path]:-0} n6=${won6[$path]:-0} n4=${won4[$path]:-0} nr=${nrel[$path]:-0}
		[[ $path == v4 ]] && med4=$med rmed4=$rmed
		# against IPv4 alone's direct WINs, or its relayed ones when it never punched
		ratio=-
		if [[ $path == v6 ]]; then
			a=$med b=$med4 r=
			[[ $b == - ]] && b=$rmed4 r=" (r)"
			[[ $a == - && -n $r ]] && a=$rmed
			[[ $a != - && $b != - ]] &&
				ratio=$(awk -v a="$a" -v b="$b" -v r="$r" 'BEGIN { printf "%.2f%s", (b > 0) ? a / b : 0, r }')
		fi
		[[ -n $DATA ]] && printf '%s\t%s\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t%s\n' "$cell" "$path" "$w" "$K" \
			"$med" "$pp" "$n6" "$n4" "$nr" "$rmed" >>"$DATA"
		label="IPv4 only"
		[[ $path == v6 ]] && label="IPv6 on"
		relayed=$nr
		((nr)) && relayed="$nr ($rmed)"
		row=$(printf '| %-34s | %-9s | %3d/%-2d | %9s | %9s | %9s | %-10s | %-12s | %8s |' "$cell" \
			"$label" "$w" "$K" "$med" "$pp" "$worst" "v6 $n6, v4 $n4" "$relayed" "$ratio")
		echo "$row"
		rows6+=("$row")
	done
	unset tms nwin won6 won4 nrel trel
	stop_server
	lab_down
done
((${#cells6[@]})) && echo "(IPv6 cells: wins are direct WINs on both sides, by the family --json reports; relayed" &&
	echo " trials apart, with their median time; x IPv4: median time to WIN against IPv4 alone's; (r): against its relayed trials, when it never punched)"
if [[ -n $OUT ]]; then
	{
		echo
		counts="$K trials (auto), $KC (classic)"
		((${#rows[@]})) || counts="$K trials per path"
		echo "#### $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, kernel $(uname -r), $counts, give up after $TIMEOUT s"
		if ((${#rows[@]})); then
			echo
			echo "$header"
			echo "$sep"
			printf '%s\n' "${rows[@]}"
		fi
		if ((${#rows6[@]})); then
			echo
			echo "IPv6 cells ($K trials per path, IPv4 alone and IPv6 on interleaved, the server relaying):"
			echo
			echo "$header6"
			echo "$sep6"
			printf '%s\n' "${rows6[@]}"
		fi
	} >>"$OUT"
fi

#!/usr/bin/env bash
# bench/punch.sh - time to [ WIN ] and success rate, `classic` (the original's
# behaviour) against the default strategy, side by side in the same lab run.
# Not a test: it prints a table (and, with -o FILE, appends it as markdown).
#
# usage: bench/punch.sh [-k TRIALS] [-c CLASSIC_TRIALS] [-t TIMEOUT_S] [-o FILE]
#                       [-s "classic auto"] [-f FAILDIR] [-d DATAFILE] [CELL...]
#   -d  also append one tab-separated line per cell and strategy to DATAFILE
#       (cell, strategy, wins, trials, median ms, p95 ms): bench/heatmap.sh draws it
#   -s  strategies to run (default both, side by side); "keyed" is auto with a
#       pre-shared key (-k: keyed pairing id, authenticated PUNCHes), e.g.
#       bench/punch.sh -s "auto keyed" inc/inc/0/0 inc/inc/20/0
#   -f  keep the logs of every trial that did not win in FAILDIR
#   CELL = NATA/NATB/DELAY_MS/NOISE_PER_S[/JITTER_MS/LOSS_PCT], e.g. inc-linux/inc-linux/0/0
#          or inc-linux/inc-linux/50/300/30/5 (50 ms one way, +-30 ms jitter, 5 % loss)
#   default cells: the foundation set (see below)
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
while getopts "k:c:t:o:s:f:d:" o; do
	case $o in
	k) K=$OPTARG ;;
	c) KC=$OPTARG ;;
	t) TIMEOUT=$OPTARG ;;
	o) OUT=$OPTARG ;;
	s) STRATEGIES=$OPTARG ;;
	f) FAILDIR=$OPTARG ;;
	d) DATA=$OPTARG ;;
	*) echo "usage: $0 [-k TRIALS] [-t TIMEOUT_S] [-o FILE] [CELL...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
KC=${KC:-$K}
cells=("$@")
((${#cells[@]})) || cells=(inc/inc/0/0 inc-linux/inc-linux/0/0 inc-linux/inc-linux/20/0 cone/cone/0/0 cone/inc/0/0)

lab_require_root || exit 1
KEYDIR=$(mktemp -d /tmp/n4-bench-key.XXXX)
trap 'lab_down; rm -rf "$KEYDIR"' EXIT
(umask 077 && "$N4" genkey >"$KEYDIR/key") || exit 1

# median and max of numbers on stdin (ms), "-" when none
stats() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit }
	m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[NR] }'; }
p95() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
	i = int(NR * 0.95 + 0.999); if (i > NR) i = NR; print v[i] }'; }

rows=()
header=$(printf '| %-34s | %-8s | %6s | %9s | %9s | %9s | %7s | %7s |' \
	"cell (A/B/delay ms/noise/s)" strategy wins "median ms" "p95 ms" "worst ms" packets ports)
sep=$(printf '|%s|%s|%s|%s|%s|%s|%s|%s|' ------------------------------------ ---------- -------- \
	----------- ----------- ----------- --------- ---------)
echo "$header"
echo "$sep"
for cell in "${cells[@]}"; do
	IFS=/ read -r na nb delay noise jitter loss <<<"$cell"
	jitter=${jitter:-0} loss=${loss:-0}
	args=(--nat-a "$na" --nat-b "$nb")
	((delay > 0 || jitter > 0 || loss > 0)) && args+=(--delay "$delay" --jitter "$jitter" --loss "$loss")
	((noise > 0)) && args+=(--noise-a "$noise" --noise-b "$noise")
	lab_up "${args[@]}" >/dev/null || { echo "cannot bring up $cell" >&2; continue; }
	# punching only: a pair relayed after lost rounds must not count as a WIN
	start_server --no-relay || { lab_down; continue; }
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
			elif [[ -n $FAILDIR ]]; then
				mkdir -p "$FAILDIR/${cell//\//_}-$tag"
				cp "$LOG_A" "$LOG_B" "$SRV_LOG" "$FAILDIR/${cell//\//_}-$tag/"
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
echo "(times: start of both clients to the later [ WIN ]; packets/ports: per side, per won attempt)"
if [[ -n $OUT ]]; then
	{
		echo
		echo "#### $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, kernel $(uname -r), $K trials (auto), $KC (classic), give up after $TIMEOUT s"
		echo
		echo "$header"
		echo "$sep"
		printf '%s\n' "${rows[@]}"
	} >>"$OUT"
fi

#!/usr/bin/env bash
# bench/crowd.sh - a room's crowd joining at once, this build against a baseline build.
# Not a test: prints numbers and ratios, never fails a build.
#
# Runs tests/lab/test_shim_host.sh's crowd case (8 players behind four NATs, two per
# NAT but B, joining one game server at once behind NAT A, then a 9th behind NAT C
# ten seconds later) N times with each build, alternating, on one machine in one
# run, and reads the players' logs: rounds lost, players relayed, ms from a player's
# start to its first answer (the 8, and the 9th alone).  The case's own checks are
# ignored here (a baseline may fail them: that is what is measured).
#
# usage: bench/crowd.sh [-n RUNS] BASE_BUILD_DIR [BUILD_DIR]
#   BASE_BUILD_DIR: another checkout's build/ (e.g. git worktree add ../base REV;
#   make -C ../base all lab-tools); BUILD_DIR: default this checkout's build/.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUNS=5
while getopts "n:" o; do
	case $o in
	n) RUNS=$OPTARG ;;
	*) echo "usage: $0 [-n RUNS] BASE_BUILD_DIR [BUILD_DIR]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if (($# < 1)); then
	echo "usage: $0 [-n RUNS] BASE_BUILD_DIR [BUILD_DIR]" >&2
	exit 2
fi
base=$(cd "$1" && pwd) || exit 1
ours=$(cd "${2:-$here/../build}" && pwd) || exit 1
for b in "$base" "$ours"; do
	for f in libn4shim.so n4 tests/game_host tests/game_player; do
		[[ -e $b/$f ]] || { echo "$b/$f missing: build it (make all lab-tools)" >&2; exit 1; }
	done
done
[[ $(id -u) == 0 ]] || { echo "needs root (network namespaces)" >&2; exit 1; }

work=$(mktemp -d /tmp/bench-crowd.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT

# one_run BUILD DIR: the crowd case with that build, its logs in DIR
one_run() {
	mkdir -p "$2"
	N4_BUILD=$1 ONLY=crowd KEEP_LOGS=$2 bash "$here/../tests/lab/test_shim_host.sh" \
		>"$2/test.out" 2>&1
}
# figures DIR: "lost relayed first_ms..." of the 8, then the 9th's "lost relayed first_ms"
figures() {
	local d=$1 f lost=0 rel=0 firsts=""
	for f in "$d"/crowd-[a-e]*-[0-9]*.log; do
		[[ -e $f ]] || continue
		lost=$((lost + $(grep -c 'LOSE' "$f")))
		rel=$((rel + $(grep -c 'relayed through' "$f")))
		firsts+=" $(sed -nE 's/^summary .* first-ms ([0-9]+).*/\1/p' "$f" | tail -n 1)"
	done
	local late=$d/crowd-late.log
	echo "$lost $rel $(grep -c 'LOSE' "$late" 2>/dev/null) $(grep -c 'relayed through' "$late" 2>/dev/null)" \
		"$(sed -nE 's/^summary .* first-ms ([0-9]+).*/\1/p' "$late" 2>/dev/null | tail -n 1)" \
		"$firsts"
}
median() { sort -g | awk 'NF { v[++n] = $1 } END { if (!n) { print "-"; exit }
	if (n % 2) print v[(n + 1) / 2]; else print (v[n / 2] + v[n / 2 + 1]) / 2 }'; }

echo "== crowd: $RUNS runs per build, alternating; base $base, ours $ours"
for ((r = 1; r <= RUNS; r++)); do
	for who in base ours; do
		b=$base
		[[ $who == ours ]] && b=$ours
		one_run "$b" "$work/$who-$r"
		read -r lost rel llost lrel lfirst rest <<<"$(figures "$work/$who-$r")"
		echo "$who run $r: the 8: $lost rounds lost, $rel relayed, first answers (ms)$rest;" \
			"the 9th: $llost lost, $lrel relayed, first answer ${lfirst:--} ms" |
			tee -a "$work/$who.lines"
		echo "$lost $rel $llost $lrel ${lfirst:-} $rest" >>"$work/$who.data"
	done
done

echo
printf '| %-6s | %-4s | %-12s | %-9s | %-14s | %-14s | %-11s | %-12s | %-15s |\n' build runs \
	"lost rounds" relayed "8: median ms" "8: max ms" "9th lost" "9th relayed" "9th median ms"
printf '|%s|\n' "--------|------|--------------|-----------|----------------|----------------|-------------|--------------|-----------------"
declare -A med
for who in base ours; do
	d=$work/$who.data
	lost=$(awk '{ s += $1 } END { print s + 0 }' "$d")
	rel=$(awk '{ s += $2 } END { print s + 0 }' "$d")
	llost=$(awk '{ s += $3 } END { print s + 0 }' "$d")
	lrel=$(awk '{ s += $4 } END { print s + 0 }' "$d")
	m8=$(awk '{ for (i = 6; i <= NF; i++) print $i }' "$d" | median)
	x8=$(awk '{ for (i = 6; i <= NF; i++) print $i }' "$d" | sort -g | tail -n 1)
	m9=$(awk '{ print $5 }' "$d" | median)
	med[$who]="$m8 $m9"
	printf '| %-6s | %4s | %12s | %9s | %14s | %14s | %11s | %12s | %15s |\n' "$who" "$RUNS" \
		"$lost" "$rel/$((8 * RUNS))" "$m8" "${x8:--}" "$llost" "$lrel/$RUNS" "$m9"
done
read -r b8 b9 <<<"${med[base]}"
read -r o8 o9 <<<"${med[ours]}"
awk -v b8="$b8" -v o8="$o8" -v b9="$b9" -v o9="$o9" 'BEGIN {
	printf "ratio ours/base of the medians: the 8 %s, the 9th %s\n",
		(b8 > 0 ? sprintf("%.2f", o8 / b8) : "-"), (b9 > 0 ? sprintf("%.2f", o9 / b9) : "-") }'
echo "lost rounds (and 9th lost): [ LOSE ] lines of the 8 players' shims; relayed: players whose path is the"
echo "server's relay; first answers: from each player's start (the 8 start at once, served"
echo "one at a time by the host) to its first answer; the 9th joins alone 10 s later."

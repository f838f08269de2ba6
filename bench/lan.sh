#!/usr/bin/env bash
# bench/lan.sh - two hosts on one LAN behind one NAT (a and a2 behind NAT A): time to
# [ WIN ] and which path won, `classic` (the original's behaviour: no extension, so no
# local addresses) against the default strategy (N4_EXT_LOCAL), side by side in the same
# lab run, for each NAT flavour; and the default strategy between two LANs behind one NAT
# that cannot reach each other (a and a3), where the LAN path must stay silent.
# Not a test: it prints a table (and, with -o FILE, appends it as markdown).
#
# usage: bench/lan.sh [-k TRIALS] [-c CLASSIC_TRIALS] [-t TIMEOUT_S] [-o FILE] [FLAVOUR...]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/lab/lib.sh"
source "$here/../tests/lab/punch_lib.sh"

K=10
KC=3
TIMEOUT=5
OUT=
while getopts "k:c:t:o:" o; do
	case $o in
	k) K=$OPTARG ;;
	c) KC=$OPTARG ;;
	t) TIMEOUT=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) echo "usage: $0 [-k TRIALS] [-c CLASSIC_TRIALS] [-t TIMEOUT_S] [-o FILE] [FLAVOUR...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
flavours=("$@")
((${#flavours[@]})) || flavours=(inc inc-linux cone random)

lab_require_root || exit 1
trap 'lab_down' EXIT
lab_up --nat-a inc --nat-b inc --lan2 on >/dev/null || exit 1
start_server || exit 1

stats() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit }
	m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[NR] }'; }

rows=()
header=$(printf '| %-28s | %-8s | %6s | %9s | %9s | %-10s |' "hosts, NAT A flavour" strategy wins \
	"median ms" "worst ms" "path")
sep=$(printf '|%s|%s|%s|%s|%s|%s|' ------------------------------ ---------- -------- ----------- \
	----------- ------------)
echo "$header"
echo "$sep"
row() { # HOSTS FLAVOUR STRATEGY NODE_B TRIALS
	local hosts=$1 flavour=$2 strategy=$3 nb=$4 k=$5 i wins=0 lan=0 times=() la lb pa pb
	for ((i = 1; i <= k; i++)); do
		lab_flush
		la=$LAB_DIR/$strategy-$nb-$flavour-$i-a.log lb=$LAB_DIR/$strategy-$nb-$flavour-$i-b.log
		pa=$(client a "$la" -a bl$i --strategy "$strategy" -t "$TIMEOUT")
		pb=$(client "$nb" "$lb" -a bl$i --strategy "$strategy" -t "$TIMEOUT")
		wait_pids $((TIMEOUT + 5)) "$pa" "$pb" || kill "$pa" "$pb" 2>/dev/null
		if won "$la" && won "$lb"; then
			wins=$((wins + 1))
			local ta tb
			ta=$(win_ms "$la") tb=$(win_ms "$lb")
			times+=($((ta > tb ? ta : tb)))
			grep -q 'Path: LAN' "$la" && grep -q 'Path: LAN' "$lb" && lan=$((lan + 1))
		fi
	done
	local med worst r
	read -r med worst < <(printf '%s\n' "${times[@]}" | grep . | stats)
	r=$(printf '| %-28s | %-8s | %3d/%-2d | %9s | %9s | %-10s |' "$hosts, $flavour" "$strategy" \
		"$wins" "$k" "$med" "$worst" "LAN $lan/$wins")
	echo "$r"
	rows+=("$r")
}
for flavour in "${flavours[@]}"; do
	lab_set_nat a "$flavour" || continue
	row "a, a2 (one LAN)" "$flavour" classic a2 "$KC"
	row "a, a2 (one LAN)" "$flavour" auto a2 "$K"
done
lab_set_nat a inc && row "a, a3 (two LANs)" inc auto a3 "$KC"
echo "(times: start of both clients to the later [ WIN ]; give up after $TIMEOUT s; path: wins over the LAN)"
if [[ -n $OUT ]]; then
	{
		echo
		echo "### $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, kernel $(uname -r), $K trials (auto), $KC (classic, two LANs), give up after $TIMEOUT s"
		echo
		echo "$header"
		echo "$sep"
		printf '%s\n' "${rows[@]}"
	} >>"$OUT"
fi

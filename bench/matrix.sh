#!/usr/bin/env bash
# bench/matrix.sh - the punch matrix: every NAT pair and path condition of the lab,
# classic (the original) against auto in the same run, written as markdown tables
# and a heatmap (bench/heatmap.sh).  Not a test.  Affordable on 2 shared cores: few
# trials per ordinary cell, more in the target cells (issue: real networks), where a
# 95 % claim needs them.  Then the IPv6 cells (issue 22): a representative subset of the
# pairs and conditions with IPv6 on both hosts, IPv4 alone against IPv6 on (-k trials each).
#
# usage: bench/matrix.sh [-o RESULTS.md] [-p HEATMAP.png] [-k TRIALS] [-c CLASSIC]
#                        [-K TARGET_TRIALS] [-C TARGET_CLASSIC] [-6] [-r RAWDATA]
#   -6  the IPv6 cells only
#   -r  draw an earlier run's raw data (punch.sh -d lines, e.g. the last matrix's in
#       bench/RESULTS.md) in the heatmap beside this run's: with -6, the IPv6 cells are
#       added to the last full matrix without running it again
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

OUT=
PNG=$here/matrix.png
K=8 KC=3 KT=20 KTC=5
ONLY6='' RAW=''
while getopts "o:p:k:c:K:C:6r:" o; do
	case $o in
	o) OUT=$OPTARG ;;
	p) PNG=$OPTARG ;;
	k) K=$OPTARG ;;
	c) KC=$OPTARG ;;
	K) KT=$OPTARG ;;
	C) KTC=$OPTARG ;;
	6) ONLY6=1 ;;
	r) RAW=$OPTARG ;;
	*) sed -n '2,16p' "$0" >&2; exit 2 ;;
	esac
done

# NATA/NATB/DELAY_MS/NOISE_PER_S[/JITTER_MS/LOSS_PCT]
target=(inc-linux/inc-linux/50/300/30/5 inc/inc/30/1000/20/5)
cells=(
	# the matrix before this issue
	inc/inc/0/0 inc/inc/0/300 inc/inc/0/1000 inc/inc/20/0 inc/inc/20/300 inc/inc/20/1000
	inc/inc/50/0 inc/inc/50/300 inc/inc/50/1000
	inc-linux/inc-linux/0/0 inc-linux/inc-linux/0/1000 inc-linux/inc-linux/20/0
	inc-linux/inc-linux/20/1000 inc-linux/inc-linux/50/0 inc-linux/inc-linux/50/1000
	cone/inc/0/0 cone/inc/0/1000 cone/inc/20/0 cone/inc/20/1000
	random/cone/0/0 random/cone/20/0 random/cone/50/0 random/cone/20/1000
	cone/cone/0/0 cone/cone/50/0 random/random/0/0
	# NATs that count down or step by 2
	dec/dec/0/0 dec/dec/20/300 dec/inc/0/0 dec/inc/20/300 cone/dec/0/300 dec/cone/20/0
	inc2/inc2/0/300 inc2/inc2/20/1000 dec2/dec2/0/300 dec-linux/dec-linux/0/0
	dec-linux/inc-linux/20/300
	# jitter and loss
	inc/inc/20/0/10/0 inc/inc/50/0/0/5 inc/inc/20/300/20/5 inc-linux/inc-linux/20/0/10/0
	cone/inc/30/300/20/5 random/cone/30/0/20/5 dec/dec/30/300/20/5 cone/cone/50/0/30/5
)
# IPv6 on both hosts (punch.sh: CELL@v6 stateful firewalls, CELL@v6drop dropping all
# IPv6): the foundation pairs, random/random (relayed over IPv4) on a clean and a bad
# path, a random and a counting-down NAT, noise; not every cell of the matrix, to fit
# 2 shared cores (an IPv6 cell runs twice as many trials as its pair has paths)
cells6=(
	random/random/0/0@v6 random/random/50/300/30/5@v6 random/cone/0/0@v6 inc/inc/0/0@v6
	inc/inc/20/300@v6 inc-linux/inc-linux/0/0@v6 inc-linux/inc-linux/20/0@v6 cone/cone/0/0@v6
	cone/inc/0/0@v6 dec/dec/0/0@v6 inc/inc/0/0@v6drop random/random/0/0@v6drop
)

data=$(mktemp)
md=$(mktemp)
trap 'rm -f "$data" "$md"' EXIT
start=$(date -u '+%Y-%m-%d %H:%M UTC')
sub="trials per cell: auto $K ($KT in the target cells), classic $KC ($KTC); IPv6 cells $K per path; give up after 10 s"
if [[ -z $ONLY6 ]]; then
	bash "$here/punch.sh" -k "$KT" -c "$KTC" -d "$data" -o "$md" "${target[@]}"
	bash "$here/punch.sh" -k "$K" -c "$KC" -d "$data" -o "$md" "${cells[@]}"
else
	sub="IPv6 cells: $K trials per path, $(date -u '+%Y-%m-%d')${RAW:+; the rest from an earlier run}"
fi
bash "$here/punch.sh" -k "$K" -d "$data" -o "$md" "${cells6[@]}"
cat ${RAW:+"$RAW"} "$data" | bash "$here/heatmap.sh" - "$PNG" "$sub"
if [[ -n $OUT ]]; then
	{
		echo
		echo "### Matrix, $start, $(nproc) cores, kernel $(uname -r)"
		cat "$md"
		echo
		echo "Raw data (cell, strategy, wins, trials, median ms, p95 ms; IPv6 cells also: won over"
		echo "IPv6, over IPv4, relayed, median ms of the relayed):"
		echo
		echo '```'
		cat "$data"
		echo '```'
	} >>"$OUT"
fi

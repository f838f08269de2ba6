#!/usr/bin/env bash
# bench/before_after.sh - the same benchmarks on two revisions in one run, for a
# refactor that must not change behaviour (issue 18: "bench/punch.sh, bench/sessions.sh
# and bench/shim.sh give the same figures within noise, measured before and after in
# one run").  Not a test: it prints a table base | head | head/base and never fails on
# numbers; it exits non-zero only when something could not run (a build, a bench
# script, or a figure a bench script should have printed).
#
# usage: bench/before_after.sh [-b BASE_REV] [-q] [-o FILE]
#   -b  the "before" revision (default 06ff124, main before the path refactor); it is
#       built in a temporary git worktree under /tmp, removed at exit
#   -q  quick mode: few trials, a smoke check that every figure comes out (< 4 min)
#   -o  also append the table, as markdown, to FILE (e.g. bench/RESULTS.md)
# The "after" (head) is the tree this script lives in, as checked out (uncommitted
# changes included), built in ${N4_BUILD:-<tree>/build}.  Both builds run the SAME
# bench scripts and lab tools (this tree's), pointed at each build through N4_BUILD.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

BASE_REV=06ff124
QUICK=0
OUT=
while getopts "b:qo:" o; do
	case $o in
	b) BASE_REV=$OPTARG ;;
	q) QUICK=1 ;;
	o) OUT=$OPTARG ;;
	*) echo "usage: $0 [-b BASE_REV] [-q] [-o FILE]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
(($# == 0)) || { echo "usage: $0 [-b BASE_REV] [-q] [-o FILE]" >&2; exit 2; }

# Cells of bench/punch.sh, default strategy only: one without and one with WAN delay.
CELLS=(inc/inc/0/0 inc/inc/20/0)
# Trial counts: full mode about 12-13 minutes on the 2 shared cores, quick under 4 (see
# bench/RESULTS.md).  sessions.sh always spends 60 s on its keepalive part;
# shim.sh's sendto part runs best-of-(3*R+4) and its datagram part R rounds.
if ((QUICK)); then
	PUNCH_K=2 SESS_N=1 SHIM_SEND_R=0 SHIM_FLOOD_R=1 SHIM_SECS=1
else
	PUNCH_K=20 SESS_N=8 SHIM_SEND_R=2 SHIM_FLOOD_R=3 SHIM_SECS=3
fi

t0=$SECONDS
say() { printf '[%4ds] %s\n' $((SECONDS - t0)) "$*" >&2; }
die() { say "error: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "the lab benchmarks need root (network namespaces)"
base_sha=$(git -C "$repo" rev-parse --verify --quiet "$BASE_REV^{commit}") ||
	die "no such revision: $BASE_REV"
head_sha=$(git -C "$repo" rev-parse --verify HEAD) || die "$repo is not a git checkout"
base_name=$(git -C "$repo" rev-parse --short "$base_sha")
head_name=$(git -C "$repo" rev-parse --short "$head_sha")
head_changes=
[[ -n $(git -C "$repo" status --porcelain --untracked-files=no) ]] && head_changes="+changes"
head_name+=$head_changes

TMP=$(mktemp -d /tmp/n4-before-after.XXXXXX) || die "mktemp failed"
WT=$TMP/base
LOGS=$TMP/logs
KEEP_LOGS=0
BG_PIDS=()
cleanup() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	if [[ -d $WT ]]; then
		git -C "$repo" worktree remove --force "$WT" >/dev/null 2>&1 ||
			say "warning: could not remove the worktree $WT"
	fi
	git -C "$repo" worktree prune >/dev/null 2>&1
	if ((KEEP_LOGS)); then
		rm -rf "$WT"
		say "logs kept in $LOGS"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'KEEP_LOGS=1; exit 130' INT TERM
mkdir -p "$LOGS" || die "cannot create $LOGS"

# --- builds ------------------------------------------------------------------
HEAD_BUILD=${N4_BUILD:-$repo/build}
[[ $HEAD_BUILD == /* ]] || HEAD_BUILD=$PWD/$HEAD_BUILD
BASE_BUILD=$WT/build

say "building head ($head_name) in $HEAD_BUILD"
make -C "$repo" -j2 BUILD="$HEAD_BUILD" all lab-tools helpers >"$LOGS/build-head.log" 2>&1 ||
	{ KEEP_LOGS=1; die "head build failed, see $LOGS/build-head.log"; }
say "building base ($base_name) in a temporary worktree $WT"
git -C "$repo" worktree add --detach "$WT" "$base_sha" >"$LOGS/worktree.log" 2>&1 ||
	{ KEEP_LOGS=1; die "git worktree add failed, see $LOGS/worktree.log"; }
make -C "$WT" -j2 BUILD="$BASE_BUILD" all helpers >"$LOGS/build-base.log" 2>&1 ||
	{ KEEP_LOGS=1; die "base build failed, see $LOGS/build-base.log"; }
# The lab tools (NFQUEUE delay, noise) are part of the harness, not of what is measured:
# both sides use this tree's, like they use this tree's scripts.
ln -s "$HEAD_BUILD/lab" "$BASE_BUILD/lab" || die "cannot link the lab tools into $BASE_BUILD"

build_of() { if [[ $1 == base ]]; then echo "$BASE_BUILD"; else echo "$HEAD_BUILD"; fi; }

# bench SIDE NAME SCRIPT ARGS...: run this tree's bench/SCRIPT against SIDE's build,
# output in $LOGS/NAME.SIDE.out.  A script that fails to run stops the comparison.
bench() {
	bench_start "$@" &
	bench_wait $! "$@"
}
bench_start() { # same arguments; run in the background, the pid is the script's shell
	local side=$1 name=$2 script=$3
	shift 3
	mkdir -p "$LOGS/keep.$side" || return 1
	N4_BUILD=$(build_of "$side") KEEP=$LOGS/keep.$side \
		exec bash "$here/$script" "$@" >"$LOGS/$name.$side.out" 2>&1
}
bench_wait() { # PID SIDE NAME SCRIPT ARGS...
	local pid=$1 side=$2 name=$3 script=$4 rc
	shift 4
	BG_PIDS+=("$pid")
	wait "$pid"
	rc=$?
	local left=() p
	for p in "${BG_PIDS[@]}"; do [[ $p == "$pid" ]] || left+=("$p"); done
	BG_PIDS=("${left[@]}")
	if ((rc != 0)); then
		KEEP_LOGS=1
		die "bench/$script $* exited $rc on $side, see $LOGS/$name.$side.out"
	fi
}

# Interleaving: each unit runs on both sides back to back, and which side goes first
# alternates from unit to unit (base head, head base, ...) so that a drift in the
# machine's load hits both sides alike.
# (A variable, not $(...): a command substitution's subshell would not count the units.)
UNIT=0
next_unit() { UNIT=$((UNIT + 1)); if ((UNIT % 2)); then ORDER="base head"; else ORDER="head base"; fi; }

# --- figures -----------------------------------------------------------------
# FIG[key.side] = value; ROWS = keys in table order; LABEL[key] = row label
declare -A FIG LABEL
ROWS=()
MISSING=()
row() { ROWS+=("$1"); LABEL[$1]=$2; }
put() { # KEY SIDE VALUE [MAY_BE_EMPTY]: record a figure; an empty one is a failure to run
	if [[ -z $3 ]]; then
		FIG[$1.$2]=-
		[[ -n ${4:-} ]] || MISSING+=("$1 ($2)")
	else
		FIG[$1.$2]=$3
	fi
}

punch_figures() { # SIDE CELL TSV
	local side=$1 cell=$2 wins k med p95
	if ! IFS=$'\t' read -r _ _ wins k med p95 <"$3"; then
		put "punch.$cell.wins" "$side" ""
		put "punch.$cell.med" "$side" ""
		put "punch.$cell.p95" "$side" ""
		return
	fi
	put "punch.$cell.wins" "$side" "$wins/$k"
	# no win, no time: that is a figure ("-"), not a failure to run
	put "punch.$cell.med" "$side" "$med" empty-ok
	put "punch.$cell.p95" "$side" "$p95" empty-ok
}

sessions_figures() { # SIDE OUTFILE
	local side=$1 f=$2 line n failed p50 p90
	line=$(grep -E '^recovery inc: n=' "$f" | tail -n 1)
	if [[ -n $line ]]; then
		read -r n failed p50 p90 < <(sed -nE \
			's/.* n=([0-9]+) failed=([0-9]+) .* p50 ([0-9.]+) +p90 ([0-9.]+) .*/\1 \2 \3 \4/p' <<<"$line")
		put sess.resumed "$side" "${n:+$n/$((n + failed))}"
		put sess.p50 "$side" "${p50:-}"
		put sess.p90 "$side" "${p90:-}"
	elif grep -q '^== 1. recovery' "$f"; then
		# every trial failed to resume: a result, printed as 0/N
		put sess.resumed "$side" "0/$(grep -c '^trial [0-9]*: did not resume' "$f")"
		put sess.p50 "$side" "" empty-ok
		put sess.p90 "$side" "" empty-ok
	else
		put sess.resumed "$side" ""
		put sess.p50 "$side" ""
		put sess.p90 "$side" ""
	fi
	put sess.ka "$side" "$(sed -nE 's/^keepalive: ([0-9]+) datagrams .*/\1/p' "$f")"
	put sess.cpu "$side" "$(sed -nE 's/^keepalive: the keeper thread used (-?[0-9]+) ms .*/\1/p' "$f")"
}

shim_send_figures() { # SIDE OUTFILE
	local side=$1 plain shim ratio
	read -r plain shim ratio < <(sed -nE \
		's/^sendto: ([0-9.]+) ns without the shim, ([0-9.]+) ns with it.* cost ratio ([0-9.]+).*/\1 \2 \3/p' "$2")
	put shim.ns "$side" "${shim:-}"
	put shim.ns0 "$side" "${plain:-}"
	put shim.cost "$side" "${ratio:-}"
}

shim_flood_figures() { # SIDE OUTFILE
	local side=$1 rx tx
	read -r rx tx < <(sed -nE \
		's/^datagrams\/s shimmed \/ unshimmed: received ([0-9.]+), sent ([0-9.]+).*/\1 \2/p' "$2")
	put shim.rx "$side" "${rx:-}"
	put shim.tx "$side" "${tx:-}"
}

# --- runs --------------------------------------------------------------------
for cell in "${CELLS[@]}"; do
	row "punch.$cell.wins" "punch $cell auto: wins/trials"
	row "punch.$cell.med" "punch $cell auto: median ms to WIN"
	row "punch.$cell.p95" "punch $cell auto: p95 ms to WIN"
done
row sess.resumed "sessions: recovery trials resumed"
row sess.p50 "sessions: recovery p50 ms (conntrack -F on NAT A)"
row sess.p90 "sessions: recovery p90 ms"
row sess.ka "sessions: keepalive datagrams in 60 s"
row sess.cpu "sessions: keeper thread CPU ms in 60 s"
row shim.rx "shim: datagrams/s shimmed/unshimmed, received"
row shim.tx "shim: datagrams/s shimmed/unshimmed, sent"
row shim.ns "shim: ns per sendto, shim loaded (best run)"
row shim.ns0 "shim: ns per sendto, no shim (best run)"
row shim.cost "shim: sendto cost ratio shim/no shim"

run_sessions() { # SIDE
	bench "$1" sessions sessions.sh -n "$SESS_N"
	sessions_figures "$1" "$LOGS/sessions.$1.out"
	say "sessions $1: recovery p50 ${FIG[sess.p50.$1]} ms, keepalive ${FIG[sess.ka.$1]} datagrams"
}

if ((QUICK)); then
	# Quick mode only: both sessions runs at once in the background (separate labs,
	# named by pid) while punch and the sendto part of shim run: their 60 s of keepalive
	# silence would otherwise take most of the budget.  Their figures are timer-bound.
	say "sessions base and head, in parallel, $SESS_N trial(s) each"
	bench_start base sessions sessions.sh -n "$SESS_N" &
	sess_base=$!
	bench_start head sessions sessions.sh -n "$SESS_N" &
	sess_head=$!
	BG_PIDS+=("$sess_base" "$sess_head")
fi

for cell in "${CELLS[@]}"; do
	next_unit
	for side in $ORDER; do
		tsv=$LOGS/punch.${cell//\//_}.$side.tsv
		: >"$tsv"
		bench "$side" "punch.${cell//\//_}" punch.sh -s auto -k "$PUNCH_K" -d "$tsv" "$cell"
		punch_figures "$side" "$cell" "$tsv"
		say "punch $cell $side: ${FIG[punch.$cell.wins.$side]} wins, median ${FIG[punch.$cell.med.$side]} ms"
	done
done

next_unit
for side in $ORDER; do
	bench "$side" shim-sendto shim.sh -p 2 -r "$SHIM_SEND_R"
	shim_send_figures "$side" "$LOGS/shim-sendto.$side.out"
	say "shim sendto $side: ${FIG[shim.ns.$side]} ns shimmed, ${FIG[shim.ns0.$side]} ns plain"
done

if ((QUICK)); then
	bench_wait "$sess_base" base sessions sessions.sh -n "$SESS_N"
	bench_wait "$sess_head" head sessions sessions.sh -n "$SESS_N"
	for side in base head; do
		sessions_figures "$side" "$LOGS/sessions.$side.out"
		say "sessions $side: recovery p50 ${FIG[sess.p50.$side]} ms, keepalive ${FIG[sess.ka.$side]} datagrams"
	done
else
	next_unit
	for side in $ORDER; do run_sessions "$side"; done
fi

next_unit
for side in $ORDER; do
	bench "$side" shim-flood shim.sh -p 1 -r "$SHIM_FLOOD_R" -t "$SHIM_SECS"
	shim_flood_figures "$side" "$LOGS/shim-flood.$side.out"
	say "shim datagrams/s $side: ratio ${FIG[shim.rx.$side]} received"
done

# --- table -------------------------------------------------------------------
ratio() { # BASE HEAD: head/base; "-" when either is not a number or base alone is 0
	awk -v b="$1" -v h="$2" 'function val(s, p) {
		if (s ~ /^[0-9.]+\/[0-9]+$/) { split(s, p, "/"); return p[2] ? p[1] / p[2] : "x" }
		return s ~ /^-?[0-9.]+$/ ? s + 0 : "x" }
		BEGIN { vb = val(b); vh = val(h)
			if (vb == "x" || vh == "x") print "-"
			else if (vb == 0) print (vh == 0 ? "same" : "-")
			else printf "%.2f\n", vh / vb }'
}

elapsed=$((SECONDS - t0))
mode="full: punch $PUNCH_K trials per cell, sessions $SESS_N recovery trials, shim sendto best of $((SHIM_SEND_R * 3 + 4)) and $SHIM_FLOOD_R rounds of $SHIM_SECS s"
((QUICK)) && mode="quick (-q): punch $PUNCH_K trials per cell, sessions $SESS_N recovery trial (base and head in parallel), shim sendto best of $((SHIM_SEND_R * 3 + 4)) and $SHIM_FLOOD_R round of $SHIM_SECS s"
table=$(
	printf '| %-50s | %12s | %12s | %9s |\n' figure "base $base_name" "head $head_name" head/base
	printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..52})" "$(printf -- '-%.0s' {1..14})" \
		"$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..11})"
	for k in "${ROWS[@]}"; do
		b=${FIG[$k.base]:--} h=${FIG[$k.head]:--}
		printf '| %-50s | %12s | %12s | %9s |\n' "${LABEL[$k]}" "$b" "$h" "$(ratio "$b" "$h")"
	done
)
echo "$table"
echo "(base = $base_sha, head = $head_sha$head_changes; $mode; took $elapsed s)"
if [[ -n $OUT ]]; then
	{
		echo
		echo "#### $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, kernel $(uname -r), base $base_name, head $head_name, $elapsed s"
		echo
		echo "$mode."
		echo
		echo "$table"
	} >>"$OUT" || die "cannot append to $OUT"
fi
if ((${#MISSING[@]})); then
	KEEP_LOGS=1
	die "figures not found in the bench output: ${MISSING[*]}"
fi

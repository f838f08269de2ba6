#!/usr/bin/env bash
# tests/fuzz/run.sh - the libFuzzer targets in build/fuzz, in three steps:
#   1. replay: every committed input of each target - its seeds
#      (tests/fuzz/corpus/NAME/) and the crashes found and fixed
#      (tests/fuzz/regress/NAME/) - runs once; any crash, leak or timeout fails.
#      A target without committed seeds fails too.
#   2. artifacts: crash inputs a fuzzing run left in build/fuzz/NAME-* run again.
#      One that still fails is a failure (the next run no longer passes by
#      chance); one that passes now is named, to be moved to tests/fuzz/regress/
#      (tests/README.md, "A fuzz crash becomes a regression input").
#   3. fuzzing: each target for FUZZ_SECONDS (20 by default; `make fuzz` sets 300,
#      `make check` 2), from its working corpus build/fuzz/corpus/NAME (kept between
#      runs) and its seeds.  FUZZ_JOBS targets run at once (default: the cores).
# Prints "ok - ..." / "not ok - ..." / "skip - ..." and ends with
# "fuzz: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${N4_BUILD:-build}
SECS=${FUZZ_SECONDS:-20}
JOBS=${FUZZ_JOBS:-$(nproc)}
pass=0
fail=0
skip=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
notok() { echo "not ok - $*"; fail=$((fail + 1)); }
finish() {
	echo "fuzz: $pass passed, $fail failed, $skip skipped"
	((fail == 0))
	exit
}
shopt -s nullglob
bins=()
for b in "$BUILD"/fuzz/fuzz_*; do # not the crash artifacts (fuzz_NAME-crash-...)
	[[ -x $b && $(basename "$b") != *-* ]] && bins+=("$b")
done
if ((${#bins[@]} == 0)); then
	if ! command -v clang >/dev/null; then
		echo "skip - needs clang with libFuzzer: no fuzz target built (tests/deps.sh installs clang)"
		skip=1
	else
		notok "no fuzz target built (make $BUILD/fuzz/fuzz_wire ...)"
	fi
	finish
fi

# Options of every run.  -max_len: the longest input worth trying; fuzz_http's is
# above the metrics endpoint's 2048-byte head limit, so the too-large path is reached.
# -detect_leaks (on by default): every input must free what it allocates.
opts_of() {
	local max_len=512
	[[ $1 == fuzz_http ]] && max_len=4096
	echo "-timeout=10 -rss_limit_mb=2048 -max_len=$max_len"
}

# 1. Replay what is committed.  Given files (not directories), libFuzzer runs each
# once and stops.
for bin in "${bins[@]}"; do
	name=$(basename "$bin")
	seeds=(tests/fuzz/corpus/"$name"/*)
	regress=(tests/fuzz/regress/"$name"/*)
	if ((${#seeds[@]} == 0)); then
		notok "$name has no committed seeds in tests/fuzz/corpus/$name (tests/fuzz/seeds.sh)"
		continue
	fi
	log=$(mktemp)
	# shellcheck disable=SC2046
	if "$bin" $(opts_of "$name") "${seeds[@]}" "${regress[@]}" >"$log" 2>&1; then
		ok "$name: replayed ${#seeds[@]} seeds and ${#regress[@]} regression inputs"
	else
		notok "$name: a committed input fails:"
		grep -E "Running:|ERROR|SUMMARY" "$log" | tail -n 6 | sed 's/^/# /'
	fi
	rm -f "$log"
done

# 2. Crash, leak, timeout and out-of-memory inputs left by earlier runs.
for bin in "${bins[@]}"; do
	name=$(basename "$bin")
	for art in "$BUILD/fuzz/$name"-{crash,leak,timeout,oom}-*; do
		# shellcheck disable=SC2046
		if "$bin" $(opts_of "$name") "$art" >/dev/null 2>&1; then
			echo "# $art passes now: keep it as a regression input (tests/README.md):"
			echo "#   mkdir -p tests/fuzz/regress/$name && mv $art tests/fuzz/regress/$name/ && git add tests/fuzz/regress/$name"
		else
			notok "$name: $art still fails (fix it, then keep it in tests/fuzz/regress/$name/)"
		fi
	done
done

# 3. Fuzz.
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# fuzz_one BIN: its verdict in $out/NAME.res (first line ok / not ok).
fuzz_one() {
	local bin=$1 name corpus log
	name=$(basename "$bin")
	corpus=$BUILD/fuzz/corpus/$name
	mkdir -p "$corpus"
	local seeds=()
	[[ -d tests/fuzz/corpus/$name ]] && seeds=("tests/fuzz/corpus/$name")
	log=$out/$name.log
	# shellcheck disable=SC2046
	if "$bin" -max_total_time="$SECS" $(opts_of "$name") -print_final_stats=1 \
		-artifact_prefix="$BUILD/fuzz/$name-" "$corpus" "${seeds[@]}" >"$log" 2>&1; then
		echo "ok - $name: $(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$') runs in ${SECS} s, $(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)" >"$out/$name.res"
	else
		{
			echo "not ok - $name (artifact in $BUILD/fuzz/$name-*):"
			grep -E "ERROR|SUMMARY|==[0-9]+==" "$log" | head -20
		} >"$out/$name.res"
	fi
}
# As many targets at once as there are cores: each is one process, and the
# verdicts are printed in order once all are done.
running=0
for bin in "${bins[@]}"; do
	if ((running >= JOBS)); then
		wait -n
		running=$((running - 1))
	fi
	fuzz_one "$bin" &
	running=$((running + 1))
done
wait
for bin in "${bins[@]}"; do
	name=$(basename "$bin")
	if [[ -s $out/$name.res ]] && head -n 1 "$out/$name.res" | grep -q '^ok - '; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
	fi
	cat "$out/$name.res" 2>/dev/null || echo "not ok - $name: no verdict"
done
finish

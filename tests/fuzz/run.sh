#!/usr/bin/env bash
# tests/fuzz/run.sh - run every libFuzzer target in build/fuzz for FUZZ_SECONDS each
# (20 by default; `make fuzz` sets 300).  The working corpus is build/fuzz/corpus/NAME
# (kept between runs); seeds committed in tests/fuzz/corpus/NAME, if any, are read.
# FUZZ_JOBS targets run at once (default: the number of cores).  Prints "ok - NAME" /
# "not ok - NAME" and ends with "fuzz: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${N4_BUILD:-build}
SECS=${FUZZ_SECONDS:-20}
JOBS=${FUZZ_JOBS:-$(nproc)}
pass=0
fail=0
shopt -s nullglob
bins=()
for b in "$BUILD"/fuzz/fuzz_*; do # not the crash artifacts (fuzz_NAME-crash-...)
	[[ -x $b && $(basename "$b") != *-* ]] && bins+=("$b")
done
if ((${#bins[@]} == 0)); then
	echo "not ok - no fuzz target built (make $BUILD/fuzz/fuzz_wire ...)"
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi
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
	# -detect_leaks: every input must free what it allocates.
	if "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=512 \
		-print_final_stats=1 -artifact_prefix="$BUILD/fuzz/$name-" "$corpus" "${seeds[@]}" >"$log" 2>&1; then
		echo "ok - $name: $(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$') runs in ${SECS} s" >"$out/$name.res"
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
echo "fuzz: $pass passed, $fail failed"
((fail == 0))

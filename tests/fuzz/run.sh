#!/usr/bin/env bash
# tests/fuzz/run.sh - run every libFuzzer target in build/fuzz for FUZZ_SECONDS each
# (20 by default; `make fuzz` sets 300).  The working corpus is build/fuzz/corpus/NAME
# (kept between runs); seeds committed in tests/fuzz/corpus/NAME, if any, are read.  Prints "ok - NAME" / "not ok - NAME" and ends with
# "fuzz: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${N4_BUILD:-build}
SECS=${FUZZ_SECONDS:-20}
pass=0
fail=0
shopt -s nullglob
bins=("$BUILD"/fuzz/fuzz_*)
if ((${#bins[@]} == 0)); then
	echo "not ok - no fuzz target built (make $BUILD/fuzz/fuzz_wire ...)"
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi
for bin in "${bins[@]}"; do
	name=$(basename "$bin")
	corpus=$BUILD/fuzz/corpus/$name
	mkdir -p "$corpus"
	seeds=()
	[[ -d tests/fuzz/corpus/$name ]] && seeds=("tests/fuzz/corpus/$name")
	log=$(mktemp)
	# -detect_leaks: every input must free what it allocates.
	if "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=512 \
		-print_final_stats=1 -artifact_prefix="$BUILD/fuzz/$name-" "$corpus" "${seeds[@]}" >"$log" 2>&1; then
		echo "ok - $name: $(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$') runs in ${SECS} s"
		pass=$((pass + 1))
	else
		echo "not ok - $name (artifact in $BUILD/fuzz/$name-*):"
		grep -E "ERROR|SUMMARY|==[0-9]+==" "$log" | head -20
		fail=$((fail + 1))
	fi
	rm -f "$log"
done
echo "fuzz: $pass passed, $fail failed"
((fail == 0))

#!/usr/bin/env bash
# tests/run.sh - everything `make test` runs: unit tests (ASan+UBSan), a short fuzz run,
# server tests on loopback, and the NAT lab tests.  Each suite prints
# "NAME: N passed, N failed"; this adds them up and ends with the same kind of line.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${N4_BUILD:-build}
export N4_BUILD=$BUILD

total_pass=0
total_fail=0
failed_suites=()

run_suite() { # name, command...
	local name=$1
	shift
	local log
	log=$(mktemp)
	echo "=== $name"
	local start=$SECONDS
	timeout --kill-after=10 600 "$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	local line p f
	line=$(grep -E '^[A-Za-z_-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [[ -n $line ]]; then
		p=$(sed -E 's/^[^:]+: ([0-9]+) passed, ([0-9]+) failed.*/\1/' <<<"$line")
		f=$(sed -E 's/^[^:]+: ([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$line")
	else
		p=0
		f=0
	fi
	if ((rc != 0 && f == 0)); then
		echo "!!! $name exited with status $rc without reporting a failure: counted as one"
		f=1
	fi
	((total_pass += p, total_fail += f))
	((f > 0)) && failed_suites+=("$name")
	echo "=== $name: $p passed, $f failed ($((SECONDS - start)) s)"
	rm -f "$log"
}

run_suite unit "$BUILD/tests/unit"

if [[ -x tests/fuzz/run.sh ]]; then
	run_suite fuzz env FUZZ_SECONDS="${FUZZ_SECONDS:-8}" tests/fuzz/run.sh
fi

for t in tests/server/test_*.sh; do
	[[ -e $t ]] || continue
	run_suite "$(basename "$t" .sh)" bash "$t"
done

# Packaging: builds, installs and purges the Debian packages (needs root).
for t in tests/pkg/test_*.sh; do
	[[ -e $t ]] || continue
	run_suite "$(basename "$t" .sh)" bash "$t"
done

# The lab needs root and network namespaces.  Without them the run fails loudly:
# a green result must mean the NAT claims were actually checked.
lab_ok=1
if [[ $(id -u) -ne 0 ]]; then
	echo "!!! LAB TESTS NEED ROOT AND NETWORK NAMESPACES: not running as root"
	lab_ok=0
elif ! ip netns add "n4-probe-$$" 2>/dev/null; then
	echo "!!! LAB TESTS NEED ROOT AND NETWORK NAMESPACES: 'ip netns add' failed"
	lab_ok=0
else
	ip netns del "n4-probe-$$"
fi
if ((lab_ok)); then
	for t in tests/lab/test_*.sh; do
		[[ -e $t ]] || continue
		run_suite "$(basename "$t" .sh)" bash "$t"
	done
else
	((total_fail += 1))
	failed_suites+=("lab (not run)")
fi

echo
if ((${#failed_suites[@]})); then
	echo "FAILED: ${failed_suites[*]}"
fi
echo "tests: $total_pass passed, $total_fail failed"
((total_fail == 0))

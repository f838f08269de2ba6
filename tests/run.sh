#!/usr/bin/env bash
# tests/run.sh - runs the test suites and adds up their results.
#
#   tests/run.sh            the full run (`make test`): everything, as root
#   tests/run.sh --check    what needs no root (`make check`): unit, fuzz smoke,
#                           server suites, loopback shim suites, docs
#   tests/run.sh [--check] SUITE...   only these (paths, or "unit", "fuzz")
#
# The protocol a suite follows (tests/README.md):
#   - one line per case, "ok - ..." or "not ok - ...";
#   - "skip - REASON" for each case it could not run, REASON saying what is missing
#     ("needs root: ...", "needs clang: ...", "valgrind not installed: ...");
#   - last, "NAME: N passed, N failed" (", N skipped" may follow);
#   - exit status 0 only when nothing failed.
# A suite that reports 0 passed and 0 failed ran nothing: that is a skip too.
# Skips are counted and shown.  Only the classes of skip listed in allowed_skip
# pass: "needs root" and "needs clang" in --check, none in the full run, where a
# fresh Debian 12 machine with tests/deps.sh run as root has everything.  Any other
# skip fails the run.  N4_ALLOW_SKIP (an extended regex on REASON) adds to the list,
# e.g. on a CI runner that cannot create network namespaces.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${N4_BUILD:-build}
export N4_BUILD=$BUILD

mode=full
if [[ ${1:-} == --check ]]; then
	mode=check
	shift
fi

total_pass=0
total_fail=0
total_skip=0
failed_suites=()
skip_lines=()

# allowed_skip REASON: whether this run may skip for REASON.
allowed_skip() {
	if [[ $mode == check ]] && [[ $1 =~ ^needs\ (root|clang) ]]; then
		return 0
	fi
	[[ -n ${N4_ALLOW_SKIP:-} ]] && [[ $1 =~ $N4_ALLOW_SKIP ]]
}

# note_skip NAME REASON: count one skip; one that is not allowed fails the suite.
# Returns 1 for a skip that is not allowed.
note_skip() {
	local name=$1 reason=$2
	((total_skip += 1))
	skip_lines+=("$name: $reason")
	if allowed_skip "$reason"; then
		return 0
	fi
	echo "!!! $name skipped \"$reason\": not allowed in the $mode run (install what is missing: tests/deps.sh)"
	return 1
}

# tally NAME LOG RC SECONDS: count what the suite's output says.
tally() {
	local name=$1 log=$2 rc=$3 secs=$4
	local line p=0 f=0 s=0 declared=0 bad=0 reason
	line=$(grep -E '^[A-Za-z0-9_-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [[ -n $line ]]; then
		p=$(sed -E 's/^[^:]+: ([0-9]+) passed.*/\1/' <<<"$line")
		f=$(sed -E 's/^[^:]+: [0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")
		[[ $line =~ ,\ ([0-9]+)\ skipped ]] && declared=${BASH_REMATCH[1]}
	fi
	while IFS= read -r reason; do
		((s += 1))
		note_skip "$name" "$reason" || ((bad += 1))
	done < <(sed -n 's/^skip - //p' "$log")
	if ((declared > s)); then # counted by the suite without a reason line
		for ((; s < declared; s++)); do
			note_skip "$name" "unnamed skip" || ((bad += 1))
		done
	fi
	if ((p == 0 && f == 0 && s == 0 && rc == 0)); then
		s=1
		note_skip "$name" "ran nothing (0 passed, 0 failed)" || ((bad += 1))
	fi
	if ((rc != 0 && f == 0)); then
		echo "!!! $name exited with status $rc without reporting a failure: counted as one"
		f=1
	fi
	((f += bad))
	((total_pass += p, total_fail += f))
	((f > 0)) && failed_suites+=("$name")
	echo "=== $name: $p passed, $f failed, $s skipped ($secs s)"
}

# run_suite NAME CMD...: run one suite now, its output shown as it comes.
run_suite() {
	local name=$1
	shift
	local log start=$SECONDS
	log=$(mktemp)
	echo "=== $name"
	timeout --kill-after=10 600 "$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	tally "$name" "$log" "$rc" $((SECONDS - start))
	rm -f "$log"
}

# The suites that need no root run on loopback: each gets a network namespace of its
# own (unshare -rn: a user namespace makes it without root), with lo up (127.0.0.1
# and ::1), so no port of theirs meets another suite's or another run's (a server
# on port 0 takes the UDP port of its TCP one: a loopback full of other suites'
# sockets made it fail).  Without namespaces they run as they are, one at a time.
netns=()
if unshare -rn true 2>/dev/null; then
	netns=(unshare -rn)
elif [[ $(id -u) -eq 0 ]] && unshare -n true 2>/dev/null; then
	netns=(unshare -n)
fi
# The command prefix that runs a suite in such a namespace (none without one).
((${#netns[@]})) && netns+=(bash -c 'ip link set lo up && exec "$@"' in_netns)

# They mostly wait on sockets and timers, so they run N4_TEST_JOBS at once (3 in
# make check, 2 in the full run), each into its own log, printed in order once all
# are done.  The lab suites too, N4_LAB_JOBS at once (2): each has namespaces of its
# own, and they mostly wait (a full run measured 40 % of one core busy).
jobs_max=${N4_TEST_JOBS:-$([[ $mode == check ]] && echo 3 || echo 2)}
lab_jobs=${N4_LAB_JOBS:-2}
loop_jobs=$jobs_max
if ((!${#netns[@]} && jobs_max > 1)); then
	echo "# no network namespaces (unshare -rn): the loopback suites run one at a time"
	jobs_max=1
	loop_jobs=1
fi
pool=$(mktemp -d)
trap 'rm -rf "$pool"' EXIT
pooled=()
pool_running=0

# pool_suite NAME CMD...: start the suite (or run it now with one job at a time).
pool_suite() {
	local name=$1
	shift
	if ((jobs_max <= 1)); then
		run_suite "$name" "$@"
		return
	fi
	if ((pool_running >= jobs_max)); then
		wait -n
		((pool_running -= 1))
	fi
	(
		start=$SECONDS
		timeout --kill-after=10 600 "$@" >"$pool/$name.log" 2>&1
		echo "$? $((SECONDS - start))" >"$pool/$name.rc"
	) &
	((pool_running += 1))
	pooled+=("$name")
}

# pool_report: wait for the pooled suites and report them in the order they started.
pool_report() {
	local name rc secs
	wait
	pool_running=0
	for name in "${pooled[@]}"; do
		echo "=== $name"
		cat "$pool/$name.log"
		read -r rc secs <"$pool/$name.rc" 2>/dev/null || {
			rc=1
			secs=?
		}
		tally "$name" "$pool/$name.log" "$rc" "$secs"
	done
	pooled=()
}

# skip_suite NAME REASON: a suite this run does not start.
skip_suite() {
	echo "=== $1: skipped ($2)"
	if ! note_skip "$1" "$2"; then
		((total_fail += 1))
		failed_suites+=("$1")
	fi
}

# Root suites: the NAT lab (namespaces, nftables) and the package install.
needs_root() {
	[[ $1 == tests/lab/* || $1 == tests/pkg/test_deb.sh ]]
}

# The suites that load both cores (thousands of clients, ASan servers under attack)
# run alone: beside others, their deadlines and the others' would be missed.
runs_alone() {
	[[ $1 == tests/server/test_load.sh || $1 == tests/server/test_hostile.sh ]]
}

# Lab suites that time punches and recoveries to tens of milliseconds (a win in the
# first round, a path back within 5 s) run alone too; the rest of the lab, two at a
# time.  The calls through the shim's flows (a flow answered within 5 s, 5 of 8 s of
# audio) passed side by side, test_shim_flows beside test_sip_nat, so they share, and
# so does test_shim_ipv6 (a recovery within 15 s).
lab_alone() {
	case $1 in
	*/test_strategies.sh | */test_punch.sh | */test_shim_sessions.sh | */test_shim_host.sh | \
		*/test_lan.sh | */test_lab_trust.sh | */test_ipv6_punch.sh) return 0 ;;
	esac
	return 1
}

# can_root: root, and network namespaces can be made (the lab's own probe).
can_root() {
	[[ $(id -u) -eq 0 ]] || {
		root_why="not root (uid $(id -u))"
		return 1
	}
	if ! ip netns add "n4-probe-$$" 2>/dev/null; then
		root_why="'ip netns add' failed"
		return 1
	fi
	ip netns del "n4-probe-$$"
}

# The suites in the order they run; the name printed is the file's, without .sh, and
# must be unique (tests/README.md: each says its layer).
shopt -s nullglob
if (($#)); then
	suites=("$@")
else
	suites=()
	for t in unit fuzz tests/server/test_*.sh tests/shim/test_*.sh tests/pkg/test_*.sh; do
		needs_root "$t" || runs_alone "$t" || suites+=("$t")
	done
	for t in tests/server/test_*.sh; do # then the heavy ones
		runs_alone "$t" && suites+=("$t")
	done
	for t in tests/pkg/test_*.sh; do # root suites last
		needs_root "$t" && suites+=("$t")
	done
	# The lab: the timing suites alone, then the rest two at a time.
	for t in tests/lab/test_*.sh; do
		lab_alone "$t" && suites+=("$t")
	done
	for t in tests/lab/test_*.sh; do
		lab_alone "$t" || suites+=("$t")
	done
fi
declare -A seen=()
for t in "${suites[@]}"; do
	n=$(basename "$t" .sh)
	if [[ -n ${seen[$n]:-} ]]; then
		echo "!!! two suites are named $n: ${seen[$n]} and $t (rename one: tests/README.md)"
		exit 1
	fi
	seen[$n]=$t
done

# The IPv6 cases of the server suites need ::1, which some images turn off.
if [[ $(id -u) -eq 0 && $(cat /proc/sys/net/ipv6/conf/lo/disable_ipv6 2>/dev/null) == 1 ]]; then
	echo "# enabling IPv6 on lo for the IPv6 cases (net.ipv6.conf.lo.disable_ipv6=0)"
	sysctl -qw net.ipv6.conf.lo.disable_ipv6=0 || echo "!!! could not enable IPv6 on lo"
fi

root_checked=0
root_ok=0
root_why=
for t in "${suites[@]}"; do
	name=$(basename "$t" .sh)
	if [[ $t == unit ]]; then
		pool_suite unit "${netns[@]}" "$BUILD/tests/unit"
	elif [[ $t == fuzz ]]; then
		# One fuzz target per core in the full run; in the pool, one in all.
		fuzz_jobs=${FUZZ_JOBS:-$( ((jobs_max > 1)) && echo 1 || nproc)}
		if [[ $mode == check ]]; then
			pool_suite fuzz env FUZZ_JOBS="$fuzz_jobs" FUZZ_SECONDS="${FUZZ_SECONDS:-1}" tests/fuzz/run.sh
		else
			pool_suite fuzz env FUZZ_JOBS="$fuzz_jobs" FUZZ_SECONDS="${FUZZ_SECONDS:-8}" tests/fuzz/run.sh
		fi
	elif needs_root "$t"; then
		if [[ $mode == check ]]; then
			pool_report
			skip_suite "$name" "needs root: make check runs no root suite"
			continue
		fi
		if ((!root_checked)); then
			root_checked=1
			can_root && root_ok=1
		fi
		if ((!root_ok)); then
			pool_report
			skip_suite "$name" "needs root and network namespaces: $root_why"
		elif [[ $t == tests/lab/* ]] && ! lab_alone "$t"; then
			((jobs_max == lab_jobs)) || pool_report
			jobs_max=$lab_jobs
			pool_suite "$name" bash "$t"
		else
			pool_report # the package install and the timing suites run alone
			run_suite "$name" bash "$t"
		fi
	elif [[ -f $t ]] && runs_alone "$t"; then
		pool_report
		run_suite "$name" "${netns[@]}" bash "$t"
	elif [[ -f $t ]]; then
		((jobs_max == loop_jobs)) || pool_report
		jobs_max=$loop_jobs
		pool_suite "$name" "${netns[@]}" bash "$t"
	else
		echo "!!! no such suite: $t"
		((total_fail += 1))
		failed_suites+=("$t")
	fi
done
pool_report

echo
# One line per reason, with the suites that gave it.
if ((${#skip_lines[@]})); then
	printf '%s\n' "${skip_lines[@]}" | awk '{
		i = index($0, ": "); n = substr($0, 1, i - 1); r = substr($0, i + 2)
		if (!(r in who)) order[++k] = r
		who[r] = who[r] " " n
	} END { for (j = 1; j <= k; j++) printf "SKIPPED (%s):%s\n", order[j], who[order[j]] }'
fi
if ((${#failed_suites[@]})); then
	echo "FAILED: ${failed_suites[*]}"
fi
echo "tests: $total_pass passed, $total_fail failed, $total_skip skipped"
((total_fail == 0))

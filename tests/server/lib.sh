# tests/server/lib.sh - helpers for the server tests (sourced, not run): start a
# server on a free port, ask it for its status, poll for states instead of sleeping,
# count results.  Every test prints "ok - ..." / "not ok - ..." and ends with
# "server: N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${N4_BUILD:-build}
TMP=$(mktemp -d "/tmp/n4-server-test.$$.XXXX")
PASS=0
FAIL=0
SPID=
SPORT=
SLOG=

cleanup() {
	[[ -n ${SPID:-} ]] && kill -9 "$SPID" 2>/dev/null
	jobs -p | xargs -r kill 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

ok() { echo "ok - $*"; PASS=$((PASS + 1)); }
notok() { echo "not ok - $*"; FAIL=$((FAIL + 1)); }
check() { # description, command...
	local d=$1
	shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}
finish() {
	echo "server: $PASS passed, $FAIL failed"
	((FAIL == 0))
}

# wait_until TIMEOUT_S COMMAND...: poll every 50 ms until COMMAND succeeds.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS >= end)) && return 1
		sleep 0.05
	done
}

need_bins() {
	make -s "$BUILD/n4" "$BUILD/tests/loadgen" "$BUILD/tests/hostile" >/dev/null || exit 1
}

# The server built with ASan+UBSan, from the same objects the unit tests use.
san_n4() {
	local objs
	objs=($(ls cli/*.c | sed 's/\.c$//'))
	local lib
	lib=$(ls lib/*.c | sed 's/\.c$//')
	make -s $(printf "$BUILD/san/%s.o " "${objs[@]}" $lib) >/dev/null || return 1
	cc -fsanitize=address,undefined -o "$BUILD/san/n4" $(printf "$BUILD/san/%s.o " "${objs[@]}" $lib) -lpthread ||
		return 1
	echo "$BUILD/san/n4"
}

# sanitized BINARY: BINARY carries ASan and UBSan, so that "no sanitizer report" is a
# statement about a run that could have made one.
sanitized() {
	local syms
	syms=$(nm "$1" 2>/dev/null) || return 1
	grep -q __asan_init <<<"$syms" && grep -q __ubsan_ <<<"$syms"
}

# start_server BINARY [ARGS...]: SPID, SPORT, SLOG.
start_server() {
	local bin=$1
	shift
	SLOG=$TMP/server.$RANDOM.log
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$bin" -s -l 0 "$@" 2>"$SLOG" &
	SPID=$!
	if ! wait_until 10 grep -q "serving on" "$SLOG"; then
		echo "server did not start:"
		cat "$SLOG"
		return 1
	fi
	SPORT=$(grep -o 'port [0-9]*' "$SLOG" | head -1 | cut -d' ' -f2)
}

# status: the server's next status line (SIGUSR1), printed.
status() {
	local before
	before=$(grep -c "status: " "$SLOG")
	kill -USR1 "$SPID" || return 1
	wait_until 5 bash -c "(( \$(grep -c 'status: ' '$SLOG') > $before ))" || return 1
	grep "status: " "$SLOG" | tail -1 | sed 's/.*status: //'
}

# stat NAME: one counter of a fresh status line.
stat() {
	status | tr ' ' '\n' | sed -n "s/^$1=//p"
}

fd_count() { ls /proc/"$SPID"/fd | wc -l; }

stop_server() { # -> exit status of the server
	kill -TERM "$SPID"
	wait "$SPID"
	local rc=$?
	SPID=
	return $rc
}

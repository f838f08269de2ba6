#!/usr/bin/env bash
# Installs the Debian packages the NAT lab tests, the demo and the benchmarks need.
# Idempotent: silent and quick when everything is present; apt-get update runs only
# when something is missing.
set -euo pipefail

packages=(
	nftables iproute2 conntrack socat netcat-openbsd iptables tcpdump
	libnetfilter-queue-dev libmnl-dev clang libclang-rt-14-dev procps psmisc
	dpkg-dev debhelper lintian pkgconf curl prometheus jq
)

# The server suites' leak check (test_ops.sh runs the server under valgrind) and the
# man pages' rendering check (tests/pkg/test_docs.sh): without them these were
# skipped, and a skip fails `make test` (tests/run.sh).
packages+=(valgrind man-db)

# Real programs the shim is tested with (tests/lab/test_apps_*.sh, examples/).
packages+=(
	openvpn mosh gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
	iputils-ping
)
# chocolate-server hosts a room and chocolate-doom joins it (test_apps_doom.sh,
# examples/doom-host.sh); Freedoom's IWAD lets the client start (only a Recommends of
# chocolate-doom, which --no-install-recommends leaves out).
packages+=(chocolate-doom freedoom)

# SIP calls (tests/lab/sip_lib.sh, test_sip_*.sh): baresip-core holds the program and
# every module the tests load (g711, ausine, sndfile, menu, ctrl_tcp); the `baresip`
# metapackage adds only recommends (GTK, X11, FFmpeg, GStreamer front-ends and codecs),
# which --no-install-recommends would skip anyway.
packages+=(baresip-core)

die() {
	printf 'deps.sh: %s\n' "$*" >&2
	exit 1
}

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian/Ubuntu only; install by hand: ${packages[*]}"

missing=()
for pkg in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[[ "$status" == installed ]] || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

printf 'deps.sh: installing missing packages: %s\n' "${missing[*]}" >&2
[[ "$(id -u)" == 0 ]] || die "need root to install: ${missing[*]} (run: sudo $0)"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! apt-get update -qq >"$log" 2>&1; then
	cat "$log" >&2
	die "apt-get update failed"
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
	cat "$log" >&2
	die "apt-get install failed for: ${missing[*]}"
fi

for pkg in "${missing[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[[ "$status" == installed ]] || die "package $pkg still not installed after apt-get"
done

#!/usr/bin/env bash
# test_deb.sh - the Debian packages: build them from a copy of the tree with
# dpkg-buildpackage, lintian finds no error, install them, run the installed
# n4 and n4shim (a server and two clients on loopback, a program through the
# shim, a program built against libn4-dev with pkg-config), then purge and
# check that nothing is left behind.  Needs root (it installs packages); refuses
# to touch an n4 package that it did not install itself.
set -uo pipefail
cd "$(dirname "$0")/../.."
SRC=$PWD
TMP=$(mktemp -d "/tmp/n4-pkg-test.$$.XXXX")
PASS=0
FAIL=0
INSTALLED=0
SPID=
APT=(apt-get -y -qq -o DPkg::Lock::Timeout=300)

ok() { echo "ok - $*"; PASS=$((PASS + 1)); }
notok() { echo "not ok - $*"; FAIL=$((FAIL + 1)); }
check() { # description, command...
	local d=$1
	shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}
finish() {
	echo "pkg: $PASS passed, $FAIL failed"
	((FAIL == 0))
	exit
}
cleanup() {
	[[ -n $SPID ]] && kill -9 "$SPID" 2>/dev/null
	((INSTALLED)) && DEBIAN_FRONTEND=noninteractive "${APT[@]}" purge n4 libn4-dev >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT

# wait_until TIMEOUT_S COMMAND...: poll every 50 ms until COMMAND succeeds.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS >= end)) && return 1
		sleep 0.05
	done
}

installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }

if [[ $(id -u) -ne 0 ]]; then
	notok "needs root to install the packages"
	finish
fi
for tool in dpkg-buildpackage dh lintian apt-get; do
	command -v "$tool" >/dev/null || { notok "$tool missing (tests/deps.sh installs it)"; finish; }
done
if installed n4 || installed libn4-dev; then
	notok "an n4 package is already installed on this machine: not touching it"
	finish
fi

VERSION=$(sed -n 's/^VERSION *:= *//p' Makefile)
# ---- build from a copy: dpkg-buildpackage writes its results next to the tree
mkdir -p "$TMP/src/n4"
if git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files -co --exclude-standard | grep -v -e '^build/' -e '^debian/build/' |
		tar -cf - -T - | tar -xf - -C "$TMP/src/n4"
else
	tar -cf - --exclude=./build --exclude=./debian/build . | tar -xf - -C "$TMP/src/n4"
fi
start=$SECONDS
(cd "$TMP/src/n4" && DEB_BUILD_OPTIONS="parallel=2 nocheck" dpkg-buildpackage -us -uc -b) \
	>"$TMP/build.log" 2>&1
rc=$?
check "dpkg-buildpackage -us -uc -b succeeds ($((SECONDS - start)) s)" [ "$rc" = 0 ]
((rc)) && { tail -30 "$TMP/build.log"; finish; }
DEB_N4=$(ls "$TMP"/src/n4_"$VERSION"_*.deb 2>/dev/null | head -1)
DEB_DEV=$(ls "$TMP"/src/libn4-dev_"$VERSION"_*.deb 2>/dev/null | head -1)
check "the package version is the Makefile's VERSION ($VERSION)" [ -n "$DEB_N4" -a -n "$DEB_DEV" ]
[[ -n $DEB_N4 && -n $DEB_DEV ]] || finish

lintian --fail-on error "$TMP"/src/n4_"$VERSION"_*.changes >"$TMP/lintian.log" 2>&1
rc=$?
sed 's/^/# /' "$TMP/lintian.log" | grep -v "root privileges"
check "lintian reports no error" [ "$rc" = 0 ]

# ---- install
touch "$TMP/before-install"
DEBIAN_FRONTEND=noninteractive "${APT[@]}" install "$DEB_N4" "$DEB_DEV" >"$TMP/apt.log" 2>&1
rc=$?
INSTALLED=1
check "both packages install" [ "$rc" = 0 ]
((rc)) && { cat "$TMP/apt.log"; finish; }
dpkg -L n4 libn4-dev | sort -u >"$TMP/files"
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

check "n4 --version prints $VERSION" [ "$(/usr/bin/n4 --version)" = "n4 $VERSION" ]
check "n4shim --version prints $VERSION" [ "$(/usr/bin/n4shim --version)" = "n4shim $VERSION" ]
check "libn4shim.so is in the multiarch directory /usr/lib/$MA" [ -f "/usr/lib/$MA/libn4shim.so" ]
check "n4shim -- true runs the program (exit 0)" env N4_SERVER=127.0.0.1 /usr/bin/n4shim -- true
pre=$(N4_SERVER=127.0.0.1 /usr/bin/n4shim -- /bin/sh -c 'echo "$LD_PRELOAD"')
check "n4shim preloads the packaged library ($pre)" [ "$pre" = "/usr/lib/$MA/libn4shim.so" ]
for m in man1/n4.1 man1/n4shim.1 man3/libn4.3; do
	check "man page $m is installed" [ -f "/usr/share/man/$m.gz" ]
done
check "the systemd unit is installed" [ -f /lib/systemd/system/n4-server.service ]
check "the unit runs /usr/bin/n4 with the options of /etc/default/n4" \
	grep -q '^ExecStart=/usr/bin/n4 -s $N4_SERVER_OPTS' /lib/systemd/system/n4-server.service
check "the unit keeps the example's hardening" \
	bash -c "grep -q '^DynamicUser=yes' /lib/systemd/system/n4-server.service &&
		grep -q '^NoNewPrivileges=yes' /lib/systemd/system/n4-server.service &&
		grep -q '^ProtectSystem=strict' /lib/systemd/system/n4-server.service"
check "the unit is not enabled" bash -c '! ls /etc/systemd/system/*.wants/n4-server.service 2>/dev/null | grep -q .'
check "/etc/default/n4 is a conffile" bash -c "dpkg-query -W -f='\${Conffiles}' n4 | grep -q /etc/default/n4"

# libn4-dev: a program built with pkg-config against the installed header and library
cat >"$TMP/use.c" <<'EOF'
#include <n4.h>
#include <stdio.h>
int main(void)
{
	struct n4_client_cfg cfg;
	char why[128];
	n4_client_cfg_init(&cfg);
	cfg.server_host = "127.0.0.1";
	if (n4_client_cfg_check(&cfg, why, sizeof(why)) != 0)
		return 1;
	/* The path rules are installed too: a won path keeps itself alive. */
	struct n4_path_cfg pc;
	n4_path_cfg_init(&pc);
	n4_path *p = n4_path_new(&pc);
	if (!p)
		return 1;
	n4_path_won(p, 1000, false, 0, 0);
	unsigned a = n4_path_tick(p, 1000 + 1000u * pc.keepalive_s, 0, 0, NULL);
	n4_path_free(p);
	if (!(a & N4_PATH_KEEPALIVE))
		return 1;
	printf("%u\n", cfg.server_port);
	return 0;
}
EOF
if command -v pkg-config >/dev/null; then
	# shellcheck disable=SC2046
	cc -o "$TMP/use" "$TMP/use.c" $(pkg-config --cflags --libs libn4) 2>"$TMP/cc.log"
	check "a program builds against libn4-dev with pkg-config and runs (client config, path rules)" \
		bash -c "[ \"\$('$TMP/use')\" = 1721 ]"
else
	notok "pkg-config missing (tests/deps.sh installs pkgconf)"
fi

# A server and two clients on loopback, all from the installed files.
/usr/bin/n4 -s -l 0 --metrics 127.0.0.1:0 2>"$TMP/server.log" &
SPID=$!
if wait_until 10 grep -q "serving on" "$TMP/server.log"; then
	port=$(grep -o 'serving on TCP and UDP port [0-9]*' "$TMP/server.log" | grep -o '[0-9]*$')
	/usr/bin/n4 -c -h 127.0.0.1 -p "$port" -a pkgt -b 0 -t 20 --json >"$TMP/a.json" 2>"$TMP/a.log" &
	a=$!
	/usr/bin/n4 -c -h 127.0.0.1 -p "$port" -a pkgt -b 0 -t 20 --json >"$TMP/b.json" 2>"$TMP/b.log"
	rb=$?
	wait "$a"
	ra=$?
	check "two installed clients punch through the installed server (status $ra, $rb)" \
		[ "$ra" = 0 -a "$rb" = 0 ]
	check "both report the WIN in JSON" bash -c "grep -q '\"outcome\":\"win\"' '$TMP/a.json' &&
		grep -q '\"outcome\":\"win\"' '$TMP/b.json'"
	kill -TERM "$SPID"
	wait "$SPID"
	rc=$?
	SPID=
	check "the installed server stops cleanly on SIGTERM (status $rc)" [ "$rc" = 0 ]
else
	notok "the installed server did not start"
	cat "$TMP/server.log"
fi

# ---- purge: nothing may be left behind
DEBIAN_FRONTEND=noninteractive "${APT[@]}" purge n4 libn4-dev >"$TMP/apt.log" 2>&1
rc=$?
check "both packages purge" [ "$rc" = 0 ]
INSTALLED=0
check "dpkg knows neither package any more" bash -c "! dpkg-query -W -f='\${db:Status-Status}' n4 libn4-dev 2>/dev/null | grep -q installed"
left=()
while read -r f; do
	[[ -e $f && ! -d $f ]] && left+=("$f")
done <"$TMP/files"
for d in /etc/default/n4 /usr/share/doc/n4 /usr/share/doc/libn4-dev "/usr/lib/$MA/pkgconfig/libn4.pc"; do
	[[ -e $d ]] && left+=("$d")
done
left+=($(find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
	/etc/systemd/system -name 'n4-server*' 2>/dev/null))
left+=($(ls /var/lib/dpkg/info/n4.* /var/lib/dpkg/info/libn4-dev* 2>/dev/null))
check "purge leaves nothing behind${left:+ (left: ${left[*]})}" [ "${#left[@]}" = 0 ]
finish

#!/usr/bin/env bash
# test_docs.sh - the manual pages stay in step with the programs: the options
# `n4 --help` lists are the options doc/n4.1 documents (and the same for n4shim),
# every N4_ variable the shim reads is in doc/n4shim.1, every function of lib/n4.h
# is in doc/libn4.3, the pages render without warnings, and --version prints the
# Makefile's VERSION.  Generic: options added later are compared the same way.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${N4_BUILD:-build}
PASS=0
FAIL=0

ok() { echo "ok - $*"; PASS=$((PASS + 1)); }
notok() { echo "not ok - $*"; FAIL=$((FAIL + 1)); }

make -s "$BUILD/n4" "$BUILD/n4shim" >/dev/null || { notok "build"; echo "pkg-docs: $PASS passed, $FAIL failed"; exit 1; }

# Options (-x, --long-name) in text, one per line, sorted.
options() { grep -oP -- '(?<![\w-])--?[a-zA-Z][\w-]*' | sort -u; }

# From --help: the usage lines and the option entries (lines starting with a dash).
help_options() { "$1" --help | grep -E '^(usage:|  +-| +n4)' | options; }

# From a man page: the tags of .TP entries, without font escapes.  With "feature",
# only the entries whose description starts with a [feature] mark: options of
# features still being added, which a build may lack.
man_options() {
	awk -v want="${2:-}" '
		tag { t = $0; tag = 0; desc = 1; next }
		desc { if (want == "" || $0 ~ /^\[/) print t; desc = 0 }
		/^\.TP/ { tag = 1 }' "$1" |
		sed -e 's/\\f[BIRP]/ /g' -e 's/\\-/-/g' -e 's/"/ /g' | options
}

# same_sets WHAT A_NAME A_FILE B_NAME B_FILE [B_MAY_ADD]: B may also list the
# options in the file B_MAY_ADD (features marked in the page, not in this build).
same_sets() {
	local only_a only_b
	only_a=$(comm -23 "$3" "$5" | tr '\n' ' ')
	only_b=$(comm -13 "$3" "$5" | comm -23 - "${6:-/dev/null}" | tr '\n' ' ')
	if [[ -z $only_a && -z $only_b ]]; then
		ok "$1: $2 and $4 list the same $(wc -l <"$3") options"
	else
		notok "$1: only in $2: ${only_a:-none}; only in $4: ${only_b:-none}"
	fi
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

help_options "$BUILD/n4" >"$TMP/n4.help"
man_options doc/n4.1 >"$TMP/n4.man"
man_options doc/n4.1 feature >"$TMP/n4.feat"
same_sets "n4" "--help" "$TMP/n4.help" "n4(1)" "$TMP/n4.man" "$TMP/n4.feat"

help_options "$BUILD/n4shim" >"$TMP/shim.help"
man_options doc/n4shim.1 >"$TMP/shim.man"
man_options doc/n4shim.1 feature >"$TMP/shim.feat"
same_sets "n4shim" "--help" "$TMP/shim.help" "n4shim(1)" "$TMP/shim.man" "$TMP/shim.feat"

# Every variable the shim reads, and every one its --help names, is documented.
{
	grep -ohE '"N4_[A-Z0-9_]+"' shim/*.c | tr -d '"'
	"$BUILD/n4shim" --help | grep -oE 'N4_[A-Z0-9_]+'
} | sort -u >"$TMP/vars"
missing=()
while read -r v; do
	grep -q "$v" doc/n4shim.1 || missing+=("$v")
done <"$TMP/vars"
if ((${#missing[@]} == 0)); then
	ok "n4shim(1) documents all $(wc -l <"$TMP/vars") N4_ variables the shim reads"
else
	notok "n4shim(1) lacks ${missing[*]}"
fi

# n4shim --help states, beside each N4_ variable of the option table
# (lib/opttab.c), the table's range (n4 --help and the pages: tests/unit/test_opttab.c).
"$BUILD/n4shim" --help >"$TMP/shim.text"
checked=0
missing=()
while IFS=, read -r env lo hi nz; do
	if ((nz > 0)); then range="0 or $nz-$hi"; elif ((lo < 0)); then range="$lo..$hi"; else range="$lo-$hi"; fi
	# The first line naming the variable and the lines continuing it.
	entry=$(awk -v v="$env" 'found && /^                 +[^ ]/ { print; next } found { exit }
		index($0, v) { print; found = 1 }' "$TMP/shim.text")
	grep -qF -- "$range" <<<"$entry" || missing+=("$env ($range)")
	checked=$((checked + 1))
done < <(sed -nE 's/^\s*ENTRY\(N4_OPT_[A-Z_]+, [^,]+, [^,]+, "(N4_[A-Z_0-9]+)", (-?[0-9]+), (-?[0-9]+), (-?[0-9]+),.*/\1,\2,\3,\4/p' lib/opttab.c)
if ((checked > 0 && ${#missing[@]} == 0)); then
	ok "n4shim --help states the table's range for all $checked of its N4_ variables"
else
	notok "n4shim --help lacks the table's range for ${missing[*]:-every variable (table not read)}"
fi

# n4 genkey: -o makes a new mode-600 file that -k accepts and never overwrites
# one; `> file` (umask 022) warns at once that -k will refuse it.
(
	cd "$TMP" || exit 1
	umask 022
	N4=$OLDPWD/$BUILD/n4
	"$N4" genkey -o k.o 2>k.err || exit 2
	[[ $(stat -c %a k.o) == 600 && ! -s k.err ]] || exit 3
	"$N4" keyid k.o >/dev/null 2>&1 || exit 4
	# -k takes it: the client goes on to the (closed) server port, exit 3, not 2
	"$N4" -c -h 127.0.0.1 -p 9 -k k.o -t 1 -q 2>k.run
	(($? == 3)) || exit 5
	before=$(cat k.o)
	"$N4" genkey -o k.o 2>k.err && exit 6
	grep -q "exists" k.err && [[ $(cat k.o) == "$before" ]] || exit 7
	"$N4" genkey >k.sh 2>k.err || exit 8
	[[ $(wc -l <k.err) == 1 ]] && grep -q "warning.*0644.*genkey -o" k.err || exit 9
	"$N4" keyid k.sh >/dev/null 2>&1 && exit 10
	"$N4" genkey 2>k.err | cat >/dev/null
	[[ ! -s k.err ]] || exit 11
	exit 0
)
rc=$?
if ((rc == 0)); then
	ok "n4 genkey -o: a new mode-600 key -k accepts, never overwritten; genkey > file (644) warns on one line"
else
	notok "n4 genkey -o / the > file warning (step $rc)"
fi

# Every function declared in the public header is in libn4(3).
grep -oE '\bn4_[a-z0-9_]+\(' lib/n4.h | tr -d '(' | sort -u >"$TMP/api"
missing=()
while read -r f; do
	grep -q "\\b$f\\b" doc/libn4.3 || missing+=("$f")
done <"$TMP/api"
if ((${#missing[@]} == 0)); then
	ok "libn4(3) documents all $(wc -l <"$TMP/api") functions of n4.h"
else
	notok "libn4(3) lacks ${missing[*]}"
fi
# ... and every field of struct n4_result.
sed -n '/^struct n4_result {/,/^};/p' lib/n4.h | grep -oE '[a-z_0-9]+(\[[^]]*\])?;' |
	sed 's/[[;].*//' >"$TMP/fields"
missing=()
while read -r f; do
	grep -q "$f" doc/libn4.3 || missing+=("$f")
done <"$TMP/fields"
if ((${#missing[@]} == 0)); then
	ok "libn4(3) documents all $(wc -l <"$TMP/fields") fields of struct n4_result"
else
	notok "libn4(3) lacks the n4_result fields ${missing[*]}"
fi

if command -v man >/dev/null; then
	for page in doc/*.1 doc/*.3; do
		warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
		if [[ -z $warn ]]; then ok "$page renders without warnings"; else notok "$page: $warn"; fi
	done
else
	echo "skip - man not installed: rendering not checked (tests/deps.sh installs man-db)"
fi

VERSION=$(sed -n 's/^VERSION *:= *//p' Makefile)
v=$("$BUILD/n4" --version)
if [[ $v == "n4 $VERSION" ]]; then ok "n4 --version: $v"; else notok "n4 --version: '$v', Makefile $VERSION"; fi
v=$("$BUILD/n4shim" --version)
if [[ $v == "n4shim $VERSION" ]]; then ok "n4shim --version: $v"; else notok "n4shim --version: '$v', Makefile $VERSION"; fi
v=$(sed -n '1s/^n4 (\([^)-]*\).*/\1/p' debian/changelog)
if [[ $v == "$VERSION" ]]; then ok "debian/changelog is at $VERSION"; else notok "debian/changelog at '$v', Makefile $VERSION"; fi

echo "pkg-docs: $PASS passed, $FAIL failed"
((FAIL == 0))

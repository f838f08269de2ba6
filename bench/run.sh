#!/usr/bin/env bash
# bench/run.sh - `make bench`: every benchmark, one after the other.  Not tests:
# they print measured ratios and tables and never fail a build.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
echo "== punch: classic (the original) vs auto, foundation cells; IPv6 on vs IPv4 alone"
bash "$here/punch.sh" -k "${K:-10}" || true
echo "== punch matrix: every NAT pair and path condition, IPv6 cells, heatmap in bench/matrix.png"
bash "$here/matrix.sh" || true
if [[ -n ${N4_BASE_BUILD:-} ]]; then
	echo "== crowd: a room's 8 joiners at once, against the build in N4_BASE_BUILD"
	bash "$here/crowd.sh" -n "${CROWD_RUNS:-5}" "$N4_BASE_BUILD" || true
else
	echo "== crowd: skipped (N4_BASE_BUILD: another checkout's build/ to compare with)"
fi
for b in shim server lan host calls; do
	if [[ -x $here/$b.sh || -f $here/$b.sh ]]; then
		echo "== $b"
		bash "$here/$b.sh" || true
	fi
done

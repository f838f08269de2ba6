#!/usr/bin/env bash
# bench/run.sh - `make bench`: every benchmark, one after the other.  Not tests:
# they print measured ratios and tables and never fail a build.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
echo "== punch: classic (the original) vs auto, foundation cells; IPv6 on vs IPv4 alone"
bash "$here/punch.sh" -k "${K:-10}" || true
echo "== punch matrix: every NAT pair and path condition, IPv6 cells, heatmap in bench/matrix.png"
bash "$here/matrix.sh" || true
for b in shim server lan host calls; do
	if [[ -x $here/$b.sh || -f $here/$b.sh ]]; then
		echo "== $b"
		bash "$here/$b.sh" || true
	fi
done

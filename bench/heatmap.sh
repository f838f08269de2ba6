#!/usr/bin/env bash
# bench/heatmap.sh DATAFILE PNG [SUBTITLE] - draw success per cell of the punch matrix
# (bench/punch.sh -d) as a heatmap with gnuplot: two rows per NAT pair (classic, the
# original, above auto), one column per path condition, each cell coloured by the share
# of trials won and labelled wins/trials.  Needs gnuplot (bench/deps.sh installs it).
set -uo pipefail
data=$1 png=$2 sub=${3:-}
command -v gnuplot >/dev/null || { echo "heatmap: gnuplot missing (bench/deps.sh)" >&2; exit 1; }

grid=$(mktemp)
gp=$(mktemp)
trap 'rm -f "$grid" "$gp"' EXIT
# gnuplot reads tic labels as formats: a literal % is %%
awk -F'\t' '
function cond(c,   f, n, s) {
	n = split(c, f, "/")
	s = f[3] " ms, " f[4] "/s"
	if (n >= 6 && (f[5] > 0 || f[6] > 0)) s = s ", ±" f[5] " ms, " f[6] "%%"
	return s
}
{
	split($1, f, "/")
	pair = f[1] "/" f[2]; c = cond($1)
	if (!(pair in row)) { row[pair] = nr++; rows[nr - 1] = pair }
	if (!(c in col)) { col[c] = nc++; cols[nc - 1] = c }
	pct = $4 > 0 ? 100.0 * $3 / $4 : 0
	printf "%d\t%d\t%.1f\t%d/%d\n", col[c], 2 * row[pair] + ($2 == "auto"), pct, $3, $4
}
END {
	printf "#ROWS"; for (i = 0; i < nr; i++) printf "\t%s classic\t%s auto", rows[i], rows[i]; printf "\n"
	printf "#COLS"; for (i = 0; i < nc; i++) printf "\t%s", cols[i]; printf "\n"
}' "$data" >"$grid"

tics() { awk -F'\t' -v k="$1" '$1 == k { for (i = 2; i <= NF; i++) printf "%s\"%s\" %d", (i > 2 ? ", " : ""), $i, i - 2 }' "$grid"; }
ytics=$(tics '#ROWS')
xtics=$(tics '#COLS')
nr=$(awk -F'\t' '$1 == "#ROWS" { print NF - 1 }' "$grid")
nc=$(awk -F'\t' '$1 == "#COLS" { print NF - 1 }' "$grid")
cells=$grid.cells
grep -v '^#' "$grid" >"$cells"
trap 'rm -f "$grid" "$gp" "$cells"' EXIT

cat >"$gp" <<GP
set terminal pngcairo size $((260 + nc * 58)),$((200 + nr * 16)) font "sans,9"
set output "$png"
set datafile separator "\t"
set title "n4 punch matrix: share of trials with [ WIN ] on both sides within 10 s\n{/*0.85 $sub}"
set cbrange [0:100]
set palette defined (0 "#b2182b", 50 "#f4a582", 80 "#fddbc7", 95 "#92c5de", 100 "#2166ac")
set xrange [-0.5:$nc - 0.5]
set yrange [$nr - 0.5:-0.5]
set xtics ($xtics) rotate by 50 right
set ytics ($ytics)
set tics scale 0
set cblabel "% of trials won"
set lmargin 24
set bmargin 10
unset key
plot "$cells" using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1 noborder palette, \\
     "" using 1:2:(stringcolumn(4)) with labels font ",7"
GP
gnuplot "$gp" && echo "heatmap: $png"

#!/usr/bin/env bash
# bench/heatmap.sh DATAFILE PNG [SUBTITLE] - draw success per cell of the punch matrix
# (bench/punch.sh -d) as a heatmap with gnuplot: two rows per NAT pair (classic, the
# original, above auto), one column per path condition, each cell coloured by the share
# of trials won and labelled wins/trials.  The IPv6 cells (CELL@v6, CELL@v6drop) follow
# below a line, two rows per pair: IPv4 alone (--no-ipv6) above IPv6 on, coloured by
# direct WINs and labelled with the family that won (v6, v4) and the relayed trials (rN).
# DATAFILE - reads stdin (e.g. an earlier run's data and a new one's, concatenated).
# Needs gnuplot (bench/deps.sh installs it).
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
BEGIN {
	# rows of one pair, top to bottom
	order["classic"] = 0; order["auto"] = 1; order["keyed"] = 2; order["v4"] = 3; order["v6"] = 4
	name["v4"] = "IPv4 only"; name["v6"] = "IPv6 on"
	m = 0
}
NF >= 6 {
	c = $1; kind = ""
	if (index(c, "@")) { kind = substr(c, index(c, "@") + 1); c = substr(c, 1, index(c, "@") - 1) }
	split(c, f, "/")
	pair = f[1] "/" f[2]
	if (kind == "v6") pair = pair ", v6 stateful:"
	if (kind == "v6drop") pair = pair ", v6 dropped:"
	cc = cond(c)
	if (!(pair in seen)) { seen[pair] = 1; if (kind == "") p4[n4++] = pair; else p6[n6++] = pair }
	if (!(cc in col)) { col[cc] = nc++; cols[nc - 1] = cc }
	has[pair, $2] = 1
	pct = $4 > 0 ? 100.0 * $3 / $4 : 0
	lab = $3 "/" $4
	if (kind != "") {
		if ($7 > 0 && $8 == 0) lab = lab " v6"
		else if ($8 > 0 && $7 == 0) lab = lab " v4"
		else if ($7 > 0) lab = lab " v6:" $7
		if ($9 > 0) lab = lab " r" $9
	}
	cell[m] = col[cc]; rk[m] = pair SUBSEP $2; pc[m] = pct; lb[m] = lab; m++
}
END {
	nr = 0
	for (g = 0; g < 2; g++) {
		n = g ? n6 : n4
		if (g) first6 = nr
		for (i = 0; i < n; i++) {
			pair = g ? p6[i] : p4[i]
			for (s = 0; s < 5; s++)
				for (st in order)
					if (order[st] == s && ((pair, st) in has)) {
						row[pair, st] = nr
						rows[nr++] = pair " " (st in name ? name[st] : st)
					}
		}
	}
	for (i = 0; i < m; i++) printf "%d\t%d\t%.1f\t%s\n", cell[i], row[rk[i]], pc[i], lb[i]
	printf "#ROWS"; for (i = 0; i < nr; i++) printf "\t%s", rows[i]; printf "\n"
	printf "#COLS"; for (i = 0; i < nc; i++) printf "\t%s", cols[i]; printf "\n"
	printf "#SPLIT\t%d\n", (n6 && n4) ? first6 : -1
}' "$data" >"$grid"

tics() { awk -F'\t' -v k="$1" '$1 == k { for (i = 2; i <= NF; i++) printf "%s\"%s\" %d", (i > 2 ? ", " : ""), $i, i - 2 }' "$grid"; }
ytics=$(tics '#ROWS')
xtics=$(tics '#COLS')
nr=$(awk -F'\t' '$1 == "#ROWS" { print NF - 1 }' "$grid")
nc=$(awk -F'\t' '$1 == "#COLS" { print NF - 1 }' "$grid")
split=$(awk -F'\t' '$1 == "#SPLIT" { print $2 }' "$grid")
# a line between the IPv4 matrix and the IPv6 cells
arrow=
((split > 0)) && arrow="set arrow from -0.5,$split - 0.5 to $nc - 0.5,$split - 0.5 nohead front lw 2 lc rgb \"black\""
cells=$grid.cells
grep -v '^#' "$grid" >"$cells"
trap 'rm -f "$grid" "$gp" "$cells"' EXIT

cat >"$gp" <<GP
set terminal pngcairo size $((360 + nc * 58)),$((200 + nr * 16)) font "sans,9"
set output "$png"
set datafile separator "\t"
set title "n4 punch matrix: share of trials with [ WIN ] on both sides within 10 s (IPv6 rows, below the line: direct WINs only)\n{/*0.85 $sub}"
set cbrange [0:100]
set palette defined (0 "#b2182b", 50 "#f4a582", 80 "#fddbc7", 95 "#92c5de", 100 "#2166ac")
set xrange [-0.5:$nc - 0.5]
set yrange [$nr - 0.5:-0.5]
set xtics ($xtics) rotate by 50 right
set ytics ($ytics)
set tics scale 0
set cblabel "% of trials won"
set lmargin 34
$arrow
set bmargin 10
unset key
plot "$cells" using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1 noborder palette, \\
     "" using 1:2:(stringcolumn(4)) with labels font ",7"
GP
gnuplot "$gp" && echo "heatmap: $png"

#!/usr/bin/env bash
# bench/deps.sh - what `make bench` needs beyond tests/deps.sh: gnuplot, for the
# heatmap of the punch matrix (bench/heatmap.sh).  Not part of `make test`.
set -euo pipefail
status=$(dpkg-query -W -f='${db:Status-Status}' gnuplot-nox 2>/dev/null || true)
[[ "$status" == installed ]] && exit 0
[[ "$(id -u)" == 0 ]] || { echo "bench/deps.sh: need root to install gnuplot-nox" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null

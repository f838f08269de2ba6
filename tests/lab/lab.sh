#!/usr/bin/env bash
# Command-line wrapper over lib.sh, for manual use and the demo.
#
#   lab.sh up [--id ID] [--nat-a F] [--nat-b F] [--delay MS] [--jitter MS] [--loss PCT]
#             [--noise-a RATE] [--noise-b RATE] [--lan2 on|off] [--sites 2-5] [--nat-c F]
#             [--nat-d F] [--nat-e F] [--ipv6 on|off] [--same-subnet on|off]
#             prints shell exports (eval-able)
#   lab.sh down ID
#   lab.sh exec ID NODE CMD...
#   lab.sh flush ID
#   lab.sh nat ID a|b FLAVOR
#   lab.sh delay ID MS [JITTER_MS] [LOSS_PCT]
#   lab.sh noise ID RATE_A RATE_B
set -euo pipefail

# shellcheck source=tests/lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	sed -n '4,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

# with_id ID: adopt an existing lab (its state lives in LAB_DIR)
with_id() {
	LAB_ID=$1
	LAB_DIR=$(_lab_dir_of "$1")
	export LAB_ID LAB_DIR
	if ! ip netns list | grep -q "^n4-$LAB_ID-srv\b"; then
		_lab_err "no lab with id $LAB_ID"
		exit 1
	fi
}

(($# >= 1)) || usage
subcmd=$1
shift
case $subcmd in
up)
	# the default id would be this short-lived script's pid; make it explicit
	if [[ " $* " != *" --id "* ]]; then
		set -- --id "$$" "$@"
	fi
	lab_up "$@"
	for v in LAB_ID LAB_DIR LAB_SRV_IP LAB_SINK_IP LAB_NATA_IP LAB_NATB_IP \
		LAB_A_IP LAB_A2_IP LAB_B_IP LAB_B2_IP LAB_NAT_A LAB_NAT_B; do
		printf 'export %s=%q\n' "$v" "${!v}"
	done
	;;
down)
	(($# == 1)) || usage
	lab_down "$1"
	;;
exec)
	(($# >= 3)) || usage
	with_id "$1"
	shift
	lab_exec "$@"
	;;
flush)
	(($# == 1)) || usage
	with_id "$1"
	lab_flush
	;;
nat)
	(($# == 3)) || usage
	with_id "$1"
	lab_set_nat "$2" "$3"
	;;
delay)
	(($# >= 2 && $# <= 4)) || usage
	with_id "$1"
	shift
	lab_set_delay "$@"
	;;
noise)
	(($# == 3)) || usage
	with_id "$1"
	lab_set_noise "$2" "$3"
	;;
*)
	usage
	;;
esac

# shellcheck shell=bash
# examples/lab_example.sh - what every shim example does before its program starts:
# the NAT lab up (flavour $NAT, default inc), the rendezvous server running in it,
# and torn down on exit.  Sourced; sets WRAP (the n4shim wrapper), S (the server's
# IP, the placeholder) and d (the lab's scratch directory).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../tests/lab/lib.sh"
source "$here/../tests/lab/punch_lib.sh"
WRAP=$N4_BIN/n4shim
lab_require_root || exit 1
trap lab_down EXIT
lab_up --nat-a "${NAT:-inc}" --nat-b "${NAT:-inc}" || exit 1
start_server || exit 1
S=$LAB_SRV_IP
d=$LAB_DIR

#!/usr/bin/env bash
# test_shim_apps.sh - unmodified programs reach each other through libn4shim.so across
# two NAT4s: netcat-openbsd on both sides (inc/inc and inc-linux/inc-linux), socat on
# both sides, and the shim on one side with `n4 -c` on the other.  Lines go both ways;
# the listening side is designated by N4_LISTEN, the other by its placeholder (any
# port on the server's IP).  Each case has its own identifier and fresh NAT state.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
PH_PORT=5000 # the placeholder port: anything but the rendezvous port

lab_with_server shim --nat-a inc --nat-b inc

# shimmed NODE TAG IDENT IN OUT ENV... -- CMD...: run CMD under the shim in NODE with stdin
# from the fifo IN and stdout to OUT; its stderr (the shim's log) goes to TAG.log.
shimmed() {
	local node=$1 tag=$2 ident=$3 in=$4 out=$5 envs=()
	shift 5
	while [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	lab_bg "$node" "$LAB_DIR/$tag.log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" \
		LD_PRELOAD="$SHIM" "${envs[@]}" sh -c 'i=$1 o=$2; shift 2; exec "$@" <"$i" >"$o"' sh "$in" "$out" "$@"
}

punched() { grep -q "punched: local port" "$1"; }

# A two-sided case: start both programs, wait for both punches, a line each way.
two_sided() { # NAME IDENT CMD_A... -- CMD_B...
	local name=$1 ident=$2 cmd_a=() cmd_b=() d=$LAB_DIR/$2
	shift 2
	while [[ $1 != -- ]]; do
		cmd_a+=("$1")
		shift
	done
	shift
	cmd_b=("$@")
	mkdir -p "$d"
	mkfifo "$d/in-a" "$d/in-b"
	: >"$d/out-a"
	: >"$d/out-b"
	exec {fa}<>"$d/in-a" {fb}<>"$d/in-b"
	local pa pb
	pa=$(shimmed a "$ident-a" "$ident" "$d/in-a" "$d/out-a" -- "${cmd_a[@]}")
	pb=$(shimmed b "$ident-b" "$ident" "$d/in-b" "$d/out-b" N4_LISTEN=$PH_PORT -- "${cmd_b[@]}")
	if lab_wait_for punched "$LAB_DIR/$ident-a.log" --timeout 40 &&
		lab_wait_for punched "$LAB_DIR/$ident-b.log" --timeout 10; then
		ok "$name: both sides punched"
	else
		not_ok "$name: both sides punched"
		tail -n 5 "$LAB_DIR/$ident-a.log" "$LAB_DIR/$ident-b.log" >&2
	fi
	echo "line from a $RANDOM" >&"$fa"
	check "$name: a line from A reaches B" \
		lab_wait_for grep -q "line from a" "$d/out-b" --timeout 5
	echo "line from b $RANDOM" >&"$fb"
	check "$name: a line from B reaches A" \
		lab_wait_for grep -q "line from b" "$d/out-a" --timeout 5
	echo "second line from a" >&"$fa"
	check "$name: a second line from A reaches B" \
		lab_wait_for grep -q "second line from a" "$d/out-b" --timeout 5
	if grep -q $'\x05' "$d/out-a" "$d/out-b"; then
		not_ok "$name: no PUNCH bytes reached the programs"
	else
		ok "$name: no PUNCH bytes reached the programs"
	fi
	exec {fa}>&- {fb}>&-
	lab_stop_pid "$pa"
	lab_stop_pid "$pb"
}

for flavor in inc inc-linux; do
	lab_set_nat a "$flavor" && lab_set_nat b "$flavor" && lab_flush
	id=nc${flavor:4:1}
	two_sided "nc, $flavor/$flavor" "${id:0:6}" nc -u "$LAB_SRV_IP" "$PH_PORT" -- nc -u -l "$PH_PORT"
done

lab_set_nat a inc && lab_set_nat b inc && lab_flush
two_sided "socat, inc/inc" socat socat STDIO "UDP:$LAB_SRV_IP:$PH_PORT" -- \
	socat STDIO "UDP-LISTEN:$PH_PORT"

# The shim on A, the n4 client on B: the CLI prints its port and the peer, and the
# shimmed nc reaches a plain socket on that port (and back).
lab_flush
d=$LAB_DIR/cli
mkdir -p "$d"
mkfifo "$d/in-a"
: >"$d/out-a"
exec {fa}<>"$d/in-a"
pa=$(shimmed a cli-a shcli "$d/in-a" "$d/out-a" -- nc -u "$LAB_SRV_IP" "$PH_PORT")
pb=$(client b "$LAB_DIR/cli-b.log" -a shcli -t 40)
if wait_pids 45 "$pb" && won "$LAB_DIR/cli-b.log" && lab_wait_for punched "$LAB_DIR/cli-a.log" --timeout 5; then
	ok "shim + n4 -c: both punched"
else
	not_ok "shim + n4 -c: both punched"
	tail -n 5 "$LAB_DIR/cli-a.log" "$LAB_DIR/cli-b.log" >&2
fi
lport=$(local_port "$LAB_DIR/cli-b.log")
peer=$(peer_addr "$LAB_DIR/cli-b.log")
: >"$d/out-b"
pr=$(lab_bg b "$d/out-b" timeout 20 socat -u "UDP4-RECV:${lport:-1},reuseaddr" STDOUT)
check "shim + n4 -c: the receiver on the CLI's port is up" \
	lab_wait_for lab_exec b sh -c "ss -ulnH 'sport = :${lport:-1}' | grep -q ." --timeout 5
echo "shimmed nc to the CLI's port" >&"$fa"
check "shim + n4 -c: the shimmed program reaches the port the CLI printed" \
	lab_wait_for grep -q "shimmed nc to the CLI" "$d/out-b" --timeout 5
lab_exec b sh -c "echo 'back from the CLI side' | socat -u STDIN UDP4-SENDTO:${peer:-0.0.0.0:1},sourceport=${lport:-1},reuseaddr"
check "shim + n4 -c: the peer the CLI printed reaches the shimmed program" \
	lab_wait_for grep -q "back from the CLI side" "$d/out-a" --timeout 5
exec {fa}>&-
lab_stop_pid "$pa"
lab_stop_pid "$pr"

summary shim

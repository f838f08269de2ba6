#!/usr/bin/env bash
# test_apps_mosh.sh - mosh end to end through libn4shim.so across two NAT4s: an
# unmodified mosh-server on B (N4_LISTEN: it binds its UDP port, prints the key its
# client needs, then detaches), an unmodified mosh-client on A (in a pseudo-terminal
# made by script(1)) given the placeholder as the server's address.  Checked: the
# server prints its key (its bind must not wait for a peer), both sides punch, a
# command typed on A runs on B and its output comes back to A's terminal, and after
# 20 s in which the WAN router drops every UDP datagram (mosh's own, the keeper's, a
# recovery's rendezvous) a command typed afterwards comes back too; the time from the
# end of the drop to that output is printed.
# inc/inc and inc-linux/inc-linux, fresh NAT state and an identifier per case.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
PH_PORT=5000
DROP_S=20

for tool in mosh-server mosh-client script; do
	if ! command -v "$tool" >/dev/null; then
		echo "not ok - $tool is not installed (tests/deps.sh installs mosh)"
		echo "apps_mosh: 0 passed, 1 failed"
		exit 1
	fi
done
lab_with_server apps_mosh --nat-a inc --nat-b inc
# mosh refuses to start without a UTF-8 locale; C.UTF-8 is built into glibc.
LOC=(LANG=C.UTF-8 LC_ALL=C.UTF-8)

# drop_udp on|off: the WAN router forwards no UDP at all while on (TCP, the shims'
# kept connections to the server, still passes).  Its own table, so removing it
# touches nothing else; lab_down removes it with the namespace if the test dies.
drop_udp() {
	if [[ $1 == on ]]; then
		lab_exec wan nft -f - <<-'EOF'
			table ip n4mosh_drop {
				chain forward {
					type filter hook forward priority -10; policy accept;
					meta l4proto udp counter drop
				}
			}
		EOF
	else
		lab_exec wan nft delete table ip n4mosh_drop 2>/dev/null
	fi
}
# dropped_packets: what the drop rule counted.
dropped_packets() {
	lab_exec wan nft list table ip n4mosh_drop | sed -nE 's/.*counter packets ([0-9]+).*/\1/p'
}
now_ms() { date +%s%3N; }

SERVER_PIDS=()
stop_servers() {
	local p
	for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	SERVER_PIDS=()
}
trap 'drop_udp off; stop_servers; lab_down' EXIT

# FLAVORS narrows the run (debugging): each flavour left out is a visible skip.
for flavor in inc inc-linux; do
	[[ " ${FLAVORS:-inc inc-linux} " == *" $flavor "* ]] && continue
	echo "skip - $flavor: not selected by FLAVORS=${FLAVORS:-}"
done
for flavor in ${FLAVORS:-inc inc-linux}; do
	lab_set_nat a "$flavor" && lab_set_nat b "$flavor" && lab_flush
	id=mosh${flavor:4:1}
	ident=${id:0:6}
	logb=$LAB_DIR/$id-b.log
	loga=$LAB_DIR/$id-a.log
	term=$LAB_DIR/$id-a.term
	: >"$term"
	# The detached server exits on its own when its client has been gone for
	# MOSH_SERVER_NETWORK_TMOUT s: 60, well above the 20 s drop plus the path's
	# recovery, so it is still there when the drop ends; if the test dies before
	# stop_servers, it still goes away a minute later.
	pb=$(lab_bg b "$logb" env "${LOC[@]}" N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" \
		N4_LISTEN=$PH_PORT MOSH_SERVER_NETWORK_TMOUT=60 LD_PRELOAD="$SHIM" \
		mosh-server new -p $PH_PORT -- /bin/sh)
	if lab_wait_for grep -q "^MOSH CONNECT" "$logb" --timeout 10; then
		ok "mosh, $flavor/$flavor: mosh-server prints its key"
	else
		not_ok "mosh, $flavor/$flavor: mosh-server prints its key (its bind to N4_LISTEN must not wait for the peer)"
		tail -n 5 "$logb" | sed 's/^/# /'
		lab_stop_pid "$pb"
		continue
	fi
	key=$(sed -nE 's/^MOSH CONNECT [0-9]+ ([^ ]+).*/\1/p' "$logb" | head -n 1)
	spid=$(sed -nE 's/.*mosh-server detached, pid = ([0-9]+).*/\1/p' "$logb" | head -n 1)
	[[ -n $spid ]] && SERVER_PIDS+=("$spid")
	mkfifo "$LAB_DIR/$id-in"
	exec {keys}<>"$LAB_DIR/$id-in"
	pa=$(lab_bg a "$loga" env "${LOC[@]}" TERM=xterm MOSH_KEY="$key" N4_SERVER="$LAB_SRV_IP" \
		N4_IDENT="$ident" LD_PRELOAD="$SHIM" sh -c \
		'exec script -qfec "stty rows 24 cols 80; exec mosh-client $1 $2 2>>$5" /dev/null <"$3" >"$4"' sh \
		"$LAB_SRV_IP" $PH_PORT "$LAB_DIR/$id-in" "$term" "$loga")
	if lab_wait_for grep -q "punched: local port" "$loga" --timeout 20 &&
		lab_wait_for grep -q "punched: local port" "$logb" --timeout 5; then
		ok "mosh, $flavor/$flavor: both sides punched"
		# The output (42) differs from what was typed (6*7): only B's shell makes it.
		printf 'echo MOSH$((6*7))OK\r' >&"$keys"
		if lab_wait_for grep -qa "MOSH42OK" "$term" --timeout 10; then
			ok "mosh, $flavor/$flavor: a typed command's output comes back"
			# The one deliberate wait: mosh's path is cut for DROP_S seconds.
			drop_udp on && sleep $DROP_S
			dropped=$(dropped_packets)
			drop_udp off
			t0=$(now_ms)
			printf 'echo MOSH$((7*8))AFTER\r' >&"$keys"
			if lab_wait_for grep -qa "MOSH56AFTER" "$term" --timeout 30; then
				ok "mosh, $flavor/$flavor: after ${DROP_S} s of dropped UDP, a typed command's output comes back ($(($(now_ms) - t0)) ms after the drop)"
			else
				not_ok "mosh, $flavor/$flavor: after ${DROP_S} s of dropped UDP, a typed command's output comes back"
			fi
			# The drop must have cut mosh's path, not merely run beside it.
			check "mosh, $flavor/$flavor: the drop cut the path (${dropped:-no} datagrams dropped)" \
				test "${dropped:-0}" -gt 0
		else
			not_ok "mosh, $flavor/$flavor: a typed command's output comes back"
			not_ok "mosh, $flavor/$flavor: after ${DROP_S} s of dropped UDP, a command's output comes back (no session)"
		fi
	else
		not_ok "mosh, $flavor/$flavor: both sides punched"
		not_ok "mosh, $flavor/$flavor: a typed command's output comes back (no path)"
		not_ok "mosh, $flavor/$flavor: after ${DROP_S} s of dropped UDP, a command's output comes back (no path)"
	fi
	((fail)) && tail -n 20 "$loga" "$logb" | sed 's/^/# /'
	exec {keys}>&-
	lab_stop_pid "$pa"
	lab_stop_pid "$pb"
	stop_servers
done

summary apps_mosh

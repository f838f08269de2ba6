#!/usr/bin/env bash
# test_apps_openvpn.sh - an OpenVPN point-to-point tunnel (static key, a tun device in
# each host's namespace) between two unmodified openvpn processes behind two NAT4s,
# both under libn4shim.so: B listens (N4_LISTEN), A's --remote is the placeholder (a
# port on the server's IP).  The tunnel carries a ping both ways, in inc/inc and
# inc-linux/inc-linux, with fresh NAT state and its own identifier per case.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
PH_PORT=5000

if ! command -v openvpn >/dev/null; then
	echo "not ok - openvpn is not installed (tests/deps.sh installs it)"
	echo "apps_openvpn: 0 passed, 1 failed"
	exit 1
fi
lab_with_server apps_openvpn --nat-a inc --nat-b inc
KEY=$LAB_DIR/static.key
openvpn --genkey secret "$KEY" >/dev/null 2>&1 || {
	echo "apps_openvpn: 0 passed, 1 failed"
	exit 1
}
# Static key (no TLS handshake), no data channel offload (the kernel would own the
# socket), one keepalive a second so both sides send early.
COMMON=(openvpn --dev tun --proto udp4 --secret "$KEY" --cipher AES-256-CBC --auth SHA256
	--disable-dco --ping 1 --verb 3)

pings() { lab_exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1; }

# FLAVORS narrows the run (debugging): each flavour left out is a visible skip.
for flavor in inc inc-linux; do
	[[ " ${FLAVORS:-inc inc-linux} " == *" $flavor "* ]] && continue
	echo "skip - $flavor: not selected by FLAVORS=${FLAVORS:-}"
done
for flavor in ${FLAVORS:-inc inc-linux}; do
	lab_set_nat a "$flavor" && lab_set_nat b "$flavor" && lab_flush
	id=ovpn${flavor:4:1}
	ident=${id:0:6}
	pb=$(lab_bg b "$LAB_DIR/$id-b.log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" \
		N4_LISTEN=$PH_PORT LD_PRELOAD="$SHIM" \
		"${COMMON[@]}" --lport $PH_PORT --ifconfig 10.9.0.2 10.9.0.1)
	pa=$(lab_bg a "$LAB_DIR/$id-a.log" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" \
		LD_PRELOAD="$SHIM" \
		"${COMMON[@]}" --remote "$LAB_SRV_IP" $PH_PORT --nobind --ifconfig 10.9.0.1 10.9.0.2)
	if lab_wait_for grep -q "punched: local port" "$LAB_DIR/$id-a.log" --timeout 25 &&
		lab_wait_for grep -q "punched: local port" "$LAB_DIR/$id-b.log" --timeout 5; then
		ok "openvpn, $flavor/$flavor: both sides punched"
	else
		not_ok "openvpn, $flavor/$flavor: both sides punched"
		tail -n 5 "$LAB_DIR/$id-a.log" "$LAB_DIR/$id-b.log" | sed 's/^/# /'
	fi
	check "openvpn, $flavor/$flavor: A pings B through the tunnel" \
		lab_wait_for pings a 10.9.0.2 --timeout 10
	check "openvpn, $flavor/$flavor: B pings A through the tunnel" \
		lab_wait_for pings b 10.9.0.1 --timeout 5
	((fail)) && grep -vE "^$" "$LAB_DIR/$id-a.log" "$LAB_DIR/$id-b.log" | tail -n 40 | sed 's/^/# /'
	lab_stop_pid "$pa"
	lab_stop_pid "$pb"
done

summary apps_openvpn

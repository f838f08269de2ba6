#!/usr/bin/env bash
# examples/openvpn.sh - an OpenVPN point-to-point tunnel between two hosts behind two
# NAT4s, both openvpn processes unmodified, started with the n4shim wrapper.
#
# In the real world (server S running `n4 -s`; the same static key on both hosts,
# made once with `openvpn --genkey secret static.key` and copied over a secure channel):
#   host B:  n4shim -s S -L 1194 -- openvpn --dev tun --proto udp4 --lport 1194 \
#              --secret static.key --cipher AES-256-CBC --auth SHA256 --disable-dco \
#              --ifconfig 10.9.0.2 10.9.0.1
#   host A:  n4shim -s S -- openvpn --dev tun --proto udp4 --remote S 1194 --nobind \
#              --secret static.key --cipher AES-256-CBC --auth SHA256 --disable-dco \
#              --ifconfig 10.9.0.1 10.9.0.2
# A's "--remote S 1194" is the placeholder; OpenVPN's own check of the sender's
# address keeps working because the shim reports the peer's datagrams as coming from
# it.  --disable-dco: with data channel offload the kernel module, not the program,
# would own the socket.  The key authenticates and encrypts the tunnel: n4 itself
# does neither.  OpenVPN 2.6 warns that static keys are deprecated; a TLS setup works
# the same way through the shim.
#
# Here both hosts live in the NAT lab (network namespaces, root needed); each pings
# the other through the tunnel.
set -uo pipefail
source "$(dirname "$0")/lab_example.sh"
openvpn --genkey secret "$d/static.key" || exit 1
common="--dev tun --proto udp4 --secret $d/static.key --cipher AES-256-CBC --auth SHA256 --disable-dco --verb 3"

echo "host b: n4shim -s $S -L 1194 -- openvpn ... --lport 1194 --ifconfig 10.9.0.2 10.9.0.1"
lab_bg b "$d/b.log" "$WRAP" -s "$S" -L 1194 -- openvpn $common --lport 1194 \
	--ifconfig 10.9.0.2 10.9.0.1 >/dev/null
echo "host a: n4shim -s $S -- openvpn ... --remote $S 1194 --nobind --ifconfig 10.9.0.1 10.9.0.2"
lab_bg a "$d/a.log" "$WRAP" -s "$S" -- openvpn $common --remote "$S" 1194 --nobind \
	--ifconfig 10.9.0.1 10.9.0.2 >/dev/null

lab_wait_for grep -q punched "$d/a.log" --timeout 40 || { cat "$d/a.log"; exit 1; }
lab_wait_for grep -q punched "$d/b.log" --timeout 10 || { cat "$d/b.log"; exit 1; }
echo "--- the shims say:"
grep -h "punched" "$d/a.log" "$d/b.log"
lab_wait_for lab_exec a ping -c 1 -W 1 10.9.0.2 --timeout 10 >/dev/null 2>&1
echo "--- a pings b through the tunnel:"
lab_exec a ping -c 3 -i 0.2 10.9.0.2 || exit 1
echo "--- b pings a through the tunnel:"
lab_exec b ping -c 3 -i 0.2 10.9.0.1

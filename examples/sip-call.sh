#!/usr/bin/env bash
# examples/sip-call.sh - a SIP call with audio both ways between two baresip user
# agents, each behind its own NAT4, unmodified, under the shim.
#
# In the real world (server S running `n4 -s`), with baresip's own config on each side
# (sip_listen on the LAN address, no STUN/ICE/TURN, RTCP on RTP+1 or rtcp_mux):
#   callee B:  N4_SERVER=S N4_LISTEN=5060 LD_PRELOAD=libn4shim.so baresip
#   caller A:  N4_SERVER=S LD_PRELOAD=libn4shim.so baresip, then "/dial sip:b@S:5060"
# "S:5060" is the placeholder: the INVITE punches the first path.  The SDP and the
# Contact carry each side's LAN address; the shims tell each other those addresses
# end to end, so RTP, RTCP and the in-dialog requests sent there become flows of the
# peer (doc/SHIM.md "Calls").
#
# Here both agents live in the NAT lab (root needed): a sine tone of its own on each
# side, what each receives dumped to a file and measured.
set -uo pipefail
source "$(dirname "$0")/lab_example.sh"
source "$here/../tests/lab/sip_lib.sh"
A=$d/ua-a B=$d/ua-b

sip_ua_config "$A" a "$LAB_A_IP" 5060 16000-16019 440 &&
	sip_ua_config "$B" b "$LAB_B_IP" 5060 17000-17019 1000 &&
	sip_ua_shim "$A" N4_SERVER="$S" &&
	sip_ua_shim "$B" N4_SERVER="$S" N4_LISTEN=5060 || exit 1
echo "callee b ($LAB_B_IP): N4_SERVER=$S N4_LISTEN=5060 LD_PRELOAD=libn4shim.so baresip"
sip_ua_start b "$B" || exit 1
echo "caller a ($LAB_A_IP): N4_SERVER=$S LD_PRELOAD=libn4shim.so baresip; /dial sip:b@$S:5060"
sip_ua_start a "$A" || exit 1
sip_call "$A" "$B" 8 "sip:b@$S:5060" || { echo "the call failed"; exit 1; }
echo "--- the shims say:"
grep -h "punched" "$A/baresip.log" "$B/baresip.log" | sed 's/^.*n4shim/n4shim/'
echo "--- a heard $(sip_rx_tone_s "$A") s of b's 1000 Hz tone, b heard $(sip_rx_tone_s "$B") s of a's 440 Hz tone in an 8 s call"
sip_ua_stop "$A"
sip_ua_stop "$B"

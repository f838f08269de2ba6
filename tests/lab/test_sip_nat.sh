#!/usr/bin/env bash
# test_sip_nat.sh - SIP calls through two NAT4s under libn4shim.so (issue 20, "calls").
#
# Two unmodified baresip user agents (tests/lab/sip_lib.sh), a (10.1.0.2, tone 440 Hz)
# behind NAT A and b (10.2.0.2, tone 1000 Hz) behind NAT B, each listening for SIP on
# its LAN address, so that its SDP carries that LAN address (c=IN IP4 10.x.0.2) and its
# RTP/RTCP ports.  Both run under the shim: b with N4_LISTEN=5060 (its SIP socket waits
# for its peer), a without N4_PEER, dialling b at the placeholder sip:b@SERVER:5060
# (any UDP port of the server's IP is a placeholder, doc/SHIM.md).  The first path is
# SIP's; the media must follow it: each side sends RTP and RTCP to the other's LAN
# address (from the SDP) and ports, which the shim turns into flows of that peer.
#
# Per NAT pair (inc/inc, inc-linux/inc-linux, random/random: relayed, and a keyed
# inc/inc), with new user agents and NAT state flushed:
#   - a call of CALL_S seconds is set up and torn down on both sides (a's ACK and BYE
#     go to b's Contact, b's LAN address);
#   - audio both ways: each side's dump of what it received holds >= WANT_S s of the
#     other's tone (and none of its own);
#   - RTCP reports reached each side (capture and baresip's statistics);
#   - a second call right after the first works the same;
#   - random/random: the shim's log says the pair is relayed.
# Measured and printed, not judged: per call and side, the time from the answer (the
# 200 OK in the UA's capture) to the first RTP datagram it received, and the shim's
# lines about flows.  ONLY=REGEX runs the cases whose name matches; KEEP_LOGS=DIR keeps
# the lab directory.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
source "$HERE/sip_lib.sh"
CALL_S=8   # as test_sip_direct.sh: more than libre's 5 s RTCP interval
WANT_S=5.0 # seconds of the peer's tone each side must have received
TONE_A=440
TONE_B=1000
# The INVITE waits in sendto for the first path: a rendezvous, and for two random-port
# NATs the punch rounds before the relay.  Within the shim's N4_TIMEOUT (30 s).
SIP_SETUP_S=${SIP_SETUP_S:-35}

if ! sip_need; then
	not_ok "baresip, its modules, socat, tcpdump and wav_tone are installed"
	summary sip_nat
	exit 1
fi
trap lab_down EXIT
[[ -n ${KEEP_LOGS:-} ]] && trap 'cp -r "$LAB_DIR" "$KEEP_LOGS"/ 2>/dev/null; lab_down' EXIT
need_up sip_nat "the lab" lab_up --nat-a inc --nat-b inc
need_up sip_nat "the n4 server" start_server
KEY=$LAB_DIR/call.key
need_up sip_nat "a key from n4 genkey (mode 0600)" \
	bash -c "umask 077 && '$N4' genkey >'$KEY' && test \"\$(stat -c %a '$KEY')\" = 600"

at_least() { # X Y: X >= Y, decimals
	awk -v x="$1" -v y="$2" 'BEGIN { exit !(x + 0 >= y + 0) }'
}

sent_not_heard() { # SENT_S HEARD_S
	at_least "$1" "$WANT_S" && [[ "$2" == 0.0 ]]
}

check_own() { # WHAT ROLE DIR TONE
	local sent heard
	sent=$(sip_tx_tone_s "$3") heard=$(sip_rx_tone_s "$3" "$4")
	check "$1: the $2's own $4 Hz: ${sent:-?} s sent, ${heard:-?} s received" \
		sent_not_heard "${sent:-0}" "${heard:-?}"
}

check_rtcp() { # WHAT ROLE DIR
	local n rtp in=no
	n=$(sip_rtcp_reports "$3") rtp=$(sip_rtp_packets "$3")
	sip_rtcp_in_stats "$3" && in=yes
	check "$1: RTCP reports reached the $2 (captured $n, RTP $rtp; in baresip's stats: $in)" \
		test "${n:-0}" -ge 1 -a "$in" = yes
}

# flow_lines DIR: the shim's lines about flows and LAN aliases in the UA's last call.
flow_lines() {
	grep -iE 'n4shim.*(flow|alias|lan addr)' "$(sip_call_dir "$1")/baresip.log" 2>/dev/null |
		head -n 6 | sed 's/^/#   /'
}

# check_call WHAT: a calls b at the placeholder; the checks of one call.
check_call() {
	local what=$1 s
	check "$what: set up, lasted ${CALL_S} s and torn down on both sides" \
		sip_call "$UA_A" "$UA_B" "$CALL_S" "sip:b@$LAB_SRV_IP:5060"
	s=$(sip_rx_tone_s "$UA_A")
	check "$what: the caller received ${s:-?} s of the callee's $TONE_B Hz (>= $WANT_S)" \
		at_least "${s:-0}" "$WANT_S"
	s=$(sip_rx_tone_s "$UA_B")
	check "$what: the callee received ${s:-?} s of the caller's $TONE_A Hz (>= $WANT_S)" \
		at_least "${s:-0}" "$WANT_S"
	check_own "$what" caller "$UA_A" "$TONE_A"
	check_own "$what" callee "$UA_B" "$TONE_B"
	check_rtcp "$what" caller "$UA_A"
	check_rtcp "$what" callee "$UA_B"
	echo "# $what: answer -> first RTP received: caller $(sip_answer_rtp_ms "$UA_A") ms," \
		"callee $(sip_answer_rtp_ms "$UA_B") ms"
	echo "# $what: the shim's flow lines, caller:"
	flow_lines "$UA_A"
	echo "# $what: callee:"
	flow_lines "$UA_B"
}

relayed() { grep -q "punched: .*(relayed through the server)" "$1/baresip.log"; }

# nat_case NAME NAT_A NAT_B IDENT [N4_VAR=VALUE...]: new user agents behind these NATs,
# NAT state flushed; two calls.
nat_case() {
	local name=$1 fa=$2 fb=$3 ident=$4
	shift 4
	if [[ -n ${ONLY:-} && ! $name =~ $ONLY ]]; then
		return
	fi
	echo "# --- $name"
	lab_set_nat a "$fa" && lab_set_nat b "$fb" && lab_flush || {
		not_ok "$name: NATs $fa/$fb set and flushed"
		return
	}
	UA_A=$LAB_DIR/$name-a UA_B=$LAB_DIR/$name-b
	local common=(N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" "$@")
	if ! sip_ua_config "$UA_A" a "$LAB_A_IP" 5060 16000-16019 $TONE_A ||
		! sip_ua_config "$UA_B" b "$LAB_B_IP" 5060 17000-17019 $TONE_B ||
		! sip_ua_shim "$UA_A" "${common[@]}" ||
		! sip_ua_shim "$UA_B" "${common[@]}" N4_LISTEN=5060 ||
		! sip_ua_start b "$UA_B" || ! sip_ua_start a "$UA_A"; then
		not_ok "$name: both user agents started under the shim"
		sip_ua_stop "$UA_A"
		sip_ua_stop "$UA_B"
		return
	fi
	check_call "$name, call 1"
	check_call "$name, call 2 right after"
	if [[ $fa == random && $fb == random ]]; then
		check "$name: the shim's log says the caller's path is relayed" relayed "$UA_A"
		check "$name: the shim's log says the callee's path is relayed" relayed "$UA_B"
	fi
	if ((fail)) && [[ -z ${FAILED_SHOWN:-} ]]; then # the first failing case's last call
		FAILED_SHOWN=1
		tail -n 25 "$(sip_call_dir "$UA_A")/baresip.log" "$(sip_call_dir "$UA_B")/baresip.log" |
			sed 's/^/# /'
	fi
	sip_ua_stop "$UA_A"
	sip_ua_stop "$UA_B"
}

nat_case inc inc inc sninc
nat_case inc-linux inc-linux inc-linux snlnx
nat_case random random random snrnd
nat_case keyed inc inc snkey N4_KEY_FILE="$KEY"
summary sip_nat

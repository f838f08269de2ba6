#!/usr/bin/env bash
# test_sip_direct.sh - the SIP call harness on a flat path, without n4: two baresip user
# agents, a (10.1.0.2, tone 440 Hz) and a2 (10.1.0.3, tone 1000 Hz) on the same LAN,
# call each other by SIP URI (tests/lab/sip_lib.sh).  Per call: set up and torn down
# on both sides, each side's dump of what it received holds >= 5 s of the other's tone
# (and none of its own: no loop), and RTCP reports reached both.  A second call right
# after the first, the other way round (a2 dials a), works the same.  This is the
# baseline issue 20's calls through two NAT4s (under libn4shim.so) are measured against.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
source "$HERE/sip_lib.sh"
# Each call's length: more than libre's 5 s RTCP report interval, and room for a slow
# source: ausine paces itself by sleeping, and on a loaded machine (load 6 on 2 cores)
# sent 6.2 s of tone in a 7 s call.
CALL_S=8
WANT_S=5.0 # seconds of the peer's tone each side must have received
TONE_A=440
TONE_A2=1000

if ! sip_need; then
	not_ok "baresip, its modules, socat, tcpdump and wav_tone are installed"
	summary sip_direct
	exit 1
fi
trap lab_down EXIT
# cone NATs: the path is the LAN, no NAT is crossed; they only load faster than inc
need_up sip_direct "the lab" lab_up --nat-a cone --nat-b cone

UA_A=$LAB_DIR/ua-a
UA_A2=$LAB_DIR/ua-a2
need_up sip_direct "a's config" sip_ua_config "$UA_A" a "$LAB_A_IP" 5060 16000-16019 $TONE_A
need_up sip_direct "a2's config" sip_ua_config "$UA_A2" a2 "$LAB_A2_IP" 5060 17000-17019 $TONE_A2
need_up sip_direct "a's user agent" sip_ua_start a "$UA_A"
need_up sip_direct "a2's user agent" sip_ua_start a2 "$UA_A2"

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

# check_call WHAT CALLER CALLER_TONE CALLEE CALLEE_TONE
check_call() {
	local what=$1 from=$2 from_tone=$3 to=$4 to_tone=$5 s
	lab_flush
	check "$what: set up, lasted ${CALL_S} s and torn down on both sides" \
		sip_call "$from" "$to" "$CALL_S"
	s=$(sip_rx_tone_s "$from")
	check "$what: the caller received ${s:-?} s of the callee's $to_tone Hz (>= $WANT_S)" \
		at_least "${s:-0}" "$WANT_S"
	s=$(sip_rx_tone_s "$to")
	check "$what: the callee received ${s:-?} s of the caller's $from_tone Hz (>= $WANT_S)" \
		at_least "${s:-0}" "$WANT_S"
	# the measurement tells tones apart: what each sent is its own tone, what it
	# received holds none of it (no loop)
	check_own "$what" caller "$from" "$from_tone"
	check_own "$what" callee "$to" "$to_tone"
	# RTCP: on the wire into each host (capture), and into baresip (its statistics)
	check_rtcp "$what" caller "$from"
	check_rtcp "$what" callee "$to"
}

check_call "a -> a2, same LAN" "$UA_A" $TONE_A "$UA_A2" $TONE_A2
check_call "a2 -> a right after" "$UA_A2" $TONE_A2 "$UA_A" $TONE_A
if ((fail)); then # the last call's part of each log
	tail -n 25 "$(sip_call_dir "$UA_A")/baresip.log" "$(sip_call_dir "$UA_A2")/baresip.log" |
		sed 's/^/# /'
fi

sip_ua_stop "$UA_A"
sip_ua_stop "$UA_A2"
summary sip_direct

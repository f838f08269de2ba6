#!/usr/bin/env bash
# test_apps_rtp.sh - an RTP audio stream (GStreamer: audiotestsrc ! rtpL16pay ! udpsink
# on A, udpsrc ! rtpL16depay ! fakesink on B) between two unmodified gst-launch-1.0
# processes behind two NAT4s, both under libn4shim.so.  B listens (N4_LISTEN) and stops
# after a fixed number of RTP packets; A streams to the placeholder.  Checked: B
# receives them all (its EOS) and its sink counts the depayloaded buffers, in inc/inc
# and inc-linux/inc-linux, with fresh NAT state and its own identifier per case.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
PH_PORT=5000
WANT=100 # RTP packets B waits for; A sends 300 (10 ms each) so losses have room

if ! command -v gst-launch-1.0 >/dev/null ||
	! gst-inspect-1.0 rtpL16pay >/dev/null 2>&1 || ! gst-inspect-1.0 udpsrc >/dev/null 2>&1; then
	echo "not ok - gst-launch-1.0 with the good plugins is not installed (tests/deps.sh installs it)"
	echo "apps_rtp: 0 passed, 1 failed"
	exit 1
fi
lab_with_server apps_rtp --nat-a inc --nat-b inc
CAPS="application/x-rtp,media=audio,clock-rate=44100,encoding-name=L16,channels=1,payload=96"

# FLAVORS narrows the run (debugging): each flavour left out is a visible skip.
for flavor in inc inc-linux; do
	[[ " ${FLAVORS:-inc inc-linux} " == *" $flavor "* ]] && continue
	echo "skip - $flavor: not selected by FLAVORS=${FLAVORS:-}"
done
for flavor in ${FLAVORS:-inc inc-linux}; do
	lab_set_nat a "$flavor" && lab_set_nat b "$flavor" && lab_flush
	id=rtp${flavor:4:1}
	ident=${id:0:6}
	logb=$LAB_DIR/$id-b.log
	loga=$LAB_DIR/$id-a.log
	# -v: the sink reports every buffer ("chain") as a property change.
	pb=$(lab_bg b "$logb" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" N4_LISTEN=$PH_PORT \
		LD_PRELOAD="$SHIM" timeout 30 gst-launch-1.0 -v udpsrc port=$PH_PORT \
		num-buffers=$WANT caps="$CAPS" ! rtpL16depay ! fakesink silent=false)
	pa=$(lab_bg a "$loga" env N4_SERVER="$LAB_SRV_IP" N4_IDENT="$ident" LD_PRELOAD="$SHIM" \
		timeout 30 gst-launch-1.0 audiotestsrc num-buffers=300 samplesperbuffer=441 ! \
		audio/x-raw,format=S16BE,channels=1,rate=44100 ! rtpL16pay ! \
		udpsink host="$LAB_SRV_IP" port=$PH_PORT)
	if lab_wait_for grep -q "punched: local port" "$loga" --timeout 25 &&
		lab_wait_for grep -q "punched: local port" "$logb" --timeout 5; then
		ok "rtp, $flavor/$flavor: both sides punched"
	else
		not_ok "rtp, $flavor/$flavor: both sides punched"
	fi
	check "rtp, $flavor/$flavor: B received $WANT RTP packets and reached EOS" \
		lab_wait_for grep -q "Got EOS from element" "$logb" --timeout 15
	n=$(grep -c "last-message = chain" "$logb")
	check "rtp, $flavor/$flavor: B's sink counted the depayloaded buffers ($n)" \
		test "$n" -ge $((WANT - 1))
	((fail)) && grep -vE "last-message|^$" "$loga" "$logb" | tail -n 30 | sed 's/^/# /'
	lab_stop_pid "$pa"
	lab_stop_pid "$pb"
done

summary apps_rtp

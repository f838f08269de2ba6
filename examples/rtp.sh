#!/usr/bin/env bash
# examples/rtp.sh - an RTP audio stream between two hosts behind two NAT4s, GStreamer's
# gst-launch-1.0 on both sides, unmodified, started with the n4shim wrapper.
#
# In the real world (server S running `n4 -s`):
#   host B (receives):  n4shim -s S -L 5004 -- gst-launch-1.0 udpsrc port=5004 \
#                         caps="application/x-rtp,media=audio,clock-rate=44100,encoding-name=L16,channels=1,payload=96" \
#                         ! rtpjitterbuffer ! rtpL16depay ! audioconvert ! autoaudiosink
#   host A (sends):     n4shim -s S -- gst-launch-1.0 audiotestsrc ! \
#                         audio/x-raw,format=S16BE,channels=1,rate=44100 ! rtpL16pay ! \
#                         udpsink host=S port=5004
# "host=S port=5004" is the placeholder: udpsink's first datagram waits for the punch,
# then the stream flows directly between the two NATs.
#
# Here both hosts live in the NAT lab (network namespaces, root needed); B counts the
# RTP packets it receives instead of playing them.
set -uo pipefail
source "$(dirname "$0")/lab_example.sh"
caps="application/x-rtp,media=audio,clock-rate=44100,encoding-name=L16,channels=1,payload=96"

echo "host b: n4shim -s $S -L 5004 -- gst-launch-1.0 udpsrc port=5004 num-buffers=200 ... ! fakesink"
lab_bg b "$d/b.log" "$WRAP" -s "$S" -L 5004 -- gst-launch-1.0 -v udpsrc port=5004 \
	num-buffers=200 caps="$caps" ! rtpL16depay ! fakesink silent=false >/dev/null
echo "host a: n4shim -s $S -- gst-launch-1.0 audiotestsrc ... ! rtpL16pay ! udpsink host=$S port=5004"
lab_bg a "$d/a.log" "$WRAP" -s "$S" -- gst-launch-1.0 audiotestsrc num-buffers=600 \
	samplesperbuffer=441 ! audio/x-raw,format=S16BE,channels=1,rate=44100 ! rtpL16pay ! \
	udpsink host="$S" port=5004 >/dev/null

lab_wait_for grep -q punched "$d/a.log" --timeout 40 || { cat "$d/a.log"; exit 1; }
echo "--- the shims say:"
grep -h "punched" "$d/a.log" "$d/b.log"
lab_wait_for grep -q "Got EOS" "$d/b.log" --timeout 20 || { tail -n 20 "$d/b.log"; exit 1; }
echo "--- b received $(grep -c 'last-message = chain' "$d/b.log") RTP packets, then EOS"

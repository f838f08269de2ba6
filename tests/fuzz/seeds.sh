#!/usr/bin/env bash
# tests/fuzz/seeds.sh - writes the committed seed inputs of tests/fuzz/corpus/<target>/,
# one small file per case, from the formats in lib/wire.h (8-byte messages),
# lib/stay.h (REPUNCH, FLOW), lib/fast.h (fast flows), lib/predict.h (PLAN, TUNE,
# numbered probes), lib/relay_reg.h,
# the metrics endpoint's HTTP head (lib/metrics.c) and the event scripts the
# targets read (each fuzz_*.c says its format).  Seeds let the fuzzer start past the
# first length and command checks, where a random input almost never gets.
# Run it after changing a format, check the coverage (tests/README.md), commit the
# files.  Seeds found by hand or kept from a run live beside these (not rewritten).
set -euo pipefail
cd "$(dirname "$0")/corpus"

# seed TARGET NAME HEX...: the bytes given in hex (spaces ignored) as TARGET/NAME.
seed() {
	local dir=$1 name=$2 hex
	shift 2
	hex=$(tr -d ' \n' <<<"$*")
	mkdir -p "$dir"
	printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")" >"$dir/$name"
}
# text TARGET NAME STRING: STRING with printf escapes (\r, \n) as TARGET/NAME.
text() {
	mkdir -p "$1"
	printf '%b' "$3" >"$1/$2"
}

# ---- fuzz_wire: one 8-byte message per command, cmd | ext | 6-byte payload ----
ID=6e346e346e34 # "n4n4n4"
seed fuzz_wire hello "01 00 $ID"
seed fuzz_wire hello-all-ext "01 7f $ID"
seed fuzz_wire ready-token "02 01 a1b2c3d4e5f6"
seed fuzz_wire exchange "03 00 $ID"
seed fuzz_wire exchange-token "03 01 a1b2c3d4e5f6"
seed fuzz_wire peerinfo "04 00 c6336402 4e20"     # 198.51.100.2:20000
seed fuzz_wire peerinfo-port0 "04 00 c6336402 0000" # no port: rejected
seed fuzz_wire punch "05 00 $ID"
seed fuzz_wire plan-sweep "06 02 4e20 0000 0040"
seed fuzz_wire keyid "07 00 111111111111"
seed fuzz_wire self "08 00 cb007102 5dc0"
seed fuzz_wire relay "0a 00 c0000202 9c40"
seed fuzz_wire relay-token "0c 00 0102030405 06"
seed fuzz_wire local-last "0d 01 0a010002 4e20"      # 10.1.0.2:20000, the last one
seed fuzz_wire local-more "0d 00 0a010003 4e21"
seed fuzz_wire local-none "0d 01 000000000000"       # "no address": only as the last
seed fuzz_wire local-none-notlast "0d 00 000000000000"
seed fuzz_wire local-loopback "0d 01 7f000001 1388"  # loopback: no other host can use it
seed fuzz_wire local-multicast "0d 01 e0000001 1388"
seed fuzz_wire local-broadcast "0d 01 ffffffff 1388"
seed fuzz_wire local-port0 "0d 01 0a010002 0000"
seed fuzz_wire peerlocal "0e 01 c0a80105 1388"
seed fuzz_wire repunch "0f 00 $ID"
seed fuzz_wire stay "10 20 $ID"
seed fuzz_wire flow "16 00 9c40 1388 beef"           # 40000 -> 5000, nonce beef
seed fuzz_wire flow-forwarded "16 01 9c40 1388 beef"
seed fuzz_wire flow-port0 "16 00 0000 1388 beef"
seed fuzz_wire unknown-cmd "7f 00 $ID"
seed fuzz_wire short "01 00 6e346e346e"
seed fuzz_wire ident-bad-char "01 00 6e34 0a 346e34"
seed fuzz_wire peerinfo-as-head "c6336402 4e20 0000" # the first 6 bytes as a PEERINFO payload

# ---- fuzz_stay: REPUNCH = 0x0F, any reserved byte, the identifier "n4n4n4" ----
seed fuzz_stay repunch "0f 00 $ID"
seed fuzz_stay repunch-reserved "0f ff $ID"
seed fuzz_stay repunch-other-ident "0f 00 6e346e346e35"
seed fuzz_stay repunch-long "0f 00 $ID 00"
seed fuzz_stay repunch-short "0f 00 6e346e346e"
seed fuzz_stay punch "05 00 $ID"
seed fuzz_stay flow-forwarded "16 01 9c40 1388 beef"
seed fuzz_stay flow-client-form "16 00 9c40 1388 beef" # the server never sends it
seed fuzz_stay flow-port0 "16 01 9c40 0000 beef"
seed fuzz_stay flow-long "16 01 9c40 1388 beef 00"
seed fuzz_stay self-ident "0f 00 0f 00 0f 00 0f 00" # the target's second check: ident = bytes 0..5

# ---- fuzz_fast: the same bytes as requests (8-byte messages), as a probe and as an
# answer stream (fast.h): 18 01 ident, 18 02 tag flags 0000 0000, 18 03 token,
# 18 04..06 nonce (keyed); probe 18 00 token; answer 18 80 tag n 00000000 + n
# messages, PEERINFO last; NO 18 81 tag reason 00000000 ----
FO="18 01 666c6f773031" # OPEN "flow01"
FT="18 03 112233445566" # TOKEN
FN="18 04 a0a1a2a3a4a5  18 05 a6a7a8a9aaab  18 06 acadaeaf 0000"
PI="04 01 cb007101 7532"  # PEERINFO 203.0.113.1:30002
seed fuzz_fast req-unkeyed "$FO  18 02 07 02 00000000  $FT"
seed fuzz_fast req-keyed "$FO  18 02 09 01 00000000  $FT  $FN"
seed fuzz_fast req-two "$FO  18 02 01 00 00000000  $FT  $FO  18 02 02 03 00000000  $FT  $FN"
seed fuzz_fast req-restart "$FO  18 02 01 01 00000000  $FO  18 02 02 00 00000000  $FT"
seed fuzz_fast req-tag0 "$FO  18 02 00 00 00000000  $FT"
seed fuzz_fast req-flags "$FO  18 02 01 80 00000000  $FT"
seed fuzz_fast req-padding "$FO  18 02 09 01 00000000  $FT  18 04 a0a1a2a3a4a5  18 05 a6a7a8a9aaab  18 06 acadaeaf 0001"
seed fuzz_fast req-nonce-unkeyed "$FO  18 02 07 00 00000000  $FT  18 04 a0a1a2a3a4a5"
seed fuzz_fast req-out-of-order "18 02 07 00 00000000  $FO  $FT"
seed fuzz_fast probe "18 00 112233445566"
seed fuzz_fast probe-long "18 00 112233445566 00"
seed fuzz_fast no-partner "18 81 05 02 00000000"
seed fuzz_fast no-tag0 "18 81 00 02 00000000"
seed fuzz_fast answer "18 80 05 02 00000000  06 02 4e20 0000 0040  $PI"
seed fuzz_fast answer-tune "18 80 05 03 00000000  12 00 0000 0000 0000  06 02 4e20 0000 0040  $PI  0f 00 6e346e346e34"
seed fuzz_fast answer-keyed "18 80 05 06 00000000  06 02 4e20 0000 0040  08 00 c6336401 4e2a  08 01 5b5b5b5b5b5b  08 02 5b5b5b5b5b5b  08 03 5b5b5b5b 0000  $PI"
seed fuzz_fast answer-partial "18 80 05 03 00000000  06 02 4e20 0000 0040  08 00"
seed fuzz_fast answer-max "18 80 05 08 00000000  $(for i in $(seq 7); do printf '06 02 4e20 0000 0040  '; done)$PI"
seed fuzz_fast answer-count9 "18 80 05 09 00000000  $(for i in $(seq 8); do printf '06 02 4e20 0000 0040  '; done)$PI"
seed fuzz_fast answer-count0 "18 80 05 00 00000000  $PI"
seed fuzz_fast answer-last-not-peerinfo "18 80 05 02 00000000  $PI  06 02 4e20 0000 0040"
seed fuzz_fast answer-fast-inside "18 80 05 02 00000000  18 81 05 02 00000000  $PI"
seed fuzz_fast short-fast "18 80 05"
# A kept connection's stream (REPUNCH and FLOW for "n4n4n4" between answers).
seed fuzz_fast stream-mixed "16 01 9c40 1388 beef  18 80 05 02 00000000  06 02 4e20 0000 0040  $PI  18 81 06 01 00000000  0f 00 $ID  7f 00 $ID"
seed fuzz_fast stream-malformed "18 80 05 02 00000000  $PI  06 02 4e20 0000 0040  16 01 9c40 1388 0001  18 00 112233445566  0f 00 $ID  18 80 07"

# ---- fuzz_apunch: 68-byte APUNCH (auth.h): cmd 0x09, flags, the rest random ----
seed fuzz_apunch apunch-ack "09 01 $(printf '%0132d' 0)"
seed fuzz_apunch apunch-bad-flags "09 80 $(printf '%0132d' 0)"
seed fuzz_apunch apunch-short "09 00 $(printf '%0130d' 0)"

# ---- fuzz_side: SIDE (side.h): 15 flags ident, id (8), port (2), naddrs, addrs,
# [MAC (16) between keyed peers] ----
SID=0102030405060708
seed fuzz_side side-none "15 00 $ID $SID 13c4 00"
seed fuzz_side side-have-two "15 01 $ID $SID 13c4 02 c0a80105 0a000002"
seed fuzz_side side-four "15 00 $ID $SID 13c4 04 c0a80105 0a000002 ac100001 c0a80206"
seed fuzz_side side-mac "15 01 $ID $SID 13c4 01 c0a80105 $(printf '%032d' 0)"
seed fuzz_side side-five "15 00 $ID $SID 13c4 05 c0a80105 0a000002 ac100001 c0a80206 c0a80207"
seed fuzz_side side-short "15 00 $ID $SID 13c4 02 c0a80105"
seed fuzz_side side-zero-id "15 00 $ID 0000000000000000 13c4 00"
seed fuzz_side side-loopback "15 00 $ID $SID 13c4 01 7f000001"
seed fuzz_side side-other-ident "15 00 6e346e346e35 $SID 13c4 00"

# ---- fuzz_key: base64 of 32 bytes, as `n4 genkey` prints it ----
K=AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA= # bytes 1..32
text fuzz_key key-lf "$K\n"
text fuzz_key key-crlf-spaces "  \t$K\r\n"
text fuzz_key key-no-padding "${K%=}"
text fuzz_key key-bad-char "${K:0:20}*${K:21}"
text fuzz_key key-short "${K:0:40}"
text fuzz_key key-long "${K}AAAA"
text fuzz_key key-noncanonical "${K:0:42}B="
text fuzz_key key-inner-space "${K:0:20} ${K:20}"

# ---- fuzz_http: heads a scraper, a browser or an attacker sends ----
text fuzz_http get-metrics "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nAccept: */*\r\n\r\n"
text fuzz_http get-metrics-lf "GET /metrics HTTP/1.0\n\n"
text fuzz_http get-metrics-query "GET /metrics?name[]=n4 HTTP/1.1\r\n\r\n"
text fuzz_http head-metrics "HEAD /metrics HTTP/1.1\r\n\r\n"
text fuzz_http post "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
text fuzz_http not-found "GET /favicon.ico HTTP/1.1\r\n\r\n"
text fuzz_http bad-version "GET /metrics SPDY/3\r\n\r\n"
text fuzz_http nul-in-line "GET /met\0rics HTTP/1.1\r\n\r\n"
text fuzz_http incomplete "GET /metrics HTTP/1.1\r\nHost: x\r\n"
text fuzz_http cr-only "GET /metrics HTTP/1.1\r\r\n\r\r\n"
# a request line over the 256 bytes n4_http_request reads: 414
text fuzz_http long-line "GET /$(printf 'a%.0s' {1..300}) HTTP/1.1\r\n\r\n"
# a head over the endpoint's 2048-byte limit (METRICS_HEAD_MAX): 431; run.sh's
# -max_len for fuzz_http is above it
text fuzz_http huge-head "GET /metrics HTTP/1.1\r\n$(for i in {1..60}; do printf 'X-Filler-%02d: %s\\r\\n' "$i" "$(printf 'b%.0s' {1..30})"; done)\r\n"

# ---- fuzz_plan: byte 0 PLAN/TUNE ext, bytes 1..6 payload (big-endian fields);
# the whole input also read as 5-byte observations: port (LE), flags, dt ms (LE);
# flags: 1 side B, 2 second port, 4 socket 0, 8 ordered (first of each side),
# 16 last ----
seed fuzz_plan plan-direct "01 4e20 0000 0000"
seed fuzz_plan plan-sweep "02 4e20 0000 0040"
seed fuzz_plan plan-range "03 4e20 1040 0000"    # step 1, 64 ports
seed fuzz_plan plan-range-step2 "03 4e20 2020 0000"
seed fuzz_plan plan-range-wraps "03 fff0 1040 0000" # past 65535: rejected
seed fuzz_plan plan-bday-listen "04 4e20 0000 0100"
seed fuzz_plan plan-bday-probe "05 2710 c350 0040"
seed fuzz_plan plan-impossible "06 0000 0000 0000"
# WALK (a room's host): lo, count, the signed step in two's complement
seed fuzz_plan plan-walk-up "07 4e20 0040 0001"
seed fuzz_plan plan-walk-down-step2 "07 4e20 0040 fffe"
seed fuzz_plan plan-walk-max "07 0001 1000 000f"      # 4096 ports, step 15
seed fuzz_plan plan-walk-past-65535 "07 fff0 0040 0001" # rejected
seed fuzz_plan plan-walk-below-1 "07 0010 0040 ffff"    # rejected
seed fuzz_plan plan-walk-step0 "07 4e20 0040 0000"      # rejected
seed fuzz_plan plan-walk-step256 "07 4e20 0040 0100"    # rejected
seed fuzz_plan plan-walk-count4097 "07 0001 1001 0001"  # rejected
seed fuzz_plan tune "00 001e 0064 0005"  # guard 30 ms, 100 pps, jitter 5 ms
seed fuzz_plan tune-nosweep "01 00fa 0000 0000"
seed fuzz_plan tune-guard-too-long "00 0100 0000 0000"
# obs PORT FLAGS DT: one observation, little-endian fields.
obs() { printf '%02x%02x %02x %02x%02x ' $(($1 & 255)) $(($1 >> 8)) "$2" $(($3 & 255)) $(($3 >> 8)); }
# Two port-incrementing NATs (+1 per mapping), A from 20000 and B from 24000,
# probes interleaved: socket 0 first, then the second port, the last marked.
inc=""
for i in 0 1 2 3 4; do
	fa=0
	fb=1
	((i == 0)) && fa=4 fb=5
	((i == 1)) && fa=2 fb=3
	((i == 4)) && fa=16 fb=17
	inc+=$(obs $((20000 + i)) $fa 20)$(obs $((24000 + i)) $fb 20)
done
seed fuzz_plan obs-inc-inc "$inc"
# +2 on A, -1 on B.
mixed=""
for i in 0 1 2 3 4; do
	mixed+=$(obs $((30000 + 2 * i)) $((i == 0 ? 4 : 0)) 15)$(obs $((40000 - i)) $((i == 0 ? 5 : 1)) 15)
done
seed fuzz_plan obs-inc2-dec "$mixed"
# A cone NAT (one port for every destination) and a random one.
seed fuzz_plan obs-cone-random "$(obs 5000 4 10)$(obs 31337 5 10)$(obs 5000 2 10)$(obs 1234 3 10)$(obs 5000 16 10)$(obs 50999 17 10)"
# Ordered (N4_EXT_SEQ) clients: flag 8 on each side's first entry; numbered
# probes (seq in the low bits) as the server records them.
seed fuzz_plan obs-ordered "$(obs 20000 12 5)$(obs 24000 13 5)$(obs 20001 0 5)$(obs 24001 1 5)$(obs 20002 2 5)$(obs 24002 3 5)"

# ---- fuzz_relay_reg: first the decoder (0x0B, flags, 10-byte token), then the
# input as a script of (op, sel, len) triples: op%4 0 raw bytes (len of them
# follow), 1 registration with the own token, 2 with the other side's, 3 time
# passes (len*500 ms); sel bit 0 side, bit 1 source .1/.2, bits 2-3 source port,
# bit 6 v4-mapped; registration flags len&3, len&0x80 damages the token ----
seed fuzz_relay_reg reg "0b 00 0102030405060708090a"
seed fuzz_relay_reg reg-ack-peerup "0b 03 0102030405060708090a"
seed fuzz_relay_reg reg-bad-flags "0b 80 0102030405060708090a"
# both sides register, data both ways, a refresh, time passes
seed fuzz_relay_reg both-then-data "01 00 00  01 01 00  00 00 08 6461746120612d3e  00 01 08 6461746120622d3e  01 00 01  03 00 04  00 00 04 6d6f7265"
# a registration from a new address moves the side; a stranger's does not
seed fuzz_relay_reg rebind "01 00 00  01 01 00  01 06 00  00 06 04 61626364  02 02 00  00 02 04 78787878"
# damaged and the other side's tokens, v4-mapped sources
seed fuzz_relay_reg bad-tokens "01 00 85  02 01 00  01 41 00  01 40 00  00 41 03 616263"
# idle: both up, then past the idle timeout, then data
seed fuzz_relay_reg idle-expiry "01 00 00  01 01 00  03 00 ff  03 00 ff  00 00 04 6c617465  01 00 00"
# data before any registration, then raw bytes shaped like a registration
seed fuzz_relay_reg data-first "00 00 05 68656c6c6f  00 01 0c 0b000102030405060708090a"

# ---- fuzz_server: byte 0 bit 0 = --ident n4n4n4, then events op%10, arg
# (k = arg%8): 0 connect (sel: bit 7 IPv6, 6 v4-mapped, 0-1 address), 1 HELLO
# (ext, b, len: 1+len%8 bytes; arg&8: STAY), 2 raw (n, bytes), 3 close,
# 4 EXCHANGE (sel, ext, t, [token], cut), 5 deadlines fire, 6 clients read,
# 7 graceful shutdown, 8 LOCAL (f, [ext], port), 9 KEYID (f, [n]) ----
# Two legacy clients from two IPs pair: HELLO, READY, EXCHANGE each, PEERINFO.
seed fuzz_server legacy-pair "00  00 00 00  00 01 01  01 00 00 00 07  01 01 00 00 07  06 00  04 00 00 00 00 01  04 08 01 00 00 01  06 00  05 00  06 00"
# Token clients: the EXCHANGE carries the token each read in its READY.
seed fuzz_server token-pair "00  00 00 00  00 01 01  01 00 01 00 07  01 01 01 00 07  06 00  04 00 00 01 80 01  04 08 01 01 81 01  06 00  05 00  06 00"
# Discovery: numbered probes (arg&7 == 7: PROBE) from both, then EXCHANGEs.
seed fuzz_server probe-pair "00  00 00 00  00 01 01  01 00 43 00 07  01 01 43 00 07  06 00  04 07 00 00 80 01  04 0f 01 01 81 01  04 17 00 00 80 01  04 1f 01 01 81 01  04 00 00 43 80 01  04 08 01 43 81 01  06 00  05 00  06 00  05 00  06 00"
# Relay: two clients asking for everything (token, probe, relay, local), foreign EXCHANGE, deadlines.
seed fuzz_server relay-pair "00  00 00 00  00 01 01  01 00 1b 00 07  01 01 1b 00 07  06 00  08 00 00 13 88  08 01 00 13 89  04 00 00 1b 80 01  04 08 01 1b 81 01  04 10 02 1b 00 a1a2a3a4a5a6 01  06 00  05 00  06 00  05 00  06 00"
# IPv6 and v4-mapped clients, a cut HELLO, junk, a reset, a shutdown with one waiting.
seed fuzz_server v6-junk-shutdown "00  00 00 80  00 01 c1  00 02 02  01 00 01 00 07  01 01 01 00 03  02 02 05 ff00ff0001  03 02  06 00  04 00 80 01 80 01  07 00  06 00  05 00"
# STAY registrations (arg&8) next to a pair, and only_ident with another ident.
seed fuzz_server stay-ident "01  00 00 00  00 01 01  01 08 20 00 07  01 01 00 01 07  01 09 00 00 07  06 00  05 00  03 00  03 01  06 00"
# FLOW on kept connections (raw bytes, op 2): two STAY registrations of n4n4n4, a
# FLOW from one (passed on), 24 more (over the burst of 20), one with port 0
# (closes it); a client waiting for its partner sends one too (closes it).
F0="02 00 08 16 00 9c 40 13 88 be ef"
F1="02 01 08 16 00 13 88 9c 40 00 01"
seed fuzz_server stay-flow "00  00 00 00  00 01 01  01 08 20 00 07  01 09 20 00 07  $F0  06 00  $(for i in $(seq 24); do printf '%s  ' "$F1"; done)06 00  02 00 08 16 00 00 00 13 88 00 02  00 02 02  01 02 01 00 07  02 02 08 16 00 9c 40 13 88 00 03  06 00  05 00  06 00"
# A token pair offering STAY (ext 0x21): kept after PEERINFO (sent at once, not by
# op 5, which would also end the kept connections), FLOWs both ways, a late KEYID
# part (ignored), then a HELLO of its identifier (REPUNCH, closed).
seed fuzz_server pair-stay-flow "00  00 00 00  00 01 01  01 00 21 00 07  01 01 21 00 07  06 00  04 00 00 01 80 01  04 08 01 01 81 01  06 00  06 00  06 00  $F0  $F1  06 00  02 00 08 07 03 11 11 11 11 11 11  $F0  06 00  00 02 02  01 02 01 00 07  06 00  05 00  06 00"
# Fast flows (raw bytes, op 2) on the kept connections of that pair: a request
# (OPEN, TAG, TOKEN) from each for one flow, a keyed one with its nonce, a tag
# under way twice; then a TAG without OPEN (closes it) and the deadlines.
FR0="02 00 08 18 01 66 6c 6f 77 30 31  02 00 08 18 02 01 00 00 00 00 00  02 00 08 18 03 a1 a1 a1 a1 a1 a1"
FR1="02 01 08 18 01 66 6c 6f 77 30 31  02 01 08 18 02 02 00 00 00 00 00  02 01 08 18 03 b1 b1 b1 b1 b1 b1"
FK0="02 00 08 18 01 66 6c 6f 77 30 32  02 00 08 18 02 03 01 00 00 00 00  02 00 08 18 03 a2 a2 a2 a2 a2 a2  02 00 08 18 04 5a 5a 5a 5a 5a 5a  02 00 08 18 05 5a 5a 5a 5a 5a 5a  02 00 08 18 06 5a 5a 5a 5a 00 00"
seed fuzz_server pair-stay-fast "00  00 00 00  00 01 01  01 00 21 00 07  01 01 21 00 07  06 00  04 00 00 01 80 01  04 08 01 01 81 01  06 00  06 00  06 00  $FR0  $FR1  06 00  $FK0  $FR0  06 00  02 01 08 18 02 01 00 00 00 00 00  06 00  05 00  06 00"
# Rooms: ROOM HOST (raw) then HELLO granting ROOM registers a room; a client of
# its identifier is READY at once, its JOINER announced; EXCHANGE, deadlines.
seed fuzz_server room-host-joiner "00  00 00 00  02 00 08 14 01 00 08 00 00 00 00  01 00 81 00 07  00 01 01  01 01 81 00 07  06 00  02 01 08 14 02 aa bb cc dd ee ff  04 08 01 01 81 01  06 00  05 00  06 00"
# A keyed room: the host's long id, a joiner with it (and its nonce), one with
# the other long id (REFUSED(3)), a host that leaves while its joiner is held.
seed fuzz_server room-keyed "00  00 00 00  02 00 08 14 01 00 04 00 00 00 00  01 00 85 00 07  06 00  09 00 00  00 01 01  01 01 85 00 07  09 01 00  06 00  09 01 80  02 01 08 14 02 01 02 03 04 05 06  00 02 02  01 02 85 00 07  09 02 01  06 00  03 00  06 00  05 00"
# Join-only clients (ROOM JOINER before HELLO): an unkeyed one, and a keyed one
# after its long id, wait for their room's host in no pairing table; the unkeyed
# room's host comes and takes its joiner; deadlines end the keyed one.
seed fuzz_server room-join-only "00  00 00 00  02 00 08 14 02 6a 00 00 00 00 00  01 00 81 00 07  00 01 01  02 01 08 14 02 6b 00 00 00 00 00  01 01 85 00 07  09 01 00  06 00  00 02 02  02 02 08 14 01 00 08 00 00 00 00  01 02 81 00 07  06 00  05 00  06 00"

# ---- fuzz_path: byte 0 = configuration (bit 0 keyed, 1 recover off, 2 stay off,
# 3 keepalive off, 4-5 give_up_after, 6 relayed), then (op%8, arg): 0 tick after
# arg*10 ms (arg%4 sent, (arg/4)%4 received), 1 attempt done (bit 0 failed, bit 1
# relayed), 2 not started, 3 notice, 4 stay up, 5 stay lost, 6 pause arg s + tick,
# 7 won again (arg bit 0 relayed) ----
# A stream, NAT state lost (sending, nothing back), a recovery that fails twice and
# gives up (give_up_after 2).
seed fuzz_path dead-backoff-giveup "20  00 05 00 05 00 05 00 05  00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a 00 0a  01 01  06 03 00 0a 00 0a 00 0a  01 01  06 05"
# Relayed: upgrade after its interval, comes back relayed, then direct.
seed fuzz_path relayed-upgrade "40  00 05 06 06  01 02  06 06  01 00  00 05 06 10"
# Unkeyed notice while talking, then silent; keyed notice at once; stay lost and back.
seed fuzz_path notices-stay "00  04 00  00 05 03 00 00 05 00 05 00 05  06 01  05 00  00 05  02 00  04 00  03 00  06 02"
seed fuzz_path keyed-notice "01  04 00  03 00  00 05  01 00  05 00  06 0b  07 01  00 05"

# ---- fuzz_srv_room: the first 8 bytes also go to the ROOM decoder; then byte 0
# sizes the table, then (op, arg = side, sel, ...); sel: bits 0-3 identifier, 4
# long id, 5-6 a host's source (bit 5: a member's long id not in yet), 7 keyed.
# op 0 host (then max joiners, 2 bytes), 1 member, 2 member + ROOM message, 3 a
# member's ROOM message (1 JOINER + 2 bytes of peer id; 2 ANSWER with the n-th
# ticket announced; 0 ANSWER with 6 guessed bytes), 4 close, 5 time (sel bit 0:
# arg s, else arg*10 ms), 6 sweep, 7 keyed HELLO before the long id ----
H="00 00 01 00 08"            # side 0 hosts room "roombz", up to 8
J1="02 01 01 01 aa bb"        # side 1 joins it
J2="02 05 01 01 cc dd"        # side 5 too
A1="02 02 01 02 00"           # side 2 answers the first ticket
A9="02 03 01 00 010203040506" # side 3 answers a guessed one: refused
seed fuzz_srv_room decode-host "14 01 0008 00000000"
seed fuzz_srv_room decode-joiner "14 02 010203040506"
seed fuzz_srv_room decode-answer "14 03 a1b2c3d4e5f6"
seed fuzz_srv_room decode-server-sub "14 20 010203040506"
seed fuzz_srv_room decode-host-too-many "14 01 0401 00000000"
seed fuzz_srv_room host-join-answer "10 $H $J1 $J2 $A1 $A9 04 01 00 04 05 00"
seed fuzz_srv_room host-leaves-held-then-next-host "10 $H $J1 04 00 00 $J2 05 05 00 00 06 01 00 08 02 02 01 02 01"
# keyed: host long id 0, a joiner with it, one with long id 1 (never a member),
# one before its long id, an answer
seed fuzz_srv_room keyed "00 00 81 00 04  02 01 81 01 11 11  02 02 91 01 22 22  02 03 a1 01 33 33  07 00 81  02 04 81 02 00"
seed fuzz_srv_room linger-expires "00 $H 04 00 00 05 1f 01 06 00 00 02 01 01 01 aa bb 05 ff 01 06 00 00"
perm=""
for i in $(seq 0 9); do perm+="00 $(printf %02x $((i + 10))) $(printf %02x "$i") 00 08 "; done
seed fuzz_srv_room per-source "00 $perm"
flood=""
for i in $(seq 6 45); do flood+="02 $(printf %02x "$i") 01 01 $(printf %02x "$i") 00 "; done
seed fuzz_srv_room flood "10 $H $flood"

# ---- fuzz_room: a room connection's bytes (lib/room.c); byte 0 also sets the cut ----
seed fuzz_room join "14 20 010203040506 14 21 090807060504"
seed fuzz_room join-split-1 "00 14 20 010203040506 14 21 090807060504"
seed fuzz_room two-joins "14 20 010203040506 14 21 090807060504 14 20 111111111111 14 21 222222222222"
seed fuzz_room peer-first "14 21 090807060504"
seed fuzz_room refused "14 12 020000000000"
seed fuzz_room not-room "0f 00 $ID"
seed fuzz_room unknown-sub "14 7f 000000000000 14 20 010203040506 14 21 090807060504"

# ---- fuzz_cand6: V6 probe (cand6.h): cmd 0x17, kind, token, 34-byte blob; V6 reports ----
seed fuzz_cand6 v6-probe "17 01 a1b2c3d4e5f6 $(printf '%068d' 0)"
seed fuzz_cand6 v6-probe-sealed "17 02 a1b2c3d4e5f6 $(printf '%068d' 0 | tr 0 7)"
seed fuzz_cand6 v6-reports "17 10 20010db8000a 17 11 000000000000 17 12 00000002 9c40 17 20 20010db8000b 17 21 000000000000 17 22 00000002 c350"
text fuzz_cand6 if-inet6-line "20010db8000a00000000000000000002 02 40 00 80     eth0\n"

# shellcheck shell=bash
# sip_lib.sh - headless SIP calls between baresip user agents in the NAT lab: the
# harness of issue 20 (calls through two NAT4s).  Source after tests/lab/lib.sh.
#
# A user agent (UA) is a directory: sip_ua_config writes baresip's config there, and
# everything of that UA lands in it (its log, its calls' audio dumps and captures).
#
#   sip_ua_config DIR NAME IP SIP_PORT RTP_MIN-RTP_MAX TONE_HZ
#   sip_ua_shim DIR N4_VAR=VALUE...  run the UA under libn4shim.so (LD_PRELOAD) with
#                                these variables, from its next start on
#   sip_ua_start NODE DIR        start baresip in NODE (lab_bg); waits until it is ready
#   sip_ua_stop DIR
#   sip_ua_restart DIR
#   sip_uri DIR                  sip:NAME@IP:SIP_PORT, what another UA dials
#   sip_cmd DIR COMMAND [PARAMS] one baresip command (ctrl_tcp); 0 when baresip says ok
#   sip_call A_DIR B_DIR SECONDS [URI]
#                                A dials B (at URI, default sip_uri B_DIR), B answers by
#                                itself, the call lasts SECONDS from its establishment,
#                                A hangs up; each side's call ends up in its DIR/call-N
#                                (N = that UA's Nth call); after a failed call both UAs
#                                are restarted
#   sip_call_dir DIR [N]         that directory (default: the UA's last call)
#   sip_rx_tone_s DIR [HZ [N]]   seconds of HZ (default: the peer's tone) in what the UA
#                                received during call N (default: last); one decimal
#   sip_tx_tone_s DIR [HZ [N]]   the same for what it sent (default: its own tone)
#   sip_rtcp_reports DIR [N]     RTCP reports (SR/RR) that reached the UA in call N
#   sip_rtp_packets DIR [N]      RTP packets that reached the UA in call N
#   sip_rtcp_in_stats DIR [N]    baresip itself took in an RTCP report in call N
#   sip_answer_rtp_ms DIR [N]    ms from the call's answer (the first "SIP/2.0 200" the
#                                UA sent or received) to the first RTP it received
#
# Per call, DIR/call-N holds: rx.wav (the decoded audio the UA received, as RTP brought
# it: no packet, no samples), tx.wav (the audio it sent: its own tone, a control for
# the measurement), in.pcap (every UDP datagram to or from the UA's address, captured
# in its node), baresip.log (the UA's log during the call, with the shim's lines when
# it runs under the shim), peer (the peer's URI), peer_tone (the peer's tone in Hz).
# RTP and RTCP are told by their content, not their ports: under the shim a punched
# socket's local port is not the one baresip bound.  RTP: version 2, payload type 0
# (PCMU, the only codec); RTCP: version 2, packet type 200 or 201 (SR, RR).  n4's own
# datagrams start with a small command byte, SIP with a letter: neither is version 2.
#
# The config choices (baresip 1.0.0, Debian 12's baresip-core), all written into the
# UA's config file with a comment each.  What another SIP tool needs set to behave the
# same (for issue 20: no STUN/ICE/TURN, RTCP on RTP+1, a fixed port range) follows from
# the same list:
#  - No audio device.  `ausine` is the source: a sine tone of the UA's own frequency
#    (each UA a different one, so that a UA hearing itself, a loop, is told apart from
#    hearing its peer).  ausine only produces 48 kHz stereo, hence ausrc_srate and
#    ausrc_channels; baresip resamples to the codec.  No player module is loaded at all:
#    baresip then decodes and filters what arrives and plays nothing.
#  - `sndfile`, an audio filter, dumps both directions to WAV at the codec's rate:
#    dump-<time>-dec.wav (received) and dump-<time>-enc.wav (sent), in snd_path.  The
#    names have one-second resolution, so each UA has its own dump directory and each
#    call's files are moved out when the call ends.
#  - One codec, G.711 u-law (PCMU, 8 kHz mono): what every SIP tool has, no rate
#    negotiation, and a tone survives it exactly.
#  - The account has no registrar (regint=0): calls go UA to UA by IP URI.  It answers by
#    itself (answermode=auto).  SIP listens on the host's LAN address and the given port
#    (UDP, and TCP which is unused: URIs are dialled without transport=tcp).
#  - RTP from a fixed port range (rtp_ports), RTCP on: separate RTCP sockets on RTP+1
#    (rtcp_mux no).  libre sends an RTCP report every 5 s and a BYE at the end, so a
#    call must last more than 5 s to carry a report each way.
#  - No NAT helpers: no stun/turn/ice/natpmp module, no medianat or sipnat in the
#    account: the SDP carries the host's own address and port, and nothing reaches a
#    server outside the lab.
#  - Control: the ctrl_tcp module on 127.0.0.1:(SIP_PORT+1) inside the UA's node (each
#    node has its own loopback), commands of the menu module as JSON in netstrings;
#    events are read from the UA's log (stdout), not from the control connection.  No
#    stdio UI (stdin is /dev/null) and the menu's status line is off (statmode_default
#    off: it would print a line every 100 ms).
#
# SIP_TRACE=1 adds baresip's -s (every SIP message in the log).  Deadlines (seconds; only
# reached when something is wrong, so generous for a loaded machine): SIP_SETUP_S for a
# call to be established on the caller's side (default 15), SIP_WAIT_S for everything
# else (default 10).

SIP_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SIP_WAV_TONE=${SIP_WAV_TONE:-${N4_BUILD:-$(cd "$SIP_LIB_DIR/../.." && pwd)/build}/tests/wav_tone}
SIP_SHIM=${SIP_SHIM:-${N4_BUILD:-$(cd "$SIP_LIB_DIR/../.." && pwd)/build}/libn4shim.so}
SIP_MODULES=/usr/lib/baresip/modules
SIP_SETUP_S=${SIP_SETUP_S:-15}
SIP_WAIT_S=${SIP_WAIT_S:-10}

_sip_err() {
	printf 'sip: %s\n' "$*" >&2
}

# _sip_get DIR KEY: a value sip_ua_config or sip_ua_start stored for the UA.
_sip_get() {
	local k v val=""
	if [[ -r "$1/ua.env" ]]; then
		while IFS='=' read -r k v; do # the last line for a key wins (calls=N)
			[[ "$k" == "$2" ]] && val=$v
		done <"$1/ua.env"
	fi
	if [[ -z "$val" ]]; then
		_sip_err "no $2 for the UA in $1 (sip_ua_config/sip_ua_start first)"
		return 1
	fi
	printf '%s' "$val"
}

# sip_need: fail with the reason unless baresip, its modules and wav_tone are there.
sip_need() {
	local m
	if ! command -v baresip >/dev/null 2>&1; then
		_sip_err "baresip is not installed (tests/deps.sh installs baresip-core)"
		return 1
	fi
	for m in g711 ausine sndfile menu ctrl_tcp account uuid; do
		if [[ ! -e "$SIP_MODULES/$m.so" ]]; then
			_sip_err "baresip module $SIP_MODULES/$m.so is missing"
			return 1
		fi
	done
	for m in socat tcpdump; do
		if ! command -v "$m" >/dev/null 2>&1; then
			_sip_err "$m is not installed (tests/deps.sh installs it)"
			return 1
		fi
	done
	if [[ ! -x "$SIP_WAV_TONE" ]]; then
		_sip_err "$SIP_WAV_TONE missing: run 'make helpers' first"
		return 1
	fi
}

# sip_ua_config DIR NAME IP SIP_PORT RTP_MIN-RTP_MAX TONE_HZ: a UA named NAME that
# listens on IP:SIP_PORT, sends RTP from the range and TONE_HZ as its audio.
sip_ua_config() {
	if (($# != 6)); then
		_sip_err "usage: sip_ua_config DIR NAME IP SIP_PORT RTP_MIN-RTP_MAX TONE_HZ"
		return 2
	fi
	local dir=$1 name=$2 ip=$3 port=$4 range=$5 tone=$6
	if [[ ! "$name" =~ ^[a-z0-9]+$ || ! "$ip" =~ ^[0-9]+(\.[0-9]+){3}$ ||
		! "$port" =~ ^[0-9]+$ || ! "$tone" =~ ^[0-9]+$ ]]; then
		_sip_err "sip_ua_config: bad name, address, port or tone: $*"
		return 2
	fi
	if [[ ! "$range" =~ ^([0-9]+)-([0-9]+)$ ]] ||
		((BASH_REMATCH[1] % 2 || BASH_REMATCH[2] - BASH_REMATCH[1] < 3)); then
		_sip_err "sip_ua_config: RTP range '$range' must start even and hold 2 RTP/RTCP pairs"
		return 2
	fi
	# ausine takes 10..20000 Hz; the tone must stay below PCMU's 4 kHz
	if ((tone < 100 || tone >= 3800)); then
		_sip_err "sip_ua_config: tone $tone Hz: use 100..3799 Hz (PCMU carries up to 4 kHz)"
		return 2
	fi
	mkdir -p "$dir/dump" || return 1
	local ctrl=$((port + 1))
	cat >"$dir/config" <<EOF || return 1
# baresip config for the n4 SIP tests (tests/lab/sip_lib.sh explains each choice)
poll_method		epoll

# SIP on the host's LAN address; no registrar (see accounts)
sip_listen		$ip:$port
call_local_timeout	20
call_max_calls		4

# Audio: no device.  The source is a sine tone (ausine makes 48 kHz stereo only;
# baresip resamples to the codec).  No player module is loaded: received audio is
# decoded, passes the filters (sndfile dumps it) and is not played.
audio_source		ausine,$tone
ausrc_srate		48000
ausrc_channels		2
audio_level		no
ausrc_format		s16
auenc_format		s16
audec_format		s16

# RTP from a fixed range; RTCP on its own socket at RTP+1 (no rtcp-mux)
rtp_ports		$range
rtcp_mux		no
rtp_stats		yes		# statistics at each call's end (sip_rtcp_in_stats)
jitter_buffer_delay	5-10

module_path		$SIP_MODULES
module			g711.so		# the only codec: PCMU/PCMA at 8 kHz
module			sndfile.so	# dumps sent and received audio to WAV
module			ausine.so	# the sine tone source
# No stun.so, turn.so, ice.so, natpmp.so: no NAT helpers, no outside servers.
module_tmp		uuid.so
module_tmp		account.so
module_app		menu.so		# the commands (dial, hangup, ...)
module_app		ctrl_tcp.so	# ... reached over TCP from the test

ctrl_tcp_listen		127.0.0.1:$ctrl
snd_path		$dir/dump
statmode_default	off		# no status line every 100 ms in the log
ringback_disabled	yes
EOF
	# regint=0: no REGISTER; answermode=auto: answer at once; only PCMU in the SDP
	printf '<sip:%s@%s:%s>;regint=0;answermode=auto;audio_codecs=pcmu\n' \
		"$name" "$ip" "$port" >"$dir/accounts" || return 1
	printf 'name=%s\nip=%s\nport=%s\nctrl=%s\nrtp=%s\ntone=%s\ncalls=0\n' \
		"$name" "$ip" "$port" "$ctrl" "$range" "$tone" >"$dir/ua.env"
}

# sip_ua_shim DIR N4_VAR=VALUE...: from its next start, the UA runs with libn4shim.so
# preloaded and these variables set (DIR/shim.env, one assignment a line).  The shim's
# log lines go to the UA's log (its stderr).
sip_ua_shim() {
	local dir=$1 kv
	shift
	if [[ ! -e "$SIP_SHIM" ]]; then
		_sip_err "$SIP_SHIM missing: run 'make' first"
		return 1
	fi
	: >"$dir/shim.env" || return 1
	for kv in "$@"; do
		if [[ ! "$kv" =~ ^N4_[A-Z0-9_]+=[^[:space:]]*$ ]]; then
			_sip_err "sip_ua_shim: '$kv' is not N4_NAME=VALUE (no spaces)"
			return 2
		fi
		printf '%s\n' "$kv" >>"$dir/shim.env"
	done
}

sip_uri() {
	local name ip port
	name=$(_sip_get "$1" name) && ip=$(_sip_get "$1" ip) && port=$(_sip_get "$1" port) ||
		return 1
	printf 'sip:%s@%s:%s' "$name" "$ip" "$port"
}

_sip_ready_or_dead() { # PID LOG
	! _lab_pid_alive "$1" || grep -q "^baresip is ready" "$2"
}

_sip_ctrl_listening() { # NODE PORT
	lab_exec "$1" ss -ltnH "sport = :$2" 2>/dev/null | grep -q .
}

# sip_ua_start NODE DIR: start the UA configured in DIR inside NODE.
sip_ua_start() {
	local node=$1 dir=$2 log pid ctrl pre=()
	ctrl=$(_sip_get "$dir" ctrl) || return 1
	log=$dir/baresip.log
	if [[ -e "$dir/shim.env" ]]; then # under the shim (sip_ua_shim)
		mapfile -t pre <"$dir/shim.env"
		pre=(env "${pre[@]}" LD_PRELOAD="$SIP_SHIM")
	fi
	pid=$(lab_bg "$node" "$log" "${pre[@]}" baresip -f "$dir" ${SIP_TRACE:+-s}) || return 1
	printf 'node=%s\npid=%s\n' "$node" "$pid" >>"$dir/ua.env"
	lab_wait_for _sip_ready_or_dead "$pid" "$log" --timeout "$SIP_WAIT_S" || return 1
	if ! _lab_pid_alive "$pid"; then
		_sip_err "baresip in $node exited at start; its log ($log):"
		cat "$log" >&2
		return 1
	fi
	# the ready line follows the modules' start; the listening socket is what we need
	lab_wait_for _sip_ctrl_listening "$node" "$ctrl" --timeout "$SIP_WAIT_S"
}

sip_ua_stop() {
	local pid
	pid=$(_sip_get "$1" pid) || return 0
	lab_stop_pid "$pid"
}

# sip_ua_restart DIR: stop the UA and start it again in its node (same config, same log).
sip_ua_restart() {
	local node
	node=$(_sip_get "$1" node) || return 1
	sip_ua_stop "$1" && sip_ua_start "$node" "$1"
}

# sip_cmd DIR COMMAND [PARAMS]: send one command over ctrl_tcp (a JSON object in a
# netstring; PARAMS go in unescaped: no quotes or backslashes); print baresip's
# response; 0 when it answered "ok":true to our token.
sip_cmd() {
	local dir=$1 cmd=$2 params=${3:-} node ctrl json tok resp
	node=$(_sip_get "$dir" node) && ctrl=$(_sip_get "$dir" ctrl) || return 1
	# one command per connection: the token only has to tell our response from events
	tok=n4-$RANDOM
	json="{\"command\":\"$cmd\",\"params\":\"$params\",\"token\":\"$tok\"}"
	# baresip answers, then closes when it reads our end of input (-t: at most 3 s)
	resp=$(printf '%d:%s,' "${#json}" "$json" |
		lab_exec "$node" timeout "$SIP_WAIT_S" socat -t 3 - "TCP:127.0.0.1:$ctrl" 2>&1)
	printf '%s\n' "$resp" >>"$dir/ctrl.log"
	if [[ "$resp" == *'"response":true,"ok":true,'*"\"token\":\"$tok\""* ]]; then
		printf '%s\n' "$resp"
		return 0
	fi
	_sip_err "command '$cmd $params' to $(sip_uri "$dir") failed: ${resp:-no answer}"
	return 1
}

_sip_count() { # DIR PATTERN: lines of the UA's log matching (fixed string)
	local n
	n=$(grep -cF -- "$2" "$1/baresip.log" 2>/dev/null) || true
	printf '%s' "${n:-0}"
}

_sip_more() { # DIR PATTERN BEFORE: more matching lines than BEFORE
	(($(_sip_count "$1" "$2") > $3))
}

_sip_no_calls() { # DIR: the UA has no call (baresip's own list, over ctrl_tcp)
	local resp
	resp=$(sip_cmd "$1" listcalls 2>/dev/null) && [[ "$resp" == *"Active calls (0)"* ]]
}

_sip_file_closed() { # PID FILE: PID has no descriptor on FILE
	! readlink /proc/"$1"/fd/* 2>/dev/null | grep -qxF -- "$2"
}

_sip_capture_up() { # LOG
	grep -q "listening on" "$1"
}

# _sip_capture_start DIR CALLDIR: tcpdump in the UA's node, every UDP datagram to or
# from its address; returns once tcpdump listens.
_sip_capture_start() {
	local dir=$1 cd=$2 node ip pid
	node=$(_sip_get "$dir" node) && ip=$(_sip_get "$dir" ip) || return 1
	: >"$cd/in.pcap.log"
	# immediate mode: packets reach the file as they come; otherwise the last second of
	# a call can sit in the kernel ring when tcpdump is stopped, and is lost
	pid=$(lab_bg "$node" "$cd/in.pcap.log" tcpdump -n -i any --immediate-mode -U -s 0 \
		-w "$cd/in.pcap" udp and host "$ip") || return 1
	printf '%s\n' "$pid" >"$cd/capture.pid"
	lab_wait_for _sip_capture_up "$cd/in.pcap.log" --timeout "$SIP_WAIT_S"
}

_sip_capture_stop() { # CALLDIR
	local pid
	pid=$(cat "$1/capture.pid" 2>/dev/null) || return 0
	lab_stop_pid "$pid"
	rm -f "$1/capture.pid"
}

# _sip_new_call DIR PEER_DIR: make the UA's next call directory; prints it.
_sip_new_call() {
	local dir=$1 peer=$2 n cd
	n=$(_sip_get "$dir" calls) || return 1
	n=$((n + 1))
	cd=$dir/call-$n
	rm -rf "$cd"
	mkdir -p "$cd" || return 1
	printf 'calls=%s\n' "$n" >>"$dir/ua.env"
	sip_uri "$peer" >"$cd/peer"
	_sip_get "$peer" tone >"$cd/peer_tone"
	printf '%s' "$cd"
}

# _sip_collect DIR CALLDIR: the call's part of the UA's log (CALLDIR/from holds the line
# it starts after) goes to CALLDIR/baresip.log; the dumps it names, once baresip has
# closed them, to CALLDIR/rx.wav and tx.wav.  More than one dump of a kind means a
# second call came in during this one (a late INVITE of an earlier failed call): the
# audio could not be told apart, so that fails.
_sip_collect() {
	local dir=$1 cd=$2 pid kind what f files rc=0
	pid=$(_sip_get "$dir" pid) || return 1
	tail -n +"$(($(cat "$cd/from") + 1))" "$dir/baresip.log" >"$cd/baresip.log"
	for kind in rx tx; do
		what=decode
		[[ "$kind" == tx ]] && what=encode
		mapfile -t files < <(sed -n "s/^sndfile: dumping $what audio to //p" "$cd/baresip.log")
		if ((${#files[@]} != 1)); then
			_sip_err "$(sip_uri "$dir"): ${#files[@]} $what dumps in this call, not 1"
			rc=1
			continue
		fi
		f=${files[0]}
		lab_wait_for _sip_file_closed "$pid" "$f" --timeout "$SIP_WAIT_S" &&
			mv "$f" "$cd/$kind.wav" || rc=1
	done
	return "$rc"
}

_sip_sleep_until() { # DEADLINE_MS
	local now
	now=$(_lab_now_ms)
	((now < $1)) || return 0
	sleep "$(printf '%d.%03d' $((($1 - now) / 1000)) $((($1 - now) % 1000)))"
}

# sip_call A_DIR B_DIR SECONDS: one call from A to B.  Fails when the call is not set
# up (dial refused, not established on both sides within SIP_SETUP_S) or not torn down; the
# media is judged afterwards (sip_rx_tone_s, sip_rtcp_reports), so a call without
# audio still lasts its SECONDS and leaves its (empty) dumps.  After a failure both
# UAs are restarted: an INVITE that got no answer is retransmitted for 32 s (RFC 3261
# timer B) and would reach B during a later call.
sip_call() {
	local a=$1 b=$2 secs=$3 cda cdb ua ub rc=0 t0 est_a est_b
	if [[ ! "$secs" =~ ^[0-9]+$ ]]; then
		_sip_err "usage: sip_call A_DIR B_DIR SECONDS [URI]"
		return 2
	fi
	ua=$(sip_uri "$a") && ub=${4:-$(sip_uri "$b")} || return 1
	if ! _sip_no_calls "$a" || ! _sip_no_calls "$b"; then
		_sip_err "$ua or $ub is in a call already"
		return 1
	fi
	cda=$(_sip_new_call "$a" "$b") && cdb=$(_sip_new_call "$b" "$a") || return 1
	# Each event is a new line in a log that keeps every earlier call: count first.
	wc -l <"$a/baresip.log" >"$cda/from"
	wc -l <"$b/baresip.log" >"$cdb/from"
	est_a=$(_sip_count "$a" "Call established") est_b=$(_sip_count "$b" "Call established")
	_sip_capture_start "$a" "$cda" && _sip_capture_start "$b" "$cdb" || rc=1
	if ((rc == 0)) && sip_cmd "$a" dial "$ub" >/dev/null; then
		if ! lab_wait_for _sip_more "$a" "Call established" "$est_a" --timeout "$SIP_SETUP_S" ||
			! lab_wait_for _sip_more "$b" "Call established" "$est_b" --timeout "$SIP_WAIT_S"; then
			_sip_err "call $ua -> $ub was not established on both sides"
			rc=1
		fi
	else
		rc=1
	fi
	if ((rc == 0)); then
		# The call's length counts from its establishment, RTP or not: the media is
		# judged from the dumps and the captures.
		t0=$(_lab_now_ms)
		_sip_sleep_until $((t0 + secs * 1000))
	fi
	# Hang up from A; B learns it by BYE.  A B that does not is hung up itself.  The
	# end is read from the UA's list of calls: baresip logs no line for every end (its
	# "terminated" summary is left out for calls under a second).
	sip_cmd "$a" hangup >/dev/null || true
	if ! lab_wait_for _sip_no_calls "$a" --timeout "$SIP_WAIT_S" --interval 0.1; then
		_sip_err "$ua did not end its call"
		rc=1
	fi
	if ! lab_wait_for _sip_no_calls "$b" --timeout "$SIP_WAIT_S" --interval 0.1; then
		_sip_err "$ub did not learn that the call ended (no BYE?); hanging up there"
		sip_cmd "$b" hangup >/dev/null || true
		rc=1
	fi
	_sip_capture_stop "$cda"
	_sip_capture_stop "$cdb"
	_sip_collect "$a" "$cda" || rc=1
	_sip_collect "$b" "$cdb" || rc=1
	if ((rc)); then
		_sip_err "the call's logs (ends):"
		tail -n 15 "$cda/baresip.log" "$cdb/baresip.log" | sed 's/^/  /' >&2
		_sip_err "restarting both user agents"
		if ! sip_ua_restart "$a" || ! sip_ua_restart "$b"; then
			_sip_err "restart failed"
		fi
	fi
	return "$rc"
}

# sip_call_dir DIR [N]: the UA's call N (default its last).
sip_call_dir() {
	local n=${2:-}
	[[ -n "$n" ]] || n=$(_sip_get "$1" calls) || return 1
	if [[ ! -d "$1/call-$n" ]]; then
		_sip_err "no call $n in $1"
		return 1
	fi
	printf '%s' "$1/call-$n"
}

# sip_rx_tone_s DIR [HZ [N]]: seconds of HZ (default: the peer's tone) received in call N.
sip_rx_tone_s() {
	local cd hz=${2:-}
	cd=$(sip_call_dir "$1" "${3:-}") || return 1
	[[ -n "$hz" ]] || hz=$(cat "$cd/peer_tone") || return 1
	if [[ ! -e "$cd/rx.wav" ]]; then # no dump, no audio: 0 s, and why
		_sip_err "$cd/rx.wav missing"
		printf '0.0'
		return 0
	fi
	"$SIP_WAV_TONE" "$cd/rx.wav" "$hz"
}

# sip_tx_tone_s DIR [HZ [N]]: seconds of HZ (default: the UA's own tone) in what the UA
# sent during call N: the control that the source and the measurement work.
sip_tx_tone_s() {
	local cd hz=${2:-}
	cd=$(sip_call_dir "$1" "${3:-}") || return 1
	[[ -n "$hz" ]] || hz=$(_sip_get "$1" tone) || return 1
	if [[ ! -e "$cd/tx.wav" ]]; then
		_sip_err "$cd/tx.wav missing"
		printf '0.0'
		return 0
	fi
	"$SIP_WAV_TONE" "$cd/tx.wav" "$hz"
}

# What the captures tell apart (by content: see the top).  RTP carries 160 bytes of
# PCMU per 20 ms after its 12-byte header; more than 20 bytes rules out n4's 8-byte
# keepalives and the like.
SIP_PCAP_RTP='udp[8] & 0xc0 = 0x80 and udp[9] & 0x7f = 0 and udp[4:2] > 28'
SIP_PCAP_RTCP='udp[8] & 0xc0 = 0x80 and (udp[9] = 200 or udp[9] = 201)'
SIP_PCAP_200='udp[8:4] = 0x5349502f and udp[12:4] = 0x322e3020 and udp[16:4] = 0x32303020'

# _sip_pcap_count DIR CALLDIR FILTER: datagrams to the UA in the call's capture that
# match FILTER.
_sip_pcap_count() {
	local n ip
	ip=$(_sip_get "$1" ip) || return 1
	n=$(tcpdump -r "$2/in.pcap" -n "dst host $ip and ($3)" 2>/dev/null | wc -l) || return 1
	printf '%s' "$n"
}

# sip_rtcp_reports DIR [N]: RTCP sender/receiver reports (first packet type 200/201 of
# a compound) that reached the UA in call N.  The closing RTCP BYE (203) is not
# counted: it proves nothing about the call's course.
sip_rtcp_reports() {
	local cd
	cd=$(sip_call_dir "$1" "${2:-}") || return 1
	_sip_pcap_count "$1" "$cd" "$SIP_PCAP_RTCP"
}

# sip_rtp_packets DIR [N]: RTP packets that reached the UA in call N.
sip_rtp_packets() {
	local cd
	cd=$(sip_call_dir "$1" "${2:-}") || return 1
	_sip_pcap_count "$1" "$cd" "$SIP_PCAP_RTP"
}

# _sip_pcap_first_us CALLDIR FILTER: the time (microseconds since the epoch) of the
# first datagram of the call's capture that matches FILTER; nothing when none does.
_sip_pcap_first_us() {
	tcpdump -r "$1/in.pcap" -n -tt -c 1 "$2" 2>/dev/null |
		awk 'NR == 1 { split($1, t, "."); printf "%d%06d", t[1], t[2] }'
}

# sip_answer_rtp_ms DIR [N]: ms from the answer of call N (the first "SIP/2.0 200" in
# the UA's capture: sent by a callee, received by a caller) to the first RTP that
# reached the UA; "none" when either is missing.  Measured, not judged.
sip_answer_rtp_ms() {
	local cd ip t0 t1
	cd=$(sip_call_dir "$1" "${2:-}") && ip=$(_sip_get "$1" ip) || return 1
	t0=$(_sip_pcap_first_us "$cd" "$SIP_PCAP_200")
	t1=$(_sip_pcap_first_us "$cd" "dst host $ip and ($SIP_PCAP_RTP)")
	if [[ -z "$t0" || -z "$t1" ]]; then
		printf 'none'
		return 0
	fi
	printf '%d' $(((t1 - t0) / 1000))
}

# sip_rtcp_in_stats DIR [N]: baresip's statistics at the end of call N show that its RTP
# stack took in an RTCP sender report from the peer (the "pkt.report" row is printed
# only then): RTCP reached the application, not only the host.
sip_rtcp_in_stats() {
	local cd
	cd=$(sip_call_dir "$1" "${2:-}") || return 1
	grep -q "^pkt.report:" "$cd/baresip.log"
}

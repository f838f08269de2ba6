#!/usr/bin/env bash
# test_shim_ipv6.sh - the shim carries a direct IPv6 path under IPv4 programs (issue 22).
#   - random/random NATs, IPv6 on both sides behind stateful firewalls: shimmed
#     netcat-openbsd both ways, punched over IPv6 (the shim's log), never relayed; a
#     capture at the WAN shows the data as IPv6 between the two hosts; no PUNCH or
#     keepalive byte reaches the programs;
#   - what the program sees: an IPv4 program (tests/helpers/shim_v4view) gets only
#     whole sockaddr_in from recvfrom, recvmsg, recvmmsg, getsockname and getpeername,
#     the placeholder as its peer, its own port, and IP_TOS/IP_TTL read back as set;
#     the wire carries its TOS as the IPv6 traffic class;
#   - IPv6 on one side only (N4_IPV6=0), and firewalls that drop all IPv6: IPv4 as
#     before (relayed, random/random);
#   - an AF_INET6 program with a v4-mapped placeholder, over IPv6; keyed, over IPv6;
#   - the late-PUNCH filter on the AF_INET6 socket, and the IPv6 path across exec;
#   - IPv6 -> IPv4: the IPv6 firewall starts dropping mid-stream; the stream resumes
#     over IPv4 (recovery), the program's peer address unchanged.
# Each case has its own identifier and fresh NAT and firewall state.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
source "$HERE/punch_lib.sh"
SHIM=$N4_BIN/libn4shim.so
VIEW=$N4_BIN/tests/shim_v4view
PH=192.0.2.77:7777 # N4_PEER on both sides of the shim_v4view cases
PH_PORT=5000

lab_require_root || exit 1
lab_with_server shim-ipv6 --nat-a random --nat-b random --ipv6 on

punched() { grep -q "punched: local port" "$1"; }
punched6() { grep -q "punched: local port .* (IPv6)" "$1"; }
relayed() { grep -q "relayed through the server" "$1"; }
win_of() { sed -nE 's/.*punched: local port .* in ([0-9]+) ms.*/\1/p' "$1" | head -n 1; }
dump() { tail -n 12 "$@" >&2; }

# view NODE LOG IDENT ENV... -- ARGS...: shim_v4view under the shim (N4_PEER=$PH,
# N4_LISTEN, the server's IPv6 address); prints its pid.
view() {
	local node=$1 log=$2 ident=$3 envs=()
	shift 3
	while [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	lab_bg "$node" "$log" env N4_SERVER="$LAB_SRV_IP" N4_SERVER6="$LAB_SRV_IP6" \
		N4_IDENT="$ident" N4_PEER="$PH" N4_LISTEN=$PH_PORT LD_PRELOAD="$SHIM" \
		"${envs[@]}" "$VIEW" "$@"
}
# view_pair TAG ENV_A... -- ENV_B... : a client at a and a listener at b, 8 s;
# sets LA/LB (their logs: the shim's lines and the program's).
view_pair() {
	local tag=$1 ea=() eb=() pa pb
	shift
	while [[ $1 != -- ]]; do
		ea+=("$1")
		shift
	done
	shift
	eb=("$@")
	LA=$LAB_DIR/$tag-a.log LB=$LAB_DIR/$tag-b.log
	lab_flush
	pa=$(view a "$LA" "$tag" "${ea[@]}" -- -c "$PH" -d 8 -C -T 184)
	pb=$(view b "$LB" "$tag" "${eb[@]}" -- -l $PH_PORT -d 9 -T 184)
	wait_pids 40 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
}
got() { sed -nE 's/^done sent [0-9]+ got ([0-9]+).*/\1/p' "$1"; }
clean() { grep -q "^done .* bad 0 foreign 0$" "$1"; }
sees_only_ph() { [[ $(grep -c '^from ' "$1") == 1 ]] && grep -q "^from $PH\$" "$1"; }

# ------------------------------------------------- random/random, nc both ways
d=$LAB_DIR/nc
mkdir -p "$d"
mkfifo "$d/in-a" "$d/in-b"
: >"$d/out-a"
: >"$d/out-b"
exec {fa}<>"$d/in-a" {fb}<>"$d/in-b"
lab_flush
pcap=$LAB_DIR/nc6.pcap
capture_start wan any "$pcap" ip6 and udp
nc_side() { # NODE TAG IN OUT ENV... -- CMD...
	local node=$1 tag=$2 in=$3 out=$4 envs=()
	shift 4
	while [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	lab_bg "$node" "$LAB_DIR/$tag.log" env N4_SERVER="$LAB_SRV_IP" \
		N4_SERVER6="$LAB_SRV_IP6" N4_IDENT=nc6 N4_KEEPALIVE=1 LD_PRELOAD="$SHIM" \
		"${envs[@]}" sh -c 'i=$1 o=$2; shift 2; exec "$@" <"$i" >"$o"' sh "$in" "$out" "$@"
}
pa=$(nc_side a nc6-a "$d/in-a" "$d/out-a" -- nc -u "$LAB_SRV_IP" $PH_PORT)
pb=$(nc_side b nc6-b "$d/in-b" "$d/out-b" N4_LISTEN=$PH_PORT -- nc -u -l $PH_PORT)
if lab_wait_for punched "$LAB_DIR/nc6-a.log" --timeout 40 &&
	lab_wait_for punched "$LAB_DIR/nc6-b.log" --timeout 10; then
	ok "nc, random/random: both sides punched"
else
	not_ok "nc, random/random: both sides punched"
	dump "$LAB_DIR/nc6-a.log" "$LAB_DIR/nc6-b.log"
fi
check "nc: both punched over IPv6, not relayed (a in $(win_of "$LAB_DIR/nc6-a.log") ms)" \
	bash -c "grep -q 'punched: local port .* \[$LAB_B_IP6\]:[0-9]* (IPv6)' '$LAB_DIR/nc6-a.log' &&
		grep -q 'punched: local port .* \[$LAB_A_IP6\]:[0-9]* (IPv6)' '$LAB_DIR/nc6-b.log' &&
		! grep -q relayed '$LAB_DIR/nc6-a.log' '$LAB_DIR/nc6-b.log'"
echo "line from a $RANDOM" >&"$fa"
check "nc: a line from A reaches B" lab_wait_for grep -q "line from a" "$d/out-b" --timeout 5
echo "line from b $RANDOM" >&"$fb"
check "nc: a line from B reaches A" lab_wait_for grep -q "line from b" "$d/out-a" --timeout 5
# Keepalives every second cross both sockets' filters meanwhile: wait for three
# more at the WAN, then one more line each way.
ka_seen() { (($(tcpdump -n -r "$pcap" "src $LAB_A_IP6 and dst $LAB_B_IP6 and udp" 2>/dev/null | grep -c "length 8") >= ${1:-1})); }
ka0=$(tcpdump -n -r "$pcap" "src $LAB_A_IP6 and dst $LAB_B_IP6 and udp" 2>/dev/null | grep -c "length 8")
check "nc: keepalives from A cross over IPv6" lab_wait_for ka_seen $((ka0 + 3)) --timeout 10
echo "second line from a" >&"$fa"
check "nc: a second line from A reaches B" lab_wait_for grep -q "second line from a" "$d/out-b" --timeout 5
echo "second line from b" >&"$fb"
check "nc: a second line from B reaches A" lab_wait_for grep -q "second line from b" "$d/out-a" --timeout 5
capture_stop
if grep -q $'\x05' "$d/out-a" "$d/out-b" || [[ $(wc -l <"$d/out-a") != 2 || $(wc -l <"$d/out-b") != 2 ]]; then
	not_ok "nc: the programs got their lines and nothing else (no PUNCH or keepalive)"
	cat -v "$d/out-a" "$d/out-b" >&2
else
	ok "nc: the programs got their lines and nothing else (no PUNCH or keepalive)"
fi
# the lines themselves (length > 8) between the two hosts' own IPv6 addresses
data6() { tcpdump -n -r "$pcap" "src $1 and dst $2 and udp" 2>/dev/null | grep -cE "length (1[2-9]|[2-9][0-9])"; }
a2b=$(data6 "$LAB_A_IP6" "$LAB_B_IP6") b2a=$(data6 "$LAB_B_IP6" "$LAB_A_IP6")
check "nc: the WAN saw the lines as IPv6 between the hosts ($a2b a->b, $b2a b->a)" \
	test "$a2b" -ge 2 -a "$b2a" -ge 2
exec {fa}>&- {fb}>&-
lab_stop_pid "$pa"
lab_stop_pid "$pb"

# ------------------------------------------- what an IPv4 program sees over IPv6
pcap=$LAB_DIR/view6.pcap
capture_start wan any "$pcap" ip6 and udp
view_pair v6view N4_KEEPALIVE=1 -- N4_KEEPALIVE=1
capture_stop
if punched6 "$LA" && punched6 "$LB" && ! relayed "$LA"; then
	ok "v4 program: punched over IPv6 (a in $(win_of "$LA") ms, b in $(win_of "$LB") ms)"
else
	not_ok "v4 program: punched over IPv6"
	dump "$LA" "$LB"
fi
T6=$(win_of "$LA")
check "v4 program: both exchanged datagrams ($(got "$LA") at a, $(got "$LB") at b)" \
	test "$(got "$LA")" -ge 30 -a "$(got "$LB")" -ge 30
check "v4 program: every address a whole sockaddr_in, no foreign datagram" \
	bash -c "grep -q '^done .* bad 0 foreign 0\$' '$LA' && grep -q '^done .* bad 0 foreign 0\$' '$LB'"
check "v4 program: the peer is the placeholder $PH (recvfrom/recvmsg/recvmmsg, both sides)" \
	bash -c "$(declare -f sees_only_ph); PH=$PH; sees_only_ph '$LA' && sees_only_ph '$LB'"
check "v4 program: getpeername is the placeholder, as an AF_INET address" \
	grep -q "^peername inet $PH\$" "$LA"
check "v4 program: getsockname is AF_INET with the program's port (listener $PH_PORT)" \
	bash -c "grep -qE '^sockname inet 0\\.0\\.0\\.0:[1-9][0-9]*\$' '$LA' && grep -q '^sockname inet 0.0.0.0:$PH_PORT\$' '$LB'"
check "v4 program: IP_TOS and IP_TTL read back as set" \
	bash -c "grep -q '^tos 184 ttl 77\$' '$LA' && grep -q '^tos 184 ttl 77\$' '$LB'"
check "v4 program: the wire carries its TOS as the IPv6 traffic class (0xb8)" \
	bash -c "tcpdump -v -n -r '$pcap' 'src $LAB_A_IP6 and dst $LAB_B_IP6 and udp' 2>/dev/null | grep -q 'class 0xb8'"

# ------------------------- the late-PUNCH filter on the IPv6 socket, and exec
# tests/helpers/shim_session: a sends a PUNCH for the identifier every 5th datagram
# (what a late PUNCH of the peer's shim looks like): b's socket filter, on its
# AF_INET6 socket, must drop every one (the filter reads the UDP header at offset 0
# on both families).  Then a execs itself on a copy of its socket and keeps sending:
# the new image adopts the IPv6 path from the filter's state.
SESSION=$N4_BIN/tests/shim_session
sess() { # NODE LOG IDENT ARGS...
	local node=$1 log=$2 ident=$3
	shift 3
	lab_bg "$node" "$log" env N4_SERVER="$LAB_SRV_IP" N4_SERVER6="$LAB_SRV_IP6" \
		N4_IDENT="$ident" N4_PEER="$PH" N4_LISTEN=$PH_PORT LD_PRELOAD="$SHIM" "$SESSION" "$@"
}
LA=$LAB_DIR/v6filt-a.log LB=$LAB_DIR/v6filt-b.log
lab_flush
pb=$(sess b "$LB" v6filt -l $PH_PORT -d 7)
pa=$(sess a "$LA" v6filt -c "$PH" -d 6 -K)
wait_pids 40 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
gotb=$(sed -nE 's/^done sent [0-9]+ got ([0-9]+).*/\1/p' "$LB")
if punched6 "$LA" && punched6 "$LB" && [[ ${gotb:-0} -ge 20 ]] && ! grep -q "got a PUNCH" "$LB"; then
	ok "filter on the IPv6 socket: every PUNCH a sent was dropped at b ($gotb other datagrams heard)"
else
	not_ok "filter on the IPv6 socket: PUNCHes dropped, the rest heard (${gotb:-0})"
	dump "$LA" "$LB"
fi
LA=$LAB_DIR/v6exec-a.log LB=$LAB_DIR/v6exec-b.log
lab_flush
pb=$(sess b "$LB" v6exec -l $PH_PORT -p "$PH" -d 6)
pa=$(sess a "$LA" v6exec -c "$PH" -d 5 -X -E)
wait_pids 40 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
check "exec: the new image adopts the IPv6 path (five copies)" \
	grep -q "punched path inherited across exec (peer \[$LAB_B_IP6\]:" "$LA"
gotb=$(sed -nE 's/^done sent [0-9]+ got ([0-9]+).*/\1/p' "$LB")
check "exec: its sends to the placeholder still reach the peer over IPv6 (${gotb:-0} received)" \
	test "${gotb:-0}" -ge 25

# An AF_INET6 program (bound to [::]:0, sending to the v4-mapped placeholder) over
# the IPv6 path: it sees the v4-mapped placeholder, both ways.
LA=$LAB_DIR/v6dual-a.log LB=$LAB_DIR/v6dual-b.log
lab_flush
pb=$(sess b "$LB" v6dual -l $PH_PORT -d 7)
pa=$(sess a "$LA" v6dual -c "$PH" -d 6 -6)
wait_pids 40 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
gota=$(sed -nE 's/^done sent [0-9]+ got ([0-9]+).*/\1/p' "$LA")
gotb=$(sed -nE 's/^done sent [0-9]+ got ([0-9]+).*/\1/p' "$LB")
if punched6 "$LA" && punched6 "$LB" && [[ ${gota:-0} -ge 25 && ${gotb:-0} -ge 25 ]]; then
	ok "AF_INET6 program with a v4-mapped placeholder: over IPv6, both ways ($gota/$gotb)"
else
	not_ok "AF_INET6 program with a v4-mapped placeholder: over IPv6, both ways (${gota:-0}/${gotb:-0})"
	dump "$LA" "$LB"
fi

# --------------------------------------------------- keyed, over IPv6
key=$LAB_DIR/k6
(umask 077 && "$N4" genkey >"$key")
view_pair v6key N4_KEY_FILE="$key" -- N4_KEY_FILE="$key"
if punched6 "$LA" && punched6 "$LB" && clean "$LA" && clean "$LB" &&
	test "$(got "$LA")" -ge 30 -a "$(got "$LB")" -ge 30; then
	ok "keyed: punched over IPv6, datagrams both ways, only whole sockaddr_in"
else
	not_ok "keyed: punched over IPv6, datagrams both ways"
	dump "$LA" "$LB"
fi

# -------------------------------------------- IPv6 on one side only: as before
view_pair v6one -- N4_IPV6=0
if relayed "$LA" && relayed "$LB" && ! grep -q "(IPv6)" "$LA" "$LB" && clean "$LA" && clean "$LB" &&
	test "$(got "$LA")" -ge 30 -a "$(got "$LB")" -ge 30 && sees_only_ph "$LA" && sees_only_ph "$LB"; then
	ok "IPv6 on one side only (N4_IPV6=0): relayed over IPv4 as before, datagrams both ways"
else
	not_ok "IPv6 on one side only: relayed over IPv4 as before"
	dump "$LA" "$LB"
fi

# ------------------------------------------------ IPv6 dropped: as before
lab_set_v6fw a drop && lab_set_v6fw b drop
view_pair v6drop -- 
if relayed "$LA" && relayed "$LB" && ! grep -q "(IPv6)" "$LA" "$LB" && clean "$LA" && clean "$LB" &&
	test "$(got "$LA")" -ge 30 -a "$(got "$LB")" -ge 30; then
	ok "IPv6 firewalls that drop everything: relayed over IPv4 as before, datagrams both ways"
else
	not_ok "IPv6 firewalls that drop everything: relayed over IPv4 as before"
	dump "$LA" "$LB"
fi
lab_set_v6fw a stateful && lab_set_v6fw b stateful

# ------------------------------------ inc/inc: time to WIN, IPv6 and IPv4 alone
lab_set_nat a inc && lab_set_nat b inc
view_pair v4inc N4_IPV6=0 -- N4_IPV6=0
T4=$(win_of "$LA")
check "inc/inc, N4_IPV6=0: punched over IPv4" \
	bash -c "grep -q 'punched: local port' '$LA' && ! grep -qE '\\(IPv6\\)|relayed' '$LA'"
view_pair v6inc -- 
T6I=$(win_of "$LA")
check "inc/inc, IPv6 on both: IPv6 preferred over the IPv4 punch" punched6 "$LA"
echo "# time to WIN at a (shimmed): IPv6 ${T6:-?} ms (random/random), ${T6I:-?} ms (inc/inc); IPv4 alone ${T4:-?} ms (inc/inc)"

# ----------------------------------------- IPv6 -> IPv4 when IPv6 goes away
# A 16 s stream; once both sides hear each other over IPv6, site A's firewall drops
# all IPv6: the stream must resume over IPv4, the peer still the placeholder.
LA=$LAB_DIR/v6move-a.log LB=$LAB_DIR/v6move-b.log
lab_flush
pa=$(view a "$LA" v6move -- -c "$PH" -d 16 -C)
pb=$(view b "$LB" v6move -- -l $PH_PORT -d 17)
heard() { grep -q "^sockname" "$1"; }
if lab_wait_for heard "$LA" --timeout 40 && lab_wait_for heard "$LB" --timeout 10 && punched6 "$LA"; then
	ok "IPv6 -> IPv4: the stream runs over IPv6 first"
else
	not_ok "IPv6 -> IPv4: the stream runs over IPv6 first"
	dump "$LA" "$LB"
fi
t_drop=$(date +%s%3N)
lab_set_v6fw a drop
recovered() { grep -q "path recovered" "$1"; }
check "IPv6 -> IPv4: a's shim recovers the path" lab_wait_for recovered "$LA" --timeout 15
t_rec=$(date +%s%3N)
wait_pids 30 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
lab_set_v6fw a stateful
rec_line=$(grep -m1 "path recovered" "$LA")
echo "# $rec_line"
check "IPv6 -> IPv4: the new path is IPv4 (the recovery line names an IPv4 peer)" \
	bash -c "grep 'path recovered' '$LA' | grep -qvE '\\(IPv6\\)'"
last_gap=$(sed -nE 's/^gap ([0-9]+)$/\1/p' "$LA" | sort -n | tail -n 1)
echo "# IPv6 -> IPv4: longest silence at a ${last_gap:-0} ms; recovery logged $((t_rec - t_drop)) ms after the drop"
# a "gap" line is printed by the datagram that ends the silence
check "IPv6 -> IPv4: the stream resumed at a after ${last_gap:-no} ms of silence" \
	test "${last_gap:-0}" -ge 1000
check "IPv6 -> IPv4: the program's peer stayed the placeholder, every address whole" \
	bash -c "$(declare -f sees_only_ph clean); PH=$PH; sees_only_ph '$LA' && sees_only_ph '$LB' && clean '$LA' && clean '$LB'"

# ------------------------------- IPv6 -> IPv4 when the IPv6 route disappears
# The same stream; this time host a loses its IPv6 default route (a mobile link that
# drops IPv6): its sends fail in the kernel (ENETUNREACH, a lost datagram to the
# program), and the path must move to IPv4 all the same.
LA=$LAB_DIR/v6route-a.log LB=$LAB_DIR/v6route-b.log
lab_flush
ns_a=$(lab_ns a)
route_a=$(ip -n "$ns_a" -6 route show default | head -n 1)
pa=$(view a "$LA" v6rt -- -c "$PH" -d 16 -C)
pb=$(view b "$LB" v6rt -- -l $PH_PORT -d 17)
if lab_wait_for heard "$LA" --timeout 40 && lab_wait_for heard "$LB" --timeout 10 && punched6 "$LA"; then
	ok "route gone: the stream runs over IPv6 first"
else
	not_ok "route gone: the stream runs over IPv6 first"
	dump "$LA" "$LB"
fi
check "route gone: host a's IPv6 default route ($route_a) removed" \
	ip -n "$ns_a" -6 route del default
check "route gone: a's shim recovers the path" lab_wait_for recovered "$LA" --timeout 15 ||
	dump "$LA" "$LB"
wait_pids 30 "$pa" "$pb" || { lab_stop_pid "$pa"; lab_stop_pid "$pb"; }
# shellcheck disable=SC2086 # the route's words
check "route gone: host a's IPv6 default route restored" ip -n "$ns_a" -6 route add $route_a
echo "# $(grep -m1 "path recovered" "$LA")"
check "route gone: the new path is IPv4" \
	bash -c "grep 'path recovered' '$LA' | grep -qvE '\\(IPv6\\)'"
# a still heard b throughout (only its own sends failed): b is the side with a gap
check "route gone: the stream resumed at b (a gap line: $(sed -nE 's/^gap ([0-9]+)$/\1/p' "$LB" | sort -n | tail -n 1) ms)" \
	grep -q "^gap " "$LB"
check "route gone: the program's peer stayed the placeholder, every address whole" \
	bash -c "$(declare -f sees_only_ph clean); PH=$PH; sees_only_ph '$LA' && sees_only_ph '$LB' && clean '$LA' && clean '$LB'"

summary shim-ipv6

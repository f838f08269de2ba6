# shellcheck shell=bash
# NAT lab for n4: two hosts behind two NATs, a rendezvous server and a WAN router, all in
# network namespaces of this machine.  Sourced by the lab tests, the demo and benchmarks.
#
#   srv 192.0.2.2 ---- 192.0.2.1 [wan] 198.51.100.1 ---- 198.51.100.2 [nata] 10.1.0.1 -- a 10.1.0.2
#                      (delay, loss,   203.0.113.1 ---- 203.0.113.2 [natb] 10.2.0.1     a2 10.1.0.3
#                       noise sink                                       |              b 10.2.0.2
#                       192.0.2.250)                                     +------------- b2 10.2.0.3
#
# With lab_up --lan2 on, nata also serves a second LAN, 10.3.0.1 -- a3 10.3.0.2, and
# forwards nothing between its two LANs (a guest network, separate VLANs): a3 shares
# a's public IP without a route to it.
#
# With lab_up --same-subnet on, B's LAN is numbered like A's, as two home networks
# often are: natb 10.1.0.1 -- b 10.1.0.12, b2 10.1.0.13 (LAB_B_IP, LAB_B2_IP follow;
# distinct from a's and a2's, so that a host on A's LAN can be given b's address).  The
# two LANs stay separate (each behind its own NAT); only the numbers meet.
#
# With lab_up --sites N (3..5; 2 is the picture above), more sites hang off wan, each a
# NAT with its own public IP and one host on its own LAN (a room's many joiners, each
# behind a NAT of its own):
#   wan 100.64.3.1 ---- 100.64.3.2 [natc] 10.4.0.1 -- c 10.4.0.2
#   wan 100.64.4.1 ---- 100.64.4.2 [natd] 10.5.0.1 -- d 10.5.0.2
#   wan 100.64.5.1 ---- 100.64.5.2 [nate] 10.6.0.1 -- e 10.6.0.2
# (100.64.0.0/10 is carrier-grade NAT space: public to the sites, never routed here.)
#
# With lab_up --ipv6 on, every node also has routed IPv6 from the documentation prefix
# 2001:db8::/32, beside the unchanged IPv4: each site X (a..e) is delegated 2001:db8:X::/48,
# its router natX puts the /64 2001:db8:X::/64 on its LAN and routes it, without NAT, so
# the hosts' global addresses are what the far end sees:
#   srv 2001:db8:0:2::2 ---- 2001:db8:0:2::1 [wan] 2001:db8:0:a::1 ---- 2001:db8:0:a::2 [nata]
#       2001:db8:a::1 -- a 2001:db8:a::2, a2 2001:db8:a::3   (a3 2001:db8:a:3::2 with --lan2)
#   (the same for b, and for c..e with --sites: natX 2001:db8:0:X::2, X 2001:db8:X::2)
# Each site router runs a stateful IPv6 firewall in its forward hook, as home routers and
# carriers do: from the LAN anything goes; from the WAN only what belongs to a flow that
# left the LAN (two hosts sending to each other at about the same time open both), plus
# ICMPv6 errors and echo requests (RFC 4890).  lab_set_v6fw changes it per site.  No
# router advertisements, no router solicitations, no DAD: addresses and routes are static
# and usable at once.
#
# Namespaces are named n4-$LAB_ID-NODE so several labs can coexist.  Nothing connects to
# the root namespace and no route points out of the lab.  Every function returns non-zero
# with a message on stderr on failure; the library never exits the caller.
#
# API: lab_require_root, lab_up, lab_down, lab_exec, lab_bg, lab_flush, lab_set_nat,
#      lab_set_noise, lab_set_delay, lab_set_v6fw, lab_wait_for, lab_ns, lab_stop_pid.

LAB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_REPO=$(cd "$LAB_LIB_DIR/../.." && pwd)
LAB_TOOLS=${N4_BUILD:-$LAB_REPO/build}/lab

LAB_NODES=(srv wan nata natb a a2 b b2)

LAB_SRV_IP=192.0.2.2
LAB_WAN_SRV_IP=192.0.2.1
LAB_SINK_IP=192.0.2.250 # owned by wan; UDP to it is dropped silently (noise sink)
LAB_NATA_IP=198.51.100.2
LAB_NATB_IP=203.0.113.2
LAB_A_IP=10.1.0.2
LAB_A2_IP=10.1.0.3
LAB_B_IP=10.2.0.2
LAB_B2_IP=10.2.0.3
LAB_B_IP_SAME=10.1.0.12 # b and b2 with lab_up --same-subnet on
LAB_B2_IP_SAME=10.1.0.13
LAB_A3_IP=10.3.0.2 # only with lab_up --lan2 on
LAB_NATC_IP=100.64.3.2 # natc..nate, c..e: only with lab_up --sites 3..5
LAB_NATD_IP=100.64.4.2
LAB_NATE_IP=100.64.5.2
LAB_C_IP=10.4.0.2
LAB_D_IP=10.5.0.2
LAB_E_IP=10.6.0.2
LAB_EXTRA_SITES=(c d e) # in the order --sites adds them
export LAB_SRV_IP LAB_WAN_SRV_IP LAB_SINK_IP LAB_NATA_IP LAB_NATB_IP
export LAB_A_IP LAB_A2_IP LAB_B_IP LAB_B2_IP LAB_A3_IP
export LAB_NATC_IP LAB_NATD_IP LAB_NATE_IP LAB_C_IP LAB_D_IP LAB_E_IP
# IPv6, only with lab_up --ipv6 on.  A site's prefixes follow from its letter: its link
# to wan is 2001:db8:0:X::/64 (wan ::1, natX ::2), its LAN 2001:db8:X::/64 (natX ::1).
LAB_SRV_IP6=2001:db8:0:2::2
LAB_WAN_SRV_IP6=2001:db8:0:2::1
LAB_NATA_IP6=2001:db8:0:a::2 # the site routers' WAN side
LAB_NATB_IP6=2001:db8:0:b::2
LAB_NATC_IP6=2001:db8:0:c::2
LAB_NATD_IP6=2001:db8:0:d::2
LAB_NATE_IP6=2001:db8:0:e::2
LAB_A_IP6=2001:db8:a::2
LAB_A2_IP6=2001:db8:a::3
LAB_B_IP6=2001:db8:b::2
LAB_B2_IP6=2001:db8:b::3
LAB_A3_IP6=2001:db8:a:3::2 # with --lan2 on: nata's second LAN, its own /64
LAB_C_IP6=2001:db8:c::2
LAB_D_IP6=2001:db8:d::2
LAB_E_IP6=2001:db8:e::2
LAB_V6FW_MODES="open, stateful, drop, noinbound"
export LAB_SRV_IP6 LAB_WAN_SRV_IP6 LAB_NATA_IP6 LAB_NATB_IP6 LAB_NATC_IP6 LAB_NATD_IP6
export LAB_NATE_IP6 LAB_A_IP6 LAB_A2_IP6 LAB_B_IP6 LAB_B2_IP6 LAB_A3_IP6 LAB_C_IP6 LAB_D_IP6
export LAB_E_IP6

# Port-incrementing NAT: public port = BASE + (new-mapping counter mod SIZE).  The map is
# written element by element (the `offset` form of numgen writes host byte order).  40000
# elements load in ~0.2 s per NAT here, and wrapping then needs 40 s of 1000 flows/s.
# Different bases for A and B so no test passes by symmetry.
LAB_INC_SIZE=${LAB_INC_SIZE:-40000}
LAB_INC_BASE_A=${LAB_INC_BASE_A:-20000}
LAB_INC_BASE_B=${LAB_INC_BASE_B:-24000}
# The extra sites' blocks must end below 65536 too: they start lower, each its own base.
LAB_INC_BASE_C=${LAB_INC_BASE_C:-21000}
LAB_INC_BASE_D=${LAB_INC_BASE_D:-22000}
LAB_INC_BASE_E=${LAB_INC_BASE_E:-23000}
LAB_RANDOM_PORTS=10000-60000
# inc/dec: +1/-1 per new mapping; inc2/dec2: +2/-2; -linux: plain conntrack (see below)
LAB_FLAVORS="inc, inc-linux, dec, dec-linux, inc2, inc2-linux, dec2, dec2-linux, cone, random"
LAB_NOISE_PORTS=(10000 59999) # sink's destination port range (noise.c defaults)
LAB_QUEUE=0                   # NFQUEUE number in wan (queues are per namespace)
_LAB_QUEUE_RULE=(-j NFQUEUE --queue-num "$LAB_QUEUE" --queue-bypass)

_lab_err() {
	printf 'lab: %s\n' "$*" >&2
}

# _lab_run DESCRIPTION CMD...: run, and on failure report the description and the output.
_lab_run() {
	local what=$1 out
	shift
	if ! out=$("$@" 2>&1); then
		_lab_err "$what failed: $*"
		[[ -n "$out" ]] && printf '%s\n' "$out" >&2
		return 1
	fi
	[[ -z "$out" ]] || printf '%s\n' "$out"
	return 0
}

_lab_valid_node() {
	local n
	for n in "${LAB_NODES[@]}"; do
		[[ "$1" == "$n" ]] && return 0
	done
	[[ "$1" == a3 && -e "${LAB_DIR:-}/lan2" ]] && return 0
	if [[ "$1" =~ ^(nat)?([cde])$ ]] && _lab_has_site "${BASH_REMATCH[2]}"; then
		return 0
	fi
	_lab_err "unknown node '$1' (one of: ${LAB_NODES[*]}$(_lab_extra_nodes))"
	return 1
}

# _lab_has_site SIDE: SIDE (a..e) is a site of the current lab.
_lab_has_site() {
	[[ "$1" == a || "$1" == b ]] && return 0
	[[ "$1" =~ ^[cde]$ && -e "${LAB_DIR:-}/site-$1" ]]
}

# _lab_sites: the current lab's sites, a b first.
_lab_sites() {
	local side out="a b"
	for side in "${LAB_EXTRA_SITES[@]}"; do
		_lab_has_site "$side" && out+=" $side"
	done
	printf '%s' "$out"
}

_lab_extra_nodes() { # for the error message
	local side
	for side in "${LAB_EXTRA_SITES[@]}"; do
		_lab_has_site "$side" && printf ' nat%s %s' "$side" "$side"
	done
}

_lab_dir_of() {
	printf '%s/n4-lab.%s' "${LAB_TMPDIR:-${TMPDIR:-/tmp}}" "$1"
}

_lab_need_id() {
	if [[ -z "${LAB_ID:-}" ]]; then
		_lab_err "LAB_ID is not set (call lab_up first or export LAB_ID)"
		return 1
	fi
	LAB_DIR=${LAB_DIR:-$(_lab_dir_of "$LAB_ID")}
}

# lab_ns NODE: the namespace name of NODE in the current lab.
lab_ns() {
	_lab_need_id || return 1
	_lab_valid_node "$1" || return 1
	printf 'n4-%s-%s' "$LAB_ID" "$1"
}

# lab_require_root: fail (with the line CI looks for) unless we can build namespaces.
lab_require_root() {
	local reason="" probe="n4-probe-$$-$RANDOM"
	if [[ "$(id -u)" != 0 ]]; then
		reason="not root (uid $(id -u))"
	elif ! command -v ip >/dev/null 2>&1; then
		reason="'ip' (iproute2) not installed"
	elif ! ip netns list >/dev/null 2>&1; then
		reason="'ip netns' unavailable"
	elif ! ip netns add "$probe" >/dev/null 2>&1; then
		reason="cannot create a network namespace (ip netns add failed)"
	else
		ip netns del "$probe" >/dev/null 2>&1 || true
		local tool
		for tool in nft conntrack; do
			if ! command -v "$tool" >/dev/null 2>&1; then
				reason="'$tool' not installed (run tests/deps.sh)"
				break
			fi
		done
	fi
	if [[ -n "$reason" ]]; then
		printf 'LAB TESTS NEED ROOT AND NETWORK NAMESPACES: %s\n' "$reason" >&2
		return 1
	fi
	return 0
}

# lab_exec NODE CMD...: run CMD inside NODE.
lab_exec() {
	local ns
	if (($# < 2)); then
		_lab_err "usage: lab_exec NODE CMD..."
		return 2
	fi
	ns=$(lab_ns "$1") || return 1
	shift
	ip netns exec "$ns" "$@"
}

# lab_bg NODE LOGFILE CMD...: start CMD in NODE in the background, output to LOGFILE;
# prints the pid (ip netns exec execs CMD, so it is CMD's own pid).
lab_bg() {
	local ns log
	if (($# < 3)); then
		_lab_err "usage: lab_bg NODE LOGFILE CMD..."
		return 2
	fi
	ns=$(lab_ns "$1") || return 1
	log=$2
	shift 2
	if ! : >>"$log"; then
		_lab_err "cannot write log file $log"
		return 1
	fi
	ip netns exec "$ns" "$@" >>"$log" 2>&1 </dev/null &
	printf '%s\n' "$!"
}

# lab_wait_for CMD... --timeout S [--interval S]: poll CMD until it succeeds.
lab_wait_for() {
	local timeout="" interval=0.02 cmd=()
	while (($#)); do
		case $1 in
		--timeout)
			timeout=${2:-}
			shift 2 || break
			;;
		--interval)
			interval=${2:-}
			shift 2 || break
			;;
		*)
			cmd+=("$1")
			shift
			;;
		esac
	done
	if ((${#cmd[@]} == 0)) || [[ ! "$timeout" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
		_lab_err "usage: lab_wait_for CMD... --timeout SECONDS [--interval SECONDS]"
		return 2
	fi
	local deadline now
	deadline=$(_lab_now_ms)
	deadline=$((deadline + $(_lab_sec_to_ms "$timeout")))
	while :; do
		"${cmd[@]}" && return 0
		now=$(_lab_now_ms)
		if ((now >= deadline)); then
			_lab_err "timed out after ${timeout}s waiting for: ${cmd[*]}"
			return 1
		fi
		sleep "$interval"
	done
}

_lab_now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	printf '%s' "$((t / 1000))"
}

_lab_sec_to_ms() {
	local int=${1%%.*} frac=""
	[[ "$1" == *.* ]] && frac=${1#*.}
	frac=${frac}000
	printf '%s' "$((10#${int:-0} * 1000 + 10#${frac:0:3}))"
}

_lab_pid_alive() {
	local state
	[[ -r "/proc/$1/stat" ]] || return 1
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# lab_stop_pid PID [TIMEOUT_S]: SIGTERM, wait for exit, SIGKILL after the timeout.
lab_stop_pid() {
	local pid=$1 timeout=${2:-3}
	[[ "$pid" =~ ^[0-9]+$ ]] || return 0
	_lab_pid_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	if ! lab_wait_for _lab_pid_not_alive "$pid" --timeout "$timeout" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		lab_wait_for _lab_pid_not_alive "$pid" --timeout 2 || return 1
	fi
	return 0
}

_lab_pid_not_alive() {
	! _lab_pid_alive "$1"
}

_lab_read_pidfile() {
	local f="$LAB_DIR/$1.pid"
	[[ -r "$f" ]] && cat "$f"
}

_lab_nft() {
	local node=$1
	shift
	_lab_run "nft in $node" lab_exec "$node" nft "$@" >/dev/null
}

_lab_sysctl() {
	local node=$1
	shift
	_lab_run "sysctl in $node" lab_exec "$node" sysctl -q -w "$@" >/dev/null
}

_lab_link() {
	_lab_run "ip link add" ip link add "$@" >/dev/null
}

_lab_addr() { # NODE DEV CIDR
	_lab_run "address $3 on $1/$2" ip -n "$(lab_ns "$1")" addr add "$3" dev "$2" >/dev/null
}

_lab_ifup() { # NODE DEV...
	local node=$1 dev
	shift
	for dev in "$@"; do
		_lab_run "link up $node/$dev" ip -n "$(lab_ns "$node")" link set "$dev" up >/dev/null ||
			return 1
	done
}

_lab_route() { # NODE GW
	_lab_run "default route in $1" ip -n "$(lab_ns "$1")" route add default via "$2" >/dev/null
}

# _lab_nat_ruleset SIDE FLAVOR: print the nftables ruleset for NAT SIDE (a..e).
_lab_nat_ruleset() {
	local side=$1 flavor=$2 pub base
	case $side in
	a) pub=$LAB_NATA_IP base=$LAB_INC_BASE_A ;;
	b) pub=$LAB_NATB_IP base=$LAB_INC_BASE_B ;;
	c) pub=$LAB_NATC_IP base=$LAB_INC_BASE_C ;;
	d) pub=$LAB_NATD_IP base=$LAB_INC_BASE_D ;;
	e) pub=$LAB_NATE_IP base=$LAB_INC_BASE_E ;;
	*)
		_lab_err "no NAT '$side'"
		return 1
		;;
	esac
	# "table add + delete" makes the file replace any previous lab ruleset atomically
	printf 'table ip n4lab_nat {}\ndelete table ip n4lab_nat\n'
	printf 'table ip n4lab_filter {}\ndelete table ip n4lab_filter\n'
	printf 'table ip n4lab_nat {\n\tchain postrouting {\n'
	printf '\t\ttype nat hook postrouting priority srcnat; policy accept;\n'
	case $flavor in
	inc | inc-linux | dec | dec-linux | inc2 | inc2-linux | dec2 | dec2-linux)
		# Arithmetic allocations: counter i -> BASE + step*i (inc, inc2) or counting down
		# from the top of the block (dec, dec2), wrapping inside [BASE, BASE + SIZE).
		local step=1 down=0 n=$LAB_INC_SIZE
		[[ $flavor == inc2* || $flavor == dec2* ]] && step=2 n=$((LAB_INC_SIZE / 2))
		[[ $flavor == dec* ]] && down=1
		printf '\t\toifname "wan0" meta l4proto udp snat to %s : numgen inc mod %d map { ' \
			"$pub" "$n"
		awk -v n="$n" -v b="$base" -v s="$step" -v d="$down" \
			'BEGIN { for (i = 0; i < n; i++) printf "%s%d : %d", (i ? ", " : ""), i,
				d ? b + s * (n - 1 - i) : b + s * i }'
		printf ' }\n'
		;;
	random)
		printf '\t\toifname "wan0" meta l4proto udp snat to %s : %s random\n' \
			"$pub" "$LAB_RANDOM_PORTS"
		;;
	cone) ;;
	*)
		_lab_err "unknown NAT flavor '$flavor' ($LAB_FLAVORS)"
		return 1
		;;
	esac
	# TCP (the client's control connection), ICMP and the cone flavour
	printf '\t\toifname "wan0" masquerade\n\t}\n}\n'
	printf 'table ip n4lab_filter {\n\tchain prerouting {\n'
	printf '\t\ttype filter hook prerouting priority -150; policy accept;\n'
	if [[ "$flavor" == inc || "$flavor" == dec || "$flavor" == inc2 || "$flavor" == dec2 ]]; then
		# Carrier NATs keep no state for unsolicited inbound packets: drop them after
		# conntrack has seen them (-200) but before their entry is confirmed.
		printf '\t\tiifname "wan0" ct state new counter drop\n'
	fi
	printf '\t}\n}\n'
}

# lab_set_nat a|b|c|d|e FLAVOR: (re)load the ruleset of that site's NAT (c..e only in
# a lab with that many sites).  Existing conntrack entries keep their mappings: call
# lab_flush after.
lab_set_nat() {
	local side=${1:-} flavor=${2:-} file
	_lab_need_id || return 1
	if ! [[ "$side" =~ ^[a-e]$ ]] || ! _lab_has_site "$side"; then
		_lab_err "lab_set_nat: side must be one of the lab's sites ($(_lab_sites)), not '$side'"
		return 1
	fi
	file="$LAB_DIR/nat-$side.nft"
	_lab_nat_ruleset "$side" "$flavor" >"$file" || return 1
	_lab_nft "nat$side" -f "$file" || return 1
	printf '%s\n' "$flavor" >"$LAB_DIR/nat-$side.flavor"
	case $side in
	a) LAB_NAT_A=$flavor ;;
	b) LAB_NAT_B=$flavor ;;
	c) LAB_NAT_C=$flavor ;;
	d) LAB_NAT_D=$flavor ;;
	e) LAB_NAT_E=$flavor ;;
	esac
	export LAB_NAT_A LAB_NAT_B
	[[ "$side" =~ [cde] ]] && export "LAB_NAT_${side^^}"
	return 0
}

_lab_ipv6_on() {
	[[ -e "${LAB_DIR:-}/ipv6" ]]
}

# _lab_ns_ipv6 NODE: a new namespace's IPv6 settings, made before its interfaces exist
# (each new interface starts from the default.* values).
_lab_ns_ipv6() {
	if ! _lab_ipv6_on; then
		# no IPv6: keeps router solicitations and MLD off the WAN and the delay queue
		_lab_sysctl "$1" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		return
	fi
	# Static addresses and routes only: no DAD (an address is usable the moment it is
	# added, not a second later), no router solicitations, router advertisements ignored.
	_lab_sysctl "$1" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
		net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0 \
		net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
}

_lab_addr6() { # NODE DEV CIDR
	_lab_run "address $3 on $1/$2" ip -n "$(lab_ns "$1")" -6 addr add "$3" dev "$2" nodad \
		>/dev/null
}

_lab_route6() { # NODE PREFIX|default GW
	_lab_run "IPv6 route $2 in $1" ip -n "$(lab_ns "$1")" -6 route add "$2" via "$3" >/dev/null
}

# _lab_v6fw_ruleset MODE: print the IPv6 firewall of a site router (see lab_set_v6fw).
_lab_v6fw_ruleset() {
	case $1 in
	open | stateful | drop | noinbound) ;;
	*)
		_lab_err "unknown IPv6 firewall mode '$1' ($LAB_V6FW_MODES)"
		return 1
		;;
	esac
	printf 'table ip6 n4lab_fw6 {}\ndelete table ip6 n4lab_fw6\n'
	printf 'table ip6 n4lab_fw6 {\n\tchain forward {\n'
	case $1 in
	open)
		printf '\t\ttype filter hook forward priority filter; policy accept;\n'
		printf '\t\tcounter accept\n'
		;;
	stateful)
		printf '\t\ttype filter hook forward priority filter; policy drop;\n'
		# from the LAN (every interface but the WAN's) anything goes
		printf '\t\tiifname != "wan0" counter accept\n'
		# from the WAN, replies to what left the LAN: a host's first datagram to a peer
		# opens the way back, so two peers that both send open both firewalls
		printf '\t\tct state established,related counter accept\n'
		# ICMPv6 that must not be dropped (RFC 4890 4.3.1); errors about a flow are
		# "related" already, these also admit the ones conntrack cannot match
		printf '\t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded, '
		printf 'parameter-problem, echo-request } counter accept\n'
		# new from the WAN: dropped in the forward hook, before conntrack confirms the
		# entry, so an unsolicited datagram leaves no state behind.  The last rule, the
		# one whose counter the tests read.
		printf '\t\tcounter drop\n'
		;;
	drop)
		# a broken IPv6: the router forwards nothing either way, and says nothing
		printf '\t\ttype filter hook forward priority filter; policy drop;\n'
		printf '\t\tcounter drop\n'
		;;
	noinbound)
		# IPv6 that works one way only: what leaves the site goes (a probe to the
		# server still arrives), nothing from the WAN comes in, not even replies
		printf '\t\ttype filter hook forward priority filter; policy drop;\n'
		printf '\t\tiifname != "wan0" counter accept\n'
		printf '\t\tcounter drop\n'
		;;
	esac
	printf '\t}\n}\n'
}

# lab_set_v6fw a|b|c|d|e open|stateful|drop|noinbound: the IPv6 firewall of that site's
# router (lab_up --ipv6 on only).  stateful (lab_up's) drops new inbound from the WAN; open
# forwards everything; drop forwards nothing (IPv6 broken at that site); noinbound
# forwards what leaves and nothing that comes in (IPv6 that reaches the server, not
# the site).  Conntrack
# entries survive a change: call lab_flush after to start from no state.
lab_set_v6fw() {
	local side=${1:-} mode=${2:-} file
	_lab_need_id || return 1
	if ! _lab_ipv6_on; then
		_lab_err "lab_set_v6fw: lab $LAB_ID has no IPv6 (lab_up --ipv6 on)"
		return 1
	fi
	if ! [[ "$side" =~ ^[a-e]$ ]] || ! _lab_has_site "$side"; then
		_lab_err "lab_set_v6fw: side must be one of the lab's sites ($(_lab_sites)), not '$side'"
		return 1
	fi
	file="$LAB_DIR/v6fw-$side.nft"
	_lab_v6fw_ruleset "$mode" >"$file" || return 1
	_lab_nft "nat$side" -f "$file" || return 1
	printf '%s\n' "$mode" >"$LAB_DIR/v6fw-$side.mode"
	printf -v "LAB_V6FW_${side^^}" '%s' "$mode"
	export "LAB_V6FW_${side^^}"
}

# _lab_ipv6_up: the IPv6 half of the lab, once the IPv4 topology (with --lan2 and the
# extra sites) stands; every interface exists and is up.
_lab_ipv6_up() {
	local side nat host var hosts
	_lab_addr6 srv eth0 "$LAB_SRV_IP6/64" || return 1
	_lab_addr6 wan srv0 "$LAB_WAN_SRV_IP6/64" || return 1
	_lab_route6 srv default "$LAB_WAN_SRV_IP6" || return 1
	_lab_sysctl wan net.ipv6.conf.all.forwarding=1 || return 1
	for side in $(_lab_sites); do
		nat=nat$side
		var=LAB_NAT${side^^}_IP6
		_lab_addr6 wan "${nat}0" "2001:db8:0:$side::1/64" || return 1
		_lab_addr6 "$nat" wan0 "${!var}/64" || return 1
		_lab_addr6 "$nat" br0 "2001:db8:$side::1/64" || return 1
		_lab_route6 "$nat" default "2001:db8:0:$side::1" || return 1
		# the site's /48 as an ISP delegates it; what the router has no LAN for is
		# unreachable there instead of bouncing between it and wan
		_lab_route6 wan "2001:db8:$side::/48" "${!var}" || return 1
		_lab_run "IPv6 route in $nat" ip -n "$(lab_ns "$nat")" -6 route add unreachable \
			"2001:db8:$side::/48" >/dev/null || return 1
		hosts=("$side")
		[[ "$side" == [ab] ]] && hosts+=("${side}2")
		for host in "${hosts[@]}"; do
			var=LAB_${host^^}_IP6
			_lab_addr6 "$host" eth0 "${!var}/64" || return 1
			_lab_route6 "$host" default "2001:db8:$side::1" || return 1
		done
		_lab_sysctl "$nat" net.ipv6.conf.all.forwarding=1 || return 1
		lab_set_v6fw "$side" stateful || return 1
	done
	[[ -e "$LAB_DIR/lan2" ]] || return 0
	_lab_addr6 nata lan-a3 2001:db8:a:3::1/64 || return 1
	_lab_addr6 a3 eth0 "$LAB_A3_IP6/64" || return 1
	_lab_route6 a3 default 2001:db8:a:3::1 || return 1
	_lab_nft nata -f - <<EOF
table ip6 n4lab_isolate {
	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname "br0" oifname "lan-a3" counter drop
		iifname "lan-a3" oifname "br0" counter drop
	}
}
EOF
}

_lab_build_topology() {
	local n ns
	for n in "${LAB_NODES[@]}"; do
		ns=$(lab_ns "$n") || return 1
		_lab_run "ip netns add" ip netns add "$ns" >/dev/null || return 1
		_lab_ifup "$n" lo || return 1
		_lab_ns_ipv6 "$n" || return 1
	done

	local srv wan nata natb
	srv=$(lab_ns srv) wan=$(lab_ns wan) nata=$(lab_ns nata) natb=$(lab_ns natb)
	# veths are created directly inside the lab namespaces: no interface ever exists in the
	# root namespace, so names cannot clash between labs.
	_lab_link eth0 netns "$srv" type veth peer name srv0 netns "$wan" || return 1
	_lab_link wan0 netns "$nata" type veth peer name nata0 netns "$wan" || return 1
	_lab_link wan0 netns "$natb" type veth peer name natb0 netns "$wan" || return 1

	_lab_addr srv eth0 "$LAB_SRV_IP/24" || return 1
	_lab_addr wan srv0 "$LAB_WAN_SRV_IP/24" || return 1
	_lab_addr wan srv0 "$LAB_SINK_IP/32" || return 1
	_lab_addr wan nata0 198.51.100.1/24 || return 1
	_lab_addr wan natb0 203.0.113.1/24 || return 1
	_lab_addr nata wan0 "$LAB_NATA_IP/24" || return 1
	_lab_addr natb wan0 "$LAB_NATB_IP/24" || return 1
	_lab_ifup srv eth0 || return 1
	_lab_ifup wan srv0 nata0 natb0 || return 1
	_lab_ifup nata wan0 || return 1
	_lab_ifup natb wan0 || return 1
	_lab_route srv "$LAB_WAN_SRV_IP" || return 1
	_lab_route nata 198.51.100.1 || return 1
	_lab_route natb 203.0.113.1 || return 1

	# each NAT's LAN is a bridge with one veth per host
	local side nat net host ip
	for side in a b; do
		nat=nat$side
		net=10.1.0
		[[ "$side" == b && ! -e "$LAB_DIR/same-subnet" ]] && net=10.2.0
		_lab_run "bridge in $nat" ip -n "$(lab_ns "$nat")" link add br0 type bridge >/dev/null ||
			return 1
		_lab_addr "$nat" br0 "$net.1/24" || return 1
		_lab_ifup "$nat" br0 || return 1
		for host in "$side" "${side}2"; do
			case $host in
			a) ip=$LAB_A_IP ;;
			a2) ip=$LAB_A2_IP ;;
			b) ip=$LAB_B_IP ;;
			b2) ip=$LAB_B2_IP ;;
			esac
			_lab_link eth0 netns "$(lab_ns "$host")" type veth peer name "lan-$host" \
				netns "$(lab_ns "$nat")" || return 1
			_lab_run "bridge port" ip -n "$(lab_ns "$nat")" link set "lan-$host" master br0 \
				>/dev/null || return 1
			_lab_ifup "$nat" "lan-$host" || return 1
			_lab_addr "$host" eth0 "$ip/24" || return 1
			_lab_ifup "$host" eth0 || return 1
			_lab_route "$host" "$net.1" || return 1
		done
	done

	for n in wan nata natb; do
		_lab_sysctl "$n" net.ipv4.ip_forward=1 || return 1
	done

	# the noise sink: wan owns the address and drops the datagrams without an ICMP reply
	_lab_nft wan -f - <<EOF || return 1
table ip n4lab_sink {
	chain input {
		type filter hook input priority 0; policy accept;
		ip daddr $LAB_SINK_IP meta l4proto udp counter drop
	}
}
EOF
}

# The LAN variant: a3 on its own LAN behind nata; nata drops what would cross between
# its two LANs, so a3 and a share a public IP but cannot reach each other directly.
_lab_add_lan2() {
	: >"$LAB_DIR/lan2" || return 1
	_lab_run "ip netns add" ip netns add "$(lab_ns a3)" >/dev/null || return 1
	_lab_ifup a3 lo || return 1
	_lab_ns_ipv6 a3 || return 1
	_lab_link eth0 netns "$(lab_ns a3)" type veth peer name lan-a3 netns "$(lab_ns nata)" ||
		return 1
	_lab_addr nata lan-a3 10.3.0.1/24 || return 1
	_lab_ifup nata lan-a3 || return 1
	_lab_addr a3 eth0 "$LAB_A3_IP/24" || return 1
	_lab_ifup a3 eth0 || return 1
	_lab_route a3 10.3.0.1 || return 1
	_lab_nft nata -f - <<EOF
table ip n4lab_isolate {
	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname "br0" oifname "lan-a3" counter drop
		iifname "lan-a3" oifname "br0" counter drop
	}
}
EOF
}

# _lab_add_site SIDE N: site SIDE (c, d, e) as the Nth site: natSIDE on the wan at
# 100.64.N.2, its LAN 10.(N+1).0.0/24 on a bridge, one host SIDE at .2.
_lab_add_site() {
	local side=$1 k=$2 nat=nat$1 n
	local wan_net=100.64.$k lan_net=10.$((k + 1)).0
	: >"$LAB_DIR/site-$side" || return 1
	for n in "$nat" "$side"; do
		_lab_run "ip netns add" ip netns add "$(lab_ns "$n")" >/dev/null || return 1
		_lab_ifup "$n" lo || return 1
		_lab_ns_ipv6 "$n" || return 1
	done
	_lab_link wan0 netns "$(lab_ns "$nat")" type veth peer name "${nat}0" netns "$(lab_ns wan)" ||
		return 1
	_lab_addr wan "${nat}0" "$wan_net.1/24" || return 1
	_lab_addr "$nat" wan0 "$wan_net.2/24" || return 1
	_lab_ifup wan "${nat}0" || return 1
	_lab_ifup "$nat" wan0 || return 1
	_lab_route "$nat" "$wan_net.1" || return 1
	_lab_run "bridge in $nat" ip -n "$(lab_ns "$nat")" link add br0 type bridge >/dev/null ||
		return 1
	_lab_addr "$nat" br0 "$lan_net.1/24" || return 1
	_lab_ifup "$nat" br0 || return 1
	_lab_link eth0 netns "$(lab_ns "$side")" type veth peer name "lan-$side" \
		netns "$(lab_ns "$nat")" || return 1
	_lab_run "bridge port" ip -n "$(lab_ns "$nat")" link set "lan-$side" master br0 >/dev/null ||
		return 1
	_lab_ifup "$nat" "lan-$side" || return 1
	_lab_addr "$side" eth0 "$lan_net.2/24" || return 1
	_lab_ifup "$side" eth0 || return 1
	_lab_route "$side" "$lan_net.1" || return 1
	_lab_sysctl "$nat" net.ipv4.ip_forward=1
}

_lab_stop_delay() {
	local pid
	pid=$(_lab_read_pidfile nfq-delay) || return 0
	lab_stop_pid "$pid" || return 1
	rm -f "$LAB_DIR/nfq-delay.pid"
}

_lab_queue_bound() {
	# shellcheck disable=SC2016 # awk program
	lab_exec wan awk -v q="$LAB_QUEUE" '$1 == q { found = 1 } END { exit !found }' \
		/proc/net/netfilter/nfnetlink_queue 2>/dev/null
}

_lab_grep_alive() { # PID PATTERN FILE: pattern in file; fails fast if PID died
	if ! _lab_pid_alive "$1"; then
		_lab_err "process $1 exited; its log ($3):"
		cat "$3" >&2
		return 2
	fi
	grep -q -- "$2" "$3"
}

_lab_wait_started() { # PID PATTERN LOG WHAT
	local t=0 rc
	while :; do
		rc=0
		_lab_grep_alive "$1" "$2" "$3" || rc=$?
		((rc == 0)) && return 0
		if ((rc == 2)); then
			_lab_err "$4 did not start"
			return 1
		fi
		if ((t >= 250)); then # 5 s
			_lab_err "$4 did not report ready within 5 s; log ($3):"
			cat "$3" >&2
			return 1
		fi
		sleep 0.02
		t=$((t + 1))
	done
}

_lab_need_tool() {
	LAB_TOOLS=${N4_BUILD:-$LAB_REPO/build}/lab # N4_BUILD may be set after sourcing
	if [[ ! -x "$LAB_TOOLS/$1" ]]; then
		_lab_err "$LAB_TOOLS/$1 missing: run 'make lab-tools' first"
		return 1
	fi
}

# lab_set_delay MS [JITTER_MS] [LOSS_PCT]: one-way delay applied once per WAN crossing.
# All zero removes the queue rule and stops nfq-delay.
lab_set_delay() {
	local delay=${1:-0} jitter=${2:-0} loss=${3:-0} v
	_lab_need_id || return 1
	for v in "$delay" "$jitter" "$loss"; do
		if [[ ! "$v" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
			_lab_err "lab_set_delay: '$v' is not a non-negative number"
			return 1
		fi
	done
	_lab_stop_delay || return 1
	if [[ "$delay$jitter$loss" =~ ^[0.]*$ ]]; then
		if [[ -e "$LAB_DIR/delay.rule" ]]; then
			_lab_run "iptables in wan" lab_exec wan iptables -w -D FORWARD "${_LAB_QUEUE_RULE[@]}" ||
				return 1
			rm -f "$LAB_DIR/delay.rule"
		fi
		if [[ -e "$LAB_DIR/delay6.rule" ]]; then
			_lab_run "ip6tables in wan" lab_exec wan ip6tables -w -D FORWARD \
				"${_LAB_QUEUE_RULE[@]}" || return 1
			rm -f "$LAB_DIR/delay6.rule"
		fi
		LAB_DELAY_MS=0 LAB_JITTER_MS=0 LAB_LOSS_PCT=0
		export LAB_DELAY_MS LAB_JITTER_MS LAB_LOSS_PCT
		return 0
	fi
	_lab_need_tool nfq-delay || return 1

	local log="$LAB_DIR/nfq-delay.log" pid
	: >"$log"
	pid=$(lab_bg wan "$log" "$LAB_TOOLS/nfq-delay" -q "$LAB_QUEUE" -d "$delay" -j "$jitter" \
		-l "$loss") || return 1
	printf '%s\n' "$pid" >"$LAB_DIR/nfq-delay.pid"
	_lab_wait_started "$pid" "queue $LAB_QUEUE ready" "$log" nfq-delay || return 1
	lab_wait_for _lab_queue_bound --timeout 5 || return 1
	if [[ ! -e "$LAB_DIR/delay.rule" ]]; then
		# bypass: if nfq-delay dies, the kernel accepts instead of dropping.  iptables, not
		# nft: this kernel has no nft queue expression (CONFIG_NFT_QUEUE unset), only the
		# xtables NFQUEUE target through nft_compat.
		_lab_run "iptables in wan" lab_exec wan iptables -w -A FORWARD "${_LAB_QUEUE_RULE[@]}" ||
			return 1
		: >"$LAB_DIR/delay.rule"
	fi
	# IPv6 through the same queue: a path over either family crosses the same delay
	if _lab_ipv6_on && [[ ! -e "$LAB_DIR/delay6.rule" ]]; then
		_lab_run "ip6tables in wan" lab_exec wan ip6tables -w -A FORWARD "${_LAB_QUEUE_RULE[@]}" ||
			return 1
		: >"$LAB_DIR/delay6.rule"
	fi
	LAB_DELAY_MS=$delay LAB_JITTER_MS=$jitter LAB_LOSS_PCT=$loss
	export LAB_DELAY_MS LAB_JITTER_MS LAB_LOSS_PCT
}

# lab_set_noise RATE_A RATE_B: new flows per second from a2 and b2 to the sink (0 = off).
lab_set_noise() {
	local rate side pid log
	_lab_need_id || return 1
	for rate in "${1:-0}" "${2:-0}"; do
		if [[ ! "$rate" =~ ^[0-9]+$ ]]; then
			_lab_err "lab_set_noise: '$rate' is not a whole number of flows per second"
			return 1
		fi
	done
	for side in a b; do
		if pid=$(_lab_read_pidfile "noise-$side"); then
			lab_stop_pid "$pid" || return 1
			rm -f "$LAB_DIR/noise-$side.pid"
		fi
	done
	for side in a b; do
		rate=${1:-0}
		[[ "$side" == b ]] && rate=${2:-0}
		((rate > 0)) || continue
		_lab_need_tool noise || return 1
		log="$LAB_DIR/noise-$side.log"
		pid=$(lab_bg "${side}2" "$log" "$LAB_TOOLS/noise" -d "$LAB_SINK_IP" -r "$rate" \
			-p "${LAB_NOISE_PORTS[0]}" -P "${LAB_NOISE_PORTS[1]}") || return 1
		printf '%s\n' "$pid" >"$LAB_DIR/noise-$side.pid"
		_lab_wait_started "$pid" "flows/s" "$log" "noise in ${side}2" || return 1
	done
	LAB_NOISE_A=${1:-0} LAB_NOISE_B=${2:-0}
	export LAB_NOISE_A LAB_NOISE_B
}

# lab_flush: forget all NAT state (conntrack) in every NAT and the router, and with
# --ipv6 on all IPv6 firewall state too.
lab_flush() {
	local n side nodes=()
	_lab_need_id || return 1
	for side in $(_lab_sites); do
		nodes+=("nat$side")
	done
	for n in "${nodes[@]}" wan; do
		_lab_run "conntrack -F in $n" lab_exec "$n" conntrack -F >/dev/null || return 1
		# conntrack -F asks for one family (ipv4 unless told); kernel 6.x flushes every
		# family whatever it asks, but the IPv6 state is named rather than assumed
		if _lab_ipv6_on; then
			_lab_run "conntrack -F -f ipv6 in $n" lab_exec "$n" conntrack -F -f ipv6 \
				>/dev/null || return 1
		fi
	done
}

# lab_up [--id ID] [--nat-a FLAVOR] [--nat-b FLAVOR] [--delay MS] [--jitter MS]
#        [--loss PCT] [--noise-a RATE] [--noise-b RATE] [--lan2 on|off]
#        [--sites 2..5] [--nat-c FLAVOR] [--nat-d FLAVOR] [--nat-e FLAVOR] [--ipv6 on|off]
#        [--same-subnet on|off]
lab_up() {
	local id=$$ nat_a=inc nat_b=inc delay=0 jitter=0 loss=0 noise_a=0 noise_b=0 lan2=off
	local sites=2 nat_c="" nat_d="" nat_e="" ipv6=off same=off
	while (($#)); do
		if (($# < 2)); then
			_lab_err "lab_up: option $1 needs a value"
			return 1
		fi
		case $1 in
		--id) id=$2 ;;
		--nat-a) nat_a=$2 ;;
		--nat-b) nat_b=$2 ;;
		--delay) delay=$2 ;;
		--jitter) jitter=$2 ;;
		--loss) loss=$2 ;;
		--noise-a) noise_a=$2 ;;
		--noise-b) noise_b=$2 ;;
		--lan2) lan2=$2 ;;
		--sites) sites=$2 ;;
		--nat-c) nat_c=$2 ;;
		--nat-d) nat_d=$2 ;;
		--nat-e) nat_e=$2 ;;
		--ipv6) ipv6=$2 ;;
		--same-subnet) same=$2 ;;
		*)
			_lab_err "lab_up: unknown option '$1'"
			return 1
			;;
		esac
		shift 2
	done
	if [[ ! "$id" =~ ^[A-Za-z0-9_]{1,32}$ ]]; then
		_lab_err "lab_up: bad id '$id' (letters, digits, _; at most 32)"
		return 1
	fi
	if [[ ! "$sites" =~ ^[2-5]$ ]]; then
		_lab_err "lab_up: --sites takes 2 to 5, not '$sites'"
		return 1
	fi
	# a flavour for a site the lab will not have is a mistake in the caller
	if [[ -n "$nat_c" && $sites -lt 3 ]] || [[ -n "$nat_d" && $sites -lt 4 ]] ||
		[[ -n "$nat_e" && $sites -lt 5 ]]; then
		_lab_err "lab_up: --nat-c/--nat-d/--nat-e need --sites 3/4/5 (have $sites)"
		return 1
	fi
	nat_c=${nat_c:-inc} nat_d=${nat_d:-inc} nat_e=${nat_e:-inc}
	local f
	for f in "$nat_a" "$nat_b" "$nat_c" "$nat_d" "$nat_e"; do
		case $f in
		inc | inc-linux | dec | dec-linux | inc2 | inc2-linux | dec2 | dec2-linux | cone | random) ;;
		*)
			_lab_err "lab_up: unknown NAT flavor '$f' ($LAB_FLAVORS)"
			return 1
			;;
		esac
	done
	if [[ "$lan2" != on && "$lan2" != off ]]; then
		_lab_err "lab_up: --lan2 takes on or off, not '$lan2'"
		return 1
	fi
	if [[ "$ipv6" != on && "$ipv6" != off ]]; then
		_lab_err "lab_up: --ipv6 takes on or off, not '$ipv6'"
		return 1
	fi
	if [[ "$same" != on && "$same" != off ]]; then
		_lab_err "lab_up: --same-subnet takes on or off, not '$same'"
		return 1
	fi
	lab_require_root || return 1
	# fail before building anything when a helper program is missing
	if [[ ! "$delay$jitter$loss" =~ ^[0.]*$ ]]; then
		_lab_need_tool nfq-delay || return 1
	fi
	if [[ ! "$noise_a$noise_b" =~ ^0*$ ]]; then
		_lab_need_tool noise || return 1
	fi
	if ip netns list | grep -q "^n4-$id-"; then
		_lab_err "lab_up: a lab with id $id exists already (lab_down $id first)"
		return 1
	fi

	LAB_ID=$id
	LAB_DIR=$(_lab_dir_of "$id")
	export LAB_ID LAB_DIR
	if [[ -L "$LAB_DIR" ]] || { [[ -e "$LAB_DIR" ]] && [[ ! -d "$LAB_DIR" ]]; }; then
		_lab_err "lab_up: $LAB_DIR exists and is not a directory"
		return 1
	fi
	rm -rf "$LAB_DIR"
	if ! mkdir -m 700 "$LAB_DIR"; then
		_lab_err "lab_up: cannot create $LAB_DIR"
		return 1
	fi
	# read by every step that builds a namespace, so it exists before the first one
	if [[ "$ipv6" == on ]] && ! : >"$LAB_DIR/ipv6"; then
		_lab_err "lab_up: cannot write $LAB_DIR/ipv6"
		return 1
	fi
	LAB_IPV6=$ipv6
	export LAB_IPV6
	# b's addresses follow the numbering (set either way: an earlier lab_up in this
	# shell may have changed them)
	LAB_B_IP=10.2.0.2 LAB_B2_IP=10.2.0.3
	if [[ "$same" == on ]]; then
		if ! : >"$LAB_DIR/same-subnet"; then
			_lab_err "lab_up: cannot write $LAB_DIR/same-subnet"
			return 1
		fi
		LAB_B_IP=$LAB_B_IP_SAME LAB_B2_IP=$LAB_B2_IP_SAME
	fi
	export LAB_B_IP LAB_B2_IP

	local k=3 extra_ok=1 side flavor
	if _lab_build_topology &&
		{ [[ "$lan2" == off ]] || _lab_add_lan2; }; then
		for side in "${LAB_EXTRA_SITES[@]}"; do
			((k <= sites)) || break
			flavor=nat_$side
			if ! _lab_add_site "$side" "$k" || ! lab_set_nat "$side" "${!flavor}"; then
				extra_ok=0
				break
			fi
			k=$((k + 1))
		done
	else
		extra_ok=0
	fi
	if ((extra_ok)) &&
		{ [[ "$ipv6" == off ]] || _lab_ipv6_up; } &&
		lab_set_nat a "$nat_a" && lab_set_nat b "$nat_b" &&
		lab_set_delay "$delay" "$jitter" "$loss" &&
		lab_set_noise "$noise_a" "$noise_b"; then
		return 0
	fi
	_lab_err "lab_up failed; tearing down lab $id"
	lab_down "$id"
	return 1
}

# lab_down [ID]: stop every process in the lab's namespaces, delete them and LAB_DIR.
# Idempotent; safe in an EXIT trap after a half-finished lab_up.
lab_down() {
	local id=${1:-${LAB_ID:-}} ns nss=() pids=() pid rc=0
	if [[ -z "$id" ]]; then
		return 0
	fi
	if [[ ! "$id" =~ ^[A-Za-z0-9_]{1,32}$ ]]; then
		_lab_err "lab_down: bad id '$id'"
		return 1
	fi
	while read -r ns _; do
		[[ "$ns" == "n4-$id-"* ]] && nss+=("$ns")
	done < <(ip netns list 2>/dev/null)

	for ns in "${nss[@]}"; do
		while read -r pid; do
			[[ -n "$pid" ]] && pids+=("$pid")
		done < <(ip netns pids "$ns" 2>/dev/null)
	done
	if ((${#pids[@]})); then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		local t=0 alive
		while :; do
			alive=()
			for pid in "${pids[@]}"; do
				_lab_pid_alive "$pid" && alive+=("$pid")
			done
			((${#alive[@]} == 0)) && break
			if ((t == 100)); then # 2 s
				kill -KILL "${alive[@]}" 2>/dev/null || true
			elif ((t > 200)); then
				_lab_err "lab_down: processes did not exit: ${alive[*]}"
				rc=1
				break
			fi
			sleep 0.02
			t=$((t + 1))
		done
	fi
	for ns in "${nss[@]}"; do
		if ! ip netns del "$ns" 2>/dev/null && ip netns list | grep -q "^$ns\b"; then
			_lab_err "lab_down: cannot delete namespace $ns"
			rc=1
		fi
	done
	rm -rf "$(_lab_dir_of "$id")"
	return "$rc"
}

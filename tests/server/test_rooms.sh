#!/usr/bin/env bash
# test_rooms.sh - rooms on the wire, against the server built with ASan+UBSan on
# loopback: a host registers (HOSTED), a second one for the identifier is TAKEN and
# n4_room_host says why (-EADDRINUSE), a server run with --no-rooms makes it say
# "does not support hosting" (-ENOTSUP); joiners are announced with their peer id
# and the host's answer pairs each with the host alone (PEERINFOs, never another
# joiner's address), a wrong ticket is REFUSED(4); keyed rooms admit only their
# long id (REFUSED(3), never announced); 20 joins/s with a burst of 40 and 32 held
# per room; a host that vanishes finds its held joiners when it registers again;
# 8 rooms per source (a lingering one counts); the status line counts rooms; SIGTERM does not wait for a
# room's connection.  tests/helpers/roomctl.c speaks the wire.
source "$(dirname "$0")/lib.sh"
need_bins
make -s "$BUILD/tests/roomctl" >/dev/null || { notok "building roomctl"; finish; exit 1; }
R=$BUILD/tests/roomctl
N4SAN=$(san_n4) || { notok "building the ASan+UBSan server"; finish; exit 1; }
check "the server under test is the ASan+UBSan build" sanitized "$N4SAN"

# Every roomctl in the background logs to $TMP/NAME.log; bg NAME ARGS... sets
# the pid in BG[NAME].
declare -A BG=()
bg() {
	local name=$1
	shift
	"$R" "$SPORT" "$@" >"$TMP/$name.log" 2>&1 &
	BG[$name]=$!
}
log_has() { grep -qE "$2" "$TMP/$1.log"; }
count() { grep -cE "$2" "$TMP/$1.log"; }
stop_bg() { kill "${BG[$1]}" 2>/dev/null; wait "${BG[$1]}" 2>/dev/null; }

# --no-rooms first: its own server.
start_server "$N4SAN" --no-rooms || { notok "the --no-rooms server started"; finish; exit 1; }
out=$("$R" "$SPORT" libhost nr1)
echo "# $out"
check "--no-rooms: n4_room_host fails with -ENOTSUP" grep -q "^libhost rc=-95 " <<<"$out"
check "--no-rooms: ... saying the server does not support hosting" \
	grep -q "does not support hosting" <<<"$out"
out=$("$R" "$SPORT" host nr2)
check "--no-rooms: the registration's connection is closed without an answer ($out)" \
	grep -q "^CLOSED" <<<"$out"
no_rooms_status() { ! status | grep -q " rooms="; }
check "--no-rooms: no rooms= in the status line" no_rooms_status
check "--no-rooms: the server exits 0 on SIGTERM" stop_server
check "--no-rooms: no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error' '$SLOG'"

start_server "$N4SAN" --conn-rate 0 --max-per-ip 0 --drain-timeout-ms 8000 ||
	{ notok "the server started"; finish; exit 1; }

# ---- registration ----
bg h1 host ra -a -s 120
check "a host registers: HOSTED" wait_until 5 log_has h1 "^HOSTED$"
out=$("$R" "$SPORT" host ra -f 127.0.0.2)
check "a second host for the identifier (another source): TAKEN ($out)" grep -q "^TAKEN$" <<<"$out"
out=$("$R" "$SPORT" libhost ra)
echo "# $out"
check "n4_room_host for a hosted identifier: -EADDRINUSE" grep -q "^libhost rc=-98 " <<<"$out"
check "... saying the room already has a host" grep -q "already has a host" <<<"$out"
out=$("$R" "$SPORT" libhost rlib -s 1)
check "n4_room_host registers a free identifier (rc 0)" grep -q "^libhost rc=0 " <<<"$out"

# ---- a joiner, announced and answered ----
out=$("$R" "$SPORT" join ra -p 0a0b0c0d0e0f -f 127.0.0.11 -t 5)
echo "# $out"
check "a joiner gets READY granting the room" grep -qE "^READY 0x[89a-f][0-9a-f]$" <<<"$out"
check "... the host is told its peer id" wait_until 5 log_has h1 "^JOIN [0-9a-f]{12} 0a0b0c0d0e0f "
check "... the host's answer gets the joiner's address" \
	wait_until 5 log_has h1 "^ANSWERED 0a0b0c0d0e0f $(sed -n 's/^UDP //p' <<<"$out") from "
ans=$(sed -n 's/^ANSWERED 0a0b0c0d0e0f .* from //p' "$TMP/h1.log")
check "... and the joiner the answer's ($ans)" grep -q "^PEERINFO $ans$" <<<"$out"

# Our own client as the joiner: its PEERINFO names the host's answer.
"$BUILD/n4" -c -h 127.0.0.1 -p "$SPORT" -a ra -b 0 -t 4 -v >"$TMP/n4c.log" 2>&1 &
n4c=$!
check "n4 -c as a joiner: announced to the host" \
	wait_until 5 bash -c "(( \$(grep -c '^JOIN ' '$TMP/h1.log') >= 2 ))"
check "n4 -c as a joiner: the host's answer gets a PEERINFO" \
	wait_until 5 bash -c "(( \$(grep -c '^ANSWERED ' '$TMP/h1.log') >= 2 ))"
ans=$(grep '^ANSWERED ' "$TMP/h1.log" | tail -n 1 | sed 's/.* from //')
check "n4 -c as a joiner: its PEERINFO is the answer's address ($ans)" \
	wait_until 5 grep -q "=> Peer: $ans" "$TMP/n4c.log"
kill "$n4c" 2>/dev/null
wait "$n4c" 2>/dev/null

# ---- a wrong ticket ----
out=$("$R" "$SPORT" answer ra 000000000000)
echo "# $(tr '\n' ' ' <<<"$out")"
check "an ANSWER with a ticket nobody holds: REFUSED(4)" grep -q "^REFUSED 4$" <<<"$out"
check "... and closed" grep -q "^CLOSED$" <<<"$out"

# ---- two joiners: each paired with the host alone ----
bg h2 host rb -s 120
check "host rb: HOSTED" wait_until 5 log_has h2 "^HOSTED$"
bg j1 join rb -p 000000000001 -f 127.0.0.21 -t 4
bg j2 join rb -p 000000000002 -f 127.0.0.22 -t 4
check "two joiners: both announced" wait_until 5 bash -c "(( \$(grep -c '^JOIN ' '$TMP/h2.log') == 2 ))"
wait "${BG[j1]}" "${BG[j2]}"
check "unanswered, neither joiner gets a PEERINFO" \
	bash -c "! grep -q PEERINFO '$TMP/j1.log' '$TMP/j2.log'"
bg j1 join ra -p 000000000001 -f 127.0.0.21 -t 5
bg j2 join ra -p 000000000002 -f 127.0.0.22 -t 5
wait "${BG[j1]}" "${BG[j2]}"
echo "# $(tr '\n' ' ' <"$TMP/j1.log") / $(tr '\n' ' ' <"$TMP/j2.log")"
check "answered, each joiner's PEERINFO is the host's (127.0.0.1), never the other's" \
	bash -c "grep -q '^PEERINFO 127\.0\.0\.1:' '$TMP/j1.log' && grep -q '^PEERINFO 127\.0\.0\.1:' '$TMP/j2.log'"
check "... and the answers got the joiners' own addresses" bash -c \
	"grep -q '^ANSWERED 000000000001 127\.0\.0\.21:' '$TMP/h1.log' && grep -q '^ANSWERED 000000000002 127\.0\.0\.22:' '$TMP/h1.log'"

# ---- keyed ----
bg hk host rk -k 0x11 -s 120
check "a keyed host: HOSTED after its long id" wait_until 5 log_has hk "^HOSTED$"
out=$("$R" "$SPORT" join rk -k 0x11 -p 00000000aaaa -f 127.0.0.31 -t 2 -n)
check "keyed: a joiner with the room's long id gets READY" grep -q "^READY " <<<"$out"
check "keyed: ... and is announced" wait_until 5 log_has hk "^JOIN [0-9a-f]{12} 00000000aaaa "
out=$("$R" "$SPORT" join rk -k 0x22 -p 00000000bbbb -f 127.0.0.32 -t 2 -n)
check "keyed: same short id, another long id: REFUSED(3) ($out)" grep -q "^REFUSED 3$" <<<"$out"
# The host's connection is in order: once a later joiner is announced, one for
# the refused client would be in the log before it.
out=$("$R" "$SPORT" join rk -k 0x11 -p 00000000cccc -f 127.0.0.33 -t 2 -n)
check "keyed: a later joiner with the long id is announced" \
	wait_until 5 log_has hk "^JOIN [0-9a-f]{12} 00000000cccc "
check "keyed: ... and the refused one never was" bash -c "! grep -q 00000000bbbb '$TMP/hk.log'"

# Keyed with a real key: n4_room_host and n4 -c -k derive the same long id.
"$BUILD/n4" genkey -o "$TMP/key1" >/dev/null
bg hl libhost rkl -K "$TMP/key1" -s 30
check "keyed n4_room_host: registered (rc 0)" wait_until 5 log_has hl "^libhost rc=0 "
"$BUILD/n4" -c -h 127.0.0.1 -p "$SPORT" -a rkl -k "$TMP/key1" -b 0 -t 3 -v >"$TMP/n4k1.log" 2>&1 &
n4k=$!
check "keyed: n4 -c with the room's key is announced to n4_room_host's connection" \
	wait_until 5 log_has hl "^JOIN [0-9a-f]{12} [0-9a-f]{12}$"
kill "$n4k" 2>/dev/null
wait "$n4k" 2>/dev/null
stop_bg hl

# ---- rate and held ----
bg hf host rf -A -s 120
check "host rf (answers at once): HOSTED" wait_until 5 log_has hf "^HOSTED$"
# 100 joiners at 125/s: the host's answers keep the held ones few, so the rate
# (20/s, burst 40) is what refuses.
"$R" "$SPORT" flood rf 100 -i 8 -t 3 >"$TMP/flood.log"
sum=$(grep '^flood:' "$TMP/flood.log")
echo "# $sum"
first=$(grep -m1 '^JOIN ' "$TMP/hf.log" | awk '{print $4}')
in_1s=$(awk -v f="$first" '$1 == "JOIN" && $4 < f + 1000' "$TMP/hf.log" | wc -l)
total=$(grep -c '^JOIN ' "$TMP/hf.log")
span=$(sed -E 's/.*span=([0-9]+).*/\1/' <<<"$sum")
bound=$((40 + 20 * (span + 300) / 1000 + 1))
check "a flood of 100 joiners: all get READY (the room decides after)" grep -q "ready=100 " <<<"$sum"
check "a flood of 100 joiners: at most 40 + 20/s announced in the first second ($in_1s)" \
	test "$in_1s" -le 60
check "a flood of 100 joiners over $span ms: at most 40 + 20/s announced in all ($total <= $bound)" \
	test "$total" -le "$bound"
r2=$(sed -E 's/.*refused2=([0-9]+).*/\1/' <<<"$sum")
check "a flood of 100 joiners: the rest REFUSED(2), the rate ($r2)" test "$r2" -ge $((100 - bound - 32))
bg hh host rh -s 120
check "host rh (does not answer): HOSTED" wait_until 5 log_has hh "^HOSTED$"
"$R" "$SPORT" flood rh 50 -t 2 >"$TMP/flood2.log"
sum=$(grep '^flood:' "$TMP/flood2.log")
echo "# $sum"
check "50 joiners, no answer: 32 held and announced" \
	wait_until 3 bash -c "(( \$(grep -c '^JOIN ' '$TMP/hh.log') == 32 ))"
check "50 joiners, no answer: 18 REFUSED(1), full" grep -q "refused1=18 refused2=0 " <<<"$sum"
stop_bg hh

# ---- the host vanishes ----
bg hv host rv -s 120
check "host rv: HOSTED" wait_until 5 log_has hv "^HOSTED$"
bg jv1 join rv -p 0000000000f1 -f 127.0.0.41 -t 15
check "a joiner is announced to rv" wait_until 5 log_has hv "0000000000f1"
kill -9 "${BG[hv]}"
check "the host vanishes: the server sees its room connection close" \
	wait_until 5 grep -q "the room's host left" "$SLOG"
bg jv2 join rv -p 0000000000f2 -f 127.0.0.42 -t 15
check "a joiner meanwhile gets READY (the room lingers)" wait_until 5 log_has jv2 "^READY "
check "... and is held: the server says the host is away" \
	wait_until 5 grep -q "held: the room's host is away" "$SLOG"
check "the held joiners stay held (no PEERINFO, not closed)" bash -c \
	"! grep -qE 'PEERINFO|CLOSED|REFUSED' '$TMP/jv1.log' '$TMP/jv2.log'"
bg hv2 host rv -a -s 60
check "the next host registers within 30 s: HOSTED" wait_until 5 log_has hv2 "^HOSTED$"
check "... and is told both held joiners" wait_until 5 bash -c \
	"grep -q ' 0000000000f1 ' '$TMP/hv2.log' && grep -q ' 0000000000f2 ' '$TMP/hv2.log'"
check "... whose answers pair them" wait_until 8 bash -c \
	"grep -q '^PEERINFO 127\.0\.0\.1:' '$TMP/jv1.log' && grep -q '^PEERINFO 127\.0\.0\.1:' '$TMP/jv2.log'"

# ---- rooms per source ----
for i in 1 2 3 4 5 6 7 8; do
	bg "s$i" host "rs$i" -f 127.0.0.50 -s 60
done
check "8 rooms from one source: all HOSTED" wait_until 5 bash -c \
	"(( \$(cat $TMP/s[1-8].log | grep -c '^HOSTED$') == 8 ))"
out=$("$R" "$SPORT" host rs9 -f 127.0.0.50 -s 1)
check "the 9th from that source: REFUSED(1) ($out)" grep -q "^REFUSED 1$" <<<"$out"
out=$("$R" "$SPORT" host rs9 -f 127.0.0.51 -s 1)
check "the 9th from another source: HOSTED" grep -q "^HOSTED$" <<<"$out"
left=$(grep -c "the room's host left" "$SLOG")
stop_bg s1
check "one of the 8 closed: the server sees it leave" \
	wait_until 5 bash -c "(( \$(grep -c \"the room's host left\" '$SLOG') > $left ))"
out=$("$R" "$SPORT" host rs10 -f 127.0.0.50 -s 1)
check "... its lingering room keeps the slot: another is REFUSED(1) ($out)" grep -q "^REFUSED 1$" <<<"$out"
out=$("$R" "$SPORT" host rs1 -f 127.0.0.50 -s 1)
check "... and its host coming back takes the room again ($out)" grep -q "^HOSTED$" <<<"$out"

# ---- status ----
st=$(status)
echo "# $st"
check "the status line counts rooms" grep -qE " rooms=[0-9]+ hosted=[0-9]+ joins=[0-9]+ refused=[0-9]+" <<<"$st"
rooms=$(sed -E 's/.* rooms=([0-9]+) .*/\1/' <<<"$st")
check "... at least the 13 hosted now ($rooms)" [ "${rooms:-0}" -ge 13 ]

# ---- shutdown with rooms hosted: no wait for their connections ----
t0=$SECONDS
kill -TERM "$SPID"
check "SIGTERM with rooms hosted: the server exits within 3 s (drain 8 s)" \
	wait_until 3 bash -c "! kill -0 $SPID 2>/dev/null"
wait "$SPID"
rc=$?
SPID=
check "... with status 0 ($rc, $((SECONDS - t0)) s)" [ "$rc" = 0 ]
check "... and every host is told (its connection closes)" wait_until 3 bash -c \
	"(( \$(grep -c '^CLOSED$' $TMP/h1.log $TMP/h2.log $TMP/hk.log $TMP/hf.log $TMP/hv2.log | grep -c ':1$') == 5 ))"
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error' '$SLOG'"
for n in "${!BG[@]}"; do kill "${BG[$n]}" 2>/dev/null; done
wait 2>/dev/null
finish

#!/usr/bin/env bash
# test_lying_server.sh - a server that calls every keyed pairing off (AGAIN after
# READY, over and over) must not make a client hammer it: the client says HELLO again
# at once three times in a row (AGAIN is not a lost round), then only once a second,
# and gives up at its timeout with a clear line.  The "server" is socat on loopback.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N4=$BUILD/n4

(umask 077 && "$N4" genkey >"$TMP/key")
: >"$TMP/conns"
# One connection: take the HELLO, ask for the long id, grant READY (token + key),
# then AGAIN; note the connection.
cat >"$TMP/liar.sh" <<'LIAR'
#!/bin/sh
echo x >>"$CONNS"
head -c 8 >/dev/null
printf '\007\004\000\000\000\000\000\000\002\005abcdef\023\000n4n4n4'
cat >/dev/null
LIAR
chmod +x "$TMP/liar.sh"
port=$((20000 + RANDOM % 20000))
CONNS=$TMP/conns socat "TCP4-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
	"EXEC:$TMP/liar.sh" 2>"$TMP/socat.err" &
liar=$!
wait_until 5 bash -c "ss -tlnH 'sport = :$port' | grep -q ." ||
	notok "the lying server listens on $port"
start=$SECONDS
"$N4" -c -h 127.0.0.1 -p "$port" -k "$TMP/key" -t 4 >"$TMP/client.log" 2>&1
rc=$?
took=$((SECONDS - start))
n=$(wc -l <"$TMP/conns")
agains=$(grep -c "called this pairing off" "$TMP/client.log")
kill "$liar" 2>/dev/null
echo "# $n connections in ${took} s, $agains AGAINs taken, exit status $rc"
check "each AGAIN was taken as AGAIN ($agains of $n connections)" \
	test "$agains" -ge 4 -a "$agains" -ge $((n - 1))
# 4 at once, then one a second for the remaining ~4 s: hammering would be hundreds.
check "no hammering: $n connections in ${took} s (at most 4 + 1 a second)" \
	test "$n" -ge 4 -a "$n" -le $((4 + took + 1))
check "the client gave up at its timeout, not earlier (${took} s, status $rc)" \
	test "$rc" -ne 0 -a "$took" -ge 3
finish

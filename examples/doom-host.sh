#!/usr/bin/env bash
# examples/doom-host.sh - host a Doom game for friends when you and they are all behind
# carrier-grade NAT: Chocolate Doom's dedicated server, unmodified, hosts a room through
# libn4shim.so, and each friend's unmodified Chocolate Doom client gets a path of its
# own to the server's one UDP socket.
#
# In the real world (server S running `n4 -s`, reachable by everyone; a key made once
# with `n4 genkey -o doom.key` (mode 600) and given to each friend over a safe channel):
#   you (the host):  n4shim -s S -a doom42 -k doom.key -H 2342 --status ~/doom-peers -- \
#                      chocolate-server -port 2342 -privateserver -servername "Friday night"
#   each friend:     n4shim -s S -a doom42 -k doom.key -- chocolate-doom -connect S
#                    (-query S instead of -connect S shows the server without joining)
# -H 2342 makes the socket chocolate-server binds to 2342 the host of room 'doom42': every
# client with that identifier and key is paired with it, each on its own punched path
# (or relayed through S when a friend's NAT gives a new random port per destination).
# The server sees each friend at one address for the whole game, as if all were on one
# LAN.  A friend's "S" is a placeholder: any UDP port on S's IP except 1721 and 53 will
# do, and chocolate-doom's default port 2342 is one.  With the key, only holders of
# the key are ever announced to the host.  -privateserver: the public master server
# would list an address behind your NAT that nobody can reach; friends need S anyway.
# ~/doom-peers lists the friends connected (rewritten every second).
#
# Here everyone lives in the NAT lab (network namespaces, root needed): the server on
# a, one friend queries it from b, another joins the game from b2 (no window, no sound,
# Freedoom's IWAD), and the first queries again and sees a player.
set -uo pipefail
source "$(dirname "$0")/lab_example.sh"
IWAD=/usr/share/games/doom/freedoom2.wad
for f in /usr/games/chocolate-server /usr/games/chocolate-doom "$IWAD"; do
	[[ -e $f ]] || { echo "$f missing: apt-get install chocolate-doom freedoom (tests/deps.sh)"; exit 1; }
done
(umask 077 && "$N4" genkey >"$d/doom.key") || exit 1
friend() { # NODE ARGS...: chocolate-doom under n4shim, its settings kept in the lab
	local node=$1
	shift
	mkdir -p "$d/home-$node"
	lab_exec "$node" env HOME="$d/home-$node" SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy \
		"$WRAP" -s "$S" -a doom42 -k "$d/doom.key" -- /usr/games/chocolate-doom "$@"
}

echo "host a:  n4shim -s $S -a doom42 -k doom.key -H 2342 --status peers -- chocolate-server -port 2342 -privateserver -servername \"n4 example\""
lab_bg a "$d/a.log" "$WRAP" -s "$S" -a doom42 -k "$d/doom.key" -H 2342 --status "$d/peers" -- \
	/usr/games/chocolate-server -port 2342 -privateserver -servername "n4 example" >/dev/null
lab_wait_for grep -q "open," "$d/peers" --timeout 10 2>/dev/null || { cat "$d/a.log"; exit 1; }

echo "friend b:  n4shim -s $S -a doom42 -k doom.key -- chocolate-doom -query $S"
friend b -query "$S" 2>>"$d/b.log" | sed -n '/^Ping/,$p'
echo "friend b2: n4shim -s $S -a doom42 -k doom.key -- chocolate-doom -iwad freedoom2.wad -connect $S -nogui"
lab_bg b2 "$d/b2.log" sh -c 'mkdir -p "$1" && HOME=$1 SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy \
	exec "$2" -s "$3" -a doom42 -k "$4" -- /usr/games/chocolate-doom -iwad "$5" -connect "$3" \
	-nogui -nosound -nomusic' sh "$d/home-b2" "$WRAP" "$S" "$d/doom.key" "$IWAD" >/dev/null
lab_wait_for grep -q punched "$d/b2.log" --timeout 30 || { cat "$d/b2.log"; exit 1; }
# The server counts b2 once its connection handshake is through: ask until it does.
joined() { friend b -query "$S" 2>>"$d/b.log" | grep -qE "^ *[0-9]+ +[0-9.]+ +1/"; }
lab_wait_for joined --timeout 10 --interval 0.5 || exit 1
echo "friend b, again:"
friend b -query "$S" 2>>"$d/b.log" | sed -n '/^Ping/,$p'
# Each -query is a new program, so a new peer of the room (kept until it has been
# silent for N4_PEER_TIMEOUT); b2's game client is one peer for as long as it plays.
echo "--- the host's peers (N4_STATUS, rewritten every second):"
more_peers() { (($(grep -c '^peer ' "$d/peers") >= 3)); }
lab_wait_for more_peers --timeout 5
cat "$d/peers"

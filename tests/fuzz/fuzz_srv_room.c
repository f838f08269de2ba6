/* fuzz_srv_room.c - libFuzzer target for the server's rooms leaf (lib/srv_room.c):
 * the decoder of a client's ROOM message, then a script of what connections do to
 * the rooms table - hosts registering (three identifiers, keyed or not, two long
 * ids, three sources), clients entering as joiners or as the host's answers (with
 * a ticket the host was told, or a guessed one), connections closing in any role,
 * time passing, the sweep.  fuzz_server reaches the decoder too, but never an
 * ANSWER that names a real ticket: here every ticket announced is known.
 *
 * After every step the sides must agree with the leaf's rules: one host per room,
 * at most N4_ROOM_HELD_MAX held per room and N4_ROOMS_PER_SOURCE hosts per source,
 * a role's room pointer set exactly when the role has one, an answer linking only
 * a joiner announced with that ticket in the answer's own room.  At the end every
 * side leaves, the sweep runs past the linger, and no room may remain (and
 * LeakSanitizer sees nothing).  Input: byte pairs (op, arg), then the op's bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srv_room.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSIDES 48
#define NTICKETS 64

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

struct side {
	struct n4_srv_room_side s;
	uint8_t src; /* HOST: its source */
};

/* Sixteen identifiers: enough for one source to reach N4_ROOMS_PER_SOURCE. */
static void ident_of(uint8_t id[N4_PAYLOAD_SIZE], uint8_t v)
{
	memcpy(id, "room", 4);
	id[4] = (uint8_t)('a' + (v & 15));
	id[5] = 'z';
}

static void src_of(uint8_t src[16], uint8_t v)
{
	memset(src, 0, 16);
	src[10] = src[11] = 0xff;
	src[12] = 10;
	src[15] = v;
}

static void long_of(uint8_t l[N4_LONGID_SIZE], uint8_t v)
{
	memset(l, 0x40 + v, N4_LONGID_SIZE);
}

/* The rules, from the outside. */
static void check(n4_srv_rooms *r, struct side *sd)
{
	unsigned distinct = 0;

	for (int i = 0; i < NSIDES; i++) {
		const struct n4_srv_room_side *s = &sd[i].s;
		switch (s->role) {
		case N4_ROLE_HOST:
		case N4_ROLE_MEMBER:
		case N4_ROLE_HELD:
			if (!s->room)
				abort();
			break;
		default:
			if (s->room)
				abort();
			break;
		}
		if (s->role == N4_ROLE_HOST && !n4_srv_room_hosted(s->room))
			abort();
		if (!s->room)
			continue;
		unsigned hosts = 0, held = 0;
		bool first = true;
		for (int k = 0; k < NSIDES; k++) {
			if (sd[k].s.room != s->room)
				continue;
			first = first && k >= i;
			hosts += sd[k].s.role == N4_ROLE_HOST;
			held += sd[k].s.role == N4_ROLE_HELD;
		}
		if (hosts > 1 || held > N4_ROOM_HELD_MAX)
			abort();
		distinct += first;
	}
	for (uint8_t v = 0; v < 3; v++) { /* the sources */
		unsigned n = 0;
		for (int i = 0; i < NSIDES; i++)
			n += sd[i].s.role == N4_ROLE_HOST && sd[i].src == v;
		if (n > N4_ROOMS_PER_SOURCE)
			abort();
	}
	if (n4_srv_rooms_count(r) < distinct)
		abort(); /* a room in use was freed */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct n4_room_msg rm;
	uint8_t msg[N4_MSG_SIZE];

	/* The decoder, on the first 8 bytes as they come. */
	if (size >= N4_MSG_SIZE && n4_srv_room_decode(data, &rm) == 0) {
		if (rm.sub != N4_ROOM_HOST && rm.sub != N4_ROOM_JOINER && rm.sub != N4_ROOM_ANSWER)
			abort();
		if (rm.sub == N4_ROOM_HOST &&
		    (rm.max_joiners == 0 || rm.max_joiners > N4_ROOM_MAX_JOINERS))
			abort();
		if (rm.sub != N4_ROOM_HOST && memcmp(rm.id, data + 2, N4_PAYLOAD_SIZE))
			abort();
	}

	n4_srv_rooms *r = n4_srv_rooms_new(take(&in));
	if (!r)
		return 0;
	static struct side sd[NSIDES];
	uint8_t tickets[NTICKETS][N4_ROOM_TICKET_SIZE];
	unsigned nt = 0;
	uint64_t now = 1000;
	struct n4_msg out[2];

	memset(sd, 0, sizeof(sd));
	memset(tickets, 0, sizeof(tickets));
	for (int i = 0; i < NSIDES; i++)
		sd[i].s.owner = &sd[i];
	while (in.left) {
		uint8_t op = take(&in), arg = take(&in);
		struct side *x = &sd[arg % NSIDES];
		struct n4_srv_room_side *s = &x->s;
		/* sel: bits 0-3 the identifier, 4 the long id, 5-6 a host's
		 * source (0..2) or bit 5 a member whose long id is not in yet,
		 * 7 keyed */
		uint8_t sel = take(&in), reason = 0, l[N4_LONGID_SIZE], src[16];
		uint8_t ident[N4_PAYLOAD_SIZE];
		bool keyed = sel & 0x80, wrong = false;
		ident_of(ident, sel);
		long_of(l, (sel >> 4) & 1);
		switch (op % 8) {
		case 0: { /* ROOM HOST + HELLO (+ long id): a registration */
			if (s->role != N4_ROLE_NONE)
				break;
			uint8_t hi = take(&in), lo = take(&in);
			msg[0] = N4_CMD_ROOM;
			msg[1] = N4_ROOM_HOST;
			msg[2] = hi;
			msg[3] = lo;
			memset(msg + 4, 0, 4);
			if (n4_srv_room_decode(msg, &rm))
				break; /* the server closes it */
			s->role = N4_ROLE_HOSTING;
			s->max_joiners = rm.max_joiners;
			x->src = (uint8_t)(((sel >> 5) & 3) % 3);
			src_of(src, x->src);
			int rc = n4_srv_room_host(r, s, keyed, ident, keyed ? l : NULL, src, now,
						  &reason);
			if (rc == 0) {
				if (s->role != N4_ROLE_HOST)
					abort();
				struct n4_srv_room_side *j;
				while ((j = n4_srv_room_next_unannounced(s->room, out)) != NULL) {
					if (j->role != N4_ROLE_HELD || j->room != s->room ||
					    memcmp(out[0].payload, j->ticket, N4_ROOM_TICKET_SIZE))
						abort();
					memcpy(tickets[nt++ % NTICKETS], out[0].payload,
					       N4_ROOM_TICKET_SIZE);
				}
			} else {
				if ((rc != -EADDRINUSE && rc != -EACCES) ||
				    s->role != N4_ROLE_HOSTING ||
				    (rc == -EACCES && reason != N4_ROOM_R_LIMITS &&
				     reason != N4_ROOM_R_KEY) ||
				    (reason == N4_ROOM_R_KEY && !keyed))
					abort();
				n4_srv_room_leave(r, s, now); /* TAKEN/REFUSED: closed */
			}
			break;
		}
		case 1:	  /* HELLO for the room (and long id), READY: a member */
		case 2: { /* ... and its ROOM message */
			if (s->role != N4_ROLE_NONE)
				break;
			struct n4_srv_room *room = n4_srv_room_find(
				r, keyed, ident, (sel & 0x20) ? NULL : l, &wrong, now);
			if (wrong && (room || !keyed))
				abort();
			if (!room)
				break; /* pairs as an equal, or REFUSED(key) */
			n4_srv_room_enter(room, s);
			if (s->role != N4_ROLE_MEMBER || s->room != room)
				abort();
			if (op % 8 == 1)
				break; /* its ROOM message comes later (op 3), or never */
		}
			/* fall through */
		case 3: { /* the member's ROOM message: JOINER or ANSWER */
			if (s->role != N4_ROLE_MEMBER)
				break;
			uint8_t how = take(&in);
			if (how & 1) {
				uint8_t pid[N4_PAYLOAD_SIZE] = { 0 };
				pid[0] = take(&in);
				pid[1] = take(&in);
				struct n4_srv_room_side *to_host = NULL;
				bool hosted = n4_srv_room_hosted(s->room);
				int rc = n4_srv_room_joiner(r, s, pid, now, &to_host, out, &reason);
				if (rc == 1) {
					if (!hosted || !to_host || to_host->role != N4_ROLE_HOST ||
					    to_host->room != s->room || s->role != N4_ROLE_HELD ||
					    out[0].ext != N4_ROOM_JOIN ||
					    memcmp(out[1].payload, pid, N4_PAYLOAD_SIZE))
						abort();
					memcpy(tickets[nt++ % NTICKETS], out[0].payload,
					       N4_ROOM_TICKET_SIZE);
				} else if (rc == 0) {
					if (hosted || to_host || s->role != N4_ROLE_HELD)
						abort();
				} else {
					if (reason != N4_ROOM_R_LIMITS && reason != N4_ROOM_R_RATE)
						abort();
					n4_srv_room_leave(r, s, now); /* REFUSED: closed */
				}
			} else {
				uint8_t t[N4_ROOM_TICKET_SIZE];
				if ((how & 2) && nt) {
					memcpy(t,
					       tickets[take(&in) % (nt < NTICKETS ? nt : NTICKETS)],
					       sizeof(t));
				} else {
					for (unsigned i = 0; i < sizeof(t); i++)
						t[i] = take(&in);
				}
				struct n4_srv_room *room = s->room;
				struct n4_srv_room_side *j = n4_srv_room_answer(s, t);
				if (!j) {
					n4_srv_room_leave(r, s, now); /* REFUSED(ticket) */
					break;
				}
				/* Only an announced joiner of this room, with this
				 * ticket, and never one of its equals. */
				if (j == s || j->role != N4_ROLE_ANSWERED || !j->announced ||
				    s->role != N4_ROLE_ANSWERING || j->room || s->room ||
				    memcmp(j->ticket, t, sizeof(t)) || !room)
					abort();
			}
			break;
		}
		case 4: /* the connection closes, whatever it was */
			n4_srv_room_leave(r, s, now);
			if (s->role != N4_ROLE_NONE || s->room)
				abort();
			break;
		case 5: /* time passes */
			now += (sel & 1) ? (uint64_t)arg * 1000u : (uint64_t)arg * 10u;
			break;
		case 6:
			n4_srv_rooms_sweep(r, now);
			break;
		default: /* HELLO for a keyed room before the long id: never a member */
			if (n4_srv_room_find(r, true, ident, NULL, &wrong, now) != NULL)
				abort();
			break;
		}
		check(r, sd);
	}
	for (int i = 0; i < NSIDES; i++)
		n4_srv_room_leave(r, &sd[i].s, now);
	n4_srv_rooms_sweep(r, now + N4_ROOM_LINGER_MS);
	if (n4_srv_rooms_count(r) != 0)
		abort(); /* nobody uses it, its linger is over: freed */
	n4_srv_rooms_free(r);
	return 0;
}

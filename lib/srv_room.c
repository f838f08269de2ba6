/* srv_room.c - the server's rooms leaf: see srv_room.h. */
#include "srv_room.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blake2s.h"
#include "rand.h"

struct n4_srv_room {
	struct n4_srv_room *next; /* bucket chain */
	bool keyed;
	uint8_t ident[N4_PAYLOAD_SIZE];
	uint8_t long_id[N4_LONGID_SIZE];
	struct n4_srv_room_side *host; /* NULL: lingering */
	struct n4_srv_room_side *held; /* joiners waiting for the host's answer */
	unsigned nheld, refs;	       /* refs: MEMBER and HELD sides pointing here */
	uint16_t max_joiners;
	uint8_t src[16];       /* its (last) host's source: it holds one of its slots */
	uint64_t linger_until; /* hostless: visible until then */
	double tokens;	       /* joins left in the bucket */
	uint64_t tokens_ms;
};

/* Rooms held (hosted or lingering) by one source address, for N4_ROOMS_PER_SOURCE. */
struct src_count {
	struct src_count *next;
	uint8_t src[16];
	unsigned n;
};

struct n4_srv_rooms {
	struct n4_srv_room **rooms;
	struct src_count **srcs;
	size_t nbuckets; /* a power of two, for both tables */
	unsigned count;
	uint8_t secret[N4_BLAKE2S_KEYBYTES]; /* bucket hash: identifiers are the
					      * client's choice, so must not steer
					      * them into one chain */
};

static size_t slot(const n4_srv_rooms *r, uint8_t kind, const uint8_t *key, size_t len)
{
	uint8_t in[1 + 16], h[4];

	in[0] = kind;
	memcpy(in + 1, key, len);
	(void)n4_blake2s(h, sizeof(h), r->secret, sizeof(r->secret), in, 1 + len);
	uint32_t v =
		(uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
	return v & (r->nbuckets - 1);
}

n4_srv_rooms *n4_srv_rooms_new(size_t expected_rooms)
{
	n4_srv_rooms *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->nbuckets = 64;
	while (r->nbuckets < expected_rooms && r->nbuckets < ((size_t)1 << 20))
		r->nbuckets <<= 1;
	r->rooms = calloc(r->nbuckets, sizeof(*r->rooms));
	r->srcs = calloc(r->nbuckets, sizeof(*r->srcs));
	int rc = r->rooms && r->srcs ? n4_random_bytes(r->secret, sizeof(r->secret)) : -ENOMEM;
	if (rc) {
		n4_srv_rooms_free(r);
		errno = -rc;
		return NULL;
	}
	return r;
}

void n4_srv_rooms_free(n4_srv_rooms *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->rooms && i < r->nbuckets; i++) {
		for (struct n4_srv_room *m = r->rooms[i], *next; m; m = next) {
			next = m->next;
			free(m);
		}
	}
	for (size_t i = 0; r->srcs && i < r->nbuckets; i++) {
		for (struct src_count *c = r->srcs[i], *next; c; c = next) {
			next = c->next;
			free(c);
		}
	}
	free(r->rooms);
	free(r->srcs);
	n4_wipe(r->secret, sizeof(r->secret));
	free(r);
}

unsigned n4_srv_rooms_count(const n4_srv_rooms *r)
{
	return r ? r->count : 0;
}

int n4_srv_room_decode(const uint8_t *msg, struct n4_room_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (msg[0] != N4_CMD_ROOM)
		return -EPROTO;
	m->sub = msg[1];
	switch (m->sub) {
	case N4_ROOM_HOST:
		m->max_joiners = (uint16_t)((unsigned)msg[2] << 8 | msg[3]);
		if (m->max_joiners == 0 || m->max_joiners > N4_ROOM_MAX_JOINERS)
			return -EPROTO;
		return 0;
	case N4_ROOM_JOINER:
	case N4_ROOM_ANSWER:
		memcpy(m->id, msg + 2, N4_PAYLOAD_SIZE);
		return 0;
	default:
		return -EPROTO;
	}
}

void n4_srv_room_reply(uint8_t sub, uint8_t reason, struct n4_msg *m)
{
	uint8_t pl[N4_PAYLOAD_SIZE] = { reason };

	n4_msg_init(m, N4_CMD_ROOM, sub, pl);
}

/* --- the tables ---------------------------------------------------------- */

static struct n4_srv_room **room_slot(n4_srv_rooms *r, bool keyed,
				      const uint8_t ident[N4_PAYLOAD_SIZE])
{
	return &r->rooms[slot(r, keyed ? 2 : 1, ident, N4_PAYLOAD_SIZE)];
}

/* A keyed room is its short id and its long id: a stranger who learnt the short id
 * and registers a room of its own blocks nobody.  long_id NULL (keyed): any room on
 * that short id. */
static struct n4_srv_room *room_lookup(n4_srv_rooms *r, bool keyed,
				       const uint8_t ident[N4_PAYLOAD_SIZE], const uint8_t *long_id)
{
	for (struct n4_srv_room *m = *room_slot(r, keyed, ident); m; m = m->next)
		if (m->keyed == keyed && memcmp(m->ident, ident, N4_PAYLOAD_SIZE) == 0 &&
		    (!keyed || !long_id || n4_ct_equal(m->long_id, long_id, N4_LONGID_SIZE)))
			return m;
	return NULL;
}

static void src_release(n4_srv_rooms *r, const uint8_t src[16]);

static void room_free(n4_srv_rooms *r, struct n4_srv_room *room)
{
	struct n4_srv_room **pp = room_slot(r, room->keyed, room->ident);

	src_release(r, room->src);

	while (*pp && *pp != room)
		pp = &(*pp)->next;
	if (*pp)
		*pp = room->next;
	r->count--;
	free(room);
}

static bool room_idle(const struct n4_srv_room *room, uint64_t now_ms)
{
	return !room->host && room->refs == 0 && now_ms >= room->linger_until;
}

static struct src_count **src_slot(n4_srv_rooms *r, const uint8_t src[16])
{
	struct src_count **pp = &r->srcs[slot(r, 3, src, 16)];

	while (*pp && memcmp((*pp)->src, src, 16) != 0)
		pp = &(*pp)->next;
	return pp;
}

static int src_take(n4_srv_rooms *r, const uint8_t src[16])
{
	struct src_count **pp = src_slot(r, src);

	if (!*pp) {
		*pp = calloc(1, sizeof(**pp));
		if (!*pp)
			return -ENOMEM;
		memcpy((*pp)->src, src, 16);
	}
	if ((*pp)->n >= N4_ROOMS_PER_SOURCE)
		return -EACCES;
	(*pp)->n++;
	return 0;
}

static void src_release(n4_srv_rooms *r, const uint8_t src[16])
{
	struct src_count **pp = src_slot(r, src), *c = *pp;

	if (!c)
		return;
	if (--c->n == 0) {
		*pp = c->next;
		free(c);
	}
}

/* --- rooms ------------------------------------------------------------- */

struct n4_srv_room *n4_srv_room_find(n4_srv_rooms *r, bool keyed,
				     const uint8_t ident[N4_PAYLOAD_SIZE], const uint8_t *long_id,
				     bool *wrong_key, uint64_t now_ms)
{
	*wrong_key = false;
	struct n4_srv_room *room = room_lookup(r, keyed, ident, long_id);
	if (room && !room->host && now_ms >= room->linger_until) {
		if (room->refs == 0)
			room_free(r, room);
		room = NULL; /* its host is gone for good */
	}
	if (keyed && (!room || !long_id)) {
		/* Another live keyed room on this short id? */
		for (struct n4_srv_room *m = *room_slot(r, true, ident); m; m = m->next)
			if (m->keyed && memcmp(m->ident, ident, N4_PAYLOAD_SIZE) == 0 &&
			    (m->host || now_ms < m->linger_until))
				*wrong_key = true;
		return NULL;
	}
	return room;
}

bool n4_srv_room_hosted(const struct n4_srv_room *room)
{
	return room && room->host;
}

int n4_srv_room_host(n4_srv_rooms *r, struct n4_srv_room_side *side, bool keyed,
		     const uint8_t ident[N4_PAYLOAD_SIZE], const uint8_t *long_id,
		     const uint8_t src[16], uint64_t now_ms, uint8_t *reason)
{
	struct n4_srv_room *room = room_lookup(r, keyed, ident, keyed ? long_id : NULL);

	if (room && room->host)
		return -EADDRINUSE;
	/* Every room holds one slot of its source, hosted or lingering: a room
	 * taken back from the same source keeps its slot, one taken over from
	 * another moves it. */
	bool same_src = room && memcmp(room->src, src, 16) == 0;
	int rc = same_src ? 0 : src_take(r, src);
	if (rc) {
		*reason = N4_ROOM_R_LIMITS;
		return -EACCES;
	}
	if (room && !same_src)
		src_release(r, room->src);
	if (!room) {
		room = calloc(1, sizeof(*room));
		if (!room) {
			src_release(r, src);
			*reason = N4_ROOM_R_LIMITS;
			return -EACCES;
		}
		room->keyed = keyed;
		memcpy(room->ident, ident, N4_PAYLOAD_SIZE);
		if (keyed)
			memcpy(room->long_id, long_id, N4_LONGID_SIZE);
		room->tokens = N4_ROOM_JOIN_BURST;
		room->tokens_ms = now_ms;
		struct n4_srv_room **head = room_slot(r, keyed, ident);
		room->next = *head;
		*head = room;
		r->count++;
	}
	memcpy(room->src, src, 16);
	room->host = side;
	room->max_joiners = side->max_joiners;
	side->room = room;
	side->role = N4_ROLE_HOST;
	return 0;
}

void n4_srv_room_enter(struct n4_srv_room *room, struct n4_srv_room_side *side)
{
	side->room = room;
	side->role = N4_ROLE_MEMBER;
	room->refs++;
}

static void join_msgs(const struct n4_srv_room_side *j, struct n4_msg out[2])
{
	n4_msg_init(&out[0], N4_CMD_ROOM, N4_ROOM_JOIN, j->ticket);
	n4_msg_init(&out[1], N4_CMD_ROOM, N4_ROOM_JOIN_PEER, j->peer_id);
}

/* A token bucket per room: a flood of joiners (or one joiner retrying in a loop)
 * cannot keep the host answering. */
static bool join_rate_ok(struct n4_srv_room *room, uint64_t now_ms)
{
	double add = (double)(now_ms - room->tokens_ms) * N4_ROOM_JOIN_RATE / 1000.0;

	room->tokens_ms = now_ms;
	room->tokens += add;
	if (room->tokens > N4_ROOM_JOIN_BURST)
		room->tokens = N4_ROOM_JOIN_BURST;
	if (room->tokens < 1.0)
		return false;
	room->tokens -= 1.0;
	return true;
}

int n4_srv_room_joiner(n4_srv_rooms *r, struct n4_srv_room_side *side,
		       const uint8_t peer_id[N4_PAYLOAD_SIZE], uint64_t now_ms,
		       struct n4_srv_room_side **to_host, struct n4_msg out[2], uint8_t *reason)
{
	struct n4_srv_room *room = side->room;
	unsigned cap = N4_ROOM_HELD_MAX;
	(void)r;

	*to_host = NULL;
	if (!room || side->role != N4_ROLE_MEMBER) {
		*reason = N4_ROOM_R_LIMITS;
		return -EACCES;
	}
	if (room->max_joiners && room->max_joiners < cap)
		cap = room->max_joiners;
	if (room->nheld >= cap) {
		*reason = N4_ROOM_R_LIMITS;
		return -EACCES;
	}
	if (!join_rate_ok(room, now_ms)) {
		*reason = N4_ROOM_R_RATE;
		return -EACCES;
	}
	if (n4_random_bytes(side->ticket, sizeof(side->ticket))) {
		*reason = N4_ROOM_R_LIMITS;
		return -EACCES;
	}
	memcpy(side->peer_id, peer_id, N4_PAYLOAD_SIZE);
	side->role = N4_ROLE_HELD;
	side->prev = NULL;
	side->next = room->held;
	if (room->held)
		room->held->prev = side;
	room->held = side;
	room->nheld++;
	if (!room->host)
		return 0;
	side->announced = true;
	*to_host = room->host;
	join_msgs(side, out);
	return 1;
}

struct n4_srv_room_side *n4_srv_room_next_unannounced(struct n4_srv_room *room,
						      struct n4_msg out[2])
{
	for (struct n4_srv_room_side *j = room ? room->held : NULL; j; j = j->next) {
		if (!j->announced) {
			j->announced = true;
			join_msgs(j, out);
			return j;
		}
	}
	return NULL;
}

static void unhold(struct n4_srv_room *room, struct n4_srv_room_side *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		room->held = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->prev = j->next = NULL;
	room->nheld--;
	room->refs--;
	j->room = NULL;
}

struct n4_srv_room_side *n4_srv_room_answer(struct n4_srv_room_side *side,
					    const uint8_t ticket[N4_ROOM_TICKET_SIZE])
{
	struct n4_srv_room *room = side->room;

	if (!room || side->role != N4_ROLE_MEMBER)
		return NULL;
	for (struct n4_srv_room_side *j = room->held; j; j = j->next) {
		/* Only an announced joiner's ticket ever left the server. */
		if (j->announced && n4_ct_equal(j->ticket, ticket, N4_ROOM_TICKET_SIZE)) {
			unhold(room, j);
			j->role = N4_ROLE_ANSWERED;
			room->refs--;
			side->room = NULL;
			side->role = N4_ROLE_ANSWERING;
			return j;
		}
	}
	return NULL;
}

void n4_srv_room_leave(n4_srv_rooms *r, struct n4_srv_room_side *side, uint64_t now_ms)
{
	struct n4_srv_room *room = side->room;

	if (!room) {
		side->role = N4_ROLE_NONE;
		return;
	}
	switch (side->role) {
	case N4_ROLE_HOST:
		room->host = NULL;
		room->linger_until = now_ms + N4_ROOM_LINGER_MS;
		/* Its source's slot stays taken while the room lingers (room_free
		 * gives it back): a source cannot pile up lingering rooms by
		 * registering and closing in a loop. */
		/* Joiners announced to it are announced again to its successor. */
		for (struct n4_srv_room_side *j = room->held; j; j = j->next)
			j->announced = false;
		break;
	case N4_ROLE_HELD:
		unhold(room, side); /* drops its reference */
		break;
	case N4_ROLE_MEMBER:
		room->refs--;
		break;
	default:
		break;
	}
	side->room = NULL;
	side->role = N4_ROLE_NONE;
	if (room && room_idle(room, now_ms))
		room_free(r, room);
}

void n4_srv_rooms_sweep(n4_srv_rooms *r, uint64_t now_ms)
{
	for (size_t i = 0; i < r->nbuckets; i++) {
		for (struct n4_srv_room *m = r->rooms[i], *next; m; m = next) {
			next = m->next;
			if (room_idle(m, now_ms))
				room_free(r, m);
		}
	}
}

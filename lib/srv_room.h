/* srv_room.h - the server's rooms leaf (N4_EXT_ROOM): a host registers a room for
 * an identifier (and long keyed id) on a connection it keeps; clients that say
 * HELLO for that identifier are held as its joiners and announced to the host
 * (JOIN, JOIN_PEER) until the host's answer connection names their ticket; joiners
 * never pair with each other.  Wire: doc/PROTOCOL.md "Rooms".
 *
 * Memory is bounded: rooms by N4_ROOMS_PER_SOURCE per source address, counting
 * both those hosted and those lingering for N4_ROOM_LINGER_MS after their host
 * left (so that joiners are not paired with each other while it comes back; a
 * host that comes back takes its room and its slot again); held joiners by
 * N4_ROOM_HELD_MAX per room.
 *
 * Layer: leaf (see server_int.h "Leaves"): own state, decode of its messages,
 * messages to send as return values; never sends, closes or calls the protocol.
 * May call: wire.c, blake2s.c, rand.c. */
#ifndef N4_SRV_ROOM_H
#define N4_SRV_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"
#include "wire.h"

#define N4_ROOM_TICKET_SIZE 6
#define N4_ROOMS_PER_SOURCE 8	 /* rooms one source address may hold at once, lingering too */
#define N4_ROOM_HELD_MAX 32	 /* joiners held (announced, unanswered) per room */
#define N4_ROOM_JOIN_RATE 20	 /* joins per second per room ... */
#define N4_ROOM_JOIN_BURST 40	 /* ... with this burst */
#define N4_ROOM_LINGER_MS 30000u /* a room outlives its host's connection this long */
#define N4_ROOM_MAX_JOINERS 1024 /* the largest max-joiners a HOST may ask for */
/* A room connection lives this long at most; the host registers again. */
#define N4_ROOM_MAX_MS (24u * 3600u * 1000u)

/* REFUSED reasons (payload[0]). */
enum n4_room_refusal {
	N4_ROOM_R_LIMITS = 1, /* rooms per source, or the room is full */
	N4_ROOM_R_RATE = 2,   /* joins per second */
	N4_ROOM_R_KEY = 3,    /* a keyed room, and another long id */
	N4_ROOM_R_TICKET = 4, /* an answer for no joiner held */
};

enum n4_room_role {
	N4_ROLE_NONE = 0,  /* not in a room */
	N4_ROLE_HOSTING,   /* ROOM HOST came first: registration after HELLO (and long id) */
	N4_ROLE_JOINING,   /* ROOM JOINER came first: a joiner of a room, or nothing */
	N4_ROLE_HOST,	   /* the room's connection */
	N4_ROLE_MEMBER,	   /* READY sent in the room, its ROOM message not in yet */
	N4_ROLE_HELD,	   /* a joiner waiting for the host's answer */
	N4_ROLE_ANSWERING, /* the host's answer, linked with its joiner */
	N4_ROLE_ANSWERED,  /* a joiner linked with the host's answer */
};

struct n4_srv_room;

/* A connection's part, embedded in it. */
struct n4_srv_room_side {
	enum n4_room_role role;
	struct n4_srv_room *room;
	struct n4_srv_room_side *prev, *next; /* the room's held joiners */
	uint16_t max_joiners;		      /* HOSTING */
	bool announced;			      /* HELD: JOIN sent to the host */
	uint8_t ticket[N4_ROOM_TICKET_SIZE];
	uint8_t peer_id[N4_PAYLOAD_SIZE];
	void *owner; /* the connection */
};

typedef struct n4_srv_rooms n4_srv_rooms;

/* NULL + errno (ENOMEM, or getrandom's error: tickets and the table's hash need a
 * secret). */
n4_srv_rooms *n4_srv_rooms_new(size_t expected_rooms);
void n4_srv_rooms_free(n4_srv_rooms *r);
unsigned n4_srv_rooms_count(const n4_srv_rooms *r);

/* A decoded ROOM message from a client. */
struct n4_room_msg {
	uint8_t sub; /* N4_ROOM_HOST, N4_ROOM_JOINER or N4_ROOM_ANSWER */
	uint16_t max_joiners;
	uint8_t id[N4_PAYLOAD_SIZE]; /* JOINER: the peer id; ANSWER: the ticket */
};
/* msg is N4_MSG_SIZE bytes: 0, or -EPROTO for anything a client may not send
 * (another command, a server's subcode, HOST for 0 or more than
 * N4_ROOM_MAX_JOINERS joiners). */
int n4_srv_room_decode(const uint8_t *msg, struct n4_room_msg *m);

/* The live room for this identifier (keyed: the short id and the long id), or
 * NULL.  A room whose host left less than N4_ROOM_LINGER_MS ago counts.  Keyed, when
 * no room has long_id (or long_id is NULL), *wrong_key tells whether a live keyed
 * room holds the short id: the client must then prove it has that room's key. */
struct n4_srv_room *n4_srv_room_find(n4_srv_rooms *r, bool keyed,
				     const uint8_t ident[N4_PAYLOAD_SIZE], const uint8_t *long_id,
				     bool *wrong_key, uint64_t now_ms);
/* Whether the room has a host connection now. */
bool n4_srv_room_hosted(const struct n4_srv_room *room);

/* Register side (HOSTING, owner set) as the host.  0: hosted (a lingering room is
 * taken over: its held joiners wait for n4_srv_room_next_unannounced);
 * -EADDRINUSE: the room (keyed: that short and long id) has a host; -EACCES:
 * refused (N4_ROOMS_PER_SOURCE, memory), *reason set.  src: the
 * host's source address (16 bytes, ipcap.h n4_ipkey). */
int n4_srv_room_host(n4_srv_rooms *r, struct n4_srv_room_side *side, bool keyed,
		     const uint8_t ident[N4_PAYLOAD_SIZE], const uint8_t *long_id,
		     const uint8_t src[16], uint64_t now_ms, uint8_t *reason);
/* Enter side (owner set) into room as a MEMBER (READY goes out next). */
void n4_srv_room_enter(struct n4_srv_room *room, struct n4_srv_room_side *side);
/* A MEMBER's JOINER message: held.  1: announce it now (*to_host: the host's
 * side; out: JOIN and JOIN_PEER); 0: held, the host is away (announced when one
 * registers); -EACCES: refused, *reason set (the caller closes it). */
int n4_srv_room_joiner(n4_srv_rooms *r, struct n4_srv_room_side *side,
		       const uint8_t peer_id[N4_PAYLOAD_SIZE], uint64_t now_ms,
		       struct n4_srv_room_side **to_host, struct n4_msg out[2], uint8_t *reason);
/* After a host registered: the next held joiner not yet announced (marked
 * announced; out: its JOIN and JOIN_PEER), or NULL. */
struct n4_srv_room_side *n4_srv_room_next_unannounced(struct n4_srv_room *room,
						      struct n4_msg out[2]);
/* A MEMBER's ANSWER message: the held joiner of that ticket (both are then
 * ANSWERING/ANSWERED and out of the held list), or NULL. */
struct n4_srv_room_side *n4_srv_room_answer(struct n4_srv_room_side *side,
					    const uint8_t ticket[N4_ROOM_TICKET_SIZE]);
/* side's connection closes (any role): the room forgets it; a host's room lingers. */
void n4_srv_room_leave(n4_srv_rooms *r, struct n4_srv_room_side *side, uint64_t now_ms);
/* Free rooms whose linger ran out and that hold nobody; call about once a second. */
void n4_srv_rooms_sweep(n4_srv_rooms *r, uint64_t now_ms);
/* HOSTED, TAKEN, or REFUSED with reason. */
void n4_srv_room_reply(uint8_t sub, uint8_t reason, struct n4_msg *m);

#endif

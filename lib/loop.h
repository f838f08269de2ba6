/* loop.h - a small event loop: epoll file events plus a heap of one-shot timers.
 * Registrations and timers are intrusive (embedded in the caller's structs), so the
 * loop never allocates per event. */
#ifndef N4_LOOP_H
#define N4_LOOP_H

#include <stddef.h>
#include <stdint.h>

typedef struct n4_loop n4_loop;
struct n4_io;
struct n4_timer;

typedef void (*n4_io_cb)(n4_loop *loop, struct n4_io *io, uint32_t events);
typedef void (*n4_timer_cb)(n4_loop *loop, struct n4_timer *timer);

struct n4_io {
	int fd;
	n4_io_cb cb;
	void *arg;
};

struct n4_timer {
	uint64_t due_ms;
	n4_timer_cb cb;
	void *arg;
	size_t slot; /* index in the heap + 1; 0 when not armed */
};

/* Monotonic milliseconds. */
uint64_t n4_now_ms(void);

n4_loop *n4_loop_new(void);
void n4_loop_free(n4_loop *loop);

/* Register io->fd for events (EPOLLIN/EPOLLOUT...), calling io->cb. */
int n4_loop_add(n4_loop *loop, struct n4_io *io, uint32_t events);
int n4_loop_mod(n4_loop *loop, struct n4_io *io, uint32_t events);
/* Unregister; safe from inside any callback, also for events already fetched. */
int n4_loop_del(n4_loop *loop, struct n4_io *io);

/* Arm (or re-arm) a one-shot timer at absolute monotonic time due_ms. */
int n4_timer_arm(n4_loop *loop, struct n4_timer *t, uint64_t due_ms, n4_timer_cb cb, void *arg);
void n4_timer_cancel(n4_loop *loop, struct n4_timer *t);

/* Wait at most max_wait_ms (-1: until an event or timer) and dispatch.  Returns
 * the number of callbacks run, or -EINTR when a signal interrupted the wait. */
int n4_loop_run_once(n4_loop *loop, int max_wait_ms);

size_t n4_loop_timer_count(const n4_loop *loop);

#endif

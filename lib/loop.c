/* loop.c - epoll plus a binary min-heap of timers: small enough to read at once. */
#include "loop.h"
#include "wait.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 256

struct n4_loop {
	int epfd;
	struct n4_timer **heap;
	size_t heap_len, heap_cap;
	/* Events fetched by the current epoll_wait: n4_loop_del clears matching
	 * entries so a callback may free another registration safely. */
	struct epoll_event events[LOOP_BATCH];
	int nevents;
};

uint64_t n4_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

n4_loop *n4_loop_new(void)
{
	n4_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int err = errno;
		free(loop);
		errno = err;
		return NULL;
	}
	return loop;
}

void n4_loop_free(n4_loop *loop)
{
	if (!loop)
		return;
	for (size_t i = 0; i < loop->heap_len; i++)
		loop->heap[i]->slot = 0;
	free(loop->heap);
	close(loop->epfd);
	free(loop);
}

int n4_loop_add(n4_loop *loop, struct n4_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) ? -errno : 0;
}

int n4_loop_mod(n4_loop *loop, struct n4_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) ? -errno : 0;
}

int n4_loop_del(n4_loop *loop, struct n4_io *io)
{
	for (int i = 0; i < loop->nevents; i++) {
		if (loop->events[i].data.ptr == io)
			loop->events[i].data.ptr = NULL;
	}
	return epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL) ? -errno : 0;
}

static void heap_place(n4_loop *loop, size_t i, struct n4_timer *t)
{
	loop->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(n4_loop *loop, size_t i)
{
	struct n4_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (loop->heap[parent]->due_ms <= t->due_ms)
			break;
		heap_place(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_place(loop, i, t);
}

static void heap_down(n4_loop *loop, size_t i)
{
	struct n4_timer *t = loop->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= loop->heap_len)
			break;
		if (child + 1 < loop->heap_len &&
		    loop->heap[child + 1]->due_ms < loop->heap[child]->due_ms)
			child++;
		if (t->due_ms <= loop->heap[child]->due_ms)
			break;
		heap_place(loop, i, loop->heap[child]);
		i = child;
	}
	heap_place(loop, i, t);
}

void n4_timer_cancel(n4_loop *loop, struct n4_timer *t)
{
	if (!t->slot)
		return;
	size_t i = t->slot - 1;
	t->slot = 0;
	loop->heap_len--;
	if (i == loop->heap_len)
		return;
	struct n4_timer *moved = loop->heap[loop->heap_len];
	heap_place(loop, i, moved);
	heap_up(loop, i);
	heap_down(loop, moved->slot - 1);
}

int n4_timer_arm(n4_loop *loop, struct n4_timer *t, uint64_t due_ms, n4_timer_cb cb, void *arg)
{
	n4_timer_cancel(loop, t);
	if (loop->heap_len == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct n4_timer **heap = realloc(loop->heap, cap * sizeof(*heap));
		if (!heap)
			return -ENOMEM;
		loop->heap = heap;
		loop->heap_cap = cap;
	}
	t->due_ms = due_ms;
	t->cb = cb;
	t->arg = arg;
	heap_place(loop, loop->heap_len++, t);
	heap_up(loop, t->slot - 1);
	return 0;
}

size_t n4_loop_timer_count(const n4_loop *loop)
{
	return loop->heap_len;
}

static int run_timers(n4_loop *loop)
{
	uint64_t now = n4_now_ms();
	int ran = 0;

	while (loop->heap_len > 0 && loop->heap[0]->due_ms <= now) {
		struct n4_timer *t = loop->heap[0];
		n4_timer_cancel(loop, t);
		t->cb(loop, t);
		ran++;
	}
	return ran;
}

int n4_loop_run_once(n4_loop *loop, int max_wait_ms)
{
	int wait_ms = max_wait_ms;

	if (loop->heap_len > 0) {
		uint64_t now = n4_now_ms(), due = loop->heap[0]->due_ms;
		int until = due <= now ? 0 : (due - now > 60000 ? 60000 : (int)(due - now));
		if (wait_ms < 0 || until < wait_ms)
			wait_ms = until;
	}
	int n = epoll_wait(loop->epfd, loop->events, LOOP_BATCH, wait_ms);
	if (n < 0)
		return errno == EINTR ? -EINTR : -errno;
	loop->nevents = n;
	int ran = 0;
	for (int i = 0; i < n; i++) {
		struct n4_io *io = loop->events[i].data.ptr;
		if (!io)
			continue; /* deleted by an earlier callback of this batch */
		io->cb(loop, io, loop->events[i].events);
		ran++;
	}
	loop->nevents = 0;
	return ran + run_timers(loop);
}

/* ---- bounded waits for blocking callers (wait.h) ---- */

int n4_wait(struct pollfd *fds, unsigned nfds, uint64_t deadline_ms, const struct n4_waitctx *ctx)
{
	for (;;) {
		if (ctx && ctx->cancel && *ctx->cancel)
			return -ECANCELED;
		uint64_t now = n4_now_ms();
		if (now >= deadline_ms)
			return 0;
		/* Slices of 100 ms so a cancel flag set by another thread is seen soon. */
		uint64_t left = deadline_ms - now;
		int slice = left > 100 ? 100 : (int)left;
		int n = poll(fds, nfds, slice);
		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR) {
			if (ctx && ctx->return_on_eintr)
				return -EINTR;
			continue;
		}
		if (n < 0)
			return -errno;
	}
}

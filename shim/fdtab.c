/* fdtab.c - the per-descriptor table: which descriptors are the program's UDP
 * sockets, and what the shim knows about each.  The table is the shim's one global;
 * one lock guards it (as cwrap socket_wrapper does) and is never held across a
 * blocking call.  Slots are read without the lock only for the O(1) "is it ours?"
 * test of every hook; everything else happens under the lock. */
#include "shim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct shim_sock *_Atomic shim_fdtab[SHIM_FD_LIMIT];

unsigned shim_swaps;
static pthread_mutex_t tab_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shim_sock *free_list;
static int fd_high = -1;
static pthread_cond_t tab_cond = PTHREAD_COND_INITIALIZER;
/* Fast flow answers: on the monotonic clock, set up at first use (lock held). */
static pthread_cond_t fast_cond;
static bool fast_cond_ready;

static void set_slot(int fd, struct shim_sock *s)
{
	__atomic_store_n((struct shim_sock **)&shim_fdtab[fd], s, __ATOMIC_RELEASE);
}

/* The guard is up while the lock is held: a signal handler that runs on this thread
 * meanwhile and calls a hooked function goes straight to the real one instead of
 * waiting for a lock its own thread holds (a deadlock).  Only the send hooks need
 * more than that (hooks.c: shim_refuse_reentry). */
void shim_lock(void)
{
	shim_guard++; /* before: a handler between the two must not find it down */
	pthread_mutex_lock(&tab_lock);
}

void shim_unlock(void)
{
	pthread_mutex_unlock(&tab_lock);
	shim_guard--;
}

void shim_wait(void)
{
	pthread_cond_wait(&tab_cond, &tab_lock);
}

void shim_broadcast(void)
{
	pthread_cond_broadcast(&tab_cond);
}

static bool fast_cond_setup(void)
{
	pthread_condattr_t a;

	if (fast_cond_ready)
		return true;
	if (pthread_condattr_init(&a))
		return false;
	bool ok = !pthread_condattr_setclock(&a, CLOCK_MONOTONIC) && !pthread_cond_init(&fast_cond, &a);
	pthread_condattr_destroy(&a);
	return fast_cond_ready = ok;
}

void shim_fast_wait(uint64_t deadline_ms)
{
	struct timespec ts = { .tv_sec = (time_t)(deadline_ms / 1000u),
			       .tv_nsec = (long)(deadline_ms % 1000u) * 1000000L };

	if (!fast_cond_setup()) {
		/* no condition variable: a short sleep, the lock released */
		pthread_mutex_unlock(&tab_lock);
		struct timespec nap = { 0, 2000000L };
		nanosleep(&nap, NULL);
		pthread_mutex_lock(&tab_lock);
		return;
	}
	(void)pthread_cond_timedwait(&fast_cond, &tab_lock, &ts);
}

void shim_fast_broadcast(void)
{
	if (fast_cond_ready)
		pthread_cond_broadcast(&fast_cond);
}

struct shim_sock *shim_sock_get(int fd)
{
	if (fd < 0 || fd >= SHIM_FD_LIMIT)
		return NULL;
	return __atomic_load_n((struct shim_sock **)&shim_fdtab[fd], __ATOMIC_RELAXED);
}

#define SHIM_FDS_INIT 4

int shim_sock_track(int fd, int family, int type)
{
	if (fd < 0 || fd >= SHIM_FD_LIMIT)
		return -EMFILE;
	shim_sock_detach(fd); /* a number closed behind our back (syscall(SYS_close)) */
	struct shim_sock *s = free_list;
	if (s) {
		unsigned gen = s->gen, cap = s->fd_cap;
		int *fds = s->fds;
		free_list = s->next_free;
		for (unsigned i = 0; i < s->nopts; i++)
			free(s->opts[i].heap); /* copied filter programs (fdops.c) */
		memset(s, 0, sizeof(*s));
		s->fds = fds;
		s->fd_cap = cap;
		__atomic_store_n(&s->gen, gen + 2, __ATOMIC_RELEASE);
	} else {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->fds = malloc(SHIM_FDS_INIT * sizeof(*s->fds));
		if (!s->fds) {
			free(s);
			return -ENOMEM;
		}
		s->fd_cap = SHIM_FDS_INIT;
	}
	for (unsigned i = 0; i < s->fd_cap; i++)
		s->fds[i] = -1;
	s->fds[0] = fd;
	s->stay_fd = -1;
	s->refs = 1;
	s->family = family;
	s->type = type;
	s->state = SHIM_CANDIDATE;
	if (fd > fd_high)
		fd_high = fd;
	set_slot(fd, s);
	return 0;
}

/* Any number of descriptors may share a path (issue 8: a dup we do not follow would
 * send to the placeholder, i.e. to the server's host, in clear). */
int shim_sock_attach(int fd, struct shim_sock *s)
{
	if (fd < 0 || fd >= SHIM_FD_LIMIT)
		return -EBADF;
	shim_sock_detach(fd);
	unsigned i;
	for (i = 0; i < s->fd_cap && s->fds[i] >= 0; i++)
		;
	if (i == s->fd_cap) {
		int *fds = realloc(s->fds, 2 * s->fd_cap * sizeof(*fds));
		if (!fds)
			return -ENOMEM;
		for (unsigned k = s->fd_cap; k < 2 * s->fd_cap; k++)
			fds[k] = -1;
		s->fds = fds;
		s->fd_cap *= 2;
	}
	s->fds[i] = fd;
	s->refs++;
	if (fd > fd_high)
		fd_high = fd;
	set_slot(fd, s);
	return 0;
}

void shim_sock_release_old(struct shim_sock *s)
{
	for (unsigned i = 0; i < s->nold; i++) {
		shutdown(s->old_socks[i], SHUT_RDWR); /* wakes its sleepers */
		REAL(close)(s->old_socks[i]);
	}
	s->nold = 0;
}

void shim_sock_put(struct shim_sock *s)
{
	if (--s->refs == 0) {
		shim_sock_release_old(s);
		shim_peer_forget(s);
		s->have_side = false;
		s->flow = false;
		s->flow_notify = false;
		s->wire_ident[0] = '\0';
		shim_host_release(s);
		shim_path_remove(s);
		if (s->stay_fd >= 0) {
			REAL(close)(s->stay_fd);
			s->stay_fd = -1;
		}
		n4_path_free(s->path);
		s->path = NULL;
		shim_seq_begin(s);
		__atomic_store_n(&s->state, SHIM_CANDIDATE, __ATOMIC_RELEASE);
		shim_seq_end(s);
		s->next_free = free_list;
		free_list = s;
	}
}

void shim_sock_detach(int fd)
{
	struct shim_sock *s = shim_sock_get(fd);
	bool last = true;

	if (!s)
		return;
	set_slot(fd, NULL);
	for (unsigned i = 0; i < s->fd_cap; i++) {
		if (s->fds[i] == fd)
			s->fds[i] = -1;
		else if (s->fds[i] >= 0)
			last = false;
	}
	if (last)
		s->cancel = 1; /* a rendezvous for a socket nobody holds any more */
	shim_sock_put(s);
}

void shim_sock_remember_opt(struct shim_sock *s, int level, int name, const void *val,
			    socklen_t len)
{
	if (!val || len > SHIM_OPT_LEN)
		return;
	unsigned i;
	for (i = 0; i < s->nopts; i++)
		if (s->opts[i].level == level && s->opts[i].name == name)
			break;
	if (i == s->nopts) {
		if (s->nopts == SHIM_MAX_OPTS)
			return;
		s->nopts++;
	}
	s->opts[i].level = level;
	s->opts[i].name = name;
	s->opts[i].len = len;
	memcpy(s->opts[i].val, val, len);
}

void shim_set_state(struct shim_sock *s, enum shim_state st)
{
	__atomic_store_n(&s->state, (int)st, __ATOMIC_RELEASE);
}

void shim_seq_begin(struct shim_sock *s)
{
	__atomic_store_n(&s->gen, s->gen + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

void shim_seq_end(struct shim_sock *s)
{
	__atomic_store_n(&s->gen, s->gen + 1, __ATOMIC_RELEASE);
}

bool shim_read_view(const struct shim_sock *s, struct shim_view *v)
{
	unsigned g1 = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);

	if ((g1 & 1) || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SHIM_WON)
		return false;
	memset(v, 0, sizeof(*v));
	v->family = __atomic_load_n(&s->family, __ATOMIC_RELAXED);
	v->path6 = __atomic_load_n(&s->path6, __ATOMIC_RELAXED);
	v->have_ph = __atomic_load_n(&s->have_ph, __ATOMIC_RELAXED);
	v->peer.sin_family = v->ph.sin_family = AF_INET;
	v->peer.sin_addr.s_addr = __atomic_load_n(&s->peer.sin_addr.s_addr, __ATOMIC_RELAXED);
	v->peer.sin_port = __atomic_load_n(&s->peer.sin_port, __ATOMIC_RELAXED);
	v->ph.sin_addr.s_addr = __atomic_load_n(&s->ph.sin_addr.s_addr, __ATOMIC_RELAXED);
	v->ph.sin_port = __atomic_load_n(&s->ph.sin_port, __ATOMIC_RELAXED);
	if (v->path6) {
		/* A seqlock copy: torn reads are thrown away by the generation check. */
		const uint32_t *a = (const uint32_t *)(const void *)&s->peer6.sin6_addr;
		uint32_t w[4];
		for (int i = 0; i < 4; i++)
			w[i] = __atomic_load_n(&a[i], __ATOMIC_RELAXED);
		v->peer6.sin6_family = AF_INET6;
		memcpy(&v->peer6.sin6_addr, w, sizeof(w));
		v->peer6.sin6_port = __atomic_load_n(&s->peer6.sin6_port, __ATOMIC_RELAXED);
		v->peer6.sin6_scope_id = __atomic_load_n(&s->peer6.sin6_scope_id, __ATOMIC_RELAXED);
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&s->gen, __ATOMIC_RELAXED) == g1;
}

void shim_view_of(const struct shim_sock *s, struct shim_view *v)
{
	memset(v, 0, sizeof(*v));
	v->family = s->family;
	v->path6 = s->path6;
	v->have_ph = s->have_ph;
	v->peer = s->peer;
	v->ph = s->ph;
	v->peer6 = s->peer6;
}

int shim_fd_high(void)
{
	return fd_high;
}

void shim_sock_remember_epoll(struct shim_sock *s, int epfd, int fd, int op,
			      const struct epoll_event *ev)
{
	unsigned i;

	for (i = 0; i < s->nepoll; i++)
		if (s->epoll[i].epfd == epfd && s->epoll[i].fd == fd)
			break;
	if (op == EPOLL_CTL_DEL) {
		if (i < s->nepoll)
			s->epoll[i] = s->epoll[--s->nepoll];
		return;
	}
	if (!ev)
		return;
	if (i == s->nepoll) {
		if (s->nepoll == SHIM_MAX_EPOLL)
			return;
		s->nepoll++;
	}
	s->epoll[i].epfd = epfd;
	s->epoll[i].fd = fd;
	s->epoll[i].ev = *ev;
}

/* In the child of fork(): the lock may have been held by a thread that does not
 * exist here.  A rendezvous running in the parent's worker stays the parent's while
 * the parent lives (keeper.c decides, per path). */
void shim_fdtab_atfork_child(void)
{
	pthread_mutex_init(&tab_lock, NULL);
	pthread_cond_init(&tab_cond, NULL);
	fast_cond_ready = false; /* set up again at first use */
	shim_guard--; /* raised by shim_lock() in the prepare handler, in this thread */
	shim_keeper_atfork_child();
}

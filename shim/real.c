/* real.c - resolve the real libc functions behind our hooks, once and lazily.
 *
 * Lazily under pthread_once rather than in a constructor: hooks can be called
 * before our constructor runs (other libraries' constructors), and resolving
 * everything at load time has crashed debuggers for other interposers.  dlsym may
 * allocate and take loader locks, so the guard is set while it runs: a hook entered
 * from inside dlsym goes to a raw system call instead of recursing. */
#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct shim_real shim_real;
__thread int shim_guard __attribute__((tls_model("initial-exec")));

static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static __thread int resolving __attribute__((tls_model("initial-exec")));

/* Our own exported hooks: a real symbol resolving to one of them means the symbol
 * lookup went wrong (we are not in LD_PRELOAD order); abort rather than recurse. */
static void *next_symbol(const char *name, bool required)
{
	void *p = dlsym(RTLD_NEXT, name);
	Dl_info mine, theirs;

	if (!p) {
		if (!required)
			return NULL;
		char msg[160];
		int n = snprintf(msg, sizeof(msg), "n4shim: cannot resolve %s: %s\n", name,
				 dlerror());
		if (n > 0)
			(void)syscall(SYS_write, 2, msg, (size_t)n);
		abort();
	}
	if (dladdr(p, &theirs) && dladdr((void *)next_symbol, &mine) &&
	    mine.dli_fbase == theirs.dli_fbase) {
		char msg[160];
		int n = snprintf(msg, sizeof(msg), "n4shim: %s resolves to the shim itself\n",
				 name);
		if (n > 0)
			(void)syscall(SYS_write, 2, msg, (size_t)n);
		abort();
	}
	return p;
}

#define RESOLVE(field, name, req) *(void **)(&shim_real.field) = next_symbol(name, req)

static void resolve_all(void)
{
	shim_guard++;
	resolving = 1;
	RESOLVE(socket, "socket", true);
	RESOLVE(bind, "bind", true);
	RESOLVE(connect, "connect", true);
	RESOLVE(setsockopt, "setsockopt", true);
	RESOLVE(send, "send", true);
	RESOLVE(sendto, "sendto", true);
	RESOLVE(sendmsg, "sendmsg", true);
	RESOLVE(sendmmsg, "sendmmsg", true);
	RESOLVE(write, "write", true);
	RESOLVE(writev, "writev", true);
	RESOLVE(recv, "recv", true);
	RESOLVE(recvfrom, "recvfrom", true);
	RESOLVE(recvmsg, "recvmsg", true);
	RESOLVE(recvmmsg, "recvmmsg", true);
	RESOLVE(read, "read", true);
	RESOLVE(readv, "readv", true);
	RESOLVE(read_chk, "__read_chk", false);
	RESOLVE(recv_chk, "__recv_chk", false);
	RESOLVE(recvfrom_chk, "__recvfrom_chk", false);
	RESOLVE(getpeername, "getpeername", true);
	RESOLVE(getsockname, "getsockname", true);
	RESOLVE(close, "close", true);
	RESOLVE(close_range, "close_range", false);
	RESOLVE(closefrom, "closefrom", false);
	RESOLVE(dup, "dup", true);
	RESOLVE(dup2, "dup2", true);
	RESOLVE(dup3, "dup3", true);
	RESOLVE(fcntl, "fcntl", true);
	RESOLVE(fcntl64, "fcntl64", false);
	RESOLVE(epoll_ctl, "epoll_ctl", true);
	RESOLVE(fork, "fork", true);
	if (!shim_real.fcntl64)
		shim_real.fcntl64 = shim_real.fcntl;
	resolving = 0;
	shim_atfork_init();
	shim_guard--;
}

void shim_real_init(void)
{
	/* A hook entered from inside dlsym: pthread_once would deadlock.  The hooks
	 * that can be reached that way (write, read, close) fall back to syscall(). */
	if (resolving)
		return;
	pthread_once(&real_once, resolve_all);
}

/* log.c - log lines in the original n4's format:
 * "[YYYY-MM-DD HH:MM:SS,mmm] LEVEL [file:line] message", to stderr, one write(2) per
 * line so that lines of concurrent threads and processes never interleave. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum n4_log_level log_level = N4_LOG_INFO;
static char log_prefix[64];
static unsigned log_rate;
static time_t rate_second;
static unsigned rate_count;
static unsigned long rate_suppressed;
/* Where lines go: stderr, or a private duplicate of it (the shim's, so that its lines
 * never land in a program's socket that took descriptor 2); -1 drops them. */
static int log_fd = STDERR_FILENO;

void n4_log_set_level(enum n4_log_level level)
{
	log_level = level;
}

enum n4_log_level n4_log_get_level(void)
{
	return log_level;
}

void n4_log_set_prefix(const char *prefix)
{
	snprintf(log_prefix, sizeof(log_prefix), "%s", prefix ? prefix : "");
}

void n4_log_set_fd(int fd)
{
	__atomic_store_n(&log_fd, fd, __ATOMIC_RELEASE);
}

int n4_log_get_fd(void)
{
	return __atomic_load_n(&log_fd, __ATOMIC_ACQUIRE);
}

void n4_log_set_rate(unsigned lines_per_s)
{
	log_rate = lines_per_s;
}

int n4_log_parse_level(const char *s, enum n4_log_level *out)
{
	static const char *const names[] = { "quiet", "error", "warn", "info", "debug" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum n4_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *level_name(enum n4_log_level level)
{
	switch (level) {
	case N4_LOG_ERROR:
		return "ERROR";
	case N4_LOG_WARN:
		return "WARNING";
	case N4_LOG_DEBUG:
		return "DEBUG";
	default:
		return "INFO";
	}
}

static size_t put_stamp(char *buf, size_t len, const struct timespec *now)
{
	struct tm tm;

	localtime_r(&now->tv_sec, &tm);
	size_t n = strftime(buf, len, "[%Y-%m-%d %H:%M:%S", &tm);
	int m = snprintf(buf + n, len - n, ",%03ld]", now->tv_nsec / 1000000);
	return n + (m > 0 ? (size_t)m : 0);
}

static void emit(const char *line, size_t len)
{
	int fd = n4_log_get_fd();

	if (fd < 0)
		return;
	while (len > 0) {
		ssize_t w = write(fd, line, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere to report a failing stderr */
		line += w;
		len -= (size_t)w;
	}
}

/* Returns false when this line is over the per-second cap. */
static bool rate_allows(const struct timespec *now, unsigned long *report)
{
	*report = 0;
	if (log_rate == 0)
		return true;
	if (now->tv_sec != rate_second) {
		*report = rate_suppressed;
		rate_suppressed = 0;
		rate_second = now->tv_sec;
		rate_count = 0;
	}
	if (rate_count >= log_rate) {
		rate_suppressed++;
		return false;
	}
	rate_count++;
	return true;
}

static void vlog(enum n4_log_level level, const char *file, int line, bool capped, const char *fmt,
		 va_list ap)
{
	int saved_errno = errno;
	struct timespec now;
	char buf[1024];
	unsigned long suppressed = 0;
	const char *base = strrchr(file, '/');

	clock_gettime(CLOCK_REALTIME, &now);
	if (capped && !rate_allows(&now, &suppressed)) {
		errno = saved_errno;
		return;
	}
	size_t n = 0;
	if (suppressed) {
		n = put_stamp(buf, sizeof(buf), &now);
		int m = snprintf(buf + n, sizeof(buf) - n,
				 " WARNING [log.c:0] %s%lu log lines suppressed\n", log_prefix,
				 suppressed);
		if (m > 0)
			emit(buf, n + (size_t)m);
	}
	n = put_stamp(buf, sizeof(buf), &now);
	int m = snprintf(buf + n, sizeof(buf) - n, " %s [%s:%d] %s", level_name(level),
			 base ? base + 1 : file, line, log_prefix);
	if (m > 0)
		n += (size_t)m;
	if (n < sizeof(buf)) {
		m = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
		if (m > 0)
			n += (size_t)m;
	}
	if (n >= sizeof(buf) - 1)
		n = sizeof(buf) - 2; /* truncated: still one whole line */
	buf[n++] = '\n';
	emit(buf, n);
	errno = saved_errno;
}

void n4_log_write(enum n4_log_level level, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, file, line, true, fmt, ap);
	va_end(ap);
}

void n4_log_write_uncapped(enum n4_log_level level, const char *file, int line, const char *fmt,
			   ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, file, line, false, fmt, ap);
	va_end(ap);
}

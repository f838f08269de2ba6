/* log.h - the one logging module: n4's line format, levels, a per-second cap. */
#ifndef N4_LOG_H
#define N4_LOG_H

enum n4_log_level {
	N4_LOG_QUIET = 0,
	N4_LOG_ERROR = 1,
	N4_LOG_WARN = 2,
	N4_LOG_INFO = 3,
	N4_LOG_DEBUG = 4,
};

/* Settings (the only global mutable state of libn4).  Not thread-safe to change
 * while other threads log; set them once at start. */
void n4_log_set_level(enum n4_log_level level);
enum n4_log_level n4_log_get_level(void);
/* Text put before every line, e.g. "n4shim[1234] "; NULL for none.  Copied. */
void n4_log_set_prefix(const char *prefix);
/* At most this many lines per second (0: unlimited); the rest are counted and
 * reported once as "N log lines suppressed".  Protects the disk from attackers. */
void n4_log_set_rate(unsigned lines_per_s);
/* Descriptor the lines are written to (default 2); -1 drops them.  Atomic: the
 * shim changes it when the program closes or reuses its private copy. */
void n4_log_set_fd(int fd);
int n4_log_get_fd(void);
/* Parse "quiet", "error", "warn", "info", "debug"; -EINVAL otherwise. */
int n4_log_parse_level(const char *s, enum n4_log_level *out);

/* The same, never dropped by the per-second cap: for lines an operator asked for
 * (a status on SIGUSR1, the final status), which an attacker cannot multiply. */
void n4_log_write_uncapped(enum n4_log_level level, const char *file, int line, const char *fmt,
			   ...) __attribute__((format(printf, 4, 5)));

void n4_log_write(enum n4_log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define N4_LOG_AT(lvl, ...)                                                   \
	do {                                                                  \
		if ((lvl) <= n4_log_get_level())                              \
			n4_log_write((lvl), __FILE__, __LINE__, __VA_ARGS__); \
	} while (0)
#define n4_error(...) N4_LOG_AT(N4_LOG_ERROR, __VA_ARGS__)
#define n4_warn(...) N4_LOG_AT(N4_LOG_WARN, __VA_ARGS__)
#define n4_info(...) N4_LOG_AT(N4_LOG_INFO, __VA_ARGS__)
#define n4_info_uncapped(...)                                                                \
	do {                                                                                 \
		if (N4_LOG_INFO <= n4_log_get_level())                                       \
			n4_log_write_uncapped(N4_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__); \
	} while (0)
#define n4_debug(...) N4_LOG_AT(N4_LOG_DEBUG, __VA_ARGS__)

#endif

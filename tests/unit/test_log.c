/* test_log.c - the log's descriptor: lines go where n4_log_set_fd says (the shim's
 * private copy of stderr), and nowhere at -1. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "test.h"

TEST(log_lines_go_to_the_descriptor_set)
{
	int p[2];
	char buf[512];
	enum n4_log_level level = n4_log_get_level();
	int fd = n4_log_get_fd();

	CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
	n4_log_set_level(N4_LOG_INFO);
	n4_log_set_fd(p[1]);
	n4_info("to the pipe %d", 42);
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	n4_log_set_fd(-1);
	n4_info("nowhere");
	ssize_t m = read(p[0], buf + (n > 0 ? n : 0), 16);
	n4_log_set_fd(fd);
	n4_log_set_level(level);
	close(p[0]);
	close(p[1]);
	CHECK(n > 0);
	buf[n] = '\0';
	CHECK(strstr(buf, "INFO [test_log.c:") != NULL);
	CHECK(strstr(buf, "to the pipe 42\n") != NULL);
	CHECK(m < 0); /* -1: not a byte written */
}

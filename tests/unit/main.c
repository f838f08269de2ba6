/* main.c - runs every registered unit test (optionally only names containing argv[1]). */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "test.h"

static struct n4_test *head, **tail = &head;
static int current_failed;

void n4_test_register(struct n4_test *t)
{
	*tail = t; /* keep file order: constructors run in definition order */
	tail = &t->next;
}

void n4_test_fail(const char *file, int line, const char *what)
{
	printf("  %s:%d: check failed: %s\n", file, line, what);
	current_failed = 1;
}

int n4_test_current_failed(void)
{
	return current_failed;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	n4_log_set_level(N4_LOG_QUIET);
	for (struct n4_test *t = head; t; t = t->next) {
		if (argc > 1 && !strstr(t->name, argv[1]))
			continue;
		current_failed = 0;
		t->fn();
		printf("%s - %s\n", current_failed ? "not ok" : "ok", t->name);
		if (current_failed)
			failed++;
		else
			passed++;
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

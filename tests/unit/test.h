/* test.h - a tiny test runner: TEST(name) { CHECK(...); }.  Tests register
 * themselves; tests/unit/main.c runs them all and prints "unit: N passed, N failed". */
#ifndef N4_TEST_H
#define N4_TEST_H

#include <stdio.h>

struct n4_test {
	const char *name;
	void (*fn)(void);
	struct n4_test *next;
};

void n4_test_register(struct n4_test *t);
void n4_test_fail(const char *file, int line, const char *what);
int n4_test_current_failed(void);

#define TEST(name)                                                     \
	static void name(void);                                        \
	static struct n4_test name##_entry = { #name, name, NULL };    \
	__attribute__((constructor)) static void name##_register(void) \
	{                                                              \
		n4_test_register(&name##_entry);                       \
	}                                                              \
	static void name(void)

#define CHECK(cond)                                              \
	do {                                                     \
		if (!(cond)) {                                   \
			n4_test_fail(__FILE__, __LINE__, #cond); \
			return;                                  \
		}                                                \
	} while (0)

#define CHECK_EQ(a, b)                                                                          \
	do {                                                                                    \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                 \
		if (check_a_ != check_b_) {                                                     \
			char check_msg_[256];                                                   \
			snprintf(check_msg_, sizeof(check_msg_), "%s == %s (%lld != %lld)", #a, \
				 #b, check_a_, check_b_);                                       \
			n4_test_fail(__FILE__, __LINE__, check_msg_);                           \
			return;                                                                 \
		}                                                                               \
	} while (0)

#endif

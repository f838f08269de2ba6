/* test_helpers.c - the shared helpers of issue 18: random bytes, the
 * v4-mapped conversion, and writing a new key file. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "key.h"
#include "rand.h"
#include "test.h"

TEST(random_bytes_fills_long_buffers)
{
	/* Past getrandom's 256-byte atomic limit: the loop takes short reads. */
	static uint8_t a[4096], b[4096];

	CHECK_EQ(n4_random_bytes(a, sizeof(a)), 0);
	CHECK_EQ(n4_random_bytes(b, sizeof(b)), 0);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	unsigned zeros = 0;
	for (size_t i = 0; i < sizeof(a); i++)
		zeros += a[i] == 0;
	CHECK(zeros < 64); /* ~16 expected; an unfilled tail would be thousands */
	CHECK_EQ(n4_random_bytes_nowait(a, 16), 0);
}

TEST(addr_v4_mapped_round_trip)
{
	struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = htons(4242) }, back;
	struct sockaddr_storage ss;

	CHECK_EQ(inet_pton(AF_INET, "198.51.100.7", &v4.sin_addr), 1);
	socklen_t len = n4_addr_from_v4(AF_INET6, &v4, &ss);
	CHECK_EQ(len, sizeof(struct sockaddr_in6));
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
	CHECK(IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr));
	CHECK(n4_addr_to_v4((struct sockaddr *)&ss, len, &back));
	CHECK_EQ(back.sin_addr.s_addr, v4.sin_addr.s_addr);
	CHECK_EQ(back.sin_port, v4.sin_port);
	CHECK(!n4_addr_to_v4((struct sockaddr *)&ss, len - 1, &back)); /* short */
	CHECK_EQ(n4_addr_from_v4(AF_INET, &v4, &ss), sizeof(v4));
	CHECK(n4_addr_to_v4((struct sockaddr *)&ss, sizeof(v4), &back));
	CHECK_EQ(back.sin_addr.s_addr, v4.sin_addr.s_addr);
	struct sockaddr_in6 native = { .sin6_family = AF_INET6 };
	CHECK_EQ(inet_pton(AF_INET6, "2001:db8::1", &native.sin6_addr), 1);
	CHECK(!n4_addr_to_v4((struct sockaddr *)&native, sizeof(native), &back));
	CHECK(!n4_addr_to_v4(NULL, 0, &back));
}

TEST(key_write_new_is_private_and_never_overwrites)
{
	char dir[] = "/tmp/n4-unit-key-XXXXXX", path[64], why[256];
	uint8_t key[N4_KEY_SIZE], back[N4_KEY_SIZE];
	char text[N4_KEY_B64_LEN + 1];
	struct stat st;
	unsigned mode = 0;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/key", dir);
	CHECK_EQ(n4_key_generate(key), 0);
	n4_key_encode(key, text);
	mode_t old = umask(0); /* the file's own mode, not the umask, makes it private */
	int rc = n4_key_write_new(path, text, why, sizeof(why));
	umask(old);
	CHECK_EQ(rc, 0);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	CHECK_EQ(n4_key_load(path, back, why, sizeof(why)), 0);
	CHECK(memcmp(key, back, sizeof(key)) == 0);
	CHECK_EQ(n4_key_write_new(path, "other", why, sizeof(why)), -EEXIST);
	CHECK(strstr(why, "exists") != NULL);
	CHECK_EQ(n4_key_load(path, back, why, sizeof(why)), 0);
	CHECK(memcmp(key, back, sizeof(key)) == 0); /* untouched */
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(!n4_key_fd_exposed(fd, &mode));
	CHECK_EQ(chmod(path, 0644), 0);
	CHECK(n4_key_fd_exposed(fd, &mode));
	CHECK_EQ(mode, 0644);
	close(fd);
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(rmdir(dir), 0);
}

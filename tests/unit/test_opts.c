/* test_opts.c - the command line: the original's flags and defaults, and a
 * clear error for every bad value. */
#include <errno.h>
#include <string.h>

#include "opts.h"
#include "test.h"

static int parse(struct n4_opts *o, char *err, const char *const *args)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"n4";
	while (args[argc - 1])
		argv[argc] = (char *)args[argc - 1], argc++;
	argv[argc] = NULL;
	return n4_opts_parse(argc, argv, o, err, 256);
}

TEST(opts_client_defaults_match_original)
{
	struct n4_opts o;
	char err[256];
	const char *args[] = { "-c", "-h", "192.0.2.2", NULL };

	CHECK_EQ(parse(&o, err, args), 0);
	CHECK_EQ(o.mode, N4_MODE_CLIENT);
	CHECK(strcmp(o.client.server_host, "192.0.2.2") == 0);
	CHECK_EQ(o.client.server_port, 1721);
	CHECK(strcmp(o.client.ident, "n4n4n4") == 0);
	CHECK_EQ(o.client.src_port, 30000);
	CHECK_EQ(o.client.pool_size, 25);
	CHECK_EQ(o.client.peer_offset, 20);
	CHECK(!o.client.any_peer_ip);
	CHECK_EQ(o.client.strategy, N4_STRATEGY_AUTO);
}

TEST(opts_client_all_flags)
{
	struct n4_opts o;
	char err[256];
	const char *args[] = { "-c",	     "-h",	"example.org", "-p", "999",   "-a", "abc",
			       "-b",	     "40000",	"-n",	       "10", "-o",    "-3", "-x",
			       "--strategy", "classic", "-t",	       "5",  "--ttl", "3",  NULL };

	CHECK_EQ(parse(&o, err, args), 0);
	CHECK_EQ(o.client.server_port, 999);
	CHECK(strcmp(o.client.ident, "abc") == 0);
	CHECK_EQ(o.client.src_port, 40000);
	CHECK_EQ(o.client.pool_size, 10);
	CHECK_EQ(o.client.peer_offset, -3);
	CHECK(o.client.any_peer_ip);
	CHECK_EQ(o.client.strategy, N4_STRATEGY_CLASSIC);
	CHECK_EQ(o.client.timeout_ms, 5000);
	CHECK_EQ(o.client.low_ttl, 3);
}

TEST(opts_server_defaults_and_ident)
{
	struct n4_opts o;
	char err[256];
	const char *plain[] = { "-s", NULL };
	const char *with[] = { "-s", "-l", "2000", "-a", "xyz", NULL };

	CHECK_EQ(parse(&o, err, plain), 0);
	CHECK_EQ(o.mode, N4_MODE_SERVER);
	CHECK_EQ(o.server.port, 1721);
	CHECK(o.server.only_ident == NULL);
	CHECK_EQ(parse(&o, err, with), 0);
	CHECK_EQ(o.server.port, 2000);
	CHECK(o.server.only_ident && strcmp(o.server.only_ident, "xyz") == 0);
}

TEST(opts_rejects_bad_input_with_a_message)
{
	static const char *const cases[][8] = {
		{ NULL },
		{ "-c", NULL },
		{ "-s", "-c", NULL },
		{ "-c", "-h", "h", "-p", "0", NULL },
		{ "-c", "-h", "h", "-p", "65536", NULL },
		{ "-c", "-h", "h", "-p", "12x", NULL },
		{ "-c", "-h", "h", "-a", "toolong", NULL },
		{ "-c", "-h", "h", "-a", "", NULL },
		{ "-c", "-h", "h", "-n", "0", NULL },
		{ "-c", "-h", "h", "-b", "65530", "-n", "25", NULL },
		{ "-c", "-h", "h", "--strategy", "magic", NULL },
		{ "-c", "-h", "h", "--bogus", NULL },
		{ "-c", "-h", "h", "extra", NULL },
		{ "-c", "-h", NULL },
		{ "-c", "-h", "h", "-o", "x", NULL },
		{ "-c", "-h", "h", "--ttl", "256", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct n4_opts o;
		char err[256] = "";
		int r = parse(&o, err, cases[i]);
		if (r != -EINVAL || err[0] == '\0') {
			char what[64];
			snprintf(what, sizeof(what), "case %zu rejected with a message", i);
			n4_test_fail(__FILE__, __LINE__, what);
			return;
		}
	}
}

TEST(opts_help_and_version)
{
	struct n4_opts o;
	char err[256];
	const char *help[] = { "--help", NULL };
	const char *ver[] = { "--version", NULL };

	CHECK_EQ(parse(&o, err, help), 0);
	CHECK_EQ(o.mode, N4_MODE_HELP);
	CHECK_EQ(parse(&o, err, ver), 0);
	CHECK_EQ(o.mode, N4_MODE_VERSION);
}

TEST(opts_key_file_is_a_client_option)
{
	struct n4_opts o;
	char err[256];
	const char *client[] = { "-c", "-h", "192.0.2.2", "-k", "/some/key", NULL };
	const char *stdin_key[] = { "-c", "-h", "192.0.2.2", "--key", "-", NULL };
	const char *server[] = { "-s", "-k", "/some/key", NULL };

	CHECK_EQ(parse(&o, err, client), 0);
	CHECK(strcmp(o.key_file, "/some/key") == 0);
	CHECK_EQ(parse(&o, err, stdin_key), 0);
	CHECK(strcmp(o.key_file, "-") == 0);
	CHECK_EQ(parse(&o, err, server), -EINVAL);
	CHECK(strstr(err, "-k") != NULL);
}

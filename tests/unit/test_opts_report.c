/* test_opts_report.c - the command line of --json, --exec and --metrics: a bad
 * --exec template fails at start, before any punch. */
#include <string.h>

#include "opts.h"
#include "test.h"

/* n4 MODE [OPTION VALUE]; a client gets -h h, so only OPTION can fail. */
static int parse3(struct n4_opts *o, const char *mode, const char *opt, const char *val)
{
	char err[256];
	char *argv[8] = { (char *)"n4", (char *)mode };
	int argc = 2;

	if (strcmp(mode, "-c") == 0) {
		argv[argc++] = (char *)"-h";
		argv[argc++] = (char *)"h";
	}
	if (opt) {
		argv[argc++] = (char *)opt;
		argv[argc++] = (char *)val;
	}
	argv[argc] = NULL;
	return n4_opts_parse(argc, argv, o, err, sizeof(err));
}

TEST(opts_exec_template_checked_at_start)
{
	struct n4_opts o;
	char err[256];
	char *ok_argv[] = { (char *)"n4",
			    (char *)"-c",
			    (char *)"-h",
			    (char *)"h",
			    (char *)"--json",
			    (char *)"--exec",
			    (char *)"echo %l %h:%p 100%%",
			    NULL };

	CHECK_EQ(n4_opts_parse(7, ok_argv, &o, err, sizeof(err)), 0);
	CHECK(o.json);
	CHECK(o.exec_cmd && strcmp(o.exec_cmd, "echo %l %h:%p 100%%") == 0);
	CHECK_EQ(parse3(&o, "-c", "--exec", "echo %h"), 0);
	CHECK(parse3(&o, "-c", "--exec", "echo %x") != 0);
	CHECK(parse3(&o, "-c", "--exec", "echo 100%") != 0);
	CHECK(parse3(&o, "-c", "--exec", "") != 0);
}

TEST(opts_metrics_wants_addr_port)
{
	struct n4_opts o;

	CHECK_EQ(parse3(&o, "-s", "--metrics", "127.0.0.1:9721"), 0);
	CHECK(strcmp(o.metrics, "127.0.0.1:9721") == 0);
	CHECK_EQ(parse3(&o, "-s", "--metrics", "[::1]:0"), 0);
	CHECK(parse3(&o, "-s", "--metrics", "9721") != 0);
	CHECK_EQ(parse3(&o, "-s", NULL, NULL), 0);
	CHECK(o.metrics[0] == '\0');
}

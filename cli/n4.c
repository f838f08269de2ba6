/* n4.c - the n4 command: a table from mode to its main function. */
#include <stdio.h>
#include <string.h>

#include "main.h"
#include "opts.h"

#ifndef N4_VERSION /* the Makefile passes VERSION */
#define N4_VERSION "unknown"
#endif

int main(int argc, char **argv)
{
	struct n4_opts o;
	char err[256];

	if (argc > 1 && strcmp(argv[1], "genkey") == 0)
		return n4_genkey_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "keyid") == 0)
		return n4_keyid_main(argc - 1, argv + 1);
	if (n4_opts_parse(argc, argv, &o, err, sizeof(err))) {
		fprintf(stderr, "n4: %s\n(try 'n4 --help')\n", err);
		return 2;
	}
	n4_log_set_level(o.log_level);
	switch (o.mode) {
	case N4_MODE_SERVER:
		return n4_server_main(&o);
	case N4_MODE_CLIENT:
		return n4_client_main(&o);
	case N4_MODE_VERSION:
		printf("n4 %s\n", N4_VERSION);
		return 0;
	default:
		n4_opts_usage(stdout);
		return 0;
	}
}

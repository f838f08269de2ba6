/* opts.h - command-line options of n4: the original's short flags plus long ones. */
#ifndef N4_OPTS_H
#define N4_OPTS_H

#include <stddef.h>
#include <stdio.h>

#include "log.h"
#include "n4.h"

enum n4_mode { N4_MODE_NONE, N4_MODE_SERVER, N4_MODE_CLIENT, N4_MODE_HELP, N4_MODE_VERSION };

struct n4_opts {
	enum n4_mode mode;
	struct n4_client_cfg client;
	struct n4_server_cfg server;
	char server_ident[N4_IDENT_MAX + 1];
	char host[256];
	char host6[256]; /* --server6 */
	char bind[256];
	enum n4_log_level log_level;
	unsigned log_rate;
	bool json;	      /* client: one JSON object on stdout at the end */
	const char *exec_cmd; /* client: run after the WIN (%l %h %p %%); in argv */
	char metrics[256];    /* server: ADDR:PORT for Prometheus metrics; "" = off */
	char key_file[4096];  /* -k FILE ("-": stdin), read by the client mode */
};

/* Parse argv into o.  0 on success; -EINVAL with a one-line message in err. */
int n4_opts_parse(int argc, char **argv, struct n4_opts *o, char *err, size_t err_len);
void n4_opts_usage(FILE *f);

#endif

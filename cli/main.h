/* main.h - one entry point per mode of the n4 command. */
#ifndef N4_CLI_MAIN_H
#define N4_CLI_MAIN_H

#include "opts.h"

int n4_server_main(const struct n4_opts *o);
int n4_client_main(const struct n4_opts *o);
/* `n4 genkey`, `n4 keyid FILE [-a IDENT]`: exit status. */
int n4_genkey_main(int argc, char **argv);
int n4_keyid_main(int argc, char **argv);

#endif

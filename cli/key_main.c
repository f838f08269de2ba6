/* key_main.c - `n4 genkey [-o FILE]` and `n4 keyid FILE [-a IDENT]`. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blake2s.h"
#include "key.h"
#include "main.h"

#define GENKEY_USAGE "n4: usage: n4 genkey [-o KEYFILE]\n"

/* Without -o the key goes to stdout, usually `> key`, which the shell creates
 * with the umask (0644): -k then refuses the file.  Say so at once, as
 * `wg genkey` does, instead of at the first -k. */
static void warn_if_exposed(void)
{
	unsigned mode;

	if (n4_key_fd_exposed(STDOUT_FILENO, &mode))
		fprintf(stderr,
			"n4: warning: the key goes to a file group or others can read (mode "
			"%04o), which -k refuses: chmod 600 it, or use n4 genkey -o FILE\n",
			mode);
}

int n4_genkey_main(int argc, char **argv)
{
	uint8_t key[N4_KEY_SIZE];
	char text[N4_KEY_B64_LEN + 1], why[512];
	const char *out = NULL;
	int ok;

	if (argc == 3 && (strcmp(argv[1], "-o") == 0 || strcmp(argv[1], "--output") == 0) &&
	    argv[2][0])
		out = argv[2];
	else if (argc != 1) {
		fputs(GENKEY_USAGE, stderr);
		return 2;
	}
	if (!out)
		warn_if_exposed();
	int err = n4_key_generate(key);
	if (err) {
		fprintf(stderr, "n4: no randomness from the kernel: %s\n", strerror(-err));
		return 1;
	}
	n4_key_encode(key, text);
	n4_wipe(key, sizeof(key));
	if (out) {
		ok = n4_key_write_new(out, text, why, sizeof(why)) == 0;
		if (!ok)
			fprintf(stderr, "n4: %s\n", why);
	} else {
		ok = printf("%s\n", text) > 0 && fflush(stdout) == 0;
	}
	n4_wipe(text, sizeof(text));
	return ok ? 0 : 1;
}

int n4_keyid_main(int argc, char **argv)
{
	const char *file = NULL, *ident = "n4n4n4";
	bool long_id = false, bad = false;
	uint8_t key[N4_KEY_SIZE];
	struct n4_keyed k;
	char why[512];

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-a") == 0 || strcmp(argv[i], "--ident") == 0) && i + 1 < argc)
			ident = argv[++i];
		else if (strcmp(argv[i], "--long") == 0)
			long_id = true;
		else if (!file && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0))
			file = argv[i];
		else
			bad = true;
	}
	if (!file || bad) {
		fprintf(stderr, "n4: usage: n4 keyid KEYFILE [-a IDENT] [--long]\n");
		return 2;
	}
	if (n4_key_load(file, key, why, sizeof(why))) {
		fprintf(stderr, "n4: %s\n", why);
		return 2;
	}
	int err = n4_key_derive(key, ident, &k);
	n4_wipe(key, sizeof(key));
	if (err) {
		fprintf(stderr,
			"n4: invalid -a '%s': 1 to 6 printable ASCII characters, no spaces\n",
			ident);
		return 2;
	}
	/* --long: the id our server pairs on, in hex (what its operator sees). */
	if (long_id) {
		for (size_t i = 0; i < sizeof(k.long_id); i++)
			printf("%02x", k.long_id[i]);
		printf("\n");
	} else {
		printf("%s\n", k.short_id);
	}
	n4_wipe(&k, sizeof(k));
	return 0;
}

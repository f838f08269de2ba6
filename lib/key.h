/* key.h - the pre-shared key: generating, reading and checking key files, and
 * deriving from it (and the -a identifier) everything the wire carries.
 *
 * The key itself never leaves the host.  The server sees only identifiers
 * derived with a one-way keyed function, so the key cannot be recovered from
 * them, and one key serves several rooms (-a) without linking them. */
#ifndef N4_KEY_H
#define N4_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define N4_KEY_SIZE 32
#define N4_KEY_B64_LEN 44 /* base64 of 32 bytes, with one '=' */
/* The long pairing id sent to our server (N4_EXT_KEY): 144 bits, three
 * 6-byte KEYID messages. */
#define N4_LONGID_SIZE 18
#define N4_LONGID_PARTS (N4_LONGID_SIZE / N4_PAYLOAD_SIZE)

struct n4_keyed {
	char short_id[N4_PAYLOAD_SIZE + 1]; /* what an original server pairs on */
	uint8_t long_id[N4_LONGID_SIZE];    /* what our server pairs on */
	uint8_t mac_key[N4_KEY_SIZE];	    /* authenticates PUNCHes (auth.h) */
};

/* 32 bytes from getrandom.  -errno when the kernel gives none. */
int n4_key_generate(uint8_t key[N4_KEY_SIZE]);
/* Standard base64 with padding, NUL-terminated (N4_KEY_B64_LEN + 1 bytes). */
void n4_key_encode(const uint8_t key[N4_KEY_SIZE], char out[N4_KEY_B64_LEN + 1]);
/* Parse untrusted text: one base64 key of exactly 32 bytes, optional surrounding
 * whitespace (a trailing newline).  -EINVAL for anything else. */
int n4_key_decode(const void *text, size_t len, uint8_t key[N4_KEY_SIZE]);
/* Read a key file ("-": standard input).  Refuses a file group or others can
 * read, as ssh does for private keys.  On error returns -errno and writes one
 * line naming the file and the reason into why. */
int n4_key_load(const char *path, uint8_t key[N4_KEY_SIZE], char *why, size_t why_len);
/* Write text and a newline to a new file at path with mode 0600 (less if the
 * umask says so): O_CREAT|O_EXCL, so an existing file, a link among them, is
 * never overwritten (-EEXIST).  On error returns -errno and writes one line
 * into why; a partly written file is removed. */
int n4_key_write_new(const char *path, const char *text, char *why, size_t why_len);
/* True if fd is a regular file that group or others may access: a key written
 * there is refused by n4_key_load (the shell's `> file` gives 0644). */
bool n4_key_fd_exposed(int fd, unsigned *mode);
/* Everything the identifier ident (1..6 characters) and the key give. */
int n4_key_derive(const uint8_t key[N4_KEY_SIZE], const char *ident, struct n4_keyed *out);

#endif

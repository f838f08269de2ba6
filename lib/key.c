/* key.c - key files and derivations.  Every derived value is
 * BLAKE2s(key, label || 0 || ident): a PRF, so identifiers reveal nothing about
 * the key and different labels or rooms give unrelated values. */
#include "key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blake2s.h"
#include "rand.h"

#define KEY_FILE_MAX 4096

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int n4_key_generate(uint8_t key[N4_KEY_SIZE])
{
	return n4_random_bytes(key, N4_KEY_SIZE);
}

void n4_key_encode(const uint8_t key[N4_KEY_SIZE], char out[N4_KEY_B64_LEN + 1])
{
	size_t o = 0;

	for (size_t i = 0; i < N4_KEY_SIZE; i += 3) {
		uint32_t v = (uint32_t)key[i] << 16;
		size_t n = N4_KEY_SIZE - i < 3 ? N4_KEY_SIZE - i : 3;
		if (n > 1)
			v |= (uint32_t)key[i + 1] << 8;
		if (n > 2)
			v |= key[i + 2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = n > 1 ? b64[v >> 6 & 63] : '=';
		out[o++] = n > 2 ? b64[v & 63] : '=';
	}
	out[o] = '\0';
}

static int b64_value(uint8_t c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

static int is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int n4_key_decode(const void *text, size_t len, uint8_t key[N4_KEY_SIZE])
{
	const uint8_t *t = text;
	uint8_t out[N4_KEY_SIZE + 2];
	size_t start = 0, end = len, o = 0;

	while (start < end && is_space(t[start]))
		start++;
	while (end > start && is_space(t[end - 1]))
		end--;
	/* 32 bytes are exactly 43 symbols and one '=' (the unpadded form too). */
	if (end - start == N4_KEY_B64_LEN && t[end - 1] == '=')
		end--;
	if (end - start != N4_KEY_B64_LEN - 1)
		return -EINVAL;
	uint32_t acc = 0;
	unsigned bits = 0;
	for (size_t i = start; i < end; i++) {
		int v = b64_value(t[i]);
		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* 43 symbols carry 258 bits: the last 2 must be zero (canonical form). */
	if (o != N4_KEY_SIZE || acc != 0) {
		n4_wipe(out, sizeof(out));
		return -EINVAL;
	}
	memcpy(key, out, N4_KEY_SIZE);
	n4_wipe(out, sizeof(out));
	return 0;
}

int n4_key_load(const char *path, uint8_t key[N4_KEY_SIZE], char *why, size_t why_len)
{
	bool is_stdin = strcmp(path, "-") == 0;
	char buf[KEY_FILE_MAX];
	size_t have = 0;
	struct stat st;
	int err = 0, fd;

	fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		err = -errno;
		snprintf(why, why_len, "key file '%s': %s", path, strerror(errno));
		return err;
	}
	if (!is_stdin) {
		if (fstat(fd, &st)) {
			err = -errno;
			snprintf(why, why_len, "key file '%s': %s", path, strerror(errno));
			goto out_close;
		}
		if (!S_ISREG(st.st_mode)) {
			err = -EINVAL;
			snprintf(why, why_len, "key file '%s': not a regular file", path);
			goto out_close;
		}
		/* As ssh with private keys: a key others can read is not secret. */
		if (st.st_mode & (S_IRWXG | S_IRWXO)) {
			err = -EINVAL;
			snprintf(why, why_len,
				 "key file '%s' is accessible by group or others (mode %04o): "
				 "refusing it; run chmod 600 '%s'",
				 path, (unsigned)(st.st_mode & 07777), path);
			goto out_close;
		}
	}
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			snprintf(why, why_len, "key file '%s': %s", path, strerror(errno));
			goto out_wipe;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		if (have == sizeof(buf)) {
			err = -EINVAL;
			snprintf(why, why_len, "key file '%s': too large for a key", path);
			goto out_wipe;
		}
	}
	if (n4_key_decode(buf, have, key)) {
		err = -EINVAL;
		snprintf(why, why_len,
			 "key file '%s': not a key (want one base64 line of 32 bytes, "
			 "as 'n4 genkey' prints)",
			 path);
	}
out_wipe:
	n4_wipe(buf, sizeof(buf));
out_close:
	if (!is_stdin)
		close(fd);
	return err;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int n4_key_write_new(const char *path, const char *text, char *why, size_t why_len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);

	if (fd < 0) {
		int err = -errno;
		if (err == -EEXIST)
			snprintf(why, why_len,
				 "'%s' exists: not overwriting it with a new key (remove it first)",
				 path);
		else
			snprintf(why, why_len, "cannot create '%s': %s", path, strerror(-err));
		return err;
	}
	int err = write_all(fd, text, strlen(text));
	if (!err)
		err = write_all(fd, "\n", 1);
	if (close(fd) && !err)
		err = -errno;
	if (err) {
		/* No half key left behind for a later -k to stumble on. */
		snprintf(why, why_len, "cannot write '%s': %s%s", path, strerror(-err),
			 unlink(path) ? " (remove it)" : "");
	}
	return err;
}

bool n4_key_fd_exposed(int fd, unsigned *mode)
{
	struct stat st;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		return false;
	*mode = (unsigned)(st.st_mode & 07777);
	return (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
}

static void prf(const uint8_t key[N4_KEY_SIZE], const char *label, const char *ident, uint8_t *out,
		size_t outlen)
{
	struct n4_blake2s s;

	/* Cannot fail: outlen and keylen are constants within range. */
	(void)n4_blake2s_init(&s, outlen, key, N4_KEY_SIZE);
	n4_blake2s_update(&s, label, strlen(label) + 1);
	n4_blake2s_update(&s, ident, strlen(ident));
	n4_blake2s_final(&s, out);
}

int n4_key_derive(const uint8_t key[N4_KEY_SIZE], const char *ident, struct n4_keyed *out)
{
	static const char alnum[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t r[8];

	if (n4_ident_check(ident))
		return -EINVAL;
	prf(key, "n4 long pairing id", ident, out->long_id, sizeof(out->long_id));
	prf(key, "n4 punch mac key", ident, out->mac_key, sizeof(out->mac_key));
	/* Six letters or digits (35 bits): what the original's 6-byte field and
	 * its printable-identifier rule allow. */
	prf(key, "n4 short pairing id", ident, r, sizeof(r));
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | r[i];
	for (int i = 0; i < N4_PAYLOAD_SIZE; i++) {
		out->short_id[i] = alnum[v % 62];
		v /= 62;
	}
	out->short_id[N4_PAYLOAD_SIZE] = '\0';
	n4_wipe(r, sizeof(r));
	return 0;
}

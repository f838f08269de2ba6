/* n4shim.c - the wrapper command, in the style of torsocks and proxychains4:
 *   n4shim [options] -- program args
 * finds libn4shim.so (next to this binary, or in the install prefix), prepends it
 * to LD_PRELOAD, turns the options into N4_* variables and executes the program.
 * It refuses what the loader would silently run without the shim: statically
 * linked programs, setuid/setgid/file-capability programs, and the other ELF class. */
#include <elf.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "blake2s.h"
#include "key.h"

#ifndef N4_PREFIX
#define N4_PREFIX "/usr/local"
#endif
/* Where `make install` (LIBDIR) or the Debian package (/usr/lib/<triplet>) put
 * the library; the Makefile passes it. */
#ifndef N4_LIBDIR
#define N4_LIBDIR N4_PREFIX "/lib"
#endif
#ifndef N4_VERSION
#define N4_VERSION "unknown"
#endif
#define SHIM_LIB "libn4shim.so"
/* Long options without a letter of their own (-k is the key file). */
#define OPT_KEEPALIVE 0x100
#define OPT_MAX_PEERS 0x101
#define OPT_JOIN 0x1f0
#define OPT_STATUS 0x102

static const char usage_text[] =
	"usage: n4shim [-s HOST[:PORT]] [-a IDENT] [-k KEYFILE] [-P IP:PORT] [-L PORT] [-H PORT] [-t SECONDS]\n"
	"              [-S auto|classic] [-n COUNT] [-o OFFSET] [-b PORT] [--keepalive SECONDS] [-R]\n"
	"              [-v|-q] -- program [args]\n"
	"\n"
	"Run an unmodified UDP program so that it reaches a peer behind another NAT4: the\n"
	"first send to the placeholder address blocks while libn4 punches (a bind to the\n"
	"listen port returns at once and punches in the background), then the program's\n"
	"own socket talks to the peer directly; the path is kept alive and punched again\n"
	"when it dies.\n"
	"\n"
	"options (each sets the environment variable named beside it):\n"
	"  -s, --server HOST[:PORT]  N4_SERVER   rendezvous server (required; port 1721)\n"
	"  -a, --ident IDENT         N4_IDENT    pairing identifier, 1-6 characters (n4n4n4)\n"
	"  -k, --key FILE            N4_KEY_FILE pre-shared key from 'n4 genkey' (mode 600;\n"
	"                                        - = stdin, passed on as N4_KEY): pair only\n"
	"                                        with holders of the key, send the program's\n"
	"                                        data only after an authenticated WIN\n"
	"  -P, --peer IP:PORT        N4_PEER     placeholder the program uses for its peer;\n"
	"                                        unset: any UDP port on the server's IP except\n"
	"                                        the rendezvous port and 53 (DNS)\n"
	"  -L, --listen PORT         N4_LISTEN   a UDP socket bound to PORT is designated too\n"
	"                                        (1-65535; programs that receive first:\n"
	"                                        nc -u -l PORT)\n"
	"  -H, --host PORT           N4_HOST     the UDP socket bound to PORT hosts a room:\n"
	"                                        every client with the identifier (and key)\n"
	"                                        joins it, each at one address (1-65535)\n"
	"      --max-peers N         N4_MAX_PEERS a host's peers at once (64; 1-1024)\n"
	"      --status FILE         N4_STATUS   a host rewrites FILE each second: one line\n"
	"                                        per peer (address, real address, direct or\n"
	"                                        relayed, RTT, since when)\n"
	"      --join PORT[,PORT..]  N4_JOIN     join the identifier's room: a broadcast to\n"
	"                                        PORT reaches its host, a socket bound to PORT\n"
	"                                        hears the host's broadcasts (1-65535, up to 8)\n"
	"  -t, --timeout SECONDS     N4_TIMEOUT  give up punching after this long (30; 1-86400)\n"
	"  -S, --strategy S          N4_STRATEGY auto (default) or classic (the original n4)\n"
	"  -n, --count N             N4_POOL     local sockets per round (25; 1-4096)\n"
	"  -o, --offset N            N4_OFFSET   added to the peer's observed port\n"
	"                                        (20; -65535..65535)\n"
	"  -b, --src-port PORT       N4_SRC_PORT first local pool port (0: kernel-chosen;\n"
	"                                        0-65535)\n"
	"      --keepalive SECONDS   N4_KEEPALIVE refresh our NAT's mapping this often\n"
	"                                        (15; 0 = off; 0-3600)\n"
	"  -R, --no-recover          N4_RECOVER=0 do not punch again when the path dies\n"
	"  -v, --verbose             N4_LOG=debug\n"
	"  -q, --quiet               N4_LOG=quiet\n"
	"  -h, --help                this text\n"
	"      --version             print the version\n"
	"\n"
	"environment read by libn4shim.so (set directly with LD_PRELOAD as well):\n"
	"  N4_SERVER, N4_IDENT, N4_PEER, N4_LISTEN, N4_TIMEOUT, N4_STRATEGY, N4_POOL,\n"
	"  N4_OFFSET, N4_SRC_PORT, N4_KEY_FILE as above, and\n"
	"  N4_KEY         the key itself (base64, as 'n4 genkey' prints) instead of a file\n"
	"  N4_LOG         quiet, error, warn, info (default) or debug; lines go to stderr,\n"
	"                 prefixed \"n4shim[PID]\"\n"
	"  N4_ROUND_MS    punch round length in ms, 0 or 100-600000 (0: per strategy)\n"
	"  N4_CONFIRM_MS  keep confirming after the WIN at most this long (2000; 0-60000)\n"
	"  N4_LOW_TTL     TTL of the pre-opening packets (2; 0 = off; 0-255)\n"
	"  N4_ANY_PEER    1: accept a PUNCH from any IP (the n4 client's -x)\n"
	"  N4_KEEPALIVE   seconds between keepalives (15; 0 = off)\n"
	"  N4_RECOVER     1 (default): when the peer falls silent while the program sends,\n"
	"                 punch again with the same identifier and move the new socket in\n"
	"  N4_STAY        1 (default): keep the server connection after the WIN, so the\n"
	"                 server can tell us when the peer punches again (restarts)\n"
	"  N4_UPGRADE     relayed path: seconds between direct punch attempts (60; 5-86400)\n"
	"  N4_SWEEP       0: direct paths only, never sweep ports (n4 -c --no-sweep)\n"
	"  N4_IPV6        1 (default): race a direct IPv6 path beside IPv4 when both\n"
	"                 hosts have global IPv6; 0: IPv4 only (n4 -c --no-ipv6)\n"
	"  N4_SERVER6     the server's IPv6 address or name (n4 -c --server6; default:\n"
	"                 N4_SERVER's AAAA when it is a name)\n"
	"  N4_MAX_PPS     PUNCH datagrams per second at most (1000; 0 or 20-1000000,\n"
	"                 0 = unpaced)\n"
	"  N4_PEER_TIMEOUT a host forgets a peer silent this long (180 s; 10-86400)\n"
	"  N4_FLOW_TIMEOUT a further flow nobody answers gives up after (10 s; 1-3600)\n"
	"\n"
	"errors: a failed punch makes the designating call (and later sends on that\n"
	"socket) fail with ETIMEDOUT or EHOSTUNREACH; a bad setting makes it fail with\n"
	"EINVAL (EHOSTUNREACH for an unresolvable server), with one error line.\n"
	"Statically linked and setuid programs cannot be interposed and are refused.\n";

static void die(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "n4shim: ");
	fprintf(stderr, fmt, a, b ? b : "");
	fputc('\n', stderr);
	exit(126);
}

static bool readable(const char *path)
{
	return access(path, R_OK) == 0;
}

/* Next to our own binary (the build tree), then the directory it was installed
 * to (N4_LIBDIR), then PREFIX/bin -> PREFIX/lib for a tree moved elsewhere. */
static void find_library(char *out, size_t len)
{
	char self[PATH_MAX - 64], real[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash = NULL;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
	}
	if (slash) {
		*slash = '\0';
		snprintf(out, len, "%s/%s", self, SHIM_LIB);
		if (readable(out))
			return;
	}
	snprintf(out, len, "%s/%s", N4_LIBDIR, SHIM_LIB);
	if (readable(out))
		return;
	if (slash) {
		snprintf(out, len, "%s/../lib/%s", self, SHIM_LIB);
		if (readable(out) && realpath(out, real)) {
			snprintf(out, len, "%s", real);
			return;
		}
	}
	die("cannot find %s next to n4shim or in %s", SHIM_LIB, N4_LIBDIR);
}

/* The file execvp would run. */
static bool find_program(const char *name, char *out, size_t len)
{
	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, X_OK) == 0;
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchrnul(path, ':');
		int dlen = (int)(end - path);
		snprintf(out, len, "%.*s/%s", dlen ? dlen : 1, dlen ? path : ".", name);
		struct stat st;
		if (access(out, X_OK) == 0 && stat(out, &st) == 0 && S_ISREG(st.st_mode))
			return true;
		path = *end ? end + 1 : end;
	}
	return false;
}

/* Refuse what LD_PRELOAD cannot reach, loudly (the loader would be silent). */
static void check_program(const char *path)
{
	struct stat st;
	unsigned char buf[4096];
	FILE *f;
	size_t n;

	if (stat(path, &st) < 0)
		die("%s: %s", path, strerror(errno));
	if (st.st_mode & (S_ISUID | S_ISGID))
		die("%s is setuid/setgid: the loader ignores LD_PRELOAD for it, refusing%s", path,
		    NULL);
	if (getxattr(path, "security.capability", buf, sizeof(buf)) > 0)
		die("%s has file capabilities: the loader ignores LD_PRELOAD for it, refusing%s",
		    path, NULL);
	f = fopen(path, "rb");
	if (!f)
		die("%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf), f);
	if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
		fclose(f);
		return; /* a script: its interpreter is dynamic, and so are its children */
	}
	if (n < EI_NIDENT || memcmp(buf, ELFMAG, SELFMAG) != 0) {
		fclose(f);
		return; /* not ELF: let execvp say what it thinks */
	}
	bool is64 = buf[EI_CLASS] == ELFCLASS64;
	if ((sizeof(void *) == 8) != is64)
		die("%s is a %s-bit program and the shim is not (wrong ELF class): the loader would skip it",
		    path, is64 ? "64" : "32");
	bool interp = false;
	unsigned long phoff, phnum, phentsize;
	if (is64) {
		const Elf64_Ehdr *eh = (const Elf64_Ehdr *)buf;
		phoff = eh->e_phoff;
		phnum = eh->e_phnum;
		phentsize = eh->e_phentsize;
	} else {
		const Elf32_Ehdr *eh = (const Elf32_Ehdr *)buf;
		phoff = eh->e_phoff;
		phnum = eh->e_phnum;
		phentsize = eh->e_phentsize;
	}
	for (unsigned long i = 0; i < phnum; i++) {
		unsigned char ph[64];
		if (phentsize > sizeof(ph) || fseek(f, (long)(phoff + i * phentsize), SEEK_SET) ||
		    fread(ph, 1, phentsize, f) != phentsize)
			break;
		uint32_t type =
			is64 ? ((const Elf64_Phdr *)ph)->p_type : ((const Elf32_Phdr *)ph)->p_type;
		if (type == PT_INTERP)
			interp = true;
	}
	fclose(f);
	/* No program interpreter: no dynamic loader runs, nothing reads LD_PRELOAD
	 * (static and static-pie alike; Go binaries are the usual case). */
	if (!interp)
		die("%s is statically linked: LD_PRELOAD cannot reach it, refusing%s", path, NULL);
}

static void set(const char *name, const char *value)
{
	if (setenv(name, value, 1) < 0)
		die("cannot set %s: %s", name, strerror(errno));
}

/* -k FILE: checked here (one line, exit 2, nothing run), then handed to the
 * shim as N4_KEY_FILE with an absolute path; -k - reads the key from our
 * standard input (the program's is its own) and hands it over as N4_KEY. */
static void set_key(const char *file)
{
	uint8_t key[N4_KEY_SIZE];
	char why[512], abs[PATH_MAX];

	if (n4_key_load(file, key, why, sizeof(why))) {
		fprintf(stderr, "n4shim: %s\n", why);
		exit(2);
	}
	if (strcmp(file, "-") == 0) {
		char text[N4_KEY_B64_LEN + 1];
		n4_key_encode(key, text);
		set("N4_KEY", text);
		n4_wipe(text, sizeof(text));
		unsetenv("N4_KEY_FILE");
	} else {
		if (!realpath(file, abs))
			die("%s: %s", file, strerror(errno));
		set("N4_KEY_FILE", abs);
		unsetenv("N4_KEY");
	}
	n4_wipe(key, sizeof(key));
}

/* Options that only set their variable, value as given: the shim checks it
 * (its range from lib/opttab.c) and reports a bad one at the first designated
 * call, as it does for the variable set directly. */
static const struct {
	int code;
	const char *env;
} passthrough[] = {
	{ 's', "N4_SERVER" },	     { 'a', "N4_IDENT" },
	{ 'P', "N4_PEER" },	     { 'L', "N4_LISTEN" },
	{ 't', "N4_TIMEOUT" },	     { 'S', "N4_STRATEGY" },
	{ 'n', "N4_POOL" },	     { 'o', "N4_OFFSET" },
	{ 'b', "N4_SRC_PORT" },	     { OPT_KEEPALIVE, "N4_KEEPALIVE" },
	{ 'H', "N4_HOST" },	     { OPT_MAX_PEERS, "N4_MAX_PEERS" },
	{ OPT_STATUS, "N4_STATUS" }, { OPT_JOIN, "N4_JOIN" },
};

/* One option: -1 to go on, else the exit status. */
static int take_option(int c, const char *arg)
{
	for (size_t i = 0; i < sizeof(passthrough) / sizeof(passthrough[0]); i++) {
		if (passthrough[i].code == c) {
			set(passthrough[i].env, arg);
			return -1;
		}
	}
	switch (c) {
	case 'k':
		set_key(arg);
		return -1;
	case 'R':
		set("N4_RECOVER", "0");
		return -1;
	case 'v':
		set("N4_LOG", "debug");
		return -1;
	case 'q':
		set("N4_LOG", "quiet");
		return -1;
	case 'h':
		fputs(usage_text, stdout);
		return 0;
	case 'V':
		printf("n4shim %s\n", N4_VERSION);
		return 0;
	default:
		fputs(usage_text, stderr);
		return 2;
	}
}

/* LD_PRELOAD = our library, then what the caller had. */
static void set_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	size_t len = strlen(lib) + (old ? strlen(old) + 1 : 0) + 1;
	char *preload = malloc(len);

	if (!preload)
		die("out of memory%s%s", "", NULL);
	snprintf(preload, len, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "");
	set("LD_PRELOAD", preload);
	free(preload);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "ident", required_argument, NULL, 'a' },
		{ "key", required_argument, NULL, 'k' },
		{ "peer", required_argument, NULL, 'P' },
		{ "listen", required_argument, NULL, 'L' },
		{ "host", required_argument, NULL, 'H' },
		{ "max-peers", required_argument, NULL, OPT_MAX_PEERS },
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "join", required_argument, NULL, OPT_JOIN },
		{ "timeout", required_argument, NULL, 't' },
		{ "strategy", required_argument, NULL, 'S' },
		{ "count", required_argument, NULL, 'n' },
		{ "offset", required_argument, NULL, 'o' },
		{ "src-port", required_argument, NULL, 'b' },
		{ "keepalive", required_argument, NULL, OPT_KEEPALIVE },
		{ "no-recover", no_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char lib[PATH_MAX], prog[PATH_MAX];
	int c, rc;

	while ((c = getopt_long(argc, argv, "+s:a:k:P:L:H:t:S:n:o:b:Rvqh", opts, NULL)) != -1) {
		rc = take_option(c, optarg);
		if (rc >= 0)
			return rc;
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (!getenv("N4_SERVER") || !*getenv("N4_SERVER")) {
		fprintf(stderr,
			"n4shim: no rendezvous server: give -s HOST[:PORT] or set N4_SERVER\n");
		return 2;
	}
	find_library(lib, sizeof(lib));
	if (!find_program(argv[optind], prog, sizeof(prog))) {
		fprintf(stderr, "n4shim: %s: command not found\n", argv[optind]);
		return 127;
	}
	check_program(prog);
	set_preload(lib);
	execv(prog, argv + optind);
	fprintf(stderr, "n4shim: cannot run %s: %s\n", prog, strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

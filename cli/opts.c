/* opts.c - parsing n4's command line into client and server configurations.
 * Short flags and defaults are the original n4's; every number is range-checked
 * against the option table (lib/opttab.c), and a bad one yields a message
 * naming the flag and its range. */
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "opttab.h"
#include "wire.h"

enum {
	OPT_HELP = 1000,
	OPT_VERSION,
	OPT_TTL,
	OPT_CONFIRM,
	OPT_LOG,
	OPT_HELLO_TO,
	OPT_WAIT_TO,
	OPT_EXCH_TO,
	OPT_MAX_CLIENTS,
	OPT_MAX_PER_IP,
	OPT_LOG_RATE,
	OPT_BIND,
	OPT_MAX_PORTS,
	OPT_PORT_BUDGET,
	OPT_CONN_RATE,
	OPT_CONN_BURST,
	OPT_DRAIN_TO,
	OPT_IPV4_ONLY,
	OPT_IPV6_ONLY,
	OPT_NO_RELAY,
	OPT_NO_ROOMS,
	OPT_RELAY_AFTER,
	OPT_RELAY_MAX,
	OPT_RELAY_PER_IP,
	OPT_RELAY_RATE,
	OPT_RELAY_BURST,
	OPT_RELAY_TOTAL,
	OPT_RELAY_IDLE,
	OPT_RELAY_PORTS,
	OPT_MAX_PPS,
	OPT_NO_SWEEP,
	OPT_JOIN,
	OPT_NO_IPV6,
	OPT_SERVER6,
	OPT_JSON,
	OPT_EXEC,
	OPT_METRICS,
};

static const struct option long_opts[] = {
	{ "server", no_argument, NULL, 's' },
	{ "client", no_argument, NULL, 'c' },
	{ "host", required_argument, NULL, 'h' },
	{ "port", required_argument, NULL, 'p' },
	{ "listen", required_argument, NULL, 'l' },
	{ "ident", required_argument, NULL, 'a' },
	{ "key", required_argument, NULL, 'k' },
	{ "src-port", required_argument, NULL, 'b' },
	{ "count", required_argument, NULL, 'n' },
	{ "offset", required_argument, NULL, 'o' },
	{ "any-ip", no_argument, NULL, 'x' },
	{ "strategy", required_argument, NULL, 'S' },
	{ "timeout", required_argument, NULL, 't' },
	{ "round-ms", required_argument, NULL, 'r' },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "confirm-ms", required_argument, NULL, OPT_CONFIRM },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "hello-timeout-ms", required_argument, NULL, OPT_HELLO_TO },
	{ "wait-timeout", required_argument, NULL, OPT_WAIT_TO },
	{ "exchange-timeout-ms", required_argument, NULL, OPT_EXCH_TO },
	{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
	{ "max-per-ip", required_argument, NULL, OPT_MAX_PER_IP },
	{ "log-rate", required_argument, NULL, OPT_LOG_RATE },
	{ "bind", required_argument, NULL, OPT_BIND },
	{ "max-ports", required_argument, NULL, OPT_MAX_PORTS },
	{ "port-budget", required_argument, NULL, OPT_PORT_BUDGET },
	{ "conn-rate", required_argument, NULL, OPT_CONN_RATE },
	{ "conn-burst", required_argument, NULL, OPT_CONN_BURST },
	{ "drain-timeout-ms", required_argument, NULL, OPT_DRAIN_TO },
	{ "ipv4-only", no_argument, NULL, OPT_IPV4_ONLY },
	{ "ipv6-only", no_argument, NULL, OPT_IPV6_ONLY },
	{ "no-relay", no_argument, NULL, OPT_NO_RELAY },
	{ "no-rooms", no_argument, NULL, OPT_NO_ROOMS },
	{ "relay-after", required_argument, NULL, OPT_RELAY_AFTER },
	{ "relay-max", required_argument, NULL, OPT_RELAY_MAX },
	{ "relay-per-ip", required_argument, NULL, OPT_RELAY_PER_IP },
	{ "relay-rate", required_argument, NULL, OPT_RELAY_RATE },
	{ "relay-burst", required_argument, NULL, OPT_RELAY_BURST },
	{ "relay-total", required_argument, NULL, OPT_RELAY_TOTAL },
	{ "relay-idle", required_argument, NULL, OPT_RELAY_IDLE },
	{ "relay-ports", required_argument, NULL, OPT_RELAY_PORTS },
	{ "max-pps", required_argument, NULL, OPT_MAX_PPS },
	{ "no-sweep", no_argument, NULL, OPT_NO_SWEEP },
	{ "join", no_argument, NULL, OPT_JOIN },
	{ "no-ipv6", no_argument, NULL, OPT_NO_IPV6 },
	{ "server6", required_argument, NULL, OPT_SERVER6 },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "exec", required_argument, NULL, OPT_EXEC },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

void n4_opts_usage(FILE *f)
{
	fputs("usage: n4 -s [-l PORT] [-a IDENT] [server options]\n"
	      "       n4 -c -h HOST [-p PORT] [-a IDENT] [-k KEYFILE] [-b PORT] [-n COUNT]\n"
	      "             [-o OFFSET] [-x] [--strategy auto|classic] [-t SECONDS] [client options]\n"
	      "       n4 genkey [-o FILE]        print a new random key (base64, one line);\n"
	      "                                  -o: into a new FILE of mode 600 (never\n"
	      "                                  overwritten), for -k\n"
	      "       n4 keyid KEYFILE [-a IDENT] [--long]  the 6-character identifier the key\n"
	      "                                  gives (for a private server: n4 -s -a $(n4 keyid F));\n"
	      "                                  --long: the 144-bit one an n4 server pairs on\n"
	      "\n"
	      "Punch UDP between two hosts behind port-incrementing (NAT4) NATs; wire-compatible\n"
	      "with the original n4.\n"
	      "\n"
	      "modes:\n"
	      "  -s, --server            run the rendezvous server (TCP and UDP on one port)\n"
	      "  -c, --client            punch, then print the local port and the peer address\n"
	      "common:\n"
	      "  -a, --ident IDENT       pairing identifier, 1-6 ASCII characters (n4n4n4);\n"
	      "                          server: accept only this one (default: any)\n"
	      "  -v, --verbose / -q, --quiet / --log quiet|error|warn|info|debug\n"
	      "      --help / --version  this text / the version\n"
	      "server:\n"
	      "  -l, --listen PORT       TCP and UDP port (1721)\n"
	      "      --bind ADDR         address to listen on (all, IPv6 and IPv4)\n"
	      "      --ipv4-only / --ipv6-only   listen on one family only (both)\n"
	      "      --hello-timeout-ms MS   connect to complete HELLO, slow or silent (5000)\n"
	      "      --wait-timeout S    a client waits this long for a partner (60)\n"
	      "      --exchange-timeout-ms MS  READY to both EXCHANGEs (10000)\n"
	      "      --drain-timeout-ms MS  on SIGTERM/SIGINT, pairs in the exchange get this\n"
	      "                          long to finish (5000)\n"
	      "      --max-clients N     clients at once (from the descriptor limit, raised)\n"
	      "      --max-per-ip N      connections at once per source IP or IPv6 /64\n"
	      "                          (64; 0 = no cap)\n"
	      "      --conn-rate N       new connections per second per source (20; 0 = no limit)\n"
	      "      --conn-burst N      ... in bursts of up to N (64)\n"
	      "      --port-budget N     NAT ports a punching plan may spend per side (512)\n"
	      "      --no-relay          refuse pairs no punch can join instead of relaying\n"
	      "      --no-rooms          refuse hosts of rooms (their clients pair as equals)\n"
	      "      --relay-after N     relay a pair after N lost punching rounds (2; 0 = at\n"
	      "                          once); unpunchable pairs are relayed at once\n"
	      "      --relay-max N       relayed pairs at once (1000; 0 = no relay)\n"
	      "      --relay-per-ip N    relayed pairs per client source (16; 0 = no cap)\n"
	      "      --relay-rate KBIT   per pair and direction, kbit/s (1000; 0 = no limit)\n"
	      "      --relay-burst KB    ... in bursts of up to KB KiB (64)\n"
	      "      --relay-total KBIT  all relayed pairs together, kbit/s (0 = no limit)\n"
	      "      --relay-idle S      free a relayed pair silent for S seconds (60)\n"
	      "      --relay-ports LO-HI relay UDP ports from this range (any)\n"
	      "      --max-pps N         PUNCH datagrams per second a client may send, told to\n"
	      "                          our clients as a ceiling on theirs (0 = theirs)\n"
	      "      --log-rate N        log lines per second at most (100; 0 = no cap)\n"
	      "                          SIGUSR1 logs a status line; SIGTERM/SIGINT stop\n"
	      "      --metrics ADDR:PORT serve Prometheus metrics over HTTP at /metrics (off)\n"
	      "client:\n"
	      "  -h, --host HOST         rendezvous server (required)\n"
	      "  -k, --key FILE          pre-shared key from 'n4 genkey' (- = stdin; mode 600):\n"
	      "                          pair only with holders of the key, WIN only on an\n"
	      "                          authenticated PUNCH; the server never sees the key.\n"
	      "                          Without it anyone using the same -a can pair with you\n"
	      "  -p, --port PORT         server port (1721)\n"
	      "  -b, --src-port PORT     first local port of the socket pool (30000; 0 = any;\n"
	      "                          0-65535)\n"
	      "  -n, --count N           pool size, local sockets per round (25; 1-4096)\n"
	      "  -o, --offset N          added to the peer's observed port (20; -65535..65535)\n"
	      "  -x, --any-ip            accept a PUNCH from any IP, not only the peer's\n"
	      "  -S, --strategy S        auto (default): low-TTL pre-opening, synchronised start,\n"
	      "                          short rounds, WIN at once; classic: exactly the original\n"
	      "  -t, --timeout S         give up after S seconds (120; 0 = never)\n"
	      "  -r, --round-ms MS       round length, 0 or 100-600000 (0, the default: 2500\n"
	      "                          with an n4 peer, else 10000)\n"
	      "      --ttl N             TTL of pre-opening packets (2; 0 = off; 0-255)\n"
	      "      --confirm-ms MS     keep confirming after WIN at most this long (2000;\n"
	      "                          0-60000)\n"
	      "      --max-ports N       NAT ports one round may spend, plans are capped (512)\n"
	      "      --no-relay          punch only: never accept the server's relay\n"
	      "      --max-pps N         PUNCH datagrams per second at most; a sweep's first\n"
	      "                          pass goes whole, so plans are capped at N/2 (1000;\n"
	      "                          0 or 20-1000000, 0 = unpaced)\n"
	      "      --no-sweep          direct paths only, never sweep ports (networks that\n"
	      "                          forbid it); other pairs are relayed, else exit 4\n"
	      "      --no-ipv6           never try a direct IPv6 path (IPv4 only, as before)\n"
	      "      --server6 HOST      the server's IPv6 name or address (default: -h's, if it\n"
	      "                          has one), where the IPv6 candidate is checked\n"
	      "      --join              pair only with the host of the identifier's room\n"
	      "                          (n4shim --host); wait for one, never pair as equals\n"
	      "      --json              print one JSON object with the result on stdout\n"
	      "      --exec CMD          after the WIN, release the port and run CMD with sh -c;\n"
	      "                          %l local port, %h peer IP, %H the same in brackets\n"
	      "                          when IPv6 (for HOST:PORT), %p peer port, %% a '%';\n"
	      "                          n4 then exits with CMD's status\n"
	      "exit status (client): 0 WIN, 1 no WIN in time, 2 usage, 3 server unreachable,\n"
	      "  4 this pair cannot be punched, 130 interrupted.\n",
	      f);
}

/* --exec: every '%' must be one we substitute, so that a typo fails at start
 * rather than after a punch. */
static bool exec_template_ok(const char *t)
{
	for (; *t; t++) {
		if (*t != '%')
			continue;
		t++; /* "%" at the very end fails here too */
		if (*t != 'l' && *t != 'h' && *t != 'H' && *t != 'p' && *t != '%')
			return false;
	}
	return true;
}

static int bad(char *err, size_t len, const char *flag, const char *val, const char *what)
{
	snprintf(err, len, "invalid %s '%s': %s", flag, val ? val : "", what);
	return -EINVAL;
}

/* getopt's code of each numeric option -> its entry in the table (opttab.h). */
static const struct {
	int code;
	enum n4_opt_id id;
} numeric[] = {
	{ 'p', N4_OPT_PORT },
	{ 'l', N4_OPT_LISTEN },
	{ 'b', N4_OPT_SRC_PORT },
	{ 'n', N4_OPT_POOL },
	{ 'o', N4_OPT_OFFSET },
	{ 't', N4_OPT_TIMEOUT },
	{ 'r', N4_OPT_ROUND_MS },
	{ OPT_TTL, N4_OPT_TTL },
	{ OPT_CONFIRM, N4_OPT_CONFIRM_MS },
	{ OPT_HELLO_TO, N4_OPT_HELLO_TO },
	{ OPT_WAIT_TO, N4_OPT_WAIT_TO },
	{ OPT_EXCH_TO, N4_OPT_EXCH_TO },
	{ OPT_MAX_CLIENTS, N4_OPT_MAX_CLIENTS },
	{ OPT_MAX_PER_IP, N4_OPT_MAX_PER_IP },
	{ OPT_CONN_RATE, N4_OPT_CONN_RATE },
	{ OPT_CONN_BURST, N4_OPT_CONN_BURST },
	{ OPT_DRAIN_TO, N4_OPT_DRAIN_TO },
	{ OPT_LOG_RATE, N4_OPT_LOG_RATE },
	{ OPT_MAX_PORTS, N4_OPT_MAX_PORTS },
	{ OPT_PORT_BUDGET, N4_OPT_PORT_BUDGET },
	{ OPT_MAX_PPS, N4_OPT_MAX_PPS },
	{ OPT_RELAY_AFTER, N4_OPT_RELAY_AFTER },
	{ OPT_RELAY_MAX, N4_OPT_RELAY_MAX },
	{ OPT_RELAY_PER_IP, N4_OPT_RELAY_PER_IP },
	{ OPT_RELAY_RATE, N4_OPT_RELAY_RATE },
	{ OPT_RELAY_BURST, N4_OPT_RELAY_BURST },
	{ OPT_RELAY_TOTAL, N4_OPT_RELAY_TOTAL },
	{ OPT_RELAY_IDLE, N4_OPT_RELAY_IDLE },
};

static const struct n4_opt_def *numeric_def(int code)
{
	for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++)
		if (numeric[i].code == code)
			return n4_opt_get(numeric[i].id);
	return NULL;
}

static void set_server_number(struct n4_server_cfg *sv, unsigned *log_rate, enum n4_opt_id id,
			      unsigned u)
{
	switch (id) {
	case N4_OPT_HELLO_TO:
		sv->hello_timeout_ms = u;
		break;
	case N4_OPT_WAIT_TO:
		sv->wait_timeout_ms = u * 1000u;
		break;
	case N4_OPT_EXCH_TO:
		sv->exchange_timeout_ms = u;
		break;
	case N4_OPT_DRAIN_TO:
		sv->drain_timeout_ms = u;
		break;
	case N4_OPT_MAX_CLIENTS:
		sv->max_clients = u;
		break;
	case N4_OPT_MAX_PER_IP:
		sv->max_per_ip = u;
		break;
	case N4_OPT_CONN_RATE:
		sv->conn_rate_per_ip = u;
		break;
	case N4_OPT_CONN_BURST:
		sv->conn_burst_per_ip = u;
		break;
	case N4_OPT_LOG_RATE:
		*log_rate = u;
		break;
	case N4_OPT_PORT_BUDGET:
		sv->port_budget = u;
		break;
	case N4_OPT_RELAY_AFTER:
		sv->relay_after = u;
		break;
	case N4_OPT_RELAY_MAX:
		sv->relay_max = u;
		break;
	case N4_OPT_RELAY_PER_IP:
		sv->relay_per_ip = u;
		break;
	case N4_OPT_RELAY_RATE:
		sv->relay_rate_kbit = u;
		break;
	case N4_OPT_RELAY_BURST:
		sv->relay_burst_kb = u;
		break;
	case N4_OPT_RELAY_TOTAL:
		sv->relay_total_kbit = u;
		break;
	case N4_OPT_RELAY_IDLE:
		sv->relay_idle_s = u;
		break;
	default:
		break; /* client and shim settings are set_number's */
	}
}

/* A value already range-checked against the table, into its field(s). */
static void set_number(struct n4_opts *o, enum n4_opt_id id, long v)
{
	unsigned u = (unsigned)v;

	switch (id) {
	case N4_OPT_PORT:
		o->client.server_port = (uint16_t)v;
		o->server.port = (uint16_t)v;
		break;
	case N4_OPT_LISTEN:
		o->server.port = (uint16_t)v;
		break;
	case N4_OPT_SRC_PORT:
		o->client.src_port = (uint16_t)v;
		break;
	case N4_OPT_POOL:
		o->client.pool_size = u;
		break;
	case N4_OPT_OFFSET:
		o->client.peer_offset = (int)v;
		break;
	case N4_OPT_TIMEOUT:
		o->client.timeout_ms = u * 1000u;
		break;
	case N4_OPT_ROUND_MS:
		o->client.round_ms = u;
		break;
	case N4_OPT_TTL:
		o->client.low_ttl = (int)v;
		break;
	case N4_OPT_CONFIRM_MS:
		o->client.confirm_ms = u;
		break;
	case N4_OPT_MAX_PORTS:
		o->client.max_ports = u;
		break;
	case N4_OPT_MAX_PPS:
		o->client.max_pps = u;
		o->server.max_pps = u;
		break;
	default:
		set_server_number(&o->server, &o->log_rate, id, u);
		break;
	}
}

static int parse_number(struct n4_opts *o, const struct n4_opt_def *d, char *err, size_t err_len)
{
	char flag[32], range[48], what[96];
	long v;

	if (n4_opt_parse(d, optarg, &v) == 0) {
		set_number(o, d->id, v);
		return 0;
	}
	if (d->short_name)
		snprintf(flag, sizeof(flag), "-%c", d->short_name);
	else
		snprintf(flag, sizeof(flag), "--%s", d->long_name);
	snprintf(what, sizeof(what), "%s, %s", d->what, n4_opt_range(d, range, sizeof(range)));
	return bad(err, err_len, flag, optarg, what);
}

/* A string into a fixed buffer: empty or too long is an error. */
static int copy_arg(char *dst, size_t size, const char *flag, char *err, size_t err_len)
{
	if (!*optarg || strlen(optarg) >= size)
		return bad(err, err_len, flag, optarg, "empty or too long");
	snprintf(dst, size, "%s", optarg);
	return 0;
}

static int parse_relay_ports(struct n4_server_cfg *sv, char *err, size_t err_len)
{
	unsigned lo, hi;
	int used = 0;

	if (sscanf(optarg, "%u-%u%n", &lo, &hi, &used) != 2 || (size_t)used != strlen(optarg) ||
	    lo < 1 || hi > 65535 || lo > hi)
		return bad(err, err_len, "--relay-ports", optarg,
			   "LO-HI with 1 <= LO <= HI <= 65535");
	sv->relay_port_lo = (uint16_t)lo;
	sv->relay_port_hi = (uint16_t)hi;
	return 0;
}

/* Options with a text value.  1: not one of them. */
static int parse_text(struct n4_opts *o, int c, bool *have_ident, char *err, size_t err_len)
{
	switch (c) {
	case 'h':
		return copy_arg(o->host, sizeof(o->host), "-h", err, err_len);
	case 'k':
		return copy_arg(o->key_file, sizeof(o->key_file), "-k", err, err_len);
	case OPT_SERVER6:
		return copy_arg(o->host6, sizeof(o->host6), "--server6", err, err_len);
	case OPT_BIND:
		return copy_arg(o->bind, sizeof(o->bind), "--bind", err, err_len);
	case 'a':
		if (n4_ident_check(optarg))
			return bad(err, err_len, "-a", optarg,
				   "1 to 6 printable ASCII characters, no spaces");
		snprintf(o->client.ident, sizeof(o->client.ident), "%s", optarg);
		snprintf(o->server_ident, sizeof(o->server_ident), "%s", optarg);
		*have_ident = true;
		return 0;
	case 'S':
		if (strcmp(optarg, "auto") == 0)
			o->client.strategy = N4_STRATEGY_AUTO;
		else if (strcmp(optarg, "classic") == 0)
			o->client.strategy = N4_STRATEGY_CLASSIC;
		else
			return bad(err, err_len, "--strategy", optarg, "auto or classic");
		return 0;
	case OPT_LOG:
		if (n4_log_parse_level(optarg, &o->log_level))
			return bad(err, err_len, "--log", optarg,
				   "quiet, error, warn, info or debug");
		return 0;
	case OPT_RELAY_PORTS:
		return parse_relay_ports(&o->server, err, err_len);
	case OPT_EXEC:
		if (!*optarg || !exec_template_ok(optarg))
			return bad(err, err_len, "--exec", optarg,
				   "a command; only %l, %h, %p and %% are substituted");
		o->exec_cmd = optarg;
		return 0;
	case OPT_METRICS:
		if (!*optarg || strlen(optarg) >= sizeof(o->metrics) || !strchr(optarg, ':'))
			return bad(err, err_len, "--metrics", optarg, "ADDR:PORT");
		snprintf(o->metrics, sizeof(o->metrics), "%s", optarg);
		return 0;
	default:
		return 1;
	}
}

/* Options without a value.  1: not one of them. */
static int parse_flag(struct n4_opts *o, int c, char *err, size_t err_len)
{
	switch (c) {
	case 's':
	case 'c': {
		enum n4_mode m = c == 's' ? N4_MODE_SERVER : N4_MODE_CLIENT;
		if (o->mode != N4_MODE_NONE && o->mode != m) {
			snprintf(err, err_len, "-s and -c are exclusive");
			return -EINVAL;
		}
		o->mode = m;
		return 0;
	}
	case 'x':
		o->client.any_peer_ip = true;
		return 0;
	case 'v':
		o->log_level = N4_LOG_DEBUG;
		return 0;
	case 'q':
		o->log_level = N4_LOG_WARN;
		return 0;
	case OPT_IPV4_ONLY:
		o->server.family = AF_INET;
		return 0;
	case OPT_IPV6_ONLY:
		o->server.family = AF_INET6;
		return 0;
	case OPT_JOIN:
		o->client.room_only = true;
		return 0;
	case OPT_NO_IPV6:
		o->client.no_ipv6 = true;
		return 0;
	case OPT_NO_SWEEP:
		o->client.no_sweep = true;
		return 0;
	case OPT_NO_RELAY:
		o->client.no_relay = true;
		o->server.no_relay = true;
		return 0;
	case OPT_NO_ROOMS:
		o->server.no_rooms = true;
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	default:
		return 1;
	}
}

/* After the options: the mode's requirements. */
static int check_mode(struct n4_opts *o, bool have_ident, char *err, size_t err_len)
{
	if (o->mode == N4_MODE_NONE) {
		snprintf(err, err_len, "choose a mode: -s (server) or -c (client)");
		return -EINVAL;
	}
	if (o->mode == N4_MODE_CLIENT) {
		if (!o->host[0]) {
			snprintf(err, err_len, "client mode needs the server: -h HOST");
			return -EINVAL;
		}
		o->client.server_host = o->host;
		o->client.server6_host = o->host6[0] ? o->host6 : NULL;
		char why[128];
		if (n4_client_cfg_check(&o->client, why, sizeof(why))) {
			snprintf(err, err_len, "%s", why);
			return -EINVAL;
		}
	}
	if (o->mode == N4_MODE_SERVER && o->key_file[0]) {
		snprintf(err, err_len,
			 "-k is a client option: the server never sees the key "
			 "(to serve one key alone: n4 -s -a $(n4 keyid FILE))");
		return -EINVAL;
	}
	if (o->mode == N4_MODE_SERVER) {
		o->server.only_ident = have_ident ? o->server_ident : NULL;
		o->server.bind_host = o->bind[0] ? o->bind : NULL;
	}
	return 0;
}

int n4_opts_parse(int argc, char **argv, struct n4_opts *o, char *err, size_t err_len)
{
	bool have_ident = false;
	int c, rc;

	memset(o, 0, sizeof(*o));
	n4_client_cfg_init(&o->client);
	n4_server_cfg_init(&o->server);
	o->log_level = N4_LOG_INFO;
	o->log_rate = 100;
	optind = 0; /* full reset, so the parser can run more than once */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":sch:p:l:a:k:b:n:o:xS:t:r:vq", long_opts, NULL)) !=
	       -1) {
		const struct n4_opt_def *d = numeric_def(c);
		if (c == OPT_HELP || c == OPT_VERSION) {
			o->mode = c == OPT_HELP ? N4_MODE_HELP : N4_MODE_VERSION;
			return 0;
		}
		if (c == ':') {
			snprintf(err, err_len, "option %s needs a value", argv[optind - 1]);
			return -EINVAL;
		}
		rc = d ? parse_number(o, d, err, err_len) : parse_flag(o, c, err, err_len);
		if (rc == 1)
			rc = parse_text(o, c, &have_ident, err, err_len);
		if (rc == 1) {
			snprintf(err, err_len, "unknown option %s", argv[optind - 1]);
			return -EINVAL;
		}
		if (rc)
			return rc;
	}
	if (optind < argc) {
		snprintf(err, err_len, "unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return check_mode(o, have_ident, err, err_len);
}

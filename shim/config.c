/* config.c - the shim's settings, read from the environment on first need.
 *
 * Lazily, not in a constructor: the environment is read on the first socket(), the
 * server name is resolved on the first UDP destination we have to classify (that may
 * take a DNS round trip, which must not happen at load time).  A bad setting is
 * remembered and reported as one error line at the first designated call, which
 * fails with the matching errno; everything else keeps working untouched. */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "blake2s.h"
#include "key.h"
#include "log.h"
#include "opttab.h"
#include "wire.h"

#define SHIM_DEFAULT_TIMEOUT_S 30

static struct shim_config config;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static bool reported;

static int set_error(int err, const char *fmt, const char *a, const char *b)
{
	if (config.error)
		return config.error; /* keep the first: one line, the root cause */
	config.error = err;
	snprintf(config.why, sizeof(config.why), fmt, a, b ? b : "");
	return err;
}

/* A port in N4_SERVER or N4_PEER: n4's -p range (opttab.h). */
static bool parse_port(const char *text, long *port)
{
	return n4_opt_parse(n4_opt_get(N4_OPT_PORT), text, port) == 0;
}

/* Optional numeric variable, its range from the table (opttab.h): absent
 * leaves *out alone. */
static void env_number(enum n4_opt_id id, long *out)
{
	const struct n4_opt_def *d = n4_opt_get(id);
	const char *s = getenv(d->env);
	char range[48], msg[sizeof(config.why)];

	if (!s || n4_opt_parse(d, s, out) == 0)
		return;
	snprintf(msg, sizeof(msg), "%s: bad value '%s' (want %s)", d->env, s,
		 n4_opt_range(d, range, sizeof(range)));
	set_error(-EINVAL, "%s%s", msg, NULL);
}

/* Optional 0/1 variable: absent leaves the default. */
static bool env_flag(const char *name, bool def)
{
	const char *s = getenv(name);

	if (!s)
		return def;
	if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0) {
		set_error(-EINVAL, "%s: bad value '%s' (want 0 or 1)", name, s);
		return def;
	}
	return s[0] == '1';
}

static void parse_server(const char *s)
{
	char host[sizeof(config.server_host)];
	const char *colon = strrchr(s, ':');
	long port = N4_DEFAULT_PORT;

	if (colon) {
		if (!parse_port(colon + 1, &port)) {
			set_error(-EINVAL, "N4_SERVER: bad port in '%s'%s", s, NULL);
			return;
		}
	}
	size_t len = colon ? (size_t)(colon - s) : strlen(s);
	if (len == 0 || len >= sizeof(host)) {
		set_error(-EINVAL, "N4_SERVER: bad host in '%s'%s", s, NULL);
		return;
	}
	memcpy(host, s, len);
	host[len] = '\0';
	snprintf(config.server_host, sizeof(config.server_host), "%s", host);
	config.server_port = (uint16_t)port;
	if (inet_pton(AF_INET, host, &config.server_ip) == 1)
		config.have_server_ip = true;
}

static void parse_peer(const char *s)
{
	char ip[INET_ADDRSTRLEN + 8];
	const char *colon = strrchr(s, ':');
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof(ip) || !parse_port(colon + 1, &port)) {
		set_error(-EINVAL, "N4_PEER: expected IPv4:PORT, got '%s'%s", s, NULL);
		return;
	}
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	memset(&config.peer_ph, 0, sizeof(config.peer_ph));
	config.peer_ph.sin_family = AF_INET;
	config.peer_ph.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &config.peer_ph.sin_addr) != 1) {
		set_error(-EINVAL, "N4_PEER: expected IPv4:PORT, got '%s'%s", s, NULL);
		return;
	}
	config.have_peer = true;
}

static void setup_log(void)
{
	char prefix[32];
	const char *s = getenv("N4_LOG");
	enum n4_log_level level = N4_LOG_INFO;

	shim_log_open(); /* normally done at load already */
	snprintf(prefix, sizeof(prefix), "n4shim[%d] ", (int)getpid());
	n4_log_set_prefix(prefix);
	if (s && n4_log_parse_level(s, &level) < 0)
		set_error(-EINVAL, "N4_LOG: expected quiet, error, warn, info or debug, got '%s'%s",
			  s, NULL);
	n4_log_set_level(level);
	/* Datagrams from the network can trigger lines; debug, asked for to
	 * look into a problem, keeps them all. */
	n4_log_set_rate(level == N4_LOG_DEBUG ? 0 : 20);
}

/* N4_KEY_FILE=FILE or N4_KEY=BASE64: the pre-shared key goes into the client
 * config (libn4 derives from it and wipes it).  A bad one is an error: every
 * designated call fails with EINVAL and nothing is sent. */
static void read_key(struct n4_client_cfg *c)
{
	const char *file = getenv("N4_KEY_FILE"), *text = getenv("N4_KEY");
	char why[sizeof(config.why) - 32];

	if (file && text) {
		set_error(-EINVAL, "N4_KEY_FILE and N4_KEY are both set: give one key%s%s", "",
			  NULL);
		return;
	}
	if (file) {
		if (n4_key_load(file, c->key, why, sizeof(why))) {
			set_error(-EINVAL, "N4_KEY_FILE: %s%s", why, NULL);
			return;
		}
		c->have_key = true;
	} else if (text) {
		if (n4_key_decode(text, strlen(text), c->key)) {
			set_error(-EINVAL,
				  "N4_KEY: not a key (want the base64 line 'n4 genkey' prints)%s%s",
				  "", NULL);
			return;
		}
		c->have_key = true;
	}
	if (c->have_key) {
		struct n4_keyed k;
		/* The datagrams to keep from the program carry the derived id. */
		if (n4_key_derive(c->key, config.ident, &k) == 0)
			snprintf(config.wire_ident, sizeof(config.wire_ident), "%s", k.short_id);
		n4_wipe(&k, sizeof(k));
	}
}

/* N4_HOST, N4_MAX_PEERS, N4_PEER_TIMEOUT, N4_STATUS: hosting a room (host.c). */
static const char *jstr(uint16_t port)
{
	static char b[8];

	snprintf(b, sizeof(b), "%u", port);
	return b;
}

/* N4_JOIN=PORT[,PORT...]: this process is a joiner of the room N4_IDENT names. */
static void read_join(const char *s)
{
	const char *p = s;

	config.njoin = 0;
	while (*p) {
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (end == p || errno || v < 1 || v > 65535 || (*end && *end != ',') ||
		    config.njoin >= SHIM_JOIN_MAX) {
			set_error(-EINVAL,
				  "N4_JOIN: '%s' is not a list of 1 to 8 ports (1-65535) separated "
				  "by commas%s",
				  s, NULL);
			config.njoin = 0;
			return;
		}
		config.join_ports[config.njoin++] = (uint16_t)v;
		if (*end && !end[1]) {
			set_error(-EINVAL, "N4_JOIN: '%s' ends with a comma%s", s, NULL);
			config.njoin = 0;
			return;
		}
		p = *end ? end + 1 : end;
	}
	if (!config.njoin) {
		set_error(-EINVAL, "N4_JOIN is empty (want PORT[,PORT...])%s%s", "", NULL);
		return;
	}
	for (unsigned i = 0; i < config.njoin; i++) {
		if (config.join_ports[i] == config.host_port ||
		    config.join_ports[i] == config.listen_port)
			set_error(
				-EINVAL,
				"N4_JOIN: port %s is also N4_HOST's or N4_LISTEN's: a socket joins "
				"a room, hosts one or listens for one peer%s",
				jstr(config.join_ports[i]), "");
	}
	/* A joiner pairs with its room's host only, never with another joiner. */
	config.client.room_only = true;
}

bool shim_join_port(const struct shim_config *cfg, uint16_t port)
{
	for (unsigned i = 0; i < cfg->njoin; i++)
		if (cfg->join_ports[i] == port)
			return true;
	return false;
}

static void read_host(void)
{
	const char *st = getenv("N4_STATUS");
	long v = 0;

	if (getenv("N4_HOST")) {
		env_number(N4_OPT_SHIM_HOST, &v);
		config.host_port = (uint16_t)v;
	}
	v = n4_opt_get(N4_OPT_MAX_PEERS)->def;
	env_number(N4_OPT_MAX_PEERS, &v);
	config.max_peers = (unsigned)v;
	v = n4_opt_get(N4_OPT_PEER_TIMEOUT)->def;
	env_number(N4_OPT_PEER_TIMEOUT, &v);
	config.peer_timeout_s = (unsigned)v;
	v = n4_opt_get(N4_OPT_FLOW_TIMEOUT)->def;
	env_number(N4_OPT_FLOW_TIMEOUT, &v);
	config.flow_timeout_s = (unsigned)v;
	if (st && *st) {
		if (strlen(st) >= sizeof(config.status_path))
			set_error(-EINVAL, "N4_STATUS: '%s' is longer than 255 bytes%s", st, NULL);
		else
			snprintf(config.status_path, sizeof(config.status_path), "%s", st);
	}
	const char *jn = getenv("N4_JOIN");
	if (jn)
		read_join(jn);
	if (config.host_port && config.host_port == config.listen_port)
		set_error(-EINVAL,
			  "N4_HOST and N4_LISTEN name the same port %s%s: a socket "
			  "either hosts a room or listens for one peer",
			  getenv("N4_HOST"), "");
}

/* N4_SERVER, N4_PEER, N4_LISTEN, N4_IDENT: where and with whom. */
static void read_endpoints(const char *server, const char *peer, const char *listen)
{
	const char *s;
	long v;

	if (server && *server)
		parse_server(server);
	else
		set_error(-EINVAL, "N4_SERVER is not set (want HOST[:PORT])%s%s", "", NULL);
	if (peer)
		parse_peer(peer);
	if (listen) {
		v = 0;
		env_number(N4_OPT_SHIM_LISTEN, &v);
		config.listen_port = (uint16_t)v;
	}
	read_host();
	s = getenv("N4_IDENT");
	if (s) {
		if (n4_ident_check(s) < 0)
			set_error(
				-EINVAL,
				"N4_IDENT: '%s' is not 1 to 6 printable characters without spaces%s",
				s, NULL);
		else
			snprintf(config.ident, sizeof(config.ident), "%s", s);
	}
	snprintf(config.wire_ident, sizeof(config.wire_ident), "%s", config.ident);
}

/* The punch settings n4 -c takes as options, from their N4_ variables. */
static void read_punch(struct n4_client_cfg *c)
{
	const char *s;
	long v;

	v = SHIM_DEFAULT_TIMEOUT_S;
	env_number(N4_OPT_SHIM_TIMEOUT, &v);
	c->timeout_ms = (unsigned)v * 1000u;
	v = c->pool_size;
	env_number(N4_OPT_POOL, &v);
	c->pool_size = (unsigned)v;
	v = c->peer_offset;
	env_number(N4_OPT_OFFSET, &v);
	c->peer_offset = (int)v;
	v = 0;
	env_number(N4_OPT_SRC_PORT, &v);
	c->src_port = (uint16_t)v;
	v = c->round_ms;
	env_number(N4_OPT_ROUND_MS, &v);
	c->round_ms = (unsigned)v;
	v = c->confirm_ms;
	env_number(N4_OPT_CONFIRM_MS, &v);
	c->confirm_ms = (unsigned)v;
	v = c->low_ttl;
	env_number(N4_OPT_TTL, &v);
	c->low_ttl = (int)v;
	v = c->max_pps;
	env_number(N4_OPT_MAX_PPS, &v);
	c->max_pps = (unsigned)v;
	c->any_peer_ip = env_flag("N4_ANY_PEER", c->any_peer_ip);
	/* N4_RELAY=0: punch only; a pair no punch can join then fails as before. */
	c->no_relay = !env_flag("N4_RELAY", !c->no_relay);
	/* N4_SWEEP=0: direct paths only (n4 -c --no-sweep) */
	c->no_sweep = !env_flag("N4_SWEEP", true);
	s = getenv("N4_STRATEGY");
	if (s) {
		if (strcasecmp(s, "auto") == 0)
			c->strategy = N4_STRATEGY_AUTO;
		else if (strcasecmp(s, "classic") == 0)
			c->strategy = N4_STRATEGY_CLASSIC;
		else
			set_error(-EINVAL, "N4_STRATEGY: expected auto or classic, got '%s'%s", s,
				  NULL);
	}
}

/* What the shim does with the path once it is up. */
static void read_upkeep(struct n4_client_cfg *c)
{
	struct n4_path_cfg defaults; /* the path module's (lib/path.c says why) */
	long v;

	n4_path_cfg_init(&defaults);
	v = defaults.keepalive_s;
	env_number(N4_OPT_KEEPALIVE, &v);
	config.keepalive_s = (unsigned)v;
	config.recover = env_flag("N4_RECOVER", defaults.recover);
	v = defaults.upgrade_s;
	env_number(N4_OPT_UPGRADE, &v);
	config.upgrade_s = (unsigned)v;
	config.stay = env_flag("N4_STAY", defaults.stay);
	c->stay = config.stay;
}

/* N4_IPV6 (1): race a direct IPv6 path beside the IPv4 plan, as n4 -c does, when
 * both hosts have global IPv6; its socket goes under the program's descriptor and
 * the program sees only its own family.  N4_SERVER6: the server's IPv6 address
 * (n4 -c --server6); without it, N4_SERVER's AAAA when N4_SERVER is a name. */
static void read_ipv6(struct n4_client_cfg *c)
{
	const char *s6 = getenv("N4_SERVER6");

	config.ipv6 = env_flag("N4_IPV6", true);
	c->no_ipv6 = !config.ipv6;
	if (!s6 || !*s6)
		return;
	if (strlen(s6) >= sizeof(config.server6_host)) {
		set_error(-EINVAL, "N4_SERVER6: '%s' is longer than 255 bytes%s", s6, NULL);
		return;
	}
	/* A literal may come in brackets, as in a URL. */
	size_t n = strlen(s6);
	if (s6[0] == '[' && n > 2 && s6[n - 1] == ']')
		snprintf(config.server6_host, sizeof(config.server6_host), "%.*s", (int)(n - 2),
			 s6 + 1);
	else
		snprintf(config.server6_host, sizeof(config.server6_host), "%s", s6);
	struct in_addr v4;
	if (inet_pton(AF_INET, config.server6_host, &v4) == 1) {
		set_error(-EINVAL,
			  "N4_SERVER6: '%s' is an IPv4 address (want the server's IPv6 "
			  "address or name)%s",
			  s6, NULL);
		return;
	}
	c->server6_host = config.server6_host;
}

static void read_env(void)
{
	struct n4_client_cfg *c = &config.client;
	const char *server = getenv("N4_SERVER");
	const char *peer = getenv("N4_PEER");
	const char *listen = getenv("N4_LISTEN");

	shim_guard++;
	setup_log();
	n4_client_cfg_init(c);
	/* Kernel-chosen pool ports: several shimmed sockets or processes on one host
	 * must never collide on a fixed 30000.. window. */
	c->src_port = 0;
	c->timeout_ms = SHIM_DEFAULT_TIMEOUT_S * 1000u;
	c->return_on_eintr = true;
	snprintf(config.ident, sizeof(config.ident), "%s", N4_DEFAULT_IDENT);

	config.active = server || peer || listen || getenv("N4_HOST");
	if (!config.active)
		goto out;
	read_endpoints(server, peer, listen);
	read_key(c);
	read_punch(c);
	read_upkeep(c);
	read_ipv6(c);
	memcpy(c->ident, config.ident, sizeof(c->ident));
	c->server_host = config.server_host;
	c->server_port = config.server_port;
	if (!config.error && config.server_host[0]) {
		char why[160];
		if (n4_client_cfg_check(c, why, sizeof(why)) < 0)
			set_error(-EINVAL, "bad settings: %s%s", why, NULL);
	}
out:
	shim_guard--;
}

static void resolve_server(void)
{
	struct addrinfo hints, *res = NULL;

	if (config.have_server_ip || !config.server_host[0])
		return;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_DGRAM;
	shim_guard++;
	int rc = getaddrinfo(config.server_host, NULL, &hints, &res);
	shim_guard--;
	if (rc != 0 || !res) {
		set_error(-EHOSTUNREACH, "N4_SERVER: cannot resolve '%s': %s", config.server_host,
			  rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return;
	}
	config.server_ip = ((const struct sockaddr_in *)res->ai_addr)->sin_addr;
	config.have_server_ip = true;
	freeaddrinfo(res);
	/* The name's IPv6 address, unless N4_SERVER6 named one: libn4 is given the
	 * IPv4 literal below, which has none. */
	if (config.ipv6 && !config.server6_host[0]) {
		hints.ai_family = AF_INET6;
		res = NULL;
		shim_guard++;
		rc = getaddrinfo(config.server_host, NULL, &hints, &res);
		shim_guard--;
		if (rc == 0 && res) {
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)res->ai_addr)->sin6_addr,
				  config.server6_host, sizeof(config.server6_host));
			config.client.server6_host = config.server6_host;
		}
		if (res)
			freeaddrinfo(res);
	}
	/* Give libn4 the literal: it must talk to the very address we classify by. */
	inet_ntop(AF_INET, &config.server_ip, config.server_host, sizeof(config.server_host));
}

const struct shim_config *shim_config_get(void)
{
	pthread_once(&env_once, read_env);
	return &config;
}

const struct shim_config *shim_config_resolved(void)
{
	pthread_once(&env_once, read_env);
	if (config.active)
		pthread_once(&resolve_once, resolve_server);
	return &config;
}

void shim_config_report(const struct shim_config *cfg)
{
	bool first;

	pthread_mutex_lock(&report_lock);
	first = !reported;
	reported = true;
	pthread_mutex_unlock(&report_lock);
	if (first && cfg->error) {
		shim_guard++;
		n4_error("%s", cfg->why);
		shim_guard--;
	}
}

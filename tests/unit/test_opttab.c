/* test_opttab.c - the option table is the one home of every numeric setting's
 * range: n4's parser and the shim's variables accept exactly its range, and
 * n4 --help, n4(1) and n4shim(1) state the same range for each shared setting.
 * Reads doc/ relative to the working directory (the top of the tree, as
 * `make unit` runs it; N4_SRCDIR overrides). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "opttab.h"
#include "test.h"

static int parse_one(const struct n4_opt_def *d, long v)
{
	struct n4_opts o;
	char flag[40], val[32], err[256];
	char *argv[] = { (char *)"n4", (char *)"-s", flag, val, NULL };

	snprintf(flag, sizeof(flag), "--%s", d->long_name);
	snprintf(val, sizeof(val), "%ld", v);
	return n4_opts_parse(4, argv, &o, err, sizeof(err));
}

TEST(opttab_n4_accepts_exactly_the_table_range)
{
	for (size_t i = 0; i < N4_OPT_COUNT; i++) {
		const struct n4_opt_def *d = &n4_opt_table[i];
		CHECK_EQ(d->id, i);
		if (!d->long_name)
			continue;
		CHECK_EQ(parse_one(d, d->min), 0);
		CHECK_EQ(parse_one(d, d->max), 0);
		CHECK_EQ(parse_one(d, d->min - 1), -EINVAL);
		CHECK_EQ(parse_one(d, d->max + 1), -EINVAL);
		if (d->nonzero_min > 0) {
			CHECK_EQ(parse_one(d, d->nonzero_min), 0);
			CHECK_EQ(parse_one(d, d->nonzero_min - 1), -EINVAL);
		}
	}
}

TEST(opttab_variables_parse_within_the_table_range)
{
	long v = 0;
	const struct n4_opt_def *pool = n4_opt_by_env("N4_POOL");

	/* -n and N4_POOL once differed (1-4096 and 1-1024): one entry now. */
	CHECK(pool && pool == n4_opt_get(N4_OPT_POOL));
	CHECK_EQ(n4_opt_parse(pool, "4096", &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(n4_opt_parse(pool, "4097", &v), -EINVAL);
	CHECK_EQ(n4_opt_parse(pool, " 5", &v), -EINVAL);
	CHECK_EQ(n4_opt_parse(pool, "5x", &v), -EINVAL);
	CHECK_EQ(n4_opt_parse(pool, "", &v), -EINVAL);
	CHECK_EQ(n4_opt_parse(n4_opt_get(N4_OPT_OFFSET), "-65535", &v), 0);
	CHECK_EQ(v, -65535);
	CHECK_EQ(n4_opt_parse(n4_opt_get(N4_OPT_ROUND_MS), "99", &v), -EINVAL);
	CHECK_EQ(n4_opt_parse(n4_opt_get(N4_OPT_ROUND_MS), "0", &v), 0);
	CHECK(n4_opt_by_env("N4_NOPE") == NULL);
	for (size_t i = 0; i < N4_OPT_COUNT; i++) {
		const struct n4_opt_def *d = &n4_opt_table[i];
		char s[32];
		if (!d->env)
			continue;
		CHECK(n4_opt_by_env(d->env) == d);
		snprintf(s, sizeof(s), "%ld", d->max + 1);
		CHECK_EQ(n4_opt_parse(d, s, &v), -EINVAL);
		snprintf(s, sizeof(s), "%ld", d->min);
		CHECK_EQ(n4_opt_parse(d, s, &v), 0);
		/* 0 where there is no default (N4_LISTEN unset: none designated) */
		CHECK(d->def == 0 || (d->def >= d->min && d->def <= d->max));
	}
}

/* The text from the first `key` at or after `from` to the next `end` mark
 * (or the end): one option's entry, copied into buf. */
static const char *entry_of(const char *text, const char *from, const char *key, const char *end,
			    char *buf, size_t len)
{
	const char *start = from ? strstr(text, from) : text;
	const char *p = start ? strstr(start, key) : NULL;
	size_t o = 0;

	if (!p)
		return NULL;
	const char *stop = strstr(p + strlen(key), end);
	if (!stop)
		stop = p + strlen(p);
	for (; p < stop && o + 1 < len; p++)
		buf[o++] = *p;
	buf[o] = '\0';
	return buf;
}

static char *slurp(const char *rel)
{
	const char *dir = getenv("N4_SRCDIR");
	char path[512];
	static char text[1 << 17];

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", rel);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(text, 1, sizeof(text) - 1, f), o = 0;
	fclose(f);
	/* roff's "\-" is the "-" of --help. */
	for (size_t i = 0; i < n; i++)
		if (!(text[i] == '\\' && i + 1 < n && text[i + 1] == '-'))
			text[o++] = text[i];
	text[o] = '\0';
	return text;
}

TEST(opttab_help_states_the_table_range)
{
	static char text[16384];
	char buf[1024], range[48], key[48];
	FILE *f = fmemopen(text, sizeof(text) - 1, "w");

	CHECK(f != NULL);
	n4_opts_usage(f);
	CHECK(ftell(f) < (long)sizeof(text) - 1); /* not cut short */
	CHECK(fclose(f) == 0);
	for (size_t i = 0; i < N4_OPT_COUNT; i++) {
		const struct n4_opt_def *d = &n4_opt_table[i];
		if (!d->long_name)
			continue;
		snprintf(key, sizeof(key), "--%s ", d->long_name);
		const char *e = entry_of(text, "\nclient:", key, "\n  -", buf, sizeof(buf));
		if (!e)
			e = entry_of(text, NULL, key, "\n  -", buf, sizeof(buf));
		if (!e)
			printf("  --help lacks %s\n", key);
		CHECK(e != NULL);
		/* The settings the shim shares: the same range in both. */
		if (d->env && !strstr(e, n4_opt_range(d, range, sizeof(range))))
			printf("  --help, %s: no '%s' in: %s\n", key, range, e);
		CHECK(!d->env || strstr(e, range));
	}
}

TEST(opttab_man_pages_state_the_table_range)
{
	char buf[2048], range[48], key[64];

	for (size_t i = 0; i < N4_OPT_COUNT; i++) {
		const struct n4_opt_def *d = &n4_opt_table[i];
		if (!d->env)
			continue;
		n4_opt_range(d, range, sizeof(range));
		char *shim = slurp("doc/n4shim.1");
		if (!shim)
			printf("  cannot read doc/n4shim.1 (run from the top, or set N4_SRCDIR)\n");
		CHECK(shim != NULL);
		snprintf(key, sizeof(key), ".BI %s=", d->env);
		const char *e = entry_of(shim, NULL, key, ".TP", buf, sizeof(buf));
		if (!e || !strstr(e, range))
			printf("  n4shim(1), %s: no '%s'\n", d->env, range);
		CHECK(e && strstr(e, range));
		if (!d->long_name)
			continue;
		char *n4 = slurp("doc/n4.1");
		CHECK(n4 != NULL);
		snprintf(key, sizeof(key), "--%s", d->long_name);
		e = entry_of(n4, ".SH CLIENT OPTIONS", key, ".TP", buf, sizeof(buf));
		if (!e || !strstr(e, range))
			printf("  n4(1), --%s: no '%s'\n", d->long_name, range);
		CHECK(e && strstr(e, range));
	}
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading the helper's ini configuration (config.h lists the keys): the key
 * table, the value parsers, path normalisation, and the checks across keys.
 *
 * inih (as Debian builds it) neither gives the handler a line number nor
 * tells a continuation line from a new key, and it never calls the handler
 * for an empty section. So we feed it through our own line reader, which
 * counts lines, keeps the raw line for the handler to look at, and checks
 * section headers itself.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include <hpcnode/constants.h>

#include "config_internal.h"
#include "log.h"

#define KEY(sec, nm, ty, fld, ...) {						\
	.section = (sec), .name = (nm), .type = (ty),					\
	.off = offsetof(struct hpcn_config, fld),					\
	.size = sizeof(((struct hpcn_config *)0)->fld), __VA_ARGS__ }
#define SECS(lo, hi) .min = (lo), .max = (hi), .what = "a number of seconds"

const struct key hpcn_config_keys[] = {
	KEY("helper", "socket", K_PATH, socket_path, .restart = true),
	KEY("helper", "socket_mode", K_MODE, socket_mode, .restart = true),
	KEY("helper", "ready_file", K_PATH, ready_file, .restart = true),
	KEY("helper", "state_dir", K_PATH, state_dir, .restart = true),
	KEY("helper", "log_level", K_LOG_LEVEL, log_level),
	KEY("helper", "log_target", K_LOG_TARGET, log_target),
	KEY("helper", "audit_log", K_PATH_OPT, audit_log),
	KEY("access", "allowed_users", K_USERS, allowed_uids),
	KEY("access", "allowed_groups", K_GROUPS, allowed_gids),
	KEY("cgroup", "enabled", K_BOOL, cgroup_enabled, .restart = true),
	KEY("cgroup", "root", K_CGROUP_ROOT, cgroup_root, .restart = true),
	KEY("cgroup", "limits_mandatory", K_BOOL, limits_mandatory),
	KEY("cgroup", "kill_timeout", K_UINT, kill_timeout_secs, SECS(1, 3600)),
	KEY("uenv", "mount_base", K_PATH, uenv_mount_base, .restart = true),
	KEY("uenv", "hold_time", K_UINT, hold_time_secs,
	    SECS(0, HPCN_CONFIG_MAX_HOLD_TIME_SECS)),
	KEY("uenv", "allowed_mount_points", K_MOUNT_POINTS, allowed_mount_points),
	KEY("uenv", "create_mount_points", K_MOUNT_POINTS, create_mount_points),
	KEY("uenv", "image_prefixes", K_PREFIXES, image_prefixes),
	KEY("uenv", "max_images", K_UINT, max_images,
	    .min = 1, .max = HPCN_MAX_MOUNTS, .what = "a number"),
	KEY("uenv", "max_loop_devices", K_UINT, max_loop_devices,
	    .min = 0, .max = 1048576, .what = "a number"),
	KEY("namespaces", "allow_pid", K_BOOL, allow_pid),
	KEY("namespaces", "allow_net", K_BOOL, allow_net),
	KEY("reconcile", "interval", K_UINT, reconcile_interval_secs, SECS(1, 86400)),
};

#define NKEYS HPCN_ARRAY_SIZE(hpcn_config_keys)

const size_t hpcn_config_nkeys = NKEYS;

/* Mount points never allowed: the kernel's and our own trees. */
static const char *const forbidden_mount_prefixes[] = { "/proc", "/sys", "/dev", "/run/pact" };

static bool is_list(const struct key *k)
{
	return k->type == K_USERS || k->type == K_GROUPS || k->type == K_MOUNT_POINTS ||
	       k->type == K_PREFIXES;
}

static int key_index(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(hpcn_config_keys[i].section, section) == 0 &&
		    strcmp(hpcn_config_keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

static bool section_known(const char *section)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(hpcn_config_keys[i].section, section) == 0)
			return true;
	return false;
}

/* ---- paths ---- */

int hpcn_path_normalize(const char *in, char *out, size_t cap)
{
	const char *p = in;
	size_t o = 0;

	if (!in || in[0] != '/' || cap == 0) {
		errno = EINVAL;
		return -1;
	}
	while (*p) {
		const char *e;
		size_t len;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		e = strchrnul(p, '/');
		len = (size_t)(e - p);
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			errno = EPERM;
			return -1;
		}
		if (!(len == 1 && p[0] == '.')) {
			if (o + 1 + len + 1 > cap) {
				errno = ENAMETOOLONG;
				return -1;
			}
			out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p = e;
	}
	if (o == 0) {
		if (cap < 2) {
			errno = ENAMETOOLONG;
			return -1;
		}
		out[o++] = '/';
	}
	out[o] = '\0';
	return 0;
}

bool hpcn_path_has_prefix(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strcmp(prefix, "/") == 0)
		return path[0] == '/';
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* ---- the parse context ---- */

struct parse_ctx {
	struct hpcn_config *c;
	const char *name;          /* file name for messages */
	const char *pos;           /* reader position in the text */
	const char *raw;           /* the raw line inih is working on */
	size_t raw_len;
	unsigned lineno;
	unsigned key_line[NKEYS];  /* where each key was set, 0 = not set */
	int last_key;              /* key of the previous entry (continuations) */
	bool failed;
	unsigned fail_line;
	char msg[HPCN_ERROR_MESSAGE_MAX - 32];
};

static void failf(struct parse_ctx *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void failf(struct parse_ctx *p, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return;
	p->failed = true;
	p->fail_line = line;
	if (line)
		n = snprintf(p->msg, sizeof(p->msg), "%s:%u: ", p->name, line);
	else
		n = snprintf(p->msg, sizeof(p->msg), "%s: ", p->name);
	if (n < 0 || (size_t)n >= sizeof(p->msg))
		return;
	va_start(ap, fmt);
	vsnprintf(p->msg + n, sizeof(p->msg) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* A value error: "FILE:LINE: [section] key: problem". */
static int bad(struct parse_ctx *p, const struct key *k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct parse_ctx *p, const struct key *k, const char *fmt, ...)
{
	char problem[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	failf(p, p->lineno, "[%s] %s: %s", k->section, k->name, problem);
	return -1;
}

/* Values are quoted in messages; keep a hostile one short and printable. */
static const char *shown(const char *v, char *buf, size_t cap)
{
	size_t lim = cap - 1, i;
	bool cut = strlen(v) > lim;

	if (cut)
		lim -= 3;
	for (i = 0; i < lim && v[i]; i++)
		buf[i] = isprint((unsigned char)v[i]) ? v[i] : '?';
	if (cut) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static int parse_path(struct parse_ctx *p, const struct key *k, const char *v,
		      char *out, size_t cap, bool allow_root)
{
	char sb[96];

	if (hpcn_path_normalize(v, out, cap) < 0) {
		if (errno == EPERM)
			return bad(p, k, "'%s' contains a '..' component",
				   shown(v, sb, sizeof(sb)));
		if (errno == ENAMETOOLONG)
			return bad(p, k, "'%s' is longer than %zu bytes", shown(v, sb, sizeof(sb)),
				   cap - 1);
		return bad(p, k, "'%s' is not an absolute path", shown(v, sb, sizeof(sb)));
	}
	if (!allow_root && strcmp(out, "/") == 0)
		return bad(p, k, "'/' is not allowed here");
	/* Whitespace and control characters in a node's paths are mistakes
	 * (and inih trims the edges, so they would not survive --print-config). */
	for (const char *c = v; *c; c++)
		if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c))
			return bad(p, k, "'%s' contains whitespace or a control character",
				   shown(v, sb, sizeof(sb)));
	return 0;
}

/* 0 ok, -1 not a number, -2 negative, -3 too large for unsigned long long */
static int parse_ull(const char *v, unsigned long long *out)
{
	const char *d = v;
	char *end;

	if (*d == '-')
		d++;
	if (!*d)
		return -1;
	for (const char *q = d; *q; q++)
		if (!isdigit((unsigned char)*q))
			return -1;
	if (d != v)
		return -2;
	errno = 0;
	*out = strtoull(v, &end, 10);
	if (errno == ERANGE)
		return -3;
	return 0;
}

static int parse_uint(struct parse_ctx *p, const struct key *k, const char *v, unsigned *out)
{
	unsigned long long x = 0;
	char sb[96];
	int r = parse_ull(v, &x);

	if (r == -1)
		return bad(p, k, "'%s' is not %s", shown(v, sb, sizeof(sb)), k->what);
	if (r == -2)
		return bad(p, k, "'%s' is negative, expected %s in %u..%u",
			   shown(v, sb, sizeof(sb)), k->what, k->min, k->max);
	if (r == -3 || x < k->min || x > k->max)
		return bad(p, k, "'%s' is out of range %u..%u", shown(v, sb, sizeof(sb)),
			   k->min, k->max);
	*out = (unsigned)x;
	return 0;
}

static int parse_bool(struct parse_ctx *p, const struct key *k, const char *v, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	char sb[96];

	for (size_t i = 0; i < HPCN_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return bad(p, k, "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
		   shown(v, sb, sizeof(sb)));
}

static int parse_mode(struct parse_ctx *p, const struct key *k, const char *v, mode_t *out)
{
	unsigned long m = 0;
	size_t n = strlen(v);
	char sb[96];

	if (n == 0 || n > 4)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '7')
			goto fail;
		m = m * 8 + (unsigned long)(v[i] - '0');
	}
	if (m > 0777)
		goto fail;
	*out = (mode_t)m;
	return 0;
fail:
	return bad(p, k, "'%s' is not an octal mode (0000..0777)", shown(v, sb, sizeof(sb)));
}

/* A numeric id: digits only, below the (uid_t)-1 that means "no id". */
static bool parse_id(const char *v, unsigned long *out)
{
	unsigned long long x;

	if (parse_ull(v, &x) != 0 || x >= (unsigned long long)(uid_t)-1)
		return false;
	*out = (unsigned long)x;
	return true;
}

/* A user or group, by name (through NSS) or numeric id. */
static int resolve_id(struct parse_ctx *p, const struct key *k, const char *name, bool group,
		      unsigned int *out)
{
	const char *what = group ? "group" : "user";
	size_t cap = 4096;
	unsigned long id;
	char sb[96];

	if (parse_id(name, &id)) {
		*out = (unsigned int)id;
		return 0;
	}
	for (;;) {
		_cleanup_free_ char *buf = malloc(cap);
		struct passwd pw, *pres = NULL;
		struct group gr, *gres = NULL;
		int r;

		if (!buf)
			return bad(p, k, "out of memory resolving '%s'",
				   shown(name, sb, sizeof(sb)));
		r = group ? getgrnam_r(name, &gr, buf, cap, &gres) :
			    getpwnam_r(name, &pw, buf, cap, &pres);
		if (r == ERANGE && cap < 1024 * 1024) {
			cap *= 4;
			continue;
		}
		if (r != 0)
			return bad(p, k, "cannot look up %s '%s': %s", what,
				   shown(name, sb, sizeof(sb)), strerror(r));
		if (group ? !gres : !pres)
			return bad(p, k, "unknown %s '%s'", what, shown(name, sb, sizeof(sb)));
		*out = group ? (unsigned int)gr.gr_gid : (unsigned int)pw.pw_uid;
		return 0;
	}
}

static int resolve_user(struct parse_ctx *p, const struct key *k, const char *name, uid_t *out)
{
	unsigned int v;

	if (resolve_id(p, k, name, false, &v) < 0)
		return -1;
	*out = (uid_t)v;
	return 0;
}

static int resolve_group(struct parse_ctx *p, const struct key *k, const char *name, gid_t *out)
{
	unsigned int v;

	if (resolve_id(p, k, name, true, &v) < 0)
		return -1;
	*out = (gid_t)v;
	return 0;
}

static int add_mount_point(struct parse_ctx *p, const struct key *k, const char *item,
			   struct hpcn_strv *sv)
{
	char norm[PATH_MAX], sb[96];

	if (parse_path(p, k, item, norm, sizeof(norm), true) < 0)
		return -1;
	if (strcmp(norm, "/") == 0)
		return bad(p, k, "'%s': cannot mount over /", shown(item, sb, sizeof(sb)));
	for (size_t i = 0; i < HPCN_ARRAY_SIZE(forbidden_mount_prefixes); i++)
		if (hpcn_path_has_prefix(norm, forbidden_mount_prefixes[i]))
			return bad(p, k, "'%s' is under %s, where no image may be mounted",
				   shown(item, sb, sizeof(sb)), forbidden_mount_prefixes[i]);
	if (hpcn_strv_contains(sv, norm))
		return 0;
	if (hpcn_strv_addf(sv, "%s", norm) < 0)
		return bad(p, k, "out of memory");
	return 0;
}

static int add_prefix(struct parse_ctx *p, const struct key *k, const char *item,
		      struct hpcn_strv *sv)
{
	char norm[PATH_MAX];

	if (parse_path(p, k, item, norm, sizeof(norm), true) < 0)
		return -1;
	if (hpcn_strv_contains(sv, norm))
		return 0;
	if (hpcn_strv_addf(sv, "%s", norm) < 0)
		return bad(p, k, "out of memory");
	return 0;
}

static int add_list_item(struct parse_ctx *p, const struct key *k, const char *item)
{
	struct hpcn_config *c = p->c;

	switch (k->type) {
	case K_USERS: {
		uid_t uid = 0;

		if (resolve_user(p, k, item, &uid) < 0)
			return -1;
		for (size_t i = 0; i < c->allowed_uids.n; i++)
			if (c->allowed_uids.v[i] == uid)
				return 0;
		if (c->allowed_uids.n >= HPCN_CONFIG_MAX_IDS)
			return bad(p, k, "more than %d users", HPCN_CONFIG_MAX_IDS);
		c->allowed_uids.v[c->allowed_uids.n++] = uid;
		return 0;
	}
	case K_GROUPS: {
		gid_t gid = 0;

		if (resolve_group(p, k, item, &gid) < 0)
			return -1;
		for (size_t i = 0; i < c->allowed_gids.n; i++)
			if (c->allowed_gids.v[i] == gid)
				return 0;
		if (c->allowed_gids.n >= HPCN_CONFIG_MAX_IDS)
			return bad(p, k, "more than %d groups", HPCN_CONFIG_MAX_IDS);
		c->allowed_gids.v[c->allowed_gids.n++] = gid;
		return 0;
	}
	case K_MOUNT_POINTS:
		return add_mount_point(p, k, item, field(c, k));
	case K_PREFIXES:
		return add_prefix(p, k, item, field(c, k));
	default:
		return bad(p, k, "not a list");
	}
}

static void clear_list(struct hpcn_config *c, const struct key *k)
{
	if (k->type == K_USERS)
		c->allowed_uids.n = 0;
	else if (k->type == K_GROUPS)
		c->allowed_gids.n = 0;
	else
		hpcn_strv_free(field(c, k));
}

/* Comma-separated, spaces trimmed, empty items skipped (so that a line may
 * end with a comma before a continuation line). */
static int parse_list(struct parse_ctx *p, const struct key *k, const char *v)
{
	_cleanup_free_ char *copy = strdup(v);
	char *save = NULL;

	if (!copy)
		return bad(p, k, "out of memory");
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;

		while (isspace((unsigned char)*tok))
			tok++;
		end = tok + strlen(tok);
		while (end > tok && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!*tok)
			continue;
		if (add_list_item(p, k, tok) < 0)
			return -1;
	}
	return 0;
}

static int parse_value(struct parse_ctx *p, const struct key *k, const char *v)
{
	struct hpcn_config *c = p->c;
	char sb[96];
	int x;

	switch (k->type) {
	case K_PATH:
		return parse_path(p, k, v, field(c, k), k->size, false);
	case K_PATH_OPT:
		if (!*v) {
			*(char *)field(c, k) = '\0';
			return 0;
		}
		return parse_path(p, k, v, field(c, k), k->size, false);
	case K_CGROUP_ROOT:
		if (strcmp(v, "auto") == 0) {
			*(char *)field(c, k) = '\0';
			return 0;
		}
		return parse_path(p, k, v, field(c, k), k->size, false);
	case K_MODE:
		return parse_mode(p, k, v, field(c, k));
	case K_LOG_LEVEL:
		x = hpcn_log_level_from_string(v);
		if (x < LOG_ERR || x > LOG_DEBUG)
			return bad(p, k, "'%s' is not a log level (error, warning, notice, info, "
				   "debug)", shown(v, sb, sizeof(sb)));
		*(int *)field(c, k) = x;
		return 0;
	case K_LOG_TARGET:
		x = hpcn_log_target_from_string(v);
		if (x < 0)
			return bad(p, k, "'%s' is not a log target (auto, stderr, journal)",
				   shown(v, sb, sizeof(sb)));
		*(int *)field(c, k) = x;
		return 0;
	case K_BOOL:
		return parse_bool(p, k, v, field(c, k));
	case K_UINT:
		return parse_uint(p, k, v, field(c, k));
	case K_USERS:
	case K_GROUPS:
	case K_MOUNT_POINTS:
	case K_PREFIXES:
		clear_list(c, k);
		return parse_list(p, k, v);
	}
	return bad(p, k, "internal error: unknown key type");
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *p = user;
	bool continuation = p->raw_len > 0 && (p->raw[0] == ' ' || p->raw[0] == '\t');
	const struct key *k;
	int i;

	if (p->failed)
		return 0;
	if (!*section) {
		failf(p, p->lineno, "key '%s' is outside of any section", name);
		return 0;
	}
	i = key_index(section, name);
	if (i < 0) {
		failf(p, p->lineno, "unknown key '%s' in section [%s]", name, section);
		return 0;
	}
	k = &hpcn_config_keys[i];
	if (continuation) {
		/* inih hands an indented line to the previous key. */
		if (!is_list(k) || p->last_key != i) {
			failf(p, p->lineno, "[%s] %s: indented line continues a value that is not "
			      "a list (remove the leading whitespace)", section, name);
			return 0;
		}
		return parse_list(p, k, value) == 0;
	}
	if (p->key_line[i]) {
		failf(p, p->lineno, "duplicate key '%s' in section [%s] (first set on line %u)",
		      name, section, p->key_line[i]);
		return 0;
	}
	p->key_line[i] = p->lineno;
	p->last_key = i;
	return parse_value(p, k, value) == 0;
}

/* The reader inih pulls lines through (fgets-like). */
static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *p = stream;
	const char *nl, *s;
	size_t len, copy;

	if (p->failed || !*p->pos)
		return NULL;
	nl = strchr(p->pos, '\n');
	len = nl ? (size_t)(nl - p->pos) : strlen(p->pos);
	copy = nl ? len + 1 : len;
	p->lineno++;
	p->raw = p->pos;
	p->raw_len = len;
	if (p->lineno == 1 && len >= 3 && memcmp(p->raw, "\xEF\xBB\xBF", 3) == 0) {
		p->raw += 3;
		p->raw_len -= 3;
	}
	if (num < 2 || copy + 1 > (size_t)num) {
		failf(p, p->lineno, "line longer than %d characters", num - 2);
		return NULL;
	}
	memcpy(str, p->pos, copy);
	str[copy] = '\0';
	p->pos += copy;

	/* Check section headers here: inih says nothing of an empty one. */
	s = p->raw;
	while (s < p->raw + p->raw_len && (*s == ' ' || *s == '\t'))
		s++;
	if (s < p->raw + p->raw_len && *s == '[') {
		const char *close = memchr(s, ']', (size_t)(p->raw + p->raw_len - s));
		char name[64];
		size_t n;

		if (!close)
			return str; /* inih reports the syntax error */
		n = (size_t)(close - s - 1);
		if (n >= sizeof(name)) {
			failf(p, p->lineno, "unknown section [%.*s...]", 32, s + 1);
			return NULL;
		}
		memcpy(name, s + 1, n);
		name[n] = '\0';
		if (!section_known(name)) {
			failf(p, p->lineno, "unknown section [%s]", name);
			return NULL;
		}
		p->last_key = -1;
	}
	return str;
}

/* Checks across keys, after the whole file is read. */
static void validate(struct parse_ctx *p)
{
	struct hpcn_config *c = p->c;
	int i_allowed = key_index("uenv", "allowed_mount_points");
	int i_create = key_index("uenv", "create_mount_points");
	const struct hpcn_strv *allowed = &c->allowed_mount_points;
	const char *owned[2] = { c->uenv_mount_base, c->state_dir };
	const char *owned_key[2] = { "mount_base", "state_dir" };

	for (size_t j = 0; j < c->create_mount_points.n; j++)
		if (!hpcn_strv_contains(allowed, c->create_mount_points.v[j])) {
			failf(p, p->key_line[i_create],
			      "[uenv] create_mount_points: '%s' is not in allowed_mount_points",
			      c->create_mount_points.v[j]);
			return;
		}
	for (size_t j = 0; j < allowed->n; j++)
		for (size_t o = 0; o < HPCN_ARRAY_SIZE(owned); o++)
			if (hpcn_path_has_prefix(allowed->v[j], owned[o]) ||
			    hpcn_path_has_prefix(owned[o], allowed->v[j])) {
				failf(p, p->key_line[i_allowed],
				      "[uenv] allowed_mount_points: '%s' overlaps %s %s",
				      allowed->v[j], owned_key[o], owned[o]);
				return;
			}
}

/* ---- public ---- */

int hpcn_config_load_string(struct hpcn_config *c, const char *text,
			    const char *name_for_messages, struct hpcn_error *err)
{
	_cleanup_free_ struct parse_ctx *p = calloc(1, sizeof(*p));
	int r;

	if (!p || hpcn_config_defaults(c) < 0) {
		if (p)
			memset(c, 0, sizeof(*c));
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, ENOMEM, NULL,
					    "loading configuration");
	}
	p->c = c;
	p->name = name_for_messages ? name_for_messages : "<string>";
	p->pos = text ? text : "";
	p->last_key = -1;
	snprintf(c->config_path, sizeof(c->config_path), "%s", p->name);

	r = ini_parse_stream(reader, p, handler, p);
	/* inih returns its first failing line, which is ours when our handler
	 * refused it; a syntax error it found earlier comes first. */
	if (r > 0 && (!p->failed || (unsigned)r < p->fail_line)) {
		p->failed = false;
		failf(p, (unsigned)r, "syntax error (expected '[section]' or 'key = value')");
	}
	if (!p->failed && r < 0)
		failf(p, 0, "out of memory while parsing");
	if (!p->failed)
		validate(p);
	if (p->failed) {
		hpcn_config_free(c);
		memset(c, 0, sizeof(*c));
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL, "%s", p->msg);
	}
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --uenv: valid and invalid arguments (table-driven, exact messages),
 * repository resolution against a real temporary tree (files, symlinks,
 * directories, FIFOs, missing files, unreadable files), canonical round trip.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "uenv_spec.h"

#define ALLOWED_TXT "(allowed: /user-environment, /user-tools)"

/* snprintf whose truncation the test checks (and the compiler stops guessing). */
static void fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t cap, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, cap, f, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < cap);
}

static struct hpcn_plugargs *new_cfg(const char *repository)
{
	struct hpcn_plugargs *cfg = malloc(sizeof(*cfg));

	assert_non_null(cfg);
	hpcn_plugargs_defaults(cfg);
	snprintf(cfg->repository, sizeof(cfg->repository), "%s", repository);
	return cfg;
}

static struct hpcn_uenv_spec *new_spec(void)
{
	struct hpcn_uenv_spec *s = malloc(sizeof(*s));

	assert_non_null(s);
	return s;
}

/* ---- valid arguments ---- */

struct want_item {
	const char *image, *mount, *name;
	bool from_repository;
};

struct valid_case {
	const char *arg;
	size_t n;
	struct want_item item[4];
};

static const struct valid_case valid_cases[] = {
	{ "/images/app.sqfs", 1,
	  { { "/images/app.sqfs", "/user-environment", "app.sqfs", false } } },
	{ "/images//app.sqfs:/user-tools/", 1,
	  { { "/images/app.sqfs", "/user-tools", "app.sqfs", false } } },
	{ "/./images/./app.sqfs:/user-tools/.", 1,
	  { { "/images/app.sqfs", "/user-tools", "app.sqfs", false } } },
	{ "/a.sqfs,/b.sqfs:/user-tools", 2,
	  { { "/a.sqfs", "/user-environment", "a.sqfs", false },
	    { "/b.sqfs", "/user-tools", "b.sqfs", false } } },
	{ "/b.sqfs:/user-tools,/a.sqfs:/user-environment", 2,   /* same depth: user's order */
	  { { "/b.sqfs", "/user-tools", "b.sqfs", false },
	    { "/a.sqfs", "/user-environment", "a.sqfs", false } } },
	{ "/a.sqfs:/user-environment,/a.sqfs:/user-tools", 2,   /* one image twice */
	  { { "/a.sqfs", "/user-environment", "a.sqfs", false },
	    { "/a.sqfs", "/user-tools", "a.sqfs", false } } },
	{ "prgenv", 1, { { "prgenv", "/user-environment", "prgenv", true } } },
	{ "prgenv/24.7", 1, { { "prgenv/24.7", "/user-environment", "prgenv/24.7", true } } },
	{ "prgenv:v2", 1, { { "prgenv:v2", "/user-environment", "prgenv:v2", true } } },
	{ "prgenv/24.7:v2:/user-tools", 1,
	  { { "prgenv/24.7:v2", "/user-tools", "prgenv/24.7:v2", true } } },
	{ "a+b_c-1.0/x.y:Z_9", 1, { { "a+b_c-1.0/x.y:Z_9", "/user-environment", "a+b_c-1.0/x.y:Z_9", true } } },
	{ "...", 1, { { "...", "/user-environment", "...", true } } },
	{ "prgenv/24.7,/t.sqfs:/user-tools", 2,
	  { { "prgenv/24.7", "/user-environment", "prgenv/24.7", true },
	    { "/t.sqfs", "/user-tools", "t.sqfs", false } } },
};

static void check_spec(const struct hpcn_uenv_spec *s, const struct valid_case *c)
{
	if (s->n != c->n)
		fail_msg("'%s': %zu images, want %zu", c->arg, s->n, c->n);
	for (size_t i = 0; i < c->n; i++) {
		assert_string_equal(s->item[i].image, c->item[i].image);
		assert_string_equal(s->item[i].mount, c->item[i].mount);
		assert_string_equal(s->item[i].name, c->item[i].name);
		assert_int_equal(s->item[i].from_repository, c->item[i].from_repository);
		assert_false(s->item[i].resolved);
	}
}

static void test_valid(void **state)
{
	struct hpcn_plugargs *cfg = new_cfg("/repo");
	struct hpcn_uenv_spec *s = new_spec();
	struct hpcn_error err;

	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		hpcn_error_clear(&err);
		if (hpcn_uenv_spec_parse(valid_cases[i].arg, cfg, s, &err) != 0)
			fail_msg("'%s' refused: %s", valid_cases[i].arg, err.message);
		check_spec(s, &valid_cases[i]);
	}
	free(s);
	free(cfg);
}

static void test_nested_sorted(void **state)
{
	struct hpcn_plugargs *cfg = new_cfg("");
	struct hpcn_uenv_spec *s = new_spec();
	struct hpcn_error err;
	const char *w[] = { "allowed_mounts=/user-environment,/user-environment/sub/deeper,"
			    "/user-environment/sub,/user-tools", "max_images=8", NULL };

	hpcn_plugargs_defaults(cfg);
	assert_int_equal(hpcn_plugargs_parse(2, (char **)w, cfg, &err), 0);
	/* Children first on the command line: parents must come first. */
	assert_int_equal(hpcn_uenv_spec_parse("/c.sqfs:/user-environment/sub/deeper,"
					      "/b.sqfs:/user-environment/sub,/t.sqfs:/user-tools,"
					      "/a.sqfs", cfg, s, &err), 0);
	assert_int_equal(s->n, 4);
	assert_string_equal(s->item[0].mount, "/user-tools");   /* depth 1, given first */
	assert_string_equal(s->item[1].mount, "/user-environment");
	assert_string_equal(s->item[2].mount, "/user-environment/sub");
	assert_string_equal(s->item[3].mount, "/user-environment/sub/deeper");
	assert_string_equal(s->item[1].image, "/a.sqfs");
	assert_string_equal(s->item[3].image, "/c.sqfs");
	free(s);
	free(cfg);
}

/* ---- invalid arguments ---- */

struct invalid_case {
	const char *arg;
	enum hpcn_error_kind kind;
	const char *message; /* exact */
};

static const struct invalid_case invalid_cases[] = {
	{ NULL, HPCN_E_INVALID_ARGUMENT, "--uenv: missing argument" },
	{ "", HPCN_E_INVALID_ARGUMENT, "--uenv: empty argument" },
	{ ",", HPCN_E_INVALID_ARGUMENT, "--uenv: ',': image 1 is empty" },
	{ "/a.sqfs,,/b.sqfs", HPCN_E_INVALID_ARGUMENT, "--uenv: '/a.sqfs,,/b.sqfs': image 2 is empty" },
	{ "/a.sqfs,", HPCN_E_INVALID_ARGUMENT, "--uenv: '/a.sqfs,': image 2 is empty" },
	{ "/x/y.sqfs:/etc", HPCN_E_DENIED,
	  "--uenv: '/x/y.sqfs:/etc': mount point /etc is not allowed " ALLOWED_TXT },
	{ "/x/y.sqfs:/", HPCN_E_DENIED,
	  "--uenv: '/x/y.sqfs:/': mount point / is not allowed " ALLOWED_TXT },
	{ "/x/y.sqfs://.", HPCN_E_DENIED,
	  "--uenv: '/x/y.sqfs://.': mount point / is not allowed " ALLOWED_TXT },
	{ "/x/y.sqfs:/user-environment2", HPCN_E_DENIED,
	  "--uenv: '/x/y.sqfs:/user-environment2': mount point /user-environment2 is not allowed " ALLOWED_TXT },
	{ "/x/y.sqfs:/user-environment/sub", HPCN_E_DENIED,
	  "--uenv: '/x/y.sqfs:/user-environment/sub': mount point /user-environment/sub is not allowed " ALLOWED_TXT },
	{ "/x/y.sqfs:/user-environment/../etc", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: '/x/y.sqfs:/user-environment/../etc': '..' is not allowed in a mount point" },
	{ "/x/../y.sqfs", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: '/x/../y.sqfs': '..' is not allowed in an image path" },
	{ "/a.sqfs,/b.sqfs", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: images '/a.sqfs' and '/b.sqfs' both mount at /user-environment" },
	{ "/a.sqfs:/user-tools,/b.sqfs:/user-tools//", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: images '/a.sqfs' and '/b.sqfs' both mount at /user-tools" },
	{ "/a.sqfs:/user-environment,prgenv", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: images '/a.sqfs' and 'prgenv' both mount at /user-environment" },
	{ "/a,/b,/c,/d,/e", HPCN_E_INVALID_ARGUMENT, "--uenv: too many images (5, at most 4)" },
	{ ":/user-tools", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: ':/user-tools': missing image before the mount point" },
	{ "/a.sqfs:user-tools", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: '/a.sqfs:user-tools': ':' in an image path is not supported (a mount point must be an absolute path)" },
	{ "/a:/b.sqfs:/user-tools", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: '/a:/b.sqfs:/user-tools': ':' in an image path is not supported (a mount point must be an absolute path)" },
	{ "//", HPCN_E_INVALID_ARGUMENT, "--uenv: '//': / is not an image file" },
	{ "prgenv/24.7/x", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: 'prgenv/24.7/x': invalid image name 'prgenv/24.7/x': more than one '/' (expected an absolute path or NAME[/VERSION][:TAG])" },
	{ "prgenv:a:b", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: 'prgenv:a:b': invalid image name 'prgenv:a:b': more than one ':' (expected an absolute path or NAME[/VERSION][:TAG])" },
	{ "prgenv:v1/x", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: 'prgenv:v1/x': invalid image name 'prgenv:v1/x': '/' after the ':' of the TAG (expected an absolute path or NAME[/VERSION][:TAG])" },
	{ "../etc", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: '../etc': invalid image name '../etc': NAME '..' is reserved (expected an absolute path or NAME[/VERSION][:TAG])" },
	{ "prgenv/.", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: 'prgenv/.': invalid image name 'prgenv/.': VERSION '.' is reserved (expected an absolute path or NAME[/VERSION][:TAG])" },
	{ "pr*genv", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: 'pr*genv': invalid image name 'pr*genv': character '*' is not allowed in NAME (expected an absolute path or NAME[/VERSION][:TAG])" },
	{ "pr genv", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: 'pr genv': invalid image name 'pr genv': byte 0x20 is not allowed in NAME (expected an absolute path or NAME[/VERSION][:TAG])" },
	{ "prgenv/", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: 'prgenv/': invalid image name 'prgenv/': empty VERSION (expected an absolute path or NAME[/VERSION][:TAG])" },
	{ "prgenv:", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: 'prgenv:': invalid image name 'prgenv:': empty TAG (expected an absolute path or NAME[/VERSION][:TAG])" },
	{ ":v2", HPCN_E_INVALID_ARGUMENT,
	  "--uenv: ':v2': invalid image name ':v2': empty NAME (expected an absolute path or NAME[/VERSION][:TAG])" },
};

static void test_invalid(void **state)
{
	struct hpcn_plugargs *cfg = new_cfg("/repo");
	struct hpcn_uenv_spec *s = new_spec();
	struct hpcn_error err;

	for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
		const struct invalid_case *c = &invalid_cases[i];

		hpcn_error_clear(&err);
		if (hpcn_uenv_spec_parse(c->arg, cfg, s, &err) != -1)
			fail_msg("'%s' accepted", c->arg);
		assert_int_equal(s->n, 0);   /* nothing half-filled to use by mistake */
		if (err.kind != c->kind || strcmp(err.message, c->message) != 0)
			fail_msg("'%s':\n got  %d '%s'\n want %d '%s'", c->arg ? c->arg : "NULL",
				 err.kind, err.message, c->kind, c->message);
	}
	free(s);
	free(cfg);
}

static void test_no_repository(void **state)
{
	struct hpcn_plugargs *cfg = new_cfg("");
	struct hpcn_uenv_spec *s = new_spec();
	struct hpcn_error err;

	assert_int_equal(hpcn_uenv_spec_parse("prgenv/24.7:/user-tools", cfg, s, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_string_equal(err.message,
			    "--uenv: 'prgenv/24.7:/user-tools': image 'prgenv/24.7' is not an absolute path, and no image repository is configured");
	/* A relative path reads the same way. */
	assert_int_equal(hpcn_uenv_spec_parse("images/app.sqfs", cfg, s, &err), -1);
	assert_string_equal(err.message,
			    "--uenv: 'images/app.sqfs': image 'images/app.sqfs' is not an absolute path, and no image repository is configured");
	free(s);
	free(cfg);
}

static void test_max_images_setting(void **state)
{
	struct hpcn_plugargs *cfg = new_cfg("");
	struct hpcn_uenv_spec *s = new_spec();
	struct hpcn_error err;

	cfg->max_images = 1;
	assert_int_equal(hpcn_uenv_spec_parse("/a.sqfs", cfg, s, &err), 0);
	assert_int_equal(hpcn_uenv_spec_parse("/a.sqfs,/b.sqfs:/user-tools", cfg, s, &err), -1);
	assert_string_equal(err.message, "--uenv: too many images (2, at most 1)");
	cfg->max_images = 2;
	assert_int_equal(hpcn_uenv_spec_parse("/a.sqfs,/b.sqfs:/user-tools", cfg, s, &err), 0);
	/* default_mount is where an image without MOUNT goes */
	snprintf(cfg->default_mount, sizeof(cfg->default_mount), "/user-tools");
	assert_int_equal(hpcn_uenv_spec_parse("/a.sqfs", cfg, s, &err), 0);
	assert_string_equal(s->item[0].mount, "/user-tools");
	free(s);
	free(cfg);
}

static void test_overlong(void **state)
{
	struct hpcn_plugargs *cfg = new_cfg("/repo");
	struct hpcn_uenv_spec *s = new_spec();
	struct hpcn_error err;
	char *arg = malloc(HPCN_UENV_ARG_MAX + 16);

	assert_non_null(arg);
	/* The whole argument. */
	memset(arg, 'a', HPCN_UENV_ARG_MAX);
	arg[0] = '/';
	arg[HPCN_UENV_ARG_MAX] = '\0';
	assert_int_equal(hpcn_uenv_spec_parse(arg, cfg, s, &err), -1);
	assert_string_equal(err.message, "--uenv: argument too long (16384 bytes, at most 16383)");
	/* One item. */
	arg[9000] = '\0';
	assert_int_equal(hpcn_uenv_spec_parse(arg, cfg, s, &err), -1);
	assert_string_equal(err.message, "--uenv: image 1 is longer than 8191 bytes");
	/* An image path. */
	arg[PATH_MAX] = '\0';
	assert_int_equal(hpcn_uenv_spec_parse(arg, cfg, s, &err), -1);
	assert_string_equal(err.message, "--uenv: image path longer than 4095 bytes");
	/* The longest image path that fits. */
	arg[PATH_MAX - 1] = '\0';
	assert_int_equal(hpcn_uenv_spec_parse(arg, cfg, s, &err), 0);
	/* A mount point. */
	strcpy(arg, "/a.sqfs:/");
	memset(arg + 9, 'm', PATH_MAX);
	arg[9 + PATH_MAX] = '\0';
	assert_int_equal(hpcn_uenv_spec_parse(arg, cfg, s, &err), -1);
	assert_string_equal(err.message, "--uenv: mount point longer than 4095 bytes");
	/* A repository name. */
	memset(arg, 'n', 300);
	arg[300] = '\0';
	assert_int_equal(hpcn_uenv_spec_parse(arg, cfg, s, &err), -1);
	assert_non_null(strstr(err.message, ": longer than 255 bytes (expected"));
	free(arg);
	free(s);
	free(cfg);
}

/* ---- repository resolution against a real tree ---- */

struct tree {
	char dir[64];        /* as created */
	char real[PATH_MAX]; /* realpath(dir): what resolution must produce */
	char repo[PATH_MAX];
};

static void mkfile(const char *dir, const char *rel, mode_t mode)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		fail_msg("create %s: %s", p, strerror(errno));
	assert_int_equal(write(fd, "hsqs", 4), 4);
	close(fd);
	assert_int_equal(chmod(p, mode), 0);
}

static void mkdirs(const char *dir, const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (mkdir(p, 0755) < 0)
		fail_msg("mkdir %s: %s", p, strerror(errno));
}

static void mklink(const char *dir, const char *target, const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (symlink(target, p) < 0)
		fail_msg("symlink %s: %s", p, strerror(errno));
}

/*
 * DIR/repo/prgenv/24.7/{latest,v2}.squashfs      files
 * DIR/repo/prgenv/latest -> 24.7                 the usual symlink
 * DIR/repo/prgenv/25.1/latest.squashfs -> ../24.7/v2.squashfs
 * DIR/repo/prgenv/dir/latest.squashfs/           a directory
 * DIR/repo/prgenv/fifo/latest.squashfs           a FIFO
 * DIR/repo/prgenv/dangling/latest.squashfs -> nowhere
 * DIR/repo/prgenv/secret/latest.squashfs         mode 0000
 * DIR/repo/odd/latest -> ../../x,y               a path --uenv cannot carry
 * DIR/x,y/latest.squashfs
 * DIR/img.sqfs, DIR/link.sqfs -> img.sqfs
 */
static int tree_setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/hpcn-uenv-spec.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	assert_int_equal(chmod(t->dir, 0755), 0);   /* the unprivileged check walks it */
	assert_non_null(realpath(t->dir, t->real));
	snprintf(t->repo, sizeof(t->repo), "%s/repo", t->dir);
	mkdirs(t->dir, "repo");
	mkdirs(t->dir, "repo/prgenv");
	mkdirs(t->dir, "repo/prgenv/24.7");
	mkfile(t->dir, "repo/prgenv/24.7/latest.squashfs", 0644);
	mkfile(t->dir, "repo/prgenv/24.7/v2.squashfs", 0644);
	mklink(t->dir, "24.7", "repo/prgenv/latest");
	mkdirs(t->dir, "repo/prgenv/25.1");
	mklink(t->dir, "../24.7/v2.squashfs", "repo/prgenv/25.1/latest.squashfs");
	mkdirs(t->dir, "repo/prgenv/dir");
	mkdirs(t->dir, "repo/prgenv/dir/latest.squashfs");
	mkdirs(t->dir, "repo/prgenv/fifo");
	{
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/repo/prgenv/fifo/latest.squashfs", t->dir);
		assert_int_equal(mkfifo(p, 0644), 0);
	}
	mkdirs(t->dir, "repo/prgenv/dangling");
	mklink(t->dir, "nowhere", "repo/prgenv/dangling/latest.squashfs");
	mkdirs(t->dir, "repo/prgenv/secret");
	mkfile(t->dir, "repo/prgenv/secret/latest.squashfs", 0000);
	mkdirs(t->dir, "repo/odd");
	mkdirs(t->dir, "x,y");
	mkfile(t->dir, "x,y/latest.squashfs", 0644);
	mklink(t->dir, "../../x,y", "repo/odd/latest");
	mkfile(t->dir, "img.sqfs", 0644);
	mklink(t->dir, "img.sqfs", "link.sqfs");
	*state = t;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

static int tree_teardown(void **state)
{
	struct tree *t = *state;

	if (nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "warning: cannot remove %s: %s\n", t->dir, strerror(errno));
	free(t);
	return 0;
}

/* Parse and resolve arg against the tree's repository. */
static int resolve(struct tree *t, const char *arg, struct hpcn_uenv_spec *s,
		   struct hpcn_error *err)
{
	struct hpcn_plugargs *cfg = new_cfg(t->repo);
	int r;

	hpcn_error_clear(err);
	r = hpcn_uenv_spec_parse(arg, cfg, s, err);
	if (r == 0)
		r = hpcn_uenv_spec_resolve(s, cfg, err);
	free(cfg);
	return r;
}

static void expect_resolved(struct tree *t, const char *arg, const char *rel)
{
	struct hpcn_uenv_spec *s = new_spec();
	struct hpcn_error err;
	char want[PATH_MAX];

	if (resolve(t, arg, s, &err) != 0)
		fail_msg("'%s': %s", arg, err.message);
	fmt(want, sizeof(want), "%s/%s", t->real, rel);
	assert_int_equal(s->n, 1);
	assert_true(s->item[0].resolved);
	if (strcmp(s->item[0].image, want))
		fail_msg("'%s' resolved to %s, want %s", arg, s->item[0].image, want);
	free(s);
}

/* want with "@D" replaced by the tree's directory and "@R" by its real path. */
static void expand(char *out, size_t cap, const char *want, const struct tree *t)
{
	size_t o = 0;

	for (const char *p = want; *p; p++) {
		const char *sub = NULL;

		if (p[0] == '@' && p[1] == 'D')
			sub = t->dir;
		else if (p[0] == '@' && p[1] == 'R')
			sub = t->real;
		if (sub) {
			assert_true(o + strlen(sub) < cap);
			memcpy(out + o, sub, strlen(sub));
			o += strlen(sub);
			p++;
			continue;
		}
		assert_true(o + 1 < cap);
		out[o++] = *p;
	}
	out[o] = '\0';
}

static void expect_unresolved(struct tree *t, const char *arg, enum hpcn_error_kind kind,
			      const char *message /* see expand() */)
{
	struct hpcn_uenv_spec *s = new_spec();
	struct hpcn_error err;
	char want[HPCN_ERROR_MESSAGE_MAX];

	expand(want, sizeof(want), message, t);
	if (resolve(t, arg, s, &err) != -1)
		fail_msg("'%s' resolved to %s", arg, s->item[0].image);
	if (err.kind != kind || strcmp(err.message, want))
		fail_msg("'%s':\n got  %d '%s'\n want %d '%s'", arg, err.kind, err.message,
			 kind, want);
	free(s);
}

static void test_resolve_repository(void **state)
{
	struct tree *t = *state;

	expect_resolved(t, "prgenv", "repo/prgenv/24.7/latest.squashfs");
	expect_resolved(t, "prgenv/24.7", "repo/prgenv/24.7/latest.squashfs");
	expect_resolved(t, "prgenv/24.7:v2", "repo/prgenv/24.7/v2.squashfs");
	expect_resolved(t, "prgenv:v2", "repo/prgenv/24.7/v2.squashfs");
	expect_resolved(t, "prgenv/25.1:/user-tools", "repo/prgenv/24.7/v2.squashfs");

	expect_unresolved(t, "prgenv/24.8", HPCN_E_NOT_FOUND,
			  "--uenv: image 'prgenv/24.8' not found in repository @D/repo (looked for @D/repo/prgenv/24.8/latest.squashfs)");
	expect_unresolved(t, "prgenv/24.7:v3", HPCN_E_NOT_FOUND,
			  "--uenv: image 'prgenv/24.7:v3' not found in repository @D/repo (looked for @D/repo/prgenv/24.7/v3.squashfs)");
	expect_unresolved(t, "nothere", HPCN_E_NOT_FOUND,
			  "--uenv: image 'nothere' not found in repository @D/repo (looked for @D/repo/nothere/latest/latest.squashfs)");
	expect_unresolved(t, "prgenv/dangling", HPCN_E_NOT_FOUND,
			  "--uenv: image 'prgenv/dangling' not found in repository @D/repo (looked for @D/repo/prgenv/dangling/latest.squashfs)");
	expect_unresolved(t, "prgenv/dir", HPCN_E_INVALID_ARGUMENT,
			  "--uenv: image 'prgenv/dir': @R/repo/prgenv/dir/latest.squashfs is not a regular file");
	/* Must not block on the FIFO. */
	expect_unresolved(t, "prgenv/fifo", HPCN_E_INVALID_ARGUMENT,
			  "--uenv: image 'prgenv/fifo': @R/repo/prgenv/fifo/latest.squashfs is not a regular file");
	expect_unresolved(t, "odd", HPCN_E_INVALID_ARGUMENT,
			  "--uenv: image 'odd': its path @R/x,y/latest.squashfs contains ',' or ':', which --uenv cannot carry");
}

static void test_resolve_absolute(void **state)
{
	struct tree *t = *state;
	char arg[PATH_MAX];
	struct hpcn_uenv_spec *s = new_spec();
	struct hpcn_error err;

	/* A symlink is replaced by its target; the display name stays. */
	snprintf(arg, sizeof(arg), "%s//link.sqfs:/user-tools", t->dir);
	expect_resolved(t, arg, "img.sqfs");
	assert_int_equal(resolve(t, arg, s, &err), 0);
	assert_string_equal(s->item[0].name, "link.sqfs");
	assert_string_equal(s->item[0].mount, "/user-tools");
	assert_false(s->item[0].from_repository);

	snprintf(arg, sizeof(arg), "%s/missing.sqfs", t->dir);
	expect_unresolved(t, arg, HPCN_E_NOT_FOUND, "--uenv: image @D/missing.sqfs not found");
	snprintf(arg, sizeof(arg), "%s/img.sqfs/x", t->dir);
	expect_unresolved(t, arg, HPCN_E_NOT_FOUND, "--uenv: image @D/img.sqfs/x not found");
	snprintf(arg, sizeof(arg), "%s/repo", t->dir);
	expect_unresolved(t, arg, HPCN_E_INVALID_ARGUMENT,
			  "--uenv: image 'repo': @R/repo is not a regular file");
	free(s);
}

static void test_resolve_idempotent(void **state)
{
	struct tree *t = *state;
	struct hpcn_plugargs *cfg = new_cfg(t->repo);
	struct hpcn_uenv_spec *s = new_spec(), *again = new_spec();
	struct hpcn_error err;

	assert_int_equal(resolve(t, "prgenv:v2,prgenv/24.7:/user-tools", s, &err), 0);
	*again = *s;
	assert_int_equal(hpcn_uenv_spec_resolve(again, cfg, &err), 0);
	assert_int_equal(memcmp(again, s, sizeof(*s)), 0);
	free(again);
	free(s);
	free(cfg);
}

/* The image is opened as the caller: an unreadable one is reported in srun
 * rather than by the helper. As root, check it as nobody in a child. */
static void test_resolve_unreadable(void **state)
{
	struct tree *t = *state;
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct hpcn_uenv_spec *s = malloc(sizeof(*s));
		struct hpcn_error err;
		char want[HPCN_ERROR_MESSAGE_MAX];

		if (geteuid() == 0 && (setgroups(0, NULL) < 0 ||
				       setresgid(65534, 65534, 65534) < 0 ||
				       setresuid(65534, 65534, 65534) < 0))
			_exit(10);
		fmt(want, sizeof(want),
			 "--uenv: image 'prgenv/secret': cannot read %s/repo/prgenv/secret/latest.squashfs: Permission denied",
			 t->real);
		if (!s || resolve(t, "prgenv/secret", s, &err) != -1)
			_exit(11);
		if (err.kind != HPCN_E_DENIED || strcmp(err.message, want)) {
			fprintf(stderr, "got %d '%s'\nwant '%s'\n", err.kind, err.message, want);
			_exit(12);
		}
		/* Readable ones still resolve as that user. */
		if (resolve(t, "prgenv", s, &err) != 0) {
			fprintf(stderr, "%s\n", err.message);
			_exit(13);
		}
		free(s);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("child failed with %d (10: cannot drop privileges)", WEXITSTATUS(status));
}

/* ---- canonical form ---- */

static void roundtrip(const struct hpcn_uenv_spec *s, const struct hpcn_plugargs *cfg)
{
	struct hpcn_uenv_spec *back = new_spec();
	struct hpcn_error err;
	char buf[HPCN_UENV_ARG_MAX];
	int n = hpcn_uenv_spec_to_string(s, buf, sizeof(buf));

	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	if (hpcn_uenv_spec_parse(buf, cfg, back, &err) != 0)
		fail_msg("'%s' does not parse back: %s", buf, err.message);
	assert_int_equal(back->n, s->n);
	for (size_t i = 0; i < s->n; i++) {
		assert_string_equal(back->item[i].image, s->item[i].image);
		assert_string_equal(back->item[i].mount, s->item[i].mount);
	}
	free(back);
}

static void test_to_string(void **state)
{
	struct tree *t = *state;
	struct hpcn_plugargs *cfg = new_cfg(t->repo);
	struct hpcn_uenv_spec *s = new_spec();
	struct hpcn_error err;
	const char *w[] = { "allowed_mounts=/user-environment,/user-environment/sub,/user-tools",
			    NULL };
	char buf[HPCN_UENV_ARG_MAX], want[2 * PATH_MAX];

	assert_int_equal(hpcn_plugargs_parse(1, (char **)w, cfg, &err), 0);

	assert_int_equal(hpcn_uenv_spec_parse("/b.sqfs:/user-environment/sub,/a.sqfs,/c.sqfs:/user-tools/",
					      cfg, s, &err), 0);
	assert_int_equal(hpcn_uenv_spec_to_string(s, buf, sizeof(buf)),
			 (int)strlen("/a.sqfs:/user-environment,/c.sqfs:/user-tools,"
				     "/b.sqfs:/user-environment/sub"));
	assert_string_equal(buf,
			    "/a.sqfs:/user-environment,/c.sqfs:/user-tools,/b.sqfs:/user-environment/sub");
	roundtrip(s, cfg);

	/* Unresolved names keep their spelling, tags included. */
	assert_int_equal(hpcn_uenv_spec_parse("prgenv/24.7:v2,prgenv:/user-tools", cfg, s, &err), 0);
	hpcn_uenv_spec_to_string(s, buf, sizeof(buf));
	assert_string_equal(buf, "prgenv/24.7:v2:/user-environment,prgenv:/user-tools");
	roundtrip(s, cfg);

	/* Resolved: absolute paths travel. */
	assert_int_equal(hpcn_uenv_spec_resolve(s, cfg, &err), 0);
	hpcn_uenv_spec_to_string(s, buf, sizeof(buf));
	fmt(want, sizeof(want),
		 "%s/repo/prgenv/24.7/v2.squashfs:/user-environment,%s/repo/prgenv/24.7/latest.squashfs:/user-tools",
		 t->real, t->real);
	assert_string_equal(buf, want);
	roundtrip(s, cfg);

	/* Too small a buffer. */
	errno = 0;
	assert_int_equal(hpcn_uenv_spec_to_string(s, buf, 10), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_string_equal(buf, "");
	assert_int_equal(hpcn_uenv_spec_to_string(s, buf, 0), -1);
	/* Exactly fitting. */
	assert_int_equal(hpcn_uenv_spec_to_string(s, buf, strlen(want) + 1), (int)strlen(want));
	assert_int_equal(hpcn_uenv_spec_to_string(s, buf, strlen(want)), -1);
	free(s);
	free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_nested_sorted),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_no_repository),
		cmocka_unit_test(test_max_images_setting),
		cmocka_unit_test(test_overlong),
		cmocka_unit_test_setup_teardown(test_resolve_repository, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_resolve_absolute, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_resolve_idempotent, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_resolve_unreadable, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_to_string, tree_setup, tree_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

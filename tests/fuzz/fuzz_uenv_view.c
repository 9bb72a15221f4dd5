/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The option parsers of the SPANK plugin, fed with what a user types:
 * --uenv (with the default plugstack.conf arguments, and with a repository,
 * nested allowed mounts and more images configured), --view, and, split at
 * spaces, the plugstack.conf arguments themselves. Properties checked, from
 * uenv_spec.h, view.h and plugargs.h:
 *  - an accepted --uenv has 1..max_images items, absolute normalised allowed
 *    mount points, none twice, parents before children; repository names
 *    only when a repository is configured; images without ':' otherwise;
 *  - its canonical string parses back to the same items, and is a fixpoint;
 *  - an accepted --view has 1..HPCN_MAX_VIEWS distinct items of allowed
 *    characters, and prints back to a string that parses to the same list;
 *  - every refusal is an error with a message.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "plugargs.h"
#include "uenv_spec.h"
#include "view.h"

static struct hpcn_plugargs cfg_default, cfg_repo;
static bool cfg_ready;

static void cfg_init(void)
{
	static char a0[] = "repository=/capstor/images";
	static char a1[] = "allowed_mounts=/user-environment,/user-tools,"
			   "/user-environment/extra,/opt/a/b";
	static char a2[] = "max_images=8";
	char *argv[] = { a0, a1, a2 };
	struct hpcn_error err;

	if (cfg_ready)
		return;
	hpcn_plugargs_defaults(&cfg_default);
	hpcn_plugargs_defaults(&cfg_repo);
	hpcn_error_clear(&err);
	FUZZ_CHECK(hpcn_plugargs_parse(3, argv, &cfg_repo, &err) == 0,
		   "the fuzzer's plugstack.conf arguments are refused: %s", err.message);
	cfg_ready = true;
}

static bool normalised_mount(const char *m)
{
	size_t len = strlen(m);

	return m[0] == '/' && len > 1 && m[len - 1] != '/' && !strstr(m, "//") &&
	       !strstr(m, "/./") && !strstr(m, "/../") &&
	       strcmp(m + len - 2, "/.") != 0 && (len < 3 || strcmp(m + len - 3, "/..") != 0);
}

static size_t depth(const char *m)
{
	size_t d = 0;

	for (; *m; m++)
		d += *m == '/';
	return d;
}

static void check_spec(const char *arg, const struct hpcn_uenv_spec *s,
		       const struct hpcn_plugargs *cfg)
{
	FUZZ_CHECK(s->n >= 1 && s->n <= cfg->max_images, "'%s': %zu images", arg, s->n);
	for (size_t i = 0; i < s->n; i++) {
		const struct hpcn_uenv_item *it = &s->item[i];

		FUZZ_CHECK(normalised_mount(it->mount) && hpcn_plugargs_mount_allowed(cfg, it->mount),
			   "'%s': item %zu has mount point '%s'", arg, i, it->mount);
		FUZZ_CHECK(!it->resolved, "'%s': parsing resolved item %zu", arg, i);
		if (it->from_repository)
			FUZZ_CHECK(cfg->repository[0] && it->image[0] != '/',
				   "'%s': repository name '%s'", arg, it->image);
		else
			FUZZ_CHECK(it->image[0] == '/' && !strchr(it->image, ':') &&
				   !strstr(it->image, "//"), "'%s': image '%s'", arg, it->image);
		for (size_t j = 0; j < i; j++) {
			FUZZ_CHECK(strcmp(s->item[j].mount, it->mount) != 0,
				   "'%s': mount point %s twice", arg, it->mount);
			FUZZ_CHECK(depth(s->item[j].mount) <= depth(it->mount),
				   "'%s': %s mounted before its parent %s", arg,
				   s->item[j].mount, it->mount);
		}
	}
}

static void uenv(const char *arg, const struct hpcn_plugargs *cfg)
{
	static struct hpcn_uenv_spec s, s2;  /* ~100 KiB each: not on the stack */
	static char canon[HPCN_UENV_ARG_MAX], canon2[HPCN_UENV_ARG_MAX];
	struct hpcn_error err;
	int len, len2;

	hpcn_error_clear(&err);
	if (hpcn_uenv_spec_parse(arg, cfg, &s, &err) < 0) {
		FUZZ_CHECK(err.kind != HPCN_E_NONE && err.message[0], "'%s': refused silently",
			   arg);
		return;
	}
	check_spec(arg, &s, cfg);
	len = hpcn_uenv_spec_to_string(&s, canon, sizeof(canon));
	if (len < 0) {
		FUZZ_CHECK(errno == ENAMETOOLONG, "'%s': to_string: %s", arg, strerror(errno));
		return;
	}
	FUZZ_CHECK((size_t)len == strlen(canon), "'%s': to_string length %d", arg, len);
	hpcn_error_clear(&err);
	FUZZ_CHECK(hpcn_uenv_spec_parse(canon, cfg, &s2, &err) == 0,
		   "'%s': its canonical form '%s' is refused: %s", arg, canon, err.message);
	FUZZ_CHECK(s2.n == s.n, "'%s' -> '%s': %zu items, then %zu", arg, canon, s.n, s2.n);
	for (size_t i = 0; i < s.n; i++)
		FUZZ_CHECK(strcmp(s.item[i].image, s2.item[i].image) == 0 &&
			   strcmp(s.item[i].mount, s2.item[i].mount) == 0 &&
			   s.item[i].from_repository == s2.item[i].from_repository,
			   "'%s' -> '%s': item %zu was %s:%s, is %s:%s", arg, canon, i,
			   s.item[i].image, s.item[i].mount, s2.item[i].image, s2.item[i].mount);
	len2 = hpcn_uenv_spec_to_string(&s2, canon2, sizeof(canon2));
	FUZZ_CHECK(len2 == len && strcmp(canon, canon2) == 0,
		   "canonical form is not a fixpoint: '%s' -> '%s'", canon, canon2);
}

static bool view_name_ok(const char *s)
{
	if (!*s || strlen(s) >= HPCN_VIEW_NAME_MAX)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-") ==
	       strlen(s);
}

static void view(const char *arg)
{
	static struct hpcn_view_list l, l2;
	static char text[HPCN_MAX_VIEWS * 2 * HPCN_VIEW_NAME_MAX + HPCN_MAX_VIEWS];
	struct hpcn_error err;
	size_t o = 0;

	hpcn_error_clear(&err);
	if (hpcn_view_parse_arg(arg, &l, &err) < 0) {
		FUZZ_CHECK(err.kind == HPCN_E_INVALID_ARGUMENT && err.message[0],
			   "'%s': refused with kind %d: %s", arg, (int)err.kind, err.message);
		return;
	}
	FUZZ_CHECK(l.n >= 1 && l.n <= HPCN_MAX_VIEWS, "'%s': %zu views", arg, l.n);
	for (size_t i = 0; i < l.n; i++) {
		const struct hpcn_view_ref *r = &l.item[i];

		FUZZ_CHECK(view_name_ok(r->view) && (!r->image[0] || view_name_ok(r->image)),
			   "'%s': view %zu is '%s':'%s'", arg, i, r->image, r->view);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(l.item[j].image, r->image) || strcmp(l.item[j].view, r->view),
				   "'%s': view %s given twice", arg, r->view);
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s%s%s", i ? "," : "",
				      r->image, r->image[0] ? ":" : "", r->view);
	}
	hpcn_error_clear(&err);
	FUZZ_CHECK(hpcn_view_parse_arg(text, &l2, &err) == 0 && l2.n == l.n,
		   "'%s' printed as '%s' does not parse back: %s", arg, text, err.message);
	for (size_t i = 0; i < l.n; i++)
		FUZZ_CHECK(strcmp(l.item[i].image, l2.item[i].image) == 0 &&
			   strcmp(l.item[i].view, l2.item[i].view) == 0,
			   "'%s' -> '%s': view %zu changed", arg, text, i);
}

/* plugstack.conf arguments: the words of the input. */
static void plugargs(char *line)
{
	static struct hpcn_plugargs cfg;
	char *argv[32], *save = NULL;
	int argc = 0;
	struct hpcn_error err;

	for (char *w = strtok_r(line, " \t\n", &save); w && argc < 32;
	     w = strtok_r(NULL, " \t\n", &save))
		argv[argc++] = w;
	hpcn_plugargs_defaults(&cfg);
	hpcn_error_clear(&err);
	if (hpcn_plugargs_parse(argc, argv, &cfg, &err) < 0) {
		FUZZ_CHECK(err.message[0], "plugstack.conf arguments refused silently");
		return;
	}
	FUZZ_CHECK(cfg.n_namespaces >= 1 && cfg.namespaces[0] == HPCN_NS_MOUNT,
		   "namespaces do not start with mount");
	FUZZ_CHECK(cfg.max_images >= 1 && cfg.max_images <= HPCN_MAX_MOUNTS, "max_images %zu",
		   cfg.max_images);
	FUZZ_CHECK(cfg.n_allowed_mounts <= HPCN_SPANK_MAX_ALLOWED_MOUNTS &&
		   hpcn_plugargs_mount_allowed(&cfg, cfg.default_mount),
		   "default_mount %s is not allowed", cfg.default_mount);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *arg = fuzz_cstr(data, size);

	cfg_init();
	uenv(arg, &cfg_default);
	uenv(arg, &cfg_repo);
	view(arg);
	plugargs(arg);  /* last: it cuts arg into words */
	free(arg);
	return 0;
}

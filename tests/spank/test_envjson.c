/* SPDX-License-Identifier: Apache-2.0 */
/*
 * meta/env.json: loading valid and broken files from a real temporary
 * directory (not JSON, wrong types, missing views, view without env, unknown
 * op, huge file, FIFO, symlink), and an image's env.json beneath its mount.
 * Applying the views is test_view.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "envjson.h"

/* ---- env.json files ---- */

struct dir {
	char path[64];
	int n;   /* files written, for unique names */
};

static int dir_setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	snprintf(d->path, sizeof(d->path), "/tmp/hpcn-envjson.XXXXXX");
	assert_non_null(mkdtemp(d->path));
	*state = d;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

static int dir_teardown(void **state)
{
	struct dir *d = *state;

	if (nftw(d->path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "warning: cannot remove %s: %s\n", d->path, strerror(errno));
	free(d);
	return 0;
}

/* Write text to a new file of d; returns its path (static buffer per call site). */
static const char *put(struct dir *d, const char *text, size_t len, char *path, size_t cap)
{
	int fd;

	snprintf(path, cap, "%s/f%d.json", d->path, d->n++);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

static struct hpcn_envjson *load_text(struct dir *d, const char *text)
{
	struct hpcn_envjson *e = NULL;
	struct hpcn_error err;
	char path[128];

	put(d, text, strlen(text), path, sizeof(path));
	if (hpcn_envjson_load(path, &e, &err) != 0)
		fail_msg("%s", err.message);
	assert_non_null(e);
	assert_string_equal(e->path, path);
	return e;
}

/* Loading fails with exactly "PATH: message"; a message ending in '*' is a
 * prefix (jansson's own words and columns vary between its versions). */
static void load_fails(struct dir *d, const char *text, size_t len, const char *message)
{
	struct hpcn_envjson *e = (struct hpcn_envjson *)1;
	struct hpcn_error err;
	char path[128], want[HPCN_ERROR_MESSAGE_MAX];

	put(d, text, len, path, sizeof(path));
	hpcn_error_clear(&err);
	assert_int_equal(hpcn_envjson_load(path, &e, &err), -1);
	assert_null(e);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	snprintf(want, sizeof(want), "%s: %s", path, message);
	if (want[strlen(want) - 1] == '*') {
		want[strlen(want) - 1] = '\0';
		if (strncmp(err.message, want, strlen(want)))
			fail_msg("\n got  '%s'\n want '%s...'", err.message, want);
		assert_non_null(strstr(err.message, " (line 1, column "));
		return;
	}
	if (strcmp(err.message, want))
		fail_msg("\n got  '%s'\n want '%s'", err.message, want);
}

/* An image with every kind of view; test_view.c applies the same one. */
#define APP_JSON \
	"{ \"name\": \"app\", \"description\": \"an app\", \"mount\": \"/user-environment\",\n" \
	"  \"views\": {\n" \
	"    \"default\": { \"description\": \"the default\", \"root\": \"/user-environment/env/app\",\n" \
	"      \"env\": { \"version\": 1, \"type\": \"spack-view\", \"values\": {\n" \
	"        \"list\": {\n" \
	"          \"PATH\": [ { \"op\": \"prepend\", \"value\": [\"/ue/bin\", \"\", \"/ue/sbin\"] } ],\n" \
	"          \"MANPATH\": [ { \"op\": \"append\", \"value\": [\"/ue/man\"] } ],\n" \
	"          \"PKG_CONFIG_PATH\": [ { \"op\": \"set\", \"value\": [\"/ue/pc\"] },\n" \
	"                                 { \"op\": \"append\", \"value\": [\"/ue/pc2\"] } ],\n" \
	"          \"OLD\": [ { \"op\": \"unset\" } ] },\n" \
	"        \"scalar\": { \"CC\": \"gcc\", \"CXX\": null } } } },\n" \
	"    \"modules\": { \"env\": { \"version\": 1, \"type\": \"augment\", \"values\": {\n" \
	"        \"list\": { \"MODULEPATH\": [ { \"op\": \"prepend\", \"value\": [\"/ue/modules\"] } ] } } } },\n" \
	"    \"activate-only\": { \"description\": \"old image\", \"activate\": \"/ue/activate.sh\" },\n" \
	"    \"future\": { \"env\": { \"version\": 1, \"values\": {\n" \
	"        \"list\": { \"PATH\": [ { \"op\": \"frobnicate\", \"value\": [\"/x\"] } ] } } } }\n" \
	"  } }\n"

static void test_load_valid(void **state)
{
	struct hpcn_envjson *e = load_text(*state, APP_JSON);
	const struct hpcn_envjson_view *v;

	assert_string_equal(e->name, "app");
	assert_string_equal(e->description, "an app");
	assert_string_equal(e->mount, "/user-environment");
	assert_int_equal(e->n_views, 4);
	/* file order */
	assert_string_equal(e->views[0].name, "default");
	assert_string_equal(e->views[1].name, "modules");
	assert_string_equal(e->views[2].name, "activate-only");
	assert_string_equal(e->views[3].name, "future");

	v = &e->views[0];
	assert_null(v->problem);
	assert_string_equal(v->description, "the default");
	assert_string_equal(v->root, "/user-environment/env/app");
	assert_string_equal(v->type, "spack-view");
	assert_int_equal(v->n_changes, 7);
	assert_string_equal(v->changes[0].var, "PATH");
	assert_int_equal(v->changes[0].op, HPCN_ENV_PREPEND);
	assert_string_equal(v->changes[0].value, "/ue/bin:/ue/sbin");  /* "" dropped */
	assert_string_equal(v->changes[1].var, "MANPATH");
	assert_int_equal(v->changes[1].op, HPCN_ENV_APPEND);
	assert_int_equal(v->changes[2].op, HPCN_ENV_SET);
	assert_string_equal(v->changes[2].value, "/ue/pc");
	assert_int_equal(v->changes[3].op, HPCN_ENV_APPEND);
	assert_string_equal(v->changes[4].var, "OLD");
	assert_int_equal(v->changes[4].op, HPCN_ENV_UNSET);
	assert_null(v->changes[4].value);
	assert_string_equal(v->changes[5].var, "CC");
	assert_int_equal(v->changes[5].op, HPCN_ENV_SET);
	assert_string_equal(v->changes[5].value, "gcc");
	assert_string_equal(v->changes[6].var, "CXX");
	assert_int_equal(v->changes[6].op, HPCN_ENV_UNSET);

	assert_null(e->views[1].problem);
	assert_string_equal(e->views[1].type, "augment");
	/* Problems are kept per view, the rest of the image stays usable. */
	assert_string_equal(e->views[2].problem,
			    "views.activate-only has no \"env\" (an old image with an activation script only)");
	assert_int_equal(e->views[2].n_changes, 0);
	assert_string_equal(e->views[3].problem,
			    "views.future.env.values.list.PATH[0].op: unknown op 'frobnicate' (known: prepend, append, set, unset)");
	hpcn_envjson_free(e);

	/* The minimum: no name, no mount, no views at all. */
	e = load_text(*state, "{\"views\": {}}");
	assert_null(e->name);
	assert_null(e->mount);
	assert_int_equal(e->n_views, 0);
	hpcn_envjson_free(e);
}

static void test_load_broken(void **state)
{
	struct dir *d = *state;

	load_fails(d, "", sizeof("") - 1, "not valid JSON: *");
	load_fails(d, "{\"views\": {}", sizeof("{\"views\": {}") - 1,
		   "not valid JSON: *");
	load_fails(d, "#!/bin/sh\n", sizeof("#!/bin/sh\n") - 1,
		   "not valid JSON: *");
	load_fails(d, "[1, 2]", sizeof("[1, 2]") - 1, "the top level is not a JSON object");
	load_fails(d, "{\"name\": 3, \"views\": {}}", sizeof("{\"name\": 3, \"views\": {}}") - 1, "name: expected a string");
	load_fails(d, "{\"mount\": [], \"views\": {}}", sizeof("{\"mount\": [], \"views\": {}}") - 1, "mount: expected a string");
	load_fails(d, "{\"description\": true, \"views\": {}}", sizeof("{\"description\": true, \"views\": {}}") - 1,
		   "description: expected a string");
	load_fails(d, "{\"name\": \"app\"}", sizeof("{\"name\": \"app\"}") - 1, "views: missing");
	load_fails(d, "{\"views\": [\"default\"]}", sizeof("{\"views\": [\"default\"]}") - 1, "views: expected an object");
	load_fails(d, "{\"views\": {}, \"views\": {}}", sizeof("{\"views\": {}, \"views\": {}}") - 1,
		   "not valid JSON: duplicate object key*");
	/* A NUL in the middle is not JSON either. */
	load_fails(d, "{\"views\": {}}\0{", sizeof("{\"views\": {}}\0{") - 1,
		   "not valid JSON: *");
}

struct problem_case {
	const char *view_json;   /* the value of views.v */
	const char *problem;
};

static const struct problem_case problem_cases[] = {
	{ "3", "views.v: expected an object" },
	{ "{}", "views.v has no \"env\" (an old image with an activation script only)" },
	{ "{\"env\": null}", "views.v has no \"env\" (an old image with an activation script only)" },
	{ "{\"env\": []}", "views.v.env: expected an object" },
	{ "{\"description\": 1, \"env\": {}}", "views.v.description: expected a string" },
	{ "{\"root\": {}, \"env\": {}}", "views.v.root: expected a string" },
	{ "{\"env\": {\"version\": 2}}",
	  "views.v.env.version: unsupported version 2 (this plugin reads version 1)" },
	{ "{\"env\": {\"version\": \"1\"}}", "views.v.env.version: expected the number 1" },
	{ "{\"env\": {\"type\": 7}}", "views.v.env.type: expected a string" },
	{ "{\"env\": {\"values\": []}}", "views.v.env.values: expected an object" },
	{ "{\"env\": {\"values\": {\"list\": 1}}}", "views.v.env.values.list: expected an object" },
	{ "{\"env\": {\"values\": {\"scalar\": []}}}",
	  "views.v.env.values.scalar: expected an object" },
	{ "{\"env\": {\"values\": {\"list\": {\"PATH\": {\"op\": \"set\"}}}}}",
	  "views.v.env.values.list.PATH: expected an array of {\"op\", \"value\"}" },
	{ "{\"env\": {\"values\": {\"list\": {\"PATH\": [\"/bin\"]}}}}",
	  "views.v.env.values.list.PATH[0]: expected an object {\"op\", \"value\"}" },
	{ "{\"env\": {\"values\": {\"list\": {\"PATH\": [{\"value\": [\"/bin\"]}]}}}}",
	  "views.v.env.values.list.PATH[0].op: missing, or not a string" },
	{ "{\"env\": {\"values\": {\"list\": {\"PATH\": [{\"op\": 1, \"value\": []}]}}}}",
	  "views.v.env.values.list.PATH[0].op: missing, or not a string" },
	{ "{\"env\": {\"values\": {\"list\": {\"PATH\": [{\"op\": \"set\", \"value\": []},"
	  " {\"op\": \"remove\", \"value\": [\"/x\"]}]}}}}",
	  "views.v.env.values.list.PATH[1].op: unknown op 'remove' (known: prepend, append, set, unset)" },
	{ "{\"env\": {\"values\": {\"list\": {\"PATH\": [{\"op\": \"prepend\"}]}}}}",
	  "views.v.env.values.list.PATH[0].value: expected an array of strings" },
	{ "{\"env\": {\"values\": {\"list\": {\"PATH\": [{\"op\": \"prepend\", \"value\": \"/bin\"}]}}}}",
	  "views.v.env.values.list.PATH[0].value: expected an array of strings" },
	{ "{\"env\": {\"values\": {\"list\": {\"PATH\": [{\"op\": \"append\", \"value\": [\"/a\", 2]}]}}}}",
	  "views.v.env.values.list.PATH[0].value[1]: expected a string" },
	{ "{\"env\": {\"values\": {\"list\": {\"A-B\": []}}}}",
	  "views.v.env.values.list.A-B: invalid variable name" },
	{ "{\"env\": {\"values\": {\"list\": {\"\": []}}}}",
	  "views.v.env.values.list.: invalid variable name" },
	{ "{\"env\": {\"values\": {\"scalar\": {\"X=Y\": \"1\"}}}}",
	  "views.v.env.values.scalar.X=Y: invalid variable name" },
	{ "{\"env\": {\"values\": {\"scalar\": {\"N\": 1}}}}",
	  "views.v.env.values.scalar.N: expected a string or null" },
	{ "{\"env\": {\"values\": {\"scalar\": {\"N\": [\"a\"]}}}}",
	  "views.v.env.values.scalar.N: expected a string or null" },
};

static void test_view_problems(void **state)
{
	struct dir *d = *state;

	for (size_t i = 0; i < sizeof(problem_cases) / sizeof(problem_cases[0]); i++) {
		char text[1024];
		struct hpcn_envjson *e;

		/* A good view beside the bad one: it must stay usable. */
		snprintf(text, sizeof(text),
			 "{\"name\": \"img\", \"views\": {\"v\": %s, \"ok\": {\"env\": {\"values\": "
			 "{\"scalar\": {\"OK\": \"1\"}}}}}}", problem_cases[i].view_json);
		e = load_text(d, text);
		assert_int_equal(e->n_views, 2);
		if (!e->views[0].problem || strcmp(e->views[0].problem, problem_cases[i].problem))
			fail_msg("case %zu:\n got  '%s'\n want '%s'", i,
				 e->views[0].problem ? e->views[0].problem : "(none)",
				 problem_cases[i].problem);
		assert_int_equal(e->views[0].n_changes, 0);
		assert_null(e->views[1].problem);
		assert_int_equal(e->views[1].n_changes, 1);
		hpcn_envjson_free(e);
	}
}

/* An image's env.json as the plugin reads it (as root): beneath the mount,
 * no symlink on the way (meta/ included). */
static void test_load_image(void **state)
{
	struct dir *d = *state;
	struct hpcn_envjson *e = NULL;
	struct hpcn_error err;
	char img[128], p[256], want[320];
	static const char good[] = "{\"views\": {}}";
	int fd;

	snprintf(img, sizeof(img), "%s/img", d->path);
	assert_int_equal(mkdir(img, 0755), 0);
	/* No metadata: no views, no error. */
	assert_int_equal(hpcn_envjson_load_image(img, &e, &err), 1);
	assert_null(e);
	snprintf(p, sizeof(p), "%s/meta", img);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/meta/env.json", img);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, good, sizeof(good) - 1), (ssize_t)sizeof(good) - 1);
	close(fd);
	if (hpcn_envjson_load_image(img, &e, &err) != 0)
		fail_msg("%s", err.message);
	hpcn_envjson_free(e);

	/* meta a symlink to a directory elsewhere holding an env.json. */
	snprintf(p, sizeof(p), "%s/img2", d->path);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/img2/meta", d->path);
	snprintf(want, sizeof(want), "%s/img/meta", d->path);
	assert_int_equal(symlink(want, p), 0);
	snprintf(p, sizeof(p), "%s/img2", d->path);
	assert_int_equal(hpcn_envjson_load_image(p, &e, &err), -1);
	assert_null(e);
	snprintf(want, sizeof(want), "%s/img2/meta/env.json: is a symbolic link", d->path);
	assert_string_equal(err.message, want);

	/* env.json itself a symlink. */
	snprintf(p, sizeof(p), "%s/img3", d->path);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/img3/meta", d->path);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/img3/meta/env.json", d->path);
	snprintf(want, sizeof(want), "%s/img/meta/env.json", d->path);
	assert_int_equal(symlink(want, p), 0);
	snprintf(p, sizeof(p), "%s/img3", d->path);
	assert_int_equal(hpcn_envjson_load_image(p, &e, &err), -1);
	snprintf(want, sizeof(want), "%s/img3/meta/env.json: is a symbolic link", d->path);
	assert_string_equal(err.message, want);
}

static void test_load_files(void **state)
{
	struct dir *d = *state;
	struct hpcn_envjson *e = NULL;
	struct hpcn_error err;
	char path[128], want[256];
	size_t big = HPCN_ENVJSON_MAX_SIZE;
	char *text = malloc(big + 2);

	/* Exactly the limit loads; one byte more does not. Whitespace padding
	 * keeps the JSON valid so that only the size can fail. */
	assert_non_null(text);
	memset(text, ' ', big + 1);
	memcpy(text, "{\"views\": {}}", 13);
	put(d, text, big, path, sizeof(path));
	if (hpcn_envjson_load(path, &e, &err) != 0)
		fail_msg("%s", err.message);
	hpcn_envjson_free(e);
	put(d, text, big + 1, path, sizeof(path));
	assert_int_equal(hpcn_envjson_load(path, &e, &err), -1);
	snprintf(want, sizeof(want), "%s: too large (1048577 bytes, at most 1048576)", path);
	assert_string_equal(err.message, want);
	assert_int_equal(hpcn_envjson_parse(text, big + 1, "mem", &e, &err), -1);
	assert_string_equal(err.message, "mem: too large (1048577 bytes, at most 1048576)");
	free(text);

	snprintf(path, sizeof(path), "%s/missing.json", d->path);
	assert_int_equal(hpcn_envjson_load(path, &e, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NOT_FOUND);
	snprintf(want, sizeof(want), "%s: no such file", path);
	assert_string_equal(err.message, want);

	snprintf(path, sizeof(path), "%s/subdir", d->path);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(hpcn_envjson_load(path, &e, &err), -1);
	snprintf(want, sizeof(want), "%s: not a regular file", path);
	assert_string_equal(err.message, want);

	/* A FIFO must not block the step. */
	snprintf(path, sizeof(path), "%s/fifo", d->path);
	assert_int_equal(mkfifo(path, 0644), 0);
	assert_int_equal(hpcn_envjson_load(path, &e, &err), -1);
	snprintf(want, sizeof(want), "%s: not a regular file", path);
	assert_string_equal(err.message, want);

	/* A symlink as the file itself is refused (it could point anywhere). */
	snprintf(path, sizeof(path), "%s/link", d->path);
	assert_int_equal(symlink("f0.json", path), 0);
	assert_int_equal(hpcn_envjson_load(path, &e, &err), -1);
	snprintf(want, sizeof(want), "%s: is a symbolic link", path);
	assert_string_equal(err.message, want);
	assert_null(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_valid, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_load_broken, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_view_problems, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_load_files, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_load_image, dir_setup, dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

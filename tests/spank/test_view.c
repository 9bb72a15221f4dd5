/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --view: argument syntax; applying views on an in-memory environment
 * through the callbacks, to images whose env.json is parsed from memory
 * (reading env.json files is test_envjson.c's).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "envjson.h"
#include "view.h"

/* ---- --view argument ---- */

static void test_arg_valid(void **state)
{
	struct hpcn_view_list l;
	struct hpcn_error err;

	assert_int_equal(hpcn_view_parse_arg("default", &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.item[0].image, "");
	assert_string_equal(l.item[0].view, "default");

	assert_int_equal(hpcn_view_parse_arg("prgenv-gnu:default,tools:modules,spack", &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.item[0].image, "prgenv-gnu");
	assert_string_equal(l.item[0].view, "default");
	assert_string_equal(l.item[1].image, "tools");
	assert_string_equal(l.item[1].view, "modules");
	assert_string_equal(l.item[2].image, "");
	assert_string_equal(l.item[2].view, "spack");

	/* The same view of different images, and a bare name beside a qualified one. */
	assert_int_equal(hpcn_view_parse_arg("a:default,b:default,default", &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(hpcn_view_parse_arg("A.b_c+d-1", &l, &err), 0);
}

struct bad_arg {
	const char *arg;
	const char *message;
};

static const struct bad_arg bad_args[] = {
	{ NULL, "--view: missing argument" },
	{ "", "--view: empty argument" },
	{ ",", "--view: ',': view 1 is empty" },
	{ "a,,b", "--view: 'a,,b': view 2 is empty" },
	{ "a,", "--view: 'a,': view 2 is empty" },
	{ "app:", "--view: 'app:': empty VIEW" },
	{ ":default", "--view: ':default': empty IMAGENAME" },
	{ "a:b:c", "--view: 'a:b:c': more than one ':' (expected VIEW or IMAGENAME:VIEW)" },
	{ "a/b", "--view: 'a/b': character '/' is not allowed in VIEW (expected VIEW or IMAGENAME:VIEW)" },
	{ "x y:v", "--view: 'x y:v': byte 0x20 is not allowed in IMAGENAME" },
	{ "a$b", "--view: 'a$b': character '$' is not allowed in VIEW (expected VIEW or IMAGENAME:VIEW)" },
	{ "default,default", "--view: 'default' given twice" },
	{ "app:default,b,app:default", "--view: 'app:default' given twice" },
};

/* The longest value the plugin carries to the node, and one byte more. */
static void test_arg_too_long(void **state)
{
	static char arg[HPCN_VIEW_ARG_MAX + 1];
	struct hpcn_view_list v;
	struct hpcn_error err;
	size_t n = 0;

	(void)state;
	/* "v0001,v0002,...": 16 views at most, so pad the names instead. */
	while (n + 200 < HPCN_VIEW_ARG_MAX - 1) {
		memset(arg + n, 'a', 199);
		n += 199;
		arg[n++] = ',';
	}
	memset(arg + n, 'b', HPCN_VIEW_ARG_MAX - 1 - n);
	arg[HPCN_VIEW_ARG_MAX - 1] = '\0';
	/* Too many views for a valid list, but not refused for its length. */
	assert_int_equal(hpcn_view_parse_arg(arg, &v, &err), -1);
	assert_null(strstr(err.message, "longer than"));
	arg[HPCN_VIEW_ARG_MAX - 1] = 'b';
	arg[HPCN_VIEW_ARG_MAX] = '\0';
	assert_int_equal(hpcn_view_parse_arg(arg, &v, &err), -1);
	assert_string_equal(err.message, "--view: longer than 4095 bytes");
}

static void test_arg_invalid(void **state)
{
	struct hpcn_view_list l;
	struct hpcn_error err;
	char many[256] = "v0";
	char *longname;

	for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
		hpcn_error_clear(&err);
		if (hpcn_view_parse_arg(bad_args[i].arg, &l, &err) != -1)
			fail_msg("'%s' accepted", bad_args[i].arg);
		assert_int_equal(l.n, 0);
		assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
		if (strcmp(err.message, bad_args[i].message))
			fail_msg("'%s':\n got  '%s'\n want '%s'", bad_args[i].arg ? bad_args[i].arg
						 : "NULL", err.message, bad_args[i].message);
	}
	for (int i = 1; i < HPCN_MAX_VIEWS; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), ",v%d", i);
	assert_int_equal(hpcn_view_parse_arg(many, &l, &err), 0);
	assert_int_equal(l.n, HPCN_MAX_VIEWS);
	strcat(many, ",one-more");
	assert_int_equal(hpcn_view_parse_arg(many, &l, &err), -1);
	assert_string_equal(err.message, "--view: more than 16 views");

	longname = malloc(HPCN_VIEW_NAME_MAX + 1);
	assert_non_null(longname);
	memset(longname, 'v', HPCN_VIEW_NAME_MAX);
	longname[HPCN_VIEW_NAME_MAX] = '\0';
	assert_int_equal(hpcn_view_parse_arg(longname, &l, &err), -1);
	assert_string_equal(err.message, "--view: VIEW longer than 255 bytes");
	longname[HPCN_VIEW_NAME_MAX - 1] = '\0';
	assert_int_equal(hpcn_view_parse_arg(longname, &l, &err), 0);
	free(longname);
}

/* ---- images ---- */

/* An image's env.json, parsed from memory; path only names it in messages. */
static struct hpcn_envjson *load_text(const char *text)
{
	struct hpcn_envjson *e = NULL;
	struct hpcn_error err;

	if (hpcn_envjson_parse(text, strlen(text), "/user-environment/meta/env.json", &e,
			       &err) != 0)
		fail_msg("%s", err.message);
	assert_non_null(e);
	return e;
}

/* The image test_envjson.c's test_load_valid reads, the same text. */
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

/* ---- an in-memory environment ---- */

#define ENV_MAX 32

struct env {
	size_t n;
	char *name[ENV_MAX];
	char *value[ENV_MAX];
	int gets, sets, unsets;
	int fail_get, fail_set;   /* errno to fail with, 0 = work */
};

static int env_find(struct env *e, const char *name)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->name[i], name) == 0)
			return (int)i;
	return -1;
}

static const char *env_value(struct env *e, const char *name)
{
	int i = env_find(e, name);

	return i < 0 ? NULL : e->value[i];
}

/* Like the SPANK glue: copies into buf, ENOSPC when it does not fit. */
static int env_get(void *ud, const char *name, char *buf, size_t cap)
{
	struct env *e = ud;
	int i = env_find(e, name);

	e->gets++;
	if (e->fail_get) {
		errno = e->fail_get;
		return -1;
	}
	if (i < 0)
		return 1;
	if (strlen(e->value[i]) + 1 > cap) {
		errno = ENOSPC;
		return -1;
	}
	memcpy(buf, e->value[i], strlen(e->value[i]) + 1);
	return 0;
}

static int env_set(void *ud, const char *name, const char *value)
{
	struct env *e = ud;
	int i = env_find(e, name);

	e->sets++;
	if (e->fail_set) {
		errno = e->fail_set;
		return -1;
	}
	if (i < 0) {
		assert_true(e->n < ENV_MAX);
		i = (int)e->n++;
		e->name[i] = strdup(name);
		e->value[i] = NULL;
	}
	free(e->value[i]);
	e->value[i] = strdup(value);
	return 0;
}

static int env_unset(void *ud, const char *name)
{
	struct env *e = ud;
	int i = env_find(e, name);

	e->unsets++;
	if (i < 0)
		return 0;
	free(e->name[i]);
	free(e->value[i]);
	e->n--;
	e->name[i] = e->name[e->n];
	e->value[i] = e->value[e->n];
	return 0;
}

static void env_free(struct env *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->name[i]);
		free(e->value[i]);
	}
	memset(e, 0, sizeof(*e));
}

static int apply(const struct hpcn_envjson *const *imgs, size_t n, const char *views,
		 struct env *env, struct hpcn_error *err)
{
	struct hpcn_view_list l;

	if (hpcn_view_parse_arg(views, &l, err) < 0)
		fail_msg("%s", err->message);
	hpcn_error_clear(err);
	return hpcn_view_apply(imgs, n, &l, env_get, env_set, env_unset, env, err);
}

static void test_apply_ops(void **state)
{
	struct hpcn_envjson *app = load_text(APP_JSON);
	const struct hpcn_envjson *imgs[] = { app };
	struct env env = { 0 };
	struct hpcn_error err;

	env_set(&env, "PATH", "/usr/bin:/bin");
	env_set(&env, "MANPATH", "");          /* empty: no leading ':' */
	env_set(&env, "PKG_CONFIG_PATH", "/usr/lib/pkgconfig");
	env_set(&env, "OLD", "x");
	env_set(&env, "CXX", "clang++");
	if (apply(imgs, 1, "default", &env, &err) != 0)
		fail_msg("%s", err.message);
	assert_string_equal(env_value(&env, "PATH"), "/ue/bin:/ue/sbin:/usr/bin:/bin");
	assert_string_equal(env_value(&env, "MANPATH"), "/ue/man");
	assert_string_equal(env_value(&env, "PKG_CONFIG_PATH"), "/ue/pc:/ue/pc2"); /* set, append */
	assert_null(env_value(&env, "OLD"));
	assert_string_equal(env_value(&env, "CC"), "gcc");
	assert_null(env_value(&env, "CXX"));
	env_free(&env);

	/* From nothing: prepend and append to an unset variable. */
	if (apply(imgs, 1, "app:default", &env, &err) != 0)
		fail_msg("%s", err.message);
	assert_string_equal(env_value(&env, "PATH"), "/ue/bin:/ue/sbin");
	assert_string_equal(env_value(&env, "MANPATH"), "/ue/man");
	env_free(&env);
	hpcn_envjson_free(app);
}

static void test_apply_order(void **state)
{
	struct hpcn_envjson *e = load_text(
		"{\"name\": \"img\", \"views\": {"
		" \"a\": {\"env\": {\"values\": {\"list\": {\"PATH\": [{\"op\": \"prepend\", \"value\": [\"/a\"]}]},"
		"                              \"scalar\": {\"WHO\": \"a\"}}}},"
		" \"b\": {\"env\": {\"values\": {\"list\": {\"PATH\": [{\"op\": \"prepend\", \"value\": [\"/b\"]}]},"
		"                              \"scalar\": {\"WHO\": \"b\"}}}},"
		" \"clear\": {\"env\": {\"values\": {\"list\": {\"PATH\": [{\"op\": \"set\", \"value\": []},"
		"                                                    {\"op\": \"append\", \"value\": [\"/c\"]},"
		"                                                    {\"op\": \"prepend\", \"value\": [\"\"]}]}}}}"
		"}}");
	const struct hpcn_envjson *imgs[] = { e };
	struct env env = { 0 };
	struct hpcn_error err;

	env_set(&env, "PATH", "/bin");
	assert_int_equal(apply(imgs, 1, "a,b", &env, &err), 0);
	assert_string_equal(env_value(&env, "PATH"), "/b:/a:/bin");
	assert_string_equal(env_value(&env, "WHO"), "b");
	env_free(&env);

	env_set(&env, "PATH", "/bin");
	assert_int_equal(apply(imgs, 1, "b,a", &env, &err), 0);
	assert_string_equal(env_value(&env, "PATH"), "/a:/b:/bin");
	assert_string_equal(env_value(&env, "WHO"), "a");
	env_free(&env);

	/* set to empty, then append: no leading ':'; an all-empty prepend is a no-op. */
	env_set(&env, "PATH", "/bin");
	assert_int_equal(apply(imgs, 1, "clear", &env, &err), 0);
	assert_string_equal(env_value(&env, "PATH"), "/c");
	env_free(&env);
	hpcn_envjson_free(e);
}

static void test_apply_long_value(void **state)
{
	struct hpcn_envjson *app = load_text(APP_JSON);
	const struct hpcn_envjson *imgs[] = { app };
	struct env env = { 0 };
	struct hpcn_error err;
	char *path = malloc(20001), *want = malloc(20100);

	/* Longer than the first buffer get() is offered: it must grow. */
	assert_non_null(path);
	assert_non_null(want);
	memset(path, 'p', 20000);
	path[0] = '/';
	path[20000] = '\0';
	env_set(&env, "PATH", path);
	assert_int_equal(apply(imgs, 1, "default", &env, &err), 0);
	snprintf(want, 20100, "/ue/bin:/ue/sbin:%s", path);
	assert_string_equal(env_value(&env, "PATH"), want);
	assert_true(env.gets > 3);   /* it did retry */
	env_free(&env);
	free(path);
	free(want);
	hpcn_envjson_free(app);
}

static void test_apply_errors(void **state)
{
	struct hpcn_envjson *app = load_text(APP_JSON);
	struct hpcn_envjson *tools = load_text(
		"{\"name\": \"tools\", \"views\": {"
		" \"default\": {\"env\": {\"values\": {\"scalar\": {\"T\": \"1\"}}}},"
		" \"gdb\": {\"env\": {\"values\": {\"scalar\": {\"G\": \"1\"}}}} }}");
	struct hpcn_envjson *anon = load_text(
		"{\"views\": {\"anon\": {\"env\": {\"values\": {\"scalar\": {\"A\": \"1\"}}}}}}");
	const struct hpcn_envjson *imgs[] = { app, NULL, tools };
	const struct hpcn_envjson *all[] = { app, tools, anon };
	struct env env = { 0 };
	struct hpcn_error err;
	char want[HPCN_ERROR_MESSAGE_MAX];
	struct hpcn_view_list l;

	/* Ambiguous bare name. */
	assert_int_equal(apply(imgs, 3, "default", &env, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_string_equal(err.message,
			    "--view: view 'default' exists in several images (app, tools): write IMAGENAME:VIEW");
	/* ... which IMAGENAME:VIEW settles; a unique bare name is fine. */
	assert_int_equal(apply(imgs, 3, "tools:default,gdb", &env, &err), 0);
	assert_string_equal(env_value(&env, "T"), "1");
	assert_string_equal(env_value(&env, "G"), "1");
	assert_null(env_value(&env, "CC"));
	env_free(&env);

	/* Unknown views, with the list of what exists. */
	assert_int_equal(apply(imgs, 3, "foo", &env, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NOT_FOUND);
	assert_string_equal(err.message,
			    "--view: view 'foo' not found (available: app:default, app:modules, app:activate-only, app:future, tools:default, tools:gdb)");
	assert_int_equal(apply(imgs, 3, "nope:default", &env, &err), -1);
	assert_non_null(strstr(err.message, "--view: view 'nope:default' not found (available: "));
	assert_int_equal(apply(imgs, 3, "tools:modules", &env, &err), -1);
	assert_non_null(strstr(err.message, "--view: view 'tools:modules' not found"));
	/* An image without a name: its views are found bare, listed bare. */
	assert_int_equal(apply(all, 3, "anon", &env, &err), 0);
	assert_string_equal(env_value(&env, "A"), "1");
	env_free(&env);
	assert_int_equal(apply(all, 3, "x", &env, &err), -1);
	assert_non_null(strstr(err.message, ", tools:gdb, anon)"));
	/* Nothing mounted has views. */
	assert_int_equal(apply(NULL, 0, "default", &env, &err), -1);
	assert_string_equal(err.message,
			    "--view: view 'default' not found (available: none: no mounted image describes views)");

	/* A view without env, and one with an unknown op: reported, not applied. */
	assert_int_equal(apply(imgs, 3, "app:activate-only", &env, &err), -1);
	snprintf(want, sizeof(want),
		 "--view: view 'app:activate-only' (%s) cannot be applied: views.activate-only has no \"env\" (an old image with an activation script only)",
		 app->path);
	assert_string_equal(err.message, want);
	assert_int_equal(apply(imgs, 3, "future", &env, &err), -1);
	snprintf(want, sizeof(want),
		 "--view: view 'future' (%s) cannot be applied: views.future.env.values.list.PATH[0].op: unknown op 'frobnicate' (known: prepend, append, set, unset)",
		 app->path);
	assert_string_equal(err.message, want);

	/* All or nothing: a bad second view stops before the first one is applied. */
	env_set(&env, "PATH", "/bin");
	env.sets = 0;
	assert_int_equal(apply(imgs, 3, "app:default,foo", &env, &err), -1);
	assert_int_equal(env.sets, 0);
	assert_int_equal(env.unsets, 0);
	assert_string_equal(env_value(&env, "PATH"), "/bin");
	/* check_names alone says the same, and touches nothing. */
	assert_int_equal(hpcn_view_parse_arg("app:default,foo", &l, &err), 0);
	assert_int_equal(hpcn_view_check_names(imgs, 3, &l, &err), -1);
	assert_non_null(strstr(err.message, "--view: view 'foo' not found"));
	assert_int_equal(hpcn_view_parse_arg("app:default,tools:gdb", &l, &err), 0);
	assert_int_equal(hpcn_view_check_names(imgs, 3, &l, &err), 0);
	env_free(&env);

	/* Failing callbacks are reported with the variable. */
	env.fail_get = EIO;
	assert_int_equal(apply(imgs, 3, "app:default", &env, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INTERNAL);
	assert_string_equal(err.message, "--view: cannot read PATH: Input/output error");
	env.fail_get = 0;
	env.fail_set = EPERM;
	assert_int_equal(apply(imgs, 3, "app:default", &env, &err), -1);
	assert_string_equal(err.message,
			    "--view: view 'app:default': cannot set PATH: Operation not permitted");
	env_free(&env);

	hpcn_envjson_free(app);
	hpcn_envjson_free(tools);
	hpcn_envjson_free(anon);
}

static void test_same_image_name_twice(void **state)
{
	const char *j = "{\"name\": \"app\", \"views\": {\"default\": {\"env\": {}}}}";
	struct hpcn_envjson *a = load_text(j), *b = load_text(j);
	const struct hpcn_envjson *imgs[] = { a, b };
	struct env env = { 0 };
	struct hpcn_error err;

	assert_int_equal(apply(imgs, 2, "app:default", &env, &err), -1);
	assert_string_equal(err.message,
			    "--view: view 'app:default' is ambiguous: several mounted images are named 'app'");
	hpcn_envjson_free(a);
	hpcn_envjson_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arg_valid),
		cmocka_unit_test(test_arg_invalid),
		cmocka_unit_test(test_arg_too_long),
		cmocka_unit_test(test_apply_ops),
		cmocka_unit_test(test_apply_order),
		cmocka_unit_test(test_apply_long_value),
		cmocka_unit_test(test_apply_errors),
		cmocka_unit_test(test_same_image_name_twice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

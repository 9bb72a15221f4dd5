/* SPDX-License-Identifier: Apache-2.0 */
/* plugstack.conf arguments of spank_hpc_node: defaults, every argument, errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "plugargs.h"

/* Parse a NULL-terminated word list over the defaults. */
static int parse_words(struct hpcn_plugargs *cfg, struct hpcn_error *err, const char *const *w)
{
	int argc = 0;

	while (w[argc])
		argc++;
	hpcn_plugargs_defaults(cfg);
	hpcn_error_clear(err);
	return hpcn_plugargs_parse(argc, (char **)w, cfg, err);
}

static void test_defaults(void **state)
{
	struct hpcn_plugargs *cfg = malloc(sizeof(*cfg));
	struct hpcn_error err;
	const char *none[] = { NULL };

	assert_non_null(cfg);
	assert_int_equal(parse_words(cfg, &err, none), 0);
	assert_string_equal(cfg->socket, "/run/pact/handoff.sock");
	assert_int_equal(cfg->n_namespaces, 1);
	assert_int_equal(cfg->namespaces[0], HPCN_NS_MOUNT);
	assert_true(hpcn_plugargs_has_ns(cfg, HPCN_NS_MOUNT));
	assert_false(hpcn_plugargs_has_ns(cfg, HPCN_NS_PID));
	assert_false(cfg->cgroup);
	assert_string_equal(cfg->ready_file, "/run/pact/ready");
	assert_int_equal(cfg->ready_timeout_secs, 30);
	assert_int_equal(cfg->connect_timeout_ms, 1000);
	assert_int_equal(cfg->request_timeout_ms, 60000);
	assert_int_equal(cfg->fallback, HPCN_SPANK_FALLBACK_NONE);
	assert_string_equal(cfg->default_mount, "/user-environment");
	assert_string_equal(cfg->repository, "");
	assert_int_equal(cfg->n_allowed_mounts, 2);
	assert_string_equal(cfg->allowed_mounts[0], "/user-environment");
	assert_string_equal(cfg->allowed_mounts[1], "/user-tools");
	assert_int_equal(cfg->max_images, 4);
	free(cfg);
}

static void test_all_arguments(void **state)
{
	struct hpcn_plugargs *cfg = malloc(sizeof(*cfg));
	struct hpcn_error err;
	char allowed[256];
	const char *w[] = {
		"socket=/tmp/h.sock", "namespaces=net,mount,pid", "cgroup=on",
		"ready_file=/tmp/ready", "ready_timeout=0", "connect_timeout=250", "request_timeout=90000",
		"fallback=local", "default_mount=/opt//uenv/", "repository=/capstor/./images/",
		"allowed_mounts=/opt/uenv,/user-tools,/opt/uenv/sub", "max_images=8", NULL,
	};

	assert_non_null(cfg);
	if (parse_words(cfg, &err, w) != 0)
		fail_msg("refused: %s", err.message);
	assert_string_equal(cfg->socket, "/tmp/h.sock");
	/* mount first, then in the order given */
	assert_int_equal(cfg->n_namespaces, 3);
	assert_int_equal(cfg->namespaces[0], HPCN_NS_MOUNT);
	assert_int_equal(cfg->namespaces[1], HPCN_NS_NET);
	assert_int_equal(cfg->namespaces[2], HPCN_NS_PID);
	assert_true(cfg->cgroup);
	assert_string_equal(cfg->ready_file, "/tmp/ready");
	assert_int_equal(cfg->ready_timeout_secs, 0);
	assert_int_equal(cfg->connect_timeout_ms, 250);
	assert_int_equal(cfg->request_timeout_ms, 90000);
	assert_int_equal(cfg->fallback, HPCN_SPANK_FALLBACK_LOCAL);
	assert_string_equal(cfg->default_mount, "/opt/uenv");      /* normalised */
	assert_string_equal(cfg->repository, "/capstor/images");
	assert_int_equal(cfg->n_allowed_mounts, 3);
	assert_true(hpcn_plugargs_mount_allowed(cfg, "/opt/uenv/sub"));
	assert_false(hpcn_plugargs_mount_allowed(cfg, "/user-environment"));
	assert_int_equal(cfg->max_images, 8);
	hpcn_plugargs_allowed_string(cfg, allowed, sizeof(allowed));
	assert_string_equal(allowed, "/opt/uenv, /user-tools, /opt/uenv/sub");

	/* The other values of the enumerations. */
	{
		const char *w2[] = { "cgroup=off", "fallback=none", "namespaces=mount", NULL };

		assert_int_equal(parse_words(cfg, &err, w2), 0);
		assert_false(cfg->cgroup);
		assert_int_equal(cfg->fallback, HPCN_SPANK_FALLBACK_NONE);
		assert_int_equal(cfg->n_namespaces, 1);
	}
	{
		/* mount is implied. */
		const char *w3[] = { "namespaces=pid", NULL };

		assert_int_equal(parse_words(cfg, &err, w3), 0);
		assert_int_equal(cfg->n_namespaces, 2);
		assert_int_equal(cfg->namespaces[0], HPCN_NS_MOUNT);
		assert_int_equal(cfg->namespaces[1], HPCN_NS_PID);
	}
	free(cfg);
}

struct bad_case {
	const char *words[4];
	const char *message; /* exact */
};

static const struct bad_case bad_cases[] = {
	{ { "cgroup", NULL }, "plugstack.conf argument 'cgroup': expected NAME=VALUE" },
	{ { "cgroup=maybe", NULL }, "plugstack.conf argument 'cgroup=maybe': expected on or off" },
	{ { "cgroup=", NULL }, "plugstack.conf argument 'cgroup=': empty value" },
	{ { "colour=blue", NULL },
	  "plugstack.conf argument 'colour=blue': unknown argument 'colour' (known: socket, namespaces, cgroup, ready_file, ready_timeout, connect_timeout, request_timeout, fallback, default_mount, repository, allowed_mounts, max_images, job_container_base)" },
	{ { "=x", NULL },
	  "plugstack.conf argument '=x': unknown argument '' (known: socket, namespaces, cgroup, ready_file, ready_timeout, connect_timeout, request_timeout, fallback, default_mount, repository, allowed_mounts, max_images, job_container_base)" },
	{ { "cgroup=on", "cgroup=off", NULL },
	  "plugstack.conf argument 'cgroup=off': cgroup given twice" },
	{ { "socket=run/h.sock", NULL },
	  "plugstack.conf argument 'socket=run/h.sock': not an absolute path" },
	{ { "ready_file=ready", NULL },
	  "plugstack.conf argument 'ready_file=ready': not an absolute path" },
	{ { "namespaces=mount,ipc", NULL },
	  "plugstack.conf argument 'namespaces=mount,ipc': unknown namespace 'ipc' (known: mount, pid, net)" },
	{ { "namespaces=pid,pid", NULL },
	  "plugstack.conf argument 'namespaces=pid,pid': namespace 'pid' given twice" },
	{ { "namespaces=mount,,pid", NULL },
	  "plugstack.conf argument 'namespaces=mount,,pid': empty namespace name" },
	{ { "namespaces=Mount", NULL },
	  "plugstack.conf argument 'namespaces=Mount': unknown namespace 'Mount' (known: mount, pid, net)" },
	{ { "ready_timeout=-1", NULL },
	  "plugstack.conf argument 'ready_timeout=-1': expected a number in 0..3600" },
	{ { "ready_timeout= 5", NULL },
	  "plugstack.conf argument 'ready_timeout= 5': expected a number in 0..3600" },
	{ { "ready_timeout=5s", NULL },
	  "plugstack.conf argument 'ready_timeout=5s': expected a number in 0..3600" },
	{ { "ready_timeout=3601", NULL },
	  "plugstack.conf argument 'ready_timeout=3601': 3601 is out of range 0..3600" },
	{ { "ready_timeout=99999999999999999999999", NULL },
	  "plugstack.conf argument 'ready_timeout=99999999999999999999999': expected a number in 0..3600" },
	{ { "connect_timeout=0", NULL },
	  "plugstack.conf argument 'connect_timeout=0': 0 is out of range 1..60000" },
	{ { "request_timeout=600001", NULL },
	  "plugstack.conf argument 'request_timeout=600001': 600001 is out of range 1..600000" },
	{ { "max_images=0", NULL },
	  "plugstack.conf argument 'max_images=0': 0 is out of range 1..8" },
	{ { "max_images=9", NULL },
	  "plugstack.conf argument 'max_images=9': 9 is out of range 1..8" },
	{ { "fallback=yes", NULL },
	  "plugstack.conf argument 'fallback=yes': expected none or local" },
	{ { "default_mount=/", NULL },
	  "plugstack.conf argument 'default_mount=/': / cannot be used here" },
	{ { "default_mount=uenv", NULL },
	  "plugstack.conf argument 'default_mount=uenv': 'uenv' is not an absolute path" },
	{ { "default_mount=/a/../etc", NULL },
	  "plugstack.conf argument 'default_mount=/a/../etc': path /a/../etc contains '..'" },
	{ { "default_mount=/opt/uenv", NULL },
	  "plugstack.conf: default_mount /opt/uenv is not one of allowed_mounts (/user-environment, /user-tools)" },
	{ { "allowed_mounts=/user-tools", NULL },
	  "plugstack.conf: default_mount /user-environment is not one of allowed_mounts (/user-tools)" },
	{ { "allowed_mounts=/user-environment,,/x", NULL },
	  "plugstack.conf argument 'allowed_mounts=/user-environment,,/x': empty mount point" },
	{ { "allowed_mounts=/user-environment,//", NULL },
	  "plugstack.conf argument 'allowed_mounts=/user-environment,//': / cannot be used here" },
	{ { "allowed_mounts=/user-environment,/user-environment/", NULL },
	  "plugstack.conf argument 'allowed_mounts=/user-environment,/user-environment/': /user-environment given twice" },
	{ { "allowed_mounts=/user-environment,tools", NULL },
	  "plugstack.conf argument 'allowed_mounts=/user-environment,tools': 'tools' is not an absolute path" },
	{ { "repository=images", NULL },
	  "plugstack.conf argument 'repository=images': 'images' is not an absolute path" },
};

static void test_bad_arguments(void **state)
{
	struct hpcn_plugargs *cfg = malloc(sizeof(*cfg));
	struct hpcn_error err;

	assert_non_null(cfg);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];

		if (parse_words(cfg, &err, c->words) != -1)
			fail_msg("case %zu (%s) accepted", i, c->words[0]);
		assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
		if (strcmp(err.message, c->message) != 0)
			fail_msg("case %zu:\n got  '%s'\n want '%s'", i, err.message, c->message);
	}
	free(cfg);
}

static void test_too_many_allowed(void **state)
{
	struct hpcn_plugargs *cfg = malloc(sizeof(*cfg));
	struct hpcn_error err;
	char val[1024] = "allowed_mounts=/user-environment";
	const char *w[] = { val, NULL };

	assert_non_null(cfg);
	for (int i = 1; i < HPCN_SPANK_MAX_ALLOWED_MOUNTS; i++)
		snprintf(val + strlen(val), sizeof(val) - strlen(val), ",/m%d", i);
	assert_int_equal(parse_words(cfg, &err, w), 0);
	assert_int_equal(cfg->n_allowed_mounts, HPCN_SPANK_MAX_ALLOWED_MOUNTS);
	strcat(val, ",/one-more");
	assert_int_equal(parse_words(cfg, &err, w), -1);
	assert_string_equal(err.message,
			    "plugstack.conf argument 'allowed_mounts': more than 16 mount points");
	free(cfg);
}

static void test_long_path(void **state)
{
	struct hpcn_plugargs *cfg = malloc(sizeof(*cfg));
	struct hpcn_error err;
	char *val = malloc(PATH_MAX + 32);
	const char *w[] = { val, NULL };

	assert_non_null(cfg);
	assert_non_null(val);
	strcpy(val, "socket=/");
	memset(val + 8, 'a', PATH_MAX);
	val[8 + PATH_MAX] = '\0';
	assert_int_equal(parse_words(cfg, &err, w), -1);
	assert_non_null(strstr(err.message, "path longer than 4095 bytes"));
	free(val);
	free(cfg);
}

static void test_normalise(void **state)
{
	char out[64];

	assert_int_equal(hpcn_mount_path_normalise("/a//b/./c/", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/b/c");
	assert_int_equal(hpcn_mount_path_normalise("//", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(hpcn_mount_path_normalise("/./.", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(hpcn_mount_path_normalise("/a/..b/...", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/..b/...");
	errno = 0;
	assert_int_equal(hpcn_mount_path_normalise("/a/../b", out, sizeof(out)), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(hpcn_mount_path_normalise("/a/..", out, sizeof(out)), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(hpcn_mount_path_normalise("a/b", out, sizeof(out)), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hpcn_mount_path_normalise("", out, sizeof(out)), -1);
	assert_int_equal(errno, EINVAL);
	/* Exactly fitting, and one byte too long. */
	assert_int_equal(hpcn_mount_path_normalise("/abcd", out, 6), 0);
	assert_string_equal(out, "/abcd");
	assert_int_equal(hpcn_mount_path_normalise("/abcde", out, 6), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_arguments),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_too_many_allowed),
		cmocka_unit_test(test_long_path),
		cmocka_unit_test(test_normalise),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

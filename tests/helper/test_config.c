/* SPDX-License-Identifier: Apache-2.0 */
/* The helper's configuration: defaults, every key, every error, allowlists,
 * dump/reload, and the shipped etc/helper.conf. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <hpcnode/constants.h>

#include "config.h"
#include "log.h"

#define SHIPPED_CONF HPCN_TESTS_DIR "/../etc/helper.conf"

static void assert_strv(const struct hpcn_strv *sv, size_t n, ...)
{
	va_list ap;

	assert_int_equal(sv->n, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(sv->v[i], va_arg(ap, const char *));
	va_end(ap);
}

static void assert_defaults(const struct hpcn_config *c)
{
	assert_string_equal(c->socket_path, HPCN_HANDOFF_SOCKET_PATH);
	assert_int_equal(c->socket_mode, 0660);
	assert_string_equal(c->ready_file, HPCN_READINESS_FILE_PATH);
	assert_string_equal(c->state_dir, "/run/hpc-node");
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->log_target, HPCN_LOG_AUTO);
	assert_string_equal(c->audit_log, "");
	assert_int_equal(c->allowed_uids.n, 0);
	assert_int_equal(c->allowed_gids.n, 0);
	assert_true(c->cgroup_enabled);
	assert_string_equal(c->cgroup_root, "");
	assert_false(c->limits_mandatory);
	assert_int_equal(c->kill_timeout_secs, 10);
	assert_string_equal(c->uenv_mount_base, HPCN_UENV_MOUNT_BASE);
	assert_int_equal(c->hold_time_secs, HPCN_DEFAULT_HOLD_TIME_SECS);
	assert_strv(&c->allowed_mount_points, 2, HPCN_DEFAULT_UENV_MOUNT_POINT,
		    HPCN_DEFAULT_UENV_TOOLS_POINT);
	assert_int_equal(c->create_mount_points.n, 0);
	assert_int_equal(c->image_prefixes.n, 0);
	assert_int_equal(c->max_images, 4);
	assert_true(c->max_images <= HPCN_MAX_MOUNTS);
	assert_int_equal(c->max_loop_devices, 0); /* the kernel's limit only */
	assert_true(c->allow_pid);
	assert_true(c->allow_net);
	assert_int_equal(c->reconcile_interval_secs, 30);
}

static void test_defaults(void **state)
{
	struct hpcn_config c;

	assert_int_equal(hpcn_config_defaults(&c), 0);
	assert_defaults(&c);
	hpcn_config_free(&c);
}

static const char full_conf[] =
	"# every key, none at its default\n"
	"[helper]\n"
	"socket = /tmp/t/handoff.sock\n"
	"socket_mode = 0600\n"
	"ready_file = /tmp/t/ready\n"
	"state_dir = /tmp/t/state/\n"
	"log_level = debug\n"
	"log_target = stderr\n"
	"audit_log = /tmp/t/audit.jsonl ; inline comment\n"
	"[access]\n"
	"allowed_users = daemon, 1234\n"
	"allowed_groups = bin,5555\n"
	"[cgroup]\n"
	"enabled = no\n"
	"root = /sys/fs/cgroup/unified\n"
	"limits_mandatory = on\n"
	"kill_timeout = 3\n"
	"[uenv]\n"
	"mount_base = /tmp/t/uenv\n"
	"hold_time = 0\n"
	"allowed_mount_points = /user-environment, /opt/tools\n"
	"create_mount_points = /opt/tools\n"
	"image_prefixes = /images, /scratch/uenv\n"
	"max_images = 8\n"
	"max_loop_devices = 16\n"
	"[namespaces]\n"
	"allow_pid = false\n"
	"allow_net = 0\n"
	"[reconcile]\n"
	"interval = 5\n";

static void assert_full(const struct hpcn_config *c)
{
	assert_string_equal(c->socket_path, "/tmp/t/handoff.sock");
	assert_int_equal(c->socket_mode, 0600);
	assert_string_equal(c->ready_file, "/tmp/t/ready");
	assert_string_equal(c->state_dir, "/tmp/t/state");
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->log_target, HPCN_LOG_STDERR);
	assert_string_equal(c->audit_log, "/tmp/t/audit.jsonl");
	assert_int_equal(c->allowed_uids.n, 2);
	assert_int_equal(c->allowed_uids.v[0], 1); /* daemon */
	assert_int_equal(c->allowed_uids.v[1], 1234);
	assert_int_equal(c->allowed_gids.n, 2);
	assert_int_equal(c->allowed_gids.v[0], 2); /* bin */
	assert_int_equal(c->allowed_gids.v[1], 5555);
	assert_false(c->cgroup_enabled);
	assert_string_equal(c->cgroup_root, "/sys/fs/cgroup/unified");
	assert_true(c->limits_mandatory);
	assert_int_equal(c->kill_timeout_secs, 3);
	assert_string_equal(c->uenv_mount_base, "/tmp/t/uenv");
	assert_int_equal(c->hold_time_secs, 0);
	assert_strv(&c->allowed_mount_points, 2, "/user-environment", "/opt/tools");
	assert_strv(&c->create_mount_points, 1, "/opt/tools");
	assert_strv(&c->image_prefixes, 2, "/images", "/scratch/uenv");
	assert_int_equal(c->max_images, 8);
	assert_int_equal(c->max_loop_devices, 16);
	assert_false(c->allow_pid);
	assert_false(c->allow_net);
	assert_int_equal(c->reconcile_interval_secs, 5);
}

static void test_full(void **state)
{
	struct hpcn_config c;
	struct hpcn_error err = { 0 };

	assert_int_equal(hpcn_config_load_string(&c, full_conf, "full.conf", &err), 0);
	assert_int_equal(err.kind, HPCN_E_NONE);
	assert_string_equal(c.config_path, "full.conf");
	assert_full(&c);

	/* A deep copy: equal, and independent of the original's lists. */
	{
		struct hpcn_config copy;

		assert_int_equal(hpcn_config_copy(&copy, &c), 0);
		assert_true(hpcn_config_equal(&copy, &c));
		assert_ptr_not_equal(copy.image_prefixes.v, c.image_prefixes.v);
		hpcn_config_free(&c);
		assert_full(&copy);
		hpcn_config_free(&copy);
	}
}

static char tmp_dir[64], tmp_file[PATH_MAX];

static int setup_tmp(void **state)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/hpcn-config-XXXXXX");
	if (!mkdtemp(tmp_dir))
		return -1;
	snprintf(tmp_file, sizeof(tmp_file), "%s/helper.conf", tmp_dir);
	return 0;
}

/* Runs even when the test failed half-way. */
static int teardown_tmp(void **state)
{
	unlink(tmp_file);
	return rmdir(tmp_dir);
}

static void test_full_from_file(void **state)
{
	const char *dir = tmp_dir, *path = tmp_file;
	struct hpcn_config c;
	struct hpcn_error err = { 0 };
	FILE *f;

	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(full_conf, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(hpcn_config_load(&c, path, true, &err), 0);
	assert_string_equal(c.config_path, path);
	assert_full(&c);
	hpcn_config_free(&c);

	/* An error names the full path of the file and the line. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[uenv]\n\n\nhold_tim = 5\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(hpcn_config_load(&c, path, false, &err), -1);
	{
		char want[PATH_MAX + 64];

		snprintf(want, sizeof(want), "invalid argument: %s:4: unknown key 'hold_tim' "
			 "in section [uenv]", path);
		assert_string_equal(err.message, want);
	}
	assert_int_equal(unlink(path), 0);

	/* Missing: defaults when implicit, an error naming it when explicit. */
	assert_int_equal(hpcn_config_load(&c, path, false, &err), 0);
	assert_defaults(&c);
	hpcn_config_free(&c);
	assert_int_equal(hpcn_config_load(&c, path, true, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_non_null(strstr(err.message, path));
	assert_non_null(strstr(err.message, "No such file or directory"));

	/* A directory is no config file. */
	assert_int_equal(hpcn_config_load(&c, dir, true, &err), -1);
	assert_non_null(strstr(err.message, "is not a regular file"));
}

struct error_case {
	const char *text;
	const char *message; /* after "invalid argument: " */
};

static const struct error_case error_cases[] = {
	{ "[uenv]\nhold_tim = 5\n",
	  "helper.conf:2: unknown key 'hold_tim' in section [uenv]" },
	{ "[helper]\n\n[uenvs]\n",
	  "helper.conf:3: unknown section [uenvs]" },
	{ "[helper]\nlog_level = info\n[foo]\nbar = 1\n",
	  "helper.conf:3: unknown section [foo]" },
	{ "hold_time = 5\n",
	  "helper.conf:1: key 'hold_time' is outside of any section" },
	{ "[uenv]\n; comment\nhold_time = 6O\n",
	  "helper.conf:3: [uenv] hold_time: '6O' is not a number of seconds" },
	{ "[uenv]\nhold_time =\n",
	  "helper.conf:2: [uenv] hold_time: '' is not a number of seconds" },
	{ "[uenv]\nhold_time = 60s\n",
	  "helper.conf:2: [uenv] hold_time: '60s' is not a number of seconds" },
	{ "[uenv]\nhold_time = -1\n",
	  "helper.conf:2: [uenv] hold_time: '-1' is negative, expected a number of seconds "
	  "in 0..86400" },
	{ "[uenv]\nhold_time = 99999999999999999999999\n",
	  "helper.conf:2: [uenv] hold_time: '99999999999999999999999' is out of range 0..86400" },
	{ "[uenv]\nhold_time = 86401\n",
	  "helper.conf:2: [uenv] hold_time: '86401' is out of range 0..86400" },
	{ "[uenv]\nhold_time = 4294967296\n",
	  "helper.conf:2: [uenv] hold_time: '4294967296' is out of range 0..86400" },
	{ "[cgroup]\nkill_timeout = 0\n",
	  "helper.conf:2: [cgroup] kill_timeout: '0' is out of range 1..3600" },
	{ "[uenv]\nmax_images = 0\n",
	  "helper.conf:2: [uenv] max_images: '0' is out of range 1..8" },
	{ "[uenv]\nmax_loop_devices = 2000000\n",
	  "helper.conf:2: [uenv] max_loop_devices: '2000000' is out of range 0..1048576" },
	{ "[uenv]\nmax_loop_devices = -1\n",
	  "helper.conf:2: [uenv] max_loop_devices: '-1' is negative, expected a number in "
	  "0..1048576" },
	{ "[uenv]\nmax_images = 99\n",
	  "helper.conf:2: [uenv] max_images: '99' is out of range 1..8" },
	{ "[cgroup]\nenabled = maybe\n",
	  "helper.conf:2: [cgroup] enabled: 'maybe' is not a boolean (true/false, yes/no, "
	  "on/off, 1/0)" },
	{ "[helper]\nstate_dir = run/hpc-node\n",
	  "helper.conf:2: [helper] state_dir: 'run/hpc-node' is not an absolute path" },
	{ "[helper]\nstate_dir =\n",
	  "helper.conf:2: [helper] state_dir: '' is not an absolute path" },
	{ "[helper]\nstate_dir = /run/../etc\n",
	  "helper.conf:2: [helper] state_dir: '/run/../etc' contains a '..' component" },
	{ "[helper]\nsocket = /\n",
	  "helper.conf:2: [helper] socket: '/' is not allowed here" },
	{ "[helper]\naudit_log = var/log/x\n",
	  "helper.conf:2: [helper] audit_log: 'var/log/x' is not an absolute path" },
	{ "[cgroup]\nroot = sys/fs/cgroup\n",
	  "helper.conf:2: [cgroup] root: 'sys/fs/cgroup' is not an absolute path" },
	{ "[uenv]\nhold_time = 5\nmax_images = 2\nhold_time = 6\n",
	  "helper.conf:4: duplicate key 'hold_time' in section [uenv] (first set on line 2)" },
	{ "[uenv]\nhold_time = 5\n[helper]\n[uenv]\nhold_time = 5\n",
	  "helper.conf:5: duplicate key 'hold_time' in section [uenv] (first set on line 2)" },
	{ "[uenv]\nallowed_mount_points = /user-environment, /\n",
	  "helper.conf:2: [uenv] allowed_mount_points: '/': cannot mount over /" },
	{ "[uenv]\nallowed_mount_points = /proc/x\n",
	  "helper.conf:2: [uenv] allowed_mount_points: '/proc/x' is under /proc, where no "
	  "image may be mounted" },
	{ "[uenv]\nallowed_mount_points = /sys\n",
	  "helper.conf:2: [uenv] allowed_mount_points: '/sys' is under /sys, where no "
	  "image may be mounted" },
	{ "[uenv]\nallowed_mount_points = //dev/./shm\n",
	  "helper.conf:2: [uenv] allowed_mount_points: '//dev/./shm' is under /dev, where no "
	  "image may be mounted" },
	{ "[uenv]\nallowed_mount_points = /run/pact/uenv/x\n",
	  "helper.conf:2: [uenv] allowed_mount_points: '/run/pact/uenv/x' is under /run/pact, "
	  "where no image may be mounted" },
	{ "[uenv]\nallowed_mount_points = user-environment\n",
	  "helper.conf:2: [uenv] allowed_mount_points: 'user-environment' is not an absolute "
	  "path" },
	{ "[uenv]\nimage_prefixes = /images/../etc\n",
	  "helper.conf:2: [uenv] image_prefixes: '/images/../etc' contains a '..' component" },
	{ "[uenv]\nmount_base = /opt/uenv\nallowed_mount_points = /opt/uenv/a\n",
	  "helper.conf:3: [uenv] allowed_mount_points: '/opt/uenv/a' overlaps mount_base "
	  "/opt/uenv" },
	{ "[uenv]\nallowed_mount_points = /opt\n[helper]\nstate_dir = /opt/state\n",
	  "helper.conf:2: [uenv] allowed_mount_points: '/opt' overlaps state_dir /opt/state" },
	{ "[uenv]\ncreate_mount_points = /scratch\n",
	  "helper.conf:2: [uenv] create_mount_points: '/scratch' is not in "
	  "allowed_mount_points" },
	{ "[access]\nallowed_users = daemon, no-such-user-hpcn\n",
	  "helper.conf:2: [access] allowed_users: unknown user 'no-such-user-hpcn'" },
	{ "[access]\nallowed_groups = no-such-group-hpcn\n",
	  "helper.conf:2: [access] allowed_groups: unknown group 'no-such-group-hpcn'" },
	{ "[access]\nallowed_users = 4294967295\n",
	  "helper.conf:2: [access] allowed_users: unknown user '4294967295'" },
	{ "[helper]\nsocket_mode = 0999\n",
	  "helper.conf:2: [helper] socket_mode: '0999' is not an octal mode (0000..0777)" },
	{ "[helper]\nsocket_mode = 1777\n",
	  "helper.conf:2: [helper] socket_mode: '1777' is not an octal mode (0000..0777)" },
	{ "[helper]\nsocket_mode = rw-rw----\n",
	  "helper.conf:2: [helper] socket_mode: 'rw-rw----' is not an octal mode (0000..0777)" },
	{ "[helper]\nlog_level = verbose\n",
	  "helper.conf:2: [helper] log_level: 'verbose' is not a log level (error, warning, "
	  "notice, info, debug)" },
	{ "[helper]\nlog_target = syslog\n",
	  "helper.conf:2: [helper] log_target: 'syslog' is not a log target (auto, stderr, "
	  "journal)" },
	{ "[uenv]\nhold_time\n",
	  "helper.conf:2: syntax error (expected '[section]' or 'key = value')" },
	/* inih's syntax error on line 2 comes before our unknown key on line 3. */
	{ "[uenv]\ngarbage\nfoo = 1\n",
	  "helper.conf:2: syntax error (expected '[section]' or 'key = value')" },
	{ "[uenv\nhold_time = 1\n",
	  "helper.conf:1: syntax error (expected '[section]' or 'key = value')" },
	{ "[uenv]\nhold_time = 5\n  6\n",
	  "helper.conf:3: [uenv] hold_time: indented line continues a value that is not a "
	  "list (remove the leading whitespace)" },
	{ "[uenv]\nimage_prefixes = /a\n  max_images = 2\n",
	  "helper.conf:3: [uenv] image_prefixes: 'max_images = 2' is not an absolute path" },
	{ "[uenv]\n# hold_time = 5 # a '#' inline is part of the value\nhold_time = 5 # s\n",
	  "helper.conf:3: [uenv] hold_time: '5 # s' is not a number of seconds" },
};

static void test_errors(void **state)
{
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *ec = &error_cases[i];
		struct hpcn_config c;
		struct hpcn_error err = { 0 };
		char want[HPCN_ERROR_MESSAGE_MAX];

		snprintf(want, sizeof(want), "invalid argument: %s", ec->message);
		if (hpcn_config_load_string(&c, ec->text, "helper.conf", &err) != -1)
			fail_msg("case %zu: accepted:\n%s", i, ec->text);
		assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
		if (strcmp(err.message, want) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, err.message, want);
		/* A failed load holds nothing (valgrind checks) and is free-safe. */
		assert_null(c.allowed_mount_points.v);
		hpcn_config_free(&c);
	}
}

static void test_long_line(void **state)
{
	char text[512];
	struct hpcn_config c;
	struct hpcn_error err = { 0 };

	snprintf(text, sizeof(text), "[uenv]\nimage_prefixes = /%0300d\n", 0);
	assert_int_equal(hpcn_config_load_string(&c, text, "helper.conf", &err), -1);
	assert_string_equal(err.message,
			    "invalid argument: helper.conf:2: line longer than 198 characters");
}

static void test_lists(void **state)
{
	static const char text[] =
		"[uenv]\n"
		"allowed_mount_points =  /a ,/b,, /c/ ,\n"
		"\t/d//e/./f,\n"
		"\n"
		"    /a\n"
		"image_prefixes = /images/\n"
		"create_mount_points = /b/\n"
		"[access]\n"
		"allowed_users = ,\n"
		"allowed_groups = 7 , 7,8\n";
	struct hpcn_config c;
	struct hpcn_error err = { 0 };

	assert_int_equal(hpcn_config_load_string(&c, text, "lists.conf", &err), 0);
	/* Normalised, trimmed, empty items and duplicates dropped. */
	assert_strv(&c.allowed_mount_points, 4, "/a", "/b", "/c", "/d/e/f");
	assert_strv(&c.image_prefixes, 1, "/images");
	assert_strv(&c.create_mount_points, 1, "/b");
	assert_int_equal(c.allowed_uids.n, 0);
	assert_int_equal(c.allowed_gids.n, 2);
	assert_int_equal(c.allowed_gids.v[0], 7);
	assert_int_equal(c.allowed_gids.v[1], 8);
	hpcn_config_free(&c);

	/* An empty value empties a list that has a default. */
	assert_int_equal(hpcn_config_load_string(&c, "[uenv]\nallowed_mount_points =\n",
						 "x", &err), 0);
	assert_int_equal(c.allowed_mount_points.n, 0);
	assert_false(hpcn_config_mount_point_allowed(&c, "/user-environment"));
	hpcn_config_free(&c);
}

static void test_syntax_variants(void **state)
{
	struct hpcn_config c;
	struct hpcn_error err = { 0 };

	/* CRLF line ends, a BOM, ':' separators, booleans in any case. */
	assert_int_equal(hpcn_config_load_string(&c, "\xEF\xBB\xBF[cgroup]\r\nenabled: OFF\r\n"
						 "limits_mandatory=Yes\r\n", "crlf", &err), 0);
	assert_false(c.cgroup_enabled);
	assert_true(c.limits_mandatory);
	hpcn_config_free(&c);

	/* Empty text and only comments: the defaults. */
	assert_int_equal(hpcn_config_load_string(&c, "", "empty", &err), 0);
	assert_defaults(&c);
	hpcn_config_free(&c);
	assert_int_equal(hpcn_config_load_string(&c, "; x\n# y\n\n[uenv]\n", "c", &err), 0);
	assert_defaults(&c);
	hpcn_config_free(&c);

	/* root = auto after an explicit value in another load. */
	assert_int_equal(hpcn_config_load_string(&c, "[cgroup]\nroot = auto\n", "a", &err), 0);
	assert_string_equal(c.cgroup_root, "");
	hpcn_config_free(&c);
}

static void test_path_normalize(void **state)
{
	char out[PATH_MAX], small[4];

	assert_int_equal(hpcn_path_normalize("/a//b/./c/", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/b/c");
	assert_int_equal(hpcn_path_normalize("///", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(hpcn_path_normalize("/a/..b/c..", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/..b/c..");
	assert_int_equal(hpcn_path_normalize("/a/../b", out, sizeof(out)), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(hpcn_path_normalize("/a/..", out, sizeof(out)), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(hpcn_path_normalize("a/b", out, sizeof(out)), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hpcn_path_normalize("", out, sizeof(out)), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hpcn_path_normalize("/abcd", small, sizeof(small)), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(hpcn_path_normalize("/abc", small, sizeof(small)), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(hpcn_path_normalize("/ab", small, sizeof(small)), 0);
	assert_string_equal(small, "/ab");

	assert_true(hpcn_path_has_prefix("/images/a", "/images"));
	assert_true(hpcn_path_has_prefix("/images", "/images"));
	assert_false(hpcn_path_has_prefix("/images2/a", "/images"));
	assert_true(hpcn_path_has_prefix("/x", "/"));
}

static void test_allowlists(void **state)
{
	struct hpcn_config c;
	struct hpcn_error err = { 0 };

	assert_int_equal(hpcn_config_load_string(&c,
		"[uenv]\nimage_prefixes = /images, /scratch/uenv/\n"
		"allowed_mount_points = /user-environment, /user-tools\n"
		"create_mount_points = /user-tools\n"
		"[access]\nallowed_users = 1000\nallowed_groups = 2000\n", "allow", &err), 0);

	assert_true(hpcn_config_image_allowed(&c, "/images/a.sqfs"));
	assert_true(hpcn_config_image_allowed(&c, "//images/./sub/a.sqfs"));
	assert_true(hpcn_config_image_allowed(&c, "/scratch/uenv/x/y.sqfs"));
	assert_false(hpcn_config_image_allowed(&c, "/images2/a.sqfs"));
	assert_false(hpcn_config_image_allowed(&c, "/image/a.sqfs"));
	assert_false(hpcn_config_image_allowed(&c, "/images/../etc/x"));
	assert_false(hpcn_config_image_allowed(&c, "/images/a/../../etc/x"));
	assert_false(hpcn_config_image_allowed(&c, "images/a.sqfs"));
	assert_false(hpcn_config_image_allowed(&c, "/images"));
	assert_false(hpcn_config_image_allowed(&c, "/scratch/a.sqfs"));
	assert_false(hpcn_config_image_allowed(&c, ""));
	assert_false(hpcn_config_image_allowed(&c, NULL));

	assert_true(hpcn_config_mount_point_allowed(&c, "/user-environment"));
	assert_true(hpcn_config_mount_point_allowed(&c, "/user-environment/"));
	assert_true(hpcn_config_mount_point_allowed(&c, "/user-tools"));
	assert_false(hpcn_config_mount_point_allowed(&c, "/user-environment/sub"));
	assert_false(hpcn_config_mount_point_allowed(&c, "/user-env"));
	assert_false(hpcn_config_mount_point_allowed(&c, "/user-tools/../user-environment"));
	assert_false(hpcn_config_mount_point_allowed(&c, "user-environment"));
	assert_false(hpcn_config_mount_point_allowed(&c, "/"));
	assert_true(hpcn_config_mount_point_creatable(&c, "/user-tools/"));
	assert_false(hpcn_config_mount_point_creatable(&c, "/user-environment"));
	assert_false(hpcn_config_mount_point_creatable(&c, "/tmp"));

	assert_true(hpcn_config_peer_allowed(&c, 0, 12345));
	assert_true(hpcn_config_peer_allowed(&c, 1000, 1000));
	assert_true(hpcn_config_peer_allowed(&c, 3000, 2000));
	assert_false(hpcn_config_peer_allowed(&c, 3000, 3000));
	assert_false(hpcn_config_peer_allowed(&c, 2000, 1000));
	hpcn_config_free(&c);

	/* No prefixes: any absolute path without "..". */
	assert_int_equal(hpcn_config_defaults(&c), 0);
	assert_true(hpcn_config_image_allowed(&c, "/home/u/a.sqfs"));
	assert_false(hpcn_config_image_allowed(&c, "/home/u/../../etc/shadow"));
	assert_false(hpcn_config_image_allowed(&c, "a.sqfs"));
	assert_false(hpcn_config_peer_allowed(&c, 1000, 1000));
	assert_true(hpcn_config_peer_allowed(&c, 0, 0));
	hpcn_config_free(&c);
}

static void test_shipped_config(void **state)
{
	struct hpcn_config c, d;
	struct hpcn_error err = { 0 };

	if (hpcn_config_load(&c, SHIPPED_CONF, true, &err) != 0)
		fail_msg("%s: %s", SHIPPED_CONF, err.message);
	assert_defaults(&c);
	assert_int_equal(hpcn_config_defaults(&d), 0);
	assert_true(hpcn_config_equal(&c, &d));
	hpcn_config_free(&c);
	hpcn_config_free(&d);
}

/* The shipped file must document every key the parser knows: the dump of
 * the defaults lists them all, and each must appear as "key = " in it. */
static void test_shipped_config_has_every_key(void **state)
{
	struct hpcn_config d;
	char *dump = NULL, *text = NULL, *line, *save = NULL;
	size_t dlen = 0, tlen = 0;
	FILE *f;
	int nkeys = 0;

	assert_int_equal(hpcn_config_defaults(&d), 0);
	f = open_memstream(&dump, &dlen);
	assert_non_null(f);
	assert_int_equal(hpcn_config_dump(&d, f), 0);
	fclose(f);
	f = fopen(SHIPPED_CONF, "r");
	assert_non_null(f);
	assert_int_equal(getdelim(&text, &tlen, '\0', f) > 0, 1);
	fclose(f);
	for (line = strtok_r(dump, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char want[128];
		/* "key = value", or "key =" for a list whose items follow */
		const char *eq = strstr(line, " =");

		if (line[0] == ';' || line[0] == '[' || line[0] == '\t' || !eq)
			continue;
		snprintf(want, sizeof(want), "\n%.*s =", (int)(eq - line), line);
		if (!strstr(text, want))
			fail_msg("key '%.*s' is missing from %s", (int)(eq - line), line,
				 SHIPPED_CONF);
		nkeys++;
	}
	assert_int_equal(nkeys, 23);
	free(dump);
	free(text);
	hpcn_config_free(&d);
}

static void test_dump_roundtrip(void **state)
{
	struct hpcn_config c, back;
	struct hpcn_error err = { 0 };
	char *dump = NULL;
	size_t len = 0;
	FILE *f;

	assert_int_equal(hpcn_config_load_string(&c, full_conf, "full.conf", &err), 0);
	/* Enough image prefixes to need more than one line of 199 bytes. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(hpcn_strv_addf(&c.image_prefixes,
						"/a/rather/long/directory/name/number/%02d", i), 0);
	f = open_memstream(&dump, &len);
	assert_non_null(f);
	assert_int_equal(hpcn_config_dump(&c, f), 0);
	fclose(f);
	assert_non_null(strstr(dump, "[helper]\nsocket = /tmp/t/handoff.sock\n"));
	assert_non_null(strstr(dump, "socket_mode = 0600\n"));
	assert_non_null(strstr(dump, "allowed_users =\n\t1\n\t1234\n"));
	if (hpcn_config_load_string(&back, dump, "dump", &err) != 0)
		fail_msg("%s\n%s", err.message, dump);
	assert_true(hpcn_config_equal(&c, &back));
	assert_int_equal(back.image_prefixes.n, 12);
	hpcn_config_free(&back);

	/* And equal means equal: one key off is noticed. */
	assert_int_equal(hpcn_config_load_string(&back, dump, "dump", &err), 0);
	back.hold_time_secs++;
	assert_false(hpcn_config_equal(&c, &back));
	hpcn_config_free(&back);
	hpcn_config_free(&c);
	free(dump);
}

static void test_reload_merge(void **state)
{
	struct hpcn_config old, next;
	struct hpcn_strv changed = { 0 }, refused = { 0 };
	struct hpcn_error err = { 0 };

	assert_int_equal(hpcn_config_defaults(&old), 0);
	assert_int_equal(hpcn_config_load_string(&next,
		"[helper]\nsocket = /tmp/other.sock\nlog_level = debug\n"
		"[uenv]\nhold_time = 5\nmount_base = /tmp/uenv\n"
		"image_prefixes = /images\n[cgroup]\nroot = /sys/fs/cgroup\n", "next", &err), 0);
	assert_int_equal(hpcn_config_reload_merge(&old, &next, &changed, &refused), 0);
	assert_strv(&changed, 6, "helper.socket", "helper.log_level", "cgroup.root",
		    "uenv.mount_base", "uenv.hold_time", "uenv.image_prefixes");
	assert_strv(&refused, 3, "helper.socket", "cgroup.root", "uenv.mount_base");
	/* Refused keys got their running value back, the others are new. */
	assert_string_equal(next.socket_path, HPCN_HANDOFF_SOCKET_PATH);
	assert_string_equal(next.cgroup_root, "");
	assert_string_equal(next.uenv_mount_base, HPCN_UENV_MOUNT_BASE);
	assert_int_equal(next.hold_time_secs, 5);
	assert_int_equal(next.log_level, LOG_DEBUG);
	assert_strv(&next.image_prefixes, 1, "/images");
	hpcn_strv_free(&changed);
	hpcn_strv_free(&refused);

	/* Merging again: nothing refused any more. */
	assert_int_equal(hpcn_config_reload_merge(&old, &next, &changed, &refused), 0);
	assert_int_equal(refused.n, 0);
	assert_strv(&changed, 3, "helper.log_level", "uenv.hold_time", "uenv.image_prefixes");
	hpcn_strv_free(&changed);
	hpcn_config_free(&old);
	hpcn_config_free(&next);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test_setup_teardown(test_full_from_file, setup_tmp, teardown_tmp),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_syntax_variants),
		cmocka_unit_test(test_path_normalize),
		cmocka_unit_test(test_allowlists),
		cmocka_unit_test(test_shipped_config),
		cmocka_unit_test(test_shipped_config_has_every_key),
		cmocka_unit_test(test_dump_roundtrip),
		cmocka_unit_test(test_reload_merge),
	};

	/* Configuration warnings (file modes) go to stderr, not the journal. */
	hpcn_log_init(HPCN_LOG_STDERR, LOG_WARNING, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

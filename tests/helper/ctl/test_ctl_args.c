/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-nodectl's command line: a table of command lines with the command they
 * mean or the exact usage error; command names; the usage text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <hpcnode/hpcnode.h>

#include "ctl/ctl_format.h"

#include "ctl_test_util.h"

/* ---- argument parsing ---- */

#define MAXARGS 8
struct argv_case {
	const char *argv[MAXARGS]; /* after the program name, NULL-terminated */
	const char *env_socket;
	/* expected on success */
	enum hpcn_ctl_cmd cmd;
	const char *target;
	const char *group;
	const char *socket;        /* NULL: the contract's default */
	int timeout_ms;            /* 0: the default */
	bool json;
	bool emergency;
	/* expected on failure (then the fields above are ignored) */
	const char *error;
};

static const struct argv_case argv_cases[] = {
	/* commands */
	{ { "status" }, .cmd = HPCN_CTL_CMD_STATUS },
	{ { "status", "--json" }, .cmd = HPCN_CTL_CMD_STATUS, .json = true },
	{ { "--json", "status" }, .cmd = HPCN_CTL_CMD_STATUS, .json = true },
	{ { "metrics", "12.0" }, .cmd = HPCN_CTL_CMD_METRICS, .target = "12.0" },
	{ { "metrics", "workload.slice/12.slice", "--json" }, .cmd = HPCN_CTL_CMD_METRICS,
	  .target = "workload.slice/12.slice", .json = true },
	{ { "end", "12.0" }, .cmd = HPCN_CTL_CMD_END, .target = "12.0" },
	{ { "end", "--group", "12" }, .cmd = HPCN_CTL_CMD_END, .group = "12" },
	{ { "end", "--group=12" }, .cmd = HPCN_CTL_CMD_END, .group = "12" },
	{ { "release", "12.0" }, .cmd = HPCN_CTL_CMD_RELEASE, .target = "12.0" },
	{ { "reconcile" }, .cmd = HPCN_CTL_CMD_RECONCILE },
	{ { "force-unmount", "--emergency", "/images/a.sqfs" },
	  .cmd = HPCN_CTL_CMD_FORCE_UNMOUNT, .target = "/images/a.sqfs", .emergency = true },
	{ { "force-unmount", "/images/a.sqfs", "--emergency" },
	  .cmd = HPCN_CTL_CMD_FORCE_UNMOUNT, .target = "/images/a.sqfs", .emergency = true },
	{ { "ping" }, .cmd = HPCN_CTL_CMD_PING },
	{ { "help" }, .cmd = HPCN_CTL_CMD_HELP },
	/* global options */
	{ { "--socket", "/tmp/s.sock", "ping" }, .cmd = HPCN_CTL_CMD_PING,
	  .socket = "/tmp/s.sock" },
	{ { "ping", "--socket=/tmp/s.sock" }, .cmd = HPCN_CTL_CMD_PING, .socket = "/tmp/s.sock" },
	{ { "ping" }, .env_socket = "/tmp/env.sock", .cmd = HPCN_CTL_CMD_PING,
	  .socket = "/tmp/env.sock" },
	{ { "ping" }, .env_socket = "", .cmd = HPCN_CTL_CMD_PING },
	{ { "--socket", "/tmp/opt.sock", "ping" }, .env_socket = "/tmp/env.sock",
	  .cmd = HPCN_CTL_CMD_PING, .socket = "/tmp/opt.sock" },
	{ { "--timeout", "250", "status" }, .cmd = HPCN_CTL_CMD_STATUS, .timeout_ms = 250 },
	{ { "status", "--timeout=3600000" }, .cmd = HPCN_CTL_CMD_STATUS, .timeout_ms = 3600000 },
	{ { "--help" }, .cmd = HPCN_CTL_CMD_HELP },
	{ { "-h" }, .cmd = HPCN_CTL_CMD_HELP },
	{ { "--version" }, .cmd = HPCN_CTL_CMD_VERSION },
	{ { "-V" }, .cmd = HPCN_CTL_CMD_VERSION },
	/* --help and --version win over errors elsewhere on the line */
	{ { "bogus", "--frob", "--help" }, .cmd = HPCN_CTL_CMD_HELP },
	{ { "status", "--version" }, .cmd = HPCN_CTL_CMD_VERSION },
	/* "--" ends the options: an image whose name starts with '-' */
	{ { "force-unmount", "--emergency", "--", "-odd.sqfs" },
	  .cmd = HPCN_CTL_CMD_FORCE_UNMOUNT, .target = "-odd.sqfs", .emergency = true },
	{ { "metrics", "-" }, .cmd = HPCN_CTL_CMD_METRICS, .target = "-" },

	/* usage errors, exact words */
	{ { NULL }, .error = "no command given" },
	{ { "--json" }, .error = "no command given" },
	{ { "frobnicate" }, .error = "unknown command 'frobnicate'" },
	{ { "Status" }, .error = "unknown command 'Status'" },
	{ { "status", "--frob" }, .error = "unknown option '--frob'" },
	{ { "status", "--frob=1" }, .error = "unknown option '--frob'" },
	{ { "status", "-x" }, .error = "unknown option '-x'" },
	{ { "--jsonx", "status" }, .error = "unknown option '--jsonx'" },
	{ { "status", "--json=yes" }, .error = "option '--json' takes no value" },
	{ { "ping", "--socket" }, .error = "option '--socket' needs a value" },
	{ { "ping", "--socket=" }, .error = "option '--socket' needs a value" },
	{ { "ping", "--timeout" }, .error = "option '--timeout' needs a value" },
	{ { "ping", "--timeout", "abc" },
	  .error = "invalid timeout 'abc': expected milliseconds, 1 to 3600000" },
	{ { "ping", "--timeout=0" },
	  .error = "invalid timeout '0': expected milliseconds, 1 to 3600000" },
	{ { "ping", "--timeout=-5" },
	  .error = "invalid timeout '-5': expected milliseconds, 1 to 3600000" },
	{ { "ping", "--timeout=3600001" },
	  .error = "invalid timeout '3600001': expected milliseconds, 1 to 3600000" },
	{ { "ping", "--timeout=10ms" },
	  .error = "invalid timeout '10ms': expected milliseconds, 1 to 3600000" },
	{ { "ping", "--timeout=99999999999999999999" },
	  .error = "invalid timeout '99999999999999999999': expected milliseconds, 1 to 3600000" },
	{ { "status", "extra" }, .error = "unexpected argument 'extra' for 'status'" },
	{ { "ping", "a", "b" }, .error = "unexpected argument 'a' for 'ping'" },
	{ { "metrics" }, .error = "'metrics' needs a cgroup path or an allocation id" },
	{ { "metrics", "a", "b" }, .error = "unexpected argument 'b' for 'metrics'" },
	{ { "end" }, .error = "'end' needs an allocation id or --group GROUP" },
	{ { "end", "12.0", "--group", "12" },
	  .error = "'end' takes an allocation id or --group GROUP, not both" },
	{ { "end", "12.0", "13.0" }, .error = "unexpected argument '13.0' for 'end'" },
	{ { "end", "../x" },
	  .error = "invalid argument: allocation id has a forbidden character 0x2f at "
		   "position 2 (allowed: A-Z a-z 0-9 . _ -)" },
	{ { "end", "--group", ".." },
	  .error = "--group: invalid argument: allocation id \"..\" is reserved" },
	{ { "release" }, .error = "'release' needs an allocation id" },
	{ { "release", "--group", "12" }, .error = "'release' needs an allocation id" },
	{ { "release", "12.0", "--group", "12" },
	  .error = "option '--group' is only valid with 'end'" },
	{ { "status", "--emergency" },
	  .error = "option '--emergency' is only valid with 'force-unmount'" },
	{ { "force-unmount" }, .error = "'force-unmount' needs an image path" },
	{ { "force-unmount", "/images/a.sqfs" },
	  .error = "refusing to force-unmount /images/a.sqfs without --emergency: "
		   "running jobs using it lose the image" },
	/* the first error on the line is the one reported */
	{ { "--frob", "bogus" }, .error = "unknown option '--frob'" },
	{ { "--timeout=x", "--frob", "status" },
	  .error = "invalid timeout 'x': expected milliseconds, 1 to 3600000" },
};

static void check_argv_case(const struct argv_case *tc)
{
	char *argv[MAXARGS + 1] = { (char *)"hpc-nodectl" };
	struct hpcn_ctl_args args;
	char errbuf[256];
	int argc = 1, r;

	for (int i = 0; i < MAXARGS && tc->argv[i]; i++)
		argv[argc++] = (char *)tc->argv[i];

	r = hpcn_ctl_parse_args(argc, argv, tc->env_socket, &args, errbuf, sizeof(errbuf));
	if (tc->error) {
		if (r != -1)
			fail_msg("argv[1]=%s: parsed, expected error '%s'",
				 argc > 1 ? argv[1] : "(none)", tc->error);
		assert_string_equal(errbuf, tc->error);
		return;
	}
	if (r != 0)
		fail_msg("argv[1]=%s: unexpected error '%s'", argv[1], errbuf);
	assert_int_equal(args.cmd, tc->cmd);
	if (tc->target)
		assert_string_equal(args.target, tc->target);
	else if (tc->cmd != HPCN_CTL_CMD_HELP && tc->cmd != HPCN_CTL_CMD_VERSION)
		assert_null(args.target);
	if (tc->group)
		assert_string_equal(args.group, tc->group);
	else
		assert_null(args.group);
	assert_string_equal(args.socket_path, tc->socket ? tc->socket : HPCN_HANDOFF_SOCKET_PATH);
	assert_int_equal(args.timeout_ms, tc->timeout_ms ? tc->timeout_ms : 5000);
	assert_int_equal(args.json, tc->json);
	assert_int_equal(args.emergency, tc->emergency);
}

static void test_parse_args(void **state)
{
	for (size_t i = 0; i < sizeof(argv_cases) / sizeof(argv_cases[0]); i++) {
		print_message("case %zu: %s %s\n", i,
			      argv_cases[i].argv[0] ? argv_cases[i].argv[0] : "",
			      argv_cases[i].error ? "(error)" : "");
		check_argv_case(&argv_cases[i]);
	}
}

/* A tiny error buffer truncates the message, it does not overflow. */
static void test_parse_args_small_buffer(void **state)
{
	char *argv[] = { (char *)"hpc-nodectl", (char *)"frobnicate" };
	struct hpcn_ctl_args args;
	char errbuf[8];

	assert_int_equal(hpcn_ctl_parse_args(2, argv, NULL, &args, errbuf, sizeof(errbuf)), -1);
	assert_string_equal(errbuf, "unknown");
}

static void test_cmd_names(void **state)
{
	assert_string_equal(hpcn_ctl_cmd_name(HPCN_CTL_CMD_FORCE_UNMOUNT), "force-unmount");
	assert_string_equal(hpcn_ctl_cmd_name(HPCN_CTL_CMD_STATUS), "status");
	assert_null(hpcn_ctl_cmd_name(HPCN_CTL_CMD_NONE));
}

static void test_usage_text(void **state)
{
	struct capture c;
	const char *text;

	cap_open(&c);
	hpcn_ctl_usage(c.f);
	text = cap_text(&c);
	/* Every command and option the parser accepts is in the help. */
	for (const char *const *w = (const char *const[]){
		     "status", "metrics PATH|ALLOC", "end ALLOC", "end --group GROUP",
		     "release ALLOC", "reconcile", "force-unmount --emergency IMAGE", "ping",
		     "--socket PATH", "--timeout MS", "--json", "--help", "--version",
		     "/run/pact/handoff.sock", "$HPCN_SOCKET", NULL };
	     *w; w++)
		if (!strstr(text, *w))
			fail_msg("usage text lacks '%s'", *w);
	/* 80 columns at most. */
	for (const char *p = text, *nl; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		assert_non_null(nl);
		assert_true(nl - p <= 80);
	}
	cap_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_args),
		cmocka_unit_test(test_parse_args_small_buffer),
		cmocka_unit_test(test_cmd_names),
		cmocka_unit_test(test_usage_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

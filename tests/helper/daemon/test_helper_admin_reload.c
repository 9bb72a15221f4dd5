/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The helper's SIGHUP reload end to end: a setting that applies at once
 * (hold_time), one that needs a restart (the socket, kept), a broken file
 * (the running configuration kept), hpc-nodectl served throughout.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"
#include "test_helper_admin_util.h"

static int loops_at_start;

/* ---- 4. SIGHUP ---- */

static unsigned hold_time_of(struct hfx *fx)
{
	json_t *st = hfx_status(fx);
	unsigned v = st ? (unsigned)json_integer_value(json_object_get(st, "hold_time_secs")) : 0;

	json_decref(st);
	return v;
}

static bool hold_time_is_1(struct hfx *fx, const void *arg)
{
	(void)arg;
	return hold_time_of(fx) == 1;
}

static bool log_says_kept(struct hfx *fx, const void *arg)
{
	(void)fx;
	return log_has((struct ctx *)arg, "error: reload:",
		       "keeping the running configuration");
}

static void test_sighup_reload(void **state)
{
	struct ctx *c = *state;
	char other[PATH_MAX + 32], line[PATH_MAX + 64];
	struct run r;
	json_t *st;

	c->fx.hold_time = 30;
	start_helper(c, "log_level = notice\n", "log_level = info\n", NULL);
	assert_int_equal(hold_time_of(&c->fx), 30);

	/* hold_time applies now; the socket would need a restart. */
	snprintf(other, sizeof(other), "%s/run/other.sock", c->fx.dir);
	snprintf(line, sizeof(line), "socket = %s\n", other);
	c->fx.hold_time = 1;
	assert_int_equal(hfx_write_conf(&c->fx), 0);
	assert_int_equal(hfx_conf_replace(&c->fx, "log_level = notice\n", "log_level = info\n"),
			 0);
	{
		char from[PATH_MAX + 32];

		snprintf(from, sizeof(from), "socket = %s\n", c->fx.sock);
		assert_int_equal(hfx_conf_replace(&c->fx, from, line), 0);
	}
	assert_int_equal(kill(c->fx.pid, SIGHUP), 0);
	assert_true(hfx_wait_for(hold_time_is_1, &c->fx, NULL, HFX_TIMEOUT_MS));
	st = status(c);
	assert_string_equal(json_string_value(json_object_get(st, "socket")) ?: "", c->fx.sock);
	json_decref(st);
	assert_false(hfx_exists(other));
	assert_true(log_has(c, "warning: reload: helper.socket",
			    "cannot change without a restart; kept"));
	assert_true(log_has(c, "notice: reload: uenv.hold_time", "changed"));
	assert_false(log_has(c, "reload: helper.socket", "changed"));
	assert_true(hfx_alive(c->fx.pid));
	nodectl(c, &r, "ping");
	assert_int_equal(r.rc, 0);

	/* The new hold time is the one used: released, unmounted within ~1 s
	 * (30 s under the old one). */
	request_closed(c, "hup-1", NULL);
	nodectl(c, &r, "end", "hup-1");
	assert_int_equal(r.rc, 0);
	assert_true(hfx_wait_for(image_gone, &c->fx, c->image, HFX_WAIT_MS));
	/* log_level info from the start: the mount was logged at info. */
	assert_true(log_has(c, "info: mounted", c->image));

	/* A broken file: the running configuration stays, the helper serves. */
	{
		FILE *f = fopen(c->fx.conf, "we");

		assert_non_null(f);
		fprintf(f, "[helper\nsocket = %s\n[uenv]\nhold_time = 7\n", other);
		assert_int_equal(fclose(f), 0);
	}
	assert_int_equal(kill(c->fx.pid, SIGHUP), 0);
	assert_true(hfx_wait_for(log_says_kept, &c->fx, c, HFX_TIMEOUT_MS));
	assert_true(hfx_alive(c->fx.pid));
	assert_int_equal(hold_time_of(&c->fx), 1);
	nodectl(c, &r, "--json", "status");
	assert_int_equal(r.rc, 0);
	st = parse_json(r.out);
	assert_int_equal(json_integer_value(json_object_get(st, "hold_time_secs")), 1);
	assert_string_equal(json_string_value(json_object_get(st, "socket")) ?: "", c->fx.sock);
	json_decref(st);
	stop_clean(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sighup_reload, setup, teardown),
	};
	int rv;

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_admin_reload needs root (label root)\n");
		return 1;
	}
	loops_at_start = sqfs_count_loops();
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	if (!sqfs_wait_loop_count(loops_at_start, HFX_WAIT_MS)) {
		fprintf(stderr, "loop devices attached: %d before the tests, %d after\n",
			loops_at_start, sqfs_count_loops());
		return 1;
	}
	return rv;
}

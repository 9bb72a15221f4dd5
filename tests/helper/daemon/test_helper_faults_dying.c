/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper end to end, processes that cannot die: an allocation whose
 * process is frozen in a cgroup v1 freezer (D state after SIGKILL) when it
 * ends: the helper answers at once, serves others, makes the scope a zombie
 * after kill_timeout, keeps it across a restart, and ends it once the
 * process is gone.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/hpcnode.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"
#include "test_helper_faults_util.h"

#define FREEZER_ROOT "/sys/fs/cgroup/freezer"

static bool alloc_zombie(struct hfx *fx, const void *id)
{
	json_t *st = hfx_status(fx), *a = hfx_status_alloc(st, id);
	bool z = a && json_is_true(json_object_get(a, "zombie"));

	json_decref(st);
	return z;
}

static bool alloc_gone(struct hfx *fx, const void *id)
{
	json_t *st = hfx_status(fx);
	bool gone = st && !hfx_status_alloc(st, id);

	json_decref(st);
	return gone;
}

/*
 * F30 with a process that really cannot die: frozen in a cgroup v1 freezer
 * (this hybrid machine has one), where SIGKILL leaves it in D state until it
 * is thawed. Ending its allocation must not stall the helper for
 * kill_timeout: the end answers at once and goes on by itself, other clients
 * are served meanwhile; at kill_timeout the scope is a zombie, which a
 * restart keeps; once the process can die, its scope's cgroup.events ends
 * the allocation (the periodic reconciliation is an hour away here, so it is
 * not what did it).
 */
static void test_end_waits_for_dying_scope(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct hpcn_error err;
	char scope[PATH_MAX * 2 + 2], p[PATH_MAX * 2 + 64], buf[32];
	json_t *st, *a;
	pid_t kid;
	int pfd[2];
	char y;

	if (access(FREEZER_ROOT "/cgroup.procs", F_OK) < 0)
		fail_msg("this test needs the cgroup v1 freezer at " FREEZER_ROOT
			 " (a hybrid cgroup machine, as the CI's)");
	fx->reconcile_interval = 3600;
	assert_int_equal(hfx_write_conf(fx), 0);
	assert_int_equal(hfx_conf_replace(fx, "kill_timeout = 5", "kill_timeout = 2"), 0);
	assert_int_equal(hfx_start_as_written(fx, NULL), 0);
	if (request_img(c, "dying-1", &err) < 0)
		fail_msg("dying-1: %s", err.message);
	st = hfx_status(fx);
	a = hfx_status_alloc(st, "dying-1");
	assert_non_null(a);
	snprintf(scope, sizeof(scope), "%s/%s", fx->cg_root,
		 json_string_value(json_object_get(a, "scope")));
	json_decref(st);

	/* A process in the scope, then frozen. */
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		close(pfd[1]);
		(void)!read(pfd[0], &y, 1); /* until it is placed */
		for (;;)
			pause();
	}
	close(pfd[0]);
	hfx_track(fx, kid);
	snprintf(buf, sizeof(buf), "%d", (int)kid);
	snprintf(p, sizeof(p), "%s/cgroup.procs", scope);
	assert_int_equal(write_str(p, buf), 0);
	snprintf(c->freezer, sizeof(c->freezer), FREEZER_ROOT "/hpcn-it-%d", (int)getpid());
	assert_int_equal(mkdir(c->freezer, 0755), 0);
	snprintf(p, sizeof(p), "%s/cgroup.procs", c->freezer);
	assert_int_equal(write_str(p, buf), 0);
	(void)!write(pfd[1], "y", 1);
	close(pfd[1]);
	hfx_sleep_ms(50); /* back in pause() */
	snprintf(p, sizeof(p), "%s/freezer.state", c->freezer);
	assert_int_equal(write_str(p, "FROZEN"), 0);

	/* The end answers (the admin is told the processes are still dying),
	 * the allocation is ending, not yet a zombie. */
	{
		char *const argv[] = { HPCN_BINARY_DIR "/helper/hpc-nodectl", "--socket",
				       fx->sock, "end", "dying-1", NULL };
		char out[1024];

		assert_int_equal(sqfs_run_capture(argv, out, sizeof(out)), 0);
		if (!strstr(out, "Allocation dying-1 ended.\n") ||
		    !strstr(out, "Allocation dying-1: its processes are still dying"))
			fail_msg("hpc-nodectl end dying-1 printed: %s", out);
	}
	st = hfx_status(fx);
	a = hfx_status_alloc(st, "dying-1");
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(a, "state")), "ending");
	assert_false(json_is_true(json_object_get(a, "zombie")));
	json_decref(st);
	assert_true(hfx_alive(kid));
	/* Others are served meanwhile: a whole allocation comes and goes. */
	if (request_img(c, "other-1", &err) < 0)
		fail_msg("other-1 while dying-1 ends: %s", err.message);
	if (hfx_end(fx, "other-1", &err) < 0)
		fail_msg("AllocationEnded other-1: %s", err.message);
	assert_true(alloc_gone(fx, "other-1"));

	/* kill_timeout (2 s) runs out: a zombie, audited. */
	if (!hfx_wait_for(alloc_zombie, fx, "dying-1", HFX_TIMEOUT_MS))
		fail_msg("dying-1 did not become a zombie after kill_timeout");
	assert_true(hfx_audit_count(fx, "\"cgroup.kill_failed\"", "dying-1",
				    "still populated after 2 s", NULL) >= 1);
	assert_true(hfx_exists(scope));

	/* A restart (SIGKILL) keeps the zombie: its record names it, the new
	 * helper watches its scope again. */
	hfx_stop(fx, SIGKILL, HFX_TIMEOUT_MS);
	assert_int_equal(hfx_start_as_written(fx, NULL), 0);
	st = hfx_status(fx);
	a = hfx_status_alloc(st, "dying-1");
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(a, "state")), "ending");
	assert_true(json_is_true(json_object_get(a, "zombie")));
	json_decref(st);

	/* The process can die now: the scope empties, the allocation ends. */
	freezer_cleanup(c);
	assert_true(hfx_wait_child(kid, HFX_TIMEOUT_MS) != -1);
	if (!hfx_wait_for(alloc_gone, fx, "dying-1", HFX_TIMEOUT_MS))
		fail_msg("dying-1 was not ended once its scope emptied");
	assert_false(hfx_exists(scope));
	assert_true(hfx_audit_count(fx, "\"cgroup.destroy\"", "dying-1", NULL) >= 1);
	assert_no_trace_of(c, "dying-1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_end_waits_for_dying_scope, setup, teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_faults_dying needs root (label root)\n");
		return 1;
	}
	if (getenv("HPCN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("HPCN_TEST_FILTER"));
	return cmocka_run_group_tests_name("test_helper_faults_dying", tests, NULL, NULL);
}

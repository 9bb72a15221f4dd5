/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The helper's reconciliation end to end, driven through the built
 * hpc-nodectl: Reconcile against drift made behind its back (host mount
 * gone, pins of an unknown allocation, an image unmounted inside an
 * allocation's namespace), and WI5 for an allocation that has a mount
 * namespace but no process in its scope.
 */
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"
#include "test_helper_admin_util.h"

/* The helper's HPCN_ORPHAN_GRACE_MS (helper/alloc.c). */
#define ORPHAN_GRACE_MS 30000

static int loops_at_start;

/* Reconcile's corrections, each line checked to be a string. */
static json_t *reconcile(struct ctx *c)
{
	struct run r;
	json_t *j, *corr, *v;
	size_t i;

	nodectl(c, &r, "--json", "reconcile");
	assert_int_equal(r.rc, 0);
	j = parse_json(r.out);
	corr = json_object_get(j, "corrections");
	assert_true(json_is_array(corr));
	json_array_foreach(corr, i, v) {
		assert_true(json_is_string(v));
		fprintf(stderr, "    correction: %s\n", json_string_value(v));
	}
	json_incref(corr);
	json_decref(j);
	return corr;
}

static bool corrections_have(json_t *corr, const char *a, const char *b)
{
	json_t *v;
	size_t i;

	json_array_foreach(corr, i, v)
		if (has_line(json_string_value(v), a, b))
			return true;
	return false;
}

/* ---- 2. reconcile ---- */

static void test_reconcile_nothing_wrong(void **state)
{
	struct ctx *c = *state;
	json_t *corr;
	struct run r;

	c->fx.reconcile_interval = NO_PERIODIC_RECONCILE;
	start_helper(c, NULL);
	request_closed(c, "rc-ok", "rcjob");
	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 0);
	json_decref(corr);

	nodectl(c, &r, "reconcile");
	assert_int_equal(r.rc, 0);
	assert_true(has_line(r.out, "Corrections:", "none"));
	/* Nothing was changed by it. */
	{
		json_t *st = status(c);

		assert_non_null(hfx_status_alloc(st, "rc-ok"));
		assert_int_equal(json_integer_value(json_object_get(
			hfx_status_mount_of(st, c->image), "refcount")), 1);
		json_decref(st);
	}
	stop_clean(c);
}

/* The image's host mount unmounted behind the helper's back. */
static void test_reconcile_host_mount_gone(void **state)
{
	struct ctx *c = *state;
	json_t *corr, *st;
	char *mp;
	int refs = -1;

	c->fx.reconcile_interval = NO_PERIODIC_RECONCILE;
	start_helper(c, NULL);
	request_closed(c, "rc-host", NULL);
	mp = host_mount_point(c, &refs);
	assert_non_null(mp);
	assert_int_equal(refs, 1);
	assert_true(strncmp(mp, c->fx.mount_base, strlen(c->fx.mount_base)) == 0);
	assert_int_equal(umount2(mp, MNT_DETACH), 0);
	assert_int_equal(hfx_mount_id(mp), -1);

	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 1);
	assert_true(corrections_have(corr, mp, "is no longer mounted; forgotten"));
	json_decref(corr);
	assert_true(hfx_audit_count(&c->fx, "\"mount.refcount_corrected\"", "forgotten",
				    NULL) >= 1);
	st = status(c);
	assert_null(hfx_status_mount_of(st, c->image));
	assert_non_null(hfx_status_alloc(st, "rc-host"));
	json_decref(st);

	/* Said once: the next pass has nothing left to correct. */
	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 0);
	json_decref(corr);
	free(mp);
	stop_clean(c);
}

/* Pins of an allocation the helper does not know (F35). */
static void test_reconcile_ghost_pins(void **state)
{
	struct ctx *c = *state;
	char dir[PATH_MAX + 16], pin[PATH_MAX + 32];
	json_t *corr;
	int fd;

	c->fx.reconcile_interval = NO_PERIODIC_RECONCILE;
	start_helper(c, NULL);
	/* helper/ns.c's layout: <state_dir>/ns/<id>/<net|mnt|pid>, each a file
	 * onto which /proc/PID/ns/X is bind-mounted. */
	snprintf(dir, sizeof(dir), "%s/ns/ghost", c->fx.state);
	snprintf(pin, sizeof(pin), "%s/net", dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	fd = open(pin, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mount("/proc/self/ns/net", pin, NULL, MS_BIND, NULL), 0);
	assert_true(hfx_mount_id(pin) > 0);

	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 1);
	assert_true(corrections_have(corr, "namespaces of unknown allocation ghost", "released"));
	json_decref(corr);
	assert_int_equal(hfx_mount_id(pin), -1);
	assert_false(hfx_exists(pin));
	assert_false(hfx_exists(dir));
	assert_int_equal(hfx_audit_count(&c->fx, "\"namespace.leak_detected\"", "ghost", NULL),
			 1);

	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 0);
	json_decref(corr);
	stop_clean(c);
}

/* The image unmounted inside the allocation's own mount namespace. */
static void test_reconcile_ns_mount_gone(void **state)
{
	struct ctx *c = *state;
	struct hpcn_namespace_response resp;
	int fds[HPCN_NS__COUNT];
	json_t *corr;
	pid_t kid;
	int st;

	c->fx.reconcile_interval = NO_PERIODIC_RECONCILE;
	start_helper(c, NULL);
	request(c, "rc-ns", NULL, true, &resp, fds);
	assert_string_equal(resp.uenv_mount_path ?: "", "/user-environment");

	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 0);
	json_decref(corr);

	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct stat sb;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setns(fds[0], CLONE_NEWNS) < 0)
			_exit(1);
		if (stat("/user-environment/bin/hello", &sb) < 0)
			_exit(2);
		if (umount2("/user-environment", MNT_DETACH) < 0)
			_exit(3);
		_exit(stat("/user-environment/bin/hello", &sb) == 0 ? 4 : 0);
	}
	st = hfx_wait_child(kid, HFX_TIMEOUT_MS);
	assert_true(st != -1 && WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	hpcn_close_fds(fds, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&resp);

	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 1);
	assert_true(corrections_have(corr, "allocation rc-ns:", c->image));
	assert_true(corrections_have(corr, "no longer mounted at /user-environment",
				     "in its namespace"));
	json_decref(corr);
	assert_true(hfx_audit_count(&c->fx, "\"mount.refcount_corrected\"", "rc-ns",
				    "/user-environment", NULL) >= 1);
	stop_clean(c);
}

/* ---- 5. WI5 for a process that joined the namespaces but not the scope ---- */

static bool alloc_gone(struct hfx *fx, const void *id)
{
	json_t *st = hfx_status(fx);
	bool gone = st && !hfx_status_alloc(st, id);

	json_decref(st);
	return gone;
}

static void test_wi5_joined_not_placed(void **state)
{
	struct ctx *c = *state;
	struct hpcn_namespace_response resp;
	int fds[HPCN_NS__COUNT], pfd[2];
	long long created, ended;
	json_t *st, *a;
	pid_t kid;
	char ok = 0, pins[PATH_MAX + 16];

	c->fx.reconcile_interval = 1;
	start_helper(c, NULL);
	created = hfx_now_ms();
	request(c, "wi5-1", NULL, true, &resp, fds);
	/* Every allocation has a scope; the joined child is NOT placed in it, so
	 * only the namespace scan can tell that it is still in use. */
	assert_non_null(resp.scope);

	/* A task joins the mount namespace through the handed-off FD. */
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct stat sb;
		char y = 'y';

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setns(fds[0], CLONE_NEWNS) < 0 || stat("/user-environment/bin/hello", &sb) < 0)
			_exit(1);
		hpcn_close_fds(fds, HPCN_NS__COUNT);
		(void)!write(pfd[1], &y, 1);
		for (;;)
			pause();
	}
	hfx_track(&c->fx, kid);
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &ok, 1), 1);
	close(pfd[0]);
	assert_int_equal(ok, 'y');
	/* The client has gone (hpcn_request_namespaces closed its connection),
	 * and our copies of the FDs go too: only the task keeps it in use. */
	hpcn_close_fds(fds, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&resp);
	st = status(c);
	a = hfx_status_alloc(st, "wi5-1");
	assert_non_null(a);
	/* The scope exists and is empty: the task is in the namespace only. */
	assert_true(json_is_string(json_object_get(a, "scope")));
	assert_int_equal(json_integer_value(json_object_get(a, "nr_processes")), 0);
	assert_true(json_is_false(json_object_get(a, "client_connected")));
	json_decref(st);

	/* Several reconcile passes while the task lives: kept. */
	hfx_sleep_ms(3500);
	assert_true(hfx_alive(kid));
	st = status(c);
	assert_non_null(hfx_status_alloc(st, "wi5-1"));
	json_decref(st);

	/*
	 * The task ends: the helper ends the allocation by itself, at a
	 * reconcile pass. Had it never noticed the task, the orphan grace (30 s
	 * from creation) would hold it until then: ending before the grace is
	 * over proves the task was seen while it lived (no speed assumed: the
	 * bound is the helper's grace, not a reconcile interval plus margin).
	 */
	kill(kid, SIGKILL);
	assert_true(hfx_wait_child(kid, HFX_TIMEOUT_MS) != -1);
	assert_true(hfx_wait_for(alloc_gone, &c->fx, "wi5-1", HFX_WAIT_MS));
	ended = hfx_now_ms();
	fprintf(stderr, "  wi5-1 ended %lld ms after its creation (orphan grace %d ms)\n",
		ended - created, ORPHAN_GRACE_MS);
	assert_true(ended - created < ORPHAN_GRACE_MS);
	assert_true(log_has(c, "allocation wi5-1", "no process and no client left"));
	assert_true(hfx_audit_count(&c->fx, "\"namespace.cleanup\"", "wi5-1", NULL) >= 1);
	snprintf(pins, sizeof(pins), "%s/ns/wi5-1", c->fx.state);
	assert_false(hfx_exists(pins));
	/* Its image reference went with it: held, then unmounted. */
	assert_true(hfx_wait_for(image_gone, &c->fx, c->image,
				 HFX_WAIT_MS));
	stop_clean(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reconcile_nothing_wrong, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_host_mount_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_ghost_pins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_ns_mount_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wi5_joined_not_placed, setup, teardown),
	};
	int rv;

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_admin_reconcile needs root (label root)\n");
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

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The administrator's paths end to end: the built hpc-nodectl (fork+exec,
 * stdout, stderr and exit status captured) against a real hpc-node-helper
 * (helper_fixture): its commands against a helper with two allocations, and
 * ForceUnmount. The helper's other admin-side behaviour behind it:
 * test_helper_admin_reconcile.c (Reconcile against drift made behind its
 * back, WI5 for an allocation whose process is in its mount namespace but
 * not its scope), test_helper_admin_reload.c (SIGHUP reloads); what they
 * share: test_helper_admin_util.c.
 */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "image/image.h"
#include "sqfs_fixture.h"
#include "test_helper_admin_util.h"

#define NOBODY 65534

static int loops_at_start;

/* ---- 1. the CLI against a helper with two allocations ---- */

static void test_cli_commands(void **state)
{
	struct ctx *c = *state;
	char sockless[PATH_MAX + 16], path[PATH_MAX * 2];
	struct run r;
	json_t *j, *a, *m, *users;
	size_t i;

	start_helper(c, NULL);
	request_closed(c, "adm-1", "admjob");
	request_closed(c, "adm-2", "admjob");

	nodectl(c, &r, "ping");
	assert_int_equal(r.rc, 0);
	assert_true(has_line(r.out, "hpc-node-helper", "protocol versions 1..1"));

	/* Human status: both allocations, the image, one mount with 2 refs. */
	nodectl(c, &r, "status");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");
	assert_true(has_line(r.out, "Allocations:", "2"));
	assert_true(has_line(r.out, "  adm-1", ""));
	assert_true(has_line(r.out, "  adm-2", ""));
	assert_true(has_line(r.out, "mounts:", c->image));
	assert_true(has_line(r.out, "Mounts:", "1"));
	assert_true(has_line(r.out, "image:", c->image));
	assert_true(has_line(r.out, "refcount:", "2"));
	assert_true(has_line(r.out, "users:", "adm-"));
	assert_true(has_line(r.out, "loop device:", "/dev/loop"));
	assert_true(has_line(r.out, "scope:", "workload.slice/admjob.slice/adm-1.scope"));

	/* --json: what the helper sent, parseable, with the right values. */
	nodectl(c, &r, "status", "--json");
	assert_int_equal(r.rc, 0);
	j = parse_json(r.out);
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), c->fx.pid);
	assert_true(json_is_true(json_object_get(j, "ready")));
	assert_string_equal(json_string_value(json_object_get(j, "socket")) ?: "", c->fx.sock);
	assert_int_equal(json_integer_value(json_object_get(j, "hold_time_secs")),
			 c->fx.hold_time);
	assert_int_equal(hfx_status_n_allocs(j), 2);
	for (int k = 1; k <= 2; k++) {
		char id[16], scope[64];

		snprintf(id, sizeof(id), "adm-%d", k);
		snprintf(scope, sizeof(scope), "workload.slice/admjob.slice/%s.scope", id);
		a = hfx_status_alloc(j, id);
		assert_non_null(a);
		assert_string_equal(json_string_value(json_object_get(a, "state")) ?: "",
				    "active");
		assert_string_equal(json_string_value(json_object_get(a, "group")) ?: "",
				    "admjob");
		assert_string_equal(json_string_value(json_object_get(a, "scope")) ?: "", scope);
		assert_true(json_is_false(json_object_get(a, "client_connected")));
		assert_int_equal(json_integer_value(json_object_get(a, "nr_processes")), 0);
		assert_string_equal(json_string_value(json_array_get(
			json_object_get(a, "namespaces"), 0)) ?: "", "Mount");
		assert_string_equal(json_string_value(json_object_get(json_array_get(
			json_object_get(a, "mounts"), 0), "image_path")) ?: "", c->image);
	}
	assert_int_equal(json_array_size(json_object_get(j, "mounts")), 1);
	m = hfx_status_mount_of(j, c->image);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "refcount")), 2);
	assert_true(json_is_null(json_object_get(m, "hold_remaining_secs")));
	/* One loop device for both, backed by the image. */
	assert_int_equal(hfx_count_loops_of(c->image), 1);
	{
		const char *dev = json_string_value(json_object_get(m, "loop_device")) ?: "";
		char backing[PATH_MAX];

		assert_true(strncmp(dev, "/dev/loop", 9) == 0);
		assert_int_equal(hpcn_loop_backing(dev + 5, backing, sizeof(backing)), 0);
		assert_string_equal(backing, c->image);
	}
	users = json_object_get(m, "users");
	assert_int_equal(json_array_size(users), 2);
	json_array_foreach(users, i, a)
		assert_true(strncmp(json_string_value(a) ?: "", "adm-", 4) == 0);
	json_decref(j);

	/* metrics: by allocation (its scope) and by slice. */
	nodectl(c, &r, "metrics", "adm-1");
	assert_int_equal(r.rc, 0);
	assert_true(strstr(r.out, "adm-1") != NULL);
	nodectl(c, &r, "--json", "metrics", "adm-1");
	assert_int_equal(r.rc, 0);
	j = parse_json(r.out);
	assert_true(json_is_integer(json_object_get(j, "memory_current")));
	assert_true(json_is_integer(json_object_get(j, "cpu_usage_usec")));
	assert_int_equal(json_integer_value(json_object_get(j, "nr_processes")), 0);
	json_decref(j);
	nodectl(c, &r, "metrics", "workload.slice");
	assert_int_equal(r.rc, 0);
	assert_true(strstr(r.out, "workload.slice") != NULL);
	nodectl(c, &r, "metrics", "workload.slice/nosuch.slice");
	assert_int_equal(r.rc, 1);

	/* end, release: exit 0, gone from the status, one reference less each. */
	nodectl(c, &r, "end", "adm-1");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "Allocation adm-1 ended.\n");
	j = status(c);
	assert_null(hfx_status_alloc(j, "adm-1"));
	assert_non_null(hfx_status_alloc(j, "adm-2"));
	assert_int_equal(json_integer_value(json_object_get(hfx_status_mount_of(j, c->image),
							    "refcount")), 1);
	json_decref(j);

	nodectl(c, &r, "release", "adm-2");
	assert_int_equal(r.rc, 0);
	assert_true(has_line(r.out, "Allocation adm-2 ended", "released"));
	j = status(c);
	assert_int_equal(hfx_status_n_allocs(j), 0);
	m = hfx_status_mount_of(j, c->image);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "refcount")), 0);
	assert_true(json_is_integer(json_object_get(m, "hold_remaining_secs")));
	json_decref(j);
	/* The job's slice went with its last allocation. */
	hfx_cg_path(&c->fx, "workload.slice/admjob.slice", path, sizeof(path));
	assert_false(hfx_exists(path));
	hfx_cg_path(&c->fx, "workload.slice", path, sizeof(path));
	assert_true(hfx_exists(path));

	/* Errors and their exit statuses (hpc-nodectl(8)). */
	nodectl(c, &r, "end", "nosuch");
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "hpc-nodectl: allocation not found: nosuch\n");
	assert_string_equal(r.out, "");

	snprintf(sockless, sizeof(sockless), "%s/run/nosuch.sock", c->fx.dir);
	nodectl_as(c, &r, 0, sockless, "status", (const char *)NULL);
	assert_int_equal(r.rc, 3);
	assert_true(strstr(r.err, sockless) != NULL);

	nodectl_as(c, &r, NOBODY, NULL, "status", (const char *)NULL);
	assert_int_equal(r.rc, 4);
	assert_true(strstr(r.err, "uid 65534") != NULL);
	assert_string_equal(r.out, "");

	/* The helper still serves after all that. */
	nodectl(c, &r, "ping");
	assert_int_equal(r.rc, 0);
	assert_true(hfx_wait_for(image_gone, &c->fx, c->image,
				 HFX_WAIT_MS));
	stop_clean(c);
}

/* ---- 3. force-unmount ---- */

static bool no_loops_of_image(struct hfx *fx, const void *image)
{
	(void)fx;
	return hfx_count_loops_of(image) == 0;
}

static void test_force_unmount(void **state)
{
	struct ctx *c = *state;
	struct run r;
	char *mp;
	json_t *st;
	int id, refs = -1, pin_fd, rd;
	pid_t kid, reader;
	int wst;

	c->fx.reconcile_interval = NO_PERIODIC_RECONCILE;
	/* nobody may talk to the helper, so that its ForceUnmount reaches the
	 * request's own check rather than the connection's. */
	start_helper(c, "allowed_users =\n", "allowed_users = 65534\n", NULL);
	request_closed(c, "fu-1", NULL);
	mp = host_mount_point(c, &refs);
	assert_non_null(mp);
	assert_int_equal(refs, 1);
	id = hfx_mount_id(mp);
	assert_true(id > 0);

	/* Without --emergency: a usage error, nothing sent, nothing changed. */
	nodectl(c, &r, "force-unmount", c->image);
	assert_int_equal(r.rc, 2);
	assert_true(strstr(r.err, "--emergency") != NULL);
	assert_int_equal(hfx_mount_id(mp), id);

	/* A non-root client, allowed on the socket: Denied, audited. */
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct hpcn_msg req, resp;
		struct hpcn_error err;
		int sock, rv;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(10);
		sock = hpcn_client_connect(c->fx.sock, HFX_TIMEOUT_MS, &err);
		if (sock < 0)
			_exit(11);
		hpcn_msg_init(&req, HPCN_TAG_FORCE_UNMOUNT);
		req.seq = 9;
		req.u.force_unmount.emergency = true;
		req.u.force_unmount.image_path = strdup(c->image);
		rv = hfx_call(sock, &req, NULL, 0, &resp, NULL, NULL, &err);
		fprintf(stderr, "  nobody's ForceUnmount -> %s\n", rv < 0 ? err.message : "Ok");
		_exit(rv < 0 && err.kind == HPCN_E_DENIED ? 0 : 12);
	}
	wst = hfx_wait_child(kid, 2 * HFX_TIMEOUT_MS);
	assert_true(wst != -1 && WIFEXITED(wst));
	assert_int_equal(WEXITSTATUS(wst), 0);
	assert_int_equal(hfx_audit_count(&c->fx, "\"mount.force_unmount\"", "\"Denied\"",
					 "\"uid\":65534", NULL), 1);
	assert_int_equal(hfx_mount_id(mp), id);

	/* The same client asking for an allocation with a group it is not in
	 * (images would be opened with it): Denied, nothing made. */
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct hpcn_namespace_request req = {
			.allocation_id = (char *)"fu-gid", .n_namespaces = 1,
			.namespaces = { HPCN_NS_MOUNT }, .base_mount_ns_fd_index = -1,
			.has_uid = true, .uid = NOBODY, .gid = 0,
		};
		struct hpcn_namespace_response resp;
		struct hpcn_error err;
		int fds[HPCN_NS__COUNT], rv;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(10);
		rv = hpcn_request_namespaces(c->fx.sock, HFX_TIMEOUT_MS, &req, NULL, 0, &resp, fds,
					     &err);
		fprintf(stderr, "  nobody's request for gid 0 -> %s\n", rv < 0 ? err.message : "Ok");
		_exit(rv < 0 && err.kind == HPCN_E_DENIED &&
		      strstr(err.message, "may not create allocations for gid 0") ? 0 : 12);
	}
	wst = hfx_wait_child(kid, 2 * HFX_TIMEOUT_MS);
	assert_true(wst != -1 && WIFEXITED(wst));
	assert_int_equal(WEXITSTATUS(wst), 0);
	st = status(c);
	assert_null(hfx_status_alloc(st, "fu-gid"));
	json_decref(st);

	/* Status unchanged by both refusals. */
	free(host_mount_point(c, &refs));
	assert_int_equal(refs, 1);

	/* A process of fu-1's job reads the image meanwhile. */
	{
		char pin[PATH_MAX + 32];

		snprintf(pin, sizeof(pin), "%s/ns/fu-1/mnt", c->fx.state);
		pin_fd = open(pin, O_RDONLY | O_CLOEXEC);
		assert_true(pin_fd >= 0);
		reader = hfx_start_reader(&c->fx, pin_fd, "/user-environment/bin/hello", "HELLO",
					  &rd);
		assert_true(reader > 0);
		assert_true(hfx_reader_wait(rd, HFX_WAIT_MS) > 0);
	}

	/* --emergency: gone now, no hold time, from the node and from the
	 * jobs (their reads fail), its loop device freed. */
	nodectl(c, &r, "force-unmount", "--emergency", c->image);
	assert_int_equal(r.rc, 0);
	assert_true(has_line(r.out, "force-unmounted", ""));
	assert_int_equal(hfx_mount_id(mp), -1);
	{
		int got = 0;

		for (long long end = hfx_now_ms() + HFX_WAIT_MS; hfx_now_ms() < end && got >= 0;) {
			hfx_sleep_ms(20);
			got = hfx_reader_drain(rd);
		}
		if (got >= 0)
			fail_msg("fu-1's job still reads the image after the emergency unmount");
		close(rd);
		close(pin_fd);
	}
	if (!hfx_wait_for(no_loops_of_image, &c->fx, c->image, HFX_TIMEOUT_MS))
		fail_msg("the image's loop device stayed after the emergency unmount");
	assert_int_equal(hfx_count_mounts_under(c->fx.mount_base), 0);
	st = status(c);
	assert_null(hfx_status_mount_of(st, c->image));
	assert_int_equal(json_array_size(json_object_get(st, "mounts")), 0);
	json_decref(st);
	/* One record for the node's mount, one for fu-1's namespace. */
	assert_int_equal(hfx_audit_count(&c->fx, "\"mount.force_unmount\"", "\"Success\"",
					 "emergency", NULL), 2);
	assert_int_equal(hfx_audit_count(&c->fx, "\"mount.force_unmount\"", "\"Success\"",
					 "fu-1", "in the allocation's namespace", NULL), 1);

	/* Again: nothing to unmount any more, an error that says so. */
	nodectl(c, &r, "force-unmount", "--emergency", c->image);
	assert_int_equal(r.rc, 1);
	assert_true(strstr(r.err, c->image) != NULL);
	free(mp);

	/* fu-1 lost its reference with the emergency: the image's next mount
	 * counts only its own users, also when fu-1 ends and after a
	 * reconciliation (it used to release, and count, the new mount's). */
	request_closed(c, "fu-2", NULL);
	free(host_mount_point(c, &refs));
	assert_int_equal(refs, 1);
	nodectl(c, &r, "end", "fu-1");
	assert_int_equal(r.rc, 0);
	free(host_mount_point(c, &refs));
	assert_int_equal(refs, 1);
	nodectl(c, &r, "reconcile");
	assert_int_equal(r.rc, 0);
	free(host_mount_point(c, &refs));
	assert_int_equal(refs, 1);
	nodectl(c, &r, "end", "fu-2");
	assert_int_equal(r.rc, 0);
	stop_clean(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cli_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_force_unmount, setup, teardown),
	};
	int rv;

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_admin needs root (label root)\n");
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

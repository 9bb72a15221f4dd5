/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper end to end, restart (WI6): a SIGKILLed helper with 20 live
 * allocations on two images and a process working inside one of them comes
 * back with the same allocations, refcounts, mounts and namespaces, without
 * disturbing the process; a crash in the middle of creating an allocation
 * leaves nothing once the helper has started again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
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

#define N_ALLOCS 20

struct ctx {
	struct hfx fx;
	struct sqfs_fixture sq;
	char img[2][PATH_MAX];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	*state = c;
	if (hfx_setup(&c->fx) < 0 || sqfs_fixture_init(&c->sq) < 0 ||
	    sqfs_fixture_make_image(&c->sq, "appA", "HELLO-A", c->img[0], PATH_MAX) < 0 ||
	    sqfs_fixture_make_image(&c->sq, "appB", "HELLO-B", c->img[1], PATH_MAX) < 0)
		return -1;
	return hfx_start(&c->fx);
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	if (!c)
		return 0;
	hfx_teardown(&c->fx);
	sqfs_fixture_cleanup(&c->sq);
	free(c);
	return 0;
}

struct alloc_info {
	char id[16];
	enum hpcn_ns_type types[HPCN_NS__COUNT];
	size_t n;
	ino_t ino[HPCN_NS__COUNT];
};

static void types_of(int i, struct alloc_info *a)
{
	snprintf(a->id, sizeof(a->id), "r-%02d", i);
	a->n = 0;
	a->types[a->n++] = HPCN_NS_MOUNT;
	if (i == 0 || i == 3)
		a->types[a->n++] = HPCN_NS_PID;
	if (i == 1 || i == 3)
		a->types[a->n++] = HPCN_NS_NET;
}

static void request_inodes(struct ctx *c, struct alloc_info *a, ino_t *ino, int *mnt_fd)
{
	struct hpcn_namespace_response r;
	struct hpcn_error err;
	int fds[HPCN_NS__COUNT];

	if (hfx_request(&c->fx, a->id, a->types, a->n, c->img[(a->id[3] - '0') % 2 ? 1 : 0],
			&r, fds, &err) < 0)
		fail_msg("NamespaceRequest %s: %s", a->id, err.message);
	assert_int_equal(r.n_fd_types, a->n);
	for (size_t k = 0; k < a->n; k++) {
		struct stat st;

		assert_int_equal(r.fd_types[k], a->types[k]);
		assert_int_equal(fstat(fds[k], &st), 0);
		ino[k] = st.st_ino;
		if (mnt_fd && a->types[k] == HPCN_NS_MOUNT) {
			*mnt_fd = fds[k];
			fds[k] = -1;
		}
	}
	hpcn_close_fds(fds, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r);
}

static int refcount_of(json_t *st, const char *image, char *mp, size_t cap)
{
	json_t *m = hfx_status_mount_of(st, image);

	if (!m)
		return -1;
	if (mp)
		snprintf(mp, cap, "%s", json_string_value(json_object_get(m, "mount_point")) ?: "");
	return (int)json_integer_value(json_object_get(m, "refcount"));
}

static bool all_gone(struct hfx *fx, const void *arg)
{
	const struct ctx *c = arg;

	return hfx_count_mounts_under(fx->mount_base) == 0 && hfx_count_loops_of(c->img[0]) == 0 &&
	       hfx_count_loops_of(c->img[1]) == 0;
}

static void test_sigkill_restart_keeps_everything(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct alloc_info a[N_ALLOCS];
	char mp[2][PATH_MAX], mp2[PATH_MAX], p[PATH_MAX * 2];
	int mount_id[2], reader_fd, mnt0 = -1;
	pid_t reader;
	json_t *st;
	int status;

	for (int i = 0; i < N_ALLOCS; i++) {
		types_of(i, &a[i]);
		request_inodes(c, &a[i], a[i].ino, i == 0 ? &mnt0 : NULL);
	}
	reader = hfx_start_reader(fx, mnt0, "/user-environment/bin/hello", "HELLO-A",
				  &reader_fd);
	assert_true(reader > 0);
	close(mnt0);
	{
		struct hpcn_error err;

		if (hfx_attach(fx, "r-00", reader, &err) < 0)
			fail_msg("Attach: %s", err.message);
	}
	assert_true(hfx_reader_wait(reader_fd, HFX_WAIT_MS) > 0);

	st = hfx_status(fx);
	assert_int_equal(hfx_status_n_allocs(st), N_ALLOCS);
	assert_int_equal(refcount_of(st, c->img[0], mp[0], PATH_MAX), N_ALLOCS / 2);
	assert_int_equal(refcount_of(st, c->img[1], mp[1], PATH_MAX), N_ALLOCS / 2);
	json_decref(st);
	for (int k = 0; k < 2; k++) {
		mount_id[k] = hfx_mount_id(mp[k]);
		assert_true(mount_id[k] > 0);
		assert_int_equal(hfx_count_loops_of(c->img[k]), 1);
	}

	/* Crash. */
	status = hfx_stop(fx, SIGKILL, HFX_TIMEOUT_MS);
	assert_true(WIFSIGNALED(status));
	assert_true(hfx_alive(reader));
	assert_int_equal(hfx_start(fx), 0);

	st = hfx_status(fx);
	assert_non_null(st);
	assert_int_equal(hfx_status_n_allocs(st), N_ALLOCS);
	for (int i = 0; i < N_ALLOCS; i++) {
		json_t *j = hfx_status_alloc(st, a[i].id);

		if (!j)
			fail_msg("allocation %s lost in the restart", a[i].id);
		assert_string_equal(json_string_value(json_object_get(j, "state")) ?: "", "active");
		assert_int_equal(json_array_size(json_object_get(j, "namespaces")), a[i].n);
	}
	for (int k = 0; k < 2; k++) {
		assert_int_equal(refcount_of(st, c->img[k], mp2, sizeof(mp2)), N_ALLOCS / 2);
		assert_string_equal(mp2, mp[k]);
		assert_int_equal(hfx_mount_id(mp[k]), mount_id[k]);
		assert_int_equal(hfx_count_loops_of(c->img[k]), 1);
	}
	assert_int_equal(json_integer_value(json_object_get(hfx_status_alloc(st, "r-00"),
							    "nr_processes")), 1);
	json_decref(st);

	/* The same namespaces are handed out again, no new reference. */
	for (int i = 0; i < N_ALLOCS; i++) {
		ino_t ino[HPCN_NS__COUNT];

		request_inodes(c, &a[i], ino, NULL);
		for (size_t k = 0; k < a[i].n; k++)
			if (ino[k] != a[i].ino[k])
				fail_msg("%s: %s namespace changed in the restart", a[i].id,
					 hpcn_ns_type_name(a[i].types[k]));
	}
	st = hfx_status(fx);
	assert_int_equal(refcount_of(st, c->img[0], NULL, 0), N_ALLOCS / 2);
	assert_int_equal(refcount_of(st, c->img[1], NULL, 0), N_ALLOCS / 2);
	json_decref(st);

	/* The process did not notice. */
	hfx_reader_drain(reader_fd);
	assert_true(hfx_reader_wait(reader_fd, HFX_WAIT_MS) > 0);
	assert_true(hfx_alive(reader));

	/* End everything: the reader dies with r-00's scope, the images go
	 * after the hold time, no pin, scope or record is left. */
	for (int i = 0; i < N_ALLOCS; i++) {
		struct hpcn_error err;

		if (hfx_end(fx, a[i].id, &err) < 0)
			fail_msg("AllocationEnded %s: %s", a[i].id, err.message);
	}
	status = hfx_wait_child(reader, HFX_TIMEOUT_MS);
	assert_true(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(reader_fd);
	if (!hfx_wait_for(all_gone, fx, c, HFX_WAIT_MS))
		fail_msg("after the hold time: %d mount(s) under %s, loops %d + %d",
			 hfx_count_mounts_under(fx->mount_base), fx->mount_base,
			 hfx_count_loops_of(c->img[0]), hfx_count_loops_of(c->img[1]));
	snprintf(p, sizeof(p), "%s/ns", fx->state);
	assert_int_equal(hfx_count_entries(p), 0);
	snprintf(p, sizeof(p), "%s/allocations", fx->state);
	assert_int_equal(hfx_count_entries(p), 0);
	hfx_cg_path(fx, "workload.slice", p, sizeof(p));
	{
		struct dirent *de;
		DIR *d = opendir(p);
		int scopes = 0;

		assert_non_null(d);
		while ((de = readdir(d)))
			scopes += de->d_type == DT_DIR && de->d_name[0] != '.';
		closedir(d);
		assert_int_equal(scopes, 0);
	}
	st = hfx_status(fx);
	assert_int_equal(hfx_status_n_allocs(st), 0);
	assert_int_equal(json_array_size(json_object_get(st, "mounts")), 0);
	json_decref(st);
}

/* A net namespace pinned by hand at <state>/ns/<id>/net (a helper that
 * crashed after creating it). */
static void pin_net(struct hfx *fx, const char *id)
{
	char dir[PATH_MAX * 2], pin[PATH_MAX * 2 + 8], src[64];
	int pfd[2];
	pid_t kid;
	char x;

	snprintf(dir, sizeof(dir), "%s/ns/%s", fx->state, id);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(pin, sizeof(pin), "%s/net", dir);
	assert_int_equal(close(open(pin, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		if (unshare(CLONE_NEWNET) < 0)
			_exit(1);
		(void)!write(pfd[1], "x", 1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &x, 1), 1);
	close(pfd[0]);
	snprintf(src, sizeof(src), "/proc/%d/ns/net", (int)kid);
	assert_int_equal(mount(src, pin, NULL, MS_BIND, NULL), 0);
	kill(kid, SIGKILL);
	assert_true(hfx_wait_child(kid, HFX_TIMEOUT_MS) != -1);
	assert_true(hfx_count_mounts_under(pin) == 1);
}

static void write_record(struct hfx *fx, const char *id, const char *json)
{
	char p[PATH_MAX * 2];
	FILE *f;

	snprintf(p, sizeof(p), "%s/allocations/%s.json", fx->state, id);
	f = fopen(p, "we");
	assert_non_null(f);
	fputs(json, f);
	assert_int_equal(fclose(f), 0);
}

/* Crash injected mid-create: "creating" records and their leftovers
 * (scope, pins, an image mount whose reference was never counted) are
 * removed when the helper starts again. */
static void test_crash_mid_create_leaves_nothing(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	const enum hpcn_ns_type mnt_net[2] = { HPCN_NS_MOUNT, HPCN_NS_NET };
	char p[PATH_MAX * 2], scope1[PATH_MAX * 2], scope2[PATH_MAX * 2];
	struct hpcn_namespace_response r;
	struct hpcn_error err;
	int fds[HPCN_NS__COUNT];
	json_t *rec, *st;

	/* A real allocation, then a crash; its record is turned back into
	 * "creating", as if the crash came before it was complete. */
	if (hfx_request(&c->fx, "crash-img", mnt_net, 2, c->img[0], &r, fds, &err) < 0)
		fail_msg("NamespaceRequest: %s", err.message);
	hpcn_close_fds(fds, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r);
	assert_true(WIFSIGNALED(hfx_stop(fx, SIGKILL, HFX_TIMEOUT_MS)));
	snprintf(p, sizeof(p), "%s/allocations/crash-img.json", fx->state);
	rec = json_load_file(p, 0, NULL);
	assert_non_null(rec);
	assert_string_equal(json_string_value(json_object_get(rec, "state")) ?: "", "active");
	json_object_set_new(rec, "state", json_string("creating"));
	assert_int_equal(json_dump_file(rec, p, JSON_COMPACT | JSON_SORT_KEYS), 0);
	json_decref(rec);

	/* A hand-made one: a scope and a pinned net namespace. */
	hfx_cg_path(fx, "workload.slice/crash-1.scope", scope1, sizeof(scope1));
	assert_int_equal(mkdir(scope1, 0755), 0);
	pin_net(fx, "crash-1");
	write_record(fx, "crash-1",
		     "{\"allocation_id\":\"crash-1\",\"created_at\":1700000000,\"gid\":0,"
		     "\"group\":null,\"mounts\":[],\"namespaces\":[\"Net\"],\"peer_uid\":0,"
		     "\"pid_holder\":0,\"scope\":\"workload.slice/crash-1.scope\","
		     "\"state\":\"creating\",\"uid\":0,\"zombie\":false,\"zombie_since\":0}");
	/* An interrupted save. */
	snprintf(p, sizeof(p), "%s/allocations/.crash-2.json.tmp", fx->state);
	assert_int_equal(close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
	hfx_cg_path(fx, "workload.slice/crash-img.scope", scope2, sizeof(scope2));
	assert_true(hfx_exists(scope2));

	assert_int_equal(hfx_start(fx), 0);
	st = hfx_status(fx);
	assert_non_null(st);
	assert_int_equal(hfx_status_n_allocs(st), 0);
	json_decref(st);
	assert_false(hfx_exists(scope1));
	assert_false(hfx_exists(scope2));
	snprintf(p, sizeof(p), "%s/ns", fx->state);
	assert_int_equal(hfx_count_entries(p), 0);
	snprintf(p, sizeof(p), "%s/allocations", fx->state);
	assert_int_equal(hfx_count_entries(p), 0);
	snprintf(p, sizeof(p), "%s/ns/crash-1", fx->state);
	assert_int_equal(hfx_count_mounts_under(p), 0);
	snprintf(p, sizeof(p), "%s/ns/crash-img", fx->state);
	assert_int_equal(hfx_count_mounts_under(p), 0);
	/* The image mount nobody counted goes after the hold time. */
	if (!hfx_wait_for(all_gone, fx, c, HFX_WAIT_MS))
		fail_msg("after the hold time: %d mount(s) under %s, %d loop device(s) of %s",
			 hfx_count_mounts_under(fx->mount_base), fx->mount_base,
			 hfx_count_loops_of(c->img[0]), c->img[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sigkill_restart_keeps_everything, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_crash_mid_create_leaves_nothing, setup,
						teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_restart needs root (label root)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}

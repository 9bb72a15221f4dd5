/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper end to end, namespaces and uenv mounts: the handoff of
 * Mount+Pid+Net FDs with an image at /user-environment, what a process that
 * joins them sees, one loop device per image whatever the number of
 * allocations (WI2), the hold time (WI3), re-acquisition within it, and
 * idempotent NamespaceRequests.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/nsfs.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"

static int loops_at_start;

struct ctx {
	struct hfx fx;
	struct sqfs_fixture sq;
	char image[PATH_MAX];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	*state = c;
	if (hfx_setup(&c->fx) < 0 || sqfs_fixture_init(&c->sq) < 0 ||
	    sqfs_fixture_make_image(&c->sq, "appA", "HELLO-A", c->image, sizeof(c->image)) < 0)
		return -1;
	/*
	 * These tests join the namespaces with short-lived children and then
	 * look at refcounts: with the client gone and the child exited, the
	 * helper may end an allocation by itself (WI5) at its next
	 * reconciliation. Keep that out of the way here; test_helper_admin
	 * tests WI5.
	 */
	c->fx.reconcile_interval = 3600;
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

static void must_request(struct ctx *c, const char *id, const enum hpcn_ns_type *types,
			 size_t n, const char *image, struct hpcn_namespace_response *resp,
			 int fds[HPCN_NS__COUNT])
{
	struct hpcn_error err;

	if (hfx_request(&c->fx, id, types, n, image, resp, fds, &err) < 0)
		fail_msg("NamespaceRequest %s: %s", id, err.message);
}

static void must_end(struct ctx *c, const char *id)
{
	struct hpcn_error err;

	if (hfx_end(&c->fx, id, &err) < 0)
		fail_msg("AllocationEnded %s: %s", id, err.message);
}

struct seen {
	pid_t pid;          /* getpid() inside the pid namespace */
	int hello_rc;
	char hello[128];
	int n_ifs;
	char if0[IF_NAMESIZE + 1];
	int setns_errno;
};

/* A child joins net, mnt and pid (then forks, as setns(CLONE_NEWPID) only
 * applies to children) and reports what it sees. */
static void join_and_look(const int *fds, const enum hpcn_ns_type *types, size_t n,
			  struct seen *out)
{
	int pfd[2];
	pid_t kid;
	int st;

	memset(out, 0, sizeof(*out));
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct seen s = { 0 };
		pid_t g;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (size_t i = 0; i < n; i++)
			if (setns(fds[i], hpcn_ns_type_clone_flag(types[i])) < 0) {
				s.setns_errno = errno;
				(void)!write(pfd[1], &s, sizeof(s));
				_exit(1);
			}
		g = fork();
		if (g == 0) {
			char *argv[] = { "/user-environment/bin/hello", NULL };
			struct if_nameindex *ifs = if_nameindex();

			s.pid = getpid();
			s.hello_rc = sqfs_run_capture(argv, s.hello, sizeof(s.hello));
			for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
				if (s.n_ifs++ == 0)
					snprintf(s.if0, sizeof(s.if0), "%s", i->if_name);
			}
			if (ifs)
				if_freenameindex(ifs);
			(void)!write(pfd[1], &s, sizeof(s));
			_exit(0);
		}
		_exit(g > 0 && waitpid(g, &st, 0) == g && WIFEXITED(st) ? WEXITSTATUS(st) : 2);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], out, sizeof(*out)), (ssize_t)sizeof(*out));
	close(pfd[0]);
	st = hfx_wait_child(kid, HFX_TIMEOUT_MS);
	assert_true(st != -1 && WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_handoff_mount_pid_net(void **state)
{
	struct ctx *c = *state;
	const enum hpcn_ns_type types[3] = { HPCN_NS_MOUNT, HPCN_NS_PID, HPCN_NS_NET };
	struct hpcn_namespace_response resp;
	int fds[HPCN_NS__COUNT];
	struct seen s;
	json_t *st, *a;

	must_request(c, "ns-1", types, 3, c->image, &resp, fds);
	assert_int_equal(resp.n_fd_types, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(resp.fd_types[i], types[i]);
		assert_true(fds[i] >= 0);
		assert_int_equal(ioctl(fds[i], NS_GET_NSTYPE), hpcn_ns_type_clone_flag(types[i]));
	}
	assert_string_equal(resp.uenv_mount_path ?: "", "/user-environment");
	assert_int_equal(resp.n_mounts, 1);
	assert_string_equal(resp.mounts[0].image_path ?: "", c->image);

	join_and_look(fds, resp.fd_types, resp.n_fd_types, &s);
	assert_int_equal(s.setns_errno, 0);
	assert_int_equal(s.hello_rc, 0);
	assert_string_equal(s.hello, "HELLO-A\n");
	/* Fresh numbering: pid 1 is the holder, we come right after. */
	assert_true(s.pid > 1 && s.pid < 10);
	assert_int_equal(s.n_ifs, 1);
	assert_string_equal(s.if0, "lo");
	/* The host does not see the image at /user-environment. */
	assert_false(hfx_exists("/user-environment/bin/hello"));

	st = hfx_status(&c->fx);
	a = hfx_status_alloc(st, "ns-1");
	assert_non_null(a);
	assert_int_equal(json_array_size(json_object_get(a, "namespaces")), 3);
	assert_true(json_integer_value(json_object_get(a, "pid_holder")) > 1);
	json_decref(st);

	hpcn_close_fds(fds, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&resp);
	must_end(c, "ns-1");
	st = hfx_status(&c->fx);
	assert_int_equal(hfx_status_n_allocs(st), 0);
	json_decref(st);
}

static bool image_gone(struct hfx *fx, const void *image)
{
	return hfx_count_loops_of(image) == 0 && hfx_count_mounts_under(fx->mount_base) == 0;
}

static void wait_image_gone(struct ctx *c)
{
	if (!hfx_wait_for(image_gone, &c->fx, c->image, HFX_WAIT_MS))
		fail_msg("%s still in use %d s after its last release: %d loop device(s), "
			 "%d mount(s) under %s", c->image, HFX_WAIT_MS / 1000,
			 hfx_count_loops_of(c->image), hfx_count_mounts_under(c->fx.mount_base),
			 c->fx.mount_base);
}

static char *mount_point_of(struct ctx *c, int *refcount, bool *held)
{
	json_t *st = hfx_status(&c->fx), *m;
	char *mp;

	assert_non_null(st);
	m = hfx_status_mount_of(st, c->image);
	if (!m) {
		json_decref(st);
		return NULL;
	}
	mp = strdup(json_string_value(json_object_get(m, "mount_point")) ?: "");
	*refcount = (int)json_integer_value(json_object_get(m, "refcount"));
	*held = !json_is_null(json_object_get(m, "hold_remaining_secs"));
	json_decref(st);
	return mp;
}

/* WI2 + WI3: two allocations, one mount, one loop device; both end, the
 * mount stays for the hold time, then goes with its loop device. */
static void test_shared_image_and_hold(void **state)
{
	struct ctx *c = *state;
	const enum hpcn_ns_type mnt[1] = { HPCN_NS_MOUNT };
	struct hpcn_namespace_response r1, r2;
	int f1[HPCN_NS__COUNT], f2[HPCN_NS__COUNT];
	int refs, id;
	bool held;
	char *mp;

	assert_int_equal(hfx_count_loops_of(c->image), 0);
	must_request(c, "sh-1", mnt, 1, c->image, &r1, f1);
	must_request(c, "sh-2", mnt, 1, c->image, &r2, f2);
	assert_int_equal(hfx_count_loops_of(c->image), 1);
	mp = mount_point_of(c, &refs, &held);
	assert_non_null(mp);
	assert_int_equal(refs, 2);
	assert_false(held);
	assert_true(strncmp(mp, c->fx.mount_base, strlen(c->fx.mount_base)) == 0);
	id = hfx_mount_id(mp);
	assert_true(id > 0);
	assert_int_equal(hfx_count_mounts_under(c->fx.mount_base), 1);

	/* Both see the image. */
	for (int k = 0; k < 2; k++) {
		struct seen s;

		join_and_look(k ? f2 : f1, mnt, 1, &s);
		assert_string_equal(s.hello, "HELLO-A\n");
	}
	hpcn_close_fds(f1, HPCN_NS__COUNT);
	hpcn_close_fds(f2, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r1);
	hpcn_namespace_response_free(&r2);

	must_end(c, "sh-1");
	free(mount_point_of(c, &refs, &held));
	assert_int_equal(refs, 1);
	assert_false(held);
	must_end(c, "sh-2");
	free(mount_point_of(c, &refs, &held));
	assert_int_equal(refs, 0);
	assert_true(held);
	/* Within the hold: still mounted, same mount. */
	assert_int_equal(hfx_mount_id(mp), id);
	assert_int_equal(hfx_count_loops_of(c->image), 1);
	/* After it: gone, loop device included. */
	wait_image_gone(c);
	assert_int_equal(hfx_mount_id(mp), -1);
	free(mp);
}

/* Re-acquired within the hold time: no remount, the timer is cancelled. */
static void test_reacquire_within_hold(void **state)
{
	struct ctx *c = *state;
	const enum hpcn_ns_type mnt[1] = { HPCN_NS_MOUNT };
	struct hpcn_namespace_response r;
	int f[HPCN_NS__COUNT];
	int refs, id;
	bool held;
	char *mp;

	must_request(c, "re-1", mnt, 1, c->image, &r, f);
	hpcn_close_fds(f, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r);
	mp = mount_point_of(c, &refs, &held);
	assert_non_null(mp);
	id = hfx_mount_id(mp);
	assert_true(id > 0);
	must_end(c, "re-1");
	free(mount_point_of(c, &refs, &held));
	assert_int_equal(refs, 0);
	assert_true(held);

	must_request(c, "re-2", mnt, 1, c->image, &r, f);
	assert_int_equal(hfx_mount_id(mp), id);
	assert_int_equal(hfx_count_loops_of(c->image), 1);
	free(mount_point_of(c, &refs, &held));
	assert_int_equal(refs, 1);
	assert_false(held);
	{
		struct seen s;

		join_and_look(f, mnt, 1, &s);
		assert_string_equal(s.hello, "HELLO-A\n");
	}
	hpcn_close_fds(f, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r);
	/* The cancelled timer does not fire later. */
	hfx_sleep_ms((int)c->fx.hold_time * 1000 + 800);
	assert_int_equal(hfx_mount_id(mp), id);
	free(mount_point_of(c, &refs, &held));
	assert_int_equal(refs, 1);

	must_end(c, "re-2");
	wait_image_gone(c);
	free(mp);
}

static ino_t ino_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

/* The same request for a live allocation: the same namespaces, no second
 * reference on the image. */
static void test_repeated_request_same_namespaces(void **state)
{
	struct ctx *c = *state;
	const enum hpcn_ns_type types[2] = { HPCN_NS_NET, HPCN_NS_MOUNT };
	struct hpcn_namespace_response r1, r2;
	int f1[HPCN_NS__COUNT], f2[HPCN_NS__COUNT];
	int refs;
	bool held;
	json_t *st;

	must_request(c, "idem-1", types, 2, c->image, &r1, f1);
	must_request(c, "idem-1", types, 2, c->image, &r2, f2);
	assert_int_equal(r1.n_fd_types, 2);
	assert_int_equal(r2.n_fd_types, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(r2.fd_types[i], r1.fd_types[i]);
		assert_int_equal(ino_of(f1[i]), ino_of(f2[i]));
	}
	free(mount_point_of(c, &refs, &held));
	assert_int_equal(refs, 1);
	st = hfx_status(&c->fx);
	assert_int_equal(hfx_status_n_allocs(st), 1);
	json_decref(st);
	assert_int_equal(hfx_count_loops_of(c->image), 1);
	hpcn_close_fds(f1, HPCN_NS__COUNT);
	hpcn_close_fds(f2, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r1);
	hpcn_namespace_response_free(&r2);
	must_end(c, "idem-1");
	wait_image_gone(c);
}

/* SIGTERM: the image stays mounted (WI6), the helper exits cleanly (0, and
 * no leak under the sanitizers), a new helper counts the reference again. */
static void test_sigterm_keeps_mount(void **state)
{
	struct ctx *c = *state;
	const enum hpcn_ns_type mnt[1] = { HPCN_NS_MOUNT };
	struct hpcn_namespace_response r;
	int f[HPCN_NS__COUNT];
	int refs, id, st;
	bool held;
	char *mp;

	must_request(c, "term-1", mnt, 1, c->image, &r, f);
	hpcn_close_fds(f, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r);
	mp = mount_point_of(c, &refs, &held);
	assert_non_null(mp);
	id = hfx_mount_id(mp);
	assert_true(id > 0);

	st = hfx_stop(&c->fx, SIGTERM, HFX_TIMEOUT_MS);
	assert_true(st != -1);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(hfx_mount_id(mp), id);
	assert_int_equal(hfx_count_loops_of(c->image), 1);

	assert_int_equal(hfx_start(&c->fx), 0);
	free(mount_point_of(c, &refs, &held));
	assert_int_equal(refs, 1);
	assert_false(held);
	assert_int_equal(hfx_mount_id(mp), id);
	must_end(c, "term-1");
	wait_image_gone(c);
	free(mp);
}

/* A reconciliation now (as the periodic one would do). */
static void reconcile_now(struct ctx *c)
{
	struct hpcn_msg rq, rp;
	struct hpcn_error err;
	int sock = hfx_connect(&c->fx);

	assert_true(sock >= 0);
	hpcn_msg_init(&rq, HPCN_TAG_RECONCILE);
	rq.seq = 3;
	if (hfx_call(sock, &rq, NULL, 0, &rp, NULL, NULL, &err) < 0)
		fail_msg("Reconcile: %s", err.message);
	hpcn_msg_free(&rq);
	hpcn_msg_free(&rp);
	close(sock);
}

/* A process in mnt_fd's namespace reads the image's hello at path. */
static void assert_sees_image(struct ctx *c, int mnt_fd, const char *path, const char *who)
{
	int rd;
	pid_t reader = hfx_start_reader(&c->fx, mnt_fd, path, "HELLO-A", &rd);

	assert_true(reader > 0);
	if (hfx_reader_wait(rd, HFX_WAIT_MS) <= 0)
		fail_msg("%s does not see the image at %s", who, path);
	kill(reader, SIGKILL);
	waitpid(reader, NULL, 0);
	close(rd);
}

/*
 * One image at two mount points of one allocation, by its path and by a
 * hard link to it: both points show it, and it holds one reference (WI2
 * counts allocations; the reconciliation counts them so), released once.
 */
static void test_one_image_twice_one_reference(void **state)
{
	struct ctx *c = *state;
	char hard[PATH_MAX];

	snprintf(hard, sizeof(hard), "%s/hard.sqfs", c->sq.dir);
	assert_int_equal(linkat(AT_FDCWD, c->image, AT_FDCWD, hard, 0), 0);
	for (int k = 0; k < 2; k++) {
		struct hpcn_namespace_request req = {
			.allocation_id = (char *)"twice", .n_namespaces = 1,
			.namespaces = { HPCN_NS_MOUNT }, .base_mount_ns_fd_index = -1,
			.n_mounts = 2,
		};
		struct hpcn_namespace_response resp;
		struct hpcn_error err;
		int fds[HPCN_NS__COUNT], refs;
		bool held;
		char *mp;

		req.mounts[0].image_path = c->image;
		req.mounts[0].mount_point = (char *)"/user-environment";
		req.mounts[0].image_fd_index = -1;
		req.mounts[1].image_path = k ? hard : c->image;
		req.mounts[1].mount_point = (char *)"/user-tools";
		req.mounts[1].image_fd_index = -1;
		if (hpcn_request_namespaces(c->fx.sock, HFX_TIMEOUT_MS, &req, NULL, 0, &resp, fds,
					    &err) < 0)
			fail_msg("the same image twice%s: %s", k ? " (hard link)" : "",
				 err.message);
		assert_int_equal(resp.n_mounts, 2);
		mp = mount_point_of(c, &refs, &held);
		assert_non_null(mp);
		assert_int_equal(refs, 1);
		assert_false(held);
		free(mp);
		assert_int_equal(hfx_count_loops_of(c->image), 1);
		/* The reconciliation agrees (it would correct a count of 2). */
		reconcile_now(c);
		free(mount_point_of(c, &refs, &held));
		assert_int_equal(refs, 1);
		/* Both points show the image. */
		assert_sees_image(c, fds[0], "/user-environment/bin/hello", "its first point");
		assert_sees_image(c, fds[0], "/user-tools/bin/hello", "its second point");
		hpcn_close_fds(fds, HPCN_NS__COUNT);
		hpcn_namespace_response_free(&resp);
		must_end(c, "twice");
		free(mount_point_of(c, &refs, &held));
		assert_int_equal(refs, 0);
		assert_true(held);
	}
	unlink(hard);
}

/*
 * A mount base reached through a symlink (as /var/run -> /run): the helper
 * uses its real path, so the kernel's mount table (which names real paths)
 * shows its mounts, and a reconciliation keeps them rather than forgetting
 * every image (and then failing to mount it again: "already mounted").
 */
static void test_mount_base_through_symlink(void **state)
{
	struct ctx *c = *state;
	const enum hpcn_ns_type mnt[1] = { HPCN_NS_MOUNT };
	struct hpcn_namespace_response r1, r2;
	int f1[HPCN_NS__COUNT], f2[HPCN_NS__COUNT], refs;
	char real[256], link[128];
	bool held;
	char *mp;

	assert_int_equal(hfx_stop(&c->fx, SIGTERM, HFX_TIMEOUT_MS), 0);
	snprintf(real, sizeof(real), "%s/real-uenv", c->fx.dir);
	snprintf(link, sizeof(link), "%s/lnk", c->fx.dir);
	assert_int_equal(mkdir(real, 0755), 0);
	assert_int_equal(symlink(c->fx.dir, link), 0);
	snprintf(c->fx.mount_base, sizeof(c->fx.mount_base), "%s/real-uenv", link);
	assert_int_equal(hfx_start(&c->fx), 0);

	must_request(c, "via-link", mnt, 1, c->image, &r1, f1);
	mp = mount_point_of(c, &refs, &held);
	assert_non_null(mp);
	assert_true(strncmp(mp, real, strlen(real)) == 0);
	free(mp);
	/* The reconciliation finds the mount where the kernel says it is. */
	reconcile_now(c);
	mp = mount_point_of(c, &refs, &held);
	if (!mp)
		fail_msg("the reconciliation forgot the image mounted under the symlinked base");
	assert_int_equal(refs, 1);
	free(mp);
	/* And a second user of the image shares that mount. */
	must_request(c, "via-link-2", mnt, 1, c->image, &r2, f2);
	free(mount_point_of(c, &refs, &held));
	assert_int_equal(refs, 2);
	assert_int_equal(hfx_count_loops_of(c->image), 1);
	hpcn_close_fds(f1, HPCN_NS__COUNT);
	hpcn_close_fds(f2, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r1);
	hpcn_namespace_response_free(&r2);
	must_end(c, "via-link");
	must_end(c, "via-link-2");
	wait_image_gone(c);
	unlink(link);
}

/*
 * The node-wide mount of an image in use removed behind the helper's back
 * (an admin's umount): the next job of that image must get the image, not
 * the empty directory left, and the running job keeps its own bind.
 */
static void test_host_mount_removed_behind_back(void **state)
{
	struct ctx *c = *state;
	const enum hpcn_ns_type mnt[1] = { HPCN_NS_MOUNT };
	struct hpcn_namespace_response r1, r2;
	int f1[HPCN_NS__COUNT], f2[HPCN_NS__COUNT], refs;
	bool held;
	char *mp;

	must_request(c, "behind-1", mnt, 1, c->image, &r1, f1);
	mp = mount_point_of(c, &refs, &held);
	assert_non_null(mp);
	assert_int_equal(umount2(mp, MNT_DETACH), 0);
	assert_int_equal(hfx_mount_id(mp), -1);

	must_request(c, "behind-2", mnt, 1, c->image, &r2, f2);
	assert_true(hfx_mount_id(mp) > 0);
	free(mount_point_of(c, &refs, &held));
	assert_int_equal(refs, 2);
	assert_sees_image(c, f1[0], "/user-environment/bin/hello", "behind-1");
	assert_sees_image(c, f2[0], "/user-environment/bin/hello", "behind-2");
	hpcn_close_fds(f1, HPCN_NS__COUNT);
	hpcn_close_fds(f2, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r1);
	hpcn_namespace_response_free(&r2);
	must_end(c, "behind-1");
	must_end(c, "behind-2");
	wait_image_gone(c);
	free(mp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handoff_mount_pid_net, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_image_and_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_image_twice_one_reference, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mount_base_through_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_mount_removed_behind_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reacquire_within_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeated_request_same_namespaces, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_keeps_mount, setup, teardown),
	};
	int rv;

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_mounts needs root (label root)\n");
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

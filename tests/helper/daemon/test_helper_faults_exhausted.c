/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper end to end, resources that run out:
 *  - a full state directory (ENOSPC on a tiny tmpfs): a clear error, nothing
 *    half made; once space is back requests work and a restart finds an
 *    intact registry;
 *  - loop devices exhausted (max_loop_devices): a clear error, nothing half
 *    made, held images give way. The kernel's own pool cannot be exhausted
 *    safely here (LOOP_CTL_GET_FREE adds devices beyond max_loop on this
 *    kernel); its failure takes the same path (ENOSPC from loopdev.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/hpcnode.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"
#include "test_helper_faults_util.h"

static bool dir_has_suffix(const char *path, const char *suffix)
{
	struct dirent *de;
	bool found = false;
	DIR *d = opendir(path);

	if (!d)
		return false;
	while ((de = readdir(d)))
		if (strstr(de->d_name, suffix))
			found = true;
	closedir(d);
	return found;
}

static bool no_loops_of(struct hfx *fx, const void *image)
{
	(void)fx;
	return hfx_count_loops_of(image) == 0;
}

static unsigned refcount_of(struct hfx *fx, const char *image)
{
	json_t *st = hfx_status(fx), *m = hfx_status_mount_of(st, image);
	unsigned n = m ? (unsigned)json_integer_value(json_object_get(m, "refcount")) : 0;

	json_decref(st);
	return n;
}

/*
 * Loop devices exhausted, with real loop devices: max_loop_devices = 2 is
 * the node's limit here (the kernel's own cannot be reached safely on this
 * machine, see the top of the file; both end in the same code path, a
 * MountFailed with ENOSPC). A third image while two are in use: a clear
 * error, nothing of the refused allocation left, the running ones untouched.
 * Once an image is only held (its hold time running), it gives way.
 */
static void test_loop_devices_exhausted(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct hpcn_error err;
	char img2[PATH_MAX], img3[PATH_MAX];

	assert_int_equal(sqfs_fixture_make_image(&c->sq, "second", "HELLO-2", img2,
						 sizeof(img2)), 0);
	assert_int_equal(sqfs_fixture_make_image(&c->sq, "third", "HELLO-3", img3,
						 sizeof(img3)), 0);
	fx->hold_time = 600; /* only eviction can free a held image in this test */
	assert_int_equal(hfx_write_conf(fx), 0);
	assert_int_equal(hfx_conf_replace(fx, "[uenv]\n", "[uenv]\nmax_loop_devices = 2\n"), 0);
	assert_int_equal(hfx_start_as_written(fx, NULL), 0);

	assert_int_equal(request_image(c, "lx-1", c->image, &err), 0);
	assert_int_equal(request_image(c, "lx-2", img2, &err), 0);
	assert_int_equal(request_image(c, "lx-3", img3, &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	if (!strstr(err.message, img3) || !strstr(err.message, "no free loop device") ||
	    !strstr(err.message, "max_loop_devices"))
		fail_msg("unclear error for the third image: %s", err.message);
	/* Nothing of lx-3; lx-1 and lx-2 untouched. */
	assert_no_trace_of(c, "lx-3");
	assert_int_equal(hfx_count_loops_of(img3), 0);
	assert_int_equal(hfx_count_loops_of(c->image), 1);
	assert_int_equal(hfx_count_loops_of(img2), 1);
	assert_int_equal(refcount_of(fx, c->image), 1);
	assert_int_equal(refcount_of(fx, img2), 1);

	/* lx-1 ends: its image is held, not used, and gives way to the third. */
	if (hfx_end(fx, "lx-1", &err) < 0)
		fail_msg("AllocationEnded lx-1: %s", err.message);
	assert_int_equal(hfx_count_loops_of(c->image), 1); /* held */
	if (request_image(c, "lx-3", img3, &err) < 0)
		fail_msg("third image once the first was only held: %s", err.message);
	assert_int_equal(hfx_count_mounts_under(fx->mount_base), 2);
	if (!hfx_wait_for(no_loops_of, fx, c->image, HFX_TIMEOUT_MS))
		fail_msg("the held image's loop device was not freed");
	assert_int_equal(hfx_count_loops_of(img3), 1);
	assert_int_equal(refcount_of(fx, img2), 1);
	assert_int_equal(refcount_of(fx, img3), 1);

	/* Both in use again: the first image is refused, then fits once lx-2 ends. */
	assert_int_equal(request_image(c, "lx-4", c->image, &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	assert_no_trace_of(c, "lx-4");
	if (hfx_end(fx, "lx-2", &err) < 0)
		fail_msg("AllocationEnded lx-2: %s", err.message);
	if (request_image(c, "lx-4", c->image, &err) < 0)
		fail_msg("first image again after lx-2 ended: %s", err.message);
	assert_int_equal(hfx_count_loops_of(img2), 0);
	assert_int_equal(hfx_count_loops_of(c->image), 1);

	/* Everything ends; the held images stay until teardown (hold 600 s). */
	for (const char *const *id = (const char *const[]){ "lx-3", "lx-4", NULL }; *id; id++)
		if (hfx_end(fx, *id, &err) < 0)
			fail_msg("AllocationEnded %s: %s", *id, err.message);
	assert_int_equal(refcount_of(fx, img3), 0);
	assert_int_equal(refcount_of(fx, c->image), 0);

	/* A held image that cannot be unmounted (a file open in it, here ours)
	 * is passed over for the next: img3's hold ends first, it is busy, the
	 * first image makes room instead. */
	{
		json_t *st = hfx_status(fx), *m = hfx_status_mount_of(st, img3);
		char f[PATH_MAX * 2];
		int busy;

		assert_non_null(m);
		snprintf(f, sizeof(f), "%s/bin/hello",
			 json_string_value(json_object_get(m, "mount_point")));
		json_decref(st);
		busy = open(f, O_RDONLY | O_CLOEXEC);
		assert_true(busy >= 0);
		if (request_image(c, "lx-5", img2, &err) < 0)
			fail_msg("second image with one held image busy, one not: %s",
				 err.message);
		if (!hfx_wait_for(no_loops_of, fx, c->image, HFX_TIMEOUT_MS))
			fail_msg("the held image that was not busy was not evicted");
		assert_int_equal(hfx_count_loops_of(img3), 1);
		/* Now the only held image is the busy one: refused, naming it. */
		assert_int_equal(request_image(c, "lx-6", c->image, &err), -1);
		if (!strstr(err.message, img3) || !strstr(err.message, "busy"))
			fail_msg("the refusal does not name the busy image: %s", err.message);
		assert_no_trace_of(c, "lx-6");
		close(busy);
		if (hfx_end(fx, "lx-5", &err) < 0)
			fail_msg("AllocationEnded lx-5: %s", err.message);
	}
}

/* ---- a full state directory ---- */

/* Fill the file system of fd's file; returns the bytes written. */
static off_t fill(int fd)
{
	static const char page[4096];
	off_t total = 0;

	for (;;) {
		ssize_t n = write(fd, page, sizeof(page));

		if (n <= 0)
			break;
		total += n;
	}
	assert_int_equal(errno, ENOSPC);
	return total;
}

static void assert_nothing_half_made(struct ctx *c, const char *id)
{
	struct hfx *fx = &c->fx;
	char p[PATH_MAX * 2];
	json_t *st = hfx_status(fx), *m;

	assert_non_null(st);
	if (hfx_status_alloc(st, id))
		fail_msg("%s exists although its creation failed", id);
	/* The image may wait out its hold time, but nobody holds it. */
	m = hfx_status_mount_of(st, c->image);
	if (m) {
		assert_int_equal(json_integer_value(json_object_get(m, "refcount")), 0);
		assert_false(json_is_null(json_object_get(m, "hold_remaining_secs")));
	}
	json_decref(st);
	assert_no_trace_of(c, id);
	snprintf(p, sizeof(p), "%s/allocations", fx->state);
	assert_false(dir_has_suffix(p, ".tmp"));
	if (!hfx_wait_for(scrubbed, fx, c, HFX_WAIT_MS))
		fail_msg("after the hold time: %d mount(s), %d loop device(s)",
			 hfx_count_mounts_under(fx->mount_base), hfx_count_loops_of(c->image));
}

static void test_state_dir_full(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	char filler[PATH_MAX + 16], p[PATH_MAX * 2];
	struct hpcn_error err;
	json_t *st;
	off_t size;
	int fd;

	/* The state directory on a file system of its own, 64 KiB. */
	assert_int_equal(mkdir(fx->state, 0700), 0);
	if (mount("hpcn-test-state", fx->state, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=64k,mode=0700") < 0)
		fail_msg("mount tmpfs on %s: %s", fx->state, strerror(errno));
	assert_int_equal(hfx_start(fx), 0);

	/* Completely full: the write-ahead record cannot be written. */
	snprintf(filler, sizeof(filler), "%s/filler", fx->state);
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	size = fill(fd);
	assert_true(size > 0);
	assert_int_equal(request_img(c, "full-1", &err), -1);
	fprintf(stderr, "state dir full: %s\n", err.message);
	if (!strstr(err.message, "registry record") || !strstr(err.message, "No space left"))
		fail_msg("unclear error for a full state directory: %s", err.message);
	assert_nothing_half_made(c, "full-1");

	/* One page free: the first record fits, the last save fails, after the
	 * scope, the namespaces and the mount were made. All of it goes. */
	assert_int_equal(ftruncate(fd, size - 4096), 0);
	assert_int_equal(request_img(c, "full-2", &err), -1);
	fprintf(stderr, "state dir nearly full: %s\n", err.message);
	if (!strstr(err.message, "No space left"))
		fail_msg("unclear error for a full state directory: %s", err.message);
	/* It failed late: the scope and the mount had been made. */
	assert_int_equal(hfx_audit_count(fx, "cgroup.create", "full-2", NULL), 1);
	assert_int_equal(hfx_audit_count(fx, "mount.acquire", "full-2", NULL), 1);
	assert_int_equal(hfx_audit_count(fx, "namespace.cleanup", "full-2", NULL), 1);
	assert_nothing_half_made(c, "full-2");

	/* Space again: it works. */
	close(fd);
	assert_int_equal(unlink(filler), 0);
	if (request_img(c, "full-3", &err) < 0)
		fail_msg("NamespaceRequest with space again: %s", err.message);

	/* Ending needs no space (the record goes). */
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fill(fd);
	if (request_img(c, "full-4", &err) == 0)
		fail_msg("full-4 was created in a full state directory");
	close(fd);
	assert_int_equal(unlink(filler), 0);
	if (request_img(c, "full-4", &err) < 0)
		fail_msg("full-4 with space again: %s", err.message);
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fill(fd);
	if (hfx_end(fx, "full-4", &err) < 0)
		fail_msg("AllocationEnded in a full state directory: %s", err.message);
	close(fd);
	assert_int_equal(unlink(filler), 0);

	/* A restart finds the registry intact: full-3 only, nothing quarantined. */
	assert_true(WIFSIGNALED(hfx_stop(fx, SIGKILL, HFX_TIMEOUT_MS)));
	assert_int_equal(hfx_start(fx), 0);
	st = hfx_status(fx);
	assert_non_null(st);
	assert_int_equal(hfx_status_n_allocs(st), 1);
	assert_non_null(hfx_status_alloc(st, "full-3"));
	assert_string_equal(json_string_value(json_object_get(hfx_status_alloc(st, "full-3"),
							      "state")) ?: "", "active");
	assert_int_equal(json_integer_value(json_object_get(hfx_status_mount_of(st, c->image),
							    "refcount")), 1);
	json_decref(st);
	snprintf(p, sizeof(p), "%s/allocations", fx->state);
	assert_int_equal(hfx_count_entries(p), 1);
	assert_false(dir_has_suffix(p, ".corrupt"));
	assert_false(dir_has_suffix(p, ".tmp"));
	assert_no_trace_of(c, "full-4");
	if (hfx_end(fx, "full-3", &err) < 0)
		fail_msg("AllocationEnded full-3: %s", err.message);
	assert_no_trace_of(c, "full-3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_loop_devices_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_dir_full, setup, teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_faults_exhausted needs root (label root)\n");
		return 1;
	}
	if (getenv("HPCN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("HPCN_TEST_FILTER"));
	return cmocka_run_group_tests_name("test_helper_faults_exhausted", tests, NULL, NULL);
}

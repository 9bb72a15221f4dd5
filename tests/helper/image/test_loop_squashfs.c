/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loop devices and squashfs mounts on the real kernel (root): the mount is
 * read-only, nosuid, nodev but executable, backed by the image, and goes
 * away with its directory and its loop device; failures leave nothing
 * behind. The whole binary must leave the node's loop device count as it
 * found it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "image/image.h"
#include "sqfs_fixture.h"
#include "util.h"

#define NOBODY 65534
/* How long a detach or an unmount may take to show: wall clock, a bound
 * against hangs only (a loaded machine is slow). */
#define GONE_MS 60000

static struct sqfs_fixture fx;
static char img_a[128], img_b[128], base[128];
static char run_dir[80]; /* fx.dir + "/", kept after the clean-up */

static int setup(void **state)
{
	(void)state;
	if (sqfs_fixture_init(&fx) < 0)
		return -1;
	snprintf(base, sizeof(base), "%s/uenv", fx.dir);
	snprintf(run_dir, sizeof(run_dir), "%s/", fx.dir);
	if (sqfs_fixture_make_image(&fx, "a", "MARKER-A", img_a, sizeof(img_a)) < 0 ||
	    sqfs_fixture_make_image(&fx, "b", "MARKER-B", img_b, sizeof(img_b)) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	int n;

	(void)state;
	n = sqfs_fixture_cleanup(&fx);
	if (n)
		fprintf(stderr, "teardown had to clean %d mounts/loop devices\n", n);
	return 0;
}

/* Empty key directories a failed test left in base. */
static void remove_key_dirs(void)
{
	struct dirent *de;
	DIR *d = opendir(base);

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			(void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	closedir(d);
}

/* After each test nothing of ours may be mounted or attached. When a test
 * failed half-way, clean up here so that the next test starts clean. */
static int check_clean(void **state)
{
	int n;

	(void)state;
	for (unsigned long long end = hpcn_now_ms() + GONE_MS; hpcn_now_ms() < end;) {
		if (sqfs_count_loops_under(run_dir) == 0 && !sqfs_is_mounted_under(fx.dir)) {
			remove_key_dirs(); /* a failed assertion may leave one */
			return 0;
		}
		usleep(10000);
	}
	n = sqfs_fixture_scrub(&fx);
	remove_key_dirs();
	fprintf(stderr, "mounts or loop devices of %s left after the test (%d cleaned)\n",
		fx.dir, n);
	return -1;
}

struct mi {
	const char *mp;
	bool found;
	int count;
	char mopts[256], fstype[64], source[PATH_MAX];
	unsigned int major, minor;
};

static int mi_cb(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct mi *m = ud;

	if (strcmp(e->mount_point, m->mp) != 0)
		return 0;
	m->found = true;
	m->count++;
	snprintf(m->mopts, sizeof(m->mopts), "%s", e->mount_options);
	snprintf(m->fstype, sizeof(m->fstype), "%s", e->fstype);
	snprintf(m->source, sizeof(m->source), "%s", e->source);
	m->major = e->major;
	m->minor = e->minor;
	return 0;
}

static void mountinfo_of(const char *mp, struct mi *m)
{
	struct hpcn_error err;

	memset(m, 0, sizeof(*m));
	m->mp = mp;
	assert_int_equal(hpcn_mountinfo_parse_file(NULL, mi_cb, m, &err), 0);
}

/* Everything the task asks of a uenv mount, checked on the kernel's word. */
static void assert_good_mount(const char *mp, const char *image, const char *marker,
			      char *dev_out)
{
	char p[PATH_MAX + 32], buf[256], want[64], backing[PATH_MAX];
	struct statvfs sv;
	struct stat st;
	struct mi m;
	int fd;

	snprintf(p, sizeof(p), "%s/bin/hello", mp);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	memset(buf, 0, sizeof(buf));
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	snprintf(want, sizeof(want), "echo %s", marker);
	assert_non_null(strstr(buf, want));
	/* Executable: not noexec. */
	{
		char *argv[] = { p, NULL };

		assert_int_equal(sqfs_run_capture(argv, buf, sizeof(buf)), 0);
		snprintf(want, sizeof(want), "%s\n", marker);
		assert_string_equal(buf, want);
	}
	snprintf(p, sizeof(p), "%s/meta/env.json", mp);
	assert_int_equal(access(p, R_OK), 0);
	snprintf(p, sizeof(p), "%s/new-file", mp);
	assert_int_equal(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644), -1);
	assert_int_equal(errno, EROFS);

	assert_int_equal(statvfs(mp, &sv), 0);
	assert_true(sv.f_flag & ST_RDONLY);
	assert_true(sv.f_flag & ST_NOSUID);
	assert_true(sv.f_flag & ST_NODEV);
	assert_false(sv.f_flag & ST_NOEXEC);

	mountinfo_of(mp, &m);
	assert_true(m.found);
	assert_int_equal(m.count, 1);
	assert_string_equal(m.fstype, "squashfs");
	assert_true(hpcn_mountinfo_has_option(m.mopts, "ro"));
	assert_true(hpcn_mountinfo_has_option(m.mopts, "nosuid"));
	assert_true(hpcn_mountinfo_has_option(m.mopts, "nodev"));
	assert_false(hpcn_mountinfo_has_option(m.mopts, "noexec"));
	assert_false(hpcn_mountinfo_has_option(m.mopts, "rw"));
	assert_int_equal(strncmp(m.source, "/dev/loop", 9), 0);
	assert_int_equal(stat(m.source, &st), 0);
	assert_true(S_ISBLK(st.st_mode));
	assert_int_equal(makedev(m.major, m.minor), st.st_rdev);
	assert_int_equal(hpcn_loop_backing(m.source, backing, sizeof(backing)), 0);
	assert_string_equal(backing, image);
	/* The device itself is read-only and clears itself. */
	snprintf(p, sizeof(p), "/sys/block/%s/ro", m.source + 5);
	assert_true(hpcn_read_file_at(AT_FDCWD, p, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "1\n");
	snprintf(p, sizeof(p), "/sys/block/%s/loop/autoclear", m.source + 5);
	assert_true(hpcn_read_file_at(AT_FDCWD, p, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "1\n");
	if (dev_out)
		snprintf(dev_out, 32, "%.31s", m.source);
}

static void assert_unmounted(const char *mp, const char *dev)
{
	assert_false(sqfs_is_mounted(mp));
	assert_int_equal(access(mp, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	if (!sqfs_wait_loop_gone(dev, GONE_MS))
		fail_msg("%s still attached after unmounting %s", dev, mp);
}

static int open_as(const char *path, uid_t uid, struct hpcn_image_id *id)
{
	struct hpcn_error err;
	int fd = -1;

	if (hpcn_image_open_as_user(path, uid, uid, &fd, id, &err) < 0)
		fail_msg("%s", err.message);
	return fd;
}

/* Whether uid can list path (in a child that takes that uid). */
static bool can_list_as(const char *path, uid_t uid)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		DIR *d;

		if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
			_exit(2);
		d = opendir(path);
		_exit(d ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 2);
	return WEXITSTATUS(st) == 0;
}

static void test_mount_image(void **state)
{
	struct hpcn_image_id id;
	struct hpcn_uenv_mount *v = NULL;
	struct hpcn_error err;
	char mp[256], key[HPCN_IMAGE_KEY_MAX], want[PATH_MAX + 100], dev[32];
	size_t n = 0;
	int fd;

	(void)state;
	fd = open_as(img_a, NOBODY, &id);
	if (hpcn_uenv_mount_image(base, fd, img_a, &id, mp, sizeof(mp), &err) < 0)
		fail_msg("%s", err.message);
	/* The image fd is not needed any more: the loop device holds the file. */
	close(fd);
	assert_true(hpcn_image_id_key(&id, key, sizeof(key)) > 0);
	snprintf(want, sizeof(want), "%s/%s", base, key);
	assert_string_equal(mp, want);
	assert_good_mount(mp, img_a, "MARKER-A", dev);
	assert_int_equal(sqfs_count_loops_under(fx.dir), 1);
	/* The node-wide mount is the helper's: other users reach an image only
	 * through their job's bind (the base was created 0755, as a parent). */
	{
		struct stat st;

		assert_int_equal(stat(base, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0700);
		assert_true(can_list_as(mp, 0));
		assert_false(can_list_as(mp, NOBODY));
	}

	/* The table gives the state back, as after a restart. */
	assert_int_equal(hpcn_mountinfo_find_uenv(NULL, base, &v, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_true(v[0].key_valid);
	assert_string_equal(v[0].key, key);
	assert_true(hpcn_image_id_equal(&v[0].id, &id));
	assert_string_equal(v[0].source, dev);
	assert_string_equal(v[0].mount_point, mp);
	free(v);

	if (hpcn_uenv_unmount_image(mp, &err) < 0)
		fail_msg("%s", err.message);
	assert_unmounted(mp, dev);
	assert_int_equal(hpcn_mountinfo_find_uenv(NULL, base, &v, &n, &err), 0);
	assert_int_equal(n, 0);
}

/* Loop devices backed by this run's files (other tests running beside us on
 * the node attach and detach their own: a count of all of them is no
 * measure of ours). */
static int our_loops(void)
{
	return sqfs_count_loops_under(run_dir);
}

/* Wait (bounded by wall-clock time, against hangs only) for our count. */
static bool wait_our_loops(int want)
{
	for (unsigned long long end = hpcn_now_ms() + GONE_MS;; usleep(10000)) {
		if (our_loops() == want)
			return true;
		if (hpcn_now_ms() >= end)
			return false;
	}
}

static void test_two_images(void **state)
{
	struct hpcn_image_id ia, ib;
	struct hpcn_error err;
	char mpa[256], mpb[256], deva[32], devb[32];
	int before = our_loops();
	int fa, fb;

	(void)state;
	fa = open_as(img_a, NOBODY, &ia);
	fb = open_as(img_b, 0, &ib);
	assert_int_equal(hpcn_uenv_mount_image(base, fa, img_a, &ia, mpa, sizeof(mpa), &err), 0);
	assert_int_equal(hpcn_uenv_mount_image(base, fb, img_b, &ib, mpb, sizeof(mpb), &err), 0);
	close(fa);
	close(fb);
	assert_string_not_equal(mpa, mpb);
	assert_good_mount(mpa, img_a, "MARKER-A", deva);
	assert_good_mount(mpb, img_b, "MARKER-B", devb);
	assert_string_not_equal(deva, devb);
	assert_int_equal(our_loops(), before + 2);
	assert_int_equal(hpcn_uenv_unmount_image(mpa, &err), 0);
	assert_unmounted(mpa, deva);
	/* The other one is untouched. */
	assert_good_mount(mpb, img_b, "MARKER-B", NULL);
	assert_int_equal(hpcn_uenv_unmount_image(mpb, &err), 0);
	assert_unmounted(mpb, devb);
	assert_true(wait_our_loops(before));
}

static void test_same_image_twice_refused(void **state)
{
	struct hpcn_image_id id;
	struct hpcn_error err;
	char mp[256], mp2[256], dev[32], want[PATH_MAX + 64];
	int fd;

	(void)state;
	fd = open_as(img_a, NOBODY, &id);
	assert_int_equal(hpcn_uenv_mount_image(base, fd, img_a, &id, mp, sizeof(mp), &err), 0);
	assert_int_equal(hpcn_uenv_mount_image(base, fd, img_a, &id, mp2, sizeof(mp2), &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	assert_int_equal(err.sys_errno, EEXIST);
	snprintf(want, sizeof(want), "mount failed for %s: already mounted at %s", img_a, mp);
	assert_string_equal(err.message, want);
	close(fd);
	/* The first mount is intact, one device only. */
	assert_good_mount(mp, img_a, "MARKER-A", dev);
	assert_int_equal(sqfs_count_loops_under(fx.dir), 1);
	assert_int_equal(hpcn_uenv_unmount_image(mp, &err), 0);
	assert_unmounted(mp, dev);
}

static void test_leftover_dir_reused(void **state)
{
	struct hpcn_image_id id;
	struct hpcn_error err;
	char mp[256], key[HPCN_IMAGE_KEY_MAX], left[PATH_MAX + 100], dev[32];
	int fd;

	(void)state;
	fd = open_as(img_b, NOBODY, &id);
	assert_true(hpcn_image_id_key(&id, key, sizeof(key)) > 0);
	assert_int_equal(hpcn_mkdir_p(base, 0755), 0);
	snprintf(left, sizeof(left), "%s/%s", base, key);
	assert_int_equal(mkdir(left, 0755), 0);
	assert_int_equal(hpcn_uenv_mount_image(base, fd, img_b, &id, mp, sizeof(mp), &err), 0);
	close(fd);
	assert_string_equal(mp, left);
	assert_good_mount(mp, img_b, "MARKER-B", dev);
	assert_int_equal(hpcn_uenv_unmount_image(mp, &err), 0);
	assert_unmounted(mp, dev);
}

static void assert_base_empty(void)
{
	char first[NAME_MAX + 1] = "";
	struct dirent *de;
	DIR *d;
	int n = 0;

	/* No key directory left in base (base itself may exist). */
	d = opendir(base);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!n++)
			snprintf(first, sizeof(first), "%s", de->d_name);
	}
	closedir(d);
	if (n)
		fail_msg("%d entries left in %s (e.g. %s)", n, base, first);
}

static void test_failure_base_not_dir(void **state)
{
	struct hpcn_image_id id;
	struct hpcn_error err;
	char notdir[128], mp[256];
	int before = our_loops();
	int fd;

	(void)state;
	fd = open_as(img_a, NOBODY, &id);
	assert_int_equal(sqfs_fixture_write(&fx, "notadir", "x", 1, 0644, notdir, sizeof(notdir)),
			 0);
	assert_int_equal(hpcn_uenv_mount_image(notdir, fd, img_a, &id, mp, sizeof(mp), &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	assert_int_equal(err.sys_errno, ENOTDIR);
	assert_non_null(strstr(err.message, notdir));
	/* Below a file. */
	snprintf(mp, sizeof(mp), "%s/sub", notdir);
	assert_int_equal(hpcn_uenv_mount_image(mp, fd, img_a, &id, mp, sizeof(mp), &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	/* Relative base, no id, small buffer. */
	assert_int_equal(hpcn_uenv_mount_image("run/uenv", fd, img_a, &id, mp, sizeof(mp), &err),
			 -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_uenv_mount_image(base, fd, img_a, NULL, mp, sizeof(mp), &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_uenv_mount_image(base, fd, img_a, &id, mp, 10, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	/* A symlink as the base, and a base owned by someone else. */
	{
		char link[160], other[160];

		snprintf(link, sizeof(link), "%s/base-link", fx.dir);
		assert_int_equal(symlink(base, link), 0);
		assert_int_equal(hpcn_uenv_mount_image(link, fd, img_a, &id, mp, sizeof(mp),
						       &err), -1);
		assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
		assert_non_null(strstr(err.message, "a symlink?"));
		unlink(link);
		snprintf(other, sizeof(other), "%s/base-other", fx.dir);
		assert_int_equal(mkdir(other, 0700), 0);
		assert_int_equal(chown(other, NOBODY, NOBODY), 0);
		assert_int_equal(hpcn_uenv_mount_image(other, fd, img_a, &id, mp, sizeof(mp),
						       &err), -1);
		assert_non_null(strstr(err.message, "is owned by uid 65534"));
		rmdir(other);
	}
	close(fd);
	assert_true(wait_our_loops(before));
	assert_base_empty();
	unlink(notdir);
}

static void test_failure_image_changed(void **state)
{
	struct hpcn_image_id id;
	struct hpcn_error err;
	char mp[256];
	int before = our_loops();
	int fd;

	(void)state;
	fd = open_as(img_a, NOBODY, &id);
	id.mtime_nsec = (id.mtime_nsec + 1) % 1000000000;
	assert_int_equal(hpcn_uenv_mount_image(base, fd, img_a, &id, mp, sizeof(mp), &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	assert_non_null(strstr(err.message, "image changed since it was checked"));
	close(fd);
	assert_int_equal(our_loops(), before);
	assert_base_empty();
}

/* An image that passes our checks but that the kernel refuses: the failure
 * comes after the loop device is attached and the directory made. */
static void test_failure_kernel_rejects(void **state)
{
	struct hpcn_image_id id;
	struct hpcn_error err;
	char bad[PATH_MAX], mp[256], want[PATH_MAX + 64];
	unsigned char data[8192];
	int before = our_loops();
	int fd, in;
	ssize_t n;

	(void)state;
	in = open(img_a, O_RDONLY | O_CLOEXEC);
	assert_true(in >= 0);
	n = read(in, data, sizeof(data));
	close(in);
	assert_true(n > HPCN_SQUASHFS_SUPERBLOCK_SIZE);
	data[12] = 3;   /* block_size: not a power of two in range */
	data[13] = data[14] = data[15] = 0;
	assert_int_equal(sqfs_fixture_write(&fx, "bad.sqfs", data, (size_t)n, 0644, bad,
					    sizeof(bad)), 0);
	fd = open_as(bad, NOBODY, &id);
	assert_int_equal(hpcn_uenv_mount_image(base, fd, bad, &id, mp, sizeof(mp), &err), -1);
	close(fd);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	snprintf(want, sizeof(want), "mount failed for %s: /dev/loop", bad);
	if (strncmp(err.message, want, strlen(want)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", err.message, want);
	/* New mount API: the kernel's own reason; mount(2) fallback: EINVAL. */
	assert_true(strstr(err.message, "squashfs superblock") || strstr(err.message, "mount on"));
	assert_int_equal(err.sys_errno, EINVAL);
	print_message("kernel refusal reported as: %s\n", err.message);
	assert_true(wait_our_loops(before));
	assert_int_equal(sqfs_count_loops_under(fx.dir), 0);
	assert_base_empty();
	unlink(bad);
}

static void test_loop_attach_direct(void **state)
{
	struct hpcn_error err;
	char dev[32], dev2[32], backing[PATH_MAX];
	int fd, lfd = -1, lfd2 = -1;

	(void)state;
	fd = open(img_a, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	if (hpcn_loop_attach(fd, img_a, &lfd, dev, sizeof(dev), &err) < 0)
		fail_msg("%s", err.message);
	assert_true(lfd >= 0);
	assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(hpcn_loop_backing(dev, backing, sizeof(backing)), 0);
	assert_string_equal(backing, img_a);
	assert_int_equal(hpcn_loop_backing(dev + 5, backing, sizeof(backing)), 0);
	assert_string_equal(backing, img_a);
	assert_int_equal(hpcn_loop_backing(dev, backing, 4), -1);
	assert_int_equal(errno, ERANGE);
	/* The low level does not share: a second attach is a second device. */
	assert_int_equal(hpcn_loop_attach(fd, img_a, &lfd2, dev2, sizeof(dev2), &err), 0);
	assert_string_not_equal(dev, dev2);
	close(fd);
	/* AUTOCLEAR: the last close detaches, no mount needed. */
	close(lfd);
	assert_true(sqfs_wait_loop_gone(dev, GONE_MS));
	close(lfd2);
	assert_true(sqfs_wait_loop_gone(dev2, GONE_MS));
	/* A buffer too small for the name: nothing stays attached. */
	fd = open(img_a, O_RDONLY | O_CLOEXEC);
	assert_int_equal(hpcn_loop_attach(fd, img_a, &lfd, dev, 5, &err), -1);
	assert_int_equal(lfd, -1);
	assert_int_equal(hpcn_loop_attach(-1, img_a, &lfd, dev, sizeof(dev), &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	/* A directory cannot back a loop device: the error names the device. */
	{
		int d = open(fx.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		assert_int_equal(hpcn_loop_attach(d, fx.dir, &lfd, dev, sizeof(dev), &err), -1);
		assert_non_null(strstr(err.message, "LOOP_CONFIGURE on /dev/loop"));
		close(d);
	}
	close(fd);
}

static void test_loop_backing_names(void **state)
{
	char b[PATH_MAX];
	static const char *const bad[] = { "sda", "loop", "loopx", "../loop1", "loop1/..",
					   "loop-1", "/dev/sda", "loop1 ", "loop123456789012" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		if (hpcn_loop_backing(bad[i], b, sizeof(b)) != -1 || errno != EINVAL)
			fail_msg("\"%s\" not refused with EINVAL", bad[i]);
	}
	assert_int_equal(hpcn_loop_backing(NULL, b, sizeof(b)), -1);
	assert_int_equal(hpcn_loop_backing("loop999999", b, sizeof(b)), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_fsmount_detached(void **state)
{
	struct hpcn_error err;
	char dev[32], buf[256], backing[PATH_MAX];
	struct statvfs sv;
	struct mi m;
	int fd, lfd = -1, mfd = -1, hf;

	(void)state;
	fd = open_as(img_b, NOBODY, NULL);
	assert_int_equal(hpcn_loop_attach(fd, img_b, &lfd, dev, sizeof(dev), &err), 0);
	close(fd);
	if (hpcn_squashfs_fsmount(lfd, dev, &mfd, &err) < 0) {
		close(lfd); /* the next tests must not inherit the device */
		fail_msg("%s", err.message);
	}
	assert_true(fcntl(mfd, F_GETFD) & FD_CLOEXEC);
	/* The loop fd can go: the mount keeps the device. */
	close(lfd);
	usleep(20000);
	assert_int_equal(hpcn_loop_backing(dev, backing, sizeof(backing)), 0);
	assert_string_equal(backing, img_b);
	hf = openat(mfd, "bin/hello", O_RDONLY | O_CLOEXEC);
	assert_true(hf >= 0);
	memset(buf, 0, sizeof(buf));
	assert_true(read(hf, buf, sizeof(buf) - 1) > 0);
	assert_non_null(strstr(buf, "echo MARKER-B"));
	close(hf);
	assert_int_equal(fstatvfs(mfd, &sv), 0);
	assert_true(sv.f_flag & ST_RDONLY);
	assert_true(sv.f_flag & ST_NOSUID);
	assert_true(sv.f_flag & ST_NODEV);
	assert_false(sv.f_flag & ST_NOEXEC);
	/* Detached: in no mount table. */
	mountinfo_of(dev, &m);
	{
		struct hpcn_uenv_mount *v = NULL;
		size_t n = 0;
		char *tbl;
		size_t len;

		assert_int_equal(hpcn_mountinfo_read(NULL, &tbl, &len, &err), 0);
		assert_null(strstr(tbl, dev));
		free(tbl);
		assert_int_equal(hpcn_mountinfo_find_uenv(NULL, base, &v, &n, &err), 0);
		assert_int_equal(n, 0);
	}
	close(mfd);
	assert_true(sqfs_wait_loop_gone(dev, GONE_MS));

	/* Not a block device. */
	fd = open(img_b, O_RDONLY | O_CLOEXEC);
	assert_int_equal(hpcn_squashfs_fsmount(fd, "/dev/loop0", &mfd, &err), -1);
	assert_non_null(strstr(err.message, "not a block device"));
	assert_int_equal(hpcn_squashfs_fsmount(fd, "loop0", &mfd, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	close(fd);
}

static void test_legacy_mount(void **state)
{
	struct hpcn_error err;
	char dev[32], dir[PATH_MAX];
	int fd, lfd = -1;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/legacy", fx.dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	fd = open_as(img_a, NOBODY, NULL);
	assert_int_equal(hpcn_loop_attach(fd, img_a, &lfd, dev, sizeof(dev), &err), 0);
	close(fd);
	if (hpcn_squashfs_mount_legacy(lfd, dev, dir, &err) < 0)
		fail_msg("%s", err.message);
	close(lfd);
	assert_good_mount(dir, img_a, "MARKER-A", NULL);
	assert_int_equal(hpcn_squashfs_unmount(dir, false, &err), 0);
	assert_false(sqfs_is_mounted(dir));
	assert_true(sqfs_wait_loop_gone(dev, GONE_MS));
	assert_int_equal(rmdir(dir), 0);
}

static void test_mount_target_errors(void **state)
{
	struct hpcn_error err;
	char dev[32], link_[PATH_MAX], dir[PATH_MAX], missing[PATH_MAX];
	int fd, lfd = -1;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/tdir", fx.dir);
	snprintf(link_, sizeof(link_), "%s/tlink", fx.dir);
	snprintf(missing, sizeof(missing), "%s/tmissing", fx.dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(symlink(dir, link_), 0);
	fd = open_as(img_a, 0, NULL);
	assert_int_equal(hpcn_loop_attach(fd, img_a, &lfd, dev, sizeof(dev), &err), 0);
	close(fd);
	/* Never onto a symlink, nor a missing or relative target. */
	assert_int_equal(hpcn_squashfs_mount(lfd, dev, link_, &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	assert_non_null(strstr(err.message, link_));
	assert_int_equal(hpcn_squashfs_mount_legacy(lfd, dev, link_, &err), -1);
	assert_int_equal(hpcn_squashfs_mount(lfd, dev, missing, &err), -1);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_int_equal(hpcn_squashfs_mount(lfd, dev, "tdir", &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_false(sqfs_is_mounted(dir));
	/* And the plain path works. */
	assert_int_equal(hpcn_squashfs_mount(lfd, dev, dir, &err), 0);
	close(lfd);
	assert_good_mount(dir, img_a, "MARKER-A", NULL);
	assert_int_equal(hpcn_squashfs_unmount(dir, false, &err), 0);
	assert_true(sqfs_wait_loop_gone(dev, GONE_MS));
	unlink(link_);
	rmdir(dir);
}

static void test_unmount_errors(void **state)
{
	struct hpcn_image_id id;
	struct hpcn_error err;
	char dir[PATH_MAX], mp[256], want[PATH_MAX + 100], dev[32], p[PATH_MAX + 16];
	int fd, busy;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/plain", fx.dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(hpcn_squashfs_unmount(dir, false, &err), -1);
	assert_int_equal(err.kind, HPCN_E_UNMOUNT_FAILED);
	assert_int_equal(err.sys_errno, EINVAL);
	snprintf(want, sizeof(want), "unmount failed for %s: not a mount point", dir);
	assert_string_equal(err.message, want);
	/* unmount_image of a directory that is not mounted: removed, and said. */
	assert_int_equal(hpcn_uenv_unmount_image(dir, &err), -1);
	assert_int_equal(err.sys_errno, EINVAL);
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(hpcn_squashfs_unmount(dir, true, &err), -1);
	assert_int_equal(err.sys_errno, ENOENT);
	snprintf(want, sizeof(want), "unmount failed for %s: no such directory", dir);
	assert_string_equal(err.message, want);
	assert_int_equal(hpcn_uenv_unmount_image(dir, &err), -1);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_int_equal(hpcn_squashfs_unmount("relative", false, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);

	/* Busy: a file open inside. */
	fd = open_as(img_a, NOBODY, &id);
	assert_int_equal(hpcn_uenv_mount_image(base, fd, img_a, &id, mp, sizeof(mp), &err), 0);
	close(fd);
	assert_good_mount(mp, img_a, "MARKER-A", dev);
	snprintf(p, sizeof(p), "%s/bin/hello", mp);
	busy = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(busy >= 0);
	assert_int_equal(hpcn_uenv_unmount_image(mp, &err), -1);
	assert_int_equal(err.kind, HPCN_E_UNMOUNT_FAILED);
	assert_int_equal(err.sys_errno, EBUSY);
	assert_non_null(strstr(err.message, "busy"));
	assert_true(sqfs_is_mounted(mp));
	/* Emergency: detach now; the device lives until the file is closed. */
	if (hpcn_uenv_force_unmount_image(mp, &err) < 0)
		fail_msg("%s", err.message);
	assert_false(sqfs_is_mounted(mp));
	assert_int_equal(access(mp, F_OK), -1);
	{
		char b[PATH_MAX];

		assert_int_equal(hpcn_loop_backing(dev, b, sizeof(b)), 0);
		assert_string_equal(b, img_a);
	}
	close(busy);
	assert_true(sqfs_wait_loop_gone(dev, GONE_MS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_mount_image, check_clean),
		cmocka_unit_test_teardown(test_two_images, check_clean),
		cmocka_unit_test_teardown(test_same_image_twice_refused, check_clean),
		cmocka_unit_test_teardown(test_leftover_dir_reused, check_clean),
		cmocka_unit_test_teardown(test_failure_base_not_dir, check_clean),
		cmocka_unit_test_teardown(test_failure_image_changed, check_clean),
		cmocka_unit_test_teardown(test_failure_kernel_rejects, check_clean),
		cmocka_unit_test_teardown(test_loop_attach_direct, check_clean),
		cmocka_unit_test_teardown(test_loop_backing_names, check_clean),
		cmocka_unit_test_teardown(test_fsmount_detached, check_clean),
		cmocka_unit_test_teardown(test_legacy_mount, check_clean),
		cmocka_unit_test_teardown(test_mount_target_errors, check_clean),
		cmocka_unit_test_teardown(test_unmount_errors, check_clean),
	};
	int before, after, rc;

	if (geteuid() != 0) {
		fprintf(stderr, "test_loop_squashfs needs root (label root)\n");
		return 1;
	}
	if (access(SQFS_MKSQUASHFS, X_OK) < 0 || access("/dev/loop-control", F_OK) < 0) {
		fprintf(stderr, "needs %s and /dev/loop-control\n", SQFS_MKSQUASHFS);
		return 1;
	}
	/*
	 * Our own mount namespace: a namespace that another process creates
	 * while our mounts exist would copy them and keep their loop devices
	 * alive after we unmount; and should we crash, our mounts die with us.
	 */
	if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "FAIL: cannot make a private mount namespace: %s\n",
			strerror(errno));
		return 1;
	}
	before = sqfs_count_loops();
	rc = cmocka_run_group_tests(tests, setup, teardown);
	/* The global check: the node's loop devices are as we found them. A
	 * difference is a failure when a device is backed by one of our files;
	 * other tests running beside us on the node may attach their own. */
	if (run_dir[0])
		wait_our_loops(0);
	if (sqfs_count_loops() != before) {
		int ours = run_dir[0] ? our_loops() : 0;

		after = sqfs_count_loops();
		fprintf(stderr, "%s: %d loop devices attached before the tests, %d after, "
			"%d of them backed by files of %s\n",
			ours ? "FAIL" : "note", before, after, ours, run_dir);
		if (ours)
			return rc ? rc : 1;
	}
	return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Opening images as their user (root, real kernel): what a user may not read
 * stays unreadable, symlinks are refused, and only squashfs files pass. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <fcntl.h>
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

#include "image/image.h"
#include "sqfs_fixture.h"

#define NOBODY 65534

static struct sqfs_fixture fx;
static char img[128];

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_image needs root (label root)\n");
		return -1;
	}
	if (access(SQFS_MKSQUASHFS, X_OK) < 0) {
		fprintf(stderr, "%s missing (package squashfs-tools)\n", SQFS_MKSQUASHFS);
		return -1;
	}
	if (sqfs_fixture_init(&fx) < 0)
		return -1;
	return sqfs_fixture_make_image(&fx, "img", "MARKER-IMG", img, sizeof(img));
}

static int teardown(void **state)
{
	(void)state;
	sqfs_fixture_cleanup(&fx);
	return 0;
}

static void path_in(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", fx.dir, name);
}

/* Expect MountFailed for path with exactly this reason. */
static void expect_fail(const char *path, uid_t uid, gid_t gid, const char *reason, int eno)
{
	struct hpcn_error err;
	char want[HPCN_ERROR_MESSAGE_MAX];
	int fd = 123;

	hpcn_error_clear(&err);
	assert_int_equal(hpcn_image_open_as_user(path, uid, gid, &fd, NULL, &err), -1);
	assert_int_equal(fd, -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	snprintf(want, sizeof(want), "mount failed for %s: %s", path, reason);
	if (strcmp(err.message, want) != 0)
		fail_msg("got \"%s\", want \"%s\"", err.message, want);
	if (eno >= 0)
		assert_int_equal(err.sys_errno, eno);
}

static void test_open_ok_root_and_nobody(void **state)
{
	struct hpcn_image_id id;
	struct hpcn_error err;
	struct stat st;
	char buf[4];
	int fd = -1, fl;

	(void)state;
	assert_int_equal(stat(img, &st), 0);
	for (int i = 0; i < 2; i++) {
		uid_t uid = i ? NOBODY : 0;

		assert_int_equal(hpcn_image_open_as_user(img, uid, uid, &fd, &id, &err), 0);
		assert_true(fd >= 0);
		assert_int_equal(id.dev, st.st_dev);
		assert_int_equal(id.ino, st.st_ino);
		assert_int_equal(id.size, st.st_size);
		assert_int_equal(id.mtime_sec, st.st_mtim.tv_sec);
		assert_int_equal(id.mtime_nsec, st.st_mtim.tv_nsec);
		fl = fcntl(fd, F_GETFL);
		assert_int_equal(fl & O_ACCMODE, O_RDONLY);
		assert_int_equal(fl & O_NONBLOCK, 0);
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		assert_int_equal(pread(fd, buf, 4, 0), 4);
		assert_memory_equal(buf, "hsqs", 4);
		close(fd);
	}
}

static void test_not_readable_by_user(void **state)
{
	char p[PATH_MAX], sub[PATH_MAX], inner[PATH_MAX + 8];
	struct hpcn_error err;
	int fd = -1;

	(void)state;
	/* A root-only copy: root reads it, nobody does not. */
	path_in(p, "private.sqfs");
	assert_int_equal(link(img, p), 0);
	assert_int_equal(chmod(img, 0600), 0);
	expect_fail(p, NOBODY, NOBODY, "not readable by user nobody (uid 65534)", EACCES);
	assert_int_equal(hpcn_image_open_as_user(p, 0, 0, &fd, NULL, &err), 0);
	close(fd);
	assert_int_equal(chmod(img, 0644), 0);
	unlink(p);

	/* Group permissions follow the gid given. */
	path_in(p, "group.sqfs");
	{
		char data[4096];
		int in = open(img, O_RDONLY), out;
		ssize_t n;

		assert_true(in >= 0);
		out = open(p, O_WRONLY | O_CREAT | O_EXCL, 0640);
		assert_true(out >= 0);
		while ((n = read(in, data, sizeof(data))) > 0)
			assert_int_equal(write(out, data, (size_t)n), n);
		close(in);
		assert_int_equal(fchown(out, 0, NOBODY), 0);
		assert_int_equal(fchmod(out, 0640), 0);
		close(out);
	}
	assert_int_equal(hpcn_image_open_as_user(p, NOBODY, NOBODY, &fd, NULL, &err), 0);
	close(fd);
	assert_int_equal(chown(p, 0, 0), 0);
	assert_int_equal(chmod(p, 0640), 0);
	expect_fail(p, NOBODY, NOBODY, "not readable by user nobody (uid 65534)", EACCES);
	unlink(p);

	/* A directory the user cannot enter. */
	path_in(sub, "closed");
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(inner, sizeof(inner), "%s/x.sqfs", sub);
	assert_int_equal(link(img, inner), 0);
	expect_fail(inner, NOBODY, NOBODY, "not readable by user nobody (uid 65534)", EACCES);
	/* A uid without passwd entry is named by number. */
	expect_fail(inner, 4000123, 4000123, "not readable by uid 4000123", EACCES);
	unlink(inner);
	rmdir(sub);
}

/* A user with a supplementary group (not its primary one) from the passwd and
 * group databases, e.g. postgres in ssl-cert on Debian. */
static bool find_member(uid_t *uid, gid_t *gid, gid_t *sup)
{
	struct group *g;
	bool found = false;

	setgrent();
	while (!found && (g = getgrent())) {
		for (char **m = g->gr_mem; m && *m && !found; m++) {
			struct passwd *pw = getpwnam(*m);

			if (pw && pw->pw_uid != 0 && pw->pw_gid != g->gr_gid) {
				*uid = pw->pw_uid;
				*gid = pw->pw_gid;
				*sup = g->gr_gid;
				found = true;
			}
		}
	}
	endgrent();
	return found;
}

static void test_groups(void **state)
{
	char p[PATH_MAX], data[4096];
	struct hpcn_error err;
	uid_t uid = 0;
	gid_t gid = 0, sup = 0, mine = 4242;
	int fd = -1, in, out;
	ssize_t n;

	(void)state;
	path_in(p, "grp.sqfs");
	in = open(img, O_RDONLY);
	assert_true(in >= 0);
	out = open(p, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(out >= 0);
	while ((n = read(in, data, sizeof(data))) > 0)
		assert_int_equal(write(out, data, (size_t)n), n);
	close(in);
	close(out);

	/* The helper's own supplementary groups never reach the user. */
	assert_int_equal(chown(p, 0, mine), 0);
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(setgroups(1, &mine), 0);
	expect_fail(p, NOBODY, NOBODY, "not readable by user nobody (uid 65534)", EACCES);
	assert_int_equal(setgroups(0, NULL), 0);

	/* The user's supplementary groups do. */
	if (!find_member(&uid, &gid, &sup))
		fail_msg("no user with a supplementary group in the group database "
			 "(Debian has postgres in ssl-cert); cannot test getgrouplist");
	assert_int_equal(chown(p, 0, sup), 0);
	assert_int_equal(chmod(p, 0640), 0);
	if (hpcn_image_open_as_user(p, uid, gid, &fd, NULL, &err) < 0)
		fail_msg("uid %u in group %u: %s", (unsigned)uid, (unsigned)sup, err.message);
	close(fd);
	expect_fail(p, NOBODY, NOBODY, "not readable by user nobody (uid 65534)", EACCES);
	unlink(p);
}

static void test_symlink_refused(void **state)
{
	char p[PATH_MAX], d[PATH_MAX], via[PATH_MAX + 16];
	struct hpcn_error err;
	int fd = -1;

	(void)state;
	path_in(p, "link.sqfs");
	assert_int_equal(symlink(img, p), 0);
	expect_fail(p, 0, 0, "is a symbolic link", ELOOP);
	expect_fail(p, NOBODY, NOBODY, "is a symbolic link", ELOOP);
	unlink(p);
	/* A dangling one too (no "no such file": we never follow it). */
	assert_int_equal(symlink("/nonexistent/x.sqfs", p), 0);
	expect_fail(p, NOBODY, NOBODY, "is a symbolic link", ELOOP);
	unlink(p);
	/* A symlinked directory on the way is resolved as the user: allowed. */
	path_in(d, "dirlink");
	assert_int_equal(symlink(fx.dir, d), 0);
	snprintf(via, sizeof(via), "%s/img.sqfs", d);
	assert_int_equal(hpcn_image_open_as_user(via, NOBODY, NOBODY, &fd, NULL, &err), 0);
	close(fd);
	unlink(d);
}

static void test_not_regular(void **state)
{
	char p[PATH_MAX];

	(void)state;
	path_in(p, "adir");
	assert_int_equal(mkdir(p, 0755), 0);
	expect_fail(p, NOBODY, NOBODY, "not a regular file", -1);
	rmdir(p);
	/* A FIFO must neither block us nor pass. */
	path_in(p, "fifo");
	assert_int_equal(mkfifo(p, 0666), 0);
	expect_fail(p, NOBODY, NOBODY, "not a regular file", -1);
	unlink(p);
	expect_fail("/dev/null", NOBODY, NOBODY, "not a regular file", -1);
}

static void test_not_squashfs(void **state)
{
	char p[PATH_MAX];
	static const char text[] = "this is a text file, long enough to hold a superblock: "
				   "0123456789012345678901234567890123456789012345678901234567\n";

	(void)state;
	assert_int_equal(sqfs_fixture_write(&fx, "text.sqfs", text, sizeof(text) - 1, 0644,
					    p, sizeof(p)), 0);
	expect_fail(p, NOBODY, NOBODY, "not a squashfs image (bad magic)", -1);
	unlink(p);
	assert_int_equal(sqfs_fixture_write(&fx, "small.sqfs", "hsqs", 4, 0644, p, sizeof(p)), 0);
	expect_fail(p, NOBODY, NOBODY, "file too small (4 bytes) for a squashfs image", -1);
	unlink(p);
	assert_int_equal(sqfs_fixture_write(&fx, "empty.sqfs", "", 0, 0644, p, sizeof(p)), 0);
	expect_fail(p, NOBODY, NOBODY, "file too small (0 bytes) for a squashfs image", -1);
	unlink(p);
}

static void test_bad_superblocks(void **state)
{
	unsigned char sb[4096];
	char p[PATH_MAX], want[128];
	int in;
	struct stat st;

	(void)state;
	in = open(img, O_RDONLY);
	assert_true(in >= 0);
	assert_int_equal(fstat(in, &st), 0);
	assert_int_equal(read(in, sb, sizeof(sb)),
			 (ssize_t)(st.st_size < 4096 ? st.st_size : 4096));
	close(in);
	/* Version 3: the kernel would say only "Invalid argument". */
	sb[28] = 3;
	assert_int_equal(sqfs_fixture_write(&fx, "v3.sqfs", sb, 4096, 0644, p, sizeof(p)), 0);
	expect_fail(p, NOBODY, NOBODY, "unsupported squashfs version 3.0", -1);
	unlink(p);
	sb[28] = 4;
	/* Cut short: bytes_used says more than the file holds. */
	assert_int_equal(sqfs_fixture_write(&fx, "cut.sqfs", sb, 200, 0644, p, sizeof(p)), 0);
	snprintf(want, sizeof(want), "truncated image (superblock says %llu bytes, file has 200)",
		 (unsigned long long)(sb[40] | sb[41] << 8 | sb[42] << 16));
	expect_fail(p, NOBODY, NOBODY, want, -1);
	unlink(p);
}

static void test_missing_and_relative(void **state)
{
	char p[PATH_MAX], q[PATH_MAX];
	struct hpcn_error err;
	int fd = 5;

	(void)state;
	path_in(p, "missing.sqfs");
	expect_fail(p, NOBODY, NOBODY, "no such file", ENOENT);
	expect_fail("/nonexistent-dir-hpcn/x.sqfs", 0, 0, "no such file", ENOENT);
	snprintf(q, sizeof(q), "%s/x", img); /* a file used as a directory */
	expect_fail(q, NOBODY, NOBODY, "a path component is not a directory", ENOTDIR);

	assert_int_equal(hpcn_image_open_as_user("img.sqfs", 0, 0, &fd, NULL, &err), -1);
	assert_int_equal(fd, -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_string_equal(err.message, "invalid argument: image path must be absolute: img.sqfs");
	assert_int_equal(hpcn_image_open_as_user("", 0, 0, &fd, NULL, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_image_open_as_user(NULL, 0, 0, &fd, NULL, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
}

static void test_identity(void **state)
{
	struct hpcn_image_id a, b, c;
	struct hpcn_error err;
	char copy[PATH_MAX], ka[HPCN_IMAGE_KEY_MAX], kc[HPCN_IMAGE_KEY_MAX];
	int fa = -1, fb = -1, fc = -1;

	(void)state;
	assert_int_equal(hpcn_image_open_as_user(img, 0, 0, &fa, &a, &err), 0);
	assert_int_equal(hpcn_image_open_as_user(img, NOBODY, NOBODY, &fb, &b, &err), 0);
	assert_true(hpcn_image_id_equal(&a, &b));
	/* A byte-identical copy is another file: another identity, another key. */
	path_in(copy, "copy.sqfs");
	{
		char data[65536];
		int out = open(copy, O_WRONLY | O_CREAT | O_EXCL, 0644);
		off_t off = 0;
		ssize_t n;

		assert_true(out >= 0);
		while ((n = pread(fa, data, sizeof(data), off)) > 0) {
			assert_int_equal(write(out, data, (size_t)n), n);
			off += n;
		}
		close(out);
	}
	assert_int_equal(hpcn_image_open_as_user(copy, NOBODY, NOBODY, &fc, &c, &err), 0);
	assert_int_equal(c.size, a.size);
	assert_false(hpcn_image_id_equal(&a, &c));
	assert_true(hpcn_image_id_key(&a, ka, sizeof(ka)) > 0);
	assert_true(hpcn_image_id_key(&c, kc, sizeof(kc)) > 0);
	assert_string_not_equal(ka, kc);
	/* Touching the file changes the identity (mtime). */
	{
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1000000000, 5 } };
		struct hpcn_image_id d;

		assert_int_equal(futimens(fc, ts), 0);
		assert_int_equal(hpcn_image_id_from_fd(fc, &d), 0);
		assert_false(hpcn_image_id_equal(&c, &d));
		assert_int_equal(d.mtime_sec, 1000000000);
		assert_int_equal(d.mtime_nsec, 5);
	}
	close(fa);
	close(fb);
	close(fc);
	unlink(copy);
}

static void test_check_fd(void **state)
{
	struct hpcn_image_id id;
	struct hpcn_error err;
	char p[PATH_MAX];
	int fd;

	(void)state;
	fd = open(img, O_RDONLY | O_CLOEXEC);
	assert_int_equal(hpcn_image_check_fd(fd, img, &id, &err), 0);
	close(fd);
	fd = open(img, O_RDWR | O_CLOEXEC);
	assert_int_equal(hpcn_image_check_fd(fd, NULL, NULL, &err), 0);
	close(fd);

	fd = open(img, O_WRONLY | O_CLOEXEC);
	assert_int_equal(hpcn_image_check_fd(fd, img, &id, &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	assert_non_null(strstr(err.message, "write-only, not for reading"));
	close(fd);
	fd = open(img, O_PATH | O_CLOEXEC);
	assert_int_equal(hpcn_image_check_fd(fd, NULL, &id, &err), -1);
	assert_non_null(strstr(err.message, "O_PATH"));
	snprintf(p, sizeof(p), "mount failed for <fd %d>: ", fd);
	assert_non_null(strstr(err.message, p));
	close(fd);
	assert_int_equal(hpcn_image_check_fd(9999, "x", &id, &err), -1);
	assert_int_equal(err.sys_errno, EBADF);
	fd = open(fx.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(hpcn_image_check_fd(fd, fx.dir, &id, &err), -1);
	assert_non_null(strstr(err.message, "not a regular file"));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_ok_root_and_nobody),
		cmocka_unit_test(test_not_readable_by_user),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_symlink_refused),
		cmocka_unit_test(test_not_regular),
		cmocka_unit_test(test_not_squashfs),
		cmocka_unit_test(test_bad_superblocks),
		cmocka_unit_test(test_missing_and_relative),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_check_fd),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

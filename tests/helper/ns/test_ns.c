/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The namespace module against the real kernel (root): what a process joined
 * to an allocation's namespaces sees (pid numbering, only lo, mount
 * propagation), a mount namespace made on a base one, and mounts attached,
 * bound and detached inside. Creation and its undo are in test_ns_create.c,
 * holders, restart and release in test_ns_holders.c; the fixture is in
 * ns_test_util.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "ns/ns.h"
#include "util.h"

#include "ns_test_util.h"

static bool is_mount_point(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, 0, &stx) < 0)
		return false;
	return stx.stx_attributes & STATX_ATTR_MOUNT_ROOT;
}

/* Fork; the child joins ns_fd (nstype) and returns fn's value as exit code. */
static int run_joined(int ns_fd, int nstype, int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (ns_fd >= 0 && setns(ns_fd, nstype) < 0)
			_exit(99);
		_exit(fn(arg));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return 200 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* ---- tests ---- */

/* -- joined processes -- */

static int child_pid_numbering(void *arg)
{
	pid_t c = fork();
	int status;

	if (c < 0)
		return 1;
	if (c == 0)
		_exit(getpid() == 2 || getpid() == 3 ? 0 : 10);
	if (waitpid(c, &status, 0) != c || !WIFEXITED(status))
		return 2;
	return WEXITSTATUS(status);
}

static int child_only_lo_up(void *arg)
{
	struct if_nameindex *ifs = if_nameindex();
	struct ifreq ifr;
	int n = 0, s;

	if (!ifs)
		return 1;
	for (struct if_nameindex *i = ifs; i->if_index; i++) {
		if (strcmp(i->if_name, "lo") != 0)
			return 2;
		n++;
	}
	if_freenameindex(ifs);
	if (n != 1)
		return 3;
	s = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return 4;
	return (ifr.ifr_flags & IFF_UP) ? 0 : 5;
}

struct paths {
	const char *a;
	const char *b;
};

/* Mount a tmpfs at a (inside) holding a file b. */
static int child_mount_tmpfs(void *arg)
{
	const struct paths *p = arg;
	char f[PATH_MAX];

	if (mount("inside", p->a, "tmpfs", 0, "size=1m") < 0)
		return 1;
	snprintf(f, sizeof(f), "%s/%s", p->a, p->b);
	if (creat(f, 0644) < 0)
		return 2;
	return 0;
}

static int child_file_exists(void *arg)
{
	const struct paths *p = arg;

	return access(p->a, F_OK) == 0 ? 0 : 1;
}

static int child_file_absent(void *arg)
{
	const struct paths *p = arg;

	return access(p->a, F_OK) < 0 && errno == ENOENT ? 0 : 1;
}

static int child_not_mount_point(void *arg)
{
	const struct paths *p = arg;

	return is_mount_point(p->a) ? 1 : 0;
}

static void test_join(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	char shared[PATH_MAX], sub[PATH_MAX], sub2[PATH_MAX], inside[PATH_MAX];
	char hostonly[PATH_MAX], f[PATH_MAX];
	struct paths p;
	int fd;

	/* Made shared before the namespace exists: its copy inside is a slave. */
	pathf(shared, "%s/shared", fx->dir);
	host_make_shared(fx, shared);
	pathf(sub, "%s/sub", shared);
	pathf(sub2, "%s/sub2", shared);
	mkdir_or_fail(sub);
	mkdir_or_fail(sub2);
	pathf(inside, "%s/inside", fx->dir);
	mkdir_or_fail(inside);

	create_ok(fx, "join", all3, 3, -1, &set);

	fd = open_ok(fx, "join", HPCN_NS_PID);
	assert_int_equal(run_joined(fd, CLONE_NEWPID, child_pid_numbering, NULL), 0);
	close(fd);

	fd = open_ok(fx, "join", HPCN_NS_NET);
	assert_int_equal(run_joined(fd, CLONE_NEWNET, child_only_lo_up, NULL), 0);
	/* ...and the host does have more than lo? Not on every machine: the
	 * inode check of the create test covers "a new one". */
	close(fd);

	fd = open_ok(fx, "join", HPCN_NS_MOUNT);
	/* Inside -> host: invisible. */
	p = (struct paths){ inside, "marker" };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_mount_tmpfs, &p), 0);
	assert_false(is_mount_point(inside));
	pathf(f, "%s/marker", inside);
	assert_int_equal(access(f, F_OK), -1);
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_file_exists, &p), 0);

	/* Host -> inside, not below a shared mount: invisible. */
	pathf(hostonly, "%s/hostonly", fx->dir);
	host_mount_tmpfs(fx, hostonly);
	p = (struct paths){ hostonly, NULL };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_not_mount_point, &p), 0);

	/* Host -> inside below the shared mount: propagated (slave). */
	host_mount_tmpfs(fx, sub);
	pathf(f, "%s/propagated", sub);
	write_file(f, "x");
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_file_exists, &p), 0);

	/* Inside -> host below the shared mount: not propagated back. */
	p = (struct paths){ sub2, "back" };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_mount_tmpfs, &p), 0);
	assert_false(is_mount_point(sub2));
	pathf(f, "%s/back", sub2);
	assert_int_equal(access(f, F_OK), -1);

	/* The pins of allocations are not held inside: ns_dir is unmounted
	 * there, the pin files are plain files. */
	pathf(f, "%s/join/net", fx->ns_dir);
	p = (struct paths){ f, NULL };
	assert_true(is_mount_point(f));
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_not_mount_point, &p), 0);
	close(fd);
}

/* -- base mount namespace -- */

static void test_base_mnt_fd(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	char mp[PATH_MAX], f[PATH_MAX], nsp[64];
	struct paths p;
	int ready[2], base_fd, fd;
	pid_t kid;
	char c;

	pathf(mp, "%s/jobtmp", fx->dir);
	mkdir_or_fail(mp);
	pathf(f, "%s/marker", mp);
	assert_int_equal(pipe(ready), 0);
	/* A "job namespace" as Slurm's job_container/tmpfs makes one. */
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		close(ready[0]);
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount("none", "/", "none", MS_REC | MS_SLAVE, NULL) < 0 ||
		    mount("jobtmp", mp, "tmpfs", 0, "size=1m") < 0 || creat(f, 0644) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	track_kid(fx, kid);
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	snprintf(nsp, sizeof(nsp), "/proc/%d/ns/mnt", (int)kid);
	base_fd = open(nsp, O_RDONLY | O_CLOEXEC);
	assert_true(base_fd >= 0);
	/* Only the fd keeps the base namespace from here on. */
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	fx->nkids = 0;

	{
		const enum hpcn_ns_type mnt_pid[] = { HPCN_NS_MOUNT, HPCN_NS_PID };

		create_ok(fx, "onbase", mnt_pid, 2, base_fd, &set);
	}
	close(base_fd);
	assert_int_equal(access(f, F_OK), -1);
	fd = open_ok(fx, "onbase", HPCN_NS_MOUNT);
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_file_exists, &p), 0);
	close(fd);
}

/* -- mounts inside -- */

static int child_read_marker(void *arg)
{
	const struct paths *p = arg;
	char buf[64] = "";
	FILE *fp = fopen(p->a, "r");

	if (!fp)
		return 1;
	if (!fgets(buf, sizeof(buf), fp)) {
		fclose(fp);
		return 2;
	}
	fclose(fp);
	return strcmp(buf, p->b) == 0 ? 0 : 3;
}

static void test_attach_bind_detach(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	struct hpcn_error err = { 0 };
	const enum hpcn_ns_type mnt_only[] = { HPCN_NS_MOUNT };
	char src[PATH_MAX], src2[PATH_MAX], target[PATH_MAX], nested[PATH_MAX];
	char second[PATH_MAX], f[PATH_MAX], link[PATH_MAX], bad[PATH_MAX];
	char needle[PATH_MAX + 4];
	_cleanup_free_ char *info = NULL;
	size_t len = 0;
	struct paths p;
	int mntfd, mntfd2, tree, netfd;

	pathf(src, "%s/image", fx->dir);
	mkdir_or_fail(src);
	pathf(f, "%s/hello", src);
	write_file(f, "hello\n");
	pathf(src2, "%s/image2", fx->dir);
	mkdir_or_fail(src2);
	pathf(f, "%s/nested", src2);
	write_file(f, "nested\n");

	create_ok(fx, "uenv", mnt_only, 1, -1, &set);
	create_ok(fx, "uenv2", mnt_only, 1, -1, &set);
	mntfd = open_ok(fx, "uenv", HPCN_NS_MOUNT);
	mntfd2 = open_ok(fx, "uenv2", HPCN_NS_MOUNT);

	/* A host path bound at a created point. */
	pathf(target, "%s/t/user-environment", fx->dir);
	if (hpcn_ns_bind_path(mntfd, src, target, true, &err) < 0)
		fail_msg("bind_path: %s", err.message);
	pathf(f, "%s/hello", target);
	p = (struct paths){ f, "hello\n" };
	assert_int_equal(run_joined(mntfd, CLONE_NEWNS, child_read_marker, &p), 0);
	assert_false(is_mount_point(target));
	assert_int_equal(access(f, F_OK), -1);
	/* The other allocation does not see it. */
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(mntfd2, CLONE_NEWNS, child_file_absent, &p), 0);

	/* Nested, in order. */
	pathf(nested, "%s/sub", target);
	if (hpcn_ns_bind_path(mntfd, src2, nested, true, &err) < 0)
		fail_msg("nested bind_path: %s", err.message);
	pathf(f, "%s/nested", nested);
	p = (struct paths){ f, "nested\n" };
	assert_int_equal(run_joined(mntfd, CLONE_NEWNS, child_read_marker, &p), 0);

	/* A detached mount fd: attached twice (two allocations), it stays ours. */
	tree = open_tree(AT_FDCWD, src2, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	assert_true(tree >= 0);
	pathf(second, "%s/t/user-tools", fx->dir);
	if (hpcn_ns_attach_mount(mntfd, tree, second, true, &err) < 0)
		fail_msg("attach_mount: %s", err.message);
	if (hpcn_ns_attach_mount_named(mntfd2, tree, "/img/tools.squashfs", "uenv2", second,
				       true, &err) < 0)
		fail_msg("attach_mount 2: %s", err.message);
	close(tree);
	pathf(f, "%s/nested", second);
	p = (struct paths){ f, "nested\n" };
	assert_int_equal(run_joined(mntfd, CLONE_NEWNS, child_read_marker, &p), 0);
	assert_int_equal(run_joined(mntfd2, CLONE_NEWNS, child_read_marker, &p), 0);
	assert_false(is_mount_point(second));

	/* The mount table inside shows them; the host's does not. */
	assert_int_equal(hpcn_ns_read_mountinfo(mntfd, &info, &len, &err), 0);
	assert_int_equal(strlen(info), len);
	snprintf(needle, sizeof(needle), " %s ", target);
	assert_non_null(strstr(info, needle));
	snprintf(needle, sizeof(needle), " %s ", nested);
	assert_non_null(strstr(info, needle));
	snprintf(needle, sizeof(needle), " %s ", fx->ns_dir);
	assert_null(strstr(info, needle));
	free(info);
	info = NULL;

	/* Missing target without create_target: a clear error. */
	pathf(bad, "%s/t/missing", fx->dir);
	assert_int_equal(hpcn_ns_bind_path(mntfd, src, bad, false, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_CREATION_FAILED);
	assert_non_null(strstr(err.message, "namespace creation failed: mount of "));
	assert_non_null(strstr(err.message, bad));
	assert_non_null(strstr(err.message, "No such file or directory"));
	assert_int_equal(access(bad, F_OK), -1);
	/* With names, the message says what and where. */
	tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	assert_true(tree >= 0);
	assert_int_equal(hpcn_ns_attach_mount_named(mntfd, tree, "/run/pact/uenv/k1", "12.0",
						    bad, false, &err), -1);
	close(tree);
	{
		char want[2 * PATH_MAX];

		snprintf(want, sizeof(want), "namespace creation failed: mount of "
			 "/run/pact/uenv/k1 at %s in allocation 12.0: resolving the target: "
			 "No such file or directory", bad);
		assert_string_equal(err.message, want);
	}

	assert_int_equal(hpcn_ns_bind_path_named(mntfd, src, "12.0", bad, false, &err), -1);
	assert_non_null(strstr(err.message, " in allocation 12.0: resolving the target: "));

	/* A symlink on the way is refused, not followed. */
	pathf(link, "%s/t/link", fx->dir);
	assert_int_equal(symlink(src, link), 0);
	pathf(bad, "%s/t/link/x", fx->dir);
	assert_int_equal(hpcn_ns_bind_path(mntfd, src2, bad, true, &err), -1);
	assert_non_null(strstr(err.message, "Too many levels of symbolic links"));
	pathf(f, "%s/x", src);
	assert_int_equal(access(f, F_OK), -1);

	/* Argument checks. */
	assert_int_equal(hpcn_ns_bind_path(mntfd, src, "relative/x", true, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	netfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_int_equal(hpcn_ns_bind_path(netfd, src, target, true, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	close(netfd);

	/* Detach: nested first, then the outer one. */
	assert_int_equal(hpcn_ns_detach_mount(mntfd, nested, &err), 0);
	pathf(f, "%s/nested", nested);
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(mntfd, CLONE_NEWNS, child_file_absent, &p), 0);
	assert_int_equal(hpcn_ns_detach_mount(mntfd, target, &err), 0);
	pathf(f, "%s/hello", target);
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(mntfd, CLONE_NEWNS, child_file_absent, &p), 0);
	assert_int_equal(hpcn_ns_detach_mount(mntfd, target, &err), -1);
	assert_int_equal(err.kind, HPCN_E_UNMOUNT_FAILED);
	assert_non_null(strstr(err.message, target));
	assert_int_equal(hpcn_ns_read_mountinfo(mntfd, &info, &len, &err), 0);
	snprintf(needle, sizeof(needle), " %s ", target);
	assert_null(strstr(info, needle));
	close(mntfd);
	close(mntfd2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_join, setup, teardown),
		cmocka_unit_test_setup_teardown(test_base_mnt_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_bind_detach, setup, teardown),
	};

	/* e.g. HPCN_TEST_SKIP="test_attach*" under valgrind 3.19, which does
	 * not know open_tree/move_mount (ENOSYS). */
	if (getenv("HPCN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("HPCN_TEST_FILTER"));
	if (getenv("HPCN_TEST_SKIP"))
		cmocka_set_skip_filter(getenv("HPCN_TEST_SKIP"));
	return cmocka_run_group_tests(tests, group_setup, NULL);
}

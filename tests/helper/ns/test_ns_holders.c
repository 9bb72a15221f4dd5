/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The namespace module against the real kernel (root): the pid namespace's
 * holder. Namespaces rediscovered after the "helper" that made them died,
 * with a joined process reparented to the holder; and their release (the
 * holder and the joined processes gone, a stale holder pid left alone). The
 * fixture is in ns_test_util.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "ns/ns.h"
#include "util.h"

#include "ns_test_util.h"

/* Wait until pid no longer exists at all; reaps it if it is ours. */
static bool wait_gone(pid_t pid, long timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	for (;;) {
		waitpid(pid, NULL, WNOHANG);
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(5);
	}
}

/* The pid (as we see it) of a child of parent, or 0. */
static pid_t find_child_of(pid_t parent)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		char st;
		pid_t pid = (pid_t)atoi(de->d_name), pp;

		if (pid > 0 && proc_field(pid, &st, &pp, NULL, 0) && pp == parent)
			found = pid;
	}
	closedir(d);
	return found;
}

/*
 * A process joined to the allocation's pid, net and mount namespaces that
 * sleeps until killed. It is a grandchild made inside the pid namespace
 * whose parent exits: so it is reparented to the holder, as the processes
 * of a job are. (A process forked from outside after setns goes, when its
 * parent dies, to the parent's reaper instead.) Returns its pid as we see it.
 */
static pid_t start_joined_sleeper(struct fx *fx, const char *id)
{
	int pidfd = open_ok(fx, id, HPCN_NS_PID);
	int netfd = open_ok(fx, id, HPCN_NS_NET);
	int mntfd = open_ok(fx, id, HPCN_NS_MOUNT);
	int p[2], status;
	pid_t mid, sleeper = 0;

	assert_int_equal(pipe(p), 0);
	mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) {
		int go[2], up[2];
		pid_t inner, s = 0;
		char c;

		if (setns(pidfd, CLONE_NEWPID) < 0 || setns(netfd, CLONE_NEWNET) < 0 ||
		    setns(mntfd, CLONE_NEWNS) < 0 || pipe(go) < 0 || pipe(up) < 0)
			_exit(1);
		inner = fork();
		if (inner < 0)
			_exit(2);
		if (inner == 0) {
			close(go[1]);
			close(up[0]);
			if (fork() == 0) {
				for (;;)
					pause();
			}
			/* Forked; wait until our parent has seen the child. */
			if (write(up[1], "f", 1) != 1 || read(go[0], &c, 1) < 0)
				_exit(1);
			_exit(0);
		}
		close(go[0]);
		close(up[1]);
		if (read(up[0], &c, 1) != 1)
			_exit(3);
		s = find_child_of(inner);
		close(go[1]);
		if (waitpid(inner, NULL, 0) != inner || s <= 0)
			_exit(4);
		if (write(p[1], &s, sizeof(s)) != sizeof(s))
			_exit(5);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(waitpid(mid, &status, 0), mid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(read(p[0], &sleeper, sizeof(sleeper)), sizeof(sleeper));
	close(p[0]);
	close(pidfd);
	close(netfd);
	close(mntfd);
	assert_true(sleeper > 0);
	return sleeper;
}

/* ---- tests ---- */

/* -- restart -- */

static void test_restart(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	struct hpcn_error err = { 0 };
	int p[2], status, marker;
	pid_t helper, holder = 0, sleeper;
	char path[64], pin[PATH_MAX];

	/* A "helper" that creates the namespaces and dies: nothing of it stays
	 * but the pins and the holder, which must not have been its child. */
	pathf(pin, "%s/fd-marker", fx->dir);
	marker = open(pin, O_RDONLY | O_CREAT, 0600);  /* inherited, not CLOEXEC */
	assert_true(marker >= 0);
	assert_int_equal(pipe(p), 0);
	helper = fork();
	assert_true(helper >= 0);
	if (helper == 0) {
		struct hpcn_ns_set s;
		struct hpcn_error e = { 0 };
		char st;
		pid_t pp;

		close(p[0]);
		prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
		if (hpcn_ns_create(fx->ns_dir, "r1", all3, 3, -1, &s, &e) < 0)
			_exit(1);
		if (!proc_field(s.pid_holder, &st, &pp, NULL, 0) || pp == getpid())
			_exit(2);
		if (write(p[1], &s.pid_holder, sizeof(pid_t)) != sizeof(pid_t))
			_exit(3);
		_exit(0);
	}
	track_alloc(fx, "r1");
	close(p[1]);
	assert_int_equal(waitpid(helper, &status, 0), helper);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(read(p[0], &holder, sizeof(holder)), sizeof(holder));
	close(p[0]);
	close(marker);
	assert_true(holder > 0);
	assert_int_equal(kill(holder, 0), 0);

	sleeper = start_joined_sleeper(fx, "r1");

	/* Rediscovery from the pins and the registry's holder pid. */
	assert_int_equal(hpcn_ns_load(fx->ns_dir, "r1", holder, &set, &err), 0);
	for (int i = 0; i < HPCN_NS__COUNT; i++)
		assert_true(set.present[i]);
	assert_int_equal(set.pid_holder, holder);
	assert_string_equal(set.allocation_id, "r1");
	/* ...or from the noted pid when the registry lost it. */
	assert_int_equal(hpcn_ns_load(fx->ns_dir, "r1", 0, &set, &err), 0);
	assert_int_equal(set.pid_holder, holder);
	/* A wrong holder (a live process, not that pid 1) is reported. */
	assert_int_equal(hpcn_ns_load(fx->ns_dir, "r1", getpid(), &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "holder"));
	assert_int_equal(hpcn_ns_load(fx->ns_dir, "gone", 0, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_ALLOCATION_NOT_FOUND);

	/* The joined process is untouched, still in the namespaces. */
	assert_int_equal(kill(sleeper, 0), 0);
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)sleeper);
	pathf(pin, "%s/r1/pid", fx->ns_dir);
	assert_int_equal(ino_of(path), ino_of(pin));
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)sleeper);
	pathf(pin, "%s/r1/net", fx->ns_dir);
	assert_int_equal(ino_of(path), ino_of(pin));
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)sleeper);
	pathf(pin, "%s/r1/mnt", fx->ns_dir);
	assert_int_equal(ino_of(path), ino_of(pin));

	/* The holder reaps orphans: the sleeper's parent is the holder now. */
	{
		char st;
		pid_t pp;

		assert_true(proc_field(sleeper, &st, &pp, NULL, 0));
		assert_int_equal(pp, holder);
	}
	/* Signals other than SIGKILL do not end the holder. */
	assert_int_equal(kill(holder, SIGTERM), 0);
	assert_int_equal(kill(holder, SIGINT), 0);
	assert_int_equal(kill(holder, SIGHUP), 0);
	sleep_ms(50);
	assert_int_equal(hpcn_ns_load(fx->ns_dir, "r1", holder, &set, &err), 0);
	/* The holder kept no fd of ours: no stdio, not the marker the
	 * "helper" had open (fds of a tool like valgrind may be there). */
	{
		char fdd[64], lp[PATH_MAX + 64], tgt[PATH_MAX];
		DIR *d;
		struct dirent *de;

		snprintf(fdd, sizeof(fdd), "/proc/%d/fd", (int)holder);
		d = opendir(fdd);
		assert_non_null(d);
		while ((de = readdir(d))) {
			ssize_t n;

			if (de->d_name[0] == '.')
				continue;
			assert_true(atoi(de->d_name) > 2);
			snprintf(lp, sizeof(lp), "%s/%s", fdd, de->d_name);
			n = readlink(lp, tgt, sizeof(tgt) - 1);
			assert_true(n > 0);
			tgt[n] = '\0';
			assert_null(strstr(tgt, "fd-marker"));
		}
		closedir(d);
	}

	assert_int_equal(hpcn_ns_release(fx->ns_dir, "r1", holder, &err), 0);
	assert_true(wait_gone(holder, GONE_MS));
	assert_true(wait_gone(sleeper, GONE_MS));
}

/* -- release -- */

static void test_release(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	struct hpcn_error err = { 0 };
	struct hpcn_strv ids = { 0 };
	char path[PATH_MAX];
	pid_t sleeper, bystander;
	int mntpin;

	create_ok(fx, "x1", all3, 3, -1, &set);
	sleeper = start_joined_sleeper(fx, "x1");
	assert_int_equal(count_mounts_under(fx->ns_dir), 4);

	/* The mount namespace dies with its last pin: keep an fd to see it. */
	mntpin = open_ok(fx, "x1", HPCN_NS_MOUNT);

	assert_int_equal(hpcn_ns_release(fx->ns_dir, "x1", set.pid_holder, &err), 0);
	pathf(path, "%s/x1", fx->ns_dir);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(count_mounts_under(fx->ns_dir), 1);
	assert_true(wait_gone(set.pid_holder, GONE_MS));
	assert_true(wait_gone(sleeper, GONE_MS));
	assert_int_equal(hpcn_ns_list(fx->ns_dir, &ids, &err), 0);
	assert_int_equal(ids.n, 0);
	hpcn_strv_free(&ids);
	close(mntpin);

	/* Idempotent, and an unknown allocation is fine. */
	assert_int_equal(hpcn_ns_release(fx->ns_dir, "x1", set.pid_holder, &err), 0);
	assert_int_equal(hpcn_ns_release(fx->ns_dir, "never-was", 4242, &err), 0);
	assert_int_equal(hpcn_ns_release(fx->ns_dir, "../etc", 0, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);

	/* A stale holder pid that now names another process: left alone. */
	bystander = fork();
	assert_true(bystander >= 0);
	if (bystander == 0) {
		for (;;)
			pause();
	}
	track_kid(fx, bystander);
	create_ok(fx, "x2", all3, 3, -1, &set);
	assert_int_equal(hpcn_ns_release(fx->ns_dir, "x2", bystander, &err), 0);
	assert_true(wait_gone(set.pid_holder, GONE_MS));  /* the noted holder died */
	sleep_ms(20);
	assert_int_equal(waitpid(bystander, NULL, WNOHANG), 0);
	assert_int_equal(kill(bystander, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release, setup, teardown),
	};

	if (getenv("HPCN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("HPCN_TEST_FILTER"));
	if (getenv("HPCN_TEST_SKIP"))
		cmocka_set_skip_filter(getenv("HPCN_TEST_SKIP"));
	return cmocka_run_group_tests(tests, group_setup, NULL);
}

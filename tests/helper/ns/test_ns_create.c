/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The namespace module against the real kernel (root): namespaces created,
 * opened and listed, the same request again, and the undo of failed
 * creations (bad ids, an unprepared ns_dir, bad base fds, unshare denied by
 * seccomp, a broken leftover). The fixture is in ns_test_util.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/nsfs.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "ns/ns.h"
#include "util.h"

#include "ns_test_util.h"

static const enum hpcn_ns_type net_only_1[] = { HPCN_NS_NET };

static ino_t fd_ino(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

/* ---- tests ---- */

static void test_create_open_idempotent(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set, again;
	struct hpcn_error err = { 0 };
	struct hpcn_strv ids = { 0 };
	ino_t inos[HPCN_NS__COUNT];
	char state_c, comm[64];
	pid_t ppid;

	create_ok(fx, "12.0", all3, 3, -1, &set);
	assert_string_equal(set.allocation_id, "12.0");
	for (int i = 0; i < HPCN_NS__COUNT; i++)
		assert_true(set.present[i]);
	assert_true(set.pid_holder > 0);
	assert_true(proc_field(set.pid_holder, &state_c, &ppid, comm, sizeof(comm)));
	assert_string_equal(comm, HPCN_NS_HOLDER_COMM);
	/* It settles into its sleep (just created, it may still be running
	 * on a loaded machine: wait for the state, do not assume a speed). */
	for (long long end = now_ms() + GONE_MS; state_c != 'S' && now_ms() < end;) {
		sleep_ms(5);
		assert_true(proc_field(set.pid_holder, &state_c, &ppid, comm, sizeof(comm)));
	}
	assert_true(state_c == 'S');

	for (int i = 0; i < HPCN_NS__COUNT; i++) {
		enum hpcn_ns_type t = (enum hpcn_ns_type)i;
		char self[64];
		int fd = open_ok(fx, "12.0", t);

		assert_int_equal(ioctl(fd, NS_GET_NSTYPE), hpcn_ns_type_clone_flag(t));
		snprintf(self, sizeof(self), "/proc/self/ns/%s", hpcn_ns_type_proc_name(t));
		inos[i] = fd_ino(fd);
		assert_true(inos[i] != 0);
		assert_true(inos[i] != ino_of(self));
		/* The fd is close-on-exec: it goes to a client, not to our exec's. */
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		close(fd);
	}
	/* The holder is pid 1 of exactly the pinned pid namespace. */
	{
		char p[64];

		snprintf(p, sizeof(p), "/proc/%d/ns/pid", (int)set.pid_holder);
		assert_int_equal(ino_of(p), inos[HPCN_NS_PID]);
	}

	/* The same request again returns the same set. */
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "12.0", all3, 3, -1, &again, &err), 0);
	assert_int_equal(again.pid_holder, set.pid_holder);
	for (int i = 0; i < HPCN_NS__COUNT; i++) {
		int fd = open_ok(fx, "12.0", (enum hpcn_ns_type)i);

		assert_true(again.present[i]);
		assert_int_equal(fd_ino(fd), inos[i]);
		close(fd);
	}
	assert_int_equal(count_our_holders(), 1);

	/* A subset of what exists is the same request too; a superset is not. */
	{
		const enum hpcn_ns_type net_only[] = { HPCN_NS_NET, HPCN_NS_NET };
		const enum hpcn_ns_type net_pid[] = { HPCN_NS_NET, HPCN_NS_PID };

		assert_int_equal(hpcn_ns_create(fx->ns_dir, "12.0", net_only, 2, -1, &again,
						&err), 0);
		create_ok(fx, "13.0", net_only, 2, -1, &again);
		assert_false(again.present[HPCN_NS_PID]);
		assert_int_equal(again.pid_holder, 0);
		assert_int_equal(hpcn_ns_create(fx->ns_dir, "13.0", net_pid, 2, -1, &again, &err),
				 -1);
		assert_int_equal(err.kind, HPCN_E_BUSY);
		assert_non_null(strstr(err.message, "13.0"));
		assert_non_null(strstr(err.message, "Pid"));
		/* Not pinned: a clear error, no fd. */
		assert_int_equal(hpcn_ns_open(fx->ns_dir, "13.0", HPCN_NS_MOUNT, &err), -1);
		assert_int_equal(err.kind, HPCN_E_NOT_FOUND);
		assert_int_equal(hpcn_ns_open(fx->ns_dir, "nope", HPCN_NS_NET, &err), -1);
		assert_int_equal(err.kind, HPCN_E_NS_ALLOCATION_NOT_FOUND);
		assert_string_equal(err.message, "allocation not found: nope");
	}

	/* Only directories with valid ids are allocations. */
	{
		char stray[PATH_MAX];

		pathf(stray, "%s/stray-file", fx->ns_dir);
		write_file(stray, "");
		pathf(stray, "%s/bad name", fx->ns_dir);
		mkdir_or_fail(stray);
		/* An empty leftover directory is taken over by a create. */
		pathf(stray, "%s/14.0", fx->ns_dir);
		mkdir_or_fail(stray);
		create_ok(fx, "14.0", net_only_1, 1, -1, &again);
		assert_true(again.present[HPCN_NS_NET]);
		assert_int_equal(hpcn_ns_release(fx->ns_dir, "14.0", 0, &err), 0);
	}
	assert_int_equal(hpcn_ns_list(fx->ns_dir, &ids, &err), 0);
	assert_int_equal(ids.n, 2);
	assert_string_equal(ids.v[0], "12.0");
	assert_string_equal(ids.v[1], "13.0");
	hpcn_strv_free(&ids);
}

/* -- failures -- */

/* Make unshare() with flag fail with EPERM in this process (seccomp). */
static int deny_unshare_flag(unsigned int flag)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, flag, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = HPCN_ARRAY_SIZE(f), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

/* In a child (the filter must not stay on us): create all three while
 * unshare(flag) is denied; the child returns the error through a pipe. */
static void create_with_denied(struct fx *fx, const char *id, unsigned int flag,
			       struct hpcn_error *out)
{
	int p[2], status;
	pid_t kid;

	assert_int_equal(pipe(p), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct hpcn_ns_set s;
		struct hpcn_error e = { 0 };

		close(p[0]);
		if (deny_unshare_flag(flag) < 0)
			_exit(1);
		if (hpcn_ns_create(fx->ns_dir, id, all3, 3, -1, &s, &e) == 0)
			_exit(2);
		if (write(p[1], &e, sizeof(e)) != sizeof(e))
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(waitpid(kid, &status, 0), kid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(read(p[0], out, sizeof(*out)), sizeof(*out));
	close(p[0]);
}

static void assert_nothing_left(struct fx *fx, const char *id)
{
	struct hpcn_strv ids = { 0 };
	struct hpcn_error err = { 0 };
	char path[PATH_MAX];

	pathf(path, "%s/%s", fx->ns_dir, id);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(count_mounts_under(fx->ns_dir), 1);
	assert_int_equal(hpcn_ns_list(fx->ns_dir, &ids, &err), 0);
	assert_int_equal(ids.n, 0);
	hpcn_strv_free(&ids);
	for (long long end = now_ms() + GONE_MS; now_ms() < end && count_our_holders() > 0;) {
		reap_zombies();
		sleep_ms(10);
	}
	reap_zombies();
	assert_int_equal(count_our_holders(), 0);
}

static void test_failures(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	struct hpcn_error err = { 0 };
	char plain[PATH_MAX], file[PATH_MAX], shared_ns[PATH_MAX];
	int pfd[2], netfd;

	/* Invalid allocation ids. */
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "../x", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "a/b", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_ns_create("relative", "a", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);

	/* ns_dir not prepared: not a mount point. */
	pathf(plain, "%s/plain", fx->dir);
	mkdir_or_fail(plain);
	assert_int_equal(hpcn_ns_create(plain, "a", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_CREATION_FAILED);
	assert_non_null(strstr(err.message, "not a private mount point"));
	assert_non_null(strstr(err.message, plain));
	assert_int_equal(rmdir(plain), 0);  /* still empty */

	/* ns_dir a file. */
	pathf(file, "%s/file", fx->dir);
	write_file(file, "");
	assert_int_equal(hpcn_ns_create(file, "a", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_CREATION_FAILED);
	assert_non_null(strstr(err.message, "Not a directory"));
	assert_int_equal(hpcn_ns_setup_dir(file, &err), -1);
	assert_non_null(strstr(err.message, file));

	/* ns_dir a shared mount point: refused; setup_dir makes it private. */
	pathf(shared_ns, "%s/shared-ns", fx->dir);
	host_make_shared(fx, shared_ns);
	assert_int_equal(hpcn_ns_create(shared_ns, "a", all3, 3, -1, &set, &err), -1);
	assert_non_null(strstr(err.message, "shared"));
	assert_int_equal(hpcn_ns_setup_dir(shared_ns, &err), 0);
	assert_int_equal(hpcn_ns_setup_dir(shared_ns, &err), 0);
	assert_int_equal(count_mounts_under(shared_ns), 1);  /* not stacked */
	{
		const enum hpcn_ns_type net_only[] = { HPCN_NS_NET };

		assert_int_equal(hpcn_ns_create(shared_ns, "a", net_only, 1, -1, &set, &err), 0);
		assert_int_equal(hpcn_ns_release(shared_ns, "a", 0, &err), 0);
	}
	/* setup_dir on the fixture's dir again: still one mount. */
	assert_int_equal(hpcn_ns_setup_dir(fx->ns_dir, &err), 0);
	assert_int_equal(count_mounts_under(fx->ns_dir), 1);

	/* Bad base mount namespace fds, checked before anything is made. */
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "b", all3, 3, pfd[0], &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "not a mount namespace"));
	close(pfd[0]);
	close(pfd[1]);
	netfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "b", all3, 3, netfd, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	close(netfd);
	{
		const enum hpcn_ns_type net_only[] = { HPCN_NS_NET };
		int mfd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);

		assert_int_equal(hpcn_ns_create(fx->ns_dir, "b", net_only, 1, mfd, &set, &err),
				 -1);
		assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
		close(mfd);
	}
	assert_nothing_left(fx, "b");

	/* The pid namespace fails after Mount and Net were made and pinned:
	 * all of it is undone. */
	create_with_denied(fx, "c", CLONE_NEWPID, &err);
	assert_int_equal(err.kind, HPCN_E_NS_CREATION_FAILED);
	assert_non_null(strstr(err.message, "allocation c"));
	assert_non_null(strstr(err.message, "pid namespace"));
	assert_non_null(strstr(err.message, "Operation not permitted"));
	assert_nothing_left(fx, "c");

	/* The maker fails (no new net namespace): nothing either. */
	create_with_denied(fx, "d", CLONE_NEWNET, &err);
	assert_int_equal(err.kind, HPCN_E_NS_CREATION_FAILED);
	assert_non_null(strstr(err.message, "unshare"));
	assert_nothing_left(fx, "d");

	/* A broken leftover (an unmounted pin file) is reported, not reused;
	 * release cleans it. */
	{
		char dirp[PATH_MAX], pin[PATH_MAX];

		pathf(dirp, "%s/e", fx->ns_dir);
		mkdir_or_fail(dirp);
		pathf(pin, "%s/e/net", fx->ns_dir);
		write_file(pin, "");
		track_alloc(fx, "e");
		assert_int_equal(hpcn_ns_create(fx->ns_dir, "e", all3, 3, -1, &set, &err), -1);
		assert_int_equal(err.kind, HPCN_E_BUSY);
		assert_non_null(strstr(err.message, "release it first"));
		assert_int_equal(hpcn_ns_open(fx->ns_dir, "e", HPCN_NS_NET, &err), -1);
		assert_int_equal(err.kind, HPCN_E_NOT_FOUND);
		assert_int_equal(hpcn_ns_release(fx->ns_dir, "e", 0, &err), 0);
		assert_nothing_left(fx, "e");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_open_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
	};

	if (getenv("HPCN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("HPCN_TEST_FILTER"));
	if (getenv("HPCN_TEST_SKIP"))
		cmocka_set_skip_filter(getenv("HPCN_TEST_SKIP"));
	return cmocka_run_group_tests(tests, group_setup, NULL);
}

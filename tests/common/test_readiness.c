/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The readiness file: another process (a forked child) signals, we wait with
 * inotify; late directories, timeouts and the atomic write.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hpcnode/hpcnode.h>

static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct fx {
	int baseline;
	char dir[64];
	char path[128];
	pid_t child;
};

/* rm -r of the test's small tree (depth <= 3, no symlinks). */
static void rm_tree(const char *p)
{
	DIR *d = opendir(p);
	struct dirent *e;
	char sub[512];

	if (!d) {
		unlink(p);
		return;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", p, e->d_name);
		rm_tree(sub);
	}
	closedir(d);
	rmdir(p);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->baseline = count_open_fds();
	f->child = -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/hpcn-ready-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/ready", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int now, rv = 0;

	if (f->child > 0) {
		kill(f->child, SIGKILL);
		waitpid(f->child, NULL, 0);
	}
	rm_tree(f->dir);
	now = count_open_fds();
	if (now != f->baseline) {
		fprintf(stderr, "FD LEAK: %d descriptors open before the test, %d after\n",
			f->baseline, now);
		rv = -1;
	}
	free(f);
	return rv;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void reap(struct fx *f)
{
	int st;

	assert_int_equal(waitpid(f->child, &st, 0), f->child);
	f->child = -1;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_signal_clear_roundtrip(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;
	char buf[64] = { 0 };
	struct stat st;
	mode_t old;
	int fd, n = 0;
	DIR *d;
	struct dirent *e;

	assert_false(hpcn_is_ready(f->path));
	/* A strict umask must not make the file unreadable to consumers. */
	old = umask(077);
	assert_int_equal(hpcn_readiness_signal(f->path, "pid 1234\n", &err), 0);
	umask(old);
	assert_true(hpcn_is_ready(f->path));
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 9);
	close(fd);
	assert_string_equal(buf, "pid 1234\n");
	/* No temp file left behind. */
	d = opendir(f->dir);
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		assert_string_equal(e->d_name, "ready");
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);

	/* Signalling again replaces it. */
	assert_int_equal(hpcn_readiness_signal(f->path, NULL, &err), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 0);

	assert_int_equal(hpcn_readiness_clear(f->path, &err), 0);
	assert_false(hpcn_is_ready(f->path));
	/* ENOENT is fine. */
	assert_int_equal(hpcn_readiness_clear(f->path, &err), 0);
}

static void test_signal_errors(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;
	char p[256];

	snprintf(p, sizeof(p), "%s/missing/ready", f->dir);
	assert_int_equal(hpcn_readiness_signal(p, "x", &err), -1);
	assert_int_equal(err.kind, HPCN_E_BOOT_FAILED);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_non_null(strstr(err.message, "boot failed: cannot create readiness file"));
	assert_non_null(strstr(err.message, p));
	assert_non_null(strstr(err.message, "No such file or directory"));

	assert_int_equal(hpcn_readiness_signal("", "x", &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	snprintf(p, sizeof(p), "%s/", f->dir);
	assert_int_equal(hpcn_wait_ready(p, 0, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);

	/* A directory in the way of the file cannot be cleared. */
	assert_int_equal(mkdir(f->path, 0755), 0);
	assert_int_equal(hpcn_readiness_clear(f->path, &err), -1);
	assert_non_null(strstr(err.message, f->path));
	assert_int_equal(hpcn_readiness_signal(f->path, "x", &err), -1);
	assert_int_equal(err.kind, HPCN_E_BOOT_FAILED);
	rmdir(f->path);
}

static void test_wait_timeout(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;
	long long t0 = now_ms();

	assert_int_equal(hpcn_wait_ready(f->path, 150, &err), -1);
	assert_true(now_ms() - t0 >= 150);
	assert_int_equal(err.kind, HPCN_E_READINESS_TIMEOUT);
	assert_string_equal(err.message, "timeout waiting for readiness");
	assert_string_equal(hpcn_error_family(err.kind), "ReadinessError");
	assert_string_equal(hpcn_error_variant(err.kind), "Timeout");

	/* timeout 0: one look. */
	assert_int_equal(hpcn_wait_ready(f->path, 0, &err), -1);
	assert_string_equal(err.message, "timeout waiting for readiness");
}

static void test_wait_already_ready(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;

	assert_int_equal(hpcn_readiness_signal(f->path, "up", &err), 0);
	assert_int_equal(hpcn_wait_ready(f->path, 0, &err), 0);
	assert_int_equal(hpcn_wait_ready(f->path, -1, &err), 0);
}

/* The provider (another process) signals after ~50 ms. */
static void test_wait_other_process_signals(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;
	long long t0;

	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		struct hpcn_error e;

		sleep_ms(50);
		_exit(hpcn_readiness_signal(f->path, "pid", &e) == 0 ? 0 : 1);
	}
	t0 = now_ms();
	assert_int_equal(hpcn_wait_ready(f->path, 10000, &err), 0);
	assert_true(now_ms() - t0 < 10000);
	assert_true(hpcn_is_ready(f->path));
	reap(f);
}

/* Plain creat() instead of rename: IN_CREATE. */
static void test_wait_plain_create(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;

	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		int fd;

		sleep_ms(50);
		fd = open(f->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		_exit(fd >= 0 ? 0 : 1);
	}
	assert_int_equal(hpcn_wait_ready(f->path, 10000, &err), 0);
	reap(f);
}

/* /run/pact does not exist yet at early boot: the directory comes later,
 * two levels deep. */
static void test_wait_parent_appears_late(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;
	char sub[160], file[200];

	snprintf(sub, sizeof(sub), "%s/run/pact", f->dir);
	snprintf(file, sizeof(file), "%s/ready", sub);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		struct hpcn_error e;
		char top[128];

		snprintf(top, sizeof(top), "%s/run", f->dir);
		sleep_ms(150);
		if (mkdir(top, 0755) < 0 || mkdir(sub, 0755) < 0)
			_exit(2);
		sleep_ms(50);
		_exit(hpcn_readiness_signal(file, "late", &e) == 0 ? 0 : 1);
	}
	assert_false(hpcn_is_ready(file));
	assert_int_equal(hpcn_wait_ready(file, 10000, &err), 0);
	assert_true(hpcn_is_ready(file));
	reap(f);
}

/* The directory is removed and made again while we watch it. */
static void test_wait_dir_recreated(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;
	char sub[160], file[200];

	snprintf(sub, sizeof(sub), "%s/pact", f->dir);
	snprintf(file, sizeof(file), "%s/ready", sub);
	assert_int_equal(mkdir(sub, 0755), 0);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		struct hpcn_error e;

		sleep_ms(50);
		if (rmdir(sub) < 0)
			_exit(2);
		sleep_ms(50);
		if (mkdir(sub, 0755) < 0)
			_exit(3);
		sleep_ms(150);
		_exit(hpcn_readiness_signal(file, "again", &e) == 0 ? 0 : 1);
	}
	assert_int_equal(hpcn_wait_ready(file, 10000, &err), 0);
	reap(f);
}

/* A late directory and nothing ever signalled: still the exact timeout. */
static void test_wait_no_dir_timeout(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;
	char file[200];

	snprintf(file, sizeof(file), "%s/nowhere/ready", f->dir);
	assert_int_equal(hpcn_wait_ready(file, 250, &err), -1);
	assert_int_equal(err.kind, HPCN_E_READINESS_TIMEOUT);
	assert_string_equal(err.message, "timeout waiting for readiness");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_signal_clear_roundtrip),
		T(test_signal_errors),
		T(test_wait_timeout),
		T(test_wait_already_ready),
		T(test_wait_other_process_signals),
		T(test_wait_plain_create),
		T(test_wait_parent_appears_late),
		T(test_wait_dir_recreated),
		T(test_wait_no_dir_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

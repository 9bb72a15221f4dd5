/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cgroup module on the REAL cgroup v2 mount (label root). The test makes
 * its own subtree <cgroup2 root>/hpcn-test-<pid>-<rand> and uses it as the
 * module's root, as the helper's own tests do. Real processes are attached,
 * measured and killed. On this hybrid machine v2 has no memory/cpu/io/pids:
 * the test asserts the warnings that say so; on a pure v2 node it asserts
 * the limits landed instead.
 * The subtree is removed even when an assertion fails (group teardown and
 * atexit): cgroup.kill on the whole subtree first, then rmdir deepest first.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup/cgroup.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define MAX_KIDS 32
/* Waits for what must happen: wall clock, a bound against hangs only. */
#define WAIT_MS 60000

static char g_mount[PATH_MAX];  /* the detected cgroup2 mount */
static char g_top[PATH_MAX];    /* our subtree, the module's root */
static pid_t g_kids[MAX_KIDS];
static int g_nkids;
static struct hpcn_cgroup g_cg = { .root_fd = -1 };

/* ---- cleanup that works whatever state the module left ---- */

static int rmdir_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)ftw;
	if (flag == FTW_DP)
		rmdir(p);
	return 0;
}

static bool top_populated(void)
{
	char p[PATH_MAX], buf[256] = "";
	FILE *f;

	snprintf(p, sizeof(p), "%s/cgroup.events", g_top);
	f = fopen(p, "r");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strstr(buf, "populated 1") != NULL;
}

static void cleanup_top(void)
{
	char p[PATH_MAX];
	int fd;

	if (!g_top[0])
		return;
	snprintf(p, sizeof(p), "%s/cgroup.kill", g_top);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)!write(fd, "1", 1);
		close(fd);
	}
	for (int i = 0; i < g_nkids; i++)
		kill(g_kids[i], SIGKILL);
	for (int i = 0; i < g_nkids; i++)
		waitpid(g_kids[i], NULL, 0);
	g_nkids = 0;
	for (unsigned long long end = hpcn_now_ms() + WAIT_MS; hpcn_now_ms() < end && top_populated();)
		usleep(10000);
	/* grandchildren, reparented to us (subreaper) */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	hpcn_cgroup_close(&g_cg);
	nftw(g_top, rmdir_one, 16, FTW_DEPTH | FTW_PHYS);
	if (access(g_top, F_OK) == 0)
		fprintf(stderr, "test_cgroup_real: could not remove %s\n", g_top);
	g_top[0] = '\0';
}

static int group_setup(void **state)
{
	struct hpcn_error err;
	unsigned r;

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_cgroup_real needs root (label root)\n");
		return -1;
	}
	if (hpcn_cgroup_detect_root(g_mount, sizeof(g_mount), &err) < 0) {
		fprintf(stderr, "no cgroup v2 here: %s\n", err.message);
		return -1;
	}
	/* Orphaned grandchildren come to us, not to a pid 1 that may not reap. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	r = (unsigned)rand();
	snprintf(g_top, sizeof(g_top), "%s/hpcn-test-%d-%08x", g_mount, (int)getpid(), r);
	if (mkdir(g_top, 0755) < 0) {
		fprintf(stderr, "mkdir %s: %s\n", g_top, strerror(errno));
		g_top[0] = '\0';
		return -1;
	}
	atexit(cleanup_top);
	if (hpcn_cgroup_open(&g_cg, g_top, 0, &err) < 0) {
		fprintf(stderr, "hpcn_cgroup_open %s: %s\n", g_top, err.message);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cleanup_top();
	return 0;
}

/* ---- helpers ---- */

/*
 * A child that sleeps until killed. With gate != NULL it first waits until
 * the parent writes to *gate (after attaching it), then forks a grandchild
 * that so starts inside the child's cgroup.
 */
static pid_t spawn_sleeper(int *gate)
{
	int p[2] = { -1, -1 };
	pid_t pid;

	assert_true(g_nkids < MAX_KIDS);
	if (gate)
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (gate) {
			char c;

			close(p[1]);
			if (read(p[0], &c, 1) != 1 || fork() < 0)
				_exit(1);
		}
		for (;;)
			pause();
	}
	g_kids[g_nkids++] = pid;
	if (gate) {
		close(p[0]);
		*gate = p[1];
	}
	return pid;
}

/* Let a gated child fork its grandchild; wait until the scope holds n. */
static void open_gate(int gate, const char *scope, uint32_t n)
{
	struct hpcn_cgroup_metrics m = { 0 };
	struct hpcn_error err;

	assert_int_equal(write(gate, "g", 1), 1);
	close(gate);
	for (unsigned long long end = hpcn_now_ms() + WAIT_MS; hpcn_now_ms() < end;) {
		assert_int_equal(hpcn_cgroup_read_metrics(&g_cg, scope, &m, &err), 0);
		if (m.nr_processes == n)
			return;
		usleep(10000);
	}
	fail_msg("%s holds %u processes, want %u", scope, m.nr_processes, n);
}

static void forget_kid(pid_t pid)
{
	for (int i = 0; i < g_nkids; i++)
		if (g_kids[i] == pid) {
			g_kids[i] = g_kids[--g_nkids];
			return;
		}
}

static void assert_sigkilled(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	forget_kid(pid);
}

static const char *slurp(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool procs_has(const char *rel, pid_t pid)
{
	char p[PATH_MAX], line[32];
	const char *s;

	snprintf(p, sizeof(p), "%s/%s/cgroup.procs", g_top, rel);
	s = slurp(p);
	if (!s)
		return false;
	snprintf(line, sizeof(line), "\n%d\n", (int)pid);
	/* whole lines only: the first line, or one after a newline */
	return strncmp(s, line + 1, strlen(line + 1)) == 0 || strstr(s, line) != NULL;
}

/* The pid's cgroup v2 line must be 0::/<our subtree below the mount>/rel. */
static void assert_proc_cgroup(pid_t pid, const char *rel)
{
	char p[64], want[PATH_MAX];
	const char *s;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)pid);
	s = slurp(p);
	assert_non_null(s);
	snprintf(want, sizeof(want), "0::%s/%s\n", g_top + strlen(g_mount), rel);
	if (!strstr(s, want))
		fail_msg("/proc/%d/cgroup lacks '%s':\n%s", (int)pid, want, s);
}

static bool exists_rel(const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", g_top, rel);
	return access(p, F_OK) == 0;
}

static unsigned top_controllers(void)
{
	char p[PATH_MAX];
	const char *s;

	snprintf(p, sizeof(p), "%s/cgroup.controllers", g_top);
	s = slurp(p);
	assert_non_null(s);
	return hpcn_cgroup_parse_controllers(s);
}

static bool has_warning(const struct hpcn_strv *w, const char *a, const char *b)
{
	for (size_t i = 0; i < w->n; i++)
		if (strstr(w->v[i], a) && (!b || strstr(w->v[i], b)))
			return true;
	return false;
}

/* ---- tests ---- */

static void test_real_hierarchy(void **state)
{
	struct hpcn_strv warn = { 0 };
	struct hpcn_error err;
	unsigned avail = top_controllers();
	char needle[64];

	(void)state;
	assert_int_equal(hpcn_cgroup_create_hierarchy(&g_cg, &warn, &err), 0);
	assert_true(exists_rel("workload.slice"));
	assert_false(exists_rel("pact.slice"));
	for (unsigned bit = 1; bit & HPCN_CG_CTRL_ALL; bit <<= 1) {
		snprintf(needle, sizeof(needle), "controller '%s'", hpcn_cgroup_ctrl_name(bit));
		if (avail & bit)
			assert_false(has_warning(&warn, needle, NULL));
		else if (!has_warning(&warn, needle, g_top))
			fail_msg("no warning naming %s and %s", needle, g_top);
	}
	/* This machine is hybrid: v2 lacks memory, and the warning says so. */
	if (strcmp(g_mount, "/sys/fs/cgroup/unified") == 0) {
		assert_false(avail & HPCN_CG_CTRL_MEMORY);
		assert_true(has_warning(&warn, "controller 'memory' is not available in cgroup v2",
					g_top));
	}
	assert_int_equal(g_cg.controllers, avail & HPCN_CG_CTRL_ALL);
	hpcn_strv_free(&warn);
	/* idempotent */
	assert_int_equal(hpcn_cgroup_create_hierarchy(&g_cg, &warn, &err), 0);
	hpcn_strv_free(&warn);
}

static void test_real_scope_lifecycle(void **state)
{
	struct hpcn_strv warn = { 0 };
	struct hpcn_error err;
	struct hpcn_resource_limits lim;
	struct hpcn_cgroup_metrics m;
	char slice[PATH_MAX], scope[PATH_MAX], p[PATH_MAX];
	pid_t kids[3];
	bool empty = false;
	unsigned long long t0;

	(void)state;
	assert_int_equal(hpcn_cgroup_create_hierarchy(&g_cg, &warn, &err), 0);
	hpcn_strv_free(&warn);
	assert_int_equal(hpcn_cgroup_create_slice(&g_cg, "workload.slice", "job1", NULL, false,
						  slice, sizeof(slice), &warn, &err), 0);
	assert_string_equal(slice, "workload.slice/job1.slice");

	memset(&lim, 0, sizeof(lim));
	lim.memory_max = (struct hpcn_opt_u64){ true, 256ULL << 20 };
	lim.pids_max = (struct hpcn_opt_u64){ true, 64 };
	if (!(g_cg.controllers & HPCN_CG_CTRL_MEMORY)) {
		/* mandatory: refused, and nothing left behind */
		assert_int_equal(hpcn_cgroup_create_scope(&g_cg, slice, "job1.0", &lim, true,
							  scope, sizeof(scope), &warn, &err), -1);
		assert_int_equal(err.kind, HPCN_E_CGROUP_CREATION_FAILED);
		assert_non_null(strstr(err.message, "memory.max not applied: controller 'memory' "
				       "is not available in cgroup v2 at"));
		assert_false(exists_rel("workload.slice/job1.slice/job1.0.scope"));
	}
	assert_int_equal(hpcn_cgroup_create_scope(&g_cg, slice, "job1.0", &lim, false,
						  scope, sizeof(scope), &warn, &err), 0);
	assert_string_equal(scope, "workload.slice/job1.slice/job1.0.scope");
	snprintf(p, sizeof(p), "%s/%s", g_top, scope);
	if (g_cg.controllers & HPCN_CG_CTRL_MEMORY) {
		snprintf(p, sizeof(p), "%s/%s/memory.max", g_top, scope);
		assert_string_equal(slurp(p), "268435456\n");
	} else {
		assert_true(has_warning(&warn, "memory.max not applied: controller 'memory'", g_top));
	}
	if (!(g_cg.controllers & HPCN_CG_CTRL_PIDS))
		assert_true(has_warning(&warn, "pids.max not applied: controller 'pids'", NULL));
	hpcn_strv_free(&warn);

	assert_int_equal(hpcn_cgroup_is_scope_empty(&g_cg, scope, &empty, &err), 0);
	assert_true(empty);
	for (int i = 0; i < 3; i++) {
		kids[i] = spawn_sleeper(NULL);
		assert_int_equal(hpcn_cgroup_attach(&g_cg, scope, kids[i], &err), 0);
	}
	for (int i = 0; i < 3; i++) {
		assert_true(procs_has(scope, kids[i]));
		assert_proc_cgroup(kids[i], scope);
	}
	assert_int_equal(hpcn_cgroup_is_scope_empty(&g_cg, scope, &empty, &err), 0);
	assert_false(empty);
	assert_int_equal(hpcn_cgroup_is_scope_empty(&g_cg, slice, &empty, &err), 0);
	assert_false(empty); /* populated covers the subtree */
	assert_int_equal(hpcn_cgroup_read_metrics(&g_cg, scope, &m, &err), 0);
	assert_int_equal(m.nr_processes, 3);
	if (!(g_cg.controllers & HPCN_CG_CTRL_MEMORY)) {
		assert_int_equal(m.memory_current, 0);
		assert_false(m.memory_max.set);
	}
	assert_int_equal(hpcn_cgroup_read_metrics(&g_cg, slice, &m, &err), 0);
	assert_int_equal(m.nr_processes, 0); /* cgroup.procs lists members only */

	t0 = hpcn_now_ms();
	assert_int_equal(hpcn_cgroup_destroy_scope(&g_cg, scope, WAIT_MS, &err), 0);
	/* woken by POLLPRI, not by the timeout (no speed assumed: the timeout
	 * is long, and only its expiry is told apart) */
	assert_true(hpcn_now_ms() - t0 < WAIT_MS);
	for (int i = 0; i < 3; i++)
		assert_sigkilled(kids[i]);
	assert_false(exists_rel(scope));
	assert_int_equal(hpcn_cgroup_is_scope_empty(&g_cg, scope, &empty, &err), -1);
	assert_int_equal(err.kind, HPCN_E_CGROUP_NOT_FOUND);
	/* destroying again is fine */
	assert_int_equal(hpcn_cgroup_destroy_scope(&g_cg, scope, 100, &err), 0);
	assert_int_equal(hpcn_cgroup_remove(&g_cg, slice, &err), 0);
	assert_false(exists_rel(slice));
}

static void wait_empty(const char *scope)
{
	struct hpcn_error err;
	bool empty = false;

	for (unsigned long long end = hpcn_now_ms() + WAIT_MS; hpcn_now_ms() < end && !empty;) {
		assert_int_equal(hpcn_cgroup_is_scope_empty(&g_cg, scope, &empty, &err), 0);
		if (!empty)
			usleep(10000);
	}
	assert_true(empty);
}

static void test_real_kill_and_remove(void **state)
{
	struct hpcn_strv warn = { 0 };
	struct hpcn_error err;
	char scope[PATH_MAX];
	pid_t a, b;
	int gate = -1;

	(void)state;
	assert_int_equal(hpcn_cgroup_create_hierarchy(&g_cg, &warn, &err), 0);
	assert_int_equal(hpcn_cgroup_create_scope(&g_cg, "workload.slice", "k1", NULL, false,
						  scope, sizeof(scope), &warn, &err), 0);
	a = spawn_sleeper(&gate); /* its grandchild starts in the scope */
	b = spawn_sleeper(NULL);
	assert_int_equal(hpcn_cgroup_attach(&g_cg, scope, a, &err), 0);
	assert_int_equal(hpcn_cgroup_attach(&g_cg, scope, b, &err), 0);
	open_gate(gate, scope, 3);
	assert_int_equal(hpcn_cgroup_kill(&g_cg, scope, &err), 0);
	assert_sigkilled(a);
	assert_sigkilled(b);
	wait_empty(scope); /* the grandchild (not ours) died too */
	assert_int_equal(hpcn_cgroup_remove(&g_cg, scope, &err), 0);
	assert_false(exists_rel(scope));

	/* The fallback for kernels without cgroup.kill, on real processes. */
	assert_int_equal(hpcn_cgroup_create_scope(&g_cg, "workload.slice", "k2", NULL, false,
						  scope, sizeof(scope), &warn, &err), 0);
	a = spawn_sleeper(&gate);
	assert_int_equal(hpcn_cgroup_attach(&g_cg, scope, a, &err), 0);
	open_gate(gate, scope, 2);
	assert_int_equal(hpcn_cgroup_kill_pids(&g_cg, scope, &err), 0);
	assert_sigkilled(a);
	wait_empty(scope);
	assert_int_equal(hpcn_cgroup_remove(&g_cg, scope, &err), 0);
	assert_false(exists_rel(scope));
	hpcn_strv_free(&warn);
}

static void test_real_events_poll(void **state)
{
	struct hpcn_strv warn = { 0 };
	struct hpcn_error err;
	char scope[PATH_MAX];
	int dfd, efd;
	char buf[128];
	struct pollfd pfd;
	pid_t a;

	(void)state;
	assert_int_equal(hpcn_cgroup_create_hierarchy(&g_cg, &warn, &err), 0);
	assert_int_equal(hpcn_cgroup_create_scope(&g_cg, "workload.slice", "ev", NULL, false,
						  scope, sizeof(scope), &warn, &err), 0);
	a = spawn_sleeper(NULL);
	assert_int_equal(hpcn_cgroup_attach(&g_cg, scope, a, &err), 0);
	dfd = hpcn_cgroup_open_dir(&g_cg, scope, &err);
	assert_true(dfd >= 0);
	efd = openat(dfd, "cgroup.events", O_RDONLY | O_CLOEXEC);
	assert_true(efd >= 0);
	assert_true(read(efd, buf, sizeof(buf)) > 0);
	assert_int_equal(hpcn_cgroup_kill(&g_cg, scope, &err), 0);
	pfd = (struct pollfd){ .fd = efd, .events = POLLPRI };
	/* The caller's event loop is told: POLLPRI on cgroup.events. */
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	assert_true(pfd.revents & POLLPRI);
	assert_sigkilled(a);
	close(efd);
	close(dfd);
	assert_int_equal(hpcn_cgroup_destroy_scope(&g_cg, scope, 1000, &err), 0);
	hpcn_strv_free(&warn);
}

static void test_real_ri1(void **state)
{
	struct hpcn_strv warn = { 0 };
	struct hpcn_error err;
	struct hpcn_cgroup_metrics m;
	char p[PATH_MAX], abs[PATH_MAX];
	const char *s;
	pid_t a;
	int fd;

	(void)state;
	assert_int_equal(hpcn_cgroup_create_hierarchy(&g_cg, &warn, &err), 0);
	/* pact's scope with a live process in it, made the way pact would */
	snprintf(p, sizeof(p), "%s/pact.slice", g_top);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/pact.slice/x.scope", g_top);
	assert_int_equal(mkdir(p, 0755), 0);
	a = spawn_sleeper(NULL);
	snprintf(p, sizeof(p), "%s/pact.slice/x.scope/cgroup.procs", g_top);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(dprintf(fd, "%d", (int)a) > 0, 1);
	close(fd);

	assert_int_equal(hpcn_cgroup_kill(&g_cg, "pact.slice/x.scope", &err), -1);
	assert_int_equal(err.kind, HPCN_E_CGROUP_PERMISSION_DENIED);
	assert_string_equal(err.message, "permission denied: pact.slice/x.scope owned by Pact");
	assert_int_equal(hpcn_cgroup_destroy_scope(&g_cg, "workload.slice/../pact.slice/x.scope",
						   100, &err), -1);
	assert_int_equal(err.kind, HPCN_E_CGROUP_PERMISSION_DENIED);
	snprintf(abs, sizeof(abs), "%s/pact.slice", g_top);
	assert_int_equal(hpcn_cgroup_kill(&g_cg, abs, &err), -1);
	assert_int_equal(err.kind, HPCN_E_CGROUP_PERMISSION_DENIED);
	assert_int_equal(hpcn_cgroup_remove(&g_cg, "workload.slice//..//pact.slice", &err), -1);
	assert_int_equal(err.kind, HPCN_E_CGROUP_PERMISSION_DENIED);
	assert_int_equal(hpcn_cgroup_create_scope(&g_cg, "pact.slice", "y", NULL, false, p,
						  sizeof(p), &warn, &err), -1);
	assert_int_equal(err.kind, HPCN_E_CGROUP_PERMISSION_DENIED);
	assert_int_equal(hpcn_cgroup_attach(&g_cg, "pact.slice/x.scope", getpid(), &err), -1);
	assert_int_equal(err.kind, HPCN_E_CGROUP_PERMISSION_DENIED);
	/* the real mount's own pact.slice is outside our root: Denied */
	snprintf(abs, sizeof(abs), "%s/pact.slice", g_mount);
	assert_int_equal(hpcn_cgroup_kill(&g_cg, abs, &err), -1);
	assert_int_equal(err.kind, HPCN_E_DENIED);
	assert_int_equal(hpcn_cgroup_kill(&g_cg, "workload.slice-extra", &err), -1);
	assert_int_equal(err.kind, HPCN_E_DENIED);

	/* pact's process lives, pact's scope is intact, and readable (RI6) */
	assert_int_equal(kill(a, 0), 0);
	assert_int_equal(waitpid(a, NULL, WNOHANG), 0);
	assert_false(exists_rel("pact.slice/y.scope"));
	snprintf(p, sizeof(p), "%s/pact.slice/x.scope/cgroup.procs", g_top);
	s = slurp(p);
	assert_non_null(s);
	assert_int_equal(atoi(s), (int)a);
	assert_int_equal(hpcn_cgroup_read_metrics(&g_cg, "pact.slice/x.scope", &m, &err), 0);
	assert_int_equal(m.nr_processes, 1);
	hpcn_strv_free(&warn);
	/* group teardown kills a and removes pact.slice */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_hierarchy),
		cmocka_unit_test(test_real_scope_lifecycle),
		cmocka_unit_test(test_real_kill_and_remove),
		cmocka_unit_test(test_real_events_poll),
		cmocka_unit_test(test_real_ri1),
	};

	return cmocka_run_group_tests_name("cgroup_real", tests, group_setup, group_teardown);
}

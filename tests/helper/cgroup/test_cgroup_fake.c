/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cgroup module on a fake tree (HPCN_CGROUP_FAKE, a plain directory in
 * mkdtemp): the exact lines written for every limit, hierarchy creation,
 * missing controllers, destroy's timeout and metrics. No privileges needed.
 * The pure functions are in test_cgroup_parse.c, RI1 against every path
 * trick we know in test_cgroup_ri1.c; the fixture is in cgroup_test_util.c.
 */
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
#include <unistd.h>

#include <cmocka.h>

#include "cgroup/cgroup.h"

#include "cgroup_test_util.h"

/* Paths here are short mkdtemp names; gcc cannot know that. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static int setup_nomem(void **state)
{
	*state = fx_new("cpu io pids\n");
	return 0;
}

static bool has_warning(const struct hpcn_strv *w, const char *needle)
{
	for (size_t i = 0; i < w->n; i++)
		if (strstr(w->v[i], needle))
			return true;
	return false;
}

/* ---- hierarchy ---- */

static void test_hierarchy(void **state)
{
	struct fx *f = *state;
	char wl[PATH_MAX];

	assert_int_equal(f->cg.controllers, HPCN_CG_CTRL_ALL);
	rm_rf(f->root); /* a tree without pact.slice: we must not make it */
	assert_int_equal(mkdir(f->root, 0755), 0);
	write_at(f->root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
	write_at(f->root, "cgroup.subtree_control", "");
	hpcn_cgroup_close(&f->cg);
	assert_int_equal(hpcn_cgroup_open(&f->cg, f->root, HPCN_CGROUP_FAKE, &f->err), 0);

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	assert_int_equal(f->warn.n, 0);
	assert_string_equal(read_at(f->root, "cgroup.subtree_control"), "+memory +cpu +io +pids");
	snprintf(wl, sizeof(wl), "%s/workload.slice", f->root);
	assert_string_equal(read_at(wl, "cgroup.controllers"), "cpu io memory pids\n");
	assert_string_equal(read_at(wl, "cgroup.subtree_control"), "+memory +cpu +io +pids");
	assert_string_equal(read_at(wl, "cgroup.events"), "populated 0\nfrozen 0\n");
	assert_true(exists_at(wl, "memory.max"));
	assert_false(exists_at(f->root, "pact.slice"));
	assert_int_equal(f->cg.controllers, HPCN_CG_CTRL_ALL);

	/* Idempotent: already enabled (kernel form) -> nothing rewritten. */
	write_at(f->root, "cgroup.subtree_control", "cpu io memory pids\n");
	write_at(wl, "cgroup.subtree_control", "cpu io memory pids\n");
	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	assert_string_equal(read_at(f->root, "cgroup.subtree_control"), "cpu io memory pids\n");
	assert_string_equal(read_at(wl, "cgroup.subtree_control"), "cpu io memory pids\n");
	/* Only the missing one is added. */
	write_at(wl, "cgroup.subtree_control", "cpu io memory\n");
	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	assert_string_equal(read_at(wl, "cgroup.subtree_control"), "+pids");
	assert_int_equal(f->warn.n, 0);
}

static void test_hierarchy_missing_memory(void **state)
{
	struct fx *f = *state;
	char wl[PATH_MAX], needle[PATH_MAX + 64];

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	assert_int_equal(f->warn.n, 1);
	snprintf(needle, sizeof(needle),
		 "cgroup controller 'memory' is not available in cgroup v2 at %s", f->root);
	assert_true(has_warning(&f->warn, needle));
	assert_string_equal(read_at(f->root, "cgroup.subtree_control"), "+cpu +io +pids");
	snprintf(wl, sizeof(wl), "%s/workload.slice", f->root);
	assert_string_equal(read_at(wl, "cgroup.controllers"), "cpu io pids\n");
	assert_false(exists_at(wl, "memory.max"));
	assert_int_equal(f->cg.controllers, HPCN_CG_CTRL_CPU | HPCN_CG_CTRL_IO | HPCN_CG_CTRL_PIDS);
}

/* ---- slices, scopes, limits ---- */

static void test_scope_limits(void **state)
{
	struct fx *f = *state;
	struct hpcn_resource_limits l = all_limits(), slim;
	char path[PATH_MAX], sc[PATH_MAX], sl[PATH_MAX];

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);

	memset(&slim, 0, sizeof(slim));
	slim.memory_max = (struct hpcn_opt_u64){ true, 8ULL << 30 };
	assert_int_equal(hpcn_cgroup_create_slice(&f->cg, "workload.slice", "12", &slim, true,
						  path, sizeof(path), &f->warn, &f->err), 0);
	assert_string_equal(path, "workload.slice/12.slice");
	snprintf(sl, sizeof(sl), "%s/%s", f->root, path);
	assert_string_equal(read_at(sl, "memory.max"), "8589934592");
	assert_string_equal(read_at(sl, "cgroup.subtree_control"), "+memory +cpu +io +pids");
	/* idempotent */
	assert_int_equal(hpcn_cgroup_create_slice(&f->cg, "workload.slice", "12", NULL, false,
						  path, sizeof(path), &f->warn, &f->err), 0);

	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice/12.slice", "12.0", &l,
						  true, path, sizeof(path), &f->warn, &f->err), 0);
	assert_string_equal(path, "workload.slice/12.slice/12.0.scope");
	assert_int_equal(f->warn.n, 0);
	snprintf(sc, sizeof(sc), "%s/%s", f->root, path);
	assert_string_equal(read_at(sc, "memory.max"), "1073741824");
	assert_string_equal(read_at(sc, "memory.swap.max"), "0");
	assert_string_equal(read_at(sc, "cpu.weight"), "50");
	assert_string_equal(read_at(sc, "cpu.max"), "50000 100000");
	assert_string_equal(read_at(sc, "pids.max"), "128");
	/* only the whole disk, not loop0 / zram0 / ram0 */
	assert_string_equal(read_at(sc, "io.max"), "8:0 rbps=1048576 wbps=1048576\n");
	/* scopes are leaves: nothing enabled below them */
	assert_string_equal(read_at(sc, "cgroup.subtree_control"), "");

	/* Restart pickup: the scope exists, that is fine. */
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice/12.slice", "12.0", NULL,
						  false, path, sizeof(path), &f->warn, &f->err), 0);
	assert_string_equal(path, "workload.slice/12.slice/12.0.scope");

	/* Per-device io, a period, io_max filling the unset direction. */
	memset(&l, 0, sizeof(l));
	l.cpu_max_period_usec = (struct hpcn_opt_u64){ true, 200000 };
	l.cpu_max_quota_usec = (struct hpcn_opt_u64){ true, 100000 };
	l.n_io_devices = 2;
	l.io_devices[0] = (struct hpcn_io_device_limit){ 8, 16, 100, 0 };
	l.io_devices[1] = (struct hpcn_io_device_limit){ 259, 0, 0, 0 };
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "a1", &l, true,
						  path, sizeof(path), &f->warn, &f->err), 0);
	assert_string_equal(path, "workload.slice/a1.scope");
	snprintf(sc, sizeof(sc), "%s/%s", f->root, path);
	assert_string_equal(read_at(sc, "cpu.max"), "100000 200000");
	assert_string_equal(read_at(sc, "io.max"), "8:16 rbps=100 wbps=max\n259:0 rbps=max wbps=max\n");
	assert_string_equal(read_at(sc, "memory.max"), "max\n"); /* untouched */
	l.io_max = (struct hpcn_opt_u64){ true, 7 };
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "a2", &l, true,
						  path, sizeof(path), &f->warn, &f->err), 0);
	snprintf(sc, sizeof(sc), "%s/%s", f->root, path);
	assert_string_equal(read_at(sc, "io.max"), "8:16 rbps=100 wbps=7\n259:0 rbps=7 wbps=7\n");

	/* apply_limits on an existing scope */
	memset(&l, 0, sizeof(l));
	l.pids_max = (struct hpcn_opt_u64){ true, 4096 };
	assert_int_equal(hpcn_cgroup_apply_limits(&f->cg, "workload.slice/a2.scope", &l, true,
						  &f->warn, &f->err), 0);
	assert_string_equal(read_at(sc, "pids.max"), "4096");

	/* Parent must exist. */
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice/99.slice", "99.0",
						  NULL, false, path, sizeof(path), &f->warn,
						  &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_NOT_FOUND);
	assert_string_equal(f->err.message, "cgroup path not found: workload.slice/99.slice");
	assert_int_equal(f->warn.n, 0);
	assert_pact_untouched(f);
}

static void test_refused_write(void **state)
{
	struct fx *f = *state;
	struct hpcn_resource_limits l;
	char path[PATH_MAX], sc[PATH_MAX];

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "r", NULL, false,
						  path, sizeof(path), &f->warn, &f->err), 0);
	snprintf(sc, sizeof(sc), "%s/%s", f->root, path);
	/* The fake "kernel" refuses: make the file unwritable (EACCES as non-root;
	 * as root replace it with a directory, EISDIR). */
	{
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/pids.max", sc);
		assert_int_equal(unlink(p), 0);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	memset(&l, 0, sizeof(l));
	l.pids_max = (struct hpcn_opt_u64){ true, 10 };
	assert_int_equal(hpcn_cgroup_apply_limits(&f->cg, path, &l, false, &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_CREATION_FAILED);
	assert_non_null(strstr(f->err.message, "cgroup creation failed: the kernel refused '10' in "));
	assert_non_null(strstr(f->err.message, "workload.slice/r.scope/pids.max: "));
	assert_non_null(strstr(f->err.message, strerror(EISDIR)));
	assert_int_equal(f->err.sys_errno, EISDIR);
}

static void test_missing_memory_limits(void **state)
{
	struct fx *f = *state;
	struct hpcn_resource_limits l = all_limits();
	char path[PATH_MAX] = "", needle[PATH_MAX + 128], sc[PATH_MAX];

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	hpcn_strv_free(&f->warn);
	/* not mandatory: created, the rest applied, one warning per memory limit */
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "m1", &l, false,
						  path, sizeof(path), &f->warn, &f->err), 0);
	snprintf(needle, sizeof(needle), "memory.max not applied: controller 'memory' is not "
		 "available in cgroup v2 at %s (for workload.slice/m1.scope)", f->root);
	assert_true(hpcn_strv_contains(&f->warn, needle));
	assert_true(has_warning(&f->warn, "memory.swap.max not applied: controller 'memory'"));
	assert_int_equal(f->warn.n, 2);
	snprintf(sc, sizeof(sc), "%s/%s", f->root, path);
	assert_string_equal(read_at(sc, "cpu.weight"), "50");
	assert_string_equal(read_at(sc, "pids.max"), "128");
	assert_false(exists_at(sc, "memory.max"));

	/* mandatory: CreationFailed with the same words, and no scope left */
	hpcn_strv_free(&f->warn);
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "m2", &l, true,
						  path, sizeof(path), &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_CREATION_FAILED);
	snprintf(needle, sizeof(needle), "cgroup creation failed: memory.max not applied: "
		 "controller 'memory' is not available in cgroup v2 at %s "
		 "(for workload.slice/m2.scope)", f->root);
	assert_string_equal(f->err.message, needle);
	assert_false(exists_at(f->root, "workload.slice/m2.scope"));
	assert_int_equal(f->warn.n, 0);
	/* an existing scope is kept when its limits fail */
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "m1", &l, true,
						  path, sizeof(path), &f->warn, &f->err), -1);
	assert_true(exists_at(f->root, "workload.slice/m1.scope"));
}

static void test_cpu_weight_bounds(void **state)
{
	struct fx *f = *state;
	struct hpcn_resource_limits l;
	char path[PATH_MAX];
	static const uint64_t bad[] = { 0, 10001, 65536 };

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	memset(&l, 0, sizeof(l));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		l.cpu_weight = (struct hpcn_opt_u64){ true, bad[i] };
		assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "w", &l, false,
							  path, sizeof(path), &f->warn,
							  &f->err), -1);
		assert_int_equal(f->err.kind, HPCN_E_INVALID_ARGUMENT);
		assert_non_null(strstr(f->err.message, "outside 1..10000"));
		assert_false(exists_at(f->root, "workload.slice/w.scope"));
		assert_int_equal(hpcn_cgroup_create_slice(&f->cg, "workload.slice", "w", &l, false,
							  path, sizeof(path), &f->warn,
							  &f->err), -1);
		assert_false(exists_at(f->root, "workload.slice/w.slice"));
	}
	l.cpu_weight = (struct hpcn_opt_u64){ true, 10000 };
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "w", &l, true,
						  path, sizeof(path), &f->warn, &f->err), 0);
	assert_string_equal(read_at(f->root, "workload.slice/w.scope/cpu.weight"), "10000");
	l.cpu_weight = (struct hpcn_opt_u64){ true, 1 };
	assert_int_equal(hpcn_cgroup_apply_limits(&f->cg, path, &l, true, &f->warn, &f->err), 0);
	assert_string_equal(read_at(f->root, "workload.slice/w.scope/cpu.weight"), "1");
	l.cpu_weight = (struct hpcn_opt_u64){ true, 0 };
	assert_int_equal(hpcn_cgroup_apply_limits(&f->cg, path, &l, true, &f->warn, &f->err), -1);
	assert_string_equal(read_at(f->root, "workload.slice/w.scope/cpu.weight"), "1");
}

static void test_no_block_devices(void **state)
{
	struct fx *f = *state;
	struct hpcn_resource_limits l;
	char path[PATH_MAX];

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	snprintf(f->cg.sysfs_block, sizeof(f->cg.sysfs_block), "%s/block/loop0", f->dir);
	memset(&l, 0, sizeof(l));
	l.io_max = (struct hpcn_opt_u64){ true, 5 };
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "nb", &l, false,
						  path, sizeof(path), &f->warn, &f->err), 0);
	assert_true(has_warning(&f->warn, "io.max not applied: no whole block device found in"));
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "nb2", &l, true,
						  path, sizeof(path), &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_CREATION_FAILED);
}

/* ---- attach, kill, destroy, remove ---- */

static void test_attach_fake(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "at", NULL, false,
						  path, sizeof(path), &f->warn, &f->err), 0);
	assert_int_equal(hpcn_cgroup_attach(&f->cg, path, 4242, &f->err), 0);
	assert_string_equal(read_at(f->root, "workload.slice/at.scope/cgroup.procs"), "4242");
	assert_int_equal(hpcn_cgroup_attach(&f->cg, path, 0, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_cgroup_attach(&f->cg, "workload.slice/none.scope", 4242, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_NOT_FOUND);
}

static void test_destroy_timeout(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX], sc[PATH_MAX];
	unsigned long long t0, dt;

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "z", NULL, false,
						  path, sizeof(path), &f->warn, &f->err), 0);
	snprintf(sc, sizeof(sc), "%s/%s", f->root, path);
	write_at(sc, "cgroup.events", "populated 1\nfrozen 0\n");
	t0 = hpcn_now_ms();
	assert_int_equal(hpcn_cgroup_destroy_scope(&f->cg, path, 300, &f->err), -1);
	dt = hpcn_now_ms() - t0;
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_KILL_FAILED);
	assert_string_equal(f->err.message, "cgroup.kill failed for workload.slice/z.scope: "
			    "still populated after 300 ms (processes in D state?)");
	/* Not before the timeout; the message names the 300 ms used. The upper
	 * bound only tells a hang (a loaded machine is slow). */
	assert_true(dt >= 300 && dt < 60000);
	assert_string_equal(read_at(sc, "cgroup.kill"), "1");
	assert_true(exists_at(sc, "cgroup.events")); /* zombie: kept */
	bool empty = true;

	assert_int_equal(hpcn_cgroup_is_scope_empty(&f->cg, path, &empty, &f->err), 0);
	assert_false(empty);
	assert_int_equal(hpcn_cgroup_destroy_scope(&f->cg, path, 1000, &f->err), -1);
	assert_non_null(strstr(f->err.message, "still populated after 1 s (processes in D state?)"));

	/* Once it empties, destroy removes it; again is a no-op. */
	write_at(sc, "cgroup.events", "populated 0\nfrozen 0\n");
	assert_int_equal(hpcn_cgroup_is_scope_empty(&f->cg, path, &empty, &f->err), 0);
	assert_true(empty);
	assert_int_equal(hpcn_cgroup_destroy_scope(&f->cg, path, 300, &f->err), 0);
	assert_false(exists_at(f->root, "workload.slice/z.scope"));
	assert_int_equal(hpcn_cgroup_destroy_scope(&f->cg, path, 300, &f->err), 0);
	assert_int_equal(hpcn_cgroup_is_scope_empty(&f->cg, path, &empty, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_NOT_FOUND);
	assert_pact_untouched(f);
}

static pid_t spawn_sleeper(struct fx *f)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	f->kids[f->nkids++] = pid;
	return pid;
}

static void test_kill_fallback(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX], sc[PATH_MAX], line[64];
	pid_t a, b;
	int st;

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "k", NULL, false,
						  path, sizeof(path), &f->warn, &f->err), 0);
	snprintf(sc, sizeof(sc), "%s/%s", f->root, path);
	a = spawn_sleeper(f);
	b = spawn_sleeper(f);
	snprintf(line, sizeof(line), "%d\n", (int)a);
	write_at(sc, "cgroup.procs", line);
	mkdir_at(sc, "sub");
	snprintf(line, sizeof(line), "%d\n", (int)b);
	write_at(sc, "sub/cgroup.procs", line);
	/* an old kernel: no cgroup.kill */
	{
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/cgroup.kill", sc);
		assert_int_equal(unlink(p), 0);
	}
	assert_int_equal(hpcn_cgroup_kill(&f->cg, path, &f->err), 0);
	assert_int_equal(waitpid(a, &st, 0), a);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(waitpid(b, &st, 0), b);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	f->nkids = 0;
	assert_string_equal(read_at(sc, "cgroup.freeze"), "1");
}

static void test_remove(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	assert_int_equal(hpcn_cgroup_create_slice(&f->cg, "workload.slice", "g", NULL, false,
						  path, sizeof(path), &f->warn, &f->err), 0);
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, path, "s1", NULL, false,
						  path, sizeof(path), &f->warn, &f->err), 0);
	assert_int_equal(hpcn_cgroup_remove(&f->cg, "workload.slice/g.slice", &f->err), 0);
	assert_false(exists_at(f->root, "workload.slice/g.slice"));
	assert_true(exists_at(f->root, "workload.slice"));
	assert_int_equal(hpcn_cgroup_remove(&f->cg, "workload.slice/g.slice", &f->err), 0);
	assert_int_equal(hpcn_cgroup_remove(&f->cg, "workload.slice/nope.slice/x.scope",
					    &f->err), 0);
	assert_int_equal(hpcn_cgroup_remove(&f->cg, "workload.slice", &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_DENIED);
	assert_true(exists_at(f->root, "workload.slice"));
}

/* ---- metrics ---- */

static void test_metrics(void **state)
{
	struct fx *f = *state;
	struct hpcn_cgroup_metrics m;
	char path[PATH_MAX], sc[PATH_MAX], p[PATH_MAX];

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "mt", NULL, false,
						  path, sizeof(path), &f->warn, &f->err), 0);
	snprintf(sc, sizeof(sc), "%s/%s", f->root, path);
	write_at(sc, "memory.current", "123456\n");
	write_at(sc, "memory.max", "max\n");
	write_at(sc, "cpu.stat", "usage_usec 777\nuser_usec 700\nsystem_usec 77\n");
	write_at(sc, "cgroup.procs", "10\n11\n12\n");
	write_at(sc, "cpu.pressure", "some avg10=1.50 avg60=0.20 avg300=0.00 total=100\n"
		 "full avg10=0.50 avg60=0.00 avg300=0.00 total=10\n");
	write_at(sc, "io.pressure", "some avg10=0.25 avg60=0.00 avg300=0.00 total=3\n");
	snprintf(p, sizeof(p), "%s/memory.pressure", sc);
	assert_int_equal(unlink(p), 0);

	assert_int_equal(hpcn_cgroup_read_metrics(&f->cg, path, &m, &f->err), 0);
	assert_int_equal(m.memory_current, 123456);
	assert_false(m.memory_max.set);
	assert_int_equal(m.cpu_usage_usec, 777);
	assert_int_equal(m.nr_processes, 3);
	assert_true(m.cpu_pressure_avg10 > 1.49 && m.cpu_pressure_avg10 < 1.51);
	assert_true(m.io_pressure_avg10 > 0.24 && m.io_pressure_avg10 < 0.26);
	assert_true(m.memory_pressure_avg10 < 0);

	write_at(sc, "memory.max", "1048576\n");
	write_at(sc, "cgroup.procs", "10\n11");
	assert_int_equal(hpcn_cgroup_read_metrics(&f->cg, path, &m, &f->err), 0);
	assert_true(m.memory_max.set);
	assert_int_equal(m.memory_max.value, 1048576);
	assert_int_equal(m.nr_processes, 2);

	/* absent controller files: 0 / None, not an error */
	snprintf(p, sizeof(p), "%s/memory.current", sc);
	unlink(p);
	snprintf(p, sizeof(p), "%s/memory.max", sc);
	unlink(p);
	snprintf(p, sizeof(p), "%s/cpu.stat", sc);
	unlink(p);
	write_at(sc, "cgroup.procs", "");
	assert_int_equal(hpcn_cgroup_read_metrics(&f->cg, path, &m, &f->err), 0);
	assert_int_equal(m.memory_current, 0);
	assert_false(m.memory_max.set);
	assert_int_equal(m.cpu_usage_usec, 0);
	assert_int_equal(m.nr_processes, 0);

	write_at(sc, "memory.max", "garbage\n");
	assert_int_equal(hpcn_cgroup_read_metrics(&f->cg, path, &m, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_IO);

	/* RI6: any slice may be read, pact's too; a missing one is NotFound */
	assert_int_equal(hpcn_cgroup_read_metrics(&f->cg, "pact.slice/x.scope", &m, &f->err), 0);
	assert_int_equal(hpcn_cgroup_read_metrics(&f->cg, "workload.slice/nope.scope", &m,
						  &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_NOT_FOUND);
	assert_string_equal(f->err.message, "cgroup path not found: workload.slice/nope.scope");
	assert_int_equal(hpcn_cgroup_read_metrics(&f->cg, "", &m, &f->err), 0);
	assert_int_equal(m.nr_processes, 1);
	assert_int_equal(m.cpu_usage_usec, 5);
	/* reads cannot leave the root either */
	assert_int_equal(hpcn_cgroup_read_metrics(&f->cg, "../", &m, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_DENIED);
	bool pop;

	assert_int_equal(hpcn_cgroup_is_populated(&f->cg, "pact.slice/x.scope", &pop, &f->err), 0);
	assert_true(pop);

	int fd = hpcn_cgroup_open_dir(&f->cg, path, &f->err);
	struct stat st;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(faccessat(fd, "cgroup.events", F_OK, 0), 0);
	close(fd);
	assert_int_equal(hpcn_cgroup_open_dir(&f->cg, "workload.slice/nope.scope", &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hierarchy, setup_all, teardown),
		cmocka_unit_test_setup_teardown(test_hierarchy_missing_memory, setup_nomem, teardown),
		cmocka_unit_test_setup_teardown(test_scope_limits, setup_all, teardown),
		cmocka_unit_test_setup_teardown(test_refused_write, setup_all, teardown),
		cmocka_unit_test_setup_teardown(test_missing_memory_limits, setup_nomem, teardown),
		cmocka_unit_test_setup_teardown(test_cpu_weight_bounds, setup_all, teardown),
		cmocka_unit_test_setup_teardown(test_no_block_devices, setup_all, teardown),
		cmocka_unit_test_setup_teardown(test_attach_fake, setup_all, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_timeout, setup_all, teardown),
		cmocka_unit_test_setup_teardown(test_kill_fallback, setup_all, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup_all, teardown),
		cmocka_unit_test_setup_teardown(test_metrics, setup_all, teardown),
	};

	return cmocka_run_group_tests_name("cgroup_fake", tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cgroup module on a fake tree (HPCN_CGROUP_FAKE, a plain directory in
 * mkdtemp): the exact lines written for every limit, hierarchy creation,
 * missing controllers, destroy's timeout, metrics parsing, and RI1 against
 * every path trick we know. No privileges needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

/* Paths here are short mkdtemp names; gcc cannot know that. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

struct fx {
	char dir[64];        /* mkdtemp: holds root/ and block/ */
	char root[PATH_MAX]; /* the fake cgroup root */
	struct hpcn_cgroup cg;
	struct hpcn_strv warn;
	struct hpcn_error err;
	pid_t kids[4];       /* killed by teardown if a test fails early */
	int nkids;
};

static void write_at(const char *dir, const char *name, const char *content)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

/* Contents of dir/name (static buffer), NULL when it cannot be read. */
static const char *read_at(const char *dir, const char *name)
{
	static char buf[4096];
	char p[PATH_MAX];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "r");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool exists_at(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	remove(p);
	return 0;
}

static void rm_rf(const char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdir_at(const char *dir, const char *name)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(mkdir(p, 0755), 0);
}

/* A fake cgroup root offering the given controllers, a fake /sys/block
 * (sda 8:0 plus devices the device-less io_max must skip), and a pact.slice
 * with one scope that pact made (RI1: we must never touch it). */
static struct fx *fx_new(const char *controllers)
{
	struct fx *f = calloc(1, sizeof(*f));
	char block[PATH_MAX];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/hpcn-cgfake-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	assert_int_equal(mkdir(f->root, 0755), 0);
	write_at(f->root, "cgroup.controllers", controllers);
	write_at(f->root, "cgroup.subtree_control", "");
	write_at(f->root, "cgroup.procs", "1\n");
	write_at(f->root, "cpu.stat", "usage_usec 5\n");
	/* pact's own tree, as pact would have made it */
	mkdir_at(f->root, "pact.slice");
	mkdir_at(f->root, "pact.slice/x.scope");
	write_at(f->root, "pact.slice/x.scope/cgroup.kill", "");
	write_at(f->root, "pact.slice/x.scope/cgroup.procs", "");
	write_at(f->root, "pact.slice/x.scope/memory.max", "max\n");
	write_at(f->root, "pact.slice/x.scope/cgroup.events", "populated 1\nfrozen 0\n");
	write_at(f->root, "pact.slice/cgroup.kill", "");
	write_at(f->root, "pact.slice/cgroup.subtree_control", "");

	snprintf(block, sizeof(block), "%s/block", f->dir);
	assert_int_equal(mkdir(block, 0755), 0);
	mkdir_at(block, "sda");
	write_at(block, "sda/dev", "8:0\n");
	mkdir_at(block, "loop0");
	write_at(block, "loop0/dev", "7:0\n");
	mkdir_at(block, "zram0");
	write_at(block, "zram0/dev", "253:0\n");
	mkdir_at(block, "ram0");
	write_at(block, "ram0/dev", "1:0\n");

	hpcn_error_clear(&f->err);
	assert_int_equal(hpcn_cgroup_open(&f->cg, f->root, HPCN_CGROUP_FAKE, &f->err), 0);
	snprintf(f->cg.sysfs_block, sizeof(f->cg.sysfs_block), "%s", block);
	return f;
}

static int setup_all(void **state)
{
	*state = fx_new("cpu io memory pids\n");
	return 0;
}

static int setup_nomem(void **state)
{
	*state = fx_new("cpu io pids\n");
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < f->nkids; i++) {
		kill(f->kids[i], SIGKILL);
		waitpid(f->kids[i], NULL, 0);
	}
	hpcn_cgroup_close(&f->cg);
	hpcn_strv_free(&f->warn);
	rm_rf(f->dir);
	free(f);
	return 0;
}

/* pact.slice exactly as fx_new left it. */
static void assert_pact_untouched(struct fx *f)
{
	const char *s;

	assert_string_equal(read_at(f->root, "pact.slice/x.scope/cgroup.kill"), "");
	assert_string_equal(read_at(f->root, "pact.slice/x.scope/cgroup.procs"), "");
	assert_string_equal(read_at(f->root, "pact.slice/x.scope/memory.max"), "max\n");
	assert_string_equal(read_at(f->root, "pact.slice/cgroup.kill"), "");
	assert_string_equal(read_at(f->root, "pact.slice/cgroup.subtree_control"), "");
	s = read_at(f->root, "pact.slice/x.scope/cgroup.events");
	assert_non_null(s);
	assert_false(exists_at(f->root, "pact.slice/x.scope/y.scope"));
	assert_false(exists_at(f->root, "pact.slice/y.scope"));
	assert_false(exists_at(f->root, "pact.slice/z.slice"));
}

static bool has_warning(const struct hpcn_strv *w, const char *needle)
{
	for (size_t i = 0; i < w->n; i++)
		if (strstr(w->v[i], needle))
			return true;
	return false;
}

/* ---- pure functions ---- */

static void test_format(void **state)
{
	char b[128];
	struct hpcn_error err;
	struct hpcn_opt_u64 q = { true, 50000 }, per = { false, 0 }, v;
	uint64_t u;
	double d;
	uint32_t ma, mi;

	(void)state;
	assert_int_equal(hpcn_cgroup_fmt_subtree_control(b, sizeof(b), HPCN_CG_CTRL_ALL),
			 (int)strlen("+memory +cpu +io +pids"));
	assert_string_equal(b, "+memory +cpu +io +pids");
	assert_int_equal(hpcn_cgroup_fmt_subtree_control(b, sizeof(b),
							 HPCN_CG_CTRL_CPU | HPCN_CG_CTRL_PIDS), 10);
	assert_string_equal(b, "+cpu +pids");
	assert_int_equal(hpcn_cgroup_fmt_subtree_control(b, sizeof(b), 0), 0);
	assert_string_equal(b, "");
	assert_int_equal(hpcn_cgroup_fmt_subtree_control(b, 5, HPCN_CG_CTRL_ALL), -1);

	assert_int_equal(hpcn_cgroup_parse_controllers("cpuset cpu io memory hugetlb pids\n"),
			 HPCN_CG_CTRL_ALL);
	assert_int_equal(hpcn_cgroup_parse_controllers("+memory +io"),
			 HPCN_CG_CTRL_MEMORY | HPCN_CG_CTRL_IO);
	assert_int_equal(hpcn_cgroup_parse_controllers("hugetlb\n"), 0);
	assert_int_equal(hpcn_cgroup_parse_controllers("cpuset memoryx"), 0);
	assert_int_equal(hpcn_cgroup_parse_controllers(""), 0);

	assert_int_equal(hpcn_cgroup_fmt_u64(b, sizeof(b), 1073741824ULL), 10);
	assert_string_equal(b, "1073741824");
	hpcn_cgroup_fmt_u64(b, sizeof(b), 0);
	assert_string_equal(b, "0");

	assert_int_equal(hpcn_cgroup_fmt_cpu_weight(b, sizeof(b), 1, &err), 0);
	assert_string_equal(b, "1");
	assert_int_equal(hpcn_cgroup_fmt_cpu_weight(b, sizeof(b), 10000, &err), 0);
	assert_string_equal(b, "10000");
	assert_int_equal(hpcn_cgroup_fmt_cpu_weight(b, sizeof(b), 0, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_string_equal(err.message, "invalid argument: cpu_weight 0 is outside 1..10000");
	assert_int_equal(hpcn_cgroup_fmt_cpu_weight(b, sizeof(b), 10001, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);

	assert_int_equal(hpcn_cgroup_fmt_cpu_max(b, sizeof(b), &q, &per, &err), 0);
	assert_string_equal(b, "50000 100000");
	per.set = true;
	per.value = 200000;
	assert_int_equal(hpcn_cgroup_fmt_cpu_max(b, sizeof(b), &q, &per, &err), 0);
	assert_string_equal(b, "50000 200000");
	q.set = false;
	assert_int_equal(hpcn_cgroup_fmt_cpu_max(b, sizeof(b), &q, &per, &err), 0);
	assert_string_equal(b, "max 200000");
	q.set = true;
	q.value = 999;
	assert_int_equal(hpcn_cgroup_fmt_cpu_max(b, sizeof(b), &q, &per, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	q.value = 1000;
	per.value = 1000001;
	assert_int_equal(hpcn_cgroup_fmt_cpu_max(b, sizeof(b), &q, &per, &err), -1);
	per.value = 999;
	assert_int_equal(hpcn_cgroup_fmt_cpu_max(b, sizeof(b), &q, &per, &err), -1);

	assert_int_equal(hpcn_cgroup_fmt_io_max(b, sizeof(b), 8, 0, 1048576, 1048576),
			 (int)strlen("8:0 rbps=1048576 wbps=1048576"));
	assert_string_equal(b, "8:0 rbps=1048576 wbps=1048576");
	hpcn_cgroup_fmt_io_max(b, sizeof(b), 259, 3, 0, 42);
	assert_string_equal(b, "259:3 rbps=max wbps=42");
	hpcn_cgroup_fmt_io_max(b, sizeof(b), 8, 16, 0, 0);
	assert_string_equal(b, "8:16 rbps=max wbps=max");

	assert_int_equal(hpcn_cgroup_parse_max("max\n", &v), 0);
	assert_false(v.set);
	assert_int_equal(hpcn_cgroup_parse_max("4096\n", &v), 0);
	assert_true(v.set);
	assert_int_equal(v.value, 4096);
	assert_int_equal(hpcn_cgroup_parse_max("12x\n", &v), -1);
	assert_int_equal(hpcn_cgroup_parse_max("\n", &v), -1);
	assert_int_equal(hpcn_cgroup_parse_max("-1", &v), -1);

	assert_int_equal(hpcn_cgroup_parse_keyed("usage_usec 12345\nuser_usec 3\n",
						 "usage_usec", &u), 0);
	assert_int_equal(u, 12345);
	assert_int_equal(hpcn_cgroup_parse_keyed("user_usec 3\nusage_usec 7", "usage_usec", &u), 0);
	assert_int_equal(u, 7);
	assert_int_equal(hpcn_cgroup_parse_keyed("populated 1\nfrozen 0\n", "populated", &u), 0);
	assert_int_equal(u, 1);
	assert_int_equal(hpcn_cgroup_parse_keyed("xusage_usec 1\n", "usage_usec", &u), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(hpcn_cgroup_parse_keyed("usage_usec abc\n", "usage_usec", &u), -1);
	assert_int_equal(errno, EINVAL);

	assert_int_equal(hpcn_cgroup_parse_psi_some_avg10(
		"some avg10=1.25 avg60=0.50 avg300=0.00 total=1234\n"
		"full avg10=0.75 avg60=0.00 avg300=0.00 total=99\n", &d), 0);
	assert_true(d > 1.249 && d < 1.251);
	assert_int_equal(hpcn_cgroup_parse_psi_some_avg10(
		"full avg10=0.75 avg60=0.00 avg300=0.00 total=99\n"
		"some avg10=3.00 avg60=0.50 avg300=0.00 total=1234\n", &d), 0);
	assert_true(d > 2.99 && d < 3.01);
	assert_int_equal(hpcn_cgroup_parse_psi_some_avg10("full avg10=1.00\n", &d), -1);
	assert_int_equal(hpcn_cgroup_parse_psi_some_avg10("some total=3\nfull avg10=1\n", &d), -1);

	assert_int_equal(hpcn_cgroup_parse_devnum("259:12\n", &ma, &mi), 0);
	assert_int_equal(ma, 259);
	assert_int_equal(mi, 12);
	assert_int_equal(hpcn_cgroup_parse_devnum("8\n", &ma, &mi), -1);
	assert_int_equal(hpcn_cgroup_parse_devnum("8:0x", &ma, &mi), -1);

	assert_true(hpcn_cgroup_block_dev_eligible("sda"));
	assert_true(hpcn_cgroup_block_dev_eligible("nvme0n1"));
	assert_true(hpcn_cgroup_block_dev_eligible("dm-0"));
	assert_false(hpcn_cgroup_block_dev_eligible("loop3"));
	assert_false(hpcn_cgroup_block_dev_eligible("ram0"));
	assert_false(hpcn_cgroup_block_dev_eligible("zram0"));
	assert_false(hpcn_cgroup_block_dev_eligible("."));
}

static void test_scope_path(void **state)
{
	char b[256];
	struct hpcn_error err;

	(void)state;
	assert_int_equal(hpcn_cgroup_scope_path("12", "12.0", b, sizeof(b), &err), 0);
	assert_string_equal(b, "workload.slice/12.slice/12.0.scope");
	assert_int_equal(hpcn_cgroup_scope_path(NULL, "alloc-42", b, sizeof(b), &err), 0);
	assert_string_equal(b, "workload.slice/alloc-42.scope");
	assert_int_equal(hpcn_cgroup_scope_path("", "alloc-42", b, sizeof(b), &err), 0);
	assert_string_equal(b, "workload.slice/alloc-42.scope");
	assert_int_equal(hpcn_cgroup_group_slice_path("12", b, sizeof(b), &err), 0);
	assert_string_equal(b, "workload.slice/12.slice");
	assert_int_equal(hpcn_cgroup_scope_path("12", "../x", b, sizeof(b), &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_cgroup_scope_path("..", "x", b, sizeof(b), &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_cgroup_scope_path("a/b", "x", b, sizeof(b), &err), -1);
	assert_int_equal(hpcn_cgroup_scope_path("12", "x", b, 10, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
}

static void test_detect_root(void **state)
{
	char dir[] = "/tmp/hpcn-mi-XXXXXX", out[PATH_MAX];
	struct hpcn_error err;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_at(dir, "hybrid",
		 "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
		 "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
		 "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw\n");
	write_at(dir, "pure",
		 "22 1 0:20 / /mnt/other\\040cg rw - cgroup2 cgroup2 rw\n"
		 "25 1 0:21 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n");
	write_at(dir, "other",
		 "22 1 0:20 / /proc rw - proc proc rw\n"
		 "23 1 0:21 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\n"
		 "24 1 0:22 / /mnt/second rw - cgroup2 cgroup2 rw\n");
	write_at(dir, "none", "22 1 0:20 / /proc rw - proc proc rw\n");

	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/hybrid", dir);
	assert_int_equal(hpcn_cgroup_detect_root_from(p, out, sizeof(out), &err), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified");
	snprintf(p, sizeof(p), "%s/pure", dir);
	assert_int_equal(hpcn_cgroup_detect_root_from(p, out, sizeof(out), &err), 0);
	assert_string_equal(out, "/sys/fs/cgroup");
	snprintf(p, sizeof(p), "%s/other", dir);
	assert_int_equal(hpcn_cgroup_detect_root_from(p, out, sizeof(out), &err), 0);
	assert_string_equal(out, "/mnt/my cgroup");
	assert_int_equal(hpcn_cgroup_detect_root_from(p, out, 5, &err), -1);
	snprintf(p, sizeof(p), "%s/none", dir);
	assert_int_equal(hpcn_cgroup_detect_root_from(p, out, sizeof(out), &err), -1);
	assert_int_equal(err.kind, HPCN_E_CGROUP_IO);
	assert_non_null(strstr(err.message, "no cgroup2 mount"));
	/* The machine's own: this one must find something (hybrid or pure). */
	assert_int_equal(hpcn_cgroup_detect_root(out, sizeof(out), &err), 0);
	assert_int_equal(out[0], '/');
	rm_rf(dir);
}

static void test_open_checks(void **state)
{
	struct hpcn_cgroup cg;
	struct hpcn_error err;
	char dir[] = "/tmp/hpcn-cgo-XXXXXX";

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* Without FAKE, a plain directory is not accepted as cgroup v2. */
	assert_int_equal(hpcn_cgroup_open(&cg, dir, 0, &err), -1);
	assert_int_equal(err.kind, HPCN_E_CGROUP_IO);
	assert_non_null(strstr(err.message, "is not a cgroup v2 filesystem"));
	assert_int_equal(cg.root_fd, -1);
	hpcn_cgroup_close(&cg);
	assert_int_equal(hpcn_cgroup_open(&cg, "relative/root", HPCN_CGROUP_FAKE, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_cgroup_open(&cg, "/nonexistent-hpcn", HPCN_CGROUP_FAKE, &err), -1);
	assert_int_equal(err.kind, HPCN_E_CGROUP_NOT_FOUND);
	rmdir(dir);
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

static struct hpcn_resource_limits all_limits(void)
{
	struct hpcn_resource_limits l;

	memset(&l, 0, sizeof(l));
	l.memory_max = (struct hpcn_opt_u64){ true, 1073741824ULL };
	l.memory_swap_max = (struct hpcn_opt_u64){ true, 0 };
	l.cpu_weight = (struct hpcn_opt_u64){ true, 50 };
	l.cpu_max_quota_usec = (struct hpcn_opt_u64){ true, 50000 };
	l.pids_max = (struct hpcn_opt_u64){ true, 128 };
	l.io_max = (struct hpcn_opt_u64){ true, 1048576 };
	return l;
}

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

/* ---- RI1 ---- */

struct trick {
	const char *path;            /* %s = the fake root */
	enum hpcn_error_kind kind;
	const char *message;         /* exact, or NULL */
};

/* tmpl with its "%s" (if any) replaced by root; no printf on data. */
static void subst(char *out, size_t cap, const char *tmpl, const char *root)
{
	const char *at = strstr(tmpl, "%s");

	if (!at) {
		snprintf(out, cap, "%s", tmpl);
		return;
	}
	snprintf(out, cap, "%.*s%s%s", (int)(at - tmpl), tmpl, root, at + 2);
}

/* Run every mutating call on path; each must fail with kind (and message). */
static void assert_all_refused(struct fx *f, const char *path, enum hpcn_error_kind kind,
			       const char *message)
{
	struct hpcn_resource_limits l = all_limits();
	char out[PATH_MAX];
	int rv;

#define CHECK(call) do {							\
		hpcn_error_clear(&f->err);					\
		rv = (call);							\
		if (rv != -1 || f->err.kind != kind ||				\
		    (message && strcmp(f->err.message, message) != 0))		\
			fail_msg("%s on '%s': rv %d, kind %d (want %d), '%s'",	\
				 #call, path, rv, f->err.kind, kind, f->err.message); \
	} while (0)

	CHECK(hpcn_cgroup_create_scope(&f->cg, path, "y", &l, false, out, sizeof(out),
				       &f->warn, &f->err));
	CHECK(hpcn_cgroup_create_slice(&f->cg, path, "z", &l, false, out, sizeof(out),
				       &f->warn, &f->err));
	CHECK(hpcn_cgroup_apply_limits(&f->cg, path, &l, false, &f->warn, &f->err));
	CHECK(hpcn_cgroup_attach(&f->cg, path, getpid(), &f->err));
	CHECK(hpcn_cgroup_kill(&f->cg, path, &f->err));
	CHECK(hpcn_cgroup_kill_pids(&f->cg, path, &f->err));
	CHECK(hpcn_cgroup_remove(&f->cg, path, &f->err));
	CHECK(hpcn_cgroup_destroy_scope(&f->cg, path, 100, &f->err));
#undef CHECK
}

static void test_ri1_tricks(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX], msg[PATH_MAX + 256];
	static const struct trick pact[] = {
		{ "pact.slice", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice owned by Pact" },
		{ "pact.slice/x.scope", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice/x.scope owned by Pact" },
		{ "workload.slice/../pact.slice/x.scope", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice/x.scope owned by Pact" },
		{ "workload.slice//..//pact.slice", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice owned by Pact" },
		{ "./pact.slice/./x.scope/", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice/x.scope owned by Pact" },
		{ "%s/pact.slice/x.scope", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice/x.scope owned by Pact" },
		{ "%s/workload.slice/../pact.slice", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice owned by Pact" },
		{ "%s//pact.slice", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice owned by Pact" },
		/* lexically still our root (fx names it .../root) */
		{ "%s/../root/pact.slice", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice owned by Pact" },
	};
	static const char *const denied[] = {
		"workload.slice-extra",
		"workload.slice-extra/x.scope",
		"system.slice",
		"not-pact.slice/foo",
		"",
		".",
		"/",
		"..",
		"../pact.slice",
		"workload.slice/../../pact.slice",
		"workload.slice/../..",
		"/sys/fs/cgroup/unified/pact.slice",
		"/sys/fs/cgroup/pact.slice",
		"/etc",
		"%s-other/workload.slice",
	};

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	/* Make workload.slice-extra etc. exist so that only policy stops us. */
	mkdir_at(f->root, "workload.slice-extra");
	mkdir_at(f->root, "system.slice");

	for (size_t i = 0; i < sizeof(pact) / sizeof(pact[0]); i++) {
		subst(p, sizeof(p), pact[i].path, f->root);
		assert_all_refused(f, p, pact[i].kind, pact[i].message);
	}
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		subst(p, sizeof(p), denied[i], f->root);
		assert_all_refused(f, p, HPCN_E_DENIED, NULL);
	}
	/* The text names the path. */
	hpcn_cgroup_kill(&f->cg, "workload.slice-extra", &f->err);
	assert_string_equal(f->err.message, "denied: cgroup path 'workload.slice-extra' is outside "
			    "workload.slice, which is the only slice this helper writes (RI1)");
	hpcn_cgroup_kill(&f->cg, "/sys/fs/cgroup/unified/pact.slice", &f->err);
	snprintf(msg, sizeof(msg), "denied: cgroup path '/sys/fs/cgroup/unified/pact.slice' is "
		 "not inside the cgroup root %s", f->root);
	assert_string_equal(f->err.message, msg);

	/* workload.slice itself may be limited but not killed, removed, joined. */
	assert_int_equal(hpcn_cgroup_kill(&f->cg, "workload.slice", &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_DENIED);
	assert_int_equal(hpcn_cgroup_destroy_scope(&f->cg, "workload.slice/", 100, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_DENIED);
	assert_int_equal(hpcn_cgroup_attach(&f->cg, "workload.slice", getpid(), &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_DENIED);

	/* Bad names never become path components. */
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "../../pact.slice/q",
						  NULL, false, p, sizeof(p), &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "..", NULL, false,
						  p, sizeof(p), &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_cgroup_create_slice(&f->cg, "workload.slice", "a/b", NULL, false,
						  p, sizeof(p), &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_INVALID_ARGUMENT);

	assert_false(exists_at(f->root, "workload.slice-extra/y.scope"));
	assert_false(exists_at(f->root, "system.slice/y.scope"));
	assert_true(exists_at(f->root, "workload.slice-extra"));
	assert_pact_untouched(f);
}

static void test_ri1_symlinks(void **state)
{
	struct fx *f = *state;
	struct hpcn_resource_limits l = all_limits();
	char p[PATH_MAX], tgt[PATH_MAX], out[PATH_MAX];

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	/* A directory symlink into pact.slice, relative and absolute. */
	snprintf(p, sizeof(p), "%s/workload.slice/evil", f->root);
	assert_int_equal(symlink("../pact.slice", p), 0);
	snprintf(p, sizeof(p), "%s/workload.slice/evil2", f->root);
	snprintf(tgt, sizeof(tgt), "%s/pact.slice", f->root);
	assert_int_equal(symlink(tgt, p), 0);
	/* A scope name that is a symlink to pact's scope. */
	snprintf(p, sizeof(p), "%s/workload.slice/y.scope", f->root);
	assert_int_equal(symlink("../pact.slice/x.scope", p), 0);

	assert_all_refused(f, "workload.slice/evil", HPCN_E_DENIED, NULL);
	assert_all_refused(f, "workload.slice/evil2", HPCN_E_DENIED, NULL);
	assert_all_refused(f, "workload.slice/evil/x.scope", HPCN_E_DENIED,
			   "denied: cgroup path 'workload.slice/evil/x.scope': component 'evil' "
			   "is a symlink or not a directory");
	assert_all_refused(f, "workload.slice/evil2/x.scope", HPCN_E_DENIED, NULL);
	assert_all_refused(f, "workload.slice/y.scope", HPCN_E_DENIED, NULL);
	/* create_scope("y") finds the name taken by a symlink: refused, not followed */
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "y", &l, false,
						  out, sizeof(out), &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_DENIED);
	/* the symlinks themselves survive (remove refused to follow them) */
	snprintf(p, sizeof(p), "%s/workload.slice/y.scope", f->root);
	{
		struct stat st;

		assert_int_equal(lstat(p, &st), 0);
		assert_true(S_ISLNK(st.st_mode));
	}
	/* Reads do not follow them either. */
	{
		struct hpcn_cgroup_metrics m;

		assert_int_equal(hpcn_cgroup_read_metrics(&f->cg, "workload.slice/evil/x.scope",
							  &m, &f->err), -1);
		assert_int_equal(f->err.kind, HPCN_E_DENIED);
	}

	/* An interface file that is a symlink into pact's scope. */
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "f", NULL, false,
						  out, sizeof(out), &f->warn, &f->err), 0);
	snprintf(p, sizeof(p), "%s/workload.slice/f.scope/memory.max", f->root);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("../../pact.slice/x.scope/memory.max", p), 0);
	snprintf(p, sizeof(p), "%s/workload.slice/f.scope/cgroup.kill", f->root);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("../../pact.slice/x.scope/cgroup.kill", p), 0);
	assert_int_equal(hpcn_cgroup_apply_limits(&f->cg, out, &l, false, &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_CREATION_FAILED);
	assert_int_equal(hpcn_cgroup_kill(&f->cg, out, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_KILL_FAILED);
	/* remove deletes the symlinks, not what they point to */
	assert_int_equal(hpcn_cgroup_remove(&f->cg, out, &f->err), 0);
	assert_false(exists_at(f->root, "workload.slice/f.scope"));
	assert_pact_untouched(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_scope_path),
		cmocka_unit_test(test_detect_root),
		cmocka_unit_test(test_open_checks),
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
		cmocka_unit_test_setup_teardown(test_ri1_tricks, setup_all, teardown),
		cmocka_unit_test_setup_teardown(test_ri1_symlinks, setup_all, teardown),
	};

	return cmocka_run_group_tests_name("cgroup_fake", tests, NULL, NULL);
}

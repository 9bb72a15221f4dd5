/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cgroup module's pure functions (the exact text of every interface
 * line written, the parsers of what the kernel writes, scope paths), the
 * cgroup2 root found in a mountinfo, and hpcn_cgroup_open's checks. No
 * privileges needed; the fake tree's tests are in test_cgroup_fake.c and
 * test_cgroup_ri1.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup/cgroup.h"

#include "cgroup_test_util.h"

/* Paths here are short mkdtemp names; gcc cannot know that. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_scope_path),
		cmocka_unit_test(test_detect_root),
		cmocka_unit_test(test_open_checks),
	};

	return cmocka_run_group_tests_name("cgroup_parse", tests, NULL, NULL);
}

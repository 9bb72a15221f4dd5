/* SPDX-License-Identifier: Apache-2.0 */
/* slice_owner: every case the crate's own tests fix, and our strict form. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include <hpcnode/hpcnode.h>

static void test_constants_exact(void **state)
{
	assert_string_equal(HPCN_SLICE_PACT_ROOT, "pact.slice");
	assert_string_equal(HPCN_SLICE_PACT_INFRA, "pact.slice/infra.slice");
	assert_string_equal(HPCN_SLICE_PACT_NETWORK, "pact.slice/network.slice");
	assert_string_equal(HPCN_SLICE_PACT_GPU, "pact.slice/gpu.slice");
	assert_string_equal(HPCN_SLICE_PACT_AUDIT, "pact.slice/audit.slice");
	assert_string_equal(HPCN_SLICE_WORKLOAD_ROOT, "workload.slice");
	assert_string_equal(HPCN_HANDOFF_SOCKET_PATH, "/run/pact/handoff.sock");
	assert_string_equal(HPCN_UENV_MOUNT_BASE, "/run/pact/uenv");
	assert_string_equal(HPCN_WORKDIR_BASE, "/run/pact/workdir");
	assert_string_equal(HPCN_DATA_STAGE_BASE, "/run/pact/data");
	assert_int_equal(HPCN_DEFAULT_HOLD_TIME_SECS, 60);
	assert_string_equal(HPCN_READINESS_SOCKET_PATH, "/run/pact/ready.sock");
	assert_string_equal(HPCN_READINESS_FILE_PATH, "/run/pact/ready");
}

/* crate: slice_owner_pact */
static void test_crate_pact(void **state)
{
	assert_int_equal(hpcn_slice_owner(HPCN_SLICE_PACT_ROOT), HPCN_OWNER_PACT);
	assert_int_equal(hpcn_slice_owner(HPCN_SLICE_PACT_INFRA), HPCN_OWNER_PACT);
	assert_int_equal(hpcn_slice_owner(HPCN_SLICE_PACT_GPU), HPCN_OWNER_PACT);
	assert_int_equal(hpcn_slice_owner(HPCN_SLICE_PACT_NETWORK), HPCN_OWNER_PACT);
	assert_int_equal(hpcn_slice_owner(HPCN_SLICE_PACT_AUDIT), HPCN_OWNER_PACT);
}

/* crate: slice_owner_workload */
static void test_crate_workload(void **state)
{
	assert_int_equal(hpcn_slice_owner(HPCN_SLICE_WORKLOAD_ROOT), HPCN_OWNER_WORKLOAD);
	assert_int_equal(hpcn_slice_owner("workload.slice/alloc-42"), HPCN_OWNER_WORKLOAD);
}

/* crate: slice_owner_unknown */
static void test_crate_unknown(void **state)
{
	assert_int_equal(hpcn_slice_owner("system.slice"), HPCN_OWNER_NONE);
	assert_int_equal(hpcn_slice_owner(""), HPCN_OWNER_NONE);
	assert_int_equal(hpcn_slice_owner("/sys/fs/cgroup"), HPCN_OWNER_NONE);
	assert_int_equal(hpcn_slice_owner(NULL), HPCN_OWNER_NONE);
}

/* crate: slice_owner_nested_paths */
static void test_crate_nested(void **state)
{
	assert_int_equal(hpcn_slice_owner("pact.slice/infra.slice/chronyd.scope"), HPCN_OWNER_PACT);
	assert_int_equal(hpcn_slice_owner("workload.slice/alloc-42/task-1.scope"),
			 HPCN_OWNER_WORKLOAD);
}

/* crate: slice_owner_substring_not_matched (prefix, no '/' boundary) */
static void test_crate_substring(void **state)
{
	assert_int_equal(hpcn_slice_owner("not-pact.slice/foo"), HPCN_OWNER_NONE);
	assert_int_equal(hpcn_slice_owner("workload.slice-extra"), HPCN_OWNER_WORKLOAD);
	/* absolute paths are None for the crate */
	assert_int_equal(hpcn_slice_owner("/sys/fs/cgroup/pact.slice"), HPCN_OWNER_NONE);
}

static void test_owner_names(void **state)
{
	assert_string_equal(hpcn_slice_owner_name(HPCN_OWNER_PACT), "Pact");
	assert_string_equal(hpcn_slice_owner_name(HPCN_OWNER_WORKLOAD), "Workload");
	assert_null(hpcn_slice_owner_name(HPCN_OWNER_NONE));
}

static void expect_strict(const char *root, const char *path, enum hpcn_slice_owner want,
			  const char *want_norm)
{
	enum hpcn_slice_owner o = (enum hpcn_slice_owner)-1;
	char norm[256];

	if (hpcn_slice_owner_strict(root, path, &o, norm, sizeof(norm)) != 0)
		fail_msg("strict(%s, %s) failed: %s", root ? root : "NULL", path, strerror(errno));
	assert_int_equal(o, want);
	assert_string_equal(norm, want_norm);
}

static void expect_strict_error(const char *root, const char *path)
{
	enum hpcn_slice_owner o;

	errno = 0;
	if (hpcn_slice_owner_strict(root, path, &o, NULL, 0) == 0)
		fail_msg("strict(%s, %s) accepted a bad path", root ? root : "NULL", path);
	assert_int_not_equal(errno, 0);
}

static void test_strict(void **state)
{
	const char *r = "/sys/fs/cgroup";

	expect_strict(r, "pact.slice", HPCN_OWNER_PACT, "pact.slice");
	expect_strict(r, "workload.slice/a.scope", HPCN_OWNER_WORKLOAD, "workload.slice/a.scope");
	/* stricter than the crate: whole components only */
	expect_strict(r, "workload.slice-extra", HPCN_OWNER_NONE, "workload.slice-extra");
	expect_strict(r, "pact.slicex/foo", HPCN_OWNER_NONE, "pact.slicex/foo");
	/* tricks */
	expect_strict(r, "workload.slice/../pact.slice/x", HPCN_OWNER_PACT, "pact.slice/x");
	expect_strict(r, "workload.slice//..//pact.slice", HPCN_OWNER_PACT, "pact.slice");
	expect_strict(r, "./workload.slice/./a/", HPCN_OWNER_WORKLOAD, "workload.slice/a");
	expect_strict(r, "/sys/fs/cgroup/pact.slice/gpu.slice", HPCN_OWNER_PACT,
		      "pact.slice/gpu.slice");
	expect_strict(r, "/sys/fs/cgroup//workload.slice/", HPCN_OWNER_WORKLOAD,
		      "workload.slice");
	expect_strict(r, "/sys/fs/cgroup/workload.slice/../../cgroup/pact.slice",
		      HPCN_OWNER_PACT, "pact.slice");
	expect_strict(r, "/sys/fs/cgroup", HPCN_OWNER_NONE, "");
	expect_strict(r, "", HPCN_OWNER_NONE, "");
	/* leaving the root, outside the root, no root for an absolute path */
	expect_strict_error(r, "..");
	expect_strict_error(r, "workload.slice/../../etc");
	expect_strict_error(r, "/sys/fs/cgroupx/pact.slice");
	expect_strict_error(r, "/etc/passwd");
	expect_strict_error(r, "/sys/fs/cgroup/..");
	expect_strict_error(NULL, "/sys/fs/cgroup/pact.slice");
	expect_strict_error(r, NULL);
}

static void test_strict_too_long(void **state)
{
	char big[5000];
	char norm[16];
	enum hpcn_slice_owner o;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	errno = 0;
	assert_int_equal(hpcn_slice_owner_strict("/sys/fs/cgroup", big, &o, NULL, 0), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	errno = 0;
	assert_int_equal(hpcn_slice_owner_strict("/r", "workload.slice/x", &o, norm, sizeof(norm)), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constants_exact),
		cmocka_unit_test(test_crate_pact),
		cmocka_unit_test(test_crate_workload),
		cmocka_unit_test(test_crate_unknown),
		cmocka_unit_test(test_crate_nested),
		cmocka_unit_test(test_crate_substring),
		cmocka_unit_test(test_owner_names),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_strict_too_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

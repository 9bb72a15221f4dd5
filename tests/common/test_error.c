/* SPDX-License-Identifier: Apache-2.0 */
/* Error kinds keep the crate's variant names and display texts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include <hpcnode/hpcnode.h>

static void expect(enum hpcn_error_kind k, const char *f1, const char *f2, const char *text)
{
	struct hpcn_error e;

	assert_int_equal(hpcn_error_set(&e, k, f1, f2), -1);
	assert_int_equal(e.kind, k);
	assert_string_equal(e.message, text);
}

/* The display texts of the crate, verbatim (crates/node/src/). */
static void test_crate_texts(void **state)
{
	expect(HPCN_E_CGROUP_CREATION_FAILED, "no space", NULL, "cgroup creation failed: no space");
	expect(HPCN_E_CGROUP_KILL_FAILED, "/sys/fs/cgroup/test", "D-state",
	       "cgroup.kill failed for /sys/fs/cgroup/test: D-state");
	expect(HPCN_E_CGROUP_NOT_FOUND, "workload.slice/x", NULL,
	       "cgroup path not found: workload.slice/x");
	expect(HPCN_E_CGROUP_PERMISSION_DENIED, "workload.slice", "Workload",
	       "permission denied: workload.slice owned by Workload");
	expect(HPCN_E_CGROUP_IO, "EIO", NULL, "cgroup I/O error: EIO");
	expect(HPCN_E_NS_SOCKET_UNAVAILABLE, "gone", NULL, "handoff socket unavailable: gone");
	expect(HPCN_E_NS_CREATION_FAILED, "EPERM", NULL, "namespace creation failed: EPERM");
	expect(HPCN_E_NS_ALLOCATION_NOT_FOUND, "alloc-42", NULL, "allocation not found: alloc-42");
	expect(HPCN_E_NS_FD_PASSING, "EBADF", NULL, "FD passing failed: EBADF");
	expect(HPCN_E_MOUNT_FAILED, "/i.sqfs", "bad magic", "mount failed for /i.sqfs: bad magic");
	expect(HPCN_E_UNMOUNT_FAILED, "/run/pact/uenv/x", "EBUSY",
	       "unmount failed for /run/pact/uenv/x: EBUSY");
	expect(HPCN_E_REFCOUNT_INCONSISTENCY, "/i.sqfs", "would go negative",
	       "refcount inconsistency for /i.sqfs: would go negative");
	expect(HPCN_E_MOUNT_IO, "EIO", NULL, "mount I/O error: EIO");
	expect(HPCN_E_BOOT_FAILED, "cgroup root missing", NULL, "boot failed: cgroup root missing");
	expect(HPCN_E_READINESS_TIMEOUT, NULL, NULL, "timeout waiting for readiness");
}

static void test_names(void **state)
{
	assert_string_equal(hpcn_error_family(HPCN_E_NS_ALLOCATION_NOT_FOUND), "NamespaceError");
	assert_string_equal(hpcn_error_variant(HPCN_E_NS_ALLOCATION_NOT_FOUND), "AllocationNotFound");
	assert_string_equal(hpcn_error_variant(HPCN_E_CGROUP_KILL_FAILED), "KillFailed");
	assert_string_equal(hpcn_error_variant(HPCN_E_NS_FD_PASSING), "FdPassing");
	assert_string_equal(hpcn_error_variant(HPCN_E_READINESS_TIMEOUT), "Timeout");
	assert_null(hpcn_error_family(HPCN_E_NONE));
	assert_null(hpcn_error_family(HPCN_E__COUNT));
	assert_null(hpcn_error_variant((enum hpcn_error_kind)-3));
	/* every kind round-trips through its names, and every pair is unique */
	for (int k = HPCN_E_NONE + 1; k < HPCN_E__COUNT; k++) {
		const char *f = hpcn_error_family((enum hpcn_error_kind)k);
		const char *v = hpcn_error_variant((enum hpcn_error_kind)k);

		assert_non_null(f);
		assert_non_null(v);
		assert_int_equal(hpcn_error_kind_from_names(f, v), k);
	}
	assert_int_equal(hpcn_error_kind_from_names("CgroupError", "Nope"), HPCN_E_NONE);
	assert_int_equal(hpcn_error_kind_from_names(NULL, "Io"), HPCN_E_NONE);
}

static void test_setf_errno(void **state)
{
	struct hpcn_error e;

	hpcn_error_set_errno(&e, HPCN_E_MOUNT_FAILED, ENOENT, "/x.sqfs", "open as uid %d", 1000);
	assert_int_equal(e.kind, HPCN_E_MOUNT_FAILED);
	assert_int_equal(e.sys_errno, ENOENT);
	assert_string_equal(e.message,
			    "mount failed for /x.sqfs: open as uid 1000: No such file or directory");
	hpcn_error_setf(&e, HPCN_E_INVALID_ARGUMENT, NULL, "field %s", "x");
	assert_string_equal(e.message, "invalid argument: field x");
	assert_int_equal(e.sys_errno, 0);
	hpcn_error_set_raw(&e, HPCN_E_DENIED, "denied: as sent");
	assert_string_equal(e.message, "denied: as sent");
	hpcn_error_clear(&e);
	assert_int_equal(e.kind, HPCN_E_NONE);
	assert_string_equal(e.message, "");
	/* NULL err is allowed and still returns -1 */
	assert_int_equal(hpcn_error_set(NULL, HPCN_E_BUSY, "x", NULL), -1);
	/* an unknown kind becomes Internal, never a crash */
	hpcn_error_set(&e, (enum hpcn_error_kind)999, "x", NULL);
	assert_int_equal(e.kind, HPCN_E_INTERNAL);
}

static void test_truncation(void **state)
{
	struct hpcn_error e;
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	hpcn_error_set(&e, HPCN_E_MOUNT_FAILED, big, big);
	assert_int_equal(strlen(e.message), HPCN_ERROR_MESSAGE_MAX - 1);
	assert_memory_equal(e.message, "mount failed for xxx", 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crate_texts),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_setf_errno),
		cmocka_unit_test(test_truncation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

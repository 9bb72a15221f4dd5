/* SPDX-License-Identifier: Apache-2.0 */
/* SLURM_JOB_CPUS_PER_NODE read for one node (spank/joblimits.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "joblimits.h"

static void test_lists(void **state)
{
	static const struct {
		const char *list;
		uint32_t node, want;
	} ok[] = {
		{ "4", 0, 4 },
		{ "72(x2),36", 0, 72 },
		{ "72(x2),36", 1, 72 },
		{ "72(x2),36", 2, 36 },
		{ "1,2,3", 2, 3 },
		{ "8(x1000000)", 999999, 8 },
	};
	static const struct {
		const char *list;
		uint32_t node;
	} bad[] = {
		{ "", 0 }, { "4", 1 }, { "72(x2),36", 3 }, { "x", 0 }, { "4(x0)", 0 },
		{ "4(2)", 0 }, { "4(x2", 0 }, { "4,", 1 }, { ",4", 0 }, { "4 ", 0 },
		{ "-4", 0 }, { "99999999999", 0 }, { "4(x2)5", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint32_t got = 0;

		if (hpcn_job_cpus_on_node(ok[i].list, ok[i].node, &got) != 0)
			fail_msg("'%s' node %u refused", ok[i].list, ok[i].node);
		if (got != ok[i].want)
			fail_msg("'%s' node %u: %u, not %u", ok[i].list, ok[i].node, got,
				 ok[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t got = 0;

		if (hpcn_job_cpus_on_node(bad[i].list, bad[i].node, &got) != -1)
			fail_msg("'%s' node %u accepted (%u)", bad[i].list, bad[i].node, got);
	}
	assert_int_equal(hpcn_job_cpus_on_node(NULL, 0, &(uint32_t){ 0 }), -1);
}

static void test_slurm_holds_cgroup(void **state)
{
	(void)state;
	/* Slurm's cgroup/v2: tasks under job_<id>/step_<s>/user/task_<n>. */
	assert_true(hpcn_slurm_holds_cgroup(
		"0::/system.slice/slurmstepd.scope/job_5/step_0/user/task_0\n", 5));
	assert_true(hpcn_slurm_holds_cgroup("0::/system.slice/slurmstepd.scope/job_5\n", 5));
	assert_true(hpcn_slurm_holds_cgroup("0::/slurm/job_5/step_batch", 5));
	/* Another job, the helper's own scope, the root, a hybrid node's v1. */
	assert_false(hpcn_slurm_holds_cgroup(
		"0::/system.slice/slurmstepd.scope/job_15/step_0/user/task_0\n", 5));
	assert_false(hpcn_slurm_holds_cgroup("0::/system.slice/slurmstepd.scope/job_51\n", 5));
	assert_false(hpcn_slurm_holds_cgroup("0::/workload.slice/job_5.slice/job_5.0.scope\n", 5));
	assert_false(hpcn_slurm_holds_cgroup("0::/\n", 5));
	assert_false(hpcn_slurm_holds_cgroup(
		"6:freezer:/slurm_n/uid_1/job_5/step_0\n4:memory:/slurm_n/uid_1/job_5/step_0\n"
		"0::/hpcn/workload.slice/job_5.slice/job_5.0.scope\n", 5));
	assert_true(hpcn_slurm_holds_cgroup("6:freezer:/\n0::/a/job_5/step_0\n", 5));
	assert_false(hpcn_slurm_holds_cgroup("", 5));
	assert_false(hpcn_slurm_holds_cgroup(NULL, 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_slurm_holds_cgroup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

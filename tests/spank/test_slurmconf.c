/* SPDX-License-Identifier: Apache-2.0 */
/* The slurm.conf keys reported at slurmd's start (spank/slurmconf.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "slurmconf.h"

static void test_parse(void **state)
{
	struct hpcn_slurmconf c;

	(void)state;
	hpcn_slurmconf_parse("# a site\n"
			     "ClusterName=x\n"
			     "  jobcontainertype=job_container/tmpfs   # per-job /tmp\n"
			     "ProctrackType=proctrack/linuxproc\n"
			     "ProctrackType=proctrack/cgroup\r\n"
			     "TaskPlugin=task/affinity,task/cgroup\n"
			     "PrologFlags=Alloc,Contain\n"
			     "#TaskPlugin=task/none\n"
			     "TaskPluginParam=Cores\n"
			     "JobContainerTypeX=nope\n",
			     &c);
	assert_string_equal(c.job_container, "job_container/tmpfs");
	assert_string_equal(c.proctrack, "proctrack/cgroup");
	assert_string_equal(c.task, "task/affinity,task/cgroup");
	assert_string_equal(c.prolog_flags, "Alloc,Contain");
	hpcn_slurmconf_parse("", &c);
	assert_string_equal(c.job_container, "");
	hpcn_slurmconf_parse(NULL, &c);
	assert_string_equal(c.task, "");
	/* No newline at the end, an overlong value is cut, not overflowed. */
	hpcn_slurmconf_parse("ProctrackType=proctrack/cgroupxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", &c);
	assert_int_equal(strlen(c.proctrack), sizeof(c.proctrack) - 1);
}

static void test_summary(void **state)
{
	struct hpcn_slurmconf c;
	char buf[512];

	(void)state;
	hpcn_slurmconf_parse("JobContainerType=job_container/tmpfs\nPrologFlags=Contain\n"
			     "ProctrackType=proctrack/cgroup\nTaskPlugin=task/cgroup,task/affinity\n",
			     &c);
	hpcn_slurmconf_summary(&c, buf, sizeof(buf));
	assert_string_equal(buf, "job_container/tmpfs: each step is built on its job's namespace "
				 "(private /tmp, /dev/shm); proctrack/cgroup, task/cgroup: tasks "
				 "stay in Slurm's cgroups (with cgroup=on too)");
	hpcn_slurmconf_parse("JobContainerType=job_container/tmpfs\nTaskPlugin=task/affinity\n", &c);
	hpcn_slurmconf_summary(&c, buf, sizeof(buf));
	assert_non_null(strstr(buf, "PrologFlags=Contain is not set"));
	assert_non_null(strstr(buf, "; no Slurm cgroup plugin"));
	/* task/cgroupx is not task/cgroup. */
	hpcn_slurmconf_parse("TaskPlugin=task/cgroupx\n", &c);
	hpcn_slurmconf_summary(&c, buf, sizeof(buf));
	assert_string_equal(buf, "no job_container/tmpfs; no Slurm cgroup plugin");
	hpcn_slurmconf_parse("TaskPlugin=task/affinity,task/cgroup\n", &c);
	hpcn_slurmconf_summary(&c, buf, sizeof(buf));
	assert_string_equal(buf, "no job_container/tmpfs; task/cgroup: tasks stay in Slurm's "
				 "cgroups (with cgroup=on too)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_summary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

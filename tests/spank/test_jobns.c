/* SPDX-License-Identifier: Apache-2.0 */
/* job_container/tmpfs's pin of a job found in a mount table (spank/jobns.c). */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "jobns.h"

/* A node's table: the root, a helper's own pins (not Slurm's), BasePath's
 * private binds, and the pins of jobs 5 and 15 (Debian: BasePath/<node>). */
#define ROOT "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
#define PIN(id, mp, ns) id " 67 0:4 mnt:[" ns "] " mp " rw - nsfs nsfs rw\n"
#define BASE "/var/tmp/jc"

static int find(const char *table, uint32_t job, const char *node, char *path,
		struct hpcn_error *err)
{
	return hpcn_jobns_find(table, strlen(table), job, node, path, PATH_MAX, err);
}

static void test_found(void **state)
{
	static const char table[] =
		ROOT
		"67 22 254:0 " BASE "/node1 " BASE "/node1 rw - ext4 /dev/vda rw\n"
		PIN("90", "/run/hpc-node/ns/job_5.0/mnt", "4026532300")
		PIN("91", BASE "/node1/15/.ns", "4026532301")
		PIN("92", BASE "/node1/5/.ns", "4026532302");
	char path[PATH_MAX];
	struct hpcn_error err;

	(void)state;
	assert_int_equal(find(table, 5, "node1", path, &err), 1);
	assert_string_equal(path, BASE "/node1/5/.ns");
	/* The node name only tells several apart; a lone pin is taken. */
	assert_int_equal(find(table, 5, "", path, &err), 1);
	assert_string_equal(path, BASE "/node1/5/.ns");
	assert_int_equal(find(table, 5, NULL, path, &err), 1);
	assert_int_equal(find(table, 15, "othername", path, &err), 1);
	assert_string_equal(path, BASE "/node1/15/.ns");
	/* A build without multiple-slurmd: BasePath/<jobid>/.ns. */
	assert_int_equal(find(ROOT PIN("93", "/scratch/jc/77/.ns", "1"), 77, "n", path, &err), 1);
	assert_string_equal(path, "/scratch/jc/77/.ns");
	/* Escaped paths are decoded. */
	assert_int_equal(find(ROOT PIN("94", "/var/my\\040tmp/n/8/.ns", "1"), 8, "n", path, &err),
			 1);
	assert_string_equal(path, "/var/my tmp/n/8/.ns");
}

static void test_none(void **state)
{
	char path[PATH_MAX] = "x";
	struct hpcn_error err;

	(void)state;
	/* No job_container/tmpfs, or not for this job. */
	assert_int_equal(find(ROOT, 5, "node1", path, &err), 0);
	assert_string_equal(path, "");
	assert_int_equal(find("", 5, "node1", path, &err), 0);
	/* Job 5 is not job 15 nor 55 nor 5x. */
	assert_int_equal(find(ROOT PIN("91", BASE "/n/15/.ns", "1") PIN("92", BASE "/n/55/.ns", "2")
			      PIN("93", BASE "/n/5x/.ns", "3") PIN("94", BASE "/n/5/.nsx", "4"),
			      5, "n", path, &err), 0);
	/* Not a mount namespace, not nsfs, a file system mounted there. */
	assert_int_equal(find(ROOT "95 67 0:4 net:[4026532] " BASE "/n/5/.ns rw - nsfs nsfs rw\n"
			      "96 67 0:40 / " BASE "/n/5/.ns rw - tmpfs tmpfs rw\n",
			      5, "n", path, &err), 0);
	/* The helper's own pin of a step named like a job. */
	assert_int_equal(find(ROOT PIN("97", "/run/hpc-node/ns/5/.nsx", "1"), 5, "n", path, &err),
			 0);
}

static void test_several(void **state)
{
	static const char two[] =
		ROOT PIN("91", BASE "/node1/5/.ns", "1") PIN("92", BASE "/node2/5/.ns", "2");
	char path[PATH_MAX];
	struct hpcn_error err;

	(void)state;
	/* Two slurmds of one host: each takes its node's. */
	assert_int_equal(find(two, 5, "node2", path, &err), 1);
	assert_string_equal(path, BASE "/node2/5/.ns");
	assert_int_equal(find(two, 5, "node1", path, &err), 1);
	assert_string_equal(path, BASE "/node1/5/.ns");
	/* "ode1" is no component, "node" neither: ambiguous, an error naming both. */
	assert_int_equal(find(two, 5, "ode1", path, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_CREATION_FAILED);
	assert_non_null(strstr(err.message, "job 5 has 2 job_container/tmpfs namespaces"));
	assert_non_null(strstr(err.message, BASE "/node1/5/.ns, " BASE "/node2/5/.ns"));
	assert_int_equal(find(two, 5, "", path, &err), -1);
	assert_string_equal(path, "");
	/* Two under the same node name (two BasePaths): still ambiguous. */
	assert_int_equal(find(ROOT PIN("91", "/a/n/5/.ns", "1") PIN("92", "/b/n/5/.ns", "2"), 5, "n",
			      path, &err), -1);
}

static void test_bad_table(void **state)
{
	char path[PATH_MAX];
	struct hpcn_error err;

	(void)state;
	assert_int_equal(find("not a mount table\n", 5, "n", path, &err), -1);
	assert_non_null(strstr(err.message, "line 1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found),
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_several),
		cmocka_unit_test(test_bad_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

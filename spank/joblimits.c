/* SPDX-License-Identifier: Apache-2.0 */
/* The job's CPUs on this node, and whose its cgroups are: see joblimits.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "joblimits.h"

static int number(const char **p, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (**p < '0' || **p > '9')
		return -1;
	errno = 0;
	v = strtoul(*p, &end, 10);
	if (errno || v > max)
		return -1;
	*p = end;
	*out = (uint32_t)v;
	return 0;
}

int hpcn_job_cpus_on_node(const char *list, uint32_t nodeid, uint32_t *cpus)
{
	const char *p = list;
	uint64_t first = 0; /* index of the first node the current entry covers */

	if (!p || !*p)
		return -1;
	for (;;) {
		uint32_t n, reps = 1;

		if (number(&p, UINT32_MAX, &n) < 0)
			return -1;
		if (*p == '(') {
			p++;
			if (*p++ != 'x' || number(&p, UINT32_MAX, &reps) < 0 || reps == 0 ||
			    *p++ != ')')
				return -1;
		}
		if (*p != ',' && *p != '\0')
			return -1;
		if (nodeid < first + reps) {
			*cpus = n;
			return 0;
		}
		first += reps;
		if (*p == '\0')
			return -1; /* fewer nodes than nodeid */
		p++;
	}
}

bool hpcn_slurm_holds_cgroup(const char *cgroup_text, uint32_t job)
{
	char comp[32];
	const char *line = cgroup_text;
	size_t n;

	n = (size_t)snprintf(comp, sizeof(comp), "/job_%u/", job);
	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		/* "0::PATH": PATH + "/" must contain "/job_<job>/". */
		if (len > 3 && strncmp(line, "0::", 3) == 0) {
			for (const char *p = line + 3; p + n <= line + len + 1; p++)
				if (strncmp(p, comp, n - 1) == 0 &&
				    (p + n - 1 == line + len || p[n - 1] == '/'))
					return true;
			return false;
		}
		line = end ? end + 1 : NULL;
	}
	return false;
}

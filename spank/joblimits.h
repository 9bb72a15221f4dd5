/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The job's share of this node, for the cgroup limits of the job's slice.
 *
 * In a step, Slurm's S_JOB_NCPUS is the step's CPUs on the node, not the
 * job's: a 64-CPU batch job running `srun -c1` would limit the whole job's
 * slice (its batch script and every other step) to one CPU. The job's count
 * per node is in SLURM_JOB_CPUS_PER_NODE, in Slurm's compressed list form:
 * "72(x2),36" = 72 on nodes 0 and 1, 36 on node 2.
 *
 * Pure logic: no Slurm header.
 */
#ifndef HPCN_SPANK_JOBLIMITS_H
#define HPCN_SPANK_JOBLIMITS_H

#include <stdbool.h>
#include <stdint.h>

/* The CPUs of node `nodeid` (0-based, the job's node index) in `list`.
 * Returns 0 and *cpus, or -1 when list is malformed or too short. */
int hpcn_job_cpus_on_node(const char *list, uint32_t nodeid, uint32_t *cpus);

/*
 * Does Slurm's own cgroup plugin hold this task's cgroup v2 membership?
 * cgroup_text is /proc/self/cgroup; its "0::" line is the v2 path. Slurm's
 * cgroup/v2 (proctrack/cgroup, task/cgroup on a pure v2 node) puts tasks
 * under .../job_<job>/step_<step>/user/task_<n>: moving such a task into the
 * helper's scope would take it out of the cgroup Slurm tracks, limits and
 * kills it by, so with cgroup=on the plugin leaves it there. cgroup/v1 (a
 * hybrid node) holds only v1 hierarchies: false.
 */
bool hpcn_slurm_holds_cgroup(const char *cgroup_text, uint32_t job);

#endif

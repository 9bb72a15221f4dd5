/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What of the node's Slurm configuration matters to the plugin, read from
 * slurm.conf once at slurmd's start so that slurmd's log says what the
 * plugin will do beside it: job_container/tmpfs (each step built on the
 * job's namespace) and Slurm's own cgroup plugins (tasks stay in Slurm's
 * cgroups). Informational only: the plugin's behaviour never depends on
 * this reading (a configless node has no slurm.conf to read), but on what
 * each step finds (jobns.h, hpcn_slurm_holds_cgroup).
 *
 * Pure logic: no Slurm header.
 */
#ifndef HPCN_SPANK_SLURMCONF_H
#define HPCN_SPANK_SLURMCONF_H

#include <stddef.h>

struct hpcn_slurmconf {
	char job_container[64];  /* JobContainerType, "" when unset */
	char proctrack[64];      /* ProctrackType */
	char task[128];          /* TaskPlugin */
	char prolog_flags[128];  /* PrologFlags */
};

/* Parse slurm.conf text: "Key=Value" lines, keys case-insensitive, '#'
 * comments, the last setting wins, everything else ignored. */
void hpcn_slurmconf_parse(const char *text, struct hpcn_slurmconf *out);

/* One line for slurmd's log, e.g. "job_container/tmpfs: each step is built
 * on its job's namespace; proctrack/cgroup, task/cgroup: tasks stay in
 * Slurm's cgroups". */
void hpcn_slurmconf_summary(const struct hpcn_slurmconf *c, char *buf, size_t cap);

#endif

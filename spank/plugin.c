/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spank_hpc_node: the dispatcher. Each SPANK entry point hands over to the
 * file of its context; nothing here but routing. Never abort, exit or
 * crash inside slurmstepd: every path returns.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "slurmconf.h"
#include "util.h" /* hpcn_read_file_at */

SPANK_PLUGIN(hpc_node, 1);

struct hpcn_spank_ctx hpcn_ctx = {
	.ns_fds = { -1, -1, -1 },
};

static int parse_args(int ac, char **av)
{
	struct hpcn_error err;

	if (hpcn_ctx.initialized)
		return 0;
	hpcn_plugargs_defaults(&hpcn_ctx.args);
	if (hpcn_plugargs_parse(ac, av, &hpcn_ctx.args, &err) < 0) {
		log_error("plugstack.conf: %s", err.message);
		return -1;
	}
	hpcn_ctx.initialized = true;
	return 0;
}

/* What the plugin will do beside the node's Slurm plugins (slurmconf.h):
 * informational, each step finds out for itself. */
static void log_slurm_configuration(void)
{
	const char *path = getenv("SLURM_CONF") ? getenv("SLURM_CONF") : "/etc/slurm/slurm.conf";
	size_t cap = 1u << 20;
	char *text = malloc(cap), summary[512];
	struct hpcn_slurmconf conf;

	if (!text || hpcn_read_file_at(AT_FDCWD, path, text, cap) < 0) {
		log_verbose("Slurm configuration: cannot read %s (configless?): job_container/tmpfs "
			    "and Slurm's cgroups are found per step", path);
		free(text);
		return;
	}
	hpcn_slurmconf_parse(text, &conf);
	free(text);
	hpcn_slurmconf_summary(&conf, summary, sizeof(summary));
	log_info("Slurm configuration (%s): %s", path, summary);
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	if (parse_args(ac, av) < 0)
		return -1;
	switch (spank_context()) {
	case S_CTX_LOCAL:
	case S_CTX_ALLOCATOR:
	case S_CTX_REMOTE:
		return hpcn_options_register(sp);
	case S_CTX_SLURMD:
		/* Once, at slurmd's start, in its log. */
		log_slurm_configuration();
		if (hpcn_ctx.args.job_container_base[0])
			log_info("plugstack.conf: job_container_base= is no longer needed and is "
				 "ignored: each job's job_container/tmpfs namespace is found from "
				 "Slurm's own pin (<BasePath>/<jobid>/.ns) in the mount table");
		return 0;
	default:
		return 0;
	}
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	struct hpcn_error err;

	switch (spank_context()) {
	case S_CTX_LOCAL:
	case S_CTX_ALLOCATOR:
		/* Check everything checkable before the job starts. */
		if (hpcn_options_collect(sp, false, &err) < 0) {
			log_error("%s", err.message);
			return -1;
		}
		return 0;
	case S_CTX_REMOTE:
		return hpcn_remote_init_post_opt(sp);
	default:
		return 0;
	}
}

int slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	return spank_remote(sp) ? hpcn_remote_task_init_privileged(sp) : 0;
}

int slurm_spank_task_exit(spank_t sp, int ac, char **av)
{
	return spank_remote(sp) ? hpcn_remote_task_exit(sp) : 0;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	return spank_remote(sp) ? hpcn_remote_exit(sp) : 0;
}

/* Slurm (22.05) does not call slurm_spank_init in the job_script context:
 * the arguments are parsed here. A bad plugstack.conf is reported, but the
 * prolog/epilog does not fail for it (that would drain the node). */
int slurm_spank_job_prolog(spank_t sp, int ac, char **av)
{
	return parse_args(ac, av) < 0 ? 0 : hpcn_jobscript_prolog(sp);
}

int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	return parse_args(ac, av) < 0 ? 0 : hpcn_jobscript_epilog(sp);
}

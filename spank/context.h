/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spank_hpc_node: the plugin's one context, shared by the files of each
 * SPANK context (options.c: srun/sbatch/salloc and option callbacks;
 * remote.c: slurmstepd; jobscript.c: prolog/epilog; fallback.c: a private
 * namespace when the helper is absent). The logic lives in hpcn_spank_logic.
 */
#ifndef HPCN_SPANK_CONTEXT_H
#define HPCN_SPANK_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <slurm/slurm.h> /* SLURM_BATCH_SCRIPT and the other step ids */
#include <slurm/spank.h>

#include <hpcnode/hpcnode.h>

#include "plugargs.h"
#include "uenv_spec.h"
#include "view.h"

#define PLUGIN_NAME "hpc-node"

/* Every log line starts with the plugin's name. */
#define log_error(fmt, ...) slurm_error(PLUGIN_NAME ": " fmt, ##__VA_ARGS__)
#define log_info(fmt, ...)  slurm_info(PLUGIN_NAME ": " fmt, ##__VA_ARGS__)
#define log_verbose(fmt, ...) slurm_verbose(PLUGIN_NAME ": " fmt, ##__VA_ARGS__)
#define log_debug(fmt, ...) slurm_debug(PLUGIN_NAME ": " fmt, ##__VA_ARGS__)

struct hpcn_spank_ctx {
	bool initialized;
	struct hpcn_plugargs args;

	/* Option values as given (command line wins over the environment). */
	char *opt_uenv;
	char *opt_view;

	/* What this step uses. */
	bool active;                         /* there is something to set up */
	struct hpcn_uenv_spec spec;
	char view_arg[HPCN_VIEW_ARG_MAX];
	/* The batch step took them from SBATCH_UENV*: its steps inherit them
	 * as SLURM_UENV* (an sbatch --uenv option reaches them on its own). */
	bool batch_env_fallback;

	/* Remote side. */
	char allocation_id[HPCN_ALLOC_ID_MAX + 1];
	char group[HPCN_ALLOC_ID_MAX + 1];
	uid_t uid;
	gid_t gid;
	int ns_fds[HPCN_NS__COUNT];          /* by enum hpcn_ns_type, -1 when absent */
	bool from_helper;                    /* else the local fallback made them */
	char fallback_reason[1024];          /* why the fallback was used, "" if not */
	bool released;
	uint32_t local_tasks;
	uint32_t exited_tasks;
	/* An error found in slurmstepd before the tasks: reported by the first
	 * task hook, whose stderr is the user's terminal (Slurm bug 7573). */
	struct hpcn_error deferred;
	bool has_deferred;
};

extern struct hpcn_spank_ctx hpcn_ctx;

/* options.c */
int hpcn_options_register(spank_t sp);
/* The uenv and view strings this step uses: option, else environment. */
int hpcn_options_collect(spank_t sp, bool remote, struct hpcn_error *err);

/* remote.c */
int hpcn_remote_init_post_opt(spank_t sp);
int hpcn_remote_task_init_privileged(spank_t sp);
int hpcn_remote_task_exit(spank_t sp);
int hpcn_remote_exit(spank_t sp);

/* jobscript.c */
int hpcn_jobscript_prolog(spank_t sp);
int hpcn_jobscript_epilog(spank_t sp);

/* fallback.c: a private mount namespace with the images, made by the
 * plugin itself (reduced isolation: no sharing, no helper bookkeeping),
 * from base_fd's mount namespace (job_container/tmpfs's) when >= 0. */
int hpcn_fallback_create(const struct hpcn_uenv_spec *spec, uid_t uid, gid_t gid,
			 int base_fd, int *mnt_fd, struct hpcn_error *err);

#endif

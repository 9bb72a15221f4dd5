/* SPDX-License-Identifier: Apache-2.0 */
/*
 * User options: --uenv and --view, with their environment fallbacks
 * (SLURM_UENV / SLURM_UENV_VIEW for srun, SBATCH_UENV / SBATCH_UENV_VIEW for
 * sbatch); the command line wins. Checked in srun/sbatch/salloc before the
 * job starts; the remote side parses the same string again.
 *
 * Nothing here may depend on the user's environment reaching the node:
 * with --export=NONE (or --export=VARS) Slurm carries only SLURM_* variables
 * of the submitting side (sbatch(1), --export). So what the submitting side
 * passes on is named SLURM_HPCN_*, and the batch step also reads Slurm's own
 * copy of the options (see option_for_batch).
 */
#include <errno.h> /* program_invocation_short_name */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "view.h"

static int opt_uenv_cb(int val, const char *optarg, int remote)
{
	/* Slurm may call a callback twice with the same value. */
	free(hpcn_ctx.opt_uenv);
	hpcn_ctx.opt_uenv = optarg ? strdup(optarg) : NULL;
	return 0;
}

static int opt_view_cb(int val, const char *optarg, int remote)
{
	free(hpcn_ctx.opt_view);
	hpcn_ctx.opt_view = optarg ? strdup(optarg) : NULL;
	return 0;
}

static struct spank_option opt_uenv = {
	"uenv", "IMAGE[:MOUNT][,...]",
	"Mount uenv squashfs IMAGE (absolute path, or NAME[/VERSION][:TAG] of the site's "
	"repository) at MOUNT (default /user-environment) for the tasks. [hpc-node]",
	1, 0, opt_uenv_cb
};

static struct spank_option opt_view = {
	"view", "VIEW[,...]",
	"Apply the environment VIEW (or IMAGE:VIEW) of the mounted uenv images to the "
	"tasks. [hpc-node]",
	1, 0, opt_view_cb
};

int hpcn_options_register(spank_t sp)
{
	if (spank_option_register(sp, &opt_uenv) != ESPANK_SUCCESS ||
	    spank_option_register(sp, &opt_view) != ESPANK_SUCCESS) {
		log_error("cannot register --uenv and --view");
		return -1;
	}
	return 0;
}

/* The job's environment on the remote side, the process's elsewhere. */
static const char *env_value(spank_t sp, bool remote, const char *name, char *buf, size_t cap)
{
	if (!remote)
		return getenv(name); /* the parsers check lengths */
	if (spank_getenv(sp, name, buf, (int)cap) == ESPANK_SUCCESS && buf[0])
		return buf;
	return NULL;
}

/* On the node, a value too long for our buffer is an error, not "unset"
 * (which would run the step without its images or views, silently). */
static int env_fits(spank_t sp, bool remote, const char *name, char *buf, size_t cap,
		    struct hpcn_error *err)
{
	if (remote && spank_getenv(sp, name, buf, (int)cap) == ESPANK_NOSPACE)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "%s is longer than %zu bytes", name, cap - 1);
	return 0;
}

/*
 * What srun, sbatch or salloc resolved (repository names become files), for
 * the node: resolving NAME again there, later and as root, could pick another
 * image when the repository changed in between (a new "latest"). Keyed by
 * the request as written, so that the pair a nested srun inherits is only
 * used for the same request. A user who sets them by hand gains nothing
 * --uenv would not give: the node parses and checks them like --uenv, and the
 * helper opens the images as the user.
 */
#define ENV_REQUESTED "SLURM_HPCN_UENV_REQUESTED"
#define ENV_RESOLVED "SLURM_HPCN_UENV_RESOLVED"

/*
 * sbatch's SBATCH_UENV and SBATCH_UENV_VIEW, as read by sbatch, for the
 * batch step: Slurm drops them with --export=NONE (they are no SLURM_*).
 */
#define ENV_CARRIED_PREFIX "SLURM_HPCN_"

/*
 * Slurm's own copies of the options, for the batch step. sbatch passes an
 * option to it as _SLURM_SPANK_OPTION_<plugin>_<option> in the job's
 * environment, which --export=NONE drops (not SLURM_*), and also as
 * SLURM_SPANK__SLURM_SPANK_OPTION_<plugin>_<option> (sbatch's
 * _set_spank_env), which it keeps. Slurm 22.05; the plugin is "hpc_node".
 */
#define ENV_SLURM_OPT_UENV "SLURM_SPANK__SLURM_SPANK_OPTION_hpc_node_uenv"
#define ENV_SLURM_OPT_VIEW "SLURM_SPANK__SLURM_SPANK_OPTION_hpc_node_view"

/* In srun/sbatch/salloc itself: the job's environment is taken from ours
 * after this (spank_setenv is not available to sbatch's allocator context). */
static void pass_resolved(const char *requested)
{
	static char canon[HPCN_UENV_ARG_MAX];

	if (hpcn_uenv_spec_to_string(&hpcn_ctx.spec, canon, sizeof(canon)) < 0 ||
	    setenv(ENV_REQUESTED, requested, 1) < 0 || setenv(ENV_RESOLVED, canon, 1) < 0)
		log_verbose("cannot pass the resolved --uenv on; the node resolves it again");
}

/* sbatch: an SBATCH_UENV* value it used, under a name Slurm always carries. */
static void pass_env_value(const char *name, const char *value)
{
	char carried[64];

	snprintf(carried, sizeof(carried), ENV_CARRIED_PREFIX "%s", name);
	if (setenv(carried, value, 1) < 0)
		log_verbose("cannot pass %s on: with --export=NONE the batch step lacks it", name);
}

/* The resolved form srun passed on for this very request, or NULL. */
static const char *resolved_for(spank_t sp, const char *requested)
{
	static char req[HPCN_UENV_ARG_MAX], res[HPCN_UENV_ARG_MAX];
	const char *r = env_value(sp, true, ENV_REQUESTED, req, sizeof(req));

	if (!r || strcmp(r, requested) != 0)
		return NULL;
	return env_value(sp, true, ENV_RESOLVED, res, sizeof(res));
}

/*
 * On the node: what the submitting side passed on is ours, not the user's
 * program's, nor a nested job's (whose srun/sbatch set their own). Removed
 * from the step's environment once read; the tasks never see them.
 */
static void forget_passed(spank_t sp)
{
	static const char *const names[] = {
		ENV_REQUESTED, ENV_RESOLVED, ENV_CARRIED_PREFIX "SBATCH_UENV",
		ENV_CARRIED_PREFIX "SBATCH_UENV_VIEW",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		spank_unsetenv(sp, names[i]);
}

/*
 * The batch step's value of an option (slurm_name), or else of its
 * environment default (var): what sbatch saw, whether or not the user's
 * environment reached the node (--export=NONE). *from_env tells which.
 * NULL when neither was given; -1 on a value too long.
 */
static int batch_value(spank_t sp, const char *slurm_name, const char *var, char *buf,
		       size_t cap, const char **value, bool *from_env, struct hpcn_error *err)
{
	char carried[64];

	*from_env = false;
	if (env_fits(sp, true, slurm_name, buf, cap, err) < 0)
		return -1;
	if ((*value = env_value(sp, true, slurm_name, buf, cap)))
		return 0;
	*from_env = true;
	if (env_fits(sp, true, var, buf, cap, err) < 0)
		return -1;
	if ((*value = env_value(sp, true, var, buf, cap)))
		return 0;
	snprintf(carried, sizeof(carried), ENV_CARRIED_PREFIX "%s", var);
	if (env_fits(sp, true, carried, buf, cap, err) < 0)
		return -1;
	*value = env_value(sp, true, carried, buf, cap);
	return 0;
}

/* One value: the option, else the environment default (see batch_value). */
static int option_or_env(spank_t sp, bool remote, bool batch, const char *opt,
			 const char *slurm_name, const char *var, char *buf, size_t cap,
			 const char **value, bool *from_env, struct hpcn_error *err)
{
	*from_env = false;
	*value = opt;
	if (opt)
		return 0;
	if (batch)
		return batch_value(sp, slurm_name, var, buf, cap, value, from_env, err);
	if (env_fits(sp, remote, var, buf, cap, err) < 0)
		return -1;
	*value = env_value(sp, remote, var, buf, cap);
	*from_env = true;
	return 0;
}

static int collect(spank_t sp, bool remote, struct hpcn_error *err)
{
	static char ubuf[HPCN_UENV_ARG_MAX], vbuf[HPCN_VIEW_ARG_MAX];
	const char *resolved = NULL;
	const char *uenv, *view;
	const char *uvar = "SLURM_UENV", *vvar = "SLURM_UENV_VIEW";
	struct hpcn_view_list views;
	uint32_t stepid = 0;
	bool uenv_from_env, view_from_env, sbatch = false;

	bool batch = remote && spank_get_item(sp, S_JOB_STEPID, &stepid) == ESPANK_SUCCESS &&
		     stepid == SLURM_BATCH_SCRIPT;

	/* salloc is an allocator too, but its steps read SLURM_UENV. */
	if ((spank_context() == S_CTX_ALLOCATOR &&
	     strcmp(program_invocation_short_name, "salloc") != 0) || batch) {
		uvar = "SBATCH_UENV";
		vvar = "SBATCH_UENV_VIEW";
		sbatch = !remote;
	}
	hpcn_ctx.batch_env_fallback = false;
	if (option_or_env(sp, remote, batch, hpcn_ctx.opt_uenv, ENV_SLURM_OPT_UENV, uvar, ubuf,
			  sizeof(ubuf), &uenv, &uenv_from_env, err) < 0 ||
	    option_or_env(sp, remote, batch, hpcn_ctx.opt_view, ENV_SLURM_OPT_VIEW, vvar, vbuf,
			  sizeof(vbuf), &view, &view_from_env, err) < 0)
		return -1;
	hpcn_ctx.batch_env_fallback = batch && uenv_from_env && uenv && uenv[0];
	if (sbatch && uenv_from_env && uenv && uenv[0])
		pass_env_value(uvar, uenv);
	if (sbatch && view_from_env && view && view[0])
		pass_env_value(vvar, view);
	memset(&hpcn_ctx.spec, 0, sizeof(hpcn_ctx.spec));
	hpcn_ctx.view_arg[0] = '\0';
	/* "--uenv=" is a mistake to report; an empty SLURM_UENV means unset. */
	if (!uenv || (!uenv[0] && uenv_from_env)) {
		if (view && view[0])
			return hpcn_error_set_raw(err, HPCN_E_INVALID_ARGUMENT,
						  "--view needs --uenv (or SLURM_UENV)");
		return 0;
	}
	if (remote)
		resolved = resolved_for(sp, uenv);
	if (hpcn_uenv_spec_parse(resolved ? resolved : uenv, &hpcn_ctx.args, &hpcn_ctx.spec,
				 err) < 0 ||
	    hpcn_uenv_spec_resolve(&hpcn_ctx.spec, &hpcn_ctx.args, err) < 0)
		return -1;
	if (!remote)
		pass_resolved(uenv);
	if (view && (view[0] || !view_from_env)) {
		/* Only the syntax can be checked before the images are mounted. */
		if (hpcn_view_parse_arg(view, &views, err) < 0)
			return -1;
		snprintf(hpcn_ctx.view_arg, sizeof(hpcn_ctx.view_arg), "%s", view);
	}
	hpcn_ctx.active = true;
	return 0;
}

int hpcn_options_collect(spank_t sp, bool remote, struct hpcn_error *err)
{
	int rv = collect(sp, remote, err);

	/* Everything read is copied: what was passed on can go. */
	if (remote)
		forget_passed(sp);
	return rv;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * User options: --uenv and --view, with their environment fallbacks
 * (SLURM_UENV / SLURM_UENV_VIEW for srun, SBATCH_UENV / SBATCH_UENV_VIEW for
 * sbatch); the command line wins. Checked in srun/sbatch/salloc before the
 * job starts; the remote side parses the same string again.
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
#define ENV_REQUESTED "HPCN_UENV_REQUESTED"
#define ENV_RESOLVED "HPCN_UENV_RESOLVED"

/* In srun/sbatch/salloc itself: the job's environment is taken from ours
 * after this (spank_setenv is not available to sbatch's allocator context). */
static void pass_resolved(const char *requested)
{
	static char canon[HPCN_UENV_ARG_MAX];

	if (hpcn_uenv_spec_to_string(&hpcn_ctx.spec, canon, sizeof(canon)) < 0 ||
	    setenv(ENV_REQUESTED, requested, 1) < 0 || setenv(ENV_RESOLVED, canon, 1) < 0)
		log_verbose("cannot pass the resolved --uenv on; the node resolves it again");
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

int hpcn_options_collect(spank_t sp, bool remote, struct hpcn_error *err)
{
	static char ubuf[HPCN_UENV_ARG_MAX], vbuf[HPCN_VIEW_ARG_MAX];
	const char *resolved = NULL;
	const char *uenv = hpcn_ctx.opt_uenv, *view = hpcn_ctx.opt_view;
	const char *uvar = "SLURM_UENV", *vvar = "SLURM_UENV_VIEW";
	struct hpcn_view_list views;
	uint32_t stepid = 0;

	bool batch = remote && spank_get_item(sp, S_JOB_STEPID, &stepid) == ESPANK_SUCCESS &&
		     stepid == SLURM_BATCH_SCRIPT;

	/* salloc is an allocator too, but its steps read SLURM_UENV. */
	if ((spank_context() == S_CTX_ALLOCATOR &&
	     strcmp(program_invocation_short_name, "salloc") != 0) || batch) {
		uvar = "SBATCH_UENV";
		vvar = "SBATCH_UENV_VIEW";
	}
	hpcn_ctx.batch_env_fallback = false;
	if (!uenv) {
		if (env_fits(sp, remote, uvar, ubuf, sizeof(ubuf), err) < 0)
			return -1;
		uenv = env_value(sp, remote, uvar, ubuf, sizeof(ubuf));
		hpcn_ctx.batch_env_fallback = batch && uenv && uenv[0];
	}
	if (!view) {
		if (env_fits(sp, remote, vvar, vbuf, sizeof(vbuf), err) < 0)
			return -1;
		view = env_value(sp, remote, vvar, vbuf, sizeof(vbuf));
	}
	memset(&hpcn_ctx.spec, 0, sizeof(hpcn_ctx.spec));
	hpcn_ctx.view_arg[0] = '\0';
	/* "--uenv=" is a mistake to report; an empty SLURM_UENV means unset. */
	if (!uenv || (!uenv[0] && !hpcn_ctx.opt_uenv)) {
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
	if (view && (view[0] || hpcn_ctx.opt_view)) {
		/* Only the syntax can be checked before the images are mounted. */
		if (hpcn_view_parse_arg(view, &views, err) < 0)
			return -1;
		snprintf(hpcn_ctx.view_arg, sizeof(hpcn_ctx.view_arg), "%s", view);
	}
	hpcn_ctx.active = true;
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The remote context (slurmstepd, root). Once per step per node
 * (init_post_opt): ask the helper for the step's allocation — namespaces,
 * uenv mounts, the job's scope — and keep the namespace FDs. In every task
 * (task_init_privileged): join them with setns(2), never mount per task;
 * apply the views. When the step's last task exits: release.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "context.h"
#include "envjson.h"
#include "joblimits.h"
#include "jobns.h"
#include "util.h" /* _cleanup_close_ */
#include "view.h"

static void defer_error(const struct hpcn_error *err)
{
	if (hpcn_ctx.has_deferred)
		return;
	hpcn_ctx.deferred = *err;
	hpcn_ctx.has_deferred = true;
	/* slurmd's log gets it now; the user's terminal from the first task. */
	log_error("%s: %s", hpcn_ctx.allocation_id, err->message);
}

static void step_names(uint32_t job, uint32_t step)
{
	const char *special = NULL;

	switch (step) {
	case SLURM_BATCH_SCRIPT:
		special = "batch";
		break;
	case SLURM_EXTERN_CONT:
		special = "extern";
		break;
	case SLURM_INTERACTIVE_STEP:
		special = "interactive";
		break;
	}
	snprintf(hpcn_ctx.group, sizeof(hpcn_ctx.group), "job_%u", job);
	if (special)
		snprintf(hpcn_ctx.allocation_id, sizeof(hpcn_ctx.allocation_id), "job_%u.%s",
			 job, special);
	else
		snprintf(hpcn_ctx.allocation_id, sizeof(hpcn_ctx.allocation_id), "job_%u.%u",
			 job, step);
}

/* The job's allocation on this node, as cgroup limits of the job's slice
 * (not the step's: S_JOB_NCPUS is the step's CPUs here, see joblimits.h). */
static void job_limits(spank_t sp, struct hpcn_namespace_request *req)
{
	char list[256];
	uint64_t mem_mb = 0;
	uint32_t nodeid = 0, ncpus = 0;

	memset(&req->limits, 0, sizeof(req->limits));
	if (spank_get_item(sp, S_JOB_ALLOC_MEM, &mem_mb) == ESPANK_SUCCESS && mem_mb > 0) {
		req->limits.memory_max.set = true;
		req->limits.memory_max.value = mem_mb * 1024 * 1024;
	}
	if (spank_get_item(sp, S_JOB_NODEID, &nodeid) == ESPANK_SUCCESS &&
	    spank_getenv(sp, "SLURM_JOB_CPUS_PER_NODE", list, sizeof(list)) == ESPANK_SUCCESS &&
	    hpcn_job_cpus_on_node(list, nodeid, &ncpus) == 0 && ncpus > 0) {
		req->limits.cpu_max_quota_usec.set = true;
		req->limits.cpu_max_quota_usec.value = (uint64_t)ncpus * 100000;
		req->limits.cpu_max_period_usec.set = true;
		req->limits.cpu_max_period_usec.value = 100000;
	} else {
		log_verbose("%s: the job's CPUs on this node are unknown (SLURM_JOB_CPUS_PER_NODE): "
			    "no CPU limit on its slice", hpcn_ctx.allocation_id);
	}
	req->has_limits = req->limits.memory_max.set || req->limits.cpu_max_quota_usec.set;
}

/*
 * Slurm's job_container/tmpfs keeps the job's namespace (private /tmp,
 * /dev/shm) pinned under its BasePath and moves each task into it before
 * task_init_privileged. Our namespace is built on that one, so the tasks
 * keep it (jobns.h: found in the mount table, not configured). *fd is -1
 * when the job has none. An ambiguous pin is an error: the host's namespace
 * in its place would show the host's /tmp to the job.
 */
static int job_container_ns(spank_t sp, uint32_t job, int *fd, struct hpcn_error *err)
{
	char node[256] = "", path[PATH_MAX];
	int r;

	/* Only needed to choose between the pins of several slurmds. */
	if (spank_getenv(sp, "SLURMD_NODENAME", node, sizeof(node)) != ESPANK_SUCCESS &&
	    gethostname(node, sizeof(node) - 1) < 0)
		node[0] = '\0';
	r = hpcn_jobns_open(job, node, fd, path, sizeof(path), err);
	if (r > 0)
		log_verbose("%s: built on the job's namespace from job_container/tmpfs (%s)",
			    hpcn_ctx.allocation_id, path);
	return r < 0 ? -1 : 0;
}

static int request_from_helper(spank_t sp, int base, bool *asked, struct hpcn_error *err)
{
	struct hpcn_namespace_request req;
	struct hpcn_namespace_response resp;
	int fds[HPCN_NS__COUNT];
	int sock = -1, rv = -1;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.allocation_id = hpcn_ctx.allocation_id;
	/* The group (the job) lets the epilog end every step of the job. */
	req.group = hpcn_ctx.group;
	req.n_namespaces = hpcn_ctx.args.n_namespaces;
	memcpy(req.namespaces, hpcn_ctx.args.namespaces, sizeof(req.namespaces));
	req.has_uid = true;
	req.uid = hpcn_ctx.uid;
	req.gid = hpcn_ctx.gid;
	req.base_mount_ns_fd_index = base >= 0 ? 0 : -1;
	req.n_mounts = hpcn_ctx.spec.n;
	for (size_t i = 0; i < hpcn_ctx.spec.n; i++) {
		req.mounts[i].image_path = hpcn_ctx.spec.item[i].image;
		req.mounts[i].mount_point = hpcn_ctx.spec.item[i].mount;
		req.mounts[i].image_fd_index = -1;
	}
	if (hpcn_ctx.args.cgroup)
		job_limits(sp, &req);

	/* Two waits: reaching the helper (connect_timeout; failing that, nothing
	 * was asked and fallback=local may act) and its answer (request_timeout:
	 * it may be mounting images; failing that, it may have acted, and the
	 * fallback must not build a second environment beside it). */
	sock = hpcn_client_connect(hpcn_ctx.args.socket, (int)hpcn_ctx.args.connect_timeout_ms,
				   err);
	if (sock < 0)
		goto out;
	*asked = true;
	if (hpcn_request_namespaces_on(sock, (int)hpcn_ctx.args.request_timeout_ms, &req,
				       base >= 0 ? &base : NULL, base >= 0 ? 1 : 0, &resp, fds,
				       err) < 0)
		goto out;
	for (size_t i = 0; i < resp.n_fd_types; i++)
		hpcn_ctx.ns_fds[resp.fd_types[i]] = fds[i];
	for (size_t i = 0; i < resp.n_warnings; i++)
		log_verbose("%s: %s", hpcn_ctx.allocation_id, resp.warnings[i]);
	hpcn_ctx.from_helper = true;
	rv = 0;
out:
	/* The strings of req belong to the context: free only the response. */
	hpcn_namespace_response_free(&resp);
	if (sock >= 0)
		close(sock);
	return rv;
}

int hpcn_remote_init_post_opt(spank_t sp)
{
	struct hpcn_error err;
	uint32_t job = 0, step = 0;
	bool asked = false;
	_cleanup_close_ int base = -1;

	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, &hpcn_ctx.uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &hpcn_ctx.gid) != ESPANK_SUCCESS) {
		log_error("cannot read the step's ids from Slurm");
		return -1;
	}
	spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &hpcn_ctx.local_tasks);
	step_names(job, step);

	if (hpcn_options_collect(sp, true, &err) < 0) {
		defer_error(&err);
		return 0;
	}
	/* Nothing asked, nothing the admin wants for every step: stay out. */
	if (!hpcn_ctx.active && hpcn_ctx.args.n_namespaces <= 1 && !hpcn_ctx.args.cgroup)
		return 0;
	if (step == SLURM_EXTERN_CONT)
		return 0; /* the extern step holds no user task */
	hpcn_ctx.active = true;
	if (job_container_ns(sp, job, &base, &err) < 0) {
		defer_error(&err);
		return 0;
	}

	/* A step starting while the helper (re)starts waits for it (bounded). */
	if (hpcn_wait_ready(hpcn_ctx.args.ready_file,
			    (int)hpcn_ctx.args.ready_timeout_secs * 1000, &err) < 0)
		log_info("%s: %s after %u s; trying the helper anyway", hpcn_ctx.allocation_id,
			 err.message, hpcn_ctx.args.ready_timeout_secs);
	if (request_from_helper(sp, base, &asked, &err) == 0) {
		if (hpcn_ctx.view_arg[0] || hpcn_ctx.spec.n)
			log_verbose("%s: namespaces from the helper", hpcn_ctx.allocation_id);
		return 0;
	}
	if (!asked && hpcn_ctx.args.fallback == HPCN_SPANK_FALLBACK_LOCAL) {
		struct hpcn_error ferr;
		int mnt = -1;

		log_info("%s: %s; fallback=local: mounting the images in a private namespace "
			 "(reduced isolation: no sharing, no scope, no helper bookkeeping)",
			 hpcn_ctx.allocation_id, err.message);
		/* Built on the job's namespace, as the helper's is: the tasks
		 * keep job_container/tmpfs's private /tmp. */
		if (hpcn_fallback_create(&hpcn_ctx.spec, hpcn_ctx.uid, hpcn_ctx.gid, base, &mnt,
					 &ferr) < 0) {
			defer_error(&ferr);
			return 0;
		}
		hpcn_ctx.ns_fds[HPCN_NS_MOUNT] = mnt;
		snprintf(hpcn_ctx.fallback_reason, sizeof(hpcn_ctx.fallback_reason), "%s",
			 err.message);
		return 0;
	}
	defer_error(&err);
	return 0;
}

/* ---- tasks ---- */

struct env_ud {
	spank_t sp;
};

static int task_getenv(void *ud, const char *name, char *buf, size_t cap)
{
	struct env_ud *e = ud;

	/* spank_err_t is typed as slurm_err_t in 22.05: compare, not switch. */
	int rc = (int)spank_getenv(e->sp, name, buf, (int)cap);

	if (rc == ESPANK_SUCCESS)
		return 0;
	if (rc == ESPANK_ENV_NOEXIST)
		return 1;
	errno = rc == ESPANK_NOSPACE ? ENOSPC : EINVAL;
	return -1;
}

static int task_setenv(void *ud, const char *name, const char *value)
{
	struct env_ud *e = ud;

	return spank_setenv(e->sp, name, value, 1) == ESPANK_SUCCESS ? 0 : -1;
}

static int task_unsetenv(void *ud, const char *name)
{
	struct env_ud *e = ud;

	spank_unsetenv(e->sp, name);
	return 0;
}

static int apply_views(spank_t sp, struct hpcn_error *err)
{
	struct hpcn_envjson *images[HPCN_MAX_MOUNTS] = { NULL };
	struct hpcn_view_list views;
	struct env_ud ud = { sp };
	size_t n = 0;
	int rv = -1;

	if (!hpcn_ctx.view_arg[0])
		return 0;
	if (hpcn_view_parse_arg(hpcn_ctx.view_arg, &views, err) < 0)
		return -1;
	for (size_t i = 0; i < hpcn_ctx.spec.n; i++) {
		int r = hpcn_envjson_load_image(hpcn_ctx.spec.item[i].mount, &images[n], err);

		if (r < 0)
			goto out;
		if (r == 0)
			n++;
	}
	if (hpcn_view_apply((const struct hpcn_envjson *const *)images, n, &views,
			    task_getenv, task_setenv, task_unsetenv, &ud, err) < 0)
		goto out;
	rv = 0;
out:
	for (size_t i = 0; i < n; i++)
		hpcn_envjson_free(images[i]);
	return rv;
}

static int attach_to_scope(struct hpcn_error *err)
{
	struct hpcn_msg req, resp;
	int sock, rv;

	sock = hpcn_client_connect(hpcn_ctx.args.socket, (int)hpcn_ctx.args.connect_timeout_ms,
				   err);
	if (sock < 0)
		return -1;
	hpcn_msg_init(&req, HPCN_TAG_ATTACH);
	req.seq = 1;
	req.u.attach.allocation_id = hpcn_ctx.allocation_id;
	req.u.attach.pid = getpid();
	req.u.attach.pidfd_index = -1;
	memset(&resp, 0, sizeof(resp));
	rv = hpcn_client_call(sock, &req, NULL, 0, &resp, NULL, NULL, 0, 5000, err);
	req.u.attach.allocation_id = NULL; /* not ours to free */
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);
	close(sock);
	return rv;
}

/*
 * The batch script's steps (srun inside it) use what the batch step used,
 * as with sbatch --uenv: SBATCH_UENV* become SLURM_UENV* in its environment,
 * the images as resolved (absolute paths, explicit mount points).
 */
static int inherit_batch_env(spank_t sp)
{
	static char spec[HPCN_UENV_ARG_MAX];

	if (hpcn_uenv_spec_to_string(&hpcn_ctx.spec, spec, sizeof(spec)) < 0 ||
	    spank_setenv(sp, "SLURM_UENV", spec, 1) != ESPANK_SUCCESS ||
	    (hpcn_ctx.view_arg[0] &&
	     spank_setenv(sp, "SLURM_UENV_VIEW", hpcn_ctx.view_arg, 1) != ESPANK_SUCCESS)) {
		slurm_error(PLUGIN_NAME ": %s: cannot pass SBATCH_UENV on to the job's steps "
			    "as SLURM_UENV", hpcn_ctx.allocation_id);
		return -1;
	}
	return 0;
}

/* The node's first task: what is decided per node (the helper's answer, a
 * fallback) is told by it. Rank 0 alone would hide another node's error
 * behind Slurm's bare "task_init_privileged failed". */
static bool is_first_local_task(spank_t sp)
{
	uint32_t id = 1;

	return spank_get_item(sp, S_TASK_ID, &id) == ESPANK_SUCCESS && id == 0;
}

/*
 * An error every task of a node meets alike (the helper's refusal, an
 * unknown view): the user's terminal gets it once per node (Slurm prefixes
 * the node's name), not once per task (128 identical lines); every task
 * still fails, and the others' copies go to slurmd's log.
 */
static int step_error(spank_t sp, const char *msg)
{
	if (is_first_local_task(sp))
		slurm_error(PLUGIN_NAME ": %s", msg);
	else
		log_verbose("%s", msg);
	return -1;
}

/*
 * With Slurm's cgroup/v2 plugin (a pure v2 node with proctrack/cgroup or
 * task/cgroup), the task is in Slurm's job_<id>/step_<s> cgroup: attaching it
 * to the helper's scope would move it out of what Slurm limits, tracks and
 * kills. It stays; the helper's scope then holds no task (said once per
 * node, in slurmd's log).
 */
static bool slurm_holds_cgroup(spank_t sp)
{
	char buf[4096];
	ssize_t n = hpcn_read_file_at(AT_FDCWD, "/proc/self/cgroup", buf, sizeof(buf));
	uint32_t job = 0;

	if (n <= 0 || spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS)
		return false;
	if (!hpcn_slurm_holds_cgroup(buf, job))
		return false;
	if (is_first_local_task(sp))
		log_info("%s: cgroup=on: Slurm's cgroup plugin holds the tasks' cgroup v2 "
			 "membership (cgroup/v2): they stay in Slurm's cgroup, not in the "
			 "helper's scope", hpcn_ctx.allocation_id);
	return true;
}

int hpcn_remote_task_init_privileged(spank_t sp)
{
	/* setns order: the mount namespace last, the others need no path. */
	static const enum hpcn_ns_type order[] = { HPCN_NS_NET, HPCN_NS_PID, HPCN_NS_MOUNT };
	struct hpcn_error err;

	if (hpcn_ctx.has_deferred)
		return step_error(sp, hpcn_ctx.deferred.message);
	if (!hpcn_ctx.active)
		return 0;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int fd = hpcn_ctx.ns_fds[order[i]];

		if (fd < 0)
			continue;
		/* A forked task is single-threaded: setns(CLONE_NEWNS) works here,
		 * never in slurmstepd itself. A PID namespace applies to the
		 * task's children (the kernel's rule for setns). */
		if (setns(fd, hpcn_ns_type_clone_flag(order[i])) < 0) {
			slurm_error(PLUGIN_NAME ": %s: cannot join the %s namespace: %s",
				    hpcn_ctx.allocation_id, hpcn_ns_type_name(order[i]),
				    strerror(errno));
			return -1;
		}
	}
	if (hpcn_ctx.fallback_reason[0]) {
		/* The user is told too, once per node. */
		if (is_first_local_task(sp))
			slurm_error(PLUGIN_NAME ": warning: %s; fallback=local: the images are "
				    "mounted in a private namespace of this step (reduced isolation)",
				    hpcn_ctx.fallback_reason);
	}
	if (hpcn_ctx.args.cgroup && hpcn_ctx.from_helper && !slurm_holds_cgroup(sp) &&
	    attach_to_scope(&err) < 0) {
		slurm_error(PLUGIN_NAME ": %s: %s", hpcn_ctx.allocation_id, err.message);
		return -1;
	}
	if (apply_views(sp, &err) < 0)
		return step_error(sp, err.message);
	if (hpcn_ctx.batch_env_fallback && inherit_batch_env(sp) < 0)
		return -1;
	return 0;
}

static void release(void)
{
	struct hpcn_error err;

	hpcn_close_fds(hpcn_ctx.ns_fds, HPCN_NS__COUNT);
	if (hpcn_ctx.released || !hpcn_ctx.from_helper)
		return;
	hpcn_ctx.released = true;
	if (hpcn_end_allocation(hpcn_ctx.args.socket, (int)hpcn_ctx.args.connect_timeout_ms,
				hpcn_ctx.allocation_id, NULL, &err) < 0 &&
	    err.kind != HPCN_E_NS_ALLOCATION_NOT_FOUND)
		/* The job epilog and the helper's own detection (WI5) catch it. */
		log_info("%s: release: %s", hpcn_ctx.allocation_id, err.message);
}

int hpcn_remote_task_exit(spank_t sp)
{
	/* Work in slurm_spank_exit is often cut short (Slurm bug 19362): release
	 * as soon as the step's last local task is gone. */
	if (hpcn_ctx.active && ++hpcn_ctx.exited_tasks >= hpcn_ctx.local_tasks)
		release();
	return 0;
}

int hpcn_remote_exit(spank_t sp)
{
	if (hpcn_ctx.active)
		release();
	free(hpcn_ctx.opt_uenv);
	free(hpcn_ctx.opt_view);
	hpcn_ctx.opt_uenv = hpcn_ctx.opt_view = NULL;
	return 0;
}

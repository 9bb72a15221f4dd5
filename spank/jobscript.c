/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The job_script context (slurmd runs the job prolog and epilog as root).
 * The safety net: whatever a step did not release — its slurmstepd was
 * killed, the node lost a step — ends with the job. Needs Prolog= and
 * Epilog= in slurm.conf, or Slurm never calls these.
 */
#include <stdint.h>
#include <stdio.h>

#include "context.h"

static int end_job(spank_t sp, const char *when)
{
	char group[HPCN_ALLOC_ID_MAX + 1];
	struct hpcn_error err;
	uint32_t job = 0;

	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS) {
		log_error("%s: cannot read the job id from Slurm", when);
		return 0;
	}
	snprintf(group, sizeof(group), "job_%u", job);
	if (hpcn_end_allocation(hpcn_ctx.args.socket, (int)hpcn_ctx.args.connect_timeout_ms,
				NULL, group, &err) < 0) {
		if (err.kind != HPCN_E_NS_SOCKET_UNAVAILABLE)
			log_error("job %u %s: %s", job, when, err.message);
		else
			log_debug("job %u %s: %s", job, when, err.message);
	} else {
		log_debug("job %u %s: ended the allocations of %s", job, when, group);
	}
	/* Never fail the prolog/epilog for this: a failing epilog drains the
	 * node, and the helper reconciles on its own (WI5). */
	return 0;
}

int hpcn_jobscript_prolog(spank_t sp)
{
	/* A requeued job reuses its id: clear what a previous run left. */
	return end_job(sp, "prolog");
}

int hpcn_jobscript_epilog(spank_t sp)
{
	return end_job(sp, "epilog");
}

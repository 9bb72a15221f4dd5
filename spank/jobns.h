/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The job's mount namespace made by Slurm's job_container/tmpfs (22.05;
 * namespace/tmpfs later), found from Slurm itself: the plugin pins it by
 * bind-mounting /proc/PID/ns/mnt onto <BasePath>/<jobid>/.ns, where
 * BasePath is job_container.conf's, with "/<node>" appended in Slurm
 * builds with multiple-slurmd support (Debian's). That nsfs mount is in
 * slurmstepd's own mount table, so no plugstack argument has to repeat
 * BasePath (and cannot go stale when job_container.conf changes).
 *
 * Each step's namespace is built on this one, so its tasks keep the job's
 * private /tmp and /dev/shm, with the images mounted on top.
 */
#ifndef HPCN_SPANK_JOBNS_H
#define HPCN_SPANK_JOBNS_H

#include <stddef.h>
#include <stdint.h>

#include <hpcnode/error.h>

/*
 * Find job's pin in len bytes of mountinfo text: an nsfs mount of a mount
 * namespace ("mnt:[N]") whose mount point ends in "/<job>/.ns". When several
 * do (multiple slurmds on one host), the one under "/<node>/<job>/.ns" is
 * taken (node may be NULL or ""). Returns 1 with the mount point in path,
 * 0 when there is none (no job_container/tmpfs for this job), -1 when the
 * table cannot be parsed or the pin is ambiguous (HPCN_E_NS_CREATION_FAILED
 * naming the candidates).
 */
int hpcn_jobns_find(const char *mountinfo, size_t len, uint32_t job, const char *node,
		    char *path, size_t cap, struct hpcn_error *err);

/*
 * hpcn_jobns_find on /proc/self/mountinfo, then open the pin (O_RDONLY,
 * O_NOFOLLOW, O_CLOEXEC) and check with NS_GET_NSTYPE that it is a mount
 * namespace. Returns 1 with *fd and path set, 0 when the job has no such
 * namespace (*fd -1, path ""), -1 with err set.
 */
int hpcn_jobns_open(uint32_t job, const char *node, int *fd, char *path, size_t cap,
		    struct hpcn_error *err);

#endif

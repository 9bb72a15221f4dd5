/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the cgroup*.c files only. */
#ifndef HPCN_HELPER_CGROUP_INTERNAL_H
#define HPCN_HELPER_CGROUP_INTERNAL_H

#include "cgroup.h"

/* What a caller may do with a path (RI1 / RI6). */
enum cg_access {
	CG_READ,          /* any path inside the root (RI6) */
	CG_WRITE,         /* owner Workload, workload.slice itself included */
	CG_WRITE_BELOW,   /* owner Workload, strictly below workload.slice */
};

/* Classify and normalise path for the access; fills err (PermissionDenied
 * for pact.slice, Denied otherwise) and returns -1 when refused. */
int cg_check_path(const struct hpcn_cgroup *cg, const char *path, enum cg_access acc,
		  char *norm, size_t cap, struct hpcn_error *err);

/* Walk the normalised relative path from root_fd, one component at a time,
 * O_NOFOLLOW|O_DIRECTORY. Returns an O_PATH directory fd, or -1 with err:
 * CgroupError NotFound (a component is missing), RequestError Denied (a
 * component is a symlink or not a directory), CgroupError Io (other). */
int cg_walk(const struct hpcn_cgroup *cg, const char *norm, struct hpcn_error *err);

/* Write an interface file as the kernel wants it (one write, no O_CREAT);
 * in a fake tree truncate first, and io.max accumulates lines.
 * Returns 0 or -1 (errno). */
int cg_write(const struct hpcn_cgroup *cg, int dirfd, const char *name, const char *value);

/* Controllers (mask of ours) in dirfd's cgroup.controllers; 0 when absent. */
unsigned cg_read_controllers(int dirfd);

/* hpcn_cgroup_apply_limits on an already walked directory fd (norm names it). */
int cg_apply_limits_fd(const struct hpcn_cgroup *cg, int fd, const char *norm,
		       const struct hpcn_resource_limits *lim, bool mandatory,
		       struct hpcn_strv *warnings, struct hpcn_error *err);

/* Add a warning (warnings may be NULL: dropped). -1 with err on ENOMEM. */
int cg_warn(struct hpcn_strv *warnings, struct hpcn_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif

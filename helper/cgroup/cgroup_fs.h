/* SPDX-License-Identifier: Apache-2.0 */
/* The file layer (cgroup_fs.c), shared between the cgroup*.c files only.
 * It calls back into none of them. */
#ifndef HPCN_HELPER_CGROUP_FS_H
#define HPCN_HELPER_CGROUP_FS_H

#include "cgroup.h"

/* Depth bound of recursive walks (kill fallback, removal): cgroupfs nests
 * far less than this in our layout, and a fake tree must not recurse forever. */
#define CG_MAX_DEPTH 32

/* Add a warning (warnings may be NULL: dropped). -1 with err on ENOMEM. */
int cg_warn(struct hpcn_strv *warnings, struct hpcn_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

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

/* cg_walk_parent's answer when the parent does not exist (nothing to undo). */
#define CG_WALK_GONE (-2)

/* Split norm into its parent (walked as cg_walk does, fd returned) and its
 * last component (copied to leaf, NAME_MAX + 1 bytes); CG_WALK_GONE (err
 * untouched) when a component of the parent is missing, -1 with err else. */
int cg_walk_parent(const struct hpcn_cgroup *cg, const char *norm, char *leaf,
		   struct hpcn_error *err);

/* Write an interface file as the kernel wants it (one write, no O_CREAT);
 * in a fake tree truncate first, and io.max accumulates lines.
 * Returns 0 or -1 (errno). */
int cg_write(const struct hpcn_cgroup *cg, int dirfd, const char *name, const char *value);

/* Controllers (mask of ours) in dirfd's cgroup.controllers; 0 when absent. */
unsigned cg_read_controllers(int dirfd);

/* Fake tree: create in the new cgroup dirfd the interface files the kernel
 * would show, with the controllers parentfd has and enables in its
 * subtree_control. Returns 0 or -1 (errno). */
int cg_fake_populate(int parentfd, int dirfd);

/* rmdir parentfd/name (norm names it in messages) after its child cgroups,
 * deepest first; in a fake tree the interface files go first. ENOENT is
 * success. 0, or -1 with err. */
int cg_remove_tree(const struct hpcn_cgroup *cg, int parentfd, const char *name,
		   const char *norm, int depth, struct hpcn_error *err);

#endif

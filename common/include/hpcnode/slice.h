/* SPDX-License-Identifier: Apache-2.0 */
/* cgroup slice ownership (crate: cgroup::slice_owner, SliceOwner). */
#ifndef HPCNODE_SLICE_H
#define HPCNODE_SLICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum hpcn_slice_owner {
	HPCN_OWNER_NONE = 0,
	HPCN_OWNER_PACT,
	HPCN_OWNER_WORKLOAD,
};

/*
 * The crate's slice_owner(), byte for byte: a plain prefix match, "pact.slice"
 * first, then "workload.slice". So "workload.slice-extra" is Workload and any
 * absolute path is None. Use it to interoperate; enforce with the strict form.
 */
enum hpcn_slice_owner hpcn_slice_owner(const char *path);

/* "Pact" / "Workload" (serde's names), NULL for HPCN_OWNER_NONE. */
const char *hpcn_slice_owner_name(enum hpcn_slice_owner owner);

/*
 * Stricter than the crate, for our own enforcement (RI1). The path may be
 * relative to the cgroup root or absolute under cgroup_root (NULL: relative
 * only). It is normalised lexically ("//", "./", "..", trailing '/'); a path
 * that leaves the root, or an absolute path outside cgroup_root, is an error.
 * The owner is decided on whole components: only "pact.slice[/...]" is Pact
 * and "workload.slice[/...]" Workload ("workload.slice-extra" is None).
 * On success writes the normalised relative path (no leading '/', "" for the
 * root itself) to norm when norm != NULL, and returns 0; -1 with errno set
 * (EINVAL bad path, ENAMETOOLONG) otherwise.
 * Symlinks are not resolved: cgroupfs has none, and the helper opens every
 * component with O_NOFOLLOW besides.
 */
int hpcn_slice_owner_strict(const char *cgroup_root, const char *path,
			    enum hpcn_slice_owner *owner,
			    char *norm, size_t normsz);

#ifdef __cplusplus
}
#endif
#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the cgroup*.c files only: what cgroup_limits.c offers
 * cgroup.c. The file layer below both is cgroup_fs.h. */
#ifndef HPCN_HELPER_CGROUP_INTERNAL_H
#define HPCN_HELPER_CGROUP_INTERNAL_H

#include "cgroup.h"

/* hpcn_cgroup_apply_limits on an already walked directory fd (norm names it). */
int cg_apply_limits_fd(const struct hpcn_cgroup *cg, int fd, const char *norm,
		       const struct hpcn_resource_limits *lim, bool mandatory,
		       struct hpcn_strv *warnings, struct hpcn_error *err);

#endif

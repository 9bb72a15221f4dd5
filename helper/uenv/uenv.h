/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The MountManager, uenv/'s interface: images mounted once per node under
 * [uenv] mount_base, refcounted by the allocations using them (WI2), held
 * for hold_secs after the last one (WI3), rebuilt from the kernel's mount
 * table after a restart.
 */
#ifndef HPCN_HELPER_UENV_H
#define HPCN_HELPER_UENV_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include <hpcnode/error.h>

#include "audit/audit.h"
#include "daemon.h"
#include "image/image.h"

struct hpcn_uenv_entry {
	char key[HPCN_IMAGE_KEY_MAX];
	char image_path[PATH_MAX];       /* as first named; "" when only known from the kernel */
	char mount_point[PATH_MAX];      /* <mount_base>/<key> */
	unsigned refcount;               /* == live allocations using it (WI2) */
	sd_event_source *hold;           /* armed while refcount == 0 (WI3) */
	uint64_t hold_deadline_ms;       /* CLOCK_MONOTONIC ms, while held */
	uint64_t evict_stamp;            /* evict_held: tried in this pass */
	struct hpcn_helper *h;
	struct hpcn_uenv_entry *next;
};
struct hpcn_uenv_table {
	struct hpcn_uenv_entry *head;
};
/* acquire_mount: open the image as uid/gid (or check image_fd, owned by the
 * caller), mount it once per node, refcount + 1. Fills key. */
int hpcn_uenv_acquire(struct hpcn_helper *h, const char *image_path, int image_fd,
		      uid_t uid, gid_t gid, const char *alloc_id, char *key, size_t keycap,
		      struct hpcn_error *err);
/* release_mount: refcount - 1; at zero the hold timer starts. */
int hpcn_uenv_release(struct hpcn_helper *h, const char *key, const char *alloc_id);
/* force_unmount (emergency): cancel the timer, detach now. */
int hpcn_uenv_force_unmount(struct hpcn_helper *h, const char *image_or_key,
			    const struct hpcn_audit_ctx *who, struct hpcn_error *err);
struct hpcn_uenv_entry *hpcn_uenv_find(struct hpcn_helper *h, const char *key);
/* reconstruct_state: rebuild the table from the kernel's mount table and the
 * registry's live allocations; unused mounts get refcount 0 and a hold timer. */
int hpcn_uenv_reconstruct(struct hpcn_helper *h, json_t *report, struct hpcn_error *err);
void hpcn_uenv_free(struct hpcn_helper *h);

#endif

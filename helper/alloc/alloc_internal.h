/* SPDX-License-Identifier: Apache-2.0 */
/* alloc/'s own: what its files share. */
#ifndef HPCN_HELPER_ALLOC_INTERNAL_H
#define HPCN_HELPER_ALLOC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "alloc.h"

/* A new allocation whose client went away before any process showed up is
 * kept this long before the helper ends it (the tasks may still be coming). */
#define HPCN_ORPHAN_GRACE_MS 30000

/* The client may end, attach to or hand off again what it made; root all. */
static inline bool hpcn_alloc_peer_may_manage(const struct hpcn_client *c,
					      const struct hpcn_alloc *a)
{
	return c->peer.uid == 0 || c->peer.uid == a->peer_uid;
}

/* alloc_watch.c */

/*
 * The namespaces that some process of the node is in: one pass over /proc,
 * shared by every allocation a reconciliation looks at (a restart restores
 * every allocation at once; one scan each would be O(allocations x
 * processes)). Pid-namespace holders and the helper itself do not count.
 */
struct hpcn_alloc_ns_inuse {
	size_t n, cap;
	struct hpcn_alloc_ns_id {
		dev_t dev;
		ino_t ino;
	} *v;
};

/* 0, or -1 when /proc cannot be read (the caller then keeps everything). */
int hpcn_alloc_ns_inuse_scan(struct hpcn_helper *h, struct hpcn_alloc_ns_inuse *u);
void hpcn_alloc_ns_inuse_free(struct hpcn_alloc_ns_inuse *u);
/* WI5: end a if its client is gone and nothing uses it (u: a scan of this
 * pass, or NULL). */
void hpcn_alloc_maybe_end(struct hpcn_helper *h, struct hpcn_alloc *a,
			  const struct hpcn_alloc_ns_inuse *u);

/* What a scope watch or a kill deadline wakes up for: the allocation by id
 * (it may be gone by then). Freed with hpcn_alloc_watch_free. */
struct hpcn_alloc_watch {
	struct hpcn_helper *h;
	char id[HPCN_ALLOC_ID_MAX + 1];
};

void hpcn_alloc_watch_free(void *userdata);
/* Watch a's scope's cgroup.events (EPOLLPRI). 1 when the scope is (or may
 * be) populated, 0 when the watch read "populated 0". */
int hpcn_alloc_watch_scope(struct hpcn_helper *h, struct hpcn_alloc *a);

/* alloc_end.c */
/* Whether one of the first n mounts of a is of the image key. */
bool hpcn_alloc_key_among_first(const struct hpcn_alloc *a, size_t n, const char *key);
/* An end that was waiting for its scope's processes to die: try again. */
void hpcn_alloc_finish_end(struct hpcn_helper *h, struct hpcn_alloc *a);
/* Undo whatever exists of an allocation; leaves the record. 0 when done,
 * 1 when its scope's processes are still dying, -1 on failure (*err). */
int hpcn_alloc_teardown(struct hpcn_helper *h, struct hpcn_alloc *a, bool release_refs,
			const struct hpcn_audit_ctx *who, struct hpcn_error *err);
/* After the teardown of an allocation never handed out: its record goes,
 * unless its scope is still dying or a zombie (rc of teardown). */
void hpcn_alloc_forget_or_keep_ending(struct hpcn_helper *h, struct hpcn_alloc *a, int rc);

#endif

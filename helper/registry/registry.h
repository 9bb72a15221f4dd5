/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The allocation registry: every allocation the helper serves, recorded
 * under <state_dir>/allocations/<id>.json (temp + rename: atomic for the next
 * helper after a crash; not fsync'd, see hpcn_write_file_atomic_at),
 * so that a restarted helper tells live allocations from leftovers (WI6).
 * A record is written in state "creating" before any resource is made and
 * "active" once all of it exists: a crash in between leaves a "creating"
 * record, whose resources the next start removes.
 */
#ifndef HPCN_HELPER_REGISTRY_H
#define HPCN_HELPER_REGISTRY_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include <hpcnode/hpcnode.h>

#include "image/image.h"
#include "util.h"


enum hpcn_alloc_state {
	HPCN_ALLOC_CREATING = 0,
	HPCN_ALLOC_ACTIVE,
	HPCN_ALLOC_ENDING,
};

const char *hpcn_alloc_state_name(enum hpcn_alloc_state s);

struct hpcn_alloc_mount {
	char key[HPCN_IMAGE_KEY_MAX];     /* image identity, see image.h */
	char *image_path;                 /* as the user named it */
	char *mount_point;                /* inside the allocation's namespace */
};

/* "workload.slice/<group>.slice/<id>.scope" with ids of at most 64 bytes. */
#define HPCN_SCOPE_PATH_MAX 256

struct hpcn_alloc {
	char id[HPCN_ALLOC_ID_MAX + 1];
	char group[HPCN_ALLOC_ID_MAX + 1]; /* "" = none */
	enum hpcn_alloc_state state;
	uid_t uid;                          /* the allocation's user */
	gid_t gid;
	uid_t peer_uid;                     /* who asked for it */
	int64_t created_at;                 /* CLOCK_REALTIME seconds */
	char scope[HPCN_SCOPE_PATH_MAX];    /* cgroup path, "" = none */
	bool zombie;                        /* scope could not be killed (F30) */
	int64_t zombie_since;
	unsigned ns_mask;                   /* 1 << hpcn_ns_type */
	pid_t pid_holder;                   /* pid 1 of its PID namespace, 0 */
	/* Heap-allocated, n_mounts entries: a node holds thousands of these,
	 * so no PATH_MAX-sized members (the helper's RSS target). */
	size_t n_mounts;
	struct hpcn_alloc_mount *mounts;

	/* Runtime only, never saved. */
	void *conn;                         /* the hpcn_client that made it, while connected */
	void *watch;                        /* sd_event_source on cgroup.events */
	void *kill_timer;                   /* sd_event_source: kill_timeout of its end */
	uint64_t kill_deadline_ms;          /* its end's kill_timeout runs out, 0 = none */
	uint64_t created_mono_ms;
	bool populated_seen;                /* its scope has held processes */
	/* Its namespaces, opened at the first handoff and kept: a repeated
	 * handoff then costs no open/ioctl/close (docs/benchmarks.md). -1 = not
	 * open. Closed before the namespaces are released, or they would live
	 * on. */
	int ns_fd[HPCN_NS__COUNT];
};

struct hpcn_registry {
	int dirfd;                          /* <state_dir>/allocations */
	char dir[PATH_MAX];
	size_t n, cap;
	struct hpcn_alloc **v;
};

int hpcn_registry_open(struct hpcn_registry *r, const char *state_dir, struct hpcn_error *err);
void hpcn_registry_close(struct hpcn_registry *r);

/* Read every record. A record that cannot be parsed is renamed to
 * <name>.corrupt and reported in warnings; loading goes on. */
int hpcn_registry_load(struct hpcn_registry *r, struct hpcn_strv *warnings,
		       struct hpcn_error *err);

struct hpcn_alloc *hpcn_registry_find(const struct hpcn_registry *r, const char *id);
/* A new in-memory record (state creating), not saved yet. NULL + err when the
 * id is invalid or already present. */
struct hpcn_alloc *hpcn_registry_add(struct hpcn_registry *r, const char *id,
				     struct hpcn_error *err);
int hpcn_registry_save(struct hpcn_registry *r, const struct hpcn_alloc *a,
		       struct hpcn_error *err);
/* Unlink the record and free it. */
int hpcn_registry_remove(struct hpcn_registry *r, struct hpcn_alloc *a,
			 struct hpcn_error *err);

/* Number of live (non-creating) allocations that use an image key: WI2's
 * expected refcount. */
/* Add a mount reference to the record (copies the strings). 0 or -1 (ENOMEM). */
int hpcn_alloc_add_mount(struct hpcn_alloc *a, const char *key, const char *image_path,
			 const char *mount_point);
/* Drop every mount reference of the record (not the kernel's mounts). */
void hpcn_alloc_clear_mounts(struct hpcn_alloc *a);
/* Free a record that is not (or no longer) in a registry. */
void hpcn_alloc_free(struct hpcn_alloc *a);
void hpcn_alloc_close_ns_fds(struct hpcn_alloc *a);

unsigned hpcn_registry_image_users(const struct hpcn_registry *r, const char *key);

json_t *hpcn_alloc_to_json(const struct hpcn_alloc *a);
int hpcn_alloc_from_json(json_t *j, struct hpcn_alloc *a, struct hpcn_error *err);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper's daemon state: one instance, driven by one sd-event loop.
 * server.c owns the socket, the connections and the loop; alloc.c the
 * allocation lifecycle (scopes, namespaces, mounts); status.c the Status
 * body. Single-threaded: no locking anywhere.
 */
#ifndef HPCN_HELPER_DAEMON_H
#define HPCN_HELPER_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include <hpcnode/hpcnode.h>

#include "audit/audit.h"
#include "cgroup/cgroup.h"
#include "config.h"
#include "registry/registry.h"
#include "util.h"

struct hpcn_conn {
	struct hpcn_helper *h;
	int fd;
	sd_event_source *src;
	struct hpcn_audit_ctx peer;      /* SO_PEERCRED */
	bool dead;                       /* a reply failed: closed after this request */
	struct hpcn_conn *next;
};

struct hpcn_zombie {
	char path[PATH_MAX];
	int64_t since;
};

struct hpcn_helper {
	struct hpcn_config cfg;
	sd_event *event;
	int listen_fd;
	bool socket_activated;
	bool ready;
	bool stopping;
	uint64_t started_mono_ms;

	struct hpcn_registry reg;
	bool cgroup_ok;                  /* cgroup v2 usable and enabled */
	struct hpcn_cgroup cg;
	struct hpcn_strv cgroup_warnings;

	char ns_dir[PATH_MAX];           /* <state_dir>/ns: namespace pins */
	struct hpcn_uenv_table *uenv;    /* uenv.c: mounted images */

	struct hpcn_conn *conns;
	size_t n_conns;
	sd_event_source *accept_resume;  /* armed while accept(2) lacks descriptors */
	uint64_t accept_warned_ms;       /* last warning about it (rate limit) */
	sd_event_source *reconcile_timer;
	int ns_fd_cache_below;           /* cache namespace FDs numbered below this */
	int watch_fd_below;              /* scope watches: FDs numbered below this */

	struct {
		uint64_t requests, errors, denied, connections;
	} counters;
};

/* server.c */
int hpcn_helper_init(struct hpcn_helper *h, const struct hpcn_config *cfg,
		     struct hpcn_error *err);
int hpcn_helper_run(struct hpcn_helper *h);
void hpcn_helper_free(struct hpcn_helper *h);
/* Reply on a connection. A failure (the client gone, or not reading within
 * 2 s) marks it dead: it is closed once the request being handled is done. */
int hpcn_conn_reply(struct hpcn_conn *c, const struct hpcn_msg *msg,
		    const int *fds, size_t nfds);
int hpcn_conn_reply_error(struct hpcn_conn *c, uint64_t seq, const struct hpcn_error *err);

/* alloc.c: the handlers, each answers on c itself. fds are the request's FDs
 * (the handler owns them and closes them). */
void hpcn_handle_namespace_request(struct hpcn_helper *h, struct hpcn_conn *c,
				   struct hpcn_msg *req, int *fds, size_t nfds);
void hpcn_handle_allocation_ended(struct hpcn_helper *h, struct hpcn_conn *c,
				  struct hpcn_msg *req);
void hpcn_handle_attach(struct hpcn_helper *h, struct hpcn_conn *c, struct hpcn_msg *req,
			int *fds, size_t nfds);
void hpcn_handle_metrics(struct hpcn_helper *h, struct hpcn_conn *c, struct hpcn_msg *req);
/* The connection that created allocations is closing. */
void hpcn_allocs_conn_closed(struct hpcn_helper *h, struct hpcn_conn *c);
/* After a (re)start: rebuild runtime state of every registered allocation,
 * remove leftovers of allocations that never finished being created. */
int hpcn_allocs_reconstruct(struct hpcn_helper *h, struct hpcn_error *err);
/* Periodic and on-demand reconciliation; report (may be NULL) collects what
 * was corrected, as JSON strings. */
void hpcn_allocs_reconcile(struct hpcn_helper *h, json_t *report);
/* End an allocation: release everything it holds, kill its scope. 0 when
 * done; 1 when its scope's processes are still dying (the end completes by
 * itself, state "ending"); -1 with *err (a scope that would not die within
 * kill_timeout is a zombie, retried by the reconciliation). */
int hpcn_alloc_end(struct hpcn_helper *h, struct hpcn_alloc *a,
		   const struct hpcn_audit_ctx *who, struct hpcn_error *err);

/* uenv.c: the MountManager. Mounted images, refcounts, hold timers. */
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

/* status.c */
json_t *hpcn_status_json(struct hpcn_helper *h);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation lifecycle: create (scope, namespaces, uenv mounts), end,
 * attach, metrics, the helper's own end detection (WI5), reconstruction
 * after a restart (WI6) and periodic reconciliation (F31, F35).
 *
 * An allocation is created in this order, each step undone in reverse on
 * failure: registry record "creating" -> cgroup scope -> namespaces ->
 * uenv mounts (acquire + bind into the mount namespace) -> record "active".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "image/image.h"
#include "ns/ns.h"

/* A new allocation whose client went away before any process showed up is
 * kept this long before the helper ends it (the tasks may still be coming). */
#define HPCN_ORPHAN_GRACE_MS 30000
/* How long an end waits for its scope's processes before it goes on
 * asynchronously (see destroy_scope). */
#define HPCN_KILL_SYNC_MS 200

static bool peer_may_manage(const struct hpcn_conn *c, const struct hpcn_alloc *a)
{
	return c->peer.uid == 0 || c->peer.uid == a->peer_uid;
}

/* ---- end detection (WI5) ---- */

/*
 * The namespaces that some process of the node is in: one pass over /proc,
 * shared by every allocation a reconciliation looks at (a restart restores
 * every allocation at once; one scan each would be O(allocations x
 * processes)). Pid-namespace holders and the helper itself do not count.
 */
struct ns_inuse {
	size_t n, cap;
	struct ns_id {
		dev_t dev;
		ino_t ino;
	} *v;
};

static int ns_id_cmp(const void *x, const void *y)
{
	const struct ns_id *a = x, *b = y;

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	return a->ino < b->ino ? -1 : a->ino > b->ino;
}

static bool is_holder(struct hpcn_helper *h, pid_t pid)
{
	for (size_t i = 0; i < h->reg.n; i++)
		if (h->reg.v[i]->pid_holder == pid)
			return true;
	return false;
}

/* 0, or -1 when /proc cannot be read (the caller then keeps everything). */
static int ns_inuse_scan(struct hpcn_helper *h, struct ns_inuse *u)
{
	struct dirent *de;
	DIR *d = opendir("/proc");

	memset(u, 0, sizeof(*u));
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0 || pid == getpid() || is_holder(h, pid))
			continue;
		for (int t = 0; t < HPCN_NS__COUNT; t++) {
			char p[64];
			struct stat st;

			snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)pid,
				 hpcn_ns_type_proc_name((enum hpcn_ns_type)t));
			if (stat(p, &st) < 0)
				continue;
			if (u->n == u->cap) {
				size_t cap = u->cap ? u->cap * 2 : 1024;
				struct ns_id *v = realloc(u->v, cap * sizeof(*v));

				if (!v) {
					closedir(d);
					free(u->v);
					memset(u, 0, sizeof(*u));
					return -1;
				}
				u->v = v;
				u->cap = cap;
			}
			u->v[u->n].dev = st.st_dev;
			u->v[u->n].ino = st.st_ino;
			u->n++;
		}
	}
	closedir(d);
	qsort(u->v, u->n, sizeof(*u->v), ns_id_cmp);
	return 0;
}

static void ns_inuse_free(struct ns_inuse *u)
{
	free(u->v);
	memset(u, 0, sizeof(*u));
}

/* Does any process still use the allocation? A populated scope settles it;
 * an empty one does not (tasks may have joined the namespaces without being
 * placed in the scope), so then its namespaces are looked up in u (scanned
 * here when the caller has none). */
static bool alloc_has_processes(struct hpcn_helper *h, struct hpcn_alloc *a,
				const struct ns_inuse *u)
{
	struct ns_inuse own;
	bool found = false;

	if (a->scope[0] && h->cgroup_ok) {
		bool populated = false;

		if (hpcn_cgroup_is_populated(&h->cg, a->scope, &populated, NULL) == 0 &&
		    populated) {
			a->populated_seen = true;
			return true;
		}
	}
	if (!a->ns_mask)
		return false;
	if (!u) {
		if (ns_inuse_scan(h, &own) < 0)
			return true; /* cannot tell: keep it */
		u = &own;
	}
	for (int t = 0; t < HPCN_NS__COUNT && !found; t++) {
		char p[PATH_MAX + 80];
		struct ns_id key;
		struct stat st;

		if (!(a->ns_mask & (1u << t)))
			continue;
		if (snprintf(p, sizeof(p), "%s/%s/%s", h->ns_dir, a->id,
			     hpcn_ns_type_proc_name((enum hpcn_ns_type)t)) >= (int)sizeof(p) ||
		    stat(p, &st) < 0)
			continue;
		key.dev = st.st_dev;
		key.ino = st.st_ino;
		found = bsearch(&key, u->v, u->n, sizeof(*u->v), ns_id_cmp) != NULL;
	}
	if (u == &own)
		ns_inuse_free(&own);
	if (found)
		a->populated_seen = true;
	return found;
}

/* WI5: ended when its client is gone and no process uses it any more
 * (after a grace period when it never had a process). */
static void maybe_end(struct hpcn_helper *h, struct hpcn_alloc *a, const struct ns_inuse *u)
{
	struct hpcn_error err;

	if (a->conn || a->state != HPCN_ALLOC_ACTIVE || h->stopping)
		return;
	/* Inside its grace (its tasks may not have joined yet) it stays
	 * whatever a scan would find. A step's client closes its connection
	 * right after the handoff: no scan of /proc for that (u == NULL), the
	 * periodic pass scans once for all and learns who joined. */
	if (!u && !a->populated_seen &&
	    hpcn_now_ms() - a->created_mono_ms < HPCN_ORPHAN_GRACE_MS)
		return;
	if (alloc_has_processes(h, a, u))
		return;
	if (!a->populated_seen && hpcn_now_ms() - a->created_mono_ms < HPCN_ORPHAN_GRACE_MS)
		return;
	hpcn_log_notice("allocation %s: no process and no client left; ending it", a->id);
	if (hpcn_alloc_end(h, a, NULL, &err) < 0)
		hpcn_log_error("allocation %s: %s", a->id, err.message);
}

struct watch_ctx {
	struct hpcn_helper *h;
	char id[HPCN_ALLOC_ID_MAX + 1];
};

/* An end that was waiting for its scope's processes to die: try again. */
static void finish_end(struct hpcn_helper *h, struct hpcn_alloc *a)
{
	struct hpcn_error err;

	if (hpcn_alloc_end(h, a, NULL, &err) < 0)
		hpcn_log_error("allocation %s: %s", a->id, err.message);
}

/* kernfs raised POLLPRI: cgroup.events changed (populated 1 -> 0 among
 * others). Reading it re-arms the notification (kernfs compares the file's
 * event counter with the one seen at the last read). */
static int on_scope_event(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct watch_ctx *w = userdata;
	struct hpcn_alloc *a = hpcn_registry_find(&w->h->reg, w->id);
	char buf[256];
	ssize_t n = -1;

	(void)revents;
	if (lseek(fd, 0, SEEK_SET) == 0)
		do
			n = read(fd, buf, sizeof(buf));
		while (n < 0 && errno == EINTR);
	if (n < 0) {
		/* The scope was removed behind our back (ENODEV): kernfs would
		 * report EPOLLERR for ever. Stop watching; the periodic
		 * reconciliation takes over. */
		if (a && a->watch == s)
			a->watch = sd_event_source_disable_unref(a->watch);
		else
			sd_event_source_set_enabled(s, SD_EVENT_OFF);
		if (!a || a->state != HPCN_ALLOC_ENDING)
			return 0;
	}
	if (a && a->state == HPCN_ALLOC_ENDING)
		finish_end(w->h, a); /* its scope's processes may all be gone now */
	else if (a)
		maybe_end(w->h, a, NULL);
	return 0;
}

static void watch_destroy(void *userdata)
{
	free(userdata);
}

/*
 * Learn when the scope empties: EPOLLPRI on its cgroup.events, not inotify.
 * Removing an inotify watch waits for an SRCU grace period in the kernel:
 * up to 20 ms of every allocation's end, i.e. of every step (measured,
 * docs/benchmarks.md); an epoll registration goes at no cost.
 */
static int watch_scope(struct hpcn_helper *h, struct hpcn_alloc *a)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	struct watch_ctx *w;
	sd_event_source *src = NULL;
	char buf[256];
	uint64_t populated = 1;
	ssize_t n;

	if (!a->scope[0] || !h->cgroup_ok || a->watch)
		return 1;
	dfd = hpcn_cgroup_open_dir(&h->cg, a->scope, NULL);
	if (dfd < 0)
		return 1; /* the periodic reconciliation still notices the end */
	fd = openat(dfd, "cgroup.events", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	/* Within the descriptors the watches may use (see raise_fd_limit);
	 * beyond them the periodic reconciliation will do. */
	if (fd < 0 || fd >= h->watch_fd_below)
		return 1;
	/* Consume the current state: only changes from here on wake us. */
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	if (n >= 0) {
		buf[n] = '\0';
		if (hpcn_cgroup_parse_keyed(buf, "populated", &populated) < 0)
			populated = 1;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return 1;
	w->h = h;
	snprintf(w->id, sizeof(w->id), "%s", a->id);
	if (sd_event_add_io(h->event, &src, fd, EPOLLPRI, on_scope_event, w) < 0) {
		free(w);
		return 1;
	}
	sd_event_source_set_io_fd_own(src, true);
	fd = -1; /* the source closes it */
	sd_event_source_set_destroy_callback(src, watch_destroy);
	a->watch = src;
	return populated != 0;
}

void hpcn_allocs_conn_closed(struct hpcn_helper *h, struct hpcn_conn *c)
{
	struct hpcn_strv ids = { 0 };

	/* Only the allocations this client made: scanning every allocation on
	 * every disconnect would cost O(allocations x processes). */
	for (size_t i = 0; i < h->reg.n; i++) {
		struct hpcn_alloc *a = h->reg.v[i];

		if (a->conn != c)
			continue;
		a->conn = NULL;
		if (hpcn_strv_addf(&ids, "%s", a->id) < 0)
			hpcn_log_error("out of memory; reconciliation will check %s", a->id);
	}
	/* maybe_end may remove records: look them up again by id. */
	for (size_t i = 0; i < ids.n; i++) {
		struct hpcn_alloc *a = hpcn_registry_find(&h->reg, ids.v[i]);

		if (a)
			maybe_end(h, a, NULL);
	}
	hpcn_strv_free(&ids);
}

/* ---- create ---- */

/* Whether one of the first n mounts of a is of the image key. An image an
 * allocation mounts at two points holds one reference (WI2 counts
 * allocations, as the reconciliation does). */
static bool key_among_first(const struct hpcn_alloc *a, size_t n, const char *key)
{
	for (size_t j = 0; j < n && j < a->n_mounts; j++)
		if (strcmp(a->mounts[j].key, key) == 0)
			return true;
	return false;
}

static void release_mounts(struct hpcn_helper *h, struct hpcn_alloc *a)
{
	for (size_t i = 0; i < a->n_mounts; i++)
		/* An empty key: the image was force-unmounted, no reference. */
		if (a->mounts[i].key[0] && !key_among_first(a, i, a->mounts[i].key))
			hpcn_uenv_release(h, a->mounts[i].key, a->id);
	hpcn_alloc_clear_mounts(a);
}

/* The end of an allocation no longer waits: neither its scope's
 * cgroup.events nor its kill_timeout. */
static void stop_waiting(struct hpcn_alloc *a)
{
	a->watch = sd_event_source_disable_unref(a->watch);
	a->kill_timer = sd_event_source_disable_unref(a->kill_timer);
	a->kill_deadline_ms = 0;
}

static int on_kill_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct watch_ctx *w = userdata;
	struct hpcn_helper *h = w->h;
	struct hpcn_alloc *a = hpcn_registry_find(&h->reg, w->id);

	(void)s;
	(void)usec;
	if (a && a->state == HPCN_ALLOC_ENDING) {
		a->kill_timer = sd_event_source_disable_unref(a->kill_timer);
		finish_end(h, a); /* still populated: a zombie now */
	}
	return 0;
}

/* Wake the end up again when the scope empties (its cgroup.events watch)
 * and at the latest when kill_timeout runs out. */
static void end_later(struct hpcn_helper *h, struct hpcn_alloc *a)
{
	struct watch_ctx *w;
	/* A watch made now may have read "populated 0" that came after the
	 * kill's last look: then come back at once, not at kill_timeout. */
	uint64_t at = watch_scope(h, a) ? a->kill_deadline_ms : hpcn_now_ms();

	if (a->kill_timer)
		return;
	w = calloc(1, sizeof(*w));
	if (!w)
		return; /* the periodic reconciliation retries */
	w->h = h;
	snprintf(w->id, sizeof(w->id), "%s", a->id);
	/* Absolute: hpcn_now_ms() is CLOCK_MONOTONIC too, and sd-event's
	 * relative times count from its last wake-up, before our wait. */
	if (sd_event_add_time(h->event, (sd_event_source **)&a->kill_timer, CLOCK_MONOTONIC,
			      at * 1000ULL, 1000, on_kill_deadline, w) < 0) {
		a->kill_timer = NULL;
		free(w);
		return;
	}
	sd_event_source_set_destroy_callback(a->kill_timer, watch_destroy);
}

/*
 * Kill the scope and remove it. The event loop serves everyone else: the end
 * waits HPCN_KILL_SYNC_MS for the processes to die (they do at once unless
 * stuck), then goes on later (returns 1): when cgroup.events says the scope
 * is empty, or when kill_timeout (F30) has run out, where the scope becomes
 * a zombie (-1), retried by the periodic reconciliation.
 */
static int destroy_scope(struct hpcn_helper *h, struct hpcn_alloc *a,
			 const struct hpcn_audit_ctx *who, struct hpcn_error *err)
{
	struct hpcn_error e;
	uint64_t now = hpcn_now_ms();

	/* Only the first attempt waits: a scope already known to be slow
	 * (or a zombie) is checked once, never waited for again. */
	if (hpcn_cgroup_destroy_scope(&h->cg, a->scope,
				      a->zombie || a->kill_deadline_ms ? 0 : HPCN_KILL_SYNC_MS,
				      &e) == 0) {
		hpcn_audit(HPCN_AUDIT_CGROUP_DESTROY, HPCN_AUDIT_SUCCESS, who, a->id, "%s",
			   a->scope);
		return 0;
	}
	/* Not found: named ahead (write-ahead) but never made. */
	if (e.kind == HPCN_E_CGROUP_NOT_FOUND)
		return 0;
	if (e.sys_errno == ETIMEDOUT && !a->zombie) {
		if (!a->kill_deadline_ms) {
			a->kill_deadline_ms = now + (uint64_t)h->cfg.kill_timeout_secs * 1000;
			hpcn_log_notice("allocation %s: processes of %s still dying; its end "
					"completes when they are gone (at most %u s)", a->id,
					a->scope, h->cfg.kill_timeout_secs);
		}
		if (now < a->kill_deadline_ms) {
			end_later(h, a);
			return 1;
		}
		hpcn_error_setf(&e, HPCN_E_CGROUP_KILL_FAILED, a->scope,
				"still populated after %u s (processes in D state?)",
				h->cfg.kill_timeout_secs);
	}
	if (!a->zombie) {
		a->zombie = true;
		a->zombie_since = (int64_t)time(NULL);
		hpcn_audit(HPCN_AUDIT_CGROUP_KILL_FAILED, HPCN_AUDIT_FAILURE, who, a->id, "%s",
			   e.message);
	}
	/* The cgroup.events watch stays: a zombie that empties ends at once. */
	a->kill_timer = sd_event_source_disable_unref(a->kill_timer);
	a->kill_deadline_ms = 0;
	*err = e;
	return -1;
}

/* Undo whatever exists of an allocation; leaves the record. 0 when done,
 * 1 when its scope's processes are still dying (it finishes by itself), -1
 * on failure (*err; a scope that would not die is a zombie). */
static int teardown(struct hpcn_helper *h, struct hpcn_alloc *a, bool release_refs,
		    const struct hpcn_audit_ctx *who, struct hpcn_error *err)
{
	struct hpcn_error e;
	int rv = 0;

	if (release_refs)
		release_mounts(h, a);
	hpcn_alloc_close_ns_fds(a);
	if (a->ns_mask || a->pid_holder) {
		if (hpcn_ns_release(h->ns_dir, a->id, a->pid_holder, &e) < 0) {
			hpcn_log_error("allocation %s: %s", a->id, e.message);
			rv = -1;
			*err = e;
		} else {
			hpcn_audit(HPCN_AUDIT_NAMESPACE_CLEANUP, HPCN_AUDIT_SUCCESS, who, a->id,
				   "namespaces released");
		}
		a->ns_mask = 0;
		a->pid_holder = 0;
	}
	if (a->scope[0] && h->cgroup_ok) {
		int rc = destroy_scope(h, a, who, err);

		if (rc != 0)
			return rc;
	}
	stop_waiting(a);
	if (a->scope[0] && h->cgroup_ok) {
		a->scope[0] = '\0';
		a->zombie = false;
		if (a->group[0]) {
			char slice[PATH_MAX];
			bool others = false;

			for (size_t i = 0; i < h->reg.n; i++)
				if (h->reg.v[i] != a && strcmp(h->reg.v[i]->group, a->group) == 0)
					others = true;
			if (!others &&
			    hpcn_cgroup_group_slice_path(a->group, slice, sizeof(slice), NULL) == 0)
				hpcn_cgroup_remove(&h->cg, slice, NULL);
		}
	}
	return rv;
}

/* After the teardown of an allocation that was never handed out (a failed
 * create, a create cut short by a crash): its record goes, unless its scope
 * is still dying or a zombie (rc of teardown), whose end then finishes later. */
static void forget_or_keep_ending(struct hpcn_helper *h, struct hpcn_alloc *a, int rc)
{
	if (rc > 0 || (rc < 0 && a->zombie)) {
		a->state = HPCN_ALLOC_ENDING;
		hpcn_registry_save(&h->reg, a, NULL);
		return;
	}
	stop_waiting(a);
	hpcn_registry_remove(&h->reg, a, NULL);
}

int hpcn_alloc_end(struct hpcn_helper *h, struct hpcn_alloc *a,
		   const struct hpcn_audit_ctx *who, struct hpcn_error *err)
{
	struct hpcn_error e;

	int rc;

	a->state = HPCN_ALLOC_ENDING;
	hpcn_registry_save(&h->reg, a, NULL);
	rc = teardown(h, a, true, who, err);
	if (rc != 0) {
		/* Still dying, or a zombie scope: the record stays (never
		 * reused), the end finishes by itself or is retried later. */
		hpcn_registry_save(&h->reg, a, NULL);
		return rc;
	}
	if (hpcn_registry_remove(&h->reg, a, &e) < 0)
		hpcn_log_error("%s", e.message);
	return 0;
}

/* Policy checks that need no resource, so that a refusal leaves nothing. */
static int check_request(struct hpcn_helper *h, struct hpcn_conn *c,
			 const struct hpcn_namespace_request *r, size_t nfds,
			 struct hpcn_error *err)
{
	if (r->has_uid && c->peer.uid != 0 && r->uid != c->peer.uid)
		return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
				       "uid %u may not create allocations for uid %u",
				       (unsigned)c->peer.uid, (unsigned)r->uid);
	/* The gid is the base of the credentials images are opened with: an
	 * unprivileged client names its own, not a group it is not in. */
	if (r->has_uid && c->peer.uid != 0 && r->gid != c->peer.gid)
		return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
				       "uid %u (gid %u) may not create allocations for gid %u",
				       (unsigned)c->peer.uid, (unsigned)c->peer.gid,
				       (unsigned)r->gid);
	for (size_t i = 0; i < r->n_namespaces; i++) {
		if (r->namespaces[i] == HPCN_NS_PID && !h->cfg.allow_pid)
			return hpcn_error_set(err, HPCN_E_DENIED,
					      "PID namespaces are disabled on this node "
					      "([namespaces] allow_pid)", NULL);
		if (r->namespaces[i] == HPCN_NS_NET && !h->cfg.allow_net)
			return hpcn_error_set(err, HPCN_E_DENIED,
					      "network namespaces are disabled on this node "
					      "([namespaces] allow_net)", NULL);
	}
	if (r->n_mounts > h->cfg.max_images)
		return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
				       "%zu images requested, at most %u per allocation",
				       r->n_mounts, h->cfg.max_images);
	for (size_t i = 0; i < r->n_mounts; i++) {
		const char *mp = r->mounts[i].mount_point;

		if (!hpcn_config_mount_point_allowed(&h->cfg, mp))
			return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
					       "mount point %s is not allowed on this node", mp);
		for (size_t k = 0; k < i; k++)
			if (strcmp(r->mounts[k].mount_point, mp) == 0)
				return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
						       "mount point %s is given twice", mp);
		if (r->mounts[i].image_path[0] != '/')
			return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
					       "image %s is not an absolute path",
					       r->mounts[i].image_path);
		if (r->mounts[i].image_fd_index >= (int)nfds)
			return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
					       "image_fd %d but only %zu descriptors came",
					       r->mounts[i].image_fd_index, nfds);
	}
	if (r->base_mount_ns_fd_index >= (int)nfds)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "base_mount_ns_fd %d but only %zu descriptors came",
				       r->base_mount_ns_fd_index, nfds);
	return 0;
}

/* The crate's uenv_image alone means one image at the default mount point. */
static void normalise_mounts(struct hpcn_namespace_request *r)
{
	if (r->n_mounts == 0 && r->uenv_image) {
		r->mounts[0].image_path = strdup(r->uenv_image);
		r->mounts[0].mount_point = NULL;
		r->mounts[0].image_fd_index = -1;
		r->n_mounts = 1;
	}
	for (size_t i = 0; i < r->n_mounts; i++)
		if (!r->mounts[i].mount_point)
			r->mounts[i].mount_point = strdup(HPCN_DEFAULT_UENV_MOUNT_POINT);
	/* Nested points in order: a parent before what is mounted inside it. */
	for (size_t i = 1; i < r->n_mounts; i++)
		for (size_t k = i; k > 0 && strlen(r->mounts[k].mount_point) <
					     strlen(r->mounts[k - 1].mount_point); k--) {
			struct hpcn_mount_handle t = r->mounts[k];

			r->mounts[k] = r->mounts[k - 1];
			r->mounts[k - 1] = t;
		}
}

/* Send NamespaceResponse with freshly opened namespace FDs. */
static int reply_namespaces(struct hpcn_helper *h, struct hpcn_conn *c, uint64_t seq,
			    struct hpcn_alloc *a, const struct hpcn_namespace_request *r,
			    const struct hpcn_strv *warnings, struct hpcn_error *err)
{
	struct hpcn_msg m;
	int fds[HPCN_NS__COUNT] = { -1, -1, -1 };
	bool transient[HPCN_NS__COUNT] = { false };
	size_t nfds = 0;
	int rv = -1;

	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_RESPONSE);
	m.seq = seq;
	m.u.ns_response.allocation_id = strdup(a->id);
	for (size_t i = 0; i < r->n_namespaces; i++) {
		enum hpcn_ns_type t = r->namespaces[i];
		int fd;

		if (!(a->ns_mask & (1u << t))) {
			hpcn_error_setf(err, HPCN_E_NS_CREATION_FAILED, NULL,
					"allocation %s exists without a %s namespace", a->id,
					hpcn_ns_type_name(t));
			goto fail;
		}
		fd = a->ns_fd[t];
		if (fd < 0) {
			fd = hpcn_ns_open(h->ns_dir, a->id, t, err);
			if (fd < 0)
				goto fail;
			if (fd < h->ns_fd_cache_below)
				a->ns_fd[t] = fd;
			else
				transient[nfds] = true;
		}
		fds[nfds++] = fd;
		m.u.ns_response.fd_types[m.u.ns_response.n_fd_types++] = t;
	}
	for (size_t i = 0; i < a->n_mounts; i++) {
		m.u.ns_response.mounts[i].image_path = strdup(a->mounts[i].image_path);
		m.u.ns_response.mounts[i].mount_point = strdup(a->mounts[i].mount_point);
		m.u.ns_response.mounts[i].image_fd_index = -1;
		m.u.ns_response.n_mounts++;
	}
	if (a->n_mounts)
		m.u.ns_response.uenv_mount_path = strdup(a->mounts[0].mount_point);
	if (a->scope[0])
		m.u.ns_response.scope = strdup(a->scope);
	if (warnings && warnings->n) {
		m.u.ns_response.warnings = calloc(warnings->n, sizeof(char *));
		for (size_t i = 0; m.u.ns_response.warnings && i < warnings->n && i < 64; i++)
			m.u.ns_response.warnings[m.u.ns_response.n_warnings++] =
				strdup(warnings->v[i]);
	}
	if (hpcn_conn_reply(c, &m, fds, nfds) < 0) {
		hpcn_error_set(err, HPCN_E_NS_FD_PASSING, "the client did not take the reply",
			       NULL);
		goto fail;
	}
	rv = 0;
fail:
	/* SCM_RIGHTS gave the client its own references: the allocation's
	 * cached FDs stay open for the next handoff, the others are closed. */
	for (size_t i = 0; i < nfds; i++)
		if (transient[i])
			close(fds[i]);
	hpcn_msg_free(&m);
	return rv;
}

static int create_alloc(struct hpcn_helper *h, struct hpcn_conn *c, struct hpcn_alloc *a,
			struct hpcn_namespace_request *r, int *fds, size_t nfds,
			struct hpcn_strv *warnings, struct hpcn_error *err)
{
	enum hpcn_ns_type types[HPCN_NS__COUNT];
	size_t ntypes = 0;
	bool want_mnt = r->n_mounts > 0;
	struct hpcn_ns_set set;
	int mnt_fd = -1;
	int rv = -1;

	/* Every allocation gets a scope; in the group's (job's) slice when it
	 * has a group. */
	if (h->cgroup_ok) {
		const struct hpcn_resource_limits *lim = r->has_limits ? &r->limits : NULL;
		char parent[PATH_MAX] = HPCN_SLICE_WORKLOAD_ROOT;

		if (a->group[0]) {
			if (hpcn_cgroup_create_slice(&h->cg, HPCN_SLICE_WORKLOAD_ROOT, a->group, lim,
						     h->cfg.limits_mandatory, parent,
						     sizeof(parent), warnings, err) < 0)
				goto fail;
			lim = NULL; /* job-wide limits live on the slice */
		}
		if (hpcn_cgroup_create_scope(&h->cg, parent, a->id, lim, h->cfg.limits_mandatory,
					     a->scope, sizeof(a->scope), warnings, err) < 0)
			goto fail;
		hpcn_audit(HPCN_AUDIT_CGROUP_CREATE, HPCN_AUDIT_SUCCESS, &c->peer, a->id, "%s",
			   a->scope);
		watch_scope(h, a);
	}

	/* Namespaces; mounts need a mount namespace to live in. */
	for (size_t i = 0; i < r->n_namespaces; i++) {
		types[ntypes++] = r->namespaces[i];
		if (r->namespaces[i] == HPCN_NS_MOUNT)
			want_mnt = false;
	}
	if (want_mnt)
		types[ntypes++] = HPCN_NS_MOUNT;
	if (ntypes) {
		int base = r->base_mount_ns_fd_index >= 0 ? fds[r->base_mount_ns_fd_index] : -1;

		if (hpcn_ns_create(h->ns_dir, a->id, types, ntypes, base, &set, err) < 0)
			goto fail;
		for (int t = 0; t < HPCN_NS__COUNT; t++)
			if (set.present[t])
				a->ns_mask |= 1u << t;
		a->pid_holder = set.pid_holder;
		hpcn_registry_save(&h->reg, a, NULL); /* the holder must be known after a crash */
	}

	/* uenv images: mounted once per node, bound into the mount namespace. */
	if (r->n_mounts) {
		mnt_fd = hpcn_ns_open(h->ns_dir, a->id, HPCN_NS_MOUNT, err);
		if (mnt_fd < 0)
			goto fail;
	}
	for (size_t i = 0; i < r->n_mounts; i++) {
		struct hpcn_mount_handle *mh = &r->mounts[i];
		struct hpcn_uenv_entry *e;
		int ifd = mh->image_fd_index >= 0 ? fds[mh->image_fd_index] : -1;
		char key[HPCN_IMAGE_KEY_MAX];
		bool again;

		if (hpcn_uenv_acquire(h, mh->image_path, ifd, a->uid, a->gid, a->id,
				      key, sizeof(key), err) < 0)
			goto fail;
		/* Mounted twice (by any path to it): one reference all the same. */
		again = key_among_first(a, a->n_mounts, key);
		if (again)
			hpcn_uenv_release(h, key, a->id);
		if (hpcn_alloc_add_mount(a, key, mh->image_path, mh->mount_point) < 0) {
			if (!again)
				hpcn_uenv_release(h, key, a->id);
			hpcn_error_set(err, HPCN_E_INTERNAL, "out of memory", NULL);
			goto fail;
		}
		e = hpcn_uenv_find(h, key);
		if (hpcn_ns_bind_path_named(mnt_fd, e->mount_point, a->id, mh->mount_point,
					    hpcn_config_mount_point_creatable(&h->cfg,
									      mh->mount_point),
					    err) < 0)
			goto fail;
	}
	rv = 0;
fail:
	if (mnt_fd >= 0)
		close(mnt_fd);
	return rv;
}

void hpcn_handle_namespace_request(struct hpcn_helper *h, struct hpcn_conn *c,
				   struct hpcn_msg *req, int *fds, size_t nfds)
{
	struct hpcn_namespace_request *r = &req->u.ns_request;
	struct hpcn_strv warnings = { 0 };
	struct hpcn_error err, e2;
	struct hpcn_alloc *a;
	int rc;

	normalise_mounts(r);
	a = hpcn_registry_find(&h->reg, r->allocation_id);
	if (a) {
		/* The contract's idempotence: the same namespaces again. */
		if (!peer_may_manage(c, a)) {
			hpcn_error_setf(&err, HPCN_E_DENIED, NULL,
					"allocation %s belongs to another client", a->id);
			goto denied;
		}
		if (a->state != HPCN_ALLOC_ACTIVE || a->zombie) {
			hpcn_error_setf(&err, HPCN_E_BUSY, NULL, "allocation %s is %s", a->id,
					a->zombie ? "a zombie" : hpcn_alloc_state_name(a->state));
			goto failed;
		}
		if (!a->conn)
			a->conn = c;
		if (reply_namespaces(h, c, req->seq, a, r, NULL, &err) < 0)
			goto failed;
		hpcn_audit(HPCN_AUDIT_NAMESPACE_HANDOFF, HPCN_AUDIT_SUCCESS, &c->peer, a->id,
			   "existing namespaces handed off again");
		goto out;
	}
	if (check_request(h, c, r, nfds, &err) < 0)
		goto denied_or_invalid;
	a = hpcn_registry_add(&h->reg, r->allocation_id, &err);
	if (!a)
		goto failed;
	if (r->group)
		snprintf(a->group, sizeof(a->group), "%s", r->group);
	a->uid = r->has_uid ? r->uid : c->peer.uid;
	a->gid = r->has_uid ? r->gid : c->peer.gid;
	a->peer_uid = c->peer.uid;
	/* Write-ahead, the scope's path included: a crash from here on leaves
	 * a "creating" record naming every leftover the next start removes (a
	 * scope made before the next save would otherwise be named by none). */
	if (h->cgroup_ok && hpcn_cgroup_scope_path(a->group[0] ? a->group : NULL, a->id, a->scope,
						   sizeof(a->scope), &err) < 0) {
		a->scope[0] = '\0';
		goto undo;
	}
	if (hpcn_registry_save(&h->reg, a, &err) < 0)
		goto undo;
	if (create_alloc(h, c, a, r, fds, nfds, &warnings, &err) < 0)
		goto undo;
	a->state = HPCN_ALLOC_ACTIVE;
	a->conn = c;
	if (hpcn_registry_save(&h->reg, a, &err) < 0)
		goto undo;
	if (reply_namespaces(h, c, req->seq, a, r, &warnings, &err) < 0) {
		/* The client is gone: WI5 ends it once nothing uses it. */
		a->conn = NULL;
		hpcn_log_warning("allocation %s: %s", a->id, err.message);
		goto out;
	}
	for (size_t i = 0; i < warnings.n; i++)
		hpcn_log_warning("allocation %s: %s", a->id, warnings.v[i]);
	hpcn_audit(HPCN_AUDIT_NAMESPACE_HANDOFF, HPCN_AUDIT_SUCCESS, &c->peer, a->id,
		   "uid %u, %zu namespace(s), %zu image(s)%s%s", (unsigned)a->uid,
		   r->n_namespaces, a->n_mounts, a->scope[0] ? ", scope " : "", a->scope);
	goto out;

undo:
	rc = teardown(h, a, true, &c->peer, &e2);
	if (rc < 0)
		hpcn_log_error("allocation %s: cleanup after failure: %s", a->id, e2.message);
	forget_or_keep_ending(h, a, rc);
	goto failed;
denied_or_invalid:
	if (err.kind != HPCN_E_DENIED)
		goto failed;
denied:
	h->counters.denied++;
	hpcn_audit(HPCN_AUDIT_NAMESPACE_HANDOFF_FAILED, HPCN_AUDIT_DENIED, &c->peer,
		   r->allocation_id, "%s", err.message);
	hpcn_conn_reply_error(c, req->seq, &err);
	goto out;
failed:
	hpcn_audit(HPCN_AUDIT_NAMESPACE_HANDOFF_FAILED, HPCN_AUDIT_FAILURE, &c->peer,
		   r->allocation_id, "%s", err.message);
	hpcn_conn_reply_error(c, req->seq, &err);
out:
	hpcn_strv_free(&warnings);
	hpcn_close_fds(fds, nfds);
}

/* ---- end, attach, metrics ---- */

void hpcn_handle_allocation_ended(struct hpcn_helper *h, struct hpcn_conn *c,
				  struct hpcn_msg *req)
{
	struct hpcn_allocation_ended *r = &req->u.ended;
	struct hpcn_error err;
	json_t *ended = json_array(), *ending = json_array();
	bool failed = false;
	int rc;

	if (r->allocation_id && r->allocation_id[0]) {
		struct hpcn_alloc *a = hpcn_registry_find(&h->reg, r->allocation_id);

		if (!a) {
			hpcn_error_set(&err, HPCN_E_NS_ALLOCATION_NOT_FOUND, r->allocation_id, NULL);
			goto error;
		}
		if (!peer_may_manage(c, a)) {
			hpcn_error_setf(&err, HPCN_E_DENIED, NULL,
					"allocation %s belongs to another client", a->id);
			h->counters.denied++;
			goto error;
		}
		json_array_append_new(ended, json_string(a->id));
		rc = hpcn_alloc_end(h, a, &c->peer, &err);
		if (rc < 0)
			goto error;
		if (rc > 0)
			json_array_append_new(ending, json_string(r->allocation_id));
	} else if (r->group) {
		/* Every allocation of the group (the job epilog's safety net). */
		for (size_t i = h->reg.n; i-- > 0;) {
			struct hpcn_alloc *a;

			if (i >= h->reg.n)
				continue;
			a = h->reg.v[i];
			if (strcmp(a->group, r->group) != 0 || !peer_may_manage(c, a))
				continue;
			json_array_append_new(ended, json_string(a->id));
			json_array_append_new(ending, json_string(a->id));
			rc = hpcn_alloc_end(h, a, &c->peer, &err);
			if (rc < 0)
				failed = true;
			else if (rc == 0)
				json_array_remove(ending, json_array_size(ending) - 1);
		}
		if (failed)
			goto error;
	}
	{
		struct hpcn_msg m;
		/* "ending": ended, but their scope's processes are still dying. */
		json_t *body = json_pack("{s:o, s:o}", "ended", ended, "ending", ending);

		hpcn_msg_init(&m, HPCN_TAG_OK);
		m.seq = req->seq;
		m.u.json = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		hpcn_conn_reply(c, &m, NULL, 0);
		hpcn_msg_free(&m);
	}
	return;
error:
	json_decref(ended);
	json_decref(ending);
	hpcn_conn_reply_error(c, req->seq, &err);
}

static pid_t pid_from_pidfd(int pidfd)
{
	char path[64], buf[4096], *p;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	n = hpcn_read_file_at(AT_FDCWD, path, buf, sizeof(buf));
	if (n <= 0 || !(p = strstr(buf, "\nPid:")))
		return -1;
	return (pid_t)atoi(p + 5);
}

void hpcn_handle_attach(struct hpcn_helper *h, struct hpcn_conn *c, struct hpcn_msg *req,
			int *fds, size_t nfds)
{
	struct hpcn_attach *r = &req->u.attach;
	struct hpcn_alloc *a = hpcn_registry_find(&h->reg, r->allocation_id);
	struct hpcn_error err;
	pid_t pid = r->pid;

	if (!a) {
		hpcn_error_set(&err, HPCN_E_NS_ALLOCATION_NOT_FOUND, r->allocation_id, NULL);
		goto error;
	}
	if (!peer_may_manage(c, a)) {
		hpcn_error_setf(&err, HPCN_E_DENIED, NULL,
				"allocation %s belongs to another client", a->id);
		h->counters.denied++;
		goto error;
	}
	if (!a->scope[0] || !h->cgroup_ok) {
		hpcn_error_setf(&err, HPCN_E_CGROUP_NOT_FOUND, NULL, "allocation %s has no scope",
				a->id);
		goto error;
	}
	if (r->pidfd_index >= 0) {
		if ((size_t)r->pidfd_index >= nfds || (pid = pid_from_pidfd(fds[r->pidfd_index])) <= 0) {
			hpcn_error_set(&err, HPCN_E_INVALID_ARGUMENT,
				       "pidfd_index does not name a pidfd of the request", NULL);
			goto error;
		}
		if (r->pid > 0 && r->pid != pid) {
			hpcn_error_setf(&err, HPCN_E_INVALID_ARGUMENT, NULL,
					"pid %d does not match the pidfd (pid %d)", (int)r->pid,
					(int)pid);
			goto error;
		}
	}
	if (hpcn_cgroup_attach(&h->cg, a->scope, pid, &err) < 0)
		goto error;
	a->populated_seen = true;
	{
		struct hpcn_msg m;

		hpcn_msg_init(&m, HPCN_TAG_OK);
		m.seq = req->seq;
		hpcn_conn_reply(c, &m, NULL, 0);
		hpcn_msg_free(&m);
	}
	hpcn_close_fds(fds, nfds);
	return;
error:
	hpcn_close_fds(fds, nfds);
	hpcn_conn_reply_error(c, req->seq, &err);
}

void hpcn_handle_metrics(struct hpcn_helper *h, struct hpcn_conn *c, struct hpcn_msg *req)
{
	const char *path = req->u.metrics_request.path;
	struct hpcn_alloc *a = hpcn_registry_find(&h->reg, path);
	struct hpcn_error err;
	struct hpcn_msg m;

	if (!h->cgroup_ok) {
		hpcn_error_set(&err, HPCN_E_CGROUP_NOT_FOUND, path, NULL);
		hpcn_conn_reply_error(c, req->seq, &err);
		return;
	}
	if (a && a->scope[0])
		path = a->scope;
	hpcn_msg_init(&m, HPCN_TAG_CGROUP_METRICS);
	m.seq = req->seq;
	if (hpcn_cgroup_read_metrics(&h->cg, path, &m.u.metrics, &err) < 0) {
		hpcn_conn_reply_error(c, req->seq, &err);
		return;
	}
	hpcn_conn_reply(c, &m, NULL, 0);
	hpcn_msg_free(&m);
}

/* ---- restart and reconciliation ---- */

int hpcn_allocs_reconstruct(struct hpcn_helper *h, struct hpcn_error *err)
{
	struct hpcn_strv warnings = { 0 };
	int rc;

	if (snprintf(h->ns_dir, sizeof(h->ns_dir), "%s/ns", h->cfg.state_dir) >=
	    (int)sizeof(h->ns_dir))
		return hpcn_error_set(err, HPCN_E_BOOT_FAILED, "state_dir too long", NULL);
	if (hpcn_ns_setup_dir(h->ns_dir, err) < 0)
		return -1;
	if (hpcn_registry_load(&h->reg, &warnings, err) < 0)
		return -1;
	for (size_t i = 0; i < warnings.n; i++)
		hpcn_log_warning("%s", warnings.v[i]);
	hpcn_strv_free(&warnings);

	for (size_t i = h->reg.n; i-- > 0;) {
		struct hpcn_alloc *a = h->reg.v[i];
		struct hpcn_error e;

		if (a->state == HPCN_ALLOC_CREATING) {
			/* Crashed mid-create: nothing of it was handed out. Its
			 * mount refs were never counted (see registry). */
			hpcn_log_notice("allocation %s was being created when the helper "
					"stopped; removing what exists of it", a->id);
			hpcn_alloc_clear_mounts(a);
			rc = teardown(h, a, false, NULL, &e);
			if (rc < 0)
				hpcn_log_error("allocation %s: %s", a->id, e.message);
			forget_or_keep_ending(h, a, rc);
			continue;
		}
		if (a->ns_mask) {
			struct hpcn_ns_set set;

			if (hpcn_ns_load(h->ns_dir, a->id, a->pid_holder, &set, &e) < 0)
				hpcn_log_error("allocation %s: %s", a->id, e.message);
		}
		watch_scope(h, a);
		hpcn_log_info("allocation %s restored (%s)", a->id, hpcn_alloc_state_name(a->state));
	}
	hpcn_allocs_reconcile(h, NULL);
	return 0;
}

static int find_mount_point(const struct hpcn_mountinfo_entry *e, void *ud)
{
	return strcmp(e->mount_point, (const char *)ud) == 0 ? 1 : 0;
}

/* WI2 against the pinned namespaces: every image an allocation holds a
 * reference for must still be mounted in its mount namespace. */
static void check_ns_mounts(struct hpcn_helper *h, struct hpcn_alloc *a, json_t *report)
{
	struct hpcn_error err;
	char *text = NULL;
	size_t len = 0;
	int fd;

	if (!a->n_mounts || !(a->ns_mask & (1u << HPCN_NS_MOUNT)))
		return;
	fd = hpcn_ns_open(h->ns_dir, a->id, HPCN_NS_MOUNT, &err);
	if (fd < 0 || hpcn_ns_read_mountinfo(fd, &text, &len, &err) < 0) {
		hpcn_log_warning("reconcile: allocation %s: %s", a->id, err.message);
		goto out;
	}
	for (size_t i = 0; i < a->n_mounts; i++) {
		if (hpcn_mountinfo_parse_buffer(text, len, find_mount_point,
						a->mounts[i].mount_point, &err) == 1)
			continue;
		hpcn_audit(HPCN_AUDIT_MOUNT_REFCOUNT_CORRECTED, HPCN_AUDIT_FAILURE, NULL, a->id,
			   "%s is no longer mounted at %s in the allocation's namespace",
			   a->mounts[i].image_path, a->mounts[i].mount_point);
		if (report)
			json_array_append_new(report, json_sprintf(
				"allocation %s: %s is no longer mounted at %s in its namespace",
				a->id, a->mounts[i].image_path, a->mounts[i].mount_point));
	}
out:
	free(text);
	if (fd >= 0)
		close(fd);
}

void hpcn_allocs_reconcile(struct hpcn_helper *h, json_t *report)
{
	struct ns_inuse inuse = { 0 };
	bool scanned = false;
	struct hpcn_strv pins = { 0 };
	struct hpcn_error err;

	/* F35: namespace pins that no allocation owns. */
	if (hpcn_ns_list(h->ns_dir, &pins, &err) == 0) {
		for (size_t i = 0; i < pins.n; i++) {
			if (hpcn_registry_find(&h->reg, pins.v[i]))
				continue;
			hpcn_audit(HPCN_AUDIT_NAMESPACE_LEAK_DETECTED, HPCN_AUDIT_SUCCESS, NULL,
				   pins.v[i], "pins of an unknown allocation; released");
			if (report)
				json_array_append_new(report, json_sprintf(
					"namespaces of unknown allocation %s released", pins.v[i]));
			hpcn_ns_release(h->ns_dir, pins.v[i], 0, NULL);
		}
	}
	hpcn_strv_free(&pins);

	/* F30: retry zombies; WI5: end what nobody uses (one /proc scan for
	 * the whole pass). The scan also lets a new allocation's processes be
	 * seen, so it runs in every periodic pass with a client-less
	 * allocation; only the pass of a restart's reconstruction, where every
	 * allocation is inside its grace and none can end, goes without. */
	for (size_t i = 0; i < h->reg.n && !scanned; i++) {
		struct hpcn_alloc *a = h->reg.v[i];

		if (!a->conn && a->state == HPCN_ALLOC_ACTIVE && !a->zombie &&
		    (h->ready || a->populated_seen ||
		     hpcn_now_ms() - a->created_mono_ms >= HPCN_ORPHAN_GRACE_MS))
			scanned = ns_inuse_scan(h, &inuse) == 0;
	}
	for (size_t i = h->reg.n; i-- > 0;) {
		struct hpcn_alloc *a;

		if (i >= h->reg.n)
			continue;
		a = h->reg.v[i];
		if (a->zombie || a->state == HPCN_ALLOC_ENDING) {
			char id[HPCN_ALLOC_ID_MAX + 1];

			snprintf(id, sizeof(id), "%s", a->id);
			if (hpcn_alloc_end(h, a, NULL, &err) == 0 && report)
				json_array_append_new(report, json_sprintf(
					"allocation %s finished ending", id));
			continue;
		}
		if (h->ready)
			check_ns_mounts(h, a, report);
		if (scanned)
			maybe_end(h, a, &inuse);
	}
	ns_inuse_free(&inuse);

	/* WI2: refcounts against the kernel's mount table and the registry. */
	if (hpcn_uenv_reconstruct(h, report, &err) < 0)
		hpcn_log_error("reconcile: %s", err.message);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End detection (WI5): an allocation ends by itself once its client is gone
 * and no process uses it any more. Its scope's cgroup.events says when the
 * scope empties; processes that joined its namespaces without entering the
 * scope are found by one /proc scan per reconciliation pass.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc_internal.h"
#include "log.h"
#include "ns/ns.h"

static int ns_id_cmp(const void *x, const void *y)
{
	const struct hpcn_alloc_ns_id *a = x, *b = y;

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
int hpcn_alloc_ns_inuse_scan(struct hpcn_helper *h, struct hpcn_alloc_ns_inuse *u)
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
				struct hpcn_alloc_ns_id *v = realloc(u->v, cap * sizeof(*v));

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

void hpcn_alloc_ns_inuse_free(struct hpcn_alloc_ns_inuse *u)
{
	free(u->v);
	memset(u, 0, sizeof(*u));
}

/* Does any process still use the allocation? A populated scope settles it;
 * an empty one does not (tasks may have joined the namespaces without being
 * placed in the scope), so then its namespaces are looked up in u (scanned
 * here when the caller has none). */
static bool alloc_has_processes(struct hpcn_helper *h, struct hpcn_alloc *a,
				const struct hpcn_alloc_ns_inuse *u)
{
	struct hpcn_alloc_ns_inuse own;
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
		if (hpcn_alloc_ns_inuse_scan(h, &own) < 0)
			return true; /* cannot tell: keep it */
		u = &own;
	}
	for (int t = 0; t < HPCN_NS__COUNT && !found; t++) {
		char p[PATH_MAX + 80];
		struct hpcn_alloc_ns_id key;
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
		hpcn_alloc_ns_inuse_free(&own);
	if (found)
		a->populated_seen = true;
	return found;
}

/* WI5: ended when its client is gone and no process uses it any more
 * (after a grace period when it never had a process). */
void hpcn_alloc_maybe_end(struct hpcn_helper *h, struct hpcn_alloc *a,
			  const struct hpcn_alloc_ns_inuse *u)
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

/* kernfs raised POLLPRI: cgroup.events changed (populated 1 -> 0 among
 * others). Reading it re-arms the notification (kernfs compares the file's
 * event counter with the one seen at the last read). */
static int on_scope_event(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct hpcn_alloc_watch *w = userdata;
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
		hpcn_alloc_finish_end(w->h, a); /* its scope's processes may all be gone now */
	else if (a)
		hpcn_alloc_maybe_end(w->h, a, NULL);
	return 0;
}

void hpcn_alloc_watch_free(void *userdata)
{
	free(userdata);
}

/*
 * Learn when the scope empties: EPOLLPRI on its cgroup.events, not inotify.
 * Removing an inotify watch waits for an SRCU grace period in the kernel:
 * up to 20 ms of every allocation's end, i.e. of every step (measured,
 * docs/benchmarks.md); an epoll registration goes at no cost.
 */
int hpcn_alloc_watch_scope(struct hpcn_helper *h, struct hpcn_alloc *a)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	struct hpcn_alloc_watch *w;
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
	sd_event_source_set_destroy_callback(src, hpcn_alloc_watch_free);
	a->watch = src;
	return populated != 0;
}

void hpcn_allocs_conn_closed(struct hpcn_helper *h, const struct hpcn_client *c)
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
	/* hpcn_alloc_maybe_end may remove records: look them up again by id. */
	for (size_t i = 0; i < ids.n; i++) {
		struct hpcn_alloc *a = hpcn_registry_find(&h->reg, ids.v[i]);

		if (a)
			hpcn_alloc_maybe_end(h, a, NULL);
	}
	hpcn_strv_free(&ids);
}

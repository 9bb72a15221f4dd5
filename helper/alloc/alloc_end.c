/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The end of an allocation: its mounts released, its namespaces released,
 * its scope killed and removed. The event loop never waits long for a scope
 * whose processes are slow to die: the end goes on when they are gone, or
 * makes the scope a zombie at kill_timeout (F30).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc_internal.h"
#include "log.h"
#include "ns/ns.h"
#include "uenv/uenv.h"

/* How long an end waits for its scope's processes before it goes on
 * asynchronously (see destroy_scope). */
#define HPCN_KILL_SYNC_MS 200

/* An end that was waiting for its scope's processes to die: try again. */
void hpcn_alloc_finish_end(struct hpcn_helper *h, struct hpcn_alloc *a)
{
	struct hpcn_error err;

	if (hpcn_alloc_end(h, a, NULL, &err) < 0)
		hpcn_log_error("allocation %s: %s", a->id, err.message);
}

/* Whether one of the first n mounts of a is of the image key. An image an
 * allocation mounts at two points holds one reference (WI2 counts
 * allocations, as the reconciliation does). */
bool hpcn_alloc_key_among_first(const struct hpcn_alloc *a, size_t n, const char *key)
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
		if (a->mounts[i].key[0] && !hpcn_alloc_key_among_first(a, i, a->mounts[i].key))
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
	struct hpcn_alloc_watch *w = userdata;
	struct hpcn_helper *h = w->h;
	struct hpcn_alloc *a = hpcn_registry_find(&h->reg, w->id);

	(void)s;
	(void)usec;
	if (a && a->state == HPCN_ALLOC_ENDING) {
		a->kill_timer = sd_event_source_disable_unref(a->kill_timer);
		hpcn_alloc_finish_end(h, a); /* still populated: a zombie now */
	}
	return 0;
}

/* Wake the end up again when the scope empties (its cgroup.events watch)
 * and at the latest when kill_timeout runs out. */
static void end_later(struct hpcn_helper *h, struct hpcn_alloc *a)
{
	struct hpcn_alloc_watch *w;
	/* A watch made now may have read "populated 0" that came after the
	 * kill's last look: then come back at once, not at kill_timeout. */
	uint64_t at = hpcn_alloc_watch_scope(h, a) ? a->kill_deadline_ms : hpcn_now_ms();

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
	sd_event_source_set_destroy_callback(a->kill_timer, hpcn_alloc_watch_free);
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
int hpcn_alloc_teardown(struct hpcn_helper *h, struct hpcn_alloc *a, bool release_refs,
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

/* After the hpcn_alloc_teardown of an allocation that was never handed out (a failed
 * create, a create cut short by a crash): its record goes, unless its scope
 * is still dying or a zombie (rc of hpcn_alloc_teardown), whose end then finishes later. */
void hpcn_alloc_forget_or_keep_ending(struct hpcn_helper *h, struct hpcn_alloc *a, int rc)
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
	rc = hpcn_alloc_teardown(h, a, true, who, err);
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

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Restart and reconciliation: rebuild the runtime state of every registered
 * allocation after a (re)start (WI6), and correct what drifted, periodically
 * and on demand: pins nobody owns (F35), zombies retried (F30), allocations
 * nobody uses ended (WI5), refcounts against the kernel's mounts (WI2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_internal.h"
#include "image/image.h"
#include "log.h"
#include "ns/ns.h"
#include "uenv/uenv.h"

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
			rc = hpcn_alloc_teardown(h, a, false, NULL, &e);
			if (rc < 0)
				hpcn_log_error("allocation %s: %s", a->id, e.message);
			hpcn_alloc_forget_or_keep_ending(h, a, rc);
			continue;
		}
		if (a->ns_mask) {
			struct hpcn_ns_set set;

			if (hpcn_ns_load(h->ns_dir, a->id, a->pid_holder, &set, &e) < 0)
				hpcn_log_error("allocation %s: %s", a->id, e.message);
		}
		hpcn_alloc_watch_scope(h, a);
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
	struct hpcn_alloc_ns_inuse inuse = { 0 };
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
			scanned = hpcn_alloc_ns_inuse_scan(h, &inuse) == 0;
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
			hpcn_alloc_maybe_end(h, a, &inuse);
	}
	hpcn_alloc_ns_inuse_free(&inuse);

	/* WI2: refcounts against the kernel's mount table and the registry. */
	if (hpcn_uenv_reconstruct(h, report, &err) < 0)
		hpcn_log_error("reconcile: %s", err.message);
}

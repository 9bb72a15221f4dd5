/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The MountManager: each uenv image is mounted once per node under
 * <mount_base>/<key> (key = device, inode, size and mtime of the opened
 * image, never the path string), refcounted by the allocations that use it
 * (WI2), kept for a hold time after the last release (WI3), rebuilt from the
 * kernel's mount table after a restart (WI6).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "uenv.h"
#include "image/image.h"
#include "log.h"
#include "ns/ns.h"

struct hpcn_uenv_entry *hpcn_uenv_find(struct hpcn_helper *h, const char *key)
{
	if (!h->uenv)
		return NULL;
	for (struct hpcn_uenv_entry *e = h->uenv->head; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static struct hpcn_uenv_entry *entry_new(struct hpcn_helper *h, const char *key,
					 const char *image_path, const char *mount_point)
{
	struct hpcn_uenv_entry *e;

	if (!h->uenv && !(h->uenv = calloc(1, sizeof(*h->uenv))))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->h = h;
	snprintf(e->key, sizeof(e->key), "%s", key);
	snprintf(e->image_path, sizeof(e->image_path), "%s", image_path ? image_path : "");
	snprintf(e->mount_point, sizeof(e->mount_point), "%s", mount_point);
	e->next = h->uenv->head;
	h->uenv->head = e;
	return e;
}

static void entry_free(struct hpcn_helper *h, struct hpcn_uenv_entry *e)
{
	for (struct hpcn_uenv_entry **p = &h->uenv->head; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	sd_event_source_disable_unref(e->hold);
	free(e);
}

static void hold_cancel(struct hpcn_uenv_entry *e)
{
	e->hold = sd_event_source_disable_unref(e->hold);
	e->hold_deadline_ms = 0;
}

static int on_hold_expired(sd_event_source *s, uint64_t usec, void *userdata);

static void hold_start(struct hpcn_helper *h, struct hpcn_uenv_entry *e)
{
	uint64_t usec = (uint64_t)h->cfg.hold_time_secs * 1000000ULL;

	hold_cancel(e);
	e->hold_deadline_ms = hpcn_now_ms() + (uint64_t)h->cfg.hold_time_secs * 1000ULL;
	if (sd_event_add_time_relative(h->event, &e->hold, CLOCK_MONOTONIC, usec, 0,
				       on_hold_expired, e) < 0) {
		e->hold = NULL;
		hpcn_log_error("cannot arm the hold timer of %s; reconciliation will unmount it",
			       e->mount_point);
	}
	/* The callback needs the helper too. */
	if (e->hold)
		sd_event_source_set_description(e->hold, "uenv-hold");
}

static int on_hold_expired(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct hpcn_uenv_entry *e = userdata;
	struct hpcn_helper *h = e->h;
	struct hpcn_error err;

	e->hold = sd_event_source_disable_unref(e->hold);
	if (e->refcount > 0)
		return 0; /* re-acquired meanwhile: keep */
	if (hpcn_uenv_unmount_image(e->mount_point, &err) < 0 && err.sys_errno != EINVAL) {
		hpcn_audit(HPCN_AUDIT_MOUNT_RELEASE, HPCN_AUDIT_FAILURE, NULL, NULL,
			   "hold time over for %s (%s), unmount failed: %s", e->mount_point,
			   e->image_path, err.message);
		hold_start(h, e); /* try again after another hold time */
		return 0;
	}
	hpcn_audit(HPCN_AUDIT_MOUNT_RELEASE, HPCN_AUDIT_SUCCESS, NULL, NULL,
		   "unmounted %s (%s) after the hold time of %u s", e->mount_point,
		   e->image_path, h->cfg.hold_time_secs);
	entry_free(h, e);
	return 0;
}

/* Images mounted now: one loop device each. */
static unsigned mounted_count(const struct hpcn_helper *h)
{
	unsigned n = 0;

	for (const struct hpcn_uenv_entry *e = h->uenv ? h->uenv->head : NULL; e; e = e->next)
		n++;
	return n;
}

/* Whether path is the root of a mount (what an entry's mount point must
 * be). True when the kernel cannot tell (no STATX_ATTR_MOUNT_ROOT). */
static bool is_mount_root(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS,
		  &stx) < 0)
		return false;
	if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
		return true;
	return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

/*
 * Out of loop devices (our max_loop_devices, or the kernel's): images in
 * their hold time are a cache, not a use. Unmount the one whose hold ends
 * first so that an image a job needs now can be mounted; one that cannot be
 * unmounted (busy) is skipped for the next. Returns 0 when one was freed,
 * -1 when none could be: *busy then names the last that would not go ("" if
 * every mounted image is in use).
 */
static int evict_held(struct hpcn_helper *h, const char *for_image, char *busy, size_t cap)
{
	static uint64_t stamp;
	struct hpcn_error err;

	stamp++;
	busy[0] = '\0';
	for (;;) {
		struct hpcn_uenv_entry *victim = NULL;

		for (struct hpcn_uenv_entry *e = h->uenv ? h->uenv->head : NULL; e; e = e->next)
			if (e->refcount == 0 && e->evict_stamp != stamp &&
			    (!victim || e->hold_deadline_ms < victim->hold_deadline_ms))
				victim = e;
		if (!victim)
			return -1;
		victim->evict_stamp = stamp;
		hold_cancel(victim);
		if (hpcn_uenv_unmount_image(victim->mount_point, &err) < 0 &&
		    err.sys_errno != EINVAL) {
			hpcn_audit(HPCN_AUDIT_MOUNT_RELEASE, HPCN_AUDIT_FAILURE, NULL, NULL,
				   "%s (%s) unused but cannot be unmounted to make room for %s: %s",
				   victim->mount_point, victim->image_path, for_image, err.message);
			snprintf(busy, cap, "%s", victim->image_path[0] ? victim->image_path :
				 victim->mount_point);
			hold_start(h, victim);
			continue;
		}
		hpcn_audit(HPCN_AUDIT_MOUNT_RELEASE, HPCN_AUDIT_SUCCESS, NULL, NULL,
			   "unmounted %s (%s) before its hold time ended: its loop device is "
			   "needed for %s", victim->mount_point, victim->image_path, for_image);
		entry_free(h, victim);
		return 0;
	}
}

/* Mount a new image within max_loop_devices, evicting held images first. */
static int mount_new(struct hpcn_helper *h, int fd, const char *image_path,
		     const struct hpcn_image_id *id, char *mp, size_t mpcap,
		     struct hpcn_error *err)
{
	unsigned cap = h->cfg.max_loop_devices;
	char busy[PATH_MAX];

	while (cap && mounted_count(h) >= cap) {
		if (evict_held(h, image_path, busy, sizeof(busy)) < 0) {
			if (busy[0])
				hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, image_path,
						"no free loop device: all %u that "
						"max_loop_devices allows are taken, and %s, "
						"unused, is busy and cannot be unmounted", cap,
						busy);
			else
				hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, image_path,
						"no free loop device: all %u that "
						"max_loop_devices allows back images in use", cap);
			err->sys_errno = ENOSPC;
			return -1;
		}
	}
	if (hpcn_uenv_mount_image(h->cfg.uenv_mount_base, fd, image_path, id, mp, mpcap,
				  err) == 0)
		return 0;
	/* The kernel's own limit: again after freeing a held image, twice at
	 * most (a device freed by an eviction may still be held a moment by a
	 * namespace that is going away; the cache is not emptied for it). */
	for (int tries = 0; tries < 2 && err->kind == HPCN_E_MOUNT_FAILED &&
	     err->sys_errno == ENOSPC && evict_held(h, image_path, busy, sizeof(busy)) == 0;
	     tries++)
		if (hpcn_uenv_mount_image(h->cfg.uenv_mount_base, fd, image_path, id, mp,
					  mpcap, err) == 0)
			return 0;
	return -1;
}

int hpcn_uenv_acquire(struct hpcn_helper *h, const char *image_path, int image_fd,
		      uid_t uid, gid_t gid, const char *alloc_id, char *key, size_t keycap,
		      struct hpcn_error *err)
{
	_cleanup_close_ int fd = -1;
	struct hpcn_image_id id;
	struct hpcn_uenv_entry *e;
	char mp[PATH_MAX], resolved[PATH_MAX], proc[64];
	ssize_t n;

	if (!hpcn_config_image_allowed(&h->cfg, image_path))
		return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
				       "image %s is outside the allowed image locations", image_path);
	if (image_fd >= 0) {
		if (hpcn_image_check_fd(image_fd, image_path, &id, err) < 0)
			return -1;
		fd = fcntl(image_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return hpcn_error_set_errno(err, HPCN_E_MOUNT_IO, errno, NULL, "dup");
	} else if (hpcn_image_open_as_user(image_path, uid, gid, &fd, &id, err) < 0) {
		return -1;
	}
	/* The allowlist is lexical; check where the opened file really is too
	 * (a symlinked directory could lead outside it). */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, resolved, sizeof(resolved) - 1);
	if (n > 0) {
		resolved[n] = '\0';
		if (!hpcn_config_image_allowed(&h->cfg, resolved))
			return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
					       "image %s resolves to %s, outside the allowed "
					       "image locations", image_path, resolved);
	}
	if (hpcn_image_id_key(&id, key, keycap) < 0)
		return hpcn_error_set(err, HPCN_E_INTERNAL, "cannot compute the image key", NULL);
	e = hpcn_uenv_find(h, key);
	if (!e) {
		if (mount_new(h, fd, image_path, &id, mp, sizeof(mp), err) < 0)
			return -1;
		e = entry_new(h, key, image_path, mp);
		if (!e) {
			hpcn_uenv_unmount_image(mp, NULL);
			return hpcn_error_set(err, HPCN_E_INTERNAL, "out of memory", NULL);
		}
		hpcn_log_info("mounted %s at %s", image_path, mp);
	} else if (!is_mount_root(e->mount_point)) {
		/* Its node-wide mount went away behind our back (an admin's
		 * umount): the job would get the empty directory. Mount it there
		 * again, keeping the entry and the references of running jobs
		 * (which keep their own binds). */
		if (mount_new(h, fd, image_path, &id, mp, sizeof(mp), err) < 0)
			return -1;
		hpcn_audit(HPCN_AUDIT_MOUNT_REFCOUNT_CORRECTED, HPCN_AUDIT_SUCCESS, NULL, alloc_id,
			   "%s was no longer mounted at %s: mounted again", image_path, mp);
	}
	if (!e->image_path[0])
		snprintf(e->image_path, sizeof(e->image_path), "%s", image_path);
	hold_cancel(e);
	e->refcount++;
	hpcn_audit(HPCN_AUDIT_MOUNT_ACQUIRE, HPCN_AUDIT_SUCCESS, NULL, alloc_id,
		   "%s at %s, refcount %u", image_path, e->mount_point, e->refcount);
	return 0;
}

int hpcn_uenv_release(struct hpcn_helper *h, const char *key, const char *alloc_id)
{
	struct hpcn_uenv_entry *e = hpcn_uenv_find(h, key);

	if (!e) {
		hpcn_log_warning("release of image %s by %s: not in the mount table", key,
				 alloc_id ? alloc_id : "-");
		return -1;
	}
	if (e->refcount == 0) {
		/* WI2: never negative. Log, keep the mount, reconciliation corrects. */
		hpcn_audit(HPCN_AUDIT_MOUNT_REFCOUNT_CORRECTED, HPCN_AUDIT_FAILURE, NULL, alloc_id,
			   "refcount inconsistency for %s: release at refcount 0 ignored",
			   e->image_path);
		return -1;
	}
	e->refcount--;
	hpcn_audit(HPCN_AUDIT_MOUNT_RELEASE, HPCN_AUDIT_SUCCESS, NULL, alloc_id,
		   "%s, refcount %u%s", e->image_path, e->refcount,
		   e->refcount == 0 ? ", hold timer started" : "");
	if (e->refcount == 0)
		hold_start(h, e);
	return 0;
}

int hpcn_uenv_force_unmount(struct hpcn_helper *h, const char *image_or_key,
			    const struct hpcn_audit_ctx *who, struct hpcn_error *err)
{
	struct hpcn_uenv_entry *e = hpcn_uenv_find(h, image_or_key);

	if (!e && h->uenv)
		for (e = h->uenv->head; e; e = e->next)
			if (strcmp(e->image_path, image_or_key) == 0)
				break;
	if (!e)
		return hpcn_error_setf(err, HPCN_E_NOT_FOUND, NULL,
				       "no mounted uenv image %s", image_or_key);
	hold_cancel(e);
	if (hpcn_uenv_force_unmount_image(e->mount_point, err) < 0 && err->sys_errno != EINVAL) {
		hpcn_audit(HPCN_AUDIT_MOUNT_FORCE_UNMOUNT, HPCN_AUDIT_FAILURE, who, NULL,
			   "%s: %s", e->mount_point, err->message);
		return -1;
	}
	hpcn_audit(HPCN_AUDIT_MOUNT_FORCE_UNMOUNT, HPCN_AUDIT_SUCCESS, who, NULL,
		   "%s (%s) detached with refcount %u (emergency)", e->mount_point,
		   e->image_path, e->refcount);
	/* The jobs lose it too (what an emergency is for: their binds would
	 * keep a faulty image, and its loop device, until they end). Their
	 * allocations hold no reference any more: forget the key in their
	 * mounts, or their end would release (and the reconciliation count) a
	 * reference of the image's next mount. */
	for (size_t i = 0; i < h->reg.n; i++) {
		struct hpcn_alloc *a = h->reg.v[i];
		bool changed = false;

		for (size_t m = 0; m < a->n_mounts; m++) {
			struct hpcn_error e2;
			int ns;

			if (strcmp(a->mounts[m].key, e->key) != 0)
				continue;
			a->mounts[m].key[0] = '\0';
			changed = true;
			ns = hpcn_ns_open(h->ns_dir, a->id, HPCN_NS_MOUNT, &e2);
			if (ns < 0 || hpcn_ns_detach_mount(ns, a->mounts[m].mount_point, &e2) < 0)
				hpcn_audit(HPCN_AUDIT_MOUNT_FORCE_UNMOUNT, HPCN_AUDIT_FAILURE, who,
					   a->id, "%s at %s in the allocation's namespace: %s",
					   e->image_path, a->mounts[m].mount_point, e2.message);
			else
				hpcn_audit(HPCN_AUDIT_MOUNT_FORCE_UNMOUNT, HPCN_AUDIT_SUCCESS, who,
					   a->id, "%s detached from %s in the allocation's "
					   "namespace (emergency)", e->image_path,
					   a->mounts[m].mount_point);
			if (ns >= 0)
				close(ns);
		}
		if (changed)
			hpcn_registry_save(&h->reg, a, NULL);
	}
	entry_free(h, e);
	return 0;
}

int hpcn_uenv_reconstruct(struct hpcn_helper *h, json_t *report, struct hpcn_error *err)
{
	struct hpcn_uenv_mount *m = NULL;
	size_t n = 0;

	if (hpcn_mountinfo_find_uenv(NULL, h->cfg.uenv_mount_base, &m, &n, err) < 0)
		return -1;
	/* Entries the kernel no longer has: drop them (an admin unmounted). */
	if (h->uenv) {
		struct hpcn_uenv_entry *e = h->uenv->head, *next;

		for (; e; e = next) {
			bool found = false;

			next = e->next;
			for (size_t i = 0; i < n; i++)
				if (strcmp(m[i].key, e->key) == 0)
					found = true;
			if (!found) {
				hpcn_audit(HPCN_AUDIT_MOUNT_REFCOUNT_CORRECTED, HPCN_AUDIT_SUCCESS,
					   NULL, NULL, "%s is no longer mounted; forgotten",
					   e->mount_point);
				if (report)
					json_array_append_new(report, json_sprintf(
						"%s is no longer mounted; forgotten", e->mount_point));
				entry_free(h, e);
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct hpcn_uenv_entry *e;
		unsigned users;

		if (!m[i].key_valid) {
			hpcn_log_warning("%s: a squashfs under the uenv base that is not ours; "
					 "left alone", m[i].mount_point);
			continue;
		}
		e = hpcn_uenv_find(h, m[i].key);
		if (!e) {
			const char *path = "";

			/* The image path, as the allocations that use it named it. */
			for (size_t a = 0; a < h->reg.n && !path[0]; a++)
				for (size_t k = 0; k < h->reg.v[a]->n_mounts; k++)
					if (strcmp(h->reg.v[a]->mounts[k].key, m[i].key) == 0)
						path = h->reg.v[a]->mounts[k].image_path;
			e = entry_new(h, m[i].key, path, m[i].mount_point);
			if (!e)
				break;
			e->refcount = UINT32_MAX; /* forces the comparison below */
		}
		users = hpcn_registry_image_users(&h->reg, e->key);
		if (users != e->refcount) {
			if (e->refcount != UINT32_MAX) {
				hpcn_audit(HPCN_AUDIT_MOUNT_REFCOUNT_CORRECTED, HPCN_AUDIT_SUCCESS,
					   NULL, NULL, "%s: refcount %u corrected to %u",
					   e->mount_point, e->refcount, users);
				if (report)
					json_array_append_new(report, json_sprintf(
						"%s: refcount %u corrected to %u",
						e->mount_point, e->refcount, users));
			}
			e->refcount = users;
		}
		if (e->refcount == 0 && !e->hold)
			hold_start(h, e);
		else if (e->refcount > 0)
			hold_cancel(e);
	}
	free(m);
	return 0;
}

void hpcn_uenv_free(struct hpcn_helper *h)
{
	if (!h->uenv)
		return;
	while (h->uenv->head)
		entry_free(h, h->uenv->head);
	free(h->uenv);
	h->uenv = NULL;
}

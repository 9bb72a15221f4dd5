/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"
#include "util.h"

#define RECORD_SUFFIX ".json"
#define RECORD_MAX_SIZE 65536
/* uid_t/gid_t; (uid_t)-1 is "no id", never an owner. */
#define ID_MAX ((json_int_t)UINT32_MAX - 1)

const char *hpcn_alloc_state_name(enum hpcn_alloc_state s)
{
	switch (s) {
	case HPCN_ALLOC_CREATING:
		return "creating";
	case HPCN_ALLOC_ACTIVE:
		return "active";
	case HPCN_ALLOC_ENDING:
		return "ending";
	}
	return "unknown";
}

static int state_from_name(const char *s, enum hpcn_alloc_state *out)
{
	for (int i = HPCN_ALLOC_CREATING; i <= HPCN_ALLOC_ENDING; i++)
		if (strcmp(s, hpcn_alloc_state_name((enum hpcn_alloc_state)i)) == 0) {
			*out = (enum hpcn_alloc_state)i;
			return 0;
		}
	return -1;
}

int hpcn_registry_open(struct hpcn_registry *r, const char *state_dir, struct hpcn_error *err)
{
	memset(r, 0, sizeof(*r));
	r->dirfd = -1;
	if (snprintf(r->dir, sizeof(r->dir), "%s/allocations", state_dir) >= (int)sizeof(r->dir))
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "state directory path too long: %s", state_dir);
	if (hpcn_mkdir_p(r->dir, 0700) < 0)
		return hpcn_error_set_errno(err, HPCN_E_BOOT_FAILED, errno, NULL,
					    "cannot create %s", r->dir);
	r->dirfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (r->dirfd < 0)
		return hpcn_error_set_errno(err, HPCN_E_BOOT_FAILED, errno, NULL,
					    "cannot open %s", r->dir);
	return 0;
}

int hpcn_alloc_add_mount(struct hpcn_alloc *a, const char *key, const char *image_path,
			 const char *mount_point)
{
	struct hpcn_alloc_mount *v, *m;

	if (a->n_mounts >= HPCN_MAX_MOUNTS) {
		errno = E2BIG;
		return -1;
	}
	v = realloc(a->mounts, (a->n_mounts + 1) * sizeof(*v));
	if (!v)
		return -1;
	a->mounts = v;
	m = &v[a->n_mounts];
	memset(m, 0, sizeof(*m));
	snprintf(m->key, sizeof(m->key), "%s", key);
	m->image_path = strdup(image_path);
	m->mount_point = strdup(mount_point);
	if (!m->image_path || !m->mount_point) {
		free(m->image_path);
		free(m->mount_point);
		return -1;
	}
	a->n_mounts++;
	return 0;
}

void hpcn_alloc_clear_mounts(struct hpcn_alloc *a)
{
	for (size_t i = 0; i < a->n_mounts; i++) {
		free(a->mounts[i].image_path);
		free(a->mounts[i].mount_point);
	}
	free(a->mounts);
	a->mounts = NULL;
	a->n_mounts = 0;
}

static void init_runtime(struct hpcn_alloc *a)
{
	for (size_t i = 0; i < HPCN_NS__COUNT; i++)
		a->ns_fd[i] = -1;
}

/* Zeroed, with the runtime FDs marked closed. */
static struct hpcn_alloc *alloc_new(void)
{
	struct hpcn_alloc *a = calloc(1, sizeof(*a));

	if (a)
		init_runtime(a);
	return a;
}

void hpcn_alloc_close_ns_fds(struct hpcn_alloc *a)
{
	for (size_t i = 0; i < HPCN_NS__COUNT; i++)
		hpcn_closep(&a->ns_fd[i]);
}

void hpcn_alloc_free(struct hpcn_alloc *a)
{
	if (!a)
		return;
	hpcn_alloc_close_ns_fds(a);
	hpcn_alloc_clear_mounts(a);
	free(a);
}

void hpcn_registry_close(struct hpcn_registry *r)
{
	for (size_t i = 0; i < r->n; i++)
		hpcn_alloc_free(r->v[i]);
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
	hpcn_closep(&r->dirfd);
}

struct hpcn_alloc *hpcn_registry_find(const struct hpcn_registry *r, const char *id)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i]->id, id) == 0)
			return r->v[i];
	return NULL;
}

static int append(struct hpcn_registry *r, struct hpcn_alloc *a)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct hpcn_alloc **v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return -1;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = a;
	return 0;
}

struct hpcn_alloc *hpcn_registry_add(struct hpcn_registry *r, const char *id,
				     struct hpcn_error *err)
{
	struct hpcn_alloc *a;

	if (hpcn_alloc_id_validate(id, err) < 0)
		return NULL;
	if (hpcn_registry_find(r, id)) {
		hpcn_error_setf(err, HPCN_E_BUSY, NULL, "allocation %s already exists", id);
		return NULL;
	}
	a = alloc_new();
	if (!a || append(r, a) < 0) {
		free(a);
		hpcn_error_set(err, HPCN_E_INTERNAL, "out of memory", NULL);
		return NULL;
	}
	snprintf(a->id, sizeof(a->id), "%s", id);
	a->state = HPCN_ALLOC_CREATING;
	a->created_at = (int64_t)time(NULL);
	a->created_mono_ms = hpcn_now_ms();
	return a;
}

json_t *hpcn_alloc_to_json(const struct hpcn_alloc *a)
{
	json_t *j = json_object(), *ns = json_array(), *mounts = json_array();

	for (int t = 0; t < HPCN_NS__COUNT; t++)
		if (a->ns_mask & (1u << t))
			json_array_append_new(ns, json_string(hpcn_ns_type_name((enum hpcn_ns_type)t)));
	for (size_t i = 0; i < a->n_mounts; i++)
		json_array_append_new(mounts, json_pack("{s:s, s:s, s:s}",
							"key", a->mounts[i].key,
							"image_path", a->mounts[i].image_path,
							"mount_point", a->mounts[i].mount_point));
	json_object_set_new(j, "allocation_id", json_string(a->id));
	json_object_set_new(j, "group", a->group[0] ? json_string(a->group) : json_null());
	json_object_set_new(j, "state", json_string(hpcn_alloc_state_name(a->state)));
	json_object_set_new(j, "uid", json_integer(a->uid));
	json_object_set_new(j, "gid", json_integer(a->gid));
	json_object_set_new(j, "peer_uid", json_integer(a->peer_uid));
	json_object_set_new(j, "created_at", json_integer(a->created_at));
	json_object_set_new(j, "scope", a->scope[0] ? json_string(a->scope) : json_null());
	json_object_set_new(j, "zombie", json_boolean(a->zombie));
	json_object_set_new(j, "zombie_since", json_integer(a->zombie_since));
	json_object_set_new(j, "namespaces", ns);
	json_object_set_new(j, "pid_holder", json_integer(a->pid_holder));
	json_object_set_new(j, "mounts", mounts);
	return j;
}

static int copy_str(char *dst, size_t cap, json_t *v, const char *field, bool nullable,
		    struct hpcn_error *err)
{
	if (nullable && (!v || json_is_null(v))) {
		dst[0] = '\0';
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) >= cap)
		return hpcn_error_setf(err, HPCN_E_INTERNAL, NULL,
				       "registry record: field '%s' missing or invalid", field);
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* A non-negative integer no larger than max: a uid of 2^32 must not load as
 * root, nor a pid of 2^32 + 1 as init (found by fuzzing). */
static int get_int(json_t *o, const char *field, json_int_t max, json_int_t *out,
		   struct hpcn_error *err)
{
	json_t *v = json_object_get(o, field);

	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return hpcn_error_setf(err, HPCN_E_INTERNAL, NULL,
				       "registry record: field '%s' missing or invalid", field);
	*out = json_integer_value(v);
	return 0;
}

int hpcn_alloc_from_json(json_t *j, struct hpcn_alloc *a, struct hpcn_error *err)
{
	json_int_t uid, gid, peer, created, since, holder;
	json_t *ns, *mounts, *v;
	size_t i;

	memset(a, 0, sizeof(*a));
	init_runtime(a);
	if (!json_is_object(j))
		return hpcn_error_set(err, HPCN_E_INTERNAL, "registry record is not an object", NULL);
	if (copy_str(a->id, sizeof(a->id), json_object_get(j, "allocation_id"),
		     "allocation_id", false, err) < 0 ||
	    hpcn_alloc_id_validate(a->id, err) < 0 ||
	    copy_str(a->group, sizeof(a->group), json_object_get(j, "group"), "group", true, err) < 0 ||
	    copy_str(a->scope, sizeof(a->scope), json_object_get(j, "scope"), "scope", true, err) < 0)
		return -1;
	if (a->group[0] && hpcn_alloc_id_validate(a->group, err) < 0)
		return -1;
	v = json_object_get(j, "state");
	if (!json_is_string(v) || state_from_name(json_string_value(v), &a->state) < 0)
		return hpcn_error_set(err, HPCN_E_INTERNAL, "registry record: bad state", NULL);
	if (get_int(j, "uid", ID_MAX, &uid, err) < 0 || get_int(j, "gid", ID_MAX, &gid, err) < 0 ||
	    get_int(j, "peer_uid", ID_MAX, &peer, err) < 0 ||
	    get_int(j, "created_at", INT64_MAX, &created, err) < 0 ||
	    get_int(j, "zombie_since", INT64_MAX, &since, err) < 0 ||
	    get_int(j, "pid_holder", INT32_MAX, &holder, err) < 0)
		return -1;
	a->uid = (uid_t)uid;
	a->gid = (gid_t)gid;
	a->peer_uid = (uid_t)peer;
	a->created_at = created;
	a->zombie_since = since;
	a->pid_holder = (pid_t)holder;
	a->zombie = json_is_true(json_object_get(j, "zombie"));
	ns = json_object_get(j, "namespaces");
	if (!json_is_array(ns))
		return hpcn_error_set(err, HPCN_E_INTERNAL, "registry record: bad namespaces", NULL);
	json_array_foreach(ns, i, v) {
		enum hpcn_ns_type t;

		if (!json_is_string(v) || hpcn_ns_type_from_name(json_string_value(v), &t) < 0)
			return hpcn_error_set(err, HPCN_E_INTERNAL,
					      "registry record: bad namespace type", NULL);
		a->ns_mask |= 1u << t;
	}
	mounts = json_object_get(j, "mounts");
	if (!json_is_array(mounts) || json_array_size(mounts) > HPCN_MAX_MOUNTS)
		return hpcn_error_set(err, HPCN_E_INTERNAL, "registry record: bad mounts", NULL);
	json_array_foreach(mounts, i, v) {
		json_t *key = json_object_get(v, "key");
		json_t *ip = json_object_get(v, "image_path");
		json_t *mp = json_object_get(v, "mount_point");

		if (!json_is_string(key) || json_string_length(key) >= HPCN_IMAGE_KEY_MAX ||
		    !json_is_string(ip) || json_string_length(ip) >= PATH_MAX ||
		    !json_is_string(mp) || json_string_length(mp) >= PATH_MAX)
			return hpcn_error_set(err, HPCN_E_INTERNAL,
					      "registry record: bad mount entry", NULL);
		if (hpcn_alloc_add_mount(a, json_string_value(key), json_string_value(ip),
					 json_string_value(mp)) < 0)
			return hpcn_error_set(err, HPCN_E_INTERNAL, "out of memory", NULL);
	}
	return 0;
}

static int record_name(const char *id, char *out, size_t cap)
{
	return snprintf(out, cap, "%s" RECORD_SUFFIX, id) >= (int)cap ? -1 : 0;
}

int hpcn_registry_save(struct hpcn_registry *r, const struct hpcn_alloc *a,
		       struct hpcn_error *err)
{
	char name[HPCN_ALLOC_ID_MAX + 16];
	json_t *j = hpcn_alloc_to_json(a);
	char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	int rv = -1;

	json_decref(j);
	if (!text || record_name(a->id, name, sizeof(name)) < 0) {
		hpcn_error_set(err, HPCN_E_INTERNAL, "cannot serialise registry record", NULL);
		goto fail;
	}
	if (hpcn_write_file_atomic_at(r->dirfd, name, text, strlen(text)) < 0) {
		hpcn_error_set_errno(err, HPCN_E_INTERNAL, errno, NULL,
				     "cannot write registry record %s/%s", r->dir, name);
		goto fail;
	}
	rv = 0;
fail:
	free(text);
	return rv;
}

int hpcn_registry_remove(struct hpcn_registry *r, struct hpcn_alloc *a, struct hpcn_error *err)
{
	char name[HPCN_ALLOC_ID_MAX + 16];
	int rv = 0;

	if (record_name(a->id, name, sizeof(name)) == 0 &&
	    unlinkat(r->dirfd, name, 0) < 0 && errno != ENOENT)
		rv = hpcn_error_set_errno(err, HPCN_E_INTERNAL, errno, NULL,
					  "cannot remove registry record %s/%s", r->dir, name);
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i] == a) {
			r->v[i] = r->v[--r->n];
			break;
		}
	hpcn_alloc_free(a);
	return rv;
}

static void quarantine(struct hpcn_registry *r, const char *name, struct hpcn_strv *warnings,
		       const char *why)
{
	char bad[NAME_MAX + 1];

	snprintf(bad, sizeof(bad), "%s.corrupt", name);
	(void)renameat(r->dirfd, name, r->dirfd, bad);
	if (warnings)
		hpcn_strv_addf(warnings, "registry record %s/%s is unusable (%s); kept as %s",
			       r->dir, name, why, bad);
}

int hpcn_registry_load(struct hpcn_registry *r, struct hpcn_strv *warnings,
		       struct hpcn_error *err)
{
	int fd = dup(r->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return hpcn_error_set_errno(err, HPCN_E_BOOT_FAILED, errno, NULL,
					    "cannot read %s", r->dir);
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name), sl = strlen(RECORD_SUFFIX);
		char *buf = NULL;
		struct hpcn_alloc *a;
		struct hpcn_error e;
		json_error_t je;
		json_t *j;
		ssize_t n;

		if (de->d_name[0] == '.') {
			/* a temp file of an interrupted save: the rename never happened */
			if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0)
				(void)unlinkat(r->dirfd, de->d_name, 0);
			continue;
		}
		if (len <= sl || strcmp(de->d_name + len - sl, RECORD_SUFFIX) != 0)
			continue;
		buf = malloc(RECORD_MAX_SIZE);
		n = buf ? hpcn_read_file_at(r->dirfd, de->d_name, buf, RECORD_MAX_SIZE) : -1;
		j = n > 0 ? json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &je) : NULL;
		free(buf);
		a = alloc_new();
		if (!j || !a || hpcn_alloc_from_json(j, a, &e) < 0 ||
		    strncmp(de->d_name, a->id, len - sl) != 0 || strlen(a->id) != len - sl ||
		    hpcn_registry_find(r, a->id)) {
			quarantine(r, de->d_name, warnings,
				   !j ? "not JSON" : !a ? "out of memory" : e.message);
			json_decref(j);
			hpcn_alloc_free(a);
			continue;
		}
		json_decref(j);
		a->created_mono_ms = hpcn_now_ms();
		if (append(r, a) < 0) {
			hpcn_alloc_free(a);
			closedir(d);
			return hpcn_error_set(err, HPCN_E_INTERNAL, "out of memory", NULL);
		}
	}
	closedir(d);
	return 0;
}

unsigned hpcn_registry_image_users(const struct hpcn_registry *r, const char *key)
{
	unsigned n = 0;

	for (size_t i = 0; i < r->n; i++) {
		const struct hpcn_alloc *a = r->v[i];

		if (a->state == HPCN_ALLOC_CREATING)
			continue;
		for (size_t m = 0; m < a->n_mounts; m++)
			if (strcmp(a->mounts[m].key, key) == 0) {
				n++;
				break;
			}
	}
	return n;
}

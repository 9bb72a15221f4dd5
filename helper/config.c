/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The helper's ini configuration, see config.h for the keys: the defaults,
 * loading a file, copies, the allowlist checks, and the reload merge.
 * Parsing is config_parse.c, --print-config and comparing config_dump.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hpcnode/constants.h>

#include "config_internal.h"
#include "log.h"

int hpcn_config_defaults(struct hpcn_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->socket_path, sizeof(c->socket_path), "%s", HPCN_HANDOFF_SOCKET_PATH);
	c->socket_mode = HPCN_CONFIG_DEFAULT_SOCKET_MODE;
	snprintf(c->ready_file, sizeof(c->ready_file), "%s", HPCN_READINESS_FILE_PATH);
	snprintf(c->state_dir, sizeof(c->state_dir), "%s", HPCN_CONFIG_DEFAULT_STATE_DIR);
	c->log_level = LOG_INFO;
	c->log_target = HPCN_LOG_AUTO;
	c->cgroup_enabled = true;
	c->limits_mandatory = false;
	c->kill_timeout_secs = HPCN_CONFIG_DEFAULT_KILL_TIMEOUT_SECS;
	snprintf(c->uenv_mount_base, sizeof(c->uenv_mount_base), "%s", HPCN_UENV_MOUNT_BASE);
	c->hold_time_secs = HPCN_DEFAULT_HOLD_TIME_SECS;
	c->max_images = HPCN_CONFIG_DEFAULT_MAX_IMAGES;
	c->allow_pid = true;
	c->allow_net = true;
	c->reconcile_interval_secs = HPCN_CONFIG_DEFAULT_RECONCILE_INTERVAL_SECS;
	if (hpcn_strv_addf(&c->allowed_mount_points, "%s", HPCN_DEFAULT_UENV_MOUNT_POINT) < 0 ||
	    hpcn_strv_addf(&c->allowed_mount_points, "%s", HPCN_DEFAULT_UENV_TOOLS_POINT) < 0) {
		hpcn_config_free(c);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void hpcn_config_free(struct hpcn_config *c)
{
	if (!c)
		return;
	hpcn_strv_free(&c->allowed_mount_points);
	hpcn_strv_free(&c->create_mount_points);
	hpcn_strv_free(&c->image_prefixes);
}

static int strv_copy(struct hpcn_strv *dst, const struct hpcn_strv *src)
{
	*dst = (struct hpcn_strv){ 0 };
	for (size_t i = 0; i < src->n; i++)
		if (hpcn_strv_addf(dst, "%s", src->v[i]) < 0)
			return -1;
	return 0;
}

int hpcn_config_copy(struct hpcn_config *dst, const struct hpcn_config *src)
{
	*dst = *src;
	if (strv_copy(&dst->allowed_mount_points, &src->allowed_mount_points) < 0 ||
	    strv_copy(&dst->create_mount_points, &src->create_mount_points) < 0 ||
	    strv_copy(&dst->image_prefixes, &src->image_prefixes) < 0) {
		hpcn_config_free(dst);
		memset(dst, 0, sizeof(*dst));
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int hpcn_config_load(struct hpcn_config *c, const char *path, bool path_explicit,
		     struct hpcn_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *text = NULL;
	struct stat st;
	size_t off = 0;

	if (!path)
		path = HPCN_HELPER_CONFIG_PATH;
	memset(c, 0, sizeof(*c));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT && !path_explicit) {
			if (hpcn_config_defaults(c) < 0)
				return hpcn_error_set_errno(err, HPCN_E_INTERNAL, ENOMEM, NULL,
							    "loading configuration");
			return 0;
		}
		return hpcn_error_set_errno(err, HPCN_E_INVALID_ARGUMENT, errno, NULL,
					    "cannot open configuration %s", path);
	}
	if (fstat(fd, &st) < 0)
		return hpcn_error_set_errno(err, HPCN_E_INVALID_ARGUMENT, errno, NULL,
					    "cannot stat configuration %s", path);
	if (!S_ISREG(st.st_mode))
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "configuration %s is not a regular file", path);
	if (st.st_size > HPCN_CONFIG_MAX_FILE_SIZE)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "configuration %s is larger than %d bytes", path,
				       HPCN_CONFIG_MAX_FILE_SIZE);
	/* It decides who may ask a root daemon for mounts. */
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		hpcn_log_warning("configuration %s is writable by group or others (mode %04o)",
				 path, (unsigned)(st.st_mode & 07777));
	text = malloc((size_t)st.st_size + 1);
	if (!text)
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, ENOMEM, NULL,
					    "reading configuration %s", path);
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, text + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return hpcn_error_set_errno(err, HPCN_E_INVALID_ARGUMENT, errno, NULL,
						    "cannot read configuration %s", path);
		if (n == 0)
			break;
		off += (size_t)n;
	}
	text[off] = '\0';
	if (strlen(text) != off)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "configuration %s contains a NUL byte", path);
	return hpcn_config_load_string(c, text, path, err);
}

bool hpcn_config_peer_allowed(const struct hpcn_config *c, uid_t uid, gid_t gid)
{
	if (uid == 0)
		return true;
	for (size_t i = 0; i < c->allowed_uids.n; i++)
		if (c->allowed_uids.v[i] == uid)
			return true;
	for (size_t i = 0; i < c->allowed_gids.n; i++)
		if (c->allowed_gids.v[i] == gid)
			return true;
	return false;
}

bool hpcn_config_mount_point_allowed(const struct hpcn_config *c, const char *mount_point)
{
	char norm[PATH_MAX];

	if (!mount_point || hpcn_path_normalize(mount_point, norm, sizeof(norm)) < 0)
		return false;
	return hpcn_strv_contains(&c->allowed_mount_points, norm);
}

bool hpcn_config_mount_point_creatable(const struct hpcn_config *c, const char *mount_point)
{
	char norm[PATH_MAX];

	if (!mount_point || hpcn_path_normalize(mount_point, norm, sizeof(norm)) < 0)
		return false;
	return hpcn_strv_contains(&c->allowed_mount_points, norm) &&
	       hpcn_strv_contains(&c->create_mount_points, norm);
}

bool hpcn_config_image_allowed(const struct hpcn_config *c, const char *image_path)
{
	char norm[PATH_MAX];

	if (!image_path || hpcn_path_normalize(image_path, norm, sizeof(norm)) < 0)
		return false;
	if (strcmp(norm, "/") == 0)
		return false;
	if (c->image_prefixes.n == 0)
		return true;
	for (size_t i = 0; i < c->image_prefixes.n; i++) {
		const char *pre = c->image_prefixes.v[i];

		/* Strictly below: the directory itself is no image. */
		if (strcmp(norm, pre) != 0 && hpcn_path_has_prefix(norm, pre))
			return true;
	}
	return false;
}

/* ---- reload ---- */

int hpcn_config_reload_merge(const struct hpcn_config *old, struct hpcn_config *next,
			     struct hpcn_strv *changed, struct hpcn_strv *refused)
{
	for (size_t i = 0; i < hpcn_config_nkeys; i++) {
		const struct key *k = &hpcn_config_keys[i];
		_cleanup_free_ char *vo = hpcn_config_value_string(old, k);
		_cleanup_free_ char *vn = hpcn_config_value_string(next, k);

		if (!vo || !vn) {
			errno = ENOMEM;
			return -1;
		}
		if (strcmp(vo, vn) == 0)
			continue;
		if (hpcn_strv_addf(changed, "%s.%s", k->section, k->name) < 0)
			return -1;
		if (!k->restart)
			continue;
		if (hpcn_strv_addf(refused, "%s.%s", k->section, k->name) < 0)
			return -1;
		/* Restart-only keys are scalars: a plain copy restores them. */
		memcpy(field(next, k), cfield(old, k), k->size);
	}
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup v2, workload side: root detection, open, hierarchy/slice/scope
 * creation, attach, removal, open_dir. Kill and destroy_scope are in
 * cgroup_kill.c; RI1 path checks, the no-symlink walk and the other file
 * operations in cgroup_fs.c, limits in cgroup_limits.c, metrics in
 * cgroup_metrics.c, the kernel's line formats in cgroup_format.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <hpcnode/constants.h>
#include <hpcnode/slice.h>

#include "cgroup.h"
#include "cgroup_fs.h"
#include "cgroup_internal.h"

/* ---- root detection ---- */

/* mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo. */
static void unescape_octal(char *s)
{
	char *w = s;

	for (char *r = s; *r; ) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

int hpcn_cgroup_detect_root_from(const char *mountinfo, char *out, size_t cap,
				 struct hpcn_error *err)
{
	FILE *f;
	char *line = NULL;
	size_t lcap = 0;
	char first[PATH_MAX] = "";
	bool have_v2_root = false, have_hybrid = false;
	const char *pick;

	f = fopen(mountinfo, "re");
	if (!f)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
					    "cannot open %s", mountinfo);
	while (getline(&line, &lcap, f) > 0) {
		char mp[PATH_MAX];
		char *sep = strstr(line, " - ");
		char *save = NULL, *tok;
		int field = 0;

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		mp[0] = '\0';
		for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
			if (++field == 5) {
				snprintf(mp, sizeof(mp), "%s", tok);
				break;
			}
		if (!mp[0])
			continue;
		unescape_octal(mp);
		if (strcmp(mp, HPCN_CGROUP2_ROOT) == 0)
			have_v2_root = true;
		else if (strcmp(mp, HPCN_CGROUP2_HYBRID_ROOT) == 0)
			have_hybrid = true;
		if (!first[0])
			memcpy(first, mp, sizeof(first));
	}
	free(line);
	fclose(f);
	if (have_v2_root)
		pick = HPCN_CGROUP2_ROOT;
	else if (have_hybrid)
		pick = HPCN_CGROUP2_HYBRID_ROOT;
	else if (first[0])
		pick = first;
	else
		return hpcn_error_setf(err, HPCN_E_CGROUP_IO, NULL,
				       "no cgroup2 mount in %s: the helper needs cgroup v2",
				       mountinfo);
	if (strlen(pick) >= cap)
		return hpcn_error_setf(err, HPCN_E_CGROUP_IO, NULL,
				       "cgroup2 mount point %s is too long", pick);
	memcpy(out, pick, strlen(pick) + 1);
	return 0;
}

int hpcn_cgroup_detect_root(char *out, size_t cap, struct hpcn_error *err)
{
	return hpcn_cgroup_detect_root_from("/proc/self/mountinfo", out, cap, err);
}

/* ---- open / close ---- */

int hpcn_cgroup_open(struct hpcn_cgroup *cg, const char *root, unsigned flags,
		     struct hpcn_error *err)
{
	size_t len;
	struct statfs sfs;

	memset(cg, 0, sizeof(*cg));
	cg->root_fd = -1;
	if (!root || root[0] != '/')
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "cgroup root '%s' is not an absolute path",
				       root ? root : "(null)");
	len = strlen(root);
	while (len > 1 && root[len - 1] == '/')
		len--;
	if (len >= sizeof(cg->root))
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "cgroup root '%s' is too long", root);
	memcpy(cg->root, root, len);
	cg->root[len] = '\0';
	snprintf(cg->sysfs_block, sizeof(cg->sysfs_block), "/sys/block");
	cg->flags = flags;

	cg->root_fd = open(cg->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cg->root_fd < 0)
		return hpcn_error_set_errno(err, errno == ENOENT ? HPCN_E_CGROUP_NOT_FOUND :
					    HPCN_E_CGROUP_IO, errno, NULL, "%s", cg->root);
	if (!(flags & HPCN_CGROUP_FAKE)) {
		if (fstatfs(cg->root_fd, &sfs) < 0) {
			hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
					     "statfs %s", cg->root);
			goto fail;
		}
		if (sfs.f_type != CGROUP2_SUPER_MAGIC) {
			hpcn_error_setf(err, HPCN_E_CGROUP_IO, NULL,
					"%s is not a cgroup v2 filesystem (f_type 0x%lx)",
					cg->root, (unsigned long)sfs.f_type);
			goto fail;
		}
	}
	cg->controllers = cg_read_controllers(cg->root_fd);
	return 0;
fail:
	hpcn_closep(&cg->root_fd);
	return -1;
}

void hpcn_cgroup_close(struct hpcn_cgroup *cg)
{
	if (!cg)
		return;
	hpcn_closep(&cg->root_fd);
}

/* ---- hierarchy ---- */

/*
 * mkdir parent/name as a cgroup (an existing one is fine: *created says
 * which) and return its O_PATH fd, opened without following a symlink.
 */
static int make_cgroup(const struct hpcn_cgroup *cg, int parentfd, const char *name,
		       const char *norm, bool *created, struct hpcn_error *err)
{
	_cleanup_close_ int fd = -1;

	*created = false;
	if (mkdirat(parentfd, name, 0755) == 0)
		*created = true;
	else if (errno != EEXIST)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_CREATION_FAILED, errno, NULL,
					    "mkdir %s/%s", cg->root, norm);
	fd = openat(parentfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
					       "cgroup path '%s' is a symlink or not a directory",
					       norm);
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_CREATION_FAILED, errno, NULL,
					    "open %s/%s", cg->root, norm);
	}
	if (*created && (cg->flags & HPCN_CGROUP_FAKE) && cg_fake_populate(parentfd, fd) < 0)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_CREATION_FAILED, errno, NULL,
					    "populating fake cgroup %s/%s", cg->root, norm);
	return hpcn_take_fd(&fd);
}

/* Enable in dirfd's subtree_control what it offers of mask and lacks. */
static int enable_controllers(const struct hpcn_cgroup *cg, int dirfd, const char *norm,
			      unsigned mask, struct hpcn_error *err)
{
	char sub[256], line[64];
	unsigned need;

	if (hpcn_read_file_at(dirfd, "cgroup.subtree_control", sub, sizeof(sub)) < 0)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_CREATION_FAILED, errno, NULL,
					    "read %s/%s%scgroup.subtree_control", cg->root,
					    norm, *norm ? "/" : "");
	need = mask & cg_read_controllers(dirfd) & ~hpcn_cgroup_parse_controllers(sub);
	if (!need)
		return 0;
	if (hpcn_cgroup_fmt_subtree_control(line, sizeof(line), need) < 0)
		return hpcn_error_set(err, HPCN_E_INTERNAL, "subtree_control line", NULL);
	if (cg_write(cg, dirfd, "cgroup.subtree_control", line) < 0)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_CREATION_FAILED, errno, NULL,
					    "writing '%s' to %s/%s%scgroup.subtree_control",
					    line, cg->root, norm, *norm ? "/" : "");
	return 0;
}

int hpcn_cgroup_create_hierarchy(struct hpcn_cgroup *cg, struct hpcn_strv *warnings,
				 struct hpcn_error *err)
{
	_cleanup_close_ int wfd = -1;
	unsigned avail = cg_read_controllers(cg->root_fd) & HPCN_CG_CTRL_ALL;
	bool created;

	for (unsigned bit = 1; bit & HPCN_CG_CTRL_ALL; bit <<= 1)
		if (!(avail & bit) &&
		    cg_warn(warnings, err, "cgroup controller '%s' is not available in cgroup "
			    "v2 at %s: %s limits cannot be applied", hpcn_cgroup_ctrl_name(bit),
			    cg->root, hpcn_cgroup_ctrl_name(bit)) < 0)
			return -1;
	/* Root first: the kernel gives workload.slice only what its parent
	 * enables for its children. */
	if (enable_controllers(cg, cg->root_fd, "", avail, err) < 0)
		return -1;
	wfd = make_cgroup(cg, cg->root_fd, HPCN_SLICE_WORKLOAD_ROOT, HPCN_SLICE_WORKLOAD_ROOT,
			  &created, err);
	if (wfd < 0)
		return -1;
	if (enable_controllers(cg, wfd, HPCN_SLICE_WORKLOAD_ROOT, avail, err) < 0)
		return -1;
	cg->controllers = cg_read_controllers(wfd) & HPCN_CG_CTRL_ALL;
	return 0;
}

/* ---- removal ---- */

int hpcn_cgroup_remove(struct hpcn_cgroup *cg, const char *path, struct hpcn_error *err)
{
	char norm[PATH_MAX], leaf[NAME_MAX + 1];
	_cleanup_close_ int pfd = -1;

	if (cg_check_path(cg, path, CG_WRITE_BELOW, norm, sizeof(norm), err) < 0)
		return -1;
	pfd = cg_walk_parent(cg, norm, leaf, err);
	if (pfd == CG_WALK_GONE)
		return 0;
	if (pfd < 0)
		return -1;
	return cg_remove_tree(cg, pfd, leaf, norm, 0, err);
}

/* ---- slices and scopes ---- */

static int create_child(struct hpcn_cgroup *cg, const char *parent, const char *name,
			const char *suffix, bool is_slice,
			const struct hpcn_resource_limits *lim, bool mandatory,
			char *path_out, size_t cap, struct hpcn_strv *warnings,
			struct hpcn_error *err)
{
	char pnorm[PATH_MAX], norm[PATH_MAX], leaf[NAME_MAX + 1];
	_cleanup_close_ int pfd = -1, fd = -1;
	bool created = false;

	if (cg_check_path(cg, parent, CG_WRITE, pnorm, sizeof(pnorm), err) < 0)
		return -1;
	if (hpcn_alloc_id_validate(name, err) < 0)
		return -1;
	if (hpcn_cgroup_validate_limits(lim, err) < 0)
		return -1;
	if ((size_t)snprintf(leaf, sizeof(leaf), "%s%s", name, suffix) >= sizeof(leaf) ||
	    (size_t)snprintf(norm, sizeof(norm), "%s/%s", pnorm, leaf) >= sizeof(norm))
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "cgroup path %s/%s%s is too long", pnorm, name, suffix);
	if (path_out && strlen(norm) >= cap)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "no room for cgroup path %s", norm);
	pfd = cg_walk(cg, pnorm, err);
	if (pfd < 0)
		return -1;
	fd = make_cgroup(cg, pfd, leaf, norm, &created, err);
	if (fd < 0)
		return -1;
	if (is_slice &&
	    enable_controllers(cg, fd, norm, HPCN_CG_CTRL_ALL, err) < 0)
		goto fail;
	if (cg_apply_limits_fd(cg, fd, norm, lim, mandatory, warnings, err) < 0)
		goto fail;
	if (path_out)
		memcpy(path_out, norm, strlen(norm) + 1);
	return 0;
fail:
	/* RI5 in spirit: leave nothing half made behind; the error stays. */
	if (created) {
		struct hpcn_error ignored;

		cg_remove_tree(cg, pfd, leaf, norm, 0, &ignored);
	}
	return -1;
}

int hpcn_cgroup_create_slice(struct hpcn_cgroup *cg, const char *parent, const char *name,
			     const struct hpcn_resource_limits *lim, bool limits_mandatory,
			     char *path_out, size_t cap, struct hpcn_strv *warnings,
			     struct hpcn_error *err)
{
	return create_child(cg, parent, name, ".slice", true, lim, limits_mandatory,
			    path_out, cap, warnings, err);
}

int hpcn_cgroup_create_scope(struct hpcn_cgroup *cg, const char *parent, const char *name,
			     const struct hpcn_resource_limits *lim, bool limits_mandatory,
			     char *path_out, size_t cap, struct hpcn_strv *warnings,
			     struct hpcn_error *err)
{
	return create_child(cg, parent, name, ".scope", false, lim, limits_mandatory,
			    path_out, cap, warnings, err);
}

int hpcn_cgroup_apply_limits(struct hpcn_cgroup *cg, const char *path,
			     const struct hpcn_resource_limits *lim, bool mandatory,
			     struct hpcn_strv *warnings, struct hpcn_error *err)
{
	char norm[PATH_MAX];
	_cleanup_close_ int fd = -1;

	if (cg_check_path(cg, path, CG_WRITE, norm, sizeof(norm), err) < 0)
		return -1;
	if (hpcn_cgroup_validate_limits(lim, err) < 0)
		return -1;
	fd = cg_walk(cg, norm, err);
	if (fd < 0)
		return -1;
	return cg_apply_limits_fd(cg, fd, norm, lim, mandatory, warnings, err);
}

int hpcn_cgroup_scope_path(const char *group, const char *alloc_id, char *out, size_t cap,
			   struct hpcn_error *err)
{
	int n;

	if (hpcn_alloc_id_validate(alloc_id, err) < 0)
		return -1;
	if (group && *group) {
		if (hpcn_alloc_id_validate(group, err) < 0)
			return -1;
		n = snprintf(out, cap, HPCN_SLICE_WORKLOAD_ROOT "/%s.slice/%s.scope",
			     group, alloc_id);
	} else {
		n = snprintf(out, cap, HPCN_SLICE_WORKLOAD_ROOT "/%s.scope", alloc_id);
	}
	if (n < 0 || (size_t)n >= cap)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "no room for the scope path of %s", alloc_id);
	return 0;
}

int hpcn_cgroup_group_slice_path(const char *group, char *out, size_t cap,
				 struct hpcn_error *err)
{
	int n;

	if (hpcn_alloc_id_validate(group, err) < 0)
		return -1;
	n = snprintf(out, cap, HPCN_SLICE_WORKLOAD_ROOT "/%s.slice", group);
	if (n < 0 || (size_t)n >= cap)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "no room for the slice path of %s", group);
	return 0;
}

/* ---- attach ---- */

int hpcn_cgroup_attach(struct hpcn_cgroup *cg, const char *path, pid_t pid,
		       struct hpcn_error *err)
{
	char norm[PATH_MAX], val[24];
	_cleanup_close_ int fd = -1;

	if (pid <= 0)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "pid %d cannot be attached", (int)pid);
	if (cg_check_path(cg, path, CG_WRITE_BELOW, norm, sizeof(norm), err) < 0)
		return -1;
	fd = cg_walk(cg, norm, err);
	if (fd < 0)
		return -1;
	snprintf(val, sizeof(val), "%d", (int)pid);
	if (cg_write(cg, fd, "cgroup.procs", val) < 0)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
					    "moving pid %d into %s", (int)pid, norm);
	return 0;
}

/* ---- reading ---- */

int hpcn_cgroup_open_dir(struct hpcn_cgroup *cg, const char *path, struct hpcn_error *err)
{
	char norm[PATH_MAX];
	_cleanup_close_ int fd = -1;
	int dfd;

	if (cg_check_path(cg, path, CG_READ, norm, sizeof(norm), err) < 0)
		return -1;
	fd = cg_walk(cg, norm, err);
	if (fd < 0)
		return -1;
	dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
					    "open %s/%s", cg->root, norm);
	return dfd;
}

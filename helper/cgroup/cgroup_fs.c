/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup v2, the file layer under cgroup.c, cgroup_kill.c, cgroup_limits.c
 * and cgroup_metrics.c: warnings, RI1 path checks, the no-symlink walk, writing
 * interface files, what a fake tree emulates of cgroupfs, recursive removal.
 * A leaf: of the folder it calls only cgroup_format.c's pure functions.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <hpcnode/slice.h>

#include "cgroup.h"
#include "cgroup_fs.h"

/* ---- warnings ---- */

int cg_warn(struct hpcn_strv *warnings, struct hpcn_error *err, const char *fmt, ...)
{
	char buf[HPCN_ERROR_MESSAGE_MAX];
	va_list ap;

	if (!warnings)
		return 0;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (hpcn_strv_addf(warnings, "%s", buf) < 0)
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, ENOMEM, NULL, "warning");
	return 0;
}

/* ---- RI1 ---- */

int cg_check_path(const struct hpcn_cgroup *cg, const char *path, enum cg_access acc,
		  char *norm, size_t cap, struct hpcn_error *err)
{
	enum hpcn_slice_owner owner = HPCN_OWNER_NONE;

	if (!path)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT, "no cgroup path given", NULL);
	if (hpcn_slice_owner_strict(cg->root, path, &owner, norm, cap) < 0) {
		if (errno == ENAMETOOLONG)
			return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
					       "cgroup path '%.256s' is too long", path);
		return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
				       "cgroup path '%.512s' is not inside the cgroup root %s",
				       path, cg->root);
	}
	if (acc == CG_READ)
		return 0;
	if (owner == HPCN_OWNER_PACT)
		return hpcn_error_set(err, HPCN_E_CGROUP_PERMISSION_DENIED, norm,
				      hpcn_slice_owner_name(HPCN_OWNER_PACT));
	if (owner != HPCN_OWNER_WORKLOAD)
		return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
				       "cgroup path '%.512s' is outside " HPCN_SLICE_WORKLOAD_ROOT
				       ", which is the only slice this helper writes (RI1)", path);
	if (acc == CG_WRITE_BELOW && strcmp(norm, HPCN_SLICE_WORKLOAD_ROOT) == 0)
		return hpcn_error_set(err, HPCN_E_DENIED,
				      "refusing to act on " HPCN_SLICE_WORKLOAD_ROOT
				      " itself: only the slices and scopes below it", NULL);
	return 0;
}

/* ---- the no-symlink walk ---- */

/* Walk the first len bytes of norm; messages name all of norm. */
static int walk_n(const struct hpcn_cgroup *cg, const char *norm, size_t len,
		  struct hpcn_error *err)
{
	_cleanup_close_ int fd = -1;
	struct stat rst, st;
	const char *p = norm, *end = norm + len;

	fd = openat(cg->root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &rst) < 0)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL, "%s", cg->root);
	while (p < end) {
		char comp[NAME_MAX + 1];
		size_t n = strcspn(p, "/");
		int nfd;

		if (n > (size_t)(end - p))
			n = (size_t)(end - p);

		if (n == 0 || n > NAME_MAX)
			return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
					       "bad component in cgroup path '%s'", norm);
		memcpy(comp, p, n);
		comp[n] = '\0';
		nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			int e = errno;

			if (e == ENOENT)
				return hpcn_error_set(err, HPCN_E_CGROUP_NOT_FOUND, norm, NULL);
			if (e == ELOOP || e == ENOTDIR)
				return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
						       "cgroup path '%s': component '%s' is a "
						       "symlink or not a directory", norm, comp);
			return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, e, NULL,
						    "open %s/%s", cg->root, norm);
		}
		hpcn_closep(&fd);
		fd = nfd;
		/* A bind mount on a cgroup directory could lead elsewhere. */
		if (fstat(fd, &st) < 0)
			return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
						    "stat %s/%s", cg->root, norm);
		if (st.st_dev != rst.st_dev)
			return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
					       "cgroup path '%s': component '%s' is on another "
					       "filesystem than %s", norm, comp, cg->root);
		p += n;
		if (p < end && *p == '/')
			p++;
	}
	return hpcn_take_fd(&fd);
}

int cg_walk(const struct hpcn_cgroup *cg, const char *norm, struct hpcn_error *err)
{
	return walk_n(cg, norm, strlen(norm), err);
}

/* Split norm into its parent (walked, fd returned) and its last component;
 * CG_WALK_GONE (err untouched) when a component of the parent is missing. */
int cg_walk_parent(const struct hpcn_cgroup *cg, const char *norm, char *leaf,
		   struct hpcn_error *err)
{
	struct hpcn_error e;
	int fd;

	const char *slash = strrchr(norm, '/');
	size_t plen = slash ? (size_t)(slash - norm) : 0;
	const char *l = slash ? slash + 1 : norm;

	if (strlen(l) > NAME_MAX || !*l)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "bad cgroup path '%s'", norm);
	memcpy(leaf, l, strlen(l) + 1);
	hpcn_error_clear(&e);
	fd = walk_n(cg, norm, plen, &e);
	if (fd >= 0)
		return fd;
	if (e.kind == HPCN_E_CGROUP_NOT_FOUND)
		return CG_WALK_GONE;
	if (err)
		*err = e;
	return -1;
}

/* ---- interface files ---- */

int cg_write(const struct hpcn_cgroup *cg, int dirfd, const char *name, const char *value)
{
	_cleanup_close_ int fd = -1;
	bool lines = strcmp(name, "io.max") == 0;
	char buf[512];
	size_t len;
	ssize_t n;

	if (!(cg->flags & HPCN_CGROUP_FAKE))
		return hpcn_write_file_at(dirfd, name, value);
	/* The fake keeps what the kernel would show: the last value, or one
	 * line per device for io.max. No O_CREAT: a missing file is ENOENT. */
	fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (lines ? O_APPEND : O_TRUNC));
	if (fd < 0)
		return -1;
	len = (size_t)snprintf(buf, sizeof(buf), "%s%s", value, lines ? "\n" : "");
	if (len >= sizeof(buf)) {
		errno = EINVAL;
		return -1;
	}
	n = write(fd, buf, len);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		errno = EIO;
		return -1;
	}
	return 0;
}

unsigned cg_read_controllers(int dirfd)
{
	char buf[1024];

	if (hpcn_read_file_at(dirfd, "cgroup.controllers", buf, sizeof(buf)) < 0)
		return 0;
	return hpcn_cgroup_parse_controllers(buf);
}

static int fake_file(int dirfd, const char *name, const char *content)
{
	_cleanup_close_ int fd = -1;
	size_t len = strlen(content);

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -1;
	if (len && write(fd, content, len) != (ssize_t)len)
		return -1;
	return 0;
}

/* What the kernel shows in a new cgroup: its controllers are those the
 * parent has and enables in its subtree_control. */
int cg_fake_populate(int parentfd, int dirfd)
{
	static const char psi[] =
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
		"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
	static const struct {
		unsigned ctrl;
		const char *name;
		const char *content;
	} files[] = {
		{ 0, "cgroup.subtree_control", "" },
		{ 0, "cgroup.procs", "" },
		{ 0, "cgroup.events", "populated 0\nfrozen 0\n" },
		{ 0, "cgroup.kill", "" },
		{ 0, "cgroup.freeze", "0\n" },
		{ 0, "cgroup.type", "domain\n" },
		{ 0, "cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n" },
		{ 0, "cpu.pressure", psi },
		{ 0, "memory.pressure", psi },
		{ 0, "io.pressure", psi },
		{ HPCN_CG_CTRL_MEMORY, "memory.current", "0\n" },
		{ HPCN_CG_CTRL_MEMORY, "memory.max", "max\n" },
		{ HPCN_CG_CTRL_MEMORY, "memory.swap.max", "max\n" },
		{ HPCN_CG_CTRL_CPU, "cpu.weight", "100\n" },
		{ HPCN_CG_CTRL_CPU, "cpu.max", "max 100000\n" },
		{ HPCN_CG_CTRL_IO, "io.max", "" },
		{ HPCN_CG_CTRL_PIDS, "pids.max", "max\n" },
		{ HPCN_CG_CTRL_PIDS, "pids.current", "0\n" },
	};
	/* The kernel lists controllers in its own order. */
	static const unsigned order[] = {
		HPCN_CG_CTRL_CPU, HPCN_CG_CTRL_IO, HPCN_CG_CTRL_MEMORY, HPCN_CG_CTRL_PIDS,
	};
	char sub[256], ctl[128] = "";
	unsigned mask;

	if (hpcn_read_file_at(parentfd, "cgroup.subtree_control", sub, sizeof(sub)) < 0)
		sub[0] = '\0';
	mask = cg_read_controllers(parentfd) & hpcn_cgroup_parse_controllers(sub);
	for (size_t i = 0; i < HPCN_ARRAY_SIZE(order); i++)
		if (mask & order[i]) {
			size_t l = strlen(ctl);

			snprintf(ctl + l, sizeof(ctl) - l, "%s%s", l ? " " : "",
				 hpcn_cgroup_ctrl_name(order[i]));
		}
	strcat(ctl, "\n");
	if (fake_file(dirfd, "cgroup.controllers", ctl) < 0)
		return -1;
	for (size_t i = 0; i < HPCN_ARRAY_SIZE(files); i++)
		if ((!files[i].ctrl || (mask & files[i].ctrl)) &&
		    fake_file(dirfd, files[i].name, files[i].content) < 0)
			return -1;
	return 0;
}

/* ---- removal ---- */

/* rmdir parentfd/name after its child cgroups, deepest first; in a fake tree
 * the interface files go first. ENOENT is success. */
int cg_remove_tree(const struct hpcn_cgroup *cg, int parentfd, const char *name,
		   const char *norm, int depth, struct hpcn_error *err)
{
	_cleanup_close_ int fd = -1;
	DIR *d;
	struct dirent *de;
	int rv = 0;

	if (depth > CG_MAX_DEPTH)
		return hpcn_error_setf(err, HPCN_E_CGROUP_IO, NULL,
				       "cgroup %s nests deeper than %d", norm, CG_MAX_DEPTH);
	fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR)
			return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
					       "cgroup path '%s' is a symlink or not a directory",
					       norm);
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
					    "open %s/%s", cg->root, norm);
	}
	d = fdopendir(fd);
	if (!d)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
					    "opendir %s/%s", cg->root, norm);
	fd = -1; /* owned by d now */
	while (rv == 0 && (errno = 0, de = readdir(d))) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			char sub[PATH_MAX];

			snprintf(sub, sizeof(sub), "%s/%s", norm, de->d_name);
			rv = cg_remove_tree(cg, dirfd(d), de->d_name, sub, depth + 1, err);
		} else if ((cg->flags & HPCN_CGROUP_FAKE) &&
			   unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
			rv = hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
						  "unlink %s/%s/%s", cg->root, norm, de->d_name);
		}
	}
	closedir(d);
	if (rv < 0)
		return rv;
	if (unlinkat(parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
					    "rmdir %s/%s%s", cg->root, norm,
					    errno == EBUSY ? " (still populated?)" : "");
	return 0;
}

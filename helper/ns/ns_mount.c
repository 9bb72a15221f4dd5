/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mounts inside an allocation's mount namespace. The helper never enters it
 * itself: a forked worker joins it, resolves the target without following
 * symlinks (a user of the allocation must not redirect a mount that root
 * makes), and moves in a tree that the parent cloned in its own namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ns.h"
#include "ns_internal.h"
#include "util.h"

struct mount_arg {
	int ns_fd;
	int tree_fd;       /* detached tree to move in */
	int proc_fd;       /* the helper's /proc */
	const char *target;
	bool create;
};

/*
 * Open target (absolute) as an O_PATH directory fd in the current mount
 * namespace, one component at a time with O_NOFOLLOW; create missing
 * components (0755) when create. -1 with errno (ELOOP for a symlink).
 */
static int resolve_target(const char *target, bool create, int *step)
{
	char comp[NAME_MAX + 1];
	const char *p = target;
	int dfd, e;

	*step = NS_STEP_RESOLVE_TARGET;
	dfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	for (;;) {
		const char *end;
		struct stat st;
		size_t n;
		int fd;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchrnul(p, '/');
		n = (size_t)(end - p);
		if (n > NAME_MAX) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
			errno = EINVAL;
			goto fail;
		}
		fd = openat(dfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && create) {
			*step = NS_STEP_CREATE_TARGET;
			if (mkdirat(dfd, comp, 0755) < 0 && errno != EEXIST)
				goto fail;
			*step = NS_STEP_RESOLVE_TARGET;
			fd = openat(dfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0) {
			if (errno == ENOTDIR &&
			    fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				errno = ELOOP;
			goto fail;
		}
		close(dfd);
		dfd = fd;
		p = end;
	}
	return dfd;
fail:
	e = errno;
	close(dfd);
	errno = e;
	return -1;
}

static int attach_fn(void *arg, int data_fd, int *step)
{
	const struct mount_arg *a = arg;
	int tfd;

	*step = NS_STEP_SETNS;
	if (setns(a->ns_fd, CLONE_NEWNS) < 0)
		return errno;
	/* Created points are for everyone to traverse, whatever our umask. */
	umask(022);
	tfd = resolve_target(a->target, a->create, step);
	if (tfd < 0)
		return errno;
	*step = NS_STEP_MOVE_MOUNT;
	if (move_mount(a->tree_fd, "", tfd, "",
		       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
		int e = errno;

		close(tfd);
		return e;
	}
	close(tfd);
	*step = NS_STEP_NONE;
	return 0;
}

static int check_mnt_ns_fd(int fd, const char *what, struct hpcn_error *err)
{
	int t = fd >= 0 ? ioctl(fd, NS_GET_NSTYPE) : -1;

	if (t != CLONE_NEWNS)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "%s: fd %d is not a mount namespace", what, fd);
	return 0;
}

static int check_target(const char *target, struct hpcn_error *err)
{
	if (!target || target[0] != '/' || strlen(target) >= PATH_MAX)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "mount target \"%s\" is not an absolute path",
				       target ? target : "(null)");
	return 0;
}

/* Run fn in a worker; on failure the message is "<prefix>: <step>: <errno>". */
static int run_worker(ns_worker_fn fn, struct mount_arg *a, enum hpcn_error_kind kind,
		      const char *f1, const char *prefix, struct hpcn_error *err)
{
	struct ns_worker w;
	struct ns_report rep;
	int rv = -1;

	if (ns_worker_start(&w, false, false, fn, a) < 0)
		return hpcn_error_set_errno(err, kind, errno, f1, "%s: fork", prefix);
	if (ns_worker_report(&w, &rep) < 0)
		hpcn_error_set_errno(err, kind, errno, f1, "%s: no report from the worker",
				     prefix);
	else if (rep.err)
		hpcn_error_set_errno(err, kind, rep.err, f1, "%s: %s", prefix,
				     ns_step_text(rep.step));
	else
		rv = 0;
	ns_worker_finish(&w);
	return rv;
}

static void mount_prefix(char *buf, size_t cap, const char *what, const char *alloc_id,
			 const char *target)
{
	int n = snprintf(buf, cap, "mount of %s at %s", what, target);

	if (alloc_id && n >= 0 && (size_t)n < cap)
		snprintf(buf + n, cap - (size_t)n, " in allocation %s", alloc_id);
}

/* Move the detached tree (consumed) to target inside mnt_ns_fd's namespace. */
static int attach_tree(int mnt_ns_fd, int tree_fd, const char *prefix, const char *target,
		       bool create_target, struct hpcn_error *err)
{
	struct mount_arg a = { .ns_fd = mnt_ns_fd, .tree_fd = tree_fd, .proc_fd = -1,
			       .target = target, .create = create_target };
	int rv = run_worker(attach_fn, &a, HPCN_E_NS_CREATION_FAILED, NULL, prefix, err);

	close(tree_fd);
	return rv;
}

int hpcn_ns_attach_mount_named(int mnt_ns_fd, int mnt_fd, const char *what,
			       const char *alloc_id, const char *target, bool create_target,
			       struct hpcn_error *err)
{
	char prefix[PATH_MAX + 160], fdname[32];
	int tree;

	if (check_target(target, err) < 0)
		return -1;
	if (!what) {
		snprintf(fdname, sizeof(fdname), "mount fd %d", mnt_fd);
		what = fdname;
	}
	mount_prefix(prefix, sizeof(prefix), what, alloc_id, target);
	if (check_mnt_ns_fd(mnt_ns_fd, prefix, err) < 0)
		return -1;
	/* The caller's fd stays detached and reusable: a clone is moved. */
	tree = open_tree(mnt_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
			 AT_RECURSIVE);
	if (tree < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "%s: cloning the mount", prefix);
	return attach_tree(mnt_ns_fd, tree, prefix, target, create_target, err);
}

int hpcn_ns_attach_mount(int mnt_ns_fd, int mnt_fd, const char *target, bool create_target,
			 struct hpcn_error *err)
{
	return hpcn_ns_attach_mount_named(mnt_ns_fd, mnt_fd, NULL, NULL, target,
					  create_target, err);
}

int hpcn_ns_bind_path_named(int mnt_ns_fd, const char *host_src, const char *alloc_id,
			    const char *target, bool create_target, struct hpcn_error *err)
{
	char prefix[2 * PATH_MAX + 160];
	int tree;

	if (check_target(target, err) < 0)
		return -1;
	if (!host_src || host_src[0] != '/')
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "bind source \"%s\" is not an absolute path",
				       host_src ? host_src : "(null)");
	mount_prefix(prefix, sizeof(prefix), host_src, alloc_id, target);
	if (check_mnt_ns_fd(mnt_ns_fd, prefix, err) < 0)
		return -1;
	tree = open_tree(AT_FDCWD, host_src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (tree < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "%s: open_tree", prefix);
	return attach_tree(mnt_ns_fd, tree, prefix, target, create_target, err);
}

int hpcn_ns_bind_path(int mnt_ns_fd, const char *host_src, const char *target,
		      bool create_target, struct hpcn_error *err)
{
	return hpcn_ns_bind_path_named(mnt_ns_fd, host_src, NULL, target, create_target, err);
}

static int detach_fn(void *arg, int data_fd, int *step)
{
	const struct mount_arg *a = arg;
	struct statx stx;
	int tfd;

	*step = NS_STEP_SETNS;
	if (setns(a->ns_fd, CLONE_NEWNS) < 0)
		return errno;
	tfd = resolve_target(a->target, false, step);
	if (tfd < 0)
		return errno;
	*step = NS_STEP_NOT_MOUNT_POINT;
	if (statx(tfd, "", AT_EMPTY_PATH, 0, &stx) < 0) {
		int e = errno;

		close(tfd);
		return e;
	}
	close(tfd);
	if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		return EINVAL;
	*step = NS_STEP_UMOUNT;
	if (umount2(a->target, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
		return errno;
	*step = NS_STEP_NONE;
	return 0;
}

int hpcn_ns_detach_mount(int mnt_ns_fd, const char *target, struct hpcn_error *err)
{
	struct mount_arg a = { .ns_fd = mnt_ns_fd, .tree_fd = -1, .proc_fd = -1,
			       .target = target, .create = false };

	if (check_target(target, err) < 0)
		return -1;
	if (check_mnt_ns_fd(mnt_ns_fd, target, err) < 0)
		return -1;
	return run_worker(detach_fn, &a, HPCN_E_UNMOUNT_FAILED, target,
			  "inside the mount namespace", err);
}

static int mountinfo_fn(void *arg, int data_fd, int *step)
{
	const struct mount_arg *a = arg;
	char buf[16384];
	int fd;

	*step = NS_STEP_SETNS;
	if (setns(a->ns_fd, CLONE_NEWNS) < 0)
		return errno;
	/* Opened after setns, through the helper's /proc: the file shows the
	 * namespace (and root) we are in now, whether or not it has a /proc. */
	*step = NS_STEP_READ_MOUNTINFO;
	fd = openat(a->proc_fd, "self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		const char *p = buf;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0)
			break;
		while (n > 0) {
			ssize_t w = write(data_fd, p, (size_t)n);

			if (w < 0) {
				if (errno == EINTR)
					continue;
				goto fail;
			}
			p += w;
			n -= w;
		}
	}
	close(fd);
	*step = NS_STEP_NONE;
	return 0;
fail:
	{
		int e = errno;

		close(fd);
		return e;
	}
}

int hpcn_ns_read_mountinfo(int mnt_ns_fd, char **text, size_t *len, struct hpcn_error *err)
{
	_cleanup_close_ int proc_fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct mount_arg a = { .ns_fd = mnt_ns_fd, .tree_fd = -1, .target = NULL };
	struct ns_worker w;
	struct ns_report rep;
	size_t n = 0;
	int rv = -1;

	if (!text)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT, "no output buffer", NULL);
	*text = NULL;
	if (len)
		*len = 0;
	if (check_mnt_ns_fd(mnt_ns_fd, "reading mountinfo", err) < 0)
		return -1;
	proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (proc_fd < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_IO, errno, NULL, "opening /proc");
	a.proc_fd = proc_fd;
	if (ns_worker_start(&w, false, true, mountinfo_fn, &a) < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_IO, errno, NULL,
					    "reading mountinfo in a mount namespace: fork");
	if (ns_worker_read_data(&w, HPCN_NS_MOUNTINFO_MAX, &buf, &n) < 0) {
		hpcn_error_set_errno(err, HPCN_E_MOUNT_IO, errno, NULL,
				     "reading mountinfo in a mount namespace");
		goto out;
	}
	if (ns_worker_report(&w, &rep) < 0) {
		hpcn_error_set_errno(err, HPCN_E_MOUNT_IO, errno, NULL,
				     "reading mountinfo in a mount namespace: no report");
		goto out;
	}
	if (rep.err) {
		hpcn_error_set_errno(err, HPCN_E_MOUNT_IO, rep.err, NULL,
				     "reading mountinfo in a mount namespace: %s",
				     ns_step_text(rep.step));
		goto out;
	}
	*text = buf;
	buf = NULL;
	if (len)
		*len = n;
	rv = 0;
out:
	ns_worker_finish(&w);
	return rv;
}

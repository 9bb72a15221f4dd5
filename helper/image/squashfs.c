/* SPDX-License-Identifier: Apache-2.0 */
/* squashfs mounts of loop devices, and the mount/unmount of one uenv image. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "image.h"
#include "util.h"

#define MOUNT_ATTRS (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
#define LEGACY_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV)
/* The kernel's fs context messages, e.g. "e squashfs: ...": a few suffice. */
#define FSCTX_MSGS 4

/* Append the fs context's messages (the kernel's precise reason) to buf. */
static void fsctx_messages(int fsfd, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < FSCTX_MSGS; i++) {
		char m[256];
		ssize_t n = read(fsfd, m, sizeof(m) - 1);

		if (n <= 0)
			break;
		m[n] = '\0';
		if (n > 0 && m[n - 1] == '\n')
			m[n - 1] = '\0';
		/* "e ", "w ", "i " prefixes: severity; keep the text. */
		len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? "; " : " (",
					(m[0] && m[1] == ' ') ? m + 2 : m);
		if (len >= cap - 2)
			return;
	}
	if (len)
		snprintf(buf + len, cap - len, ")");
}

static int loop_rdev(int loop_fd, const char *dev_path, dev_t *rdev, struct hpcn_error *err)
{
	struct stat st;

	if (fstat(loop_fd, &st) < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, dev_path, "fstat");
	if (!S_ISBLK(st.st_mode))
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, dev_path,
				       "descriptor is not a block device");
	*rdev = st.st_rdev;
	return 0;
}

/* The mounted root (fd) must live on the loop device we hold. */
static int check_same_device(int root_fd, dev_t rdev, const char *dev_path,
			     struct hpcn_error *err)
{
	struct stat st;

	if (fstat(root_fd, &st) < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, dev_path,
					    "fstat of the new mount");
	if (st.st_dev != rdev)
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, dev_path,
				       "the new mount is not on the loop device held "
				       "(%u:%u instead of %u:%u)", major(st.st_dev),
				       minor(st.st_dev), major(rdev), minor(rdev));
	return 0;
}

/* Returns 0, or -1; *enosys tells the fallback case apart. */
static int fsmount_detached(int loop_fd, const char *dev_path, int *mnt_fd, bool *enosys,
			    struct hpcn_error *err)
{
	_cleanup_close_ int fsfd = -1, mfd = -1;
	char kmsg[512];
	dev_t rdev;

	*mnt_fd = -1;
	*enosys = false;
	if (!dev_path || dev_path[0] != '/')
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "loop device path must be absolute: %s",
				       dev_path ? dev_path : "(null)");
	if (loop_rdev(loop_fd, dev_path, &rdev, err) < 0)
		return -1;
	fsfd = fsopen(HPCN_MOUNT_FSTYPE, FSOPEN_CLOEXEC);
	if (fsfd < 0) {
		*enosys = errno == ENOSYS;
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, dev_path,
					    "fsopen(\"" HPCN_MOUNT_FSTYPE "\")");
	}
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "source", dev_path, 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int e = errno;

		fsctx_messages(fsfd, kmsg, sizeof(kmsg));
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, e, dev_path,
					    "creating the squashfs superblock%s", kmsg);
	}
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTRS);
	if (mfd < 0) {
		int e = errno;

		fsctx_messages(fsfd, kmsg, sizeof(kmsg));
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, e, dev_path,
					    "fsmount%s", kmsg);
	}
	if (check_same_device(mfd, rdev, dev_path, err) < 0)
		return -1;
	*mnt_fd = hpcn_take_fd(&mfd);
	return 0;
}

int hpcn_squashfs_fsmount(int loop_fd, const char *dev_path, int *mnt_fd,
			  struct hpcn_error *err)
{
	bool enosys;

	return fsmount_detached(loop_fd, dev_path, mnt_fd, &enosys, err);
}

static int open_target(const char *target, const char *dev_path, struct hpcn_error *err)
{
	int fd;

	if (!target || target[0] != '/')
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "mount target must be absolute: %s",
				       target ? target : "(null)");
	fd = open(target, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, dev_path,
					    "mount target %s", target);
	return fd;
}

/* mount(2) onto the directory tfd refers to (through its /proc magic link, so
 * the path is not resolved again). */
static int legacy_mount_at(int loop_fd, const char *dev_path, int tfd, const char *target,
			   struct hpcn_error *err)
{
	_cleanup_close_ int root = -1;
	char fdpath[64];
	dev_t rdev;

	if (loop_rdev(loop_fd, dev_path, &rdev, err) < 0)
		return -1;
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", tfd);
	if (mount(dev_path, fdpath, HPCN_MOUNT_FSTYPE, LEGACY_FLAGS, NULL) < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, dev_path,
					    "mount on %s", target);
	root = open(target, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0) {
		int e = errno;

		(void)umount2(fdpath, MNT_DETACH);
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, e, dev_path,
					    "reopening %s after the mount", target);
	}
	if (check_same_device(root, rdev, dev_path, err) < 0) {
		(void)umount2(fdpath, MNT_DETACH);
		return -1;
	}
	return 0;
}

static int mount_at(int loop_fd, const char *dev_path, int tfd, const char *target,
		    struct hpcn_error *err)
{
	_cleanup_close_ int mfd = -1;
	bool enosys;

	if (fsmount_detached(loop_fd, dev_path, &mfd, &enosys, err) < 0) {
		if (!enosys)
			return -1;
		return legacy_mount_at(loop_fd, dev_path, tfd, target, err);
	}
	if (move_mount(mfd, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, dev_path,
					    "move_mount onto %s", target);
	return 0;
}

int hpcn_squashfs_mount(int loop_fd, const char *dev_path, const char *target,
			struct hpcn_error *err)
{
	_cleanup_close_ int tfd = open_target(target, dev_path, err);

	if (tfd < 0)
		return -1;
	return mount_at(loop_fd, dev_path, tfd, target, err);
}

int hpcn_squashfs_mount_legacy(int loop_fd, const char *dev_path, const char *target,
			       struct hpcn_error *err)
{
	_cleanup_close_ int tfd = open_target(target, dev_path, err);

	if (tfd < 0)
		return -1;
	return legacy_mount_at(loop_fd, dev_path, tfd, target, err);
}

int hpcn_squashfs_unmount(const char *target, bool detach, struct hpcn_error *err)
{
	int e;

	if (!target || target[0] != '/')
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "mount point must be absolute: %s",
				       target ? target : "(null)");
	if (umount2(target, UMOUNT_NOFOLLOW | (detach ? MNT_DETACH : 0)) == 0)
		return 0;
	e = errno;
	switch (e) {
	case EINVAL:
		hpcn_error_setf(err, HPCN_E_UNMOUNT_FAILED, target, "not a mount point");
		break;
	case ENOENT:
		hpcn_error_setf(err, HPCN_E_UNMOUNT_FAILED, target, "no such directory");
		break;
	case EBUSY:
		hpcn_error_setf(err, HPCN_E_UNMOUNT_FAILED, target,
				"mount point is busy (files open or processes inside)");
		break;
	default:
		return hpcn_error_set_errno(err, HPCN_E_UNMOUNT_FAILED, e, target, "umount2");
	}
	if (err)
		err->sys_errno = e;
	return -1;
}

/*
 * The mount base, made private: the images are opened as the job's user so
 * that only images the user may read are mounted, but their node-wide mounts
 * below the base would otherwise let every local user read them (keys are
 * listed in /proc/self/mountinfo). Jobs reach their images through the bind
 * in their own namespace, never through the base, so root-only 0700 costs
 * nothing. A symlinked or foreign-owned base is refused.
 */
static int open_private_base(const char *b, const char *image_path, struct stat *st,
			     struct hpcn_error *err)
{
	int fd = open(b, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, image_path,
					     "mount base %s is not a directory (a symlink?)", b);
		else
			hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, image_path,
					     "mount base %s", b);
		return -1;
	}
	if (fstat(fd, st) < 0) {
		hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, image_path,
				     "mount base %s", b);
		goto fail;
	}
	if (st->st_uid != geteuid()) {
		hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, image_path,
				"mount base %s is owned by uid %u, not by the helper (uid %u)", b,
				(unsigned)st->st_uid, (unsigned)geteuid());
		goto fail;
	}
	if ((st->st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0) {
		hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, image_path,
				     "making mount base %s private (mode 0700)", b);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int hpcn_uenv_mount_image(const char *base, int image_fd, const char *image_path,
			  const struct hpcn_image_id *id, char *mount_point, size_t cap,
			  struct hpcn_error *err)
{
	_cleanup_close_ int basefd = -1, tfd = -1, loop_fd = -1;
	struct hpcn_image_id now;
	char key[HPCN_IMAGE_KEY_MAX], dev[32], mp[PATH_MAX], b[PATH_MAX];
	struct stat bst, kst;
	bool made_dir = false;
	size_t blen;
	int rv = -1;

	if (!image_path)
		image_path = "<image fd>";
	if (!base || base[0] != '/' || (blen = strlen(base)) >= sizeof(b))
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "mount base must be an absolute path: %s",
				       base ? base : "(null)");
	memcpy(b, base, blen + 1);
	while (blen > 1 && b[blen - 1] == '/')
		b[--blen] = '\0';
	if (!id || hpcn_image_id_key(id, key, sizeof(key)) < 0)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "invalid image identity for %s", image_path);
	/* The key names the content: a file changed since it was checked must
	 * not be mounted under the old name. */
	if (hpcn_image_id_from_fd(image_fd, &now) < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, image_path,
					    "fstat of the image descriptor");
	if (!hpcn_image_id_equal(id, &now))
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, image_path,
				       "image changed since it was checked");
	if ((size_t)snprintf(mp, sizeof(mp), "%s/%s", blen == 1 ? "" : b, key) >= sizeof(mp) ||
	    strlen(mp) >= cap)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "mount point path too long under %s", b);

	if (hpcn_mkdir_p(b, 0755) < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, image_path,
					    "creating mount base %s", b);
	basefd = open_private_base(b, image_path, &bst, err);
	if (basefd < 0)
		return -1;
	if (mkdirat(basefd, key, 0755) == 0) {
		made_dir = true;
	} else if (errno != EEXIST) {
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, image_path,
					    "creating %s", mp);
	} else {
		if (fstatat(basefd, key, &kst, AT_SYMLINK_NOFOLLOW) < 0)
			return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, image_path,
						    "%s", mp);
		if (!S_ISDIR(kst.st_mode))
			return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, image_path,
					       "%s exists and is not a directory", mp);
		if (kst.st_dev != bst.st_dev) {
			hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, image_path,
					"already mounted at %s", mp);
			if (err)
				err->sys_errno = EEXIST;
			return -1;
		}
		/* An empty leftover of a crash: ours, reuse it, remove it on failure. */
		made_dir = true;
	}
	tfd = openat(basefd, key, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tfd < 0) {
		hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, image_path, "opening %s", mp);
		goto fail;
	}
	if (hpcn_loop_attach(image_fd, image_path, &loop_fd, dev, sizeof(dev), err) < 0)
		goto fail;
	if (mount_at(loop_fd, dev, tfd, mp, err) < 0) {
		/* Name the image, keep the reason (which names the device). */
		if (err && err->kind == HPCN_E_MOUNT_FAILED) {
			char reason[HPCN_ERROR_MESSAGE_MAX + 64];
			const char *r = strstr(err->message, ": ");
			int e = err->sys_errno;

			snprintf(reason, sizeof(reason), "%s: %s", dev, r ? r + 2 : err->message);
			hpcn_error_set(err, HPCN_E_MOUNT_FAILED, image_path, reason);
			err->sys_errno = e;
		}
		goto fail;
	}
	snprintf(mount_point, cap, "%s", mp);
	rv = 0;
	/* loop_fd closes here: from now on the mount alone keeps the device. */
	return rv;
fail:
	hpcn_closep(&loop_fd); /* AUTOCLEAR: the device detaches now */
	hpcn_closep(&tfd);
	if (made_dir)
		(void)unlinkat(basefd, key, AT_REMOVEDIR);
	return rv;
}

static int unmount_image(const char *mount_point, bool detach, struct hpcn_error *err)
{
	struct hpcn_error e = { .kind = HPCN_E_NONE };
	int rv = 0;

	if (hpcn_squashfs_unmount(mount_point, detach, &e) < 0) {
		if (e.sys_errno != EINVAL)
			goto out;
		rv = -1; /* not mounted: still remove the directory */
	}
	/* Keep the first error when there was one. */
	if (rmdir(mount_point) < 0 && rv == 0)
		hpcn_error_set_errno(&e, HPCN_E_UNMOUNT_FAILED, errno, mount_point, "rmdir");
out:
	if (e.kind == HPCN_E_NONE)
		return 0;
	if (err)
		*err = e;
	return -1;
}

int hpcn_uenv_unmount_image(const char *mount_point, struct hpcn_error *err)
{
	return unmount_image(mount_point, false, err);
}

int hpcn_uenv_force_unmount_image(const char *mount_point, struct hpcn_error *err)
{
	return unmount_image(mount_point, true, err);
}

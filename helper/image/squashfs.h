/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mounting a squashfs loop device read-only, nosuid, nodev. Not noexec:
 * users run the programs of their images.
 *
 * The new mount API (fsopen/fsconfig/fsmount/move_mount) is preferred: the
 * mount is built detached and only then attached, and a detached mount fd can
 * be cloned into other namespaces. mount(2) is the fallback where fsopen is
 * ENOSYS (and available directly, for tests and for callers who want it).
 *
 * Every mount is checked afterwards: its superblock must be the loop device we
 * hold (st_dev of the mount == st_rdev of loop_fd), so a path that named
 * another device by then cannot slip in.
 */
#ifndef HPCN_HELPER_SQUASHFS_H
#define HPCN_HELPER_SQUASHFS_H

#include <stdbool.h>
#include <stddef.h>

#include <hpcnode/error.h>

struct hpcn_image_id;

#define HPCN_MOUNT_FSTYPE "squashfs"

/*
 * Build a detached squashfs mount of dev_path (the device loop_fd is open
 * on): fsopen("squashfs"), source=dev_path, ro, FSCONFIG_CMD_CREATE, fsmount
 * with MOUNT_ATTR_RDONLY|NOSUID|NODEV. *mnt_fd is O_CLOEXEC; attach it with
 * move_mount(), clone it with open_tree(OPEN_TREE_CLONE), or close it (the
 * mount goes away, and with it the loop device's last user).
 * Errors: MountError MountFailed for dev_path, with the kernel's own message
 * from the fs context when it gave one; sys_errno ENOSYS when the kernel has
 * no new mount API (< 5.2).
 */
int hpcn_squashfs_fsmount(int loop_fd, const char *dev_path, int *mnt_fd,
			  struct hpcn_error *err);

/*
 * Mount on target (an existing directory; the last component must not be a
 * symlink): hpcn_squashfs_fsmount() + move_mount(), or mount(2) when the new
 * API is ENOSYS. loop_fd is not consumed. 0 or -1 (MountFailed for dev_path).
 */
int hpcn_squashfs_mount(int loop_fd, const char *dev_path, const char *target,
			struct hpcn_error *err);

/* The mount(2) path alone (MS_RDONLY|MS_NOSUID|MS_NODEV), same checks. */
int hpcn_squashfs_mount_legacy(int loop_fd, const char *dev_path, const char *target,
			       struct hpcn_error *err);

/*
 * umount2(target, UMOUNT_NOFOLLOW [| MNT_DETACH]). Errors are MountError
 * UnmountFailed for target, and err->sys_errno tells them apart:
 *   EINVAL "not a mount point", ENOENT "no such directory",
 *   EBUSY "mount point is busy (files open or processes inside)", others.
 */
int hpcn_squashfs_unmount(const char *target, bool detach, struct hpcn_error *err);

/*
 * The MountManager's one call: mkdir base/<key> (0755; base is created with
 * mkdir -p when missing, an empty leftover <key> directory is reused), attach
 * image_fd to a loop device, mount it there, close the loop fd (AUTOCLEAR
 * keeps the device exactly as long as the mount). id must be the identity of
 * image_fd now (it is re-checked: a file modified since is refused). On any
 * failure everything is undone: no directory, no loop device, no mount left.
 * mount_point receives "base/<key>".
 * Errors: InvalidArgument (base not absolute, bad id), MountFailed for
 * image_path (EEXIST: the key is already mounted there; ENOTDIR: base is not
 * a directory; loop and mount errors as above).
 */
int hpcn_uenv_mount_image(const char *base, int image_fd, const char *image_path,
			  const struct hpcn_image_id *id, char *mount_point, size_t cap,
			  struct hpcn_error *err);

/*
 * Unmount (no MNT_DETACH) and rmdir. When the directory was not mounted
 * (sys_errno EINVAL) it is still removed, and -1 is returned so the caller
 * learns the table had drifted. EBUSY leaves both in place.
 */
int hpcn_uenv_unmount_image(const char *mount_point, struct hpcn_error *err);

/* Emergency variant (force_unmount): MNT_DETACH, then rmdir. The loop device
 * goes once the last open file of the image is closed. */
int hpcn_uenv_force_unmount_image(const char *mount_point, struct hpcn_error *err);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uenv images: opening them safely and naming them.
 *
 * An image path comes from a user. Resolving it as root would let the user
 * point us at files only root can read, or swap a symlink between our check
 * and our open (GHSA-qq4x-vfq4-9h9g). So the path is opened once, with the
 * user's credentials, and only that fd is used afterwards: it is checked
 * (regular file, squashfs superblock), named by its identity (device, inode,
 * size, mtime: never the path) and handed to the loop device.
 *
 * No global state, no logging: every failure fills a struct hpcn_error.
 */
#ifndef HPCN_HELPER_IMAGE_H
#define HPCN_HELPER_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <sys/types.h>

#include <hpcnode/error.h>

/* What makes two images "the same image" for sharing one mount. */
struct hpcn_image_id {
	uint64_t dev;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_sec;
	int64_t mtime_nsec;
};

/* Size of the squashfs 4.0 superblock; smaller files are rejected. */
#define HPCN_SQUASHFS_SUPERBLOCK_SIZE 96
/* The child that opens as the user is given this long (a hung NFS server
 * must not hang the helper); then it is killed. */
#define HPCN_IMAGE_OPEN_TIMEOUT_MS 10000
/* Longest key, with its NUL: 4 x 16 + 8 hex digits, 3 '-' and a '.'. */
#define HPCN_IMAGE_KEY_MAX 80

/*
 * Open the absolute path as uid/gid: a forked child (which never execs) takes
 * the user's supplementary groups (getgrouplist of the user's passwd name, or
 * only gid when uid has no passwd entry), gid and uid, and opens the path with
 * O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_NOCTTY|O_NONBLOCK (a FIFO must not block
 * us; O_NONBLOCK is cleared on the result). The fd comes back over a socketpair
 * (SCM_RIGHTS) and is checked as hpcn_image_check_fd() does.
 *
 * When the caller is not root, only its own uid can be used.
 *
 * Returns 0 with *fd_out (O_CLOEXEC, read-only) and *id (may be NULL) set, or
 * -1 with err filled:
 *   RequestError InvalidArgument: path NULL, empty or relative.
 *   MountError MountFailed {path}: reason, one of
 *     "not readable by user NAME (uid N)"  (EACCES/EPERM from the open)
 *     "no such file"                       (ENOENT)
 *     "is a symbolic link"                 (ELOOP: the last component)
 *     "a path component is not a directory" (ENOTDIR)
 *     "not a regular file", "file too small (N bytes)",
 *     "not a squashfs image (bad magic)", "unsupported squashfs version M.N",
 *     "truncated image (...)", or a system error with its strerror.
 *   err->sys_errno carries the errno where there is one.
 */
int hpcn_image_open_as_user(const char *path, uid_t uid, gid_t gid, int *fd_out,
			    struct hpcn_image_id *id, struct hpcn_error *err);

/*
 * Check an fd that a client opened and passed (or that open_as_user got):
 * its access mode allows reading (not O_WRONLY, not O_PATH), it is a regular
 * file, at least a superblock long, with the squashfs magic "hsqs" at offset
 * 0, major version 4, and not shorter than the superblock's bytes_used.
 * path_for_messages only names the image in errors (may be NULL: "<fd N>").
 * Fills *id (may be NULL). Returns 0 or -1 (MountError MountFailed).
 */
int hpcn_image_check_fd(int fd, const char *path_for_messages, struct hpcn_image_id *id,
			struct hpcn_error *err);

/* Identity of an open file (fstat), without the squashfs checks. 0 / -1 errno. */
int hpcn_image_id_from_fd(int fd, struct hpcn_image_id *id);

/*
 * The image's key, a directory name made only of [0-9a-f.-]:
 *   "<dev>-<ino>-<size>-<mtime_sec>.<mtime_nsec>"
 * each field lowercase hex without leading zeros ("0" for zero); mtime_sec is
 * written as its 64-bit two's complement (dates before 1970). Requires
 * 0 <= mtime_nsec < 1e9. Returns the length, or -1 (EINVAL bad id, ERANGE cap
 * too small; HPCN_IMAGE_KEY_MAX is always enough).
 */
int hpcn_image_id_key(const struct hpcn_image_id *id, char *out, size_t cap);

/* The reverse, strict: 0 only for a string that hpcn_image_id_key() could
 * have produced (so key == key(parse(key))); -1 for anything else. */
int hpcn_image_id_from_key(const char *key, struct hpcn_image_id *id);

bool hpcn_image_id_equal(const struct hpcn_image_id *a, const struct hpcn_image_id *b);

/* ===================================================================== */

/*
 * Loop devices for uenv images, through the kernel's ioctls (no losetup, no
 * libmount: libmount scans every loop device per call, which does not scale,
 * and >= 2.42 refuses setuid callers).
 *
 * A device is configured read-only with LO_FLAGS_AUTOCLEAR: it detaches
 * itself when its last user goes (our fd, then the mount), so a crashed
 * helper leaks no device.
 */

/* LOOP_CTL_GET_FREE + LOOP_CONFIGURE attempts: a free device is not reserved,
 * another process may take it between the two calls (EBUSY). */
#define HPCN_LOOP_ATTACH_TRIES 16

/*
 * Attach image_fd (any readable regular file fd; not consumed) to a free loop
 * device: LOOP_CTL_GET_FREE on /dev/loop-control, open /dev/loopN (created
 * with mknod from /sys/block/loopN/dev when there is no udev/devtmpfs to make
 * it), one LOOP_CONFIGURE with LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR.
 * EBUSY and EAGAIN are retried up to HPCN_LOOP_ATTACH_TRIES times with a short
 * backoff (1, 2, 4 .. 32 ms).
 *
 * Returns 0 with *loop_fd (O_RDWR|O_CLOEXEC; closing it detaches the device
 * unless something else, e.g. a mount, still uses it) and dev_path
 * ("/dev/loopN") set, or -1 with MountError MountFailed for
 * image_path_for_messages (may be NULL) naming the device and the cause.
 * When the kernel has no loop device to give (LOOP_CTL_GET_FREE fails with
 * ENOSPC, ENODEV or ENXIO, or every device it offers stays busy),
 * err->sys_errno is ENOSPC (what the kernel said is in the message): the
 * caller may free one and retry. Other failures keep their errno.
 */
int hpcn_loop_attach(int image_fd, const char *image_path_for_messages, int *loop_fd,
		     char *dev_path, size_t cap, struct hpcn_error *err);

/*
 * The backing file of loop device dev_name ("loop3", also "/dev/loop3"), as
 * /sys/block/loopN/loop/backing_file reports it (newline stripped; the
 * kernel appends " (deleted)" to unlinked files). Returns 0, or -1 with errno
 * (ENOENT: no such device or not attached; EINVAL: not a loop device name;
 * ERANGE: cap too small).
 */
int hpcn_loop_backing(const char *dev_name, char *file, size_t cap);

/* ===================================================================== */

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

/* ===================================================================== */

/*
 * A parser of /proc/<pid>/mountinfo (proc(5)):
 *
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
 *
 * The kernel's mount table is the truth the MountManager reconstructs from
 * after a restart, so the parser is strict where a mistake would mislead
 * (numbers, the "-" separator, exactly three fields after it) and never
 * crashes on garbage: lines are bounded, a malformed line stops the parse with
 * an error naming its number. It works on a buffer (for tests and fuzzing) or
 * a file, and calls back once per mount; no allocation per line, no state.
 */

/* Longest line accepted: 3 paths of PATH_MAX, each escaped up to 4x, and
 * options, fit comfortably. */
#define HPCN_MOUNTINFO_LINE_MAX 65536
/* Fields in one line (optional fields included). */
#define HPCN_MOUNTINFO_FIELDS_MAX 64
/* Largest mountinfo file read (a node with ~100k mounts). */
#define HPCN_MOUNTINFO_FILE_MAX (64u << 20)

/*
 * One mount. Strings point into the parser's line buffer and are valid only
 * during the callback. Paths and names are decoded (the kernel's octal
 * escapes \040 space, \011 tab, \012 newline, \134 backslash, and any other
 * \ooo but \000); options are kept raw, because a decoded "\054" would be
 * indistinguishable from the comma that separates options. A backslash not
 * followed by three octal digits is kept as it is.
 */
struct hpcn_mountinfo_entry {
	unsigned int line;          /* 1-based line number */
	int mount_id;
	int parent_id;
	unsigned int major;         /* st_dev of the mount's superblock */
	unsigned int minor;
	const char *root;           /* root of the mount within its filesystem */
	const char *mount_point;    /* relative to the reading process's root */
	const char *mount_options;  /* per-mount, raw: "ro,nosuid,nodev,relatime" */
	const char *optional;       /* raw optional fields, space-separated; "" if none */
	int shared;                 /* shared:N peer group, 0 when absent */
	int master;                 /* master:N, 0 when absent */
	int propagate_from;         /* propagate_from:N, 0 when absent */
	bool unbindable;
	const char *fstype;         /* "squashfs", "fuse.sshfs" */
	const char *source;         /* "/dev/loop3", "none"; may be "" */
	const char *super_options;  /* per-superblock, raw */
};

/* Return 0 to go on, > 0 to stop the parse (which then returns that value),
 * < 0 to abort it (the parse returns -1; fill err yourself through ud). */
typedef int (*hpcn_mountinfo_cb)(const struct hpcn_mountinfo_entry *e, void *ud);

/*
 * Parse one line in place (no newline; NUL-terminated; lineno for messages).
 * 0, or -1 with MountError Io "mountinfo line N: ...".
 */
int hpcn_mountinfo_parse_line(char *line, unsigned int lineno, struct hpcn_mountinfo_entry *e,
			      struct hpcn_error *err);

/*
 * Parse len bytes of mountinfo text (need not be NUL-terminated; the last
 * line may lack its newline). Empty input is zero mounts. An empty line, a
 * NUL byte, a line longer than HPCN_MOUNTINFO_LINE_MAX or a malformed line is
 * an error (MountError Io naming the line number). Returns 0 after the last
 * line, the callback's positive value when it stopped, or -1.
 */
int hpcn_mountinfo_parse_buffer(const char *buf, size_t len, hpcn_mountinfo_cb cb, void *ud,
				struct hpcn_error *err);

/* Read a whole mountinfo file (NULL: /proc/self/mountinfo) into a malloc'd
 * NUL-terminated buffer, at most HPCN_MOUNTINFO_FILE_MAX bytes. 0 or -1
 * (MountError Io naming the file). */
int hpcn_mountinfo_read(const char *path, char **buf, size_t *len, struct hpcn_error *err);

/* hpcn_mountinfo_read + hpcn_mountinfo_parse_buffer. */
int hpcn_mountinfo_parse_file(const char *path, hpcn_mountinfo_cb cb, void *ud,
			      struct hpcn_error *err);

/* Is name one of the comma-separated options (exactly "name", or "name=...")? */
bool hpcn_mountinfo_has_option(const char *options, const char *name);

/* A squashfs mounted directly under the uenv base, as found in the table. */
struct hpcn_uenv_mount {
	int mount_id;
	unsigned int major;         /* the loop device */
	unsigned int minor;
	bool key_valid;             /* the directory name is an image key */
	char key[NAME_MAX + 1];     /* the directory name under base */
	struct hpcn_image_id id;    /* parsed from key when key_valid */
	char mount_point[PATH_MAX];
	char source[PATH_MAX];      /* "/dev/loopN" */
};

/*
 * Every squashfs mount whose mount point is base/NAME (one component, base
 * absolute, trailing slashes ignored), in table order; stacked mounts on one
 * directory appear once per mount. *out is malloc'd (free() it; NULL when
 * *n_out is 0). Returns 0 or -1 (MountError Io / InvalidArgument).
 * path NULL: /proc/self/mountinfo.
 */
int hpcn_mountinfo_find_uenv(const char *path, const char *base, struct hpcn_uenv_mount **out,
			     size_t *n_out, struct hpcn_error *err);
int hpcn_mountinfo_find_uenv_buffer(const char *buf, size_t len, const char *base,
				    struct hpcn_uenv_mount **out, size_t *n_out,
				    struct hpcn_error *err);

#endif

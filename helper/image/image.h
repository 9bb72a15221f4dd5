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

#endif

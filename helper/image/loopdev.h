/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loop devices for uenv images, through the kernel's ioctls (no losetup, no
 * libmount: libmount scans every loop device per call, which does not scale,
 * and >= 2.42 refuses setuid callers).
 *
 * A device is configured read-only with LO_FLAGS_AUTOCLEAR: it detaches
 * itself when its last user goes (our fd, then the mount), so a crashed
 * helper leaks no device.
 */
#ifndef HPCN_HELPER_LOOPDEV_H
#define HPCN_HELPER_LOOPDEV_H

#include <stddef.h>

#include <hpcnode/error.h>

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

#endif

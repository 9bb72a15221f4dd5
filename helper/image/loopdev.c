/* SPDX-License-Identifier: Apache-2.0 */
/* Loop devices through LOOP_CTL_GET_FREE and LOOP_CONFIGURE. */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "util.h"

#define LOOP_CONTROL "/dev/loop-control"

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* dev_t of loopN as sysfs tells it ("7:3"): the truth, whatever /dev holds. */
static int loop_sysfs_devt(int n, dev_t *devt)
{
	char path[64], buf[32];
	unsigned int maj, min;
	char nl;

	snprintf(path, sizeof(path), "/sys/block/loop%d/dev", n);
	if (hpcn_read_file_at(AT_FDCWD, path, buf, sizeof(buf)) < 0)
		return -1;
	if (sscanf(buf, "%u:%u%c", &maj, &min, &nl) != 3 || nl != '\n') {
		errno = EPROTO;
		return -1;
	}
	*devt = makedev(maj, min);
	return 0;
}

/* Open /dev/loopN, making the node when no udev/devtmpfs did, and make sure
 * it is the device sysfs names (a stale node could point anywhere). */
static int open_loop_dev(int n, const char *dev, const char *path, struct hpcn_error *err)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	dev_t devt;

	if (loop_sysfs_devt(n, &devt) < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path,
					    "reading /sys/block/loop%d/dev", n);
	fd = open(dev, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		if (mknod(dev, S_IFBLK | 0660, devt) < 0 && errno != EEXIST)
			return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path,
						    "creating device node %s", dev);
		fd = open(dev, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path, "opening %s",
					    dev);
	if (fstat(fd, &st) < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path, "fstat %s", dev);
	if (!S_ISBLK(st.st_mode) || st.st_rdev != devt)
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				       "%s is not the block device %u:%u that sysfs names",
				       dev, major(devt), minor(devt));
	return hpcn_take_fd(&fd);
}

/* The kernel has no device for us: ENOSPC, whatever it said (see loopdev.h). */
__attribute__((format(printf, 3, 4)))
static int none_free(struct hpcn_error *err, const char *path, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path, "no free loop device (%s)", why);
	if (err)
		err->sys_errno = ENOSPC;
	return -1;
}

int hpcn_loop_attach(int image_fd, const char *image_path_for_messages, int *loop_fd,
		     char *dev_path, size_t cap, struct hpcn_error *err)
{
	const char *path = image_path_for_messages ? image_path_for_messages : "<image fd>";
	_cleanup_close_ int ctl = -1;
	struct loop_config cfg;
	char dev[32] = "";
	int last_errno = 0;

	*loop_fd = -1;
	if (image_fd < 0)
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path, "no image descriptor");
	ctl = open(LOOP_CONTROL, O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path,
					    "opening " LOOP_CONTROL " (loop module loaded?)");

	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = (__u32)image_fd;
	cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
	/* Shown by losetup; the backing file is what identifies it. */
	snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", path);

	for (int attempt = 0; attempt < HPCN_LOOP_ATTACH_TRIES; attempt++) {
		_cleanup_close_ int fd = -1;
		int n;

		if (attempt > 0)
			sleep_ms(1L << (attempt < 6 ? attempt - 1 : 5));
		n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0 && (errno == ENOSPC || errno == ENODEV || errno == ENXIO))
			return none_free(err, path, "LOOP_CTL_GET_FREE on " LOOP_CONTROL ": %s",
					 strerror(errno));
		if (n < 0)
			return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path,
						    "LOOP_CTL_GET_FREE on " LOOP_CONTROL);
		snprintf(dev, sizeof(dev), "/dev/loop%d", n);
		fd = open_loop_dev(n, dev, path, err);
		if (fd < 0)
			return -1;
		if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
			if ((size_t)snprintf(dev_path, cap, "%s", dev) >= cap) {
				/* Closing fd detaches it: AUTOCLEAR. */
				return hpcn_error_setf(err, HPCN_E_INTERNAL, NULL,
						       "device path buffer too small for %s", dev);
			}
			*loop_fd = hpcn_take_fd(&fd);
			return 0;
		}
		last_errno = errno;
		if (errno != EBUSY && errno != EAGAIN)
			break;
	}
	if (last_errno == EBUSY || last_errno == EAGAIN)
		return none_free(err, path, "LOOP_CONFIGURE on %s still busy after %d tries",
				 dev, HPCN_LOOP_ATTACH_TRIES);
	if (last_errno == EINVAL || last_errno == ENOTTY)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, last_errno, path,
					    "LOOP_CONFIGURE on %s (the image fd is not usable as a "
					    "backing file, or the kernel is older than 5.8)", dev);
	return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, last_errno, path,
				    "LOOP_CONFIGURE on %s", dev);
}

int hpcn_loop_backing(const char *dev_name, char *file, size_t cap)
{
	char path[64], buf[4200];
	const char *p;
	ssize_t n;

	if (!dev_name || !file || cap == 0) {
		errno = EINVAL;
		return -1;
	}
	if (strncmp(dev_name, "/dev/", 5) == 0)
		dev_name += 5;
	if (strncmp(dev_name, "loop", 4) != 0 || !dev_name[4] || strlen(dev_name) > 14) {
		errno = EINVAL;
		return -1;
	}
	for (p = dev_name + 4; *p; p++)
		if (*p < '0' || *p > '9') {
			errno = EINVAL;
			return -1;
		}
	snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", dev_name);
	n = hpcn_read_file_at(AT_FDCWD, path, buf, sizeof(buf));
	if (n < 0)
		return -1;
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if ((size_t)n >= cap) {
		errno = ERANGE;
		return -1;
	}
	memcpy(file, buf, (size_t)n + 1);
	return 0;
}

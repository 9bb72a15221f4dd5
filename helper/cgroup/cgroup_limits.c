/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ResourceLimits -> cgroup v2 interface files. A limit whose controller the
 * cgroup lacks is reported (warning, or an error when the caller says the
 * limits are mandatory) instead of silently dropped: on hybrid nodes memory,
 * cpu, io and pids live in v1 and only the warning tells the admin why the
 * job ran unlimited.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "cgroup_fs.h"
#include "cgroup_internal.h"

/* A node with more whole disks than this gets the first ones (sorted). */
#define CG_MAX_BLOCK_DEVS 256

struct apply_ctx {
	const struct hpcn_cgroup *cg;
	int fd;
	const char *norm;
	unsigned avail;
	bool mandatory;
	struct hpcn_strv *warnings;
	struct hpcn_error *err;
};

/* Warning, or CreationFailed with the same words when mandatory. */
static int not_applied(struct apply_ctx *c, const char *file, const char *why)
{
	char msg[HPCN_ERROR_MESSAGE_MAX];

	snprintf(msg, sizeof(msg), "%s not applied: %s (for %s)", file, why, c->norm);
	if (c->mandatory)
		return hpcn_error_set(c->err, HPCN_E_CGROUP_CREATION_FAILED, msg, NULL);
	return cg_warn(c->warnings, c->err, "%s", msg);
}

static int ctrl_missing(struct apply_ctx *c, const char *file, unsigned ctrl)
{
	char why[PATH_MAX + 128];

	snprintf(why, sizeof(why), "controller '%s' is not available in cgroup v2 at %s",
		 hpcn_cgroup_ctrl_name(ctrl), c->cg->root);
	return not_applied(c, file, why);
}

static int put(struct apply_ctx *c, unsigned ctrl, const char *file, const char *value)
{
	if (!(c->avail & ctrl))
		return ctrl_missing(c, file, ctrl);
	if (cg_write(c->cg, c->fd, file, value) == 0)
		return 0;
	if (errno == ENOENT) {
		/* e.g. memory.swap.max without swap accounting */
		char why[PATH_MAX + 64];

		snprintf(why, sizeof(why), "the kernel offers no %s under %s", file,
			 c->cg->root);
		return not_applied(c, file, why);
	}
	return hpcn_error_set_errno(c->err, HPCN_E_CGROUP_CREATION_FAILED, errno, NULL,
				    "the kernel refused '%s' in %s/%s/%s", value, c->cg->root,
				    c->norm, file);
}

struct blockdev {
	char name[NAME_MAX + 1];
	uint32_t major, minor;
};

static int cmp_blockdev(const void *a, const void *b)
{
	return strcmp(((const struct blockdev *)a)->name, ((const struct blockdev *)b)->name);
}

/* Whole block devices of the node (sysfs_block/<name>/dev), sorted. */
static int list_block_devs(const struct hpcn_cgroup *cg, struct blockdev **out, size_t *n,
			   struct hpcn_error *err)
{
	DIR *d;
	struct dirent *de;
	struct blockdev *v;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	d = opendir(cg->sysfs_block);
	if (!d)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_CREATION_FAILED, errno, NULL,
					    "listing block devices in %s for io.max",
					    cg->sysfs_block);
	v = calloc(CG_MAX_BLOCK_DEVS, sizeof(*v));
	if (!v) {
		closedir(d);
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, ENOMEM, NULL, "block devices");
	}
	while (k < CG_MAX_BLOCK_DEVS && (de = readdir(d))) {
		_cleanup_close_ int dfd = -1;
		char buf[64];

		if (!hpcn_cgroup_block_dev_eligible(de->d_name))
			continue;
		/* /sys/block entries are symlinks into /sys/devices: follow. */
		dfd = openat(dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			continue;
		{
			_cleanup_close_ int f = openat(dfd, "dev", O_RDONLY | O_CLOEXEC);
			ssize_t r;

			if (f < 0)
				continue; /* hidden disks have no dev_t */
			r = read(f, buf, sizeof(buf) - 1);
			if (r <= 0)
				continue;
			buf[r] = '\0';
		}
		if (hpcn_cgroup_parse_devnum(buf, &v[k].major, &v[k].minor) < 0)
			continue;
		snprintf(v[k].name, sizeof(v[k].name), "%s", de->d_name);
		k++;
	}
	closedir(d);
	qsort(v, k, sizeof(*v), cmp_blockdev);
	*out = v;
	*n = k;
	return 0;
}

static int apply_io(struct apply_ctx *c, const struct hpcn_resource_limits *lim)
{
	char line[128];
	struct blockdev *devs = NULL;
	size_t n = 0;
	int rv = -1;

	if (lim->n_io_devices == 0 && !lim->io_max.set)
		return 0;
	if (!(c->avail & HPCN_CG_CTRL_IO))
		return ctrl_missing(c, "io.max", HPCN_CG_CTRL_IO);
	if (lim->n_io_devices > 0) {
		uint64_t dflt = lim->io_max.set ? lim->io_max.value : 0;

		for (size_t i = 0; i < lim->n_io_devices; i++) {
			const struct hpcn_io_device_limit *d = &lim->io_devices[i];

			hpcn_cgroup_fmt_io_max(line, sizeof(line), d->major, d->minor,
					       d->rbps ? d->rbps : dflt,
					       d->wbps ? d->wbps : dflt);
			if (put(c, HPCN_CG_CTRL_IO, "io.max", line) < 0)
				return -1;
		}
		return 0;
	}
	/* The crate's device-less io_max: every whole disk of the node. */
	if (list_block_devs(c->cg, &devs, &n, c->err) < 0)
		return -1;
	if (n == 0) {
		char why[PATH_MAX + 64];

		snprintf(why, sizeof(why), "no whole block device found in %s",
			 c->cg->sysfs_block);
		rv = not_applied(c, "io.max", why);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		hpcn_cgroup_fmt_io_max(line, sizeof(line), devs[i].major, devs[i].minor,
				       lim->io_max.value, lim->io_max.value);
		if (put(c, HPCN_CG_CTRL_IO, "io.max", line) < 0)
			goto out;
	}
	rv = 0;
out:
	free(devs);
	return rv;
}

int cg_apply_limits_fd(const struct hpcn_cgroup *cg, int fd, const char *norm,
		       const struct hpcn_resource_limits *lim, bool mandatory,
		       struct hpcn_strv *warnings, struct hpcn_error *err)
{
	struct apply_ctx c = {
		.cg = cg, .fd = fd, .norm = norm, .mandatory = mandatory,
		.warnings = warnings, .err = err,
	};
	char v[64];

	if (!lim)
		return 0;
	if (hpcn_cgroup_validate_limits(lim, err) < 0)
		return -1;
	c.avail = cg_read_controllers(fd);

	if (lim->memory_max.set) {
		hpcn_cgroup_fmt_u64(v, sizeof(v), lim->memory_max.value);
		if (put(&c, HPCN_CG_CTRL_MEMORY, "memory.max", v) < 0)
			return -1;
	}
	if (lim->memory_swap_max.set) {
		hpcn_cgroup_fmt_u64(v, sizeof(v), lim->memory_swap_max.value);
		if (put(&c, HPCN_CG_CTRL_MEMORY, "memory.swap.max", v) < 0)
			return -1;
	}
	if (lim->cpu_weight.set) {
		if (hpcn_cgroup_fmt_cpu_weight(v, sizeof(v), lim->cpu_weight.value, err) < 0 ||
		    put(&c, HPCN_CG_CTRL_CPU, "cpu.weight", v) < 0)
			return -1;
	}
	if (lim->cpu_max_quota_usec.set || lim->cpu_max_period_usec.set) {
		if (hpcn_cgroup_fmt_cpu_max(v, sizeof(v), &lim->cpu_max_quota_usec,
					    &lim->cpu_max_period_usec, err) < 0 ||
		    put(&c, HPCN_CG_CTRL_CPU, "cpu.max", v) < 0)
			return -1;
	}
	if (lim->pids_max.set) {
		hpcn_cgroup_fmt_u64(v, sizeof(v), lim->pids_max.value);
		if (put(&c, HPCN_CG_CTRL_PIDS, "pids.max", v) < 0)
			return -1;
	}
	return apply_io(&c, lim);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fallback=local: the helper is unreachable, so the plugin makes the step's
 * mount namespace itself, with the same checks (images opened as the job's
 * user, loop devices read-only with autoclear, squashfs ro,nosuid,nodev) but
 * no sharing between steps and no helper bookkeeping. slurmstepd has threads,
 * so the namespace is made by a forked child; slurmstepd keeps only an FD to
 * it, which the tasks join, and the mounts and loop devices go away with
 * the last process and FD.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "context.h"
#include "image/image.h"

/* Images each opened within the helper's 10 s, mounted: well under this. */
#define HPCN_FALLBACK_TIMEOUT_MS 60000

/* In the child: each image opened where srun resolved it (the host's
 * mounts, as the helper does), then a private copy of the job's mounts (the
 * host's, or base_fd's) with the images mounted in it. The child exits when
 * done: its descriptors need no closing. */
static int child_setup(const struct hpcn_uenv_spec *spec, uid_t uid, gid_t gid, int base_fd,
		       struct hpcn_error *err)
{
	int img[HPCN_MAX_MOUNTS];

	for (size_t i = 0; i < spec->n; i++)
		if (hpcn_image_open_as_user(spec->item[i].image, uid, gid, &img[i], NULL, err) < 0)
			return -1;
	if (base_fd >= 0 && setns(base_fd, CLONE_NEWNS) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "joining the job's mount namespace "
					    "(job_container/tmpfs)");
	if (unshare(CLONE_NEWNS) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "making / a slave mount");
	for (size_t i = 0; i < spec->n; i++) {
		const struct hpcn_uenv_item *it = &spec->item[i];
		char dev[64];
		int loop = -1, rv;

		rv = hpcn_loop_attach(img[i], it->image, &loop, dev, sizeof(dev), err);
		if (rv < 0)
			return -1;
		rv = hpcn_squashfs_mount(loop, dev, it->mount, err);
		close(loop); /* autoclear: the device lives as long as the mount */
		if (rv < 0)
			return -1;
	}
	return 0;
}

int hpcn_fallback_create(const struct hpcn_uenv_spec *spec, uid_t uid, gid_t gid,
			 int base_fd, int *mnt_fd, struct hpcn_error *err)
{
	int ready[2] = { -1, -1 }, hold[2] = { -1, -1 };
	struct hpcn_error cerr;
	char path[64];
	ssize_t n;
	pid_t pid;
	int status, rv = -1;

	*mnt_fd = -1;
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0) {
		hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL, "pipe");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL, "fork");
		goto out;
	}
	if (pid == 0) {
		char c;

		close(ready[0]);
		close(hold[1]);
		hpcn_error_clear(&cerr);
		if (child_setup(spec, uid, gid, base_fd, &cerr) < 0) {
			(void)!write(ready[1], &cerr, sizeof(cerr));
			_exit(1);
		}
		(void)!write(ready[1], &cerr, sizeof(cerr));
		/* Stay until the parent holds the namespace. */
		(void)!read(hold[0], &c, 1);
		_exit(0);
	}
	close(ready[1]);
	ready[1] = -1;
	close(hold[0]);
	hold[0] = -1;
	/* Bounded: the child opens images (a hung file system) and mounts. */
	{
		struct pollfd p = { .fd = ready[0], .events = POLLIN };
		int r;

		do
			r = poll(&p, 1, HPCN_FALLBACK_TIMEOUT_MS);
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			kill(pid, SIGKILL);
			hpcn_error_setf(err, HPCN_E_NS_CREATION_FAILED, NULL,
					"mounting the images took more than %d s (hung file "
					"system?)", HPCN_FALLBACK_TIMEOUT_MS / 1000);
			n = -1;
			goto reap;
		}
	}
	do {
		n = read(ready[0], &cerr, sizeof(cerr));
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(cerr)) {
		hpcn_error_set(err, HPCN_E_NS_CREATION_FAILED, "the setup process died", NULL);
	} else if (cerr.kind != HPCN_E_NONE) {
		*err = cerr;
	} else {
		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
		*mnt_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*mnt_fd < 0)
			hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL, "open %s",
					     path);
		else
			rv = 0;
	}
reap:
	close(hold[1]);
	hold[1] = -1;
	if (n < 0) {
		/* Killed, maybe stuck in an uninterruptible open: bounded. */
		for (int i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; i++)
			usleep(10000);
	} else {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (hold[i] >= 0)
			close(hold[i]);
	}
	return rv;
}

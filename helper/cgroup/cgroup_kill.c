/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup v2, workload side: kill (PS3: cgroup.kill, or freeze and SIGKILL
 * every pid on kernels without it) and destroy_scope (kill, drain until
 * "populated 0" within the timeout, remove). Below it only cgroup_fs.c and
 * cgroup_format.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup.h"
#include "cgroup_fs.h"

/* Passes of the SIGKILL fallback: a forking process may add pids between
 * reading cgroup.procs and the kill; the freeze makes one pass enough. */
#define CG_KILL_PASSES 4
/* Wake up at least this often while waiting for "populated 0": POLLPRI is
 * the fast path; the bound covers a fake tree, where poll never fires. */
#define CG_POLL_SLICE_MS 50

/* ---- kill ---- */

static int kill_one(long pid, unsigned *listed, const char *norm, struct hpcn_error *err)
{
	if (pid <= 0)
		return 0;
	(*listed)++;
	if (kill((pid_t)pid, SIGKILL) < 0 && errno != ESRCH)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_KILL_FAILED, errno, norm,
					    "SIGKILL pid %ld", pid);
	return 0;
}

static int kill_children(const struct hpcn_cgroup *cg, int at, const char *norm, int depth,
			 unsigned *listed, struct hpcn_error *err);

/* SIGKILL every pid of dirfd's cgroup.procs, then of its children.
 * *listed counts the pids seen. */
static int kill_tree(const struct hpcn_cgroup *cg, int at, const char *norm, int depth,
		     unsigned *listed, struct hpcn_error *err)
{
	_cleanup_close_ int pfd = -1;
	char buf[4096];
	long cur = -1;

	if (depth > CG_MAX_DEPTH)
		return 0;
	pfd = openat(at, "cgroup.procs", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (pfd < 0)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_KILL_FAILED, errno, norm,
					    "cannot open cgroup.procs");
	/* Parse across read boundaries: the file can be longer than buf. */
	for (;;) {
		ssize_t n = read(pfd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return hpcn_error_set_errno(err, HPCN_E_CGROUP_KILL_FAILED, errno, norm,
						    "cannot read cgroup.procs");
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				cur = (cur < 0 ? 0 : cur) * 10 + (buf[i] - '0');
				if (cur > INT_MAX)
					return hpcn_error_setf(err, HPCN_E_CGROUP_KILL_FAILED,
							       norm, "bad pid in cgroup.procs");
				continue;
			}
			if (kill_one(cur, listed, norm, err) < 0)
				return -1;
			cur = -1;
		}
		if (n == 0)
			break;
	}
	if (kill_one(cur, listed, norm, err) < 0)
		return -1;
	return kill_children(cg, at, norm, depth, listed, err);
}

static int kill_children(const struct hpcn_cgroup *cg, int at, const char *norm, int depth,
			 unsigned *listed, struct hpcn_error *err)
{
	_cleanup_close_ int dfd = -1;
	DIR *d;
	struct dirent *de;
	int rv = 0;

	dfd = openat(at, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_KILL_FAILED, errno, norm,
					    "cannot list children");
	d = fdopendir(dfd);
	if (!d)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_KILL_FAILED, errno, norm,
					    "cannot list children");
	dfd = -1;
	while (rv == 0 && (de = readdir(d))) {
		_cleanup_close_ int cfd = -1;
		char sub[PATH_MAX];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type != DT_DIR &&
		    (de->d_type != DT_UNKNOWN ||
		     fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     !S_ISDIR(st.st_mode)))
			continue;
		cfd = openat(dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0)
			continue; /* gone meanwhile */
		snprintf(sub, sizeof(sub), "%s/%s", norm, de->d_name);
		rv = kill_tree(cg, cfd, sub, depth + 1, listed, err);
	}
	closedir(d);
	return rv;
}

static int kill_pids_fd(const struct hpcn_cgroup *cg, int fd, const char *norm,
			struct hpcn_error *err)
{
	/* Frozen tasks cannot fork, and still die of SIGKILL. Best effort:
	 * kernels without cgroup.freeze get more passes instead. */
	(void)cg_write(cg, fd, "cgroup.freeze", "1");
	for (int pass = 0; pass < CG_KILL_PASSES; pass++) {
		unsigned listed = 0;

		if (kill_tree(cg, fd, norm, 0, &listed, err) < 0)
			return -1;
		if (!listed)
			break;
	}
	return 0;
}

static int kill_fd(const struct hpcn_cgroup *cg, int fd, const char *norm,
		   struct hpcn_error *err)
{
	if (cg_write(cg, fd, "cgroup.kill", "1") == 0)
		return 0;
	if (errno != ENOENT)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_KILL_FAILED, errno, norm,
					    "writing 1 to cgroup.kill");
	/* Kernel < 5.14: no cgroup.kill. */
	return kill_pids_fd(cg, fd, norm, err);
}

/* hpcn_cgroup_kill and hpcn_cgroup_kill_pids: RI1 check and walk, then how. */
static int kill_path(const struct hpcn_cgroup *cg, const char *path,
		     int (*how)(const struct hpcn_cgroup *cg, int fd, const char *norm,
				struct hpcn_error *err),
		     struct hpcn_error *err)
{
	char norm[PATH_MAX];
	_cleanup_close_ int fd = -1;

	if (cg_check_path(cg, path, CG_WRITE_BELOW, norm, sizeof(norm), err) < 0)
		return -1;
	fd = cg_walk(cg, norm, err);
	if (fd < 0)
		return -1;
	return how(cg, fd, norm, err);
}

int hpcn_cgroup_kill(struct hpcn_cgroup *cg, const char *path, struct hpcn_error *err)
{
	return kill_path(cg, path, kill_fd, err);
}

int hpcn_cgroup_kill_pids(struct hpcn_cgroup *cg, const char *path, struct hpcn_error *err)
{
	return kill_path(cg, path, kill_pids_fd, err);
}

/* ---- destroy ---- */

/* cgroup.events "populated" from an open fd (re-read from offset 0). */
static int read_populated_fd(int efd, bool *populated)
{
	char buf[256];
	ssize_t n;
	uint64_t v;

	if (lseek(efd, 0, SEEK_SET) < 0)
		return -1;
	do {
		n = read(efd, buf, sizeof(buf) - 1);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	if (hpcn_cgroup_parse_keyed(buf, "populated", &v) < 0)
		return -1;
	*populated = v != 0;
	return 0;
}

static void fmt_duration(char *buf, size_t cap, int ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, cap, "%d s", ms / 1000);
	else
		snprintf(buf, cap, "%d ms", ms);
}

int hpcn_cgroup_destroy_scope(struct hpcn_cgroup *cg, const char *path, int timeout_ms,
			      struct hpcn_error *err)
{
	char norm[PATH_MAX], leaf[NAME_MAX + 1], dur[32];
	_cleanup_close_ int pfd = -1, fd = -1, efd = -1;
	unsigned long long deadline;
	bool populated = true;

	if (timeout_ms < 0)
		timeout_ms = 0;
	if (cg_check_path(cg, path, CG_WRITE_BELOW, norm, sizeof(norm), err) < 0)
		return -1;
	pfd = cg_walk_parent(cg, norm, leaf, err);
	if (pfd == CG_WALK_GONE)
		return 0; /* already gone */
	if (pfd < 0)
		return -1;
	fd = openat(pfd, leaf, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* already gone */
		if (errno == ELOOP || errno == ENOTDIR)
			return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
					       "cgroup path '%s' is a symlink or not a directory",
					       norm);
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
					    "open %s/%s", cg->root, norm);
	}
	if (kill_fd(cg, fd, norm, err) < 0)
		return -1;

	deadline = hpcn_now_ms() + (unsigned long long)timeout_ms;
	efd = openat(fd, "cgroup.events", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (efd < 0)
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_KILL_FAILED, errno, norm,
					    "cannot open cgroup.events");
	for (;;) {
		unsigned long long now;
		struct pollfd pfds = { .fd = efd, .events = POLLPRI };
		int slice;

		if (read_populated_fd(efd, &populated) < 0)
			return hpcn_error_set_errno(err, HPCN_E_CGROUP_KILL_FAILED, errno, norm,
						    "cannot read cgroup.events");
		if (!populated)
			break;
		now = hpcn_now_ms();
		if (now >= deadline) {
			fmt_duration(dur, sizeof(dur), timeout_ms);
			hpcn_error_setf(err, HPCN_E_CGROUP_KILL_FAILED, norm,
					"still populated after %s (processes in D state?)", dur);
			if (err)
				err->sys_errno = ETIMEDOUT;
			return -1;
		}
		slice = (int)(deadline - now);
		if (slice > CG_POLL_SLICE_MS)
			slice = CG_POLL_SLICE_MS;
		/* kernfs raises POLLPRI on cgroup.events when it changes. */
		if (poll(&pfds, 1, slice) < 0 && errno != EINTR)
			return hpcn_error_set_errno(err, HPCN_E_CGROUP_KILL_FAILED, errno, norm,
						    "poll on cgroup.events");
	}
	hpcn_closep(&efd);
	hpcn_closep(&fd);
	return cg_remove_tree(cg, pfd, leaf, norm, 0, err);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Squashfs test images and a thorough clean-up (see sqfs_fixture.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image/loopdev.h"
#include "image/mountinfo.h"
#include "sqfs_fixture.h"

static int write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0)
		return -1;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	if (fchmod(fd, mode) < 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

int sqfs_fixture_init(struct sqfs_fixture *fx)
{
	snprintf(fx->dir, sizeof(fx->dir), SQFS_DIR_PREFIX "XXXXXX");
	if (!mkdtemp(fx->dir)) {
		fprintf(stderr, "mkdtemp %s: %s\n", fx->dir, strerror(errno));
		fx->dir[0] = '\0';
		return -1;
	}
	if (chmod(fx->dir, 0755) < 0) {
		fprintf(stderr, "chmod %s: %s\n", fx->dir, strerror(errno));
		return -1;
	}
	return 0;
}

int sqfs_fixture_write(struct sqfs_fixture *fx, const char *name, const void *data,
		       size_t len, unsigned int mode, char *out, size_t cap)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	if (write_file(path, data, len, mode) < 0) {
		fprintf(stderr, "writing %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (out)
		snprintf(out, cap, "%s", path);
	return 0;
}

static int run_quiet(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);

		if (nul >= 0) {
			dup2(nul, 1);
			dup2(nul, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int sqfs_fixture_make_image(struct sqfs_fixture *fx, const char *name, const char *marker,
			    char *out, size_t cap)
{
	char src[PATH_MAX], p[PATH_MAX + 32], img[PATH_MAX], buf[1024];
	int n;

	snprintf(src, sizeof(src), "%s/src-%s", fx->dir, name);
	snprintf(img, sizeof(img), "%s/%s.sqfs", fx->dir, name);
	if (mkdir(src, 0755) < 0)
		goto fail;
	snprintf(p, sizeof(p), "%s/bin", src);
	if (mkdir(p, 0755) < 0)
		goto fail;
	snprintf(p, sizeof(p), "%s/meta", src);
	if (mkdir(p, 0755) < 0)
		goto fail;
	n = snprintf(buf, sizeof(buf), "#!/bin/sh\necho %s\n", marker);
	snprintf(p, sizeof(p), "%s/bin/hello", src);
	if (write_file(p, buf, (size_t)n, 0755) < 0)
		goto fail;
	n = snprintf(buf, sizeof(buf),
		     "{\"name\":\"%s\",\"description\":\"test image\","
		     "\"mount\":\"/user-environment\",\"views\":{\"default\":{"
		     "\"description\":\"d\",\"root\":\"/user-environment\",\"env\":{"
		     "\"version\":1,\"type\":\"augment\",\"values\":{\"list\":{\"PATH\":"
		     "[{\"op\":\"prepend\",\"value\":[\"/user-environment/bin\"]}]},"
		     "\"scalar\":{}}}}}}\n", name);
	snprintf(p, sizeof(p), "%s/meta/env.json", src);
	if (write_file(p, buf, (size_t)n, 0644) < 0)
		goto fail;
	{
		char *argv[] = { SQFS_MKSQUASHFS, src, img, "-noappend", "-no-progress",
				 "-all-root", "-quiet", NULL };
		int st = run_quiet(argv);

		if (st != 0) {
			fprintf(stderr, "%s %s %s failed (status %d)\n", SQFS_MKSQUASHFS, src,
				img, st);
			return -1;
		}
	}
	if (chmod(img, 0644) < 0)
		goto fail;
	snprintf(out, cap, "%s", img);
	return 0;
fail:
	fprintf(stderr, "building image %s: %s\n", name, strerror(errno));
	return -1;
}

struct mounts_under {
	const char *prefix;
	size_t plen;
	char (*paths)[PATH_MAX];
	size_t n, cap;
};

static int collect_cb(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct mounts_under *m = ud;

	if (strncmp(e->mount_point, m->prefix, m->plen) != 0 ||
	    (e->mount_point[m->plen] != '/' && e->mount_point[m->plen] != '\0'))
		return 0;
	if (m->n < m->cap)
		snprintf(m->paths[m->n++], PATH_MAX, "%s", e->mount_point);
	return 0;
}

static int unmount_under(const char *prefix)
{
	static char paths[64][PATH_MAX];
	int total = 0;

	/* Deepest (latest) first; repeat for stacked mounts. */
	for (int round = 0; round < 8; round++) {
		struct mounts_under m = { .prefix = prefix, .plen = strlen(prefix),
					  .paths = paths, .cap = 64 };
		struct hpcn_error err;

		if (hpcn_mountinfo_parse_file(NULL, collect_cb, &m, &err) < 0) {
			fprintf(stderr, "cleanup: %s\n", err.message);
			return total;
		}
		if (m.n == 0)
			break;
		for (size_t i = m.n; i-- > 0; ) {
			if (umount2(m.paths[i], MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
				total++;
		}
	}
	return total;
}

static int detach_loops_under(const char *prefix)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	int total = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char file[PATH_MAX], dev[300];
		int fd;

		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		if (hpcn_loop_backing(de->d_name, file, sizeof(file)) < 0)
			continue;
		if (strncmp(file, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(dev, sizeof(dev), "/dev/%s", de->d_name);
		fd = open(dev, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (ioctl(fd, LOOP_CLR_FD, 0) == 0)
			total++;
		close(fd);
	}
	closedir(d);
	return total;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

int sqfs_fixture_scrub(struct sqfs_fixture *fx)
{
	char prefix[sizeof(fx->dir) + 1];

	if (!fx->dir[0])
		return 0;
	snprintf(prefix, sizeof(prefix), "%s/", fx->dir);
	return unmount_under(fx->dir) + detach_loops_under(prefix);
}

int sqfs_fixture_cleanup(struct sqfs_fixture *fx)
{
	int n;

	if (!fx->dir[0])
		return 0;
	n = sqfs_fixture_scrub(fx);
	nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	fx->dir[0] = '\0';
	return n;
}

int sqfs_count_loops_under(const char *prefix)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char file[PATH_MAX];

		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		if (hpcn_loop_backing(de->d_name, file, sizeof(file)) < 0)
			continue;
		if (!prefix || strncmp(file, prefix, strlen(prefix)) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int sqfs_count_loops(void)
{
	return sqfs_count_loops_under(NULL);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

	nanosleep(&ts, NULL);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The bounds are wall-clock time, not a count of polls. */
bool sqfs_wait_loop_gone(const char *dev, int timeout_ms)
{
	char file[PATH_MAX];
	long long end = now_ms() + timeout_ms;

	for (;;) {
		if (hpcn_loop_backing(dev, file, sizeof(file)) < 0 && errno == ENOENT)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(10);
	}
}

bool sqfs_wait_loop_count(int want, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	for (;;) {
		if (sqfs_count_loops() == want)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(10);
	}
}

int sqfs_run_capture(char *const argv[], char *out, size_t cap)
{
	int pfd[2], st;
	size_t len = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(pfd[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t r = read(pfd[0], out + len, cap - 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == cap - 1)
			break;
	}
	out[len] = '\0';
	close(pfd[0]);
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct is_mounted_ctx {
	const char *path;
	bool found;
};

static int is_mounted_cb(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct is_mounted_ctx *c = ud;

	if (strcmp(e->mount_point, c->path) == 0) {
		c->found = true;
		return 1;
	}
	return 0;
}

static int under_cb(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct is_mounted_ctx *c = ud;
	size_t n = strlen(c->path);

	if (strncmp(e->mount_point, c->path, n) == 0 &&
	    (e->mount_point[n] == '/' || e->mount_point[n] == '\0')) {
		c->found = true;
		return 1;
	}
	return 0;
}

bool sqfs_is_mounted_under(const char *dir)
{
	struct is_mounted_ctx c = { .path = dir };
	struct hpcn_error err;

	if (hpcn_mountinfo_parse_file(NULL, under_cb, &c, &err) < 0)
		return true; /* cannot tell: do not call it clean */
	return c.found;
}

bool sqfs_is_mounted(const char *path)
{
	struct is_mounted_ctx c = { .path = path };
	struct hpcn_error err;

	if (hpcn_mountinfo_parse_file(NULL, is_mounted_cb, &c, &err) < 0)
		return false;
	return c.found;
}

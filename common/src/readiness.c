/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ReadinessGate on the readiness file (/run/pact/ready): the provider creates
 * it atomically once it has finished starting, consumers wait for it with
 * inotify. /run/pact itself may not exist yet when a consumer starts (early
 * boot), so the wait falls back to polling until the directory appears.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hpcnode/readiness.h>

#define DIR_POLL_MS 100

struct split_path {
	char dir[PATH_MAX];
	const char *base;       /* points into the caller's path */
};

static int split(const char *path, struct split_path *sp, struct hpcn_error *err)
{
	const char *slash;
	size_t dlen;

	if (!path || !*path)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT,
				      "readiness file path is empty", NULL);
	slash = strrchr(path, '/');
	if (!slash) {
		strcpy(sp->dir, ".");
		sp->base = path;
		return 0;
	}
	sp->base = slash + 1;
	if (!*sp->base || strcmp(sp->base, ".") == 0 || strcmp(sp->base, "..") == 0)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "readiness file path %s does not name a file", path);
	dlen = slash == path ? 1 : (size_t)(slash - path);
	if (dlen >= sizeof(sp->dir))
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "readiness file path %s is too long", path);
	memcpy(sp->dir, path, dlen);
	sp->dir[dlen] = '\0';
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before deadline (-1: none), as poll(2) wants them. */
static int left_ms(long long deadline)
{
	long long d;

	if (deadline < 0)
		return -1;
	d = deadline - now_ms();
	if (d <= 0)
		return 0;
	return d > INT_MAX ? INT_MAX : (int)d;
}

bool hpcn_is_ready(const char *ready_file)
{
	struct stat st;

	return ready_file && stat(ready_file, &st) == 0;
}

/*
 * Watch the existing directory until the file appears (0), the deadline
 * passes (1) or the watch can no longer work (2: directory gone or inotify
 * unusable, the caller goes back to polling).
 */
static int watch_dir(const char *ready_file, const struct split_path *sp,
		     long long deadline)
{
	/* Aligned as inotify events need; room for several events per read. */
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int rv = 2;
	int ifd;

	ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0)
		return 2;
	if (inotify_add_watch(ifd, sp->dir, IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF |
			      IN_MOVE_SELF | IN_ONLYDIR) < 0)
		goto out;
	for (;;) {
		struct pollfd p = { .fd = ifd, .events = POLLIN };
		int t, r;
		ssize_t n;

		/* Also right after adding the watch: the file may have been
		 * created between the caller's check and inotify_add_watch. */
		if (hpcn_is_ready(ready_file)) {
			rv = 0;
			goto out;
		}
		t = left_ms(deadline);
		if (t == 0) {
			rv = 1;
			goto out;
		}
		r = poll(&p, 1, t);
		if (r < 0 && errno != EINTR)
			goto out;
		if (r <= 0)
			continue;
		n = read(ifd, ev, sizeof(ev));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			goto out;
		}
		for (char *p8 = ev; p8 < ev + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p8;

			/* The directory went away or was renamed: the watch
			 * no longer watches the path we were given. */
			if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED |
				       IN_UNMOUNT)) {
				rv = 2;
				goto out;
			}
			p8 += sizeof(*e) + e->len;
		}
		/* Any create/move-in (or IN_Q_OVERFLOW): re-check at the top. */
	}
out:
	close(ifd);
	return rv;
}

int hpcn_wait_ready(const char *ready_file, int timeout_ms,
		    struct hpcn_error *err)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	struct split_path sp;

	if (split(ready_file, &sp, err) < 0)
		return -1;
	for (;;) {
		struct stat st;
		int t;

		if (hpcn_is_ready(ready_file))
			return 0;
		if (stat(sp.dir, &st) == 0 && S_ISDIR(st.st_mode)) {
			int r = watch_dir(ready_file, &sp, deadline);

			if (r == 0)
				return 0;
			if (r == 1)
				break;
		}
		/* No directory (yet), or the watch failed: poll. */
		t = left_ms(deadline);
		if (t == 0)
			break;
		poll(NULL, 0, t < 0 || t > DIR_POLL_MS ? DIR_POLL_MS : t);
	}
	/* One last look: the file may have come at the very deadline. */
	if (hpcn_is_ready(ready_file))
		return 0;
	return hpcn_error_set(err, HPCN_E_READINESS_TIMEOUT, NULL, NULL);
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

int hpcn_readiness_signal(const char *ready_file, const char *content,
			  struct hpcn_error *err)
{
	struct split_path sp;
	char tmp[NAME_MAX + 1];
	int dfd = -1, fd = -1;
	int rv = -1;
	const char *what;

	if (split(ready_file, &sp, err) < 0)
		return -1;
	if (snprintf(tmp, sizeof(tmp), ".%s.tmp", sp.base) >= (int)sizeof(tmp))
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "readiness file name %s is too long", sp.base);
	dfd = open(sp.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		what = sp.dir;
		goto fail_errno;
	}
	/* A stale temp from a crashed provider is ours to replace. */
	if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT) {
		what = tmp;
		goto fail_errno;
	}
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		what = tmp;
		goto fail_errno;
	}
	/* Consumers run as other users: 0644 whatever the umask. */
	if (fchmod(fd, 0644) < 0 ||
	    (content && write_all(fd, content, strlen(content)) < 0) ||
	    fsync(fd) < 0) {
		what = tmp;
		goto fail_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		what = tmp;
		goto fail_unlink;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, sp.base) < 0) {
		what = sp.base;
		goto fail_unlink;
	}
	/* Durable: the rename survives a crash right after we said ready. */
	if (fsync(dfd) < 0) {
		what = sp.dir;
		goto fail_errno;
	}
	rv = 0;
	goto out;

fail_unlink:
	{
		int e = errno;

		unlinkat(dfd, tmp, 0);
		errno = e;
	}
fail_errno:
	hpcn_error_set_errno(err, HPCN_E_BOOT_FAILED, errno, NULL,
			     "cannot create readiness file %s (at %s)", ready_file, what);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return rv;
}

int hpcn_readiness_clear(const char *ready_file, struct hpcn_error *err)
{
	if (!ready_file || !*ready_file)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT,
				      "readiness file path is empty", NULL);
	if (unlink(ready_file) < 0 && errno != ENOENT)
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, errno, NULL,
					    "cannot remove readiness file %s", ready_file);
	return 0;
}

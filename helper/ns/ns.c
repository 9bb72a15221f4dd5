/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation namespaces: creation, pinning under <ns_dir>/<alloc_id>/,
 * rediscovery after a restart, release, and the orphan scan (F35).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ns.h"
#include "ns_internal.h"
#include "util.h"

#define HOLDER_FILE "holder"

static int check_ns_dir(const char *ns_dir, struct hpcn_error *err)
{
	if (!ns_dir || ns_dir[0] != '/')
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "namespace directory \"%s\" is not an absolute path",
				       ns_dir ? ns_dir : "(null)");
	/* Room for "/<id>/.holder.tmp" below it. */
	if (strlen(ns_dir) + HPCN_ALLOC_ID_MAX + 32 >= PATH_MAX)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "namespace directory %s: path too long", ns_dir);
	return 0;
}

static int check_args(const char *ns_dir, const char *alloc_id, struct hpcn_error *err)
{
	if (check_ns_dir(ns_dir, err) < 0)
		return -1;
	return hpcn_alloc_id_validate(alloc_id, err);
}

/* <ns_dir>/<alloc_id>[/<name>]; the lengths were checked. */
static void alloc_path(char *buf, const char *ns_dir, const char *alloc_id, const char *name)
{
	if (name)
		snprintf(buf, PATH_MAX, "%s/%s/%s", ns_dir, alloc_id, name);
	else
		snprintf(buf, PATH_MAX, "%s/%s", ns_dir, alloc_id);
}

static int read_whole(const char *path, char **text)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t cap = 0, off = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t n;

		if (cap - off < 4097) {
			char *nb = realloc(buf, cap ? cap * 2 : 16384);

			if (!nb)
				return -1;
			buf = nb;
			cap = cap ? cap * 2 : 16384;
		}
		n = read(fd, buf + off, cap - 1 - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	*text = buf;
	buf = NULL;
	return 0;
}

/*
 * Is path a directory that is the root of a mount, and is that mount shared?
 * 0, or -1 with errno.
 */
static int mount_state(const char *path, bool *is_root, bool *shared)
{
	_cleanup_free_ char *info = NULL;
	struct statx stx;
	char *line;

	*is_root = false;
	*shared = false;
	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MNT_ID, &stx) < 0)
		return -1;
	if (!S_ISDIR(stx.stx_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) ||
	    !(stx.stx_mask & STATX_MNT_ID)) {
		errno = ENOSYS;
		return -1;
	}
	*is_root = stx.stx_attributes & STATX_ATTR_MOUNT_ROOT;
	if (!*is_root)
		return 0;
	if (read_whole("/proc/self/mountinfo", &info) < 0)
		return -1;
	for (line = info; line && *line; ) {
		char *nl = strchr(line, '\n');
		char *end;
		unsigned long long id;

		if (nl)
			*nl = '\0';
		id = strtoull(line, &end, 10);
		if (end != line && id == stx.stx_mnt_id) {
			char *sep = strstr(line, " - ");

			if (sep)
				*sep = '\0';
			/* Mount points are escaped (\040): " shared:" is a tag. */
			*shared = strstr(line, " shared:") != NULL;
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	errno = ENOENT;
	return -1;
}

int hpcn_ns_setup_dir(const char *ns_dir, struct hpcn_error *err)
{
	bool is_root, shared;

	if (check_ns_dir(ns_dir, err) < 0)
		return -1;
	if (strcmp(ns_dir, "/") == 0)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT,
				      "namespace directory must not be /", NULL);
	if (hpcn_mkdir_p(ns_dir, 0700) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "namespace directory %s: mkdir", ns_dir);
	if (mount_state(ns_dir, &is_root, &shared) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "namespace directory %s: reading its mount state",
					    ns_dir);
	if (is_root && !shared)
		return 0;
	if (!is_root && mount(ns_dir, ns_dir, "none", MS_BIND, NULL) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "namespace directory %s: bind mount onto itself",
					    ns_dir);
	if (mount("none", ns_dir, "none", MS_PRIVATE, NULL) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "namespace directory %s: making it private", ns_dir);
	return 0;
}

/* Is ns_dir ready for pins (hpcn_ns_setup_dir done)? */
static int check_ns_dir_ready(const char *ns_dir, const char *alloc_id,
			      struct hpcn_error *err)
{
	bool is_root, shared;

	if (mount_state(ns_dir, &is_root, &shared) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "allocation %s: namespace directory %s", alloc_id,
					    ns_dir);
	if (!is_root || shared)
		return hpcn_error_setf(err, HPCN_E_NS_CREATION_FAILED, NULL,
				       "allocation %s: namespace directory %s is not a private "
				       "mount point (%s); hpcn_ns_setup_dir prepares it",
				       alloc_id, ns_dir, is_root ? "it is shared" : "not a mount");
	return 0;
}

/* Open a pin and check its type. fd, or -1 with errno (ENOENT: no pin;
 * EMEDIUMTYPE: a file that is not a namespace of that type). */
static int open_pin(const char *path, enum hpcn_ns_type t)
{
	_cleanup_close_ int fd = -1;
	int nstype;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return -1;
	nstype = ioctl(fd, NS_GET_NSTYPE);
	if (nstype < 0 || nstype != hpcn_ns_type_clone_flag(t)) {
		errno = EMEDIUMTYPE;
		return -1;
	}
	return hpcn_take_fd(&fd);
}

int hpcn_ns_open(const char *ns_dir, const char *alloc_id, enum hpcn_ns_type t,
		 struct hpcn_error *err)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	if (check_args(ns_dir, alloc_id, err) < 0)
		return -1;
	if (!hpcn_ns_type_name(t))
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "namespace type %d", (int)t);
	alloc_path(path, ns_dir, alloc_id, hpcn_ns_type_proc_name(t));
	fd = open_pin(path, t);
	if (fd >= 0)
		return fd;
	if (errno == EMEDIUMTYPE)
		return hpcn_error_setf(err, HPCN_E_NOT_FOUND, NULL,
				       "%s namespace of allocation %s: %s is not a pinned %s "
				       "namespace", hpcn_ns_type_name(t), alloc_id, path,
				       hpcn_ns_type_proc_name(t));
	if (errno != ENOENT)
		return hpcn_error_set_errno(err, HPCN_E_NS_FD_PASSING, errno, NULL,
					    "opening %s", path);
	alloc_path(path, ns_dir, alloc_id, NULL);
	if (stat(path, &st) < 0 && errno == ENOENT)
		return hpcn_error_set(err, HPCN_E_NS_ALLOCATION_NOT_FOUND, alloc_id, NULL);
	return hpcn_error_setf(err, HPCN_E_NOT_FOUND, NULL,
			       "allocation %s has no %s namespace", alloc_id,
			       hpcn_ns_type_name(t));
}

static pid_t read_holder_file(const char *ns_dir, const char *alloc_id)
{
	char path[PATH_MAX], buf[32];
	char *end;
	long v;

	alloc_path(path, ns_dir, alloc_id, HOLDER_FILE);
	if (hpcn_read_file_at(AT_FDCWD, path, buf, sizeof(buf)) <= 0)
		return 0;
	v = strtol(buf, &end, 10);
	if (end == buf || v <= 0 || v > INT_MAX)
		return 0;
	return (pid_t)v;
}

int hpcn_ns_load(const char *ns_dir, const char *alloc_id, pid_t holder,
		 struct hpcn_ns_set *out, struct hpcn_error *err)
{
	char path[PATH_MAX];
	struct stat st, pid_st = { 0 };
	const char *broken = NULL;

	if (!out)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT, "no output set", NULL);
	memset(out, 0, sizeof(*out));
	if (check_args(ns_dir, alloc_id, err) < 0)
		return -1;
	snprintf(out->allocation_id, sizeof(out->allocation_id), "%s", alloc_id);
	alloc_path(path, ns_dir, alloc_id, NULL);
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return hpcn_error_set(err, HPCN_E_NS_ALLOCATION_NOT_FOUND, alloc_id, NULL);
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "allocation %s: %s", alloc_id, path);
	}
	for (int i = 0; i < HPCN_NS__COUNT; i++) {
		enum hpcn_ns_type t = (enum hpcn_ns_type)i;
		_cleanup_close_ int fd = -1;

		alloc_path(path, ns_dir, alloc_id, hpcn_ns_type_proc_name(t));
		fd = open_pin(path, t);
		if (fd < 0) {
			if (errno != ENOENT && !broken)
				broken = hpcn_ns_type_proc_name(t);
			continue;
		}
		out->present[t] = true;
		if (t == HPCN_NS_PID && fstat(fd, &pid_st) < 0)
			return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno,
						    NULL, "allocation %s: fstat %s",
						    alloc_id, path);
	}
	if (broken) {
		alloc_path(path, ns_dir, alloc_id, broken);
		return hpcn_error_setf(err, HPCN_E_NOT_FOUND, NULL,
				       "allocation %s: %s is not a pinned namespace", alloc_id,
				       path);
	}
	if (out->present[HPCN_NS_PID]) {
		struct ns_proc hp;

		if (holder <= 0)
			holder = read_holder_file(ns_dir, alloc_id);
		if (ns_holder_get(holder, pid_st.st_dev, pid_st.st_ino, &hp) < 0)
			return hpcn_error_setf(err, HPCN_E_NOT_FOUND, NULL,
					       "allocation %s: pid namespace holder %d is gone or "
					       "is not pid 1 of the pinned pid namespace",
					       alloc_id, (int)holder);
		ns_proc_close(&hp);
		out->pid_holder = holder;
	}
	return 0;
}

/* The state a release must clean: pins, holder, noted files, directory. */
int hpcn_ns_release(const char *ns_dir, const char *alloc_id, pid_t holder,
		    struct hpcn_error *err)
{
	char path[PATH_MAX];
	pid_t cands[2];
	dev_t dev = 0;
	ino_t ino = 0;
	int rv = 0;

	if (check_args(ns_dir, alloc_id, err) < 0)
		return -1;

	/* The holder first, so that the pid namespace is empty before its
	 * pin goes; identify it by the pin while the pin is there. */
	alloc_path(path, ns_dir, alloc_id, hpcn_ns_type_proc_name(HPCN_NS_PID));
	{
		_cleanup_close_ int fd = open_pin(path, HPCN_NS_PID);
		struct stat st;

		if (fd >= 0 && fstat(fd, &st) == 0) {
			dev = st.st_dev;
			ino = st.st_ino;
		}
	}
	cands[0] = holder;
	cands[1] = read_holder_file(ns_dir, alloc_id);
	for (size_t i = 0; i < HPCN_ARRAY_SIZE(cands); i++) {
		struct ns_proc hp;

		if (cands[i] <= 0 || (i == 1 && cands[1] == cands[0]))
			continue;
		if (ns_holder_get(cands[i], dev, ino, &hp) < 0)
			continue;
		if (ns_proc_kill_wait(&hp, HPCN_NS_KILL_TIMEOUT_MS) < 0 && rv == 0)
			rv = hpcn_error_set_errno(err, HPCN_E_BUSY, errno, NULL,
						  "allocation %s: pid namespace holder %d did not "
						  "exit after SIGKILL within %d ms", alloc_id,
						  (int)cands[i], HPCN_NS_KILL_TIMEOUT_MS);
		ns_proc_close(&hp);
	}

	for (int i = 0; i < HPCN_NS__COUNT; i++) {
		alloc_path(path, ns_dir, alloc_id, hpcn_ns_type_proc_name((enum hpcn_ns_type)i));
		/* A pin is mounted once; a few rounds also clear stacked ones. */
		for (int round = 0; round < 8; round++) {
			if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
				continue;
			if (errno != EINVAL && errno != ENOENT && rv == 0)
				rv = hpcn_error_set_errno(err, HPCN_E_UNMOUNT_FAILED, errno, path,
							  "releasing allocation %s", alloc_id);
			break;
		}
		if (unlink(path) < 0 && errno != ENOENT && rv == 0)
			rv = hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
						  "releasing allocation %s: unlink %s",
						  alloc_id, path);
	}
	alloc_path(path, ns_dir, alloc_id, HOLDER_FILE);
	unlink(path);
	alloc_path(path, ns_dir, alloc_id, "." HOLDER_FILE ".tmp");
	unlink(path);
	alloc_path(path, ns_dir, alloc_id, NULL);
	if (rmdir(path) < 0 && errno != ENOENT && rv == 0)
		rv = hpcn_error_set_errno(err, HPCN_E_BUSY, errno, NULL,
					  "releasing allocation %s: rmdir %s", alloc_id, path);
	return rv;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int hpcn_ns_list(const char *ns_dir, struct hpcn_strv *ids, struct hpcn_error *err)
{
	DIR *d;
	struct dirent *de;
	size_t first = ids->n;
	int rv = -1;

	if (check_ns_dir(ns_dir, err) < 0)
		return -1;
	d = opendir(ns_dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, errno, NULL,
					    "listing namespace directory %s", ns_dir);
	}
	for (;;) {
		bool is_dir;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				hpcn_error_set_errno(err, HPCN_E_INTERNAL, errno, NULL,
						     "listing namespace directory %s", ns_dir);
				goto out;
			}
			break;
		}
		if (hpcn_alloc_id_validate(de->d_name, NULL) < 0)
			continue;
		is_dir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;

			is_dir = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				 S_ISDIR(st.st_mode);
		}
		if (!is_dir)
			continue;
		if (hpcn_strv_addf(ids, "%s", de->d_name) < 0) {
			hpcn_error_set_errno(err, HPCN_E_INTERNAL, errno, NULL,
					     "listing namespace directory %s", ns_dir);
			goto out;
		}
	}
	if (ids->n - first > 1)
		qsort(ids->v + first, ids->n - first, sizeof(char *), cmp_str);
	rv = 0;
out:
	closedir(d);
	return rv;
}

/* ---- creation ---- */

struct maker_arg {
	int base_fd;
	bool mnt;
	bool net;
	const char *ns_dir;
};

static int lo_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rv = -1;

	if (s < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		goto out;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		goto out;
	rv = 0;
out:
	if (rv < 0) {
		int e = errno;

		close(s);
		errno = e;
		return -1;
	}
	close(s);
	return 0;
}

/* Runs in the forked maker, which stays until its namespaces are pinned. */
static int maker_fn(void *arg, int data_fd, int *step)
{
	const struct maker_arg *a = arg;
	int flags = (a->mnt ? CLONE_NEWNS : 0) | (a->net ? CLONE_NEWNET : 0);

	if (a->base_fd >= 0) {
		*step = NS_STEP_SETNS_BASE;
		if (setns(a->base_fd, CLONE_NEWNS) < 0)
			return errno;
	}
	*step = NS_STEP_UNSHARE;
	if (unshare(flags) < 0)
		return errno;
	if (a->mnt) {
		*step = NS_STEP_MAKE_SLAVE;
		if (mount("none", "/", "none", MS_SLAVE | MS_REC, NULL) < 0)
			return errno;
		/* The copy holds our pins of other allocations (net, pid;
		 * the kernel skips mount-namespace pins): drop them here, or
		 * this namespace would keep those alive. */
		*step = NS_STEP_HIDE_NS_DIR;
		for (int round = 0; round < 8; round++)
			if (umount2(a->ns_dir, MNT_DETACH) < 0) {
				if (errno != EINVAL && errno != ENOENT)
					return errno;
				break;
			}
	}
	if (a->net) {
		*step = NS_STEP_LO_UP;
		if (lo_up() < 0)
			return errno;
	}
	*step = NS_STEP_NONE;
	return 0;
}

static int pin_ns(const char *ns_dir, const char *alloc_id, enum hpcn_ns_type t, pid_t pid,
		  struct hpcn_error *err)
{
	char src[64], dst[PATH_MAX];
	int fd;

	snprintf(src, sizeof(src), "/proc/%d/ns/%s", (int)pid, hpcn_ns_type_proc_name(t));
	alloc_path(dst, ns_dir, alloc_id, hpcn_ns_type_proc_name(t));
	fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "allocation %s: creating pin %s", alloc_id, dst);
	close(fd);
	if (mount(src, dst, "none", MS_BIND, NULL) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "allocation %s: pinning %s at %s", alloc_id, src,
					    dst);
	return 0;
}

static int make_mnt_net(const char *ns_dir, const char *alloc_id, bool mnt, bool net,
			int base_fd, struct hpcn_error *err)
{
	struct maker_arg a = { .base_fd = base_fd, .mnt = mnt, .net = net, .ns_dir = ns_dir };
	struct ns_worker w;
	struct ns_report rep;
	const char *what = mnt && net ? "Mount and Net namespaces" :
			   mnt ? "Mount namespace" : "Net namespace";
	int rv = -1;

	if (ns_worker_start(&w, true, false, maker_fn, &a) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "allocation %s: fork for the %s", alloc_id, what);
	if (ns_worker_report(&w, &rep) < 0) {
		hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
				     "allocation %s: no report from the worker creating the %s",
				     alloc_id, what);
		goto out;
	}
	if (rep.err) {
		hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, rep.err, NULL,
				     "allocation %s: creating the %s: %s", alloc_id, what,
				     ns_step_text(rep.step));
		goto out;
	}
	if (mnt && pin_ns(ns_dir, alloc_id, HPCN_NS_MOUNT, w.pid, err) < 0)
		goto out;
	if (net && pin_ns(ns_dir, alloc_id, HPCN_NS_NET, w.pid, err) < 0)
		goto out;
	rv = 0;
out:
	ns_worker_finish(&w);
	return rv;
}

static int make_pid(const char *ns_dir, const char *alloc_id, pid_t *holder,
		    struct hpcn_error *err)
{
	char buf[32];
	int n, dfd;

	if (ns_holder_spawn(alloc_id, holder, err) < 0)
		return -1;
	if (pin_ns(ns_dir, alloc_id, HPCN_NS_PID, *holder, err) < 0)
		return -1;
	/* Noted for a restart whose registry lost it, and for release. */
	{
		char path[PATH_MAX];

		alloc_path(path, ns_dir, alloc_id, NULL);
		dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (dfd < 0)
			return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
						    "allocation %s: opening %s", alloc_id, path);
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)*holder);
	if (hpcn_write_file_atomic_at(dfd, HOLDER_FILE, buf, (size_t)n) < 0) {
		int e = errno;

		close(dfd);
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, e, NULL,
					    "allocation %s: noting holder %d in %s/%s/%s",
					    alloc_id, (int)*holder, ns_dir, alloc_id, HOLDER_FILE);
	}
	close(dfd);
	return 0;
}

/* The directory exists: the same request again, or a different/broken set. */
static int create_existing(const char *ns_dir, const char *alloc_id, const bool *want,
			   struct hpcn_ns_set *out, struct hpcn_error *err)
{
	struct hpcn_error lerr = { 0 };
	struct hpcn_ns_set cur;
	char have[64] = "";

	if (hpcn_ns_load(ns_dir, alloc_id, 0, &cur, &lerr) < 0)
		return hpcn_error_setf(err, HPCN_E_BUSY, NULL,
				       "allocation %s already has a broken namespace directory "
				       "in %s (%s); release it first", alloc_id, ns_dir,
				       lerr.message);
	for (int i = 0; i < HPCN_NS__COUNT; i++) {
		if (!want[i] || cur.present[i])
			continue;
		for (int j = 0; j < HPCN_NS__COUNT; j++)
			if (cur.present[j]) {
				strcat(have, " ");
				strcat(have, hpcn_ns_type_name((enum hpcn_ns_type)j));
			}
		return hpcn_error_setf(err, HPCN_E_BUSY, NULL,
				       "allocation %s already exists with namespaces [%s ] "
				       "without %s; release it first", alloc_id, have,
				       hpcn_ns_type_name((enum hpcn_ns_type)i));
	}
	*out = cur;
	return 0;
}

int hpcn_ns_create(const char *ns_dir, const char *alloc_id,
		   const enum hpcn_ns_type *types, size_t ntypes, int base_mnt_fd,
		   struct hpcn_ns_set *out, struct hpcn_error *err)
{
	bool want[HPCN_NS__COUNT] = { false };
	char path[PATH_MAX];
	pid_t holder = 0;
	struct hpcn_error scratch;

	if (!out)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT, "no output set", NULL);
	memset(out, 0, sizeof(*out));
	if (check_args(ns_dir, alloc_id, err) < 0)
		return -1;
	if (ntypes > 0 && !types)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT, "no namespace types", NULL);
	for (size_t i = 0; i < ntypes; i++) {
		if (!hpcn_ns_type_name(types[i]))
			return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
					       "allocation %s: unknown namespace type %d",
					       alloc_id, (int)types[i]);
		want[types[i]] = true;
	}
	if (base_mnt_fd >= 0) {
		int t;

		if (!want[HPCN_NS_MOUNT])
			return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
					       "allocation %s: a base mount namespace without "
					       "a Mount namespace requested", alloc_id);
		t = ioctl(base_mnt_fd, NS_GET_NSTYPE);
		if (t != CLONE_NEWNS)
			return hpcn_error_set_errno(err, HPCN_E_INVALID_ARGUMENT,
						    t < 0 ? errno : 0, NULL,
						    "allocation %s: base mount namespace fd %d is "
						    "not a mount namespace", alloc_id, base_mnt_fd);
	}
	if (check_ns_dir_ready(ns_dir, alloc_id, err) < 0)
		return -1;

	alloc_path(path, ns_dir, alloc_id, NULL);
	/* An empty directory is what a crash right after mkdir leaves: reuse. */
	if (mkdir(path, 0700) < 0 && (errno != EEXIST || rmdir(path) < 0 ||
				      mkdir(path, 0700) < 0)) {
		if (errno == EEXIST || errno == ENOTEMPTY)
			return create_existing(ns_dir, alloc_id, want, out, err);
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "allocation %s: mkdir %s", alloc_id, path);
	}
	if ((want[HPCN_NS_MOUNT] || want[HPCN_NS_NET]) &&
	    make_mnt_net(ns_dir, alloc_id, want[HPCN_NS_MOUNT], want[HPCN_NS_NET],
			 base_mnt_fd, err) < 0)
		goto fail;
	if (want[HPCN_NS_PID] && make_pid(ns_dir, alloc_id, &holder, err) < 0)
		goto fail;

	snprintf(out->allocation_id, sizeof(out->allocation_id), "%s", alloc_id);
	memcpy(out->present, want, sizeof(want));
	out->pid_holder = holder;
	return 0;
fail:
	/* Undo everything; the first error is the one that matters. */
	hpcn_ns_release(ns_dir, alloc_id, holder, &scratch);
	return -1;
}

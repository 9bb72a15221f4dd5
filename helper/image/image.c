/* SPDX-License-Identifier: Apache-2.0 */
/* Opening uenv images as their user, checking them, naming them. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"
#include "util.h"

#define SQUASHFS_MAGIC_LE "hsqs"
/* getgrouplist() of a user in very many groups: the kernel's limit. */
#define MAX_GROUPS 65536
#define PW_BUF_MAX (1 << 20)

/* What the child reports besides the fd. */
enum open_stage { STAGE_OPEN = 0, STAGE_SETGROUPS, STAGE_SETGID, STAGE_SETUID, STAGE_CAPS };

struct child_report {
	int32_t stage;
	int32_t errnum;
};

struct user_info {
	char name[256];  /* empty when uid has no passwd entry */
	gid_t *groups;
	int ngroups;
};

static const char *msg_path(const char *path, int fd, char *buf, size_t cap)
{
	if (path)
		return path;
	snprintf(buf, cap, "<fd %d>", fd);
	return buf;
}

static void user_label(const struct user_info *u, uid_t uid, char *buf, size_t cap)
{
	if (u->name[0])
		snprintf(buf, cap, "user %s (uid %u)", u->name, (unsigned)uid);
	else
		snprintf(buf, cap, "uid %u", (unsigned)uid);
}

/* Resolve the user's name and groups in the parent: NSS is not
 * async-signal-safe, the forked child may only make system calls. */
static int user_info_get(uid_t uid, gid_t gid, struct user_info *u)
{
	struct passwd pw, *res = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t cap = 16384;
	int r, n;

	memset(u, 0, sizeof(*u));
	for (;;) {
		free(buf);
		buf = malloc(cap);
		if (!buf)
			return -1;
		r = getpwuid_r(uid, &pw, buf, cap, &res);
		if (r == ERANGE && cap < PW_BUF_MAX) {
			cap *= 2;
			continue;
		}
		break;
	}
	if (r == 0 && res && strlen(pw.pw_name) < sizeof(u->name))
		snprintf(u->name, sizeof(u->name), "%s", pw.pw_name);

	n = 64;
	for (;;) {
		int want = n;

		u->groups = calloc((size_t)n, sizeof(gid_t));
		if (!u->groups)
			return -1;
		if (!u->name[0]) {
			u->groups[0] = gid;
			u->ngroups = 1;
			return 0;
		}
		if (getgrouplist(u->name, gid, u->groups, &want) >= 0) {
			u->ngroups = want;
			return 0;
		}
		free(u->groups);
		u->groups = NULL;
		if (want <= n)
			want = n * 2;
		if (want > MAX_GROUPS) {
			errno = E2BIG;
			return -1;
		}
		n = want;
	}
}

/* Are any capabilities left in the effective set? A helper running with
 * SECBIT_NO_SETUID_FIXUP would keep them across setresuid and bypass the
 * permission checks we rely on. Raw syscall: we are a forked child. */
static bool caps_effective_empty(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	return data[0].effective == 0 && data[1].effective == 0;
}

static void child_send(int sock, int stage, int errnum, int fd)
{
	struct child_report rep = { .stage = stage, .errnum = errnum };
	struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* The forked child: only system calls from here on, then _exit. */
static __attribute__((noreturn)) void child_main(int sock, const char *path, uid_t uid,
						 gid_t gid, const struct user_info *u,
						 bool switch_creds)
{
	int fd;

	/* Not ptrace-able or core-dumped by the user while it holds our fds. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (switch_creds) {
		if (syscall(SYS_setgroups, (size_t)u->ngroups, u->groups) < 0) {
			child_send(sock, STAGE_SETGROUPS, errno, -1);
			_exit(1);
		}
		if (syscall(SYS_setresgid, gid, gid, gid) < 0) {
			child_send(sock, STAGE_SETGID, errno, -1);
			_exit(1);
		}
		if (syscall(SYS_setresuid, uid, uid, uid) < 0) {
			child_send(sock, STAGE_SETUID, errno, -1);
			_exit(1);
		}
		if (uid != 0 && !caps_effective_empty()) {
			child_send(sock, STAGE_CAPS, EPERM, -1);
			_exit(1);
		}
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		child_send(sock, STAGE_OPEN, errno, -1);
		_exit(1);
	}
	child_send(sock, STAGE_OPEN, 0, fd);
	_exit(0);
}

/* Receive the child's report and at most one fd; extra fds are closed. */
static int recv_report(int sock, struct child_report *rep, int *fd_out)
{
	struct iovec iov = { .iov_base = rep, .iov_len = sizeof(*rep) };
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t n;

	*fd_out = -1;
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t nfd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*fd_out < 0)
				*fd_out = fd;
			else
				close(fd);
		}
	}
	if (n != (ssize_t)sizeof(*rep) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		hpcn_closep(fd_out);
		errno = EPROTO;
		return -1;
	}
	return 0;
}

/* Reap the child, killing it if it is still there; bounded, a child stuck in
 * D state (hung NFS) is left for the caller's SIGCHLD handling. */
static void reap_child(pid_t pid, bool kill_it)
{
	if (!kill_it) {
		/* It has reported and has nothing left to do but exit: make sure
		 * of it (it runs as the user, who may SIGSTOP it), then wait,
		 * without the 5 ms naps below that every image reference used to
		 * pay. What it sent stays readable on the socket. */
		(void)kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return;
	}
	/* Killed, maybe stuck in an uninterruptible open (a hung file server):
	 * bounded, so the helper never hangs on it. */
	(void)kill(pid, SIGKILL);
	for (int i = 0; i < 200; i++) {
		pid_t r = waitpid(pid, NULL, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return;
		usleep(5000);
	}
}

static int open_error(struct hpcn_error *err, const char *path, int errnum,
		      const struct user_info *u, uid_t uid)
{
	char who[320];
	int rv;

	switch (errnum) {
	case EACCES:
	case EPERM:
		user_label(u, uid, who, sizeof(who));
		rv = hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path, "not readable by %s", who);
		break;
	case ENOENT:
		rv = hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path, "no such file");
		break;
	case ELOOP:
		rv = hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path, "is a symbolic link");
		break;
	case ENOTDIR:
		rv = hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				     "a path component is not a directory");
		break;
	default:
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errnum, path, "open");
	}
	if (err)
		err->sys_errno = errnum;
	return rv;
}

int hpcn_image_open_as_user(const char *path, uid_t uid, gid_t gid, int *fd_out,
			    struct hpcn_image_id *id, struct hpcn_error *err)
{
	struct user_info u = { .name = "" };
	struct child_report rep = { 0 };
	struct pollfd pfd = { .fd = -1, .events = POLLIN };
	unsigned long long deadline;
	int sv[2] = { -1, -1 };
	_cleanup_close_ int fd = -1;
	bool switch_creds = geteuid() == 0;
	bool reaped = false;
	pid_t pid = -1;
	int rv = -1, r;

	*fd_out = -1;
	if (!path || path[0] != '/')
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "image path must be absolute: %s", path ? path : "(null)");
	if (strlen(path) >= PATH_MAX)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "image path longer than %d bytes", PATH_MAX - 1);
	if (!switch_creds && uid != geteuid())
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				       "cannot open as uid %u: the helper is not root",
				       (unsigned)uid);
	if (user_info_get(uid, gid, &u) < 0) {
		hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path,
				     "looking up the groups of uid %u", (unsigned)uid);
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path, "socketpair");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path, "fork");
		goto out;
	}
	if (pid == 0) {
		close(sv[0]);
		child_main(sv[1], path, uid, gid, &u, switch_creds);
	}
	hpcn_closep(&sv[1]);

	pfd.fd = sv[0];
	deadline = hpcn_now_ms() + HPCN_IMAGE_OPEN_TIMEOUT_MS;
	for (;;) {
		unsigned long long now = hpcn_now_ms();

		r = now >= deadline ? 0 : poll(&pfd, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		break;
	}
	if (r == 0) {
		hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				"opening the image took more than %d ms (hung file system?)",
				HPCN_IMAGE_OPEN_TIMEOUT_MS);
		goto out;
	}
	if (r < 0 || recv_report(sv[0], &rep, &fd) < 0) {
		hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno ? errno : EPROTO, path,
				     "no answer from the process opening it as uid %u",
				     (unsigned)uid);
		goto out;
	}
	reap_child(pid, false);
	reaped = true;
	switch (rep.stage) {
	case STAGE_OPEN:
		if (rep.errnum) {
			open_error(err, path, rep.errnum, &u, uid);
			goto out;
		}
		break;
	case STAGE_SETGROUPS:
	case STAGE_SETGID:
	case STAGE_SETUID:
	case STAGE_CAPS:
	default:
		hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, rep.errnum, path,
				     "cannot take the credentials of uid %u gid %u (%s)",
				     (unsigned)uid, (unsigned)gid,
				     rep.stage == STAGE_SETGROUPS ? "setgroups" :
				     rep.stage == STAGE_SETGID ? "setresgid" :
				     rep.stage == STAGE_SETUID ? "setresuid" :
				     "capabilities left after setresuid");
		goto out;
	}
	if (fd < 0) {
		hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				"the opened file was not passed back");
		goto out;
	}
	if (hpcn_image_check_fd(fd, path, id, err) < 0)
		goto out;
	/* Only there so that a FIFO could not block the open. */
	r = fcntl(fd, F_GETFL);
	if (r < 0 || fcntl(fd, F_SETFL, r & ~O_NONBLOCK) < 0) {
		hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path, "fcntl");
		goto out;
	}
	*fd_out = hpcn_take_fd(&fd);
	rv = 0;
out:
	if (pid > 0 && !reaped)
		reap_child(pid, true);
	hpcn_closep(&sv[0]);
	hpcn_closep(&sv[1]);
	free(u.groups);
	return rv;
}

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

int hpcn_image_id_from_fd(int fd, struct hpcn_image_id *id)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -1;
	id->dev = (uint64_t)st.st_dev;
	id->ino = (uint64_t)st.st_ino;
	id->size = (uint64_t)st.st_size;
	id->mtime_sec = (int64_t)st.st_mtim.tv_sec;
	id->mtime_nsec = (int64_t)st.st_mtim.tv_nsec;
	return 0;
}

int hpcn_image_check_fd(int fd, const char *path_for_messages, struct hpcn_image_id *id,
			struct hpcn_error *err)
{
	unsigned char sb[HPCN_SQUASHFS_SUPERBLOCK_SIZE];
	char fdname[32];
	const char *path = msg_path(path_for_messages, fd, fdname, sizeof(fdname));
	struct stat st;
	uint64_t used;
	ssize_t n;
	int fl;

	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path,
					    "bad file descriptor %d", fd);
	if (fl & O_PATH)
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				       "descriptor opened with O_PATH, not for reading");
	if ((fl & O_ACCMODE) == O_WRONLY)
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				       "descriptor opened write-only, not for reading");
	if (fstat(fd, &st) < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path, "fstat");
	if (!S_ISREG(st.st_mode))
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path, "not a regular file");
	if (st.st_size < HPCN_SQUASHFS_SUPERBLOCK_SIZE)
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				       "file too small (%lld bytes) for a squashfs image",
				       (long long)st.st_size);
	do {
		n = pread(fd, sb, sizeof(sb), 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path,
					    "reading the superblock");
	if (n != (ssize_t)sizeof(sb))
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				       "file too small (short read of the superblock)");
	if (memcmp(sb, SQUASHFS_MAGIC_LE, 4) != 0)
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				       "not a squashfs image (bad magic)");
	/* The kernel only mounts 4.x; say so here rather than "Invalid argument". */
	if (le16(sb + 28) != 4)
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				       "unsupported squashfs version %u.%u",
				       le16(sb + 28), le16(sb + 30));
	used = le64(sb + 40);
	if (used > (uint64_t)st.st_size)
		return hpcn_error_setf(err, HPCN_E_MOUNT_FAILED, path,
				       "truncated image (superblock says %" PRIu64
				       " bytes, file has %lld)", used, (long long)st.st_size);
	if (id && hpcn_image_id_from_fd(fd, id) < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_FAILED, errno, path, "fstat");
	return 0;
}

int hpcn_image_id_key(const struct hpcn_image_id *id, char *out, size_t cap)
{
	int n;

	if (!id || !out || id->mtime_nsec < 0 || id->mtime_nsec >= 1000000000) {
		errno = EINVAL;
		return -1;
	}
	n = snprintf(out, cap, "%" PRIx64 "-%" PRIx64 "-%" PRIx64 "-%" PRIx64 ".%" PRIx64,
		     id->dev, id->ino, id->size, (uint64_t)id->mtime_sec,
		     (uint64_t)id->mtime_nsec);
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			out[0] = '\0';
		errno = ERANGE;
		return -1;
	}
	return n;
}

/* One field: 1..16 lowercase hex digits, no leading zero unless "0". */
static const char *parse_hex(const char *s, char end, uint64_t *v)
{
	size_t n = 0;

	*v = 0;
	for (; (s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'); n++) {
		if (n == 16)
			return NULL;
		*v = (*v << 4) | (uint64_t)(s[n] <= '9' ? s[n] - '0' : s[n] - 'a' + 10);
	}
	if (n == 0 || s[n] != end || (n > 1 && s[0] == '0'))
		return NULL;
	return s + n + (end ? 1 : 0);
}

int hpcn_image_id_from_key(const char *key, struct hpcn_image_id *id)
{
	uint64_t f[5];
	const char *p = key;
	static const char ends[5] = { '-', '-', '-', '.', '\0' };

	if (!key || strnlen(key, HPCN_IMAGE_KEY_MAX) >= HPCN_IMAGE_KEY_MAX)
		return -1;
	for (int i = 0; i < 5; i++) {
		p = parse_hex(p, ends[i], &f[i]);
		if (!p)
			return -1;
	}
	if (f[4] >= 1000000000)
		return -1;
	if (id) {
		id->dev = f[0];
		id->ino = f[1];
		id->size = f[2];
		id->mtime_sec = (int64_t)f[3];
		id->mtime_nsec = (int64_t)f[4];
	}
	return 0;
}

bool hpcn_image_id_equal(const struct hpcn_image_id *a, const struct hpcn_image_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

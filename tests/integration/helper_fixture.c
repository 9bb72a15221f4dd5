/* SPDX-License-Identifier: Apache-2.0 */
/* A real hpc-node-helper under a temporary directory (see helper_fixture.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hpcnode/client.h>
#include <hpcnode/readiness.h>
#include <hpcnode/wire.h>

#include "cgroup/cgroup.h"
#include "image/loopdev.h"
#include "image/mountinfo.h"
#include "helper_fixture.h"

static const char *const mount_points[2] = { "/user-environment", "/user-tools" };

void hfx_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

long long hfx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool hfx_wait_for(bool (*cond)(struct hfx *, const void *), struct hfx *fx, const void *arg,
		  int timeout_ms)
{
	long long end = hfx_now_ms() + timeout_ms;

	while (hfx_now_ms() < end) {
		if (cond(fx, arg))
			return true;
		hfx_sleep_ms(20);
	}
	return cond(fx, arg);
}

bool hfx_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(s);

	if (fd < 0)
		return -1;
	if (write(fd, s, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return close(fd);
}

int hfx_setup(struct hfx *fx)
{
	static int counter;
	struct hpcn_error err;

	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), HFX_DIR_PREFIX "XXXXXX");
	if (!mkdtemp(fx->dir)) {
		fprintf(stderr, "mkdtemp %s: %s\n", fx->dir, strerror(errno));
		fx->dir[0] = '\0';
		return -1;
	}
	/* Unprivileged test clients must reach the socket. */
	chmod(fx->dir, 0755);
	snprintf(fx->conf, sizeof(fx->conf), "%s/helper.conf", fx->dir);
	snprintf(fx->sock, sizeof(fx->sock), "%s/run/handoff.sock", fx->dir);
	snprintf(fx->ready, sizeof(fx->ready), "%s/run/ready", fx->dir);
	snprintf(fx->state, sizeof(fx->state), "%s/state", fx->dir);
	snprintf(fx->audit, sizeof(fx->audit), "%s/audit.jsonl", fx->dir);
	snprintf(fx->mount_base, sizeof(fx->mount_base), "%s/uenv", fx->dir);
	snprintf(fx->socket_mode, sizeof(fx->socket_mode), "0660");
	fx->hold_time = 2;
	fx->reconcile_interval = 1;
	fx->max_images = 4;

	if (hpcn_cgroup_detect_root(fx->cg_mount, sizeof(fx->cg_mount), &err) < 0) {
		fprintf(stderr, "no cgroup2 mount: %s\n", err.message);
		return -1;
	}
	snprintf(fx->cg_root, sizeof(fx->cg_root), "%.3000s/hpcn-it-%d-%d", fx->cg_mount,
		 (int)getpid(), counter++);
	if (mkdir(fx->cg_root, 0755) < 0) {
		fprintf(stderr, "mkdir %s: %s\n", fx->cg_root, strerror(errno));
		fx->cg_root[0] = '\0';
		return -1;
	}
	/* The allowed mount points, created on the host when missing (the
	 * namespaces share the host's root file system), as a node image ships
	 * them. Never removed: an rmdir on the host detaches whatever other
	 * mount namespaces (another test's running steps) mounted there. */
	for (int i = 0; i < 2; i++)
		if (!hfx_exists(mount_points[i]))
			mkdir(mount_points[i], 0755);
	return 0;
}

int hfx_write_conf(struct hfx *fx)
{
	FILE *f = fopen(fx->conf, "we");

	if (!f)
		return -1;
	fprintf(f,
		"[helper]\n"
		"socket = %s\n"
		"socket_mode = %s\n"
		"ready_file = %s\n"
		"state_dir = %s\n"
		"log_level = notice\n"
		"log_target = stderr\n"
		"audit_log = %s\n"
		"[access]\n"
		"allowed_users =\n"
		"allowed_groups =\n"
		"[cgroup]\n"
		"enabled = true\n"
		"root = %s\n"
		"limits_mandatory = false\n"
		"kill_timeout = 5\n"
		"[uenv]\n"
		"mount_base = %s\n"
		"hold_time = %u\n"
		"allowed_mount_points = /user-environment, /user-tools\n"
		"create_mount_points = /user-environment, /user-tools\n"
		"image_prefixes = %s\n"
		"max_images = %u\n"
		"[namespaces]\n"
		"allow_pid = true\n"
		"allow_net = true\n"
		"[reconcile]\n"
		"interval = %u\n",
		fx->sock, fx->socket_mode, fx->ready, fx->state, fx->audit, fx->cg_root,
		fx->mount_base, fx->hold_time, fx->image_prefixes, fx->max_images,
		fx->reconcile_interval);
	return fclose(f);
}

/* fork+exec the helper on fx->conf as it is; stderr appended to log_path
 * when given. */
static pid_t spawn_conf(struct hfx *fx, const char *log_path)
{
	const char *bin = getenv("HPCN_HELPER_BIN");
	int logfd = -1;
	pid_t pid;

	if (!bin)
		bin = HPCN_BINARY_DIR "/helper/hpc-node-helper";
	if (log_path) {
		logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (logfd < 0) {
			fprintf(stderr, "opening %s: %s\n", log_path, strerror(errno));
			return -1;
		}
	}
	pid = fork();
	if (pid < 0) {
		if (logfd >= 0)
			close(logfd);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Never outlive the test binary. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (logfd >= 0 && dup2(logfd, STDERR_FILENO) < 0)
			_exit(126);
		close_range(3, ~0u, 0);
		if (fx->exec_prefix) {
			const char *argv[64];
			size_t n = 0;

			for (; fx->exec_prefix[n] && n < 59; n++)
				argv[n] = fx->exec_prefix[n];
			argv[n++] = bin;
			argv[n++] = "-f";
			argv[n++] = "-c";
			argv[n++] = fx->conf;
			argv[n] = NULL;
			execv(argv[0], (char *const *)argv);
			bin = argv[0];
		} else {
			execl(bin, bin, "-f", "-c", fx->conf, (char *)NULL);
		}
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	if (logfd >= 0)
		close(logfd);
	fx->pid = pid;
	return pid;
}

pid_t hfx_spawn(struct hfx *fx)
{
	if (hfx_write_conf(fx) < 0) {
		fprintf(stderr, "writing %s: %s\n", fx->conf, strerror(errno));
		return -1;
	}
	return spawn_conf(fx, NULL);
}

pid_t hfx_spawn_as_written(struct hfx *fx, const char *log_path)
{
	return spawn_conf(fx, log_path);
}

/* The ready file of this instance: a stale one (e.g. after SIGKILL) names
 * another pid. */
static bool ready_is_ours(struct hfx *fx)
{
	char buf[512], want[32];
	ssize_t n;
	int fd = open(fx->ready, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	snprintf(want, sizeof(want), "pid=%d\n", (int)fx->pid);
	return strstr(buf, want) != NULL;
}

static int wait_ready(struct hfx *fx)
{
	struct hpcn_error err;
	long long end = hfx_now_ms() + 2 * HFX_TIMEOUT_MS;

	while (hfx_now_ms() < end) {
		int st;

		if (hpcn_is_ready(fx->ready) && ready_is_ours(fx))
			return 0;
		if (waitpid(fx->pid, &st, WNOHANG) == fx->pid) {
			fprintf(stderr, "the helper exited before it was ready (status %#x)\n", st);
			fx->pid = 0;
			return -1;
		}
		hfx_sleep_ms(20);
	}
	if (hpcn_wait_ready(fx->ready, 10, &err) == 0 && ready_is_ours(fx))
		return 0;
	fprintf(stderr, "the helper (pid %d) did not become ready in %d ms\n", (int)fx->pid,
		2 * HFX_TIMEOUT_MS);
	hfx_stop(fx, SIGKILL, 2000);
	return -1;
}

int hfx_start(struct hfx *fx)
{
	if (hfx_spawn(fx) < 0)
		return -1;
	return wait_ready(fx);
}

int hfx_start_as_written(struct hfx *fx, const char *log_path)
{
	if (spawn_conf(fx, log_path) < 0)
		return -1;
	return wait_ready(fx);
}

int hfx_conf_replace(struct hfx *fx, const char *from, const char *to)
{
	char buf[16384], out[16384 + 1024];
	size_t flen = strlen(from), n;
	const char *hit;
	FILE *f = fopen(fx->conf, "re");

	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	hit = strstr(buf, from);
	if (!hit || strlen(to) > 1024) {
		fprintf(stderr, "%s: no \"%s\" to replace\n", fx->conf, from);
		return -1;
	}
	snprintf(out, sizeof(out), "%.*s%s%s", (int)(hit - buf), buf, to, hit + flen);
	return write_str(fx->conf, out);
}

int hfx_wait_child(pid_t pid, int timeout_ms)
{
	int st;
	long long end = hfx_now_ms() + timeout_ms;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (r < 0 || hfx_now_ms() >= end)
			return -1;
		hfx_sleep_ms(10);
	}
}

int hfx_stop(struct hfx *fx, int sig, int timeout_ms)
{
	int st;

	if (fx->pid <= 0)
		return -1;
	kill(fx->pid, sig);
	st = hfx_wait_child(fx->pid, timeout_ms);
	if (st < 0) {
		kill(fx->pid, SIGKILL);
		hfx_wait_child(fx->pid, 5000);
	}
	fx->pid = 0;
	return st;
}

bool hfx_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

void hfx_track(struct hfx *fx, pid_t pid)
{
	if (pid > 0 && fx->n_kids < HFX_MAX_KIDS)
		fx->kids[fx->n_kids++] = pid;
}

pid_t hfx_fork_sleeper(struct hfx *fx)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	hfx_track(fx, pid);
	return pid;
}

/* ---- protocol ---- */

int hfx_connect(struct hfx *fx)
{
	struct hpcn_error err;
	int fd = hpcn_client_connect(fx->sock, HFX_TIMEOUT_MS, &err);

	if (fd < 0)
		fprintf(stderr, "connect %s: %s\n", fx->sock, err.message);
	return fd;
}

int hfx_call(int sock, const struct hpcn_msg *req, const int *fds, size_t nfds,
	     struct hpcn_msg *resp, int *rfds, size_t *nrfds, struct hpcn_error *err)
{
	int dummy[HPCN_MAX_MESSAGE_FDS];
	size_t nd = 0;

	if (!rfds) {
		rfds = dummy;
		nrfds = &nd;
	}
	if (hpcn_client_call(sock, req, fds, nfds, resp, rfds, nrfds, HPCN_MAX_MESSAGE_FDS,
			     HFX_TIMEOUT_MS, err) < 0)
		return -1;
	if (rfds == dummy)
		hpcn_close_fds(dummy, nd);
	return 0;
}

int hfx_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds,
	    struct hpcn_msg *resp, struct hpcn_error *err)
{
	int rfds[HPCN_MAX_MESSAGE_FDS];
	size_t nr = 0;
	struct timeval tv = { .tv_sec = HFX_TIMEOUT_MS / 1000 };
	int r;

	union {
		char buf[CMSG_SPACE(sizeof(int) * HPCN_MAX_MESSAGE_FDS)];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	memset(resp, 0, sizeof(*resp));
	/* Our own sendmsg: the library's refuses what we want to send. */
	if (nfds > 0 && nfds <= HPCN_MAX_MESSAGE_FDS) {
		struct cmsghdr *ch;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		ch = CMSG_FIRSTHDR(&mh);
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		ch->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(ch), fds, sizeof(int) * nfds);
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_FD_PASSING, errno, NULL, "sendmsg");
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r = hpcn_recv_msg(sock, resp, rfds, &nr, HPCN_MAX_MESSAGE_FDS, err);
	hpcn_close_fds(rfds, nr);
	if (r == 0) {
		hpcn_error_set(err, HPCN_E_NS_SOCKET_UNAVAILABLE, "EOF", NULL);
		return -1;
	}
	return r < 0 ? -1 : 0;
}

json_t *hfx_status(struct hfx *fx)
{
	struct hpcn_msg req, resp;
	struct hpcn_error err;
	json_t *j = NULL;
	int sock = hfx_connect(fx);

	if (sock < 0)
		return NULL;
	hpcn_msg_init(&req, HPCN_TAG_STATUS_REQUEST);
	req.seq = 77;
	req.u.json = strdup("{}");
	if (hfx_call(sock, &req, NULL, 0, &resp, NULL, NULL, &err) < 0) {
		fprintf(stderr, "StatusRequest: %s\n", err.message);
	} else if (resp.tag != HPCN_TAG_STATUS || !resp.u.json) {
		fprintf(stderr, "StatusRequest: reply tag %s\n", hpcn_tag_name(resp.tag));
	} else {
		j = json_loads(resp.u.json, 0, NULL);
	}
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);
	close(sock);
	return j;
}

json_t *hfx_status_alloc(json_t *status, const char *id)
{
	json_t *a;
	size_t i;

	json_array_foreach(json_object_get(status, "allocations"), i, a)
		if (strcmp(json_string_value(json_object_get(a, "allocation_id")) ?: "", id) == 0)
			return a;
	return NULL;
}

json_t *hfx_status_mount_of(json_t *status, const char *image)
{
	json_t *m;
	size_t i;

	json_array_foreach(json_object_get(status, "mounts"), i, m)
		if (strcmp(json_string_value(json_object_get(m, "image_path")) ?: "", image) == 0)
			return m;
	return NULL;
}

size_t hfx_status_n_allocs(json_t *status)
{
	return json_array_size(json_object_get(status, "allocations"));
}

int hfx_end(struct hfx *fx, const char *id, struct hpcn_error *err)
{
	return hpcn_end_allocation(fx->sock, HFX_TIMEOUT_MS, id, NULL, err);
}

int hfx_attach(struct hfx *fx, const char *id, pid_t pid, struct hpcn_error *err)
{
	struct hpcn_msg req, resp;
	int sock = hpcn_client_connect(fx->sock, HFX_TIMEOUT_MS, err);
	int rv;

	if (sock < 0)
		return -1;
	hpcn_msg_init(&req, HPCN_TAG_ATTACH);
	req.seq = 5;
	req.u.attach.allocation_id = strdup(id);
	req.u.attach.pid = pid;
	rv = hfx_call(sock, &req, NULL, 0, &resp, NULL, NULL, err);
	if (rv == 0 && resp.tag != HPCN_TAG_OK)
		rv = hpcn_error_setf(err, HPCN_E_INTERNAL, NULL, "Attach answered %s",
				     hpcn_tag_name(resp.tag));
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);
	close(sock);
	return rv;
}

/* ---- kernel state ---- */

void hfx_cg_path(struct hfx *fx, const char *rel, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s%s", fx->cg_root, rel[0] ? "/" : "", rel);
}

bool hfx_cg_has_pid(struct hfx *fx, const char *rel, pid_t pid)
{
	char path[PATH_MAX * 2], line[64];
	bool found = false;
	FILE *f;

	hfx_cg_path(fx, rel, path, sizeof(path) - 16);
	strcat(path, "/cgroup.procs");
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (atoi(line) == pid)
			found = true;
	fclose(f);
	return found;
}

struct under_ctx {
	const char *prefix;
	size_t plen;
	int n;
	int id;
	char (*paths)[PATH_MAX];
	size_t cap;
};

static bool is_under(const char *path, const char *prefix, size_t plen)
{
	return strncmp(path, prefix, plen) == 0 && (path[plen] == '/' || path[plen] == '\0');
}

static int count_cb(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct under_ctx *c = ud;

	if (is_under(e->mount_point, c->prefix, c->plen)) {
		if (c->paths && (size_t)c->n < c->cap)
			snprintf(c->paths[c->n], PATH_MAX, "%s", e->mount_point);
		c->n++;
	}
	return 0;
}

int hfx_count_mounts_under(const char *prefix)
{
	struct under_ctx c = { .prefix = prefix, .plen = strlen(prefix) };
	struct hpcn_error err;

	if (hpcn_mountinfo_parse_file(NULL, count_cb, &c, &err) < 0)
		return -1;
	return c.n;
}

static int id_cb(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct under_ctx *c = ud;

	if (strcmp(e->mount_point, c->prefix) == 0)
		c->id = e->mount_id; /* the last one: the top of a stack */
	return 0;
}

int hfx_mount_id(const char *path)
{
	struct under_ctx c = { .prefix = path, .id = -1 };
	struct hpcn_error err;

	if (hpcn_mountinfo_parse_file(NULL, id_cb, &c, &err) < 0)
		return -1;
	return c.id;
}

int hfx_count_loops_of(const char *path)
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
		if (strcmp(file, path) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int hfx_audit_count(struct hfx *fx, const char *needle, ...)
{
	char line[8192];
	int n = 0;
	FILE *f = fopen(fx->audit, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		bool all = true;
		va_list ap;

		va_start(ap, needle);
		for (const char *s = needle; s; s = va_arg(ap, const char *))
			if (!strstr(line, s))
				all = false;
		va_end(ap);
		n += all;
	}
	fclose(f);
	return n;
}

/* ---- teardown ---- */

static void end_all_via_helper(struct hfx *fx)
{
	json_t *st, *a;
	size_t i;

	if (fx->pid <= 0 || !hfx_alive(fx->pid))
		return;
	st = hfx_status(fx);
	if (!st)
		return;
	json_array_foreach(json_object_get(st, "allocations"), i, a) {
		struct hpcn_error err;
		const char *id = json_string_value(json_object_get(a, "allocation_id"));

		if (id && hfx_end(fx, id, &err) < 0)
			fprintf(stderr, "teardown: ending %s: %s\n", id, err.message);
	}
	json_decref(st);
}

static bool comm_is(pid_t pid, const char *want)
{
	char path[64], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return strcmp(buf, want) == 0;
}

/* pid namespace holders noted in <state>/ns/<id>/holder: not our children. */
static void kill_holders(struct hfx *fx)
{
	char dir[PATH_MAX + 8];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/ns", fx->state);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char p[PATH_MAX * 2], buf[32];
		int fd;
		ssize_t n;
		pid_t pid;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/holder", dir, de->d_name);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		pid = (pid_t)atoi(buf);
		if (pid > 1 && comm_is(pid, "hpcn-pidns-hold")) {
			fprintf(stderr, "teardown: killing holder %d of %s\n", (int)pid,
				de->d_name);
			kill(pid, SIGKILL);
		}
	}
	closedir(d);
}

static bool cg_populated(const char *path)
{
	char p[PATH_MAX + 32], buf[256];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/cgroup.events", path);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "populated 1") != NULL;
}

static int rmdir_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	return 0;
}

static void kill_cgroup_tree(const char *root)
{
	char p[PATH_MAX + 32];

	if (!root[0] || !hfx_exists(root))
		return;
	snprintf(p, sizeof(p), "%s/cgroup.kill", root);
	write_str(p, "1");
	for (long long end = hfx_now_ms() + HFX_WAIT_MS; hfx_now_ms() < end && cg_populated(root);)
		hfx_sleep_ms(20);
	/* cgroupfs: only directories can (and need to) be removed. */
	nftw(root, rmdir_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (hfx_exists(root))
		fprintf(stderr, "teardown: cannot remove cgroup %s: %s\n", root, strerror(errno));
}

static void unmount_under(const char *prefix)
{
	static char paths[256][PATH_MAX];

	for (int round = 0; round < 16; round++) {
		struct under_ctx c = { .prefix = prefix, .plen = strlen(prefix), .paths = paths,
				       .cap = 256 };
		struct hpcn_error err;

		if (hpcn_mountinfo_parse_file(NULL, count_cb, &c, &err) < 0 || c.n == 0)
			return;
		/* mountinfo lists parents before children: the last first. */
		for (int i = (c.n < 256 ? c.n : 256); i-- > 0;)
			umount2(paths[i], MNT_DETACH | UMOUNT_NOFOLLOW);
	}
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

void hfx_teardown(struct hfx *fx)
{
	if (!fx->dir[0] && !fx->cg_root[0])
		return;
	end_all_via_helper(fx);
	if (fx->pid > 0)
		hfx_stop(fx, SIGKILL, 5000);
	for (size_t i = 0; i < fx->n_kids; i++) {
		kill(fx->kids[i], SIGKILL);
		hfx_wait_child(fx->kids[i], 2000);
	}
	fx->n_kids = 0;
	if (fx->dir[0])
		kill_holders(fx);
	kill_cgroup_tree(fx->cg_root);
	fx->cg_root[0] = '\0';
	if (fx->dir[0]) {
		unmount_under(fx->dir);
		nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
		fx->dir[0] = '\0';
	}
}

int hfx_request(struct hfx *fx, const char *id, const enum hpcn_ns_type *types, size_t n,
		const char *image, struct hpcn_namespace_response *resp,
		int fds[HPCN_NS__COUNT], struct hpcn_error *err)
{
	struct hpcn_msg m;
	int rv;

	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	m.u.ns_request.allocation_id = strdup(id);
	for (size_t i = 0; i < n; i++)
		m.u.ns_request.namespaces[m.u.ns_request.n_namespaces++] = types[i];
	if (image)
		m.u.ns_request.uenv_image = strdup(image);
	rv = hpcn_request_namespaces(fx->sock, HFX_TIMEOUT_MS, &m.u.ns_request, NULL, 0, resp,
				     fds, err);
	hpcn_msg_free(&m);
	return rv;
}

pid_t hfx_start_reader(struct hfx *fx, int mnt_fd, const char *path, const char *marker,
		       int *rd)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(pfd[0]);
		if (setns(mnt_fd, CLONE_NEWNS) < 0)
			_exit(2);
		for (;;) {
			char buf[64];
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

			if (fd >= 0)
				close(fd);
			if (n <= 0 || (buf[n] = '\0', !strstr(buf, marker))) {
				(void)!write(pfd[1], "F", 1);
				_exit(3);
			}
			if (write(pfd[1], "r", 1) != 1)
				_exit(4);
			hfx_sleep_ms(20);
		}
	}
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	*rd = pfd[0];
	hfx_track(fx, pid);
	return pid;
}

int hfx_reader_drain(int rd)
{
	char buf[4096];
	int good = 0;
	ssize_t n;

	while ((n = read(rd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == 'F')
				return -1;
			good++;
		}
	return good;
}

int hfx_reader_wait(int rd, int timeout_ms)
{
	long long end = hfx_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pf = { .fd = rd, .events = POLLIN };
		long long left = end - hfx_now_ms();

		if (left <= 0)
			return 0;
		if (poll(&pf, 1, (int)left) == 1)
			return hfx_reader_drain(rd);
	}
}

int hfx_count_entries(const char *path)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(path);

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

int hfx_count_fds(pid_t pid)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
	return hfx_count_entries(p);
}

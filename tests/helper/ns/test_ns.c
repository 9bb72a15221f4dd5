/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The namespace module against the real kernel (root): namespaces created,
 * pinned, joined, rediscovered and released; mounts attached inside; and the
 * undo of failed creations. Each test works in its own mkdtemp directory
 * with its own ns_dir; the teardown releases everything, also after a
 * failure, and checks that no mount and no holder process is left.
 *
 * The test process is a child subreaper: the holders it creates (double
 * forked, so orphans) are reparented to it, which lets it count exactly its
 * own holders and reap them. Forked children never return into cmocka.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/nsfs.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "ns/ns.h"
#include "util.h"

#define MAX_TRACK 16

struct fx {
	char dir[PATH_MAX];
	char ns_dir[PATH_MAX];
	char allocs[MAX_TRACK][HPCN_ALLOC_ID_MAX + 1];
	size_t nallocs;
	char host_mounts[MAX_TRACK][PATH_MAX]; /* made by the test, undone in reverse */
	size_t nhost_mounts;
	pid_t kids[MAX_TRACK];                 /* to SIGKILL and reap */
	size_t nkids;
};

/* ---- small helpers (parent side) ---- */

static void pathf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void mkdir_or_fail(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", path, strerror(errno));
}

static void write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	if (!f)
		fail_msg("creating %s: %s", path, strerror(errno));
	fputs(s, f);
	fclose(f);
}

static void track_alloc(struct fx *fx, const char *id)
{
	for (size_t i = 0; i < fx->nallocs; i++)
		if (strcmp(fx->allocs[i], id) == 0)
			return;
	assert_true(fx->nallocs < MAX_TRACK);
	snprintf(fx->allocs[fx->nallocs++], HPCN_ALLOC_ID_MAX + 1, "%s", id);
}

static void track_mount(struct fx *fx, const char *path)
{
	assert_true(fx->nhost_mounts < MAX_TRACK);
	snprintf(fx->host_mounts[fx->nhost_mounts++], PATH_MAX, "%s", path);
}

static void track_kid(struct fx *fx, pid_t pid)
{
	assert_true(fx->nkids < MAX_TRACK);
	fx->kids[fx->nkids++] = pid;
}

static void host_mount_tmpfs(struct fx *fx, const char *path)
{
	mkdir_or_fail(path);
	if (mount("hpcn-test", path, "tmpfs", 0, "size=1m,mode=0755") < 0)
		fail_msg("mount tmpfs at %s: %s", path, strerror(errno));
	track_mount(fx, path);
}

/* A host directory made a shared mount of its own. */
static void host_make_shared(struct fx *fx, const char *path)
{
	mkdir_or_fail(path);
	if (mount(path, path, "none", MS_BIND, NULL) < 0)
		fail_msg("bind %s: %s", path, strerror(errno));
	track_mount(fx, path);
	if (mount("none", path, "none", MS_SHARED, NULL) < 0)
		fail_msg("make %s shared: %s", path, strerror(errno));
}

static bool is_mount_point(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, 0, &stx) < 0)
		return false;
	return stx.stx_attributes & STATX_ATTR_MOUNT_ROOT;
}

/* Mounts of the host whose mount point is dir or below it. */
static int count_mounts_under(const char *dir)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	size_t n = strlen(dir);
	int count = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX];

		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		if (strncmp(mp, dir, n) == 0 && (mp[n] == '\0' || mp[n] == '/'))
			count++;
	}
	fclose(f);
	return count;
}

static bool proc_field(pid_t pid, char *state, pid_t *ppid, char *comm, size_t commcap)
{
	char path[64], buf[1024];
	char *rp;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	if (!rp || sscanf(rp + 2, "%c %d", state, ppid) != 2)
		return false;
	if (comm) {
		char *lp = strchr(buf, '(');

		*rp = '\0';
		snprintf(comm, commcap, "%s", lp ? lp + 1 : "");
	}
	return true;
}

/* Our live (non-zombie) children that are holders: ours, reparented to us. */
static int count_our_holders(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int count = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		char state, comm[64];
		pid_t pid = (pid_t)atoi(de->d_name), ppid;

		if (pid <= 0 || !proc_field(pid, &state, &ppid, comm, sizeof(comm)))
			continue;
		if (ppid == getpid() && state != 'Z' && strcmp(comm, HPCN_NS_HOLDER_COMM) == 0)
			count++;
	}
	closedir(d);
	return count;
}

static void reap_zombies(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* Waits for something that must happen are bounded by wall-clock time,
 * only against a hang (a loaded machine is slow). */
#define GONE_MS 60000

static long long now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Wait until pid no longer exists at all; reaps it if it is ours. */
static bool wait_gone(pid_t pid, long timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	for (;;) {
		waitpid(pid, NULL, WNOHANG);
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(5);
	}
}

static ino_t ino_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;
	return st.st_ino;
}

static ino_t fd_ino(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

/* Fork; the child joins ns_fd (nstype) and returns fn's value as exit code. */
static int run_joined(int ns_fd, int nstype, int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (ns_fd >= 0 && setns(ns_fd, nstype) < 0)
			_exit(99);
		_exit(fn(arg));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return 200 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct hpcn_error err = { 0 };

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/hpcn-ns-XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	pathf(fx->ns_dir, "%s/ns", fx->dir);
	if (hpcn_ns_setup_dir(fx->ns_dir, &err) < 0) {
		fprintf(stderr, "hpcn_ns_setup_dir: %s\n", err.message);
		rmdir(fx->dir);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	struct hpcn_error err = { 0 };
	int bad = 0;

	for (size_t i = 0; i < fx->nallocs; i++)
		if (hpcn_ns_release(fx->ns_dir, fx->allocs[i], 0, &err) < 0) {
			fprintf(stderr, "teardown: release %s: %s\n", fx->allocs[i], err.message);
			bad = 1;
		}
	for (size_t i = 0; i < fx->nkids; i++) {
		kill(fx->kids[i], SIGKILL);
		waitpid(fx->kids[i], NULL, 0);
	}
	for (size_t i = fx->nhost_mounts; i-- > 0; )
		umount2(fx->host_mounts[i], MNT_DETACH);
	/* What is left under dir now is ns_dir alone: a pin left over by a
	 * release would show here. */
	if (count_mounts_under(fx->dir) != 1) {
		fprintf(stderr, "teardown: %d mounts under %s, expected 1 (ns_dir)\n",
			count_mounts_under(fx->dir), fx->dir);
		bad = 1;
	}
	umount2(fx->ns_dir, MNT_DETACH);
	if (count_mounts_under(fx->dir) != 0)
		bad = 1;
	for (long long end = now_ms() + GONE_MS; now_ms() < end;) {
		reap_zombies();
		if (count_our_holders() == 0)
			break;
		sleep_ms(10);
	}
	if (count_our_holders() != 0) {
		fprintf(stderr, "teardown: %d holder processes left\n", count_our_holders());
		bad = 1;
	}
	nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	free(fx);
	return bad ? -1 : 0;
}

static const enum hpcn_ns_type all3[] = { HPCN_NS_PID, HPCN_NS_NET, HPCN_NS_MOUNT };
static const enum hpcn_ns_type net_only_1[] = { HPCN_NS_NET };

static void create_ok(struct fx *fx, const char *id, const enum hpcn_ns_type *types, size_t n,
		      int base_fd, struct hpcn_ns_set *set)
{
	struct hpcn_error err = { 0 };

	track_alloc(fx, id);
	if (hpcn_ns_create(fx->ns_dir, id, types, n, base_fd, set, &err) < 0)
		fail_msg("hpcn_ns_create %s: %s", id, err.message);
}

static int open_ok(struct fx *fx, const char *id, enum hpcn_ns_type t)
{
	struct hpcn_error err = { 0 };
	int fd = hpcn_ns_open(fx->ns_dir, id, t, &err);

	if (fd < 0)
		fail_msg("hpcn_ns_open %s %s: %s", id, hpcn_ns_type_name(t), err.message);
	return fd;
}

/* The pid (as we see it) of a child of parent, or 0. */
static pid_t find_child_of(pid_t parent)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		char st;
		pid_t pid = (pid_t)atoi(de->d_name), pp;

		if (pid > 0 && proc_field(pid, &st, &pp, NULL, 0) && pp == parent)
			found = pid;
	}
	closedir(d);
	return found;
}

/*
 * A process joined to the allocation's pid, net and mount namespaces that
 * sleeps until killed. It is a grandchild made inside the pid namespace
 * whose parent exits: so it is reparented to the holder, as the processes
 * of a job are. (A process forked from outside after setns goes, when its
 * parent dies, to the parent's reaper instead.) Returns its pid as we see it.
 */
static pid_t start_joined_sleeper(struct fx *fx, const char *id)
{
	int pidfd = open_ok(fx, id, HPCN_NS_PID);
	int netfd = open_ok(fx, id, HPCN_NS_NET);
	int mntfd = open_ok(fx, id, HPCN_NS_MOUNT);
	int p[2], status;
	pid_t mid, sleeper = 0;

	assert_int_equal(pipe(p), 0);
	mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) {
		int go[2], up[2];
		pid_t inner, s = 0;
		char c;

		if (setns(pidfd, CLONE_NEWPID) < 0 || setns(netfd, CLONE_NEWNET) < 0 ||
		    setns(mntfd, CLONE_NEWNS) < 0 || pipe(go) < 0 || pipe(up) < 0)
			_exit(1);
		inner = fork();
		if (inner < 0)
			_exit(2);
		if (inner == 0) {
			close(go[1]);
			close(up[0]);
			if (fork() == 0) {
				for (;;)
					pause();
			}
			/* Forked; wait until our parent has seen the child. */
			if (write(up[1], "f", 1) != 1 || read(go[0], &c, 1) < 0)
				_exit(1);
			_exit(0);
		}
		close(go[0]);
		close(up[1]);
		if (read(up[0], &c, 1) != 1)
			_exit(3);
		s = find_child_of(inner);
		close(go[1]);
		if (waitpid(inner, NULL, 0) != inner || s <= 0)
			_exit(4);
		if (write(p[1], &s, sizeof(s)) != sizeof(s))
			_exit(5);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(waitpid(mid, &status, 0), mid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(read(p[0], &sleeper, sizeof(sleeper)), sizeof(sleeper));
	close(p[0]);
	close(pidfd);
	close(netfd);
	close(mntfd);
	assert_true(sleeper > 0);
	return sleeper;
}

/* ---- tests ---- */

static void test_create_open_idempotent(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set, again;
	struct hpcn_error err = { 0 };
	struct hpcn_strv ids = { 0 };
	ino_t inos[HPCN_NS__COUNT];
	char state_c, comm[64];
	pid_t ppid;

	create_ok(fx, "12.0", all3, 3, -1, &set);
	assert_string_equal(set.allocation_id, "12.0");
	for (int i = 0; i < HPCN_NS__COUNT; i++)
		assert_true(set.present[i]);
	assert_true(set.pid_holder > 0);
	assert_true(proc_field(set.pid_holder, &state_c, &ppid, comm, sizeof(comm)));
	assert_string_equal(comm, HPCN_NS_HOLDER_COMM);
	/* It settles into its sleep (just created, it may still be running
	 * on a loaded machine: wait for the state, do not assume a speed). */
	for (long long end = now_ms() + GONE_MS; state_c != 'S' && now_ms() < end;) {
		sleep_ms(5);
		assert_true(proc_field(set.pid_holder, &state_c, &ppid, comm, sizeof(comm)));
	}
	assert_true(state_c == 'S');

	for (int i = 0; i < HPCN_NS__COUNT; i++) {
		enum hpcn_ns_type t = (enum hpcn_ns_type)i;
		char self[64];
		int fd = open_ok(fx, "12.0", t);

		assert_int_equal(ioctl(fd, NS_GET_NSTYPE), hpcn_ns_type_clone_flag(t));
		snprintf(self, sizeof(self), "/proc/self/ns/%s", hpcn_ns_type_proc_name(t));
		inos[i] = fd_ino(fd);
		assert_true(inos[i] != 0);
		assert_true(inos[i] != ino_of(self));
		/* The fd is close-on-exec: it goes to a client, not to our exec's. */
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		close(fd);
	}
	/* The holder is pid 1 of exactly the pinned pid namespace. */
	{
		char p[64];

		snprintf(p, sizeof(p), "/proc/%d/ns/pid", (int)set.pid_holder);
		assert_int_equal(ino_of(p), inos[HPCN_NS_PID]);
	}

	/* The same request again returns the same set. */
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "12.0", all3, 3, -1, &again, &err), 0);
	assert_int_equal(again.pid_holder, set.pid_holder);
	for (int i = 0; i < HPCN_NS__COUNT; i++) {
		int fd = open_ok(fx, "12.0", (enum hpcn_ns_type)i);

		assert_true(again.present[i]);
		assert_int_equal(fd_ino(fd), inos[i]);
		close(fd);
	}
	assert_int_equal(count_our_holders(), 1);

	/* A subset of what exists is the same request too; a superset is not. */
	{
		const enum hpcn_ns_type net_only[] = { HPCN_NS_NET, HPCN_NS_NET };
		const enum hpcn_ns_type net_pid[] = { HPCN_NS_NET, HPCN_NS_PID };

		assert_int_equal(hpcn_ns_create(fx->ns_dir, "12.0", net_only, 2, -1, &again,
						&err), 0);
		create_ok(fx, "13.0", net_only, 2, -1, &again);
		assert_false(again.present[HPCN_NS_PID]);
		assert_int_equal(again.pid_holder, 0);
		assert_int_equal(hpcn_ns_create(fx->ns_dir, "13.0", net_pid, 2, -1, &again, &err),
				 -1);
		assert_int_equal(err.kind, HPCN_E_BUSY);
		assert_non_null(strstr(err.message, "13.0"));
		assert_non_null(strstr(err.message, "Pid"));
		/* Not pinned: a clear error, no fd. */
		assert_int_equal(hpcn_ns_open(fx->ns_dir, "13.0", HPCN_NS_MOUNT, &err), -1);
		assert_int_equal(err.kind, HPCN_E_NOT_FOUND);
		assert_int_equal(hpcn_ns_open(fx->ns_dir, "nope", HPCN_NS_NET, &err), -1);
		assert_int_equal(err.kind, HPCN_E_NS_ALLOCATION_NOT_FOUND);
		assert_string_equal(err.message, "allocation not found: nope");
	}

	/* Only directories with valid ids are allocations. */
	{
		char stray[PATH_MAX];

		pathf(stray, "%s/stray-file", fx->ns_dir);
		write_file(stray, "");
		pathf(stray, "%s/bad name", fx->ns_dir);
		mkdir_or_fail(stray);
		/* An empty leftover directory is taken over by a create. */
		pathf(stray, "%s/14.0", fx->ns_dir);
		mkdir_or_fail(stray);
		create_ok(fx, "14.0", net_only_1, 1, -1, &again);
		assert_true(again.present[HPCN_NS_NET]);
		assert_int_equal(hpcn_ns_release(fx->ns_dir, "14.0", 0, &err), 0);
	}
	assert_int_equal(hpcn_ns_list(fx->ns_dir, &ids, &err), 0);
	assert_int_equal(ids.n, 2);
	assert_string_equal(ids.v[0], "12.0");
	assert_string_equal(ids.v[1], "13.0");
	hpcn_strv_free(&ids);
}

/* -- joined processes -- */

static int child_pid_numbering(void *arg)
{
	pid_t c = fork();
	int status;

	if (c < 0)
		return 1;
	if (c == 0)
		_exit(getpid() == 2 || getpid() == 3 ? 0 : 10);
	if (waitpid(c, &status, 0) != c || !WIFEXITED(status))
		return 2;
	return WEXITSTATUS(status);
}

static int child_only_lo_up(void *arg)
{
	struct if_nameindex *ifs = if_nameindex();
	struct ifreq ifr;
	int n = 0, s;

	if (!ifs)
		return 1;
	for (struct if_nameindex *i = ifs; i->if_index; i++) {
		if (strcmp(i->if_name, "lo") != 0)
			return 2;
		n++;
	}
	if_freenameindex(ifs);
	if (n != 1)
		return 3;
	s = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return 4;
	return (ifr.ifr_flags & IFF_UP) ? 0 : 5;
}

struct paths {
	const char *a;
	const char *b;
};

/* Mount a tmpfs at a (inside) holding a file b. */
static int child_mount_tmpfs(void *arg)
{
	const struct paths *p = arg;
	char f[PATH_MAX];

	if (mount("inside", p->a, "tmpfs", 0, "size=1m") < 0)
		return 1;
	snprintf(f, sizeof(f), "%s/%s", p->a, p->b);
	if (creat(f, 0644) < 0)
		return 2;
	return 0;
}

static int child_file_exists(void *arg)
{
	const struct paths *p = arg;

	return access(p->a, F_OK) == 0 ? 0 : 1;
}

static int child_file_absent(void *arg)
{
	const struct paths *p = arg;

	return access(p->a, F_OK) < 0 && errno == ENOENT ? 0 : 1;
}

static int child_not_mount_point(void *arg)
{
	const struct paths *p = arg;

	return is_mount_point(p->a) ? 1 : 0;
}

static void test_join(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	char shared[PATH_MAX], sub[PATH_MAX], sub2[PATH_MAX], inside[PATH_MAX];
	char hostonly[PATH_MAX], f[PATH_MAX];
	struct paths p;
	int fd;

	/* Made shared before the namespace exists: its copy inside is a slave. */
	pathf(shared, "%s/shared", fx->dir);
	host_make_shared(fx, shared);
	pathf(sub, "%s/sub", shared);
	pathf(sub2, "%s/sub2", shared);
	mkdir_or_fail(sub);
	mkdir_or_fail(sub2);
	pathf(inside, "%s/inside", fx->dir);
	mkdir_or_fail(inside);

	create_ok(fx, "join", all3, 3, -1, &set);

	fd = open_ok(fx, "join", HPCN_NS_PID);
	assert_int_equal(run_joined(fd, CLONE_NEWPID, child_pid_numbering, NULL), 0);
	close(fd);

	fd = open_ok(fx, "join", HPCN_NS_NET);
	assert_int_equal(run_joined(fd, CLONE_NEWNET, child_only_lo_up, NULL), 0);
	/* ...and the host does have more than lo? Not on every machine: the
	 * inode check of the create test covers "a new one". */
	close(fd);

	fd = open_ok(fx, "join", HPCN_NS_MOUNT);
	/* Inside -> host: invisible. */
	p = (struct paths){ inside, "marker" };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_mount_tmpfs, &p), 0);
	assert_false(is_mount_point(inside));
	pathf(f, "%s/marker", inside);
	assert_int_equal(access(f, F_OK), -1);
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_file_exists, &p), 0);

	/* Host -> inside, not below a shared mount: invisible. */
	pathf(hostonly, "%s/hostonly", fx->dir);
	host_mount_tmpfs(fx, hostonly);
	p = (struct paths){ hostonly, NULL };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_not_mount_point, &p), 0);

	/* Host -> inside below the shared mount: propagated (slave). */
	host_mount_tmpfs(fx, sub);
	pathf(f, "%s/propagated", sub);
	write_file(f, "x");
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_file_exists, &p), 0);

	/* Inside -> host below the shared mount: not propagated back. */
	p = (struct paths){ sub2, "back" };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_mount_tmpfs, &p), 0);
	assert_false(is_mount_point(sub2));
	pathf(f, "%s/back", sub2);
	assert_int_equal(access(f, F_OK), -1);

	/* The pins of allocations are not held inside: ns_dir is unmounted
	 * there, the pin files are plain files. */
	pathf(f, "%s/join/net", fx->ns_dir);
	p = (struct paths){ f, NULL };
	assert_true(is_mount_point(f));
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_not_mount_point, &p), 0);
	close(fd);
}

/* -- base mount namespace -- */

static void test_base_mnt_fd(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	char mp[PATH_MAX], f[PATH_MAX], nsp[64];
	struct paths p;
	int ready[2], base_fd, fd;
	pid_t kid;
	char c;

	pathf(mp, "%s/jobtmp", fx->dir);
	mkdir_or_fail(mp);
	pathf(f, "%s/marker", mp);
	assert_int_equal(pipe(ready), 0);
	/* A "job namespace" as Slurm's job_container/tmpfs makes one. */
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		close(ready[0]);
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount("none", "/", "none", MS_REC | MS_SLAVE, NULL) < 0 ||
		    mount("jobtmp", mp, "tmpfs", 0, "size=1m") < 0 || creat(f, 0644) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	track_kid(fx, kid);
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	snprintf(nsp, sizeof(nsp), "/proc/%d/ns/mnt", (int)kid);
	base_fd = open(nsp, O_RDONLY | O_CLOEXEC);
	assert_true(base_fd >= 0);
	/* Only the fd keeps the base namespace from here on. */
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	fx->nkids = 0;

	{
		const enum hpcn_ns_type mnt_pid[] = { HPCN_NS_MOUNT, HPCN_NS_PID };

		create_ok(fx, "onbase", mnt_pid, 2, base_fd, &set);
	}
	close(base_fd);
	assert_int_equal(access(f, F_OK), -1);
	fd = open_ok(fx, "onbase", HPCN_NS_MOUNT);
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(fd, CLONE_NEWNS, child_file_exists, &p), 0);
	close(fd);
}

/* -- mounts inside -- */

static int child_read_marker(void *arg)
{
	const struct paths *p = arg;
	char buf[64] = "";
	FILE *fp = fopen(p->a, "r");

	if (!fp)
		return 1;
	if (!fgets(buf, sizeof(buf), fp)) {
		fclose(fp);
		return 2;
	}
	fclose(fp);
	return strcmp(buf, p->b) == 0 ? 0 : 3;
}

static void test_attach_bind_detach(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	struct hpcn_error err = { 0 };
	const enum hpcn_ns_type mnt_only[] = { HPCN_NS_MOUNT };
	char src[PATH_MAX], src2[PATH_MAX], target[PATH_MAX], nested[PATH_MAX];
	char second[PATH_MAX], f[PATH_MAX], link[PATH_MAX], bad[PATH_MAX];
	char needle[PATH_MAX + 4];
	_cleanup_free_ char *info = NULL;
	size_t len = 0;
	struct paths p;
	int mntfd, mntfd2, tree, netfd;

	pathf(src, "%s/image", fx->dir);
	mkdir_or_fail(src);
	pathf(f, "%s/hello", src);
	write_file(f, "hello\n");
	pathf(src2, "%s/image2", fx->dir);
	mkdir_or_fail(src2);
	pathf(f, "%s/nested", src2);
	write_file(f, "nested\n");

	create_ok(fx, "uenv", mnt_only, 1, -1, &set);
	create_ok(fx, "uenv2", mnt_only, 1, -1, &set);
	mntfd = open_ok(fx, "uenv", HPCN_NS_MOUNT);
	mntfd2 = open_ok(fx, "uenv2", HPCN_NS_MOUNT);

	/* A host path bound at a created point. */
	pathf(target, "%s/t/user-environment", fx->dir);
	if (hpcn_ns_bind_path(mntfd, src, target, true, &err) < 0)
		fail_msg("bind_path: %s", err.message);
	pathf(f, "%s/hello", target);
	p = (struct paths){ f, "hello\n" };
	assert_int_equal(run_joined(mntfd, CLONE_NEWNS, child_read_marker, &p), 0);
	assert_false(is_mount_point(target));
	assert_int_equal(access(f, F_OK), -1);
	/* The other allocation does not see it. */
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(mntfd2, CLONE_NEWNS, child_file_absent, &p), 0);

	/* Nested, in order. */
	pathf(nested, "%s/sub", target);
	if (hpcn_ns_bind_path(mntfd, src2, nested, true, &err) < 0)
		fail_msg("nested bind_path: %s", err.message);
	pathf(f, "%s/nested", nested);
	p = (struct paths){ f, "nested\n" };
	assert_int_equal(run_joined(mntfd, CLONE_NEWNS, child_read_marker, &p), 0);

	/* A detached mount fd: attached twice (two allocations), it stays ours. */
	tree = open_tree(AT_FDCWD, src2, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	assert_true(tree >= 0);
	pathf(second, "%s/t/user-tools", fx->dir);
	if (hpcn_ns_attach_mount(mntfd, tree, second, true, &err) < 0)
		fail_msg("attach_mount: %s", err.message);
	if (hpcn_ns_attach_mount_named(mntfd2, tree, "/img/tools.squashfs", "uenv2", second,
				       true, &err) < 0)
		fail_msg("attach_mount 2: %s", err.message);
	close(tree);
	pathf(f, "%s/nested", second);
	p = (struct paths){ f, "nested\n" };
	assert_int_equal(run_joined(mntfd, CLONE_NEWNS, child_read_marker, &p), 0);
	assert_int_equal(run_joined(mntfd2, CLONE_NEWNS, child_read_marker, &p), 0);
	assert_false(is_mount_point(second));

	/* The mount table inside shows them; the host's does not. */
	assert_int_equal(hpcn_ns_read_mountinfo(mntfd, &info, &len, &err), 0);
	assert_int_equal(strlen(info), len);
	snprintf(needle, sizeof(needle), " %s ", target);
	assert_non_null(strstr(info, needle));
	snprintf(needle, sizeof(needle), " %s ", nested);
	assert_non_null(strstr(info, needle));
	snprintf(needle, sizeof(needle), " %s ", fx->ns_dir);
	assert_null(strstr(info, needle));
	free(info);
	info = NULL;

	/* Missing target without create_target: a clear error. */
	pathf(bad, "%s/t/missing", fx->dir);
	assert_int_equal(hpcn_ns_bind_path(mntfd, src, bad, false, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_CREATION_FAILED);
	assert_non_null(strstr(err.message, "namespace creation failed: mount of "));
	assert_non_null(strstr(err.message, bad));
	assert_non_null(strstr(err.message, "No such file or directory"));
	assert_int_equal(access(bad, F_OK), -1);
	/* With names, the message says what and where. */
	tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	assert_true(tree >= 0);
	assert_int_equal(hpcn_ns_attach_mount_named(mntfd, tree, "/run/pact/uenv/k1", "12.0",
						    bad, false, &err), -1);
	close(tree);
	{
		char want[2 * PATH_MAX];

		snprintf(want, sizeof(want), "namespace creation failed: mount of "
			 "/run/pact/uenv/k1 at %s in allocation 12.0: resolving the target: "
			 "No such file or directory", bad);
		assert_string_equal(err.message, want);
	}

	assert_int_equal(hpcn_ns_bind_path_named(mntfd, src, "12.0", bad, false, &err), -1);
	assert_non_null(strstr(err.message, " in allocation 12.0: resolving the target: "));

	/* A symlink on the way is refused, not followed. */
	pathf(link, "%s/t/link", fx->dir);
	assert_int_equal(symlink(src, link), 0);
	pathf(bad, "%s/t/link/x", fx->dir);
	assert_int_equal(hpcn_ns_bind_path(mntfd, src2, bad, true, &err), -1);
	assert_non_null(strstr(err.message, "Too many levels of symbolic links"));
	pathf(f, "%s/x", src);
	assert_int_equal(access(f, F_OK), -1);

	/* Argument checks. */
	assert_int_equal(hpcn_ns_bind_path(mntfd, src, "relative/x", true, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	netfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_int_equal(hpcn_ns_bind_path(netfd, src, target, true, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	close(netfd);

	/* Detach: nested first, then the outer one. */
	assert_int_equal(hpcn_ns_detach_mount(mntfd, nested, &err), 0);
	pathf(f, "%s/nested", nested);
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(mntfd, CLONE_NEWNS, child_file_absent, &p), 0);
	assert_int_equal(hpcn_ns_detach_mount(mntfd, target, &err), 0);
	pathf(f, "%s/hello", target);
	p = (struct paths){ f, NULL };
	assert_int_equal(run_joined(mntfd, CLONE_NEWNS, child_file_absent, &p), 0);
	assert_int_equal(hpcn_ns_detach_mount(mntfd, target, &err), -1);
	assert_int_equal(err.kind, HPCN_E_UNMOUNT_FAILED);
	assert_non_null(strstr(err.message, target));
	assert_int_equal(hpcn_ns_read_mountinfo(mntfd, &info, &len, &err), 0);
	snprintf(needle, sizeof(needle), " %s ", target);
	assert_null(strstr(info, needle));
	close(mntfd);
	close(mntfd2);
}

/* -- restart -- */

static void test_restart(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	struct hpcn_error err = { 0 };
	int p[2], status, marker;
	pid_t helper, holder = 0, sleeper;
	char path[64], pin[PATH_MAX];

	/* A "helper" that creates the namespaces and dies: nothing of it stays
	 * but the pins and the holder, which must not have been its child. */
	pathf(pin, "%s/fd-marker", fx->dir);
	marker = open(pin, O_RDONLY | O_CREAT, 0600);  /* inherited, not CLOEXEC */
	assert_true(marker >= 0);
	assert_int_equal(pipe(p), 0);
	helper = fork();
	assert_true(helper >= 0);
	if (helper == 0) {
		struct hpcn_ns_set s;
		struct hpcn_error e = { 0 };
		char st;
		pid_t pp;

		close(p[0]);
		prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
		if (hpcn_ns_create(fx->ns_dir, "r1", all3, 3, -1, &s, &e) < 0)
			_exit(1);
		if (!proc_field(s.pid_holder, &st, &pp, NULL, 0) || pp == getpid())
			_exit(2);
		if (write(p[1], &s.pid_holder, sizeof(pid_t)) != sizeof(pid_t))
			_exit(3);
		_exit(0);
	}
	track_alloc(fx, "r1");
	close(p[1]);
	assert_int_equal(waitpid(helper, &status, 0), helper);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(read(p[0], &holder, sizeof(holder)), sizeof(holder));
	close(p[0]);
	close(marker);
	assert_true(holder > 0);
	assert_int_equal(kill(holder, 0), 0);

	sleeper = start_joined_sleeper(fx, "r1");

	/* Rediscovery from the pins and the registry's holder pid. */
	assert_int_equal(hpcn_ns_load(fx->ns_dir, "r1", holder, &set, &err), 0);
	for (int i = 0; i < HPCN_NS__COUNT; i++)
		assert_true(set.present[i]);
	assert_int_equal(set.pid_holder, holder);
	assert_string_equal(set.allocation_id, "r1");
	/* ...or from the noted pid when the registry lost it. */
	assert_int_equal(hpcn_ns_load(fx->ns_dir, "r1", 0, &set, &err), 0);
	assert_int_equal(set.pid_holder, holder);
	/* A wrong holder (a live process, not that pid 1) is reported. */
	assert_int_equal(hpcn_ns_load(fx->ns_dir, "r1", getpid(), &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NOT_FOUND);
	assert_non_null(strstr(err.message, "holder"));
	assert_int_equal(hpcn_ns_load(fx->ns_dir, "gone", 0, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_ALLOCATION_NOT_FOUND);

	/* The joined process is untouched, still in the namespaces. */
	assert_int_equal(kill(sleeper, 0), 0);
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)sleeper);
	pathf(pin, "%s/r1/pid", fx->ns_dir);
	assert_int_equal(ino_of(path), ino_of(pin));
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)sleeper);
	pathf(pin, "%s/r1/net", fx->ns_dir);
	assert_int_equal(ino_of(path), ino_of(pin));
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)sleeper);
	pathf(pin, "%s/r1/mnt", fx->ns_dir);
	assert_int_equal(ino_of(path), ino_of(pin));

	/* The holder reaps orphans: the sleeper's parent is the holder now. */
	{
		char st;
		pid_t pp;

		assert_true(proc_field(sleeper, &st, &pp, NULL, 0));
		assert_int_equal(pp, holder);
	}
	/* Signals other than SIGKILL do not end the holder. */
	assert_int_equal(kill(holder, SIGTERM), 0);
	assert_int_equal(kill(holder, SIGINT), 0);
	assert_int_equal(kill(holder, SIGHUP), 0);
	sleep_ms(50);
	assert_int_equal(hpcn_ns_load(fx->ns_dir, "r1", holder, &set, &err), 0);
	/* The holder kept no fd of ours: no stdio, not the marker the
	 * "helper" had open (fds of a tool like valgrind may be there). */
	{
		char fdd[64], lp[PATH_MAX + 64], tgt[PATH_MAX];
		DIR *d;
		struct dirent *de;

		snprintf(fdd, sizeof(fdd), "/proc/%d/fd", (int)holder);
		d = opendir(fdd);
		assert_non_null(d);
		while ((de = readdir(d))) {
			ssize_t n;

			if (de->d_name[0] == '.')
				continue;
			assert_true(atoi(de->d_name) > 2);
			snprintf(lp, sizeof(lp), "%s/%s", fdd, de->d_name);
			n = readlink(lp, tgt, sizeof(tgt) - 1);
			assert_true(n > 0);
			tgt[n] = '\0';
			assert_null(strstr(tgt, "fd-marker"));
		}
		closedir(d);
	}

	assert_int_equal(hpcn_ns_release(fx->ns_dir, "r1", holder, &err), 0);
	assert_true(wait_gone(holder, GONE_MS));
	assert_true(wait_gone(sleeper, GONE_MS));
}

/* -- release -- */

static void test_release(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	struct hpcn_error err = { 0 };
	struct hpcn_strv ids = { 0 };
	char path[PATH_MAX];
	pid_t sleeper, bystander;
	int mntpin;

	create_ok(fx, "x1", all3, 3, -1, &set);
	sleeper = start_joined_sleeper(fx, "x1");
	assert_int_equal(count_mounts_under(fx->ns_dir), 4);

	/* The mount namespace dies with its last pin: keep an fd to see it. */
	mntpin = open_ok(fx, "x1", HPCN_NS_MOUNT);

	assert_int_equal(hpcn_ns_release(fx->ns_dir, "x1", set.pid_holder, &err), 0);
	pathf(path, "%s/x1", fx->ns_dir);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(count_mounts_under(fx->ns_dir), 1);
	assert_true(wait_gone(set.pid_holder, GONE_MS));
	assert_true(wait_gone(sleeper, GONE_MS));
	assert_int_equal(hpcn_ns_list(fx->ns_dir, &ids, &err), 0);
	assert_int_equal(ids.n, 0);
	hpcn_strv_free(&ids);
	close(mntpin);

	/* Idempotent, and an unknown allocation is fine. */
	assert_int_equal(hpcn_ns_release(fx->ns_dir, "x1", set.pid_holder, &err), 0);
	assert_int_equal(hpcn_ns_release(fx->ns_dir, "never-was", 4242, &err), 0);
	assert_int_equal(hpcn_ns_release(fx->ns_dir, "../etc", 0, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);

	/* A stale holder pid that now names another process: left alone. */
	bystander = fork();
	assert_true(bystander >= 0);
	if (bystander == 0) {
		for (;;)
			pause();
	}
	track_kid(fx, bystander);
	create_ok(fx, "x2", all3, 3, -1, &set);
	assert_int_equal(hpcn_ns_release(fx->ns_dir, "x2", bystander, &err), 0);
	assert_true(wait_gone(set.pid_holder, GONE_MS));  /* the noted holder died */
	sleep_ms(20);
	assert_int_equal(waitpid(bystander, NULL, WNOHANG), 0);
	assert_int_equal(kill(bystander, 0), 0);
}

/* -- failures -- */

/* Make unshare() with flag fail with EPERM in this process (seccomp). */
static int deny_unshare_flag(unsigned int flag)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, flag, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = HPCN_ARRAY_SIZE(f), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

/* In a child (the filter must not stay on us): create all three while
 * unshare(flag) is denied; the child returns the error through a pipe. */
static void create_with_denied(struct fx *fx, const char *id, unsigned int flag,
			       struct hpcn_error *out)
{
	int p[2], status;
	pid_t kid;

	assert_int_equal(pipe(p), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct hpcn_ns_set s;
		struct hpcn_error e = { 0 };

		close(p[0]);
		if (deny_unshare_flag(flag) < 0)
			_exit(1);
		if (hpcn_ns_create(fx->ns_dir, id, all3, 3, -1, &s, &e) == 0)
			_exit(2);
		if (write(p[1], &e, sizeof(e)) != sizeof(e))
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(waitpid(kid, &status, 0), kid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(read(p[0], out, sizeof(*out)), sizeof(*out));
	close(p[0]);
}

static void assert_nothing_left(struct fx *fx, const char *id)
{
	struct hpcn_strv ids = { 0 };
	struct hpcn_error err = { 0 };
	char path[PATH_MAX];

	pathf(path, "%s/%s", fx->ns_dir, id);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(count_mounts_under(fx->ns_dir), 1);
	assert_int_equal(hpcn_ns_list(fx->ns_dir, &ids, &err), 0);
	assert_int_equal(ids.n, 0);
	hpcn_strv_free(&ids);
	for (long long end = now_ms() + GONE_MS; now_ms() < end && count_our_holders() > 0;) {
		reap_zombies();
		sleep_ms(10);
	}
	reap_zombies();
	assert_int_equal(count_our_holders(), 0);
}

static void test_failures(void **state)
{
	struct fx *fx = *state;
	struct hpcn_ns_set set;
	struct hpcn_error err = { 0 };
	char plain[PATH_MAX], file[PATH_MAX], shared_ns[PATH_MAX];
	int pfd[2], netfd;

	/* Invalid allocation ids. */
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "../x", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "a/b", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_ns_create("relative", "a", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);

	/* ns_dir not prepared: not a mount point. */
	pathf(plain, "%s/plain", fx->dir);
	mkdir_or_fail(plain);
	assert_int_equal(hpcn_ns_create(plain, "a", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_CREATION_FAILED);
	assert_non_null(strstr(err.message, "not a private mount point"));
	assert_non_null(strstr(err.message, plain));
	assert_int_equal(rmdir(plain), 0);  /* still empty */

	/* ns_dir a file. */
	pathf(file, "%s/file", fx->dir);
	write_file(file, "");
	assert_int_equal(hpcn_ns_create(file, "a", all3, 3, -1, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_CREATION_FAILED);
	assert_non_null(strstr(err.message, "Not a directory"));
	assert_int_equal(hpcn_ns_setup_dir(file, &err), -1);
	assert_non_null(strstr(err.message, file));

	/* ns_dir a shared mount point: refused; setup_dir makes it private. */
	pathf(shared_ns, "%s/shared-ns", fx->dir);
	host_make_shared(fx, shared_ns);
	assert_int_equal(hpcn_ns_create(shared_ns, "a", all3, 3, -1, &set, &err), -1);
	assert_non_null(strstr(err.message, "shared"));
	assert_int_equal(hpcn_ns_setup_dir(shared_ns, &err), 0);
	assert_int_equal(hpcn_ns_setup_dir(shared_ns, &err), 0);
	assert_int_equal(count_mounts_under(shared_ns), 1);  /* not stacked */
	{
		const enum hpcn_ns_type net_only[] = { HPCN_NS_NET };

		assert_int_equal(hpcn_ns_create(shared_ns, "a", net_only, 1, -1, &set, &err), 0);
		assert_int_equal(hpcn_ns_release(shared_ns, "a", 0, &err), 0);
	}
	/* setup_dir on the fixture's dir again: still one mount. */
	assert_int_equal(hpcn_ns_setup_dir(fx->ns_dir, &err), 0);
	assert_int_equal(count_mounts_under(fx->ns_dir), 1);

	/* Bad base mount namespace fds, checked before anything is made. */
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "b", all3, 3, pfd[0], &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "not a mount namespace"));
	close(pfd[0]);
	close(pfd[1]);
	netfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_int_equal(hpcn_ns_create(fx->ns_dir, "b", all3, 3, netfd, &set, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	close(netfd);
	{
		const enum hpcn_ns_type net_only[] = { HPCN_NS_NET };
		int mfd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);

		assert_int_equal(hpcn_ns_create(fx->ns_dir, "b", net_only, 1, mfd, &set, &err),
				 -1);
		assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
		close(mfd);
	}
	assert_nothing_left(fx, "b");

	/* The pid namespace fails after Mount and Net were made and pinned:
	 * all of it is undone. */
	create_with_denied(fx, "c", CLONE_NEWPID, &err);
	assert_int_equal(err.kind, HPCN_E_NS_CREATION_FAILED);
	assert_non_null(strstr(err.message, "allocation c"));
	assert_non_null(strstr(err.message, "pid namespace"));
	assert_non_null(strstr(err.message, "Operation not permitted"));
	assert_nothing_left(fx, "c");

	/* The maker fails (no new net namespace): nothing either. */
	create_with_denied(fx, "d", CLONE_NEWNET, &err);
	assert_int_equal(err.kind, HPCN_E_NS_CREATION_FAILED);
	assert_non_null(strstr(err.message, "unshare"));
	assert_nothing_left(fx, "d");

	/* A broken leftover (an unmounted pin file) is reported, not reused;
	 * release cleans it. */
	{
		char dirp[PATH_MAX], pin[PATH_MAX];

		pathf(dirp, "%s/e", fx->ns_dir);
		mkdir_or_fail(dirp);
		pathf(pin, "%s/e/net", fx->ns_dir);
		write_file(pin, "");
		track_alloc(fx, "e");
		assert_int_equal(hpcn_ns_create(fx->ns_dir, "e", all3, 3, -1, &set, &err), -1);
		assert_int_equal(err.kind, HPCN_E_BUSY);
		assert_non_null(strstr(err.message, "release it first"));
		assert_int_equal(hpcn_ns_open(fx->ns_dir, "e", HPCN_NS_NET, &err), -1);
		assert_int_equal(err.kind, HPCN_E_NOT_FOUND);
		assert_int_equal(hpcn_ns_release(fx->ns_dir, "e", 0, &err), 0);
		assert_nothing_left(fx, "e");
	}
}

static int group_setup(void **state)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_ns needs root (label root)\n");
		return -1;
	}
	/* Holders are reparented to us: we can count and reap ours. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return -1;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_open_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_join, setup, teardown),
		cmocka_unit_test_setup_teardown(test_base_mnt_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_bind_detach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
	};

	/* e.g. HPCN_TEST_SKIP="test_attach*" under valgrind 3.19, which does
	 * not know open_tree/move_mount (ENOSYS). */
	if (getenv("HPCN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("HPCN_TEST_FILTER"));
	if (getenv("HPCN_TEST_SKIP"))
		cmocka_set_skip_filter(getenv("HPCN_TEST_SKIP"));
	return cmocka_run_group_tests(tests, group_setup, NULL);
}

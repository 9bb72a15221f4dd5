/* SPDX-License-Identifier: Apache-2.0 */
/* The namespace tests' fixture and shared helpers: see ns_test_util.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "ns_test_util.h"

/* ---- small helpers (parent side) ---- */

void pathf(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
}

void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

void mkdir_or_fail(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", path, strerror(errno));
}

void write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	if (!f)
		fail_msg("creating %s: %s", path, strerror(errno));
	fputs(s, f);
	fclose(f);
}

void track_alloc(struct fx *fx, const char *id)
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

void track_kid(struct fx *fx, pid_t pid)
{
	assert_true(fx->nkids < MAX_TRACK);
	fx->kids[fx->nkids++] = pid;
}

void host_mount_tmpfs(struct fx *fx, const char *path)
{
	mkdir_or_fail(path);
	if (mount("hpcn-test", path, "tmpfs", 0, "size=1m,mode=0755") < 0)
		fail_msg("mount tmpfs at %s: %s", path, strerror(errno));
	track_mount(fx, path);
}

/* A host directory made a shared mount of its own. */
void host_make_shared(struct fx *fx, const char *path)
{
	mkdir_or_fail(path);
	if (mount(path, path, "none", MS_BIND, NULL) < 0)
		fail_msg("bind %s: %s", path, strerror(errno));
	track_mount(fx, path);
	if (mount("none", path, "none", MS_SHARED, NULL) < 0)
		fail_msg("make %s shared: %s", path, strerror(errno));
}

/* Mounts of the host whose mount point is dir or below it. */
int count_mounts_under(const char *dir)
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

bool proc_field(pid_t pid, char *state, pid_t *ppid, char *comm, size_t commcap)
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
int count_our_holders(void)
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

void reap_zombies(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

long long now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

ino_t ino_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;
	return st.st_ino;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* ---- fixture ---- */

int setup(void **state)
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

int teardown(void **state)
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

const enum hpcn_ns_type all3[3] = { HPCN_NS_PID, HPCN_NS_NET, HPCN_NS_MOUNT };

void create_ok(struct fx *fx, const char *id, const enum hpcn_ns_type *types, size_t n,
		      int base_fd, struct hpcn_ns_set *set)
{
	struct hpcn_error err = { 0 };

	track_alloc(fx, id);
	if (hpcn_ns_create(fx->ns_dir, id, types, n, base_fd, set, &err) < 0)
		fail_msg("hpcn_ns_create %s: %s", id, err.message);
}

int open_ok(struct fx *fx, const char *id, enum hpcn_ns_type t)
{
	struct hpcn_error err = { 0 };
	int fd = hpcn_ns_open(fx->ns_dir, id, t, &err);

	if (fd < 0)
		fail_msg("hpcn_ns_open %s %s: %s", id, hpcn_ns_type_name(t), err.message);
	return fd;
}

int group_setup(void **state)
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

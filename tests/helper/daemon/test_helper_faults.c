/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper end to end, faults and hostile clients:
 *  - a client that leaves in the middle of the handoff (request sent, reply
 *    never read): the allocation exists, is visible and endable, and the
 *    helper keeps no descriptor or mount of the half-done exchange;
 *  - clients that send a record with 8 descriptors and leave: the helper
 *    closes every one of them;
 *  - a full state directory (ENOSPC on a tiny tmpfs): a clear error, nothing
 *    half made; once space is back requests work and a restart finds an
 *    intact registry;
 *  - the helper under valgrind through a short scenario: no error, no leak;
 *  - its namespace FD cache bounded by a small descriptor limit;
 *  - loop devices exhausted (max_loop_devices): a clear error, nothing half
 *    made, held images give way. The kernel's own pool cannot be exhausted
 *    safely here (LOOP_CTL_GET_FREE adds devices beyond max_loop on this
 *    kernel); its failure takes the same path (ENOSPC from loopdev.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"

/* Set by --valgrind PATH: the only test then run. */
static const char *valgrind_path;

struct ctx {
	struct hfx fx;
	struct sqfs_fixture sq;
	char image[PATH_MAX];
	int loops_before;
	char freezer[128];              /* a v1 freezer cgroup of ours, "" = none */
};

#define FREEZER_ROOT "/sys/fs/cgroup/freezer"

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rv;

	if (fd < 0)
		return -1;
	rv = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return rv;
}

/* Thaw and remove our freezer cgroup, whatever state a failed test left. */
static void freezer_cleanup(struct ctx *c)
{
	char p[256];

	if (!c->freezer[0])
		return;
	snprintf(p, sizeof(p), "%s/freezer.state", c->freezer);
	write_str(p, "THAWED");
	for (long long end = hfx_now_ms() + HFX_WAIT_MS;
	     rmdir(c->freezer) < 0 && errno == EBUSY && hfx_now_ms() < end;)
		hfx_sleep_ms(20);
	c->freezer[0] = '\0';
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	*state = c;
	c->loops_before = sqfs_count_loops();
	if (hfx_setup(&c->fx) < 0 || sqfs_fixture_init(&c->sq) < 0 ||
	    sqfs_fixture_make_image(&c->sq, "faults", "HELLO-F", c->image, sizeof(c->image)) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	if (!c)
		return 0;
	freezer_cleanup(c); /* first: a frozen process cannot be killed */
	hfx_teardown(&c->fx);
	sqfs_fixture_cleanup(&c->sq);
	if (!sqfs_wait_loop_count(c->loops_before, 5000)) /* a message only */
		fprintf(stderr, "loop devices: %d before, %d after\n", c->loops_before,
			sqfs_count_loops());
	free(c);
	return 0;
}

static bool fds_at_most(struct hfx *fx, const void *arg)
{
	return hfx_count_fds(fx->pid) <= *(const int *)arg;
}

static bool dir_has_suffix(const char *path, const char *suffix)
{
	struct dirent *de;
	bool found = false;
	DIR *d = opendir(path);

	if (!d)
		return false;
	while ((de = readdir(d)))
		if (strstr(de->d_name, suffix))
			found = true;
	closedir(d);
	return found;
}

static bool alloc_visible(struct hfx *fx, const void *arg)
{
	json_t *st = hfx_status(fx);
	bool found = st && hfx_status_alloc(st, arg);

	json_decref(st);
	return found;
}

struct ns_budget {
	const char *nsdir;
	int below;
};

static int highest_fd_under(pid_t pid, const char *prefix);

static bool ns_fds_below(struct hfx *fx, const void *arg)
{
	const struct ns_budget *b = arg;

	return highest_fd_under(fx->pid, b->nsdir) < b->below;
}

/* Each descriptor of pid with what it points to: fn(fd, target, arg). */
static void each_fd(pid_t pid, void (*fn)(int fd, const char *target, void *arg), void *arg)
{
	char p[64], target[PATH_MAX], link[PATH_MAX + 64];
	struct dirent *de;
	DIR *d;

	snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
	d = opendir(p);
	while (d && (de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", p, de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		fn(atoi(de->d_name), target, arg);
	}
	if (d)
		closedir(d);
}

struct highest {
	const char *prefix;
	int fd;
};

static void note_highest(int fd, const char *target, void *arg)
{
	struct highest *h = arg;

	if (strncmp(target, h->prefix, strlen(h->prefix)) == 0 && fd > h->fd)
		h->fd = fd;
}

/* The highest descriptor of pid that is a namespace pin under prefix (-1: none). */
static int highest_fd_under(pid_t pid, const char *prefix)
{
	struct highest h = { prefix, -1 };

	each_fd(pid, note_highest, &h);
	return h.fd;
}

static void print_fd(int fd, const char *target, void *arg)
{
	(void)arg;
	fprintf(stderr, "  helper fd %d -> %s\n", fd, target);
}

static void show_fds(pid_t pid)
{
	each_fd(pid, print_fd, NULL);
}

static int request_img(struct ctx *c, const char *id, struct hpcn_error *err);
static int request_image(struct ctx *c, const char *id, const char *image,
			 struct hpcn_error *err);

/* The helper's descriptors with one live allocation "warm-up", so that
 * those it opens lazily and shares between allocations exist (sd-event's
 * one inotify descriptor for every scope watch). */
static int baseline_fds(struct ctx *c)
{
	struct hpcn_error err;

	if (request_img(c, "warm-up", &err) < 0)
		fail_msg("warm-up allocation: %s", err.message);
	hfx_sleep_ms(100);
	return hfx_count_fds(c->fx.pid);
}

static void end_warm_up(struct ctx *c, int baseline)
{
	struct hpcn_error err;

	if (hfx_end(&c->fx, "warm-up", &err) < 0)
		fail_msg("ending warm-up: %s", err.message);
	/* With no allocation left, fewer than with one. */
	baseline--;
	if (!hfx_wait_for(fds_at_most, &c->fx, &baseline, HFX_TIMEOUT_MS)) {
		show_fds(c->fx.pid);
		fail_msg("%d descriptors with no allocation, %d with one", hfx_count_fds(c->fx.pid),
			 baseline + 1);
	}
}

/* Send msg with FDs on a new connection and close it without reading. */
static void send_and_leave(struct hfx *fx, struct hpcn_msg *msg, const int *fds, size_t nfds)
{
	struct hpcn_error err;
	int sock = hfx_connect(fx);

	assert_true(sock >= 0);
	if (hpcn_send_msg(sock, msg, fds, nfds, &err) < 0)
		fail_msg("sending %s: %s", hpcn_tag_name(msg->tag), err.message);
	close(sock);
}

static bool scrubbed(struct hfx *fx, const void *arg)
{
	const struct ctx *c = arg;

	return hfx_count_mounts_under(fx->mount_base) == 0 && hfx_count_loops_of(c->image) == 0;
}

static void assert_no_trace_of(struct ctx *c, const char *id)
{
	struct hfx *fx = &c->fx;
	char p[PATH_MAX * 2];

	snprintf(p, sizeof(p), "%s/ns/%s", fx->state, id);
	if (hfx_exists(p))
		fail_msg("namespace pins of %s are left: %s", id, p);
	snprintf(p, sizeof(p), "%s/allocations/%s.json", fx->state, id);
	if (hfx_exists(p))
		fail_msg("record of %s is left: %s", id, p);
	snprintf(p, sizeof(p), "workload.slice/%s.scope", id);
	{
		char full[PATH_MAX * 2];

		hfx_cg_path(fx, p, full, sizeof(full));
		if (hfx_exists(full))
			fail_msg("scope of %s is left: %s", id, full);
	}
}

/* ---- clients that leave mid-exchange ---- */

static void test_client_leaves_mid_handoff(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct hpcn_error err;
	struct hpcn_msg m;
	char p[PATH_MAX * 2];
	json_t *st, *a, *mnt;
	int baseline, limit;

	assert_int_equal(hfx_start(fx), 0);
	baseline = baseline_fds(c);
	assert_true(baseline > 0);

	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	m.seq = 3;
	m.u.ns_request.allocation_id = strdup("gone-1");
	m.u.ns_request.namespaces[m.u.ns_request.n_namespaces++] = HPCN_NS_MOUNT;
	m.u.ns_request.namespaces[m.u.ns_request.n_namespaces++] = HPCN_NS_NET;
	m.u.ns_request.uenv_image = strdup(c->image);
	send_and_leave(fx, &m, NULL, 0);
	hpcn_msg_free(&m);

	/* Made anyway (the tasks may still come), and nobody's client. */
	if (!hfx_wait_for(alloc_visible, fx, "gone-1", HFX_TIMEOUT_MS))
		fail_msg("the allocation of the client that left never showed up");
	st = hfx_status(fx);
	a = hfx_status_alloc(st, "gone-1");
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(a, "state")) ?: "", "active");
	assert_false(json_is_true(json_object_get(a, "client_connected")));
	mnt = hfx_status_mount_of(st, c->image);
	assert_non_null(mnt);
	/* gone-1 and warm-up */
	assert_int_equal(json_integer_value(json_object_get(mnt, "refcount")), 2);
	json_decref(st);
	assert_int_equal(hfx_count_mounts_under(fx->mount_base), 1);
	assert_int_equal(hfx_count_loops_of(c->image), 1);
	snprintf(p, sizeof(p), "%s/ns/gone-1", fx->state);
	assert_true(hfx_exists(p));
	/* The connection is closed; what stays open are the allocation's two
	 * namespaces (mnt, net), which the helper keeps for later handoffs,
	 * and its scope's cgroup.events (the helper's end detection). */
	limit = baseline + 3;
	if (!hfx_wait_for(fds_at_most, fx, &limit, HFX_TIMEOUT_MS)) {
		show_fds(fx->pid);
		fail_msg("the helper holds %d descriptors after the client left, %d before "
			 "(+2 namespaces, +1 cgroup.events)", hfx_count_fds(fx->pid), baseline);
	}

	/* Endable like any other; then nothing of it is left, not even an FD. */
	if (hfx_end(fx, "gone-1", &err) < 0)
		fail_msg("AllocationEnded gone-1: %s", err.message);
	assert_no_trace_of(c, "gone-1");
	if (!hfx_wait_for(fds_at_most, fx, &baseline, HFX_TIMEOUT_MS)) {
		show_fds(fx->pid);
		fail_msg("the helper holds %d descriptors after gone-1 ended, %d before",
			 hfx_count_fds(fx->pid), baseline);
	}
	end_warm_up(c, baseline);
	if (!hfx_wait_for(scrubbed, fx, c, HFX_WAIT_MS))
		fail_msg("after the hold time: %d mount(s), %d loop device(s)",
			 hfx_count_mounts_under(fx->mount_base), hfx_count_loops_of(c->image));
}

/*
 * The helper keeps each allocation's namespace FDs for later handoffs, but
 * only within what its descriptor limit leaves after room for 4096 clients
 * and a reserve (4352, helper/server.c). With the limit just 40 above that,
 * most of 40 allocations cannot be cached: their handoffs must work all the
 * same (opened, sent, closed), and the helper must stay within its budget.
 */
static void test_fd_cache_bounded(void **state)
{
	enum { N = 40, ROOM = 40, CONNS_AND_RESERVE = 4096 + 256 };
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	char limit[64];
	const char *prefix[] = { "/usr/bin/prlimit", limit, "--", NULL };
	struct hpcn_error err;
	char id[32], nsdir[PATH_MAX + 8];
	int before;

	struct ns_budget budget = { nsdir, ROOM };

	snprintf(nsdir, sizeof(nsdir), "%s/ns/", fx->state);
	/* util-linux's prlimit sets soft = hard and execs the helper (same pid). */
	snprintf(limit, sizeof(limit), "--nofile=%d:%d", CONNS_AND_RESERVE + ROOM,
		 CONNS_AND_RESERVE + ROOM);
	fx->exec_prefix = prefix;
	assert_int_equal(hfx_start(fx), 0);
	fx->exec_prefix = NULL;
	before = hfx_count_fds(fx->pid);

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			snprintf(id, sizeof(id), "cache-%d", i);
			/* Round 0 creates, rounds 1 and 2 hand off again. */
			if (request_img(c, id, &err) < 0)
				fail_msg("round %d, %s: %s", round, id, err.message);
		}
		/* The namespace FDs it keeps stay within its budget (numbers below
		 * ROOM); those above were sent and closed (just after the client
		 * got them: wait a moment). */
		if (!hfx_wait_for(ns_fds_below, fx, &budget, HFX_TIMEOUT_MS)) {
			show_fds(fx->pid);
			fail_msg("round %d: the helper keeps namespace FD %d open, its cache "
				 "may use descriptors below %d", round,
				 highest_fd_under(fx->pid, nsdir), ROOM);
		}
	}
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "cache-%d", i);
		if (hfx_end(fx, id, &err) < 0)
			fail_msg("AllocationEnded %s: %s", id, err.message);
		assert_no_trace_of(c, id);
	}
	if (!hfx_wait_for(fds_at_most, fx, &before, HFX_TIMEOUT_MS)) {
		show_fds(fx->pid);
		fail_msg("%d descriptors after ending every allocation, %d before any",
			 hfx_count_fds(fx->pid), before);
	}
	if (!hfx_wait_for(scrubbed, fx, c, HFX_WAIT_MS))
		fail_msg("after the hold time: %d mount(s), %d loop device(s)",
			 hfx_count_mounts_under(fx->mount_base), hfx_count_loops_of(c->image));
}

static bool no_loops_of(struct hfx *fx, const void *image)
{
	(void)fx;
	return hfx_count_loops_of(image) == 0;
}

static unsigned refcount_of(struct hfx *fx, const char *image)
{
	json_t *st = hfx_status(fx), *m = hfx_status_mount_of(st, image);
	unsigned n = m ? (unsigned)json_integer_value(json_object_get(m, "refcount")) : 0;

	json_decref(st);
	return n;
}

/*
 * Loop devices exhausted, with real loop devices: max_loop_devices = 2 is
 * the node's limit here (the kernel's own cannot be reached safely on this
 * machine, see the top of the file; both end in the same code path, a
 * MountFailed with ENOSPC). A third image while two are in use: a clear
 * error, nothing of the refused allocation left, the running ones untouched.
 * Once an image is only held (its hold time running), it gives way.
 */
static void test_loop_devices_exhausted(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct hpcn_error err;
	char img2[PATH_MAX], img3[PATH_MAX];

	assert_int_equal(sqfs_fixture_make_image(&c->sq, "second", "HELLO-2", img2,
						 sizeof(img2)), 0);
	assert_int_equal(sqfs_fixture_make_image(&c->sq, "third", "HELLO-3", img3,
						 sizeof(img3)), 0);
	fx->hold_time = 600; /* only eviction can free a held image in this test */
	assert_int_equal(hfx_write_conf(fx), 0);
	assert_int_equal(hfx_conf_replace(fx, "[uenv]\n", "[uenv]\nmax_loop_devices = 2\n"), 0);
	assert_int_equal(hfx_start_as_written(fx, NULL), 0);

	assert_int_equal(request_image(c, "lx-1", c->image, &err), 0);
	assert_int_equal(request_image(c, "lx-2", img2, &err), 0);
	assert_int_equal(request_image(c, "lx-3", img3, &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	if (!strstr(err.message, img3) || !strstr(err.message, "no free loop device") ||
	    !strstr(err.message, "max_loop_devices"))
		fail_msg("unclear error for the third image: %s", err.message);
	/* Nothing of lx-3; lx-1 and lx-2 untouched. */
	assert_no_trace_of(c, "lx-3");
	assert_int_equal(hfx_count_loops_of(img3), 0);
	assert_int_equal(hfx_count_loops_of(c->image), 1);
	assert_int_equal(hfx_count_loops_of(img2), 1);
	assert_int_equal(refcount_of(fx, c->image), 1);
	assert_int_equal(refcount_of(fx, img2), 1);

	/* lx-1 ends: its image is held, not used, and gives way to the third. */
	if (hfx_end(fx, "lx-1", &err) < 0)
		fail_msg("AllocationEnded lx-1: %s", err.message);
	assert_int_equal(hfx_count_loops_of(c->image), 1); /* held */
	if (request_image(c, "lx-3", img3, &err) < 0)
		fail_msg("third image once the first was only held: %s", err.message);
	assert_int_equal(hfx_count_mounts_under(fx->mount_base), 2);
	if (!hfx_wait_for(no_loops_of, fx, c->image, HFX_TIMEOUT_MS))
		fail_msg("the held image's loop device was not freed");
	assert_int_equal(hfx_count_loops_of(img3), 1);
	assert_int_equal(refcount_of(fx, img2), 1);
	assert_int_equal(refcount_of(fx, img3), 1);

	/* Both in use again: the first image is refused, then fits once lx-2 ends. */
	assert_int_equal(request_image(c, "lx-4", c->image, &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
	assert_no_trace_of(c, "lx-4");
	if (hfx_end(fx, "lx-2", &err) < 0)
		fail_msg("AllocationEnded lx-2: %s", err.message);
	if (request_image(c, "lx-4", c->image, &err) < 0)
		fail_msg("first image again after lx-2 ended: %s", err.message);
	assert_int_equal(hfx_count_loops_of(img2), 0);
	assert_int_equal(hfx_count_loops_of(c->image), 1);

	/* Everything ends; the held images stay until teardown (hold 600 s). */
	for (const char *const *id = (const char *const[]){ "lx-3", "lx-4", NULL }; *id; id++)
		if (hfx_end(fx, *id, &err) < 0)
			fail_msg("AllocationEnded %s: %s", *id, err.message);
	assert_int_equal(refcount_of(fx, img3), 0);
	assert_int_equal(refcount_of(fx, c->image), 0);

	/* A held image that cannot be unmounted (a file open in it, here ours)
	 * is passed over for the next: img3's hold ends first, it is busy, the
	 * first image makes room instead. */
	{
		json_t *st = hfx_status(fx), *m = hfx_status_mount_of(st, img3);
		char f[PATH_MAX * 2];
		int busy;

		assert_non_null(m);
		snprintf(f, sizeof(f), "%s/bin/hello",
			 json_string_value(json_object_get(m, "mount_point")));
		json_decref(st);
		busy = open(f, O_RDONLY | O_CLOEXEC);
		assert_true(busy >= 0);
		if (request_image(c, "lx-5", img2, &err) < 0)
			fail_msg("second image with one held image busy, one not: %s",
				 err.message);
		if (!hfx_wait_for(no_loops_of, fx, c->image, HFX_TIMEOUT_MS))
			fail_msg("the held image that was not busy was not evicted");
		assert_int_equal(hfx_count_loops_of(img3), 1);
		/* Now the only held image is the busy one: refused, naming it. */
		assert_int_equal(request_image(c, "lx-6", c->image, &err), -1);
		if (!strstr(err.message, img3) || !strstr(err.message, "busy"))
			fail_msg("the refusal does not name the busy image: %s", err.message);
		assert_no_trace_of(c, "lx-6");
		close(busy);
		if (hfx_end(fx, "lx-5", &err) < 0)
			fail_msg("AllocationEnded lx-5: %s", err.message);
	}
}

static bool alloc_zombie(struct hfx *fx, const void *id)
{
	json_t *st = hfx_status(fx), *a = hfx_status_alloc(st, id);
	bool z = a && json_is_true(json_object_get(a, "zombie"));

	json_decref(st);
	return z;
}

static bool alloc_gone(struct hfx *fx, const void *id)
{
	json_t *st = hfx_status(fx);
	bool gone = st && !hfx_status_alloc(st, id);

	json_decref(st);
	return gone;
}

/*
 * F30 with a process that really cannot die: frozen in a cgroup v1 freezer
 * (this hybrid machine has one), where SIGKILL leaves it in D state until it
 * is thawed. Ending its allocation must not stall the helper for
 * kill_timeout: the end answers at once and goes on by itself, other clients
 * are served meanwhile; at kill_timeout the scope is a zombie, which a
 * restart keeps; once the process can die, its scope's cgroup.events ends
 * the allocation (the periodic reconciliation is an hour away here, so it is
 * not what did it).
 */
static void test_end_waits_for_dying_scope(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct hpcn_error err;
	char scope[PATH_MAX * 2 + 2], p[PATH_MAX * 2 + 64], buf[32];
	json_t *st, *a;
	pid_t kid;
	int pfd[2];
	char y;

	if (access(FREEZER_ROOT "/cgroup.procs", F_OK) < 0)
		fail_msg("this test needs the cgroup v1 freezer at " FREEZER_ROOT
			 " (a hybrid cgroup machine, as the CI's)");
	fx->reconcile_interval = 3600;
	assert_int_equal(hfx_write_conf(fx), 0);
	assert_int_equal(hfx_conf_replace(fx, "kill_timeout = 5", "kill_timeout = 2"), 0);
	assert_int_equal(hfx_start_as_written(fx, NULL), 0);
	if (request_img(c, "dying-1", &err) < 0)
		fail_msg("dying-1: %s", err.message);
	st = hfx_status(fx);
	a = hfx_status_alloc(st, "dying-1");
	assert_non_null(a);
	snprintf(scope, sizeof(scope), "%s/%s", fx->cg_root,
		 json_string_value(json_object_get(a, "scope")));
	json_decref(st);

	/* A process in the scope, then frozen. */
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		close(pfd[1]);
		(void)!read(pfd[0], &y, 1); /* until it is placed */
		for (;;)
			pause();
	}
	close(pfd[0]);
	hfx_track(fx, kid);
	snprintf(buf, sizeof(buf), "%d", (int)kid);
	snprintf(p, sizeof(p), "%s/cgroup.procs", scope);
	assert_int_equal(write_str(p, buf), 0);
	snprintf(c->freezer, sizeof(c->freezer), FREEZER_ROOT "/hpcn-it-%d", (int)getpid());
	assert_int_equal(mkdir(c->freezer, 0755), 0);
	snprintf(p, sizeof(p), "%s/cgroup.procs", c->freezer);
	assert_int_equal(write_str(p, buf), 0);
	(void)!write(pfd[1], "y", 1);
	close(pfd[1]);
	hfx_sleep_ms(50); /* back in pause() */
	snprintf(p, sizeof(p), "%s/freezer.state", c->freezer);
	assert_int_equal(write_str(p, "FROZEN"), 0);

	/* The end answers (the admin is told the processes are still dying),
	 * the allocation is ending, not yet a zombie. */
	{
		char *const argv[] = { HPCN_BINARY_DIR "/helper/hpc-nodectl", "--socket",
				       fx->sock, "end", "dying-1", NULL };
		char out[1024];

		assert_int_equal(sqfs_run_capture(argv, out, sizeof(out)), 0);
		if (!strstr(out, "Allocation dying-1 ended.\n") ||
		    !strstr(out, "Allocation dying-1: its processes are still dying"))
			fail_msg("hpc-nodectl end dying-1 printed: %s", out);
	}
	st = hfx_status(fx);
	a = hfx_status_alloc(st, "dying-1");
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(a, "state")), "ending");
	assert_false(json_is_true(json_object_get(a, "zombie")));
	json_decref(st);
	assert_true(hfx_alive(kid));
	/* Others are served meanwhile: a whole allocation comes and goes. */
	if (request_img(c, "other-1", &err) < 0)
		fail_msg("other-1 while dying-1 ends: %s", err.message);
	if (hfx_end(fx, "other-1", &err) < 0)
		fail_msg("AllocationEnded other-1: %s", err.message);
	assert_true(alloc_gone(fx, "other-1"));

	/* kill_timeout (2 s) runs out: a zombie, audited. */
	if (!hfx_wait_for(alloc_zombie, fx, "dying-1", HFX_TIMEOUT_MS))
		fail_msg("dying-1 did not become a zombie after kill_timeout");
	assert_true(hfx_audit_count(fx, "\"cgroup.kill_failed\"", "dying-1",
				    "still populated after 2 s", NULL) >= 1);
	assert_true(hfx_exists(scope));

	/* A restart (SIGKILL) keeps the zombie: its record names it, the new
	 * helper watches its scope again. */
	hfx_stop(fx, SIGKILL, HFX_TIMEOUT_MS);
	assert_int_equal(hfx_start_as_written(fx, NULL), 0);
	st = hfx_status(fx);
	a = hfx_status_alloc(st, "dying-1");
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(a, "state")), "ending");
	assert_true(json_is_true(json_object_get(a, "zombie")));
	json_decref(st);

	/* The process can die now: the scope empties, the allocation ends. */
	freezer_cleanup(c);
	assert_true(hfx_wait_child(kid, HFX_TIMEOUT_MS) != -1);
	if (!hfx_wait_for(alloc_gone, fx, "dying-1", HFX_TIMEOUT_MS))
		fail_msg("dying-1 was not ended once its scope emptied");
	assert_false(hfx_exists(scope));
	assert_true(hfx_audit_count(fx, "\"cgroup.destroy\"", "dying-1", NULL) >= 1);
	assert_no_trace_of(c, "dying-1");
}

/* Did every write end the helper got die (the reader sees EOF)? */
static bool all_hung_up(const int *rd, size_t n, int timeout_ms)
{
	for (int t = 0; t <= timeout_ms; t += 20) {
		size_t hup = 0;

		for (size_t i = 0; i < n; i++) {
			struct pollfd pf = { .fd = rd[i], .events = POLLIN };

			hup += poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP);
		}
		if (hup == n)
			return true;
		hfx_sleep_ms(20);
	}
	return false;
}

static void test_eight_fds_then_leave(void **state)
{
	static const enum hpcn_tag tags[] = {
		HPCN_TAG_NAMESPACE_REQUEST, HPCN_TAG_ATTACH, HPCN_TAG_STATUS_REQUEST,
	};
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct hpcn_error err;
	int baseline, limit;

	assert_int_equal(hfx_start(fx), 0);
	baseline = baseline_fds(c);

	for (size_t k = 0; k < sizeof(tags) / sizeof(tags[0]); k++) {
		int rd[HPCN_MAX_MESSAGE_FDS], wr[HPCN_MAX_MESSAGE_FDS];
		struct hpcn_msg m;

		for (int i = 0; i < HPCN_MAX_MESSAGE_FDS; i++) {
			int p[2];

			assert_int_equal(pipe2(p, O_CLOEXEC), 0);
			rd[i] = p[0];
			wr[i] = p[1];
		}
		hpcn_msg_init(&m, tags[k]);
		m.seq = 11;
		if (tags[k] == HPCN_TAG_NAMESPACE_REQUEST) {
			/* Takes FDs, uses none of these: a scope-only allocation. */
			m.u.ns_request.allocation_id = strdup("fds-8");
		} else if (tags[k] == HPCN_TAG_ATTACH) {
			m.u.attach.allocation_id = strdup("fds-8");
			m.u.attach.pid = getpid();
			m.u.attach.pidfd_index = 7;
		} else {
			m.u.json = strdup("{}");
		}
		send_and_leave(fx, &m, wr, HPCN_MAX_MESSAGE_FDS);
		hpcn_msg_free(&m);
		hpcn_close_fds(wr, HPCN_MAX_MESSAGE_FDS);
		/* Only the helper's copies keep the pipes open now. */
		if (!all_hung_up(rd, HPCN_MAX_MESSAGE_FDS, HFX_TIMEOUT_MS))
			fail_msg("%s with 8 FDs: the helper kept some of them open",
				 hpcn_tag_name(tags[k]));
		hpcn_close_fds(rd, HPCN_MAX_MESSAGE_FDS);
		/* fds-8 exists from the first request on: its scope's
		 * cgroup.events stays open (the helper's end detection). */
		limit = baseline + 1;
		if (!hfx_wait_for(fds_at_most, fx, &limit, HFX_TIMEOUT_MS)) {
			show_fds(fx->pid);
			fail_msg("%s with 8 FDs: the helper holds %d descriptors, %d before "
				 "(+1 for fds-8's scope)", hpcn_tag_name(tags[k]),
				 hfx_count_fds(fx->pid), baseline);
		}
	}
	/* The request that was served made its allocation; it ends cleanly. */
	assert_true(alloc_visible(fx, "fds-8"));
	if (hfx_end(fx, "fds-8", &err) < 0)
		fail_msg("AllocationEnded fds-8: %s", err.message);
	assert_no_trace_of(c, "fds-8");
	end_warm_up(c, baseline);
}

/* ---- a full state directory ---- */

static int request_image(struct ctx *c, const char *id, const char *image,
			 struct hpcn_error *err)
{
	struct hpcn_namespace_response r;
	int fds[HPCN_NS__COUNT];
	struct hpcn_msg m;
	int rv;

	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	m.u.ns_request.allocation_id = strdup(id);
	m.u.ns_request.namespaces[m.u.ns_request.n_namespaces++] = HPCN_NS_MOUNT;
	m.u.ns_request.uenv_image = strdup(image);
	rv = hpcn_request_namespaces(c->fx.sock, HFX_TIMEOUT_MS, &m.u.ns_request, NULL, 0, &r,
				     fds, err);
	hpcn_msg_free(&m);
	if (rv == 0) {
		hpcn_close_fds(fds, HPCN_NS__COUNT);
		hpcn_namespace_response_free(&r);
	}
	return rv;
}

static int request_img(struct ctx *c, const char *id, struct hpcn_error *err)
{
	return request_image(c, id, c->image, err);
}

/* Fill the file system of fd's file; returns the bytes written. */
static off_t fill(int fd)
{
	static const char page[4096];
	off_t total = 0;

	for (;;) {
		ssize_t n = write(fd, page, sizeof(page));

		if (n <= 0)
			break;
		total += n;
	}
	assert_int_equal(errno, ENOSPC);
	return total;
}

static void assert_nothing_half_made(struct ctx *c, const char *id)
{
	struct hfx *fx = &c->fx;
	char p[PATH_MAX * 2];
	json_t *st = hfx_status(fx), *m;

	assert_non_null(st);
	if (hfx_status_alloc(st, id))
		fail_msg("%s exists although its creation failed", id);
	/* The image may wait out its hold time, but nobody holds it. */
	m = hfx_status_mount_of(st, c->image);
	if (m) {
		assert_int_equal(json_integer_value(json_object_get(m, "refcount")), 0);
		assert_false(json_is_null(json_object_get(m, "hold_remaining_secs")));
	}
	json_decref(st);
	assert_no_trace_of(c, id);
	snprintf(p, sizeof(p), "%s/allocations", fx->state);
	assert_false(dir_has_suffix(p, ".tmp"));
	if (!hfx_wait_for(scrubbed, fx, c, HFX_WAIT_MS))
		fail_msg("after the hold time: %d mount(s), %d loop device(s)",
			 hfx_count_mounts_under(fx->mount_base), hfx_count_loops_of(c->image));
}

static void test_state_dir_full(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	char filler[PATH_MAX + 16], p[PATH_MAX * 2];
	struct hpcn_error err;
	json_t *st;
	off_t size;
	int fd;

	/* The state directory on a file system of its own, 64 KiB. */
	assert_int_equal(mkdir(fx->state, 0700), 0);
	if (mount("hpcn-test-state", fx->state, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=64k,mode=0700") < 0)
		fail_msg("mount tmpfs on %s: %s", fx->state, strerror(errno));
	assert_int_equal(hfx_start(fx), 0);

	/* Completely full: the write-ahead record cannot be written. */
	snprintf(filler, sizeof(filler), "%s/filler", fx->state);
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	size = fill(fd);
	assert_true(size > 0);
	assert_int_equal(request_img(c, "full-1", &err), -1);
	fprintf(stderr, "state dir full: %s\n", err.message);
	if (!strstr(err.message, "registry record") || !strstr(err.message, "No space left"))
		fail_msg("unclear error for a full state directory: %s", err.message);
	assert_nothing_half_made(c, "full-1");

	/* One page free: the first record fits, the last save fails, after the
	 * scope, the namespaces and the mount were made. All of it goes. */
	assert_int_equal(ftruncate(fd, size - 4096), 0);
	assert_int_equal(request_img(c, "full-2", &err), -1);
	fprintf(stderr, "state dir nearly full: %s\n", err.message);
	if (!strstr(err.message, "No space left"))
		fail_msg("unclear error for a full state directory: %s", err.message);
	/* It failed late: the scope and the mount had been made. */
	assert_int_equal(hfx_audit_count(fx, "cgroup.create", "full-2", NULL), 1);
	assert_int_equal(hfx_audit_count(fx, "mount.acquire", "full-2", NULL), 1);
	assert_int_equal(hfx_audit_count(fx, "namespace.cleanup", "full-2", NULL), 1);
	assert_nothing_half_made(c, "full-2");

	/* Space again: it works. */
	close(fd);
	assert_int_equal(unlink(filler), 0);
	if (request_img(c, "full-3", &err) < 0)
		fail_msg("NamespaceRequest with space again: %s", err.message);

	/* Ending needs no space (the record goes). */
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fill(fd);
	if (request_img(c, "full-4", &err) == 0)
		fail_msg("full-4 was created in a full state directory");
	close(fd);
	assert_int_equal(unlink(filler), 0);
	if (request_img(c, "full-4", &err) < 0)
		fail_msg("full-4 with space again: %s", err.message);
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fill(fd);
	if (hfx_end(fx, "full-4", &err) < 0)
		fail_msg("AllocationEnded in a full state directory: %s", err.message);
	close(fd);
	assert_int_equal(unlink(filler), 0);

	/* A restart finds the registry intact: full-3 only, nothing quarantined. */
	assert_true(WIFSIGNALED(hfx_stop(fx, SIGKILL, HFX_TIMEOUT_MS)));
	assert_int_equal(hfx_start(fx), 0);
	st = hfx_status(fx);
	assert_non_null(st);
	assert_int_equal(hfx_status_n_allocs(st), 1);
	assert_non_null(hfx_status_alloc(st, "full-3"));
	assert_string_equal(json_string_value(json_object_get(hfx_status_alloc(st, "full-3"),
							      "state")) ?: "", "active");
	assert_int_equal(json_integer_value(json_object_get(hfx_status_mount_of(st, c->image),
							    "refcount")), 1);
	json_decref(st);
	snprintf(p, sizeof(p), "%s/allocations", fx->state);
	assert_int_equal(hfx_count_entries(p), 1);
	assert_false(dir_has_suffix(p, ".corrupt"));
	assert_false(dir_has_suffix(p, ".tmp"));
	assert_no_trace_of(c, "full-4");
	if (hfx_end(fx, "full-3", &err) < 0)
		fail_msg("AllocationEnded full-3: %s", err.message);
	assert_no_trace_of(c, "full-3");
}

/* ---- the helper under valgrind ---- */

static void test_under_valgrind(void **state)
{
	const char *const vg[] = {
		valgrind_path, "--quiet", "--leak-check=full", "--error-exitcode=99",
		"--track-fds=yes", "--errors-for-leak-kinds=definite,possible", NULL, NULL,
	};
	const char *argv[8];
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	char vglog[PATH_MAX + 32];
	struct hpcn_msg req, resp;
	struct hpcn_error err;
	json_t *st;
	pid_t sleeper;
	int sock, status;

	if (!valgrind_path || access(valgrind_path, X_OK) < 0)
		fail_msg("valgrind (%s) is missing (Debian package valgrind)",
			 valgrind_path ? valgrind_path : "not found by cmake");
	snprintf(vglog, sizeof(vglog), "--log-file=%s/valgrind.log", fx->dir);
	memcpy(argv, vg, sizeof(argv));
	argv[6] = vglog;
	fx->exec_prefix = argv;
	if (hfx_start(fx) < 0)
		fail_msg("the helper did not start under valgrind");
	{
		char exe[64], target[PATH_MAX];
		ssize_t n;

		/* Really under valgrind: its tool is the process's executable. */
		snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)fx->pid);
		n = readlink(exe, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		if (!strstr(target, "memcheck"))
			fail_msg("the helper runs as %s, not under valgrind's memcheck", target);
	}

	/* ping */
	sock = hfx_connect(fx);
	assert_true(sock >= 0);
	hpcn_msg_init(&req, HPCN_TAG_HELLO);
	req.seq = 1;
	req.u.hello.min_version = 1;
	req.u.hello.max_version = HPCN_PROTOCOL_VERSION;
	req.u.hello.software = strdup("test");
	if (hfx_call(sock, &req, NULL, 0, &resp, NULL, NULL, &err) < 0)
		fail_msg("Hello: %s", err.message);
	assert_int_equal(resp.tag, HPCN_TAG_HELLO);
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);

	/* an allocation without namespaces or images (valgrind lacks
	 * open_tree/pidfd_open), one process attached to its scope */
	hpcn_msg_init(&req, HPCN_TAG_NAMESPACE_REQUEST);
	req.seq = 2;
	req.u.ns_request.allocation_id = strdup("vg-1");
	if (hfx_call(sock, &req, NULL, 0, &resp, NULL, NULL, &err) < 0)
		fail_msg("NamespaceRequest: %s", err.message);
	assert_int_equal(resp.tag, HPCN_TAG_NAMESPACE_RESPONSE);
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);
	sleeper = hfx_fork_sleeper(fx);
	if (hfx_attach(fx, "vg-1", sleeper, &err) < 0)
		fail_msg("Attach: %s", err.message);
	assert_true(hfx_cg_has_pid(fx, "workload.slice/vg-1.scope", sleeper));
	st = hfx_status(fx);
	assert_non_null(st);
	assert_int_equal(hfx_status_n_allocs(st), 1);
	json_decref(st);

	/* a bad record: an Error, the connection stays */
	{
		static const char bad[] = "hello";

		if (hfx_raw(sock, bad, sizeof(bad) - 1, NULL, 0, &resp, &err) < 0)
			fail_msg("bad record: %s", err.message);
		assert_int_equal(resp.tag, HPCN_TAG_ERROR);
		hpcn_msg_free(&resp);
	}
	close(sock);

	/* end: the process dies with its scope */
	if (hfx_end(fx, "vg-1", &err) < 0)
		fail_msg("AllocationEnded: %s", err.message);
	status = hfx_wait_child(sleeper, HFX_TIMEOUT_MS);
	assert_true(status != -1 && WIFSIGNALED(status));

	/* SIGTERM: a clean exit, every byte freed */
	status = hfx_stop(fx, SIGTERM, 30000);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char line[1024];
		FILE *f = fopen(vglog + strlen("--log-file="), "re");

		while (f && fgets(line, sizeof(line), f))
			fputs(line, stderr);
		if (f)
			fclose(f);
		fail_msg("the helper under valgrind ended with status %#x (exit 99: errors "
			 "or leaks, see above)", status);
	}
	/* --track-fds: nothing left open at exit but the standard streams and
	 * valgrind's own log. */
	{
		char line[1024];
		FILE *f = fopen(vglog + strlen("--log-file="), "re");
		int left = 0;

		assert_non_null(f);
		while (fgets(line, sizeof(line), f))
			if (strstr(line, "Open file descriptor") && !strstr(line, "valgrind.log")) {
				fputs(line, stderr);
				left++;
			}
		fclose(f);
		if (left)
			fail_msg("the helper left %d descriptor(s) open at exit", left);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest faults[] = {
		cmocka_unit_test_setup_teardown(test_client_leaves_mid_handoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eight_fds_then_leave, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_cache_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_devices_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_waits_for_dying_scope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_dir_full, setup, teardown),
	};
	const struct CMUnitTest vg[] = {
		cmocka_unit_test_setup_teardown(test_under_valgrind, setup, teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_faults needs root (label root)\n");
		return 1;
	}
	if (getenv("HPCN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("HPCN_TEST_FILTER"));
	if (argc == 3 && strcmp(argv[1], "--valgrind") == 0) {
		valgrind_path = argv[2];
		return cmocka_run_group_tests_name("test_helper_valgrind", vg, NULL, NULL);
	}
	if (argc != 1) {
		fprintf(stderr, "usage: %s [--valgrind PATH]\n", argv[0]);
		return 2;
	}
	return cmocka_run_group_tests_name("test_helper_faults", faults, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper end to end, faults and hostile clients:
 *  - a client that leaves in the middle of the handoff (request sent, reply
 *    never read): the allocation exists, is visible and endable, and the
 *    helper keeps no descriptor or mount of the half-done exchange;
 *  - clients that send a record with 8 descriptors and leave: the helper
 *    closes every one of them;
 *  - the helper under valgrind through a short scenario: no error, no leak;
 *  - its namespace FD cache bounded by a small descriptor limit.
 * Resources that run out: test_helper_faults_exhausted.c; processes that
 * cannot die: test_helper_faults_dying.c; what they share:
 * test_helper_faults_util.c.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "test_helper_faults_util.h"

/* Set by --valgrind PATH: the only test then run. */
static const char *valgrind_path;

static bool fds_at_most(struct hfx *fx, const void *arg)
{
	return hfx_count_fds(fx->pid) <= *(const int *)arg;
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

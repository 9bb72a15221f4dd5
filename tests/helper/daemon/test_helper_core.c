/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper end to end, core and cgroup: readiness file, Hello, Status,
 * scopes under workload.slice in the helper's own cgroup subtree, Attach,
 * MetricsRequest, AllocationEnded, RI1 (pact.slice), SIGTERM + restart (WI6),
 * the helper's own end detection (WI5).
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/readiness.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"

static int setup(void **state)
{
	struct hfx *fx = calloc(1, sizeof(*fx));

	if (!fx || hfx_setup(fx) < 0) {
		if (fx)
			hfx_teardown(fx);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct hfx *fx = *state;

	hfx_teardown(fx);
	free(fx);
	return 0;
}

/* NamespaceRequest on an open connection. */
static int ns_request(int sock, const char *id, const char *group, struct hpcn_msg *resp,
		      int *rfds, size_t *nrfds, struct hpcn_error *err)
{
	struct hpcn_msg req;
	int rv;

	hpcn_msg_init(&req, HPCN_TAG_NAMESPACE_REQUEST);
	req.seq = 11;
	req.u.ns_request.allocation_id = strdup(id);
	if (group)
		req.u.ns_request.group = strdup(group);
	rv = hfx_call(sock, &req, NULL, 0, resp, rfds, nrfds, err);
	hpcn_msg_free(&req);
	return rv;
}

static int metrics(int sock, const char *path, struct hpcn_cgroup_metrics *out,
		   struct hpcn_error *err)
{
	struct hpcn_msg req, resp;
	int rv;

	hpcn_msg_init(&req, HPCN_TAG_METRICS_REQUEST);
	req.seq = 12;
	req.u.metrics_request.path = strdup(path);
	rv = hfx_call(sock, &req, NULL, 0, &resp, NULL, NULL, err);
	if (rv == 0 && resp.tag != HPCN_TAG_CGROUP_METRICS)
		rv = hpcn_error_setf(err, HPCN_E_INTERNAL, NULL, "MetricsRequest answered %s",
				     hpcn_tag_name(resp.tag));
	if (rv == 0)
		*out = resp.u.metrics;
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);
	return rv;
}

static int end_on(int sock, const char *id, struct hpcn_error *err)
{
	struct hpcn_msg req, resp;
	int rv;

	hpcn_msg_init(&req, HPCN_TAG_ALLOCATION_ENDED);
	req.seq = 13;
	req.u.ended.allocation_id = strdup(id);
	rv = hfx_call(sock, &req, NULL, 0, &resp, NULL, NULL, err);
	if (rv == 0 && resp.tag != HPCN_TAG_OK)
		rv = hpcn_error_setf(err, HPCN_E_INTERNAL, NULL, "AllocationEnded answered %s",
				     hpcn_tag_name(resp.tag));
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);
	return rv;
}

static bool file_contains(const char *path, const char *needle)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static void make_run_dir(struct hfx *fx)
{
	char run[PATH_MAX];

	snprintf(run, sizeof(run), "%s/run", fx->dir);
	assert_int_equal(mkdir(run, 0755), 0);
}

/* The readiness file: a stale one is removed at start (before anything
 * else), the new one appears atomically once the helper answers, names the
 * helper's pid, and is removed on SIGTERM together with the socket. */
static void test_ready_file_lifecycle(void **state)
{
	struct hfx *fx = *state;
	char run[PATH_MAX], buf[4096], pidline[64];
	bool deleted = false, created_after_delete = false;
	json_t *st;
	int in, status;
	ssize_t n;

	make_run_dir(fx);
	snprintf(run, sizeof(run), "%s/run", fx->dir);
	assert_int_equal(hpcn_readiness_signal(fx->ready, "stale\n", NULL), 0);
	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(in >= 0);
	assert_true(inotify_add_watch(in, run, IN_DELETE | IN_MOVED_TO | IN_CREATE) >= 0);

	assert_int_equal(hfx_start(fx), 0);
	snprintf(pidline, sizeof(pidline), "pid=%d\n", (int)fx->pid);
	assert_true(file_contains(fx->ready, pidline));
	assert_false(file_contains(fx->ready, "stale"));

	/* Event order: the stale file went before the new one came. */
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			if (ev->len && strcmp(ev->name, "ready") == 0) {
				if (ev->mask & IN_DELETE)
					deleted = true;
				if ((ev->mask & (IN_MOVED_TO | IN_CREATE)) && deleted)
					created_after_delete = true;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	close(in);
	assert_true(deleted);
	assert_true(created_after_delete);

	/* Ready means answering. */
	st = hfx_status(fx);
	assert_non_null(st);
	assert_true(json_is_true(json_object_get(st, "ready")));
	assert_int_equal(json_integer_value(json_object_get(st, "pid")), fx->pid);
	json_decref(st);

	status = hfx_stop(fx, SIGTERM, HFX_TIMEOUT_MS);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(hfx_exists(fx->ready));
	assert_false(hfx_exists(fx->sock));
}

/* A helper that cannot start never signals readiness, and a stale file
 * from a previous run does not survive its attempt. */
static void test_no_ready_file_when_start_fails(void **state)
{
	struct hfx *fx = *state;
	char blocker[128];
	int status;

	make_run_dir(fx);
	assert_int_equal(hpcn_readiness_signal(fx->ready, "stale\n", NULL), 0);
	snprintf(blocker, sizeof(blocker), "%.64s/not-a-dir", fx->dir);
	assert_int_equal(close(open(blocker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
	snprintf(fx->state, sizeof(fx->state), "%s/state", blocker);

	assert_true(hfx_spawn(fx) > 0);
	status = hfx_wait_child(fx->pid, HFX_TIMEOUT_MS);
	fx->pid = 0;
	assert_true(status != -1);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 0);
	assert_false(hfx_exists(fx->ready));
}

static void test_hello_and_status(void **state)
{
	struct hfx *fx = *state;
	struct hpcn_msg req, resp;
	struct hpcn_error err;
	json_t *st, *cg, *counters;
	int sock;

	assert_int_equal(hfx_start(fx), 0);
	sock = hfx_connect(fx);
	assert_true(sock >= 0);
	hpcn_msg_init(&req, HPCN_TAG_HELLO);
	req.seq = 3;
	req.u.hello.min_version = 1;
	req.u.hello.max_version = 1;
	req.u.hello.software = strdup("test_helper_core");
	assert_int_equal(hfx_call(sock, &req, NULL, 0, &resp, NULL, NULL, &err), 0);
	assert_int_equal(resp.tag, HPCN_TAG_HELLO);
	assert_int_equal(resp.seq, 3);
	assert_int_equal(resp.u.hello.min_version, 1);
	assert_int_equal(resp.u.hello.max_version, HPCN_PROTOCOL_VERSION);
	assert_non_null(resp.u.hello.software);
	assert_true(strncmp(resp.u.hello.software, "hpc-node-helper ", 16) == 0);
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);
	close(sock);

	st = hfx_status(fx);
	assert_non_null(st);
	assert_true(strncmp(json_string_value(json_object_get(st, "software")) ?: "",
			    "hpc-node-helper ", 16) == 0);
	assert_string_equal(json_string_value(json_object_get(st, "contract")) ?: "",
			    HPCN_CONTRACT_VERSION);
	assert_int_equal(json_integer_value(json_object_get(st, "pid")), fx->pid);
	assert_true(json_is_true(json_object_get(st, "ready")));
	assert_true(json_is_integer(json_object_get(st, "uptime_secs")));
	assert_string_equal(json_string_value(json_object_get(st, "socket")) ?: "", fx->sock);
	assert_int_equal(json_integer_value(json_object_get(st, "hold_time_secs")),
			 fx->hold_time);
	cg = json_object_get(st, "cgroup");
	assert_true(json_is_object(cg));
	assert_string_equal(json_string_value(json_object_get(cg, "root")) ?: "", fx->cg_root);
	assert_true(json_is_true(json_object_get(cg, "enabled")));
	assert_true(json_is_array(json_object_get(cg, "controllers")));
	assert_true(json_is_array(json_object_get(cg, "warnings")));
	assert_true(json_is_array(json_object_get(st, "allocations")));
	assert_int_equal(hfx_status_n_allocs(st), 0);
	assert_true(json_is_array(json_object_get(st, "mounts")));
	assert_true(json_is_array(json_object_get(st, "zombies")));
	counters = json_object_get(st, "counters");
	assert_true(json_is_object(counters));
	/* The Hello above and this StatusRequest. */
	assert_true(json_integer_value(json_object_get(counters, "requests")) >= 2);
	assert_true(json_integer_value(json_object_get(counters, "connections")) >= 2);
	assert_true(json_is_integer(json_object_get(counters, "errors")));
	assert_true(json_is_integer(json_object_get(counters, "denied")));
	json_decref(st);

	/* workload.slice made in our subtree, pact.slice not (RI1). */
	{
		char p[PATH_MAX * 2];

		hfx_cg_path(fx, "workload.slice", p, sizeof(p));
		assert_true(hfx_exists(p));
		hfx_cg_path(fx, "pact.slice", p, sizeof(p));
		assert_false(hfx_exists(p));
	}
	/* The audit file got the boot record. */
	assert_true(hfx_audit_count(fx, "\"action\":\"boot.ready\"", "\"outcome\":\"Success\"",
				    NULL) >= 1);
}

/* Scope in the group's slice, Attach, Metrics by allocation id,
 * AllocationEnded kills the process and removes scope and slice. */
static void test_scope_attach_metrics_end(void **state)
{
	struct hfx *fx = *state;
	struct hpcn_msg resp;
	struct hpcn_error err;
	struct hpcn_cgroup_metrics m;
	char scope[PATH_MAX * 2], slice[PATH_MAX * 2];
	int rfds[HPCN_MAX_MESSAGE_FDS];
	size_t nrfds = 0;
	pid_t kid;
	int sock, st;
	json_t *status, *a;

	assert_int_equal(hfx_start(fx), 0);
	sock = hfx_connect(fx);
	assert_true(sock >= 0);
	if (ns_request(sock, "job1.0", "job1", &resp, rfds, &nrfds, &err) < 0)
		fail_msg("NamespaceRequest: %s", err.message);
	assert_int_equal(resp.tag, HPCN_TAG_NAMESPACE_RESPONSE);
	assert_int_equal(nrfds, 0);
	assert_int_equal(resp.u.ns_response.n_fd_types, 0);
	assert_non_null(resp.u.ns_response.scope);
	assert_string_equal(resp.u.ns_response.scope, "workload.slice/job1.slice/job1.0.scope");
	hpcn_msg_free(&resp);
	hfx_cg_path(fx, "workload.slice/job1.slice/job1.0.scope", scope, sizeof(scope));
	hfx_cg_path(fx, "workload.slice/job1.slice", slice, sizeof(slice));
	assert_true(hfx_exists(scope));
	assert_true(hfx_audit_count(fx, "\"action\":\"cgroup.create\"", "job1.0",
				    "\"outcome\":\"Success\"", NULL) >= 1);

	kid = hfx_fork_sleeper(fx);
	assert_true(kid > 0);
	if (hfx_attach(fx, "job1.0", kid, &err) < 0)
		fail_msg("Attach: %s", err.message);
	assert_true(hfx_cg_has_pid(fx, "workload.slice/job1.slice/job1.0.scope", kid));

	if (metrics(sock, "job1.0", &m, &err) < 0)
		fail_msg("MetricsRequest job1.0: %s", err.message);
	assert_int_equal(m.nr_processes, 1);
	if (metrics(sock, "workload.slice/job1.slice", &m, &err) < 0)
		fail_msg("MetricsRequest slice: %s", err.message);
	assert_int_equal(m.nr_processes, 0); /* procs of the slice itself: none */

	status = hfx_status(fx);
	a = hfx_status_alloc(status, "job1.0");
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(a, "state")) ?: "", "active");
	assert_string_equal(json_string_value(json_object_get(a, "group")) ?: "", "job1");
	assert_int_equal(json_integer_value(json_object_get(a, "nr_processes")), 1);
	assert_true(json_is_true(json_object_get(a, "client_connected")));
	json_decref(status);

	if (end_on(sock, "job1.0", &err) < 0)
		fail_msg("AllocationEnded: %s", err.message);
	st = hfx_wait_child(kid, HFX_TIMEOUT_MS);
	assert_true(st != -1);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	assert_false(hfx_exists(scope));
	assert_false(hfx_exists(slice));
	status = hfx_status(fx);
	assert_int_equal(hfx_status_n_allocs(status), 0);
	json_decref(status);
	/* The registry record is gone too. */
	{
		char rec[PATH_MAX * 2];

		snprintf(rec, sizeof(rec), "%s/allocations/job1.0.json", fx->state);
		assert_false(hfx_exists(rec));
	}
	/* A second end: AllocationNotFound. */
	assert_int_equal(end_on(sock, "job1.0", &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_ALLOCATION_NOT_FOUND);
	close(sock);
}

/* RI1: nothing a client sends makes the helper create or write in
 * pact.slice; RI6: reading it is allowed. */
static void test_pact_slice_never_written(void **state)
{
	struct hfx *fx = *state;
	struct hpcn_msg resp;
	struct hpcn_error err;
	struct hpcn_cgroup_metrics m;
	char pact[PATH_MAX * 2], infra[PATH_MAX * 2], p[PATH_MAX * 2];
	int sock;

	assert_int_equal(hfx_start(fx), 0);
	hfx_cg_path(fx, "pact.slice", pact, sizeof(pact));
	sock = hfx_connect(fx);
	assert_true(sock >= 0);

	/* Reads of a pact path that does not exist: an error, nothing made. */
	assert_int_equal(metrics(sock, "pact.slice", &m, &err), -1);
	assert_int_equal(metrics(sock, "pact.slice/infra.slice", &m, &err), -1);
	assert_int_equal(metrics(sock, "../pact.slice", &m, &err), -1);
	assert_false(hfx_exists(pact));

	/* Names that look like pact's end up inside workload.slice. */
	if (ns_request(sock, "pact.slice", "pact.slice", &resp, NULL, NULL, &err) < 0)
		fail_msg("NamespaceRequest pact.slice: %s", err.message);
	assert_string_equal(resp.u.ns_response.scope ?: "",
			    "workload.slice/pact.slice.slice/pact.slice.scope");
	hpcn_msg_free(&resp);
	hfx_cg_path(fx, "workload.slice/pact.slice.slice/pact.slice.scope", p, sizeof(p));
	assert_true(hfx_exists(p));
	assert_false(hfx_exists(pact));
	if (end_on(sock, "pact.slice", &err) < 0)
		fail_msg("AllocationEnded: %s", err.message);
	assert_false(hfx_exists(p));
	assert_false(hfx_exists(pact));

	/* pact made its slice: the helper may read it, and writes nothing. */
	assert_int_equal(mkdir(pact, 0755), 0);
	hfx_cg_path(fx, "pact.slice/infra.slice", infra, sizeof(infra));
	assert_int_equal(mkdir(infra, 0755), 0);
	if (metrics(sock, "pact.slice/infra.slice", &m, &err) < 0)
		fail_msg("MetricsRequest pact.slice/infra.slice: %s", err.message);
	assert_int_equal(m.nr_processes, 0);
	{
		DIR *d = opendir(infra);
		struct dirent *de;
		int subdirs = 0;

		assert_non_null(d);
		while ((de = readdir(d)))
			if (de->d_type == DT_DIR && de->d_name[0] != '.')
				subdirs++;
		closedir(d);
		assert_int_equal(subdirs, 0);
	}
	close(sock);
}

/* SIGTERM: scopes and their processes stay; a restarted helper knows the
 * allocation (WI6) and can end it. */
static void test_sigterm_keeps_allocation(void **state)
{
	struct hfx *fx = *state;
	struct hpcn_msg resp;
	struct hpcn_error err;
	char scope[PATH_MAX * 2];
	json_t *status, *a;
	pid_t kid;
	int sock, st;

	assert_int_equal(hfx_start(fx), 0);
	sock = hfx_connect(fx);
	assert_true(sock >= 0);
	if (ns_request(sock, "keep.0", "keep", &resp, NULL, NULL, &err) < 0)
		fail_msg("NamespaceRequest: %s", err.message);
	hpcn_msg_free(&resp);
	kid = hfx_fork_sleeper(fx);
	if (hfx_attach(fx, "keep.0", kid, &err) < 0)
		fail_msg("Attach: %s", err.message);

	st = hfx_stop(fx, SIGTERM, HFX_TIMEOUT_MS);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close(sock);
	hfx_cg_path(fx, "workload.slice/keep.slice/keep.0.scope", scope, sizeof(scope));
	assert_true(hfx_exists(scope));
	assert_true(hfx_alive(kid));
	assert_true(hfx_cg_has_pid(fx, "workload.slice/keep.slice/keep.0.scope", kid));

	assert_int_equal(hfx_start(fx), 0);
	status = hfx_status(fx);
	a = hfx_status_alloc(status, "keep.0");
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(a, "state")) ?: "", "active");
	assert_string_equal(json_string_value(json_object_get(a, "scope")) ?: "",
			    "workload.slice/keep.slice/keep.0.scope");
	assert_int_equal(json_integer_value(json_object_get(a, "nr_processes")), 1);
	json_decref(status);
	/* One reconcile period later it is still there (it has a process). */
	hfx_sleep_ms((int)fx->reconcile_interval * 1000 + 300);
	assert_true(hfx_alive(kid));

	if (hfx_end(fx, "keep.0", &err) < 0)
		fail_msg("AllocationEnded after restart: %s", err.message);
	st = hfx_wait_child(kid, HFX_TIMEOUT_MS);
	assert_true(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_false(hfx_exists(scope));
}

static bool alloc_gone(struct hfx *fx, const void *arg)
{
	json_t *st = hfx_status(fx);
	bool gone = st && !hfx_status_alloc(st, arg);

	json_decref(st);
	return gone;
}

/* WI5: client gone and scope emptied (after it had a process): the helper
 * ends the allocation by itself. */
static void test_wi5_helper_detects_end(void **state)
{
	struct hfx *fx = *state;
	struct hpcn_msg resp;
	struct hpcn_error err;
	char scope[PATH_MAX * 2];
	json_t *status;
	pid_t kid;
	int sock;

	assert_int_equal(hfx_start(fx), 0);
	sock = hfx_connect(fx);
	assert_true(sock >= 0);
	if (ns_request(sock, "wi5.0", "wi5", &resp, NULL, NULL, &err) < 0)
		fail_msg("NamespaceRequest: %s", err.message);
	hpcn_msg_free(&resp);
	kid = hfx_fork_sleeper(fx);
	if (hfx_attach(fx, "wi5.0", kid, &err) < 0)
		fail_msg("Attach: %s", err.message);
	hfx_cg_path(fx, "workload.slice/wi5.slice/wi5.0.scope", scope, sizeof(scope));

	/* The client goes; a process remains: kept. */
	close(sock);
	hfx_sleep_ms((int)fx->reconcile_interval * 1000 + 300);
	status = hfx_status(fx);
	assert_non_null(hfx_status_alloc(status, "wi5.0"));
	json_decref(status);
	assert_true(hfx_exists(scope));

	/* The last process exits: ended within a few seconds. */
	kill(kid, SIGKILL);
	assert_true(hfx_wait_child(kid, HFX_TIMEOUT_MS) != -1);
	assert_true(hfx_wait_for(alloc_gone, fx, "wi5.0", HFX_WAIT_MS));
	assert_false(hfx_exists(scope));
	assert_true(hfx_audit_count(fx, "\"action\":\"cgroup.destroy\"", "wi5.0",
				    "\"principal_type\":\"System\"", NULL) >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ready_file_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_ready_file_when_start_fails, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hello_and_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scope_attach_metrics_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pact_slice_never_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_keeps_allocation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wi5_helper_detects_end, setup, teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_core needs root (label root)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper end to end, bad input: a peer that is not allowed, records
 * that break the protocol (while another client keeps being served), and
 * NamespaceRequests the helper must refuse without leaving anything behind
 * (no mount, no loop device, no allocation, no scope, no pin).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"

struct ctx {
	struct hfx fx;
	struct sqfs_fixture sq;
	char image[PATH_MAX];
	int loops_before;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	*state = c;
	c->loops_before = sqfs_count_loops();
	if (hfx_setup(&c->fx) < 0 || sqfs_fixture_init(&c->sq) < 0 ||
	    sqfs_fixture_make_image(&c->sq, "good", "HELLO-GOOD", c->image, sizeof(c->image)) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	if (!c)
		return 0;
	hfx_teardown(&c->fx);
	sqfs_fixture_cleanup(&c->sq);
	/* Nothing of this test outlives it. */
	if (!sqfs_wait_loop_count(c->loops_before, 5000)) /* a message only */
		fprintf(stderr, "loop devices: %d before, %d after\n", c->loops_before,
			sqfs_count_loops());
	free(c);
	return 0;
}

static int status_on(int sock, uint64_t seq, struct hpcn_error *err)
{
	struct hpcn_msg req, resp;
	int rv;

	hpcn_msg_init(&req, HPCN_TAG_STATUS_REQUEST);
	req.seq = seq;
	req.u.json = strdup("{}");
	rv = hfx_call(sock, &req, NULL, 0, &resp, NULL, NULL, err);
	if (rv == 0 && (resp.tag != HPCN_TAG_STATUS || resp.seq != seq))
		rv = hpcn_error_set(err, HPCN_E_INTERNAL, "not a Status reply", NULL);
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);
	return rv;
}

/* A peer outside [access]: one Error Denied (seq 0), then EOF; audited. */
static void test_denied_peer(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	json_t *st;
	pid_t pid;
	int status;

	snprintf(fx->socket_mode, sizeof(fx->socket_mode), "0666");
	assert_int_equal(hfx_start(fx), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct hpcn_msg m;
		struct hpcn_error err;
		int fds[HPCN_MAX_MESSAGE_FDS];
		size_t nfds = 0;
		struct pollfd p;
		int sock, r;

		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		sock = hpcn_client_connect(fx->sock, HFX_TIMEOUT_MS, &err);
		if (sock < 0) {
			fprintf(stderr, "child: %s\n", err.message);
			_exit(11);
		}
		p.fd = sock;
		p.events = POLLIN;
		if (poll(&p, 1, HFX_TIMEOUT_MS) != 1)
			_exit(12);
		r = hpcn_recv_msg(sock, &m, fds, &nfds, HPCN_MAX_MESSAGE_FDS, &err);
		if (r != 1 || m.tag != HPCN_TAG_ERROR || m.seq != 0 ||
		    m.u.error.kind != HPCN_E_DENIED || nfds != 0)
			_exit(13);
		fprintf(stderr, "child got: %s\n", m.u.error.message);
		hpcn_msg_free(&m);
		if (poll(&p, 1, HFX_TIMEOUT_MS) != 1)
			_exit(14);
		/* Closed by the helper: EOF (or a reset), never a second reply. */
		r = hpcn_recv_msg(sock, &m, fds, &nfds, HPCN_MAX_MESSAGE_FDS, &err);
		if (r == 1)
			_exit(15);
		_exit(0);
	}
	status = hfx_wait_child(pid, 3 * HFX_TIMEOUT_MS);
	assert_true(status != -1);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	assert_true(hfx_audit_count(fx, "\"outcome\":\"Denied\"", "\"uid\":65534", NULL) >= 1);
	st = hfx_status(fx);
	assert_non_null(st);
	assert_true(json_integer_value(json_object_get(json_object_get(st, "counters"),
						       "denied")) >= 1);
	json_decref(st);
}

static void expect_error(int sock, const char *rec, size_t len, const int *fds, size_t nfds,
			 enum hpcn_error_kind kind, uint64_t seq)
{
	struct hpcn_msg resp;
	struct hpcn_error err;

	if (hfx_raw(sock, rec, len, fds, nfds, &resp, &err) < 0)
		fail_msg("no reply to a bad record: %s", err.message);
	if (resp.tag != HPCN_TAG_ERROR || resp.u.error.kind != kind || resp.seq != seq)
		fail_msg("expected Error %s seq %llu, got tag %s kind %s seq %llu (%s)",
			 hpcn_error_variant(kind), (unsigned long long)seq,
			 hpcn_tag_name(resp.tag),
			 resp.tag == HPCN_TAG_ERROR ? hpcn_error_variant(resp.u.error.kind) : "-",
			 (unsigned long long)resp.seq,
			 resp.tag == HPCN_TAG_ERROR ? resp.u.error.message : "");
	fprintf(stderr, "  -> %s\n", resp.u.error.message);
	hpcn_msg_free(&resp);
}

/* Each bad record gets its Error; the connection stays usable; another
 * client is served all along; FDs sent where none belong are closed. */
static void test_malformed_records(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	static char big[HPCN_MAX_MESSAGE_SIZE + 5000];
	const char *not_json = "this is not JSON";
	const char *unknown = "{\"version\":1,\"tag\":\"Frobnicate\",\"seq\":9,\"body\":{}}";
	const char *v2 = "{\"version\":2,\"tag\":\"StatusRequest\",\"seq\":10,\"body\":{}}";
	const char *status_req = "{\"version\":1,\"tag\":\"StatusRequest\",\"seq\":11,\"body\":{}}";
	const char *reply_tag = "{\"version\":1,\"tag\":\"Ok\",\"seq\":12,\"body\":{}}";
	const char *bad_id = "{\"version\":1,\"tag\":\"NamespaceRequest\",\"seq\":13,\"body\":"
			     "{\"allocation_id\":\"../etc\",\"namespaces\":[],"
			     "\"uenv_image\":null}}";
	const char *deep = "{\"version\":1,\"tag\":\"StatusRequest\",\"seq\":14,\"body\":"
			   "{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}}";
	struct hpcn_error err;
	int a, b, fds_before, devnull[2];
	uint64_t seq = 100;

	assert_int_equal(hfx_start(fx), 0);
	a = hfx_connect(fx);
	b = hfx_connect(fx);
	assert_true(a >= 0 && b >= 0);
	assert_int_equal(status_on(a, seq++, &err), 0);
	assert_int_equal(status_on(b, seq++, &err), 0);
	fds_before = hfx_count_fds(fx->pid);
	assert_true(fds_before > 0);

	memset(big, ' ', sizeof(big));
	memcpy(big, status_req, strlen(status_req));

	expect_error(b, not_json, strlen(not_json), NULL, 0, HPCN_E_PROTO_MALFORMED, 0);
	assert_int_equal(status_on(a, seq++, &err), 0);
	assert_int_equal(status_on(b, seq++, &err), 0);

	expect_error(b, big, sizeof(big), NULL, 0, HPCN_E_PROTO_TOO_LARGE, 0);
	assert_int_equal(status_on(a, seq++, &err), 0);
	assert_int_equal(status_on(b, seq++, &err), 0);

	expect_error(b, unknown, strlen(unknown), NULL, 0, HPCN_E_PROTO_UNKNOWN_TAG, 9);
	assert_int_equal(status_on(a, seq++, &err), 0);
	assert_int_equal(status_on(b, seq++, &err), 0);

	expect_error(b, v2, strlen(v2), NULL, 0, HPCN_E_PROTO_UNSUPPORTED_VERSION, 10);
	assert_int_equal(status_on(a, seq++, &err), 0);
	assert_int_equal(status_on(b, seq++, &err), 0);

	devnull[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	devnull[1] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(devnull[0] >= 0 && devnull[1] >= 0);
	expect_error(b, status_req, strlen(status_req), devnull, 2, HPCN_E_PROTO_UNEXPECTED_FDS,
		     11);
	close(devnull[0]);
	close(devnull[1]);
	assert_int_equal(status_on(a, seq++, &err), 0);
	assert_int_equal(status_on(b, seq++, &err), 0);

	expect_error(b, reply_tag, strlen(reply_tag), NULL, 0, HPCN_E_INVALID_ARGUMENT, 12);
	expect_error(b, bad_id, strlen(bad_id), NULL, 0, HPCN_E_INVALID_ARGUMENT, 13);
	expect_error(b, deep, strlen(deep), NULL, 0, HPCN_E_PROTO_MALFORMED, 0);
	expect_error(b, "", 0, NULL, 0, HPCN_E_PROTO_MALFORMED, 0);
	assert_int_equal(status_on(a, seq++, &err), 0);
	assert_int_equal(status_on(b, seq++, &err), 0);

	/* No FD of ours stayed in the helper. */
	assert_int_equal(hfx_count_fds(fx->pid), fds_before);
	{
		json_t *st = hfx_status(fx);

		assert_non_null(st);
		assert_int_equal(hfx_status_n_allocs(st), 0);
		assert_true(json_integer_value(json_object_get(json_object_get(st, "counters"),
							       "errors")) >= 9);
		json_decref(st);
	}
	close(a);
	close(b);
}

/* ---- NamespaceRequests that must leave nothing ---- */

struct snapshot {
	int mounts;         /* under the temp dir (uenv base, pins) */
	int loops;          /* backed by our images */
	size_t allocs;
	int records;        /* registry files */
	int scopes;         /* entries of workload.slice */
};

static int count_dir(const char *path)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(path);

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void snap(struct ctx *c, struct snapshot *s)
{
	char p[PATH_MAX * 2];
	json_t *st = hfx_status(&c->fx);

	assert_non_null(st);
	s->allocs = hfx_status_n_allocs(st);
	json_decref(st);
	s->mounts = hfx_count_mounts_under(c->fx.dir);
	s->loops = sqfs_count_loops_under(c->sq.dir);
	snprintf(p, sizeof(p), "%s/allocations", c->fx.state);
	s->records = count_dir(p);
	hfx_cg_path(&c->fx, "workload.slice", p, sizeof(p));
	s->scopes = 0;
	{
		struct dirent *de;
		DIR *d = opendir(p);

		assert_non_null(d);
		while ((de = readdir(d)))
			s->scopes += de->d_type == DT_DIR && de->d_name[0] != '.';
		closedir(d);
	}
}

static void assert_same(const struct snapshot *a, const struct snapshot *b, const char *what)
{
	if (a->mounts != b->mounts || a->loops != b->loops || a->allocs != b->allocs ||
	    a->records != b->records || a->scopes != b->scopes)
		fail_msg("%s left something: mounts %d->%d loops %d->%d allocations %zu->%zu "
			 "records %d->%d scopes %d->%d", what, a->mounts, b->mounts, a->loops,
			 b->loops, a->allocs, b->allocs, a->records, b->records, a->scopes,
			 b->scopes);
}

/* images[i] mounted at points[i] (NULL: default). */
static int request(struct ctx *c, const char *id, size_t n, const char *const *images,
		   const char *const *points, bool as_nobody, struct hpcn_error *err)
{
	struct hpcn_msg m;
	struct hpcn_namespace_response resp;
	int fds[HPCN_NS__COUNT];
	int rv;

	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	m.u.ns_request.allocation_id = strdup(id);
	m.u.ns_request.namespaces[m.u.ns_request.n_namespaces++] = HPCN_NS_MOUNT;
	for (size_t i = 0; i < n; i++) {
		m.u.ns_request.mounts[i].image_path = strdup(images[i]);
		m.u.ns_request.mounts[i].mount_point = points && points[i] ? strdup(points[i])
									   : NULL;
		m.u.ns_request.n_mounts++;
	}
	if (as_nobody) {
		m.u.ns_request.has_uid = true;
		m.u.ns_request.uid = 65534;
		m.u.ns_request.gid = 65534;
	}
	rv = hpcn_request_namespaces(c->fx.sock, HFX_TIMEOUT_MS, &m.u.ns_request, NULL, 0,
				     &resp, fds, err);
	if (rv == 0) {
		hpcn_close_fds(fds, HPCN_NS__COUNT);
		hpcn_namespace_response_free(&resp);
	}
	hpcn_msg_free(&m);
	return rv;
}

static void refused(struct ctx *c, const char *id, size_t n, const char *const *images,
		    const char *const *points, bool as_nobody, enum hpcn_error_kind kind,
		    const char *needle)
{
	struct snapshot before, after;
	struct hpcn_error err;

	snap(c, &before);
	if (request(c, id, n, images, points, as_nobody, &err) == 0)
		fail_msg("%s: accepted", id);
	fprintf(stderr, "  %s -> %s\n", id, err.message);
	if (err.kind != kind)
		fail_msg("%s: expected %s, got %s: %s", id, hpcn_error_variant(kind),
			 hpcn_error_variant(err.kind), err.message);
	if (needle && !strstr(err.message, needle))
		fail_msg("%s: message does not name '%s': %s", id, needle, err.message);
	snap(c, &after);
	assert_same(&before, &after, id);
}

static void test_bad_namespace_requests(void **state)
{
	struct ctx *c = *state;
	char secret[PATH_MAX], link[PATH_MAX], text[PATH_MAX], missing[PATH_MAX + 16];
	const char *five[5], *dup_points[2] = { "/user-environment", "/user-environment" };
	const char *etc[1] = { "/etc" };
	const char *img[1];

	assert_int_equal(hfx_start(&c->fx), 0);

	/* Unreadable by the allocation's user. */
	assert_int_equal(sqfs_fixture_make_image(&c->sq, "secret", "S", secret, sizeof(secret)),
			 0);
	assert_int_equal(chmod(secret, 0600), 0);
	img[0] = secret;
	refused(c, "bad-perm", 1, img, NULL, true, HPCN_E_MOUNT_FAILED, secret);
	/* A symlink to a good image. */
	snprintf(link, sizeof(link), "%s/link.sqfs", c->sq.dir);
	assert_int_equal(symlink(c->image, link), 0);
	img[0] = link;
	refused(c, "bad-link", 1, img, NULL, false, HPCN_E_MOUNT_FAILED, link);
	/* Not a squashfs. */
	{
		static char junk[8192];

		memset(junk, 'x', sizeof(junk));
		assert_int_equal(sqfs_fixture_write(&c->sq, "text.sqfs", junk, sizeof(junk), 0644,
						    text, sizeof(text)), 0);
	}
	img[0] = text;
	refused(c, "bad-magic", 1, img, NULL, false, HPCN_E_MOUNT_FAILED, text);
	/* Missing. */
	snprintf(missing, sizeof(missing), "%s/missing.sqfs", c->sq.dir);
	img[0] = missing;
	refused(c, "bad-missing", 1, img, NULL, false, HPCN_E_MOUNT_FAILED, missing);
	/* Relative. */
	img[0] = "relative/image.sqfs";
	refused(c, "bad-relative", 1, img, NULL, false, HPCN_E_INVALID_ARGUMENT,
		"relative/image.sqfs");
	/* A mount point outside the allowlist. */
	img[0] = c->image;
	refused(c, "bad-etc", 1, img, etc, false, HPCN_E_DENIED, "/etc");
	/* The same point twice. */
	{
		const char *two[2] = { c->image, c->image };

		refused(c, "bad-twice", 2, two, dup_points, false, HPCN_E_INVALID_ARGUMENT,
			"/user-environment");
	}
	/* More images than max_images (4). */
	for (int i = 0; i < 5; i++)
		five[i] = c->image;
	refused(c, "bad-five", 5, five, NULL, false, HPCN_E_DENIED, NULL);

	/* A good image and a bad one: the good one's reference is given back;
	 * after the hold time nothing is mounted. */
	{
		const char *mixed[2] = { c->image, missing };
		const char *points[2] = { "/user-environment", "/user-tools" };
		struct hpcn_error err;
		json_t *st;

		assert_int_equal(request(c, "bad-mixed", 2, mixed, points, false, &err), -1);
		fprintf(stderr, "  bad-mixed -> %s\n", err.message);
		assert_int_equal(err.kind, HPCN_E_MOUNT_FAILED);
		st = hfx_status(&c->fx);
		assert_int_equal(hfx_status_n_allocs(st), 0);
		{
			json_t *m = hfx_status_mount_of(st, c->image);

			if (m)
				assert_int_equal(json_integer_value(json_object_get(m, "refcount")),
						 0);
		}
		json_decref(st);
		hfx_sleep_ms((int)(c->fx.hold_time + c->fx.reconcile_interval) * 1000 + 1000);
		assert_int_equal(hfx_count_mounts_under(c->fx.mount_base), 0);
		assert_int_equal(hfx_count_loops_of(c->image), 0);
	}
	{
		char ns[PATH_MAX * 2];

		snprintf(ns, sizeof(ns), "%s/ns", c->fx.state);
		assert_int_equal(count_dir(ns), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_denied_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_namespace_requests, setup, teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_badinput needs root (label root)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}

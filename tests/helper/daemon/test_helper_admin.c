/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The administrator's paths end to end: the built hpc-nodectl (fork+exec,
 * stdout, stderr and exit status captured) against a real hpc-node-helper
 * (helper_fixture), and the helper's admin-side behaviour behind it:
 * Reconcile against drift made behind its back (host mount gone, pins of an
 * unknown allocation, an image unmounted inside an allocation's namespace),
 * ForceUnmount, SIGHUP reloads, and WI5 for an allocation that has a mount
 * namespace but no scope.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "image/image.h"
#include "sqfs_fixture.h"

#define NODECTL HPCN_BINARY_DIR "/helper/hpc-nodectl"
#define NOBODY 65534
/* Drift must survive until our own Reconcile: no periodic pass meanwhile. */
#define NO_PERIODIC_RECONCILE 3600
#define RUN_TIMEOUT_MS HFX_WAIT_MS
/* The helper's HPCN_ORPHAN_GRACE_MS (helper/alloc.c). */
#define ORPHAN_GRACE_MS 30000

static int loops_at_start;

struct ctx {
	struct hfx fx;
	struct sqfs_fixture sq;
	char image[PATH_MAX];
	char log[PATH_MAX + 16];   /* the helper's stderr */
};

struct run {
	int rc;                   /* exit status, or -1 when it did not exit */
	char out[65536];
	char err[8192];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	*state = c;
	if (hfx_setup(&c->fx) < 0 || sqfs_fixture_init(&c->sq) < 0 ||
	    sqfs_fixture_make_image(&c->sq, "admin", "HELLO-ADMIN", c->image,
				    sizeof(c->image)) < 0)
		return -1;
	snprintf(c->log, sizeof(c->log), "%s/helper.log", c->fx.dir);
	/* Unprivileged callers must reach the socket to be refused by the
	 * helper rather than by the file system. */
	snprintf(c->fx.socket_mode, sizeof(c->fx.socket_mode), "0666");
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	if (!c)
		return 0;
	hfx_teardown(&c->fx);
	sqfs_fixture_cleanup(&c->sq);
	free(c);
	return 0;
}

/* Write the config from fx, apply the edits (pairs from, to; NULL ends),
 * start the helper with its stderr in c->log. */
static void start_helper(struct ctx *c, ...)
{
	va_list ap;
	const char *from;

	assert_int_equal(hfx_write_conf(&c->fx), 0);
	va_start(ap, c);
	while ((from = va_arg(ap, const char *))) {
		const char *to = va_arg(ap, const char *);

		assert_int_equal(hfx_conf_replace(&c->fx, from, to), 0);
	}
	va_end(ap);
	assert_int_equal(hfx_start_as_written(&c->fx, c->log), 0);
}

static ssize_t read_all(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t off = 0;

	buf[0] = '\0';
	if (fd < 0)
		return -1;
	while (off + 1 < cap) {
		ssize_t n = read(fd, buf + off, cap - 1 - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	close(fd);
	return (ssize_t)off;
}

/*
 * hpc-nodectl --socket <sock> ARGS... (NULL-terminated), as uid (0 = root).
 * The output goes to files (no pipe to drain while waiting), read back into
 * r. sock NULL: the fixture's socket.
 */
static void nodectl_as(struct ctx *c, struct run *r, uid_t uid, const char *sock, ...)
{
	char outp[PATH_MAX + 16], errp[PATH_MAX + 16];
	const char *argv[32];
	size_t n = 0;
	va_list ap;
	pid_t pid;
	int st;

	argv[n++] = NODECTL;
	argv[n++] = "--socket";
	argv[n++] = sock ? sock : c->fx.sock;
	va_start(ap, sock);
	while (n < 31 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	snprintf(outp, sizeof(outp), "%s/ctl.out", c->fx.dir);
	snprintf(errp, sizeof(errp), "%s/ctl.err", c->fx.dir);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (o < 0 || e < 0 || dup2(o, STDOUT_FILENO) < 0 || dup2(e, STDERR_FILENO) < 0)
			_exit(120);
		if (uid != 0 &&
		    (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
			_exit(121);
		close_range(3, ~0u, 0);
		execv(NODECTL, (char *const *)argv);
		_exit(122);
	}
	st = hfx_wait_child(pid, RUN_TIMEOUT_MS);
	if (st == -1) {
		kill(pid, SIGKILL);
		hfx_wait_child(pid, 2000);
	}
	r->rc = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	read_all(outp, r->out, sizeof(r->out));
	read_all(errp, r->err, sizeof(r->err));
	fprintf(stderr, "  $ hpc-nodectl");
	for (size_t i = 3; i < n; i++)
		fprintf(stderr, " %s", argv[i]);
	fprintf(stderr, "  -> %d%s%s", r->rc, r->err[0] ? ", stderr: " : "\n", r->err);
	assert_true(r->rc >= 0 && r->rc < 120);
}

#define nodectl(c, r, ...) nodectl_as(c, r, 0, NULL, __VA_ARGS__, (const char *)NULL)

static json_t *parse_json(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	if (!j)
		fail_msg("not JSON (%s at line %d): %s", jerr.text, jerr.line, text);
	return j;
}

/* A line of text with both needles, in that order. */
static bool has_line(const char *text, const char *a, const char *b)
{
	const char *p = text;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[1024];
		const char *x;

		snprintf(line, sizeof(line), "%.*s", (int)(len < 1023 ? len : 1023), p);
		if ((x = strstr(line, a)) && strstr(x + strlen(a), b))
			return true;
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

static void request(struct ctx *c, const char *id, const char *group, bool with_image,
		    struct hpcn_namespace_response *resp, int fds[HPCN_NS__COUNT])
{
	struct hpcn_error err;
	struct hpcn_msg m;
	int rv;

	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	m.u.ns_request.allocation_id = strdup(id);
	m.u.ns_request.namespaces[m.u.ns_request.n_namespaces++] = HPCN_NS_MOUNT;
	if (with_image)
		m.u.ns_request.uenv_image = strdup(c->image);
	if (group)
		m.u.ns_request.group = strdup(group);
	rv = hpcn_request_namespaces(c->fx.sock, HFX_TIMEOUT_MS, &m.u.ns_request, NULL, 0, resp,
				     fds, &err);
	hpcn_msg_free(&m);
	if (rv < 0)
		fail_msg("NamespaceRequest %s: %s", id, err.message);
	assert_int_equal(resp->n_fd_types, 1);
	assert_true(fds[0] >= 0);
}

/* Request and drop the FDs: the allocation lives on in the helper. */
static void request_closed(struct ctx *c, const char *id, const char *group)
{
	struct hpcn_namespace_response r;
	int fds[HPCN_NS__COUNT];

	request(c, id, group, true, &r, fds);
	hpcn_close_fds(fds, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r);
}

static json_t *status(struct ctx *c)
{
	json_t *st = hfx_status(&c->fx);

	assert_non_null(st);
	return st;
}

/* The host mount of our image: its mount point (caller frees), or NULL. */
static char *host_mount_point(struct ctx *c, int *refcount)
{
	json_t *st = status(c), *m = hfx_status_mount_of(st, c->image);
	char *mp = NULL;

	if (m) {
		mp = strdup(json_string_value(json_object_get(m, "mount_point")) ?: "");
		if (refcount)
			*refcount = (int)json_integer_value(json_object_get(m, "refcount"));
	}
	json_decref(st);
	return mp;
}

/* Reconcile's corrections, each line checked to be a string. */
static json_t *reconcile(struct ctx *c)
{
	struct run r;
	json_t *j, *corr, *v;
	size_t i;

	nodectl(c, &r, "--json", "reconcile");
	assert_int_equal(r.rc, 0);
	j = parse_json(r.out);
	corr = json_object_get(j, "corrections");
	assert_true(json_is_array(corr));
	json_array_foreach(corr, i, v) {
		assert_true(json_is_string(v));
		fprintf(stderr, "    correction: %s\n", json_string_value(v));
	}
	json_incref(corr);
	json_decref(j);
	return corr;
}

static bool corrections_have(json_t *corr, const char *a, const char *b)
{
	json_t *v;
	size_t i;

	json_array_foreach(corr, i, v)
		if (has_line(json_string_value(v), a, b))
			return true;
	return false;
}

static bool image_gone(struct hfx *fx, const void *image)
{
	return hfx_count_loops_of(image) == 0 && hfx_count_mounts_under(fx->mount_base) == 0;
}

/*
 * End what is left through the helper, then SIGTERM: it must exit 0 with
 * nothing from the sanitizers in its stderr (under -DHPCN_SANITIZE=ON this
 * is the helper's leak and UB check over everything the test made it do).
 */
static void stop_clean(struct ctx *c)
{
	static char buf[1 << 18];
	json_t *st = status(c), *a;
	size_t i;
	int ws;

	json_array_foreach(json_object_get(st, "allocations"), i, a) {
		struct hpcn_error err;
		const char *id = json_string_value(json_object_get(a, "allocation_id"));

		if (hfx_end(&c->fx, id, &err) < 0)
			fail_msg("ending %s: %s", id, err.message);
	}
	json_decref(st);
	ws = hfx_stop(&c->fx, SIGTERM, 2 * HFX_TIMEOUT_MS);
	read_all(c->log, buf, sizeof(buf));
	if (ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || strstr(buf, "Sanitizer") ||
	    strstr(buf, "runtime error"))
		fail_msg("the helper did not stop cleanly (wait status %#x); its stderr:\n%s",
			 (unsigned)ws, buf);
}

/* ---- 1. the CLI against a helper with two allocations ---- */

static void test_cli_commands(void **state)
{
	struct ctx *c = *state;
	char sockless[PATH_MAX + 16], path[PATH_MAX * 2];
	struct run r;
	json_t *j, *a, *m, *users;
	size_t i;

	start_helper(c, NULL);
	request_closed(c, "adm-1", "admjob");
	request_closed(c, "adm-2", "admjob");

	nodectl(c, &r, "ping");
	assert_int_equal(r.rc, 0);
	assert_true(has_line(r.out, "hpc-node-helper", "protocol versions 1..1"));

	/* Human status: both allocations, the image, one mount with 2 refs. */
	nodectl(c, &r, "status");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");
	assert_true(has_line(r.out, "Allocations:", "2"));
	assert_true(has_line(r.out, "  adm-1", ""));
	assert_true(has_line(r.out, "  adm-2", ""));
	assert_true(has_line(r.out, "mounts:", c->image));
	assert_true(has_line(r.out, "Mounts:", "1"));
	assert_true(has_line(r.out, "image:", c->image));
	assert_true(has_line(r.out, "refcount:", "2"));
	assert_true(has_line(r.out, "users:", "adm-"));
	assert_true(has_line(r.out, "loop device:", "/dev/loop"));
	assert_true(has_line(r.out, "scope:", "workload.slice/admjob.slice/adm-1.scope"));

	/* --json: what the helper sent, parseable, with the right values. */
	nodectl(c, &r, "status", "--json");
	assert_int_equal(r.rc, 0);
	j = parse_json(r.out);
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), c->fx.pid);
	assert_true(json_is_true(json_object_get(j, "ready")));
	assert_string_equal(json_string_value(json_object_get(j, "socket")) ?: "", c->fx.sock);
	assert_int_equal(json_integer_value(json_object_get(j, "hold_time_secs")),
			 c->fx.hold_time);
	assert_int_equal(hfx_status_n_allocs(j), 2);
	for (int k = 1; k <= 2; k++) {
		char id[16], scope[64];

		snprintf(id, sizeof(id), "adm-%d", k);
		snprintf(scope, sizeof(scope), "workload.slice/admjob.slice/%s.scope", id);
		a = hfx_status_alloc(j, id);
		assert_non_null(a);
		assert_string_equal(json_string_value(json_object_get(a, "state")) ?: "",
				    "active");
		assert_string_equal(json_string_value(json_object_get(a, "group")) ?: "",
				    "admjob");
		assert_string_equal(json_string_value(json_object_get(a, "scope")) ?: "", scope);
		assert_true(json_is_false(json_object_get(a, "client_connected")));
		assert_int_equal(json_integer_value(json_object_get(a, "nr_processes")), 0);
		assert_string_equal(json_string_value(json_array_get(
			json_object_get(a, "namespaces"), 0)) ?: "", "Mount");
		assert_string_equal(json_string_value(json_object_get(json_array_get(
			json_object_get(a, "mounts"), 0), "image_path")) ?: "", c->image);
	}
	assert_int_equal(json_array_size(json_object_get(j, "mounts")), 1);
	m = hfx_status_mount_of(j, c->image);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "refcount")), 2);
	assert_true(json_is_null(json_object_get(m, "hold_remaining_secs")));
	/* One loop device for both, backed by the image. */
	assert_int_equal(hfx_count_loops_of(c->image), 1);
	{
		const char *dev = json_string_value(json_object_get(m, "loop_device")) ?: "";
		char backing[PATH_MAX];

		assert_true(strncmp(dev, "/dev/loop", 9) == 0);
		assert_int_equal(hpcn_loop_backing(dev + 5, backing, sizeof(backing)), 0);
		assert_string_equal(backing, c->image);
	}
	users = json_object_get(m, "users");
	assert_int_equal(json_array_size(users), 2);
	json_array_foreach(users, i, a)
		assert_true(strncmp(json_string_value(a) ?: "", "adm-", 4) == 0);
	json_decref(j);

	/* metrics: by allocation (its scope) and by slice. */
	nodectl(c, &r, "metrics", "adm-1");
	assert_int_equal(r.rc, 0);
	assert_true(strstr(r.out, "adm-1") != NULL);
	nodectl(c, &r, "--json", "metrics", "adm-1");
	assert_int_equal(r.rc, 0);
	j = parse_json(r.out);
	assert_true(json_is_integer(json_object_get(j, "memory_current")));
	assert_true(json_is_integer(json_object_get(j, "cpu_usage_usec")));
	assert_int_equal(json_integer_value(json_object_get(j, "nr_processes")), 0);
	json_decref(j);
	nodectl(c, &r, "metrics", "workload.slice");
	assert_int_equal(r.rc, 0);
	assert_true(strstr(r.out, "workload.slice") != NULL);
	nodectl(c, &r, "metrics", "workload.slice/nosuch.slice");
	assert_int_equal(r.rc, 1);

	/* end, release: exit 0, gone from the status, one reference less each. */
	nodectl(c, &r, "end", "adm-1");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "Allocation adm-1 ended.\n");
	j = status(c);
	assert_null(hfx_status_alloc(j, "adm-1"));
	assert_non_null(hfx_status_alloc(j, "adm-2"));
	assert_int_equal(json_integer_value(json_object_get(hfx_status_mount_of(j, c->image),
							    "refcount")), 1);
	json_decref(j);

	nodectl(c, &r, "release", "adm-2");
	assert_int_equal(r.rc, 0);
	assert_true(has_line(r.out, "Allocation adm-2 ended", "released"));
	j = status(c);
	assert_int_equal(hfx_status_n_allocs(j), 0);
	m = hfx_status_mount_of(j, c->image);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "refcount")), 0);
	assert_true(json_is_integer(json_object_get(m, "hold_remaining_secs")));
	json_decref(j);
	/* The job's slice went with its last allocation. */
	hfx_cg_path(&c->fx, "workload.slice/admjob.slice", path, sizeof(path));
	assert_false(hfx_exists(path));
	hfx_cg_path(&c->fx, "workload.slice", path, sizeof(path));
	assert_true(hfx_exists(path));

	/* Errors and their exit statuses (hpc-nodectl(8)). */
	nodectl(c, &r, "end", "nosuch");
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "hpc-nodectl: allocation not found: nosuch\n");
	assert_string_equal(r.out, "");

	snprintf(sockless, sizeof(sockless), "%s/run/nosuch.sock", c->fx.dir);
	nodectl_as(c, &r, 0, sockless, "status", (const char *)NULL);
	assert_int_equal(r.rc, 3);
	assert_true(strstr(r.err, sockless) != NULL);

	nodectl_as(c, &r, NOBODY, NULL, "status", (const char *)NULL);
	assert_int_equal(r.rc, 4);
	assert_true(strstr(r.err, "uid 65534") != NULL);
	assert_string_equal(r.out, "");

	/* The helper still serves after all that. */
	nodectl(c, &r, "ping");
	assert_int_equal(r.rc, 0);
	assert_true(hfx_wait_for(image_gone, &c->fx, c->image,
				 HFX_WAIT_MS));
	stop_clean(c);
}

/* ---- 2. reconcile ---- */

static void test_reconcile_nothing_wrong(void **state)
{
	struct ctx *c = *state;
	json_t *corr;
	struct run r;

	c->fx.reconcile_interval = NO_PERIODIC_RECONCILE;
	start_helper(c, NULL);
	request_closed(c, "rc-ok", "rcjob");
	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 0);
	json_decref(corr);

	nodectl(c, &r, "reconcile");
	assert_int_equal(r.rc, 0);
	assert_true(has_line(r.out, "Corrections:", "none"));
	/* Nothing was changed by it. */
	{
		json_t *st = status(c);

		assert_non_null(hfx_status_alloc(st, "rc-ok"));
		assert_int_equal(json_integer_value(json_object_get(
			hfx_status_mount_of(st, c->image), "refcount")), 1);
		json_decref(st);
	}
	stop_clean(c);
}

/* The image's host mount unmounted behind the helper's back. */
static void test_reconcile_host_mount_gone(void **state)
{
	struct ctx *c = *state;
	json_t *corr, *st;
	char *mp;
	int refs = -1;

	c->fx.reconcile_interval = NO_PERIODIC_RECONCILE;
	start_helper(c, NULL);
	request_closed(c, "rc-host", NULL);
	mp = host_mount_point(c, &refs);
	assert_non_null(mp);
	assert_int_equal(refs, 1);
	assert_true(strncmp(mp, c->fx.mount_base, strlen(c->fx.mount_base)) == 0);
	assert_int_equal(umount2(mp, MNT_DETACH), 0);
	assert_int_equal(hfx_mount_id(mp), -1);

	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 1);
	assert_true(corrections_have(corr, mp, "is no longer mounted; forgotten"));
	json_decref(corr);
	assert_true(hfx_audit_count(&c->fx, "\"mount.refcount_corrected\"", "forgotten",
				    NULL) >= 1);
	st = status(c);
	assert_null(hfx_status_mount_of(st, c->image));
	assert_non_null(hfx_status_alloc(st, "rc-host"));
	json_decref(st);

	/* Said once: the next pass has nothing left to correct. */
	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 0);
	json_decref(corr);
	free(mp);
	stop_clean(c);
}

/* Pins of an allocation the helper does not know (F35). */
static void test_reconcile_ghost_pins(void **state)
{
	struct ctx *c = *state;
	char dir[PATH_MAX + 16], pin[PATH_MAX + 32];
	json_t *corr;
	int fd;

	c->fx.reconcile_interval = NO_PERIODIC_RECONCILE;
	start_helper(c, NULL);
	/* helper/ns.c's layout: <state_dir>/ns/<id>/<net|mnt|pid>, each a file
	 * onto which /proc/PID/ns/X is bind-mounted. */
	snprintf(dir, sizeof(dir), "%s/ns/ghost", c->fx.state);
	snprintf(pin, sizeof(pin), "%s/net", dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	fd = open(pin, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mount("/proc/self/ns/net", pin, NULL, MS_BIND, NULL), 0);
	assert_true(hfx_mount_id(pin) > 0);

	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 1);
	assert_true(corrections_have(corr, "namespaces of unknown allocation ghost", "released"));
	json_decref(corr);
	assert_int_equal(hfx_mount_id(pin), -1);
	assert_false(hfx_exists(pin));
	assert_false(hfx_exists(dir));
	assert_int_equal(hfx_audit_count(&c->fx, "\"namespace.leak_detected\"", "ghost", NULL),
			 1);

	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 0);
	json_decref(corr);
	stop_clean(c);
}

/* The image unmounted inside the allocation's own mount namespace. */
static void test_reconcile_ns_mount_gone(void **state)
{
	struct ctx *c = *state;
	struct hpcn_namespace_response resp;
	int fds[HPCN_NS__COUNT];
	json_t *corr;
	pid_t kid;
	int st;

	c->fx.reconcile_interval = NO_PERIODIC_RECONCILE;
	start_helper(c, NULL);
	request(c, "rc-ns", NULL, true, &resp, fds);
	assert_string_equal(resp.uenv_mount_path ?: "", "/user-environment");

	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 0);
	json_decref(corr);

	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct stat sb;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setns(fds[0], CLONE_NEWNS) < 0)
			_exit(1);
		if (stat("/user-environment/bin/hello", &sb) < 0)
			_exit(2);
		if (umount2("/user-environment", MNT_DETACH) < 0)
			_exit(3);
		_exit(stat("/user-environment/bin/hello", &sb) == 0 ? 4 : 0);
	}
	st = hfx_wait_child(kid, HFX_TIMEOUT_MS);
	assert_true(st != -1 && WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	hpcn_close_fds(fds, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&resp);

	corr = reconcile(c);
	assert_int_equal(json_array_size(corr), 1);
	assert_true(corrections_have(corr, "allocation rc-ns:", c->image));
	assert_true(corrections_have(corr, "no longer mounted at /user-environment",
				     "in its namespace"));
	json_decref(corr);
	assert_true(hfx_audit_count(&c->fx, "\"mount.refcount_corrected\"", "rc-ns",
				    "/user-environment", NULL) >= 1);
	stop_clean(c);
}

/* ---- 3. force-unmount ---- */

static bool no_loops_of_image(struct hfx *fx, const void *image)
{
	(void)fx;
	return hfx_count_loops_of(image) == 0;
}

static void test_force_unmount(void **state)
{
	struct ctx *c = *state;
	struct run r;
	char *mp;
	json_t *st;
	int id, refs = -1, pin_fd, rd;
	pid_t kid, reader;
	int wst;

	c->fx.reconcile_interval = NO_PERIODIC_RECONCILE;
	/* nobody may talk to the helper, so that its ForceUnmount reaches the
	 * request's own check rather than the connection's. */
	start_helper(c, "allowed_users =\n", "allowed_users = 65534\n", NULL);
	request_closed(c, "fu-1", NULL);
	mp = host_mount_point(c, &refs);
	assert_non_null(mp);
	assert_int_equal(refs, 1);
	id = hfx_mount_id(mp);
	assert_true(id > 0);

	/* Without --emergency: a usage error, nothing sent, nothing changed. */
	nodectl(c, &r, "force-unmount", c->image);
	assert_int_equal(r.rc, 2);
	assert_true(strstr(r.err, "--emergency") != NULL);
	assert_int_equal(hfx_mount_id(mp), id);

	/* A non-root client, allowed on the socket: Denied, audited. */
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct hpcn_msg req, resp;
		struct hpcn_error err;
		int sock, rv;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(10);
		sock = hpcn_client_connect(c->fx.sock, HFX_TIMEOUT_MS, &err);
		if (sock < 0)
			_exit(11);
		hpcn_msg_init(&req, HPCN_TAG_FORCE_UNMOUNT);
		req.seq = 9;
		req.u.force_unmount.emergency = true;
		req.u.force_unmount.image_path = strdup(c->image);
		rv = hfx_call(sock, &req, NULL, 0, &resp, NULL, NULL, &err);
		fprintf(stderr, "  nobody's ForceUnmount -> %s\n", rv < 0 ? err.message : "Ok");
		_exit(rv < 0 && err.kind == HPCN_E_DENIED ? 0 : 12);
	}
	wst = hfx_wait_child(kid, 2 * HFX_TIMEOUT_MS);
	assert_true(wst != -1 && WIFEXITED(wst));
	assert_int_equal(WEXITSTATUS(wst), 0);
	assert_int_equal(hfx_audit_count(&c->fx, "\"mount.force_unmount\"", "\"Denied\"",
					 "\"uid\":65534", NULL), 1);
	assert_int_equal(hfx_mount_id(mp), id);

	/* The same client asking for an allocation with a group it is not in
	 * (images would be opened with it): Denied, nothing made. */
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct hpcn_namespace_request req = {
			.allocation_id = (char *)"fu-gid", .n_namespaces = 1,
			.namespaces = { HPCN_NS_MOUNT }, .base_mount_ns_fd_index = -1,
			.has_uid = true, .uid = NOBODY, .gid = 0,
		};
		struct hpcn_namespace_response resp;
		struct hpcn_error err;
		int fds[HPCN_NS__COUNT], rv;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(10);
		rv = hpcn_request_namespaces(c->fx.sock, HFX_TIMEOUT_MS, &req, NULL, 0, &resp, fds,
					     &err);
		fprintf(stderr, "  nobody's request for gid 0 -> %s\n", rv < 0 ? err.message : "Ok");
		_exit(rv < 0 && err.kind == HPCN_E_DENIED &&
		      strstr(err.message, "may not create allocations for gid 0") ? 0 : 12);
	}
	wst = hfx_wait_child(kid, 2 * HFX_TIMEOUT_MS);
	assert_true(wst != -1 && WIFEXITED(wst));
	assert_int_equal(WEXITSTATUS(wst), 0);
	st = status(c);
	assert_null(hfx_status_alloc(st, "fu-gid"));
	json_decref(st);

	/* Status unchanged by both refusals. */
	free(host_mount_point(c, &refs));
	assert_int_equal(refs, 1);

	/* A process of fu-1's job reads the image meanwhile. */
	{
		char pin[PATH_MAX + 32];

		snprintf(pin, sizeof(pin), "%s/ns/fu-1/mnt", c->fx.state);
		pin_fd = open(pin, O_RDONLY | O_CLOEXEC);
		assert_true(pin_fd >= 0);
		reader = hfx_start_reader(&c->fx, pin_fd, "/user-environment/bin/hello", "HELLO",
					  &rd);
		assert_true(reader > 0);
		assert_true(hfx_reader_wait(rd, HFX_WAIT_MS) > 0);
	}

	/* --emergency: gone now, no hold time, from the node and from the
	 * jobs (their reads fail), its loop device freed. */
	nodectl(c, &r, "force-unmount", "--emergency", c->image);
	assert_int_equal(r.rc, 0);
	assert_true(has_line(r.out, "force-unmounted", ""));
	assert_int_equal(hfx_mount_id(mp), -1);
	{
		int got = 0;

		for (long long end = hfx_now_ms() + HFX_WAIT_MS; hfx_now_ms() < end && got >= 0;) {
			hfx_sleep_ms(20);
			got = hfx_reader_drain(rd);
		}
		if (got >= 0)
			fail_msg("fu-1's job still reads the image after the emergency unmount");
		close(rd);
		close(pin_fd);
	}
	if (!hfx_wait_for(no_loops_of_image, &c->fx, c->image, HFX_TIMEOUT_MS))
		fail_msg("the image's loop device stayed after the emergency unmount");
	assert_int_equal(hfx_count_mounts_under(c->fx.mount_base), 0);
	st = status(c);
	assert_null(hfx_status_mount_of(st, c->image));
	assert_int_equal(json_array_size(json_object_get(st, "mounts")), 0);
	json_decref(st);
	/* One record for the node's mount, one for fu-1's namespace. */
	assert_int_equal(hfx_audit_count(&c->fx, "\"mount.force_unmount\"", "\"Success\"",
					 "emergency", NULL), 2);
	assert_int_equal(hfx_audit_count(&c->fx, "\"mount.force_unmount\"", "\"Success\"",
					 "fu-1", "in the allocation's namespace", NULL), 1);

	/* Again: nothing to unmount any more, an error that says so. */
	nodectl(c, &r, "force-unmount", "--emergency", c->image);
	assert_int_equal(r.rc, 1);
	assert_true(strstr(r.err, c->image) != NULL);
	free(mp);

	/* fu-1 lost its reference with the emergency: the image's next mount
	 * counts only its own users, also when fu-1 ends and after a
	 * reconciliation (it used to release, and count, the new mount's). */
	request_closed(c, "fu-2", NULL);
	free(host_mount_point(c, &refs));
	assert_int_equal(refs, 1);
	nodectl(c, &r, "end", "fu-1");
	assert_int_equal(r.rc, 0);
	free(host_mount_point(c, &refs));
	assert_int_equal(refs, 1);
	nodectl(c, &r, "reconcile");
	assert_int_equal(r.rc, 0);
	free(host_mount_point(c, &refs));
	assert_int_equal(refs, 1);
	nodectl(c, &r, "end", "fu-2");
	assert_int_equal(r.rc, 0);
	stop_clean(c);
}

/* ---- 4. SIGHUP ---- */

static bool log_has(struct ctx *c, const char *a, const char *b)
{
	static char buf[1 << 18];

	if (read_all(c->log, buf, sizeof(buf)) < 0)
		return false;
	return has_line(buf, a, b);
}

static unsigned hold_time_of(struct hfx *fx)
{
	json_t *st = hfx_status(fx);
	unsigned v = st ? (unsigned)json_integer_value(json_object_get(st, "hold_time_secs")) : 0;

	json_decref(st);
	return v;
}

static bool hold_time_is_1(struct hfx *fx, const void *arg)
{
	(void)arg;
	return hold_time_of(fx) == 1;
}

static bool log_says_kept(struct hfx *fx, const void *arg)
{
	(void)fx;
	return log_has((struct ctx *)arg, "error: reload:",
		       "keeping the running configuration");
}

static void test_sighup_reload(void **state)
{
	struct ctx *c = *state;
	char other[PATH_MAX + 32], line[PATH_MAX + 64];
	struct run r;
	json_t *st;

	c->fx.hold_time = 30;
	start_helper(c, "log_level = notice\n", "log_level = info\n", NULL);
	assert_int_equal(hold_time_of(&c->fx), 30);

	/* hold_time applies now; the socket would need a restart. */
	snprintf(other, sizeof(other), "%s/run/other.sock", c->fx.dir);
	snprintf(line, sizeof(line), "socket = %s\n", other);
	c->fx.hold_time = 1;
	assert_int_equal(hfx_write_conf(&c->fx), 0);
	assert_int_equal(hfx_conf_replace(&c->fx, "log_level = notice\n", "log_level = info\n"),
			 0);
	{
		char from[PATH_MAX + 32];

		snprintf(from, sizeof(from), "socket = %s\n", c->fx.sock);
		assert_int_equal(hfx_conf_replace(&c->fx, from, line), 0);
	}
	assert_int_equal(kill(c->fx.pid, SIGHUP), 0);
	assert_true(hfx_wait_for(hold_time_is_1, &c->fx, NULL, HFX_TIMEOUT_MS));
	st = status(c);
	assert_string_equal(json_string_value(json_object_get(st, "socket")) ?: "", c->fx.sock);
	json_decref(st);
	assert_false(hfx_exists(other));
	assert_true(log_has(c, "warning: reload: helper.socket",
			    "cannot change without a restart; kept"));
	assert_true(log_has(c, "notice: reload: uenv.hold_time", "changed"));
	assert_false(log_has(c, "reload: helper.socket", "changed"));
	assert_true(hfx_alive(c->fx.pid));
	nodectl(c, &r, "ping");
	assert_int_equal(r.rc, 0);

	/* The new hold time is the one used: released, unmounted within ~1 s
	 * (30 s under the old one). */
	request_closed(c, "hup-1", NULL);
	nodectl(c, &r, "end", "hup-1");
	assert_int_equal(r.rc, 0);
	assert_true(hfx_wait_for(image_gone, &c->fx, c->image, HFX_WAIT_MS));
	/* log_level info from the start: the mount was logged at info. */
	assert_true(log_has(c, "info: mounted", c->image));

	/* A broken file: the running configuration stays, the helper serves. */
	{
		FILE *f = fopen(c->fx.conf, "we");

		assert_non_null(f);
		fprintf(f, "[helper\nsocket = %s\n[uenv]\nhold_time = 7\n", other);
		assert_int_equal(fclose(f), 0);
	}
	assert_int_equal(kill(c->fx.pid, SIGHUP), 0);
	assert_true(hfx_wait_for(log_says_kept, &c->fx, c, HFX_TIMEOUT_MS));
	assert_true(hfx_alive(c->fx.pid));
	assert_int_equal(hold_time_of(&c->fx), 1);
	nodectl(c, &r, "--json", "status");
	assert_int_equal(r.rc, 0);
	st = parse_json(r.out);
	assert_int_equal(json_integer_value(json_object_get(st, "hold_time_secs")), 1);
	assert_string_equal(json_string_value(json_object_get(st, "socket")) ?: "", c->fx.sock);
	json_decref(st);
	stop_clean(c);
}

/* ---- 5. WI5 for a process that joined the namespaces but not the scope ---- */

static bool alloc_gone(struct hfx *fx, const void *id)
{
	json_t *st = hfx_status(fx);
	bool gone = st && !hfx_status_alloc(st, id);

	json_decref(st);
	return gone;
}

static void test_wi5_joined_not_placed(void **state)
{
	struct ctx *c = *state;
	struct hpcn_namespace_response resp;
	int fds[HPCN_NS__COUNT], pfd[2];
	long long created, ended;
	json_t *st, *a;
	pid_t kid;
	char ok = 0, pins[PATH_MAX + 16];

	c->fx.reconcile_interval = 1;
	start_helper(c, NULL);
	created = hfx_now_ms();
	request(c, "wi5-1", NULL, true, &resp, fds);
	/* Every allocation has a scope; the joined child is NOT placed in it, so
	 * only the namespace scan can tell that it is still in use. */
	assert_non_null(resp.scope);

	/* A task joins the mount namespace through the handed-off FD. */
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct stat sb;
		char y = 'y';

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setns(fds[0], CLONE_NEWNS) < 0 || stat("/user-environment/bin/hello", &sb) < 0)
			_exit(1);
		hpcn_close_fds(fds, HPCN_NS__COUNT);
		(void)!write(pfd[1], &y, 1);
		for (;;)
			pause();
	}
	hfx_track(&c->fx, kid);
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &ok, 1), 1);
	close(pfd[0]);
	assert_int_equal(ok, 'y');
	/* The client has gone (hpcn_request_namespaces closed its connection),
	 * and our copies of the FDs go too: only the task keeps it in use. */
	hpcn_close_fds(fds, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&resp);
	st = status(c);
	a = hfx_status_alloc(st, "wi5-1");
	assert_non_null(a);
	/* The scope exists and is empty: the task is in the namespace only. */
	assert_true(json_is_string(json_object_get(a, "scope")));
	assert_int_equal(json_integer_value(json_object_get(a, "nr_processes")), 0);
	assert_true(json_is_false(json_object_get(a, "client_connected")));
	json_decref(st);

	/* Several reconcile passes while the task lives: kept. */
	hfx_sleep_ms(3500);
	assert_true(hfx_alive(kid));
	st = status(c);
	assert_non_null(hfx_status_alloc(st, "wi5-1"));
	json_decref(st);

	/*
	 * The task ends: the helper ends the allocation by itself, at a
	 * reconcile pass. Had it never noticed the task, the orphan grace (30 s
	 * from creation) would hold it until then: ending before the grace is
	 * over proves the task was seen while it lived (no speed assumed: the
	 * bound is the helper's grace, not a reconcile interval plus margin).
	 */
	kill(kid, SIGKILL);
	assert_true(hfx_wait_child(kid, HFX_TIMEOUT_MS) != -1);
	assert_true(hfx_wait_for(alloc_gone, &c->fx, "wi5-1", HFX_WAIT_MS));
	ended = hfx_now_ms();
	fprintf(stderr, "  wi5-1 ended %lld ms after its creation (orphan grace %d ms)\n",
		ended - created, ORPHAN_GRACE_MS);
	assert_true(ended - created < ORPHAN_GRACE_MS);
	assert_true(log_has(c, "allocation wi5-1", "no process and no client left"));
	assert_true(hfx_audit_count(&c->fx, "\"namespace.cleanup\"", "wi5-1", NULL) >= 1);
	snprintf(pins, sizeof(pins), "%s/ns/wi5-1", c->fx.state);
	assert_false(hfx_exists(pins));
	/* Its image reference went with it: held, then unmounted. */
	assert_true(hfx_wait_for(image_gone, &c->fx, c->image,
				 HFX_WAIT_MS));
	stop_clean(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cli_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_nothing_wrong, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_host_mount_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_ghost_pins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_ns_mount_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_force_unmount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sighup_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wi5_joined_not_placed, setup, teardown),
	};
	int rv;

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_admin needs root (label root)\n");
		return 1;
	}
	loops_at_start = sqfs_count_loops();
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	if (!sqfs_wait_loop_count(loops_at_start, HFX_WAIT_MS)) {
		fprintf(stderr, "loop devices attached: %d before the tests, %d after\n",
			loops_at_start, sqfs_count_loops());
		return 1;
	}
	return rv;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* What the admin tests share (see test_helper_admin_util.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"
#include "test_helper_admin_util.h"

#define NODECTL HPCN_BINARY_DIR "/helper/hpc-nodectl"
#define RUN_TIMEOUT_MS HFX_WAIT_MS

int setup(void **state)
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

int teardown(void **state)
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
void start_helper(struct ctx *c, ...)
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
void nodectl_as(struct ctx *c, struct run *r, uid_t uid, const char *sock, ...)
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

json_t *parse_json(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	if (!j)
		fail_msg("not JSON (%s at line %d): %s", jerr.text, jerr.line, text);
	return j;
}

/* A line of text with both needles, in that order. */
bool has_line(const char *text, const char *a, const char *b)
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

void request(struct ctx *c, const char *id, const char *group, bool with_image,
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
void request_closed(struct ctx *c, const char *id, const char *group)
{
	struct hpcn_namespace_response r;
	int fds[HPCN_NS__COUNT];

	request(c, id, group, true, &r, fds);
	hpcn_close_fds(fds, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r);
}

json_t *status(struct ctx *c)
{
	json_t *st = hfx_status(&c->fx);

	assert_non_null(st);
	return st;
}

/* The host mount of our image: its mount point (caller frees), or NULL. */
char *host_mount_point(struct ctx *c, int *refcount)
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

bool image_gone(struct hfx *fx, const void *image)
{
	return hfx_count_loops_of(image) == 0 && hfx_count_mounts_under(fx->mount_base) == 0;
}

/*
 * End what is left through the helper, then SIGTERM: it must exit 0 with
 * nothing from the sanitizers in its stderr (under -DHPCN_SANITIZE=ON this
 * is the helper's leak and UB check over everything the test made it do).
 */
void stop_clean(struct ctx *c)
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

bool log_has(struct ctx *c, const char *a, const char *b)
{
	static char buf[1 << 18];

	if (read_all(c->log, buf, sizeof(buf)) < 0)
		return false;
	return has_line(buf, a, b);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* What the fault tests share (see test_helper_faults_util.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"
#include "test_helper_faults_util.h"

int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rv;

	if (fd < 0)
		return -1;
	rv = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return rv;
}

/* Thaw and remove our freezer cgroup, whatever state a failed test left. */
void freezer_cleanup(struct ctx *c)
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

int setup(void **state)
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

int teardown(void **state)
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

bool scrubbed(struct hfx *fx, const void *arg)
{
	const struct ctx *c = arg;

	return hfx_count_mounts_under(fx->mount_base) == 0 && hfx_count_loops_of(c->image) == 0;
}

void assert_no_trace_of(struct ctx *c, const char *id)
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

int request_image(struct ctx *c, const char *id, const char *image, struct hpcn_error *err)
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

int request_img(struct ctx *c, const char *id, struct hpcn_error *err)
{
	return request_image(c, id, c->image, err);
}

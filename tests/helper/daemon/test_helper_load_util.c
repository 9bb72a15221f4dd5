/* SPDX-License-Identifier: Apache-2.0 */
/* What the load tests share (see test_helper_load_util.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"
#include "test_helper_load_util.h"

int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	*state = c;
	if (hfx_setup(&c->fx) < 0 || sqfs_fixture_init(&c->sq) < 0 ||
	    sqfs_fixture_make_image(&c->sq, "stormA", "HELLO-A", c->img[0], PATH_MAX) < 0 ||
	    sqfs_fixture_make_image(&c->sq, "stormB", "HELLO-B", c->img[1], PATH_MAX) < 0)
		return -1;
	return 0;
}

int teardown(void **state)
{
	struct ctx *c = *state;

	if (!c)
		return 0;
	/* A test that failed while the helper was stopped must not leave it so. */
	if (c->fx.pid > 0)
		kill(c->fx.pid, SIGCONT);
	hfx_teardown(&c->fx);
	sqfs_fixture_cleanup(&c->sq);
	free(c);
	return 0;
}

int status_call(struct hfx *fx, int timeout_ms, struct hpcn_error *err)
{
	struct hpcn_msg req, resp;
	int sock = hpcn_client_connect(fx->sock, timeout_ms, err);
	int rv;

	if (sock < 0)
		return -1;
	hpcn_msg_init(&req, HPCN_TAG_STATUS_REQUEST);
	req.seq = 9;
	req.u.json = strdup("{}");
	rv = hpcn_client_call(sock, &req, NULL, 0, &resp, NULL, NULL, 0, timeout_ms, err);
	if (rv == 0 && resp.tag != HPCN_TAG_STATUS)
		rv = hpcn_error_setf(err, HPCN_E_INTERNAL, NULL, "reply %s", hpcn_tag_name(resp.tag));
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);
	close(sock);
	return rv;
}

int load_main_prepare(const char *prog)
{
	struct rlimit rl;

	if (geteuid() != 0) {
		fprintf(stderr, "%s needs root (label root)\n", prog);
		return 1;
	}
	/* 1,000 client sockets in this process, and as many in the helper,
	 * which inherits the limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		if (rl.rlim_cur < 2 * N_FLOOD + 100 || setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			fprintf(stderr, "RLIMIT_NOFILE: %lu descriptors, %d needed\n",
				(unsigned long)rl.rlim_cur, 2 * N_FLOOD + 100);
			return 1;
		}
	}
	if (getenv("HPCN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("HPCN_TEST_FILTER"));
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the load tests share (test_helper_load.c, test_helper_load_flood.c,
 * test_helper_load_pipeline.c): a helper fixture with two images, a Status
 * call, and the checks and limits of their main().
 */
#ifndef HPCN_TESTS_HELPER_LOAD_UTIL_H
#define HPCN_TESTS_HELPER_LOAD_UTIL_H

#include <limits.h>

#include <hpcnode/hpcnode.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"

#define N_FLOOD 1000

struct ctx {
	struct hfx fx;
	struct sqfs_fixture sq;
	char img[2][PATH_MAX];
};

/* cmocka set-up and teardown: the fixture, the images stormA and stormB. */
int setup(void **state);
int teardown(void **state);
/* StatusRequest on a fresh connection: 0, or -1 with err. */
int status_call(struct hfx *fx, int timeout_ms, struct hpcn_error *err);
/* Before the tests: root, enough descriptors for N_FLOOD clients here and in
 * the helper (which inherits the limit), HPCN_TEST_FILTER. 0, or 1 (said on
 * stderr, prog naming the test). */
int load_main_prepare(const char *prog);

#endif

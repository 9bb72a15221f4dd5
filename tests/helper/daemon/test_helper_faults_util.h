/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the fault tests share (test_helper_faults.c,
 * test_helper_faults_exhausted.c, test_helper_faults_dying.c): a helper
 * fixture with one image, cleaned up whatever a failed test left (a frozen
 * process included), requests, and the check that nothing of an allocation
 * is left.
 */
#ifndef HPCN_TESTS_HELPER_FAULTS_UTIL_H
#define HPCN_TESTS_HELPER_FAULTS_UTIL_H

#include <limits.h>
#include <stdbool.h>

#include <hpcnode/hpcnode.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"

struct ctx {
	struct hfx fx;
	struct sqfs_fixture sq;
	char image[PATH_MAX];
	int loops_before;
	char freezer[128];              /* a v1 freezer cgroup of ours, "" = none */
};

/* cmocka set-up and teardown: the fixture, the image "faults". */
int setup(void **state);
int teardown(void **state);
/* Write s to the existing file path: 0 or -1. */
int write_str(const char *path, const char *s);
/* Thaw and remove our freezer cgroup, whatever state a failed test left. */
void freezer_cleanup(struct ctx *c);
/* No mount under the mount base, no loop device of the image (hfx_wait_for). */
bool scrubbed(struct hfx *fx, const void *arg);
/* No pins, record or scope of id left (fails the test otherwise). */
void assert_no_trace_of(struct ctx *c, const char *id);
/* NamespaceRequest [Mount] for id with image (request_img: the ctx's own),
 * the FDs closed: 0 or -1 with err. */
int request_image(struct ctx *c, const char *id, const char *image, struct hpcn_error *err);
int request_img(struct ctx *c, const char *id, struct hpcn_error *err);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the admin tests share (test_helper_admin.c,
 * test_helper_admin_reconcile.c, test_helper_admin_reload.c): a helper
 * fixture with one image and its stderr in a log, hpc-nodectl run and
 * captured, requests, and a clean stop.
 */
#ifndef HPCN_TESTS_HELPER_ADMIN_UTIL_H
#define HPCN_TESTS_HELPER_ADMIN_UTIL_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include <hpcnode/hpcnode.h>

#include "helper_fixture.h"
#include "sqfs_fixture.h"

/* Drift must survive until our own Reconcile: no periodic pass meanwhile. */
#define NO_PERIODIC_RECONCILE 3600

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

/* cmocka set-up and teardown: the fixture (socket mode 0666), the image
 * "admin", c->log. */
int setup(void **state);
int teardown(void **state);
/* Write the config from fx, apply the edits (pairs from, to; NULL ends),
 * start the helper with its stderr in c->log. */
void start_helper(struct ctx *c, ...);
/*
 * hpc-nodectl --socket <sock> ARGS... (NULL-terminated), as uid (0 = root).
 * The output goes to files (no pipe to drain while waiting), read back into
 * r. sock NULL: the fixture's socket.
 */
void nodectl_as(struct ctx *c, struct run *r, uid_t uid, const char *sock, ...);

#define nodectl(c, r, ...) nodectl_as(c, r, 0, NULL, __VA_ARGS__, (const char *)NULL)

/* Text parsed as JSON, or the test fails; the caller frees it. */
json_t *parse_json(const char *text);
/* A line of text with both needles, in that order. */
bool has_line(const char *text, const char *a, const char *b);
/* NamespaceRequest [Mount] for id (group, the image when with_image): the
 * test fails unless it is answered with one FD. */
void request(struct ctx *c, const char *id, const char *group, bool with_image,
	     struct hpcn_namespace_response *resp, int fds[HPCN_NS__COUNT]);
/* Request and drop the FDs: the allocation lives on in the helper. */
void request_closed(struct ctx *c, const char *id, const char *group);
/* Status body (the test fails without); the caller frees it. */
json_t *status(struct ctx *c);
/* The host mount of our image: its mount point (caller frees), or NULL. */
char *host_mount_point(struct ctx *c, int *refcount);
/* No loop device of image, no mount under the mount base (hfx_wait_for). */
bool image_gone(struct hfx *fx, const void *image);
/*
 * End what is left through the helper, then SIGTERM: it must exit 0 with
 * nothing from the sanitizers in its stderr (under -DHPCN_SANITIZE=ON this
 * is the helper's leak and UB check over everything the test made it do).
 */
void stop_clean(struct ctx *c);
/* A line of the helper's log (c->log) with both needles, in that order. */
bool log_has(struct ctx *c, const char *a, const char *b);

#endif

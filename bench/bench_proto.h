/* SPDX-License-Identifier: Apache-2.0 */
/* Protocol calls the benchmarks repeat, on one open connection. */
#ifndef HPCN_BENCH_PROTO_H
#define HPCN_BENCH_PROTO_H

#include <stddef.h>
#include <sys/types.h>

#include <hpcnode/hpcnode.h>

#include "helper_fixture.h"

/* NamespaceRequest for id with a Mount namespace and, when image is not
 * NULL, that image at the default mount point; the FDs are closed. */
int bench_alloc_create(int sock, const char *id, const char *image, struct hpcn_error *err);
/* AllocationEnded for id. */
int bench_alloc_end(int sock, const char *id, struct hpcn_error *err);

/* Copy src to dst (a new file, mode 0644): a distinct image to the helper
 * (its key is the file's identity, not its content). */
int bench_copy_file(const char *src, const char *dst);

/* Wait (timeout_ms, polling every 200 us) until fx's ready file names pid.
 * Returns 0, or -1 when the helper exited or the time is up. */
int bench_wait_ready(struct hfx *fx, pid_t pid, int timeout_ms);

#endif

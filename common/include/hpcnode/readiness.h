/* SPDX-License-Identifier: Apache-2.0 */
/* ReadinessGate, consumer side: the readiness file. */
#ifndef HPCNODE_READINESS_H
#define HPCNODE_READINESS_H

#include <stdbool.h>

#include <hpcnode/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ReadinessGate::is_ready: the readiness file exists. */
bool hpcn_is_ready(const char *ready_file);

/* ReadinessGate::wait_ready: returns 0 as soon as the file exists, -1 with
 * ReadinessError Timeout ("timeout waiting for readiness") after timeout_ms
 * (-1: forever). Uses inotify on the parent directory (polling as fallback
 * when the directory does not exist yet). */
int hpcn_wait_ready(const char *ready_file, int timeout_ms,
		    struct hpcn_error *err);

/* Provider side: create the file atomically (temp + rename), content is
 * free text (e.g. pid and time); remove it (ENOENT is not an error). */
int hpcn_readiness_signal(const char *ready_file, const char *content,
			  struct hpcn_error *err);
int hpcn_readiness_clear(const char *ready_file, struct hpcn_error *err);

#ifdef __cplusplus
}
#endif
#endif

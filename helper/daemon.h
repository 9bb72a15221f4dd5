/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper's daemon state: one instance, driven by one sd-event loop.
 * Single-threaded: no locking anywhere. Each folder's own functions are in
 * its interface header; this one holds only the state they share:
 *   server/  the socket, the connections, the loop, dispatch  (server/server.h)
 *   alloc/   the allocation lifecycle and its request handlers (alloc/alloc.h)
 *   uenv/    the MountManager: mounted images, refcounts, holds (uenv/uenv.h)
 * server/ calls alloc/ and uenv/; alloc/ calls uenv/; neither calls server/
 * (a handler answers through the struct hpcn_client it is given).
 */
#ifndef HPCN_HELPER_DAEMON_H
#define HPCN_HELPER_DAEMON_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "cgroup/cgroup.h"
#include "config.h"
#include "registry/registry.h"
#include "util.h"

struct hpcn_conn;          /* server/: a client connection */
struct hpcn_uenv_table;    /* uenv/: the mounted images */

struct hpcn_helper {
	struct hpcn_config cfg;
	sd_event *event;
	int listen_fd;
	bool socket_activated;
	bool ready;
	bool stopping;
	uint64_t started_mono_ms;

	struct hpcn_registry reg;
	bool cgroup_ok;                  /* cgroup v2 usable and enabled */
	struct hpcn_cgroup cg;
	struct hpcn_strv cgroup_warnings;

	char ns_dir[PATH_MAX];           /* <state_dir>/ns: namespace pins */
	struct hpcn_uenv_table *uenv;    /* uenv/: mounted images */

	struct hpcn_conn *conns;
	size_t n_conns;
	sd_event_source *accept_resume;  /* armed while accept(2) lacks descriptors */
	uint64_t accept_warned_ms;       /* last warning about it (rate limit) */
	sd_event_source *reconcile_timer;
	int ns_fd_cache_below;           /* cache namespace FDs numbered below this */
	int watch_fd_below;              /* scope watches: FDs numbered below this */

	struct {
		uint64_t requests, errors, denied, connections;
	} counters;
};

#endif

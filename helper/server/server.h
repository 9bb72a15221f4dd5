/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon, server/'s interface (what main.c calls): set it up (socket,
 * cgroup root, registry and mounts reconstructed, readiness), run its event
 * loop until SIGTERM/SIGINT, free it.
 */
#ifndef HPCN_HELPER_SERVER_H
#define HPCN_HELPER_SERVER_H

#include <hpcnode/error.h>

#include "config.h"
#include "daemon.h"

int hpcn_helper_init(struct hpcn_helper *h, const struct hpcn_config *cfg,
		     struct hpcn_error *err);
int hpcn_helper_run(struct hpcn_helper *h);
void hpcn_helper_free(struct hpcn_helper *h);

#endif

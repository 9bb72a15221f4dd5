/* SPDX-License-Identifier: Apache-2.0 */
/* libhpcnode: the hpc-node contract (crate hpc-node 2026.1.28) in C. */
#ifndef HPCNODE_HPCNODE_H
#define HPCNODE_HPCNODE_H

#include <hpcnode/constants.h>
#include <hpcnode/error.h>
#include <hpcnode/slice.h>
#include <hpcnode/types.h>
#include <hpcnode/protocol.h>
#include <hpcnode/wire.h>
#include <hpcnode/client.h>
#include <hpcnode/readiness.h>
#include <hpcnode/version.h>

#endif

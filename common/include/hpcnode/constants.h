/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The constants of the hpc-node contract (crate hpc-node 2026.1.28), with
 * their exact values, plus the few that this implementation adds.
 * WI4: the contract is the single source of naming and layout.
 */
#ifndef HPCNODE_CONSTANTS_H
#define HPCNODE_CONSTANTS_H

/* cgroup::slices -- relative to the cgroup v2 root, no leading '/'. */
#define HPCN_SLICE_PACT_ROOT     "pact.slice"
#define HPCN_SLICE_PACT_INFRA    "pact.slice/infra.slice"
#define HPCN_SLICE_PACT_NETWORK  "pact.slice/network.slice"
#define HPCN_SLICE_PACT_GPU      "pact.slice/gpu.slice"
#define HPCN_SLICE_PACT_AUDIT    "pact.slice/audit.slice"
#define HPCN_SLICE_WORKLOAD_ROOT "workload.slice"

/* namespace */
#define HPCN_HANDOFF_SOCKET_PATH "/run/pact/handoff.sock"

/* mount::paths */
#define HPCN_UENV_MOUNT_BASE  "/run/pact/uenv"
#define HPCN_WORKDIR_BASE     "/run/pact/workdir"
#define HPCN_DATA_STAGE_BASE  "/run/pact/data"
#define HPCN_DEFAULT_HOLD_TIME_SECS 60

/* readiness */
#define HPCN_READINESS_SOCKET_PATH "/run/pact/ready.sock"
#define HPCN_READINESS_FILE_PATH   "/run/pact/ready"

/* ---- Additions of this implementation (not in the crate) ---- */

/* Wire protocol, see docs/protocol.md. */
#define HPCN_PROTOCOL_VERSION   1
#define HPCN_MAX_MESSAGE_SIZE   65536   /* bytes of one SOCK_SEQPACKET record */
#define HPCN_MAX_MESSAGE_FDS    8       /* SCM_RIGHTS FDs in one record */
#define HPCN_MAX_JSON_DEPTH     16

/* Allocation ids become path components: [A-Za-z0-9._-]{1,64}, not . or .. */
#define HPCN_ALLOC_ID_MAX 64

/* Images an allocation may mount at once (the helper's config can lower it). */
#define HPCN_MAX_MOUNTS 8
/* Per-device io.max entries in one ResourceLimits. */
#define HPCN_MAX_IO_DEVICES 16

/* uenv defaults (CSCS conventions). */
#define HPCN_DEFAULT_UENV_MOUNT_POINT "/user-environment"
#define HPCN_DEFAULT_UENV_TOOLS_POINT "/user-tools"

/* Consumer-side timing (lattice's conventions). */
#define HPCN_CONNECT_TIMEOUT_MS         1000
#define HPCN_READINESS_WAIT_TIMEOUT_SECS 30

/* cgroup v2 roots: pure v2 nodes, and hybrid nodes. */
#define HPCN_CGROUP2_ROOT        "/sys/fs/cgroup"
#define HPCN_CGROUP2_HYBRID_ROOT "/sys/fs/cgroup/unified"

/* Configuration and state of the helper. */
#define HPCN_HELPER_CONFIG_PATH "/etc/hpc-node/helper.conf"
/* /run: mounts and namespaces die with a reboot, so does their registry. */
#define HPCN_HELPER_STATE_DIR   "/run/hpc-node"

#endif

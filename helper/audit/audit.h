/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Audit records of hpc-node-helper, shaped after the hpc-audit crate
 * (hpc-core, crates/audit): its action names, its outcomes (Success, Failure,
 * Denied) and its AuditEvent field names.
 *
 * Every record goes to the log (journal fields AUDIT_ID, AUDIT_ACTION,
 * AUDIT_OUTCOME, ALLOCATION_ID, PEER_UID, PEER_GID, PEER_PID, NODE_ID and a
 * fixed MESSAGE_ID, so `journalctl MESSAGE_ID=HPCN_AUDIT_MESSAGE_ID` lists them)
 * and, when the config names an audit_log, as one JSON line appended to it:
 *
 *   {"id":"<uuid v4>","timestamp":"2026-01-28T12:00:00.123456Z",
 *    "principal":{"identity":"uid:0","principal_type":"Service","role":""},
 *    "action":"namespace.handoff",
 *    "scope":{"node_id":"nid001","allocation_id":"alloc-42"},
 *    "outcome":"Success","detail":"...","metadata":null,
 *    "subject":{"uid":0,"gid":0,"pid":1234},
 *    "source":"hpc-node-helper"}
 *
 * Differences from the crate, on purpose: "source" is "hpc-node-helper" (the
 * crate's AuditSource enum has no variant for us); "subject" (the peer's
 * SO_PEERCRED credentials, null for the helper's own actions) is added, which
 * serde ignores; scope.allocation_id is left out when there is none, as the
 * crate's skip_serializing_if does. The principal is "uid:N"/"Service" for a
 * peer and "hpc-node-helper"/"System" for the helper's own actions (reconcile,
 * hold timers, boot).
 *
 * The file is opened O_APPEND and each record is one write(2), so records of
 * concurrent writers never interleave. A failing audit file never fails the
 * action: the error is logged and hpcn_audit() returns -1.
 */
#ifndef HPCN_HELPER_AUDIT_H
#define HPCN_HELPER_AUDIT_H

#include <stdbool.h>
#include <sys/types.h>

#include <hpcnode/error.h>

/* hpc-audit's actions::* constants used here (same strings). */
#define HPCN_AUDIT_CGROUP_CREATE            "cgroup.create"
#define HPCN_AUDIT_CGROUP_DESTROY           "cgroup.destroy"
#define HPCN_AUDIT_CGROUP_KILL_FAILED       "cgroup.kill_failed"
#define HPCN_AUDIT_NAMESPACE_HANDOFF        "namespace.handoff"
#define HPCN_AUDIT_NAMESPACE_HANDOFF_FAILED "namespace.handoff_failed"
#define HPCN_AUDIT_NAMESPACE_CLEANUP        "namespace.cleanup"
#define HPCN_AUDIT_NAMESPACE_LEAK_DETECTED  "namespace.leak_detected"
#define HPCN_AUDIT_MOUNT_ACQUIRE            "mount.acquire"
#define HPCN_AUDIT_MOUNT_RELEASE            "mount.release"
#define HPCN_AUDIT_MOUNT_FORCE_UNMOUNT      "mount.force_unmount"
#define HPCN_AUDIT_MOUNT_REFCOUNT_CORRECTED "mount.refcount_corrected"
#define HPCN_AUDIT_BOOT_READY               "boot.ready"

#define HPCN_AUDIT_SOURCE "hpc-node-helper"
/* MESSAGE_ID of audit records in the journal. */
#define HPCN_AUDIT_MESSAGE_ID "5b1e0c3f8a6d4e2f9c7b1a0d3e5f7a91"

/* hpc-audit's AuditOutcome. */
enum hpcn_audit_outcome {
	HPCN_AUDIT_SUCCESS,  /* completed */
	HPCN_AUDIT_FAILURE,  /* failed (an error, not authorization) */
	HPCN_AUDIT_DENIED,   /* refused by policy (peer, allowlist) */
};

/* Who asked: the peer's SO_PEERCRED. Pass NULL for the helper's own actions. */
struct hpcn_audit_ctx {
	uid_t uid;
	gid_t gid;
	pid_t pid;
};

/* "Success", "Failure", "Denied". */
const char *hpcn_audit_outcome_to_string(enum hpcn_audit_outcome outcome);

/*
 * Open (or reopen, e.g. after logrotate on SIGHUP) the JSON-lines file;
 * NULL or "" = records go to the log only. The file is created 0640,
 * O_APPEND|O_NOFOLLOW|O_CLOEXEC. Also caches the node's hostname.
 * On failure the previous file (if any) stays closed and -1 is returned.
 */
int hpcn_audit_init(const char *audit_log_path, struct hpcn_error *err);
void hpcn_audit_close(void);
/* Is a JSON-lines file open? */
bool hpcn_audit_file_enabled(void);

/*
 * Record one event. allocation_id may be NULL; detail is printf-formatted
 * (may be NULL for none). Log level: Success -> notice, Denied -> warning,
 * Failure -> error. Returns 0, or -1 when the audit file could not be written
 * (already logged). Preserves errno.
 */
int hpcn_audit(const char *action, enum hpcn_audit_outcome outcome,
	       const struct hpcn_audit_ctx *who, const char *allocation_id,
	       const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif

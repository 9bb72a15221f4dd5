/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error kinds of the hpc-node contract. Each kind carries the crate's error
 * enum name ("family"), its variant name and its display text, so that a
 * message logged here reads exactly as the Rust implementations print it.
 * Kinds after HPCN_E_READINESS_TIMEOUT are this implementation's own
 * (protocol and policy); they are documented in docs/protocol.md.
 */
#ifndef HPCNODE_ERROR_H
#define HPCNODE_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum hpcn_error_kind {
	HPCN_E_NONE = 0,
	/* CgroupError */
	HPCN_E_CGROUP_CREATION_FAILED,   /* cgroup creation failed: {reason} */
	HPCN_E_CGROUP_KILL_FAILED,       /* cgroup.kill failed for {path}: {reason} */
	HPCN_E_CGROUP_NOT_FOUND,         /* cgroup path not found: {path} */
	HPCN_E_CGROUP_PERMISSION_DENIED, /* permission denied: {path} owned by {owner} */
	HPCN_E_CGROUP_IO,                /* cgroup I/O error: {err} */
	/* NamespaceError */
	HPCN_E_NS_SOCKET_UNAVAILABLE,    /* handoff socket unavailable: {reason} */
	HPCN_E_NS_CREATION_FAILED,       /* namespace creation failed: {reason} */
	HPCN_E_NS_ALLOCATION_NOT_FOUND,  /* allocation not found: {allocation_id} */
	HPCN_E_NS_FD_PASSING,            /* FD passing failed: {err} */
	/* MountError */
	HPCN_E_MOUNT_FAILED,             /* mount failed for {image_path}: {reason} */
	HPCN_E_UNMOUNT_FAILED,           /* unmount failed for {mount_point}: {reason} */
	HPCN_E_REFCOUNT_INCONSISTENCY,   /* refcount inconsistency for {image_path}: {detail} */
	HPCN_E_MOUNT_IO,                 /* mount I/O error: {err} */
	/* ReadinessError */
	HPCN_E_BOOT_FAILED,              /* boot failed: {reason} */
	HPCN_E_READINESS_TIMEOUT,        /* timeout waiting for readiness */
	/* ProtocolError (ours) */
	HPCN_E_PROTO_MALFORMED,          /* malformed message: {detail} */
	HPCN_E_PROTO_TOO_LARGE,          /* message too large: {detail} */
	HPCN_E_PROTO_UNSUPPORTED_VERSION,/* unsupported protocol version: {detail} */
	HPCN_E_PROTO_UNKNOWN_TAG,        /* unknown message tag: {detail} */
	HPCN_E_PROTO_UNEXPECTED_FDS,     /* unexpected file descriptors: {detail} */
	/* RequestError (ours) */
	HPCN_E_INVALID_ARGUMENT,         /* invalid argument: {detail} */
	HPCN_E_DENIED,                   /* denied: {detail} */
	HPCN_E_NOT_FOUND,                /* not found: {detail} */
	HPCN_E_BUSY,                     /* busy: {detail} */
	HPCN_E_INTERNAL,                 /* internal error: {detail} */
	HPCN_E__COUNT
};

#define HPCN_ERROR_MESSAGE_MAX 1024

struct hpcn_error {
	enum hpcn_error_kind kind;
	int sys_errno;                       /* errno behind it, 0 if none */
	char message[HPCN_ERROR_MESSAGE_MAX]; /* display text, crate's words */
};

/* "CgroupError", "NamespaceError", "MountError", "ReadinessError",
 * "ProtocolError", "RequestError"; NULL for HPCN_E_NONE or out of range. */
const char *hpcn_error_family(enum hpcn_error_kind kind);
/* Variant name, e.g. "CreationFailed", "AllocationNotFound". */
const char *hpcn_error_variant(enum hpcn_error_kind kind);
/* Number of fields the display text takes (0, 1 or 2). */
int hpcn_error_nfields(enum hpcn_error_kind kind);
/* Reverse lookup; HPCN_E_NONE when the pair is unknown. */
enum hpcn_error_kind hpcn_error_kind_from_names(const char *family, const char *variant);

/*
 * Fill *err with kind and the display text built from the crate's template.
 * f1/f2 are the template's fields in order (NULL where it takes fewer):
 *   KILL_FAILED: f1=path f2=reason; PERMISSION_DENIED: f1=path f2=owner
 *   ("Pact"/"Workload"); MOUNT_FAILED: f1=image_path f2=reason; ...
 * Always returns -1, so error paths can `return hpcn_error_set(...)`.
 * err may be NULL.
 */
int hpcn_error_set(struct hpcn_error *err, enum hpcn_error_kind kind,
		   const char *f1, const char *f2);
/* Like hpcn_error_set, the last field printf-formatted. */
int hpcn_error_setf(struct hpcn_error *err, enum hpcn_error_kind kind,
		    const char *f1, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Like hpcn_error_setf, appends ": strerror(errnum)" and records errnum. */
int hpcn_error_set_errno(struct hpcn_error *err, enum hpcn_error_kind kind,
			 int errnum, const char *f1, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Set kind and an already formatted display text (e.g. received on the wire). */
int hpcn_error_set_raw(struct hpcn_error *err, enum hpcn_error_kind kind,
		       const char *message);
void hpcn_error_clear(struct hpcn_error *err);

#ifdef __cplusplus
}
#endif
#endif

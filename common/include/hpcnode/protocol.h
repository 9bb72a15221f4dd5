/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocol (docs/protocol.md): one JSON envelope per SOCK_SEQPACKET
 * record,
 *   {"version":1,"tag":"NamespaceRequest","seq":7,"body":{...}}
 * body being serde's default encoding of the crate's type for contract
 * messages. Encoding and decoding are pure (no I/O): see wire.h for the
 * socket side and client.h for the consumer's calls.
 */
#ifndef HPCNODE_PROTOCOL_H
#define HPCNODE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hpcnode/error.h>
#include <hpcnode/types.h>

#ifdef __cplusplus
extern "C" {
#endif

enum hpcn_tag {
	HPCN_TAG_UNKNOWN = 0,
	/* contract messages */
	HPCN_TAG_NAMESPACE_REQUEST,   /* "NamespaceRequest"  -> NamespaceResponse */
	HPCN_TAG_NAMESPACE_RESPONSE,  /* "NamespaceResponse" + SCM_RIGHTS FDs */
	HPCN_TAG_ALLOCATION_ENDED,    /* "AllocationEnded"   -> Ok */
	/* ours */
	HPCN_TAG_HELLO,               /* "Hello" both ways: version negotiation */
	HPCN_TAG_OK,                  /* "Ok": success without data */
	HPCN_TAG_ERROR,               /* "Error": family, variant, message */
	HPCN_TAG_ATTACH,              /* "Attach": place a pid in a scope -> Ok */
	HPCN_TAG_METRICS_REQUEST,     /* "MetricsRequest" -> CgroupMetrics */
	HPCN_TAG_CGROUP_METRICS,      /* "CgroupMetrics" */
	HPCN_TAG_STATUS_REQUEST,      /* "StatusRequest" -> Status */
	HPCN_TAG_STATUS,              /* "Status": free-form JSON object */
	HPCN_TAG_RECONCILE,           /* "Reconcile" -> Status (what it corrected) */
	HPCN_TAG_FORCE_UNMOUNT,       /* "ForceUnmount" -> Ok (emergency only) */
	HPCN_TAG__COUNT
};

const char *hpcn_tag_name(enum hpcn_tag tag);          /* NULL if invalid */
enum hpcn_tag hpcn_tag_from_name(const char *name);    /* UNKNOWN if unknown */

struct hpcn_hello {
	uint32_t min_version;       /* "min_version" */
	uint32_t max_version;       /* "max_version" */
	char *software;             /* "software", e.g. "hpc-node-helper 0.1.0" */
};

struct hpcn_error_body {
	enum hpcn_error_kind kind;  /* from "family" + "variant" */
	char *message;              /* "message": the display text */
};

struct hpcn_attach {
	char *allocation_id;
	pid_t pid;                  /* "pid"; or -1 with pidfd_index */
	int pidfd_index;            /* "pidfd_index": SCM_RIGHTS index, -1 none */
};

struct hpcn_metrics_request {
	char *path;                 /* cgroup path relative to the root */
};

struct hpcn_force_unmount {
	char *image_path;
	bool emergency;             /* must be true; refused otherwise */
};

struct hpcn_msg {
	uint32_t version;           /* HPCN_PROTOCOL_VERSION when encoding */
	uint64_t seq;               /* replies echo the request's seq */
	enum hpcn_tag tag;
	union {
		struct hpcn_namespace_request ns_request;
		struct hpcn_namespace_response ns_response;
		struct hpcn_allocation_ended ended;
		struct hpcn_hello hello;
		struct hpcn_error_body error;
		struct hpcn_attach attach;
		struct hpcn_metrics_request metrics_request;
		struct hpcn_cgroup_metrics metrics;
		struct hpcn_force_unmount force_unmount;
		char *json;         /* Ok (may be NULL), Status, StatusRequest,
				       Reconcile: the body object as JSON text */
	} u;
};

/* Zero a message and set its tag and version; typed index fields to -1. */
void hpcn_msg_init(struct hpcn_msg *msg, enum hpcn_tag tag);
/* Free what the message owns (strings, arrays); leaves it zeroed. */
void hpcn_msg_free(struct hpcn_msg *msg);

/*
 * Encode msg as one record. On success *out is a malloc'd buffer of *len
 * bytes (not NUL-terminated on the wire, but NUL-terminated in memory) and 0
 * is returned. A record over HPCN_MAX_MESSAGE_SIZE is ProtocolError TooLarge.
 */
int hpcn_msg_encode(const struct hpcn_msg *msg, char **out, size_t *len,
		    struct hpcn_error *err);

/*
 * Decode one record. Every problem is a distinct, clear error, msg left
 * zeroed: TooLarge (len over the bound), Malformed (not UTF-8, not JSON,
 * nesting over HPCN_MAX_JSON_DEPTH, duplicate keys, not an object, missing
 * or wrongly typed field, bad enum name, bad allocation id), UnsupportedVersion
 * (version outside 1..HPCN_PROTOCOL_VERSION), UnknownTag (seq is still
 * filled in msg->seq so the reply can echo it). Unknown fields are ignored
 * (forward compatibility), as serde does by default.
 */
int hpcn_msg_decode(const void *buf, size_t len, struct hpcn_msg *msg,
		    struct hpcn_error *err);

/* Convenience: build an Error reply for err, echoing seq. */
int hpcn_msg_error_from(struct hpcn_msg *msg, uint64_t seq,
			const struct hpcn_error *err);
/* Convenience: turn a received Error message into a struct hpcn_error. */
void hpcn_msg_error_to(const struct hpcn_msg *msg, struct hpcn_error *err);

/* Freeing helpers for contract types used outside messages. */
void hpcn_namespace_request_free(struct hpcn_namespace_request *r);
void hpcn_namespace_response_free(struct hpcn_namespace_response *r);

#ifdef __cplusplus
}
#endif
#endif

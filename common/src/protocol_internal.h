/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the wire protocol's JSON codec: shared by protocol.c (tags,
 * init/free, the envelope, the field rules), protocol_decode.c (the bodies'
 * decoders) and protocol_encode.c (their encoders), and by nothing else.
 * Not installed. The functions are hidden: the version script exports
 * hpcn_*, which hpcn_proto_* would otherwise match.
 */
#ifndef HPCN_PROTOCOL_INTERNAL_H
#define HPCN_PROTOCOL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <hpcnode/protocol.h>

/* Strings and paths are shorter than this many bytes (PATH_MAX). */
#define STR_MAX 4096
/* Warnings in one NamespaceResponse. */
#define MAX_WARNINGS 64
/* Room for a field path such as "NamespaceRequest.limits.io_device_max[15]". */
#define WHERE_MAX 128
/* User-provided text quoted in an error message is cut to this many bytes. */
#define QUOTE_MAX 64

#define HPCN_PROTO_HIDDEN __attribute__((visibility("hidden")))

/* ---- Error context shared by the encoder and the decoder ---- */

struct ctx {
	enum hpcn_error_kind kind;
	char detail[HPCN_ERROR_MESSAGE_MAX];
};

#define MALFORMED HPCN_E_PROTO_MALFORMED
#define INVALID   HPCN_E_INVALID_ARGUMENT

/* Sets c's kind and detail; returns -1. */
HPCN_PROTO_HIDDEN __attribute__((format(printf, 3, 4)))
int hpcn_proto_fail(struct ctx *c, enum hpcn_error_kind kind, const char *fmt, ...);

/* ---- protocol.c: the field rules, and the two writers the envelope uses too ---- */

HPCN_PROTO_HIDDEN bool hpcn_proto_utf8_valid(const char *s);
HPCN_PROTO_HIDDEN void hpcn_proto_subpath(char out[WHERE_MAX], const char *w,
					  const char *key, long i);
HPCN_PROTO_HIDDEN const char *hpcn_proto_jtype(const json_t *v);
HPCN_PROTO_HIDDEN int hpcn_proto_field(struct ctx *c, const json_t *obj, const char *where,
				       const char *key, json_type type, const char *what,
				       bool nullable, json_t **out);
HPCN_PROTO_HIDDEN int hpcn_proto_int_value(struct ctx *c, const json_t *v, const char *where,
					   const char *key, uint64_t max, const char *ctype,
					   uint64_t *out);
HPCN_PROTO_HIDDEN int hpcn_proto_get_uint(struct ctx *c, const json_t *obj, const char *where,
					  const char *key, uint64_t max, const char *ctype,
					  uint64_t *out);
HPCN_PROTO_HIDDEN int hpcn_proto_check_id(struct ctx *c, const char *where, const char *key,
					  const char *id);
HPCN_PROTO_HIDDEN int hpcn_proto_check_nonempty(struct ctx *c, const char *where,
						const char *key, const char *s);
HPCN_PROTO_HIDDEN int hpcn_proto_put(struct ctx *c, json_t *obj, const char *where,
				     const char *key, json_t *v);
HPCN_PROTO_HIDDEN int hpcn_proto_put_u64(struct ctx *c, json_t *obj, const char *where,
					 const char *key, uint64_t v);

/* ---- The bodies ---- */

/* protocol_decode.c: decode body into m, which hpcn_msg_init() has set up
 * for m->tag. */
HPCN_PROTO_HIDDEN int hpcn_proto_dec_body(struct ctx *c, const json_t *body,
					  struct hpcn_msg *m);
/* protocol_encode.c: m's body as a new JSON object (w: the tag's name for
 * errors), NULL on error. */
HPCN_PROTO_HIDDEN json_t *hpcn_proto_enc_body(struct ctx *c, const struct hpcn_msg *m,
					      const char *w);

#endif /* HPCN_PROTOCOL_INTERNAL_H */

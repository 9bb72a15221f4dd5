/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocol's JSON codec (docs/protocol.md). Pure: no I/O.
 *
 * Bodies are serde's default encoding of the crate's types, so a Rust peer
 * built on the crate reads them unchanged; this implementation's extra
 * fields ("ext") are emitted only when set. Decoding trusts nothing: every
 * field is type-checked and bounded, and each class of problem gets its own
 * error naming the field. Encoding refuses what decoding would refuse (the
 * record is decoded again before it is handed out), so we never put on the
 * wire a record that a peer built on this library would reject.
 *
 * This file holds the tag names, init and free, the envelope and the field
 * rules both directions share; the bodies' decoders are in protocol_decode.c,
 * their encoders in protocol_encode.c (protocol_internal.h joins the three).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <hpcnode/protocol.h>

#include "protocol_internal.h"

static const char *const tag_names[HPCN_TAG__COUNT] = {
	[HPCN_TAG_NAMESPACE_REQUEST] = "NamespaceRequest",
	[HPCN_TAG_NAMESPACE_RESPONSE] = "NamespaceResponse",
	[HPCN_TAG_ALLOCATION_ENDED] = "AllocationEnded",
	[HPCN_TAG_HELLO] = "Hello",
	[HPCN_TAG_OK] = "Ok",
	[HPCN_TAG_ERROR] = "Error",
	[HPCN_TAG_ATTACH] = "Attach",
	[HPCN_TAG_METRICS_REQUEST] = "MetricsRequest",
	[HPCN_TAG_CGROUP_METRICS] = "CgroupMetrics",
	[HPCN_TAG_STATUS_REQUEST] = "StatusRequest",
	[HPCN_TAG_STATUS] = "Status",
	[HPCN_TAG_RECONCILE] = "Reconcile",
	[HPCN_TAG_FORCE_UNMOUNT] = "ForceUnmount",
};

const char *hpcn_tag_name(enum hpcn_tag tag)
{
	if ((int)tag <= HPCN_TAG_UNKNOWN || tag >= HPCN_TAG__COUNT)
		return NULL;
	return tag_names[tag];
}

enum hpcn_tag hpcn_tag_from_name(const char *name)
{
	if (!name)
		return HPCN_TAG_UNKNOWN;
	for (int t = HPCN_TAG_UNKNOWN + 1; t < HPCN_TAG__COUNT; t++)
		if (strcmp(name, tag_names[t]) == 0)
			return (enum hpcn_tag)t;
	return HPCN_TAG_UNKNOWN;
}

/* ---- Messages: init and free ---- */

static void mounts_reset(struct hpcn_mount_handle *m)
{
	for (size_t i = 0; i < HPCN_MAX_MOUNTS; i++) {
		free(m[i].image_path);
		free(m[i].mount_point);
		m[i].image_path = NULL;
		m[i].mount_point = NULL;
		m[i].image_fd_index = -1;
	}
}

/* A zeroed index would mean "FD number 0 of the record": make it "none". */
static void request_indexes_none(struct hpcn_namespace_request *r)
{
	r->base_mount_ns_fd_index = -1;
	for (size_t i = 0; i < HPCN_MAX_MOUNTS; i++)
		r->mounts[i].image_fd_index = -1;
}

void hpcn_namespace_request_free(struct hpcn_namespace_request *r)
{
	if (!r)
		return;
	free(r->allocation_id);
	free(r->uenv_image);
	free(r->group);
	mounts_reset(r->mounts);
	memset(r, 0, sizeof(*r));
	request_indexes_none(r);
}

void hpcn_namespace_response_free(struct hpcn_namespace_response *r)
{
	if (!r)
		return;
	free(r->allocation_id);
	free(r->uenv_mount_path);
	free(r->scope);
	mounts_reset(r->mounts);
	for (size_t i = 0; r->warnings && i < r->n_warnings; i++)
		free(r->warnings[i]);
	free(r->warnings);
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < HPCN_MAX_MOUNTS; i++)
		r->mounts[i].image_fd_index = -1;
}

void hpcn_msg_init(struct hpcn_msg *msg, enum hpcn_tag tag)
{
	memset(msg, 0, sizeof(*msg));
	msg->tag = tag;
	msg->version = HPCN_PROTOCOL_VERSION;
	switch (tag) {
	case HPCN_TAG_NAMESPACE_REQUEST:
		request_indexes_none(&msg->u.ns_request);
		break;
	case HPCN_TAG_NAMESPACE_RESPONSE:
		for (size_t i = 0; i < HPCN_MAX_MOUNTS; i++)
			msg->u.ns_response.mounts[i].image_fd_index = -1;
		break;
	case HPCN_TAG_ATTACH:
		msg->u.attach.pid = -1;
		msg->u.attach.pidfd_index = -1;
		break;
	case HPCN_TAG_CGROUP_METRICS:
		msg->u.metrics.cpu_pressure_avg10 = -1;
		msg->u.metrics.memory_pressure_avg10 = -1;
		msg->u.metrics.io_pressure_avg10 = -1;
		break;
	default:
		break;
	}
}

void hpcn_msg_free(struct hpcn_msg *msg)
{
	if (!msg)
		return;
	switch (msg->tag) {
	case HPCN_TAG_NAMESPACE_REQUEST:
		hpcn_namespace_request_free(&msg->u.ns_request);
		break;
	case HPCN_TAG_NAMESPACE_RESPONSE:
		hpcn_namespace_response_free(&msg->u.ns_response);
		break;
	case HPCN_TAG_ALLOCATION_ENDED:
		free(msg->u.ended.allocation_id);
		free(msg->u.ended.group);
		break;
	case HPCN_TAG_HELLO:
		free(msg->u.hello.software);
		break;
	case HPCN_TAG_ERROR:
		free(msg->u.error.message);
		break;
	case HPCN_TAG_ATTACH:
		free(msg->u.attach.allocation_id);
		break;
	case HPCN_TAG_METRICS_REQUEST:
		free(msg->u.metrics_request.path);
		break;
	case HPCN_TAG_FORCE_UNMOUNT:
		free(msg->u.force_unmount.image_path);
		break;
	case HPCN_TAG_OK:
	case HPCN_TAG_STATUS_REQUEST:
	case HPCN_TAG_STATUS:
	case HPCN_TAG_RECONCILE:
		free(msg->u.json);
		break;
	default:
		break;
	}
	memset(msg, 0, sizeof(*msg));
}

/* ---- Error context shared by the encoder and the decoder ---- */

__attribute__((format(printf, 3, 4)))
int hpcn_proto_fail(struct ctx *c, enum hpcn_error_kind kind, const char *fmt, ...)
{
	va_list ap;

	c->kind = kind;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
	return -1;
}

/* Length of the well-formed UTF-8 sequence starting at s (s NUL-terminated),
 * 0 when it is not one (overlong forms and surrogates included). */
static size_t utf8_seq(const unsigned char *s)
{
	unsigned char c0 = s[0];

	if (c0 < 0x80)
		return 1;
	if (c0 >= 0xc2 && c0 <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c0 >= 0xe0 && c0 <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c0 == 0xe0 && s[1] < 0xa0) || (c0 == 0xed && s[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c0 >= 0xf0 && c0 <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c0 == 0xf0 && s[1] < 0x90) || (c0 == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

bool hpcn_proto_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = utf8_seq(p);

		if (!n)
			return false;
		p += n;
	}
	return true;
}

/*
 * Error texts travel back to the peer inside an Error record, which must be
 * valid UTF-8: replace bytes that are not (and, with controls, control
 * characters, which only hide things in logs) by '?'.
 */
static void sanitize(char *s, bool controls)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		size_t n = utf8_seq(p);

		if (!n || (controls && (*p < 0x20 || *p == 0x7f))) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

/* ---- Decoding helpers ---- */

/* Path of a nested field for error messages: "W.key[i]" (i < 0: "W.key").
 * Truncation would only shorten a message. */
void hpcn_proto_subpath(char out[WHERE_MAX], const char *w, const char *key, long i)
{
	int n = snprintf(out, WHERE_MAX, "%s.%s", w, key);

	if (i >= 0 && n > 0 && n < WHERE_MAX)
		snprintf(out + n, (size_t)(WHERE_MAX - n), "[%ld]", i);
}

const char *hpcn_proto_jtype(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "an unknown JSON type";
}

/*
 * Look up where.key. *out is NULL when the field is absent or null and
 * nullable (serde's Option: absent == null); otherwise it must be present,
 * not null, and of JSON type `type` (described as `what` in the error).
 */
int hpcn_proto_field(struct ctx *c, const json_t *obj, const char *where, const char *key,
		     json_type type, const char *what, bool nullable, json_t **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v && !nullable)
		return hpcn_proto_fail(c, MALFORMED, "%s.%s: missing field", where, key);
	if (!v || (json_is_null(v) && nullable))
		return 0;
	if (json_typeof(v) != type &&
	    !(type == JSON_TRUE && json_typeof(v) == JSON_FALSE))
		return hpcn_proto_fail(c, MALFORMED, "%s.%s: expected %s, got %s", where, key, what,
				       hpcn_proto_jtype(v));
	*out = v;
	return 0;
}

/* An integer 0..max; ctype names the C/serde type in the error. */
int hpcn_proto_int_value(struct ctx *c, const json_t *v, const char *where, const char *key,
			 uint64_t max, const char *ctype, uint64_t *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return hpcn_proto_fail(c, MALFORMED, "%s.%s: expected an integer (%s), got %s",
				       where, key, ctype, hpcn_proto_jtype(v));
	i = json_integer_value(v);
	if (i < 0)
		return hpcn_proto_fail(c, MALFORMED,
				       "%s.%s: must not be negative, got %" JSON_INTEGER_FORMAT,
				       where, key, i);
	if ((uint64_t)i > max)
		return hpcn_proto_fail(c, MALFORMED,
				       "%s.%s: %" JSON_INTEGER_FORMAT " is out of range for %s "
				       "(0..%" PRIu64 ")", where, key, i, ctype, max);
	*out = (uint64_t)i;
	return 0;
}

/* Required integer. */
int hpcn_proto_get_uint(struct ctx *c, const json_t *obj, const char *where, const char *key,
			uint64_t max, const char *ctype, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return hpcn_proto_fail(c, MALFORMED, "%s.%s: missing field", where, key);
	return hpcn_proto_int_value(c, v, where, key, max, ctype, out);
}

/* Allocation ids and groups become path components. */
int hpcn_proto_check_id(struct ctx *c, const char *where, const char *key, const char *id)
{
	static const char prefix[] = "invalid argument: ";
	struct hpcn_error e;
	const char *text;

	hpcn_error_clear(&e);
	if (hpcn_alloc_id_validate(id, &e) == 0)
		return 0;
	text = e.message;
	if (strncmp(text, prefix, sizeof(prefix) - 1) == 0)
		text += sizeof(prefix) - 1;
	/* Groups follow the same rule; say which one broke it. */
	if (strcmp(key, "group") == 0 && strncmp(text, "allocation id", 13) == 0)
		return hpcn_proto_fail(c, INVALID, "%s.%s: group%s", where, key, text + 13);
	return hpcn_proto_fail(c, INVALID, "%s.%s: %s", where, key, text);
}

int hpcn_proto_check_nonempty(struct ctx *c, const char *where, const char *key, const char *s)
{
	if (s && !*s)
		return hpcn_proto_fail(c, INVALID, "%s.%s: must not be empty", where, key);
	return 0;
}

/* ---- Encoding helpers the envelope uses too ---- */

int hpcn_proto_put(struct ctx *c, json_t *obj, const char *where, const char *key, json_t *v)
{
	/* json_object_set_new takes v even when it fails. */
	if (!v || json_object_set_new(obj, key, v) != 0)
		return hpcn_proto_fail(c, HPCN_E_INTERNAL, "out of memory encoding %s.%s",
				       where, key);
	return 0;
}

int hpcn_proto_put_u64(struct ctx *c, json_t *obj, const char *where, const char *key,
		       uint64_t v)
{
	/* jansson's integers are int64_t: the protocol stops at 2^63-1. */
	if (v > INT64_MAX)
		return hpcn_proto_fail(c, INVALID, "%s.%s: %" PRIu64 " exceeds 2^63-1, the largest "
				       "integer of the protocol", where, key, v);
	return hpcn_proto_put(c, obj, where, key, json_integer((json_int_t)v));
}

/* ---- The envelope ---- */

/*
 * jansson recurses per nesting level and we hand its tree to code that
 * recurses too: refuse deep documents before jansson sees them. Raw NUL
 * bytes are never valid JSON; naming them here gives a clearer error.
 */
static int prescan(const unsigned char *p, size_t len, struct ctx *c)
{
	bool in_str = false, esc = false;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = p[i];

		if (ch == '\0')
			return hpcn_proto_fail(c, MALFORMED, "NUL byte at offset %zu", i);
		if (in_str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				in_str = false;
			continue;
		}
		if (ch == '"') {
			in_str = true;
		} else if (ch == '{' || ch == '[') {
			if (++depth > HPCN_MAX_JSON_DEPTH)
				return hpcn_proto_fail(c, MALFORMED,
						       "nesting deeper than %d levels at "
						       "offset %zu", HPCN_MAX_JSON_DEPTH, i);
		} else if ((ch == '}' || ch == ']') && depth > 0) {
			depth--;
		}
	}
	return 0;
}

static int parse_error(struct ctx *c, const json_error_t *je)
{
	switch (json_error_code(je)) {
	case json_error_invalid_utf8:
		return hpcn_proto_fail(c, MALFORMED, "not valid UTF-8 at offset %d (%s)",
				       je->position, je->text);
	case json_error_duplicate_key:
		return hpcn_proto_fail(c, MALFORMED, "duplicate key at line %d column %d (%s)",
				       je->line, je->column, je->text);
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return hpcn_proto_fail(c, MALFORMED,
				       "NUL character (\\u0000) in a string or key at offset %d",
				       je->position);
	case json_error_numeric_overflow:
		return hpcn_proto_fail(c, MALFORMED,
				       "number out of range at offset %d (integers are "
				       "limited to -2^63..2^63-1): %s", je->position, je->text);
	case json_error_premature_end_of_input:
		return hpcn_proto_fail(c, MALFORMED, "truncated JSON at offset %d (%s)",
				       je->position, je->text);
	case json_error_stack_overflow:
		return hpcn_proto_fail(c, MALFORMED, "nesting too deep (%s)", je->text);
	case json_error_out_of_memory:
		return hpcn_proto_fail(c, HPCN_E_INTERNAL, "out of memory parsing a record");
	default:
		return hpcn_proto_fail(c, MALFORMED, "not valid JSON at line %d column %d: %s",
				       je->line, je->column, je->text);
	}
}

/* Decode into m (zeroed by the caller); *seq gets the envelope's seq as soon
 * as it is known, so that an error reply can echo it. */
static int decode(const void *buf, size_t len, struct hpcn_msg *m, uint64_t *seq,
		  struct ctx *c)
{
	static const char *const w = "envelope";
	json_t *root = NULL, *v, *body;
	json_error_t je;
	enum hpcn_tag tag;
	uint64_t version, s;
	const char *name;
	int rv = -1;

	if (!buf || len == 0)
		return hpcn_proto_fail(c, MALFORMED, "empty record");
	if (len > HPCN_MAX_MESSAGE_SIZE)
		return hpcn_proto_fail(c, HPCN_E_PROTO_TOO_LARGE,
				       "record of %zu bytes, the limit is %d",
				       len, HPCN_MAX_MESSAGE_SIZE);
	if (prescan(buf, len, c))
		return -1;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root)
		return parse_error(c, &je);
	if (!json_is_object(root)) {
		hpcn_proto_fail(c, MALFORMED, "the record is %s, not a JSON object",
				hpcn_proto_jtype(root));
		goto out;
	}
	v = json_object_get(root, "seq");
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		*seq = (uint64_t)json_integer_value(v);

	/* The version first: it decides how the rest is to be read. */
	v = json_object_get(root, "version");
	if (!v) {
		hpcn_proto_fail(c, MALFORMED, "%s.version: missing field", w);
		goto out;
	}
	if (!json_is_integer(v)) {
		hpcn_proto_fail(c, MALFORMED, "%s.version: expected an integer, got %s", w,
				hpcn_proto_jtype(v));
		goto out;
	}
	if (json_integer_value(v) < 1 || json_integer_value(v) > HPCN_PROTOCOL_VERSION) {
		hpcn_proto_fail(c, HPCN_E_PROTO_UNSUPPORTED_VERSION, "version %" JSON_INTEGER_FORMAT
				" received, this peer supports %d..%d", json_integer_value(v), 1,
				HPCN_PROTOCOL_VERSION);
		goto out;
	}
	version = (uint64_t)json_integer_value(v);
	if (hpcn_proto_field(c, root, w, "tag", JSON_STRING, "a string", false, &v) ||
	    hpcn_proto_get_uint(c, root, w, "seq", INT64_MAX, "u64", &s))
		goto out;
	name = json_string_value(v);
	tag = hpcn_tag_from_name(name);
	if (tag == HPCN_TAG_UNKNOWN) {
		hpcn_proto_fail(c, HPCN_E_PROTO_UNKNOWN_TAG, "\"%.*s\"", QUOTE_MAX, name);
		goto out;
	}
	if (hpcn_proto_field(c, root, w, "body", JSON_OBJECT, "an object", false, &body))
		goto out;
	hpcn_msg_init(m, tag);
	m->version = (uint32_t)version;
	m->seq = s;
	rv = hpcn_proto_dec_body(c, body, m);
out:
	json_decref(root);
	return rv;
}

int hpcn_msg_decode(const void *buf, size_t len, struct hpcn_msg *msg,
		    struct hpcn_error *err)
{
	struct ctx c = { .kind = HPCN_E_NONE };
	struct hpcn_msg tmp;
	uint64_t seq = 0;

	memset(&tmp, 0, sizeof(tmp));
	if (decode(buf, len, &tmp, &seq, &c) == 0) {
		*msg = tmp;
		return 0;
	}
	hpcn_msg_free(&tmp);
	memset(msg, 0, sizeof(*msg));
	msg->seq = seq;
	sanitize(c.detail, true);
	return hpcn_error_set(err, c.kind, c.detail, NULL);
}

int hpcn_msg_encode(const struct hpcn_msg *msg, char **out, size_t *len,
		    struct hpcn_error *err)
{
	static const char *const w = "envelope";
	struct ctx c = { .kind = HPCN_E_NONE };
#ifndef NDEBUG
	struct hpcn_msg check;
	uint64_t seq = 0;
#endif
	json_t *root = NULL, *body;
	const char *name;
	char *text = NULL;
	uint32_t version;
	size_t n;
	int rv = -1;

	*out = NULL;
	*len = 0;
	name = hpcn_tag_name(msg->tag);
	if (!name)
		return hpcn_error_setf(err, INVALID, NULL, "cannot encode: %d is not a message "
				       "tag", (int)msg->tag);
	version = msg->version ? msg->version : HPCN_PROTOCOL_VERSION;
	if (version > HPCN_PROTOCOL_VERSION)
		return hpcn_error_setf(err, INVALID, NULL, "cannot encode %s: version %" PRIu32
				       ", this peer speaks 1..%d", name, version,
				       HPCN_PROTOCOL_VERSION);
	root = json_object();
	if (!root) {
		hpcn_proto_fail(&c, HPCN_E_INTERNAL, "out of memory");
		goto fail;
	}
	if (hpcn_proto_put(&c, root, w, "version", json_integer(version)) ||
	    hpcn_proto_put(&c, root, w, "tag", json_string(name)) ||
	    hpcn_proto_put_u64(&c, root, w, "seq", msg->seq))
			   goto fail;
	body = hpcn_proto_enc_body(&c, msg, name);
	if (!body || hpcn_proto_put(&c, root, w, "body", body))
		goto fail;
	/* Reals: 15 significant digits print 0.52 as "0.52" and still give
	 * back every value that was itself read from up to 15 digits. */
	text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!text) {
		hpcn_proto_fail(&c, HPCN_E_INTERNAL, "out of memory");
		goto fail;
	}
	n = strlen(text);
	if (n > HPCN_MAX_MESSAGE_SIZE) {
		hpcn_proto_fail(&c, HPCN_E_PROTO_TOO_LARGE,
				"%s record of %zu bytes, the limit is %d",
				name, n, HPCN_MAX_MESSAGE_SIZE);
		goto fail;
	}
#ifndef NDEBUG
	/* Debug builds (and the sanitizer suite) decode what they encoded: an
	 * encoder bug shows up as an error here rather than at the peer. Release
	 * builds skip it (17 % of a handoff, docs/benchmarks.md): the encoder's
	 * field checks guarantee what the decoder checks, and the fuzzer's
	 * round-trip property (tests/fuzz/fuzz_protocol.c) and the golden
	 * vectors test that in every build. */
	memset(&check, 0, sizeof(check));
	if (decode(text, n, &check, &seq, &c) != 0) {
		hpcn_msg_free(&check);
		if (c.kind != HPCN_E_INTERNAL)
			c.kind = INVALID;
		goto fail;
	}
	hpcn_msg_free(&check);
#endif
	*out = text;
	*len = n;
	text = NULL;
	rv = 0;
fail:
	if (rv) {
		sanitize(c.detail, true);
		if (c.kind == INVALID)
			hpcn_error_setf(err, INVALID, NULL, "cannot encode %s: %s", name,
					c.detail);
		else
			hpcn_error_set(err, c.kind, c.detail, NULL);
	}
	free(text);
	json_decref(root);
	return rv;
}

/* ---- Errors as messages ---- */

int hpcn_msg_error_from(struct hpcn_msg *msg, uint64_t seq, const struct hpcn_error *err)
{
	enum hpcn_error_kind kind = err ? err->kind : HPCN_E_INTERNAL;

	hpcn_msg_init(msg, HPCN_TAG_ERROR);
	msg->seq = seq;
	if (!hpcn_error_family(kind))
		kind = HPCN_E_INTERNAL;
	msg->u.error.kind = kind;
	if (err && err->kind == kind && err->message[0]) {
		msg->u.error.message = strdup(err->message);
	} else {
		struct hpcn_error e;

		/* No usable text: the kind's own words, never an empty message. */
		if (err && err->message[0])
			hpcn_error_set(&e, kind, err->message, NULL);
		else
			hpcn_error_set(&e, kind, "no detail", "no detail");
		msg->u.error.message = strdup(e.message);
	}
	if (!msg->u.error.message) {
		hpcn_msg_free(msg);
		return -1;
	}
	/* A truncated message or a path in a foreign charset must not make the
	 * reply unencodable. */
	sanitize(msg->u.error.message, false);
	return 0;
}

void hpcn_msg_error_to(const struct hpcn_msg *msg, struct hpcn_error *err)
{
	if (msg->tag != HPCN_TAG_ERROR) {
		const char *name = hpcn_tag_name(msg->tag);

		hpcn_error_setf(err, HPCN_E_INTERNAL, NULL, "expected an Error message, got %s",
				name ? name : "an invalid tag");
		return;
	}
	hpcn_error_set_raw(err, hpcn_error_family(msg->u.error.kind) ? msg->u.error.kind
			   : HPCN_E_INTERNAL, msg->u.error.message ? msg->u.error.message : "");
}

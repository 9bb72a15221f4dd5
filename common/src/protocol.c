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
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct ctx {
	enum hpcn_error_kind kind;
	char detail[HPCN_ERROR_MESSAGE_MAX];
};

__attribute__((format(printf, 3, 4)))
static int fail(struct ctx *c, enum hpcn_error_kind kind, const char *fmt, ...)
{
	va_list ap;

	c->kind = kind;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
	return -1;
}

#define MALFORMED HPCN_E_PROTO_MALFORMED
#define INVALID   HPCN_E_INVALID_ARGUMENT

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

static bool utf8_valid(const char *s)
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
static void subpath(char out[WHERE_MAX], const char *w, const char *key, long i)
{
	int n = snprintf(out, WHERE_MAX, "%s.%s", w, key);

	if (i >= 0 && n > 0 && n < WHERE_MAX)
		snprintf(out + n, (size_t)(WHERE_MAX - n), "[%ld]", i);
}

static const char *jtype(const json_t *v)
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
static int field(struct ctx *c, const json_t *obj, const char *where, const char *key,
		 json_type type, const char *what, bool nullable, json_t **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v && !nullable)
		return fail(c, MALFORMED, "%s.%s: missing field", where, key);
	if (!v || (json_is_null(v) && nullable))
		return 0;
	if (json_typeof(v) != type &&
	    !(type == JSON_TRUE && json_typeof(v) == JSON_FALSE))
		return fail(c, MALFORMED, "%s.%s: expected %s, got %s", where, key, what,
			    jtype(v));
	*out = v;
	return 0;
}

static int get_str(struct ctx *c, const json_t *obj, const char *where, const char *key,
		   bool nullable, char **out)
{
	json_t *v;
	size_t n;

	if (field(c, obj, where, key, JSON_STRING, "a string", nullable, &v))
		return -1;
	if (!v)
		return 0;
	n = json_string_length(v);
	if (n >= STR_MAX)
		return fail(c, MALFORMED, "%s.%s: string of %zu bytes, the limit is %d",
			    where, key, n, STR_MAX - 1);
	*out = strdup(json_string_value(v));
	if (!*out)
		return fail(c, HPCN_E_INTERNAL, "out of memory decoding %s.%s", where, key);
	return 0;
}

/* An integer 0..max; ctype names the C/serde type in the error. */
static int int_value(struct ctx *c, const json_t *v, const char *where, const char *key,
		     uint64_t max, const char *ctype, uint64_t *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return fail(c, MALFORMED, "%s.%s: expected an integer (%s), got %s",
			    where, key, ctype, jtype(v));
	i = json_integer_value(v);
	if (i < 0)
		return fail(c, MALFORMED, "%s.%s: must not be negative, got %" JSON_INTEGER_FORMAT,
			    where, key, i);
	if ((uint64_t)i > max)
		return fail(c, MALFORMED, "%s.%s: %" JSON_INTEGER_FORMAT " is out of range for %s "
			    "(0..%" PRIu64 ")", where, key, i, ctype, max);
	*out = (uint64_t)i;
	return 0;
}

/* Required integer. */
static int get_uint(struct ctx *c, const json_t *obj, const char *where, const char *key,
		    uint64_t max, const char *ctype, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return fail(c, MALFORMED, "%s.%s: missing field", where, key);
	return int_value(c, v, where, key, max, ctype, out);
}

/* Option<integer>: absent or null -> None. */
static int get_opt_uint(struct ctx *c, const json_t *obj, const char *where, const char *key,
			uint64_t max, const char *ctype, struct hpcn_opt_u64 *out)
{
	json_t *v = json_object_get(obj, key);

	out->set = false;
	out->value = 0;
	if (!v || json_is_null(v))
		return 0;
	if (int_value(c, v, where, key, max, ctype, &out->value))
		return -1;
	out->set = true;
	return 0;
}

/* Option<SCM_RIGHTS index>: -1 when absent or null. */
static int get_fd_index(struct ctx *c, const json_t *obj, const char *where, const char *key,
			int *out)
{
	struct hpcn_opt_u64 v;

	*out = -1;
	if (get_opt_uint(c, obj, where, key, INT32_MAX, "an FD index", &v))
		return -1;
	if (!v.set)
		return 0;
	if (v.value >= HPCN_MAX_MESSAGE_FDS)
		return fail(c, INVALID, "%s.%s: FD index %" PRIu64 " is beyond the %d FDs a "
			    "record can carry", where, key, v.value, HPCN_MAX_MESSAGE_FDS);
	*out = (int)v.value;
	return 0;
}

/* Allocation ids and groups become path components. */
static int check_id(struct ctx *c, const char *where, const char *key, const char *id)
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
		return fail(c, INVALID, "%s.%s: group%s", where, key, text + 13);
	return fail(c, INVALID, "%s.%s: %s", where, key, text);
}

static int check_nonempty(struct ctx *c, const char *where, const char *key, const char *s)
{
	if (s && !*s)
		return fail(c, INVALID, "%s.%s: must not be empty", where, key);
	return 0;
}

/* Vec<NamespaceType>: each name once. */
static int get_ns_list(struct ctx *c, const json_t *obj, const char *where, const char *key,
		       enum hpcn_ns_type *out, size_t *n)
{
	bool seen[HPCN_NS__COUNT] = { false };
	json_t *a, *e;
	size_t i;

	*n = 0;
	if (field(c, obj, where, key, JSON_ARRAY, "an array of namespace types", false, &a))
		return -1;
	json_array_foreach(a, i, e) {
		enum hpcn_ns_type t;

		if (!json_is_string(e))
			return fail(c, MALFORMED, "%s.%s[%zu]: expected a namespace type name "
				    "(Pid, Net, Mount), got %s", where, key, i, jtype(e));
		if (hpcn_ns_type_from_name(json_string_value(e), &t) != 0)
			return fail(c, MALFORMED, "%s.%s[%zu]: unknown namespace type \"%.*s\"",
				    where, key, i, QUOTE_MAX, json_string_value(e));
		if (seen[t])
			return fail(c, MALFORMED, "%s.%s[%zu]: duplicate namespace type \"%s\"",
				    where, key, i, hpcn_ns_type_name(t));
		seen[t] = true;
		out[(*n)++] = t;
	}
	return 0;
}

/* ---- Decoding bodies ---- */

static int dec_limits(struct ctx *c, const json_t *o, const char *w,
		      struct hpcn_resource_limits *l)
{
	char dw[WHERE_MAX];
	json_t *a, *d;
	size_t i;

	if (get_opt_uint(c, o, w, "memory_max", INT64_MAX, "u64", &l->memory_max) ||
	    get_opt_uint(c, o, w, "cpu_weight", UINT16_MAX, "u16", &l->cpu_weight) ||
	    get_opt_uint(c, o, w, "io_max", INT64_MAX, "u64", &l->io_max) ||
	    get_opt_uint(c, o, w, "memory_swap_max", INT64_MAX, "u64", &l->memory_swap_max) ||
	    get_opt_uint(c, o, w, "cpu_max_quota_usec", INT64_MAX, "u64",
			 &l->cpu_max_quota_usec) ||
	    get_opt_uint(c, o, w, "cpu_max_period_usec", INT64_MAX, "u64",
			 &l->cpu_max_period_usec) ||
	    get_opt_uint(c, o, w, "pids_max", INT64_MAX, "u64", &l->pids_max))
		return -1;
	if (l->cpu_weight.set && (l->cpu_weight.value < 1 || l->cpu_weight.value > 10000))
		return fail(c, INVALID, "%s.cpu_weight: %" PRIu64 " is outside 1..10000",
			    w, l->cpu_weight.value);
	if (field(c, o, w, "io_device_max", JSON_ARRAY, "an array", true, &a))
		return -1;
	if (!a)
		return 0;
	if (json_array_size(a) > HPCN_MAX_IO_DEVICES)
		return fail(c, MALFORMED, "%s.io_device_max: %zu entries, at most %d",
			    w, json_array_size(a), HPCN_MAX_IO_DEVICES);
	json_array_foreach(a, i, d) {
		struct hpcn_io_device_limit *dev = &l->io_devices[i];
		uint64_t v;

		subpath(dw, w, "io_device_max", (long)i);
		if (!json_is_object(d))
			return fail(c, MALFORMED, "%s: expected an object, got %s", dw, jtype(d));
		if (get_uint(c, d, dw, "major", UINT32_MAX, "u32", &v))
			return -1;
		dev->major = (uint32_t)v;
		if (get_uint(c, d, dw, "minor", UINT32_MAX, "u32", &v))
			return -1;
		dev->minor = (uint32_t)v;
		if (get_uint(c, d, dw, "rbps", INT64_MAX, "u64", &dev->rbps) ||
		    get_uint(c, d, dw, "wbps", INT64_MAX, "u64", &dev->wbps))
			return -1;
		l->n_io_devices = i + 1;
	}
	return 0;
}

/* "mounts": requests carry image_fd, responses do not. */
static int dec_mounts(struct ctx *c, const json_t *o, const char *w, bool request,
		      struct hpcn_mount_handle *m, size_t *n)
{
	char mw[WHERE_MAX];
	json_t *a, *e;
	size_t i;

	*n = 0;
	if (field(c, o, w, "mounts", JSON_ARRAY, "an array", true, &a))
		return -1;
	if (!a)
		return 0;
	if (json_array_size(a) > HPCN_MAX_MOUNTS)
		return fail(c, MALFORMED, "%s.mounts: %zu entries, at most %d",
			    w, json_array_size(a), HPCN_MAX_MOUNTS);
	json_array_foreach(a, i, e) {
		subpath(mw, w, "mounts", (long)i);
		if (!json_is_object(e))
			return fail(c, MALFORMED, "%s: expected an object, got %s", mw, jtype(e));
		if (get_str(c, e, mw, "image_path", false, &m[i].image_path) ||
		    check_nonempty(c, mw, "image_path", m[i].image_path) ||
		    get_str(c, e, mw, "mount_point", true, &m[i].mount_point) ||
		    check_nonempty(c, mw, "mount_point", m[i].mount_point))
			return -1;
		if (request && get_fd_index(c, e, mw, "image_fd", &m[i].image_fd_index))
			return -1;
		*n = i + 1;
	}
	return 0;
}

static int dec_ns_request(struct ctx *c, const json_t *o, const char *w,
			  struct hpcn_namespace_request *r)
{
	char lw[WHERE_MAX];
	struct hpcn_opt_u64 uid, gid;
	json_t *lim;

	if (get_str(c, o, w, "allocation_id", false, &r->allocation_id) ||
	    check_id(c, w, "allocation_id", r->allocation_id) ||
	    get_ns_list(c, o, w, "namespaces", r->namespaces, &r->n_namespaces) ||
	    get_str(c, o, w, "uenv_image", true, &r->uenv_image) ||
	    check_nonempty(c, w, "uenv_image", r->uenv_image) ||
	    dec_mounts(c, o, w, true, r->mounts, &r->n_mounts) ||
	    get_str(c, o, w, "group", true, &r->group))
		return -1;
	if (r->group && check_id(c, w, "group", r->group))
		return -1;
	if (field(c, o, w, "limits", JSON_OBJECT, "an object", true, &lim))
		return -1;
	if (lim) {
		subpath(lw, w, "limits", -1);
		r->has_limits = true;
		if (dec_limits(c, lim, lw, &r->limits))
			return -1;
	}
	if (get_opt_uint(c, o, w, "uid", UINT32_MAX, "u32", &uid) ||
	    get_opt_uint(c, o, w, "gid", UINT32_MAX, "u32", &gid))
		return -1;
	if (uid.set != gid.set)
		return fail(c, MALFORMED, "%s: uid and gid go together (%s given without %s)",
			    w, uid.set ? "uid" : "gid", uid.set ? "gid" : "uid");
	if (uid.set) {
		/* (uid_t)-1 means "unchanged" to the kernel, never a user. */
		if (uid.value == UINT32_MAX || gid.value == UINT32_MAX)
			return fail(c, INVALID, "%s.%s: 4294967295 is not a valid id", w,
				    uid.value == UINT32_MAX ? "uid" : "gid");
		r->has_uid = true;
		r->uid = (uid_t)uid.value;
		r->gid = (gid_t)gid.value;
	}
	return get_fd_index(c, o, w, "base_mount_ns_fd", &r->base_mount_ns_fd_index);
}

static int dec_ns_response(struct ctx *c, const json_t *o, const char *w,
			   struct hpcn_namespace_response *r)
{
	json_t *a, *e;
	size_t i;

	if (get_str(c, o, w, "allocation_id", false, &r->allocation_id) ||
	    check_id(c, w, "allocation_id", r->allocation_id) ||
	    get_ns_list(c, o, w, "fd_types", r->fd_types, &r->n_fd_types) ||
	    get_str(c, o, w, "uenv_mount_path", true, &r->uenv_mount_path) ||
	    dec_mounts(c, o, w, false, r->mounts, &r->n_mounts) ||
	    get_str(c, o, w, "scope", true, &r->scope))
		return -1;
	if (field(c, o, w, "warnings", JSON_ARRAY, "an array of strings", true, &a))
		return -1;
	if (!a)
		return 0;
	if (json_array_size(a) > MAX_WARNINGS)
		return fail(c, MALFORMED, "%s.warnings: %zu entries, at most %d",
			    w, json_array_size(a), MAX_WARNINGS);
	if (json_array_size(a) == 0)
		return 0;
	r->warnings = calloc(json_array_size(a), sizeof(*r->warnings));
	if (!r->warnings)
		return fail(c, HPCN_E_INTERNAL, "out of memory decoding %s.warnings", w);
	r->n_warnings = json_array_size(a);
	json_array_foreach(a, i, e) {
		if (!json_is_string(e))
			return fail(c, MALFORMED, "%s.warnings[%zu]: expected a string, got %s",
				    w, i, jtype(e));
		if (json_string_length(e) >= STR_MAX)
			return fail(c, MALFORMED, "%s.warnings[%zu]: string of %zu bytes, the "
				    "limit is %d", w, i, json_string_length(e), STR_MAX - 1);
		r->warnings[i] = strdup(json_string_value(e));
		if (!r->warnings[i])
			return fail(c, HPCN_E_INTERNAL, "out of memory decoding %s.warnings", w);
	}
	return 0;
}

static int dec_ended(struct ctx *c, const json_t *o, const char *w,
		     struct hpcn_allocation_ended *e)
{
	if (get_str(c, o, w, "allocation_id", false, &e->allocation_id) ||
	    get_str(c, o, w, "group", true, &e->group))
		return -1;
	if (e->group && check_id(c, w, "group", e->group))
		return -1;
	/* "" with a group: the whole group, which the C side spells NULL. */
	if (e->group && !*e->allocation_id) {
		free(e->allocation_id);
		e->allocation_id = NULL;
		return 0;
	}
	return check_id(c, w, "allocation_id", e->allocation_id);
}

static int dec_hello(struct ctx *c, const json_t *o, const char *w, struct hpcn_hello *h)
{
	uint64_t min, max;

	if (get_uint(c, o, w, "min_version", UINT32_MAX, "u32", &min) ||
	    get_uint(c, o, w, "max_version", UINT32_MAX, "u32", &max) ||
	    get_str(c, o, w, "software", false, &h->software))
		return -1;
	if (min < 1 || min > max)
		return fail(c, INVALID, "%s: version range %" PRIu64 "..%" PRIu64 " is empty or "
			    "starts below 1", w, min, max);
	h->min_version = (uint32_t)min;
	h->max_version = (uint32_t)max;
	return 0;
}

static int dec_error(struct ctx *c, const json_t *o, const char *w, struct hpcn_error_body *e)
{
	char *family = NULL, *variant = NULL;
	int rv = -1;

	if (get_str(c, o, w, "family", false, &family) ||
	    get_str(c, o, w, "variant", false, &variant) ||
	    get_str(c, o, w, "message", false, &e->message))
		goto out;
	/* A kind from a newer peer: keep its words, as an internal error. */
	e->kind = hpcn_error_kind_from_names(family, variant);
	if (e->kind == HPCN_E_NONE)
		e->kind = HPCN_E_INTERNAL;
	rv = 0;
out:
	free(family);
	free(variant);
	return rv;
}

static int dec_attach(struct ctx *c, const json_t *o, const char *w, struct hpcn_attach *a)
{
	struct hpcn_opt_u64 pid;

	if (get_str(c, o, w, "allocation_id", false, &a->allocation_id) ||
	    check_id(c, w, "allocation_id", a->allocation_id) ||
	    get_opt_uint(c, o, w, "pid", INT32_MAX, "a pid", &pid) ||
	    get_fd_index(c, o, w, "pidfd_index", &a->pidfd_index))
		return -1;
	if (pid.set && pid.value == 0)
		return fail(c, INVALID, "%s.pid: 0 is not a process", w);
	a->pid = pid.set ? (pid_t)pid.value : -1;
	if (a->pid < 0 && a->pidfd_index < 0)
		return fail(c, MALFORMED, "%s: needs pid or pidfd_index, both are null", w);
	return 0;
}

static int get_pressure(struct ctx *c, const json_t *o, const char *w, const char *key,
			double *out)
{
	json_t *v = json_object_get(o, key);

	*out = -1;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return fail(c, MALFORMED, "%s.%s: expected a number, got %s", w, key, jtype(v));
	if (json_number_value(v) < 0)
		return fail(c, MALFORMED, "%s.%s: must not be negative, got %g", w, key,
			    json_number_value(v));
	*out = json_number_value(v);
	return 0;
}

static int dec_metrics(struct ctx *c, const json_t *o, const char *w,
		       struct hpcn_cgroup_metrics *m)
{
	uint64_t n;

	if (get_uint(c, o, w, "memory_current", INT64_MAX, "u64", &m->memory_current) ||
	    get_opt_uint(c, o, w, "memory_max", INT64_MAX, "u64", &m->memory_max) ||
	    get_uint(c, o, w, "cpu_usage_usec", INT64_MAX, "u64", &m->cpu_usage_usec) ||
	    get_uint(c, o, w, "nr_processes", UINT32_MAX, "u32", &n) ||
	    get_pressure(c, o, w, "cpu_pressure_avg10", &m->cpu_pressure_avg10) ||
	    get_pressure(c, o, w, "memory_pressure_avg10", &m->memory_pressure_avg10) ||
	    get_pressure(c, o, w, "io_pressure_avg10", &m->io_pressure_avg10))
		return -1;
	m->nr_processes = (uint32_t)n;
	return 0;
}

static int dec_force_unmount(struct ctx *c, const json_t *o, const char *w,
			     struct hpcn_force_unmount *f)
{
	json_t *v;

	if (get_str(c, o, w, "image_path", false, &f->image_path) ||
	    check_nonempty(c, w, "image_path", f->image_path) ||
	    field(c, o, w, "emergency", JSON_TRUE, "a boolean", false, &v))
		return -1;
	f->emergency = json_is_true(v);
	return 0;
}

static int dec_body(struct ctx *c, const json_t *body, struct hpcn_msg *m)
{
	const char *w = hpcn_tag_name(m->tag);

	switch (m->tag) {
	case HPCN_TAG_NAMESPACE_REQUEST:
		return dec_ns_request(c, body, w, &m->u.ns_request);
	case HPCN_TAG_NAMESPACE_RESPONSE:
		return dec_ns_response(c, body, w, &m->u.ns_response);
	case HPCN_TAG_ALLOCATION_ENDED:
		return dec_ended(c, body, w, &m->u.ended);
	case HPCN_TAG_HELLO:
		return dec_hello(c, body, w, &m->u.hello);
	case HPCN_TAG_ERROR:
		return dec_error(c, body, w, &m->u.error);
	case HPCN_TAG_ATTACH:
		return dec_attach(c, body, w, &m->u.attach);
	case HPCN_TAG_METRICS_REQUEST:
		return get_str(c, body, w, "path", false, &m->u.metrics_request.path);
	case HPCN_TAG_CGROUP_METRICS:
		return dec_metrics(c, body, w, &m->u.metrics);
	case HPCN_TAG_FORCE_UNMOUNT:
		return dec_force_unmount(c, body, w, &m->u.force_unmount);
	case HPCN_TAG_OK:
	case HPCN_TAG_STATUS_REQUEST:
	case HPCN_TAG_STATUS:
	case HPCN_TAG_RECONCILE:
		m->u.json = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
		if (!m->u.json)
			return fail(c, HPCN_E_INTERNAL, "out of memory decoding %s body", w);
		return 0;
	default:
		return fail(c, HPCN_E_INTERNAL, "no decoder for tag %d", (int)m->tag);
	}
}

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
			return fail(c, MALFORMED, "NUL byte at offset %zu", i);
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
				return fail(c, MALFORMED, "nesting deeper than %d levels at "
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
		return fail(c, MALFORMED, "not valid UTF-8 at offset %d (%s)",
			    je->position, je->text);
	case json_error_duplicate_key:
		return fail(c, MALFORMED, "duplicate key at line %d column %d (%s)",
			    je->line, je->column, je->text);
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return fail(c, MALFORMED, "NUL character (\\u0000) in a string or key at offset %d",
			    je->position);
	case json_error_numeric_overflow:
		return fail(c, MALFORMED, "number out of range at offset %d (integers are "
			    "limited to -2^63..2^63-1): %s", je->position, je->text);
	case json_error_premature_end_of_input:
		return fail(c, MALFORMED, "truncated JSON at offset %d (%s)",
			    je->position, je->text);
	case json_error_stack_overflow:
		return fail(c, MALFORMED, "nesting too deep (%s)", je->text);
	case json_error_out_of_memory:
		return fail(c, HPCN_E_INTERNAL, "out of memory parsing a record");
	default:
		return fail(c, MALFORMED, "not valid JSON at line %d column %d: %s",
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
		return fail(c, MALFORMED, "empty record");
	if (len > HPCN_MAX_MESSAGE_SIZE)
		return fail(c, HPCN_E_PROTO_TOO_LARGE, "record of %zu bytes, the limit is %d",
			    len, HPCN_MAX_MESSAGE_SIZE);
	if (prescan(buf, len, c))
		return -1;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root)
		return parse_error(c, &je);
	if (!json_is_object(root)) {
		fail(c, MALFORMED, "the record is %s, not a JSON object", jtype(root));
		goto out;
	}
	v = json_object_get(root, "seq");
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		*seq = (uint64_t)json_integer_value(v);

	/* The version first: it decides how the rest is to be read. */
	v = json_object_get(root, "version");
	if (!v) {
		fail(c, MALFORMED, "%s.version: missing field", w);
		goto out;
	}
	if (!json_is_integer(v)) {
		fail(c, MALFORMED, "%s.version: expected an integer, got %s", w, jtype(v));
		goto out;
	}
	if (json_integer_value(v) < 1 || json_integer_value(v) > HPCN_PROTOCOL_VERSION) {
		fail(c, HPCN_E_PROTO_UNSUPPORTED_VERSION, "version %" JSON_INTEGER_FORMAT
		     " received, this peer supports %d..%d", json_integer_value(v), 1,
		     HPCN_PROTOCOL_VERSION);
		goto out;
	}
	version = (uint64_t)json_integer_value(v);
	if (field(c, root, w, "tag", JSON_STRING, "a string", false, &v) ||
	    get_uint(c, root, w, "seq", INT64_MAX, "u64", &s))
		goto out;
	name = json_string_value(v);
	tag = hpcn_tag_from_name(name);
	if (tag == HPCN_TAG_UNKNOWN) {
		fail(c, HPCN_E_PROTO_UNKNOWN_TAG, "\"%.*s\"", QUOTE_MAX, name);
		goto out;
	}
	if (field(c, root, w, "body", JSON_OBJECT, "an object", false, &body))
		goto out;
	hpcn_msg_init(m, tag);
	m->version = (uint32_t)version;
	m->seq = s;
	rv = dec_body(c, body, m);
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

/* ---- Encoding ---- */

static int put(struct ctx *c, json_t *obj, const char *where, const char *key, json_t *v)
{
	/* json_object_set_new takes v even when it fails. */
	if (!v || json_object_set_new(obj, key, v) != 0)
		return fail(c, HPCN_E_INTERNAL, "out of memory encoding %s.%s", where, key);
	return 0;
}

static int append(struct ctx *c, json_t *arr, const char *where, json_t *v)
{
	if (!v || json_array_append_new(arr, v) != 0)
		return fail(c, HPCN_E_INTERNAL, "out of memory encoding %s", where);
	return 0;
}

static int put_str(struct ctx *c, json_t *obj, const char *where, const char *key,
		   const char *s, bool nullable)
{
	if (!s) {
		if (nullable)
			return put(c, obj, where, key, json_null());
		return fail(c, INVALID, "%s.%s: is NULL, a string is required", where, key);
	}
	if (!utf8_valid(s))
		return fail(c, INVALID, "%s.%s: not valid UTF-8", where, key);
	if (strlen(s) >= STR_MAX)
		return fail(c, INVALID, "%s.%s: string of %zu bytes, the limit is %d", where,
			    key, strlen(s), STR_MAX - 1);
	return put(c, obj, where, key, json_string(s));
}

/* The encoder refuses what the decoder refuses (the same check_* calls), so
 * that what we send is always what a peer accepts, without decoding it again. */
static int put_id(struct ctx *c, json_t *obj, const char *where, const char *key,
		  const char *id)
{
	if (id && check_id(c, where, key, id))
		return -1;
	return put_str(c, obj, where, key, id, false);
}

static int put_nonempty(struct ctx *c, json_t *obj, const char *where, const char *key,
			const char *s, bool nullable)
{
	return check_nonempty(c, where, key, s) || put_str(c, obj, where, key, s, nullable)
		? -1 : 0;
}

static int put_u64(struct ctx *c, json_t *obj, const char *where, const char *key,
		   uint64_t v)
{
	/* jansson's integers are int64_t: the protocol stops at 2^63-1. */
	if (v > INT64_MAX)
		return fail(c, INVALID, "%s.%s: %" PRIu64 " exceeds 2^63-1, the largest "
			    "integer of the protocol", where, key, v);
	return put(c, obj, where, key, json_integer((json_int_t)v));
}

/* Option<u64>: always present (null for None) for the crate's fields; ext
 * fields appear only when set, so an unextended record is serde's shape. */
static int put_opt(struct ctx *c, json_t *obj, const char *where, const char *key,
		   const struct hpcn_opt_u64 *v, bool always)
{
	if (v->set)
		return put_u64(c, obj, where, key, v->value);
	return always ? put(c, obj, where, key, json_null()) : 0;
}

static int put_index(struct ctx *c, json_t *obj, const char *where, const char *key,
		     int index, bool always)
{
	if (index < 0)
		return always ? put(c, obj, where, key, json_null()) : 0;
	return put_u64(c, obj, where, key, (uint64_t)index);
}

static int put_fd_index(struct ctx *c, json_t *obj, const char *where, const char *key,
			int index, bool always)
{
	if (index >= HPCN_MAX_MESSAGE_FDS)
		return fail(c, INVALID, "%s.%s: FD index %d is beyond the %d FDs a record can "
			    "carry", where, key, index, HPCN_MAX_MESSAGE_FDS);
	return put_index(c, obj, where, key, index, always);
}

static int put_ns_list(struct ctx *c, json_t *obj, const char *where, const char *key,
		       const enum hpcn_ns_type *t, size_t n)
{
	json_t *a = json_array();

	if (put(c, obj, where, key, a))
		return -1;
	if (n > HPCN_NS__COUNT)
		return fail(c, INVALID, "%s.%s: %zu entries, at most %d", where, key, n,
			    HPCN_NS__COUNT);
	for (size_t i = 0; i < n; i++) {
		const char *name = hpcn_ns_type_name(t[i]);

		if (!name)
			return fail(c, INVALID, "%s.%s[%zu]: %d is not a namespace type",
				    where, key, i, (int)t[i]);
		for (size_t j = 0; j < i; j++)
			if (t[j] == t[i])
				return fail(c, INVALID, "%s.%s[%zu]: duplicate namespace type "
					    "\"%s\"", where, key, i, name);
		if (append(c, a, where, json_string(name)))
			return -1;
	}
	return 0;
}

static int enc_limits(struct ctx *c, json_t *o, const char *w,
		      const struct hpcn_resource_limits *l)
{
	char dw[WHERE_MAX];
	json_t *a;

	if (put_opt(c, o, w, "memory_max", &l->memory_max, true) ||
	    put_opt(c, o, w, "cpu_weight", &l->cpu_weight, true) ||
	    put_opt(c, o, w, "io_max", &l->io_max, true) ||
	    put_opt(c, o, w, "memory_swap_max", &l->memory_swap_max, false) ||
	    put_opt(c, o, w, "cpu_max_quota_usec", &l->cpu_max_quota_usec, false) ||
	    put_opt(c, o, w, "cpu_max_period_usec", &l->cpu_max_period_usec, false) ||
	    put_opt(c, o, w, "pids_max", &l->pids_max, false))
		return -1;
	if (l->cpu_weight.set && (l->cpu_weight.value < 1 || l->cpu_weight.value > 10000))
		return fail(c, INVALID, "%s.cpu_weight: %" PRIu64 " is outside 1..10000",
			    w, l->cpu_weight.value);
	if (l->n_io_devices == 0)
		return 0;
	if (l->n_io_devices > HPCN_MAX_IO_DEVICES)
		return fail(c, INVALID, "%s.io_device_max: %zu entries, at most %d", w,
			    l->n_io_devices, HPCN_MAX_IO_DEVICES);
	a = json_array();
	if (put(c, o, w, "io_device_max", a))
		return -1;
	for (size_t i = 0; i < l->n_io_devices; i++) {
		const struct hpcn_io_device_limit *d = &l->io_devices[i];
		json_t *e = json_object();

		subpath(dw, w, "io_device_max", (long)i);
		if (append(c, a, dw, e) ||
		    put_u64(c, e, dw, "major", d->major) ||
		    put_u64(c, e, dw, "minor", d->minor) ||
		    put_u64(c, e, dw, "rbps", d->rbps) ||
		    put_u64(c, e, dw, "wbps", d->wbps))
			return -1;
	}
	return 0;
}

static int enc_mounts(struct ctx *c, json_t *o, const char *w, bool request,
		      const struct hpcn_mount_handle *m, size_t n)
{
	char mw[WHERE_MAX];
	json_t *a;

	if (n == 0)
		return 0;
	if (n > HPCN_MAX_MOUNTS)
		return fail(c, INVALID, "%s.mounts: %zu entries, at most %d", w, n,
			    HPCN_MAX_MOUNTS);
	a = json_array();
	if (put(c, o, w, "mounts", a))
		return -1;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_object();

		subpath(mw, w, "mounts", (long)i);
		if (append(c, a, mw, e) ||
		    put_nonempty(c, e, mw, "image_path", m[i].image_path, false) ||
		    put_nonempty(c, e, mw, "mount_point", m[i].mount_point, true))
			return -1;
		if (request && put_fd_index(c, e, mw, "image_fd", m[i].image_fd_index, true))
			return -1;
	}
	return 0;
}

static int enc_ns_request(struct ctx *c, json_t *o, const char *w,
			  const struct hpcn_namespace_request *r)
{
	char lw[WHERE_MAX];

	if (put_id(c, o, w, "allocation_id", r->allocation_id) ||
	    put_ns_list(c, o, w, "namespaces", r->namespaces, r->n_namespaces) ||
	    put_nonempty(c, o, w, "uenv_image", r->uenv_image, true) ||
	    enc_mounts(c, o, w, true, r->mounts, r->n_mounts))
		return -1;
	if (r->group && put_id(c, o, w, "group", r->group))
		return -1;
	if (r->has_limits) {
		json_t *l = json_object();

		subpath(lw, w, "limits", -1);
		if (put(c, o, w, "limits", l) || enc_limits(c, l, lw, &r->limits))
			return -1;
	}
	if (r->has_uid && (r->uid == (uid_t)-1 || r->gid == (gid_t)-1))
		return fail(c, INVALID, "%s.%s: 4294967295 is not a valid id", w,
			    r->uid == (uid_t)-1 ? "uid" : "gid");
	if (r->has_uid && (put_u64(c, o, w, "uid", r->uid) || put_u64(c, o, w, "gid", r->gid)))
		return -1;
	return put_fd_index(c, o, w, "base_mount_ns_fd", r->base_mount_ns_fd_index, false);
}

static int enc_ns_response(struct ctx *c, json_t *o, const char *w,
			   const struct hpcn_namespace_response *r)
{
	json_t *a;

	if (put_id(c, o, w, "allocation_id", r->allocation_id) ||
	    put_ns_list(c, o, w, "fd_types", r->fd_types, r->n_fd_types) ||
	    put_str(c, o, w, "uenv_mount_path", r->uenv_mount_path, true) ||
	    enc_mounts(c, o, w, false, r->mounts, r->n_mounts))
		return -1;
	if (r->scope && put_str(c, o, w, "scope", r->scope, false))
		return -1;
	if (r->n_warnings == 0)
		return 0;
	if (!r->warnings)
		return fail(c, INVALID, "%s.warnings: %zu entries but no array", w,
			    r->n_warnings);
	if (r->n_warnings > MAX_WARNINGS)
		return fail(c, INVALID, "%s.warnings: %zu entries, at most %d", w,
			    r->n_warnings, MAX_WARNINGS);
	a = json_array();
	if (put(c, o, w, "warnings", a))
		return -1;
	for (size_t i = 0; i < r->n_warnings; i++) {
		if (!r->warnings[i] || !utf8_valid(r->warnings[i]))
			return fail(c, INVALID, "%s.warnings[%zu]: NULL or not valid UTF-8",
				    w, i);
		if (strlen(r->warnings[i]) >= STR_MAX)
			return fail(c, INVALID, "%s.warnings[%zu]: string of %zu bytes, the "
				    "limit is %d", w, i, strlen(r->warnings[i]), STR_MAX - 1);
		if (append(c, a, w, json_string(r->warnings[i])))
			return -1;
	}
	return 0;
}

static int enc_metrics(struct ctx *c, json_t *o, const char *w,
		       const struct hpcn_cgroup_metrics *m)
{
	const struct {
		const char *key;
		double v;
	} psi[] = {
		{ "cpu_pressure_avg10", m->cpu_pressure_avg10 },
		{ "memory_pressure_avg10", m->memory_pressure_avg10 },
		{ "io_pressure_avg10", m->io_pressure_avg10 },
	};

	if (put_u64(c, o, w, "memory_current", m->memory_current) ||
	    put_opt(c, o, w, "memory_max", &m->memory_max, true) ||
	    put_u64(c, o, w, "cpu_usage_usec", m->cpu_usage_usec) ||
	    put_u64(c, o, w, "nr_processes", m->nr_processes))
		return -1;
	for (size_t i = 0; i < sizeof(psi) / sizeof(psi[0]); i++) {
		if (!(psi[i].v >= 0))   /* negative (absent) or NaN */
			continue;
		if (!isfinite(psi[i].v))
			return fail(c, INVALID, "%s.%s: not a finite number", w, psi[i].key);
		if (put(c, o, w, psi[i].key, json_real(psi[i].v)))
			return -1;
	}
	return 0;
}

/* Nesting of v as the decoder's prescan counts it, in containers: 0 for a
 * scalar, 1 for an empty container or one of scalars. (Counting a scalar as
 * a level refused bodies the decoder had accepted: found by fuzz_protocol.) */
static int json_depth(const json_t *v)
{
	const char *key;
	json_t *e;
	size_t i;
	int d = 0;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, e) {
			int x = json_depth(e);

			if (x > d)
				d = x;
		}
		return d + 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			int x = json_depth(e);

			if (x > d)
				d = x;
		}
		return d + 1;
	}
	return 0;
}

/* Ok, Status, StatusRequest, Reconcile: any JSON object, given as text. */
static json_t *enc_json_body(struct ctx *c, const char *w, const char *text)
{
	json_error_t je;
	json_t *o;

	if (!text)
		return json_object();
	o = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!o) {
		fail(c, INVALID, "%s body: not valid JSON: %s", w, je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		fail(c, INVALID, "%s body: %s, not a JSON object", w, jtype(o));
		json_decref(o);
		return NULL;
	}
	/* The envelope's object holds the body: the peer counts both. */
	if (1 + json_depth(o) > HPCN_MAX_JSON_DEPTH) {
		fail(c, INVALID, "%s body: nested %d levels deep, a record may nest %d", w,
		     json_depth(o), HPCN_MAX_JSON_DEPTH - 1);
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *enc_body(struct ctx *c, const struct hpcn_msg *m, const char *w)
{
	json_t *o;
	int rv = -1;

	switch (m->tag) {
	case HPCN_TAG_OK:
	case HPCN_TAG_STATUS_REQUEST:
	case HPCN_TAG_STATUS:
	case HPCN_TAG_RECONCILE:
		return enc_json_body(c, w, m->u.json);
	default:
		break;
	}
	o = json_object();
	if (!o) {
		fail(c, HPCN_E_INTERNAL, "out of memory encoding %s", w);
		return NULL;
	}
	switch (m->tag) {
	case HPCN_TAG_NAMESPACE_REQUEST:
		rv = enc_ns_request(c, o, w, &m->u.ns_request);
		break;
	case HPCN_TAG_NAMESPACE_RESPONSE:
		rv = enc_ns_response(c, o, w, &m->u.ns_response);
		break;
	case HPCN_TAG_ALLOCATION_ENDED:
		/* NULL with a group: the whole group, "" on the wire. */
		if (m->u.ended.allocation_id || !m->u.ended.group)
			rv = put_id(c, o, w, "allocation_id", m->u.ended.allocation_id);
		else
			rv = put_str(c, o, w, "allocation_id", "", false);
		if (!rv && m->u.ended.group)
			rv = put_id(c, o, w, "group", m->u.ended.group);
		break;
	case HPCN_TAG_HELLO:
		if (m->u.hello.min_version < 1 ||
		    m->u.hello.min_version > m->u.hello.max_version) {
			rv = fail(c, INVALID, "%s: version range %" PRIu32 "..%" PRIu32
				  " is empty or starts below 1", w, m->u.hello.min_version,
				  m->u.hello.max_version);
			break;
		}
		rv = put_u64(c, o, w, "min_version", m->u.hello.min_version) ||
		     put_u64(c, o, w, "max_version", m->u.hello.max_version) ||
		     put_str(c, o, w, "software", m->u.hello.software, false) ? -1 : 0;
		break;
	case HPCN_TAG_ERROR:
		if (!hpcn_error_family(m->u.error.kind)) {
			rv = fail(c, INVALID, "%s.kind: %d is not an error kind", w,
				  (int)m->u.error.kind);
			break;
		}
		rv = put_str(c, o, w, "family", hpcn_error_family(m->u.error.kind), false) ||
		     put_str(c, o, w, "variant", hpcn_error_variant(m->u.error.kind), false) ||
		     put_str(c, o, w, "message", m->u.error.message, false) ? -1 : 0;
		break;
	case HPCN_TAG_ATTACH:
		if (m->u.attach.pid == 0) {
			rv = fail(c, INVALID, "%s.pid: 0 is not a process", w);
			break;
		}
		if (m->u.attach.pid < 0 && m->u.attach.pidfd_index < 0) {
			rv = fail(c, INVALID, "%s: needs pid or pidfd_index, both are null", w);
			break;
		}
		rv = put_id(c, o, w, "allocation_id", m->u.attach.allocation_id) ||
		     put_index(c, o, w, "pid", m->u.attach.pid, true) ||
		     put_fd_index(c, o, w, "pidfd_index", m->u.attach.pidfd_index, true) ? -1 : 0;
		break;
	case HPCN_TAG_METRICS_REQUEST:
		rv = put_str(c, o, w, "path", m->u.metrics_request.path, false);
		break;
	case HPCN_TAG_CGROUP_METRICS:
		rv = enc_metrics(c, o, w, &m->u.metrics);
		break;
	case HPCN_TAG_FORCE_UNMOUNT:
		rv = put_nonempty(c, o, w, "image_path", m->u.force_unmount.image_path, false) ||
		     put(c, o, w, "emergency", json_boolean(m->u.force_unmount.emergency))
			? -1 : 0;
		break;
	default:
		rv = fail(c, HPCN_E_INTERNAL, "no encoder for tag %d", (int)m->tag);
		break;
	}
	if (rv) {
		json_decref(o);
		return NULL;
	}
	return o;
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
		fail(&c, HPCN_E_INTERNAL, "out of memory");
		goto fail;
	}
	if (put(&c, root, w, "version", json_integer(version)) ||
	    put(&c, root, w, "tag", json_string(name)) ||
	    put_u64(&c, root, w, "seq", msg->seq))
		goto fail;
	body = enc_body(&c, msg, name);
	if (!body || put(&c, root, w, "body", body))
		goto fail;
	/* Reals: 15 significant digits print 0.52 as "0.52" and still give
	 * back every value that was itself read from up to 15 digits. */
	text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!text) {
		fail(&c, HPCN_E_INTERNAL, "out of memory");
		goto fail;
	}
	n = strlen(text);
	if (n > HPCN_MAX_MESSAGE_SIZE) {
		fail(&c, HPCN_E_PROTO_TOO_LARGE, "%s record of %zu bytes, the limit is %d",
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

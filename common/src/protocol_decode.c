/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocol's JSON codec, decoding side: one decoder per message
 * body, reached through hpcn_proto_dec_body() from the envelope's decoder
 * (protocol.c), and the field readers only they use. The field rules they
 * share with the encoder and the envelope are in protocol.c.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <hpcnode/protocol.h>

#include "protocol_internal.h"

/* ---- Decoding helpers ---- */

static int get_str(struct ctx *c, const json_t *obj, const char *where, const char *key,
		   bool nullable, char **out)
{
	json_t *v;
	size_t n;

	if (hpcn_proto_field(c, obj, where, key, JSON_STRING, "a string", nullable, &v))
		return -1;
	if (!v)
		return 0;
	n = json_string_length(v);
	if (n >= STR_MAX)
		return hpcn_proto_fail(c, MALFORMED, "%s.%s: string of %zu bytes, the limit is %d",
				       where, key, n, STR_MAX - 1);
	*out = strdup(json_string_value(v));
	if (!*out)
		return hpcn_proto_fail(c, HPCN_E_INTERNAL, "out of memory decoding %s.%s",
				       where, key);
	return 0;
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
	if (hpcn_proto_int_value(c, v, where, key, max, ctype, &out->value))
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
		return hpcn_proto_fail(c, INVALID,
				       "%s.%s: FD index %" PRIu64 " is beyond the %d FDs a "
				       "record can carry", where, key, v.value,
				       HPCN_MAX_MESSAGE_FDS);
	*out = (int)v.value;
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
	if (hpcn_proto_field(c, obj, where, key, JSON_ARRAY, "an array of namespace types",
			     false, &a))
		return -1;
	json_array_foreach(a, i, e) {
		enum hpcn_ns_type t;

		if (!json_is_string(e))
			return hpcn_proto_fail(c, MALFORMED,
					       "%s.%s[%zu]: expected a namespace type name "
					       "(Pid, Net, Mount), got %s", where, key, i,
					       hpcn_proto_jtype(e));
		if (hpcn_ns_type_from_name(json_string_value(e), &t) != 0)
			return hpcn_proto_fail(c, MALFORMED,
					       "%s.%s[%zu]: unknown namespace type \"%.*s\"",
					       where, key, i, QUOTE_MAX, json_string_value(e));
		if (seen[t])
			return hpcn_proto_fail(c, MALFORMED,
					       "%s.%s[%zu]: duplicate namespace type \"%s\"",
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
		return hpcn_proto_fail(c, INVALID, "%s.cpu_weight: %" PRIu64 " is outside 1..10000",
				       w, l->cpu_weight.value);
	if (hpcn_proto_field(c, o, w, "io_device_max", JSON_ARRAY, "an array", true, &a))
		return -1;
	if (!a)
		return 0;
	if (json_array_size(a) > HPCN_MAX_IO_DEVICES)
		return hpcn_proto_fail(c, MALFORMED, "%s.io_device_max: %zu entries, at most %d",
				       w, json_array_size(a), HPCN_MAX_IO_DEVICES);
	json_array_foreach(a, i, d) {
		struct hpcn_io_device_limit *dev = &l->io_devices[i];
		uint64_t v;

		hpcn_proto_subpath(dw, w, "io_device_max", (long)i);
		if (!json_is_object(d))
			return hpcn_proto_fail(c, MALFORMED, "%s: expected an object, got %s", dw,
					       hpcn_proto_jtype(d));
		if (hpcn_proto_get_uint(c, d, dw, "major", UINT32_MAX, "u32", &v))
			return -1;
		dev->major = (uint32_t)v;
		if (hpcn_proto_get_uint(c, d, dw, "minor", UINT32_MAX, "u32", &v))
			return -1;
		dev->minor = (uint32_t)v;
		if (hpcn_proto_get_uint(c, d, dw, "rbps", INT64_MAX, "u64", &dev->rbps) ||
		    hpcn_proto_get_uint(c, d, dw, "wbps", INT64_MAX, "u64", &dev->wbps))
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
	if (hpcn_proto_field(c, o, w, "mounts", JSON_ARRAY, "an array", true, &a))
		return -1;
	if (!a)
		return 0;
	if (json_array_size(a) > HPCN_MAX_MOUNTS)
		return hpcn_proto_fail(c, MALFORMED, "%s.mounts: %zu entries, at most %d",
				       w, json_array_size(a), HPCN_MAX_MOUNTS);
	json_array_foreach(a, i, e) {
		hpcn_proto_subpath(mw, w, "mounts", (long)i);
		if (!json_is_object(e))
			return hpcn_proto_fail(c, MALFORMED, "%s: expected an object, got %s", mw,
					       hpcn_proto_jtype(e));
		if (get_str(c, e, mw, "image_path", false, &m[i].image_path) ||
		    hpcn_proto_check_nonempty(c, mw, "image_path", m[i].image_path) ||
		    get_str(c, e, mw, "mount_point", true, &m[i].mount_point) ||
		    hpcn_proto_check_nonempty(c, mw, "mount_point", m[i].mount_point))
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
	    hpcn_proto_check_id(c, w, "allocation_id", r->allocation_id) ||
	    get_ns_list(c, o, w, "namespaces", r->namespaces, &r->n_namespaces) ||
	    get_str(c, o, w, "uenv_image", true, &r->uenv_image) ||
	    hpcn_proto_check_nonempty(c, w, "uenv_image", r->uenv_image) ||
	    dec_mounts(c, o, w, true, r->mounts, &r->n_mounts) ||
	    get_str(c, o, w, "group", true, &r->group))
		return -1;
	if (r->group && hpcn_proto_check_id(c, w, "group", r->group))
		return -1;
	if (hpcn_proto_field(c, o, w, "limits", JSON_OBJECT, "an object", true, &lim))
		return -1;
	if (lim) {
		hpcn_proto_subpath(lw, w, "limits", -1);
		r->has_limits = true;
		if (dec_limits(c, lim, lw, &r->limits))
			return -1;
	}
	if (get_opt_uint(c, o, w, "uid", UINT32_MAX, "u32", &uid) ||
	    get_opt_uint(c, o, w, "gid", UINT32_MAX, "u32", &gid))
		return -1;
	if (uid.set != gid.set)
		return hpcn_proto_fail(c, MALFORMED,
				       "%s: uid and gid go together (%s given without %s)",
				       w, uid.set ? "uid" : "gid", uid.set ? "gid" : "uid");
	if (uid.set) {
		/* (uid_t)-1 means "unchanged" to the kernel, never a user. */
		if (uid.value == UINT32_MAX || gid.value == UINT32_MAX)
			return hpcn_proto_fail(c, INVALID, "%s.%s: 4294967295 is not a valid id", w,
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
	    hpcn_proto_check_id(c, w, "allocation_id", r->allocation_id) ||
	    get_ns_list(c, o, w, "fd_types", r->fd_types, &r->n_fd_types) ||
	    get_str(c, o, w, "uenv_mount_path", true, &r->uenv_mount_path) ||
	    dec_mounts(c, o, w, false, r->mounts, &r->n_mounts) ||
	    get_str(c, o, w, "scope", true, &r->scope))
		return -1;
	if (hpcn_proto_field(c, o, w, "warnings", JSON_ARRAY, "an array of strings", true, &a))
		return -1;
	if (!a)
		return 0;
	if (json_array_size(a) > MAX_WARNINGS)
		return hpcn_proto_fail(c, MALFORMED, "%s.warnings: %zu entries, at most %d",
				       w, json_array_size(a), MAX_WARNINGS);
	if (json_array_size(a) == 0)
		return 0;
	r->warnings = calloc(json_array_size(a), sizeof(*r->warnings));
	if (!r->warnings)
		return hpcn_proto_fail(c, HPCN_E_INTERNAL, "out of memory decoding %s.warnings", w);
	r->n_warnings = json_array_size(a);
	json_array_foreach(a, i, e) {
		if (!json_is_string(e))
			return hpcn_proto_fail(c, MALFORMED,
					       "%s.warnings[%zu]: expected a string, got %s",
					       w, i, hpcn_proto_jtype(e));
		if (json_string_length(e) >= STR_MAX)
			return hpcn_proto_fail(c, MALFORMED,
					       "%s.warnings[%zu]: string of %zu bytes, the "
					       "limit is %d", w, i, json_string_length(e),
					       STR_MAX - 1);
		r->warnings[i] = strdup(json_string_value(e));
		if (!r->warnings[i])
			return hpcn_proto_fail(c, HPCN_E_INTERNAL,
					       "out of memory decoding %s.warnings", w);
	}
	return 0;
}

static int dec_ended(struct ctx *c, const json_t *o, const char *w,
		     struct hpcn_allocation_ended *e)
{
	if (get_str(c, o, w, "allocation_id", false, &e->allocation_id) ||
	    get_str(c, o, w, "group", true, &e->group))
		return -1;
	if (e->group && hpcn_proto_check_id(c, w, "group", e->group))
		return -1;
	/* "" with a group: the whole group, which the C side spells NULL. */
	if (e->group && !*e->allocation_id) {
		free(e->allocation_id);
		e->allocation_id = NULL;
		return 0;
	}
	return hpcn_proto_check_id(c, w, "allocation_id", e->allocation_id);
}

static int dec_hello(struct ctx *c, const json_t *o, const char *w, struct hpcn_hello *h)
{
	uint64_t min, max;

	if (hpcn_proto_get_uint(c, o, w, "min_version", UINT32_MAX, "u32", &min) ||
	    hpcn_proto_get_uint(c, o, w, "max_version", UINT32_MAX, "u32", &max) ||
	    get_str(c, o, w, "software", false, &h->software))
		return -1;
	if (min < 1 || min > max)
		return hpcn_proto_fail(c, INVALID,
				       "%s: version range %" PRIu64 "..%" PRIu64 " is empty or "
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
	    hpcn_proto_check_id(c, w, "allocation_id", a->allocation_id) ||
	    get_opt_uint(c, o, w, "pid", INT32_MAX, "a pid", &pid) ||
	    get_fd_index(c, o, w, "pidfd_index", &a->pidfd_index))
		return -1;
	if (pid.set && pid.value == 0)
		return hpcn_proto_fail(c, INVALID, "%s.pid: 0 is not a process", w);
	a->pid = pid.set ? (pid_t)pid.value : -1;
	if (a->pid < 0 && a->pidfd_index < 0)
		return hpcn_proto_fail(c, MALFORMED,
				       "%s: needs pid or pidfd_index, both are null", w);
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
		return hpcn_proto_fail(c, MALFORMED, "%s.%s: expected a number, got %s", w, key,
				       hpcn_proto_jtype(v));
	if (json_number_value(v) < 0)
		return hpcn_proto_fail(c, MALFORMED, "%s.%s: must not be negative, got %g", w, key,
				       json_number_value(v));
	*out = json_number_value(v);
	return 0;
}

static int dec_metrics(struct ctx *c, const json_t *o, const char *w,
		       struct hpcn_cgroup_metrics *m)
{
	uint64_t n;

	if (hpcn_proto_get_uint(c, o, w, "memory_current", INT64_MAX, "u64", &m->memory_current) ||
	    get_opt_uint(c, o, w, "memory_max", INT64_MAX, "u64", &m->memory_max) ||
	    hpcn_proto_get_uint(c, o, w, "cpu_usage_usec", INT64_MAX, "u64", &m->cpu_usage_usec) ||
	    hpcn_proto_get_uint(c, o, w, "nr_processes", UINT32_MAX, "u32", &n) ||
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
	    hpcn_proto_check_nonempty(c, w, "image_path", f->image_path) ||
	    hpcn_proto_field(c, o, w, "emergency", JSON_TRUE, "a boolean", false, &v))
		return -1;
	f->emergency = json_is_true(v);
	return 0;
}

int hpcn_proto_dec_body(struct ctx *c, const json_t *body, struct hpcn_msg *m)
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
			return hpcn_proto_fail(c, HPCN_E_INTERNAL,
					       "out of memory decoding %s body", w);
		return 0;
	default:
		return hpcn_proto_fail(c, HPCN_E_INTERNAL, "no decoder for tag %d", (int)m->tag);
	}
}

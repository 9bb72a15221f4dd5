/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocol's JSON codec, encoding side: one encoder per message
 * body, reached through hpcn_proto_enc_body() from hpcn_msg_encode() (the
 * envelope, protocol.c), and the field writers only they use. Each encoder
 * applies the decoder's rules (protocol.c) to what it writes.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <hpcnode/protocol.h>

#include "protocol_internal.h"

/* ---- Encoding ---- */

static int append(struct ctx *c, json_t *arr, const char *where, json_t *v)
{
	if (!v || json_array_append_new(arr, v) != 0)
		return hpcn_proto_fail(c, HPCN_E_INTERNAL, "out of memory encoding %s", where);
	return 0;
}

static int put_str(struct ctx *c, json_t *obj, const char *where, const char *key,
		   const char *s, bool nullable)
{
	if (!s) {
		if (nullable)
			return hpcn_proto_put(c, obj, where, key, json_null());
		return hpcn_proto_fail(c, INVALID, "%s.%s: is NULL, a string is required",
				       where, key);
	}
	if (!hpcn_proto_utf8_valid(s))
		return hpcn_proto_fail(c, INVALID, "%s.%s: not valid UTF-8", where, key);
	if (strlen(s) >= STR_MAX)
		return hpcn_proto_fail(c, INVALID, "%s.%s: string of %zu bytes, the limit is %d",
				       where, key, strlen(s), STR_MAX - 1);
	return hpcn_proto_put(c, obj, where, key, json_string(s));
}

/* The encoder refuses what the decoder refuses (the same hpcn_proto_check_* calls), so
 * that what we send is always what a peer accepts, without decoding it again. */
static int put_id(struct ctx *c, json_t *obj, const char *where, const char *key,
		  const char *id)
{
	if (id && hpcn_proto_check_id(c, where, key, id))
		return -1;
	return put_str(c, obj, where, key, id, false);
}

static int put_nonempty(struct ctx *c, json_t *obj, const char *where, const char *key,
			const char *s, bool nullable)
{
	return hpcn_proto_check_nonempty(c, where, key, s) ||
	       put_str(c, obj, where, key, s, nullable) ? -1 : 0;
}

/* Option<u64>: always present (null for None) for the crate's fields; ext
 * fields appear only when set, so an unextended record is serde's shape. */
static int put_opt(struct ctx *c, json_t *obj, const char *where, const char *key,
		   const struct hpcn_opt_u64 *v, bool always)
{
	if (v->set)
		return hpcn_proto_put_u64(c, obj, where, key, v->value);
	return always ? hpcn_proto_put(c, obj, where, key, json_null()) : 0;
}

static int put_index(struct ctx *c, json_t *obj, const char *where, const char *key,
		     int index, bool always)
{
	if (index < 0)
		return always ? hpcn_proto_put(c, obj, where, key, json_null()) : 0;
	return hpcn_proto_put_u64(c, obj, where, key, (uint64_t)index);
}

static int put_fd_index(struct ctx *c, json_t *obj, const char *where, const char *key,
			int index, bool always)
{
	if (index >= HPCN_MAX_MESSAGE_FDS)
		return hpcn_proto_fail(c, INVALID,
				       "%s.%s: FD index %d is beyond the %d FDs a record can "
				       "carry", where, key, index, HPCN_MAX_MESSAGE_FDS);
	return put_index(c, obj, where, key, index, always);
}

static int put_ns_list(struct ctx *c, json_t *obj, const char *where, const char *key,
		       const enum hpcn_ns_type *t, size_t n)
{
	json_t *a = json_array();

	if (hpcn_proto_put(c, obj, where, key, a))
			   return -1;
	if (n > HPCN_NS__COUNT)
		return hpcn_proto_fail(c, INVALID, "%s.%s: %zu entries, at most %d", where, key, n,
				       HPCN_NS__COUNT);
	for (size_t i = 0; i < n; i++) {
		const char *name = hpcn_ns_type_name(t[i]);

		if (!name)
			return hpcn_proto_fail(c, INVALID, "%s.%s[%zu]: %d is not a namespace type",
					       where, key, i, (int)t[i]);
		for (size_t j = 0; j < i; j++)
			if (t[j] == t[i])
				return hpcn_proto_fail(c, INVALID,
						       "%s.%s[%zu]: duplicate namespace type "
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
		return hpcn_proto_fail(c, INVALID, "%s.cpu_weight: %" PRIu64 " is outside 1..10000",
				       w, l->cpu_weight.value);
	if (l->n_io_devices == 0)
		return 0;
	if (l->n_io_devices > HPCN_MAX_IO_DEVICES)
		return hpcn_proto_fail(c, INVALID, "%s.io_device_max: %zu entries, at most %d", w,
				       l->n_io_devices, HPCN_MAX_IO_DEVICES);
	a = json_array();
	if (hpcn_proto_put(c, o, w, "io_device_max", a))
			   return -1;
	for (size_t i = 0; i < l->n_io_devices; i++) {
		const struct hpcn_io_device_limit *d = &l->io_devices[i];
		json_t *e = json_object();

		hpcn_proto_subpath(dw, w, "io_device_max", (long)i);
		if (append(c, a, dw, e) ||
		    hpcn_proto_put_u64(c, e, dw, "major", d->major) ||
		    hpcn_proto_put_u64(c, e, dw, "minor", d->minor) ||
		    hpcn_proto_put_u64(c, e, dw, "rbps", d->rbps) ||
		    hpcn_proto_put_u64(c, e, dw, "wbps", d->wbps))
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
		return hpcn_proto_fail(c, INVALID, "%s.mounts: %zu entries, at most %d", w, n,
				       HPCN_MAX_MOUNTS);
	a = json_array();
	if (hpcn_proto_put(c, o, w, "mounts", a))
			   return -1;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_object();

		hpcn_proto_subpath(mw, w, "mounts", (long)i);
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

		hpcn_proto_subpath(lw, w, "limits", -1);
		if (hpcn_proto_put(c, o, w, "limits", l) || enc_limits(c, l, lw, &r->limits))
				   return -1;
	}
	if (r->has_uid && (r->uid == (uid_t)-1 || r->gid == (gid_t)-1))
		return hpcn_proto_fail(c, INVALID, "%s.%s: 4294967295 is not a valid id", w,
				       r->uid == (uid_t)-1 ? "uid" : "gid");
	if (r->has_uid && (hpcn_proto_put_u64(c, o, w, "uid", r->uid) ||
			   hpcn_proto_put_u64(c, o, w, "gid", r->gid)))
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
		return hpcn_proto_fail(c, INVALID, "%s.warnings: %zu entries but no array", w,
				       r->n_warnings);
	if (r->n_warnings > MAX_WARNINGS)
		return hpcn_proto_fail(c, INVALID, "%s.warnings: %zu entries, at most %d", w,
				       r->n_warnings, MAX_WARNINGS);
	a = json_array();
	if (hpcn_proto_put(c, o, w, "warnings", a))
			   return -1;
	for (size_t i = 0; i < r->n_warnings; i++) {
		if (!r->warnings[i] || !hpcn_proto_utf8_valid(r->warnings[i]))
			return hpcn_proto_fail(c, INVALID,
					       "%s.warnings[%zu]: NULL or not valid UTF-8", w, i);
		if (strlen(r->warnings[i]) >= STR_MAX)
			return hpcn_proto_fail(c, INVALID,
					       "%s.warnings[%zu]: string of %zu bytes, the "
					       "limit is %d", w, i, strlen(r->warnings[i]),
					       STR_MAX - 1);
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

	if (hpcn_proto_put_u64(c, o, w, "memory_current", m->memory_current) ||
	    put_opt(c, o, w, "memory_max", &m->memory_max, true) ||
	    hpcn_proto_put_u64(c, o, w, "cpu_usage_usec", m->cpu_usage_usec) ||
	    hpcn_proto_put_u64(c, o, w, "nr_processes", m->nr_processes))
		return -1;
	for (size_t i = 0; i < sizeof(psi) / sizeof(psi[0]); i++) {
		if (!(psi[i].v >= 0))   /* negative (absent) or NaN */
			continue;
		if (!isfinite(psi[i].v))
			return hpcn_proto_fail(c, INVALID, "%s.%s: not a finite number", w,
					       psi[i].key);
		if (hpcn_proto_put(c, o, w, psi[i].key, json_real(psi[i].v)))
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
		hpcn_proto_fail(c, INVALID, "%s body: not valid JSON: %s", w, je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		hpcn_proto_fail(c, INVALID, "%s body: %s, not a JSON object", w,
				hpcn_proto_jtype(o));
		json_decref(o);
		return NULL;
	}
	/* The envelope's object holds the body: the peer counts both. */
	if (1 + json_depth(o) > HPCN_MAX_JSON_DEPTH) {
		hpcn_proto_fail(c, INVALID, "%s body: nested %d levels deep, a record may nest %d",
				w, json_depth(o), HPCN_MAX_JSON_DEPTH - 1);
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *hpcn_proto_enc_body(struct ctx *c, const struct hpcn_msg *m, const char *w)
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
		hpcn_proto_fail(c, HPCN_E_INTERNAL, "out of memory encoding %s", w);
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
			rv = hpcn_proto_fail(c, INVALID, "%s: version range %" PRIu32 "..%" PRIu32
					     " is empty or starts below 1", w,
					     m->u.hello.min_version, m->u.hello.max_version);
			break;
		}
		rv = hpcn_proto_put_u64(c, o, w, "min_version", m->u.hello.min_version) ||
		     hpcn_proto_put_u64(c, o, w, "max_version", m->u.hello.max_version) ||
		     put_str(c, o, w, "software", m->u.hello.software, false) ? -1 : 0;
		break;
	case HPCN_TAG_ERROR:
		if (!hpcn_error_family(m->u.error.kind)) {
			rv = hpcn_proto_fail(c, INVALID, "%s.kind: %d is not an error kind", w,
					     (int)m->u.error.kind);
			break;
		}
		rv = put_str(c, o, w, "family", hpcn_error_family(m->u.error.kind), false) ||
		     put_str(c, o, w, "variant", hpcn_error_variant(m->u.error.kind), false) ||
		     put_str(c, o, w, "message", m->u.error.message, false) ? -1 : 0;
		break;
	case HPCN_TAG_ATTACH:
		if (m->u.attach.pid == 0) {
			rv = hpcn_proto_fail(c, INVALID, "%s.pid: 0 is not a process", w);
			break;
		}
		if (m->u.attach.pid < 0 && m->u.attach.pidfd_index < 0) {
			rv = hpcn_proto_fail(c, INVALID,
					     "%s: needs pid or pidfd_index, both are null", w);
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
		     hpcn_proto_put(c, o, w, "emergency",
				    json_boolean(m->u.force_unmount.emergency))
			? -1 : 0;
		break;
	default:
		rv = hpcn_proto_fail(c, HPCN_E_INTERNAL, "no encoder for tag %d", (int)m->tag);
		break;
	}
	if (rv) {
		json_decref(o);
		return NULL;
	}
	return o;
}

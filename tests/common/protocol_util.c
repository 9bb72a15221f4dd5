/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the wire protocol's tests share: see protocol_util.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hpcnode/protocol.h>

#include "protocol_util.h"

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

#define EXPECT(cond, what) \
	do { if (!(cond)) fail_msg("%s: %s differs", ctx, what); } while (0)

static void expect_opt(const char *ctx, const char *what, const struct hpcn_opt_u64 *a,
		       const struct hpcn_opt_u64 *b)
{
	EXPECT(a->set == b->set && (!a->set || a->value == b->value), what);
}

static void expect_mounts(const char *ctx, const struct hpcn_mount_handle *a,
			  const struct hpcn_mount_handle *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		EXPECT(str_eq(a[i].image_path, b[i].image_path), "mounts[].image_path");
		EXPECT(str_eq(a[i].mount_point, b[i].mount_point), "mounts[].mount_point");
		EXPECT(a[i].image_fd_index == b[i].image_fd_index, "mounts[].image_fd_index");
	}
}

static void expect_limits(const char *ctx, const struct hpcn_resource_limits *a,
			  const struct hpcn_resource_limits *b)
{
	expect_opt(ctx, "memory_max", &a->memory_max, &b->memory_max);
	expect_opt(ctx, "cpu_weight", &a->cpu_weight, &b->cpu_weight);
	expect_opt(ctx, "io_max", &a->io_max, &b->io_max);
	expect_opt(ctx, "memory_swap_max", &a->memory_swap_max, &b->memory_swap_max);
	expect_opt(ctx, "cpu_max_quota_usec", &a->cpu_max_quota_usec, &b->cpu_max_quota_usec);
	expect_opt(ctx, "cpu_max_period_usec", &a->cpu_max_period_usec,
		   &b->cpu_max_period_usec);
	expect_opt(ctx, "pids_max", &a->pids_max, &b->pids_max);
	EXPECT(a->n_io_devices == b->n_io_devices, "n_io_devices");
	for (size_t i = 0; i < a->n_io_devices; i++) {
		const struct hpcn_io_device_limit *x = &a->io_devices[i], *y = &b->io_devices[i];

		EXPECT(x->major == y->major && x->minor == y->minor &&
		       x->rbps == y->rbps && x->wbps == y->wbps, "io_devices[]");
	}
}

/* Field-by-field equality of two messages; ctx names the case. */
void expect_msg_equal(const char *ctx, const struct hpcn_msg *a, const struct hpcn_msg *b)
{
	EXPECT(a->tag == b->tag, "tag");
	EXPECT(a->version == b->version, "version");
	EXPECT(a->seq == b->seq, "seq");
	switch (a->tag) {
	case HPCN_TAG_NAMESPACE_REQUEST: {
		const struct hpcn_namespace_request *x = &a->u.ns_request, *y = &b->u.ns_request;

		EXPECT(str_eq(x->allocation_id, y->allocation_id), "allocation_id");
		EXPECT(x->n_namespaces == y->n_namespaces &&
		       memcmp(x->namespaces, y->namespaces,
			      x->n_namespaces * sizeof(x->namespaces[0])) == 0, "namespaces");
		EXPECT(str_eq(x->uenv_image, y->uenv_image), "uenv_image");
		EXPECT(x->n_mounts == y->n_mounts, "n_mounts");
		expect_mounts(ctx, x->mounts, y->mounts, x->n_mounts);
		EXPECT(str_eq(x->group, y->group), "group");
		EXPECT(x->has_limits == y->has_limits, "has_limits");
		expect_limits(ctx, &x->limits, &y->limits);
		EXPECT(x->has_uid == y->has_uid && x->uid == y->uid && x->gid == y->gid, "uid/gid");
		EXPECT(x->base_mount_ns_fd_index == y->base_mount_ns_fd_index, "base_mount_ns_fd");
		break;
	}
	case HPCN_TAG_NAMESPACE_RESPONSE: {
		const struct hpcn_namespace_response *x = &a->u.ns_response, *y = &b->u.ns_response;

		EXPECT(str_eq(x->allocation_id, y->allocation_id), "allocation_id");
		EXPECT(x->n_fd_types == y->n_fd_types &&
		       memcmp(x->fd_types, y->fd_types,
			      x->n_fd_types * sizeof(x->fd_types[0])) == 0, "fd_types");
		EXPECT(str_eq(x->uenv_mount_path, y->uenv_mount_path), "uenv_mount_path");
		EXPECT(x->n_mounts == y->n_mounts, "n_mounts");
		expect_mounts(ctx, x->mounts, y->mounts, x->n_mounts);
		EXPECT(str_eq(x->scope, y->scope), "scope");
		EXPECT(x->n_warnings == y->n_warnings, "n_warnings");
		for (size_t i = 0; i < x->n_warnings; i++)
			EXPECT(str_eq(x->warnings[i], y->warnings[i]), "warnings[]");
		break;
	}
	case HPCN_TAG_ALLOCATION_ENDED:
		EXPECT(str_eq(a->u.ended.allocation_id, b->u.ended.allocation_id), "allocation_id");
		EXPECT(str_eq(a->u.ended.group, b->u.ended.group), "group");
		break;
	case HPCN_TAG_HELLO:
		EXPECT(a->u.hello.min_version == b->u.hello.min_version, "min_version");
		EXPECT(a->u.hello.max_version == b->u.hello.max_version, "max_version");
		EXPECT(str_eq(a->u.hello.software, b->u.hello.software), "software");
		break;
	case HPCN_TAG_ERROR:
		EXPECT(a->u.error.kind == b->u.error.kind, "kind");
		EXPECT(str_eq(a->u.error.message, b->u.error.message), "message");
		break;
	case HPCN_TAG_ATTACH:
		EXPECT(str_eq(a->u.attach.allocation_id, b->u.attach.allocation_id),
		       "allocation_id");
		EXPECT(a->u.attach.pid == b->u.attach.pid, "pid");
		EXPECT(a->u.attach.pidfd_index == b->u.attach.pidfd_index, "pidfd_index");
		break;
	case HPCN_TAG_METRICS_REQUEST:
		EXPECT(str_eq(a->u.metrics_request.path, b->u.metrics_request.path), "path");
		break;
	case HPCN_TAG_CGROUP_METRICS: {
		const struct hpcn_cgroup_metrics *x = &a->u.metrics, *y = &b->u.metrics;

		EXPECT(x->memory_current == y->memory_current, "memory_current");
		expect_opt(ctx, "memory_max", &x->memory_max, &y->memory_max);
		EXPECT(x->cpu_usage_usec == y->cpu_usage_usec, "cpu_usage_usec");
		EXPECT(x->nr_processes == y->nr_processes, "nr_processes");
		EXPECT(x->cpu_pressure_avg10 == y->cpu_pressure_avg10, "cpu_pressure_avg10");
		EXPECT(x->memory_pressure_avg10 == y->memory_pressure_avg10,
		       "memory_pressure_avg10");
		EXPECT(x->io_pressure_avg10 == y->io_pressure_avg10, "io_pressure_avg10");
		break;
	}
	case HPCN_TAG_FORCE_UNMOUNT:
		EXPECT(str_eq(a->u.force_unmount.image_path, b->u.force_unmount.image_path),
		       "image_path");
		EXPECT(a->u.force_unmount.emergency == b->u.force_unmount.emergency, "emergency");
		break;
	default:
		EXPECT(str_eq(a->u.json ? a->u.json : "{}", b->u.json ? b->u.json : "{}"), "body");
		break;
	}
}

/* Encode, decode, compare; returns the encoding (caller frees). */
char *round_trip(const char *ctx, const struct hpcn_msg *m)
{
	struct hpcn_error err;
	struct hpcn_msg back;
	char *buf;
	size_t len;

	if (hpcn_msg_encode(m, &buf, &len, &err) != 0)
		fail_msg("%s: encode: %s", ctx, err.message);
	assert_int_equal(strlen(buf), len);
	if (hpcn_msg_decode(buf, len, &back, &err) != 0)
		fail_msg("%s: decode of our own encoding %s: %s", ctx, buf, err.message);
	expect_msg_equal(ctx, m, &back);
	hpcn_msg_free(&back);
	return buf;
}

void expect_error(const char *ctx, int rv, const struct hpcn_error *err,
		  enum hpcn_error_kind kind, const char *needle)
{
	if (rv != -1)
		fail_msg("%s: succeeded, expected %s", ctx, hpcn_error_variant(kind));
	if (err->kind != kind)
		fail_msg("%s: got %s (%s), expected %s", ctx, hpcn_error_variant(err->kind),
			 err->message, hpcn_error_variant(kind));
	if (needle && !strstr(err->message, needle))
		fail_msg("%s: message \"%s\" lacks \"%s\"", ctx, err->message, needle);
}

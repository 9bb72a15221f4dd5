/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocol codec: field-by-field round trips of every tag, every
 * field set (encode, decode, compare), and the ext fields left absent when
 * unset.
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

/* ---- round trips of every tag, every field set ---- */

static void test_roundtrip_namespace_request(void **state)
{
	struct hpcn_msg m;
	struct hpcn_namespace_request *r = &m.u.ns_request;
	struct hpcn_resource_limits *l = &r->limits;
	char *enc;

	(void)state;
	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	m.seq = (uint64_t)INT64_MAX;
	r->allocation_id = strdup("job-1234.step-0");
	r->namespaces[0] = HPCN_NS_MOUNT;
	r->namespaces[1] = HPCN_NS_NET;
	r->n_namespaces = 2;
	r->uenv_image = strdup("prgenv-gnu/24.11:v1");
	for (int i = 0; i < HPCN_MAX_MOUNTS; i++) {
		char p[64];

		snprintf(p, sizeof(p), "/images/\xc3\xa9-%d.sqfs", i);
		r->mounts[i].image_path = strdup(p);
		r->mounts[i].mount_point = i % 2 ? NULL : strdup("/user-environment");
		r->mounts[i].image_fd_index = i % 3 ? -1 : i;
	}
	r->n_mounts = HPCN_MAX_MOUNTS;
	r->group = strdup("1234");
	r->has_limits = true;
	l->memory_max = (struct hpcn_opt_u64){ true, (uint64_t)INT64_MAX };
	l->cpu_weight = (struct hpcn_opt_u64){ true, 10000 };
	l->io_max = (struct hpcn_opt_u64){ true, 0 };
	l->memory_swap_max = (struct hpcn_opt_u64){ true, 1 };
	l->cpu_max_quota_usec = (struct hpcn_opt_u64){ true, 25000 };
	l->cpu_max_period_usec = (struct hpcn_opt_u64){ true, 100000 };
	l->pids_max = (struct hpcn_opt_u64){ true, 512 };
	for (int i = 0; i < HPCN_MAX_IO_DEVICES; i++)
		l->io_devices[i] = (struct hpcn_io_device_limit){
			UINT32_MAX - (uint32_t)i, (uint32_t)i, (uint64_t)i * 1000, 7 };
	l->n_io_devices = HPCN_MAX_IO_DEVICES;
	r->has_uid = true;
	r->uid = 4294967294u;
	r->gid = 0;
	r->base_mount_ns_fd_index = HPCN_MAX_MESSAGE_FDS - 1;
	enc = round_trip("NamespaceRequest full", &m);
	free(enc);

	/* Only some ext fields: the others stay absent, and come back unset. */
	hpcn_msg_free(&m);
	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	r->allocation_id = strdup("a");
	r->has_limits = true;
	r->limits.pids_max = (struct hpcn_opt_u64){ true, 0 };
	enc = round_trip("NamespaceRequest partial", &m);
	assert_null(strstr(enc, "mounts"));
	assert_null(strstr(enc, "group"));
	assert_null(strstr(enc, "uid"));
	assert_null(strstr(enc, "base_mount_ns_fd"));
	assert_null(strstr(enc, "memory_swap_max"));
	assert_null(strstr(enc, "io_device_max"));
	assert_non_null(strstr(enc, "\"pids_max\":0"));
	free(enc);
	hpcn_msg_free(&m);
}

static void test_roundtrip_namespace_response(void **state)
{
	struct hpcn_msg m;
	struct hpcn_namespace_response *r = &m.u.ns_response;
	char *enc;

	(void)state;
	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_RESPONSE);
	m.seq = 77;
	r->allocation_id = strdup("alloc-42");
	r->fd_types[0] = HPCN_NS_NET;
	r->fd_types[1] = HPCN_NS_PID;
	r->fd_types[2] = HPCN_NS_MOUNT;
	r->n_fd_types = 3;
	r->uenv_mount_path = strdup("/user-environment");
	r->mounts[0].image_path = strdup("/a.sqfs");
	r->mounts[0].mount_point = strdup("/user-environment");
	r->mounts[1].image_path = strdup("/b.sqfs");
	r->mounts[1].mount_point = strdup("/user-tools");
	r->n_mounts = 2;
	r->scope = strdup("workload.slice/alloc-42.scope");
	r->warnings = calloc(3, sizeof(char *));
	r->warnings[0] = strdup("memory.max not applied: no memory controller");
	r->warnings[1] = strdup("tab\there \"quoted\" \\ newline\n unicode \xe2\x82\xac");
	r->warnings[2] = strdup("");
	r->n_warnings = 3;
	enc = round_trip("NamespaceResponse", &m);
	free(enc);
	hpcn_msg_free(&m);
}

static void test_roundtrip_allocation_ended(void **state)
{
	struct hpcn_msg m;
	char *enc;

	(void)state;
	hpcn_msg_init(&m, HPCN_TAG_ALLOCATION_ENDED);
	m.u.ended.allocation_id = strdup("alloc-42");
	m.u.ended.group = strdup("1234");
	free(round_trip("AllocationEnded id+group", &m));
	hpcn_msg_free(&m);

	/* A whole group: NULL in C, "" on the wire, NULL again. */
	hpcn_msg_init(&m, HPCN_TAG_ALLOCATION_ENDED);
	m.u.ended.group = strdup("1234");
	enc = round_trip("AllocationEnded group", &m);
	assert_non_null(strstr(enc, "{\"allocation_id\":\"\",\"group\":\"1234\"}"));
	free(enc);
	hpcn_msg_free(&m);
}

static void test_roundtrip_small_tags(void **state)
{
	struct hpcn_msg m;

	(void)state;
	hpcn_msg_init(&m, HPCN_TAG_HELLO);
	m.u.hello.min_version = 1;
	m.u.hello.max_version = UINT32_MAX;
	m.u.hello.software = strdup("hpc-node-helper 0.1.0");
	free(round_trip("Hello", &m));
	hpcn_msg_free(&m);

	for (int k = HPCN_E_NONE + 1; k < HPCN_E__COUNT; k++) {
		hpcn_msg_init(&m, HPCN_TAG_ERROR);
		m.seq = (uint64_t)k;
		m.u.error.kind = (enum hpcn_error_kind)k;
		m.u.error.message = strdup("some: text");
		free(round_trip(hpcn_error_variant(k), &m));
		hpcn_msg_free(&m);
	}

	hpcn_msg_init(&m, HPCN_TAG_ATTACH);
	m.u.attach.allocation_id = strdup("alloc-42");
	m.u.attach.pid = 2147483647;
	m.u.attach.pidfd_index = 3;
	free(round_trip("Attach both", &m));
	m.u.attach.pid = -1;
	free(round_trip("Attach pidfd", &m));
	m.u.attach.pid = 1;
	m.u.attach.pidfd_index = -1;
	free(round_trip("Attach pid", &m));
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_METRICS_REQUEST);
	m.u.metrics_request.path = strdup("");
	free(round_trip("MetricsRequest root", &m));
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_CGROUP_METRICS);
	m.u.metrics.memory_current = (uint64_t)INT64_MAX;
	m.u.metrics.memory_max = (struct hpcn_opt_u64){ true, 4096 };
	m.u.metrics.cpu_usage_usec = 1;
	m.u.metrics.nr_processes = UINT32_MAX;
	free(round_trip("CgroupMetrics no PSI", &m));
	m.u.metrics.cpu_pressure_avg10 = 0.52;
	m.u.metrics.memory_pressure_avg10 = 0;
	m.u.metrics.io_pressure_avg10 = 99.99;
	free(round_trip("CgroupMetrics PSI", &m));
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_FORCE_UNMOUNT);
	m.u.force_unmount.image_path = strdup("/a.sqfs");
	m.u.force_unmount.emergency = false;
	free(round_trip("ForceUnmount false", &m));
	m.u.force_unmount.emergency = true;
	free(round_trip("ForceUnmount true", &m));
	hpcn_msg_free(&m);

	{
		static const enum hpcn_tag json_tags[] = {
			HPCN_TAG_OK, HPCN_TAG_STATUS_REQUEST, HPCN_TAG_STATUS, HPCN_TAG_RECONCILE
		};

		for (size_t i = 0; i < sizeof(json_tags) / sizeof(json_tags[0]); i++) {
			char *enc;

			hpcn_msg_init(&m, json_tags[i]);
			enc = round_trip("json body NULL", &m);
			assert_non_null(strstr(enc, "\"body\":{}}"));
			free(enc);
			m.u.json = strdup("{\"a\":[1,2,{\"b\":null}],\"c\":\"d\",\"e\":1.5}");
			free(round_trip(hpcn_tag_name(json_tags[i]), &m));
			hpcn_msg_free(&m);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_namespace_request),
		cmocka_unit_test(test_roundtrip_namespace_response),
		cmocka_unit_test(test_roundtrip_allocation_ended),
		cmocka_unit_test(test_roundtrip_small_tags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocol codec: golden vectors (every file of tests/vectors is a
 * case, so a new file is tested without touching this code), serde's exact
 * shape, field-by-field round trips of every tag, and the encoder's refusals.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <hpcnode/protocol.h>

#define MIN_VALID_VECTORS   15
#define MIN_INVALID_VECTORS 40

/* ---- helpers ---- */

static char *read_file(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		fail_msg("open %s: %m", path);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size)
		fail_msg("short read of %s", path);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static int is_json(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

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
static void expect_msg_equal(const char *ctx, const struct hpcn_msg *a, const struct hpcn_msg *b)
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
static char *round_trip(const char *ctx, const struct hpcn_msg *m)
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

static void expect_error(const char *ctx, int rv, const struct hpcn_error *err,
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

/* ---- golden vectors ---- */

static void test_valid_vectors(void **state)
{
	bool seen[HPCN_TAG__COUNT] = { false };
	struct dirent **ents;
	int n = scandir(HPCN_VECTORS_DIR "/valid", &ents, is_json, alphasort);

	(void)state;
	if (n < MIN_VALID_VECTORS)
		fail_msg("%d valid vectors in %s, expected at least %d", n,
			 HPCN_VECTORS_DIR "/valid", MIN_VALID_VECTORS);
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		struct hpcn_error err;
		struct hpcn_msg m;
		char path[4096], *buf, *enc;
		size_t len, flen;

		snprintf(path, sizeof(path), "%s/valid/%s", HPCN_VECTORS_DIR, name);
		buf = read_file(path, &len);
		if (hpcn_msg_decode(buf, len, &m, &err) != 0)
			fail_msg("%s: %s", name, err.message);
		seen[m.tag] = true;
		enc = round_trip(name, &m);
		/* Canonical vectors are exactly what the encoder writes: serde's
		 * compact shape, ext fields only when set. */
		flen = len;
		while (flen && buf[flen - 1] == '\n')
			flen--;
		if (strncmp(name, "lenient-", 8) != 0 &&
		    (strlen(enc) != flen || memcmp(enc, buf, flen) != 0))
			fail_msg("%s: re-encoded differently:\n file: %.*s\n ours: %s", name,
				 (int)flen, buf, enc);
		free(enc);
		hpcn_msg_free(&m);
		free(buf);
		free(ents[i]);
	}
	free(ents);
	for (int t = HPCN_TAG_UNKNOWN + 1; t < HPCN_TAG__COUNT; t++)
		if (!seen[t])
			fail_msg("no valid vector for tag %s", hpcn_tag_name((enum hpcn_tag)t));
}

static void test_invalid_vectors(void **state)
{
	struct dirent **ents;
	int n = scandir(HPCN_VECTORS_DIR "/invalid", &ents, is_json, alphasort);
	bool verbose = getenv("HPCN_VECTORS_VERBOSE") != NULL;

	(void)state;
	if (n < MIN_INVALID_VECTORS)
		fail_msg("%d invalid vectors in %s, expected at least %d", n,
			 HPCN_VECTORS_DIR "/invalid", MIN_INVALID_VECTORS);
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name, *sep = strstr(name, "--");
		char path[4096], expected[64], *buf;
		struct hpcn_msg m, zero;
		struct hpcn_error err;
		size_t len;
		int rv;

		if (!sep || (size_t)(sep - name) >= sizeof(expected))
			fail_msg("%s: name is not <Variant>--<case>.json", name);
		snprintf(expected, sizeof(expected), "%.*s", (int)(sep - name), name);
		snprintf(path, sizeof(path), "%s/invalid/%s", HPCN_VECTORS_DIR, name);
		buf = read_file(path, &len);
		memset(&m, 0x5a, sizeof(m));
		hpcn_error_clear(&err);
		rv = hpcn_msg_decode(buf, len, &m, &err);
		if (rv != -1)
			fail_msg("%s: decoded, expected %s", name, expected);
		if (!hpcn_error_variant(err.kind) ||
		    strcmp(hpcn_error_variant(err.kind), expected) != 0)
			fail_msg("%s: got %s (%s), expected %s", name,
				 hpcn_error_variant(err.kind), err.message, expected);
		/* The message is the variant's display text with a detail. */
		if (strlen(err.message) < 20 || !strchr(err.message, ':'))
			fail_msg("%s: message too thin: \"%s\"", name, err.message);
		for (const unsigned char *p = (const unsigned char *)err.message; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				fail_msg("%s: control character in message", name);
		memset(&zero, 0, sizeof(zero));
		zero.seq = m.seq;
		if (memcmp(&m, &zero, sizeof(m)) != 0)
			fail_msg("%s: message not left zeroed", name);
		if ((err.kind == HPCN_E_PROTO_UNKNOWN_TAG ||
		     err.kind == HPCN_E_PROTO_UNSUPPORTED_VERSION) && m.seq != 7)
			fail_msg("%s: seq %llu not kept for the reply", name,
				 (unsigned long long)m.seq);
		if (verbose)
			print_message("%-55s %s\n", name, err.message);
		free(buf);
		free(ents[i]);
	}
	free(ents);
}

/* ---- serde's shape ---- */

static const char crate_example[] =
	"{\"allocation_id\":\"alloc-42\",\"namespaces\":[\"Pid\",\"Net\",\"Mount\"],"
	"\"uenv_image\":null}";

static void test_crate_example_exact(void **state)
{
	struct hpcn_msg m;
	struct hpcn_error err;
	char expected[512], *buf;
	size_t len;

	(void)state;
	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	m.seq = 42;
	m.u.ns_request.allocation_id = strdup("alloc-42");
	m.u.ns_request.namespaces[0] = HPCN_NS_PID;
	m.u.ns_request.namespaces[1] = HPCN_NS_NET;
	m.u.ns_request.namespaces[2] = HPCN_NS_MOUNT;
	m.u.ns_request.n_namespaces = 3;
	assert_int_equal(hpcn_msg_encode(&m, &buf, &len, &err), 0);
	snprintf(expected, sizeof(expected),
		 "{\"version\":1,\"tag\":\"NamespaceRequest\",\"seq\":42,\"body\":%s}",
		 crate_example);
	assert_string_equal(buf, expected);
	assert_int_equal(len, strlen(expected));
	free(buf);

	/* The crate's other shapes, unextended. */
	hpcn_msg_free(&m);
	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_RESPONSE);
	m.u.ns_response.allocation_id = strdup("alloc-42");
	m.u.ns_response.fd_types[0] = HPCN_NS_MOUNT;
	m.u.ns_response.n_fd_types = 1;
	assert_int_equal(hpcn_msg_encode(&m, &buf, &len, &err), 0);
	assert_string_equal(buf, "{\"version\":1,\"tag\":\"NamespaceResponse\",\"seq\":0,\"body\":"
			    "{\"allocation_id\":\"alloc-42\",\"fd_types\":[\"Mount\"],"
			    "\"uenv_mount_path\":null}}");
	free(buf);
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_ALLOCATION_ENDED);
	m.u.ended.allocation_id = strdup("alloc-42");
	assert_int_equal(hpcn_msg_encode(&m, &buf, &len, &err), 0);
	assert_non_null(strstr(buf, ",\"body\":{\"allocation_id\":\"alloc-42\"}}"));
	free(buf);
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	m.u.ns_request.allocation_id = strdup("alloc-42");
	m.u.ns_request.has_limits = true;
	m.u.ns_request.limits.cpu_weight.set = true;
	m.u.ns_request.limits.cpu_weight.value = 100;
	assert_int_equal(hpcn_msg_encode(&m, &buf, &len, &err), 0);
	assert_non_null(strstr(buf, "\"limits\":{\"memory_max\":null,\"cpu_weight\":100,"
			       "\"io_max\":null}}}"));
	free(buf);
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_CGROUP_METRICS);
	assert_int_equal(hpcn_msg_encode(&m, &buf, &len, &err), 0);
	assert_non_null(strstr(buf, "\"body\":{\"memory_current\":0,\"memory_max\":null,"
			       "\"cpu_usage_usec\":0,\"nr_processes\":0}}"));
	free(buf);
	hpcn_msg_free(&m);
}

static void test_decode_crate_example(void **state)
{
	char rec[512];
	struct hpcn_msg m;
	struct hpcn_error err;
	int n = snprintf(rec, sizeof(rec),
			 "{\"version\":1,\"tag\":\"NamespaceRequest\",\"seq\":9,\"body\":%s}",
			 crate_example);

	(void)state;
	assert_int_equal(hpcn_msg_decode(rec, (size_t)n, &m, &err), 0);
	assert_int_equal(m.tag, HPCN_TAG_NAMESPACE_REQUEST);
	assert_int_equal(m.version, 1);
	assert_int_equal(m.seq, 9);
	assert_string_equal(m.u.ns_request.allocation_id, "alloc-42");
	assert_int_equal(m.u.ns_request.n_namespaces, 3);
	assert_int_equal(m.u.ns_request.namespaces[0], HPCN_NS_PID);
	assert_int_equal(m.u.ns_request.namespaces[1], HPCN_NS_NET);
	assert_int_equal(m.u.ns_request.namespaces[2], HPCN_NS_MOUNT);
	assert_null(m.u.ns_request.uenv_image);
	assert_int_equal(m.u.ns_request.n_mounts, 0);
	assert_null(m.u.ns_request.group);
	assert_false(m.u.ns_request.has_limits);
	assert_false(m.u.ns_request.has_uid);
	assert_int_equal(m.u.ns_request.base_mount_ns_fd_index, -1);
	for (int i = 0; i < HPCN_MAX_MOUNTS; i++)
		assert_int_equal(m.u.ns_request.mounts[i].image_fd_index, -1);
	hpcn_msg_free(&m);
}

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

/* ---- the encoder refuses what the decoder would refuse ---- */

static void encode_fails(const char *ctx, const struct hpcn_msg *m, enum hpcn_error_kind kind,
			 const char *needle)
{
	struct hpcn_error err;
	char *buf = (char *)1;
	size_t len = 1;
	int rv = hpcn_msg_encode(m, &buf, &len, &err);

	expect_error(ctx, rv, &err, kind, needle);
	assert_null(buf);
	assert_int_equal(len, 0);
}

static void test_encode_refusals(void **state)
{
	struct hpcn_msg m;

	(void)state;
	hpcn_msg_init(&m, HPCN_TAG_UNKNOWN);
	encode_fails("tag 0", &m, HPCN_E_INVALID_ARGUMENT, "not a message tag");
	m.tag = HPCN_TAG__COUNT;
	encode_fails("tag count", &m, HPCN_E_INVALID_ARGUMENT, "not a message tag");

	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	encode_fails("NULL id", &m, HPCN_E_INVALID_ARGUMENT, "NamespaceRequest.allocation_id");
	m.u.ns_request.allocation_id = strdup("a/b");
	encode_fails("bad id", &m, HPCN_E_INVALID_ARGUMENT, "forbidden character");
	free(m.u.ns_request.allocation_id);
	m.u.ns_request.allocation_id = strdup("ok");
	m.version = 2;
	encode_fails("version 2", &m, HPCN_E_INVALID_ARGUMENT, "version 2");
	m.version = 0; /* 0: the current version */
	m.u.ns_request.uenv_image = strdup("/bad-\xff.sqfs");
	encode_fails("bad UTF-8", &m, HPCN_E_INVALID_ARGUMENT, "uenv_image: not valid UTF-8");
	free(m.u.ns_request.uenv_image);
	m.u.ns_request.uenv_image = NULL;
	m.u.ns_request.n_namespaces = 2;
	m.u.ns_request.namespaces[0] = HPCN_NS_PID;
	m.u.ns_request.namespaces[1] = HPCN_NS_PID;
	encode_fails("dup ns", &m, HPCN_E_INVALID_ARGUMENT, "duplicate namespace type");
	m.u.ns_request.namespaces[1] = (enum hpcn_ns_type)7;
	encode_fails("bad ns", &m, HPCN_E_INVALID_ARGUMENT, "is not a namespace type");
	m.u.ns_request.n_namespaces = 0;
	m.u.ns_request.n_mounts = HPCN_MAX_MOUNTS + 1;
	encode_fails("mounts", &m, HPCN_E_INVALID_ARGUMENT, "at most 8");
	m.u.ns_request.n_mounts = 1;
	encode_fails("mount NULL path", &m, HPCN_E_INVALID_ARGUMENT, "mounts[0].image_path");
	m.u.ns_request.n_mounts = 0;
	m.u.ns_request.has_limits = true;
	m.u.ns_request.limits.memory_max = (struct hpcn_opt_u64){ true, (uint64_t)INT64_MAX + 1 };
	encode_fails("u64 > 2^63-1", &m, HPCN_E_INVALID_ARGUMENT, "exceeds 2^63-1");
	m.u.ns_request.limits.memory_max.set = false;
	m.u.ns_request.limits.cpu_weight = (struct hpcn_opt_u64){ true, 0 };
	encode_fails("cpu_weight 0", &m, HPCN_E_INVALID_ARGUMENT, "outside 1..10000");
	m.u.ns_request.has_limits = false;
	m.u.ns_request.base_mount_ns_fd_index = HPCN_MAX_MESSAGE_FDS;
	encode_fails("fd index", &m, HPCN_E_INVALID_ARGUMENT, "FD index 8");
	m.u.ns_request.base_mount_ns_fd_index = -1;
	m.seq = (uint64_t)INT64_MAX + 1;
	encode_fails("seq", &m, HPCN_E_INVALID_ARGUMENT, "envelope.seq");
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_ERROR);
	m.u.error.message = strdup("x");
	encode_fails("Error kind NONE", &m, HPCN_E_INVALID_ARGUMENT, "not an error kind");
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_ATTACH);
	m.u.attach.allocation_id = strdup("a");
	encode_fails("Attach nothing", &m, HPCN_E_INVALID_ARGUMENT, "needs pid or pidfd_index");
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_STATUS);
	m.u.json = strdup("[1]");
	encode_fails("Status array", &m, HPCN_E_INVALID_ARGUMENT, "not a JSON object");
	free(m.u.json);
	m.u.json = strdup("{\"a\":");
	encode_fails("Status bad JSON", &m, HPCN_E_INVALID_ARGUMENT, "not valid JSON");
	free(m.u.json);
	m.u.json = malloc(70000);
	memset(m.u.json, 'x', 69999);
	memcpy(m.u.json, "{\"x\":\"", 6);
	memcpy(m.u.json + 69996, "\"}", 3);
	encode_fails("Status too large", &m, HPCN_E_PROTO_TOO_LARGE, "limit is 65536");
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_CGROUP_METRICS);
	m.u.metrics.io_pressure_avg10 = 1.0 / 0.0;
	encode_fails("PSI inf", &m, HPCN_E_INVALID_ARGUMENT, "not a finite number");
	hpcn_msg_free(&m);
}

/* Release builds do not decode what they encode (a handoff's cost): the
 * encoder itself must refuse everything the decoder's semantic checks would.
 * One case per check_* call of the decoder that is not a JSON type check. */
/* A Status body nested `levels` containers deep: an object holding
 * levels - 2 times open, then inner (one container), then as many close.
 * Refused by the encoder exactly when the peer would refuse it (the
 * envelope adds a level). */
static void check_body_depth(int levels, const char *open, const char *inner,
			     const char *close)
{
	struct hpcn_msg m;
	struct hpcn_error err;
	char body[512] = "{\"a\":";
	char *enc;
	size_t len;

	for (int i = 0; i < levels - 2; i++)
		strcat(body, open);
	strcat(body, inner);
	for (int i = 0; i < levels - 2; i++)
		strcat(body, close);
	strcat(body, "}");
	hpcn_msg_init(&m, HPCN_TAG_STATUS);
	m.u.json = strdup(body);
	if (levels >= HPCN_MAX_JSON_DEPTH) {
		encode_fails(body, &m, HPCN_E_INVALID_ARGUMENT, "nested");
	} else {
		assert_int_equal(hpcn_msg_encode(&m, &enc, &len, &err), 0);
		hpcn_msg_free(&m);
		if (hpcn_msg_decode(enc, len, &m, &err) != 0)
			fail_msg("%s: the peer refuses it: %s", body, err.message);
		free(enc);
	}
	hpcn_msg_free(&m);
}

static void test_encode_refusals_semantic(void **state)
{
	struct hpcn_msg m;
	char *big;

	(void)state;
	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	m.u.ns_request.allocation_id = strdup("ok");
	m.u.ns_request.group = strdup("..");
	encode_fails("bad group", &m, HPCN_E_INVALID_ARGUMENT, "NamespaceRequest.group");
	free(m.u.ns_request.group);
	m.u.ns_request.group = NULL;
	m.u.ns_request.uenv_image = strdup("");
	encode_fails("empty image", &m, HPCN_E_INVALID_ARGUMENT, "uenv_image: must not be empty");
	free(m.u.ns_request.uenv_image);
	m.u.ns_request.uenv_image = NULL;
	m.u.ns_request.n_mounts = 1;
	m.u.ns_request.mounts[0].image_path = strdup("/i.sqfs");
	m.u.ns_request.mounts[0].mount_point = strdup("");
	m.u.ns_request.mounts[0].image_fd_index = -1;
	encode_fails("empty mount point", &m, HPCN_E_INVALID_ARGUMENT,
		     "mounts[0].mount_point: must not be empty");
	free(m.u.ns_request.mounts[0].mount_point);
	m.u.ns_request.mounts[0].mount_point = NULL;
	m.u.ns_request.mounts[0].image_fd_index = HPCN_MAX_MESSAGE_FDS;
	encode_fails("image_fd index", &m, HPCN_E_INVALID_ARGUMENT, "FD index 8");
	m.u.ns_request.mounts[0].image_fd_index = -1;
	m.u.ns_request.has_uid = true;
	m.u.ns_request.uid = (uid_t)-1;
	encode_fails("uid -1", &m, HPCN_E_INVALID_ARGUMENT, "uid: 4294967295 is not a valid id");
	m.u.ns_request.has_uid = false;
	big = malloc(5000);
	memset(big, 'a', 4999);
	big[0] = '/';
	big[4999] = '\0';
	free(m.u.ns_request.mounts[0].image_path);
	m.u.ns_request.mounts[0].image_path = big;
	encode_fails("long string", &m, HPCN_E_INVALID_ARGUMENT, "string of 4999 bytes");
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_RESPONSE);
	m.u.ns_response.allocation_id = strdup("a b");
	encode_fails("response id", &m, HPCN_E_INVALID_ARGUMENT,
		     "NamespaceResponse.allocation_id");
	free(m.u.ns_response.allocation_id);
	m.u.ns_response.allocation_id = strdup("ok");
	m.u.ns_response.warnings = calloc(65, sizeof(char *));
	for (int i = 0; i < 65; i++)
		m.u.ns_response.warnings[i] = strdup("w");
	m.u.ns_response.n_warnings = 65;
	encode_fails("65 warnings", &m, HPCN_E_INVALID_ARGUMENT, "at most 64");
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_ALLOCATION_ENDED);
	encode_fails("ended without id or group", &m, HPCN_E_INVALID_ARGUMENT,
		     "AllocationEnded.allocation_id");
	m.u.ended.allocation_id = strdup("../x");
	encode_fails("ended bad id", &m, HPCN_E_INVALID_ARGUMENT, "AllocationEnded.allocation_id");
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_HELLO);
	m.u.hello.software = strdup("x");
	m.u.hello.min_version = 2;
	m.u.hello.max_version = 1;
	encode_fails("hello range", &m, HPCN_E_INVALID_ARGUMENT, "version range 2..1");
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_ATTACH);
	m.u.attach.allocation_id = strdup("a");
	m.u.attach.pid = 0;
	encode_fails("attach pid 0", &m, HPCN_E_INVALID_ARGUMENT, "0 is not a process");
	hpcn_msg_free(&m);

	hpcn_msg_init(&m, HPCN_TAG_FORCE_UNMOUNT);
	m.u.force_unmount.image_path = strdup("");
	encode_fails("force-unmount empty", &m, HPCN_E_INVALID_ARGUMENT,
		     "image_path: must not be empty");
	hpcn_msg_free(&m);

	/* A body nested as deep as the decoder allows in all, plus the
	 * envelope: refused; one level less encodes and decodes. Once with
	 * objects down to an empty one, once with arrays down to a scalar
	 * (fuzz_protocol found the encoder counting the scalar as a level). */
	for (int levels = HPCN_MAX_JSON_DEPTH - 1; levels <= HPCN_MAX_JSON_DEPTH; levels++) {
		check_body_depth(levels, "{\"a\":", "{}", "}");
		check_body_depth(levels, "[", "[false]", "]");
	}
}

/* ---- decoding details the vectors do not show ---- */

static void test_decode_bounds(void **state)
{
	char buf[256];
	struct hpcn_msg m;
	struct hpcn_error err;
	int n;

	(void)state;
	/* Depth 16 (envelope 1 + body 1 + 14) passes, 17 does not. */
	for (int extra = 14; extra <= 15; extra++) {
		n = snprintf(buf, sizeof(buf), "{\"version\":1,\"tag\":\"Status\",\"seq\":3,"
			     "\"body\":{\"a\":%.*s%.*s}}", extra,
			     "[[[[[[[[[[[[[[[[[[[[", extra, "]]]]]]]]]]]]]]]]]]]]");
		if (extra == 14) {
			assert_int_equal(hpcn_msg_decode(buf, (size_t)n, &m, &err), 0);
			hpcn_msg_free(&m);
		} else {
			expect_error("depth 17", hpcn_msg_decode(buf, (size_t)n, &m, &err), &err,
				     HPCN_E_PROTO_MALFORMED, "nesting deeper than 16");
		}
	}
	/* Brackets inside strings do not count. */
	n = snprintf(buf, sizeof(buf), "{\"version\":1,\"tag\":\"Status\",\"seq\":3,"
		     "\"body\":{\"a\":\"[[[[[[[[[[[[[[[[[[[[\\\"[[\"}}");
	assert_int_equal(hpcn_msg_decode(buf, (size_t)n, &m, &err), 0);
	hpcn_msg_free(&m);

	/* The length given counts, not a NUL terminator. */
	n = snprintf(buf, sizeof(buf), "{\"version\":1,\"tag\":\"Ok\",\"seq\":3,\"body\":{}}");
	expect_error("short len", hpcn_msg_decode(buf, (size_t)n - 1, &m, &err), &err,
		     HPCN_E_PROTO_MALFORMED, "truncated");
	expect_error("NULL buf", hpcn_msg_decode(NULL, 0, &m, &err), &err,
		     HPCN_E_PROTO_MALFORMED, "empty record");
	expect_error("too large", hpcn_msg_decode(buf, HPCN_MAX_MESSAGE_SIZE + 1, &m, &err), &err,
		     HPCN_E_PROTO_TOO_LARGE, "65537 bytes");

	/* seq is kept for every error after the envelope's seq was read. */
	n = snprintf(buf, sizeof(buf), "{\"version\":1,\"tag\":\"Attach\",\"seq\":99,"
		     "\"body\":{\"allocation_id\":\"x\"}}");
	expect_error("Attach empty", hpcn_msg_decode(buf, (size_t)n, &m, &err), &err,
		     HPCN_E_PROTO_MALFORMED, "Attach: needs pid or pidfd_index");
	assert_int_equal(m.seq, 99);
	assert_int_equal(m.tag, HPCN_TAG_UNKNOWN);
	assert_null(m.u.attach.allocation_id);

	/* The error names the field and the problem. */
	n = snprintf(buf, sizeof(buf), "{\"version\":1,\"tag\":\"NamespaceRequest\",\"seq\":1,"
		     "\"body\":{\"allocation_id\":\"a\",\"namespaces\":[\"Pid\",\"Uts\"]}}");
	hpcn_msg_decode(buf, (size_t)n, &m, &err);
	assert_string_equal(err.message, "malformed message: NamespaceRequest.namespaces[1]: "
			    "unknown namespace type \"Uts\"");
	n = snprintf(buf, sizeof(buf), "{\"version\":2,\"tag\":\"Ok\",\"seq\":1,\"body\":{}}");
	hpcn_msg_decode(buf, (size_t)n, &m, &err);
	assert_string_equal(err.message, "unsupported protocol version: version 2 received, "
			    "this peer supports 1..1");
	n = snprintf(buf, sizeof(buf), "{\"version\":1,\"tag\":\"Nope\",\"seq\":1,\"body\":{}}");
	hpcn_msg_decode(buf, (size_t)n, &m, &err);
	assert_string_equal(err.message, "unknown message tag: \"Nope\"");
	n = snprintf(buf, sizeof(buf), "{\"version\":1,\"tag\":\"Attach\",\"seq\":1,"
		     "\"body\":{\"allocation_id\":\"a/b\",\"pid\":1}}");
	hpcn_msg_decode(buf, (size_t)n, &m, &err);
	assert_string_equal(err.message, "invalid argument: Attach.allocation_id: allocation id "
			    "has a forbidden character 0x2f at position 1 (allowed: A-Z a-z 0-9 . _ -)");
}

/* ---- Error messages ---- */

static void test_error_from_to(void **state)
{
	struct hpcn_error in, out;
	struct hpcn_msg m, back;
	char *buf;
	size_t len;

	(void)state;
	hpcn_error_set(&in, HPCN_E_MOUNT_FAILED, "/x.sqfs", "LOOP_CONFIGURE: Device busy");
	assert_int_equal(hpcn_msg_error_from(&m, 31, &in), 0);
	assert_int_equal(m.tag, HPCN_TAG_ERROR);
	assert_int_equal(m.seq, 31);
	assert_int_equal(hpcn_msg_encode(&m, &buf, &len, &out), 0);
	assert_string_equal(buf, "{\"version\":1,\"tag\":\"Error\",\"seq\":31,\"body\":"
			    "{\"family\":\"MountError\",\"variant\":\"MountFailed\",\"message\":"
			    "\"mount failed for /x.sqfs: LOOP_CONFIGURE: Device busy\"}}");
	assert_int_equal(hpcn_msg_decode(buf, len, &back, &out), 0);
	hpcn_msg_error_to(&back, &out);
	assert_int_equal(out.kind, HPCN_E_MOUNT_FAILED);
	assert_string_equal(out.message, in.message);
	free(buf);
	hpcn_msg_free(&back);
	hpcn_msg_free(&m);

	/* A path in a foreign charset must not make the reply unencodable. */
	hpcn_error_set(&in, HPCN_E_MOUNT_FAILED, "/caf\xe9.sqfs", "ENOENT");
	assert_int_equal(hpcn_msg_error_from(&m, 1, &in), 0);
	assert_string_equal(m.u.error.message, "mount failed for /caf?.sqfs: ENOENT");
	assert_int_equal(hpcn_msg_encode(&m, &buf, &len, &out), 0);
	free(buf);
	hpcn_msg_free(&m);

	/* No error at hand: still a well-formed Internal error. */
	assert_int_equal(hpcn_msg_error_from(&m, 2, NULL), 0);
	assert_int_equal(m.u.error.kind, HPCN_E_INTERNAL);
	assert_string_equal(m.u.error.message, "internal error: no detail");
	hpcn_msg_free(&m);
	hpcn_error_clear(&in);
	assert_int_equal(hpcn_msg_error_from(&m, 2, &in), 0);
	assert_int_equal(m.u.error.kind, HPCN_E_INTERNAL);
	assert_true(m.u.error.message[0] != '\0');
	hpcn_msg_free(&m);

	/* A kind from a newer peer: Internal, words kept. */
	{
		static const char rec[] = "{\"version\":1,\"tag\":\"Error\",\"seq\":4,\"body\":"
			"{\"family\":\"FutureError\",\"variant\":\"X\",\"message\":\"x failed: y\"}}";

		assert_int_equal(hpcn_msg_decode(rec, sizeof(rec) - 1, &m, &out), 0);
		hpcn_msg_error_to(&m, &out);
		assert_int_equal(out.kind, HPCN_E_INTERNAL);
		assert_string_equal(out.message, "x failed: y");
		hpcn_msg_free(&m);
	}

	hpcn_msg_init(&m, HPCN_TAG_OK);
	hpcn_msg_error_to(&m, &out);
	assert_int_equal(out.kind, HPCN_E_INTERNAL);
	assert_non_null(strstr(out.message, "expected an Error message, got Ok"));
}

static void test_tag_names_and_init(void **state)
{
	struct hpcn_msg m;
	struct hpcn_namespace_request r;

	(void)state;
	for (int t = HPCN_TAG_UNKNOWN + 1; t < HPCN_TAG__COUNT; t++) {
		const char *name = hpcn_tag_name((enum hpcn_tag)t);

		assert_non_null(name);
		assert_int_equal(hpcn_tag_from_name(name), t);
	}
	assert_null(hpcn_tag_name(HPCN_TAG_UNKNOWN));
	assert_null(hpcn_tag_name(HPCN_TAG__COUNT));
	assert_null(hpcn_tag_name((enum hpcn_tag)-1));
	assert_int_equal(hpcn_tag_from_name("namespacerequest"), HPCN_TAG_UNKNOWN);
	assert_int_equal(hpcn_tag_from_name(""), HPCN_TAG_UNKNOWN);
	assert_int_equal(hpcn_tag_from_name(NULL), HPCN_TAG_UNKNOWN);
	assert_string_equal(hpcn_tag_name(HPCN_TAG_NAMESPACE_REQUEST), "NamespaceRequest");

	hpcn_msg_init(&m, HPCN_TAG_ATTACH);
	assert_int_equal(m.version, HPCN_PROTOCOL_VERSION);
	assert_int_equal(m.u.attach.pid, -1);
	assert_int_equal(m.u.attach.pidfd_index, -1);
	hpcn_msg_init(&m, HPCN_TAG_CGROUP_METRICS);
	assert_true(m.u.metrics.io_pressure_avg10 < 0);
	hpcn_msg_free(&m);
	hpcn_msg_free(&m); /* idempotent on a freed message */
	hpcn_msg_free(NULL);

	memset(&r, 0, sizeof(r));
	r.allocation_id = strdup("a");
	r.mounts[3].image_path = strdup("/x");
	r.group = strdup("g");
	hpcn_namespace_request_free(&r);
	assert_null(r.allocation_id);
	assert_int_equal(r.base_mount_ns_fd_index, -1);
	assert_int_equal(r.mounts[3].image_fd_index, -1);
	hpcn_namespace_request_free(NULL);
	hpcn_namespace_response_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_vectors),
		cmocka_unit_test(test_invalid_vectors),
		cmocka_unit_test(test_crate_example_exact),
		cmocka_unit_test(test_decode_crate_example),
		cmocka_unit_test(test_roundtrip_namespace_request),
		cmocka_unit_test(test_roundtrip_namespace_response),
		cmocka_unit_test(test_roundtrip_allocation_ended),
		cmocka_unit_test(test_roundtrip_small_tags),
		cmocka_unit_test(test_encode_refusals),
		cmocka_unit_test(test_encode_refusals_semantic),
		cmocka_unit_test(test_decode_bounds),
		cmocka_unit_test(test_error_from_to),
		cmocka_unit_test(test_tag_names_and_init),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

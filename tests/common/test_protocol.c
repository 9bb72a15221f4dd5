/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocol codec: golden vectors (every file of tests/vectors is a
 * case, so a new file is tested without touching this code), serde's exact
 * shape, decoding details the vectors do not show, Error messages, tag names.
 * The round trips of every tag are in test_protocol_roundtrip.c, the
 * encoder's refusals in test_protocol_refusals.c.
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

#include "protocol_util.h"

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
		cmocka_unit_test(test_decode_bounds),
		cmocka_unit_test(test_error_from_to),
		cmocka_unit_test(test_tag_names_and_init),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-nodectl's output formatting: the exact lines an administrator reads for
 * a typical, an empty and a malformed Status; Reconcile; --json; metrics;
 * units; exit status. The command line is in test_ctl_args.c.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <hpcnode/hpcnode.h>

#include "ctl/ctl_format.h"

#include "ctl_test_util.h"

typedef int (*format_fn)(FILE *, const char *, struct hpcn_error *);

/* Format json with fn and compare the whole output. */
static void expect_format(format_fn fn, const char *json, const char *expected)
{
	struct capture c;
	struct hpcn_error err;

	cap_open(&c);
	hpcn_error_clear(&err);
	assert_int_equal(fn(c.f, json, &err), 0);
	assert_string_equal(cap_text(&c), expected);
	cap_free(&c);
}

/* Expect a Malformed error whose message contains needle, and no output. */
static void expect_malformed(format_fn fn, const char *json, const char *needle)
{
	struct capture c;
	struct hpcn_error err;

	cap_open(&c);
	hpcn_error_clear(&err);
	assert_int_equal(fn(c.f, json, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_MALFORMED);
	if (!strstr(err.message, needle))
		fail_msg("error '%s' does not contain '%s'", err.message, needle);
	assert_string_equal(cap_text(&c), "");
	cap_free(&c);
}

/* ---- Status ---- */

static const char typical_status[] =
	"{\"software\":\"hpc-node-helper 0.1.0\",\"contract\":\"2026.1.28\",\"pid\":123,"
	"\"ready\":true,\"uptime_secs\":3723,"
	"\"cgroup\":{\"root\":\"/sys/fs/cgroup/unified\",\"controllers\":[\"hugetlb\"],"
	"\"enabled\":true,\"warnings\":[\"memory controller absent: limits not applied\"]},"
	"\"allocations\":[{\"allocation_id\":\"12.0\",\"group\":\"12\",\"uid\":1000,\"gid\":1000,"
	"\"created_at\":\"2026-11-26T06:00:00Z\",\"state\":\"active\","
	"\"scope\":\"workload.slice/12.slice/12.0.scope\",\"zombie\":false,"
	"\"namespaces\":[\"Mount\",\"Pid\"],\"pid_holder\":4242,"
	"\"mounts\":[{\"image_path\":\"/images/a.sqfs\",\"mount_point\":\"/user-environment\","
	"\"key\":\"k1\"},{\"image_path\":\"/images/t.sqfs\",\"mount_point\":\"/user-tools\","
	"\"key\":\"k2\"}],\"client_connected\":true,\"nr_processes\":3}],"
	"\"mounts\":[{\"key\":\"k1\",\"image_path\":\"/images/a.sqfs\","
	"\"mount_point\":\"/run/pact/uenv/k1\",\"refcount\":2,\"hold_remaining_secs\":null,"
	"\"loop_device\":\"/dev/loop3\",\"users\":[\"12.0\",\"13.0\"]},"
	"{\"key\":\"k3\",\"image_path\":\"/images/old.sqfs\",\"mount_point\":\"/run/pact/uenv/k3\","
	"\"refcount\":0,\"hold_remaining_secs\":45,\"loop_device\":\"/dev/loop4\",\"users\":[]}],"
	"\"zombies\":[{\"path\":\"workload.slice/9.slice/9.0.scope\","
	"\"since\":\"2026-11-26T05:00:00Z\"}],"
	"\"counters\":{\"requests\":10,\"errors\":1,\"denied\":0}}";

static const char typical_expected[] =
	"Helper:       hpc-node-helper 0.1.0\n"
	"Contract:     2026.1.28\n"
	"PID:          123\n"
	"Ready:        yes\n"
	"Uptime:       1h 2m 3s\n"
	"Cgroup root:  /sys/fs/cgroup/unified (enabled)\n"
	"Controllers:  hugetlb\n"
	"Warning:      memory controller absent: limits not applied\n"
	"Requests:     10 (errors 1, denied 0)\n"
	"\n"
	"Allocations: 1\n"
	"  12.0\n"
	"    group:       12\n"
	"    user:        uid 1000, gid 1000\n"
	"    created:     2026-11-26T06:00:00Z\n"
	"    state:       active\n"
	"    scope:       workload.slice/12.slice/12.0.scope\n"
	"    zombie:      no\n"
	"    namespaces:  Mount, Pid\n"
	"    ns holder:   4242\n"
	"    mounts:      /images/a.sqfs on /user-environment\n"
	"                 /images/t.sqfs on /user-tools\n"
	"    processes:   3\n"
	"    client:      connected\n"
	"\n"
	"Mounts: 2\n"
	"  k1\n"
	"    image:       /images/a.sqfs\n"
	"    mount point: /run/pact/uenv/k1\n"
	"    refcount:    2\n"
	"    hold timer:  -\n"
	"    loop device: /dev/loop3\n"
	"    users:       12.0, 13.0\n"
	"  k3\n"
	"    image:       /images/old.sqfs\n"
	"    mount point: /run/pact/uenv/k3\n"
	"    refcount:    0\n"
	"    hold timer:  45s remaining\n"
	"    loop device: /dev/loop4\n"
	"    users:       none\n"
	"\n"
	"Zombies: 1\n"
	"  workload.slice/9.slice/9.0.scope (since 2026-11-26T05:00:00Z)\n";

static void test_status_typical(void **state)
{
	expect_format(hpcn_ctl_format_status, typical_status, typical_expected);
}

/* An empty object: every field "-", every list "-" (absent, not empty). */
static const char empty_expected[] =
	"Helper:       -\n"
	"Contract:     -\n"
	"PID:          -\n"
	"Ready:        -\n"
	"Uptime:       -\n"
	"Cgroup root:  -\n"
	"Controllers:  -\n"
	"Requests:     - (errors -, denied -)\n"
	"\n"
	"Allocations: -\n"
	"\n"
	"Mounts: -\n"
	"\n"
	"Zombies: -\n";

static void test_status_empty(void **state)
{
	expect_format(hpcn_ctl_format_status, "{}", empty_expected);
	/* Whitespace around the object is JSON too. */
	expect_format(hpcn_ctl_format_status, " \n{ }\n", empty_expected);
}

/* A helper that is up but idle: empty lists say "none". */
static void test_status_idle(void **state)
{
	expect_format(hpcn_ctl_format_status,
		      "{\"software\":\"hpc-node-helper 0.1.0\",\"ready\":false,\"uptime_secs\":0,"
		      "\"cgroup\":{\"root\":\"/sys/fs/cgroup\",\"controllers\":[],"
		      "\"enabled\":false,\"warnings\":[]},"
		      "\"allocations\":[],\"mounts\":[],\"zombies\":[],"
		      "\"counters\":{\"requests\":0,\"errors\":0,\"denied\":0}}",
		      "Helper:       hpc-node-helper 0.1.0\n"
		      "Contract:     -\n"
		      "PID:          -\n"
		      "Ready:        no\n"
		      "Uptime:       0s\n"
		      "Cgroup root:  /sys/fs/cgroup (disabled)\n"
		      "Controllers:  none\n"
		      "Requests:     0 (errors 0, denied 0)\n"
		      "\n"
		      "Allocations: none\n"
		      "\n"
		      "Mounts: none\n"
		      "\n"
		      "Zombies: none\n");
}

/* Every field of an unexpected type: printed as what it is or "-", entries
 * that are not objects skipped with a note, never a crash. */
static void test_status_partial(void **state)
{
	expect_format(hpcn_ctl_format_status,
		      "{\"software\":5,\"contract\":null,\"pid\":\"123\",\"ready\":\"maybe\","
		      "\"uptime_secs\":-4,\"cgroup\":[1],\"allocations\":{\"12.0\":1},"
		      "\"mounts\":[1,\"a\",null,{},{\"key\":\"k\",\"refcount\":1.5,"
		      "\"hold_remaining_secs\":\"soon\",\"users\":[[1],{\"a\":1}]}],"
		      "\"zombies\":[{\"path\":{\"a\":1}},7],"
		      "\"counters\":\"x\",\"warnings\":[\"top-level warning\",3],"
		      "\"extra\":{\"ignored\":true}}",
		      "Helper:       5\n"
		      "Contract:     -\n"
		      "PID:          123\n"
		      "Ready:        maybe\n"
		      "Uptime:       -4\n"
		      "Cgroup root:  -\n"
		      "Controllers:  -\n"
		      "Warning:      top-level warning\n"
		      "Warning:      3\n"
		      "Requests:     - (errors -, denied -)\n"
		      "\n"
		      "Allocations: -\n"
		      "\n"
		      "Mounts: 5\n"
		      "  (malformed entry skipped)\n"
		      "  (malformed entry skipped)\n"
		      "  (malformed entry skipped)\n"
		      "  -\n"
		      "    image:       -\n"
		      "    mount point: -\n"
		      "    refcount:    -\n"
		      "    hold timer:  -\n"
		      "    loop device: -\n"
		      "    users:       -\n"
		      "  k\n"
		      "    image:       -\n"
		      "    mount point: -\n"
		      "    refcount:    1.5\n"
		      "    hold timer:  soon\n"
		      "    loop device: -\n"
		      "    users:       1, {\"a\":1}\n"
		      "\n"
		      "Zombies: 2\n"
		      "  {\"a\":1} (since -)\n"
		      "  (malformed entry skipped)\n");
}

/* An allocation with nothing but its id, and one with odd mounts. */
static void test_status_partial_allocation(void **state)
{
	expect_format(hpcn_ctl_format_status,
		      "{\"allocations\":[{\"allocation_id\":\"7\"},"
		      "{\"allocation_id\":\"8\",\"mounts\":[\"/x.sqfs\",{}],\"zombie\":true,"
		      "\"client_connected\":false,\"namespaces\":[]},[]]}",
		      "Helper:       -\n"
		      "Contract:     -\n"
		      "PID:          -\n"
		      "Ready:        -\n"
		      "Uptime:       -\n"
		      "Cgroup root:  -\n"
		      "Controllers:  -\n"
		      "Requests:     - (errors -, denied -)\n"
		      "\n"
		      "Allocations: 3\n"
		      "  7\n"
		      "    group:       -\n"
		      "    user:        uid -, gid -\n"
		      "    created:     -\n"
		      "    state:       -\n"
		      "    scope:       -\n"
		      "    zombie:      -\n"
		      "    namespaces:  -\n"
		      "    ns holder:   -\n"
		      "    mounts:      -\n"
		      "    processes:   -\n"
		      "    client:      -\n"
		      "  8\n"
		      "    group:       -\n"
		      "    user:        uid -, gid -\n"
		      "    created:     -\n"
		      "    state:       -\n"
		      "    scope:       -\n"
		      "    zombie:      yes\n"
		      "    namespaces:  none\n"
		      "    ns holder:   -\n"
		      "    mounts:      /x.sqfs\n"
		      "                 - on -\n"
		      "    processes:   -\n"
		      "    client:      not connected\n"
		      "  (malformed entry skipped)\n"
		      "\n"
		      "Mounts: -\n"
		      "\n"
		      "Zombies: -\n");
}

/* User-chosen strings (image paths) cannot drive the terminal. */
static void test_status_control_chars(void **state)
{
	struct capture c;
	struct hpcn_error err;
	const char *text;

	cap_open(&c);
	assert_int_equal(hpcn_ctl_format_status(c.f,
		"{\"software\":\"a\\u001b[2Jb\\nc\\u007fd\\u009be\\u00e9\"}", &err), 0);
	text = cap_text(&c);
	assert_non_null(strstr(text, "Helper:       a?[2Jb?c?d?e\xc3\xa9\n"));
	assert_null(strchr(text, '\x1b'));
	cap_free(&c);
}

static void test_status_malformed(void **state)
{
	expect_malformed(hpcn_ctl_format_status, NULL, "status body: no body");
	expect_malformed(hpcn_ctl_format_status, "", "status body: ");
	expect_malformed(hpcn_ctl_format_status, "not json", "status body: ");
	expect_malformed(hpcn_ctl_format_status, "{\"a\":", "status body: ");
	expect_malformed(hpcn_ctl_format_status, "[1,2]", "status body: not a JSON object");
	expect_malformed(hpcn_ctl_format_status, "\"ready\"", "status body: not a JSON object");
	expect_malformed(hpcn_ctl_format_status, "null", "status body: not a JSON object");
	expect_malformed(hpcn_ctl_format_status, "{} {}", "status body: ");
}

/* The protocol's golden Status vector, decoded by the real codec: its keys
 * are an example, not ours, and still print without failing. */
static void decode_vector(const char *name, struct hpcn_msg *m)
{
	char path[512], buf[8192];
	struct hpcn_error err;
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "%s/valid/%s", HPCN_VECTORS_DIR, name);
	fp = fopen(path, "re");
	if (!fp)
		fail_msg("%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	while (n && buf[n - 1] == '\n')
		n--;
	if (hpcn_msg_decode(buf, n, m, &err) < 0)
		fail_msg("%s: %s", path, err.message);
}

static void test_status_vector(void **state)
{
	struct hpcn_msg m;

	decode_vector("status.json", &m);
	assert_int_equal(m.tag, HPCN_TAG_STATUS);
	expect_format(hpcn_ctl_format_status, m.u.json,
		      "Helper:       -\n"
		      "Contract:     -\n"
		      "PID:          -\n"
		      "Ready:        yes\n"
		      "Uptime:       12s\n"
		      "Cgroup root:  -\n"
		      "Controllers:  -\n"
		      "Requests:     - (errors -, denied -)\n"
		      "\n"
		      "Allocations: 1\n"
		      "  alloc-42\n"
		      "    group:       1234\n"
		      "    user:        uid -, gid -\n"
		      "    created:     -\n"
		      "    state:       -\n"
		      "    scope:       -\n"
		      "    zombie:      -\n"
		      "    namespaces:  -\n"
		      "    ns holder:   -\n"
		      "    mounts:      -\n"
		      "    processes:   -\n"
		      "    client:      -\n"
		      "\n"
		      "Mounts: 1\n"
		      "  -\n"
		      "    image:       /x.sqfs\n"
		      "    mount point: -\n"
		      "    refcount:    1\n"
		      "    hold timer:  -\n"
		      "    loop device: -\n"
		      "    users:       -\n"
		      "\n"
		      "Zombies: -\n");
	hpcn_msg_free(&m);
}

/* ---- Reconcile ---- */

static void test_reconcile(void **state)
{
	expect_format(hpcn_ctl_format_reconcile,
		      "{\"corrections\":[\"refcount of /images/a.sqfs: 3 -> 2\","
		      "{\"allocation_id\":\"9.0\",\"action\":\"zombie\"},{}],"
		      "\"orphans_removed\":2,\"scanned\":[\"mounts\",\"scopes\"]}",
		      "Corrections: 3\n"
		      "  - refcount of /images/a.sqfs: 3 -> 2\n"
		      "  - allocation_id=9.0 action=zombie\n"
		      "  - -\n"
		      "orphans_removed: 2\n"
		      "scanned: mounts, scopes\n");
	expect_format(hpcn_ctl_format_reconcile, "{\"corrections\":[]}",
		      "Corrections: none\n");
	expect_format(hpcn_ctl_format_reconcile, "{}", "Corrections:  -\n");
	/* A Status-like report: the corrections, then the status sections. */
	expect_format(hpcn_ctl_format_reconcile,
		      "{\"corrections\":[],\"allocations\":[],\"mounts\":[],\"zombies\":[]}",
		      "Corrections: none\n"
		      "\n"
		      "Helper:       -\n"
		      "Contract:     -\n"
		      "PID:          -\n"
		      "Ready:        -\n"
		      "Uptime:       -\n"
		      "Cgroup root:  -\n"
		      "Controllers:  -\n"
		      "Requests:     - (errors -, denied -)\n"
		      "\n"
		      "Allocations: none\n"
		      "\n"
		      "Mounts: none\n"
		      "\n"
		      "Zombies: none\n");
	expect_malformed(hpcn_ctl_format_reconcile, "[]", "reconcile report: not a JSON object");
	expect_malformed(hpcn_ctl_format_reconcile, "{", "reconcile report: ");
}

/* ---- --json ---- */

static void test_json_passthrough(void **state)
{
	/* Unchanged: same keys, same order, same values; only indented. */
	expect_format(hpcn_ctl_format_json,
		      "{\"software\":\"x\",\"ready\":true,\"zombies\":[],"
		      "\"cgroup\":{\"root\":\"/r\",\"controllers\":[\"hugetlb\"]},\"a\":null}",
		      "{\n"
		      "  \"software\": \"x\",\n"
		      "  \"ready\": true,\n"
		      "  \"zombies\": [],\n"
		      "  \"cgroup\": {\n"
		      "    \"root\": \"/r\",\n"
		      "    \"controllers\": [\n"
		      "      \"hugetlb\"\n"
		      "    ]\n"
		      "  },\n"
		      "  \"a\": null\n"
		      "}\n");
	expect_malformed(hpcn_ctl_format_json, "{\"a\":", "body: ");
	expect_malformed(hpcn_ctl_format_json, NULL, "no body");
}

/* ---- metrics ---- */

static struct hpcn_cgroup_metrics sample_metrics(void)
{
	struct hpcn_cgroup_metrics m = {
		.memory_current = 1610612736,
		.memory_max = { .set = true, .value = 4294967296ULL },
		.cpu_usage_usec = 12345678,
		.nr_processes = 3,
		.cpu_pressure_avg10 = 0.12,
		.memory_pressure_avg10 = -1,
		.io_pressure_avg10 = 1.5,
	};
	return m;
}

static void test_metrics_human(void **state)
{
	struct hpcn_cgroup_metrics m = sample_metrics();
	struct capture c;

	cap_open(&c);
	hpcn_ctl_format_metrics(c.f, "12.0", &m);
	assert_string_equal(cap_text(&c),
			    "Cgroup:         12.0\n"
			    "Memory current: 1.5 GiB (1610612736 bytes)\n"
			    "Memory max:     4.0 GiB (4294967296 bytes)\n"
			    "CPU usage:      12.345 s (12345678 usec)\n"
			    "Processes:      3\n"
			    "Pressure:       cpu 0.12%, io 1.50% (some, avg10)\n");
	cap_free(&c);

	/* No limit, no PSI (the hybrid machines' v2 has neither). */
	m.memory_max.set = false;
	m.cpu_pressure_avg10 = -1;
	m.io_pressure_avg10 = NAN;
	m.memory_current = 0;
	m.cpu_usage_usec = 999;
	m.nr_processes = 0;
	cap_open(&c);
	hpcn_ctl_format_metrics(c.f, "workload.slice/12.slice", &m);
	assert_string_equal(cap_text(&c),
			    "Cgroup:         workload.slice/12.slice\n"
			    "Memory current: 0 B (0 bytes)\n"
			    "Memory max:     max (no limit)\n"
			    "CPU usage:      0.000 s (999 usec)\n"
			    "Processes:      0\n");
	cap_free(&c);
}

/* The golden CgroupMetrics vectors through the real decoder. */
static void test_metrics_vectors(void **state)
{
	struct hpcn_msg m;
	struct capture c;

	decode_vector("cgroup_metrics-ext_pressure.json", &m);
	assert_int_equal(m.tag, HPCN_TAG_CGROUP_METRICS);
	cap_open(&c);
	hpcn_ctl_format_metrics(c.f, "workload.slice", &m.u.metrics);
	assert_string_equal(cap_text(&c),
			    "Cgroup:         workload.slice\n"
			    "Memory current: 0 B (0 bytes)\n"
			    "Memory max:     1.0 GiB (1073741824 bytes)\n"
			    "CPU usage:      0.000 s (0 usec)\n"
			    "Processes:      0\n"
			    "Pressure:       cpu 0.52%, memory 0.00%, io 12.50% (some, avg10)\n");
	cap_free(&c);
	hpcn_msg_free(&m);

	decode_vector("cgroup_metrics.json", &m);
	cap_open(&c);
	hpcn_ctl_format_metrics(c.f, "12.0", &m.u.metrics);
	assert_string_equal(cap_text(&c),
			    "Cgroup:         12.0\n"
			    "Memory current: 50.0 MiB (52428800 bytes)\n"
			    "Memory max:     max (no limit)\n"
			    "CPU usage:      123.456 s (123456789 usec)\n"
			    "Processes:      3\n");
	cap_free(&c);
	hpcn_msg_free(&m);
}

static void test_metrics_json(void **state)
{
	struct hpcn_cgroup_metrics m = sample_metrics();
	struct hpcn_error err;
	struct capture c;

	cap_open(&c);
	assert_int_equal(hpcn_ctl_format_metrics_json(c.f, &m, &err), 0);
	assert_string_equal(cap_text(&c),
			    "{\n"
			    "  \"memory_current\": 1610612736,\n"
			    "  \"memory_max\": 4294967296,\n"
			    "  \"cpu_usage_usec\": 12345678,\n"
			    "  \"nr_processes\": 3,\n"
			    "  \"cpu_pressure_avg10\": 0.12,\n"
			    "  \"io_pressure_avg10\": 1.50\n"
			    "}\n");
	cap_free(&c);

	/* u64 beyond jansson's signed integers; PSI infinity is absent. */
	m.memory_current = UINT64_MAX;
	m.memory_max.set = false;
	m.cpu_pressure_avg10 = INFINITY;
	m.io_pressure_avg10 = -1;
	cap_open(&c);
	assert_int_equal(hpcn_ctl_format_metrics_json(c.f, &m, &err), 0);
	assert_string_equal(cap_text(&c),
			    "{\n"
			    "  \"memory_current\": 18446744073709551615,\n"
			    "  \"memory_max\": null,\n"
			    "  \"cpu_usage_usec\": 12345678,\n"
			    "  \"nr_processes\": 3\n"
			    "}\n");
	cap_free(&c);
}

/* ---- units ---- */

static void test_human_size(void **state)
{
	static const struct {
		uint64_t bytes;
		const char *text;
	} cases[] = {
		{ 0, "0 B" },
		{ 1, "1 B" },
		{ 1023, "1023 B" },
		{ 1024, "1.0 KiB" },
		{ 1536, "1.5 KiB" },
		{ 10239, "10.0 KiB" },
		{ 1048524, "1023.9 KiB" },
		{ 1048575, "1.0 MiB" },
		{ 1048576, "1.0 MiB" },
		{ 1610612736, "1.5 GiB" },
		{ 4294967296ULL, "4.0 GiB" },
		{ 1099511627776ULL, "1.0 TiB" },
		{ 1125899906842624ULL, "1.0 PiB" },
		{ 1152921504606846976ULL, "1.0 EiB" },
		{ UINT64_MAX, "16.0 EiB" },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_ptr_equal(hpcn_ctl_human_size(cases[i].bytes, buf, sizeof(buf)), buf);
		if (strcmp(buf, cases[i].text))
			fail_msg("%llu bytes: got '%s', want '%s'",
				 (unsigned long long)cases[i].bytes, buf, cases[i].text);
	}
	/* A short buffer truncates, it does not overflow. */
	hpcn_ctl_human_size(1610612736, buf, 4);
	assert_string_equal(buf, "1.5");
}

static void test_human_duration(void **state)
{
	static const struct {
		uint64_t secs;
		const char *text;
	} cases[] = {
		{ 0, "0s" }, { 59, "59s" }, { 60, "1m 0s" }, { 300, "5m 0s" },
		{ 3599, "59m 59s" }, { 3600, "1h 0m 0s" }, { 3723, "1h 2m 3s" },
		{ 86399, "23h 59m 59s" }, { 86400, "1d 0h 0m 0s" }, { 172801, "2d 0h 0m 1s" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hpcn_ctl_human_duration(cases[i].secs, buf, sizeof(buf));
		if (strcmp(buf, cases[i].text))
			fail_msg("%llu s: got '%s', want '%s'",
				 (unsigned long long)cases[i].secs, buf, cases[i].text);
	}
}

/* ---- exit status ---- */

static void test_exit_codes(void **state)
{
	struct hpcn_error e;

	/* connecting: a missing socket or a refused connection is unreachable,
	 * a socket whose mode keeps us out is permission denied */
	hpcn_error_set_errno(&e, HPCN_E_NS_SOCKET_UNAVAILABLE, ENOENT, "/x", "connect");
	assert_int_equal(hpcn_ctl_exit_code(&e, true), 3);
	hpcn_error_set_errno(&e, HPCN_E_NS_SOCKET_UNAVAILABLE, ECONNREFUSED, "/x", "connect");
	assert_int_equal(hpcn_ctl_exit_code(&e, true), 3);
	hpcn_error_set_errno(&e, HPCN_E_NS_SOCKET_UNAVAILABLE, ETIMEDOUT, "/x", "connect");
	assert_int_equal(hpcn_ctl_exit_code(&e, true), 3);
	hpcn_error_set_errno(&e, HPCN_E_NS_SOCKET_UNAVAILABLE, EACCES, "/x", "connect");
	assert_int_equal(hpcn_ctl_exit_code(&e, true), 4);

	/* the helper's own answers (no errno on the wire) */
	hpcn_error_set_raw(&e, HPCN_E_DENIED, "denied: uid 1000 is not an administrator");
	assert_int_equal(hpcn_ctl_exit_code(&e, false), 4);
	hpcn_error_set(&e, HPCN_E_CGROUP_PERMISSION_DENIED, "pact.slice", "Pact");
	assert_int_equal(hpcn_ctl_exit_code(&e, false), 4);
	hpcn_error_set(&e, HPCN_E_NS_ALLOCATION_NOT_FOUND, "12.0", NULL);
	assert_int_equal(hpcn_ctl_exit_code(&e, false), 1);
	hpcn_error_set(&e, HPCN_E_CGROUP_NOT_FOUND, "workload.slice/x", NULL);
	assert_int_equal(hpcn_ctl_exit_code(&e, false), 1);
	hpcn_error_set(&e, HPCN_E_BUSY, "image in use", NULL);
	assert_int_equal(hpcn_ctl_exit_code(&e, false), 1);
	hpcn_error_set(&e, HPCN_E_PROTO_MALFORMED, "bad", NULL);
	assert_int_equal(hpcn_ctl_exit_code(&e, false), 1);

	/* the exchange failing after connect: unreachable */
	hpcn_error_set_errno(&e, HPCN_E_NS_FD_PASSING, ETIMEDOUT, NULL, "waiting for a reply");
	assert_int_equal(hpcn_ctl_exit_code(&e, false), 3);
	hpcn_error_set_errno(&e, HPCN_E_NS_FD_PASSING, ECONNRESET, NULL, "recvmsg");
	assert_int_equal(hpcn_ctl_exit_code(&e, false), 3);
	hpcn_error_set_errno(&e, HPCN_E_NS_FD_PASSING, EPIPE, NULL, "sendmsg");
	assert_int_equal(hpcn_ctl_exit_code(&e, false), 3);
	hpcn_error_set(&e, HPCN_E_NS_SOCKET_UNAVAILABLE, "helper closed the connection", NULL);
	assert_int_equal(hpcn_ctl_exit_code(&e, false), 3);

	hpcn_error_clear(&e);
	assert_int_equal(hpcn_ctl_exit_code(&e, false), 1);
	assert_int_equal(hpcn_ctl_exit_code(NULL, false), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_typical),
		cmocka_unit_test(test_status_empty),
		cmocka_unit_test(test_status_idle),
		cmocka_unit_test(test_status_partial),
		cmocka_unit_test(test_status_partial_allocation),
		cmocka_unit_test(test_status_control_chars),
		cmocka_unit_test(test_status_malformed),
		cmocka_unit_test(test_status_vector),
		cmocka_unit_test(test_reconcile),
		cmocka_unit_test(test_json_passthrough),
		cmocka_unit_test(test_metrics_human),
		cmocka_unit_test(test_metrics_vectors),
		cmocka_unit_test(test_metrics_json),
		cmocka_unit_test(test_human_size),
		cmocka_unit_test(test_human_duration),
		cmocka_unit_test(test_exit_codes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How hpc-nodectl shows the helper's answers. The Status body is read
 * defensively: the helper evolves faster than the tool, and an admin who
 * runs `hpc-nodectl status` on a sick node needs whatever is there rather
 * than a parse failure. Strings are printed with control characters
 * replaced, because image paths and ids come from users and end up on the
 * administrator's terminal.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <hpcnode/error.h>

#include "ctl_format.h"

#define LABEL_W 14 /* top-level "Label:" column */
#define ITEM_W 13  /* "    label:" column inside an allocation or mount */

/* ---- exit status ---- */

enum hpcn_ctl_exit hpcn_ctl_exit_code(const struct hpcn_error *err, bool connecting)
{
	if (!err || err->kind == HPCN_E_NONE)
		return HPCN_CTL_EXIT_ERROR;
	if (connecting)
		return err->sys_errno == EACCES || err->sys_errno == EPERM ?
			HPCN_CTL_EXIT_DENIED : HPCN_CTL_EXIT_UNREACHABLE;
	switch (err->kind) {
	case HPCN_E_DENIED:
	case HPCN_E_CGROUP_PERMISSION_DENIED:
		return HPCN_CTL_EXIT_DENIED;
	case HPCN_E_NS_SOCKET_UNAVAILABLE:
		return HPCN_CTL_EXIT_UNREACHABLE;
	default:
		break;
	}
	/* Errors the helper sends carry no errno: one here was local, i.e. the
	 * exchange itself failed. */
	switch (err->sys_errno) {
	case ETIMEDOUT:
	case EAGAIN:
	case ECONNREFUSED:
	case ECONNRESET:
	case EPIPE:
	case ENOENT:
	case ENOTCONN:
		return HPCN_CTL_EXIT_UNREACHABLE;
	default:
		return HPCN_CTL_EXIT_ERROR;
	}
}

/* ---- units ---- */

const char *hpcn_ctl_human_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	const size_t last = sizeof(units) / sizeof(units[0]) - 1;
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	while (v >= 1024.0 && u < last) {
		v /= 1024.0;
		u++;
	}
	/* 1048575 bytes is "1.0 MiB", not "1024.0 KiB". */
	if (v >= 1023.95 && u < last) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

const char *hpcn_ctl_human_duration(uint64_t secs, char *buf, size_t len)
{
	uint64_t d = secs / 86400, h = secs / 3600 % 24, m = secs / 60 % 60, s = secs % 60;

	if (d)
		snprintf(buf, len, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "m %" PRIu64 "s",
			 d, h, m, s);
	else if (h)
		snprintf(buf, len, "%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s", h, m, s);
	else if (m)
		snprintf(buf, len, "%" PRIu64 "m %" PRIu64 "s", m, s);
	else
		snprintf(buf, len, "%" PRIu64 "s", s);
	return buf;
}

/* ---- printing JSON values defensively ---- */

/* Control characters (C0, DEL, and C1 as UTF-8 C2 80..C2 9F) become '?':
 * an image path must not be able to drive the administrator's terminal. */
static void put_str(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			fputc('?', out);
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			fputc('?', out);
			p++;
		} else {
			fputc(*p, out);
		}
	}
}

static json_t *get(const json_t *obj, const char *key)
{
	return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

static void put_val(FILE *out, const json_t *v);

/* Scalars as text, arrays of them joined with ", ", anything else as
 * compact JSON. Missing, null and "" are "-". */
static void put_val(FILE *out, const json_t *v)
{
	char *dump;

	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_STRING:
		if (!json_string_value(v)[0])
			fputc('-', out);
		else
			put_str(out, json_string_value(v));
		break;
	case JSON_INTEGER:
		fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		fprintf(out, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
		fputs("yes", out);
		break;
	case JSON_FALSE:
		fputs("no", out);
		break;
	case JSON_ARRAY:
		if (json_array_size(v) == 0) {
			fputs("none", out);
			break;
		}
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				fputs(", ", out);
			put_val(out, json_array_get(v, i));
		}
		break;
	case JSON_OBJECT:
		dump = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
		put_str(out, dump ? dump : "-");
		free(dump);
		break;
	default:
		fputc('-', out);
		break;
	}
}

static void line(FILE *out, int width, const char *indent, const char *label, const json_t *v)
{
	fprintf(out, "%s%-*s", indent, width, label);
	put_val(out, v);
	fputc('\n', out);
}

/* A label and a value for a top-level line. */
static void top(FILE *out, const char *label, const json_t *v)
{
	line(out, LABEL_W, "", label, v);
}

static void item(FILE *out, const char *label, const json_t *v)
{
	line(out, ITEM_W, "    ", label, v);
}

/* "Allocations: 2" / "Allocations: none" / "Allocations: -" and whether
 * entries follow. */
static const json_t *section(FILE *out, const json_t *root, const char *key, const char *title)
{
	const json_t *arr = get(root, key);

	if (!json_is_array(arr)) {
		fprintf(out, "%s: -\n", title);
		return NULL;
	}
	if (json_array_size(arr) == 0) {
		fprintf(out, "%s: none\n", title);
		return NULL;
	}
	fprintf(out, "%s: %zu\n", title, json_array_size(arr));
	return arr;
}

/* The entry's heading: its id, or "-" when it has none. */
static bool entry_head(FILE *out, const json_t *e, const char *key)
{
	if (!json_is_object(e)) {
		fputs("  (malformed entry skipped)\n", out);
		return false;
	}
	fputs("  ", out);
	put_val(out, get(e, key));
	fputc('\n', out);
	return true;
}

/* ---- Status ---- */

static void status_header(FILE *out, const json_t *root)
{
	const json_t *cg = get(root, "cgroup"), *counters = get(root, "counters");
	const json_t *v, *en;
	char buf[64];

	top(out, "Helper:", get(root, "software"));
	top(out, "Contract:", get(root, "contract"));
	top(out, "PID:", get(root, "pid"));
	top(out, "Ready:", get(root, "ready"));

	v = get(root, "uptime_secs");
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		fprintf(out, "%-*s%s\n", LABEL_W, "Uptime:",
			hpcn_ctl_human_duration((uint64_t)json_integer_value(v), buf, sizeof(buf)));
	} else {
		top(out, "Uptime:", v);
	}

	fprintf(out, "%-*s", LABEL_W, "Cgroup root:");
	put_val(out, get(cg, "root"));
	en = get(cg, "enabled");
	if (json_is_boolean(en))
		fputs(json_is_true(en) ? " (enabled)" : " (disabled)", out);
	fputc('\n', out);
	top(out, "Controllers:", get(cg, "controllers"));

	for (int k = 0; k < 2; k++) {
		const json_t *w = get(k ? root : cg, "warnings");

		if (!json_is_array(w))
			continue;
		for (size_t i = 0; i < json_array_size(w); i++)
			top(out, "Warning:", json_array_get(w, i));
	}

	fprintf(out, "%-*s", LABEL_W, "Requests:");
	put_val(out, get(counters, "requests"));
	fputs(" (errors ", out);
	put_val(out, get(counters, "errors"));
	fputs(", denied ", out);
	put_val(out, get(counters, "denied"));
	fputs(")\n", out);
}

static void alloc_mounts(FILE *out, const json_t *mounts)
{
	if (!json_is_array(mounts) || json_array_size(mounts) == 0) {
		item(out, "mounts:", mounts);
		return;
	}
	for (size_t i = 0; i < json_array_size(mounts); i++) {
		const json_t *m = json_array_get(mounts, i);

		fprintf(out, "    %-*s", ITEM_W, i ? "" : "mounts:");
		if (json_is_object(m)) {
			put_val(out, get(m, "image_path"));
			fputs(" on ", out);
			put_val(out, get(m, "mount_point"));
		} else {
			put_val(out, m);
		}
		fputc('\n', out);
	}
}

static void status_allocations(FILE *out, const json_t *root)
{
	const json_t *arr = section(out, root, "allocations", "Allocations");

	for (size_t i = 0; arr && i < json_array_size(arr); i++) {
		const json_t *a = json_array_get(arr, i), *c;

		if (!entry_head(out, a, "allocation_id"))
			continue;
		item(out, "group:", get(a, "group"));
		fprintf(out, "    %-*suid ", ITEM_W, "user:");
		put_val(out, get(a, "uid"));
		fputs(", gid ", out);
		put_val(out, get(a, "gid"));
		fputc('\n', out);
		item(out, "created:", get(a, "created_at"));
		item(out, "state:", get(a, "state"));
		item(out, "scope:", get(a, "scope"));
		item(out, "zombie:", get(a, "zombie"));
		item(out, "namespaces:", get(a, "namespaces"));
		item(out, "ns holder:", get(a, "pid_holder"));
		alloc_mounts(out, get(a, "mounts"));
		item(out, "processes:", get(a, "nr_processes"));
		c = get(a, "client_connected");
		if (json_is_boolean(c))
			fprintf(out, "    %-*s%s\n", ITEM_W, "client:",
				json_is_true(c) ? "connected" : "not connected");
		else
			item(out, "client:", c);
	}
}

static void status_mounts(FILE *out, const json_t *root)
{
	const json_t *arr = section(out, root, "mounts", "Mounts");
	char buf[64];

	for (size_t i = 0; arr && i < json_array_size(arr); i++) {
		const json_t *m = json_array_get(arr, i), *h;

		if (!entry_head(out, m, "key"))
			continue;
		item(out, "image:", get(m, "image_path"));
		item(out, "mount point:", get(m, "mount_point"));
		item(out, "refcount:", get(m, "refcount"));
		h = get(m, "hold_remaining_secs");
		if (json_is_integer(h) && json_integer_value(h) >= 0)
			fprintf(out, "    %-*s%s remaining\n", ITEM_W, "hold timer:",
				hpcn_ctl_human_duration((uint64_t)json_integer_value(h),
							buf, sizeof(buf)));
		else
			item(out, "hold timer:", h);
		item(out, "loop device:", get(m, "loop_device"));
		item(out, "users:", get(m, "users"));
	}
}

static void status_zombies(FILE *out, const json_t *root)
{
	const json_t *arr = section(out, root, "zombies", "Zombies");

	for (size_t i = 0; arr && i < json_array_size(arr); i++) {
		const json_t *z = json_array_get(arr, i);

		if (!json_is_object(z)) {
			fputs("  (malformed entry skipped)\n", out);
			continue;
		}
		fputs("  ", out);
		put_val(out, get(z, "path"));
		fputs(" (since ", out);
		put_val(out, get(z, "since"));
		fputs(")\n", out);
	}
}

static void status_body(FILE *out, const json_t *root)
{
	status_header(out, root);
	fputc('\n', out);
	status_allocations(out, root);
	fputc('\n', out);
	status_mounts(out, root);
	fputc('\n', out);
	status_zombies(out, root);
}

static json_t *load_object(const char *json_text, const char *what, struct hpcn_error *err)
{
	json_error_t jerr;
	json_t *root;

	if (!json_text) {
		hpcn_error_setf(err, HPCN_E_PROTO_MALFORMED, NULL, "%s: no body", what);
		return NULL;
	}
	root = json_loads(json_text, JSON_DECODE_ANY, &jerr);
	if (!root) {
		hpcn_error_setf(err, HPCN_E_PROTO_MALFORMED, NULL, "%s: %s at line %d column %d",
				what, jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		hpcn_error_setf(err, HPCN_E_PROTO_MALFORMED, NULL, "%s: not a JSON object", what);
		return NULL;
	}
	return root;
}

int hpcn_ctl_format_status(FILE *out, const char *json_text, struct hpcn_error *err)
{
	json_t *root = load_object(json_text, "status body", err);

	if (!root)
		return -1;
	status_body(out, root);
	json_decref(root);
	return 0;
}

/* ---- Reconcile ---- */

static bool is_status_key(const char *k)
{
	static const char *const keys[] = {
		"software", "contract", "pid", "ready", "uptime_secs", "cgroup",
		"allocations", "mounts", "zombies", "counters", "warnings",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(k, keys[i]))
			return true;
	return false;
}

/* One correction: a string as is, an object as "key=value key=value". */
static void put_correction(FILE *out, const json_t *c)
{
	const char *k;
	json_t *v;
	bool first = true;

	if (!json_is_object(c)) {
		put_val(out, c);
		return;
	}
	json_object_foreach((json_t *)c, k, v) {
		if (!first)
			fputc(' ', out);
		first = false;
		put_str(out, k);
		fputc('=', out);
		put_val(out, v);
	}
	if (first)
		fputc('-', out);
}

int hpcn_ctl_format_reconcile(FILE *out, const char *json_text, struct hpcn_error *err)
{
	json_t *root = load_object(json_text, "reconcile report", err);
	const json_t *corr;
	bool status_like = false;
	const char *k;
	json_t *v;

	if (!root)
		return -1;

	corr = get(root, "corrections");
	if (!json_is_array(corr)) {
		top(out, "Corrections:", corr);
	} else if (json_array_size(corr) == 0) {
		fputs("Corrections: none\n", out);
	} else {
		fprintf(out, "Corrections: %zu\n", json_array_size(corr));
		for (size_t i = 0; i < json_array_size(corr); i++) {
			fputs("  - ", out);
			put_correction(out, json_array_get(corr, i));
			fputc('\n', out);
		}
	}

	/* Whatever else the helper reports, so that nothing it says is lost. */
	json_object_foreach(root, k, v) {
		if (!strcmp(k, "corrections"))
			continue;
		if (is_status_key(k)) {
			status_like = true;
			continue;
		}
		put_str(out, k);
		fputs(": ", out);
		put_val(out, v);
		fputc('\n', out);
	}
	if (status_like) {
		fputc('\n', out);
		status_body(out, root);
	}
	json_decref(root);
	return 0;
}

/* ---- JSON passthrough ---- */

int hpcn_ctl_format_json(FILE *out, const char *json_text, struct hpcn_error *err)
{
	json_error_t jerr;
	json_t *root;
	int r;

	if (!json_text)
		return hpcn_error_setf(err, HPCN_E_PROTO_MALFORMED, NULL, "no body");
	root = json_loads(json_text, JSON_DECODE_ANY, &jerr);
	if (!root)
		return hpcn_error_setf(err, HPCN_E_PROTO_MALFORMED, NULL,
				       "body: %s at line %d column %d",
				       jerr.text, jerr.line, jerr.column);
	r = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	json_decref(root);
	if (r < 0)
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, EIO, NULL, "writing JSON");
	fputc('\n', out);
	return 0;
}

/* ---- CgroupMetrics ---- */

/* PSI fields are absent when negative; NaN and infinity are not numbers a
 * kernel writes, and JSON cannot carry them: absent too. */
static bool psi_present(double v)
{
	return isfinite(v) && v >= 0.0;
}

void hpcn_ctl_format_metrics(FILE *out, const char *what, const struct hpcn_cgroup_metrics *m)
{
	static const char *const names[] = { "cpu", "memory", "io" };
	const double psi[] = { m->cpu_pressure_avg10, m->memory_pressure_avg10,
			       m->io_pressure_avg10 };
	char buf[64];
	bool any = false;

	fprintf(out, "%-*s", LABEL_W + 2, "Cgroup:");
	put_str(out, what ? what : "-");
	fputc('\n', out);
	fprintf(out, "%-*s%s (%" PRIu64 " bytes)\n", LABEL_W + 2, "Memory current:",
		hpcn_ctl_human_size(m->memory_current, buf, sizeof(buf)), m->memory_current);
	if (m->memory_max.set)
		fprintf(out, "%-*s%s (%" PRIu64 " bytes)\n", LABEL_W + 2, "Memory max:",
			hpcn_ctl_human_size(m->memory_max.value, buf, sizeof(buf)),
			m->memory_max.value);
	else
		fprintf(out, "%-*s%s\n", LABEL_W + 2, "Memory max:", "max (no limit)");
	fprintf(out, "%-*s%" PRIu64 ".%03" PRIu64 " s (%" PRIu64 " usec)\n", LABEL_W + 2,
		"CPU usage:", m->cpu_usage_usec / 1000000,
		(m->cpu_usage_usec % 1000000) / 1000, m->cpu_usage_usec);
	fprintf(out, "%-*s%" PRIu32 "\n", LABEL_W + 2, "Processes:", m->nr_processes);

	for (size_t i = 0; i < 3; i++) {
		if (!psi_present(psi[i]))
			continue;
		if (!any)
			fprintf(out, "%-*s", LABEL_W + 2, "Pressure:");
		fprintf(out, "%s%s %.2f%%", any ? ", " : "", names[i], psi[i]);
		any = true;
	}
	if (any)
		fputs(" (some, avg10)\n", out);
}

int hpcn_ctl_format_metrics_json(FILE *out, const struct hpcn_cgroup_metrics *m,
				 struct hpcn_error *err)
{
	static const char *const names[] = {
		"cpu_pressure_avg10", "memory_pressure_avg10", "io_pressure_avg10",
	};
	const double psi[] = { m->cpu_pressure_avg10, m->memory_pressure_avg10,
			       m->io_pressure_avg10 };

	/* By hand: jansson's integers are signed and these are u64. */
	fprintf(out, "{\n  \"memory_current\": %" PRIu64 ",\n", m->memory_current);
	if (m->memory_max.set)
		fprintf(out, "  \"memory_max\": %" PRIu64 ",\n", m->memory_max.value);
	else
		fputs("  \"memory_max\": null,\n", out);
	fprintf(out, "  \"cpu_usage_usec\": %" PRIu64 ",\n", m->cpu_usage_usec);
	fprintf(out, "  \"nr_processes\": %" PRIu32, m->nr_processes);
	for (size_t i = 0; i < 3; i++)
		if (psi_present(psi[i]))
			fprintf(out, ",\n  \"%s\": %.2f", names[i], psi[i]);
	fputs("\n}\n", out);
	return 0;
}

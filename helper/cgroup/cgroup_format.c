/* SPDX-License-Identifier: Apache-2.0 */
/* The exact lines the kernel's cgroup v2 files take and give, as pure
 * functions so that each one is tested without a kernel. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"

static const struct {
	unsigned bit;
	const char *name;
} ctrl_names[] = {
	{ HPCN_CG_CTRL_MEMORY, "memory" },
	{ HPCN_CG_CTRL_CPU, "cpu" },
	{ HPCN_CG_CTRL_IO, "io" },
	{ HPCN_CG_CTRL_PIDS, "pids" },
};

const char *hpcn_cgroup_ctrl_name(unsigned ctrl)
{
	for (size_t i = 0; i < HPCN_ARRAY_SIZE(ctrl_names); i++)
		if (ctrl_names[i].bit == ctrl)
			return ctrl_names[i].name;
	return NULL;
}

unsigned hpcn_cgroup_parse_controllers(const char *text)
{
	unsigned mask = 0;
	const char *p = text;

	while (p && *p) {
		size_t n;

		p += strspn(p, " \t\n");
		if (*p == '+')
			p++;
		n = strcspn(p, " \t\n");
		for (size_t i = 0; i < HPCN_ARRAY_SIZE(ctrl_names); i++)
			if (strlen(ctrl_names[i].name) == n &&
			    strncmp(p, ctrl_names[i].name, n) == 0)
				mask |= ctrl_names[i].bit;
		p += n;
	}
	return mask;
}

int hpcn_cgroup_fmt_subtree_control(char *buf, size_t cap, unsigned mask)
{
	size_t len = 0;

	if (cap == 0) {
		errno = ENOSPC;
		return -1;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < HPCN_ARRAY_SIZE(ctrl_names); i++) {
		int n;

		if (!(mask & ctrl_names[i].bit))
			continue;
		n = snprintf(buf + len, cap - len, "%s+%s", len ? " " : "", ctrl_names[i].name);
		if (n < 0 || (size_t)n >= cap - len) {
			errno = ENOSPC;
			return -1;
		}
		len += (size_t)n;
	}
	return (int)len;
}

static int fit(int n, size_t cap)
{
	if (n < 0 || (size_t)n >= cap) {
		errno = ENOSPC;
		return -1;
	}
	return n;
}

int hpcn_cgroup_fmt_u64(char *buf, size_t cap, uint64_t v)
{
	return fit(snprintf(buf, cap, "%" PRIu64, v), cap);
}

int hpcn_cgroup_fmt_cpu_weight(char *buf, size_t cap, uint64_t weight, struct hpcn_error *err)
{
	if (weight < 1 || weight > 10000)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "cpu_weight %" PRIu64 " is outside 1..10000", weight);
	if (fit(snprintf(buf, cap, "%" PRIu64, weight), cap) < 0)
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, ENOSPC, NULL, "cpu.weight");
	return 0;
}

int hpcn_cgroup_fmt_cpu_max(char *buf, size_t cap, const struct hpcn_opt_u64 *quota,
			    const struct hpcn_opt_u64 *period, struct hpcn_error *err)
{
	uint64_t per = HPCN_CGROUP_CPU_PERIOD_DEFAULT;
	int n;

	if (period && period->set) {
		per = period->value;
		if (per < 1000 || per > 1000000)
			return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
					       "cpu_max_period_usec %" PRIu64
					       " is outside 1000..1000000", per);
	}
	if (quota && quota->set) {
		if (quota->value < 1000)
			return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
					       "cpu_max_quota_usec %" PRIu64
					       " is below the kernel's minimum 1000", quota->value);
		n = snprintf(buf, cap, "%" PRIu64 " %" PRIu64, quota->value, per);
	} else {
		n = snprintf(buf, cap, "max %" PRIu64, per);
	}
	if (fit(n, cap) < 0)
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, ENOSPC, NULL, "cpu.max");
	return 0;
}

static void fmt_bps(char *buf, size_t cap, uint64_t v)
{
	if (v == 0)
		snprintf(buf, cap, "max");
	else
		snprintf(buf, cap, "%" PRIu64, v);
}

int hpcn_cgroup_fmt_io_max(char *buf, size_t cap, uint32_t major, uint32_t minor,
			   uint64_t rbps, uint64_t wbps)
{
	char r[24], w[24];

	fmt_bps(r, sizeof(r), rbps);
	fmt_bps(w, sizeof(w), wbps);
	return fit(snprintf(buf, cap, "%" PRIu32 ":%" PRIu32 " rbps=%s wbps=%s",
			    major, minor, r, w), cap);
}

int hpcn_cgroup_validate_limits(const struct hpcn_resource_limits *lim, struct hpcn_error *err)
{
	char buf[64];

	if (!lim)
		return 0;
	if (lim->cpu_weight.set &&
	    hpcn_cgroup_fmt_cpu_weight(buf, sizeof(buf), lim->cpu_weight.value, err) < 0)
		return -1;
	if ((lim->cpu_max_quota_usec.set || lim->cpu_max_period_usec.set) &&
	    hpcn_cgroup_fmt_cpu_max(buf, sizeof(buf), &lim->cpu_max_quota_usec,
				    &lim->cpu_max_period_usec, err) < 0)
		return -1;
	if (lim->n_io_devices > HPCN_MAX_IO_DEVICES)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "%zu io_devices, at most %d", lim->n_io_devices,
				       HPCN_MAX_IO_DEVICES);
	return 0;
}

int hpcn_cgroup_parse_max(const char *text, struct hpcn_opt_u64 *out)
{
	char *end;
	unsigned long long v;
	size_t n = strcspn(text, "\n");

	if (n == 3 && strncmp(text, "max", 3) == 0) {
		out->set = false;
		out->value = 0;
		return 0;
	}
	if (n == 0 || text[0] < '0' || text[0] > '9') {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || (size_t)(end - text) != n) {
		errno = EINVAL;
		return -1;
	}
	out->set = true;
	out->value = v;
	return 0;
}

int hpcn_cgroup_parse_keyed(const char *text, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
			const char *v = p + klen + 1;
			char *end;
			unsigned long long n;

			if (*v < '0' || *v > '9') {
				errno = EINVAL;
				return -1;
			}
			errno = 0;
			n = strtoull(v, &end, 10);
			if (errno || (*end != '\n' && *end != '\0')) {
				errno = EINVAL;
				return -1;
			}
			*out = n;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	errno = ENOENT;
	return -1;
}

int hpcn_cgroup_parse_psi_some_avg10(const char *text, double *out)
{
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, "some ", 5) == 0) {
			const char *a = strstr(p, "avg10=");
			const char *eol = strchr(p, '\n');
			char *end;
			double v;

			if (!a || (eol && a > eol))
				break;
			errno = 0;
			v = strtod(a + 6, &end);
			if (errno || end == a + 6 || v < 0)
				break;
			*out = v;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	errno = EINVAL;
	return -1;
}

int hpcn_cgroup_parse_devnum(const char *text, uint32_t *major, uint32_t *minor)
{
	unsigned int ma, mi;
	int n = 0;

	if (sscanf(text, "%u:%u%n", &ma, &mi, &n) != 2 ||
	    (text[n] != '\0' && text[n] != '\n')) {
		errno = EINVAL;
		return -1;
	}
	*major = ma;
	*minor = mi;
	return 0;
}

bool hpcn_cgroup_block_dev_eligible(const char *name)
{
	static const char *const skip[] = { "loop", "ram", "zram" };

	if (!name || !*name || name[0] == '.')
		return false;
	for (size_t i = 0; i < HPCN_ARRAY_SIZE(skip); i++)
		if (strncmp(name, skip[i], strlen(skip[i])) == 0)
			return false;
	return true;
}

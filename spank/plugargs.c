/* SPDX-License-Identifier: Apache-2.0 */
/* plugstack.conf arguments of spank_hpc_node: defaults, strict parsing. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugargs.h"

#define ARG_INVALID HPCN_E_INVALID_ARGUMENT

int hpcn_spank_errorf(struct hpcn_error *err, enum hpcn_error_kind kind, const char *fmt, ...)
{
	char msg[HPCN_ERROR_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return hpcn_error_set_raw(err, kind, msg);
}

int hpcn_mount_path_normalise(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	const char *p = in;

	if (!in || in[0] != '/' || cap < 2) {
		errno = (in && in[0] == '/') ? ENAMETOOLONG : EINVAL;
		return -1;
	}
	while (*p) {
		const char *c;
		size_t len;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		c = p;
		while (*p && *p != '/')
			p++;
		len = (size_t)(p - c);
		if (len == 1 && c[0] == '.')
			continue;
		if (len == 2 && c[0] == '.' && c[1] == '.') {
			errno = EPERM;
			return -1;
		}
		if (o + 1 + len + 1 > cap) {
			errno = ENAMETOOLONG;
			return -1;
		}
		out[o++] = '/';
		memcpy(out + o, c, len);
		o += len;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

void hpcn_plugargs_defaults(struct hpcn_plugargs *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->socket, sizeof(cfg->socket), "%s", HPCN_HANDOFF_SOCKET_PATH);
	cfg->n_namespaces = 1;
	cfg->namespaces[0] = HPCN_NS_MOUNT;
	cfg->cgroup = false;
	snprintf(cfg->ready_file, sizeof(cfg->ready_file), "%s", HPCN_READINESS_FILE_PATH);
	cfg->ready_timeout_secs = HPCN_READINESS_WAIT_TIMEOUT_SECS;
	cfg->connect_timeout_ms = HPCN_CONNECT_TIMEOUT_MS;
	cfg->request_timeout_ms = HPCN_SPANK_REQUEST_TIMEOUT;
	cfg->fallback = HPCN_SPANK_FALLBACK_NONE;
	snprintf(cfg->default_mount, sizeof(cfg->default_mount), "%s",
		 HPCN_DEFAULT_UENV_MOUNT_POINT);
	cfg->repository[0] = '\0';
	cfg->job_container_base[0] = '\0';
	cfg->n_allowed_mounts = 2;
	snprintf(cfg->allowed_mounts[0], PATH_MAX, "%s", HPCN_DEFAULT_UENV_MOUNT_POINT);
	snprintf(cfg->allowed_mounts[1], PATH_MAX, "%s", HPCN_DEFAULT_UENV_TOOLS_POINT);
	cfg->max_images = HPCN_SPANK_DEFAULT_MAX_IMAGES;
}

bool hpcn_plugargs_has_ns(const struct hpcn_plugargs *cfg, enum hpcn_ns_type t)
{
	for (size_t i = 0; i < cfg->n_namespaces; i++)
		if (cfg->namespaces[i] == t)
			return true;
	return false;
}

bool hpcn_plugargs_mount_allowed(const struct hpcn_plugargs *cfg, const char *mount)
{
	for (size_t i = 0; i < cfg->n_allowed_mounts; i++)
		if (strcmp(cfg->allowed_mounts[i], mount) == 0)
			return true;
	return false;
}

void hpcn_plugargs_allowed_string(const struct hpcn_plugargs *cfg, char *buf, size_t cap)
{
	size_t o = 0;

	if (cap == 0)
		return;
	buf[0] = '\0';
	if (cfg->n_allowed_mounts == 0) {
		snprintf(buf, cap, "none");
		return;
	}
	for (size_t i = 0; i < cfg->n_allowed_mounts && o < cap; i++) {
		int n = snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", cfg->allowed_mounts[i]);

		if (n < 0)
			break;
		o += (size_t)n;
	}
}

/* An absolute path argument (socket, ready_file): stored as given. */
static int parse_abs_path(const char *arg, const char *val, char *out, size_t cap,
			  struct hpcn_error *err)
{
	if (val[0] != '/')
		return hpcn_spank_errorf(err, ARG_INVALID,
					 "plugstack.conf argument '%s': not an absolute path", arg);
	if (strlen(val) >= cap)
		return hpcn_spank_errorf(err, ARG_INVALID,
					 "plugstack.conf argument '%.64s...': path longer than %zu bytes",
					 arg, cap - 1);
	memcpy(out, val, strlen(val) + 1);
	return 0;
}

/* A mount point or directory: normalised, never "/". */
static int parse_mount_path(const char *arg, const char *val, char *out, size_t cap,
			    struct hpcn_error *err)
{
	if (hpcn_mount_path_normalise(val, out, cap) < 0) {
		if (errno == EPERM)
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': path %s contains '..'",
						 arg, val);
		if (errno == ENAMETOOLONG)
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%.64s...': path longer than %zu bytes",
						 arg, cap - 1);
		return hpcn_spank_errorf(err, ARG_INVALID,
					 "plugstack.conf argument '%s': '%s' is not an absolute path",
					 arg, val);
	}
	if (strcmp(out, "/") == 0)
		return hpcn_spank_errorf(err, ARG_INVALID,
					 "plugstack.conf argument '%s': / cannot be used here", arg);
	return 0;
}

static int parse_uint(const char *arg, const char *val, unsigned long min, unsigned long max,
		      unsigned long *out, struct hpcn_error *err)
{
	char *end;
	unsigned long v;

	/* strtoul accepts blanks and signs ("-1" wraps around): refuse them first. */
	if (val[0] < '0' || val[0] > '9')
		goto bad;
	errno = 0;
	v = strtoul(val, &end, 10);
	if (errno || *end)
		goto bad;
	if (v < min || v > max)
		return hpcn_spank_errorf(err, ARG_INVALID,
					 "plugstack.conf argument '%s': %lu is out of range %lu..%lu",
					 arg, v, min, max);
	*out = v;
	return 0;
bad:
	return hpcn_spank_errorf(err, ARG_INVALID,
				 "plugstack.conf argument '%s': expected a number in %lu..%lu",
				 arg, min, max);
}

static int parse_namespaces(const char *arg, const char *val, struct hpcn_plugargs *cfg,
			    struct hpcn_error *err)
{
	static const struct { const char *name; enum hpcn_ns_type t; } known[] = {
		{ "mount", HPCN_NS_MOUNT }, { "pid", HPCN_NS_PID }, { "net", HPCN_NS_NET },
	};
	bool seen[HPCN_NS__COUNT] = { false };
	const char *p = val;

	cfg->n_namespaces = 1;
	cfg->namespaces[0] = HPCN_NS_MOUNT;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		size_t k;

		if (len == 0)
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': empty namespace name",
						 arg);
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strlen(known[k].name) == len && strncmp(known[k].name, p, len) == 0)
				break;
		if (k == sizeof(known) / sizeof(known[0]))
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': unknown namespace '%.*s' (known: mount, pid, net)",
						 arg, (int)len, p);
		if (seen[known[k].t])
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': namespace '%s' given twice",
						 arg, known[k].name);
		seen[known[k].t] = true;
		if (known[k].t != HPCN_NS_MOUNT)
			cfg->namespaces[cfg->n_namespaces++] = known[k].t;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

static int parse_allowed(const char *arg, const char *val, struct hpcn_plugargs *cfg,
			 struct hpcn_error *err)
{
	const char *p = val;

	cfg->n_allowed_mounts = 0;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char item[PATH_MAX];
		char *dst;

		if (len == 0)
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': empty mount point", arg);
		if (len >= sizeof(item))
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument 'allowed_mounts': mount point longer than %zu bytes",
						 sizeof(item) - 1);
		if (cfg->n_allowed_mounts == HPCN_SPANK_MAX_ALLOWED_MOUNTS)
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument 'allowed_mounts': more than %d mount points",
						 HPCN_SPANK_MAX_ALLOWED_MOUNTS);
		memcpy(item, p, len);
		item[len] = '\0';
		dst = cfg->allowed_mounts[cfg->n_allowed_mounts];
		if (parse_mount_path(arg, item, dst, PATH_MAX, err) < 0)
			return -1;
		if (hpcn_plugargs_mount_allowed(cfg, dst))
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': %s given twice", arg, dst);
		cfg->n_allowed_mounts++;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

enum arg_id {
	A_SOCKET, A_NAMESPACES, A_CGROUP, A_READY_FILE, A_READY_TIMEOUT, A_CONNECT_TIMEOUT,
	A_REQUEST_TIMEOUT, A_FALLBACK, A_DEFAULT_MOUNT, A_REPOSITORY, A_ALLOWED_MOUNTS, A_MAX_IMAGES, A_JOB_CONTAINER_BASE, A__COUNT
};

static const char *const arg_names[A__COUNT] = {
	[A_SOCKET] = "socket", [A_NAMESPACES] = "namespaces", [A_CGROUP] = "cgroup",
	[A_READY_FILE] = "ready_file", [A_READY_TIMEOUT] = "ready_timeout",
	[A_CONNECT_TIMEOUT] = "connect_timeout", [A_REQUEST_TIMEOUT] = "request_timeout",
	[A_FALLBACK] = "fallback",
	[A_DEFAULT_MOUNT] = "default_mount", [A_REPOSITORY] = "repository",
	[A_ALLOWED_MOUNTS] = "allowed_mounts", [A_MAX_IMAGES] = "max_images",
	[A_JOB_CONTAINER_BASE] = "job_container_base",
};

static int parse_one(enum arg_id id, const char *arg, const char *val,
		     struct hpcn_plugargs *cfg, struct hpcn_error *err)
{
	unsigned long v;

	switch (id) {
	case A_SOCKET:
		return parse_abs_path(arg, val, cfg->socket, sizeof(cfg->socket), err);
	case A_NAMESPACES:
		return parse_namespaces(arg, val, cfg, err);
	case A_CGROUP:
		if (strcmp(val, "on") == 0)
			cfg->cgroup = true;
		else if (strcmp(val, "off") == 0)
			cfg->cgroup = false;
		else
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': expected on or off",
						 arg);
		return 0;
	case A_READY_FILE:
		return parse_abs_path(arg, val, cfg->ready_file, sizeof(cfg->ready_file), err);
	case A_READY_TIMEOUT:
		if (parse_uint(arg, val, 0, HPCN_SPANK_MAX_READY_TIMEOUT, &v, err) < 0)
			return -1;
		cfg->ready_timeout_secs = (unsigned int)v;
		return 0;
	case A_CONNECT_TIMEOUT:
		if (parse_uint(arg, val, 1, HPCN_SPANK_MAX_CONNECT_TIMEOUT, &v, err) < 0)
			return -1;
		cfg->connect_timeout_ms = (unsigned int)v;
		return 0;
	case A_REQUEST_TIMEOUT:
		if (parse_uint(arg, val, 1, HPCN_SPANK_MAX_REQUEST_TIMEOUT, &v, err) < 0)
			return -1;
		cfg->request_timeout_ms = (unsigned int)v;
		return 0;
	case A_FALLBACK:
		if (strcmp(val, "none") == 0)
			cfg->fallback = HPCN_SPANK_FALLBACK_NONE;
		else if (strcmp(val, "local") == 0)
			cfg->fallback = HPCN_SPANK_FALLBACK_LOCAL;
		else
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': expected none or local",
						 arg);
		return 0;
	case A_DEFAULT_MOUNT:
		return parse_mount_path(arg, val, cfg->default_mount,
					sizeof(cfg->default_mount), err);
	case A_REPOSITORY:
		return parse_mount_path(arg, val, cfg->repository, sizeof(cfg->repository), err);
	case A_ALLOWED_MOUNTS:
		return parse_allowed(arg, val, cfg, err);
	case A_MAX_IMAGES:
		if (parse_uint(arg, val, 1, HPCN_MAX_MOUNTS, &v, err) < 0)
			return -1;
		cfg->max_images = v;
		return 0;
	case A_JOB_CONTAINER_BASE:
		return parse_mount_path(arg, val, cfg->job_container_base,
					sizeof(cfg->job_container_base), err);
	case A__COUNT:
		break;
	}
	return hpcn_spank_errorf(err, HPCN_E_INTERNAL, "plugstack.conf: argument id %d", (int)id);
}

int hpcn_plugargs_parse(int argc, char **argv, struct hpcn_plugargs *cfg,
			struct hpcn_error *err)
{
	bool seen[A__COUNT] = { false };
	char allowed[1024];

	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const char *eq = arg ? strchr(arg, '=') : NULL;
		size_t klen;
		int id;

		if (!arg)
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf: argument %d is missing", i + 1);
		if (!eq)
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': expected NAME=VALUE", arg);
		klen = (size_t)(eq - arg);
		for (id = 0; id < A__COUNT; id++)
			if (strlen(arg_names[id]) == klen && strncmp(arg_names[id], arg, klen) == 0)
				break;
		if (id == A__COUNT)
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': unknown argument '%.*s' (known: "
						 "socket, namespaces, cgroup, ready_file, ready_timeout, "
						 "connect_timeout, request_timeout, fallback, default_mount, "
						 "repository, "
						 "allowed_mounts, max_images, job_container_base)",
						 arg, (int)klen, arg);
		if (seen[id])
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': %s given twice",
						 arg, arg_names[id]);
		seen[id] = true;
		if (eq[1] == '\0')
			return hpcn_spank_errorf(err, ARG_INVALID,
						 "plugstack.conf argument '%s': empty value", arg);
		if (parse_one((enum arg_id)id, arg, eq + 1, cfg, err) < 0)
			return -1;
	}
	/* Otherwise every --uenv without a mount point would be refused. */
	if (!hpcn_plugargs_mount_allowed(cfg, cfg->default_mount)) {
		hpcn_plugargs_allowed_string(cfg, allowed, sizeof(allowed));
		return hpcn_spank_errorf(err, ARG_INVALID,
					 "plugstack.conf: default_mount %s is not one of allowed_mounts (%s)",
					 cfg->default_mount, allowed);
	}
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading cgroups (RI6: any slice may be read): CgroupMetrics, populated,
 * is_scope_empty. Files of controllers a cgroup lacks read as 0 / None:
 * their absence is the node's configuration, not an error of the read.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "cgroup.h"
#include "cgroup_fs.h"

/* Read name at fd; 1 read, 0 absent (ENOENT, or EOPNOTSUPP: PSI off), -1 err. */
static int read_opt(const struct hpcn_cgroup *cg, int fd, const char *norm, const char *name,
		    char *buf, size_t cap, struct hpcn_error *err)
{
	if (hpcn_read_file_at(fd, name, buf, cap) >= 0)
		return 1;
	if (errno == ENOENT || errno == EOPNOTSUPP)
		return 0;
	return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL, "reading %s/%s%s%s",
				    cg->root, norm, *norm ? "/" : "", name);
}

static int bad_content(const struct hpcn_cgroup *cg, const char *norm, const char *name,
		       struct hpcn_error *err)
{
	return hpcn_error_setf(err, HPCN_E_CGROUP_IO, NULL, "unexpected content in %s/%s%s%s",
			       cg->root, norm, *norm ? "/" : "", name);
}

/* Lines of cgroup.procs, read in chunks: a busy slice lists many pids. */
static int count_procs(const struct hpcn_cgroup *cg, int fd, const char *norm, uint32_t *out,
		       struct hpcn_error *err)
{
	_cleanup_close_ int f = -1;
	char buf[4096];
	uint32_t lines = 0;
	bool partial = false;

	f = openat(fd, "cgroup.procs", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0) {
		if (errno == ENOENT) {
			*out = 0;
			return 0;
		}
		return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
					    "reading %s/%s/cgroup.procs", cg->root, norm);
	}
	for (;;) {
		ssize_t n = read(f, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return hpcn_error_set_errno(err, HPCN_E_CGROUP_IO, errno, NULL,
						    "reading %s/%s/cgroup.procs", cg->root, norm);
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				lines++;
				partial = false;
			} else {
				partial = true;
			}
		}
	}
	*out = lines + (partial ? 1 : 0);
	return 0;
}

static double psi(const struct hpcn_cgroup *cg, int fd, const char *norm, const char *name,
		  int *rv, struct hpcn_error *err)
{
	char buf[512];
	double v;
	int r = read_opt(cg, fd, norm, name, buf, sizeof(buf), err);

	if (r < 0)
		*rv = -1;
	if (r <= 0 || hpcn_cgroup_parse_psi_some_avg10(buf, &v) < 0)
		return -1;
	return v;
}

int hpcn_cgroup_read_metrics(struct hpcn_cgroup *cg, const char *path,
			     struct hpcn_cgroup_metrics *m, struct hpcn_error *err)
{
	char norm[PATH_MAX], buf[4096];
	_cleanup_close_ int fd = -1;
	int r, rv = 0;

	memset(m, 0, sizeof(*m));
	m->cpu_pressure_avg10 = m->memory_pressure_avg10 = m->io_pressure_avg10 = -1;
	if (cg_check_path(cg, path, CG_READ, norm, sizeof(norm), err) < 0)
		return -1;
	fd = cg_walk(cg, norm, err);
	if (fd < 0)
		return -1;

	r = read_opt(cg, fd, norm, "memory.current", buf, sizeof(buf), err);
	if (r < 0)
		return -1;
	if (r > 0) {
		struct hpcn_opt_u64 v;

		if (hpcn_cgroup_parse_max(buf, &v) < 0 || !v.set)
			return bad_content(cg, norm, "memory.current", err);
		m->memory_current = v.value;
	}
	r = read_opt(cg, fd, norm, "memory.max", buf, sizeof(buf), err);
	if (r < 0)
		return -1;
	if (r > 0 && hpcn_cgroup_parse_max(buf, &m->memory_max) < 0)
		return bad_content(cg, norm, "memory.max", err);
	r = read_opt(cg, fd, norm, "cpu.stat", buf, sizeof(buf), err);
	if (r < 0)
		return -1;
	if (r > 0 && hpcn_cgroup_parse_keyed(buf, "usage_usec", &m->cpu_usage_usec) < 0 &&
	    errno != ENOENT)
		return bad_content(cg, norm, "cpu.stat", err);
	if (count_procs(cg, fd, norm, &m->nr_processes, err) < 0)
		return -1;
	m->cpu_pressure_avg10 = psi(cg, fd, norm, "cpu.pressure", &rv, err);
	m->memory_pressure_avg10 = psi(cg, fd, norm, "memory.pressure", &rv, err);
	m->io_pressure_avg10 = psi(cg, fd, norm, "io.pressure", &rv, err);
	return rv;
}

int hpcn_cgroup_is_populated(struct hpcn_cgroup *cg, const char *path, bool *populated,
			     struct hpcn_error *err)
{
	char norm[PATH_MAX], buf[256];
	_cleanup_close_ int fd = -1;
	uint64_t v;
	int r;

	if (cg_check_path(cg, path, CG_READ, norm, sizeof(norm), err) < 0)
		return -1;
	fd = cg_walk(cg, norm, err);
	if (fd < 0)
		return -1;
	r = read_opt(cg, fd, norm, "cgroup.events", buf, sizeof(buf), err);
	if (r < 0)
		return -1;
	if (r == 0) {
		/* The root cgroup has no cgroup.events: its own processes only. */
		uint32_t n;

		if (count_procs(cg, fd, norm, &n, err) < 0)
			return -1;
		*populated = n > 0;
		return 0;
	}
	if (hpcn_cgroup_parse_keyed(buf, "populated", &v) < 0)
		return bad_content(cg, norm, "cgroup.events", err);
	*populated = v != 0;
	return 0;
}

int hpcn_cgroup_is_scope_empty(struct hpcn_cgroup *cg, const char *path, bool *empty,
			       struct hpcn_error *err)
{
	bool populated;

	if (hpcn_cgroup_is_populated(cg, path, &populated, err) < 0)
		return -1;
	*empty = !populated;
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* The few slurm.conf keys the plugin reports at slurmd's start: slurmconf.h. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "slurmconf.h"

static void set(char *dst, size_t cap, const char *v, size_t len)
{
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r'))
		len--;
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

void hpcn_slurmconf_parse(const char *text, struct hpcn_slurmconf *out)
{
	static const struct {
		const char *key;
		size_t off, cap;
	} keys[] = {
		{ "JobContainerType", offsetof(struct hpcn_slurmconf, job_container),
		  sizeof(out->job_container) },
		{ "ProctrackType", offsetof(struct hpcn_slurmconf, proctrack),
		  sizeof(out->proctrack) },
		{ "TaskPlugin", offsetof(struct hpcn_slurmconf, task), sizeof(out->task) },
		{ "PrologFlags", offsetof(struct hpcn_slurmconf, prolog_flags),
		  sizeof(out->prolog_flags) },
	};
	const char *line = text;

	memset(out, 0, sizeof(*out));
	while (line && *line) {
		const char *end = strchr(line, '\n'), *eq, *hash;
		size_t len = end ? (size_t)(end - line) : strlen(line);

		hash = memchr(line, '#', len);
		if (hash)
			len = (size_t)(hash - line);
		while (len && (*line == ' ' || *line == '\t')) {
			line++;
			len--;
		}
		eq = memchr(line, '=', len);
		for (size_t i = 0; eq && i < sizeof(keys) / sizeof(keys[0]); i++) {
			size_t klen = strlen(keys[i].key);

			if ((size_t)(eq - line) == klen && strncasecmp(line, keys[i].key, klen) == 0)
				set((char *)out + keys[i].off, keys[i].cap, eq + 1,
				    len - klen - 1);
		}
		line = end ? end + 1 : NULL;
	}
}

static bool has(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; (p = strstr(p, item)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return true;
	return false;
}

void hpcn_slurmconf_summary(const struct hpcn_slurmconf *c, char *buf, size_t cap)
{
	bool jc = strcmp(c->job_container, "job_container/tmpfs") == 0;
	bool pt = strcmp(c->proctrack, "proctrack/cgroup") == 0;
	bool tc = has(c->task, "task/cgroup");

	snprintf(buf, cap, "%s%s%s%s%s%s",
		 jc ? "job_container/tmpfs: each step is built on its job's namespace "
		      "(private /tmp, /dev/shm)" : "no job_container/tmpfs",
		 jc && !has(c->prolog_flags, "Contain") ? " (PrologFlags=Contain is not set: "
							 "Slurm needs it for job_container/tmpfs)" : "",
		 "; ",
		 pt ? "proctrack/cgroup" : "",
		 pt && tc ? ", task/cgroup" : tc ? "task/cgroup" : "",
		 pt || tc ? ": tasks stay in Slurm's cgroups (with cgroup=on too)"
			  : "no Slurm cgroup plugin");
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Finding job_container/tmpfs's namespace of a job in the mount table
 * (jobns.h). The table is the kernel's word: a leftover directory or an
 * unmounted .ns file is no namespace, and nothing here depends on how the
 * site configured BasePath.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "jobns.h"
#include "image/image.h"

/* Enough to name the candidates in an error. */
#define JOBNS_MAX_CANDIDATES 4

struct jobns_scan {
	char suffix[32];          /* "/<job>/.ns" */
	const char *node;
	size_t n;                 /* candidates seen */
	size_t n_node;            /* of those, under /<node>/ */
	char first[PATH_MAX];     /* the first candidate */
	char on_node[PATH_MAX];   /* the first one under /<node>/ */
	char names[JOBNS_MAX_CANDIDATES][PATH_MAX];
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Is the component before "/<job>/.ns" exactly node? */
static bool under_node(const char *mp, size_t suffix_len, const char *node)
{
	size_t end = strlen(mp) - suffix_len, nlen = strlen(node);

	return end > nlen && mp[end - nlen - 1] == '/' && strncmp(mp + end - nlen, node, nlen) == 0;
}

static int on_mount(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct jobns_scan *s = ud;

	/* nsfs shows a pinned namespace as root "mnt:[4026532…]". */
	if (strcmp(e->fstype, "nsfs") != 0 || strncmp(e->root, "mnt:[", 5) != 0 ||
	    !ends_with(e->mount_point, s->suffix))
		return 0;
	if (s->n < JOBNS_MAX_CANDIDATES)
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", e->mount_point);
	if (s->n++ == 0)
		snprintf(s->first, sizeof(s->first), "%s", e->mount_point);
	if (s->node && s->node[0] && under_node(e->mount_point, strlen(s->suffix), s->node) &&
	    s->n_node++ == 0)
		snprintf(s->on_node, sizeof(s->on_node), "%s", e->mount_point);
	return 0;
}

static int ambiguous(const struct jobns_scan *s, uint32_t job, struct hpcn_error *err)
{
	char list[1024] = "";
	size_t off = 0;

	for (size_t i = 0; i < s->n && i < JOBNS_MAX_CANDIDATES && off < sizeof(list); i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
					s->names[i]);
	return hpcn_error_setf(err, HPCN_E_NS_CREATION_FAILED, NULL,
			       "job %" PRIu32 " has %zu job_container/tmpfs namespaces in this "
			       "node's mount table and none is told apart by the node name '%s': %s%s",
			       job, s->n, s->node ? s->node : "", list,
			       s->n > JOBNS_MAX_CANDIDATES ? ", ..." : "");
}

int hpcn_jobns_find(const char *mountinfo, size_t len, uint32_t job, const char *node,
		    char *path, size_t cap, struct hpcn_error *err)
{
	struct jobns_scan *s;
	const char *pick;
	int rv = -1;

	path[0] = '\0';
	s = calloc(1, sizeof(*s));
	if (!s)
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, ENOMEM, NULL,
					    "finding the job's namespace");
	snprintf(s->suffix, sizeof(s->suffix), "/%" PRIu32 "/.ns", job);
	s->node = node;
	if (hpcn_mountinfo_parse_buffer(mountinfo, len, on_mount, s, err) < 0)
		goto out;
	if (s->n == 0) {
		rv = 0;
		goto out;
	}
	pick = s->n == 1 ? s->first : s->n_node == 1 ? s->on_node : NULL;
	if (!pick) {
		ambiguous(s, job, err);
		goto out;
	}
	if ((size_t)snprintf(path, cap, "%s", pick) >= cap) {
		path[0] = '\0';
		hpcn_error_setf(err, HPCN_E_NS_CREATION_FAILED, NULL,
				"job_container/tmpfs namespace path too long: %s", pick);
		goto out;
	}
	rv = 1;
out:
	free(s);
	return rv;
}

int hpcn_jobns_open(uint32_t job, const char *node, int *fd, char *path, size_t cap,
		    struct hpcn_error *err)
{
	char *table = NULL;
	size_t len = 0;
	int r, f, type;

	*fd = -1;
	path[0] = '\0';
	if (hpcn_mountinfo_read(NULL, &table, &len, err) < 0)
		return -1;
	r = hpcn_jobns_find(table, len, job, node, path, cap, err);
	free(table);
	if (r <= 0)
		return r;
	f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "opening the job's namespace (job_container/tmpfs) %s",
					    path);
	type = ioctl(f, NS_GET_NSTYPE);
	if (type != CLONE_NEWNS) {
		close(f);
		return hpcn_error_setf(err, HPCN_E_NS_CREATION_FAILED, NULL,
				       "%s is no mount namespace (job_container/tmpfs's pin of "
				       "job %" PRIu32 " expected)", path, job);
	}
	*fd = f;
	return 1;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The requests about an existing allocation: AllocationEnded (one, or every
 * allocation of a group: the job epilog's safety net), Attach (a process
 * into its scope), Metrics (of its scope, or of a cgroup path).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_internal.h"
#include "log.h"

/* The allocation id names, if the client may manage it; else NULL with
 * *err (NotFound, or Denied, which is counted). */
static struct hpcn_alloc *managed_alloc(struct hpcn_helper *h, const struct hpcn_client *c,
					const char *id, struct hpcn_error *err)
{
	struct hpcn_alloc *a = hpcn_registry_find(&h->reg, id);

	if (!a) {
		hpcn_error_set(err, HPCN_E_NS_ALLOCATION_NOT_FOUND, id, NULL);
		return NULL;
	}
	if (!hpcn_alloc_peer_may_manage(c, a)) {
		hpcn_error_setf(err, HPCN_E_DENIED, NULL,
				"allocation %s belongs to another client", a->id);
		h->counters.denied++;
		return NULL;
	}
	return a;
}

void hpcn_handle_allocation_ended(struct hpcn_helper *h, struct hpcn_client *c,
				  struct hpcn_msg *req)
{
	struct hpcn_allocation_ended *r = &req->u.ended;
	struct hpcn_error err;
	json_t *ended = json_array(), *ending = json_array();
	bool failed = false;
	int rc;

	if (r->allocation_id && r->allocation_id[0]) {
		struct hpcn_alloc *a = managed_alloc(h, c, r->allocation_id, &err);

		if (!a)
			goto error;
		json_array_append_new(ended, json_string(a->id));
		rc = hpcn_alloc_end(h, a, &c->peer, &err);
		if (rc < 0)
			goto error;
		if (rc > 0)
			json_array_append_new(ending, json_string(r->allocation_id));
	} else if (r->group) {
		/* Every allocation of the group (the job epilog's safety net). */
		for (size_t i = h->reg.n; i-- > 0;) {
			struct hpcn_alloc *a;

			if (i >= h->reg.n)
				continue;
			a = h->reg.v[i];
			if (strcmp(a->group, r->group) != 0 || !hpcn_alloc_peer_may_manage(c, a))
				continue;
			json_array_append_new(ended, json_string(a->id));
			json_array_append_new(ending, json_string(a->id));
			rc = hpcn_alloc_end(h, a, &c->peer, &err);
			if (rc < 0)
				failed = true;
			else if (rc == 0)
				json_array_remove(ending, json_array_size(ending) - 1);
		}
		if (failed)
			goto error;
	}
	{
		struct hpcn_msg m;
		/* "ending": ended, but their scope's processes are still dying. */
		json_t *body = json_pack("{s:o, s:o}", "ended", ended, "ending", ending);

		hpcn_msg_init(&m, HPCN_TAG_OK);
		m.seq = req->seq;
		m.u.json = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		c->reply(c, &m, NULL, 0);
		hpcn_msg_free(&m);
	}
	return;
error:
	json_decref(ended);
	json_decref(ending);
	c->reply_error(c, req->seq, &err);
}

static pid_t pid_from_pidfd(int pidfd)
{
	char path[64], buf[4096], *p;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	n = hpcn_read_file_at(AT_FDCWD, path, buf, sizeof(buf));
	if (n <= 0 || !(p = strstr(buf, "\nPid:")))
		return -1;
	return (pid_t)atoi(p + 5);
}

void hpcn_handle_attach(struct hpcn_helper *h, struct hpcn_client *c, struct hpcn_msg *req,
			int *fds, size_t nfds)
{
	struct hpcn_attach *r = &req->u.attach;
	struct hpcn_error err;
	struct hpcn_alloc *a = managed_alloc(h, c, r->allocation_id, &err);
	pid_t pid = r->pid;

	if (!a)
		goto error;
	if (!a->scope[0] || !h->cgroup_ok) {
		hpcn_error_setf(&err, HPCN_E_CGROUP_NOT_FOUND, NULL, "allocation %s has no scope",
				a->id);
		goto error;
	}
	if (r->pidfd_index >= 0) {
		if ((size_t)r->pidfd_index >= nfds || (pid = pid_from_pidfd(fds[r->pidfd_index])) <= 0) {
			hpcn_error_set(&err, HPCN_E_INVALID_ARGUMENT,
				       "pidfd_index does not name a pidfd of the request", NULL);
			goto error;
		}
		if (r->pid > 0 && r->pid != pid) {
			hpcn_error_setf(&err, HPCN_E_INVALID_ARGUMENT, NULL,
					"pid %d does not match the pidfd (pid %d)", (int)r->pid,
					(int)pid);
			goto error;
		}
	}
	if (hpcn_cgroup_attach(&h->cg, a->scope, pid, &err) < 0)
		goto error;
	a->populated_seen = true;
	{
		struct hpcn_msg m;

		hpcn_msg_init(&m, HPCN_TAG_OK);
		m.seq = req->seq;
		c->reply(c, &m, NULL, 0);
		hpcn_msg_free(&m);
	}
	hpcn_close_fds(fds, nfds);
	return;
error:
	hpcn_close_fds(fds, nfds);
	c->reply_error(c, req->seq, &err);
}

void hpcn_handle_metrics(struct hpcn_helper *h, struct hpcn_client *c, struct hpcn_msg *req)
{
	const char *path = req->u.metrics_request.path;
	struct hpcn_alloc *a = hpcn_registry_find(&h->reg, path);
	struct hpcn_error err;
	struct hpcn_msg m;

	if (!h->cgroup_ok) {
		hpcn_error_set(&err, HPCN_E_CGROUP_NOT_FOUND, path, NULL);
		c->reply_error(c, req->seq, &err);
		return;
	}
	if (a && a->scope[0])
		path = a->scope;
	hpcn_msg_init(&m, HPCN_TAG_CGROUP_METRICS);
	m.seq = req->seq;
	if (hpcn_cgroup_read_metrics(&h->cg, path, &m.u.metrics, &err) < 0) {
		c->reply_error(c, req->seq, &err);
		return;
	}
	c->reply(c, &m, NULL, 0);
	hpcn_msg_free(&m);
}

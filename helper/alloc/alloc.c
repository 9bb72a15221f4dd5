/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Creating an allocation and handing its namespaces off (NamespaceRequest
 * -> NamespaceResponse). The rest of the lifecycle is beside it: its end
 * (alloc_end.c), end detection (alloc_watch.c), the other requests
 * (alloc_requests.c), restart and reconciliation (alloc_reconcile.c).
 *
 * An allocation is created in this order, each step undone in reverse on
 * failure: registry record "creating" -> cgroup scope -> namespaces ->
 * uenv mounts (acquire + bind into the mount namespace) -> record "active".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_internal.h"
#include "log.h"
#include "ns/ns.h"
#include "uenv/uenv.h"

/* Policy checks that need no resource, so that a refusal leaves nothing. */
static int check_request(struct hpcn_helper *h, struct hpcn_client *c,
			 const struct hpcn_namespace_request *r, size_t nfds,
			 struct hpcn_error *err)
{
	if (r->has_uid && c->peer.uid != 0 && r->uid != c->peer.uid)
		return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
				       "uid %u may not create allocations for uid %u",
				       (unsigned)c->peer.uid, (unsigned)r->uid);
	/* The gid is the base of the credentials images are opened with: an
	 * unprivileged client names its own, not a group it is not in. */
	if (r->has_uid && c->peer.uid != 0 && r->gid != c->peer.gid)
		return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
				       "uid %u (gid %u) may not create allocations for gid %u",
				       (unsigned)c->peer.uid, (unsigned)c->peer.gid,
				       (unsigned)r->gid);
	for (size_t i = 0; i < r->n_namespaces; i++) {
		if (r->namespaces[i] == HPCN_NS_PID && !h->cfg.allow_pid)
			return hpcn_error_set(err, HPCN_E_DENIED,
					      "PID namespaces are disabled on this node "
					      "([namespaces] allow_pid)", NULL);
		if (r->namespaces[i] == HPCN_NS_NET && !h->cfg.allow_net)
			return hpcn_error_set(err, HPCN_E_DENIED,
					      "network namespaces are disabled on this node "
					      "([namespaces] allow_net)", NULL);
	}
	if (r->n_mounts > h->cfg.max_images)
		return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
				       "%zu images requested, at most %u per allocation",
				       r->n_mounts, h->cfg.max_images);
	for (size_t i = 0; i < r->n_mounts; i++) {
		const char *mp = r->mounts[i].mount_point;

		if (!hpcn_config_mount_point_allowed(&h->cfg, mp))
			return hpcn_error_setf(err, HPCN_E_DENIED, NULL,
					       "mount point %s is not allowed on this node", mp);
		for (size_t k = 0; k < i; k++)
			if (strcmp(r->mounts[k].mount_point, mp) == 0)
				return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
						       "mount point %s is given twice", mp);
		if (r->mounts[i].image_path[0] != '/')
			return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
					       "image %s is not an absolute path",
					       r->mounts[i].image_path);
		if (r->mounts[i].image_fd_index >= (int)nfds)
			return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
					       "image_fd %d but only %zu descriptors came",
					       r->mounts[i].image_fd_index, nfds);
	}
	if (r->base_mount_ns_fd_index >= (int)nfds)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "base_mount_ns_fd %d but only %zu descriptors came",
				       r->base_mount_ns_fd_index, nfds);
	return 0;
}

/* The crate's uenv_image alone means one image at the default mount point. */
static void normalise_mounts(struct hpcn_namespace_request *r)
{
	if (r->n_mounts == 0 && r->uenv_image) {
		r->mounts[0].image_path = strdup(r->uenv_image);
		r->mounts[0].mount_point = NULL;
		r->mounts[0].image_fd_index = -1;
		r->n_mounts = 1;
	}
	for (size_t i = 0; i < r->n_mounts; i++)
		if (!r->mounts[i].mount_point)
			r->mounts[i].mount_point = strdup(HPCN_DEFAULT_UENV_MOUNT_POINT);
	/* Nested points in order: a parent before what is mounted inside it. */
	for (size_t i = 1; i < r->n_mounts; i++)
		for (size_t k = i; k > 0 && strlen(r->mounts[k].mount_point) <
					     strlen(r->mounts[k - 1].mount_point); k--) {
			struct hpcn_mount_handle t = r->mounts[k];

			r->mounts[k] = r->mounts[k - 1];
			r->mounts[k - 1] = t;
		}
}

/* Send NamespaceResponse with freshly opened namespace FDs. */
static int reply_namespaces(struct hpcn_helper *h, struct hpcn_client *c, uint64_t seq,
			    struct hpcn_alloc *a, const struct hpcn_namespace_request *r,
			    const struct hpcn_strv *warnings, struct hpcn_error *err)
{
	struct hpcn_msg m;
	int fds[HPCN_NS__COUNT] = { -1, -1, -1 };
	bool transient[HPCN_NS__COUNT] = { false };
	size_t nfds = 0;
	int rv = -1;

	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_RESPONSE);
	m.seq = seq;
	m.u.ns_response.allocation_id = strdup(a->id);
	for (size_t i = 0; i < r->n_namespaces; i++) {
		enum hpcn_ns_type t = r->namespaces[i];
		int fd;

		if (!(a->ns_mask & (1u << t))) {
			hpcn_error_setf(err, HPCN_E_NS_CREATION_FAILED, NULL,
					"allocation %s exists without a %s namespace", a->id,
					hpcn_ns_type_name(t));
			goto fail;
		}
		fd = a->ns_fd[t];
		if (fd < 0) {
			fd = hpcn_ns_open(h->ns_dir, a->id, t, err);
			if (fd < 0)
				goto fail;
			if (fd < h->ns_fd_cache_below)
				a->ns_fd[t] = fd;
			else
				transient[nfds] = true;
		}
		fds[nfds++] = fd;
		m.u.ns_response.fd_types[m.u.ns_response.n_fd_types++] = t;
	}
	for (size_t i = 0; i < a->n_mounts; i++) {
		m.u.ns_response.mounts[i].image_path = strdup(a->mounts[i].image_path);
		m.u.ns_response.mounts[i].mount_point = strdup(a->mounts[i].mount_point);
		m.u.ns_response.mounts[i].image_fd_index = -1;
		m.u.ns_response.n_mounts++;
	}
	if (a->n_mounts)
		m.u.ns_response.uenv_mount_path = strdup(a->mounts[0].mount_point);
	if (a->scope[0])
		m.u.ns_response.scope = strdup(a->scope);
	if (warnings && warnings->n) {
		m.u.ns_response.warnings = calloc(warnings->n, sizeof(char *));
		for (size_t i = 0; m.u.ns_response.warnings && i < warnings->n && i < 64; i++)
			m.u.ns_response.warnings[m.u.ns_response.n_warnings++] =
				strdup(warnings->v[i]);
	}
	if (c->reply(c, &m, fds, nfds) < 0) {
		hpcn_error_set(err, HPCN_E_NS_FD_PASSING, "the client did not take the reply",
			       NULL);
		goto fail;
	}
	rv = 0;
fail:
	/* SCM_RIGHTS gave the client its own references: the allocation's
	 * cached FDs stay open for the next handoff, the others are closed. */
	for (size_t i = 0; i < nfds; i++)
		if (transient[i])
			close(fds[i]);
	hpcn_msg_free(&m);
	return rv;
}

static int create_alloc(struct hpcn_helper *h, struct hpcn_client *c, struct hpcn_alloc *a,
			struct hpcn_namespace_request *r, int *fds, size_t nfds,
			struct hpcn_strv *warnings, struct hpcn_error *err)
{
	enum hpcn_ns_type types[HPCN_NS__COUNT];
	size_t ntypes = 0;
	bool want_mnt = r->n_mounts > 0;
	struct hpcn_ns_set set;
	int mnt_fd = -1;
	int rv = -1;

	/* Every allocation gets a scope; in the group's (job's) slice when it
	 * has a group. */
	if (h->cgroup_ok) {
		const struct hpcn_resource_limits *lim = r->has_limits ? &r->limits : NULL;
		char parent[PATH_MAX] = HPCN_SLICE_WORKLOAD_ROOT;

		if (a->group[0]) {
			if (hpcn_cgroup_create_slice(&h->cg, HPCN_SLICE_WORKLOAD_ROOT, a->group, lim,
						     h->cfg.limits_mandatory, parent,
						     sizeof(parent), warnings, err) < 0)
				goto fail;
			lim = NULL; /* job-wide limits live on the slice */
		}
		if (hpcn_cgroup_create_scope(&h->cg, parent, a->id, lim, h->cfg.limits_mandatory,
					     a->scope, sizeof(a->scope), warnings, err) < 0)
			goto fail;
		hpcn_audit(HPCN_AUDIT_CGROUP_CREATE, HPCN_AUDIT_SUCCESS, &c->peer, a->id, "%s",
			   a->scope);
		hpcn_alloc_watch_scope(h, a);
	}

	/* Namespaces; mounts need a mount namespace to live in. */
	for (size_t i = 0; i < r->n_namespaces; i++) {
		types[ntypes++] = r->namespaces[i];
		if (r->namespaces[i] == HPCN_NS_MOUNT)
			want_mnt = false;
	}
	if (want_mnt)
		types[ntypes++] = HPCN_NS_MOUNT;
	if (ntypes) {
		int base = r->base_mount_ns_fd_index >= 0 ? fds[r->base_mount_ns_fd_index] : -1;

		if (hpcn_ns_create(h->ns_dir, a->id, types, ntypes, base, &set, err) < 0)
			goto fail;
		for (int t = 0; t < HPCN_NS__COUNT; t++)
			if (set.present[t])
				a->ns_mask |= 1u << t;
		a->pid_holder = set.pid_holder;
		hpcn_registry_save(&h->reg, a, NULL); /* the holder must be known after a crash */
	}

	/* uenv images: mounted once per node, bound into the mount namespace. */
	if (r->n_mounts) {
		mnt_fd = hpcn_ns_open(h->ns_dir, a->id, HPCN_NS_MOUNT, err);
		if (mnt_fd < 0)
			goto fail;
	}
	for (size_t i = 0; i < r->n_mounts; i++) {
		struct hpcn_mount_handle *mh = &r->mounts[i];
		struct hpcn_uenv_entry *e;
		int ifd = mh->image_fd_index >= 0 ? fds[mh->image_fd_index] : -1;
		char key[HPCN_IMAGE_KEY_MAX];
		bool again;

		if (hpcn_uenv_acquire(h, mh->image_path, ifd, a->uid, a->gid, a->id,
				      key, sizeof(key), err) < 0)
			goto fail;
		/* Mounted twice (by any path to it): one reference all the same. */
		again = hpcn_alloc_key_among_first(a, a->n_mounts, key);
		if (again)
			hpcn_uenv_release(h, key, a->id);
		if (hpcn_alloc_add_mount(a, key, mh->image_path, mh->mount_point) < 0) {
			if (!again)
				hpcn_uenv_release(h, key, a->id);
			hpcn_error_set(err, HPCN_E_INTERNAL, "out of memory", NULL);
			goto fail;
		}
		e = hpcn_uenv_find(h, key);
		if (hpcn_ns_bind_path_named(mnt_fd, e->mount_point, a->id, mh->mount_point,
					    hpcn_config_mount_point_creatable(&h->cfg,
									      mh->mount_point),
					    err) < 0)
			goto fail;
	}
	rv = 0;
fail:
	if (mnt_fd >= 0)
		close(mnt_fd);
	return rv;
}

void hpcn_handle_namespace_request(struct hpcn_helper *h, struct hpcn_client *c,
				   struct hpcn_msg *req, int *fds, size_t nfds)
{
	struct hpcn_namespace_request *r = &req->u.ns_request;
	struct hpcn_strv warnings = { 0 };
	struct hpcn_error err, e2;
	struct hpcn_alloc *a;
	int rc;

	normalise_mounts(r);
	a = hpcn_registry_find(&h->reg, r->allocation_id);
	if (a) {
		/* The contract's idempotence: the same namespaces again. */
		if (!hpcn_alloc_peer_may_manage(c, a)) {
			hpcn_error_setf(&err, HPCN_E_DENIED, NULL,
					"allocation %s belongs to another client", a->id);
			goto denied;
		}
		if (a->state != HPCN_ALLOC_ACTIVE || a->zombie) {
			hpcn_error_setf(&err, HPCN_E_BUSY, NULL, "allocation %s is %s", a->id,
					a->zombie ? "a zombie" : hpcn_alloc_state_name(a->state));
			goto failed;
		}
		if (!a->conn)
			a->conn = c;
		if (reply_namespaces(h, c, req->seq, a, r, NULL, &err) < 0)
			goto failed;
		hpcn_audit(HPCN_AUDIT_NAMESPACE_HANDOFF, HPCN_AUDIT_SUCCESS, &c->peer, a->id,
			   "existing namespaces handed off again");
		goto out;
	}
	if (check_request(h, c, r, nfds, &err) < 0)
		goto denied_or_invalid;
	a = hpcn_registry_add(&h->reg, r->allocation_id, &err);
	if (!a)
		goto failed;
	if (r->group)
		snprintf(a->group, sizeof(a->group), "%s", r->group);
	a->uid = r->has_uid ? r->uid : c->peer.uid;
	a->gid = r->has_uid ? r->gid : c->peer.gid;
	a->peer_uid = c->peer.uid;
	/* Write-ahead, the scope's path included: a crash from here on leaves
	 * a "creating" record naming every leftover the next start removes (a
	 * scope made before the next save would otherwise be named by none). */
	if (h->cgroup_ok && hpcn_cgroup_scope_path(a->group[0] ? a->group : NULL, a->id, a->scope,
						   sizeof(a->scope), &err) < 0) {
		a->scope[0] = '\0';
		goto undo;
	}
	if (hpcn_registry_save(&h->reg, a, &err) < 0)
		goto undo;
	if (create_alloc(h, c, a, r, fds, nfds, &warnings, &err) < 0)
		goto undo;
	a->state = HPCN_ALLOC_ACTIVE;
	a->conn = c;
	if (hpcn_registry_save(&h->reg, a, &err) < 0)
		goto undo;
	if (reply_namespaces(h, c, req->seq, a, r, &warnings, &err) < 0) {
		/* The client is gone: WI5 ends it once nothing uses it. */
		a->conn = NULL;
		hpcn_log_warning("allocation %s: %s", a->id, err.message);
		goto out;
	}
	for (size_t i = 0; i < warnings.n; i++)
		hpcn_log_warning("allocation %s: %s", a->id, warnings.v[i]);
	hpcn_audit(HPCN_AUDIT_NAMESPACE_HANDOFF, HPCN_AUDIT_SUCCESS, &c->peer, a->id,
		   "uid %u, %zu namespace(s), %zu image(s)%s%s", (unsigned)a->uid,
		   r->n_namespaces, a->n_mounts, a->scope[0] ? ", scope " : "", a->scope);
	goto out;

undo:
	rc = hpcn_alloc_teardown(h, a, true, &c->peer, &e2);
	if (rc < 0)
		hpcn_log_error("allocation %s: cleanup after failure: %s", a->id, e2.message);
	hpcn_alloc_forget_or_keep_ending(h, a, rc);
	goto failed;
denied_or_invalid:
	if (err.kind != HPCN_E_DENIED)
		goto failed;
denied:
	h->counters.denied++;
	hpcn_audit(HPCN_AUDIT_NAMESPACE_HANDOFF_FAILED, HPCN_AUDIT_DENIED, &c->peer,
		   r->allocation_id, "%s", err.message);
	c->reply_error(c, req->seq, &err);
	goto out;
failed:
	hpcn_audit(HPCN_AUDIT_NAMESPACE_HANDOFF_FAILED, HPCN_AUDIT_FAILURE, &c->peer,
		   r->allocation_id, "%s", err.message);
	c->reply_error(c, req->seq, &err);
out:
	hpcn_strv_free(&warnings);
	hpcn_close_fds(fds, nfds);
}

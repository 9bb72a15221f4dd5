/* SPDX-License-Identifier: Apache-2.0 */
/* The Status body (docs/protocol.md, hpc-nodectl status). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "image/image.h"
#include "server_internal.h"
#include "uenv/uenv.h"

static json_t *rfc3339(int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&tt, &tm))
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static json_t *alloc_json(struct hpcn_helper *h, const struct hpcn_alloc *a)
{
	json_t *j = json_object(), *ns = json_array(), *mounts = json_array();
	struct hpcn_cgroup_metrics m;

	for (int t = 0; t < HPCN_NS__COUNT; t++)
		if (a->ns_mask & (1u << t))
			json_array_append_new(ns, json_string(hpcn_ns_type_name((enum hpcn_ns_type)t)));
	for (size_t i = 0; i < a->n_mounts; i++)
		json_array_append_new(mounts, json_pack("{s:s, s:s, s:s}",
							"image_path", a->mounts[i].image_path,
							"mount_point", a->mounts[i].mount_point,
							"key", a->mounts[i].key));
	json_object_set_new(j, "allocation_id", json_string(a->id));
	json_object_set_new(j, "group", a->group[0] ? json_string(a->group) : json_null());
	json_object_set_new(j, "uid", json_integer(a->uid));
	json_object_set_new(j, "gid", json_integer(a->gid));
	json_object_set_new(j, "created_at", rfc3339(a->created_at));
	json_object_set_new(j, "state", json_string(hpcn_alloc_state_name(a->state)));
	json_object_set_new(j, "scope", a->scope[0] ? json_string(a->scope) : json_null());
	json_object_set_new(j, "zombie", json_boolean(a->zombie));
	json_object_set_new(j, "namespaces", ns);
	json_object_set_new(j, "pid_holder", json_integer(a->pid_holder));
	json_object_set_new(j, "mounts", mounts);
	json_object_set_new(j, "client_connected", json_boolean(a->conn != NULL));
	if (a->scope[0] && h->cgroup_ok && hpcn_cgroup_read_metrics(&h->cg, a->scope, &m, NULL) == 0)
		json_object_set_new(j, "nr_processes", json_integer(m.nr_processes));
	else
		json_object_set_new(j, "nr_processes", json_null());
	return j;
}

json_t *hpcn_status_json(struct hpcn_helper *h)
{
	json_t *j = json_object(), *allocs = json_array(), *mounts = json_array();
	json_t *zombies = json_array(), *cg = json_object(), *ctrls = json_array();
	json_t *warns = json_array();
	uint64_t now = hpcn_now_ms();
	struct hpcn_uenv_mount *kmounts = NULL;
	size_t n_kmounts = 0;

	for (size_t i = 0; i < h->reg.n; i++) {
		const struct hpcn_alloc *a = h->reg.v[i];

		json_array_append_new(allocs, alloc_json(h, a));
		if (a->zombie)
			json_array_append_new(zombies, json_pack("{s:s, s:o}", "path", a->scope,
								 "since", rfc3339(a->zombie_since)));
	}
	/* The loop device of each image, from the kernel's table (the helper
	 * keeps none: LO_FLAGS_AUTOCLEAR ties the device to the mount). */
	if (h->uenv && hpcn_mountinfo_find_uenv(NULL, h->cfg.uenv_mount_base, &kmounts,
						&n_kmounts, NULL) < 0)
		n_kmounts = 0;
	for (struct hpcn_uenv_entry *e = h->uenv ? h->uenv->head : NULL; e; e = e->next) {
		json_t *users = json_array(), *loop = json_null();

		for (size_t i = 0; i < n_kmounts; i++)
			if (strcmp(kmounts[i].key, e->key) == 0 && kmounts[i].source[0]) {
				json_decref(loop);
				loop = json_string(kmounts[i].source);
			}

		for (size_t i = 0; i < h->reg.n; i++)
			for (size_t k = 0; k < h->reg.v[i]->n_mounts; k++)
				if (strcmp(h->reg.v[i]->mounts[k].key, e->key) == 0) {
					json_array_append_new(users, json_string(h->reg.v[i]->id));
					break;
				}
		json_array_append_new(mounts, json_pack(
			"{s:s, s:s, s:s, s:i, s:o, s:o, s:o}", "key", e->key,
			"image_path", e->image_path, "mount_point", e->mount_point,
			"refcount", (json_int_t)e->refcount,
			"hold_remaining_secs", e->hold ? json_integer(e->hold_deadline_ms > now ?
					(json_int_t)((e->hold_deadline_ms - now + 999) / 1000) : 0)
						       : json_null(),
			"loop_device", loop,
			"users", users));
	}
	free(kmounts);
	for (unsigned bit = 1; bit & HPCN_CG_CTRL_ALL; bit <<= 1)
		if (h->cgroup_ok && (h->cg.controllers & bit))
			json_array_append_new(ctrls, json_string(hpcn_cgroup_ctrl_name(bit)));
	for (size_t i = 0; i < h->cgroup_warnings.n; i++)
		json_array_append_new(warns, json_string(h->cgroup_warnings.v[i]));
	json_object_set_new(cg, "root", h->cgroup_ok ? json_string(h->cg.root) : json_null());
	json_object_set_new(cg, "enabled", json_boolean(h->cgroup_ok));
	json_object_set_new(cg, "controllers", ctrls);
	json_object_set_new(cg, "warnings", warns);

	json_object_set_new(j, "software", json_string("hpc-node-helper " HPCN_VERSION_STRING));
	json_object_set_new(j, "contract", json_string(HPCN_CONTRACT_VERSION));
	json_object_set_new(j, "pid", json_integer(getpid()));
	json_object_set_new(j, "ready", json_boolean(h->ready));
	json_object_set_new(j, "uptime_secs",
			    json_integer((json_int_t)((now - h->started_mono_ms) / 1000)));
	json_object_set_new(j, "socket", json_string(h->cfg.socket_path));
	json_object_set_new(j, "hold_time_secs", json_integer(h->cfg.hold_time_secs));
	/* One loop device per mounted image; 0 = no limit of ours. */
	json_object_set_new(j, "max_loop_devices", json_integer(h->cfg.max_loop_devices));
	json_object_set_new(j, "cgroup", cg);
	json_object_set_new(j, "allocations", allocs);
	json_object_set_new(j, "mounts", mounts);
	json_object_set_new(j, "zombies", zombies);
	json_object_set_new(j, "counters", json_pack("{s:I, s:I, s:I, s:I}",
		"requests", (json_int_t)h->counters.requests,
		"errors", (json_int_t)h->counters.errors,
		"denied", (json_int_t)h->counters.denied,
		"connections", (json_int_t)h->counters.connections));
	return j;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A registry record (<state_dir>/allocations/<id>.json), read back by a
 * restarted helper, which decides from it what it may kill and unmount.
 * The input goes through json_loadb with the flags hpcn_registry_load()
 * uses, then hpcn_alloc_from_json(). Properties checked:
 *  - an accepted record has a valid id and group, known namespaces, at most
 *    HPCN_MAX_MOUNTS mounts, and numbers that are what the file says (no
 *    silent truncation of a uid, gid or pid into another, e.g. root or init);
 *  - it saves (hpcn_alloc_to_json, as hpcn_registry_save prints it) and
 *    loads back to the same record.
 */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include <hpcnode/hpcnode.h>

#include "fuzz.h"
#include "registry/registry.h"

static void check_number(json_t *j, const char *key, long long have)
{
	json_t *v = json_object_get(j, key);

	FUZZ_CHECK(json_is_integer(v) && (long long)json_integer_value(v) == have,
		   "field %s: the file says %lld, the record holds %lld", key,
		   json_is_integer(v) ? (long long)json_integer_value(v) : -1LL, have);
}

static void check_record(json_t *j, const struct hpcn_alloc *a)
{
	struct hpcn_error err;

	hpcn_error_clear(&err);
	FUZZ_CHECK(hpcn_alloc_id_validate(a->id, &err) == 0, "accepted id '%s'", a->id);
	FUZZ_CHECK(!a->group[0] || hpcn_alloc_id_validate(a->group, &err) == 0,
		   "accepted group '%s'", a->group);
	FUZZ_CHECK(a->n_mounts <= HPCN_MAX_MOUNTS, "%zu mounts", a->n_mounts);
	FUZZ_CHECK((a->ns_mask >> HPCN_NS__COUNT) == 0, "namespace mask 0x%x", a->ns_mask);
	FUZZ_CHECK(hpcn_alloc_state_name(a->state) != NULL, "state %d", (int)a->state);
	check_number(j, "uid", (long long)a->uid);
	check_number(j, "gid", (long long)a->gid);
	check_number(j, "peer_uid", (long long)a->peer_uid);
	check_number(j, "pid_holder", (long long)a->pid_holder);
	check_number(j, "created_at", (long long)a->created_at);
	check_number(j, "zombie_since", (long long)a->zombie_since);
}

static bool same_record(const struct hpcn_alloc *a, const struct hpcn_alloc *b)
{
	if (strcmp(a->id, b->id) || strcmp(a->group, b->group) || a->state != b->state ||
	    a->uid != b->uid || a->gid != b->gid || a->peer_uid != b->peer_uid ||
	    a->created_at != b->created_at || strcmp(a->scope, b->scope) ||
	    a->zombie != b->zombie || a->zombie_since != b->zombie_since ||
	    a->ns_mask != b->ns_mask || a->pid_holder != b->pid_holder ||
	    a->n_mounts != b->n_mounts)
		return false;
	for (size_t i = 0; i < a->n_mounts; i++)
		if (strcmp(a->mounts[i].key, b->mounts[i].key) ||
		    strcmp(a->mounts[i].image_path, b->mounts[i].image_path) ||
		    strcmp(a->mounts[i].mount_point, b->mounts[i].mount_point))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hpcn_alloc a, b;
	struct hpcn_error err;
	json_error_t je;
	json_t *j, *saved, *back;
	char *text;

	j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return 0;
	hpcn_error_clear(&err);
	if (hpcn_alloc_from_json(j, &a, &err) < 0) {
		FUZZ_CHECK(err.kind != HPCN_E_NONE && err.message[0], "refused silently");
		/* A half-read record may hold mounts already: the registry frees it. */
		hpcn_alloc_clear_mounts(&a);
		json_decref(j);
		return 0;
	}
	check_record(j, &a);
	json_decref(j);

	saved = hpcn_alloc_to_json(&a);
	FUZZ_CHECK(saved != NULL, "to_json failed");
	text = json_dumps(saved, JSON_COMPACT | JSON_SORT_KEYS);
	FUZZ_CHECK(text != NULL, "json_dumps failed");
	json_decref(saved);
	back = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	FUZZ_CHECK(back != NULL, "the saved record is not JSON: %s\n%s", je.text, text);
	hpcn_error_clear(&err);
	FUZZ_CHECK(hpcn_alloc_from_json(back, &b, &err) == 0,
		   "the saved record does not load: %s\n%s", err.message, text);
	FUZZ_CHECK(same_record(&a, &b), "the record changed by a save and load\n%s", text);
	hpcn_alloc_clear_mounts(&b);
	hpcn_alloc_clear_mounts(&a);
	json_decref(back);
	free(text);
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * meta/env.json (it comes from inside a user's image) and applying its
 * views to an environment. The input is split at NUL bytes:
 *
 *   ENV.JSON [ \0 --view ARGUMENT [ \0 ENV.JSON of image 2 [ \0 image 3 ... ]]]
 *
 * Without a --view part, every view of the first image whose name is a
 * valid --view is applied, in file order. The environment lives in memory,
 * behind the same callbacks the SPANK glue passes. Properties checked, from
 * envjson.h and view.h:
 *  - a refused file gives InvalidArgument and no object; an accepted one has
 *    named views, and changes only to valid variable names;
 *  - when hpcn_view_check_names() refuses, hpcn_view_apply() refuses too and
 *    changes nothing; when it accepts, apply succeeds;
 *  - the environment apply leaves is the one a model of the documented
 *    semantics computes from the parsed changes.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "envjson.h"
#include "fuzz.h"
#include "view.h"

#define MAX_IMAGES 4
#define ENV_MAX 64

struct env {
	size_t n;
	char *name[ENV_MAX];
	char *value[ENV_MAX];
	unsigned int changes;       /* set + unset calls */
};

static int env_find(const struct env *e, const char *name)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->name[i], name) == 0)
			return (int)i;
	return -1;
}

static bool var_name_ok(const char *s)
{
	return s[0] && !(s[0] >= '0' && s[0] <= '9') &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
	       strlen(s);
}

static int env_get(void *ud, const char *name, char *buf, size_t cap)
{
	const struct env *e = ud;
	int i = env_find(e, name);
	size_t len;

	FUZZ_CHECK(var_name_ok(name), "get of '%s'", name);
	FUZZ_CHECK(cap > 0, "get with an empty buffer");
	if (i < 0)
		return 1;
	len = strlen(e->value[i]);
	if (len + 1 > cap) {
		errno = ENOSPC;
		return -1;
	}
	memcpy(buf, e->value[i], len + 1);
	return 0;
}

static int env_put(struct env *e, const char *name, const char *value)
{
	int i = env_find(e, name);
	char *v = strdup(value);

	FUZZ_CHECK(v != NULL, "out of memory");
	if (i < 0) {
		if (e->n == ENV_MAX) {
			free(v);
			errno = ENOMEM;     /* a full environment: apply must report it */
			return -1;
		}
		i = (int)e->n++;
		e->name[i] = strdup(name);
		FUZZ_CHECK(e->name[i] != NULL, "out of memory");
		e->value[i] = NULL;
	}
	free(e->value[i]);
	e->value[i] = v;
	return 0;
}

static void env_del(struct env *e, const char *name)
{
	int i = env_find(e, name);

	if (i < 0)
		return;
	free(e->name[i]);
	free(e->value[i]);
	e->n--;
	e->name[i] = e->name[e->n];
	e->value[i] = e->value[e->n];
}

static int env_set(void *ud, const char *name, const char *value)
{
	struct env *e = ud;

	FUZZ_CHECK(var_name_ok(name) && value, "set of '%s'", name);
	e->changes++;
	return env_put(e, name, value);
}

static int env_unset(void *ud, const char *name)
{
	struct env *e = ud;

	FUZZ_CHECK(var_name_ok(name), "unset of '%s'", name);
	e->changes++;
	env_del(e, name);
	return 0;
}

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	FUZZ_CHECK(env_put(e, "PATH", "/usr/bin:/bin") == 0 && env_put(e, "HOME", "/home/u") == 0 &&
		   env_put(e, "EMPTY", "") == 0 && env_put(e, "MANPATH", "/usr/share/man") == 0,
		   "initial environment");
}

static void env_free(struct env *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->name[i]);
		free(e->value[i]);
	}
	memset(e, 0, sizeof(*e));
}

static bool env_equal(const struct env *a, const struct env *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		int j = env_find(b, a->name[i]);

		if (j < 0 || strcmp(a->value[i], b->value[j]) != 0)
			return false;
	}
	return true;
}

/* The documented semantics (view.h), applied to the parsed changes. An empty
 * VALUE adds nothing to a list (an empty PATH element would mean "."). */
static int model_change(struct env *e, const struct hpcn_env_change *c)
{
	int i = env_find(e, c->var);
	const char *cur = i < 0 ? NULL : e->value[i];
	char *joined = NULL;
	int r;

	switch (c->op) {
	case HPCN_ENV_UNSET:
		env_del(e, c->var);
		return 0;
	case HPCN_ENV_SET:
		return env_put(e, c->var, c->value);
	case HPCN_ENV_PREPEND:
	case HPCN_ENV_APPEND:
		if (!c->value[0])
			return 0;
		if (!cur || !cur[0])
			return env_put(e, c->var, c->value);
		FUZZ_CHECK(asprintf(&joined, "%s:%s", c->op == HPCN_ENV_PREPEND ? c->value : cur,
				    c->op == HPCN_ENV_PREPEND ? cur : c->value) > 0,
			   "out of memory");
		r = env_put(e, c->var, joined);
		free(joined);
		return r;
	}
	FUZZ_CHECK(false, "unknown op %d", (int)c->op);
	return -1;
}

static const struct hpcn_envjson_view *model_find(const struct hpcn_envjson *const *imgs,
						  size_t n, const struct hpcn_view_ref *ref)
{
	const struct hpcn_envjson_view *found = NULL;
	size_t matches = 0;

	for (size_t i = 0; i < n; i++) {
		if (!imgs[i] || (ref->image[0] && (!imgs[i]->name ||
						   strcmp(imgs[i]->name, ref->image))))
			continue;
		for (size_t k = 0; k < imgs[i]->n_views; k++)
			if (strcmp(imgs[i]->views[k].name, ref->view) == 0) {
				if (!matches++)
					found = &imgs[i]->views[k];
				break;
			}
	}
	FUZZ_CHECK(matches == 1 && !found->problem, "view %s:%s accepted with %zu matches",
		   ref->image, ref->view, matches);
	return found;
}

static void check_parsed(const struct hpcn_envjson *e)
{
	for (size_t i = 0; i < e->n_views; i++) {
		const struct hpcn_envjson_view *v = &e->views[i];

		FUZZ_CHECK(v->name != NULL, "view %zu has no name", i);
		for (size_t k = 0; k < v->n_changes; k++) {
			const struct hpcn_env_change *c = &v->changes[k];

			FUZZ_CHECK(var_name_ok(c->var), "view %s changes '%s'", v->name, c->var);
			FUZZ_CHECK((c->op == HPCN_ENV_UNSET) == (c->value == NULL),
				   "view %s: op %d on %s with value %p", v->name, (int)c->op,
				   c->var, (void *)c->value);
		}
	}
}

static struct hpcn_envjson *parse(const uint8_t *data, size_t len, const char *path)
{
	struct hpcn_envjson *e = NULL;
	struct hpcn_error err;

	hpcn_error_clear(&err);
	if (hpcn_envjson_parse((const char *)data, len, path, &e, &err) < 0) {
		FUZZ_CHECK(e == NULL, "a refused file gave an object");
		FUZZ_CHECK(err.kind == HPCN_E_INVALID_ARGUMENT && strstr(err.message, path),
			   "refused with kind %d: %s", (int)err.kind, err.message);
		return NULL;
	}
	FUZZ_CHECK(e != NULL, "an accepted file gave no object");
	check_parsed(e);
	return e;
}

/* Every view of img whose name --view accepts, in file order. */
static void all_views(const struct hpcn_envjson *img, struct hpcn_view_list *l)
{
	struct hpcn_view_list one;
	struct hpcn_error err;

	memset(l, 0, sizeof(*l));
	for (size_t k = 0; img && k < img->n_views && l->n < HPCN_MAX_VIEWS; k++)
		if (hpcn_view_parse_arg(img->views[k].name, &one, &err) == 0 && one.n == 1 &&
		    !one.item[0].image[0] && strcmp(one.item[0].view, img->views[k].name) == 0)
			l->item[l->n++] = one.item[0];
}

static void apply(const struct hpcn_envjson *const *imgs, size_t n,
		  const struct hpcn_view_list *l)
{
	struct env env, model;
	struct hpcn_error err, err2;
	int checked, applied;
	bool model_ok = true;

	env_init(&env);
	hpcn_error_clear(&err);
	checked = hpcn_view_check_names(imgs, n, l, &err);
	hpcn_error_clear(&err2);
	applied = hpcn_view_apply(imgs, n, l, env_get, env_set, env_unset, &env, &err2);
	if (checked < 0) {
		FUZZ_CHECK(applied < 0 && env.changes == 0,
			   "check refused (%s) but apply returned %d after %u changes",
			   err.message, applied, env.changes);
		FUZZ_CHECK(strcmp(err.message, err2.message) == 0, "check said '%s', apply '%s'",
			   err.message, err2.message);
		env_free(&env);
		return;
	}
	env_init(&model);
	for (size_t i = 0; i < l->n && model_ok; i++) {
		const struct hpcn_envjson_view *v = model_find(imgs, n, &l->item[i]);

		for (size_t k = 0; k < v->n_changes && model_ok; k++)
			model_ok = model_change(&model, &v->changes[k]) == 0;
	}
	if (model_ok) {
		FUZZ_CHECK(applied == 0, "check accepted but apply failed: %s", err2.message);
		FUZZ_CHECK(env_equal(&env, &model), "the applied environment differs from the model");
	} else {
		/* Only a full in-memory environment makes the model fail. */
		FUZZ_CHECK(applied < 0, "apply succeeded past a full environment");
	}
	env_free(&model);
	env_free(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *part[MAX_IMAGES + 1];
	size_t len[MAX_IMAGES + 1], nparts;
	struct hpcn_envjson *img[MAX_IMAGES] = { NULL };
	struct hpcn_view_list l;
	struct hpcn_error err;
	char path[64];
	size_t nimg = 0;

	nparts = fuzz_split(data, size, part, len, MAX_IMAGES + 1);
	img[nimg++] = parse(part[0], len[0], "/user-environment/meta/env.json");
	for (size_t i = 2; i < nparts; i++) {
		snprintf(path, sizeof(path), "/image%zu/meta/env.json", i);
		img[nimg++] = parse(part[i], len[i], path);
	}

	if (nparts == 1) {
		all_views(img[0], &l);
		if (l.n)
			apply((const struct hpcn_envjson *const *)img, nimg, &l);
	} else {
		char *arg = fuzz_cstr(part[1], len[1]);

		if (hpcn_view_parse_arg(arg, &l, &err) == 0)
			apply((const struct hpcn_envjson *const *)img, nimg, &l);
		free(arg);
	}
	for (size_t i = 0; i < nimg; i++)
		hpcn_envjson_free(img[i]);
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --view=NAME[,NAME...]: applying the views of uenv images, as their
 * meta/env.json describes them (loaded with envjson.h).
 *
 * NAME is VIEW, or IMAGENAME:VIEW where IMAGENAME is an image's "name";
 * the bare form must match exactly one image. Views are applied in the order
 * given; within a view, "list" then "scalar", each in file order:
 *   prepend  VALUE:CURRENT (just VALUE when CURRENT is unset or empty)
 *   append   CURRENT:VALUE (idem)
 *   set      VALUE
 *   unset    unset the variable
 *   scalar   a string sets the variable, null unsets it
 * VALUE is the "value" array joined with ':'.
 *
 * Where checks can happen: env.json lives inside the image, so it can be
 * read only where the image is mounted (in the step's mount namespace on
 * the node). In srun, before the job runs, only hpcn_view_parse_arg()'s
 * syntactic check is possible. On the node, once the images are mounted and
 * their env.json loaded (e.g. in init_post_opt, before tasks fork),
 * hpcn_view_check_names() reports a wrong view once per step, and
 * hpcn_view_apply() then applies them (it checks again first, so it never
 * leaves a half-applied environment because of a bad view).
 *
 * Pure logic: no Slurm header, no logging. Errors are texts for the user's
 * terminal (see hpcn_spank_errorf).
 */
#ifndef HPCN_SPANK_VIEW_H
#define HPCN_SPANK_VIEW_H

#include <stdbool.h>
#include <stddef.h>

#include <hpcnode/error.h>

struct hpcn_envjson;              /* envjson.h */

#define HPCN_MAX_VIEWS          16
#define HPCN_VIEW_NAME_MAX      256         /* bytes of a name, with its NUL */
#define HPCN_VIEW_ARG_MAX       4096        /* bytes of a --view value, with its NUL */

/* ---- --view argument ---- */

struct hpcn_view_ref {
	char image[HPCN_VIEW_NAME_MAX];    /* "" for a bare VIEW */
	char view[HPCN_VIEW_NAME_MAX];
};

struct hpcn_view_list {
	size_t n;
	struct hpcn_view_ref item[HPCN_MAX_VIEWS];
};

/*
 * Syntax only: items separated by ',', each VIEW or IMAGENAME:VIEW, names of
 * [A-Za-z0-9._+-], no empty item, no item twice, at most HPCN_MAX_VIEWS.
 * Returns 0 or -1 with err (RequestError InvalidArgument).
 */
int hpcn_view_parse_arg(const char *arg, struct hpcn_view_list *out, struct hpcn_error *err);

/* ---- applying views ---- */

/*
 * The environment, through callbacks, so that the SPANK glue can pass
 * spank_getenv/spank_setenv/spank_unsetenv and tests an in-memory one.
 * get: copy the value of name into buf (cap bytes, NUL included) and return
 *      0; return 1 when it is not set; return -1 with errno ENOSPC when buf
 *      is too small (the caller retries with a bigger one, up to 1 MiB), or
 *      -1 with another errno on failure.
 * set/unset: 0, or -1 with errno.
 */
typedef int (*hpcn_getenv_fn)(void *ud, const char *name, char *buf, size_t cap);
typedef int (*hpcn_setenv_fn)(void *ud, const char *name, const char *value);
typedef int (*hpcn_unsetenv_fn)(void *ud, const char *name);

/*
 * Resolve every requested view in the loaded images (NULL entries, images
 * without env.json, are skipped) and check it can be applied, without
 * changing anything. Errors (RequestError), e.g.
 *   --view: view 'foo' not found (available: app:default, app:modules)
 *   --view: view 'default' exists in several images (app, tools): write IMAGENAME:VIEW
 *   --view: view 'app:old' (/user-environment/meta/env.json) cannot be applied: it has no "env" ...
 */
int hpcn_view_check_names(const struct hpcn_envjson *const *images, size_t nimages,
			  const struct hpcn_view_list *views, struct hpcn_error *err);

/* Check, then apply every requested view in order. Returns 0 or -1 with err;
 * a failing callback can leave earlier changes applied. */
int hpcn_view_apply(const struct hpcn_envjson *const *images, size_t nimages,
		    const struct hpcn_view_list *views, hpcn_getenv_fn get,
		    hpcn_setenv_fn set, hpcn_unsetenv_fn unset, void *ud,
		    struct hpcn_error *err);

#endif

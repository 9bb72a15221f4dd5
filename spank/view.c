/* SPDX-License-Identifier: Apache-2.0 */
/* --view: argument syntax and applying views (env.json is read by envjson.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envjson.h"
#include "plugargs.h"
#include "view.h"

#define E_INVALID HPCN_E_INVALID_ARGUMENT

/* Room for the list of available views in messages; longer lists are cut. */
#define AVAILABLE_TEXT_MAX 640
/* Largest variable value get() may hand back. */
#define ENV_VALUE_MAX (1 << 20)

/* ---- --view argument ---- */

static bool view_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '+' || c == '-';
}

static int check_view_name(const char *item, const char *s, size_t len, const char *what,
			   struct hpcn_error *err)
{
	if (len == 0)
		return hpcn_spank_errorf(err, E_INVALID, "--view: '%s': empty %s", item, what);
	if (len >= HPCN_VIEW_NAME_MAX)
		return hpcn_spank_errorf(err, E_INVALID,
					 "--view: %s longer than %d bytes", what,
					 HPCN_VIEW_NAME_MAX - 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (view_char_ok(s[i]))
			continue;
		if (c > 0x20 && c < 0x7f)
			return hpcn_spank_errorf(err, E_INVALID,
						 "--view: '%s': character '%c' is not allowed in %s (expected VIEW or IMAGENAME:VIEW)",
						 item, c, what);
		return hpcn_spank_errorf(err, E_INVALID,
					 "--view: '%s': byte 0x%02x is not allowed in %s",
					 item, c, what);
	}
	return 0;
}

int hpcn_view_parse_arg(const char *arg, struct hpcn_view_list *out, struct hpcn_error *err)
{
	char item[2 * HPCN_VIEW_NAME_MAX + 1];
	const char *p;

	memset(out, 0, sizeof(*out));
	if (!arg)
		return hpcn_spank_errorf(err, E_INVALID, "--view: missing argument");
	if (!arg[0])
		return hpcn_spank_errorf(err, E_INVALID, "--view: empty argument");
	/* What the plugin can carry to the node (and Slurm's environment back). */
	if (strlen(arg) >= HPCN_VIEW_ARG_MAX)
		return hpcn_spank_errorf(err, E_INVALID, "--view: longer than %d bytes",
					 HPCN_VIEW_ARG_MAX - 1);
	for (p = arg; ; ) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		struct hpcn_view_ref *r = &out->item[out->n];
		const char *colon;

		if (len == 0) {
			hpcn_spank_errorf(err, E_INVALID, "--view: '%s': view %zu is empty",
					  arg, out->n + 1);
			goto fail;
		}
		if (len >= sizeof(item)) {
			hpcn_spank_errorf(err, E_INVALID, "--view: view %zu is longer than %zu bytes",
					  out->n + 1, sizeof(item) - 1);
			goto fail;
		}
		if (out->n == HPCN_MAX_VIEWS) {
			hpcn_spank_errorf(err, E_INVALID, "--view: more than %d views",
					  HPCN_MAX_VIEWS);
			goto fail;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		colon = strchr(item, ':');
		if (colon) {
			size_t ilen = (size_t)(colon - item);

			if (strchr(colon + 1, ':')) {
				hpcn_spank_errorf(err, E_INVALID,
						  "--view: '%s': more than one ':' (expected VIEW or IMAGENAME:VIEW)",
						  item);
				goto fail;
			}
			if (check_view_name(item, item, ilen, "IMAGENAME", err) < 0 ||
			    check_view_name(item, colon + 1, strlen(colon + 1), "VIEW", err) < 0)
				goto fail;
			memcpy(r->image, item, ilen);
			r->image[ilen] = '\0';
			memcpy(r->view, colon + 1, strlen(colon + 1) + 1);
		} else {
			if (check_view_name(item, item, len, "VIEW", err) < 0)
				goto fail;
			r->image[0] = '\0';
			memcpy(r->view, item, len + 1);
		}
		for (size_t j = 0; j < out->n; j++)
			if (strcmp(out->item[j].image, r->image) == 0 &&
			    strcmp(out->item[j].view, r->view) == 0) {
				hpcn_spank_errorf(err, E_INVALID, "--view: '%s' given twice", item);
				goto fail;
			}
		out->n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
fail:
	out->n = 0;
	return -1;
}

/* ---- applying views ---- */

static void ref_text(const struct hpcn_view_ref *r, char *buf, size_t cap)
{
	if (r->image[0])
		snprintf(buf, cap, "%s:%s", r->image, r->view);
	else
		snprintf(buf, cap, "%s", r->view);
}

/* Append s to buf (cap bytes), marking a cut with "...". */
static void append_text(char *buf, size_t cap, size_t *o, const char *s)
{
	int n;

	if (*o >= cap)
		return;
	n = snprintf(buf + *o, cap - *o, "%s", s);
	if (n < 0 || (size_t)n >= cap - *o) {
		if (cap >= 4)
			memcpy(buf + cap - 4, "...", 4);
		*o = cap;
		return;
	}
	*o += (size_t)n;
}

static void available_text(const struct hpcn_envjson *const *images, size_t nimages,
			   char *buf, size_t cap)
{
	size_t o = 0, count = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < nimages; i++) {
		const struct hpcn_envjson *img = images[i];

		if (!img)
			continue;
		for (size_t k = 0; k < img->n_views; k++) {
			append_text(buf, cap, &o, count++ ? ", " : "");
			if (img->name) {
				append_text(buf, cap, &o, img->name);
				append_text(buf, cap, &o, ":");
			}
			append_text(buf, cap, &o, img->views[k].name);
		}
	}
	if (count == 0)
		snprintf(buf, cap, "none: no mounted image describes views");
}

static int find_view(const struct hpcn_envjson *const *images, size_t nimages,
		     const struct hpcn_view_ref *ref, const struct hpcn_envjson **img_out,
		     const struct hpcn_envjson_view **view_out, struct hpcn_error *err)
{
	const struct hpcn_envjson *img_found = NULL;
	const struct hpcn_envjson_view *view_found = NULL;
	char names[AVAILABLE_TEXT_MAX], text[2 * HPCN_VIEW_NAME_MAX];
	size_t matches = 0, o = 0;

	ref_text(ref, text, sizeof(text));
	names[0] = '\0';
	for (size_t i = 0; i < nimages; i++) {
		const struct hpcn_envjson *img = images[i];

		if (!img || (ref->image[0] && (!img->name || strcmp(img->name, ref->image))))
			continue;
		for (size_t k = 0; k < img->n_views; k++) {
			if (strcmp(img->views[k].name, ref->view))
				continue;
			append_text(names, sizeof(names), &o, matches ? ", " : "");
			append_text(names, sizeof(names), &o, img->name ? img->name : img->path);
			if (!matches) {
				img_found = img;
				view_found = &img->views[k];
			}
			matches++;
			break;
		}
	}
	if (matches == 0) {
		char avail[AVAILABLE_TEXT_MAX];

		available_text(images, nimages, avail, sizeof(avail));
		return hpcn_spank_errorf(err, HPCN_E_NOT_FOUND,
					 "--view: view '%s' not found (available: %s)", text, avail);
	}
	if (matches > 1) {
		if (ref->image[0])
			return hpcn_spank_errorf(err, E_INVALID,
						 "--view: view '%s' is ambiguous: several mounted images are named '%s'",
						 text, ref->image);
		return hpcn_spank_errorf(err, E_INVALID,
					 "--view: view '%s' exists in several images (%s): write IMAGENAME:VIEW",
					 text, names);
	}
	if (view_found->problem)
		return hpcn_spank_errorf(err, E_INVALID,
					 "--view: view '%s' (%s) cannot be applied: %s",
					 text, img_found->path, view_found->problem);
	*img_out = img_found;
	*view_out = view_found;
	return 0;
}

int hpcn_view_check_names(const struct hpcn_envjson *const *images, size_t nimages,
			  const struct hpcn_view_list *views, struct hpcn_error *err)
{
	for (size_t i = 0; i < views->n; i++) {
		const struct hpcn_envjson *img;
		const struct hpcn_envjson_view *v;

		if (find_view(images, nimages, &views->item[i], &img, &v, err) < 0)
			return -1;
	}
	return 0;
}

/* Current value of var into a malloc'd string; *out NULL when unset. */
static int get_value(hpcn_getenv_fn get, void *ud, const char *var, char **out,
		     struct hpcn_error *err)
{
	size_t cap = 4096;

	*out = NULL;
	for (;;) {
		char *buf = malloc(cap);
		int r;

		if (!buf)
			return hpcn_spank_errorf(err, HPCN_E_INTERNAL, "--view: out of memory");
		errno = 0;
		r = get(ud, var, buf, cap);
		if (r == 0) {
			buf[cap - 1] = '\0';
			*out = buf;
			return 0;
		}
		free(buf);
		if (r == 1)
			return 0;
		if (errno != ENOSPC)
			return hpcn_spank_errorf(err, HPCN_E_INTERNAL,
						 "--view: cannot read %s: %s", var,
						 strerror(errno ? errno : EIO));
		if (cap >= ENV_VALUE_MAX)
			return hpcn_spank_errorf(err, E_INVALID,
						 "--view: %s is longer than %d bytes", var,
						 ENV_VALUE_MAX);
		cap *= 2;
	}
}

static int apply_change(const struct hpcn_env_change *c, const char *text, hpcn_getenv_fn get,
			hpcn_setenv_fn set, hpcn_unsetenv_fn unset, void *ud,
			struct hpcn_error *err)
{
	char *cur = NULL, *joined = NULL;
	const char *value = c->value;
	int r;

	switch (c->op) {
	case HPCN_ENV_UNSET:
		if (unset(ud, c->var) < 0)
			return hpcn_spank_errorf(err, HPCN_E_INTERNAL,
						 "--view: view '%s': cannot unset %s: %s",
						 text, c->var, strerror(errno ? errno : EIO));
		return 0;
	case HPCN_ENV_SET:
		break;
	case HPCN_ENV_PREPEND:
	case HPCN_ENV_APPEND:
		if (!c->value[0])
			return 0;  /* nothing to add */
		if (get_value(get, ud, c->var, &cur, err) < 0)
			return -1;
		if (cur && cur[0]) {
			r = c->op == HPCN_ENV_PREPEND ? asprintf(&joined, "%s:%s", c->value, cur)
						      : asprintf(&joined, "%s:%s", cur, c->value);
			free(cur);
			if (r < 0)
				return hpcn_spank_errorf(err, HPCN_E_INTERNAL,
							 "--view: out of memory");
			value = joined;
		} else {
			free(cur);
		}
		break;
	}
	errno = 0;
	r = set(ud, c->var, value);
	if (r < 0)
		hpcn_spank_errorf(err, HPCN_E_INTERNAL, "--view: view '%s': cannot set %s: %s",
				  text, c->var, strerror(errno ? errno : EIO));
	free(joined);
	return r < 0 ? -1 : 0;
}

int hpcn_view_apply(const struct hpcn_envjson *const *images, size_t nimages,
		    const struct hpcn_view_list *views, hpcn_getenv_fn get,
		    hpcn_setenv_fn set, hpcn_unsetenv_fn unset, void *ud,
		    struct hpcn_error *err)
{
	if (hpcn_view_check_names(images, nimages, views, err) < 0)
		return -1;
	for (size_t i = 0; i < views->n; i++) {
		const struct hpcn_envjson *img;
		const struct hpcn_envjson_view *v;
		char text[2 * HPCN_VIEW_NAME_MAX];

		if (find_view(images, nimages, &views->item[i], &img, &v, err) < 0)
			return -1;
		ref_text(&views->item[i], text, sizeof(text));
		for (size_t k = 0; k < v->n_changes; k++)
			if (apply_change(&v->changes[k], text, get, set, unset, ud, err) < 0)
				return -1;
	}
	return 0;
}

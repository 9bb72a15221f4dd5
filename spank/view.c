/* SPDX-License-Identifier: Apache-2.0 */
/* --view: argument syntax, meta/env.json loading, applying views. */
#include <errno.h>
#include <linux/openat2.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jansson.h>

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

/* ---- meta/env.json ---- */

static void view_free_contents(struct hpcn_envjson_view *v)
{
	free(v->name);
	free(v->description);
	free(v->root);
	free(v->type);
	free(v->problem);
	for (size_t i = 0; i < v->n_changes; i++) {
		free(v->changes[i].var);
		free(v->changes[i].value);
	}
	free(v->changes);
	memset(v, 0, sizeof(*v));
}

void hpcn_envjson_free(struct hpcn_envjson *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_views; i++)
		view_free_contents(&e->views[i]);
	free(e->views);
	free(e->path);
	free(e->name);
	free(e->description);
	free(e->mount);
	free(e);
}

/* A problem with one view: "JSONPATH: text", kept until the view is asked for.
 * Returns -1; -2 when even that fails (out of memory). */
static int view_problem(struct hpcn_envjson_view *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int view_problem(struct hpcn_envjson_view *v, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&v->problem, fmt, ap);
	va_end(ap);
	if (n < 0) {
		v->problem = NULL;
		return -2;
	}
	return -1;
}

/* Optional string member: absent or null -> *out NULL. -1 on a wrong type. */
static int opt_string(json_t *obj, const char *key, char **out)
{
	json_t *j = json_object_get(obj, key);

	*out = NULL;
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_string(j))
		return -1;
	*out = strdup(json_string_value(j));
	return *out ? 0 : -2;
}

static bool var_name_ok(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* The "value" array joined with ':'. Empty elements are dropped: an empty
 * PATH element means the working directory, never what an image wants. */
static int join_values(struct hpcn_envjson_view *v, const char *jpath, json_t *arr, char **out)
{
	size_t i, len = 0;
	json_t *el;
	char *s;

	*out = NULL;
	if (!json_is_array(arr))
		return view_problem(v, "%s.value: expected an array of strings", jpath);
	json_array_foreach(arr, i, el) {
		if (!json_is_string(el))
			return view_problem(v, "%s.value[%zu]: expected a string", jpath, i);
		len += json_string_length(el) + 1;
	}
	s = malloc(len + 1);
	if (!s)
		return -2;
	s[0] = '\0';
	len = 0;
	json_array_foreach(arr, i, el) {
		size_t l = json_string_length(el);

		if (l == 0)
			continue;
		if (len)
			s[len++] = ':';
		memcpy(s + len, json_string_value(el), l);
		len += l;
		s[len] = '\0';
	}
	*out = s;
	return 0;
}

static int add_change(struct hpcn_envjson_view *v, const char *var, enum hpcn_env_op op,
		      char *value /* taken */)
{
	struct hpcn_env_change *c = &v->changes[v->n_changes];

	c->var = strdup(var);
	if (!c->var) {
		free(value);
		return -2;
	}
	c->op = op;
	c->value = value;
	v->n_changes++;
	return 0;
}

static int parse_list(struct hpcn_envjson_view *v, const char *vpath, json_t *list)
{
	const char *var;
	json_t *ops;

	json_object_foreach(list, var, ops) {
		char jpath[HPCN_VIEW_NAME_MAX * 3];
		size_t i;
		json_t *o;

		snprintf(jpath, sizeof(jpath), "%s.env.values.list.%s", vpath, var);
		if (!var_name_ok(var))
			return view_problem(v, "%s: invalid variable name", jpath);
		if (!json_is_array(ops))
			return view_problem(v, "%s: expected an array of {\"op\", \"value\"}",
					    jpath);
		json_array_foreach(ops, i, o) {
			char opath[sizeof(jpath) + 32];
			enum hpcn_env_op op;
			const char *name;
			char *value = NULL;
			json_t *jop;
			int r;

			snprintf(opath, sizeof(opath), "%s[%zu]", jpath, i);
			if (!json_is_object(o))
				return view_problem(v, "%s: expected an object {\"op\", \"value\"}",
						    opath);
			jop = json_object_get(o, "op");
			if (!json_is_string(jop))
				return view_problem(v, "%s.op: missing, or not a string", opath);
			name = json_string_value(jop);
			if (strcmp(name, "prepend") == 0)
				op = HPCN_ENV_PREPEND;
			else if (strcmp(name, "append") == 0)
				op = HPCN_ENV_APPEND;
			else if (strcmp(name, "set") == 0)
				op = HPCN_ENV_SET;
			else if (strcmp(name, "unset") == 0)
				op = HPCN_ENV_UNSET;
			else
				return view_problem(v, "%s.op: unknown op '%.64s' (known: prepend, append, set, unset)",
						    opath, name);
			if (op != HPCN_ENV_UNSET) {
				r = join_values(v, opath, json_object_get(o, "value"), &value);
				if (r < 0)
					return r;
			}
			r = add_change(v, var, op, value);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int parse_scalar(struct hpcn_envjson_view *v, const char *vpath, json_t *scalar)
{
	const char *var;
	json_t *val;

	json_object_foreach(scalar, var, val) {
		char *value = NULL;
		int r;

		if (!var_name_ok(var))
			return view_problem(v, "%s.env.values.scalar.%s: invalid variable name",
					    vpath, var);
		if (json_is_string(val)) {
			value = strdup(json_string_value(val));
			if (!value)
				return -2;
		} else if (!json_is_null(val)) {
			return view_problem(v, "%s.env.values.scalar.%s: expected a string or null",
					    vpath, var);
		}
		r = add_change(v, var, value ? HPCN_ENV_SET : HPCN_ENV_UNSET, value);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Returns 0, -1 (v->problem says why), -2 (out of memory). */
static int parse_view_env(struct hpcn_envjson_view *v, const char *vpath, json_t *env)
{
	json_t *version, *values, *list = NULL, *scalar = NULL, *j;
	size_t nchanges = 0;
	const char *key;
	int r;

	if (!env || json_is_null(env))
		return view_problem(v, "%s has no \"env\" (an old image with an activation script only)",
				    vpath);
	if (!json_is_object(env))
		return view_problem(v, "%s.env: expected an object", vpath);
	version = json_object_get(env, "version");
	if (version && !(json_is_integer(version) && json_integer_value(version) == 1)) {
		if (json_is_integer(version))
			return view_problem(v, "%s.env.version: unsupported version %lld (this plugin reads version 1)",
					    vpath, (long long)json_integer_value(version));
		return view_problem(v, "%s.env.version: expected the number 1", vpath);
	}
	r = opt_string(env, "type", &v->type);
	if (r == -1)
		return view_problem(v, "%s.env.type: expected a string", vpath);
	if (r < 0)
		return r;
	values = json_object_get(env, "values");
	if (values && !json_is_null(values)) {
		if (!json_is_object(values))
			return view_problem(v, "%s.env.values: expected an object", vpath);
		list = json_object_get(values, "list");
		scalar = json_object_get(values, "scalar");
	}
	if (list && json_is_null(list))
		list = NULL;
	if (scalar && json_is_null(scalar))
		scalar = NULL;
	if (list && !json_is_object(list))
		return view_problem(v, "%s.env.values.list: expected an object", vpath);
	if (scalar && !json_is_object(scalar))
		return view_problem(v, "%s.env.values.scalar: expected an object", vpath);

	/* One allocation for all changes: count them first (a non-array is
	 * reported by parse_list). */
	if (list)
		json_object_foreach(list, key, j)
			nchanges += json_is_array(j) ? json_array_size(j) : 0;
	if (scalar)
		nchanges += json_object_size(scalar);
	if (nchanges) {
		v->changes = calloc(nchanges, sizeof(*v->changes));
		if (!v->changes)
			return -2;
	}
	if (list && (r = parse_list(v, vpath, list)) < 0)
		return r;
	if (scalar && (r = parse_scalar(v, vpath, scalar)) < 0)
		return r;
	return 0;
}

/* One entry of "views". Returns 0 (possibly with v->problem), -2 (no memory). */
static int parse_view(struct hpcn_envjson_view *v, const char *name, json_t *jv)
{
	char vpath[HPCN_VIEW_NAME_MAX + 16];
	int r;

	snprintf(vpath, sizeof(vpath), "views.%s", name);
	v->name = strdup(name);
	if (!v->name)
		return -2;
	if (!json_is_object(jv))
		r = view_problem(v, "%s: expected an object", vpath);
	else if ((r = opt_string(jv, "description", &v->description)) == -1)
		r = view_problem(v, "%s.description: expected a string", vpath);
	else if (r == 0 && (r = opt_string(jv, "root", &v->root)) == -1)
		r = view_problem(v, "%s.root: expected a string", vpath);
	else if (r == 0)
		r = parse_view_env(v, vpath, json_object_get(jv, "env"));
	if (r == -2)
		return -2;
	if (r == -1) {
		/* Keep the name and the reason only: nothing half-parsed survives. */
		char *keep_name = v->name, *keep_problem = v->problem;

		v->name = NULL;
		v->problem = NULL;
		view_free_contents(v);
		v->name = keep_name;
		v->problem = keep_problem;
	}
	return 0;
}

int hpcn_envjson_parse(const char *data, size_t len, const char *path,
		       struct hpcn_envjson **out, struct hpcn_error *err)
{
	struct hpcn_envjson *e = NULL;
	json_error_t jerr;
	json_t *root = NULL, *views, *jv;
	const char *key;
	int r, rv = -1;

	*out = NULL;
	if (!path)
		path = "env.json";
	if (len > HPCN_ENVJSON_MAX_SIZE)
		return hpcn_spank_errorf(err, E_INVALID, "%s: too large (%zu bytes, at most %d)",
					 path, len, HPCN_ENVJSON_MAX_SIZE);
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return hpcn_spank_errorf(err, E_INVALID, "%s: not valid JSON: %s (line %d, column %d)",
					 path, jerr.text, jerr.line, jerr.column);
	if (!json_is_object(root)) {
		hpcn_spank_errorf(err, E_INVALID, "%s: the top level is not a JSON object", path);
		goto fail;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path)))
		goto nomem;
	if ((r = opt_string(root, "name", &e->name)) == -1) {
		hpcn_spank_errorf(err, E_INVALID, "%s: name: expected a string", path);
		goto fail;
	}
	if (r == 0 && (r = opt_string(root, "description", &e->description)) == -1) {
		hpcn_spank_errorf(err, E_INVALID, "%s: description: expected a string", path);
		goto fail;
	}
	if (r == 0 && (r = opt_string(root, "mount", &e->mount)) == -1) {
		hpcn_spank_errorf(err, E_INVALID, "%s: mount: expected a string", path);
		goto fail;
	}
	if (r < 0)
		goto nomem;
	views = json_object_get(root, "views");
	if (!views) {
		hpcn_spank_errorf(err, E_INVALID, "%s: views: missing", path);
		goto fail;
	}
	if (!json_is_object(views)) {
		hpcn_spank_errorf(err, E_INVALID, "%s: views: expected an object", path);
		goto fail;
	}
	if (json_object_size(views)) {
		e->views = calloc(json_object_size(views), sizeof(*e->views));
		if (!e->views)
			goto nomem;
	}
	json_object_foreach(views, key, jv) {
		/* Counted before parsing, so a failure mid-way frees what exists. */
		struct hpcn_envjson_view *v = &e->views[e->n_views++];

		if (parse_view(v, key, jv) < 0)
			goto nomem;
	}
	*out = e;
	e = NULL;
	rv = 0;
	goto fail;
nomem:
	hpcn_spank_errorf(err, HPCN_E_INTERNAL, "%s: out of memory", path);
fail:
	hpcn_envjson_free(e);
	json_decref(root);
	return rv;
}

/* Read and parse an opened env.json (closed here). */
static int load_fd(int fd, const char *path, struct hpcn_envjson **out, struct hpcn_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int rv = -1;

	if (fstat(fd, &st) < 0) {
		hpcn_spank_errorf(err, E_INVALID, "%s: fstat: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		hpcn_spank_errorf(err, E_INVALID, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > HPCN_ENVJSON_MAX_SIZE) {
		hpcn_spank_errorf(err, E_INVALID, "%s: too large (%lld bytes, at most %d)",
				  path, (long long)st.st_size, HPCN_ENVJSON_MAX_SIZE);
		goto out;
	}
	/* One byte more than allowed, to notice a file that grew since fstat. */
	buf = malloc(HPCN_ENVJSON_MAX_SIZE + 1);
	if (!buf) {
		hpcn_spank_errorf(err, HPCN_E_INTERNAL, "%s: out of memory", path);
		goto out;
	}
	while (len < HPCN_ENVJSON_MAX_SIZE + 1) {
		ssize_t n = read(fd, buf + len, HPCN_ENVJSON_MAX_SIZE + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			hpcn_spank_errorf(err, E_INVALID, "%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > HPCN_ENVJSON_MAX_SIZE) {
		hpcn_spank_errorf(err, E_INVALID, "%s: too large (more than %d bytes)",
				  path, HPCN_ENVJSON_MAX_SIZE);
		goto out;
	}
	rv = hpcn_envjson_parse(buf, len, path, out, err);
out:
	free(buf);
	close(fd);
	return rv;
}

static int open_error(const char *path, int e, struct hpcn_error *err)
{
	if (e == ENOENT || e == ENOTDIR)
		return hpcn_spank_errorf(err, HPCN_E_NOT_FOUND, "%s: no such file", path);
	if (e == ELOOP)
		return hpcn_spank_errorf(err, E_INVALID, "%s: is a symbolic link", path);
	if (e == EXDEV)
		return hpcn_spank_errorf(err, E_INVALID, "%s: leaves the image", path);
	return hpcn_spank_errorf(err, e == EACCES ? HPCN_E_DENIED : E_INVALID,
				 "%s: cannot open: %s", path, strerror(e));
}

int hpcn_envjson_load(const char *path, struct hpcn_envjson **out, struct hpcn_error *err)
{
	int fd;

	*out = NULL;
	/* O_NONBLOCK: a FIFO in an image must not hang the step. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return open_error(path, errno, err);
	return load_fd(fd, path, out, err);
}

int hpcn_envjson_load_image(const char *mount, struct hpcn_envjson **out,
			    struct hpcn_error *err)
{
	/* No symlink on the way (meta/ included), nothing outside the image's
	 * mount: the plugin reads it as root, the image is the user's. */
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV |
			   RESOLVE_BENEATH,
	};
	char path[PATH_MAX + 32];
	int dir, fd, e;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/" HPCN_ENVJSON_PATH, mount);
	dir = open(mount, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return open_error(mount, errno, err);
	fd = (int)syscall(SYS_openat2, dir, HPCN_ENVJSON_PATH, &how, sizeof(how));
	e = errno;
	close(dir);
	if (fd < 0) {
		if (e == ENOENT)
			return 1; /* an image without metadata has no views */
		return open_error(path, e, err);
	}
	return load_fd(fd, path, out, err);
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

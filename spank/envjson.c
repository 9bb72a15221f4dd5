/* SPDX-License-Identifier: Apache-2.0 */
/* meta/env.json: reading and validating the views a uenv image describes. */
#include <errno.h>
#include <linux/openat2.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jansson.h>

#include "envjson.h"
#include "plugargs.h"

#define E_INVALID HPCN_E_INVALID_ARGUMENT

/* Room for a name (a view's, a variable's) in the JSON paths of messages,
 * longer ones are cut: as much as a --view name (HPCN_VIEW_NAME_MAX). */
#define NAME_TEXT_MAX 256

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
		char jpath[NAME_TEXT_MAX * 3];
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
	char vpath[NAME_TEXT_MAX + 16];
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

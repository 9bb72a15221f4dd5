/* SPDX-License-Identifier: Apache-2.0 */
/*
 * meta/env.json: the views a uenv image describes (CSCS format version 1),
 * read and validated here, applied by view.h:
 *
 *   { "name": "app", "description": "...", "mount": "/user-environment",
 *     "views": { "VIEW": { "description": "...", "root": "...",
 *        "env": { "version": 1, "type": "spack-view" | "augment",
 *          "values": {
 *            "list":   { "PATH": [ { "op": "prepend", "value": ["/a/bin"] } ] },
 *            "scalar": { "VAR": "a string", "OTHER": null } } } } } }
 *
 * Loading is tolerant per view: a view this code cannot apply (no "env", an
 * unknown op, a wrong type inside it) does not make the image's other views
 * unusable; the problem is recorded and reported only if that view is asked
 * for. Problems with the file as a whole (not JSON, "views" missing, a
 * top-level field of the wrong type, too big) fail the load.
 *
 * Pure logic: no Slurm header, no logging. Errors are texts for the user's
 * terminal (see hpcn_spank_errorf).
 */
#ifndef HPCN_SPANK_ENVJSON_H
#define HPCN_SPANK_ENVJSON_H

#include <stddef.h>

#include <hpcnode/error.h>

#define HPCN_ENVJSON_MAX_SIZE   (1 << 20)   /* bytes of meta/env.json */

/* The ops of "list" and "scalar"; view.h says how they apply. */
enum hpcn_env_op {
	HPCN_ENV_PREPEND,
	HPCN_ENV_APPEND,
	HPCN_ENV_SET,
	HPCN_ENV_UNSET,
};

/* One change to a variable: a "list" op, or a "scalar" (SET or UNSET). */
struct hpcn_env_change {
	char *var;
	enum hpcn_env_op op;
	char *value;                       /* ':'-joined; NULL for UNSET */
};

struct hpcn_envjson_view {
	char *name;
	char *description;                 /* NULL when absent */
	char *root;                        /* NULL when absent */
	char *type;                        /* env.type, NULL when absent */
	char *problem;                     /* why it cannot be applied, NULL if it can */
	size_t n_changes;
	struct hpcn_env_change *changes;   /* "list" ops, then "scalar" ones */
};

struct hpcn_envjson {
	char *path;                        /* the file, for messages */
	char *name;                        /* NULL when absent */
	char *description;
	char *mount;
	size_t n_views;
	struct hpcn_envjson_view *views;   /* in file order */
};

/*
 * Load and validate env.json at path (e.g. <mount>/meta/env.json), read by
 * the calling process: call it as the job's user, or inside the step's
 * namespace, because messages may quote the file. The last component is
 * opened with O_NOFOLLOW. Returns 0 with *out (free with hpcn_envjson_free),
 * or -1 with err naming the file and the JSON path, e.g.
 *   /user-environment/meta/env.json: views.default.env.values.list.PATH[0].op: ...
 * Kinds: NotFound (no such file), InvalidArgument (bad content, too big).
 */
int hpcn_envjson_load(const char *path, struct hpcn_envjson **out, struct hpcn_error *err);
/* Where an image keeps it, below its mount point. */
#define HPCN_ENVJSON_PATH "meta/env.json"
/* The env.json of the image mounted at mount, opened beneath it with no
 * symlink on the way and without leaving its mount (openat2): the plugin
 * reads it as root, and the image is the user's. 0 with *out; 1 when the
 * image has none (no views); -1 with err, e.g. "<mount>/meta/env.json: is a
 * symbolic link". */
int hpcn_envjson_load_image(const char *mount, struct hpcn_envjson **out,
			    struct hpcn_error *err);
/* Same, from a buffer; path only names it in messages. */
int hpcn_envjson_parse(const char *data, size_t len, const char *path,
		       struct hpcn_envjson **out, struct hpcn_error *err);
void hpcn_envjson_free(struct hpcn_envjson *e);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --uenv=IMAGE[:MOUNT][,IMAGE[:MOUNT]...], the syntax CSCS users know.
 *
 * Items are separated by ','. Each item is split at its LAST ":/": a MOUNT
 * always starts with '/', and a tag's ':' is never followed by '/'. Without
 * one, MOUNT is the plugin's default_mount. So image paths cannot contain ','
 * (nor ':' for absolute paths; see below).
 *
 * IMAGE is either
 *   - an absolute path to a squashfs file, lexically normalised ("//" and "."
 *     collapse; ".." is refused), and it must not contain ':' (so that
 *     "/a/b.sqfs:mnt", a forgotten '/', is reported, and the canonical string
 *     below stays unambiguous); or
 *   - a NAME in the site's repository (plugstack.conf repository=DIR):
 *
 *       NAME[/VERSION][:TAG]  ->  DIR/NAME/VERSION/TAG.squashfs
 *
 *     VERSION and TAG default to "latest". NAME, VERSION and TAG are each
 *     [A-Za-z0-9._+-]+, not "." or "..", and the whole name is shorter than
 *     256 bytes. E.g. with repository=/capstor/images:
 *       prgenv-gnu               /capstor/images/prgenv-gnu/latest/latest.squashfs
 *       prgenv-gnu/24.7          /capstor/images/prgenv-gnu/24.7/latest.squashfs
 *       prgenv-gnu/24.7:v2       /capstor/images/prgenv-gnu/24.7/v2.squashfs
 *       prgenv-gnu:v2            /capstor/images/prgenv-gnu/latest/v2.squashfs
 *     "latest" is usually a symlink (latest -> 24.7): resolution uses
 *     realpath(3), run in srun as the user, and the resolved absolute path
 *     is what travels to the node.
 *
 * MOUNT must be absolute, not "/", is lexically normalised like an image path,
 * and must be one of the plugin's allowed_mounts. No two images may share a
 * mount point. Nested mount points are allowed: items are stably sorted by
 * depth, so a parent is always mounted before its children.
 *
 * At most cfg->max_images images; the whole argument is shorter than
 * HPCN_UENV_ARG_MAX bytes.
 *
 * Pure logic: no Slurm header, no logging. Errors are texts for the user's
 * terminal in err->message (see hpcn_spank_errorf), kind RequestError
 * InvalidArgument (syntax), Denied (a mount point not allowed) or NotFound
 * (an image that does not exist).
 */
#ifndef HPCN_SPANK_UENV_SPEC_H
#define HPCN_SPANK_UENV_SPEC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <hpcnode/constants.h>
#include <hpcnode/error.h>

#include "plugargs.h"

/* Longest --uenv argument, and longest canonical string, plus its NUL. */
#define HPCN_UENV_ARG_MAX 16384
#define HPCN_UENV_NAME_MAX 256

struct hpcn_uenv_item {
	/* Absolute path; for a repository name before hpcn_uenv_spec_resolve(),
	 * the name as written (e.g. "prgenv-gnu/24.7:v2"). */
	char image[PATH_MAX];
	char mount[PATH_MAX];            /* normalised, allowed */
	/* For messages: the repository name as written, or the basename of an
	 * absolute path. Not carried by hpcn_uenv_spec_to_string(). */
	char name[HPCN_UENV_NAME_MAX];
	bool from_repository;            /* IMAGE was a NAME */
	bool resolved;                   /* by hpcn_uenv_spec_resolve(): image is a
					    real path to a regular, readable file */
};

struct hpcn_uenv_spec {
	size_t n;
	struct hpcn_uenv_item item[HPCN_MAX_MOUNTS];
};

/*
 * Parse and validate arg against cfg (default_mount, allowed_mounts,
 * max_images, repository). Purely lexical: touches no file. A NAME while no
 * repository is configured is an error here. Returns 0 or -1 with err, e.g.
 *   --uenv: '/x/y.sqfs:/etc': mount point /etc is not allowed (allowed: /user-environment,
 *   /user-tools)
 */
int hpcn_uenv_spec_parse(const char *arg, const struct hpcn_plugargs *cfg,
			 struct hpcn_uenv_spec *out, struct hpcn_error *err);

/*
 * Resolve every image with realpath(3) and stat(2) as the calling process:
 * repository names become DIR/NAME/VERSION/TAG.squashfs, absolute paths lose
 * their symlinks (the helper opens images with O_NOFOLLOW), and each must be
 * a regular file, which a non-root caller must be able to open (srun, as the
 * user: the error comes before the job; as root, on the node, nothing is
 * opened, the helper opens it as the user). Returns 0 or -1 with err, e.g.
 *   --uenv: image 'prgenv/24.7' not found in repository /repo (looked for
 *   /repo/prgenv/24.7/latest.squashfs)
 * Items already resolved are checked again (a spec parsed from the canonical
 * string on the node may be re-resolved; it is idempotent).
 */
int hpcn_uenv_spec_resolve(struct hpcn_uenv_spec *spec, const struct hpcn_plugargs *cfg,
			   struct hpcn_error *err);

/*
 * Canonical form "IMAGE:MOUNT[,IMAGE:MOUNT...]" (every MOUNT explicit), e.g.
 * to pass a resolved spec to the remote side in an environment variable;
 * hpcn_uenv_spec_parse() of it gives the same images and mounts in the same
 * order. Returns the length written, or -1 with errno ENAMETOOLONG when it
 * does not fit in cap (or is not shorter than HPCN_UENV_ARG_MAX).
 */
int hpcn_uenv_spec_to_string(const struct hpcn_uenv_spec *spec, char *buf, size_t cap);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plugin's arguments in plugstack.conf, e.g.
 *
 *   required spank_hpc_node.so namespaces=mount,pid repository=/capstor/images
 *
 *   socket=PATH              helper's handoff socket    default /run/pact/handoff.sock
 *   namespaces=mount[,pid][,net]  mount is always included  default mount
 *   cgroup=on|off            helper-made cgroup scope    default off
 *   ready_file=PATH          helper's readiness file     default /run/pact/ready
 *   ready_timeout=SECS       0..3600                     default 30
 *   connect_timeout=MS       1..60000                    default 1000
 *   request_timeout=MS       1..600000 (the reply)       default 60000
 *   fallback=none|local      helper unreachable          default none
 *   default_mount=PATH       --uenv without MOUNT        default /user-environment
 *   repository=DIR           where image NAMEs live      default none
 *   allowed_mounts=P[,P...]  mount points users may ask  default /user-environment,/user-tools
 *   max_images=N             images per --uenv, 1..8     default 4
 *
 * cgroup defaults to off because Slurm's own proctrack/task plugins usually
 * own task placement (proctrack/cgroup, task/cgroup): a process lives in one
 * cgroup, and two managers would move it back and forth. Sites without them
 * turn it on.
 *
 * Parsing is strict, because a plugstack.conf typo must not silently change
 * what every job gets: an unknown argument, a missing '=', an empty or bad
 * value, or an argument given twice is an error naming the argument.
 * default_mount must be one of allowed_mounts. Mount paths are stored
 * lexically normalised (see hpcn_mount_path_normalise).
 *
 * Pure logic: no Slurm header, no logging, no global state.
 */
#ifndef HPCN_SPANK_PLUGARGS_H
#define HPCN_SPANK_PLUGARGS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <hpcnode/constants.h>
#include <hpcnode/error.h>
#include <hpcnode/types.h>

#define HPCN_SPANK_MAX_ALLOWED_MOUNTS   16
#define HPCN_SPANK_DEFAULT_MAX_IMAGES   4
#define HPCN_SPANK_MAX_READY_TIMEOUT    3600    /* seconds */
#define HPCN_SPANK_MAX_CONNECT_TIMEOUT  60000   /* milliseconds */
/* The wait for the helper's reply to a step's request: it may mount images
 * (each opened as the user, bounded at 10 s by the helper) and create
 * namespaces (10 s), and a request that arrives while it starts is queued. */
#define HPCN_SPANK_REQUEST_TIMEOUT      60000   /* milliseconds */
#define HPCN_SPANK_MAX_REQUEST_TIMEOUT  600000  /* milliseconds */

enum hpcn_spank_fallback {
	HPCN_SPANK_FALLBACK_NONE = 0,  /* the step fails */
	HPCN_SPANK_FALLBACK_LOCAL,     /* the plugin builds a private namespace itself */
};

struct hpcn_plugargs {
	char socket[PATH_MAX];
	/* Namespaces to request, ready for a NamespaceRequest; HPCN_NS_MOUNT is
	 * always namespaces[0]. */
	size_t n_namespaces;
	enum hpcn_ns_type namespaces[HPCN_NS__COUNT];
	bool cgroup;
	char ready_file[PATH_MAX];
	unsigned int ready_timeout_secs;
	unsigned int connect_timeout_ms;
	unsigned int request_timeout_ms;
	enum hpcn_spank_fallback fallback;
	char default_mount[PATH_MAX];
	char repository[PATH_MAX];          /* "" when none is configured */
	/* Slurm's job_container/tmpfs BasePath (job_container.conf): when set, a
	 * step's namespace is built on the job's one (<base>/<jobid>/.ns), so the
	 * tasks keep their private /tmp. "" = not used. */
	char job_container_base[PATH_MAX];
	size_t n_allowed_mounts;
	char allowed_mounts[HPCN_SPANK_MAX_ALLOWED_MOUNTS][PATH_MAX];
	size_t max_images;                  /* 1..HPCN_MAX_MOUNTS */
};

void hpcn_plugargs_defaults(struct hpcn_plugargs *cfg);

/*
 * Parse SPANK's argc/argv (the words after the plugin's path) over the
 * defaults already in *cfg (call hpcn_plugargs_defaults first). Returns 0, or
 * -1 with err (RequestError InvalidArgument), e.g.
 *   plugstack.conf argument 'cgroup=maybe': expected on or off
 * On error *cfg may be partly updated: do not use it.
 */
int hpcn_plugargs_parse(int argc, char **argv, struct hpcn_plugargs *cfg,
			struct hpcn_error *err);

/* Is this namespace requested? */
bool hpcn_plugargs_has_ns(const struct hpcn_plugargs *cfg, enum hpcn_ns_type t);

/* Is mount (already normalised) one of allowed_mounts? */
bool hpcn_plugargs_mount_allowed(const struct hpcn_plugargs *cfg, const char *mount);

/* "/user-environment, /user-tools": the allowed list for messages. */
void hpcn_plugargs_allowed_string(const struct hpcn_plugargs *cfg, char *buf, size_t cap);

/*
 * Lexical normalisation of an absolute path: "//" collapses, "." components
 * and a trailing '/' go. No symlink is followed (mount points are looked up
 * in the step's namespace, not here). Returns 0, or -1 with errno:
 *   EINVAL       not absolute (empty, relative)
 *   EPERM        a ".." component (refused rather than resolved: what it
 *                means depends on symlinks we must not follow here)
 *   ENAMETOOLONG the result does not fit in cap
 * The result of "/" or "//." is "/".
 */
int hpcn_mount_path_normalise(const char *in, char *out, size_t cap);

/*
 * The errors of the plugin's logic are texts for the user's terminal (or the
 * admin's log), without the kind's "invalid argument: " prefix: kind says
 * which RequestError it is, message says everything else. Returns -1.
 */
int hpcn_spank_errorf(struct hpcn_error *err, enum hpcn_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif

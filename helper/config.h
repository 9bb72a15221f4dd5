/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The helper's configuration: an ini file (default HPCN_HELPER_CONFIG_PATH),
 * parsed with libinih. etc/helper.conf is the shipped copy with every key at
 * its default. Every path is configurable so that a test instance runs
 * entirely under a temporary directory.
 *
 * Keys (section, key = default: meaning):
 * [helper]
 *   socket = /run/pact/handoff.sock     handoff socket (SOCK_SEQPACKET)     restart
 *   socket_mode = 0660                  octal mode of the socket, <= 0777   restart
 *   ready_file = /run/pact/ready        created once the helper is ready    restart
 *   state_dir = /run/hpc-node           registry and namespace pins; under
 *                                       /run because mounts and namespaces
 *                                       die with a reboot anyway            restart
 *   log_level = info                    error|warning|notice|info|debug
 *   log_target = auto                   auto|stderr|journal (auto = journal
 *                                       when systemd started us)
 *   audit_log =                         JSON-lines audit file; empty = the
 *                                       records go to the log only
 * [access]
 *   allowed_users =                     users (names or uids) that may use
 *                                       the socket besides root
 *   allowed_groups =                    same, by the peer's primary group
 * [cgroup]
 *   enabled = true                      manage allocation scopes            restart
 *   root = auto                         cgroup v2 mount; auto = detect from
 *                                       /proc/self/mountinfo                restart
 *   limits_mandatory = false            fail a scope whose limits cannot be
 *                                       written (missing controller)
 *   kill_timeout = 10                   seconds before a kill that did not
 *                                       empty a scope is given up (F30)
 * [uenv]
 *   mount_base = /run/pact/uenv         where images are mounted on the host restart
 *   hold_time = 60                      seconds an unused image stays mounted
 *   allowed_mount_points = /user-environment, /user-tools
 *   create_mount_points =               allowed points the helper may mkdir
 *                                       when missing in the namespace
 *   image_prefixes =                    directories images must be in; empty
 *                                       = any file the user can read
 *   max_images = 4                      images per allocation, 1..HPCN_MAX_MOUNTS
 *   max_loop_devices = 0                images mounted at once (one loop device
 *                                       each), 0 = as many as the kernel gives
 * [namespaces]
 *   allow_pid = true                    may requests ask for a PID namespace
 *   allow_net = true                    ... a network namespace (Mount always)
 * [reconcile]
 *   interval = 30                       seconds between reconciliation scans
 *                                       (F31, F35, WI5 fallback)
 *
 * Values: paths absolute, without "..", stored lexically normalised; booleans
 * true/false/yes/no/on/off/1/0; lists comma-separated, spaces trimmed, and may
 * continue on indented lines. Unknown sections/keys, bad values and duplicate
 * keys are errors naming file:line and the key. Keys marked "restart" keep
 * their old value on reload (SIGHUP), see hpcn_config_reload_merge().
 */
#ifndef HPCN_HELPER_CONFIG_H
#define HPCN_HELPER_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include <hpcnode/error.h>

#include "util.h"

#define HPCN_CONFIG_DEFAULT_STATE_DIR   "/run/hpc-node"
#define HPCN_CONFIG_DEFAULT_SOCKET_MODE 0660
#define HPCN_CONFIG_DEFAULT_KILL_TIMEOUT_SECS 10
#define HPCN_CONFIG_DEFAULT_MAX_IMAGES  4
#define HPCN_CONFIG_DEFAULT_RECONCILE_INTERVAL_SECS 30
#define HPCN_CONFIG_MAX_HOLD_TIME_SECS  86400
#define HPCN_CONFIG_MAX_IDS 64
/* Largest config file we read (it is a handful of lines). */
#define HPCN_CONFIG_MAX_FILE_SIZE (1024 * 1024)

struct hpcn_config {
	char config_path[PATH_MAX];         /* where it was loaded from ("" = defaults) */
	/* [helper] */
	char socket_path[PATH_MAX];
	mode_t socket_mode;
	char ready_file[PATH_MAX];
	char state_dir[PATH_MAX];
	int log_level;                      /* LOG_ERR .. LOG_DEBUG */
	int log_target;                     /* enum hpcn_log_target (log.h), unresolved */
	char audit_log[PATH_MAX];           /* "" = none */
	/* [access] */
	struct { size_t n; uid_t v[HPCN_CONFIG_MAX_IDS]; } allowed_uids;
	struct { size_t n; gid_t v[HPCN_CONFIG_MAX_IDS]; } allowed_gids;
	/* [cgroup] */
	bool cgroup_enabled;
	char cgroup_root[PATH_MAX];         /* "" = auto-detect */
	bool limits_mandatory;
	unsigned kill_timeout_secs;
	/* [uenv] */
	char uenv_mount_base[PATH_MAX];
	unsigned hold_time_secs;
	struct hpcn_strv allowed_mount_points;
	struct hpcn_strv create_mount_points;  /* subset of allowed_mount_points */
	struct hpcn_strv image_prefixes;       /* empty = any */
	unsigned max_images;
	unsigned max_loop_devices;          /* 0: no limit of our own */
	/* [namespaces] */
	bool allow_pid;
	bool allow_net;
	/* [reconcile] */
	unsigned reconcile_interval_secs;
};

/* Fill c with the defaults (c needs no prior initialisation; it owns memory
 * afterwards: hpcn_config_free). Returns 0, or -1 on ENOMEM. */
int hpcn_config_defaults(struct hpcn_config *c);

/*
 * Load path (NULL = HPCN_HELPER_CONFIG_PATH) over the defaults. A missing
 * file is the defaults unless path_explicit. c needs no prior initialisation;
 * on failure it holds no memory (and err a RequestError InvalidArgument whose
 * text is "invalid argument: FILE:LINE: ..."), on success free it with
 * hpcn_config_free.
 */
int hpcn_config_load(struct hpcn_config *c, const char *path, bool path_explicit,
		     struct hpcn_error *err);
/* The same from a string (tests, fuzzing); name_for_messages names it in
 * error messages and becomes config_path. */
int hpcn_config_load_string(struct hpcn_config *c, const char *text,
			    const char *name_for_messages, struct hpcn_error *err);
void hpcn_config_free(struct hpcn_config *c);
/* Deep copy (a plain struct copy would share the lists). dst needs no prior
 * initialisation. Returns 0, or -1 (ENOMEM) with dst holding nothing. */
int hpcn_config_copy(struct hpcn_config *dst, const struct hpcn_config *src);

/* Root always; else the uid in allowed_users or the gid in allowed_groups. */
bool hpcn_config_peer_allowed(const struct hpcn_config *c, uid_t uid, gid_t gid);
/* Exactly one of allowed_mount_points, after lexical normalisation;
 * relative paths and ".." are refused. */
bool hpcn_config_mount_point_allowed(const struct hpcn_config *c, const char *mount_point);
/* May the helper mkdir this (allowed) mount point when it is missing? */
bool hpcn_config_mount_point_creatable(const struct hpcn_config *c, const char *mount_point);
/*
 * Under one of image_prefixes, compared on whole components after lexical
 * normalisation ("/images" allows "/images/a.sqfs", not "/images2/a.sqfs");
 * relative paths and ".." are always refused. Lexical only: the caller also
 * checks the path the opened image fd resolves to (/proc/self/fd/N).
 */
bool hpcn_config_image_allowed(const struct hpcn_config *c, const char *image_path);

/* Effective configuration in ini syntax, every key (`--print-config`); the
 * output loads back to an equal config. Returns 0 or -1 (errno). */
int hpcn_config_dump(const struct hpcn_config *c, FILE *out);
/* Same values for every key (config_path not compared). */
bool hpcn_config_equal(const struct hpcn_config *a, const struct hpcn_config *b);

/*
 * For SIGHUP: compare the running config old with the freshly loaded next.
 * Keys that differ are added to *changed as "section.key"; those that cannot
 * change without a restart (socket, socket_mode, ready_file, state_dir,
 * cgroup enabled/root, uenv mount_base) are also added to *refused and get
 * their old value back in next, so that next can then replace old. The
 * caller logs *refused as warnings. Returns 0 or -1 (ENOMEM).
 */
int hpcn_config_reload_merge(const struct hpcn_config *old, struct hpcn_config *next,
			     struct hpcn_strv *changed, struct hpcn_strv *refused);

/*
 * Lexical normalisation of an absolute path: collapses "//" and "/./",
 * drops a trailing "/". Returns 0, or -1 with errno EINVAL (relative or
 * empty), EPERM (a ".." component) or ENAMETOOLONG (does not fit cap).
 */
int hpcn_path_normalize(const char *in, char *out, size_t cap);
/* Is path equal to prefix or below it, on whole components? Both normalised. */
bool hpcn_path_has_prefix(const char *path, const char *prefix);

#endif

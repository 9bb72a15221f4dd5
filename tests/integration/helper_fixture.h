/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test fixture: a real hpc-node-helper instance (the built binary, fork+exec)
 * with every path under a mkdtemp directory and its own cgroup subtree under
 * the real cgroup2 mount, plus small protocol helpers. hfx_teardown() cleans
 * up whatever a failed test left behind: allocations, holder processes,
 * mounts under the directory, the cgroup subtree, the directory itself.
 */
#ifndef HPCN_TESTS_HELPER_FIXTURE_H
#define HPCN_TESTS_HELPER_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include <hpcnode/hpcnode.h>

#define HFX_DIR_PREFIX "/tmp/hpcn-hit-"
#define HFX_MAX_KIDS 64
/* Bounds of waits and calls: only there so that a hung helper does not hang
 * the test, never a speed the test expects (a loaded machine is slow). */
#define HFX_TIMEOUT_MS 30000
/* The bound of a wait for something that must happen (wall clock). */
#define HFX_WAIT_MS 60000

struct hfx {
	char dir[64];                 /* mkdtemp, mode 0755 */
	char conf[PATH_MAX];
	char sock[PATH_MAX];
	char ready[PATH_MAX];
	char state[PATH_MAX];
	char audit[PATH_MAX];
	char mount_base[PATH_MAX];
	char cg_mount[PATH_MAX];      /* the real cgroup2 mount */
	char cg_root[PATH_MAX];       /* our subtree: the helper's [cgroup] root */
	pid_t pid;                    /* the helper, 0 when not running */

	/* Configuration, set between hfx_setup() and hfx_start(). */
	char socket_mode[8];          /* "0660" */
	unsigned hold_time;           /* seconds */
	unsigned reconcile_interval;  /* seconds */
	unsigned max_images;
	char image_prefixes[PATH_MAX];

	pid_t kids[HFX_MAX_KIDS];     /* test processes killed at teardown */
	size_t n_kids;
	/* When set (NULL-terminated, e.g. valgrind and its options), the helper
	 * runs as exec_prefix[0] exec_prefix[1..] <helper> -f -c <conf>. */
	const char *const *exec_prefix;
};

/* mkdtemp, the cgroup subtree, the default config values. Not started. */
int hfx_setup(struct hfx *fx);
/* (Re)write the config from fx's fields. hfx_start() calls it. */
int hfx_write_conf(struct hfx *fx);
/* Write conf, fork+exec the helper (-f -c conf), wait for the ready file
 * (HFX_TIMEOUT_MS). Returns 0, or -1 (the helper is killed, message on
 * stderr). */
int hfx_start(struct hfx *fx);
/* Only fork+exec; fx->pid is set. */
pid_t hfx_spawn(struct hfx *fx);
/* The same with the configuration file as it is on disk (hfx_write_conf,
 * then edits), the helper's stderr appended to log_path when not NULL. */
pid_t hfx_spawn_as_written(struct hfx *fx, const char *log_path);
int hfx_start_as_written(struct hfx *fx, const char *log_path);
/* Replace the first occurrence of from by to in fx->conf. 0 or -1. */
int hfx_conf_replace(struct hfx *fx, const char *from, const char *to);
/* Send sig and wait (timeout_ms) for the helper to exit; returns the wait
 * status, or -1 (then it is SIGKILLed). */
int hfx_stop(struct hfx *fx, int sig, int timeout_ms);
/* Everything, always; safe to call twice. */
void hfx_teardown(struct hfx *fx);

/* Test processes: tracked for teardown. */
void hfx_track(struct hfx *fx, pid_t pid);
/* A child that sleeps until killed. */
pid_t hfx_fork_sleeper(struct hfx *fx);
/* waitpid with a bound; returns the status or -1. */
int hfx_wait_child(pid_t pid, int timeout_ms);
/* Is pid alive (not a zombie)? */
bool hfx_alive(pid_t pid);
/* Entries of a directory but . and .. (-1: cannot read it). */
int hfx_count_entries(const char *path);
/* Open descriptors of pid (-1: cannot tell). */
int hfx_count_fds(pid_t pid);

/* Protocol. */
int hfx_connect(struct hfx *fx);
/* One call (timeout HFX_TIMEOUT_MS); resp must be freed by the caller. */
int hfx_call(int sock, const struct hpcn_msg *req, const int *fds, size_t nfds,
	     struct hpcn_msg *resp, int *rfds, size_t *nrfds, struct hpcn_error *err);
/* Send a raw record (+ FDs) and receive one reply message (decoded). */
int hfx_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds,
	    struct hpcn_msg *resp, struct hpcn_error *err);
/* Status body (NULL on failure). */
json_t *hfx_status(struct hfx *fx);
json_t *hfx_status_alloc(json_t *status, const char *id);
/* Status mount entry whose users include id, or whose image_path is image. */
json_t *hfx_status_mount_of(json_t *status, const char *image);
size_t hfx_status_n_allocs(json_t *status);
/* NamespaceRequest for id with these namespace types and, when image is not
 * NULL, that uenv_image at the default mount point. resp and fds as
 * hpcn_request_namespaces() leaves them. */
int hfx_request(struct hfx *fx, const char *id, const enum hpcn_ns_type *types, size_t n,
		const char *image, struct hpcn_namespace_response *resp,
		int fds[HPCN_NS__COUNT], struct hpcn_error *err);
/* A process that joins mnt_fd's mount namespace and reads path every 20 ms:
 * it writes 'r' to *rd's pipe per read that contains marker, 'F' (then
 * exits) on a failure. Tracked for teardown. Returns its pid, or -1. */
pid_t hfx_start_reader(struct hfx *fx, int mnt_fd, const char *path, const char *marker,
		       int *rd);
/* Good reads since the last call; -1 when the reader reported a failure. */
int hfx_reader_drain(int rd);
/* Wait (up to timeout_ms) until the reader reports again, then drain: the
 * good reads, 0 when it reported none in time, -1 as hfx_reader_drain. */
int hfx_reader_wait(int rd, int timeout_ms);
/* AllocationEnded on a fresh connection. */
int hfx_end(struct hfx *fx, const char *id, struct hpcn_error *err);
/* Attach pid on a fresh connection. */
int hfx_attach(struct hfx *fx, const char *id, pid_t pid, struct hpcn_error *err);

/* <cg_root>/<rel> */
void hfx_cg_path(struct hfx *fx, const char *rel, char *out, size_t cap);
bool hfx_exists(const char *path);
/* Does <cg_root>/<rel>/cgroup.procs list pid? */
bool hfx_cg_has_pid(struct hfx *fx, const char *rel, pid_t pid);
/* Mounts whose mount point is under prefix (from /proc/self/mountinfo). */
int hfx_count_mounts_under(const char *prefix);
/* Mount id of the mount at path, or -1. */
int hfx_mount_id(const char *path);
/* Loop devices whose backing file is exactly path. */
int hfx_count_loops_of(const char *path);
/* Audit log lines containing every one of the NULL-terminated needles. */
int hfx_audit_count(struct hfx *fx, const char *needle, ...);

void hfx_sleep_ms(int ms);
/* CLOCK_MONOTONIC in milliseconds: the clock of every bound above. */
long long hfx_now_ms(void);
/* Poll cond(arg) every 20 ms until true or timeout_ms (wall clock) passed. */
bool hfx_wait_for(bool (*cond)(struct hfx *, const void *), struct hfx *fx, const void *arg,
		  int timeout_ms);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup v2 for the workload side of the crate's CgroupManager.
 *
 * A library, not a service: no global state, no logging. Every function
 * returns 0 or -1 and fills *err with the crate's error kinds and texts;
 * conditions that are not errors (a controller missing on this node) are
 * appended to a caller-supplied warnings vector for the caller to log.
 *
 * Paths are relative to the cgroup v2 root (the crate's convention, e.g.
 * "workload.slice/12.slice/12.0.scope"); an absolute path is accepted when
 * it lies under cg->root. Layout used for Slurm:
 *   workload.slice/<group>.slice/<alloc>.scope  when the allocation has a group
 *   workload.slice/<alloc>.scope                 otherwise
 * (job-wide limits on the group's slice hold across concurrent steps).
 *
 * RI1: every mutating call (create_*, apply_limits, attach, kill, remove,
 * destroy_scope) first classifies the path with hpcn_slice_owner_strict() and
 * requires owner Workload:
 *   pact.slice[/...]          -> CgroupError PermissionDenied
 *                                "permission denied: pact.slice/x owned by Pact"
 *   anything else            -> RequestError Denied naming the path
 *   (outside workload.slice, leaving the root, absolute outside the root)
 * and then walks the normalised path one component at a time with
 * openat(O_NOFOLLOW|O_DIRECTORY) from root_fd, so that no symlink (in a fake
 * tree, or a bind mount trick) can lead a write elsewhere. attach, kill,
 * remove and destroy_scope also refuse workload.slice itself.
 * Reads (read_metrics, is_populated, is_scope_empty, open_dir) accept any
 * path inside the root (RI6), with the same no-symlink walk.
 *
 * Thread safety: a struct hpcn_cgroup is not modified after open except by
 * create_hierarchy (controllers); concurrent calls are fine otherwise.
 */
#ifndef HPCN_HELPER_CGROUP_H
#define HPCN_HELPER_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hpcnode/error.h>
#include <hpcnode/types.h>

#include "util.h"

/* Controllers the workload side uses (bitmask). */
#define HPCN_CG_CTRL_MEMORY (1u << 0)
#define HPCN_CG_CTRL_CPU    (1u << 1)
#define HPCN_CG_CTRL_IO     (1u << 2)
#define HPCN_CG_CTRL_PIDS   (1u << 3)
#define HPCN_CG_CTRL_ALL    (HPCN_CG_CTRL_MEMORY | HPCN_CG_CTRL_CPU | \
			     HPCN_CG_CTRL_IO | HPCN_CG_CTRL_PIDS)

/*
 * A plain directory tree stands in for cgroupfs (tests, no root needed):
 * creating a cgroup also creates the interface files the kernel would
 * (cgroup.controllers from the parent's controllers and subtree_control,
 * cgroup.procs, cgroup.events "populated 0", cgroup.kill, and the files of
 * each controller with the kernel's defaults); writes truncate (io.max lines
 * accumulate, one per write); removal deletes those files before rmdir; the
 * statfs check for cgroup2 is skipped.
 */
#define HPCN_CGROUP_FAKE (1u << 0)

/* The default of cpu.max's period (the kernel's). */
#define HPCN_CGROUP_CPU_PERIOD_DEFAULT 100000ULL

/* destroy_scope's bound in the crate's F30 ("never hang on a kill"). */
#define HPCN_CGROUP_KILL_TIMEOUT_MS 10000

struct hpcn_cgroup {
	char root[PATH_MAX];       /* absolute cgroup v2 root (or a test subtree,
				      or a fake tree), no trailing '/' */
	int root_fd;               /* O_PATH|O_DIRECTORY|O_CLOEXEC */
	unsigned controllers;      /* HPCN_CG_CTRL_* usable in workload.slice:
				      the root's cgroup.controllers at open,
				      what got enabled after create_hierarchy */
	unsigned flags;            /* HPCN_CGROUP_FAKE */
	char sysfs_block[PATH_MAX];/* where whole block devices are listed for
				      a device-less io_max; "/sys/block" by
				      default, tests point it at a fake dir */
};

/*
 * The cgroup2 mount from /proc/self/mountinfo: /sys/fs/cgroup if it is
 * cgroup2, else /sys/fs/cgroup/unified, else the first cgroup2 mount.
 * CgroupError Io "no cgroup2 mount in /proc/self/mountinfo" when none.
 */
int hpcn_cgroup_detect_root(char *out, size_t cap, struct hpcn_error *err);
/* Same, reading another mountinfo file (tests). */
int hpcn_cgroup_detect_root_from(const char *mountinfo, char *out, size_t cap,
				 struct hpcn_error *err);

/* Open root (absolute). Real mode checks it is a cgroup2 filesystem.
 * On error cg is left closed (root_fd -1) and safe to close again. */
int hpcn_cgroup_open(struct hpcn_cgroup *cg, const char *root, unsigned flags,
		     struct hpcn_error *err);
void hpcn_cgroup_close(struct hpcn_cgroup *cg);

/*
 * Idempotent: creates workload.slice only (pact.slice is pact's, RI1) and
 * enables in the root's and workload.slice's cgroup.subtree_control each of
 * memory, cpu, io, pids that the root offers ("+memory +cpu +io +pids").
 * A missing controller is a warning naming it and the root.
 */
int hpcn_cgroup_create_hierarchy(struct hpcn_cgroup *cg, struct hpcn_strv *warnings,
				 struct hpcn_error *err);

/*
 * {parent}/{name}.slice, idempotent; applies lim (may be NULL) and enables
 * the available controllers in its subtree_control (it holds step scopes).
 * name must pass hpcn_alloc_id_validate. path_out (may be NULL) receives the
 * normalised relative path. A slice created by this call is removed again
 * when applying its limits fails.
 */
int hpcn_cgroup_create_slice(struct hpcn_cgroup *cg, const char *parent, const char *name,
			     const struct hpcn_resource_limits *lim, bool limits_mandatory,
			     char *path_out, size_t cap, struct hpcn_strv *warnings,
			     struct hpcn_error *err);

/*
 * {parent}/{name}.scope; an existing scope is fine (restart pickup) and gets
 * lim applied again. The parent must exist (NotFound otherwise). A scope
 * created by this call is removed again when applying its limits fails.
 */
int hpcn_cgroup_create_scope(struct hpcn_cgroup *cg, const char *parent, const char *name,
			     const struct hpcn_resource_limits *lim, bool limits_mandatory,
			     char *path_out, size_t cap, struct hpcn_strv *warnings,
			     struct hpcn_error *err);

/*
 * memory.max, memory.swap.max, cpu.weight, cpu.max, pids.max, io.max.
 * io: each io_devices entry is written as "MAJ:MIN rbps=R wbps=W" where a 0
 * field takes io_max when set, else "max"; with no io_devices, io_max is
 * written as rbps=wbps=io_max for every whole block device of the node
 * (sysfs_block/<dev>/dev, skipping loop*, ram*, zram*).
 * A limit whose controller is not in the cgroup's cgroup.controllers is a
 * warning ("memory.max not applied: controller 'memory' is not available in
 * cgroup v2 at ROOT (for PATH)"), or CgroupError CreationFailed with the same
 * words when mandatory. A write the kernel refuses is CreationFailed naming
 * the file, the value and errno. Invalid limits (cpu.weight outside
 * 1..10000, a bad cpu.max) are RequestError InvalidArgument, checked
 * before anything is written.
 */
int hpcn_cgroup_apply_limits(struct hpcn_cgroup *cg, const char *path,
			     const struct hpcn_resource_limits *lim, bool mandatory,
			     struct hpcn_strv *warnings, struct hpcn_error *err);

/* Move pid into path (cgroup.procs). RI2: the scope must exist. */
int hpcn_cgroup_attach(struct hpcn_cgroup *cg, const char *path, pid_t pid,
		       struct hpcn_error *err);

/*
 * PS3, no grace period: write "1" to cgroup.kill (kills the whole subtree);
 * when the kernel has no cgroup.kill (< 5.14), freeze the cgroup and SIGKILL
 * each pid of cgroup.procs, recursively, a few passes. Does not wait.
 */
int hpcn_cgroup_kill(struct hpcn_cgroup *cg, const char *path, struct hpcn_error *err);
/* The fallback alone (exposed for tests): freeze, SIGKILL every pid listed. */
int hpcn_cgroup_kill_pids(struct hpcn_cgroup *cg, const char *path, struct hpcn_error *err);

/* cgroup.events "populated" (the subtree has a live process). */
int hpcn_cgroup_is_populated(struct hpcn_cgroup *cg, const char *path, bool *populated,
			     struct hpcn_error *err);

/* rmdir path and the cgroups below it, deepest first; a path that is already
 * gone is fine. A populated cgroup is CgroupError Io (EBUSY). */
int hpcn_cgroup_remove(struct hpcn_cgroup *cg, const char *path, struct hpcn_error *err);

/*
 * kill, wait until cgroup.events says "populated 0" (woken by POLLPRI on
 * cgroup.events, at most timeout_ms), rmdir. A scope already gone is fine.
 * On timeout: CgroupError KillFailed "cgroup.kill failed for PATH: still
 * populated after 10 s (processes in D state?)" with sys_errno ETIMEDOUT;
 * the caller waits on (asynchronously) or marks the scope zombie and never
 * reuses it (F30).
 */
int hpcn_cgroup_destroy_scope(struct hpcn_cgroup *cg, const char *path, int timeout_ms,
			      struct hpcn_error *err);

/*
 * CgroupMetrics of any cgroup (RI6): memory.current, memory.max ("max" ->
 * unset), cpu.stat usage_usec, lines of cgroup.procs, and PSI "some avg10"
 * of cpu/memory/io.pressure (-1 when absent). Files of absent controllers
 * read as 0 / unset; a missing cgroup is CgroupError NotFound.
 */
int hpcn_cgroup_read_metrics(struct hpcn_cgroup *cg, const char *path,
			     struct hpcn_cgroup_metrics *m, struct hpcn_error *err);

/* The crate's is_scope_empty: no live process in the scope's subtree. */
int hpcn_cgroup_is_scope_empty(struct hpcn_cgroup *cg, const char *path, bool *empty,
			       struct hpcn_error *err);

/* An O_RDONLY|O_DIRECTORY|O_CLOEXEC fd of path (any path inside the root),
 * for the caller's inotify/poll on cgroup.events or CLONE_INTO_CGROUP.
 * Returns the fd or -1. */
int hpcn_cgroup_open_dir(struct hpcn_cgroup *cg, const char *path, struct hpcn_error *err);

/*
 * The scope path of an allocation: "workload.slice/<group>.slice/<alloc>.scope"
 * or, group NULL or "", "workload.slice/<alloc>.scope". Both names must pass
 * hpcn_alloc_id_validate.
 */
int hpcn_cgroup_scope_path(const char *group, const char *alloc_id, char *out, size_t cap,
			   struct hpcn_error *err);
/* "workload.slice/<group>.slice". */
int hpcn_cgroup_group_slice_path(const char *group, char *out, size_t cap,
				 struct hpcn_error *err);

/* ---- Pure formatting and parsing (cgroup_format.c), unit-tested ---- */

/* Controller name ("memory", ...) of one HPCN_CG_CTRL_* bit; NULL otherwise. */
const char *hpcn_cgroup_ctrl_name(unsigned ctrl);
/* Mask of memory/cpu/io/pids named in a cgroup.controllers or
 * cgroup.subtree_control text (a leading '+' is accepted; others ignored). */
unsigned hpcn_cgroup_parse_controllers(const char *text);
/* "+memory +cpu +io +pids" for the bits of mask, in that order; "" for 0.
 * Returns the length or -1 (ENOSPC). */
int hpcn_cgroup_fmt_subtree_control(char *buf, size_t cap, unsigned mask);

/* The value written to memory.max / memory.swap.max / pids.max: "%llu". */
int hpcn_cgroup_fmt_u64(char *buf, size_t cap, uint64_t v);
/* cpu.weight: 1..10000 else RequestError InvalidArgument. */
int hpcn_cgroup_fmt_cpu_weight(char *buf, size_t cap, uint64_t weight,
			       struct hpcn_error *err);
/* cpu.max: "$QUOTA $PERIOD", period default 100000; quota unset -> "max
 * $PERIOD". The kernel's bounds: quota >= 1000, period 1000..1000000. */
int hpcn_cgroup_fmt_cpu_max(char *buf, size_t cap, const struct hpcn_opt_u64 *quota,
			    const struct hpcn_opt_u64 *period, struct hpcn_error *err);
/* io.max: "MAJ:MIN rbps=N wbps=N", 0 -> "max". */
int hpcn_cgroup_fmt_io_max(char *buf, size_t cap, uint32_t major, uint32_t minor,
			   uint64_t rbps, uint64_t wbps);
/* Every check of the fmt functions above, nothing written. */
int hpcn_cgroup_validate_limits(const struct hpcn_resource_limits *lim,
				struct hpcn_error *err);

/* "max" -> unset; a number -> set; 0 / -1 (EINVAL) otherwise. */
int hpcn_cgroup_parse_max(const char *text, struct hpcn_opt_u64 *out);
/* The value of "key N" in a flat keyed file (cpu.stat, cgroup.events).
 * 0, or -1 with errno ENOENT (no such key) / EINVAL. */
int hpcn_cgroup_parse_keyed(const char *text, const char *key, uint64_t *out);
/* avg10 of the "some" line of a PSI file. 0 or -1 (EINVAL). */
int hpcn_cgroup_parse_psi_some_avg10(const char *text, double *out);
/* "MAJ:MIN" of a sysfs dev file. 0 or -1 (EINVAL). */
int hpcn_cgroup_parse_devnum(const char *text, uint32_t *major, uint32_t *minor);
/* Whole block devices the device-less io_max applies to: not loop*, ram*,
 * zram*. */
bool hpcn_cgroup_block_dev_eligible(const char *name);

#endif

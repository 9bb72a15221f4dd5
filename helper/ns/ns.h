/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Namespaces of allocations: the low level of the crate's NamespaceProvider.
 *
 * An allocation's namespaces live as long as their pins: files in
 * <ns_dir>/<alloc_id>/{mnt,net,pid} onto which /proc/<pid>/ns/X is
 * bind-mounted, as Slurm's namespace/tmpfs does. A pid namespace also needs a
 * living pid 1 (a new process can only be forked into it while its init
 * lives): a tiny holder process, "hpcn-pidns-hold", whose pid is also noted in
 * <ns_dir>/<alloc_id>/holder.
 *
 * This is a library: no global state, no logging (every failure is returned in
 * a struct hpcn_error naming the allocation, the path and the cause), every
 * wait is bounded, every child it forks is reaped before it returns. The
 * helper's own namespaces are never changed: work inside a namespace is done
 * by a forked child. Callers must therefore not reap children they do not
 * own (no waitpid(-1) / SIGCHLD SIG_IGN in the caller) and must not be
 * multi-threaded while calling (fork + setns). Holders are not children of
 * the caller: they are reparented to init (or to the caller's nearest
 * subreaper, which then reaps them; a daemon should not be a subreaper).
 *
 * Needs Linux >= 5.9 (open_tree/move_mount, pidfd_open, close_range,
 * statx STATX_MNT_ID). hpcn_ns_attach_mount of a detached mount fd needs a
 * kernel that lets open_tree(OPEN_TREE_CLONE) clone a detached mount (6.18
 * here does; older ones say EINVAL): there pass an attached mount, or use
 * hpcn_ns_bind_path on the host mount point.
 */
#ifndef HPCN_HELPER_NS_H
#define HPCN_HELPER_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <hpcnode/constants.h>
#include <hpcnode/error.h>
#include <hpcnode/types.h>

#include "util.h"

/* comm of the pid namespace holders (15 characters: the kernel's limit). */
#define HPCN_NS_HOLDER_COMM "hpcn-pidns-hold"
/* Bound of each wait on a child that works in a namespace. */
#define HPCN_NS_CHILD_TIMEOUT_MS 10000
/* Bound of the wait for a killed holder (and its pid namespace) to exit. */
#define HPCN_NS_KILL_TIMEOUT_MS 5000
/* hpcn_ns_read_mountinfo refuses more than this. */
#define HPCN_NS_MOUNTINFO_MAX (16u << 20)

struct hpcn_ns_set {
	char allocation_id[HPCN_ALLOC_ID_MAX + 1];
	bool present[HPCN_NS__COUNT];   /* indexed by enum hpcn_ns_type */
	pid_t pid_holder;               /* pid 1 of the allocation's pid ns, as
					   seen from ours; 0 if none */
};

/*
 * Prepare ns_dir: mkdir -p (0700 for created components), then make it a
 * mount point of its own that is PRIVATE (bind onto itself), unless it is a
 * private mount point already. Pinning a mount namespace below a shared mount
 * would propagate the pin into the pinned namespace itself (a loop the kernel
 * refuses with EINVAL). Idempotent; run once at start.
 */
int hpcn_ns_setup_dir(const char *ns_dir, struct hpcn_error *err);

/*
 * Create and pin the namespaces types[0..ntypes) (duplicates allowed) of
 * alloc_id:
 *  Mount: a copy of the helper's mount namespace, or of base_mnt_fd's when
 *         base_mnt_fd >= 0 (e.g. Slurm's job namespace with its private /tmp),
 *         with every mount made SLAVE (mounts made later below shared host
 *         mounts appear inside; nothing made inside reaches the host) and
 *         ns_dir unmounted inside (the pins of other allocations must not be
 *         held by this one).
 *  Net:   a new network namespace whose loopback is up.
 *  Pid:   a new pid namespace whose pid 1 is a holder process that reaps
 *         orphans forever; *out's pid_holder is its pid.
 * ns_dir must have been prepared by hpcn_ns_setup_dir. base_mnt_fd must be a
 * mount namespace fd and needs Mount among the types.
 * Idempotent: when alloc_id's pins already hold (at least) the requested
 * types, returns that set. A directory holding a different or broken set is
 * HPCN_E_BUSY (release it first). On failure nothing is left behind.
 */
int hpcn_ns_create(const char *ns_dir, const char *alloc_id,
		   const enum hpcn_ns_type *types, size_t ntypes, int base_mnt_fd,
		   struct hpcn_ns_set *out, struct hpcn_error *err);

/*
 * Open alloc_id's pinned namespace of type t (O_RDONLY|O_CLOEXEC), checked
 * with NS_GET_NSTYPE: the FD that goes to the client. Returns the fd or -1:
 * HPCN_E_NS_ALLOCATION_NOT_FOUND when the allocation has no directory,
 * HPCN_E_NOT_FOUND when it has no such pin.
 */
int hpcn_ns_open(const char *ns_dir, const char *alloc_id, enum hpcn_ns_type t,
		 struct hpcn_error *err);

/*
 * Rediscover alloc_id's set after a restart. holder is the pid the caller's
 * registry knows (<= 0: take the one noted in the directory). When a pid
 * namespace is pinned, the holder must live and be pid 1 of exactly that
 * namespace, else HPCN_E_NOT_FOUND (*out still shows the pins found).
 */
int hpcn_ns_load(const char *ns_dir, const char *alloc_id, pid_t holder,
		 struct hpcn_ns_set *out, struct hpcn_error *err);

/*
 * release_namespaces: SIGKILL the holder (the kernel then kills every process
 * of the pid namespace) and wait for it, bounded by HPCN_NS_KILL_TIMEOUT_MS;
 * unmount the pins (MNT_DETACH), remove them and the directory. A holder pid
 * is only killed when it is pid 1 of the pinned pid namespace (or, with no
 * pin left, an "hpcn-pidns-hold" that is pid 1 of some pid namespace): a
 * stale pid of a reused process is left alone. holder <= 0: the noted one.
 * Idempotent: missing pieces, or an unknown allocation, are not errors.
 */
int hpcn_ns_release(const char *ns_dir, const char *alloc_id, pid_t holder,
		    struct hpcn_error *err);

/*
 * F35: the allocation ids that have a directory in ns_dir, sorted, appended
 * to *ids (the caller frees it with hpcn_strv_free). A missing ns_dir is an
 * empty list.
 */
int hpcn_ns_list(const char *ns_dir, struct hpcn_strv *ids, struct hpcn_error *err);

/*
 * Mount mnt_fd (a detached mount from open_tree(OPEN_TREE_CLONE) or
 * fsmount(), or an attached one) at target inside the mount namespace
 * mnt_ns_fd. A clone of mnt_fd is attached, so mnt_fd stays usable (for the
 * next allocation). The target is an absolute path inside the namespace,
 * resolved there without following symlinks (no component may be a symlink,
 * "." or ".."); its missing directories are created (0755) only when
 * create_target: the caller decides which points may be created (admin
 * allowed ones like /user-environment, never user-given paths). Nested
 * targets work when attached in order.
 * Errors are HPCN_E_NS_CREATION_FAILED naming the source, the target and
 * the failing step.
 */
int hpcn_ns_attach_mount(int mnt_ns_fd, int mnt_fd, const char *target, bool create_target,
			 struct hpcn_error *err);
/* The same; what (e.g. the image path) and alloc_id (either may be NULL) only
 * make the message: "mount of WHAT at TARGET in allocation ID: ...". */
int hpcn_ns_attach_mount_named(int mnt_ns_fd, int mnt_fd, const char *what,
			       const char *alloc_id, const char *target, bool create_target,
			       struct hpcn_error *err);

/* Bind the helper's host_src (recursively) at target inside mnt_ns_fd's
 * namespace, as hpcn_ns_attach_mount does. */
int hpcn_ns_bind_path(int mnt_ns_fd, const char *host_src, const char *target,
		      bool create_target, struct hpcn_error *err);
/* The same; alloc_id (may be NULL) only makes the message: "namespace
 * creation failed: mount of /run/pact/uenv/KEY at /user-environment in
 * allocation 12.0: resolving the target: No such file or directory". */
int hpcn_ns_bind_path_named(int mnt_ns_fd, const char *host_src, const char *alloc_id,
			    const char *target, bool create_target, struct hpcn_error *err);

/* Lazily unmount (MNT_DETACH) the mount at target inside mnt_ns_fd's namespace.
 * HPCN_E_UNMOUNT_FAILED when target is missing or not a mount point. */
int hpcn_ns_detach_mount(int mnt_ns_fd, const char *target, struct hpcn_error *err);

/* /proc/self/mountinfo as a process inside mnt_ns_fd's namespace sees it
 * (NUL-terminated; *len excludes the NUL). The caller frees *text. */
int hpcn_ns_read_mountinfo(int mnt_ns_fd, char **text, size_t *len, struct hpcn_error *err);

#endif

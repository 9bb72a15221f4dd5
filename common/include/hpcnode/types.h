/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The types of the hpc-node contract in C. Field names follow the crate's
 * serde names; fields marked "ext" are this implementation's additions and
 * travel on the wire as extra optional JSON fields (docs/protocol.md).
 * Strings are heap-allocated, owned by the struct, freed by the *_free()
 * functions of protocol.h; NULL stands for serde's None.
 */
#ifndef HPCNODE_TYPES_H
#define HPCNODE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hpcnode/constants.h>
#include <hpcnode/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Option<u64> and friends. */
struct hpcn_opt_u64 {
	bool set;
	uint64_t value;
};

/* io.max for one device: "MAJ:MIN rbps=N wbps=N" (ext). 0 = "max". */
struct hpcn_io_device_limit {
	uint32_t major;
	uint32_t minor;
	uint64_t rbps;
	uint64_t wbps;
};

/*
 * ResourceLimits. The crate has memory_max, cpu_weight (1..10000) and io_max
 * (bytes/s, no device: we apply it as rbps=wbps=io_max to every device listed
 * in io_devices, or to every block device of the node when none is listed).
 */
struct hpcn_resource_limits {
	struct hpcn_opt_u64 memory_max;      /* memory.max */
	struct hpcn_opt_u64 cpu_weight;      /* cpu.weight, 1..10000 */
	struct hpcn_opt_u64 io_max;          /* bytes/s, see above */
	/* ext */
	struct hpcn_opt_u64 memory_swap_max; /* memory.swap.max */
	struct hpcn_opt_u64 cpu_max_quota_usec;  /* cpu.max "$QUOTA $PERIOD" */
	struct hpcn_opt_u64 cpu_max_period_usec; /* default 100000 */
	struct hpcn_opt_u64 pids_max;        /* pids.max */
	size_t n_io_devices;
	struct hpcn_io_device_limit io_devices[HPCN_MAX_IO_DEVICES];
};

/* CgroupHandle (not serialized by the crate). path is relative to the root. */
struct hpcn_cgroup_handle {
	char *path;
};

/* CgroupMetrics. */
struct hpcn_cgroup_metrics {
	uint64_t memory_current;
	struct hpcn_opt_u64 memory_max;  /* None when the file says "max" */
	uint64_t cpu_usage_usec;
	uint32_t nr_processes;
	/* ext: PSI "some avg10" where the kernel has it (-1 = absent) */
	double cpu_pressure_avg10;
	double memory_pressure_avg10;
	double io_pressure_avg10;
};

/* NamespaceType; serde names "Pid", "Net", "Mount". */
enum hpcn_ns_type {
	HPCN_NS_PID = 0,
	HPCN_NS_NET,
	HPCN_NS_MOUNT,
	HPCN_NS__COUNT
};

const char *hpcn_ns_type_name(enum hpcn_ns_type t);       /* "Pid", NULL if invalid */
int hpcn_ns_type_from_name(const char *name, enum hpcn_ns_type *out); /* 0 / -1 */
int hpcn_ns_type_clone_flag(enum hpcn_ns_type t);         /* CLONE_NEWPID ... */
const char *hpcn_ns_type_proc_name(enum hpcn_ns_type t);  /* "pid","net","mnt" */

/* MountHandle: an image and where it is mounted. In a NamespaceRequest's
 * "mounts" (ext) mount_point is where the allocation wants it (NULL: the
 * default /user-environment); in answers it is where it is. */
struct hpcn_mount_handle {
	char *image_path;
	char *mount_point;
	int image_fd_index; /* ext: index of an SCM_RIGHTS FD of the request that
			       holds the image opened by the client, -1 none */
};

/* NamespaceRequest. */
struct hpcn_namespace_request {
	char *allocation_id;
	size_t n_namespaces;
	enum hpcn_ns_type namespaces[HPCN_NS__COUNT];
	char *uenv_image;                  /* Option<String> */
	/* ext */
	size_t n_mounts;                   /* several images; uenv_image, when set
					      and n_mounts == 0, means one mount
					      at the default mount point */
	struct hpcn_mount_handle mounts[HPCN_MAX_MOUNTS];
	char *group;                       /* e.g. the Slurm job id: allocations of
					      one group share a job slice */
	bool has_limits;
	struct hpcn_resource_limits limits;/* applied to the group's slice */
	bool has_uid;                      /* the allocation's user; trusted */
	uid_t uid;                         /* only from root / admin peers */
	gid_t gid;
	int base_mount_ns_fd_index;        /* build the mount ns on this one, -1 */
};

/* NamespaceResponse. The FDs follow as SCM_RIGHTS in fd_types order. */
struct hpcn_namespace_response {
	char *allocation_id;
	size_t n_fd_types;
	enum hpcn_ns_type fd_types[HPCN_NS__COUNT];
	char *uenv_mount_path;             /* Option<String> */
	/* ext */
	size_t n_mounts;
	struct hpcn_mount_handle mounts[HPCN_MAX_MOUNTS];
	char *scope;                       /* cgroup path of the scope, or NULL */
	size_t n_warnings;
	char **warnings;                   /* e.g. a limit whose controller is absent */
};

/* AllocationEnded. */
struct hpcn_allocation_ended {
	char *allocation_id;
	char *group;                       /* ext: end every allocation of a group
					      (allocation_id may then be NULL) */
};

/* Allocation ids and group names become path components. Returns 0 when id
 * matches [A-Za-z0-9._-]{1,64} and is not "." or ".."; else fills err
 * (RequestError InvalidArgument naming the problem) and returns -1. */
int hpcn_alloc_id_validate(const char *id, struct hpcn_error *err);

#ifdef __cplusplus
}
#endif
#endif

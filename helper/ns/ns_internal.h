/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the namespace module (ns*.c): forked workers and the holder. */
#ifndef HPCN_HELPER_NS_INTERNAL_H
#define HPCN_HELPER_NS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <hpcnode/error.h>

/* What a worker was doing when it failed: travels back with its errno. */
enum ns_step {
	NS_STEP_NONE = 0,
	NS_STEP_SETNS_BASE,
	NS_STEP_UNSHARE,
	NS_STEP_MAKE_SLAVE,
	NS_STEP_HIDE_NS_DIR,
	NS_STEP_LO_UP,
	NS_STEP_SETNS,
	NS_STEP_RESOLVE_TARGET,
	NS_STEP_CREATE_TARGET,
	NS_STEP_MOVE_MOUNT,
	NS_STEP_NOT_MOUNT_POINT,
	NS_STEP_UMOUNT,
	NS_STEP_READ_MOUNTINFO,
	NS_STEP_UNSHARE_PID,
	NS_STEP_FORK_HOLDER,
	NS_STEP__COUNT
};

const char *ns_step_text(int step);

struct ns_report {
	int step;
	int err;    /* errno, 0 on success */
};

/*
 * A forked worker. fn runs in the child and returns 0 or an errno, setting
 * *step; data_fd is the write end of a pipe to the parent (-1 unless
 * with_data). With hold, the child waits after reporting until the parent
 * finishes it, so that its /proc/<pid>/ns/X can be pinned.
 */
typedef int (*ns_worker_fn)(void *arg, int data_fd, int *step);

struct ns_worker {
	pid_t pid;
	int report_fd;  /* read end */
	int go_fd;      /* write end, closing it releases a holding child */
	int data_fd;    /* read end, -1 without data */
	unsigned long long deadline_ms;
};

#define NS_WORKER_INIT { .pid = -1, .report_fd = -1, .go_fd = -1, .data_fd = -1 }

/* Fork. Returns 0, or -1 with errno (nothing left behind). */
int ns_worker_start(struct ns_worker *w, bool hold, bool with_data,
		    ns_worker_fn fn, void *arg);
/* Read everything from the data pipe until EOF (at most max bytes) into a
 * malloc'ed NUL-terminated buffer. 0 or -1 with errno (ETIMEDOUT, EFBIG). */
int ns_worker_read_data(struct ns_worker *w, size_t max, char **text, size_t *len);
/* Wait for the report. 0, or -1 with errno (ETIMEDOUT; EPIPE when the child
 * died without reporting). */
int ns_worker_report(struct ns_worker *w, struct ns_report *rep);
/* Release, reap (SIGKILL at the deadline), close everything. Idempotent. */
void ns_worker_finish(struct ns_worker *w);

/* Read exactly len bytes before deadline_ms (hpcn_now_ms clock). 0, or -1
 * with errno ETIMEDOUT, EPIPE (EOF first) or the read's. */
int ns_read_full(int fd, void *buf, size_t len, unsigned long long deadline_ms);

/* Reap a child of ours, SIGKILLing it at deadline_ms. */
void ns_reap(pid_t pid, unsigned long long deadline_ms);

/*
 * Start a pid namespace holder (double fork: it is not our child). Returns
 * 0 and its pid, or -1 with *err filled (nothing left behind).
 */
int ns_holder_spawn(const char *alloc_id, pid_t *holder, struct hpcn_error *err);

/* A process we may signal: a pidfd where the kernel has them (no pid reuse
 * race), else the bare pid. */
struct ns_proc {
	pid_t pid;
	int pidfd;  /* -1 without pidfd support */
};

#define NS_PROC_INIT { .pid = 0, .pidfd = -1 }

/* Take a handle on pid (0 or -1 with errno ESRCH when it is gone). */
int ns_proc_open(pid_t pid, struct ns_proc *p);
void ns_proc_close(struct ns_proc *p);
/* SIGKILL, then wait, bounded, until it has exited (it is not our child: a
 * zombie counts as exited). 0 or -1 (errno ETIMEDOUT). */
int ns_proc_kill_wait(struct ns_proc *p, unsigned int timeout_ms);

/* A handle on pid when it is the holder of the pid namespace whose nsfs
 * inode is (dev, ino) (dev == 0: any pid namespace; the comm and "pid 1
 * inside" are checked instead). -1 with errno ESRCH when it is gone or is
 * not that holder. */
int ns_holder_get(pid_t pid, dev_t dev, ino_t ino, struct ns_proc *p);

#endif

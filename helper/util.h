/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared by the helper's modules: cleanup attributes and
 * file I/O relative to directory FDs (we never resolve user paths as root). */
#ifndef HPCN_HELPER_UTIL_H
#define HPCN_HELPER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <hpcnode/error.h>

static inline void hpcn_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static inline void hpcn_freep(void *p)
{
	free(*(void **)p);
}

#define _cleanup_close_ __attribute__((cleanup(hpcn_closep)))
#define _cleanup_free_  __attribute__((cleanup(hpcn_freep)))

/* Take ownership out of a cleanup variable. */
static inline int hpcn_take_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

#define HPCN_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Read a whole small file (cgroup or proc attribute) at dirfd/name into buf
 * (NUL-terminated, at most cap-1 bytes). Returns bytes read or -1 (errno). */
ssize_t hpcn_read_file_at(int dirfd, const char *name, char *buf, size_t cap);

/* Write s to dirfd/name in one write(2), as the kernel's attribute files
 * want (O_WRONLY|O_CLOEXEC|O_NOFOLLOW, no O_CREAT). Returns 0 or -1 (errno). */
int hpcn_write_file_at(int dirfd, const char *name, const char *s);

/*
 * Atomic replace: write data to dirfd/.name.tmp, rename to name. Mode 0600.
 * Returns 0 or -1 (errno); no temp is left. Another process (the helper
 * restarted after a crash) sees the old or the new content, never a part.
 * Not durable across a node crash, on purpose: what we store (allocations,
 * namespace holders) does not survive a reboot either, and a record that a
 * power loss truncated is quarantined at the next start. An fsync here cost
 * 30 % of the helper's system time (docs/benchmarks.md).
 */
int hpcn_write_file_atomic_at(int dirfd, const char *name,
			      const void *data, size_t len);

/* mkdir -p of an absolute path with mode for the created components.
 * Returns 0 or -1 (errno). */
int hpcn_mkdir_p(const char *path, mode_t mode);

/* Monotonic clock in milliseconds. */
unsigned long long hpcn_now_ms(void);

/* Does a string consist only of [A-Za-z0-9._-]? (used for names in paths) */
bool hpcn_is_safe_name(const char *s);

/* A growable vector of owned strings (warnings, lists from the config). */
struct hpcn_strv {
	size_t n;
	char **v;
};

/* Append a copy of s (printf-formatted). Returns 0 or -1 (ENOMEM). */
int hpcn_strv_addf(struct hpcn_strv *sv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool hpcn_strv_contains(const struct hpcn_strv *sv, const char *s);
void hpcn_strv_free(struct hpcn_strv *sv);

#endif

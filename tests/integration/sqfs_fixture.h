/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test fixture: squashfs images made with mksquashfs (fork+exec, tests only)
 * in a mkdtemp directory, and the clean-up that leaves no mount and no loop
 * device behind even when a test failed half-way.
 */
#ifndef HPCN_TESTS_SQFS_FIXTURE_H
#define HPCN_TESTS_SQFS_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define SQFS_MKSQUASHFS "/usr/bin/mksquashfs"
#define SQFS_DIR_PREFIX "/tmp/hpcn-sqfs-"

struct sqfs_fixture {
	char dir[64]; /* mode 0755, so that uid 65534 can reach files in it */
};

/* mkdtemp /tmp/hpcn-sqfs-XXXXXX. 0 or -1 (message on stderr). */
int sqfs_fixture_init(struct sqfs_fixture *fx);

/*
 * Build dir/<name>.sqfs holding bin/hello (#!/bin/sh printing marker) and
 * meta/env.json (CSCS format, name = name). Mode 0644. out gets its path.
 */
int sqfs_fixture_make_image(struct sqfs_fixture *fx, const char *name, const char *marker,
			    char *out, size_t cap);

/* Write a file dir/<name> with content and mode; out gets its path. */
int sqfs_fixture_write(struct sqfs_fixture *fx, const char *name, const void *data,
		       size_t len, unsigned int mode, char *out, size_t cap);

/* Unmount everything under dir and detach loop devices backed by files under
 * it, keeping the files. Returns how many it had to clean. */
int sqfs_fixture_scrub(struct sqfs_fixture *fx);

/* Unmount everything under dir (lazily, deepest first), detach loop devices
 * backed by files under dir, remove dir. Safe to call twice. Returns the
 * number of mounts + loop devices it had to clean (0 when the tests did). */
int sqfs_fixture_cleanup(struct sqfs_fixture *fx);

/* Attached loop devices: entries /sys/block/loop* /loop/backing_file. */
int sqfs_count_loops(void);
/* Loop devices whose backing file is under prefix. */
int sqfs_count_loops_under(const char *prefix);
/* Wait (up to timeout_ms) until loop device "loopN" or "/dev/loopN" has no
 * backing file. */
bool sqfs_wait_loop_gone(const char *dev, int timeout_ms);
/* Wait until the number of attached loop devices is want. */
bool sqfs_wait_loop_count(int want, int timeout_ms);

/* fork+exec argv[0] (absolute), capture stdout into out (NUL-terminated).
 * Returns the exit status, or -1. */
int sqfs_run_capture(char *const argv[], char *out, size_t cap);

/* Is path a mount point in /proc/self/mountinfo? */
bool sqfs_is_mounted(const char *path);
/* Is anything mounted at dir or below it? */
bool sqfs_is_mounted_under(const char *dir);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the fake-tree cgroup tests (test_cgroup_fake.c, test_cgroup_parse.c,
 * test_cgroup_ri1.c) share: the fixture (a fake cgroup root in mkdtemp with
 * a fake /sys/block and a pact.slice we must never touch) and small file
 * helpers.
 */
#ifndef HPCN_TESTS_CGROUP_TEST_UTIL_H
#define HPCN_TESTS_CGROUP_TEST_UTIL_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cgroup/cgroup.h"

struct fx {
	char dir[64];        /* mkdtemp: holds root/ and block/ */
	char root[PATH_MAX]; /* the fake cgroup root */
	struct hpcn_cgroup cg;
	struct hpcn_strv warn;
	struct hpcn_error err;
	pid_t kids[4];       /* killed by teardown if a test fails early */
	int nkids;
};

void write_at(const char *dir, const char *name, const char *content);
/* Contents of dir/name (static buffer), NULL when it cannot be read. */
const char *read_at(const char *dir, const char *name);
bool exists_at(const char *dir, const char *name);
void rm_rf(const char *p);
void mkdir_at(const char *dir, const char *name);

/* A fake cgroup root offering the given controllers, a fake /sys/block
 * (sda 8:0 plus devices the device-less io_max must skip), and a pact.slice
 * with one scope that pact made (RI1: we must never touch it). */
struct fx *fx_new(const char *controllers);
int setup_all(void **state);
int teardown(void **state);
/* pact.slice exactly as fx_new left it. */
void assert_pact_untouched(struct fx *f);

/* Every limit set (memory, swap, cpu weight and quota, pids, io). */
struct hpcn_resource_limits all_limits(void);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the namespace tests (test_ns.c, test_ns_create.c, test_ns_holders.c)
 * share: the fixture, its helpers on the parent side, and the group setup.
 * Each test works in its own mkdtemp directory with its own ns_dir; the
 * teardown releases everything, also after a failure, and checks that no
 * mount and no holder process is left.
 *
 * The test process is a child subreaper: the holders it creates (double
 * forked, so orphans) are reparented to it, which lets it count exactly its
 * own holders and reap them. Forked children never return into cmocka.
 */
#ifndef HPCN_TESTS_NS_TEST_UTIL_H
#define HPCN_TESTS_NS_TEST_UTIL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ns/ns.h"

#define MAX_TRACK 16

struct fx {
	char dir[PATH_MAX];
	char ns_dir[PATH_MAX];
	char allocs[MAX_TRACK][HPCN_ALLOC_ID_MAX + 1];
	size_t nallocs;
	char host_mounts[MAX_TRACK][PATH_MAX]; /* made by the test, undone in reverse */
	size_t nhost_mounts;
	pid_t kids[MAX_TRACK];                 /* to SIGKILL and reap */
	size_t nkids;
};

/* ---- small helpers (parent side) ---- */

void pathf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sleep_ms(long ms);
void mkdir_or_fail(const char *path);
void write_file(const char *path, const char *s);
void track_alloc(struct fx *fx, const char *id);
void track_kid(struct fx *fx, pid_t pid);
void host_mount_tmpfs(struct fx *fx, const char *path);
/* A host directory made a shared mount of its own. */
void host_make_shared(struct fx *fx, const char *path);
/* Mounts of the host whose mount point is dir or below it. */
int count_mounts_under(const char *dir);
bool proc_field(pid_t pid, char *state, pid_t *ppid, char *comm, size_t commcap);
/* Our live (non-zombie) children that are holders: ours, reparented to us. */
int count_our_holders(void);
void reap_zombies(void);

/* Waits for something that must happen are bounded by wall-clock time,
 * only against a hang (a loaded machine is slow). */
#define GONE_MS 60000

long long now_ms(void);
ino_t ino_of(const char *path);

/* ---- fixture ---- */

int setup(void **state);
int teardown(void **state);
/* Root, and a child subreaper. */
int group_setup(void **state);

extern const enum hpcn_ns_type all3[3];

void create_ok(struct fx *fx, const char *id, const enum hpcn_ns_type *types, size_t n,
	       int base_fd, struct hpcn_ns_set *set);
int open_ok(struct fx *fx, const char *id, enum hpcn_ns_type t);

#endif

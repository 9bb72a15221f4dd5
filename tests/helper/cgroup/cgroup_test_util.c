/* SPDX-License-Identifier: Apache-2.0 */
/* The fake-tree cgroup tests' fixture and shared helpers: see cgroup_test_util.h. */
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup_test_util.h"

/* Paths here are short mkdtemp names; gcc cannot know that. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

void write_at(const char *dir, const char *name, const char *content)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

/* Contents of dir/name (static buffer), NULL when it cannot be read. */
const char *read_at(const char *dir, const char *name)
{
	static char buf[4096];
	char p[PATH_MAX];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "r");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

bool exists_at(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	remove(p);
	return 0;
}

void rm_rf(const char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void mkdir_at(const char *dir, const char *name)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(mkdir(p, 0755), 0);
}

/* A fake cgroup root offering the given controllers, a fake /sys/block
 * (sda 8:0 plus devices the device-less io_max must skip), and a pact.slice
 * with one scope that pact made (RI1: we must never touch it). */
struct fx *fx_new(const char *controllers)
{
	struct fx *f = calloc(1, sizeof(*f));
	char block[PATH_MAX];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/hpcn-cgfake-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	assert_int_equal(mkdir(f->root, 0755), 0);
	write_at(f->root, "cgroup.controllers", controllers);
	write_at(f->root, "cgroup.subtree_control", "");
	write_at(f->root, "cgroup.procs", "1\n");
	write_at(f->root, "cpu.stat", "usage_usec 5\n");
	/* pact's own tree, as pact would have made it */
	mkdir_at(f->root, "pact.slice");
	mkdir_at(f->root, "pact.slice/x.scope");
	write_at(f->root, "pact.slice/x.scope/cgroup.kill", "");
	write_at(f->root, "pact.slice/x.scope/cgroup.procs", "");
	write_at(f->root, "pact.slice/x.scope/memory.max", "max\n");
	write_at(f->root, "pact.slice/x.scope/cgroup.events", "populated 1\nfrozen 0\n");
	write_at(f->root, "pact.slice/cgroup.kill", "");
	write_at(f->root, "pact.slice/cgroup.subtree_control", "");

	snprintf(block, sizeof(block), "%s/block", f->dir);
	assert_int_equal(mkdir(block, 0755), 0);
	mkdir_at(block, "sda");
	write_at(block, "sda/dev", "8:0\n");
	mkdir_at(block, "loop0");
	write_at(block, "loop0/dev", "7:0\n");
	mkdir_at(block, "zram0");
	write_at(block, "zram0/dev", "253:0\n");
	mkdir_at(block, "ram0");
	write_at(block, "ram0/dev", "1:0\n");

	hpcn_error_clear(&f->err);
	assert_int_equal(hpcn_cgroup_open(&f->cg, f->root, HPCN_CGROUP_FAKE, &f->err), 0);
	snprintf(f->cg.sysfs_block, sizeof(f->cg.sysfs_block), "%s", block);
	return f;
}

int setup_all(void **state)
{
	*state = fx_new("cpu io memory pids\n");
	return 0;
}

int teardown(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < f->nkids; i++) {
		kill(f->kids[i], SIGKILL);
		waitpid(f->kids[i], NULL, 0);
	}
	hpcn_cgroup_close(&f->cg);
	hpcn_strv_free(&f->warn);
	rm_rf(f->dir);
	free(f);
	return 0;
}

/* pact.slice exactly as fx_new left it. */
void assert_pact_untouched(struct fx *f)
{
	const char *s;

	assert_string_equal(read_at(f->root, "pact.slice/x.scope/cgroup.kill"), "");
	assert_string_equal(read_at(f->root, "pact.slice/x.scope/cgroup.procs"), "");
	assert_string_equal(read_at(f->root, "pact.slice/x.scope/memory.max"), "max\n");
	assert_string_equal(read_at(f->root, "pact.slice/cgroup.kill"), "");
	assert_string_equal(read_at(f->root, "pact.slice/cgroup.subtree_control"), "");
	s = read_at(f->root, "pact.slice/x.scope/cgroup.events");
	assert_non_null(s);
	assert_false(exists_at(f->root, "pact.slice/x.scope/y.scope"));
	assert_false(exists_at(f->root, "pact.slice/y.scope"));
	assert_false(exists_at(f->root, "pact.slice/z.slice"));
}

struct hpcn_resource_limits all_limits(void)
{
	struct hpcn_resource_limits l;

	memset(&l, 0, sizeof(l));
	l.memory_max = (struct hpcn_opt_u64){ true, 1073741824ULL };
	l.memory_swap_max = (struct hpcn_opt_u64){ true, 0 };
	l.cpu_weight = (struct hpcn_opt_u64){ true, 50 };
	l.cpu_max_quota_usec = (struct hpcn_opt_u64){ true, 50000 };
	l.pids_max = (struct hpcn_opt_u64){ true, 128 };
	l.io_max = (struct hpcn_opt_u64){ true, 1048576 };
	return l;
}

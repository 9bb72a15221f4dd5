/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RI1 on a fake tree (HPCN_CGROUP_FAKE): every mutating call refused on
 * pact.slice and outside workload.slice, by every path trick we know
 * ("..", "//", absolute, another root) and through symlinks (directories,
 * scope names, interface files), pact.slice left exactly as it was. No
 * privileges needed; the fixture is in cgroup_test_util.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup/cgroup.h"

#include "cgroup_test_util.h"

/* Paths here are short mkdtemp names; gcc cannot know that. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

/* ---- RI1 ---- */

struct trick {
	const char *path;            /* %s = the fake root */
	enum hpcn_error_kind kind;
	const char *message;         /* exact, or NULL */
};

/* tmpl with its "%s" (if any) replaced by root; no printf on data. */
static void subst(char *out, size_t cap, const char *tmpl, const char *root)
{
	const char *at = strstr(tmpl, "%s");

	if (!at) {
		snprintf(out, cap, "%s", tmpl);
		return;
	}
	snprintf(out, cap, "%.*s%s%s", (int)(at - tmpl), tmpl, root, at + 2);
}

/* Run every mutating call on path; each must fail with kind (and message). */
static void assert_all_refused(struct fx *f, const char *path, enum hpcn_error_kind kind,
			       const char *message)
{
	struct hpcn_resource_limits l = all_limits();
	char out[PATH_MAX];
	int rv;

#define CHECK(call) do {							\
		hpcn_error_clear(&f->err);					\
		rv = (call);							\
		if (rv != -1 || f->err.kind != kind ||				\
		    (message && strcmp(f->err.message, message) != 0))		\
			fail_msg("%s on '%s': rv %d, kind %d (want %d), '%s'",	\
				 #call, path, rv, f->err.kind, kind, f->err.message); \
	} while (0)

	CHECK(hpcn_cgroup_create_scope(&f->cg, path, "y", &l, false, out, sizeof(out),
				       &f->warn, &f->err));
	CHECK(hpcn_cgroup_create_slice(&f->cg, path, "z", &l, false, out, sizeof(out),
				       &f->warn, &f->err));
	CHECK(hpcn_cgroup_apply_limits(&f->cg, path, &l, false, &f->warn, &f->err));
	CHECK(hpcn_cgroup_attach(&f->cg, path, getpid(), &f->err));
	CHECK(hpcn_cgroup_kill(&f->cg, path, &f->err));
	CHECK(hpcn_cgroup_kill_pids(&f->cg, path, &f->err));
	CHECK(hpcn_cgroup_remove(&f->cg, path, &f->err));
	CHECK(hpcn_cgroup_destroy_scope(&f->cg, path, 100, &f->err));
#undef CHECK
}

static void test_ri1_tricks(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX], msg[PATH_MAX + 256];
	static const struct trick pact[] = {
		{ "pact.slice", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice owned by Pact" },
		{ "pact.slice/x.scope", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice/x.scope owned by Pact" },
		{ "workload.slice/../pact.slice/x.scope", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice/x.scope owned by Pact" },
		{ "workload.slice//..//pact.slice", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice owned by Pact" },
		{ "./pact.slice/./x.scope/", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice/x.scope owned by Pact" },
		{ "%s/pact.slice/x.scope", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice/x.scope owned by Pact" },
		{ "%s/workload.slice/../pact.slice", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice owned by Pact" },
		{ "%s//pact.slice", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice owned by Pact" },
		/* lexically still our root (fx names it .../root) */
		{ "%s/../root/pact.slice", HPCN_E_CGROUP_PERMISSION_DENIED,
		  "permission denied: pact.slice owned by Pact" },
	};
	static const char *const denied[] = {
		"workload.slice-extra",
		"workload.slice-extra/x.scope",
		"system.slice",
		"not-pact.slice/foo",
		"",
		".",
		"/",
		"..",
		"../pact.slice",
		"workload.slice/../../pact.slice",
		"workload.slice/../..",
		"/sys/fs/cgroup/unified/pact.slice",
		"/sys/fs/cgroup/pact.slice",
		"/etc",
		"%s-other/workload.slice",
	};

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	/* Make workload.slice-extra etc. exist so that only policy stops us. */
	mkdir_at(f->root, "workload.slice-extra");
	mkdir_at(f->root, "system.slice");

	for (size_t i = 0; i < sizeof(pact) / sizeof(pact[0]); i++) {
		subst(p, sizeof(p), pact[i].path, f->root);
		assert_all_refused(f, p, pact[i].kind, pact[i].message);
	}
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		subst(p, sizeof(p), denied[i], f->root);
		assert_all_refused(f, p, HPCN_E_DENIED, NULL);
	}
	/* The text names the path. */
	hpcn_cgroup_kill(&f->cg, "workload.slice-extra", &f->err);
	assert_string_equal(f->err.message, "denied: cgroup path 'workload.slice-extra' is outside "
			    "workload.slice, which is the only slice this helper writes (RI1)");
	hpcn_cgroup_kill(&f->cg, "/sys/fs/cgroup/unified/pact.slice", &f->err);
	snprintf(msg, sizeof(msg), "denied: cgroup path '/sys/fs/cgroup/unified/pact.slice' is "
		 "not inside the cgroup root %s", f->root);
	assert_string_equal(f->err.message, msg);

	/* workload.slice itself may be limited but not killed, removed, joined. */
	assert_int_equal(hpcn_cgroup_kill(&f->cg, "workload.slice", &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_DENIED);
	assert_int_equal(hpcn_cgroup_destroy_scope(&f->cg, "workload.slice/", 100, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_DENIED);
	assert_int_equal(hpcn_cgroup_attach(&f->cg, "workload.slice", getpid(), &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_DENIED);

	/* Bad names never become path components. */
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "../../pact.slice/q",
						  NULL, false, p, sizeof(p), &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "..", NULL, false,
						  p, sizeof(p), &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_cgroup_create_slice(&f->cg, "workload.slice", "a/b", NULL, false,
						  p, sizeof(p), &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_INVALID_ARGUMENT);

	assert_false(exists_at(f->root, "workload.slice-extra/y.scope"));
	assert_false(exists_at(f->root, "system.slice/y.scope"));
	assert_true(exists_at(f->root, "workload.slice-extra"));
	assert_pact_untouched(f);
}

static void test_ri1_symlinks(void **state)
{
	struct fx *f = *state;
	struct hpcn_resource_limits l = all_limits();
	char p[PATH_MAX], tgt[PATH_MAX], out[PATH_MAX];

	assert_int_equal(hpcn_cgroup_create_hierarchy(&f->cg, &f->warn, &f->err), 0);
	/* A directory symlink into pact.slice, relative and absolute. */
	snprintf(p, sizeof(p), "%s/workload.slice/evil", f->root);
	assert_int_equal(symlink("../pact.slice", p), 0);
	snprintf(p, sizeof(p), "%s/workload.slice/evil2", f->root);
	snprintf(tgt, sizeof(tgt), "%s/pact.slice", f->root);
	assert_int_equal(symlink(tgt, p), 0);
	/* A scope name that is a symlink to pact's scope. */
	snprintf(p, sizeof(p), "%s/workload.slice/y.scope", f->root);
	assert_int_equal(symlink("../pact.slice/x.scope", p), 0);

	assert_all_refused(f, "workload.slice/evil", HPCN_E_DENIED, NULL);
	assert_all_refused(f, "workload.slice/evil2", HPCN_E_DENIED, NULL);
	assert_all_refused(f, "workload.slice/evil/x.scope", HPCN_E_DENIED,
			   "denied: cgroup path 'workload.slice/evil/x.scope': component 'evil' "
			   "is a symlink or not a directory");
	assert_all_refused(f, "workload.slice/evil2/x.scope", HPCN_E_DENIED, NULL);
	assert_all_refused(f, "workload.slice/y.scope", HPCN_E_DENIED, NULL);
	/* create_scope("y") finds the name taken by a symlink: refused, not followed */
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "y", &l, false,
						  out, sizeof(out), &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_DENIED);
	/* the symlinks themselves survive (remove refused to follow them) */
	snprintf(p, sizeof(p), "%s/workload.slice/y.scope", f->root);
	{
		struct stat st;

		assert_int_equal(lstat(p, &st), 0);
		assert_true(S_ISLNK(st.st_mode));
	}
	/* Reads do not follow them either. */
	{
		struct hpcn_cgroup_metrics m;

		assert_int_equal(hpcn_cgroup_read_metrics(&f->cg, "workload.slice/evil/x.scope",
							  &m, &f->err), -1);
		assert_int_equal(f->err.kind, HPCN_E_DENIED);
	}

	/* An interface file that is a symlink into pact's scope. */
	assert_int_equal(hpcn_cgroup_create_scope(&f->cg, "workload.slice", "f", NULL, false,
						  out, sizeof(out), &f->warn, &f->err), 0);
	snprintf(p, sizeof(p), "%s/workload.slice/f.scope/memory.max", f->root);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("../../pact.slice/x.scope/memory.max", p), 0);
	snprintf(p, sizeof(p), "%s/workload.slice/f.scope/cgroup.kill", f->root);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("../../pact.slice/x.scope/cgroup.kill", p), 0);
	assert_int_equal(hpcn_cgroup_apply_limits(&f->cg, out, &l, false, &f->warn, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_CREATION_FAILED);
	assert_int_equal(hpcn_cgroup_kill(&f->cg, out, &f->err), -1);
	assert_int_equal(f->err.kind, HPCN_E_CGROUP_KILL_FAILED);
	/* remove deletes the symlinks, not what they point to */
	assert_int_equal(hpcn_cgroup_remove(&f->cg, out, &f->err), 0);
	assert_false(exists_at(f->root, "workload.slice/f.scope"));
	assert_pact_untouched(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ri1_tricks, setup_all, teardown),
		cmocka_unit_test_setup_teardown(test_ri1_symlinks, setup_all, teardown),
	};

	return cmocka_run_group_tests_name("cgroup_ri1", tests, NULL, NULL);
}

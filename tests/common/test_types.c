/* SPDX-License-Identifier: Apache-2.0 */
/* NamespaceType names and allocation id validation. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include <hpcnode/hpcnode.h>

static void test_ns_names(void **state)
{
	enum hpcn_ns_type t;

	assert_string_equal(hpcn_ns_type_name(HPCN_NS_PID), "Pid");
	assert_string_equal(hpcn_ns_type_name(HPCN_NS_NET), "Net");
	assert_string_equal(hpcn_ns_type_name(HPCN_NS_MOUNT), "Mount");
	assert_null(hpcn_ns_type_name(HPCN_NS__COUNT));
	assert_int_equal(hpcn_ns_type_from_name("Net", &t), 0);
	assert_int_equal(t, HPCN_NS_NET);
	assert_int_equal(hpcn_ns_type_from_name("net", &t), -1); /* serde names are exact */
	assert_int_equal(hpcn_ns_type_from_name("Uts", &t), -1);
	assert_int_equal(hpcn_ns_type_from_name(NULL, &t), -1);
	assert_int_equal(hpcn_ns_type_clone_flag(HPCN_NS_PID), CLONE_NEWPID);
	assert_int_equal(hpcn_ns_type_clone_flag(HPCN_NS_NET), CLONE_NEWNET);
	assert_int_equal(hpcn_ns_type_clone_flag(HPCN_NS_MOUNT), CLONE_NEWNS);
	assert_string_equal(hpcn_ns_type_proc_name(HPCN_NS_MOUNT), "mnt");
}

static void ok(const char *id)
{
	struct hpcn_error e;

	if (hpcn_alloc_id_validate(id, &e) != 0)
		fail_msg("'%s' refused: %s", id, e.message);
}

static void bad(const char *id, const char *needle)
{
	struct hpcn_error e;

	hpcn_error_clear(&e);
	assert_int_equal(hpcn_alloc_id_validate(id, &e), -1);
	assert_int_equal(e.kind, HPCN_E_INVALID_ARGUMENT);
	if (!strstr(e.message, needle))
		fail_msg("'%s': message '%s' lacks '%s'", id ? id : "NULL", e.message, needle);
}

static void test_alloc_ids(void **state)
{
	char max[HPCN_ALLOC_ID_MAX + 1], over[HPCN_ALLOC_ID_MAX + 2];

	memset(max, 'a', HPCN_ALLOC_ID_MAX);
	max[HPCN_ALLOC_ID_MAX] = '\0';
	memset(over, 'a', HPCN_ALLOC_ID_MAX + 1);
	over[HPCN_ALLOC_ID_MAX + 1] = '\0';

	ok("alloc-42");
	ok("1234.0");
	ok("job_12.step_batch");
	ok("...");
	ok("a");
	ok(max);
	bad(NULL, "missing");
	bad("", "empty");
	bad(".", "reserved");
	bad("..", "reserved");
	bad(over, "longer than 64");
	bad("a/b", "0x2f");
	bad("../etc", "0x2f");
	bad("a b", "0x20");
	bad("a\nb", "0x0a");
	bad("caf\xc3\xa9", "0xc3");
	bad("x:y", "position 1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ns_names),
		cmocka_unit_test(test_alloc_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

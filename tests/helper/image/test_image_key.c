/* SPDX-License-Identifier: Apache-2.0 */
/* Image keys: the directory names of shared uenv mounts, and their strict
 * parser (used to rebuild state from the mount table after a restart). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "image/image.h"

static void assert_round_trip(const struct hpcn_image_id *id)
{
	char key[HPCN_IMAGE_KEY_MAX], again[HPCN_IMAGE_KEY_MAX];
	struct hpcn_image_id back;
	int n = hpcn_image_id_key(id, key, sizeof(key));

	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(key));
	for (const char *p = key; *p; p++)
		assert_non_null(strchr("0123456789abcdef.-", *p));
	assert_int_equal(hpcn_image_id_from_key(key, &back), 0);
	assert_true(hpcn_image_id_equal(id, &back));
	assert_true(hpcn_image_id_key(&back, again, sizeof(again)) > 0);
	assert_string_equal(key, again);
}

static void test_known_format(void **state)
{
	struct hpcn_image_id id = { .dev = 0x803, .ino = 0x1234ab, .size = 0x1000,
				    .mtime_sec = 0x65000000, .mtime_nsec = 0x1f };
	char key[HPCN_IMAGE_KEY_MAX];

	(void)state;
	assert_int_equal(hpcn_image_id_key(&id, key, sizeof(key)), 27);
	assert_string_equal(key, "803-1234ab-1000-65000000.1f");
	id = (struct hpcn_image_id){ 0 };
	assert_int_equal(hpcn_image_id_key(&id, key, sizeof(key)), 9);
	assert_string_equal(key, "0-0-0-0.0");
}

static void test_round_trips(void **state)
{
	static const struct hpcn_image_id ids[] = {
		{ 0, 0, 0, 0, 0 },
		{ 1, 2, 3, 4, 5 },
		{ UINT64_MAX, UINT64_MAX, UINT64_MAX, INT64_MAX, 999999999 },
		{ 0x803, 131, 4096, -1, 0 },            /* before 1970 */
		{ 0x10303, 42, 1 << 20, INT64_MIN, 1 },
		{ 0xfd00, 0xabcdef, 0x7fffffff, 1700000000, 123456789 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		assert_round_trip(&ids[i]);
}

static void test_longest_key_fits(void **state)
{
	struct hpcn_image_id id = { UINT64_MAX, UINT64_MAX, UINT64_MAX, -1, 999999999 };
	char key[HPCN_IMAGE_KEY_MAX];

	(void)state;
	assert_int_equal(hpcn_image_id_key(&id, key, sizeof(key)), 16 * 4 + 8 + 4);
	assert_true(strlen(key) < HPCN_IMAGE_KEY_MAX);
}

static void test_key_errors(void **state)
{
	struct hpcn_image_id id = { 1, 2, 3, 4, 5 };
	char key[HPCN_IMAGE_KEY_MAX];

	(void)state;
	errno = 0;
	assert_int_equal(hpcn_image_id_key(&id, key, 9), -1); /* needs 10 */
	assert_int_equal(errno, ERANGE);
	assert_string_equal(key, "");
	assert_int_equal(hpcn_image_id_key(&id, key, 10), 9);
	id.mtime_nsec = 1000000000;
	errno = 0;
	assert_int_equal(hpcn_image_id_key(&id, key, sizeof(key)), -1);
	assert_int_equal(errno, EINVAL);
	id.mtime_nsec = -1;
	assert_int_equal(hpcn_image_id_key(&id, key, sizeof(key)), -1);
	assert_int_equal(hpcn_image_id_key(NULL, key, sizeof(key)), -1);
}

static void test_strict_rejection(void **state)
{
	static const char *const bad[] = {
		"", ".", "..", "-", "...", "/", "a/b",
		"0-0-0-0",               /* no nsec */
		"0-0-0.0",               /* a field missing */
		"0-0-0-0-0.0",           /* a field too many */
		"0-0-0-0.0.0",
		"0-0-0-0.0-",            /* trailing separator */
		"-0-0-0.0", "0--0-0.0", "0-0--0.0", "0-0-0-.0", "0-0-0-0.", /* each empty */
		"00-0-0-0.0", "0-01-0-0.0", "0-0-0a-0.0" + 0, /* leading zeros, below */
		"01-2-3-4.5", "1-02-3-4.5", "1-2-03-4.5", "1-2-3-04.5", "1-2-3-4.05",
		"A-2-3-4.5", "1-B-3-4.5", "1-2-C-4.5", "1-2-3-D.5", "1-2-3-4.E", /* case */
		"1-2-3-4.5 ", " 1-2-3-4.5", "1-2-3-4.5\n", "1-2-3-4.5x", "x1-2-3-4.5",
		"+1-2-3-4.5", "1-2-3--4.5", "1-2-3-4.-5", "0x1-2-3-4.5", "1_2_3_4.5",
		"1-2-3-4.3b9aca00",      /* nsec = 1e9 */
		"1-2-3-4.ffffffff",
		"10000000000000000-2-3-4.5", /* 17 digits */
		"1-2-3-10000000000000000.5",
		"1-2-3-4.5/..", "../1-2-3-4.5",
		"g-2-3-4.5", "1-2-3-4,5", "1.2.3.4.5", "1-2-3-4-5",
	};
	struct hpcn_image_id id;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (hpcn_image_id_from_key(bad[i], &id) != -1)
			fail_msg("key \"%s\" was accepted", bad[i]);
	}
	assert_int_equal(hpcn_image_id_from_key(NULL, &id), -1);
	/* Far too long: bounded, rejected. */
	{
		char longkey[512];

		memset(longkey, 'a', sizeof(longkey) - 1);
		longkey[sizeof(longkey) - 1] = '\0';
		assert_int_equal(hpcn_image_id_from_key(longkey, &id), -1);
	}
	/* The good ones next to them. */
	assert_int_equal(hpcn_image_id_from_key("1-2-3-4.5", &id), 0);
	assert_int_equal(hpcn_image_id_from_key("1-2-3-4.3b9ac9ff", &id), 0);
	assert_int_equal(id.mtime_nsec, 999999999);
	assert_int_equal(hpcn_image_id_from_key("ffffffffffffffff-0-0-0.0", NULL), 0);
}

static void test_equal(void **state)
{
	struct hpcn_image_id a = { 1, 2, 3, 4, 5 }, b;

	(void)state;
	b = a;
	assert_true(hpcn_image_id_equal(&a, &b));
	b = a; b.dev++;
	assert_false(hpcn_image_id_equal(&a, &b));
	b = a; b.ino++;
	assert_false(hpcn_image_id_equal(&a, &b));
	b = a; b.size++;
	assert_false(hpcn_image_id_equal(&a, &b));
	b = a; b.mtime_sec++;
	assert_false(hpcn_image_id_equal(&a, &b));
	b = a; b.mtime_nsec++;
	assert_false(hpcn_image_id_equal(&a, &b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_format),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_longest_key_fits),
		cmocka_unit_test(test_key_errors),
		cmocka_unit_test(test_strict_rejection),
		cmocka_unit_test(test_equal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

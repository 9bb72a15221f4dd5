/* SPDX-License-Identifier: Apache-2.0 */
/* The mountinfo parser: the real table, crafted lines, malformed input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "image/image.h"

/* A copy of one entry, the strings owned. */
struct rec {
	struct hpcn_mountinfo_entry e;
	char root[256], mp[256], mopts[256], opt[256], fstype[64], source[256], sopts[256];
};

struct recs {
	struct rec r[16];
	size_t n;
	size_t calls;
};

static int rec_cb(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct recs *rs = ud;
	struct rec *r;

	rs->calls++;
	if (rs->n == 16)
		return 0;
	r = &rs->r[rs->n++];
	r->e = *e;
	snprintf(r->root, sizeof(r->root), "%s", e->root);
	snprintf(r->mp, sizeof(r->mp), "%s", e->mount_point);
	snprintf(r->mopts, sizeof(r->mopts), "%s", e->mount_options);
	snprintf(r->opt, sizeof(r->opt), "%s", e->optional);
	snprintf(r->fstype, sizeof(r->fstype), "%s", e->fstype);
	snprintf(r->source, sizeof(r->source), "%s", e->source);
	snprintf(r->sopts, sizeof(r->sopts), "%s", e->super_options);
	return 0;
}

static int parse_str(const char *s, struct recs *rs, struct hpcn_error *err)
{
	memset(rs, 0, sizeof(*rs));
	hpcn_error_clear(err);
	return hpcn_mountinfo_parse_buffer(s, strlen(s), rec_cb, rs, err);
}

/* ---- the real table ---- */

struct real_ctx {
	size_t n;
	bool root_dev_seen;
	dev_t root_dev;
};

static int real_cb(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct real_ctx *c = ud;

	c->n++;
	assert_true(e->mount_id >= 0);
	assert_true(e->mount_point[0] == '/');
	assert_true(e->fstype[0] != '\0');
	assert_true(e->line == c->n);
	if (strcmp(e->mount_point, "/") == 0 && makedev(e->major, e->minor) == c->root_dev)
		c->root_dev_seen = true;
	return 0;
}

static void test_real_self(void **state)
{
	struct real_ctx c = { 0 };
	struct hpcn_error err;
	struct stat st;
	char *buf;
	size_t len, lines = 0;

	(void)state;
	assert_int_equal(stat("/", &st), 0);
	c.root_dev = st.st_dev;
	assert_int_equal(hpcn_mountinfo_parse_file(NULL, real_cb, &c, &err), 0);
	assert_true(c.n > 0);
	assert_true(c.root_dev_seen);
	/* One callback per line of the file. */
	assert_int_equal(hpcn_mountinfo_read("/proc/self/mountinfo", &buf, &len, &err), 0);
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	assert_int_equal(lines, c.n);
	assert_int_equal(buf[len], '\0');
	free(buf);
}

/* ---- crafted lines ---- */

static void test_proc5_example(void **state)
{
	struct recs rs;
	struct hpcn_error err;

	(void)state;
	assert_int_equal(parse_str("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 "
				   "/dev/root rw,errors=continue\n", &rs, &err), 0);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].e.mount_id, 36);
	assert_int_equal(rs.r[0].e.parent_id, 35);
	assert_int_equal(rs.r[0].e.major, 98);
	assert_int_equal(rs.r[0].e.minor, 0);
	assert_string_equal(rs.r[0].root, "/mnt1");
	assert_string_equal(rs.r[0].mp, "/mnt2");
	assert_string_equal(rs.r[0].mopts, "rw,noatime");
	assert_string_equal(rs.r[0].opt, "master:1");
	assert_int_equal(rs.r[0].e.master, 1);
	assert_int_equal(rs.r[0].e.shared, 0);
	assert_false(rs.r[0].e.unbindable);
	assert_string_equal(rs.r[0].fstype, "ext3");
	assert_string_equal(rs.r[0].source, "/dev/root");
	assert_string_equal(rs.r[0].sopts, "rw,errors=continue");
	assert_int_equal(rs.r[0].e.line, 1);
}

static void test_escapes(void **state)
{
	struct recs rs;
	struct hpcn_error err;

	(void)state;
	assert_int_equal(parse_str("1 0 7:3 /a\\040b /run/pact/uenv/sp\\040ace\\011tab\\012nl"
				   "\\134bs ro,nosuid - fuse.my\\040fs /img\\040dir/x.sqfs "
				   "ro,opt=a\\054b", &rs, &err), 0);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].root, "/a b");
	assert_string_equal(rs.r[0].mp, "/run/pact/uenv/sp ace\ttab\nnl\\bs");
	assert_string_equal(rs.r[0].fstype, "fuse.my fs");
	assert_string_equal(rs.r[0].source, "/img dir/x.sqfs");
	/* Options stay raw: the escaped comma is not a separator. */
	assert_string_equal(rs.r[0].sopts, "ro,opt=a\\054b");
	/* Not escapes: kept as they are; \000 would cut the string. */
	assert_int_equal(parse_str("1 0 7:3 / /x\\\\y\\04\\999\\000z rw - t s o", &rs, &err), 0);
	assert_string_equal(rs.r[0].mp, "/x\\\\y\\04\\999\\000z");
}

static void test_optional_fields(void **state)
{
	struct recs rs;
	struct hpcn_error err;

	(void)state;
	assert_int_equal(parse_str("25 1 0:22 / /a rw shared:5 master:2 propagate_from:3 "
				   "unbindable future:9 - tmpfs tmpfs rw\n"
				   "26 1 0:23 / /b rw - tmpfs tmpfs rw\n"
				   "27 1 0:24 / /c rw shared:2147483647 - tmpfs  rw\n",
				   &rs, &err), 0);
	assert_int_equal(rs.n, 3);
	assert_int_equal(rs.r[0].e.shared, 5);
	assert_int_equal(rs.r[0].e.master, 2);
	assert_int_equal(rs.r[0].e.propagate_from, 3);
	assert_true(rs.r[0].e.unbindable);
	assert_string_equal(rs.r[0].opt, "shared:5 master:2 propagate_from:3 unbindable future:9");
	assert_string_equal(rs.r[0].fstype, "tmpfs");
	/* None. */
	assert_string_equal(rs.r[1].opt, "");
	assert_int_equal(rs.r[1].e.shared, 0);
	assert_int_equal(rs.r[1].e.master, 0);
	assert_false(rs.r[1].e.unbindable);
	assert_int_equal(rs.r[1].e.line, 2);
	/* Largest id; an empty source (mount -t tmpfs "" /c). */
	assert_int_equal(rs.r[2].e.shared, 2147483647);
	assert_string_equal(rs.r[2].source, "");
	assert_string_equal(rs.r[2].sopts, "rw");
}

static void assert_malformed(const char *input, const char *words)
{
	struct recs rs;
	struct hpcn_error err;

	if (parse_str(input, &rs, &err) != -1)
		fail_msg("accepted: \"%s\"", input);
	assert_int_equal(err.kind, HPCN_E_MOUNT_IO);
	if (!strstr(err.message, words))
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", input, err.message, words);
}

static void test_malformed(void **state)
{
	static const char ok[] = "1 0 8:1 / / rw - ext4 /dev/vda rw\n";
	char buf[512];

	(void)state;
	assert_malformed("1 0 8:1 / / rw shared:1 ext4 /dev/vda rw",
			 "mountinfo line 1: missing separator \"-\"");
	assert_malformed("1 0 8:1 / / rw - ext4", "line 1: too few fields (8)");
	assert_malformed("1 0 8:1", "line 1: too few fields (3)");
	assert_malformed("garbage", "line 1: too few fields (1)");
	assert_malformed("1 0 8:1 / / rw - ext4 /dev/vda", "too few fields (9)");
	assert_malformed("1 0 8:1 / / rw shared:1 - ext4 /dev/vda",
			 "2 fields after \"-\" instead of 3");
	assert_malformed("1 0 8:1 / / rw - ext4 /dev/vda rw extra",
			 "4 fields after \"-\" instead of 3");
	assert_malformed("x 0 8:1 / / rw - ext4 /dev/vda rw", "line 1: bad mount id");
	assert_malformed("-1 0 8:1 / / rw - ext4 /dev/vda rw", "bad mount id");
	assert_malformed("+1 0 8:1 / / rw - ext4 /dev/vda rw", "bad mount id");
	assert_malformed("99999999999 0 8:1 / / rw - ext4 /dev/vda rw", "bad mount id");
	assert_malformed("1 y 8:1 / / rw - ext4 /dev/vda rw", "bad parent id");
	assert_malformed("1 0 8 / / rw - ext4 /dev/vda rw", "bad major:minor");
	assert_malformed("1 0 8: / / rw - ext4 /dev/vda rw", "bad major:minor");
	assert_malformed("1 0 :1 / / rw - ext4 /dev/vda rw", "bad major:minor");
	assert_malformed("1 0 8:1:2 / / rw - ext4 /dev/vda rw", "bad major:minor");
	assert_malformed("1 0 8:x / / rw - ext4 /dev/vda rw", "bad major:minor");
	assert_malformed("1 0 4294967296:1 / / rw - ext4 /dev/vda rw", "bad major:minor");
	assert_malformed("1 0 8:1 / / rw shared:x - ext4 /dev/vda rw", "bad optional field");
	assert_malformed("1 0 8:1 / / rw master: - ext4 /dev/vda rw", "bad optional field");
	assert_malformed("1 0 8:1 / / rw - ext4 /dev/vda rw\n\n", "line 2: empty line");
	assert_malformed("1 0 8:1  / rw - ext4 /dev/vda rw", "empty root");
	assert_malformed("1 0 8:1 / / rw -  /dev/vda rw", "empty filesystem type");
	assert_malformed("1  0 8:1 / / rw - ext4 /dev/vda rw", "bad parent id");
	/* The line number is the bad line's. */
	snprintf(buf, sizeof(buf), "%s%s%s", ok, ok, "1 0 8:1 / / rw ext4 /dev/vda rw x\n");
	assert_malformed(buf, "mountinfo line 3: missing separator");
	/* A NUL byte inside. */
	{
		struct recs rs;
		struct hpcn_error err;
		const char nul[] = "1 0 8:1 / / rw - ext4 /dev/vda rw\n1 0 8:1 /\0 / rw - e s o\n";

		memset(&rs, 0, sizeof(rs));
		assert_int_equal(hpcn_mountinfo_parse_buffer(nul, sizeof(nul) - 1, rec_cb, &rs,
							     &err), -1);
		assert_non_null(strstr(err.message, "line 2: NUL byte"));
		assert_int_equal(rs.calls, 1);
	}
}

static void test_too_many_fields(void **state)
{
	char buf[1024];
	size_t n = 0;
	struct recs rs;
	struct hpcn_error err;

	(void)state;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "1 0 8:1 / / rw");
	for (int i = 0; i < 60; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " shared:%d", i + 1);
	snprintf(buf + n, sizeof(buf) - n, " - ext4 /dev/vda rw");
	assert_int_equal(parse_str(buf, &rs, &err), -1);
	assert_non_null(strstr(err.message, "more than 64 fields"));
}

static void test_huge_line(void **state)
{
	size_t len = HPCN_MOUNTINFO_LINE_MAX + 100;
	char *buf = malloc(len + 64);
	struct recs rs;
	struct hpcn_error err;
	int n;

	(void)state;
	assert_non_null(buf);
	n = snprintf(buf, 64, "1 0 8:1 / / rw - ext4 /dev/vda rw\n1 0 8:1 / /");
	memset(buf + n, 'a', len - (size_t)n);
	memcpy(buf + len, " rw - ext4 /dev/vda rw\n", 24);
	memset(&rs, 0, sizeof(rs));
	assert_int_equal(hpcn_mountinfo_parse_buffer(buf, strlen(buf), rec_cb, &rs, &err), -1);
	assert_non_null(strstr(err.message, "mountinfo line 2: longer than 65536 bytes"));
	assert_int_equal(rs.calls, 1);

	/* Just at the limit: accepted, the long path intact. */
	n = snprintf(buf, 64, "1 0 8:1 / /");
	len = HPCN_MOUNTINFO_LINE_MAX - (size_t)n - strlen(" rw - ext4 /dev/vda rw");
	memset(buf + n, 'b', len);
	strcpy(buf + n + len, " rw - ext4 /dev/vda rw");
	assert_int_equal(strlen(buf), HPCN_MOUNTINFO_LINE_MAX);
	assert_int_equal(parse_str(buf, &rs, &err), 0);
	assert_int_equal(rs.calls, 1);
	free(buf);
}

static void test_empty_and_edges(void **state)
{
	struct recs rs;
	struct hpcn_error err;

	(void)state;
	assert_int_equal(parse_str("", &rs, &err), 0);
	assert_int_equal(rs.calls, 0);
	assert_int_equal(hpcn_mountinfo_parse_buffer(NULL, 0, rec_cb, &rs, &err), 0);
	/* Only a newline: one empty line. */
	assert_int_equal(parse_str("\n", &rs, &err), -1);
	assert_non_null(strstr(err.message, "line 1: empty line"));
	/* No final newline. */
	assert_int_equal(parse_str("1 0 8:1 / / rw - ext4 /dev/vda rw\n"
				   "2 1 8:2 / /b rw - ext4 /dev/vdb rw", &rs, &err), 0);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.r[1].sopts, "rw");
	/* A length that cuts a line: only that much is read. */
	{
		const char *s = "1 0 8:1 / / rw - ext4 /dev/vda rw,x";

		memset(&rs, 0, sizeof(rs));
		assert_int_equal(hpcn_mountinfo_parse_buffer(s, strlen(s) - 2, rec_cb, &rs,
							     &err), 0);
		assert_string_equal(rs.r[0].sopts, "rw");
	}
}

static int stop_at_2(const struct hpcn_mountinfo_entry *e, void *ud)
{
	(*(int *)ud)++;
	return e->line == 2 ? 7 : 0;
}

static int abort_at_1(const struct hpcn_mountinfo_entry *e, void *ud)
{
	(void)e;
	(*(int *)ud)++;
	return -5;
}

static void test_callback_control(void **state)
{
	const char *s = "1 0 8:1 / / rw - e s o\n2 0 8:1 / /a rw - e s o\n"
			"3 0 8:1 / /b rw - e s o\n";
	struct hpcn_error err;
	int calls = 0;

	(void)state;
	assert_int_equal(hpcn_mountinfo_parse_buffer(s, strlen(s), stop_at_2, &calls, &err), 7);
	assert_int_equal(calls, 2);
	calls = 0;
	assert_int_equal(hpcn_mountinfo_parse_buffer(s, strlen(s), abort_at_1, &calls, &err), -1);
	assert_int_equal(calls, 1);
	assert_int_equal(hpcn_mountinfo_parse_buffer(s, strlen(s), NULL, NULL, &err), 0);
}

/* Garbage must give 0 or -1, never a crash (ASan/valgrind watch the rest). */
static void test_garbage(void **state)
{
	static const char alphabet[] = "0123456789 :-/\\\nabshredmt_,";
	char buf[300];
	struct recs rs;
	struct hpcn_error err;
	unsigned int seed = 12345;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)(rand_r(&seed) % (int)sizeof(buf));
		int r;

		for (size_t j = 0; j < len; j++) {
			int k = rand_r(&seed);

			buf[j] = (k & 0x100) ? (char)(k & 0xff)
					     : alphabet[(size_t)k % (sizeof(alphabet) - 1)];
		}
		memset(&rs, 0, sizeof(rs));
		r = hpcn_mountinfo_parse_buffer(buf, len, rec_cb, &rs, &err);
		assert_true(r == 0 || r == -1);
		if (r < 0)
			assert_int_equal(err.kind, HPCN_E_MOUNT_IO);
	}
	/* Mutations of a valid line: every truncation. */
	{
		const char *good = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw";

		for (size_t l = 0; l <= strlen(good); l++) {
			memset(&rs, 0, sizeof(rs));
			(void)hpcn_mountinfo_parse_buffer(good, l, rec_cb, &rs, &err);
		}
	}
}

static void test_has_option(void **state)
{
	(void)state;
	assert_true(hpcn_mountinfo_has_option("ro,nosuid,nodev,relatime", "ro"));
	assert_true(hpcn_mountinfo_has_option("ro,nosuid,nodev,relatime", "nodev"));
	assert_true(hpcn_mountinfo_has_option("ro,nosuid,nodev,relatime", "relatime"));
	assert_false(hpcn_mountinfo_has_option("ro,nosuid,nodev,relatime", "noexec"));
	assert_false(hpcn_mountinfo_has_option("rw,nosuid", "ro"));
	assert_false(hpcn_mountinfo_has_option("nosuidx", "nosuid"));
	assert_false(hpcn_mountinfo_has_option("xro", "ro"));
	assert_true(hpcn_mountinfo_has_option("rw,errors=continue", "errors"));
	assert_false(hpcn_mountinfo_has_option("", "ro"));
	assert_false(hpcn_mountinfo_has_option("ro", ""));
	assert_false(hpcn_mountinfo_has_option(NULL, "ro"));
}

static void test_find_uenv(void **state)
{
	static const char table[] =
		"20 1 8:1 / / rw - ext4 /dev/vda rw\n"
		"30 20 7:0 / /run/pact/uenv/803-1234ab-1000-65000000.1f ro,nosuid,nodev shared:3 "
		"- squashfs /dev/loop0 ro\n"
		"31 20 7:1 / /run/pact/uenv/notakey ro,nosuid,nodev - squashfs /dev/loop1 ro\n"
		"32 30 7:2 / /run/pact/uenv/803-1234ab-1000-65000000.1f/sub ro - squashfs "
		"/dev/loop2 ro\n"
		"33 20 0:40 / /run/pact/uenv/1-2-3-4.5 rw - tmpfs tmpfs rw\n"
		"34 20 7:3 / /run/pact/uenvX/1-2-3-4.5 ro - squashfs /dev/loop3 ro\n"
		"35 20 7:4 / /run/pact/uenv ro - squashfs /dev/loop4 ro\n"
		"36 20 7:5 / /run/pact/uenv/803-1234ab-1000-65000000.1f ro - squashfs "
		"/dev/loop5 ro\n";
	struct hpcn_uenv_mount *v = NULL;
	struct hpcn_error err;
	size_t n = 99;

	(void)state;
	assert_int_equal(hpcn_mountinfo_find_uenv_buffer(table, strlen(table), "/run/pact/uenv/",
							 &v, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0].mount_id, 30);
	assert_true(v[0].key_valid);
	assert_string_equal(v[0].key, "803-1234ab-1000-65000000.1f");
	assert_int_equal(v[0].id.dev, 0x803);
	assert_int_equal(v[0].id.ino, 0x1234ab);
	assert_int_equal(v[0].id.size, 0x1000);
	assert_int_equal(v[0].id.mtime_sec, 0x65000000);
	assert_int_equal(v[0].id.mtime_nsec, 0x1f);
	assert_string_equal(v[0].source, "/dev/loop0");
	assert_string_equal(v[0].mount_point, "/run/pact/uenv/803-1234ab-1000-65000000.1f");
	assert_int_equal(v[0].major, 7);
	assert_int_equal(v[0].minor, 0);
	assert_int_equal(v[1].mount_id, 31);
	assert_false(v[1].key_valid);
	assert_string_equal(v[1].key, "notakey");
	/* A stacked mount on the same directory is reported too. */
	assert_int_equal(v[2].mount_id, 36);
	assert_string_equal(v[2].source, "/dev/loop5");
	free(v);

	/* Nothing there. */
	assert_int_equal(hpcn_mountinfo_find_uenv_buffer(table, strlen(table), "/nowhere",
							 &v, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	/* Bad base; bad table. */
	assert_int_equal(hpcn_mountinfo_find_uenv_buffer(table, strlen(table), "run/pact",
							 &v, &n, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_mountinfo_find_uenv_buffer("1 2 3\n", 6, "/run/pact/uenv",
							 &v, &n, &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_IO);
	assert_null(v);
	/* The real table parses (whatever it holds). */
	assert_int_equal(hpcn_mountinfo_find_uenv(NULL, "/run/pact/uenv", &v, &n, &err), 0);
	free(v);
}

static void test_file_errors_name_the_file(void **state)
{
	char dir[] = "/tmp/hpcn-mi-XXXXXX", path[64];
	struct hpcn_error err;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mountinfo", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("1 0 8:1 / / rw - ext4 /dev/vda rw\nbroken\n", f);
	fclose(f);
	assert_int_equal(hpcn_mountinfo_parse_file(path, NULL, NULL, &err), -1);
	assert_int_equal(err.kind, HPCN_E_MOUNT_IO);
	assert_non_null(strstr(err.message, path));
	assert_non_null(strstr(err.message, "line 2: too few fields"));
	unlink(path);
	assert_int_equal(hpcn_mountinfo_parse_file(path, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.message, path));
	assert_int_equal(err.sys_errno, ENOENT);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_self),
		cmocka_unit_test(test_proc5_example),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_optional_fields),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_too_many_fields),
		cmocka_unit_test(test_huge_line),
		cmocka_unit_test(test_empty_and_edges),
		cmocka_unit_test(test_callback_control),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_has_option),
		cmocka_unit_test(test_find_uenv),
		cmocka_unit_test(test_file_errors_name_the_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

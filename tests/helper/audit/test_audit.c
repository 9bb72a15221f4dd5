/* SPDX-License-Identifier: Apache-2.0 */
/* Logging to stderr and audit records (log + JSON lines). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "audit/audit.h"
#include "audit/jsonline.h"
#include "log.h"

struct capture {
	char path[64];
	int saved_fd;
};

struct tmpdir {
	char dir[64];
	char file[96];
};

/* What a failing test leaves behind, undone by teardown(). */
static struct capture *active_capture;
static struct tmpdir *active_tmp;

/* Point fd 2 at a temp file for the duration of a capture. */
static void capture_begin(struct capture *cap)
{
	int fd;

	snprintf(cap->path, sizeof(cap->path), "/tmp/hpcn-log-XXXXXX");
	fd = mkstemp(cap->path);
	assert_true(fd >= 0);
	fflush(stderr);
	cap->saved_fd = dup(STDERR_FILENO);
	assert_true(cap->saved_fd >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	active_capture = cap;
}

/* Returns what was written (malloc'd). */
static char *capture_end(struct capture *cap)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	fflush(stderr);
	assert_int_equal(dup2(cap->saved_fd, STDERR_FILENO), STDERR_FILENO);
	close(cap->saved_fd);
	active_capture = NULL;
	f = fopen(cap->path, "r");
	assert_non_null(f);
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	unlink(cap->path);
	return buf;
}

static void test_levels_and_targets(void **state)
{
	static const char *const names[] = { "error", "warning", "notice", "info", "debug" };

	for (int l = LOG_ERR; l <= LOG_DEBUG; l++) {
		assert_string_equal(hpcn_log_level_to_string(l), names[l - LOG_ERR]);
		assert_int_equal(hpcn_log_level_from_string(names[l - LOG_ERR]), l);
	}
	assert_int_equal(hpcn_log_level_from_string("WARNING"), LOG_WARNING);
	assert_int_equal(hpcn_log_level_from_string("verbose"), -1);
	assert_int_equal(hpcn_log_target_from_string("auto"), HPCN_LOG_AUTO);
	assert_int_equal(hpcn_log_target_from_string("stderr"), HPCN_LOG_STDERR);
	assert_int_equal(hpcn_log_target_from_string("journal"), HPCN_LOG_JOURNAL);
	assert_int_equal(hpcn_log_target_from_string("syslog"), -1);
	assert_string_equal(hpcn_log_target_to_string(HPCN_LOG_JOURNAL), "journal");

	/* Explicit targets are kept; auto without systemd's variables is stderr. */
	assert_int_equal(hpcn_log_resolve_target(HPCN_LOG_JOURNAL), HPCN_LOG_JOURNAL);
	unsetenv("JOURNAL_STREAM");
	unsetenv("INVOCATION_ID");
	assert_int_equal(hpcn_log_resolve_target(HPCN_LOG_AUTO), HPCN_LOG_STDERR);
}

/* JOURNAL_STREAM naming our stderr means journald reads it. */
static void test_auto_detects_journal_stream(void **state)
{
	char buf[64];
	struct stat st;

	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	assert_int_equal(setenv("JOURNAL_STREAM", buf, 1), 0);
	assert_int_equal(hpcn_log_resolve_target(HPCN_LOG_AUTO), HPCN_LOG_JOURNAL);
	/* Inherited from a parent whose stderr was another stream: not ours. */
	snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	assert_int_equal(setenv("JOURNAL_STREAM", buf, 1), 0);
	assert_int_equal(hpcn_log_resolve_target(HPCN_LOG_AUTO), HPCN_LOG_STDERR);
	unsetenv("JOURNAL_STREAM");
}

static void test_log_stderr_format(void **state)
{
	struct capture cap;
	char want[512];
	char *out;

	hpcn_log_init(HPCN_LOG_STDERR, LOG_INFO, NULL);
	capture_begin(&cap);
	errno = EBUSY;
	hpcn_log_warning("hello %d", 42);
	assert_int_equal(errno, EBUSY); /* preserved */
	hpcn_log_debug("not shown at info");
	hpcn_log_error("errno says %m");
	hpcn_log_info("line\nbreak\tand \x1b[31mescape");
	hpcn_log_fields(LOG_NOTICE, ((const char *const[]){ "A=1", "B=two", NULL }),
			"with %s", "fields");
	hpcn_log_set_level(LOG_DEBUG);
	hpcn_log_debug("now shown");
	hpcn_log_set_level(LOG_ERR);
	hpcn_log_warning("hidden again");
	out = capture_end(&cap);

	snprintf(want, sizeof(want),
		 "hpc-node-helper[%ld]: warning: hello 42\n"
		 "hpc-node-helper[%ld]: error: errno says Device or resource busy\n"
		 "hpc-node-helper[%ld]: info: line?break?and ?[31mescape\n"
		 "hpc-node-helper[%ld]: notice: with fields A=1 B=two\n"
		 "hpc-node-helper[%ld]: debug: now shown\n",
		 (long)getpid(), (long)getpid(), (long)getpid(), (long)getpid(), (long)getpid());
	assert_string_equal(out, want);
	free(out);
	assert_false(hpcn_log_enabled(LOG_WARNING));
	assert_true(hpcn_log_enabled(LOG_ERR));

	/* Another identifier. */
	hpcn_log_init(HPCN_LOG_STDERR, LOG_INFO, "hpc-nodectl");
	capture_begin(&cap);
	hpcn_log_info("x");
	out = capture_end(&cap);
	snprintf(want, sizeof(want), "hpc-nodectl[%ld]: info: x\n", (long)getpid());
	assert_string_equal(out, want);
	free(out);
	hpcn_log_init(HPCN_LOG_STDERR, LOG_INFO, NULL);
}

static void tmp_audit_file(struct tmpdir *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/hpcn-audit-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->file, sizeof(t->file), "%s/audit.jsonl", t->dir);
	active_tmp = t;
}

static void tmp_cleanup(struct tmpdir *t)
{
	unlink(t->file);
	assert_int_equal(rmdir(t->dir), 0);
	active_tmp = NULL;
}

static int teardown(void **state)
{
	if (active_capture) {
		dup2(active_capture->saved_fd, STDERR_FILENO);
		close(active_capture->saved_fd);
		unlink(active_capture->path);
		active_capture = NULL;
	}
	hpcn_audit_close();
	if (active_tmp) {
		unlink(active_tmp->file);
		rmdir(active_tmp->dir);
		active_tmp = NULL;
	}
	hpcn_log_init(HPCN_LOG_STDERR, LOG_INFO, NULL);
	return 0;
}

/* All lines of the file, parsed; fails on any line that is not JSON. */
static json_t *read_records(const char *path)
{
	json_t *arr = json_array();
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	while ((n = getline(&line, &cap, f)) > 0) {
		json_error_t jerr;
		json_t *rec;

		if (line[n - 1] != '\n')
			fail_msg("record without newline: %s", line);
		rec = json_loads(line, 0, &jerr);
		if (!rec)
			fail_msg("not JSON (%s): %s", jerr.text, line);
		json_array_append_new(arr, rec);
	}
	free(line);
	fclose(f);
	return arr;
}

static const char *str_at(json_t *obj, const char *path1, const char *path2)
{
	json_t *v = json_object_get(obj, path1);

	if (path2)
		v = json_object_get(v, path2);
	if (!json_is_string(v))
		fail_msg("%s%s%s is not a string", path1, path2 ? "." : "", path2 ? path2 : "");
	return json_string_value(v);
}

static void assert_timestamp_recent(const char *ts)
{
	struct tm tm = { 0 };
	const char *rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
	time_t t, now = time(NULL);

	assert_non_null(rest);
	/* ".uuuuuuZ" */
	assert_int_equal(strlen(rest), 8);
	assert_int_equal(rest[0], '.');
	assert_int_equal(rest[7], 'Z');
	t = timegm(&tm);
	assert_true(t <= now && now - t < 60);
}

static void assert_uuid_v4(const char *id)
{
	assert_int_equal(strlen(id), 36);
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(id[i], '-');
		else
			assert_non_null(strchr("0123456789abcdef", id[i]));
	}
	assert_int_equal(id[14], '4');
	assert_non_null(strchr("89ab", id[19]));
}

static void test_audit_json_records(void **state)
{
	struct hpcn_audit_ctx who = { .uid = 1000, .gid = 1001, .pid = 4242 };
	struct hpcn_error err = { 0 };
	struct tmpdir t;
	struct capture cap;
	char host[HOST_NAME_MAX + 1], want[256];
	json_t *recs, *r, *scope, *subject, *principal;
	char *log;

	assert_int_equal(gethostname(host, sizeof(host)), 0);
	tmp_audit_file(&t);
	hpcn_log_init(HPCN_LOG_STDERR, LOG_INFO, NULL);
	assert_int_equal(hpcn_audit_init(t.file, &err), 0);
	assert_true(hpcn_audit_file_enabled());

	capture_begin(&cap);
	assert_int_equal(hpcn_audit(HPCN_AUDIT_NAMESPACE_HANDOFF, HPCN_AUDIT_SUCCESS, &who,
				    "alloc-42", "fds %s", "pid,net,mnt"), 0);
	assert_int_equal(hpcn_audit(HPCN_AUDIT_MOUNT_REFCOUNT_CORRECTED, HPCN_AUDIT_FAILURE,
				    NULL, NULL, "refcount %d -> %d", 3, 2), 0);
	assert_int_equal(hpcn_audit(HPCN_AUDIT_MOUNT_ACQUIRE, HPCN_AUDIT_DENIED, &who,
				    "alloc-43", "%s", "image /etc/x not under image_prefixes"), 0);
	assert_int_equal(hpcn_audit(HPCN_AUDIT_BOOT_READY, HPCN_AUDIT_SUCCESS, NULL, NULL,
				    "%s", ""), 0);
	log = capture_end(&cap);
	hpcn_audit_close();
	assert_false(hpcn_audit_file_enabled());

	/* (1) the log: one line each, with the journal fields appended. */
	snprintf(want, sizeof(want), "hpc-node-helper[%ld]: notice: audit: namespace.handoff "
		 "Success allocation alloc-42 peer uid=1000 gid=1001 pid=4242: fds pid,net,mnt "
		 "MESSAGE_ID=" HPCN_AUDIT_MESSAGE_ID " AUDIT_ID=", (long)getpid());
	assert_non_null(strstr(log, want));
	assert_non_null(strstr(log, " AUDIT_ACTION=namespace.handoff AUDIT_OUTCOME=Success "
				    "NODE_ID="));
	assert_non_null(strstr(log, " ALLOCATION_ID=alloc-42 PEER_UID=1000 PEER_GID=1001 "
				    "PEER_PID=4242\n"));
	assert_non_null(strstr(log, ": error: audit: mount.refcount_corrected Failure: "
				    "refcount 3 -> 2 MESSAGE_ID="));
	assert_non_null(strstr(log, ": warning: audit: mount.acquire Denied allocation "
				    "alloc-43 peer"));
	assert_non_null(strstr(log, ": notice: audit: boot.ready Success MESSAGE_ID="));
	free(log);

	/* (2) the JSON lines. */
	recs = read_records(t.file);
	assert_int_equal(json_array_size(recs), 4);

	r = json_array_get(recs, 0);
	assert_int_equal(json_object_size(r), 10);
	assert_uuid_v4(str_at(r, "id", NULL));
	assert_timestamp_recent(str_at(r, "timestamp", NULL));
	assert_string_equal(str_at(r, "action", NULL), "namespace.handoff");
	assert_string_equal(str_at(r, "outcome", NULL), "Success");
	assert_string_equal(str_at(r, "detail", NULL), "fds pid,net,mnt");
	assert_string_equal(str_at(r, "source", NULL), "hpc-node-helper");
	assert_true(json_is_null(json_object_get(r, "metadata")));
	scope = json_object_get(r, "scope");
	assert_int_equal(json_object_size(scope), 2);
	assert_string_equal(str_at(r, "scope", "node_id"), host);
	assert_string_equal(str_at(r, "scope", "allocation_id"), "alloc-42");
	principal = json_object_get(r, "principal");
	assert_int_equal(json_object_size(principal), 3);
	assert_string_equal(str_at(r, "principal", "identity"), "uid:1000");
	assert_string_equal(str_at(r, "principal", "principal_type"), "Service");
	assert_string_equal(str_at(r, "principal", "role"), "");
	subject = json_object_get(r, "subject");
	assert_int_equal(json_integer_value(json_object_get(subject, "uid")), 1000);
	assert_int_equal(json_integer_value(json_object_get(subject, "gid")), 1001);
	assert_int_equal(json_integer_value(json_object_get(subject, "pid")), 4242);

	r = json_array_get(recs, 1);
	assert_string_equal(str_at(r, "action", NULL), "mount.refcount_corrected");
	assert_string_equal(str_at(r, "outcome", NULL), "Failure");
	assert_string_equal(str_at(r, "detail", NULL), "refcount 3 -> 2");
	/* No allocation: left out, as the crate's skip_serializing_if does. */
	assert_null(json_object_get(json_object_get(r, "scope"), "allocation_id"));
	assert_true(json_is_null(json_object_get(r, "subject")));
	assert_string_equal(str_at(r, "principal", "identity"), "hpc-node-helper");
	assert_string_equal(str_at(r, "principal", "principal_type"), "System");

	r = json_array_get(recs, 2);
	assert_string_equal(str_at(r, "outcome", NULL), "Denied");
	assert_string_equal(str_at(r, "scope", "allocation_id"), "alloc-43");

	r = json_array_get(recs, 3);
	assert_string_equal(str_at(r, "action", NULL), "boot.ready");
	assert_string_equal(str_at(r, "detail", NULL), "");
	/* Ids differ. */
	assert_string_not_equal(str_at(json_array_get(recs, 0), "id", NULL),
				str_at(json_array_get(recs, 3), "id", NULL));
	json_decref(recs);
	tmp_cleanup(&t);
}

/* A user-given path may be any bytes: the record stays valid JSON, and one line. */
static void test_audit_hostile_detail(void **state)
{
	struct hpcn_error err = { 0 };
	struct tmpdir t;
	struct capture cap;
	json_t *recs;
	char *log;

	tmp_audit_file(&t);
	assert_int_equal(hpcn_audit_init(t.file, &err), 0);
	capture_begin(&cap);
	assert_int_equal(hpcn_audit(HPCN_AUDIT_MOUNT_ACQUIRE, HPCN_AUDIT_FAILURE, NULL, "a",
				    "image %s", "/x/\xff\xfe\"quote\"\nnewline.sqfs"), 0);
	log = capture_end(&cap);
	hpcn_audit_close();
	/* The log line is one line. */
	assert_non_null(strstr(log, "image /x/\xff\xfe\"quote\"?newline.sqfs"));
	assert_int_equal(strchr(log, '\n') - log + 1, (long)strlen(log));
	free(log);
	recs = read_records(t.file);
	assert_int_equal(json_array_size(recs), 1);
	assert_string_equal(str_at(json_array_get(recs, 0), "detail", NULL),
			    "image /x/??\"quote\"\nnewline.sqfs");
	json_decref(recs);
	tmp_cleanup(&t);
}

/* Several processes appending at once: every line is one whole record. */
static void test_audit_concurrent_writers(void **state)
{
	enum { NPROC = 8, NREC = 150 };
	struct hpcn_error err = { 0 };
	struct tmpdir t;
	char big[3000];
	int counts[NPROC] = { 0 };
	json_t *recs, *r, *ids;
	size_t i;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tmp_audit_file(&t);
	/* The children's log lines are not the point here. */
	hpcn_log_init(HPCN_LOG_STDERR, LOG_ERR, NULL);
	assert_int_equal(hpcn_audit_init(t.file, &err), 0);
	/* The parent draws its first id: the children inherit a filled pool. */
	assert_int_equal(hpcn_audit(HPCN_AUDIT_MOUNT_RELEASE, HPCN_AUDIT_SUCCESS, NULL,
				    "parent", "%s", big), 0);
	for (int p = 0; p < NPROC; p++) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			char id[16];

			snprintf(id, sizeof(id), "w%d", p);
			for (int n = 0; n < NREC; n++)
				if (hpcn_audit(HPCN_AUDIT_MOUNT_RELEASE, HPCN_AUDIT_SUCCESS, NULL,
					       id, "%d %s", n, big) != 0)
					_exit(1);
			_exit(0);
		}
	}
	for (int p = 0; p < NPROC; p++) {
		int status;

		assert_true(wait(&status) > 0);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	hpcn_audit_close();
	hpcn_log_init(HPCN_LOG_STDERR, LOG_INFO, NULL);

	recs = read_records(t.file);
	assert_int_equal(json_array_size(recs), NPROC * NREC + 1);
	ids = json_object();
	json_array_foreach(recs, i, r) {
		const char *alloc = str_at(r, "scope", "allocation_id");
		int w = atoi(alloc + 1);

		/* Every id once, although the children forked off one id pool. */
		if (json_object_get(ids, str_at(r, "id", NULL)))
			fail_msg("record id %s appears twice", str_at(r, "id", NULL));
		json_object_set_new(ids, str_at(r, "id", NULL), json_true());
		if (strcmp(alloc, "parent") == 0)
			continue;

		assert_true(w >= 0 && w < NPROC);
		assert_int_equal(strlen(str_at(r, "detail", NULL)) > sizeof(big) - 1, 1);
		counts[w]++;
	}
	for (int p = 0; p < NPROC; p++)
		assert_int_equal(counts[p], NREC);
	json_decref(ids);
	json_decref(recs);
	tmp_cleanup(&t);
}

/* The record writer's strings against jansson's reading of them. */
static void test_jsonline_strings(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain", "plain" },
		{ "", "" },
		{ "q\"b\\s/", "q\"b\\s/" },
		{ "\n\t\r\x01\x1f\x7f", "\n\t\r\x01\x1f\x7f" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "\xc0\x80", "??" },                 /* overlong NUL */
		{ "\xed\xa0\x80", "???" },           /* a surrogate */
		{ "x\xe2\x82", "x??" },               /* truncated at the end */
		{ "\xf5\x80\x80\x80", "????" },     /* beyond U+10FFFF */
		{ "\xff\xfe", "??" },
	};
	char small[8];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hpcn_jsonline w;
		json_error_t jerr;
		const char *line;
		json_t *j;
		size_t len;

		/* A tiny first buffer: every record also exercises the growth. */
		hpcn_jsonline_init(&w, small, sizeof(small));
		hpcn_jsonline_open(&w, NULL);
		hpcn_jsonline_str(&w, "s", cases[i].in);
		hpcn_jsonline_int(&w, "n", -42);
		hpcn_jsonline_open(&w, "o");
		hpcn_jsonline_null(&w, "z");
		hpcn_jsonline_close(&w);
		hpcn_jsonline_close(&w);
		line = hpcn_jsonline_finish(&w, &len);
		assert_non_null(line);
		assert_int_equal(strlen(line), len);
		assert_int_equal(line[len - 1], '\n');
		assert_null(memchr(line, '\n', len - 1));
		j = json_loads(line, 0, &jerr);
		if (!j)
			fail_msg("case %zu: not JSON (%s): %s", i, jerr.text, line);
		assert_string_equal(json_string_value(json_object_get(j, "s")), cases[i].out);
		assert_int_equal(json_integer_value(json_object_get(j, "n")), -42);
		assert_true(json_is_null(json_object_get(json_object_get(j, "o"), "z")));
		json_decref(j);
		hpcn_jsonline_free(&w);
	}
}

static void test_audit_init_errors(void **state)
{
	struct hpcn_error err = { 0 };
	struct capture cap;
	char *log;

	assert_int_equal(hpcn_audit_init("/nonexistent-hpcn/dir/audit.jsonl", &err), -1);
	assert_non_null(strstr(err.message, "/nonexistent-hpcn/dir/audit.jsonl"));
	assert_non_null(strstr(err.message, "No such file or directory"));
	assert_int_equal(err.sys_errno, ENOENT);
	assert_false(hpcn_audit_file_enabled());

	/* No file configured: log only, and that is a success. */
	assert_int_equal(hpcn_audit_init(NULL, &err), 0);
	assert_int_equal(hpcn_audit_init("", &err), 0);
	capture_begin(&cap);
	assert_int_equal(hpcn_audit(HPCN_AUDIT_CGROUP_CREATE, HPCN_AUDIT_SUCCESS, NULL, "a1",
				    "%s", "workload.slice/a1.scope"), 0);
	log = capture_end(&cap);
	assert_non_null(strstr(log, "audit: cgroup.create Success allocation a1: "
				    "workload.slice/a1.scope"));
	free(log);
	hpcn_audit_close();
}

/* A full disk (/dev/full): the write fails, the failure is logged, the caller
 * learns it, errno is untouched and the action goes on. */
static void test_audit_write_failure_reported(void **state)
{
	struct hpcn_error err = { 0 };
	struct capture cap;
	char *log;
	int r;

	assert_int_equal(hpcn_audit_init("/dev/full", &err), 0);
	capture_begin(&cap);
	errno = 0;
	r = hpcn_audit(HPCN_AUDIT_CGROUP_DESTROY, HPCN_AUDIT_SUCCESS, NULL, "a2", "%s", "x");
	assert_int_equal(errno, 0);
	log = capture_end(&cap);
	hpcn_audit_close();
	assert_int_equal(r, -1);
	assert_non_null(strstr(log, "error: audit: cannot append record "));
	assert_non_null(strstr(log, "(cgroup.destroy) to /dev/full: No space left on device"));
	free(log);
}

static void test_outcome_names(void **state)
{
	assert_string_equal(hpcn_audit_outcome_to_string(HPCN_AUDIT_SUCCESS), "Success");
	assert_string_equal(hpcn_audit_outcome_to_string(HPCN_AUDIT_FAILURE), "Failure");
	assert_string_equal(hpcn_audit_outcome_to_string(HPCN_AUDIT_DENIED), "Denied");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_levels_and_targets, teardown),
		cmocka_unit_test_teardown(test_auto_detects_journal_stream, teardown),
		cmocka_unit_test_teardown(test_log_stderr_format, teardown),
		cmocka_unit_test_teardown(test_audit_json_records, teardown),
		cmocka_unit_test_teardown(test_audit_hostile_detail, teardown),
		cmocka_unit_test_teardown(test_audit_concurrent_writers, teardown),
		cmocka_unit_test_teardown(test_audit_init_errors, teardown),
		cmocka_unit_test_teardown(test_audit_write_failure_reported, teardown),
		cmocka_unit_test_teardown(test_outcome_names, teardown),
		cmocka_unit_test(test_jsonline_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

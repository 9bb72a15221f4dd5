/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real hpc-nodectl binary against a scripted peer on a real
 * SOCK_SEQPACKET socket, speaking the real protocol (libhpcnode's codec).
 * Proves what each command sends, what it prints for each answer, and its
 * exit status for errors, denials, timeouts and a vanished helper. The
 * scripted peer stands in for the daemon only until the lead's end-to-end
 * test against hpc-node-helper exists; it needs no privileges.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <hpcnode/hpcnode.h>

#define CTL HPCN_BINARY_DIR "/helper/hpc-nodectl"

struct fixture {
	char dir[64];
	char sock_path[128];
	char out_path[128];
	char err_path[128];
	const char *out_target; /* where the CLI's stdout goes, if not out_path */
	int lfd;          /* listening socket */
	pid_t child;      /* hpc-nodectl */
	int status;       /* its exit status once reaped */
	char *out, *err;  /* its stdout / stderr */
	struct hpcn_msg req; /* what it sent */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_non_null(f);
	strcpy(f->dir, "/tmp/hpcn-ctl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock_path, sizeof(f->sock_path), "%s/handoff.sock", f->dir);
	snprintf(f->out_path, sizeof(f->out_path), "%s/out", f->dir);
	snprintf(f->err_path, sizeof(f->err_path), "%s/err", f->dir);
	f->child = -1;

	f->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	strcpy(sa.sun_path, f->sock_path);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	/* A failed assertion may leave the CLI running: never leak it. */
	if (f->child > 0) {
		kill(f->child, SIGKILL);
		waitpid(f->child, NULL, 0);
	}
	if (f->lfd >= 0)
		close(f->lfd);
	hpcn_msg_free(&f->req);
	unlink(f->sock_path);
	unlink(f->out_path);
	unlink(f->err_path);
	rmdir(f->dir);
	free(f->out);
	free(f->err);
	free(f);
	return 0;
}

/* Start hpc-nodectl with args (NULL-terminated); socket: HPCN_SOCKET value,
 * NULL to unset it. */
static void start(struct fixture *f, const char *socket_env, const char *const args[])
{
	const char *argv[16] = { CTL };
	size_t n = 1;

	for (; args[n - 1] && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;

	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		const char *out = f->out_target ? f->out_target : f->out_path;
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		int e = open(f->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		if (socket_env)
			setenv("HPCN_SOCKET", socket_env, 1);
		else
			unsetenv("HPCN_SOCKET");
		execv(CTL, (char *const *)argv);
		_exit(127);
	}
}

/* Forget one run's results before the next run in the same test. */
static void reset(struct fixture *f)
{
	hpcn_msg_free(&f->req);
	free(f->out);
	free(f->err);
	f->out = f->err = NULL;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	int c;

	assert_non_null(mem);
	if (fp) {
		while ((c = fgetc(fp)) != EOF)
			fputc(c, mem);
		fclose(fp);
	}
	fclose(mem);
	return buf;
}

/* Wait for the CLI and collect. The bound (wall clock, far above its own
 * timeouts) only guards against a hang: a loaded machine is slow. */
#define FINISH_MS 60000
static int finish(struct fixture *f)
{
	struct timespec now;
	long long end;

	clock_gettime(CLOCK_MONOTONIC, &now);
	end = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 + FINISH_MS;
	for (;;) {
		pid_t r = waitpid(f->child, &f->status, WNOHANG);

		assert_true(r >= 0);
		if (r == f->child) {
			f->child = -1;
			f->out = slurp(f->out_path);
			f->err = slurp(f->err_path);
			assert_true(WIFEXITED(f->status));
			return WEXITSTATUS(f->status);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 >= end)
			break;
		usleep(10000);
	}
	fail_msg("hpc-nodectl did not exit within %d s", FINISH_MS / 1000);
	return -1;
}

/* Accept the CLI's connection and read its one request into f->req. */
static int accept_request(struct fixture *f)
{
	struct pollfd p = { .fd = f->lfd, .events = POLLIN };
	struct hpcn_error err;
	size_t nfds = 0;
	int c;

	assert_int_equal(poll(&p, 1, 5000), 1);
	c = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(c >= 0);
	if (hpcn_recv_msg(c, &f->req, NULL, &nfds, 0, &err) != 1)
		fail_msg("receiving the request: %s", err.message);
	return c;
}

static void reply(int c, struct hpcn_msg *m)
{
	struct hpcn_error err;

	if (hpcn_send_msg(c, m, NULL, 0, &err) < 0)
		fail_msg("sending the reply: %s", err.message);
	hpcn_msg_free(m);
}

static void reply_json(int c, const struct hpcn_msg *req, enum hpcn_tag tag, const char *json)
{
	struct hpcn_msg m;

	hpcn_msg_init(&m, tag);
	m.seq = req->seq;
	m.u.json = json ? strdup(json) : NULL;
	reply(c, &m);
}

static void reply_error(int c, const struct hpcn_msg *req, enum hpcn_error_kind kind,
			const char *f1, const char *f2)
{
	struct hpcn_error e;
	struct hpcn_msg m;

	hpcn_error_set(&e, kind, f1, f2);
	assert_int_equal(hpcn_msg_error_from(&m, req->seq, &e), 0);
	reply(c, &m);
}

/* One exchange: run the CLI, answer its request with an answer of tag
 * with body json, return its exit status. */
static int exchange_json(struct fixture *f, const char *const args[], enum hpcn_tag tag,
			 const char *json)
{
	int c;

	start(f, f->sock_path, args);
	c = accept_request(f);
	reply_json(c, &f->req, tag, json);
	close(c);
	return finish(f);
}

static const char status_body[] =
	"{\"software\":\"hpc-node-helper 0.1.0\",\"contract\":\"2026.1.28\",\"pid\":77,"
	"\"ready\":true,\"uptime_secs\":61,"
	"\"cgroup\":{\"root\":\"/sys/fs/cgroup/unified\",\"controllers\":[\"hugetlb\"],"
	"\"enabled\":true},"
	"\"allocations\":[],\"mounts\":[],"
	"\"zombies\":[{\"path\":\"workload.slice/9.0.scope\",\"since\":\"2026-11-26T05:00:00Z\"}],"
	"\"counters\":{\"requests\":4,\"errors\":0,\"denied\":1}}";

static void test_status(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(exchange_json(f, (const char *[]){ "status", NULL },
				       HPCN_TAG_STATUS, status_body), 0);
	assert_int_equal(f->req.tag, HPCN_TAG_STATUS_REQUEST);
	assert_string_equal(f->out,
			    "Helper:       hpc-node-helper 0.1.0\n"
			    "Contract:     2026.1.28\n"
			    "PID:          77\n"
			    "Ready:        yes\n"
			    "Uptime:       1m 1s\n"
			    "Cgroup root:  /sys/fs/cgroup/unified (enabled)\n"
			    "Controllers:  hugetlb\n"
			    "Requests:     4 (errors 0, denied 1)\n"
			    "\n"
			    "Allocations: none\n"
			    "\n"
			    "Mounts: none\n"
			    "\n"
			    "Zombies: 1\n"
			    "  workload.slice/9.0.scope (since 2026-11-26T05:00:00Z)\n");
	assert_string_equal(f->err, "");
}

/* --json: the body as received, indented, keys in order. */
static void test_status_json(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(exchange_json(f, (const char *[]){ "--json", "status", NULL },
				       HPCN_TAG_STATUS,
				       "{\"software\":\"h\",\"zombies\":[],\"pid\":1}"), 0);
	assert_string_equal(f->out,
			    "{\n  \"software\": \"h\",\n  \"zombies\": [],\n  \"pid\": 1\n}\n");
}

static void test_metrics(void **state)
{
	struct fixture *f = *state;
	struct hpcn_msg m;
	int c;

	start(f, NULL, (const char *[]){ "metrics", "--socket", f->sock_path, "12.0", NULL });
	c = accept_request(f);
	assert_int_equal(f->req.tag, HPCN_TAG_METRICS_REQUEST);
	assert_string_equal(f->req.u.metrics_request.path, "12.0");
	hpcn_msg_init(&m, HPCN_TAG_CGROUP_METRICS);
	m.seq = f->req.seq;
	m.u.metrics.memory_current = 3 * 1024 * 1024;
	m.u.metrics.memory_max.set = false;
	m.u.metrics.cpu_usage_usec = 2500000;
	m.u.metrics.nr_processes = 2;
	reply(c, &m);
	close(c);
	assert_int_equal(finish(f), 0);
	assert_string_equal(f->out,
			    "Cgroup:         12.0\n"
			    "Memory current: 3.0 MiB (3145728 bytes)\n"
			    "Memory max:     max (no limit)\n"
			    "CPU usage:      2.500 s (2500000 usec)\n"
			    "Processes:      2\n");
}

static void test_end_alloc(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(exchange_json(f, (const char *[]){ "end", "12.0", NULL },
				       HPCN_TAG_OK, NULL), 0);
	assert_int_equal(f->req.tag, HPCN_TAG_ALLOCATION_ENDED);
	assert_string_equal(f->req.u.ended.allocation_id, "12.0");
	assert_null(f->req.u.ended.group);
	assert_string_equal(f->out, "Allocation 12.0 ended.\n");
}

static void test_end_group(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(exchange_json(f, (const char *[]){ "end", "--group", "12", NULL },
				       HPCN_TAG_OK, NULL), 0);
	assert_int_equal(f->req.tag, HPCN_TAG_ALLOCATION_ENDED);
	assert_null(f->req.u.ended.allocation_id);
	assert_string_equal(f->req.u.ended.group, "12");
	assert_string_equal(f->out, "Allocations of group 12 ended.\n");
}

/* release sends exactly what end sends. */
static void test_release(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(exchange_json(f, (const char *[]){ "release", "12.0", NULL },
				       HPCN_TAG_OK, NULL), 0);
	assert_int_equal(f->req.tag, HPCN_TAG_ALLOCATION_ENDED);
	assert_string_equal(f->req.u.ended.allocation_id, "12.0");
	assert_null(f->req.u.ended.group);
	assert_string_equal(f->out,
			    "Allocation 12.0 ended: its namespaces and mounts are released.\n");
}

static void test_force_unmount(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(exchange_json(f, (const char *[]){ "force-unmount", "--emergency",
							    "/images/a.sqfs", NULL },
				       HPCN_TAG_OK, NULL), 0);
	assert_int_equal(f->req.tag, HPCN_TAG_FORCE_UNMOUNT);
	assert_string_equal(f->req.u.force_unmount.image_path, "/images/a.sqfs");
	assert_true(f->req.u.force_unmount.emergency);
	assert_string_equal(f->out, "Image /images/a.sqfs force-unmounted.\n");
}

static void test_reconcile(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(exchange_json(f, (const char *[]){ "reconcile", NULL }, HPCN_TAG_STATUS,
				       "{\"corrections\":[\"refcount of /i.sqfs: 2 -> 1\"]}"), 0);
	assert_int_equal(f->req.tag, HPCN_TAG_RECONCILE);
	assert_string_equal(f->out, "Corrections: 1\n  - refcount of /i.sqfs: 2 -> 1\n");
}

static void test_ping(void **state)
{
	struct fixture *f = *state;
	struct hpcn_msg m;
	int c;

	start(f, f->sock_path, (const char *[]){ "ping", NULL });
	c = accept_request(f);
	assert_int_equal(f->req.tag, HPCN_TAG_HELLO);
	assert_int_equal(f->req.u.hello.min_version, 1);
	assert_int_equal(f->req.u.hello.max_version, HPCN_PROTOCOL_VERSION);
	assert_string_equal(f->req.u.hello.software, "hpc-nodectl " HPCN_VERSION_STRING);
	hpcn_msg_init(&m, HPCN_TAG_HELLO);
	m.seq = f->req.seq;
	m.u.hello.min_version = 1;
	m.u.hello.max_version = 1;
	m.u.hello.software = strdup("hpc-node-helper 0.1.0");
	reply(c, &m);
	close(c);
	assert_int_equal(finish(f), 0);
	assert_string_equal(f->out, "hpc-node-helper 0.1.0, protocol versions 1..1\n");
}

/* The helper's errors: exit 1 with its display text; denials exit 4. */
static void test_helper_errors(void **state)
{
	struct fixture *f = *state;
	static const struct {
		enum hpcn_error_kind kind;
		const char *f1, *f2, *text;
		int code;
	} cases[] = {
		{ HPCN_E_NS_ALLOCATION_NOT_FOUND, "12.0", NULL,
		  "hpc-nodectl: allocation not found: 12.0\n", 1 },
		{ HPCN_E_DENIED, "uid 1000 may not end allocations", NULL,
		  "hpc-nodectl: denied: uid 1000 may not end allocations\n", 4 },
		{ HPCN_E_CGROUP_PERMISSION_DENIED, "pact.slice/x", "Pact",
		  "hpc-nodectl: permission denied: pact.slice/x owned by Pact\n", 4 },
		{ HPCN_E_CGROUP_KILL_FAILED, "workload.slice/12.0.scope", "D state",
		  "hpc-nodectl: cgroup.kill failed for workload.slice/12.0.scope: D state\n", 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int c;

		start(f, f->sock_path, (const char *[]){ "end", "12.0", NULL });
		c = accept_request(f);
		reply_error(c, &f->req, cases[i].kind, cases[i].f1, cases[i].f2);
		close(c);
		assert_int_equal(finish(f), cases[i].code);
		assert_string_equal(f->err, cases[i].text);
		assert_string_equal(f->out, "");
		reset(f);
	}
}

/* An answer that is not the one the command expects, or a Status whose
 * body is not an object (sent raw: our encoder refuses to make one): exit 1,
 * nothing on stdout. */
static void test_bad_answers(void **state)
{
	struct fixture *f = *state;
	struct hpcn_error err;
	char raw[128];
	int c, n;

	assert_int_equal(exchange_json(f, (const char *[]){ "status", NULL }, HPCN_TAG_OK, NULL),
			 1);
	assert_string_equal(f->err, "hpc-nodectl: malformed message: "
			    "unexpected reply Ok to StatusRequest\n");
	assert_string_equal(f->out, "");
	reset(f);

	start(f, f->sock_path, (const char *[]){ "status", NULL });
	c = accept_request(f);
	n = snprintf(raw, sizeof(raw),
		     "{\"version\":1,\"tag\":\"Status\",\"seq\":%llu,\"body\":[1,2]}",
		     (unsigned long long)f->req.seq);
	if (hpcn_wire_send(c, raw, (size_t)n, NULL, 0, &err) < 0)
		fail_msg("sending the raw reply: %s", err.message);
	close(c);
	assert_int_equal(finish(f), 1);
	if (strncmp(f->err, "hpc-nodectl: malformed message: ", 32) != 0)
		fail_msg("stderr: %s", f->err);
	assert_string_equal(f->out, "");
}

/* Connected, but no answer: exit 3 after --timeout, not later. */
static void test_no_answer(void **state)
{
	struct fixture *f = *state;
	struct timespec t0, t1;
	long ms;
	int c;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	start(f, f->sock_path, (const char *[]){ "--timeout", "300", "status", NULL });
	c = accept_request(f);
	assert_int_equal(finish(f), 3);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(c);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	/* Not before the timeout; and the message names 300 ms, the
	 * timeout used (an upper bound on the time would assume a speed:
	 * this one only tells a wait for the default, 5 s, or a hang). */
	assert_true(ms >= 290);
	assert_true(ms < FINISH_MS);
	assert_string_equal(f->err, "hpc-nodectl: handoff socket unavailable: "
			    "no reply to StatusRequest (seq 1) within 300 ms\n");
}

/* The helper goes away mid-exchange: exit 3. */
static void test_helper_vanishes(void **state)
{
	struct fixture *f = *state;
	int c;

	start(f, f->sock_path, (const char *[]){ "status", NULL });
	c = accept_request(f);
	close(c);
	assert_int_equal(finish(f), 3);
	assert_non_null(strstr(f->err, "the helper closed the connection"));
}

/* No socket: exit 3, naming the path and the cause. */
static void test_unreachable(void **state)
{
	struct fixture *f = *state;
	char expected[256];

	close(f->lfd);
	f->lfd = -1;
	unlink(f->sock_path);
	start(f, f->sock_path, (const char *[]){ "ping", NULL });
	assert_int_equal(finish(f), 3);
	snprintf(expected, sizeof(expected),
		 "hpc-nodectl: handoff socket unavailable: %s: No such file or directory\n",
		 f->sock_path);
	assert_string_equal(f->err, expected);
	assert_string_equal(f->out, "");
}

/* Usage errors exit 2 and never connect. */
static void test_usage_errors_do_not_connect(void **state)
{
	struct fixture *f = *state;
	struct pollfd p = { .fd = f->lfd, .events = POLLIN };

	start(f, f->sock_path, (const char *[]){ "force-unmount", "/images/a.sqfs", NULL });
	assert_int_equal(finish(f), 2);
	assert_string_equal(f->err,
			    "hpc-nodectl: refusing to force-unmount /images/a.sqfs without "
			    "--emergency: running jobs using it lose the image\n"
			    "Try 'hpc-nodectl --help' for more information.\n");
	assert_int_equal(poll(&p, 1, 0), 0);
	reset(f);

	start(f, f->sock_path, (const char *[]){ "stauts", NULL });
	assert_int_equal(finish(f), 2);
	assert_string_equal(f->err, "hpc-nodectl: unknown command 'stauts'\n"
			    "Try 'hpc-nodectl --help' for more information.\n");
	assert_int_equal(poll(&p, 1, 0), 0);
}

static void test_help_version(void **state)
{
	struct fixture *f = *state;

	start(f, NULL, (const char *[]){ "--version", NULL });
	assert_int_equal(finish(f), 0);
	assert_string_equal(f->out, "hpc-nodectl " HPCN_VERSION_STRING " (hpc-node contract "
			    HPCN_CONTRACT_VERSION ", protocol version 1)\n");
	reset(f);

	start(f, NULL, (const char *[]){ "--help", NULL });
	assert_int_equal(finish(f), 0);
	assert_non_null(strstr(f->out, "Usage: hpc-nodectl [OPTIONS] COMMAND [ARGS]\n"));
	assert_string_equal(f->err, "");
}

/* A closed stdout must not look like success. */
static void test_write_error(void **state)
{
	struct fixture *f = *state;
	int c;

	/* /dev/full: every write fails with ENOSPC. */
	f->out_target = "/dev/full";
	start(f, f->sock_path, (const char *[]){ "status", NULL });
	c = accept_request(f);
	reply_json(c, &f->req, HPCN_TAG_STATUS, status_body);
	close(c);
	assert_int_equal(finish(f), 1);
	assert_string_equal(f->err, "hpc-nodectl: writing output: No space left on device\n");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_status),
		T(test_status_json),
		T(test_metrics),
		T(test_end_alloc),
		T(test_end_group),
		T(test_release),
		T(test_force_unmount),
		T(test_reconcile),
		T(test_ping),
		T(test_helper_errors),
		T(test_bad_answers),
		T(test_no_answer),
		T(test_helper_vanishes),
		T(test_unreachable),
		T(test_usage_errors_do_not_connect),
		T(test_help_version),
		T(test_write_error),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The consumer's calls against a real server: a forked child listening on a
 * SOCK_SEQPACKET socket in a mkdtemp dir, answering with real namespace FDs
 * (/proc/self/ns/...) or misbehaving on purpose. The child's exit status
 * says whether the request it saw was the right one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <hpcnode/hpcnode.h>

static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

enum scenario {
	SRV_NS_OK,          /* NamespaceResponse + one FD per requested type */
	SRV_NS_ERROR,       /* Error AllocationNotFound */
	SRV_NS_WRONG_COUNT, /* 3 fd_types, 2 FDs */
	SRV_NS_WRONG_ID,    /* allocation_id of someone else */
	SRV_NS_WRONG_TYPES, /* fd_types Pid,Net,Mount; FDs net,pid,mnt */
	SRV_NS_MISSING,     /* all but the last requested type, FDs to match */
	SRV_NS_STALE_FIRST, /* a reply with another seq (and FDs) first */
	SRV_HANGUP,         /* reads the request, closes */
	SRV_SILENT,         /* reads the request, never answers */
	SRV_ENDED_OK,       /* AllocationEnded -> Ok */
	SRV_OK_WITH_FD,     /* Ok carrying an FD nobody asked for */
	SRV_WRONG_TAG,      /* Status instead of NamespaceResponse */
	SRV_CLOSE_UNREAD,   /* accepts and closes without reading */
	SRV_ERROR_SEQ0,     /* Error with seq 0: "could not read your seq" */
};

struct fx {
	int baseline;
	char dir[64];
	char sock[128];
	int lfd;
	pid_t child;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->baseline = count_open_fds();
	f->lfd = -1;
	f->child = -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/hpcn-client-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->sock, sizeof(f->sock), "%s/handoff.sock", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int now, rv = 0;

	if (f->child > 0) {
		kill(f->child, SIGKILL);
		waitpid(f->child, NULL, 0);
	}
	if (f->lfd >= 0)
		close(f->lfd);
	unlink(f->sock);
	rmdir(f->dir);
	now = count_open_fds();
	if (now != f->baseline) {
		fprintf(stderr, "FD LEAK: %d descriptors open before the test, %d after\n",
			f->baseline, now);
		rv = -1;
	}
	free(f);
	return rv;
}

static void fill_addr(struct sockaddr_un *sa, const char *path)
{
	size_t len = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	assert_true(len < sizeof(sa->sun_path));
	memcpy(sa->sun_path, path, len + 1);
}

static int listen_on(const char *path, int backlog)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	fill_addr(&sa, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	return fd;
}

static int open_ns(enum hpcn_ns_type t)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/self/ns/%s", hpcn_ns_type_proc_name(t));
	return open(p, O_RDONLY | O_CLOEXEC);
}

/* The server, in the child. Exit codes > 0 name what it found wrong. */
static void serve(int lfd, enum scenario sc)
{
	struct hpcn_msg req, rep;
	struct hpcn_error e;
	int in[HPCN_MAX_MESSAGE_FDS], out[HPCN_MAX_MESSAGE_FDS];
	size_t nin = 0, nout = 0;
	int c;

	c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		_exit(10);
	if (sc == SRV_CLOSE_UNREAD)
		_exit(0);
	if (hpcn_recv_msg(c, &req, in, &nin, HPCN_MAX_MESSAGE_FDS, &e) != 1)
		_exit(11);
	if (sc == SRV_HANGUP)
		_exit(0);
	if (sc == SRV_SILENT) {
		pause();
		_exit(0);
	}
	if (sc == SRV_ENDED_OK || sc == SRV_OK_WITH_FD) {
		if (req.tag != HPCN_TAG_ALLOCATION_ENDED ||
		    !req.u.ended.allocation_id ||
		    strcmp(req.u.ended.allocation_id, "alloc-7") != 0)
			_exit(12);
		hpcn_msg_init(&rep, HPCN_TAG_OK);
		rep.seq = req.seq;
		if (sc == SRV_OK_WITH_FD)
			out[nout++] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		goto send;
	}
	if (req.tag != HPCN_TAG_NAMESPACE_REQUEST)
		_exit(13);
	/* The client's own FD (an image, say) came through with the request. */
	if (nin != 1)
		_exit(14);
	if (sc == SRV_NS_ERROR) {
		hpcn_error_set(&e, HPCN_E_NS_ALLOCATION_NOT_FOUND,
			       req.u.ns_request.allocation_id, NULL);
		if (hpcn_msg_error_from(&rep, req.seq, &e) < 0)
			_exit(15);
		goto send;
	}
	if (sc == SRV_ERROR_SEQ0) {
		hpcn_error_set(&e, HPCN_E_PROTO_MALFORMED, "bad envelope", NULL);
		if (hpcn_msg_error_from(&rep, 0, &e) < 0)
			_exit(15);
		goto send;
	}
	if (sc == SRV_WRONG_TAG) {
		hpcn_msg_init(&rep, HPCN_TAG_STATUS);
		rep.seq = req.seq;
		rep.u.json = strdup("{}");
		goto send;
	}
	if (sc == SRV_NS_STALE_FIRST) {
		hpcn_msg_init(&rep, HPCN_TAG_NAMESPACE_RESPONSE);
		rep.seq = req.seq + 1000;
		rep.u.ns_response.allocation_id = strdup("alloc-stale");
		rep.u.ns_response.n_fd_types = 1;
		rep.u.ns_response.fd_types[0] = HPCN_NS_NET;
		out[0] = open_ns(HPCN_NS_NET);
		if (hpcn_send_msg(c, &rep, out, 1, &e) < 0)
			_exit(16);
		hpcn_close_fds(out, 1);
		hpcn_msg_free(&rep);
	}
	hpcn_msg_init(&rep, HPCN_TAG_NAMESPACE_RESPONSE);
	rep.seq = req.seq;
	rep.u.ns_response.allocation_id = strdup(sc == SRV_NS_WRONG_ID ?
						 "alloc-other" : req.u.ns_request.allocation_id);
	rep.u.ns_response.uenv_mount_path = strdup("/user-environment");
	for (size_t i = 0; i < req.u.ns_request.n_namespaces; i++) {
		enum hpcn_ns_type t = req.u.ns_request.namespaces[i];

		rep.u.ns_response.fd_types[rep.u.ns_response.n_fd_types++] = t;
		out[nout++] = open_ns(t);
	}
	if (sc == SRV_NS_WRONG_TYPES && nout >= 2) {
		int t = out[0];

		out[0] = out[1];
		out[1] = t;
	}
	if (sc == SRV_NS_WRONG_COUNT)
		close(out[--nout]);
	if (sc == SRV_NS_MISSING) {
		close(out[--nout]);
		rep.u.ns_response.n_fd_types--;
	}
send:
	if (hpcn_send_msg(c, &rep, out, nout, &e) < 0)
		_exit(17);
	/* Wait for the client to hang up before exiting. */
	{
		char b[16];

		while (read(c, b, sizeof(b)) > 0)
			;
	}
	_exit(0);
}

static void start_server(struct fx *f, enum scenario sc)
{
	f->lfd = listen_on(f->sock, 8);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0)
		serve(f->lfd, sc);
	close(f->lfd);
	f->lfd = -1;
}

static void reap(struct fx *f)
{
	int st;

	assert_int_equal(waitpid(f->child, &st, 0), f->child);
	f->child = -1;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void make_request(struct hpcn_namespace_request *r, const char *id)
{
	memset(r, 0, sizeof(*r));
	r->allocation_id = (char *)id;
	r->n_namespaces = 3;
	r->namespaces[0] = HPCN_NS_PID;
	r->namespaces[1] = HPCN_NS_NET;
	r->namespaces[2] = HPCN_NS_MOUNT;
	r->base_mount_ns_fd_index = -1;
}

/* Ask for the namespaces in `order`, check what came back. */
static void ns_ok(struct fx *f, const enum hpcn_ns_type order[3])
{
	struct hpcn_namespace_request r;
	struct hpcn_namespace_response resp;
	struct hpcn_error err;
	int ns[HPCN_NS__COUNT];
	int img = open("/dev/null", O_RDONLY | O_CLOEXEC);

	start_server(f, SRV_NS_OK);
	make_request(&r, "alloc-42");
	for (int i = 0; i < 3; i++)
		r.namespaces[i] = order[i];
	assert_int_equal(hpcn_request_namespaces(f->sock, 2000, &r, &img, 1, &resp, ns, &err), 0);
	close(img);
	assert_string_equal(resp.allocation_id, "alloc-42");
	assert_string_equal(resp.uenv_mount_path, "/user-environment");
	assert_int_equal(resp.n_fd_types, 3);
	for (int i = 0; i < 3; i++) {
		char p[64];
		struct stat a, b;

		assert_int_equal(resp.fd_types[i], order[i]);
		assert_true(ns[i] >= 0);
		assert_true(fcntl(ns[i], F_GETFD) & FD_CLOEXEC);
		assert_int_equal(ioctl(ns[i], NS_GET_NSTYPE), hpcn_ns_type_clone_flag(order[i]));
		/* The child shares our namespaces: same nsfs inode. */
		snprintf(p, sizeof(p), "/proc/self/ns/%s", hpcn_ns_type_proc_name(order[i]));
		assert_int_equal(stat(p, &a), 0);
		assert_int_equal(fstat(ns[i], &b), 0);
		assert_int_equal(a.st_ino, b.st_ino);
	}
	hpcn_close_fds(ns, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&resp);
	reap(f);
}

static void test_ns_in_order(void **state)
{
	static const enum hpcn_ns_type o[3] = { HPCN_NS_PID, HPCN_NS_NET, HPCN_NS_MOUNT };

	ns_ok(*state, o);
	assert_int_equal(hpcn_ns_type_clone_flag(o[0]), CLONE_NEWPID);
	assert_int_equal(hpcn_ns_type_clone_flag(o[1]), CLONE_NEWNET);
	assert_int_equal(hpcn_ns_type_clone_flag(o[2]), CLONE_NEWNS);
}

static void test_ns_other_order(void **state)
{
	static const enum hpcn_ns_type o[3] = { HPCN_NS_MOUNT, HPCN_NS_PID, HPCN_NS_NET };

	ns_ok(*state, o);
}

/* A failing request leaves ns_fds all -1 and nothing open. */
static void ns_fails(struct fx *f, enum scenario sc, enum hpcn_error_kind kind,
		     const char *text)
{
	struct hpcn_namespace_request r;
	struct hpcn_namespace_response resp;
	struct hpcn_error err;
	int ns[HPCN_NS__COUNT] = { 0 };
	int img = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int before;

	start_server(f, sc);
	make_request(&r, "alloc-42");
	before = count_open_fds();
	assert_int_equal(hpcn_request_namespaces(f->sock, 2000, &r, &img, 1, &resp, ns, &err),
			 -1);
	assert_int_equal(count_open_fds(), before);
	close(img);
	for (int i = 0; i < HPCN_NS__COUNT; i++)
		assert_int_equal(ns[i], -1);
	assert_null(resp.allocation_id);
	assert_int_equal(err.kind, kind);
	if (strstr(err.message, text) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", err.message, text);
	reap(f);
}

static void test_ns_error_reply(void **state)
{
	struct fx *f = *state;

	ns_fails(f, SRV_NS_ERROR, HPCN_E_NS_ALLOCATION_NOT_FOUND,
		 "allocation not found: alloc-42");
}

static void test_ns_wrong_count(void **state)
{
	ns_fails(*state, SRV_NS_WRONG_COUNT, HPCN_E_NS_FD_PASSING,
		 "FD passing failed: NamespaceResponse for allocation alloc-42 lists 3 "
		 "fd_types but carried 2 descriptors; closed");
}

static void test_ns_wrong_id(void **state)
{
	ns_fails(*state, SRV_NS_WRONG_ID, HPCN_E_PROTO_MALFORMED,
		 "NamespaceResponse for allocation alloc-42 answers allocation alloc-other");
}

static void test_ns_wrong_types(void **state)
{
	ns_fails(*state, SRV_NS_WRONG_TYPES, HPCN_E_NS_FD_PASSING,
		 "descriptor 0 of allocation alloc-42 is a namespace of type");
}

/* A reply short of a namespace that was asked for (here Mount, the last):
 * the job would run without it unawares. */
static void test_ns_missing_type(void **state)
{
	ns_fails(*state, SRV_NS_MISSING, HPCN_E_NS_FD_PASSING,
		 "NamespaceResponse for allocation alloc-42 lacks the Mount namespace that was "
		 "asked for");
}

static void test_ns_wrong_tag(void **state)
{
	ns_fails(*state, SRV_WRONG_TAG, HPCN_E_PROTO_MALFORMED,
		 "expected NamespaceResponse for allocation alloc-42, got Status");
}

static void test_ns_hangup(void **state)
{
	ns_fails(*state, SRV_HANGUP, HPCN_E_NS_SOCKET_UNAVAILABLE,
		 "handoff socket unavailable: the helper closed the connection before "
		 "replying to NamespaceRequest (seq 1)");
}

/* Gone before reading: EPIPE on send or ECONNRESET on receive, depending
 * on timing; either way the socket is unavailable, and says so. */
static void test_ns_close_unread(void **state)
{
	struct fx *f = *state;
	struct hpcn_namespace_request r;
	struct hpcn_namespace_response resp;
	struct hpcn_error err;
	int ns[HPCN_NS__COUNT];
	int before = count_open_fds();

	start_server(f, SRV_CLOSE_UNREAD);
	make_request(&r, "alloc-42");
	assert_int_equal(hpcn_request_namespaces(f->sock, 2000, &r, NULL, 0, &resp, ns, &err),
			 -1);
	reap(f);
	assert_int_equal(err.kind, HPCN_E_NS_SOCKET_UNAVAILABLE);
	assert_non_null(strstr(err.message, "handoff socket unavailable: the helper closed "
			       "the connection before replying to NamespaceRequest (seq 1)"));
	assert_int_equal(count_open_fds(), before);
}

static void test_ns_error_seq0(void **state)
{
	ns_fails(*state, SRV_ERROR_SEQ0, HPCN_E_PROTO_MALFORMED,
		 "malformed message: bad envelope");
}

/* A reply to some other seq (with an FD) is skipped and its FD closed. */
static void test_ns_stale_reply_skipped(void **state)
{
	static const enum hpcn_ns_type o[3] = { HPCN_NS_PID, HPCN_NS_NET, HPCN_NS_MOUNT };
	struct fx *f = *state;
	struct hpcn_namespace_request r;
	struct hpcn_namespace_response resp;
	struct hpcn_error err;
	int ns[HPCN_NS__COUNT];
	int before;

	start_server(f, SRV_NS_STALE_FIRST);
	make_request(&r, "alloc-42");
	before = count_open_fds();
	/* No request FD: the server insists on one, so pass /dev/null. */
	{
		int img = open("/dev/null", O_RDONLY | O_CLOEXEC);

		assert_int_equal(hpcn_request_namespaces(f->sock, 2000, &r, &img, 1, &resp,
							 ns, &err), 0);
		close(img);
	}
	assert_int_equal(count_open_fds(), before + 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ioctl(ns[i], NS_GET_NSTYPE), hpcn_ns_type_clone_flag(o[i]));
	assert_string_equal(resp.allocation_id, "alloc-42");
	hpcn_close_fds(ns, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&resp);
	reap(f);
}

static void test_ns_invalid_id(void **state)
{
	struct fx *f = *state;
	struct hpcn_namespace_request r;
	struct hpcn_namespace_response resp;
	struct hpcn_error err;
	int ns[HPCN_NS__COUNT];

	/* No server at all: validation comes before the connection. */
	make_request(&r, "../etc");
	assert_int_equal(hpcn_request_namespaces(f->sock, 100, &r, NULL, 0, &resp, ns, &err),
			 -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	for (int i = 0; i < HPCN_NS__COUNT; i++)
		assert_int_equal(ns[i], -1);
	make_request(&r, "");
	assert_int_equal(hpcn_request_namespaces(f->sock, 100, &r, NULL, 0, &resp, ns, &err),
			 -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
}

static void test_connect_missing(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;
	char want[256];

	assert_int_equal(hpcn_client_connect(f->sock, 1000, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_SOCKET_UNAVAILABLE);
	assert_int_equal(err.sys_errno, ENOENT);
	snprintf(want, sizeof(want), "handoff socket unavailable: %s: No such file or directory",
		 f->sock);
	assert_string_equal(err.message, want);
}

static void test_connect_path_too_long(void **state)
{
	struct hpcn_error err;
	char p[200];

	memset(p, 'a', sizeof(p) - 1);
	p[0] = '/';
	p[sizeof(p) - 1] = '\0';
	assert_int_equal(hpcn_client_connect(p, 1000, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_SOCKET_UNAVAILABLE);
	assert_non_null(strstr(err.message, "path is too long (199 bytes, at most 107)"));
	assert_non_null(strstr(err.message, "/aaaa"));
	assert_int_equal(hpcn_client_connect(NULL, 1000, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_SOCKET_UNAVAILABLE);
}

/* A bound socket nobody listens on, and a regular file. */
static void test_connect_refused(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sa;
	struct hpcn_error err;
	char file[160];
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	fill_addr(&sa, f->sock);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(hpcn_client_connect(f->sock, 1000, &err), -1);
	assert_int_equal(err.sys_errno, ECONNREFUSED);
	assert_non_null(strstr(err.message, f->sock));
	close(fd);

	snprintf(file, sizeof(file), "%s/plain", f->dir);
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	close(fd);
	assert_int_equal(hpcn_client_connect(file, 1000, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_SOCKET_UNAVAILABLE);
	assert_non_null(strstr(err.message, file));
	unlink(file);
}

/* A listener that never accepts, its backlog full: the connect must give up. */
static void test_connect_timeout(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sa;
	struct hpcn_error err;
	int fill[16];
	size_t n = 0;

	f->lfd = listen_on(f->sock, 0);
	fill_addr(&sa, f->sock);
	for (; n < 16; n++) {
		fill[n] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		assert_true(fill[n] >= 0);
		if (connect(fill[n], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			assert_int_equal(errno, EAGAIN);
			close(fill[n]);
			break;
		}
	}
	assert_true(n < 16);
	assert_int_equal(hpcn_client_connect(f->sock, 200, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_SOCKET_UNAVAILABLE);
	assert_int_equal(err.sys_errno, ETIMEDOUT);
	assert_non_null(strstr(err.message, "timed out"));
	assert_non_null(strstr(err.message, f->sock));
	/* timeout 0: a single attempt. */
	assert_int_equal(hpcn_client_connect(f->sock, 0, &err), -1);
	assert_int_equal(err.sys_errno, ETIMEDOUT);
	for (size_t i = 0; i < n; i++)
		close(fill[i]);
}

/* A connected socket is blocking and close-on-exec. */
static void test_connect_flags(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;
	int fd;

	f->lfd = listen_on(f->sock, 8);
	fd = hpcn_client_connect(f->sock, 1000, &err);
	assert_true(fd >= 0);
	assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

static void test_call_timeout(void **state)
{
	struct fx *f = *state;
	struct hpcn_msg req, resp;
	struct hpcn_error err;
	int fd;

	start_server(f, SRV_SILENT);
	fd = hpcn_client_connect(f->sock, 1000, &err);
	assert_true(fd >= 0);
	hpcn_msg_init(&req, HPCN_TAG_STATUS_REQUEST);
	req.seq = 5;
	assert_int_equal(hpcn_client_call(fd, &req, NULL, 0, &resp, NULL, NULL, 0, 150, &err),
			 -1);
	assert_int_equal(err.kind, HPCN_E_NS_SOCKET_UNAVAILABLE);
	assert_int_equal(err.sys_errno, ETIMEDOUT);
	assert_non_null(strstr(err.message, "no reply to StatusRequest (seq 5) within 150 ms"));
	close(fd);
	kill(f->child, SIGTERM);
	waitpid(f->child, NULL, 0);
	f->child = -1;
}

static void test_end_allocation(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;

	start_server(f, SRV_ENDED_OK);
	assert_int_equal(hpcn_end_allocation(f->sock, 2000, "alloc-7", NULL, &err), 0);
	reap(f);
}

static void test_end_allocation_unexpected_fd(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;
	int before = count_open_fds();

	start_server(f, SRV_OK_WITH_FD);
	assert_int_equal(hpcn_end_allocation(f->sock, 2000, "alloc-7", NULL, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_UNEXPECTED_FDS);
	assert_int_equal(count_open_fds(), before);
	reap(f);
}

static void test_end_allocation_args(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;

	assert_int_equal(hpcn_end_allocation(f->sock, 100, NULL, NULL, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_end_allocation(f->sock, 100, "a/b", NULL, &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_int_equal(hpcn_end_allocation(f->sock, 100, NULL, "..", &err), -1);
	assert_int_equal(err.kind, HPCN_E_INVALID_ARGUMENT);
	assert_non_null(strstr(err.message, "group \"..\""));
	/* Valid, but nobody listens. */
	assert_int_equal(hpcn_end_allocation(f->sock, 100, NULL, "job-12", &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_SOCKET_UNAVAILABLE);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_connect_missing),
		T(test_connect_path_too_long),
		T(test_connect_refused),
		T(test_connect_timeout),
		T(test_connect_flags),
		T(test_ns_in_order),
		T(test_ns_other_order),
		T(test_ns_error_reply),
		T(test_ns_wrong_count),
		T(test_ns_wrong_id),
		T(test_ns_wrong_types),
		T(test_ns_missing_type),
		T(test_ns_wrong_tag),
		T(test_ns_hangup),
		T(test_ns_stale_reply_skipped),
		T(test_ns_close_unread),
		T(test_ns_error_seq0),
		T(test_ns_invalid_id),
		T(test_call_timeout),
		T(test_end_allocation),
		T(test_end_allocation_unexpected_fd),
		T(test_end_allocation_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

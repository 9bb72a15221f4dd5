/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FD passing over real SOCK_SEQPACKET socketpairs: what arrives, what is
 * refused, and that nothing leaks (every test is bracketed by a count of
 * /proc/self/fd).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

struct fx {
	int baseline;
	int sv[2];
	char dir[64];
	int files[HPCN_MAX_MESSAGE_FDS + 32];
	size_t nfiles;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->baseline = count_open_fds();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sv) < 0)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/hpcn-wire-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	for (size_t i = 0; i < sizeof(f->files) / sizeof(f->files[0]); i++)
		f->files[i] = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[128];
	int now, rv = 0;

	hpcn_close_fds(f->files, f->nfiles);
	hpcn_close_fds(f->sv, 2);
	for (size_t i = 0; i < f->nfiles; i++) {
		snprintf(p, sizeof(p), "%s/f%zu", f->dir, i);
		unlink(p);
	}
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

/* n distinct regular files, kept open in f->files. */
static void make_files(struct fx *f, size_t n)
{
	char p[128];

	assert_true(n <= sizeof(f->files) / sizeof(f->files[0]));
	for (size_t i = f->nfiles; i < n; i++) {
		snprintf(p, sizeof(p), "%s/f%zu", f->dir, i);
		f->files[i] = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		assert_true(f->files[i] >= 0);
	}
	f->nfiles = n;
}

/* Raw sendmsg, to send what hpcn_wire_send refuses to. */
static void raw_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	char ctl[CMSG_SPACE(sizeof(int) * 64)];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	assert_true(nfds <= 64);
	if (nfds) {
		struct cmsghdr *c;

		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static void roundtrip(void **state, size_t nfds)
{
	struct fx *f = *state;
	char buf[HPCN_MAX_MESSAGE_SIZE + 1];
	int got[HPCN_MAX_MESSAGE_FDS];
	struct hpcn_error err;
	size_t n = 99;
	ssize_t r;

	make_files(f, nfds);
	assert_int_equal(hpcn_wire_send(f->sv[0], "hello", 5, f->files, nfds, &err), 0);
	r = hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n, HPCN_MAX_MESSAGE_FDS, &err);
	assert_int_equal(r, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(n, nfds);
	for (size_t i = 0; i < n; i++) {
		struct stat a, b;

		assert_true(got[i] >= 0);
		assert_true(fcntl(got[i], F_GETFD) & FD_CLOEXEC);
		for (size_t j = 0; j < nfds; j++)
			assert_int_not_equal(got[i], f->files[j]);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(got[i], got[j]);
		assert_int_equal(fstat(got[i], &a), 0);
		assert_int_equal(fstat(f->files[i], &b), 0);
		assert_int_equal(a.st_dev, b.st_dev);
		assert_int_equal(a.st_ino, b.st_ino);
	}
	hpcn_close_fds(got, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(got[i], -1);
}

static void test_roundtrip_0(void **state) { roundtrip(state, 0); }
static void test_roundtrip_1(void **state) { roundtrip(state, 1); }
static void test_roundtrip_3(void **state) { roundtrip(state, 3); }
static void test_roundtrip_8(void **state) { roundtrip(state, 8); }

static void test_send_refuses_too_many(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;

	make_files(f, HPCN_MAX_MESSAGE_FDS + 1);
	assert_int_equal(hpcn_wire_send(f->sv[0], "x", 1, f->files,
					HPCN_MAX_MESSAGE_FDS + 1, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_FD_PASSING);
	assert_non_null(strstr(err.message, "FD passing failed: 9 descriptors exceed"));
}

/* So many FDs that they cannot fit the receiver's control buffer: the
 * kernel installs what fits and sets MSG_CTRUNC; we must close those. */
static void test_ctrunc(void **state)
{
	struct fx *f = *state;
	char buf[128];
	int got[HPCN_MAX_MESSAGE_FDS] = { -1 };
	struct hpcn_error err;
	size_t n = 99;
	int before;

	make_files(f, 40);
	raw_send(f->sv[0], "x", 1, f->files, 40);
	before = count_open_fds();
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n,
					HPCN_MAX_MESSAGE_FDS, &err), -1);
	assert_int_equal(n, 0);
	assert_int_equal(count_open_fds(), before);
	print_message("%s\n", err.message);
	if (err.kind == HPCN_E_NS_FD_PASSING) {
		assert_non_null(strstr(err.message, "FD passing failed: control data "
				       "truncated (MSG_CTRUNC), "));
		assert_non_null(strstr(err.message, "descriptors closed"));
	} else {
		/* A kernel that delivered them all: UnexpectedFds instead. */
		assert_int_equal(err.kind, HPCN_E_PROTO_UNEXPECTED_FDS);
	}
	/* The socket stays usable. */
	assert_int_equal(hpcn_wire_send(f->sv[0], "ok", 2, NULL, 0, &err), 0);
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n,
					HPCN_MAX_MESSAGE_FDS, &err), 2);
}

/* More than maxfds, yet within the control buffer: UnexpectedFds. */
static void test_more_than_max(void **state)
{
	struct fx *f = *state;
	char buf[128];
	int got[HPCN_MAX_MESSAGE_FDS];
	struct hpcn_error err;
	size_t n = 99;
	int before;

	make_files(f, HPCN_MAX_MESSAGE_FDS + 1);
	raw_send(f->sv[0], "x", 1, f->files, HPCN_MAX_MESSAGE_FDS + 1);
	before = count_open_fds();
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n,
					HPCN_MAX_MESSAGE_FDS, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_UNEXPECTED_FDS);
	assert_string_equal(err.message, "unexpected file descriptors: record carried 9 "
			    "or more descriptors, at most 8 expected; all closed");
	assert_int_equal(n, 0);
	assert_int_equal(count_open_fds(), before);
}

static void test_fds_where_none_expected(void **state)
{
	struct fx *f = *state;
	char buf[128];
	int got[1];
	struct hpcn_error err;
	size_t n = 99;
	int before;

	make_files(f, 2);
	assert_int_equal(hpcn_wire_send(f->sv[0], "x", 1, f->files, 2, &err), 0);
	assert_int_equal(hpcn_wire_send(f->sv[0], "y", 1, f->files, 2, &err), 0);
	before = count_open_fds();
	/* maxfds 0, no room at all */
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), NULL, &n, 0, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_UNEXPECTED_FDS);
	assert_string_equal(err.message, "unexpected file descriptors: record carried 2 "
			    "descriptors, at most 0 expected; all closed");
	assert_int_equal(count_open_fds(), before);
	/* maxfds 1 < 2 */
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n, 1, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_UNEXPECTED_FDS);
	assert_int_equal(n, 0);
	assert_int_equal(count_open_fds(), before);
}

static void test_too_large(void **state)
{
	struct fx *f = *state;
	size_t big = HPCN_MAX_MESSAGE_SIZE + 4000;
	char *buf = calloc(1, big);
	int got[HPCN_MAX_MESSAGE_FDS];
	struct hpcn_error err;
	size_t n = 99;
	int before;

	assert_non_null(buf);
	make_files(f, 2);
	memset(buf, 'a', big);
	/* hpcn_wire_send itself refuses it. */
	assert_int_equal(hpcn_wire_send(f->sv[0], buf, HPCN_MAX_MESSAGE_SIZE + 1,
					NULL, 0, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_TOO_LARGE);

	/* Truncated by the buffer (MSG_TRUNC), FDs attached. */
	raw_send(f->sv[0], buf, big, f->files, 2);
	before = count_open_fds();
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, HPCN_MAX_MESSAGE_SIZE + 1, got, &n,
					HPCN_MAX_MESSAGE_FDS, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_TOO_LARGE);
	assert_string_equal(err.message, "message too large: record of 69536 bytes exceeds "
			    "the limit of 65536 bytes, its descriptors closed");
	assert_int_equal(n, 0);
	assert_int_equal(count_open_fds(), before);

	/* One byte over the limit, into a buffer that holds it. */
	raw_send(f->sv[0], buf, HPCN_MAX_MESSAGE_SIZE + 1, NULL, 0);
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, big, got, &n,
					HPCN_MAX_MESSAGE_FDS, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_TOO_LARGE);
	assert_non_null(strstr(err.message, "record of 65537 bytes"));

	/* Exactly at the limit: fine. */
	raw_send(f->sv[0], buf, HPCN_MAX_MESSAGE_SIZE, NULL, 0);
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, HPCN_MAX_MESSAGE_SIZE + 1, got, &n,
					HPCN_MAX_MESSAGE_FDS, &err), HPCN_MAX_MESSAGE_SIZE);
	free(buf);
}

static void test_eof(void **state)
{
	struct fx *f = *state;
	char buf[16];
	int got[1];
	struct hpcn_error err;
	size_t n = 99;

	assert_int_equal(hpcn_wire_send(f->sv[0], "last", 4, NULL, 0, &err), 0);
	close(f->sv[0]);
	f->sv[0] = -1;
	/* Queued records first, then EOF, again and again. */
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n, 1, &err), 4);
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n, 1, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n, 1, &err), 0);
}

static void test_empty_record(void **state)
{
	struct fx *f = *state;
	char buf[16];
	int got[2];
	struct hpcn_error err;
	size_t n = 99;
	int before;

	make_files(f, 2);
	raw_send(f->sv[0], "", 0, NULL, 0);
	raw_send(f->sv[0], "", 0, f->files, 2);
	raw_send(f->sv[0], "z", 1, NULL, 0);
	before = count_open_fds();
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n, 2, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_MALFORMED);
	assert_non_null(strstr(err.message, "malformed message: empty record"));
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n, 2, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_MALFORMED);
	assert_int_equal(n, 0);
	assert_int_equal(count_open_fds(), before);
	/* The stream goes on after a bad record. */
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n, 2, &err), 1);
	assert_int_equal(hpcn_wire_send(f->sv[0], NULL, 0, NULL, 0, &err), -1);
}

static void test_eagain(void **state)
{
	struct fx *f = *state;
	char buf[16];
	struct hpcn_error err;
	size_t n = 99;

	assert_int_equal(fcntl(f->sv[1], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), NULL, &n, 0, &err), -1);
	assert_int_equal(err.sys_errno, EAGAIN);
	assert_int_equal(n, 0);
}

/* A peer with SO_PASSCRED gets SCM_CREDENTIALS next to SCM_RIGHTS. */
static void test_credentials_ignored(void **state)
{
	struct fx *f = *state;
	char buf[16];
	int got[HPCN_MAX_MESSAGE_FDS];
	int one = 1;
	struct hpcn_error err;
	size_t n = 99;

	make_files(f, HPCN_MAX_MESSAGE_FDS);
	assert_int_equal(setsockopt(f->sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	assert_int_equal(hpcn_wire_send(f->sv[0], "cred", 4, f->files,
					HPCN_MAX_MESSAGE_FDS, &err), 0);
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), got, &n,
					HPCN_MAX_MESSAGE_FDS, &err), 4);
	assert_int_equal(n, HPCN_MAX_MESSAGE_FDS);
	hpcn_close_fds(got, n);
	assert_int_equal(hpcn_wire_send(f->sv[0], "none", 4, NULL, 0, &err), 0);
	assert_int_equal(hpcn_wire_recv(f->sv[1], buf, sizeof(buf), NULL, &n, 0, &err), 4);
}

/* MSG_NOSIGNAL: a gone peer is an error, not a SIGPIPE that kills us. */
static void test_send_to_closed_peer(void **state)
{
	struct fx *f = *state;
	struct hpcn_error err;

	close(f->sv[1]);
	f->sv[1] = -1;
	assert_int_equal(hpcn_wire_send(f->sv[0], "x", 1, NULL, 0, &err), -1);
	assert_int_equal(err.kind, HPCN_E_NS_FD_PASSING);
	assert_int_equal(err.sys_errno, EPIPE);
	assert_non_null(strstr(err.message, "Broken pipe"));
}

static void test_msg_roundtrip(void **state)
{
	struct fx *f = *state;
	struct hpcn_msg m, r;
	int got[HPCN_MAX_MESSAGE_FDS];
	struct hpcn_error err;
	size_t n = 99;

	make_files(f, 3);
	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_RESPONSE);
	m.seq = 42;
	m.u.ns_response.allocation_id = strdup("alloc-42");
	m.u.ns_response.n_fd_types = 3;
	m.u.ns_response.fd_types[0] = HPCN_NS_PID;
	m.u.ns_response.fd_types[1] = HPCN_NS_NET;
	m.u.ns_response.fd_types[2] = HPCN_NS_MOUNT;
	assert_int_equal(hpcn_send_msg(f->sv[0], &m, f->files, 3, &err), 0);
	hpcn_msg_free(&m);
	assert_int_equal(hpcn_recv_msg(f->sv[1], &r, got, &n, HPCN_MAX_MESSAGE_FDS, &err), 1);
	assert_int_equal(r.tag, HPCN_TAG_NAMESPACE_RESPONSE);
	assert_int_equal(r.seq, 42);
	assert_string_equal(r.u.ns_response.allocation_id, "alloc-42");
	assert_int_equal(r.u.ns_response.n_fd_types, 3);
	assert_int_equal(n, 3);
	hpcn_close_fds(got, n);
	hpcn_msg_free(&r);

	close(f->sv[0]);
	f->sv[0] = -1;
	assert_int_equal(hpcn_recv_msg(f->sv[1], &r, got, &n, HPCN_MAX_MESSAGE_FDS, &err), 0);
}

/* A record that does not decode: error, its FDs closed, seq kept. */
static void test_msg_decode_error(void **state)
{
	struct fx *f = *state;
	static const char unknown[] =
		"{\"version\":1,\"tag\":\"NoSuchThing\",\"seq\":77,\"body\":{}}";
	struct hpcn_msg r;
	int got[HPCN_MAX_MESSAGE_FDS];
	struct hpcn_error err;
	size_t n = 99;
	int before;

	make_files(f, 2);
	assert_int_equal(hpcn_wire_send(f->sv[0], "not json", 8, f->files, 2, &err), 0);
	assert_int_equal(hpcn_wire_send(f->sv[0], unknown, sizeof(unknown) - 1,
					f->files, 1, &err), 0);
	before = count_open_fds();
	assert_int_equal(hpcn_recv_msg(f->sv[1], &r, got, &n, HPCN_MAX_MESSAGE_FDS, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_MALFORMED);
	assert_int_equal(n, 0);
	assert_int_equal(count_open_fds(), before);
	assert_int_equal(hpcn_recv_msg(f->sv[1], &r, got, &n, HPCN_MAX_MESSAGE_FDS, &err), -1);
	assert_int_equal(err.kind, HPCN_E_PROTO_UNKNOWN_TAG);
	assert_int_equal(r.seq, 77);
	assert_int_equal(n, 0);
	assert_int_equal(count_open_fds(), before);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_roundtrip_0),
		T(test_roundtrip_1),
		T(test_roundtrip_3),
		T(test_roundtrip_8),
		T(test_send_refuses_too_many),
		T(test_ctrunc),
		T(test_more_than_max),
		T(test_fds_where_none_expected),
		T(test_too_large),
		T(test_eof),
		T(test_empty_record),
		T(test_eagain),
		T(test_credentials_ignored),
		T(test_send_to_closed_peer),
		T(test_msg_roundtrip),
		T(test_msg_decode_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper end to end, clients that pipeline: a client that queues
 * many requests at once does not keep the helper from serving another client
 * until its queue is empty, and all its requests are answered, in order; one
 * that never reads its replies is dropped after one wait, not served on with
 * a wait per reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "helper_fixture.h"
#include "test_helper_load_util.h"

/* Counter "requests" of a Status body. */
static long long status_requests(json_t *status)
{
	json_t *n = json_object_get(json_object_get(status, "counters"), "requests");

	return json_is_integer(n) ? (long long)json_integer_value(n) : -1;
}

/* One Hello request, not waiting for its reply. */
static int send_hello(int sock, uint64_t seq, struct hpcn_error *err)
{
	struct hpcn_msg req;
	int rv;

	hpcn_msg_init(&req, HPCN_TAG_HELLO);
	req.seq = seq;
	req.u.hello.min_version = 1;
	req.u.hello.max_version = HPCN_PROTOCOL_VERSION;
	req.u.hello.software = strdup("pipelining");
	rv = hpcn_send_msg(sock, &req, NULL, 0, err);
	hpcn_msg_free(&req);
	return rv;
}

/* Queue n Hello requests (seq 1..n) on sock without waiting for any reply.
 * Non-blocking: a full send buffer fails the test instead of hanging it. */
static void queue_hellos(int sock, int n)
{
	int fl = fcntl(sock, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(sock, F_SETFL, fl | O_NONBLOCK), 0);
	for (int i = 0; i < n; i++) {
		struct hpcn_error err;

		if (send_hello(sock, (uint64_t)i + 1, &err) < 0)
			fail_msg("queueing request %d of %d: %s", i + 1, n, err.message);
	}
	assert_int_equal(fcntl(sock, F_SETFL, fl), 0);
}

/* Send a StatusRequest on a new connection (the helper may be stopped). */
static int send_status_request(struct hfx *fx)
{
	struct hpcn_msg req;
	struct hpcn_error err;
	int sock = hfx_connect(fx);

	assert_true(sock >= 0);
	hpcn_msg_init(&req, HPCN_TAG_STATUS_REQUEST);
	req.seq = 7;
	req.u.json = strdup("{}");
	assert_int_equal(hpcn_send_msg(sock, &req, NULL, 0, &err), 0);
	hpcn_msg_free(&req);
	return sock;
}

/* Wait for the Status answering send_status_request; its "requests" counter. */
static long long read_status_requests(int sock)
{
	struct pollfd pf = { .fd = sock, .events = POLLIN };
	struct hpcn_msg resp;
	struct hpcn_error err;
	int fds[HPCN_MAX_MESSAGE_FDS];
	size_t nfds = 0;
	json_t *body;
	long long n;

	if (poll(&pf, 1, HFX_TIMEOUT_MS) != 1)
		fail_msg("the other client got no status within %d ms", HFX_TIMEOUT_MS);
	assert_int_equal(hpcn_recv_msg(sock, &resp, fds, &nfds, HPCN_MAX_MESSAGE_FDS, &err), 1);
	assert_int_equal(resp.tag, HPCN_TAG_STATUS);
	body = json_loads(resp.u.json, 0, NULL);
	assert_non_null(body);
	n = status_requests(body);
	json_decref(body);
	hpcn_msg_free(&resp);
	return n;
}

/* Read Hello replies from sock until EOF or timeout_ms without one; they
 * must come in order from seq 1. Returns how many; *eof says if it ended. */
static int read_hellos(int sock, int timeout_ms, bool *eof)
{
	int n = 0;

	*eof = false;
	for (;;) {
		struct pollfd pf = { .fd = sock, .events = POLLIN };
		struct hpcn_msg resp;
		struct hpcn_error err;
		int fds[HPCN_MAX_MESSAGE_FDS];
		size_t nfds = 0;
		int r;

		if (poll(&pf, 1, timeout_ms) != 1)
			return n;
		r = hpcn_recv_msg(sock, &resp, fds, &nfds, HPCN_MAX_MESSAGE_FDS, &err);
		if (r == 0) {
			*eof = true;
			return n;
		}
		if (r < 0)
			fail_msg("after %d replies: %s", n, err.message);
		assert_int_equal(resp.tag, HPCN_TAG_HELLO);
		if (resp.seq != (uint64_t)n + 1)
			fail_msg("reply %d has seq %llu", n + 1, (unsigned long long)resp.seq);
		hpcn_msg_free(&resp);
		n++;
	}
}

/*
 * Client A queues N_PIPELINED Hello requests while the helper is stopped;
 * client B then connects and asks for the status. Once the helper runs again,
 * B must be answered before all of A's requests are (the helper reads at
 * most a batch from one client per turn; sockets are edge-triggered, so a
 * handler that stopped early must re-arm or A's rest would never be read),
 * and A must get every reply, in order.
 */
#define N_PIPELINED 120
static void test_pipelining_client_does_not_starve(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct hpcn_error err;
	json_t *before;
	long long r0, served_before_b;
	bool eof;
	int a, b;

	assert_int_equal(hfx_start(fx), 0);
	before = hfx_status(fx);
	assert_non_null(before);
	r0 = status_requests(before);
	json_decref(before);
	assert_true(r0 > 0);

	assert_int_equal(kill(fx->pid, SIGSTOP), 0);
	a = hfx_connect(fx);
	assert_true(a >= 0);
	queue_hellos(a, N_PIPELINED);
	b = send_status_request(fx);
	assert_int_equal(kill(fx->pid, SIGCONT), 0);

	/* requests counted since: A's answered so far, and B's own */
	served_before_b = read_status_requests(b) - r0 - 1;
	fprintf(stderr, "the other client was answered after %lld of %d queued requests\n",
		served_before_b, N_PIPELINED);
	if (served_before_b >= N_PIPELINED)
		fail_msg("the other client waited for all %d queued requests of one client",
			 N_PIPELINED);
	assert_int_equal(read_hellos(a, HFX_TIMEOUT_MS / 5, &eof), N_PIPELINED);
	assert_false(eof);
	close(a);
	close(b);
	assert_int_equal(status_call(fx, HFX_TIMEOUT_MS, &err), 0);
}

/*
 * A client that sends far more requests than the helper can queue replies
 * for, and reads none: once a reply cannot be sent (after the helper's one
 * wait for the client to read), the client is dropped, not served on with a
 * wait per reply. Another client is served meanwhile, and afterwards; the
 * dropped client finds the replies sent so far, in order, then the end of
 * the connection.
 */
#define N_FLOODED 2000
static void test_client_not_reading_is_dropped(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct hpcn_error err;
	struct timeval tv = { .tv_sec = 20 };
	int a, b, got, st;
	bool eof;
	pid_t sender;

	assert_int_equal(hfx_start(fx), 0);
	a = hfx_connect(fx);
	assert_true(a >= 0);
	assert_int_equal(setsockopt(a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	/* A child sends, blocking while the helper has not read; nobody reads. */
	sender = fork();
	assert_true(sender >= 0);
	if (sender == 0) {
		for (int i = 0; i < N_FLOODED; i++)
			if (send_hello(a, (uint64_t)i + 1, &err) < 0)
				_exit(err.sys_errno == EAGAIN ? 3 : 0); /* 3: send timed out */
		_exit(0);
	}
	hfx_sleep_ms(200);
	b = send_status_request(fx);
	assert_true(read_status_requests(b) > 0);
	close(b);

	/* The helper waits HPCN_SEND_TIMEOUT_MS (2 s) for one reply, then drops
	 * the client: the sender's next sends fail or it has sent them all. */
	st = hfx_wait_child(sender, 6 * HFX_TIMEOUT_MS);
	if (st < 0) {
		kill(sender, SIGKILL);
		waitpid(sender, NULL, 0);
		fail_msg("a client that does not read its replies was still sending after %d ms",
			 6 * HFX_TIMEOUT_MS);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		fail_msg("the helper stopped reading a client that does not read its replies "
			 "without dropping it (its send waited 20 s)");
	got = read_hellos(a, 3 * HFX_TIMEOUT_MS, &eof);
	fprintf(stderr, "the client that did not read got %d of %d replies, then %s\n", got,
		N_FLOODED, eof ? "the end of the connection" : "nothing");
	if (!eof)
		fail_msg("the helper kept the connection of a client that does not read "
			 "its replies (%d of %d replies came)", got, N_FLOODED);
	assert_true(got > 0);
	assert_true(got < N_FLOODED);
	close(a);
	assert_int_equal(status_call(fx, HFX_TIMEOUT_MS, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pipelining_client_does_not_starve, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_client_not_reading_is_dropped, setup,
						teardown),
	};

	if (load_main_prepare("test_helper_load_pipeline") != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NamespaceConsumer: the client side of the handoff socket. Callers (the
 * SPANK plugin inside slurmstepd, hpc-nodectl) must never hang on a dead
 * helper, so every blocking step is bounded by the caller's timeout, and on
 * every error path the descriptors received so far are closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hpcnode/client.h>
#include <hpcnode/wire.h>

/* Back-off while a listener's backlog is full (unix sockets report that as
 * EAGAIN on a non-blocking connect; there is nothing to poll on). */
#define CONNECT_RETRY_MS 10
/* Stale replies (other seq) skipped before we give up on a connection. */
#define MAX_STALE_REPLIES 16
/* The seq of our own requests: every call below uses a fresh connection. */
#define CLIENT_SEQ 1

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(long long deadline)
{
	long long d;

	if (deadline < 0)
		return -1;
	d = deadline - now_ms();
	if (d <= 0)
		return 0;
	return d > INT_MAX ? INT_MAX : (int)d;
}

static long long deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static int set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

int hpcn_client_connect(const char *socket_path, int timeout_ms,
			struct hpcn_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = deadline_of(timeout_ms);
	size_t len;
	int fd, r;

	if (!socket_path || !*socket_path)
		return hpcn_error_set(err, HPCN_E_NS_SOCKET_UNAVAILABLE,
				      "no socket path given", NULL);
	len = strlen(socket_path);
	if (len >= sizeof(sa.sun_path))
		return hpcn_error_setf(err, HPCN_E_NS_SOCKET_UNAVAILABLE, NULL,
				       "%s: path is too long (%zu bytes, at most %zu)",
				       socket_path, len, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, socket_path, len + 1);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_SOCKET_UNAVAILABLE, errno, NULL,
					    "%s: socket", socket_path);
	for (;;) {
		int t;

		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		if (r == 0 || errno == EINPROGRESS)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			hpcn_error_set_errno(err, HPCN_E_NS_SOCKET_UNAVAILABLE, errno, NULL,
					     "%s", socket_path);
			goto fail;
		}
		t = left_ms(deadline);
		if (t == 0) {
			hpcn_error_setf(err, HPCN_E_NS_SOCKET_UNAVAILABLE, NULL,
					"%s: connect timed out after %d ms (listener backlog full)",
					socket_path, timeout_ms);
			if (err)
				err->sys_errno = ETIMEDOUT;
			goto fail;
		}
		poll(NULL, 0, t < 0 || t > CONNECT_RETRY_MS ? CONNECT_RETRY_MS : t);
	}
	if (r < 0) {
		/* EINPROGRESS: not what AF_UNIX does today, handled anyway. */
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		do
			r = poll(&p, 1, left_ms(deadline));
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			hpcn_error_setf(err, HPCN_E_NS_SOCKET_UNAVAILABLE, NULL,
					"%s: connect timed out after %d ms",
					socket_path, timeout_ms);
			if (err)
				err->sys_errno = ETIMEDOUT;
			goto fail;
		}
		if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr) {
			hpcn_error_set_errno(err, HPCN_E_NS_SOCKET_UNAVAILABLE, soerr, NULL,
					     "%s", socket_path);
			goto fail;
		}
	}
	if (set_blocking(fd) < 0) {
		hpcn_error_set_errno(err, HPCN_E_NS_SOCKET_UNAVAILABLE, errno, NULL,
				     "%s: clearing O_NONBLOCK", socket_path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* The helper went away mid-exchange (EOF when errnum is 0). */
static int peer_gone(struct hpcn_error *err, int errnum, const char *what, uint64_t seq)
{
	hpcn_error_set_errno(err, HPCN_E_NS_SOCKET_UNAVAILABLE, errnum, NULL,
			     "the helper closed the connection before replying to %s (seq %llu)",
			     what, (unsigned long long)seq);
	if (err)
		err->sys_errno = errnum ? errnum : ECONNRESET;
	return -1;
}

/* Wire errors are passed on, except a vanished peer: for a consumer that is
 * an unavailable socket (its cue to fall back), not an FD passing problem. */
static int pass_error(struct hpcn_error *err, const struct hpcn_error *e,
		      const char *what, uint64_t seq)
{
	if (e->kind == HPCN_E_NS_FD_PASSING &&
	    (e->sys_errno == ECONNRESET || e->sys_errno == EPIPE || e->sys_errno == ENOTCONN))
		return peer_gone(err, e->sys_errno, what, seq);
	if (err)
		*err = *e;
	return -1;
}

/*
 * A helper that refuses a peer sends an Error (seq 0) at accept and closes.
 * Our send or receive then fails with EPIPE/ECONNRESET, with that Error still
 * queued: read it, so the caller learns "denied", not "unavailable" (which
 * would make a consumer fall back to its own namespaces).
 */
static int read_refusal(int sock, struct hpcn_error *err)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	int fds[HPCN_MAX_MESSAGE_FDS];
	struct hpcn_error e;
	struct hpcn_msg m;
	size_t nfds = 0;

	if (!err || err->kind != HPCN_E_NS_SOCKET_UNAVAILABLE ||
	    (err->sys_errno != EPIPE && err->sys_errno != ECONNRESET))
		return -1;
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN))
		return -1;
	memset(&m, 0, sizeof(m));
	if (hpcn_recv_msg(sock, &m, fds, &nfds, HPCN_MAX_MESSAGE_FDS, &e) == 1 &&
	    m.tag == HPCN_TAG_ERROR && m.seq == 0)
		hpcn_msg_error_to(&m, err);
	hpcn_close_fds(fds, nfds);
	hpcn_msg_free(&m);
	return -1;
}

int hpcn_client_call(int sock, const struct hpcn_msg *req,
		     const int *fds, size_t nfds,
		     struct hpcn_msg *resp, int *rfds, size_t *nrfds,
		     size_t maxrfds, int timeout_ms, struct hpcn_error *err)
{
	const char *what = req ? hpcn_tag_name(req->tag) : NULL;
	struct hpcn_error e;
	long long deadline;
	size_t got = 0;
	int stale = 0;

	memset(resp, 0, sizeof(*resp));
	if (nrfds)
		*nrfds = 0;
	if (!req)
		return hpcn_error_set(err, HPCN_E_INTERNAL,
				      "hpcn_client_call without a request", NULL);
	if (!what)
		what = "request";
	if (hpcn_send_msg(sock, req, fds, nfds, &e) < 0) {
		pass_error(err, &e, what, req->seq);
		return read_refusal(sock, err);
	}

	deadline = deadline_of(timeout_ms);
	for (;;) {
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int r;

		r = poll(&p, 1, left_ms(deadline));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return hpcn_error_set_errno(err, HPCN_E_NS_SOCKET_UNAVAILABLE, errno,
						    NULL, "waiting for the reply to %s", what);
		}
		if (r == 0) {
			hpcn_error_setf(err, HPCN_E_NS_SOCKET_UNAVAILABLE, NULL,
					"no reply to %s (seq %llu) within %d ms", what,
					(unsigned long long)req->seq, timeout_ms);
			if (err)
				err->sys_errno = ETIMEDOUT;
			return -1;
		}
		r = hpcn_recv_msg(sock, resp, rfds, &got, maxrfds, &e);
		if (r < 0) {
			pass_error(err, &e, what, req->seq);
			return read_refusal(sock, err);
		}
		if (r == 0)
			return peer_gone(err, 0, what, req->seq);
		/* An Error with seq 0 answers a request the helper could not
		 * read far enough to learn its seq: it is ours. Any other seq
		 * is a late reply to an earlier request on this connection. */
		if (resp->seq == req->seq || (resp->tag == HPCN_TAG_ERROR && resp->seq == 0))
			break;
		hpcn_close_fds(rfds, got);
		got = 0;
		hpcn_msg_free(resp);
		memset(resp, 0, sizeof(*resp));
		if (++stale > MAX_STALE_REPLIES)
			return hpcn_error_setf(err, HPCN_E_PROTO_MALFORMED, NULL,
					       "more than %d replies with a foreign seq "
					       "while waiting for %s (seq %llu)",
					       MAX_STALE_REPLIES, what,
					       (unsigned long long)req->seq);
	}
	if (resp->tag == HPCN_TAG_ERROR) {
		hpcn_msg_error_to(resp, err);
		hpcn_close_fds(rfds, got);
		hpcn_msg_free(resp);
		memset(resp, 0, sizeof(*resp));
		return -1;
	}
	if (nrfds)
		*nrfds = got;
	return 0;
}

/* Check that every FD is a namespace of the type its position claims: a
 * helper bug here would make the job setns into the wrong thing. */
static int check_ns_fds(const struct hpcn_namespace_response *r, const int *fds,
			struct hpcn_error *err)
{
	for (size_t i = 0; i < r->n_fd_types; i++) {
		const char *name = hpcn_ns_type_name(r->fd_types[i]);
		int want = hpcn_ns_type_clone_flag(r->fd_types[i]);
		int got = ioctl(fds[i], NS_GET_NSTYPE);

		if (!name)
			return hpcn_error_setf(err, HPCN_E_NS_FD_PASSING, NULL,
					       "fd_types[%zu] of allocation %s is invalid",
					       i, r->allocation_id);
		if (got < 0)
			return hpcn_error_set_errno(err, HPCN_E_NS_FD_PASSING, errno, NULL,
						    "descriptor %zu (%s) of allocation %s "
						    "is not a namespace",
						    i, name, r->allocation_id);
		if (got != want)
			return hpcn_error_setf(err, HPCN_E_NS_FD_PASSING, NULL,
					       "descriptor %zu of allocation %s is a "
					       "namespace of type %#x, not %s",
					       i, r->allocation_id, (unsigned)got, name);
	}
	return 0;
}

/* Outputs cleared (nothing open on any error), the request's own checks. */
static int request_prepare(const struct hpcn_namespace_request *req, size_t nreq_fds,
			   struct hpcn_namespace_response *resp, int ns_fds[HPCN_NS__COUNT],
			   struct hpcn_error *err)
{
	for (int i = 0; i < HPCN_NS__COUNT; i++)
		ns_fds[i] = -1;
	memset(resp, 0, sizeof(*resp));
	if (!req)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT,
				      "no namespace request given", NULL);
	if (hpcn_alloc_id_validate(req->allocation_id, err) < 0)
		return -1;
	if (nreq_fds > HPCN_MAX_MESSAGE_FDS)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "%zu descriptors for allocation %s exceed the limit of %d",
				       nreq_fds, req->allocation_id, HPCN_MAX_MESSAGE_FDS);
	return 0;
}

int hpcn_request_namespaces_on(int sock, int timeout_ms,
			       const struct hpcn_namespace_request *req,
			       const int *req_fds, size_t nreq_fds,
			       struct hpcn_namespace_response *resp,
			       int ns_fds[HPCN_NS__COUNT],
			       struct hpcn_error *err)
{
	struct hpcn_msg msg, reply;
	int rfds[HPCN_MAX_MESSAGE_FDS];
	size_t nr = 0;
	int rv = -1;

	memset(&reply, 0, sizeof(reply));
	for (size_t i = 0; i < HPCN_MAX_MESSAGE_FDS; i++)
		rfds[i] = -1;
	if (request_prepare(req, nreq_fds, resp, ns_fds, err) < 0)
		return -1;

	hpcn_msg_init(&msg, HPCN_TAG_NAMESPACE_REQUEST);
	msg.seq = CLIENT_SEQ;
	/* Borrowed: encoding only reads it, msg is never freed. */
	msg.u.ns_request = *req;
	if (hpcn_client_call(sock, &msg, req_fds, nreq_fds, &reply, rfds, &nr,
			     HPCN_MAX_MESSAGE_FDS, timeout_ms, err) < 0)
		goto out;
	if (reply.tag != HPCN_TAG_NAMESPACE_RESPONSE) {
		const char *t = hpcn_tag_name(reply.tag);

		hpcn_error_setf(err, HPCN_E_PROTO_MALFORMED, NULL,
				"expected NamespaceResponse for allocation %s, got %s",
				req->allocation_id, t ? t : "an unknown tag");
		goto out;
	}
	if (!reply.u.ns_response.allocation_id ||
	    strcmp(reply.u.ns_response.allocation_id, req->allocation_id) != 0) {
		hpcn_error_setf(err, HPCN_E_PROTO_MALFORMED, NULL,
				"NamespaceResponse for allocation %s answers allocation %s",
				req->allocation_id,
				reply.u.ns_response.allocation_id ?
				reply.u.ns_response.allocation_id : "(none)");
		goto out;
	}
	if (reply.u.ns_response.n_fd_types > HPCN_NS__COUNT ||
	    nr != reply.u.ns_response.n_fd_types) {
		hpcn_error_setf(err, HPCN_E_NS_FD_PASSING, NULL,
				"NamespaceResponse for allocation %s lists %zu "
				"fd_types but carried %zu descriptors; closed",
				req->allocation_id, reply.u.ns_response.n_fd_types, nr);
		goto out;
	}
	if (check_ns_fds(&reply.u.ns_response, rfds, err) < 0)
		goto out;
	/* Every namespace asked for, or the job would run without it unawares. */
	for (size_t i = 0; i < req->n_namespaces; i++) {
		bool got = false;

		for (size_t k = 0; k < reply.u.ns_response.n_fd_types; k++)
			got |= reply.u.ns_response.fd_types[k] == req->namespaces[i];
		if (!got) {
			hpcn_error_setf(err, HPCN_E_NS_FD_PASSING, NULL,
					"NamespaceResponse for allocation %s lacks the %s "
					"namespace that was asked for", req->allocation_id,
					hpcn_ns_type_name(req->namespaces[i]));
			goto out;
		}
	}

	for (size_t i = 0; i < nr; i++) {
		ns_fds[i] = rfds[i];
		rfds[i] = -1;
	}
	nr = 0;
	/* Move the response out: the caller owns its strings now. */
	*resp = reply.u.ns_response;
	memset(&reply, 0, sizeof(reply));
	rv = 0;
out:
	hpcn_close_fds(rfds, nr);
	hpcn_msg_free(&reply);
	return rv;
}

int hpcn_request_namespaces(const char *socket_path, int timeout_ms,
			    const struct hpcn_namespace_request *req,
			    const int *req_fds, size_t nreq_fds,
			    struct hpcn_namespace_response *resp,
			    int ns_fds[HPCN_NS__COUNT],
			    struct hpcn_error *err)
{
	int sock, rv;

	/* A bad request is refused before connecting. */
	if (request_prepare(req, nreq_fds, resp, ns_fds, err) < 0)
		return -1;
	sock = hpcn_client_connect(socket_path, timeout_ms, err);
	if (sock < 0)
		return -1;
	rv = hpcn_request_namespaces_on(sock, timeout_ms, req, req_fds, nreq_fds, resp, ns_fds,
					err);
	close(sock);
	return rv;
}

int hpcn_end_allocation(const char *socket_path, int timeout_ms,
			const char *allocation_id, const char *group,
			struct hpcn_error *err)
{
	struct hpcn_msg msg, reply;
	const char *who;
	int sock, rv = -1;

	memset(&reply, 0, sizeof(reply));
	if (!allocation_id && !group)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT,
				      "AllocationEnded needs an allocation id or a group",
				      NULL);
	if (allocation_id && hpcn_alloc_id_validate(allocation_id, err) < 0)
		return -1;
	if (group && hpcn_alloc_id_validate(group, NULL) < 0)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "group \"%.80s\" is not a valid name "
				       "([A-Za-z0-9._-]{1,64}, not . or ..)", group);
	who = allocation_id ? allocation_id : group;

	sock = hpcn_client_connect(socket_path, timeout_ms, err);
	if (sock < 0)
		return -1;
	hpcn_msg_init(&msg, HPCN_TAG_ALLOCATION_ENDED);
	msg.seq = CLIENT_SEQ;
	/* Borrowed, see hpcn_request_namespaces. */
	msg.u.ended.allocation_id = (char *)allocation_id;
	msg.u.ended.group = (char *)group;
	if (hpcn_client_call(sock, &msg, NULL, 0, &reply, NULL, NULL, 0, timeout_ms, err) < 0)
		goto out;
	if (reply.tag != HPCN_TAG_OK) {
		const char *t = hpcn_tag_name(reply.tag);

		hpcn_error_setf(err, HPCN_E_PROTO_MALFORMED, NULL,
				"expected Ok in reply to AllocationEnded for %s, got %s",
				who, t ? t : "an unknown tag");
		goto out;
	}
	rv = 0;
out:
	hpcn_msg_free(&reply);
	close(sock);
	return rv;
}

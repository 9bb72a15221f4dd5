/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One record per sendmsg/recvmsg on a SOCK_SEQPACKET unix socket, FDs as
 * SCM_RIGHTS. The receive side is written for a hostile peer: whatever the
 * control data holds, every descriptor that arrived is either handed to the
 * caller or closed before returning.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <hpcnode/constants.h>
#include <hpcnode/wire.h>

/*
 * Room for one more FD than we accept, so that a record with too many FDs is
 * reported as UnexpectedFds when it fits and as MSG_CTRUNC beyond that, plus
 * room for SCM_CREDENTIALS should the socket have SO_PASSCRED set.
 */
#define RECV_FDS_ROOM (HPCN_MAX_MESSAGE_FDS + 1)
#define CMSG_ROOM (CMSG_SPACE(sizeof(int) * RECV_FDS_ROOM) + \
		   CMSG_SPACE(sizeof(struct ucred)))
/* Bound on what any control buffer of CMSG_ROOM bytes can carry. */
#define MAX_ARRIVED (CMSG_ROOM / sizeof(int))

void hpcn_close_fds(int *fds, size_t n)
{
	if (!fds)
		return;
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

int hpcn_wire_send(int sock, const void *buf, size_t len,
		   const int *fds, size_t nfds, struct hpcn_error *err)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * HPCN_MAX_MESSAGE_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (!buf || len == 0)
		return hpcn_error_set(err, HPCN_E_NS_FD_PASSING,
				      "refusing to send an empty record", NULL);
	if (len > HPCN_MAX_MESSAGE_SIZE)
		return hpcn_error_setf(err, HPCN_E_PROTO_TOO_LARGE, NULL,
				       "record of %zu bytes exceeds the limit of %d bytes",
				       len, HPCN_MAX_MESSAGE_SIZE);
	if (nfds > HPCN_MAX_MESSAGE_FDS)
		return hpcn_error_setf(err, HPCN_E_NS_FD_PASSING, NULL,
				       "%zu descriptors exceed the limit of %d per record",
				       nfds, HPCN_MAX_MESSAGE_FDS);
	if (nfds > 0) {
		struct cmsghdr *c;

		if (!fds)
			return hpcn_error_setf(err, HPCN_E_NS_FD_PASSING, NULL,
					       "%zu descriptors announced but none given",
					       nfds);
		for (size_t i = 0; i < nfds; i++)
			if (fds[i] < 0)
				return hpcn_error_setf(err, HPCN_E_NS_FD_PASSING, NULL,
						       "descriptor %zu of %zu is invalid (%d)",
						       i, nfds, fds[i]);
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}

	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_FD_PASSING, errno, NULL,
					    "sendmsg of a %zu-byte record with %zu descriptors",
					    len, nfds);
	/* SEQPACKET records are atomic; a short count would be a kernel bug. */
	if ((size_t)n != len)
		return hpcn_error_setf(err, HPCN_E_NS_FD_PASSING, NULL,
				       "sendmsg sent %zd of %zu bytes", n, len);
	return 0;
}

/* Collect every SCM_RIGHTS descriptor of the control data into out (room for
 * MAX_ARRIVED). Other control messages (SCM_CREDENTIALS, ...) are skipped:
 * they hold no resources. */
static size_t collect_fds(struct msghdr *mh, int *out)
{
	size_t n = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		if (c->cmsg_len < CMSG_LEN(0))
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && n < MAX_ARRIVED; i++)
			memcpy(&out[n++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	return n;
}

/* A zero-length read is either a zero-length record or EOF; recvmsg does not
 * tell them apart on unix sockets. The peer's shutdown does: a peer that sent
 * an empty record and then hung up is simply treated as gone. */
static bool peer_hung_up(int sock)
{
	struct pollfd p = { .fd = sock, .events = POLLIN | POLLRDHUP };

	if (poll(&p, 1, 0) < 0)
		return true;
	return (p.revents & (POLLRDHUP | POLLHUP)) != 0;
}

ssize_t hpcn_wire_recv(int sock, void *buf, size_t cap,
		       int *fds, size_t *nfds, size_t maxfds,
		       struct hpcn_error *err)
{
	union {
		char buf[CMSG_ROOM];
		struct cmsghdr align;
	} ctl;
	int arrived[MAX_ARRIVED];
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	size_t narrived;
	ssize_t n;

	if (nfds)
		*nfds = 0;
	if (!buf || cap == 0)
		return hpcn_error_set(err, HPCN_E_INTERNAL,
				      "hpcn_wire_recv called without a buffer", NULL);
	if (maxfds > 0 && (!fds || !nfds))
		return hpcn_error_set(err, HPCN_E_INTERNAL,
				      "hpcn_wire_recv called without room for descriptors",
				      NULL);

	memset(&ctl, 0, sizeof(ctl));
	/* MSG_TRUNC makes recvmsg return the record's real length. */
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_FD_PASSING, errno, NULL,
					    "recvmsg on socket %d", sock);

	narrived = collect_fds(&mh, arrived);

	if (mh.msg_flags & MSG_CTRUNC) {
		hpcn_close_fds(arrived, narrived);
		return hpcn_error_setf(err, HPCN_E_NS_FD_PASSING, NULL,
				       "control data truncated (MSG_CTRUNC), "
				       "%zu descriptors closed",
				       narrived);
	}
	if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > cap ||
	    n > HPCN_MAX_MESSAGE_SIZE) {
		hpcn_close_fds(arrived, narrived);
		return hpcn_error_setf(err, HPCN_E_PROTO_TOO_LARGE, NULL,
				       "record of %zd bytes exceeds the limit of %zu bytes%s",
				       n, cap > HPCN_MAX_MESSAGE_SIZE ?
				       (size_t)HPCN_MAX_MESSAGE_SIZE : cap,
				       narrived ? ", its descriptors closed" : "");
	}
	if (n == 0) {
		if (narrived == 0 && peer_hung_up(sock))
			return 0;
		hpcn_close_fds(arrived, narrived);
		return hpcn_error_setf(err, HPCN_E_PROTO_MALFORMED, NULL,
				       "empty record (with %zu descriptors, closed)",
				       narrived);
	}
	if (narrived > maxfds) {
		hpcn_close_fds(arrived, narrived);
		return hpcn_error_setf(err, HPCN_E_PROTO_UNEXPECTED_FDS, NULL,
				       "record carried %zu%s descriptors, "
				       "at most %zu expected; all closed",
				       narrived, narrived >= RECV_FDS_ROOM ? " or more" : "",
				       maxfds);
	}
	if (narrived > 0)
		memcpy(fds, arrived, narrived * sizeof(int));
	if (nfds)
		*nfds = narrived;
	return n;
}

int hpcn_send_msg(int sock, const struct hpcn_msg *msg,
		  const int *fds, size_t nfds, struct hpcn_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	int rv;

	if (hpcn_msg_encode(msg, &buf, &len, err) < 0)
		return -1;
	rv = hpcn_wire_send(sock, buf, len, fds, nfds, err);
	free(buf);
	return rv;
}

int hpcn_recv_msg(int sock, struct hpcn_msg *msg,
		  int *fds, size_t *nfds, size_t maxfds,
		  struct hpcn_error *err)
{
	size_t cap = HPCN_MAX_MESSAGE_SIZE + 1;
	size_t got = 0;
	char *buf;
	ssize_t n;

	memset(msg, 0, sizeof(*msg));
	if (nfds)
		*nfds = 0;
	/* 64 KiB: on the heap, this runs inside slurmstepd threads too. */
	buf = malloc(cap);
	if (!buf)
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, ENOMEM, NULL,
					    "receive buffer of %zu bytes", cap);
	n = hpcn_wire_recv(sock, buf, cap, fds, &got, maxfds, err);
	if (n <= 0) {
		free(buf);
		return n == 0 ? 0 : -1;
	}
	if (hpcn_msg_decode(buf, (size_t)n, msg, err) < 0) {
		uint64_t seq = msg->seq;

		free(buf);
		hpcn_close_fds(fds, got);
		hpcn_msg_free(msg);
		memset(msg, 0, sizeof(*msg));
		msg->seq = seq;
		return -1;
	}
	free(buf);
	if (nfds)
		*nfds = got;
	return 1;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Records on a SOCK_SEQPACKET unix socket with SCM_RIGHTS FD passing.
 * Received FDs are always O_CLOEXEC. On any error every FD that arrived is
 * closed before returning: nothing leaks.
 */
#ifndef HPCNODE_WIRE_H
#define HPCNODE_WIRE_H

#include <stddef.h>
#include <sys/types.h>

#include <hpcnode/error.h>
#include <hpcnode/protocol.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Send one record with nfds FDs (nfds <= HPCN_MAX_MESSAGE_FDS). Retries EINTR;
 * MSG_NOSIGNAL. Returns 0, or -1 with NamespaceError FdPassing. */
int hpcn_wire_send(int sock, const void *buf, size_t len,
		   const int *fds, size_t nfds, struct hpcn_error *err);

/*
 * Receive one record into buf (cap bytes; pass HPCN_MAX_MESSAGE_SIZE + 1 to
 * detect oversized records) and up to maxfds FDs into fds (*nfds set).
 * Returns the record length (> 0), 0 on orderly EOF, -1 on error:
 * MSG_TRUNC -> ProtocolError TooLarge; MSG_CTRUNC -> FdPassing (FDs that
 * arrived closed); more FDs than maxfds, or FDs with maxfds == 0 -> ProtocolError
 * UnexpectedFds (closed); empty record -> Malformed; other errno -> FdPassing.
 * EAGAIN on a non-blocking socket: -1 with err->sys_errno == EAGAIN.
 */
ssize_t hpcn_wire_recv(int sock, void *buf, size_t cap,
		       int *fds, size_t *nfds, size_t maxfds,
		       struct hpcn_error *err);

/* Encode + send. */
int hpcn_send_msg(int sock, const struct hpcn_msg *msg,
		  const int *fds, size_t nfds, struct hpcn_error *err);
/* Receive + decode. Returns 1 with a message, 0 on EOF, -1 on error (FDs
 * closed, msg zeroed; msg->seq is kept when the envelope had one). */
int hpcn_recv_msg(int sock, struct hpcn_msg *msg,
		  int *fds, size_t *nfds, size_t maxfds,
		  struct hpcn_error *err);

/* Close n FDs (skipping negative ones) and set them to -1. */
void hpcn_close_fds(int *fds, size_t n);

#ifdef __cplusplus
}
#endif
#endif

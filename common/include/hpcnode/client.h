/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The consumer side of the handoff (crate: NamespaceConsumer), shared by the
 * SPANK plugin, hpc-nodectl and any other node agent.
 */
#ifndef HPCNODE_CLIENT_H
#define HPCNODE_CLIENT_H

#include <stddef.h>

#include <hpcnode/error.h>
#include <hpcnode/protocol.h>
#include <hpcnode/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Connect to the helper's SOCK_SEQPACKET socket within timeout_ms (lattice's
 * convention is HPCN_CONNECT_TIMEOUT_MS). Returns a blocking, O_CLOEXEC fd,
 * or -1 with NamespaceError SocketUnavailable naming the path and cause. */
int hpcn_client_connect(const char *socket_path, int timeout_ms,
			struct hpcn_error *err);

/*
 * One request/response exchange on a connected socket: sends req (+ fds),
 * waits at most timeout_ms (-1: forever) for the reply with the same seq,
 * receives it into *resp (+ up to maxrfds FDs into rfds, *nrfds set).
 * A reply of tag Error is turned into -1 with err filled from it (family,
 * variant, message as the helper sent them). Returns 0 on success.
 */
int hpcn_client_call(int sock, const struct hpcn_msg *req,
		     const int *fds, size_t nfds,
		     struct hpcn_msg *resp, int *rfds, size_t *nrfds,
		     size_t maxrfds, int timeout_ms, struct hpcn_error *err);

/*
 * NamespaceConsumer::request_namespaces: connect, send the request (with
 * nreq_fds FDs referenced by index from the request), receive the response
 * and one FD per fd_types entry into ns_fds[HPCN_NS__COUNT] (unused slots
 * -1, indexed by position in fd_types). On error nothing is left open.
 */
int hpcn_request_namespaces(const char *socket_path, int timeout_ms,
			    const struct hpcn_namespace_request *req,
			    const int *req_fds, size_t nreq_fds,
			    struct hpcn_namespace_response *resp,
			    int ns_fds[HPCN_NS__COUNT],
			    struct hpcn_error *err);

/*
 * The same on a socket already connected with hpcn_client_connect (which is
 * left open, the caller closes it), the reply awaited for timeout_ms. Lets a
 * caller tell "the helper cannot be reached" (the connect failed: nothing
 * was asked) from "the request failed or timed out" (the helper may have
 * acted on it), and bound the two waits apart.
 */
int hpcn_request_namespaces_on(int sock, int timeout_ms,
			       const struct hpcn_namespace_request *req,
			       const int *req_fds, size_t nreq_fds,
			       struct hpcn_namespace_response *resp,
			       int ns_fds[HPCN_NS__COUNT],
			       struct hpcn_error *err);

/* Send AllocationEnded for an allocation (or a whole group when
 * allocation_id is NULL and group is set). */
int hpcn_end_allocation(const char *socket_path, int timeout_ms,
			const char *allocation_id, const char *group,
			struct hpcn_error *err);

#ifdef __cplusplus
}
#endif
#endif

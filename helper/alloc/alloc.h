/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The allocation lifecycle, alloc/'s interface: the request handlers the
 * server dispatches to, the end of an allocation, reconstruction after a
 * restart (WI6) and the reconciliation (F30, F35, WI2, WI5).
 */
#ifndef HPCN_HELPER_ALLOC_H
#define HPCN_HELPER_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <hpcnode/hpcnode.h>

#include "audit/audit.h"
#include "daemon.h"

/*
 * The client a request came from, as the handlers see it. The server owns
 * the connection and embeds this in it, so alloc/ answers without knowing
 * what a connection is (and does not depend on server/). An allocation
 * remembers the client that made it (a->conn) while it is connected: an
 * identity, compared but never used after hpcn_allocs_conn_closed().
 */
struct hpcn_client {
	struct hpcn_audit_ctx peer;      /* SO_PEERCRED */
	/* Reply on the connection. A failure (the client gone, or not reading
	 * within 2 s) marks it dead: it is closed once the request being
	 * handled is done. 0 or -1. */
	int (*reply)(struct hpcn_client *c, const struct hpcn_msg *msg, const int *fds,
		     size_t nfds);
	int (*reply_error)(struct hpcn_client *c, uint64_t seq, const struct hpcn_error *err);
};

/* The handlers, each answers on c itself. fds are the request's FDs (the
 * handler owns them and closes them). */
void hpcn_handle_namespace_request(struct hpcn_helper *h, struct hpcn_client *c,
				   struct hpcn_msg *req, int *fds, size_t nfds);
void hpcn_handle_allocation_ended(struct hpcn_helper *h, struct hpcn_client *c,
				  struct hpcn_msg *req);
void hpcn_handle_attach(struct hpcn_helper *h, struct hpcn_client *c, struct hpcn_msg *req,
			int *fds, size_t nfds);
void hpcn_handle_metrics(struct hpcn_helper *h, struct hpcn_client *c, struct hpcn_msg *req);
/* The client that created allocations is gone (WI5 may end them now). */
void hpcn_allocs_conn_closed(struct hpcn_helper *h, const struct hpcn_client *c);
/* After a (re)start: rebuild runtime state of every registered allocation,
 * remove leftovers of allocations that never finished being created. */
int hpcn_allocs_reconstruct(struct hpcn_helper *h, struct hpcn_error *err);
/* Periodic and on-demand reconciliation; report (may be NULL) collects what
 * was corrected, as JSON strings. */
void hpcn_allocs_reconcile(struct hpcn_helper *h, json_t *report);
/* End an allocation: release everything it holds, kill its scope. 0 when
 * done; 1 when its scope's processes are still dying (the end completes by
 * itself, state "ending"); -1 with *err (a scope that would not die within
 * kill_timeout is a zombie, retried by the reconciliation). */
int hpcn_alloc_end(struct hpcn_helper *h, struct hpcn_alloc *a,
		   const struct hpcn_audit_ctx *who, struct hpcn_error *err);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The helper's service side: accepting clients (peer authentication, the
 * connection limit, descriptors running out), reading their requests,
 * dispatching them and sending the replies. The daemon around it (socket,
 * start, readiness, signals, timers) is daemon.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "server_internal.h"
#include "uenv/uenv.h"

/* A client that does not read its reply for this long is dropped. */
#define HPCN_SEND_TIMEOUT_MS 2000
/* Out of descriptors, accepting pauses this long (or until a client leaves). */
#define HPCN_ACCEPT_PAUSE_MS 100
/* ... and says so at most this often. */
#define HPCN_ACCEPT_WARN_INTERVAL_MS 10000
/* How much one dispatch does before it re-arms and lets the others in
 * (HPCN_IO_EVENTS). */
#define HPCN_REQUESTS_PER_DISPATCH 16
#define HPCN_ACCEPTS_PER_DISPATCH 64

static void conn_free(struct hpcn_conn *c)
{
	struct hpcn_helper *h = c->h;

	for (struct hpcn_conn **p = &h->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	h->n_conns--;
	/* A descriptor is free again: accept the clients waiting for one now. */
	if (h->accept_resume)
		sd_event_source_set_time_relative(h->accept_resume, 0);
	hpcn_allocs_conn_closed(h, &c->client);
	sd_event_source_disable_unref(c->src);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* Reply on a connection. A failure (the client gone, or not reading within
 * HPCN_SEND_TIMEOUT_MS) marks it dead: it is closed once the request being
 * handled is done. */
static int conn_reply(struct hpcn_conn *c, const struct hpcn_msg *msg,
		      const int *fds, size_t nfds)
{
	struct hpcn_error err;
	char *buf = NULL;
	size_t len;
	int rv = -1;

	if (hpcn_msg_encode(msg, &buf, &len, &err) < 0) {
		hpcn_log_error("cannot encode a %s reply: %s", hpcn_tag_name(msg->tag), err.message);
		return -1;
	}
	for (int tries = 0; tries < 2; tries++) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };

		if (hpcn_wire_send(c->fd, buf, len, fds, nfds, &err) == 0) {
			rv = 0;
			break;
		}
		if (err.sys_errno != EAGAIN && err.sys_errno != ENOBUFS)
			break;
		/* The client's receive queue is full: give it a moment, once. */
		if (poll(&p, 1, HPCN_SEND_TIMEOUT_MS) <= 0)
			break;
	}
	free(buf);
	if (rv < 0) {
		hpcn_log_warning("reply to pid %d failed (%s): dropping the connection",
				 (int)c->client.peer.pid, err.message);
		/* Closed once the request is handled: a client that does not
		 * read its replies costs the others one wait, not one each. */
		c->dead = true;
	}
	return rv;
}

static int conn_reply_error(struct hpcn_conn *c, uint64_t seq, const struct hpcn_error *err)
{
	struct hpcn_msg m;
	int rv;

	c->h->counters.errors++;
	if (hpcn_msg_error_from(&m, seq, err) < 0)
		return -1;
	rv = conn_reply(c, &m, NULL, 0);
	hpcn_msg_free(&m);
	return rv;
}

/* The handlers' side of a connection (struct hpcn_client): they answer
 * through these and never see the connection itself. */
static struct hpcn_conn *conn_of(struct hpcn_client *cl)
{
	return (struct hpcn_conn *)((char *)cl - offsetof(struct hpcn_conn, client));
}

static int client_reply(struct hpcn_client *cl, const struct hpcn_msg *msg, const int *fds,
			size_t nfds)
{
	return conn_reply(conn_of(cl), msg, fds, nfds);
}

static int client_reply_error(struct hpcn_client *cl, uint64_t seq, const struct hpcn_error *err)
{
	return conn_reply_error(conn_of(cl), seq, err);
}

static void reply_ok(struct hpcn_conn *c, uint64_t seq, json_t *body)
{
	struct hpcn_msg m;

	hpcn_msg_init(&m, HPCN_TAG_OK);
	m.seq = seq;
	if (body)
		m.u.json = json_dumps(body, JSON_COMPACT);
	conn_reply(c, &m, NULL, 0);
	hpcn_msg_free(&m);
}

static void reply_json(struct hpcn_conn *c, uint64_t seq, enum hpcn_tag tag, json_t *body)
{
	struct hpcn_msg m;

	hpcn_msg_init(&m, tag);
	m.seq = seq;
	m.u.json = json_dumps(body, JSON_COMPACT);
	conn_reply(c, &m, NULL, 0);
	hpcn_msg_free(&m);
}

static bool peer_is_root(const struct hpcn_conn *c)
{
	return c->client.peer.uid == 0;
}

static void dispatch(struct hpcn_helper *h, struct hpcn_conn *c, struct hpcn_msg *msg,
		     int *fds, size_t nfds)
{
	struct hpcn_error err;
	json_t *body;

	h->counters.requests++;
	/* docs/protocol.md: FDs on a tag that takes none are refused, not
	 * silently dropped. */
	if (nfds > 0 && msg->tag != HPCN_TAG_NAMESPACE_REQUEST && msg->tag != HPCN_TAG_ATTACH) {
		hpcn_close_fds(fds, nfds);
		hpcn_error_setf(&err, HPCN_E_PROTO_UNEXPECTED_FDS, NULL,
				"%zu descriptor(s) sent with %s, which takes none", nfds,
				hpcn_tag_name(msg->tag));
		conn_reply_error(c, msg->seq, &err);
		return;
	}
	switch (msg->tag) {
	case HPCN_TAG_HELLO: {
		struct hpcn_msg r;

		hpcn_msg_init(&r, HPCN_TAG_HELLO);
		r.seq = msg->seq;
		r.u.hello.min_version = 1;
		r.u.hello.max_version = HPCN_PROTOCOL_VERSION;
		r.u.hello.software = strdup("hpc-node-helper " HPCN_VERSION_STRING);
		conn_reply(c, &r, NULL, 0);
		hpcn_msg_free(&r);
		break;
	}
	case HPCN_TAG_NAMESPACE_REQUEST:
		hpcn_handle_namespace_request(h, &c->client, msg, fds, nfds);
		return; /* the handler owns the FDs */
	case HPCN_TAG_ALLOCATION_ENDED:
		hpcn_handle_allocation_ended(h, &c->client, msg);
		break;
	case HPCN_TAG_ATTACH:
		hpcn_handle_attach(h, &c->client, msg, fds, nfds);
		return;
	case HPCN_TAG_METRICS_REQUEST:
		hpcn_handle_metrics(h, &c->client, msg);
		break;
	case HPCN_TAG_STATUS_REQUEST:
		body = hpcn_status_json(h);
		reply_json(c, msg->seq, HPCN_TAG_STATUS, body);
		json_decref(body);
		break;
	case HPCN_TAG_RECONCILE:
		if (!peer_is_root(c)) {
			hpcn_error_set(&err, HPCN_E_DENIED, "Reconcile is for root only", NULL);
			h->counters.denied++;
			conn_reply_error(c, msg->seq, &err);
			break;
		}
		body = json_object();
		json_object_set_new(body, "corrections", json_array());
		hpcn_allocs_reconcile(h, json_object_get(body, "corrections"));
		reply_json(c, msg->seq, HPCN_TAG_STATUS, body);
		json_decref(body);
		break;
	case HPCN_TAG_FORCE_UNMOUNT:
		/* Emergency only (the contract's RI3): running jobs lose the image. */
		if (!peer_is_root(c) || !msg->u.force_unmount.emergency) {
			hpcn_error_set(&err, HPCN_E_DENIED, !peer_is_root(c) ?
				       "ForceUnmount is for root only" :
				       "ForceUnmount needs emergency: true", NULL);
			h->counters.denied++;
			hpcn_audit(HPCN_AUDIT_MOUNT_FORCE_UNMOUNT, HPCN_AUDIT_DENIED, &c->client.peer, NULL,
				   "%s: %s", msg->u.force_unmount.image_path, err.message);
			conn_reply_error(c, msg->seq, &err);
			break;
		}
		if (hpcn_uenv_force_unmount(h, msg->u.force_unmount.image_path, &c->client.peer, &err) < 0)
			conn_reply_error(c, msg->seq, &err);
		else
			reply_ok(c, msg->seq, NULL);
		break;
	default:
		/* A reply tag (NamespaceResponse, Ok, Status...) sent as a request. */
		hpcn_error_setf(&err, HPCN_E_INVALID_ARGUMENT, NULL,
				"%s is a reply, not a request", hpcn_tag_name(msg->tag));
		conn_reply_error(c, msg->seq, &err);
		break;
	}
	hpcn_close_fds(fds, nfds);
}

static int on_conn(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct hpcn_conn *c = userdata;

	/* Read until EAGAIN (the source is edge-triggered): each record is
	 * one request. */
	for (int n = 0;; n++) {
		int fds[HPCN_MAX_MESSAGE_FDS];
		size_t nfds = 0;
		struct hpcn_error err;
		struct hpcn_msg msg;
		int r;

		if (n == HPCN_REQUESTS_PER_DISPATCH) {
			/* A client that keeps its queue full must not starve the
			 * others: re-arm (reported again if still readable). */
			if (sd_event_source_set_io_events(s, HPCN_IO_EVENTS) < 0)
				goto closed;
			return 0;
		}
		memset(&msg, 0, sizeof(msg));
		r = hpcn_recv_msg(c->fd, &msg, fds, &nfds, HPCN_MAX_MESSAGE_FDS, &err);
		if (r == 0)
			goto closed;
		if (r < 0) {
			if (err.sys_errno == EAGAIN)
				return 0;
			if (err.kind == HPCN_E_NS_FD_PASSING && err.sys_errno &&
			    err.sys_errno != EMSGSIZE) {
				/* the socket itself failed (ECONNRESET...) */
				goto closed;
			}
			hpcn_log_info("bad request from pid %d uid %u: %s", (int)c->client.peer.pid,
				      (unsigned)c->client.peer.uid, err.message);
			if (conn_reply_error(c, msg.seq, &err) < 0)
				goto closed;
			hpcn_msg_free(&msg);
			continue;
		}
		dispatch(c->h, c, &msg, fds, nfds);
		hpcn_msg_free(&msg);
		if (c->dead)
			goto closed;
	}
closed:
	conn_free(c);
	return 0;
}

static bool pause_accepting(struct hpcn_helper *h, sd_event_source *s, int e);

static int on_accept_resume(sd_event_source *s, uint64_t usec, void *userdata)
{
	sd_event_source *listen_src = userdata;
	struct hpcn_helper *h = sd_event_source_get_userdata(listen_src);
	int r;

	h->accept_resume = sd_event_source_disable_unref(h->accept_resume);
	r = sd_event_source_set_enabled(listen_src, SD_EVENT_ON);
	if (r < 0)
		pause_accepting(h, listen_src, -r); /* try again later */
	return 0;
}

/*
 * accept(2) failed for want of descriptors or memory: the pending
 * connection stays in the backlog and the socket stays readable, so going
 * on would spin (and log) until a descriptor frees up. Pause accepting
 * instead; the waiting clients are served once a descriptor is free.
 * Returns false when it could not pause (the caller must re-arm).
 */
static bool pause_accepting(struct hpcn_helper *h, sd_event_source *s, int e)
{
	uint64_t now = hpcn_now_ms();

	if (!h->accept_resume) {
		if (!h->accept_warned_ms ||
		    now - h->accept_warned_ms >= HPCN_ACCEPT_WARN_INTERVAL_MS) {
			h->accept_warned_ms = now;
			hpcn_log_warning("accept on %s: %s with %zu client(s) connected; new "
					 "clients wait until one leaves", h->cfg.socket_path,
					 strerror(e), h->n_conns);
		}
		if (sd_event_add_time_relative(h->event, &h->accept_resume, CLOCK_MONOTONIC,
					       HPCN_ACCEPT_PAUSE_MS * 1000ULL, 0,
					       on_accept_resume, s) < 0) {
			h->accept_resume = NULL;
			return false;
		}
	}
	/* Off until the timer (or a leaving client) turns it on again, which
	 * re-adds it to epoll: the clients waiting then are seen at once. */
	sd_event_source_set_enabled(s, SD_EVENT_OFF);
	return true;
}

/* Ask epoll to report the listener again if clients are still waiting
 * (edge-triggered: nothing else would); failing that, come back after a
 * pause rather than leave them in the backlog until the next connect. */
static void rearm_listener(struct hpcn_helper *h, sd_event_source *s)
{
	int r = sd_event_source_set_io_events(s, HPCN_IO_EVENTS);

	if (r < 0 && !pause_accepting(h, s, -r))
		hpcn_log_error("accept on %s: cannot watch the socket again (%s); waiting "
			       "clients are served when the next one connects",
			       h->cfg.socket_path, strerror(-r));
}

int hpcn_server_on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct hpcn_helper *h = userdata;

	/* Accept until EAGAIN (edge-triggered), at most a batch at a time. */
	for (int n = 0;; n++) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct hpcn_conn *c;
		int cfd;

		if (n == HPCN_ACCEPTS_PER_DISPATCH) {
			rearm_listener(h, s);
			return 0;
		}
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EAGAIN)
				return 0;
			/* One connection's trouble (a security module's refusal
			 * included): the next may be fine. */
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
			    errno == EPERM)
				continue;
			if ((errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			     errno == ENOMEM) && pause_accepting(h, s, errno))
				return 0;
			hpcn_log_warning("accept on %s: %s", h->cfg.socket_path,
					 strerror(errno));
			rearm_listener(h, s);
			return 0;
		}
		if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			hpcn_log_warning("SO_PEERCRED: %s", strerror(errno));
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		c->h = h;
		c->fd = cfd;
		c->client.peer.uid = cred.uid;
		c->client.peer.gid = cred.gid;
		c->client.peer.pid = cred.pid;
		c->client.reply = client_reply;
		c->client.reply_error = client_reply_error;
		if (!hpcn_config_peer_allowed(&h->cfg, cred.uid, cred.gid) ||
		    h->n_conns >= HPCN_MAX_CONNECTIONS) {
			struct hpcn_error err;
			bool full = h->n_conns >= HPCN_MAX_CONNECTIONS;

			if (full)
				hpcn_error_setf(&err, HPCN_E_BUSY, NULL,
						"too many clients (%d)", HPCN_MAX_CONNECTIONS);
			else
				hpcn_error_setf(&err, HPCN_E_DENIED, NULL,
						"uid %u gid %u may not use %s (see [access] in %s)",
						(unsigned)cred.uid, (unsigned)cred.gid,
						h->cfg.socket_path,
						h->cfg.config_path[0] ? h->cfg.config_path
								      : HPCN_HELPER_CONFIG_PATH);
			if (!full) {
				h->counters.denied++;
				hpcn_log_warning("refused a client: pid %d: %s", (int)cred.pid,
						 err.message);
				/* A refused peer is a security event: audit it too. */
				hpcn_audit(HPCN_AUDIT_NAMESPACE_HANDOFF_FAILED, HPCN_AUDIT_DENIED,
					   &c->client.peer, NULL, "connection refused: %s", err.message);
			}
			conn_reply_error(c, 0, &err);
			close(cfd);
			free(c);
			continue;
		}
		if (sd_event_add_io(h->event, &c->src, cfd, HPCN_IO_EVENTS, on_conn, c) < 0) {
			close(cfd);
			free(c);
			continue;
		}
		c->next = h->conns;
		h->conns = c;
		h->n_conns++;
		h->counters.connections++;
	}
}

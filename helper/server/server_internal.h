/* SPDX-License-Identifier: Apache-2.0 */
/* server/'s own: a connection, its replies, accepting, the Status body. */
#ifndef HPCN_HELPER_SERVER_INTERNAL_H
#define HPCN_HELPER_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/epoll.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "alloc/alloc.h"
#include "server.h"

/* Bound on simultaneous clients: each costs an fd and a few hundred bytes. */
#define HPCN_MAX_CONNECTIONS 4096

/*
 * Sockets are watched edge-triggered. sd-event calls epoll_wait before every
 * dispatch, and a level-triggered socket that is ready is polled again and
 * returned by each of those calls until it is read: with K clients waiting,
 * every request cost K polls (the handoff's throughput fell as clients were
 * added, docs/benchmarks.md). Edge-triggered, each readiness is reported once,
 * so a handler must read until EAGAIN or re-arm (HPCN_REQUESTS_PER_DISPATCH,
 * HPCN_ACCEPTS_PER_DISPATCH in server.c bound how much one dispatch does).
 */
#define HPCN_IO_EVENTS (EPOLLIN | EPOLLET)

struct hpcn_conn {
	struct hpcn_client client;       /* what the handlers see: peer, reply */
	struct hpcn_helper *h;
	int fd;
	sd_event_source *src;
	bool dead;                       /* a reply failed: closed after this request */
	struct hpcn_conn *next;
};

/* The listening socket is readable: accept what waits (daemon.c arms it). */
int hpcn_server_on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* status.c */
json_t *hpcn_status_json(struct hpcn_helper *h);

#endif

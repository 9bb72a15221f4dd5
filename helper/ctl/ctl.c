/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-nodectl: the administrator's view of hpc-node-helper. One request per
 * run over the helper's socket, with libhpcnode's client calls (the same
 * ones the SPANK plugin uses), so what works here works there. Parsing and
 * formatting live in ctl_args.c / ctl_format.c; this file only talks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <hpcnode/hpcnode.h>

#include "ctl_format.h"

static int fail(const struct hpcn_error *err, bool connecting)
{
	fprintf(stderr, HPCN_CTL_NAME ": %s\n",
		err->message[0] ? err->message : "unknown error");
	return hpcn_ctl_exit_code(err, connecting);
}

static int oom(void)
{
	fprintf(stderr, HPCN_CTL_NAME ": out of memory\n");
	return HPCN_CTL_EXIT_ERROR;
}

/* What each command sends. */
static int build_request(const struct hpcn_ctl_args *a, struct hpcn_msg *req)
{
	switch (a->cmd) {
	case HPCN_CTL_CMD_STATUS:
		hpcn_msg_init(req, HPCN_TAG_STATUS_REQUEST);
		req->u.json = strdup("{}");
		return req->u.json ? 0 : -1;
	case HPCN_CTL_CMD_RECONCILE:
		hpcn_msg_init(req, HPCN_TAG_RECONCILE);
		req->u.json = strdup("{}");
		return req->u.json ? 0 : -1;
	case HPCN_CTL_CMD_METRICS:
		hpcn_msg_init(req, HPCN_TAG_METRICS_REQUEST);
		req->u.metrics_request.path = strdup(a->target);
		return req->u.metrics_request.path ? 0 : -1;
	case HPCN_CTL_CMD_END:
	case HPCN_CTL_CMD_RELEASE:
		/* The contract has no separate release message: the provider's
		 * release_namespaces is what AllocationEnded drives. */
		hpcn_msg_init(req, HPCN_TAG_ALLOCATION_ENDED);
		if (a->target && !(req->u.ended.allocation_id = strdup(a->target)))
			return -1;
		if (a->group && !(req->u.ended.group = strdup(a->group)))
			return -1;
		return 0;
	case HPCN_CTL_CMD_FORCE_UNMOUNT:
		hpcn_msg_init(req, HPCN_TAG_FORCE_UNMOUNT);
		req->u.force_unmount.emergency = a->emergency;
		req->u.force_unmount.image_path = strdup(a->target);
		return req->u.force_unmount.image_path ? 0 : -1;
	case HPCN_CTL_CMD_PING:
		hpcn_msg_init(req, HPCN_TAG_HELLO);
		req->u.hello.min_version = 1;
		req->u.hello.max_version = HPCN_PROTOCOL_VERSION;
		req->u.hello.software = strdup(HPCN_CTL_NAME " " HPCN_VERSION_STRING);
		return req->u.hello.software ? 0 : -1;
	default:
		errno = EINVAL;
		return -1;
	}
}

static enum hpcn_tag expected_reply(enum hpcn_ctl_cmd cmd)
{
	switch (cmd) {
	case HPCN_CTL_CMD_STATUS:
	case HPCN_CTL_CMD_RECONCILE:
		return HPCN_TAG_STATUS;
	case HPCN_CTL_CMD_METRICS:
		return HPCN_TAG_CGROUP_METRICS;
	case HPCN_CTL_CMD_PING:
		return HPCN_TAG_HELLO;
	default:
		return HPCN_TAG_OK;
	}
}

static int print_hello(const struct hpcn_ctl_args *a, const struct hpcn_hello *h,
		       struct hpcn_error *err)
{
	json_t *o;
	int r;

	if (!a->json) {
		printf("%s, protocol versions %u..%u\n", h->software ? h->software : "-",
		       h->min_version, h->max_version);
		return 0;
	}
	o = json_pack("{s:s?, s:I, s:I}", "software", h->software,
		      "min_version", (json_int_t)h->min_version,
		      "max_version", (json_int_t)h->max_version);
	if (!o)
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, ENOMEM, NULL, "building JSON");
	r = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	fputc('\n', stdout);
	return r < 0 ? hpcn_error_set_errno(err, HPCN_E_INTERNAL, EIO, NULL, "writing JSON") : 0;
}

/* The ids of an Ok body's "ending": ended, their processes still dying. */
static void print_still_dying(const struct hpcn_msg *resp)
{
	json_t *body = resp->u.json ? json_loads(resp->u.json, 0, NULL) : NULL;
	json_t *ending = json_object_get(body, "ending"), *id;
	size_t i;

	json_array_foreach(ending, i, id)
		if (json_is_string(id))
			printf("Allocation %s: its processes are still dying; it leaves the "
			       "status once they are gone (see hpc-nodectl status).\n",
			       json_string_value(id));
	json_decref(body);
}

/* Success of a command the helper answers with Ok. */
static int print_ok(const struct hpcn_ctl_args *a, const struct hpcn_msg *resp,
		    struct hpcn_error *err)
{
	if (a->json)
		return hpcn_ctl_format_json(stdout, resp->u.json ? resp->u.json : "{}", err);
	switch (a->cmd) {
	case HPCN_CTL_CMD_END:
		if (a->group)
			printf("Allocations of group %s ended.\n", a->group);
		else
			printf("Allocation %s ended.\n", a->target);
		print_still_dying(resp);
		break;
	case HPCN_CTL_CMD_RELEASE:
		printf("Allocation %s ended: its namespaces and mounts are released.\n",
		       a->target);
		break;
	case HPCN_CTL_CMD_FORCE_UNMOUNT:
		printf("Image %s force-unmounted.\n", a->target);
		break;
	default:
		break;
	}
	return 0;
}

static int print_reply(const struct hpcn_ctl_args *a, const struct hpcn_msg *resp,
		       struct hpcn_error *err)
{
	switch (a->cmd) {
	case HPCN_CTL_CMD_STATUS:
		return a->json ? hpcn_ctl_format_json(stdout, resp->u.json, err) :
				 hpcn_ctl_format_status(stdout, resp->u.json, err);
	case HPCN_CTL_CMD_RECONCILE:
		return a->json ? hpcn_ctl_format_json(stdout, resp->u.json, err) :
				 hpcn_ctl_format_reconcile(stdout, resp->u.json, err);
	case HPCN_CTL_CMD_METRICS:
		if (a->json)
			return hpcn_ctl_format_metrics_json(stdout, &resp->u.metrics, err);
		hpcn_ctl_format_metrics(stdout, a->target, &resp->u.metrics);
		return 0;
	case HPCN_CTL_CMD_PING:
		return print_hello(a, &resp->u.hello, err);
	default:
		return print_ok(a, resp, err);
	}
}

static int run(const struct hpcn_ctl_args *a)
{
	struct hpcn_msg req, resp;
	struct hpcn_error err;
	size_t nrfds = 0;
	int sock = -1, rv;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	hpcn_error_clear(&err);

	if (build_request(a, &req) < 0) {
		hpcn_msg_free(&req);
		return oom();
	}
	req.seq = 1;

	sock = hpcn_client_connect(a->socket_path, a->timeout_ms, &err);
	if (sock < 0) {
		rv = fail(&err, true);
		goto out;
	}
	/* No reply of ours carries FDs: maxrfds 0 turns any into an error. */
	if (hpcn_client_call(sock, &req, NULL, 0, &resp, NULL, &nrfds, 0,
			     a->timeout_ms, &err) < 0) {
		rv = fail(&err, false);
		goto out;
	}
	if (resp.tag != expected_reply(a->cmd)) {
		const char *got = hpcn_tag_name(resp.tag);

		hpcn_error_setf(&err, HPCN_E_PROTO_MALFORMED, NULL,
				"unexpected reply %s to %s", got ? got : "(unknown)",
				hpcn_tag_name(req.tag));
		rv = fail(&err, false);
		goto out;
	}
	if (print_reply(a, &resp, &err) < 0) {
		rv = fail(&err, false);
		goto out;
	}
	rv = HPCN_CTL_EXIT_OK;
out:
	if (sock >= 0)
		close(sock);
	hpcn_msg_free(&resp);
	hpcn_msg_free(&req);
	return rv;
}

int main(int argc, char **argv)
{
	struct hpcn_ctl_args args;
	char errbuf[512];
	int rv;

	if (hpcn_ctl_parse_args(argc, argv, getenv(HPCN_CTL_SOCKET_ENV), &args,
				errbuf, sizeof(errbuf)) < 0) {
		fprintf(stderr, HPCN_CTL_NAME ": %s\n"
			"Try '" HPCN_CTL_NAME " --help' for more information.\n", errbuf);
		return HPCN_CTL_EXIT_USAGE;
	}

	switch (args.cmd) {
	case HPCN_CTL_CMD_HELP:
		hpcn_ctl_usage(stdout);
		rv = HPCN_CTL_EXIT_OK;
		break;
	case HPCN_CTL_CMD_VERSION:
		printf(HPCN_CTL_NAME " " HPCN_VERSION_STRING " (hpc-node contract "
		       HPCN_CONTRACT_VERSION ", protocol version %d)\n", HPCN_PROTOCOL_VERSION);
		rv = HPCN_CTL_EXIT_OK;
		break;
	default:
		rv = run(&args);
		break;
	}

	/* A full disk or a closed pipe must not look like success. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, HPCN_CTL_NAME ": writing output: %s\n", strerror(errno));
		if (rv == HPCN_CTL_EXIT_OK)
			rv = HPCN_CTL_EXIT_ERROR;
	}
	return rv;
}

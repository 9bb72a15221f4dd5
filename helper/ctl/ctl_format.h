/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-nodectl's pure parts: what a command line means (ctl_args.c) and how
 * the helper's answers read for a human (ctl_format.c). No I/O besides the
 * FILE * handed in, so that the unit tests feed them sample bodies and argv
 * tables and compare exact lines.
 *
 * The helper's Status body is free-form JSON that grows with the helper; the
 * formatters never trust its shape: a missing field or one of an unexpected
 * type prints as "-", an unexpected element is skipped with a note.
 */
#ifndef HPCN_CTL_FORMAT_H
#define HPCN_CTL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hpcnode/error.h>
#include <hpcnode/types.h>

#define HPCN_CTL_NAME "hpc-nodectl"
#define HPCN_CTL_DEFAULT_TIMEOUT_MS 5000
#define HPCN_CTL_MAX_TIMEOUT_MS 3600000 /* one hour: longer is a typo */
#define HPCN_CTL_SOCKET_ENV "HPCN_SOCKET"

/* Exit status of hpc-nodectl (documented in hpc-nodectl(8)). */
enum hpcn_ctl_exit {
	HPCN_CTL_EXIT_OK = 0,
	HPCN_CTL_EXIT_ERROR = 1,       /* the helper answered with an error */
	HPCN_CTL_EXIT_USAGE = 2,       /* bad command line */
	HPCN_CTL_EXIT_UNREACHABLE = 3, /* socket missing, refused, timeout */
	HPCN_CTL_EXIT_DENIED = 4,      /* Denied / PermissionDenied */
};

enum hpcn_ctl_cmd {
	HPCN_CTL_CMD_NONE = 0,
	HPCN_CTL_CMD_HELP,
	HPCN_CTL_CMD_VERSION,
	HPCN_CTL_CMD_STATUS,
	HPCN_CTL_CMD_METRICS,
	HPCN_CTL_CMD_END,
	HPCN_CTL_CMD_RELEASE,
	HPCN_CTL_CMD_RECONCILE,
	HPCN_CTL_CMD_FORCE_UNMOUNT,
	HPCN_CTL_CMD_PING,
};

/* The parsed command line. Strings point into argv or the environment. */
struct hpcn_ctl_args {
	enum hpcn_ctl_cmd cmd;
	const char *socket_path;  /* --socket, else $HPCN_SOCKET, else the contract's */
	int timeout_ms;           /* --timeout, default HPCN_CTL_DEFAULT_TIMEOUT_MS */
	bool json;                /* --json */
	const char *target;       /* metrics: PATH|ALLOC; end/release: ALLOC;
				     force-unmount: IMAGE; else NULL */
	const char *group;        /* end --group GROUP */
	bool emergency;           /* force-unmount --emergency */
};

/*
 * Parse argv (argv[0] is the program name and is skipped). env_socket is the
 * value of $HPCN_SOCKET (NULL or "" when unset). Options may come before or
 * after the command; "--" ends them. --help and --version win over anything
 * else on the line. Returns 0, or -1 with the usage error (no program name,
 * no newline) in errbuf; *args is then still initialised but meaningless.
 */
int hpcn_ctl_parse_args(int argc, char *const argv[], const char *env_socket,
			struct hpcn_ctl_args *args, char *errbuf, size_t errlen);

const char *hpcn_ctl_cmd_name(enum hpcn_ctl_cmd cmd);

/* The --help text. */
void hpcn_ctl_usage(FILE *out);

/*
 * Exit status for a failure. connecting: the error came from connecting
 * (a socket the user may not open is "permission denied", any other
 * connect failure "unreachable"). Otherwise: transport failures (timeout,
 * connection reset, EOF) are "unreachable", RequestError Denied and
 * CgroupError PermissionDenied "permission denied", the rest 1.
 */
enum hpcn_ctl_exit hpcn_ctl_exit_code(const struct hpcn_error *err, bool connecting);

/* Binary units: "0 B", "1023 B", "1.5 KiB", ..., "16.0 EiB". Returns buf. */
const char *hpcn_ctl_human_size(uint64_t bytes, char *buf, size_t len);

/* "12s", "5m 0s", "1h 2m 3s", "2d 0h 0m 1s". Returns buf. */
const char *hpcn_ctl_human_duration(uint64_t secs, char *buf, size_t len);

/*
 * The human view of a Status body (JSON text). Returns 0, or -1 with
 * ProtocolError Malformed in err when the text is not a JSON object (nothing
 * is printed then). Any shape inside the object is printed without failing.
 */
int hpcn_ctl_format_status(FILE *out, const char *json_text, struct hpcn_error *err);

/*
 * The human view of Reconcile's answer: the corrections it lists (under
 * "corrections"), then the status sections it carries, if any.
 */
int hpcn_ctl_format_reconcile(FILE *out, const char *json_text, struct hpcn_error *err);

/* Pretty JSON (two-space indent, keys in the order received), newline
 * terminated; -1 with Malformed when the text is not JSON. */
int hpcn_ctl_format_json(FILE *out, const char *json_text, struct hpcn_error *err);

/* CgroupMetrics for a human; what is the cgroup path or allocation asked. */
void hpcn_ctl_format_metrics(FILE *out, const char *what, const struct hpcn_cgroup_metrics *m);

/* CgroupMetrics as a JSON object, the PSI fields only where present. */
int hpcn_ctl_format_metrics_json(FILE *out, const struct hpcn_cgroup_metrics *m,
				 struct hpcn_error *err);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* Audit records: log + JSON lines, see audit.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
#include "log.h"
#include "util.h"

static struct {
	int fd;
	char path[PATH_MAX];
	char node[HOST_NAME_MAX + 1];
} audit_ctx = { .fd = -1 };

static const char *const outcome_names[] = {
	[HPCN_AUDIT_SUCCESS] = "Success",
	[HPCN_AUDIT_FAILURE] = "Failure",
	[HPCN_AUDIT_DENIED] = "Denied",
};

const char *hpcn_audit_outcome_to_string(enum hpcn_audit_outcome outcome)
{
	if ((unsigned)outcome >= HPCN_ARRAY_SIZE(outcome_names))
		return "Failure";
	return outcome_names[outcome];
}

static void cache_node_name(void)
{
	if (gethostname(audit_ctx.node, sizeof(audit_ctx.node)) < 0)
		snprintf(audit_ctx.node, sizeof(audit_ctx.node), "unknown");
	audit_ctx.node[sizeof(audit_ctx.node) - 1] = '\0';
}

void hpcn_audit_close(void)
{
	hpcn_closep(&audit_ctx.fd);
	audit_ctx.path[0] = '\0';
}

bool hpcn_audit_file_enabled(void)
{
	return audit_ctx.fd >= 0;
}

int hpcn_audit_init(const char *audit_log_path, struct hpcn_error *err)
{
	int fd;

	hpcn_audit_close();
	cache_node_name();
	if (!audit_log_path || !*audit_log_path)
		return 0;
	if (strlen(audit_log_path) >= sizeof(audit_ctx.path))
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "audit log path too long: %.64s...", audit_log_path);
	/* O_NOFOLLOW: the log directory may be writable by a log group. */
	fd = open(audit_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
		  O_NOCTTY, 0640);
	if (fd < 0)
		return hpcn_error_set_errno(err, HPCN_E_INTERNAL, errno, NULL,
					    "cannot open audit log %s", audit_log_path);
	audit_ctx.fd = fd;
	snprintf(audit_ctx.path, sizeof(audit_ctx.path), "%s", audit_log_path);
	return 0;
}

/* RFC 3339, UTC, microseconds: what chrono's DateTime<Utc> parses. */
static void format_timestamp(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%06ldZ", ts.tv_nsec / 1000);
}

/* UUID v4. The id only has to be unique: when the kernel's pool is not
 * ready yet (early boot) a time/pid/counter mix will do. */
static void format_uuid(char *buf, size_t cap)
{
	static unsigned long long counter;
	unsigned char b[16];

	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
		struct timespec ts;
		unsigned long long x;

		clock_gettime(CLOCK_REALTIME, &ts);
		x = (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
		x ^= (unsigned long long)getpid() << 32 ^ ++counter;
		for (size_t i = 0; i < sizeof(b); i++) {
			/* splitmix64 steps */
			x += 0x9e3779b97f4a7c15ULL;
			unsigned long long z = x;
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
			b[i] = (unsigned char)(z ^ (z >> 31));
		}
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(buf, cap,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
		 b[12], b[13], b[14], b[15]);
}

/* jansson refuses invalid UTF-8; a user-given path may be anything. */
static json_t *json_text(const char *s)
{
	json_t *j = json_string(s ? s : "");
	char *copy;

	if (j)
		return j;
	copy = strdup(s);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static char *build_json(const char *id, const char *ts, const char *action,
			enum hpcn_audit_outcome outcome, const struct hpcn_audit_ctx *who,
			const char *allocation_id, const char *detail)
{
	json_t *root = NULL, *principal = NULL, *scope = NULL, *subject = NULL;
	char identity[32];
	char *out = NULL;

	if (who)
		snprintf(identity, sizeof(identity), "uid:%lu", (unsigned long)who->uid);
	else
		snprintf(identity, sizeof(identity), "%s", HPCN_AUDIT_SOURCE);
	principal = json_pack("{s:s, s:s, s:s}", "identity", identity,
			      "principal_type", who ? "Service" : "System", "role", "");
	scope = json_pack("{s:o}", "node_id", json_text(audit_ctx.node));
	if (scope && allocation_id)
		json_object_set_new(scope, "allocation_id", json_text(allocation_id));
	if (who)
		subject = json_pack("{s:I, s:I, s:I}", "uid", (json_int_t)who->uid,
				    "gid", (json_int_t)who->gid, "pid", (json_int_t)who->pid);
	else
		subject = json_null();
	if (!principal || !scope || !subject)
		goto out;
	/* "o" steals the references, also on failure. */
	root = json_pack("{s:s, s:s, s:o, s:s, s:o, s:s, s:o, s:n, s:o, s:s}",
			 "id", id, "timestamp", ts, "principal", principal,
			 "action", action, "scope", scope,
			 "outcome", hpcn_audit_outcome_to_string(outcome),
			 "detail", json_text(detail), "metadata",
			 "subject", subject, "source", HPCN_AUDIT_SOURCE);
	principal = scope = subject = NULL;
	if (root)
		out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(root);
	json_decref(principal);
	json_decref(scope);
	json_decref(subject);
	return out;
}

static int write_record(const char *json)
{
	_cleanup_free_ char *line = NULL;
	size_t len;
	ssize_t n;

	if (asprintf(&line, "%s\n", json) < 0) {
		line = NULL;
		errno = ENOMEM;
		return -1;
	}
	len = strlen(line);
	/* One write(2) with O_APPEND: the kernel appends the whole buffer
	 * atomically with respect to other appenders of a regular file. */
	do {
		n = write(audit_ctx.fd, line, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		errno = ENOSPC;
		return -1;
	}
	return 0;
}

static int level_of(enum hpcn_audit_outcome outcome)
{
	switch (outcome) {
	case HPCN_AUDIT_SUCCESS:
		return LOG_NOTICE;
	case HPCN_AUDIT_DENIED:
		return LOG_WARNING;
	default:
		return LOG_ERR;
	}
}

int hpcn_audit(const char *action, enum hpcn_audit_outcome outcome,
	       const struct hpcn_audit_ctx *who, const char *allocation_id,
	       const char *fmt, ...)
{
	_cleanup_free_ char *detail = NULL, *json = NULL;
	char id[40], ts[48];
	char f_id[64], f_action[128], f_outcome[32], f_alloc[HPCN_ERROR_MESSAGE_MAX];
	char f_uid[32], f_gid[32], f_pid[32], f_node[HOST_NAME_MAX + 16];
	char f_msgid[64], peer[96];
	const char *fields[12];
	size_t nf = 0;
	int saved = errno, rv = 0;
	va_list ap;

	if (!audit_ctx.node[0])
		cache_node_name();
	if (fmt) {
		va_start(ap, fmt);
		if (vasprintf(&detail, fmt, ap) < 0)
			detail = NULL;
		va_end(ap);
	}
	if (!action)
		action = "unknown";
	format_uuid(id, sizeof(id));
	format_timestamp(ts, sizeof(ts));

	snprintf(f_msgid, sizeof(f_msgid), "MESSAGE_ID=%s", HPCN_AUDIT_MESSAGE_ID);
	snprintf(f_id, sizeof(f_id), "AUDIT_ID=%s", id);
	snprintf(f_action, sizeof(f_action), "AUDIT_ACTION=%s", action);
	snprintf(f_outcome, sizeof(f_outcome), "AUDIT_OUTCOME=%s",
		 hpcn_audit_outcome_to_string(outcome));
	snprintf(f_node, sizeof(f_node), "NODE_ID=%s", audit_ctx.node);
	fields[nf++] = f_msgid;
	fields[nf++] = f_id;
	fields[nf++] = f_action;
	fields[nf++] = f_outcome;
	fields[nf++] = f_node;
	if (allocation_id) {
		snprintf(f_alloc, sizeof(f_alloc), "ALLOCATION_ID=%s", allocation_id);
		fields[nf++] = f_alloc;
	}
	peer[0] = '\0';
	if (who) {
		snprintf(f_uid, sizeof(f_uid), "PEER_UID=%lu", (unsigned long)who->uid);
		snprintf(f_gid, sizeof(f_gid), "PEER_GID=%lu", (unsigned long)who->gid);
		snprintf(f_pid, sizeof(f_pid), "PEER_PID=%ld", (long)who->pid);
		fields[nf++] = f_uid;
		fields[nf++] = f_gid;
		fields[nf++] = f_pid;
		snprintf(peer, sizeof(peer), " peer uid=%lu gid=%lu pid=%ld",
			 (unsigned long)who->uid, (unsigned long)who->gid, (long)who->pid);
	}
	fields[nf] = NULL;

	hpcn_log_fields(level_of(outcome), fields, "audit: %s %s%s%s%s%s%s", action,
			hpcn_audit_outcome_to_string(outcome),
			allocation_id ? " allocation " : "", allocation_id ? allocation_id : "",
			peer, detail && *detail ? ": " : "", detail ? detail : "");

	if (audit_ctx.fd >= 0) {
		json = build_json(id, ts, action, outcome, who, allocation_id, detail);
		if (!json) {
			hpcn_log_error("audit: cannot encode record %s (%s) for %s", id, action,
				       audit_ctx.path);
			rv = -1;
		} else if (write_record(json) < 0) {
			hpcn_log_error("audit: cannot append record %s (%s) to %s: %m", id,
				       action, audit_ctx.path);
			rv = -1;
		}
	}
	errno = saved;
	return rv;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Audit records: log + JSON lines, see audit.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "jsonline.h"
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

/* 16 random bytes for an id, from a pool refilled 16 ids at a time (one
 * getrandom(2) per 16 records rather than per record). When the kernel's
 * pool is not ready yet (early boot) a time/pid/counter mix will do: the id
 * only has to be unique. */
static unsigned char id_pool[256];
static size_t id_pool_left;

/* A forked child must not hand out the ids its parent will. */
static void id_pool_forget(void)
{
	id_pool_left = 0;
}

static void random_id_bytes(unsigned char b[16])
{
	static bool atfork_set;
	static unsigned long long counter;
	struct timespec ts;
	unsigned long long x;

	if (!atfork_set)
		atfork_set = pthread_atfork(NULL, NULL, id_pool_forget) == 0;
	if (id_pool_left < 16 && atfork_set &&
	    getrandom(id_pool, sizeof(id_pool), GRND_NONBLOCK) == (ssize_t)sizeof(id_pool))
		id_pool_left = sizeof(id_pool);
	if (id_pool_left >= 16) {
		id_pool_left -= 16;
		memcpy(b, id_pool + id_pool_left, 16);
		return;
	}
	if (!atfork_set && getrandom(b, 16, GRND_NONBLOCK) == 16)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	x = (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
	x ^= (unsigned long long)getpid() << 32 ^ ++counter;
	for (size_t i = 0; i < 16; i++) {
		/* splitmix64 steps */
		x += 0x9e3779b97f4a7c15ULL;
		unsigned long long z = x;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		b[i] = (unsigned char)(z ^ (z >> 31));
	}
}

/* UUID v4, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx". */
static void format_uuid(char buf[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	char *p = buf;

	random_id_bytes(b);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[b[i] >> 4];
		*p++ = hex[b[i] & 0xf];
	}
	*p = '\0';
}

/* "NAME=" value into buf (truncated to cap), for the journal's fields:
 * a plain copy, this runs a dozen times per record. */
static const char *journal_field(char *buf, size_t cap, const char *name, const char *value)
{
	size_t n = strlen(name), m = strlen(value);

	if (n >= cap)
		n = cap - 1;
	memcpy(buf, name, n);
	if (m > cap - 1 - n)
		m = cap - 1 - n;
	memcpy(buf + n, value, m);
	buf[n + m] = '\0';
	return buf;
}

/* The record in the shape of the crate's AuditEvent (serde's field order),
 * one line, written into buf (stack first, see jsonline.h). */
static const char *build_record(struct hpcn_jsonline *w, const char *id, const char *ts,
				const char *action, enum hpcn_audit_outcome outcome,
				const struct hpcn_audit_ctx *who, const char *allocation_id,
				const char *detail, size_t *len)
{
	char identity[32];

	if (who)
		snprintf(identity, sizeof(identity), "uid:%lu", (unsigned long)who->uid);
	else
		snprintf(identity, sizeof(identity), "%s", HPCN_AUDIT_SOURCE);
	hpcn_jsonline_open(w, NULL);
	hpcn_jsonline_str(w, "id", id);
	hpcn_jsonline_str(w, "timestamp", ts);
	hpcn_jsonline_open(w, "principal");
	hpcn_jsonline_str(w, "identity", identity);
	hpcn_jsonline_str(w, "principal_type", who ? "Service" : "System");
	hpcn_jsonline_str(w, "role", "");
	hpcn_jsonline_close(w);
	hpcn_jsonline_str(w, "action", action);
	hpcn_jsonline_open(w, "scope");
	hpcn_jsonline_str(w, "node_id", audit_ctx.node);
	if (allocation_id)
		hpcn_jsonline_str(w, "allocation_id", allocation_id);
	hpcn_jsonline_close(w);
	hpcn_jsonline_str(w, "outcome", hpcn_audit_outcome_to_string(outcome));
	hpcn_jsonline_str(w, "detail", detail);
	hpcn_jsonline_null(w, "metadata");
	if (who) {
		hpcn_jsonline_open(w, "subject");
		hpcn_jsonline_int(w, "uid", (long long)who->uid);
		hpcn_jsonline_int(w, "gid", (long long)who->gid);
		hpcn_jsonline_int(w, "pid", (long long)who->pid);
		hpcn_jsonline_close(w);
	} else {
		hpcn_jsonline_null(w, "subject");
	}
	hpcn_jsonline_str(w, "source", HPCN_AUDIT_SOURCE);
	hpcn_jsonline_close(w);
	return hpcn_jsonline_finish(w, len);
}

static int write_record(const char *line, size_t len)
{
	ssize_t n;

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
	_cleanup_free_ char *detail = NULL;
	char id[40], ts[48], storage[2048];
	struct hpcn_jsonline w;
	const char *line;
	size_t len;
	char f_id[64], f_action[128], f_outcome[32], f_alloc[HPCN_ERROR_MESSAGE_MAX];
	char f_uid[32], f_gid[32], f_pid[32], f_node[HOST_NAME_MAX + 16];
	char peer[96];
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
	format_uuid(id);
	format_timestamp(ts, sizeof(ts));

	fields[nf++] = "MESSAGE_ID=" HPCN_AUDIT_MESSAGE_ID;
	fields[nf++] = journal_field(f_id, sizeof(f_id), "AUDIT_ID=", id);
	fields[nf++] = journal_field(f_action, sizeof(f_action), "AUDIT_ACTION=", action);
	fields[nf++] = journal_field(f_outcome, sizeof(f_outcome), "AUDIT_OUTCOME=",
				     hpcn_audit_outcome_to_string(outcome));
	fields[nf++] = journal_field(f_node, sizeof(f_node), "NODE_ID=", audit_ctx.node);
	if (allocation_id)
		fields[nf++] = journal_field(f_alloc, sizeof(f_alloc), "ALLOCATION_ID=",
					     allocation_id);
	peer[0] = '\0';
	if (who) {
		snprintf(f_uid, sizeof(f_uid), "PEER_UID=%lu", (unsigned long)who->uid);
		snprintf(f_gid, sizeof(f_gid), "PEER_GID=%lu", (unsigned long)who->gid);
		snprintf(f_pid, sizeof(f_pid), "PEER_PID=%ld", (long)who->pid);
		fields[nf++] = f_uid;
		fields[nf++] = f_gid;
		fields[nf++] = f_pid;
		/* The log line's " peer uid=.. gid=.. pid=..", from the same digits. */
		snprintf(peer, sizeof(peer), " peer uid=%s gid=%s pid=%s", f_uid + 9, f_gid + 9,
			 f_pid + 9);
	}
	fields[nf] = NULL;

	hpcn_log_fields(level_of(outcome), fields, "audit: %s %s%s%s%s%s%s", action,
			hpcn_audit_outcome_to_string(outcome),
			allocation_id ? " allocation " : "", allocation_id ? allocation_id : "",
			peer, detail && *detail ? ": " : "", detail ? detail : "");

	if (audit_ctx.fd >= 0) {
		hpcn_jsonline_init(&w, storage, sizeof(storage));
		line = build_record(&w, id, ts, action, outcome, who, allocation_id, detail, &len);
		if (!line) {
			hpcn_log_error("audit: cannot encode record %s (%s) for %s", id, action,
				       audit_ctx.path);
			rv = -1;
		} else if (write_record(line, len) < 0) {
			hpcn_log_error("audit: cannot append record %s (%s) to %s: %m", id,
				       action, audit_ctx.path);
			rv = -1;
		}
		hpcn_jsonline_free(&w);
	}
	errno = saved;
	return rv;
}

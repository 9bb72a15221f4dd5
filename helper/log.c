/* SPDX-License-Identifier: Apache-2.0 */
/* Logging to journald (structured) or stderr, see log.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION /* we pass CODE_* ourselves */
#include <systemd/sd-journal.h>

#include "log.h"
#include "util.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define MAX_FIELDS 32

static struct {
	int target;
	int level;
	char ident[64];
} log_ctx = {
	.target = HPCN_LOG_STDERR,
	.level = LOG_INFO,
	.ident = HPCN_LOG_IDENT,
};

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
	[LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

static const char *const target_names[] = {
	[HPCN_LOG_AUTO] = "auto", [HPCN_LOG_STDERR] = "stderr", [HPCN_LOG_JOURNAL] = "journal",
};

int hpcn_log_level_from_string(const char *s)
{
	if (!s)
		return -1;
	for (size_t i = 0; i < HPCN_ARRAY_SIZE(level_names); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *hpcn_log_level_to_string(int level)
{
	if (level < 0 || (size_t)level >= HPCN_ARRAY_SIZE(level_names))
		return "unknown";
	return level_names[level];
}

int hpcn_log_target_from_string(const char *s)
{
	if (!s)
		return -1;
	for (size_t i = 0; i < HPCN_ARRAY_SIZE(target_names); i++)
		if (strcasecmp(s, target_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *hpcn_log_target_to_string(int target)
{
	if (target < 0 || (size_t)target >= HPCN_ARRAY_SIZE(target_names))
		return "unknown";
	return target_names[target];
}

/* systemd sets JOURNAL_STREAM=DEV:INO for the stream it connected to our
 * stdout/stderr; it is only ours if fd 2 still is that stream (a child that
 * redirected stderr inherits the variable). */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int hpcn_log_resolve_target(int target)
{
	if (target == HPCN_LOG_STDERR || target == HPCN_LOG_JOURNAL)
		return target;
	if (stderr_is_journal())
		return HPCN_LOG_JOURNAL;
	if (getenv("INVOCATION_ID") && access(JOURNAL_SOCKET, W_OK) == 0)
		return HPCN_LOG_JOURNAL;
	return HPCN_LOG_STDERR;
}

void hpcn_log_init(int target, int level, const char *ident)
{
	int saved = errno;

	log_ctx.target = hpcn_log_resolve_target(target);
	hpcn_log_set_level(level);
	snprintf(log_ctx.ident, sizeof(log_ctx.ident), "%s", ident ? ident : HPCN_LOG_IDENT);
	errno = saved;
}

void hpcn_log_set_level(int level)
{
	if (level < LOG_EMERG)
		level = LOG_EMERG;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	log_ctx.level = level;
}

int hpcn_log_get_level(void)
{
	return log_ctx.level;
}

int hpcn_log_get_target(void)
{
	return log_ctx.target;
}

bool hpcn_log_enabled(int level)
{
	return level <= log_ctx.level;
}

/* Messages carry user-given strings (image paths, ids): one record must stay
 * one line on stderr, whatever they contain. */
static void sanitize_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void write_all_stderr(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void log_stderr(int level, const char *const *fields, char *msg)
{
	_cleanup_free_ char *line = NULL;
	size_t len, cap;
	int n;

	sanitize_line(msg);
	cap = strlen(msg) + 128 + strlen(log_ctx.ident);
	for (size_t i = 0; fields && fields[i]; i++)
		cap += strlen(fields[i]) + 1;
	line = malloc(cap);
	if (!line)
		return;
	n = snprintf(line, cap, "%s[%ld]: %s: %s", log_ctx.ident, (long)getpid(),
		     hpcn_log_level_to_string(level), msg);
	if (n < 0)
		return;
	len = (size_t)n;
	if (len >= cap)
		len = cap - 1;
	/* cap counted every field: they fit. A copy, not a printf: an audit
	 * record appends a dozen of them to every line. */
	for (size_t i = 0; fields && fields[i]; i++) {
		size_t fl = strlen(fields[i]);

		line[len++] = ' ';
		memcpy(line + len, fields[i], fl);
		line[len + fl] = '\0';
		sanitize_line(line + len);
		len += fl;
	}
	if (len >= cap - 1)
		len = cap - 2;
	line[len++] = '\n';
	/* One write(2) per record: lines of concurrent writers stay whole. */
	write_all_stderr(line, len);
}

static int log_journal(int level, const char *file, int line, const char *func,
		       const char *const *fields, const char *msg)
{
	struct iovec iov[6 + MAX_FIELDS];
	char *owned[6] = { NULL };
	size_t n = 0;
	int r = -1;

	if (asprintf(&owned[0], "MESSAGE=%s", msg) < 0 ||
	    asprintf(&owned[1], "PRIORITY=%d", level) < 0 ||
	    asprintf(&owned[2], "SYSLOG_IDENTIFIER=%s", log_ctx.ident) < 0 ||
	    asprintf(&owned[3], "CODE_FILE=%s", file ? file : "") < 0 ||
	    asprintf(&owned[4], "CODE_LINE=%d", line) < 0 ||
	    asprintf(&owned[5], "CODE_FUNC=%s", func ? func : "") < 0) {
		for (size_t i = 0; i < HPCN_ARRAY_SIZE(owned); i++)
			free(owned[i]);
		return -1;
	}
	for (size_t i = 0; i < HPCN_ARRAY_SIZE(owned); i++)
		iov[n++] = (struct iovec){ .iov_base = owned[i], .iov_len = strlen(owned[i]) };
	for (size_t i = 0; fields && fields[i] && i < MAX_FIELDS; i++)
		iov[n++] = (struct iovec){ .iov_base = (void *)fields[i],
					   .iov_len = strlen(fields[i]) };
	r = sd_journal_sendv(iov, (int)n);
	for (size_t i = 0; i < HPCN_ARRAY_SIZE(owned); i++)
		free(owned[i]);
	return r;
}

void hpcn_log_fullv(int level, const char *file, int line, const char *func,
		    const char *const *fields, const char *fmt, va_list ap)
{
	_cleanup_free_ char *msg = NULL;
	int saved = errno;

	if (!hpcn_log_enabled(level))
		return;
	/* %m in fmt must see the caller's errno. */
	errno = saved;
	if (vasprintf(&msg, fmt, ap) < 0) {
		msg = NULL;
		goto out;
	}
	/* A journal that went away (journald restart) must not lose the line. */
	if (log_ctx.target != HPCN_LOG_JOURNAL ||
	    log_journal(level, file, line, func, fields, msg) < 0)
		log_stderr(level, fields, msg);
out:
	errno = saved;
}

void hpcn_log_full(int level, const char *file, int line, const char *func,
		   const char *const *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hpcn_log_fullv(level, file, line, func, fields, fmt, ap);
	va_end(ap);
}

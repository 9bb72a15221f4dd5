/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging of hpc-node-helper: to journald with structured fields when
 * systemd runs us, else to stderr as "IDENT[PID]: LEVEL: message".
 * Levels are syslog's (LOG_ERR .. LOG_DEBUG). No timestamps on stderr: either
 * journald captures it and stamps each line, or a human runs us in a terminal.
 * One static context for the module; the daemon is single-threaded.
 * Every function preserves errno, so `hpcn_log(...); return -errno;` works.
 */
#ifndef HPCN_HELPER_LOG_H
#define HPCN_HELPER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

enum hpcn_log_target {
	HPCN_LOG_AUTO = 0, /* journal when systemd started us, else stderr */
	HPCN_LOG_STDERR,
	HPCN_LOG_JOURNAL,
};

#define HPCN_LOG_IDENT "hpc-node-helper"

/* Resolve AUTO, set the level and the identifier (NULL = HPCN_LOG_IDENT).
 * Before any init the module logs to stderr at LOG_INFO. May be called again
 * (SIGHUP). */
void hpcn_log_init(int target, int level, const char *ident);
void hpcn_log_set_level(int level);
int hpcn_log_get_level(void);
/* The resolved target (never HPCN_LOG_AUTO). */
int hpcn_log_get_target(void);
/* Would a message of this level be emitted? (skip costly formatting) */
bool hpcn_log_enabled(int level);

/* AUTO resolved against the environment: JOURNAL_STREAM naming our stderr,
 * or INVOCATION_ID (a systemd unit) with a journal socket present. */
int hpcn_log_resolve_target(int target);

/* "error", "warning", "notice", "info", "debug" (and "emerg", "alert",
 * "crit" for completeness); -1 when unknown. */
int hpcn_log_level_from_string(const char *s);
const char *hpcn_log_level_to_string(int level);
/* "auto", "stderr", "journal"; -1 when unknown. */
int hpcn_log_target_from_string(const char *s);
const char *hpcn_log_target_to_string(int target);

/*
 * The workers behind the macros. fields: NULL or a NULL-terminated array of
 * "KEY=value" journal fields (KEY in [A-Z0-9_], not starting with '_');
 * on stderr they are appended as " KEY=value" after the message.
 */
void hpcn_log_full(int level, const char *file, int line, const char *func,
		   const char *const *fields, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
void hpcn_log_fullv(int level, const char *file, int line, const char *func,
		    const char *const *fields, const char *fmt, va_list ap)
	__attribute__((format(printf, 6, 0)));

#define hpcn_log(level, ...) \
	hpcn_log_full((level), __FILE__, __LINE__, __func__, NULL, __VA_ARGS__)
#define hpcn_log_fields(level, fields, ...) \
	hpcn_log_full((level), __FILE__, __LINE__, __func__, (fields), __VA_ARGS__)

#define hpcn_log_error(...)   hpcn_log(LOG_ERR, __VA_ARGS__)
#define hpcn_log_warning(...) hpcn_log(LOG_WARNING, __VA_ARGS__)
#define hpcn_log_notice(...)  hpcn_log(LOG_NOTICE, __VA_ARGS__)
#define hpcn_log_info(...)    hpcn_log(LOG_INFO, __VA_ARGS__)
#define hpcn_log_debug(...)   hpcn_log(LOG_DEBUG, __VA_ARGS__)

#endif

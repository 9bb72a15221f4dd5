/* SPDX-License-Identifier: Apache-2.0 */
/* Error kinds with the crate's variant names and display texts. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <hpcnode/error.h>

struct kind_info {
	const char *family;
	const char *variant;
	const char *format; /* "%s" placeholders, in the crate's field order */
	int nfields;
};

static const struct kind_info kinds[HPCN_E__COUNT] = {
	[HPCN_E_CGROUP_CREATION_FAILED] = { "CgroupError", "CreationFailed", "cgroup creation failed: %s", 1 },
	[HPCN_E_CGROUP_KILL_FAILED] = { "CgroupError", "KillFailed", "cgroup.kill failed for %s: %s", 2 },
	[HPCN_E_CGROUP_NOT_FOUND] = { "CgroupError", "NotFound", "cgroup path not found: %s", 1 },
	[HPCN_E_CGROUP_PERMISSION_DENIED] = { "CgroupError", "PermissionDenied", "permission denied: %s owned by %s", 2 },
	[HPCN_E_CGROUP_IO] = { "CgroupError", "Io", "cgroup I/O error: %s", 1 },
	[HPCN_E_NS_SOCKET_UNAVAILABLE] = { "NamespaceError", "SocketUnavailable", "handoff socket unavailable: %s", 1 },
	[HPCN_E_NS_CREATION_FAILED] = { "NamespaceError", "CreationFailed", "namespace creation failed: %s", 1 },
	[HPCN_E_NS_ALLOCATION_NOT_FOUND] = { "NamespaceError", "AllocationNotFound", "allocation not found: %s", 1 },
	[HPCN_E_NS_FD_PASSING] = { "NamespaceError", "FdPassing", "FD passing failed: %s", 1 },
	[HPCN_E_MOUNT_FAILED] = { "MountError", "MountFailed", "mount failed for %s: %s", 2 },
	[HPCN_E_UNMOUNT_FAILED] = { "MountError", "UnmountFailed", "unmount failed for %s: %s", 2 },
	[HPCN_E_REFCOUNT_INCONSISTENCY] = { "MountError", "RefcountInconsistency", "refcount inconsistency for %s: %s", 2 },
	[HPCN_E_MOUNT_IO] = { "MountError", "Io", "mount I/O error: %s", 1 },
	[HPCN_E_BOOT_FAILED] = { "ReadinessError", "BootFailed", "boot failed: %s", 1 },
	[HPCN_E_READINESS_TIMEOUT] = { "ReadinessError", "Timeout", "timeout waiting for readiness", 0 },
	[HPCN_E_PROTO_MALFORMED] = { "ProtocolError", "Malformed", "malformed message: %s", 1 },
	[HPCN_E_PROTO_TOO_LARGE] = { "ProtocolError", "TooLarge", "message too large: %s", 1 },
	[HPCN_E_PROTO_UNSUPPORTED_VERSION] = { "ProtocolError", "UnsupportedVersion", "unsupported protocol version: %s", 1 },
	[HPCN_E_PROTO_UNKNOWN_TAG] = { "ProtocolError", "UnknownTag", "unknown message tag: %s", 1 },
	[HPCN_E_PROTO_UNEXPECTED_FDS] = { "ProtocolError", "UnexpectedFds", "unexpected file descriptors: %s", 1 },
	[HPCN_E_INVALID_ARGUMENT] = { "RequestError", "InvalidArgument", "invalid argument: %s", 1 },
	[HPCN_E_DENIED] = { "RequestError", "Denied", "denied: %s", 1 },
	[HPCN_E_NOT_FOUND] = { "RequestError", "NotFound", "not found: %s", 1 },
	[HPCN_E_BUSY] = { "RequestError", "Busy", "busy: %s", 1 },
	[HPCN_E_INTERNAL] = { "RequestError", "Internal", "internal error: %s", 1 },
};

static const struct kind_info *info(enum hpcn_error_kind kind)
{
	if ((int)kind <= HPCN_E_NONE || kind >= HPCN_E__COUNT)
		return NULL;
	return &kinds[kind];
}

const char *hpcn_error_family(enum hpcn_error_kind kind)
{
	const struct kind_info *i = info(kind);
	return i ? i->family : NULL;
}

const char *hpcn_error_variant(enum hpcn_error_kind kind)
{
	const struct kind_info *i = info(kind);
	return i ? i->variant : NULL;
}

int hpcn_error_nfields(enum hpcn_error_kind kind)
{
	const struct kind_info *i = info(kind);
	return i ? i->nfields : 0;
}

enum hpcn_error_kind hpcn_error_kind_from_names(const char *family, const char *variant)
{
	if (!family || !variant)
		return HPCN_E_NONE;
	for (int k = HPCN_E_NONE + 1; k < HPCN_E__COUNT; k++)
		if (strcmp(kinds[k].family, family) == 0 &&
		    strcmp(kinds[k].variant, variant) == 0)
			return (enum hpcn_error_kind)k;
	return HPCN_E_NONE;
}

void hpcn_error_clear(struct hpcn_error *err)
{
	if (!err)
		return;
	err->kind = HPCN_E_NONE;
	err->sys_errno = 0;
	err->message[0] = '\0';
}

int hpcn_error_set(struct hpcn_error *err, enum hpcn_error_kind kind,
		   const char *f1, const char *f2)
{
	const struct kind_info *i = info(kind);

	if (!err)
		return -1;
	err->kind = i ? kind : HPCN_E_INTERNAL;
	err->sys_errno = 0;
	if (!i) {
		snprintf(err->message, sizeof(err->message),
			 "internal error: unknown error kind %d", (int)kind);
		return -1;
	}
	/* The format comes from our own table, never from the caller. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	switch (i->nfields) {
	case 0:
		snprintf(err->message, sizeof(err->message), "%s", i->format);
		break;
	case 1:
		snprintf(err->message, sizeof(err->message), i->format, f1 ? f1 : "");
		break;
	default:
		snprintf(err->message, sizeof(err->message), i->format,
			 f1 ? f1 : "", f2 ? f2 : "");
		break;
	}
#pragma GCC diagnostic pop
	return -1;
}

static int set_va(struct hpcn_error *err, enum hpcn_error_kind kind, int errnum,
		  const char *f1, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));

static int set_va(struct hpcn_error *err, enum hpcn_error_kind kind, int errnum,
		  const char *f1, const char *fmt, va_list ap)
{
	char last[HPCN_ERROR_MESSAGE_MAX];
	int n = vsnprintf(last, sizeof(last), fmt, ap);

	if (errnum && n >= 0 && (size_t)n < sizeof(last))
		snprintf(last + n, sizeof(last) - (size_t)n, ": %s", strerror(errnum));
	/* The formatted text is the template's last field. */
	if (hpcn_error_nfields(kind) >= 2)
		hpcn_error_set(err, kind, f1, last);
	else
		hpcn_error_set(err, kind, last, NULL);
	if (err)
		err->sys_errno = errnum;
	return -1;
}

int hpcn_error_setf(struct hpcn_error *err, enum hpcn_error_kind kind,
		    const char *f1, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_va(err, kind, 0, f1, fmt, ap);
	va_end(ap);
	return -1;
}

int hpcn_error_set_errno(struct hpcn_error *err, enum hpcn_error_kind kind,
			 int errnum, const char *f1, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_va(err, kind, errnum, f1, fmt, ap);
	va_end(ap);
	return -1;
}

int hpcn_error_set_raw(struct hpcn_error *err, enum hpcn_error_kind kind,
		       const char *message)
{
	if (!err)
		return -1;
	err->kind = info(kind) ? kind : HPCN_E_INTERNAL;
	err->sys_errno = 0;
	snprintf(err->message, sizeof(err->message), "%s", message ? message : "");
	return -1;
}

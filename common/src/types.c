/* SPDX-License-Identifier: Apache-2.0 */
/* NamespaceType names and allocation id validation. */
#include <sched.h>
#include <string.h>

#include <hpcnode/types.h>

static const char *const ns_names[HPCN_NS__COUNT] = {
	[HPCN_NS_PID] = "Pid",
	[HPCN_NS_NET] = "Net",
	[HPCN_NS_MOUNT] = "Mount",
};

static const char *const ns_proc_names[HPCN_NS__COUNT] = {
	[HPCN_NS_PID] = "pid",
	[HPCN_NS_NET] = "net",
	[HPCN_NS_MOUNT] = "mnt",
};

static const int ns_flags[HPCN_NS__COUNT] = {
	[HPCN_NS_PID] = CLONE_NEWPID,
	[HPCN_NS_NET] = CLONE_NEWNET,
	[HPCN_NS_MOUNT] = CLONE_NEWNS,
};

static int valid(enum hpcn_ns_type t)
{
	return (int)t >= 0 && t < HPCN_NS__COUNT;
}

const char *hpcn_ns_type_name(enum hpcn_ns_type t)
{
	return valid(t) ? ns_names[t] : NULL;
}

const char *hpcn_ns_type_proc_name(enum hpcn_ns_type t)
{
	return valid(t) ? ns_proc_names[t] : NULL;
}

int hpcn_ns_type_clone_flag(enum hpcn_ns_type t)
{
	return valid(t) ? ns_flags[t] : 0;
}

int hpcn_ns_type_from_name(const char *name, enum hpcn_ns_type *out)
{
	if (!name)
		return -1;
	for (int i = 0; i < HPCN_NS__COUNT; i++)
		if (strcmp(name, ns_names[i]) == 0) {
			if (out)
				*out = (enum hpcn_ns_type)i;
			return 0;
		}
	return -1;
}

int hpcn_alloc_id_validate(const char *id, struct hpcn_error *err)
{
	size_t n;

	if (!id)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT,
				      "allocation id is missing", NULL);
	n = strnlen(id, HPCN_ALLOC_ID_MAX + 1);
	if (n == 0)
		return hpcn_error_set(err, HPCN_E_INVALID_ARGUMENT,
				      "allocation id is empty", NULL);
	if (n > HPCN_ALLOC_ID_MAX)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "allocation id is longer than %d characters",
				       HPCN_ALLOC_ID_MAX);
	if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "allocation id \"%s\" is reserved", id);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
			continue;
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "allocation id has a forbidden character 0x%02x at "
				       "position %zu (allowed: A-Z a-z 0-9 . _ -)", c, i);
	}
	return 0;
}

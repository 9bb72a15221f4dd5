/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the config*.c files only: the key table, which
 * config_parse.c fills from the ini file, config_dump.c prints and compares,
 * and config.c walks for a reload. The interface is config.h. */
#ifndef HPCN_HELPER_CONFIG_INTERNAL_H
#define HPCN_HELPER_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

enum key_type {
	K_PATH,          /* absolute path, not "/" */
	K_PATH_OPT,      /* same, or empty */
	K_CGROUP_ROOT,   /* "auto" (stored as "") or an absolute path */
	K_MODE,          /* octal file mode <= 0777 */
	K_LOG_LEVEL,
	K_LOG_TARGET,
	K_BOOL,
	K_UINT,
	K_USERS,
	K_GROUPS,
	K_MOUNT_POINTS,  /* list of mount points */
	K_PREFIXES,      /* list of directories */
};

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t off;
	size_t size;
	unsigned min, max;   /* K_UINT */
	const char *what;    /* K_UINT: "a number of seconds" */
	bool restart;        /* cannot change on reload */
};

/* config_parse.c: every key, in the order --print-config prints them. */
extern const struct key hpcn_config_keys[];
extern const size_t hpcn_config_nkeys;

static inline void *field(struct hpcn_config *c, const struct key *k)
{
	return (char *)c + k->off;
}

static inline const void *cfield(const struct hpcn_config *c, const struct key *k)
{
	return (const char *)c + k->off;
}

/* config_dump.c */

/* A key's value as one string, for comparisons (NULL on ENOMEM; free it). */
char *hpcn_config_value_string(const struct hpcn_config *c, const struct key *k);

#endif

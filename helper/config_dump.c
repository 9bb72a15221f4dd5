/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration as ini text (--print-config), every key in the order of
 * the key table, and the comparison of two configurations on those values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "log.h"

static void print_value(const struct hpcn_config *c, const struct key *k, FILE *out,
			const char *sep)
{
	const void *f = cfield(c, k);

	switch (k->type) {
	case K_PATH:
	case K_PATH_OPT:
		fputs(f, out);
		break;
	case K_CGROUP_ROOT:
		fputs(*(const char *)f ? f : "auto", out);
		break;
	case K_MODE:
		fprintf(out, "%04o", (unsigned)*(const mode_t *)f);
		break;
	case K_LOG_LEVEL:
		fputs(hpcn_log_level_to_string(*(const int *)f), out);
		break;
	case K_LOG_TARGET:
		fputs(hpcn_log_target_to_string(*(const int *)f), out);
		break;
	case K_BOOL:
		fputs(*(const bool *)f ? "true" : "false", out);
		break;
	case K_UINT:
		fprintf(out, "%u", *(const unsigned *)f);
		break;
	case K_USERS:
		for (size_t i = 0; i < c->allowed_uids.n; i++)
			fprintf(out, "%s%lu", i ? sep : "", (unsigned long)c->allowed_uids.v[i]);
		break;
	case K_GROUPS:
		for (size_t i = 0; i < c->allowed_gids.n; i++)
			fprintf(out, "%s%lu", i ? sep : "", (unsigned long)c->allowed_gids.v[i]);
		break;
	case K_MOUNT_POINTS:
	case K_PREFIXES: {
		const struct hpcn_strv *sv = f;

		for (size_t i = 0; i < sv->n; i++)
			fprintf(out, "%s%s", i ? sep : "", sv->v[i]);
		break;
	}
	}
}

static size_t list_len(const struct hpcn_config *c, const struct key *k)
{
	switch (k->type) {
	case K_USERS:
		return c->allowed_uids.n;
	case K_GROUPS:
		return c->allowed_gids.n;
	case K_MOUNT_POINTS:
	case K_PREFIXES:
		return ((const struct hpcn_strv *)cfield(c, k))->n;
	default:
		return 0;
	}
}

/* A key's value as one string, for comparisons. */
char *hpcn_config_value_string(const struct hpcn_config *c, const struct key *k)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	print_value(c, k, f, ", ");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int hpcn_config_dump(const struct hpcn_config *c, FILE *out)
{
	const char *section = NULL;

	fprintf(out, "; hpc-node-helper effective configuration (%s)\n",
		c->config_path[0] ? c->config_path : "built-in defaults");
	for (size_t i = 0; i < hpcn_config_nkeys; i++) {
		const struct key *k = &hpcn_config_keys[i];

		if (!section || strcmp(section, k->section) != 0) {
			fprintf(out, "%s[%s]\n", section ? "\n" : "", k->section);
			section = k->section;
		}
		/* Every list item on a line of its own ("key =" then indented
		 * continuation lines): inih limits a line to 198 bytes, and an
		 * item that fit on the line it came from fits there. */
		if (k->type == K_MOUNT_POINTS || k->type == K_PREFIXES ||
		    k->type == K_USERS || k->type == K_GROUPS) {
			fprintf(out, "%s =", k->name);
			if (list_len(c, k) > 0) {
				fputs("\n\t", out);
				print_value(c, k, out, "\n\t");
			}
		} else {
			fprintf(out, "%s = ", k->name);
			print_value(c, k, out, "");
		}
		fputc('\n', out);
	}
	if (fflush(out) != 0 || ferror(out))
		return -1;
	return 0;
}

bool hpcn_config_equal(const struct hpcn_config *a, const struct hpcn_config *b)
{
	for (size_t i = 0; i < hpcn_config_nkeys; i++) {
		_cleanup_free_ char *va = hpcn_config_value_string(a, &hpcn_config_keys[i]);
		_cleanup_free_ char *vb = hpcn_config_value_string(b, &hpcn_config_keys[i]);

		if (!va || !vb || strcmp(va, vb) != 0)
			return false;
	}
	return true;
}

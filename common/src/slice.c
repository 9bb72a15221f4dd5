/* SPDX-License-Identifier: Apache-2.0 */
/* Slice ownership: the crate's prefix rule, and our strict form. */
#include <errno.h>
#include <string.h>

#include <hpcnode/constants.h>
#include <hpcnode/slice.h>

enum hpcn_slice_owner hpcn_slice_owner(const char *path)
{
	/* Exactly the crate: starts_with(PACT_ROOT), then WORKLOAD_ROOT. */
	if (!path)
		return HPCN_OWNER_NONE;
	if (strncmp(path, HPCN_SLICE_PACT_ROOT, strlen(HPCN_SLICE_PACT_ROOT)) == 0)
		return HPCN_OWNER_PACT;
	if (strncmp(path, HPCN_SLICE_WORKLOAD_ROOT, strlen(HPCN_SLICE_WORKLOAD_ROOT)) == 0)
		return HPCN_OWNER_WORKLOAD;
	return HPCN_OWNER_NONE;
}

const char *hpcn_slice_owner_name(enum hpcn_slice_owner owner)
{
	switch (owner) {
	case HPCN_OWNER_PACT:
		return "Pact";
	case HPCN_OWNER_WORKLOAD:
		return "Workload";
	default:
		return NULL;
	}
}

/*
 * Append the components of src to the normalised buffer out (length *len),
 * resolving "." and ".." lexically. Returns -1 when ".." would climb above
 * the start.
 */
static int push_components(const char *src, char *out, size_t cap, size_t *len)
{
	const char *p = src;

	while (*p) {
		const char *end;
		size_t n;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchr(p, '/');
		n = end ? (size_t)(end - p) : strlen(p);
		if (n == 1 && p[0] == '.') {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			char *slash;

			if (*len == 0) {
				errno = EINVAL; /* leaves the root */
				return -1;
			}
			slash = strrchr(out, '/');
			*len = slash ? (size_t)(slash - out) : 0;
			out[*len] = '\0';
		} else {
			size_t need = *len + (*len ? 1 : 0) + n;

			if (need + 1 > cap) {
				errno = ENAMETOOLONG;
				return -1;
			}
			if (*len)
				out[(*len)++] = '/';
			memcpy(out + *len, p, n);
			*len += n;
			out[*len] = '\0';
		}
		p += n;
	}
	return 0;
}

int hpcn_slice_owner_strict(const char *cgroup_root, const char *path,
			    enum hpcn_slice_owner *owner,
			    char *norm, size_t normsz)
{
	char rootn[4096] = "", reln[4096] = "";
	size_t rlen = 0, plen = 0;
	const char *rel = path;

	if (!path) {
		errno = EINVAL;
		return -1;
	}
	if (path[0] == '/') {
		char abs[4096] = "";
		size_t alen = 0;

		if (!cgroup_root || cgroup_root[0] != '/') {
			errno = EINVAL;
			return -1;
		}
		if (push_components(cgroup_root, rootn, sizeof(rootn), &rlen) < 0 ||
		    push_components(path, abs, sizeof(abs), &alen) < 0)
			return -1;
		/* abs must be rootn itself or below it, on a component boundary. */
		if (alen < rlen || strncmp(abs, rootn, rlen) != 0 ||
		    (alen > rlen && rlen > 0 && abs[rlen] != '/')) {
			errno = EINVAL;
			return -1;
		}
		rel = abs + rlen;
		if (push_components(rel, reln, sizeof(reln), &plen) < 0)
			return -1;
	} else if (push_components(path, reln, sizeof(reln), &plen) < 0) {
		return -1;
	}

	if (owner) {
		size_t lp = strlen(HPCN_SLICE_PACT_ROOT);
		size_t lw = strlen(HPCN_SLICE_WORKLOAD_ROOT);

		if (strncmp(reln, HPCN_SLICE_PACT_ROOT, lp) == 0 &&
		    (reln[lp] == '\0' || reln[lp] == '/'))
			*owner = HPCN_OWNER_PACT;
		else if (strncmp(reln, HPCN_SLICE_WORKLOAD_ROOT, lw) == 0 &&
			 (reln[lw] == '\0' || reln[lw] == '/'))
			*owner = HPCN_OWNER_WORKLOAD;
		else
			*owner = HPCN_OWNER_NONE;
	}
	if (norm) {
		if (plen + 1 > normsz) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(norm, reln, plen + 1);
	}
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* --uenv: parsing, validation, repository resolution, canonical form. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "uenv_spec.h"

#define E_INVALID HPCN_E_INVALID_ARGUMENT

/* Room for the allowed list in messages; longer lists are cut. */
#define ALLOWED_TEXT_MAX 512

struct name_parts {
	char name[HPCN_UENV_NAME_MAX];
	char version[HPCN_UENV_NAME_MAX];
	char tag[HPCN_UENV_NAME_MAX];
};

static bool name_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '+' || c == '-';
}

/* One of NAME, VERSION, TAG. why gets the reason when it is not valid. */
static bool component_ok(const char *s, size_t len, const char *what, char *why, size_t cap)
{
	if (len == 0) {
		snprintf(why, cap, "empty %s", what);
		return false;
	}
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
		snprintf(why, cap, "%s '%.*s' is reserved", what, (int)len, s);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (!name_char_ok(s[i])) {
			unsigned char c = (unsigned char)s[i];

			if (c > 0x20 && c < 0x7f)
				snprintf(why, cap, "character '%c' is not allowed in %s", c, what);
			else
				snprintf(why, cap, "byte 0x%02x is not allowed in %s", c, what);
			return false;
		}
	}
	return true;
}

/* NAME[/VERSION][:TAG] into its parts, defaults filled in. */
static bool split_name(const char *s, struct name_parts *p, char *why, size_t cap)
{
	const char *slash, *colon, *end = s + strlen(s);
	const char *name_end, *ver = NULL, *ver_end = NULL, *tag = NULL;

	if ((size_t)(end - s) >= HPCN_UENV_NAME_MAX) {
		snprintf(why, cap, "longer than %d bytes", HPCN_UENV_NAME_MAX - 1);
		return false;
	}
	colon = strchr(s, ':');
	if (colon && strchr(colon + 1, ':')) {
		snprintf(why, cap, "more than one ':'");
		return false;
	}
	slash = strchr(s, '/');
	if (slash && colon && slash > colon) {
		snprintf(why, cap, "'/' after the ':' of the TAG");
		return false;
	}
	if (slash && strchr(slash + 1, '/')) {
		snprintf(why, cap, "more than one '/'");
		return false;
	}
	name_end = slash ? slash : colon ? colon : end;
	if (slash) {
		ver = slash + 1;
		ver_end = colon ? colon : end;
	}
	if (colon)
		tag = colon + 1;
	if (!component_ok(s, (size_t)(name_end - s), "NAME", why, cap))
		return false;
	if (ver && !component_ok(ver, (size_t)(ver_end - ver), "VERSION", why, cap))
		return false;
	if (tag && !component_ok(tag, (size_t)(end - tag), "TAG", why, cap))
		return false;
	snprintf(p->name, sizeof(p->name), "%.*s", (int)(name_end - s), s);
	if (ver)
		snprintf(p->version, sizeof(p->version), "%.*s", (int)(ver_end - ver), ver);
	else
		snprintf(p->version, sizeof(p->version), "latest");
	if (tag)
		snprintf(p->tag, sizeof(p->tag), "%s", tag);
	else
		snprintf(p->tag, sizeof(p->tag), "latest");
	return true;
}

static size_t mount_depth(const char *m)
{
	size_t d = 0;

	if (strcmp(m, "/") == 0)
		return 0;
	for (; *m; m++)
		d += *m == '/';
	return d;
}

/* One IMAGE[:MOUNT]; item is NUL-terminated and not empty. */
static int parse_item(const char *item, const struct hpcn_plugargs *cfg,
		      struct hpcn_uenv_item *out, struct hpcn_error *err)
{
	char image[PATH_MAX];
	const char *mount = NULL, *p, *split = NULL;
	size_t ilen;
	char why[128];

	for (p = strstr(item, ":/"); p; p = strstr(p + 1, ":/"))
		split = p;
	ilen = split ? (size_t)(split - item) : strlen(item);
	if (split)
		mount = split + 1;
	if (ilen == 0)
		return hpcn_spank_errorf(err, E_INVALID,
					 "--uenv: '%s': missing image before the mount point", item);
	if (ilen >= sizeof(image))
		return hpcn_spank_errorf(err, E_INVALID,
					 "--uenv: image path longer than %zu bytes", sizeof(image) - 1);
	memcpy(image, item, ilen);
	image[ilen] = '\0';

	memset(out, 0, sizeof(*out));
	if (image[0] == '/') {
		const char *base;

		if (strchr(image, ':'))
			return hpcn_spank_errorf(err, E_INVALID,
						 "--uenv: '%s': ':' in an image path is not supported (a mount point must be an absolute path)",
						 item);
		if (hpcn_mount_path_normalise(image, out->image, sizeof(out->image)) < 0) {
			if (errno == EPERM)
				return hpcn_spank_errorf(err, E_INVALID,
							 "--uenv: '%s': '..' is not allowed in an image path",
							 item);
			return hpcn_spank_errorf(err, E_INVALID,
						 "--uenv: image path longer than %zu bytes",
						 sizeof(out->image) - 1);
		}
		if (strcmp(out->image, "/") == 0)
			return hpcn_spank_errorf(err, E_INVALID,
						 "--uenv: '%s': / is not an image file", item);
		base = strrchr(out->image, '/') + 1;
		snprintf(out->name, sizeof(out->name), "%.*s", HPCN_UENV_NAME_MAX - 1, base);
	} else {
		struct name_parts parts;

		if (!cfg->repository[0])
			return hpcn_spank_errorf(err, E_INVALID,
						 "--uenv: '%s': image '%s' is not an absolute path, and no image repository is configured",
						 item, image);
		if (!split_name(image, &parts, why, sizeof(why)))
			return hpcn_spank_errorf(err, E_INVALID,
						 "--uenv: '%s': invalid image name '%s': %s (expected an absolute path or NAME[/VERSION][:TAG])",
						 item, image, why);
		snprintf(out->image, sizeof(out->image), "%s", image);
		/* split_name() checked it is shorter than name. */
		snprintf(out->name, sizeof(out->name), "%.*s", HPCN_UENV_NAME_MAX - 1, image);
		out->from_repository = true;
	}

	if (!mount) {
		snprintf(out->mount, sizeof(out->mount), "%s", cfg->default_mount);
	} else if (hpcn_mount_path_normalise(mount, out->mount, sizeof(out->mount)) < 0) {
		if (errno == EPERM)
			return hpcn_spank_errorf(err, E_INVALID,
						 "--uenv: '%s': '..' is not allowed in a mount point",
						 item);
		return hpcn_spank_errorf(err, E_INVALID,
					 "--uenv: mount point longer than %zu bytes",
					 sizeof(out->mount) - 1);
	}
	if (!hpcn_plugargs_mount_allowed(cfg, out->mount)) {
		char allowed[ALLOWED_TEXT_MAX];

		hpcn_plugargs_allowed_string(cfg, allowed, sizeof(allowed));
		return hpcn_spank_errorf(err, HPCN_E_DENIED,
					 "--uenv: '%s': mount point %s is not allowed (allowed: %s)",
					 item, out->mount, allowed);
	}
	return 0;
}

int hpcn_uenv_spec_parse(const char *arg, const struct hpcn_plugargs *cfg,
			 struct hpcn_uenv_spec *out, struct hpcn_error *err)
{
	char item[2 * PATH_MAX];
	size_t len, count = 1, pos = 1;
	const char *p;

	memset(out, 0, sizeof(*out));
	if (!arg)
		return hpcn_spank_errorf(err, E_INVALID, "--uenv: missing argument");
	len = strlen(arg);
	if (len == 0)
		return hpcn_spank_errorf(err, E_INVALID, "--uenv: empty argument");
	if (len >= HPCN_UENV_ARG_MAX)
		return hpcn_spank_errorf(err, E_INVALID,
					 "--uenv: argument too long (%zu bytes, at most %d)",
					 len, HPCN_UENV_ARG_MAX - 1);
	/* Empty items first: "a,,b" is a typo, not one image too many. */
	for (p = arg; ; pos++) {
		const char *comma = strchr(p, ',');
		size_t ilen = comma ? (size_t)(comma - p) : strlen(p);

		if (ilen == 0)
			return hpcn_spank_errorf(err, E_INVALID,
						 "--uenv: '%s': image %zu is empty", arg, pos);
		if (!comma)
			break;
		count++;
		p = comma + 1;
	}
	if (count > cfg->max_images)
		return hpcn_spank_errorf(err, E_INVALID,
					 "--uenv: too many images (%zu, at most %zu)",
					 count, cfg->max_images);

	for (p = arg; ; ) {
		const char *comma = strchr(p, ',');
		size_t ilen = comma ? (size_t)(comma - p) : strlen(p);
		struct hpcn_uenv_item *it = &out->item[out->n];

		if (ilen >= sizeof(item))
			return hpcn_spank_errorf(err, E_INVALID,
						 "--uenv: image %zu is longer than %zu bytes",
						 out->n + 1, sizeof(item) - 1);
		memcpy(item, p, ilen);
		item[ilen] = '\0';
		if (parse_item(item, cfg, it, err) < 0)
			goto fail;
		for (size_t j = 0; j < out->n; j++)
			if (strcmp(out->item[j].mount, it->mount) == 0) {
				hpcn_spank_errorf(err, E_INVALID,
						  "--uenv: images '%s' and '%s' both mount at %s",
						  out->item[j].image, it->image, it->mount);
				goto fail;
			}
		out->n++;
		if (!comma)
			break;
		p = comma + 1;
	}

	/* Stable insertion sort by depth: parents before their children, the
	 * user's order otherwise. */
	for (size_t i = 1; i < out->n; i++) {
		struct hpcn_uenv_item tmp;
		size_t j = i, d = mount_depth(out->item[i].mount);

		if (mount_depth(out->item[i - 1].mount) <= d)
			continue;
		tmp = out->item[i];
		while (j > 0 && mount_depth(out->item[j - 1].mount) > d) {
			out->item[j] = out->item[j - 1];
			j--;
		}
		out->item[j] = tmp;
	}
	return 0;
fail:
	out->n = 0;
	return -1;
}

/* Message for a failed realpath/stat/open of an image. */
static int image_errno(struct hpcn_error *err, const struct hpcn_uenv_item *it,
		       const struct hpcn_plugargs *cfg, const char *path, int e)
{
	if (e == ENOENT || e == ENOTDIR) {
		if (it->from_repository && !it->resolved)
			return hpcn_spank_errorf(err, HPCN_E_NOT_FOUND,
						 "--uenv: image '%s' not found in repository %s (looked for %s)",
						 it->name, cfg->repository, path);
		return hpcn_spank_errorf(err, HPCN_E_NOT_FOUND, "--uenv: image %s not found",
					 path);
	}
	if (e == EACCES || e == EPERM)
		return hpcn_spank_errorf(err, HPCN_E_DENIED,
					 "--uenv: image '%s': cannot read %s: %s",
					 it->name, path, strerror(e));
	return hpcn_spank_errorf(err, E_INVALID, "--uenv: image '%s': %s: %s",
				 it->name, path, strerror(e));
}

static int resolve_item(struct hpcn_uenv_item *it, const struct hpcn_plugargs *cfg,
			struct hpcn_error *err)
{
	char path[PATH_MAX], real[PATH_MAX];
	struct stat st;
	int fd, n;

	if (it->from_repository && !it->resolved) {
		struct name_parts parts;
		char why[128];

		if (!cfg->repository[0])
			return hpcn_spank_errorf(err, E_INVALID,
						 "--uenv: image '%s' is not an absolute path, and no image repository is configured",
						 it->name);
		if (!split_name(it->image, &parts, why, sizeof(why)))
			return hpcn_spank_errorf(err, E_INVALID,
						 "--uenv: invalid image name '%s': %s", it->image, why);
		n = snprintf(path, sizeof(path), "%s/%s/%s/%s.squashfs",
			     cfg->repository, parts.name, parts.version, parts.tag);
		if (n < 0 || (size_t)n >= sizeof(path))
			return hpcn_spank_errorf(err, E_INVALID,
						 "--uenv: image '%s': path in repository %s is too long",
						 it->name, cfg->repository);
	} else {
		snprintf(path, sizeof(path), "%s", it->image);
	}

	if (!realpath(path, real))
		return image_errno(err, it, cfg, path, errno);
	if (stat(real, &st) < 0)
		return image_errno(err, it, cfg, real, errno);
	if (!S_ISREG(st.st_mode))
		return hpcn_spank_errorf(err, E_INVALID, "--uenv: image '%s': %s is not a regular file",
					 it->name, real);
	/* The helper opens the image as the user: tell the user now if it cannot
	 * (srun runs as the user). As root (slurmstepd, on the node) an open
	 * proves nothing about the user and would open, as root, whatever a
	 * path the user controls leads to by then (a device, after a swapped
	 * directory): the helper's open as the user is the check there. */
	if (geteuid() != 0) {
		fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
		if (fd < 0)
			return image_errno(err, it, cfg, real, errno);
		close(fd);
	}
	/* The canonical string could not carry these. */
	if (strpbrk(real, ",:"))
		return hpcn_spank_errorf(err, E_INVALID,
					 "--uenv: image '%s': its path %s contains ',' or ':', which --uenv cannot carry",
					 it->name, real);
	snprintf(it->image, sizeof(it->image), "%s", real);
	it->resolved = true;
	return 0;
}

int hpcn_uenv_spec_resolve(struct hpcn_uenv_spec *spec, const struct hpcn_plugargs *cfg,
			   struct hpcn_error *err)
{
	for (size_t i = 0; i < spec->n; i++)
		if (resolve_item(&spec->item[i], cfg, err) < 0)
			return -1;
	return 0;
}

int hpcn_uenv_spec_to_string(const struct hpcn_uenv_spec *spec, char *buf, size_t cap)
{
	size_t o = 0;

	if (cap == 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < spec->n; i++) {
		int n = snprintf(buf + o, cap - o, "%s%s:%s", i ? "," : "",
				 spec->item[i].image, spec->item[i].mount);

		if (n < 0 || (size_t)n >= cap - o || o + (size_t)n >= HPCN_UENV_ARG_MAX) {
			buf[0] = '\0';
			errno = ENAMETOOLONG;
			return -1;
		}
		o += (size_t)n;
	}
	return (int)o;
}

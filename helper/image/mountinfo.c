/* SPDX-License-Identifier: Apache-2.0 */
/* /proc/<pid>/mountinfo parser. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "util.h"

#define DEFAULT_MOUNTINFO "/proc/self/mountinfo"
/* Fields before the optional ones, and after the "-" separator. */
#define FIXED_BEFORE 6
#define FIXED_AFTER 3

static int bad_line(struct hpcn_error *err, unsigned int lineno, const char *what, ...)
	__attribute__((format(printf, 3, 4)));

static int bad_line(struct hpcn_error *err, unsigned int lineno, const char *what, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, what);
	vsnprintf(detail, sizeof(detail), what, ap);
	va_end(ap);
	return hpcn_error_setf(err, HPCN_E_MOUNT_IO, NULL, "mountinfo line %u: %s", lineno,
			       detail);
}

/* Unsigned decimal, no sign, no empty string, at most max. */
static int parse_uint(const char *s, unsigned long max, unsigned long *v)
{
	unsigned long r = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (r > (max - (unsigned long)(*s - '0')) / 10)
			return -1;
		r = r * 10 + (unsigned long)(*s - '0');
	}
	*v = r;
	return 0;
}

static int parse_int_field(const char *s, int *out)
{
	unsigned long v;

	if (parse_uint(s, INT32_MAX, &v) < 0)
		return -1;
	*out = (int)v;
	return 0;
}

static bool is_octal(char c)
{
	return c >= '0' && c <= '7';
}

/* Decode \ooo escapes in place (never grows). */
static void unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; ) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && is_octal(r[2]) &&
		    is_octal(r[3])) {
			char c = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));

			if (c != '\0') {
				*w++ = c;
				r += 4;
				continue;
			}
		}
		*w++ = *r++;
	}
	*w = '\0';
}

static int parse_tag(const char *f, const char *tag, int *out, bool *matched)
{
	size_t n = strlen(tag);

	if (strncmp(f, tag, n) != 0 || f[n] != ':')
		return 0;
	*matched = true;
	return parse_int_field(f + n + 1, out);
}

int hpcn_mountinfo_parse_line(char *line, unsigned int lineno, struct hpcn_mountinfo_entry *e,
			      struct hpcn_error *err)
{
	char *f[HPCN_MOUNTINFO_FIELDS_MAX];
	size_t nf = 0, sep = 0;
	unsigned long v;
	char *p = line;

	memset(e, 0, sizeof(*e));
	e->line = lineno;
	if (!*line)
		return bad_line(err, lineno, "empty line");
	/* Fields are separated by exactly one space; an empty field (e.g. an
	 * empty source) is kept as "". */
	for (;;) {
		char *sp = strchr(p, ' ');

		if (nf == HPCN_MOUNTINFO_FIELDS_MAX)
			return bad_line(err, lineno, "more than %d fields",
					HPCN_MOUNTINFO_FIELDS_MAX);
		f[nf++] = p;
		if (!sp)
			break;
		*sp = '\0';
		p = sp + 1;
	}
	for (size_t i = FIXED_BEFORE; i < nf; i++)
		if (strcmp(f[i], "-") == 0) {
			sep = i;
			break;
		}
	if (nf < FIXED_BEFORE + 1 + FIXED_AFTER)
		return bad_line(err, lineno, "too few fields (%zu)", nf);
	if (!sep)
		return bad_line(err, lineno, "missing separator \"-\"");
	if (nf - sep - 1 != FIXED_AFTER)
		return bad_line(err, lineno, "%zu fields after \"-\" instead of %d",
				nf - sep - 1, FIXED_AFTER);

	if (parse_int_field(f[0], &e->mount_id) < 0)
		return bad_line(err, lineno, "bad mount id");
	if (parse_int_field(f[1], &e->parent_id) < 0)
		return bad_line(err, lineno, "bad parent id");
	{
		char *colon = strchr(f[2], ':');

		if (!colon)
			return bad_line(err, lineno, "bad major:minor");
		*colon = '\0';
		if (parse_uint(f[2], UINT32_MAX, &v) < 0)
			return bad_line(err, lineno, "bad major:minor");
		e->major = (unsigned int)v;
		if (parse_uint(colon + 1, UINT32_MAX, &v) < 0)
			return bad_line(err, lineno, "bad major:minor");
		e->minor = (unsigned int)v;
	}
	for (size_t i = FIXED_BEFORE; i < sep; i++) {
		bool m = false;

		if (parse_tag(f[i], "shared", &e->shared, &m) < 0 ||
		    parse_tag(f[i], "master", &e->master, &m) < 0 ||
		    parse_tag(f[i], "propagate_from", &e->propagate_from, &m) < 0)
			return bad_line(err, lineno, "bad optional field");
		if (!m && strcmp(f[i], "unbindable") == 0)
			e->unbindable = true;
		/* Other tags: future kernels may add some; ignore them. */
	}
	/* The optional fields raw, as one string: put their spaces back. */
	if (sep > FIXED_BEFORE) {
		for (size_t i = FIXED_BEFORE; i + 1 < sep; i++)
			f[i][strlen(f[i])] = ' ';
		e->optional = f[FIXED_BEFORE];
	} else {
		e->optional = "";
	}
	if (!*f[3] || !*f[4] || !*f[5])
		return bad_line(err, lineno, "empty root, mount point or mount options");
	if (!*f[sep + 1])
		return bad_line(err, lineno, "empty filesystem type");
	for (size_t i = 3; i <= 4; i++)
		unescape(f[i]);
	unescape(f[sep + 1]);
	unescape(f[sep + 2]);
	e->root = f[3];
	e->mount_point = f[4];
	e->mount_options = f[5];
	e->fstype = f[sep + 1];
	e->source = f[sep + 2];
	e->super_options = f[sep + 3];
	return 0;
}

int hpcn_mountinfo_parse_buffer(const char *buf, size_t len, hpcn_mountinfo_cb cb, void *ud,
				struct hpcn_error *err)
{
	_cleanup_free_ char *line = NULL;
	const char *p = buf, *end = buf + len;
	unsigned int lineno = 0;

	if (len == 0)
		return 0;
	if (!buf)
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL, "no mountinfo buffer");
	line = malloc(HPCN_MOUNTINFO_LINE_MAX + 1);
	if (!line)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_IO, ENOMEM, NULL,
					    "mountinfo line buffer");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct hpcn_mountinfo_entry e;
		int r;

		lineno++;
		if (n > HPCN_MOUNTINFO_LINE_MAX)
			return bad_line(err, lineno, "longer than %d bytes",
					HPCN_MOUNTINFO_LINE_MAX);
		if (memchr(p, '\0', n))
			return bad_line(err, lineno, "NUL byte");
		memcpy(line, p, n);
		line[n] = '\0';
		if (hpcn_mountinfo_parse_line(line, lineno, &e, err) < 0)
			return -1;
		r = cb ? cb(&e, ud) : 0;
		if (r > 0)
			return r;
		if (r < 0)
			return -1;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

int hpcn_mountinfo_read(const char *path, char **out, size_t *out_len, struct hpcn_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t cap = 65536, len = 0;

	*out = NULL;
	*out_len = 0;
	if (!path)
		path = DEFAULT_MOUNTINFO;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_IO, errno, NULL, "opening %s", path);
	buf = malloc(cap + 1);
	if (!buf)
		return hpcn_error_set_errno(err, HPCN_E_MOUNT_IO, ENOMEM, NULL, "reading %s", path);
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb;

			if (cap >= HPCN_MOUNTINFO_FILE_MAX)
				return hpcn_error_setf(err, HPCN_E_MOUNT_IO, NULL,
						       "%s is larger than %u bytes", path,
						       HPCN_MOUNTINFO_FILE_MAX);
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb)
				return hpcn_error_set_errno(err, HPCN_E_MOUNT_IO, ENOMEM, NULL,
							    "reading %s", path);
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return hpcn_error_set_errno(err, HPCN_E_MOUNT_IO, errno, NULL,
						    "reading %s", path);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
	*out_len = len;
	return 0;
}

int hpcn_mountinfo_parse_file(const char *path, hpcn_mountinfo_cb cb, void *ud,
			      struct hpcn_error *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r;

	if (hpcn_mountinfo_read(path, &buf, &len, err) < 0)
		return -1;
	r = hpcn_mountinfo_parse_buffer(buf, len, cb, ud, err);
	if (r < 0 && err && err->kind == HPCN_E_MOUNT_IO &&
	    strncmp(err->message, "mount I/O error: mountinfo line", 31) == 0) {
		/* Name the file, not just "mountinfo". */
		char m[HPCN_ERROR_MESSAGE_MAX];

		snprintf(m, sizeof(m), "%s%s", path ? path : DEFAULT_MOUNTINFO,
			 err->message + strlen("mount I/O error: mountinfo"));
		hpcn_error_set(err, HPCN_E_MOUNT_IO, m, NULL);
	}
	return r;
}

bool hpcn_mountinfo_has_option(const char *options, const char *name)
{
	size_t n;

	if (!options || !name || !*name)
		return false;
	n = strlen(name);
	for (const char *p = options; *p; ) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);

		if (l >= n && strncmp(p, name, n) == 0 && (l == n || p[n] == '='))
			return true;
		if (!c)
			break;
		p = c + 1;
	}
	return false;
}

struct find_ctx {
	const char *base;
	size_t blen;
	struct hpcn_uenv_mount *v;
	size_t n, cap;
	struct hpcn_error *err;
};

static int find_cb(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct find_ctx *c = ud;
	const char *name;
	struct hpcn_uenv_mount *m;

	if (strcmp(e->fstype, HPCN_MOUNT_FSTYPE) != 0)
		return 0;
	if (strncmp(e->mount_point, c->base, c->blen) != 0 ||
	    e->mount_point[c->blen] != '/')
		return 0;
	name = e->mount_point + c->blen + 1;
	if (!*name || strchr(name, '/') || strlen(name) > NAME_MAX ||
	    strlen(e->mount_point) >= PATH_MAX || strlen(e->source) >= PATH_MAX)
		return 0;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 8;
		struct hpcn_uenv_mount *nv = realloc(c->v, ncap * sizeof(*nv));

		if (!nv) {
			hpcn_error_set_errno(c->err, HPCN_E_MOUNT_IO, ENOMEM, NULL,
					     "collecting uenv mounts");
			return -1;
		}
		c->v = nv;
		c->cap = ncap;
	}
	m = &c->v[c->n++];
	memset(m, 0, sizeof(*m));
	m->mount_id = e->mount_id;
	m->major = e->major;
	m->minor = e->minor;
	snprintf(m->key, sizeof(m->key), "%s", name);
	m->key_valid = hpcn_image_id_from_key(name, &m->id) == 0;
	snprintf(m->mount_point, sizeof(m->mount_point), "%s", e->mount_point);
	snprintf(m->source, sizeof(m->source), "%s", e->source);
	return 0;
}

static int find_setup(const char *base, struct find_ctx *c, struct hpcn_uenv_mount **out,
		      size_t *n_out, struct hpcn_error *err)
{
	*out = NULL;
	*n_out = 0;
	memset(c, 0, sizeof(*c));
	if (!base || base[0] != '/')
		return hpcn_error_setf(err, HPCN_E_INVALID_ARGUMENT, NULL,
				       "uenv base must be absolute: %s", base ? base : "(null)");
	c->base = base;
	c->blen = strlen(base);
	while (c->blen > 0 && base[c->blen - 1] == '/')
		c->blen--;
	c->err = err;
	return 0;
}

static int find_finish(int r, struct find_ctx *c, struct hpcn_uenv_mount **out, size_t *n_out)
{
	if (r < 0) {
		free(c->v);
		return -1;
	}
	if (c->n == 0) {
		free(c->v);
		c->v = NULL;
	}
	*out = c->v;
	*n_out = c->n;
	return 0;
}

int hpcn_mountinfo_find_uenv_buffer(const char *buf, size_t len, const char *base,
				    struct hpcn_uenv_mount **out, size_t *n_out,
				    struct hpcn_error *err)
{
	struct find_ctx c;

	if (find_setup(base, &c, out, n_out, err) < 0)
		return -1;
	return find_finish(hpcn_mountinfo_parse_buffer(buf, len, find_cb, &c, err), &c, out,
			   n_out);
}

int hpcn_mountinfo_find_uenv(const char *path, const char *base, struct hpcn_uenv_mount **out,
			     size_t *n_out, struct hpcn_error *err)
{
	struct find_ctx c;

	if (find_setup(base, &c, out, n_out, err) < 0)
		return -1;
	return find_finish(hpcn_mountinfo_parse_file(path, find_cb, &c, err), &c, out, n_out);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A parser of /proc/<pid>/mountinfo (proc(5)):
 *
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
 *
 * The kernel's mount table is the truth the MountManager reconstructs from
 * after a restart, so the parser is strict where a mistake would mislead
 * (numbers, the "-" separator, exactly three fields after it) and never
 * crashes on garbage: lines are bounded, a malformed line stops the parse with
 * an error naming its number. It works on a buffer (for tests and fuzzing) or
 * a file, and calls back once per mount; no allocation per line, no state.
 */
#ifndef HPCN_HELPER_MOUNTINFO_H
#define HPCN_HELPER_MOUNTINFO_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <hpcnode/error.h>

#include "image.h"

/* Longest line accepted: 3 paths of PATH_MAX, each escaped up to 4x, and
 * options, fit comfortably. */
#define HPCN_MOUNTINFO_LINE_MAX 65536
/* Fields in one line (optional fields included). */
#define HPCN_MOUNTINFO_FIELDS_MAX 64
/* Largest mountinfo file read (a node with ~100k mounts). */
#define HPCN_MOUNTINFO_FILE_MAX (64u << 20)

/*
 * One mount. Strings point into the parser's line buffer and are valid only
 * during the callback. Paths and names are decoded (the kernel's octal
 * escapes \040 space, \011 tab, \012 newline, \134 backslash, and any other
 * \ooo but \000); options are kept raw, because a decoded "\054" would be
 * indistinguishable from the comma that separates options. A backslash not
 * followed by three octal digits is kept as it is.
 */
struct hpcn_mountinfo_entry {
	unsigned int line;          /* 1-based line number */
	int mount_id;
	int parent_id;
	unsigned int major;         /* st_dev of the mount's superblock */
	unsigned int minor;
	const char *root;           /* root of the mount within its filesystem */
	const char *mount_point;    /* relative to the reading process's root */
	const char *mount_options;  /* per-mount, raw: "ro,nosuid,nodev,relatime" */
	const char *optional;       /* raw optional fields, space-separated; "" if none */
	int shared;                 /* shared:N peer group, 0 when absent */
	int master;                 /* master:N, 0 when absent */
	int propagate_from;         /* propagate_from:N, 0 when absent */
	bool unbindable;
	const char *fstype;         /* "squashfs", "fuse.sshfs" */
	const char *source;         /* "/dev/loop3", "none"; may be "" */
	const char *super_options;  /* per-superblock, raw */
};

/* Return 0 to go on, > 0 to stop the parse (which then returns that value),
 * < 0 to abort it (the parse returns -1; fill err yourself through ud). */
typedef int (*hpcn_mountinfo_cb)(const struct hpcn_mountinfo_entry *e, void *ud);

/*
 * Parse one line in place (no newline; NUL-terminated; lineno for messages).
 * 0, or -1 with MountError Io "mountinfo line N: ...".
 */
int hpcn_mountinfo_parse_line(char *line, unsigned int lineno, struct hpcn_mountinfo_entry *e,
			      struct hpcn_error *err);

/*
 * Parse len bytes of mountinfo text (need not be NUL-terminated; the last
 * line may lack its newline). Empty input is zero mounts. An empty line, a
 * NUL byte, a line longer than HPCN_MOUNTINFO_LINE_MAX or a malformed line is
 * an error (MountError Io naming the line number). Returns 0 after the last
 * line, the callback's positive value when it stopped, or -1.
 */
int hpcn_mountinfo_parse_buffer(const char *buf, size_t len, hpcn_mountinfo_cb cb, void *ud,
				struct hpcn_error *err);

/* Read a whole mountinfo file (NULL: /proc/self/mountinfo) into a malloc'd
 * NUL-terminated buffer, at most HPCN_MOUNTINFO_FILE_MAX bytes. 0 or -1
 * (MountError Io naming the file). */
int hpcn_mountinfo_read(const char *path, char **buf, size_t *len, struct hpcn_error *err);

/* hpcn_mountinfo_read + hpcn_mountinfo_parse_buffer. */
int hpcn_mountinfo_parse_file(const char *path, hpcn_mountinfo_cb cb, void *ud,
			      struct hpcn_error *err);

/* Is name one of the comma-separated options (exactly "name", or "name=...")? */
bool hpcn_mountinfo_has_option(const char *options, const char *name);

/* A squashfs mounted directly under the uenv base, as found in the table. */
struct hpcn_uenv_mount {
	int mount_id;
	unsigned int major;         /* the loop device */
	unsigned int minor;
	bool key_valid;             /* the directory name is an image key */
	char key[NAME_MAX + 1];     /* the directory name under base */
	struct hpcn_image_id id;    /* parsed from key when key_valid */
	char mount_point[PATH_MAX];
	char source[PATH_MAX];      /* "/dev/loopN" */
};

/*
 * Every squashfs mount whose mount point is base/NAME (one component, base
 * absolute, trailing slashes ignored), in table order; stacked mounts on one
 * directory appear once per mount. *out is malloc'd (free() it; NULL when
 * *n_out is 0). Returns 0 or -1 (MountError Io / InvalidArgument).
 * path NULL: /proc/self/mountinfo.
 */
int hpcn_mountinfo_find_uenv(const char *path, const char *base, struct hpcn_uenv_mount **out,
			     size_t *n_out, struct hpcn_error *err);
int hpcn_mountinfo_find_uenv_buffer(const char *buf, size_t len, const char *base,
				    struct hpcn_uenv_mount **out, size_t *n_out,
				    struct hpcn_error *err);

#endif

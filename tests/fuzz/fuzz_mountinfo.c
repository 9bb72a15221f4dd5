/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mountinfo parser, from which the helper rebuilds its refcounts after a
 * restart (a user controls mount point names, so the table holds hostile
 * text). The input is the table; it is not NUL-terminated, as the API
 * allows. Properties checked, from mountinfo.h:
 *  - callbacks come once per line, numbered 1, 2, ...; a parse that succeeds
 *    saw every line; a callback's positive value stops the parse and is
 *    returned;
 *  - every uenv mount found is a squashfs directly under the base, its key
 *    its last component, and a valid key survives key(parse(key));
 *  - trailing slashes on the base change nothing.
 */
#include <stdbool.h>
#include <string.h>

#include <hpcnode/constants.h>

#include "fuzz.h"
#include "image/image.h"

#define BASE "/run/pact/uenv"

struct count {
	unsigned int n;
	unsigned int stop_after;    /* 0 = never */
};

static int count_cb(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct count *c = ud;

	FUZZ_CHECK(e->line == c->n + 1, "line %u after %u lines", e->line, c->n);
	FUZZ_CHECK(e->root && e->mount_point && e->mount_options && e->optional &&
		   e->fstype && e->source && e->super_options, "a NULL field on line %u",
		   e->line);
	(void)hpcn_mountinfo_has_option(e->mount_options, "ro");
	(void)hpcn_mountinfo_has_option(e->super_options, "errors");
	c->n++;
	return c->stop_after && c->n == c->stop_after ? 7 : 0;
}

static void check_found(const struct hpcn_uenv_mount *m)
{
	struct hpcn_image_id id;
	char key[HPCN_IMAGE_KEY_MAX];

	FUZZ_CHECK(strncmp(m->mount_point, BASE "/", strlen(BASE "/")) == 0 &&
		   strcmp(m->mount_point + strlen(BASE "/"), m->key) == 0 &&
		   m->key[0] && !strchr(m->key, '/'),
		   "found '%s' (key '%s') for base " BASE, m->mount_point, m->key);
	if (!m->key_valid) {
		FUZZ_CHECK(hpcn_image_id_from_key(m->key, &id) < 0, "key_valid wrong: %s", m->key);
		return;
	}
	FUZZ_CHECK(hpcn_image_id_key(&m->id, key, sizeof(key)) >= 0 && strcmp(key, m->key) == 0,
		   "key '%s' parses but prints back as '%s'", m->key, key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct count all = { 0 }, first = { .stop_after = 1 };
	struct hpcn_uenv_mount *v = NULL, *v2 = NULL;
	size_t n = 0, n2 = 0, lines = 0;
	struct hpcn_error err;
	int r, r2;

	for (size_t i = 0; i < size; i++)
		lines += buf[i] == '\n';
	if (size && buf[size - 1] != '\n')
		lines++;

	hpcn_error_clear(&err);
	r = hpcn_mountinfo_parse_buffer(buf, size, count_cb, &all, &err);
	FUZZ_CHECK(r == 0 || r == -1, "parse returned %d", r);
	if (r == 0)
		FUZZ_CHECK(all.n == lines, "parse succeeded after %u of %zu lines", all.n, lines);
	else
		FUZZ_CHECK(err.kind == HPCN_E_MOUNT_IO && strstr(err.message, "line"),
			   "kind %d: %s", (int)err.kind, err.message);
	r = hpcn_mountinfo_parse_buffer(buf, size, count_cb, &first, &err);
	if (all.n > 0)
		FUZZ_CHECK(r == 7 && first.n == 1, "the callback's stop gave %d after %u", r,
			   first.n);

	hpcn_error_clear(&err);
	r = hpcn_mountinfo_find_uenv_buffer(buf, size, BASE, &v, &n, &err);
	r2 = hpcn_mountinfo_find_uenv_buffer(buf, size, BASE "//", &v2, &n2, &err);
	FUZZ_CHECK(r == r2 && n == n2, "a trailing '/' on the base changed the result: "
		   "%d/%zu vs %d/%zu", r, n, r2, n2);
	FUZZ_CHECK(r < 0 || n <= all.n, "%zu uenv mounts in %u lines", n, all.n);
	FUZZ_CHECK((n == 0) == (v == NULL), "%zu mounts, array %p", n, (void *)v);
	for (size_t i = 0; r == 0 && i < n; i++) {
		check_found(&v[i]);
		FUZZ_CHECK(v[i].mount_id == v2[i].mount_id, "mount %zu differs", i);
	}
	free(v);
	free(v2);
	return 0;
}

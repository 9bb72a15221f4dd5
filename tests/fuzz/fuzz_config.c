/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The helper's configuration parser (ini through libinih, then our own value
 * parsing and validation). Properties checked, from config.h:
 *  - a refused file leaves the config holding nothing, with an
 *    InvalidArgument error that names the source;
 *  - an accepted one dumps (--print-config) to text that loads back to an
 *    equal config, and the deep copy is equal too;
 *  - the allowlist queries and the SIGHUP merge run on whatever was loaded.
 * hpcn_config_free always runs (LeakSanitizer checks it).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define NAME "fuzz.conf"

static void queries(const struct hpcn_config *c)
{
	static const char *const paths[] = {
		"/user-environment", "/user-tools", "/user-environment/", "/images/a.sqfs",
		"/images2/a.sqfs", "/images/../etc/shadow", "relative", "", "/",
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		bool allowed = hpcn_config_mount_point_allowed(c, paths[i]);

		FUZZ_CHECK(allowed || !hpcn_config_mount_point_creatable(c, paths[i]),
			   "%s may be created but is not allowed", paths[i]);
		(void)hpcn_config_image_allowed(c, paths[i]);
	}
	FUZZ_CHECK(hpcn_config_peer_allowed(c, 0, 0), "root is refused");
	(void)hpcn_config_peer_allowed(c, 1000, 1000);
}

static void reload(const struct hpcn_config *c)
{
	struct hpcn_config old, next;
	struct hpcn_strv changed = { 0 }, refused = { 0 };

	FUZZ_CHECK(hpcn_config_defaults(&old) == 0, "defaults: out of memory");
	FUZZ_CHECK(hpcn_config_copy(&next, c) == 0, "copy: out of memory");
	FUZZ_CHECK(hpcn_config_reload_merge(&old, &next, &changed, &refused) == 0,
		   "reload merge failed");
	hpcn_strv_free(&changed);
	hpcn_strv_free(&refused);
	hpcn_config_free(&next);
	hpcn_config_free(&old);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hpcn_config c, back, copy;
	struct hpcn_error err;
	char *text = fuzz_cstr(data, size), *dump = NULL;
	size_t dump_len = 0;
	FILE *f;

	hpcn_error_clear(&err);
	if (hpcn_config_load_string(&c, text, NAME, &err) < 0) {
		FUZZ_CHECK(err.kind == HPCN_E_INVALID_ARGUMENT, "kind %d: %s", (int)err.kind,
			   err.message);
		FUZZ_CHECK(strstr(err.message, NAME) != NULL, "error without the file name: %s",
			   err.message);
		FUZZ_CHECK(c.allowed_mount_points.n == 0 && c.image_prefixes.n == 0 &&
			   c.create_mount_points.n == 0, "a refused config holds lists");
		hpcn_config_free(&c);
		free(text);
		return 0;
	}
	queries(&c);

	f = open_memstream(&dump, &dump_len);
	FUZZ_CHECK(f != NULL, "open_memstream failed");
	FUZZ_CHECK(hpcn_config_dump(&c, f) == 0, "dump failed");
	FUZZ_CHECK(fclose(f) == 0, "fclose of the memstream failed");

	hpcn_error_clear(&err);
	FUZZ_CHECK(hpcn_config_load_string(&back, dump, "dump", &err) == 0,
		   "the dump of an accepted config is refused: %s\n--- input\n%s\n--- dump\n%s",
		   err.message, text, dump);
	FUZZ_CHECK(hpcn_config_equal(&c, &back),
		   "the dump loads back to a different config\n--- input\n%s\n--- dump\n%s",
		   text, dump);
	FUZZ_CHECK(hpcn_config_copy(&copy, &c) == 0, "copy: out of memory");
	FUZZ_CHECK(hpcn_config_equal(&c, &copy), "the copy differs");
	reload(&c);

	hpcn_config_free(&copy);
	hpcn_config_free(&back);
	hpcn_config_free(&c);
	free(dump);
	free(text);
	return 0;
}

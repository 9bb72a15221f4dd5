/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit record writer (helper/jsonline.c): every audit record carries
 * strings a user chose (image paths, ids), written without jansson. Input:
 * KEY \0 VALUE \0 KEY \0 VALUE (any bytes). Properties checked:
 *  - the record is one line ending in '\n', and jansson parses it;
 *  - a value that is valid UTF-8 comes back byte for byte; any other comes
 *    back as valid UTF-8 of no more bytes than the input (each invalid byte
 *    becomes one '?');
 *  - nesting and numbers survive.
 * Starting from a tiny buffer, every record also exercises the growth.
 */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "audit/jsonline.h"

/* Is s (len bytes, no NUL) what jansson calls valid UTF-8? */
static bool valid_utf8(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	bool ok = j != NULL;

	json_decref(j);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *parts[4];
	size_t lens[4], n;
	char *k1, *v1, *k2, *v2;
	char small[16];
	struct hpcn_jsonline w;
	const char *line;
	json_error_t jerr;
	json_t *root, *got;
	size_t len;

	n = fuzz_split(data, size, parts, lens, 4);
	k1 = fuzz_cstr(parts[0], lens[0]);
	v1 = fuzz_cstr(n > 1 ? parts[1] : NULL, n > 1 ? lens[1] : 0);
	k2 = fuzz_cstr(n > 2 ? parts[2] : NULL, n > 2 ? lens[2] : 0);
	v2 = fuzz_cstr(n > 3 ? parts[3] : NULL, n > 3 ? lens[3] : 0);

	hpcn_jsonline_init(&w, small, sizeof(small));
	hpcn_jsonline_open(&w, NULL);
	hpcn_jsonline_str(&w, "v1", v1);
	hpcn_jsonline_int(&w, "n", -(long long)size);
	hpcn_jsonline_open(&w, "o");
	hpcn_jsonline_str(&w, "v2", v2);
	hpcn_jsonline_null(&w, "z");
	hpcn_jsonline_close(&w);
	/* User-chosen keys too (in their own object, so that they cannot
	 * collide with the fixed ones): the writer must escape them as well. */
	hpcn_jsonline_open(&w, "u");
	hpcn_jsonline_str(&w, k1, k2);
	hpcn_jsonline_close(&w);
	hpcn_jsonline_close(&w);
	line = hpcn_jsonline_finish(&w, &len);
	FUZZ_CHECK(line != NULL, "no record");
	FUZZ_CHECK(strlen(line) == len && len > 0 && line[len - 1] == '\n',
		   "not one terminated line (%zu bytes)", len);
	FUZZ_CHECK(memchr(line, '\n', len - 1) == NULL, "a newline inside the record");
	root = json_loads(line, 0, &jerr);
	FUZZ_CHECK(root != NULL, "jansson refuses the record (%s): %s", jerr.text, line);

	got = json_object_get(root, "v1");
	FUZZ_CHECK(json_is_string(got), "v1 lost");
	if (valid_utf8(v1, strlen(v1)))
		FUZZ_CHECK(strcmp(json_string_value(got), v1) == 0, "v1 changed");
	else
		FUZZ_CHECK(json_string_length(got) <= strlen(v1), "v1 grew");
	got = json_object_get(json_object_get(root, "o"), "v2");
	FUZZ_CHECK(json_is_string(got), "o.v2 lost");
	if (valid_utf8(v2, strlen(v2)))
		FUZZ_CHECK(strcmp(json_string_value(got), v2) == 0, "o.v2 changed");
	FUZZ_CHECK(json_is_null(json_object_get(json_object_get(root, "o"), "z")), "o.z lost");
	FUZZ_CHECK(json_integer_value(json_object_get(root, "n")) == -(long long)size, "n");
	if (valid_utf8(k1, strlen(k1)) && valid_utf8(k2, strlen(k2))) {
		got = json_object_get(json_object_get(root, "u"), k1);
		FUZZ_CHECK(json_is_string(got) && strcmp(json_string_value(got), k2) == 0,
			   "member '%s' lost", k1);
	}
	json_decref(root);
	hpcn_jsonline_free(&w);
	free(k1);
	free(v1);
	free(k2);
	free(v2);
	return 0;
}

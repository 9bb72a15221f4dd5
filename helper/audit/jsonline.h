/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A compact, append-only JSON writer for one-line records (the audit log).
 *
 * Why not jansson here: an audit record is written for every namespace
 * handoff, and building it as a jansson tree then dumping it was 42 % of the
 * helper's work per handoff (docs/benchmarks.md). Records are flat and their
 * shape is fixed, so they are written straight into a buffer: a stack buffer
 * first, the heap only for records that outgrow it. jansson still parses
 * every record in the tests.
 *
 * Strings are escaped as RFC 8259 asks; bytes that are not valid UTF-8 (a
 * user's path may be any bytes) become '?', so the record is always valid
 * JSON and always one line.
 */
#ifndef HPCN_HELPER_JSONLINE_H
#define HPCN_HELPER_JSONLINE_H

#include <stdbool.h>
#include <stddef.h>

struct hpcn_jsonline {
	char *buf;	/* stack or heap */
	size_t len, cap;
	bool heap;	/* buf was malloc'd by the writer */
	bool oom;	/* a grow failed: the record is incomplete */
	bool first;	/* no member written yet at the current level */
};

/* Starts an empty line in the caller's storage (which may be NULL/0). */
void hpcn_jsonline_init(struct hpcn_jsonline *w, char *storage, size_t cap);
void hpcn_jsonline_free(struct hpcn_jsonline *w);

void hpcn_jsonline_open(struct hpcn_jsonline *w, const char *key);	/* "key":{ or { */
void hpcn_jsonline_close(struct hpcn_jsonline *w);			/* } */
void hpcn_jsonline_str(struct hpcn_jsonline *w, const char *key, const char *value);
void hpcn_jsonline_int(struct hpcn_jsonline *w, const char *key, long long value);
void hpcn_jsonline_null(struct hpcn_jsonline *w, const char *key);

/* Appends "\n" and returns the NUL-terminated line, or NULL when out of memory. */
const char *hpcn_jsonline_finish(struct hpcn_jsonline *w, size_t *len);

#endif

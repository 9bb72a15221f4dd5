/* SPDX-License-Identifier: Apache-2.0 */
/* One-line JSON records, see jsonline.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonline.h"

void hpcn_jsonline_init(struct hpcn_jsonline *w, char *storage, size_t cap)
{
	*w = (struct hpcn_jsonline){ .buf = storage, .cap = storage ? cap : 0, .first = true };
}

void hpcn_jsonline_free(struct hpcn_jsonline *w)
{
	if (w->heap)
		free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
	w->heap = false;
}

/* Room for n more bytes and a NUL. */
static bool reserve(struct hpcn_jsonline *w, size_t n)
{
	size_t cap;
	char *b;

	if (w->oom)
		return false;
	if (w->len + n + 1 <= w->cap)
		return true;
	cap = w->cap ? w->cap : 256;
	while (cap < w->len + n + 1)
		cap *= 2;
	if (w->heap) {
		b = realloc(w->buf, cap);
	} else {
		b = malloc(cap);
		if (b && w->len)
			memcpy(b, w->buf, w->len);
	}
	if (!b) {
		w->oom = true;
		return false;
	}
	w->buf = b;
	w->cap = cap;
	w->heap = true;
	return true;
}

static void put(struct hpcn_jsonline *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		/* No overlongs (e0 80..9f), no surrogates (ed a0..bf). */
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f))
			return 0;
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

static void put_string(struct hpcn_jsonline *w, const char *str)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)(str ? str : "");

	put(w, "\"", 1);
	while (*s) {
		const unsigned char *run = s;
		size_t n;

		/* Copy the longest run that needs no escaping in one go. */
		while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
			s++;
		if (s > run)
			put(w, (const char *)run, (size_t)(s - run));
		if (!*s)
			break;
		if (*s == '"' || *s == '\\') {
			char e[2] = { '\\', (char)*s };

			put(w, e, 2);
			s++;
		} else if (*s < 0x20) {
			char e[6] = { '\\', 'u', '0', '0', hex[*s >> 4], hex[*s & 0xf] };

			switch (*s) {
			case '\n': put(w, "\\n", 2); break;
			case '\t': put(w, "\\t", 2); break;
			case '\r': put(w, "\\r", 2); break;
			default: put(w, e, 6); break;
			}
			s++;
		} else if ((n = utf8_len(s)) > 0) {
			put(w, (const char *)s, n);
			s += n;
		} else {
			put(w, "?", 1);
			s++;
		}
	}
	put(w, "\"", 1);
}

static void member(struct hpcn_jsonline *w, const char *key)
{
	if (!w->first)
		put(w, ",", 1);
	w->first = false;
	if (key) {
		put_string(w, key);
		put(w, ":", 1);
	}
}

void hpcn_jsonline_open(struct hpcn_jsonline *w, const char *key)
{
	if (w->len)
		member(w, key);
	put(w, "{", 1);
	w->first = true;
}

void hpcn_jsonline_close(struct hpcn_jsonline *w)
{
	put(w, "}", 1);
	w->first = false;
}

void hpcn_jsonline_str(struct hpcn_jsonline *w, const char *key, const char *value)
{
	member(w, key);
	put_string(w, value);
}

void hpcn_jsonline_int(struct hpcn_jsonline *w, const char *key, long long value)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%lld", value);

	member(w, key);
	put(w, num, (size_t)n);
}

void hpcn_jsonline_null(struct hpcn_jsonline *w, const char *key)
{
	member(w, key);
	put(w, "null", 4);
}

const char *hpcn_jsonline_finish(struct hpcn_jsonline *w, size_t *len)
{
	put(w, "\n", 1);
	if (w->oom || !w->buf)
		return NULL;
	w->buf[w->len] = '\0';
	if (len)
		*len = w->len;
	return w->buf;
}

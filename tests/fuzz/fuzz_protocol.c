/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocol decoder, the helper's first contact with whatever a peer
 * sends. Properties checked, from protocol.h:
 *  - a failed decode leaves the message zeroed (seq aside) and sets one of
 *    the protocol error kinds, with a message free of control bytes;
 *  - what decodes re-encodes (unless the encoding outgrows the record
 *    limit: reals and escapes may print longer than they were written),
 *    and the encoding decodes to the same tag, version and seq;
 *  - encode(decode(encode(m))) == encode(m), byte for byte: a peer that
 *    relays a message does not alter it;
 *  - the Error reply the helper builds from a decode failure (echoing the
 *    seq) always encodes: a hostile record never leaves it speechless.
 * Every decoded message is freed (LeakSanitizer checks it).
 */
#include <stdbool.h>
#include <string.h>

#include <hpcnode/constants.h>
#include <hpcnode/protocol.h>

#include "fuzz.h"

static bool decode_error_kind(enum hpcn_error_kind k)
{
	return k == HPCN_E_PROTO_MALFORMED || k == HPCN_E_PROTO_TOO_LARGE ||
	       k == HPCN_E_PROTO_UNSUPPORTED_VERSION || k == HPCN_E_PROTO_UNKNOWN_TAG ||
	       k == HPCN_E_INVALID_ARGUMENT || k == HPCN_E_INTERNAL;
}

static void check_printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		FUZZ_CHECK(*p >= 0x20 && *p != 0x7f,
			   "control byte 0x%02x in an error message: %s", *p, s);
}

static void check_zeroed(const struct hpcn_msg *m)
{
	struct hpcn_msg zero;

	memset(&zero, 0, sizeof(zero));
	zero.seq = m->seq;
	FUZZ_CHECK(memcmp(&zero, m, sizeof(zero)) == 0,
		   "a failed decode left data in the message (tag %d)", (int)m->tag);
}

static void reply_error(const struct hpcn_error *cause, uint64_t seq)
{
	struct hpcn_msg reply, back;
	struct hpcn_error err;
	char *out = NULL;
	size_t len = 0;

	FUZZ_CHECK(hpcn_msg_error_from(&reply, seq, cause) == 0, "cannot build an Error reply");
	hpcn_error_clear(&err);
	FUZZ_CHECK(hpcn_msg_encode(&reply, &out, &len, &err) == 0,
		   "the Error reply to '%s' does not encode: %s", cause->message, err.message);
	FUZZ_CHECK(hpcn_msg_decode(out, len, &back, &err) == 0 && back.seq == seq &&
		   back.u.error.kind == reply.u.error.kind,
		   "the Error reply does not decode back: %s\n%s", err.message, out);
	hpcn_msg_free(&back);
	hpcn_msg_free(&reply);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hpcn_msg m, m2;
	struct hpcn_error err, err2;
	char *out = NULL, *out2 = NULL;
	size_t len = 0, len2 = 0;

	hpcn_error_clear(&err);
	if (hpcn_msg_decode(data, size, &m, &err) < 0) {
		FUZZ_CHECK(decode_error_kind(err.kind), "decode failed with kind %d: %s",
			   (int)err.kind, err.message);
		FUZZ_CHECK(err.message[0] != '\0', "decode failed without a message");
		check_printable(err.message);
		check_zeroed(&m);
		reply_error(&err, m.seq);
		hpcn_msg_free(&m);
		return 0;
	}
	FUZZ_CHECK(hpcn_tag_name(m.tag) != NULL, "decoded an invalid tag %d", (int)m.tag);
	FUZZ_CHECK(m.version >= 1 && m.version <= HPCN_PROTOCOL_VERSION,
		   "decoded version %u", (unsigned)m.version);
	if (m.tag == HPCN_TAG_ERROR) {
		/* What a client does with a received Error. */
		hpcn_error_clear(&err2);
		hpcn_msg_error_to(&m, &err2);
		FUZZ_CHECK(err2.kind != HPCN_E_NONE, "an Error message gave no error");
	}

	hpcn_error_clear(&err);
	if (hpcn_msg_encode(&m, &out, &len, &err) < 0) {
		FUZZ_CHECK(err.kind == HPCN_E_PROTO_TOO_LARGE,
			   "decoded %s (seq %llu) but cannot encode it: %s",
			   hpcn_tag_name(m.tag), (unsigned long long)m.seq, err.message);
		FUZZ_CHECK(out == NULL && len == 0, "failed encode returned a buffer");
		goto out;
	}
	FUZZ_CHECK(out != NULL && len > 0 && len <= HPCN_MAX_MESSAGE_SIZE && out[len] == '\0',
		   "encode returned %zu bytes", len);

	hpcn_error_clear(&err);
	FUZZ_CHECK(hpcn_msg_decode(out, len, &m2, &err) == 0,
		   "our own encoding does not decode: %s\n%s", err.message, out);
	FUZZ_CHECK(m2.tag == m.tag && m2.seq == m.seq && m2.version == m.version,
		   "round trip changed the envelope: %s/%llu/%u -> %s/%llu/%u",
		   hpcn_tag_name(m.tag), (unsigned long long)m.seq, (unsigned)m.version,
		   hpcn_tag_name(m2.tag), (unsigned long long)m2.seq, (unsigned)m2.version);

	hpcn_error_clear(&err);
	FUZZ_CHECK(hpcn_msg_encode(&m2, &out2, &len2, &err) == 0,
		   "re-encoding a decoded encoding failed: %s\n%s", err.message, out);
	FUZZ_CHECK(len2 == len && memcmp(out, out2, len) == 0,
		   "encoding is not a fixpoint:\n%s\n%s", out, out2);
	hpcn_msg_free(&m2);
out:
	free(out);
	free(out2);
	hpcn_msg_free(&m);
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the wire protocol's tests share (test_protocol.c,
 * test_protocol_roundtrip.c, test_protocol_refusals.c): field-by-field
 * comparison of two messages, the encode-decode-compare round trip, and the
 * check of an expected error.
 */
#ifndef HPCN_TESTS_PROTOCOL_UTIL_H
#define HPCN_TESTS_PROTOCOL_UTIL_H

#include <hpcnode/protocol.h>

/* Field-by-field equality of two messages; ctx names the case. */
void expect_msg_equal(const char *ctx, const struct hpcn_msg *a, const struct hpcn_msg *b);

/* Encode, decode, compare; returns the encoding (caller frees). */
char *round_trip(const char *ctx, const struct hpcn_msg *m);

/* rv is -1 and err is of kind, its message containing needle (if any). */
void expect_error(const char *ctx, int rv, const struct hpcn_error *err,
		  enum hpcn_error_kind kind, const char *needle);

#endif

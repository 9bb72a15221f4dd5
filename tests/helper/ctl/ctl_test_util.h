/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What hpc-nodectl's pure tests share (test_ctl_format.c, test_ctl_args.c):
 * capturing what a function prints into a FILE.
 */
#ifndef HPCN_TESTS_CTL_TEST_UTIL_H
#define HPCN_TESTS_CTL_TEST_UTIL_H

#include <stddef.h>
#include <stdio.h>

struct capture {
	FILE *f;
	char *buf;
	size_t len;
};

/* A memory stream in c->f. */
void cap_open(struct capture *c);
/* Close the stream; what was written, NUL-terminated (freed by cap_free). */
const char *cap_text(struct capture *c);
void cap_free(struct capture *c);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What hpc-nodectl's pure tests share: see ctl_test_util.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctl_test_util.h"

/* ---- capturing output ---- */

void cap_open(struct capture *c)
{
	memset(c, 0, sizeof(*c));
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
}

const char *cap_text(struct capture *c)
{
	assert_int_equal(fclose(c->f), 0);
	c->f = NULL;
	return c->buf;
}

void cap_free(struct capture *c)
{
	if (c->f)
		fclose(c->f);
	free(c->buf);
}

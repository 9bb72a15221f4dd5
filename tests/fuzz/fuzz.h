/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the fuzz targets share. Each tests/fuzz/fuzz_<target>.c defines
 * LLVMFuzzerTestOneInput(); it is linked either with libFuzzer (clang,
 * contrib/fuzz.sh) or with replay_main.c, which runs it over the stored
 * corpus and regressions in every build (ctest fuzz_replay_<target>).
 *
 * A target checks properties the code under test promises (round trips,
 * error kinds, bounds) with FUZZ_CHECK: a broken promise aborts, and both
 * libFuzzer and ctest report it like a sanitizer finding.
 */
#ifndef HPCN_TESTS_FUZZ_H
#define HPCN_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)							\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "fuzz: %s:%d: check failed: %s: ",	\
				__FILE__, __LINE__, #cond);			\
			fprintf(stderr, __VA_ARGS__);				\
			fputc('\n', stderr);					\
			abort();						\
		}								\
	} while (0)

/* A NUL-terminated copy of the input (the parsers under test take C strings;
 * an embedded NUL simply ends the string early). Aborts on ENOMEM: an
 * allocation failure is not a finding. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	FUZZ_CHECK(s != NULL, "out of memory copying %zu bytes", size);
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * Split the input at NUL bytes into at most max parts, which point into
 * data and are not terminated: part i is parts[i], lens[i]. The last part
 * takes the rest, NULs included. Returns the number of parts (>= 1).
 */
static inline size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **parts,
				size_t *lens, size_t max)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i < size && n + 1 < max; i++) {
		if (data[i] != '\0')
			continue;
		parts[n] = data + start;
		lens[n++] = i - start;
		start = i + 1;
	}
	parts[n] = data + start;
	lens[n++] = size - start;
	return n;
}

#endif

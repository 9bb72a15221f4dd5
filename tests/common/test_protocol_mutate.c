/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hostile input, deterministically: every prefix of every valid vector, and
 * every byte of it replaced by characters that matter to JSON. Each result
 * must either decode to a message that encodes and decodes again, or fail
 * with a protocol/request error, a message, and msg zeroed (seq aside).
 * Meant to run under ASan/UBSan (HPCN_SANITIZE=ON) as well.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <hpcnode/protocol.h>

static const unsigned char probes[] = {
	'"', '\\', '{', '}', '[', ']', ',', ':', '0', '9', '-', '.', 'e', 'n', ' ',
	0x00, 0x01, 0x7f, 0x80, 0xc3, 0xed, 0xff,
};

static size_t n_ok, n_err;

static void check_one(const char *name, const char *buf, size_t len)
{
	struct hpcn_msg m, again, zero;
	struct hpcn_error err;
	char *enc;
	size_t elen;

	if (hpcn_msg_decode(buf, len, &m, &err) == 0) {
		if (hpcn_msg_encode(&m, &enc, &elen, &err) != 0)
			fail_msg("%s: decoded input does not encode: %s", name, err.message);
		if (hpcn_msg_decode(enc, elen, &again, &err) != 0)
			fail_msg("%s: own encoding does not decode: %s", name, err.message);
		if (again.tag != m.tag || again.seq != m.seq)
			fail_msg("%s: tag/seq changed on re-decode", name);
		free(enc);
		hpcn_msg_free(&again);
		hpcn_msg_free(&m);
		n_ok++;
		return;
	}
	if (err.kind < HPCN_E_PROTO_MALFORMED || err.message[0] == '\0')
		fail_msg("%s: unexpected error kind %d \"%s\"", name, err.kind, err.message);
	memset(&zero, 0, sizeof(zero));
	zero.seq = m.seq;
	if (memcmp(&m, &zero, sizeof(m)) != 0)
		fail_msg("%s: message not zeroed after an error", name);
	n_err++;
}

static int is_json(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

static void test_mutations(void **state)
{
	struct dirent **ents;
	int n = scandir(HPCN_VECTORS_DIR "/valid", &ents, is_json, alphasort);

	(void)state;
	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		char path[4096], *buf, *work;
		struct stat st;
		int fd;

		snprintf(path, sizeof(path), "%s/valid/%s", HPCN_VECTORS_DIR, ents[i]->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(fstat(fd, &st), 0);
		buf = malloc((size_t)st.st_size);
		work = malloc((size_t)st.st_size);
		assert_non_null(buf);
		assert_non_null(work);
		assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
		close(fd);
		/* Exact-size copies so ASan sees any read past the record. */
		for (size_t len = 0; len < (size_t)st.st_size; len++) {
			char *p = malloc(len ? len : 1);

			memcpy(p, buf, len);
			check_one(ents[i]->d_name, p, len);
			free(p);
		}
		for (size_t pos = 0; pos < (size_t)st.st_size; pos++)
			for (size_t k = 0; k < sizeof(probes); k++) {
				memcpy(work, buf, (size_t)st.st_size);
				work[pos] = (char)probes[k];
				check_one(ents[i]->d_name, work, (size_t)st.st_size);
			}
		free(work);
		free(buf);
		free(ents[i]);
	}
	free(ents);
	/* Both outcomes must have happened, or the mutations prove nothing. */
	assert_true(n_ok > 100);
	assert_true(n_err > 1000);
	print_message("%zu mutants decoded, %zu refused\n", n_ok, n_err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

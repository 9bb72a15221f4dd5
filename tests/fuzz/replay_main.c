/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replays a fuzz target without libFuzzer: every file of the directories
 * (and every file) named on the command line goes through
 * LLVMFuzzerTestOneInput() once, in name order. ctest runs it over a
 * target's corpus and its regressions in every build (gcc, ASan, valgrind),
 * so that past crashes stay fixed and the corpus stays valid. Hidden files
 * (.gitkeep) are skipped. A target aborts on a broken property; the file
 * being replayed is printed first so that the output names it.
 *
 *   fuzz_replay_<target> DIR|FILE...
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Larger than any input libFuzzer is asked to produce (-max_len). */
#define INPUT_MAX (1u << 20)

static int replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)INPUT_MAX) {
		fprintf(stderr, "replay: %s: not a regular file of at most %u bytes\n", path,
			INPUT_MAX);
		close(fd);
		return -1;
	}
	/* An exact-size buffer: ASan sees any read past the input. */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n <= 0) {
			fprintf(stderr, "replay: %s: %s\n", path, n ? strerror(errno) : "short read");
			free(buf);
			close(fd);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	printf("replay: %s (%zu bytes)\n", path, len);
	fflush(stdout);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int visible(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static int replay_dir(const char *dir, unsigned int *count)
{
	struct dirent **names;
	int n = scandir(dir, &names, visible, alphasort);
	int rv = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *path = NULL;

		if (asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0 || replay_file(path) < 0)
			rv = -1;
		else
			(*count)++;
		free(path);
		free(names[i]);
	}
	free(names);
	return rv;
}

int main(int argc, char **argv)
{
	unsigned int count = 0;
	int rv = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			rv = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (replay_dir(argv[i], &count) < 0)
				rv = 1;
		} else if (replay_file(argv[i]) < 0) {
			rv = 1;
		} else {
			count++;
		}
	}
	if (count == 0) {
		fprintf(stderr, "replay: no input found in the given paths\n");
		return 1;
	}
	printf("replay: %u inputs, %s\n", count, rv ? "with unreadable files" : "all passed");
	return rv;
}

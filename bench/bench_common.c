/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_common.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void bench_sleep_us(unsigned us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int bench_samples_add(struct bench_samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
	return 0;
}

void bench_samples_free(struct bench_samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least p of the set at or below. */
static double rank_us(const struct bench_samples *s, double p)
{
	size_t k = (size_t)(p * (double)s->n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return (double)s->v[k - 1] / BENCH_NS_PER_US;
}

void bench_stats_of(struct bench_samples *s, struct bench_stats *out)
{
	double sum = 0;

	memset(out, 0, sizeof(*out));
	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	for (size_t i = 0; i < s->n; i++)
		sum += (double)s->v[i];
	out->n = s->n;
	out->p50_us = rank_us(s, 0.50);
	out->p99_us = rank_us(s, 0.99);
	out->min_us = (double)s->v[0] / BENCH_NS_PER_US;
	out->max_us = (double)s->v[s->n - 1] / BENCH_NS_PER_US;
	out->mean_us = sum / (double)s->n / BENCH_NS_PER_US;
}

uint64_t *bench_shared_alloc(size_t n)
{
	void *p = mmap(NULL, n * sizeof(uint64_t), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0xff, n * sizeof(uint64_t)); /* all "failed" until written */
	return p;
}

void bench_shared_free(uint64_t *p, size_t n)
{
	if (p)
		munmap(p, n * sizeof(uint64_t));
}

void bench_samples_take(struct bench_samples *s, const uint64_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == UINT64_MAX || bench_samples_add(s, p[i]) < 0)
			s->failed++;
	}
}

int bench_parse_list(const char *text, unsigned *out, int cap)
{
	char *copy = strdup(text), *save = NULL, *tok;
	int n = 0;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = strtoul(tok, &end, 10);

		if (*end || v == 0 || v > 100000 || n == cap) {
			n = -1;
			break;
		}
		out[n++] = (unsigned)v;
	}
	free(copy);
	return n;
}

void bench_figure(const char *bench, const char *what, double value, const char *unit,
		  const char *fmt, ...)
{
	char note[512] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(note, sizeof(note), fmt, ap);
		va_end(ap);
	}
	printf("FIGURE|%s|%s|%.3f|%s|%s\n", bench, what, value, unit, note);
	fflush(stdout);
}

long bench_vmrss_kib(int pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kib;
}

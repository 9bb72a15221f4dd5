/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared pieces of the benchmark programs: a monotonic clock, sample sets
 * with percentiles, sample buffers shared with forked clients, and the
 * output format contrib/bench.sh reads.
 *
 * Every program prints a human table, then one line per figure:
 *   FIGURE|<bench>|<what>|<value>|<unit>|<note>
 * which contrib/bench.sh collects into its summary table.
 */
#ifndef HPCN_BENCH_COMMON_H
#define HPCN_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_NS_PER_US 1000.0
#define BENCH_NS_PER_MS 1000000.0

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);
void bench_sleep_us(unsigned us);

/* A growable set of samples (nanoseconds). */
struct bench_samples {
	uint64_t *v;
	size_t n, cap;
	size_t failed;   /* operations that returned an error: never in v */
};

int bench_samples_add(struct bench_samples *s, uint64_t ns);
void bench_samples_free(struct bench_samples *s);

struct bench_stats {
	size_t n;
	double p50_us, p99_us, min_us, max_us, mean_us;
};

/* Nearest-rank percentiles (sorts s->v). Zeroes when s is empty. */
void bench_stats_of(struct bench_samples *s, struct bench_stats *out);

/* Samples written by forked children: an anonymous MAP_SHARED array of n
 * slots, UINT64_MAX marking a failed operation. */
uint64_t *bench_shared_alloc(size_t n);
void bench_shared_free(uint64_t *p, size_t n);
/* Move the n slots of p into s (failures counted, not added). */
void bench_samples_take(struct bench_samples *s, const uint64_t *p, size_t n);

/* "1,8,64" -> values (at most cap). Returns the count, -1 on a bad list. */
int bench_parse_list(const char *text, unsigned *out, int cap);

/* One figure line for contrib/bench.sh. */
void bench_figure(const char *bench, const char *what, double value, const char *unit,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The resident set of pid from /proc/PID/status (VmRSS), KiB; -1 on error. */
long bench_vmrss_kib(int pid);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Benchmark 5: restart reconstruction. A helper holding A allocations (each
 * with its own Mount namespace and one of I squashfs images bound into it,
 * all made through the protocol) is SIGKILLed and started again; the figure
 * is the time from fork+exec to its ready file naming it, and its VmRSS
 * then. Baseline, alternating with it: another helper's start with an
 * empty registry (same configuration, its own state), also after SIGKILL.
 *
 *   bench_restart [--allocs A] [--images I] [--rounds R] [--timeout-ms T] [--term]
 *                 [--restart-bin PATH]
 *
 * --term stops the helpers with SIGTERM instead of SIGKILL (they keep their
 * allocations either way): a profiler in HPCN_HELPER_BIN then gets to write
 * its data. --restart-bin PATH runs PATH (e.g. a valgrind wrapper) for the
 * timed starts only, the allocations being made by the real binary (valgrind
 * has no open_tree(2)).
 * HPCN_HELPER_BIN runs another binary (or a wrapper, e.g. valgrind) in its
 * place; --timeout-ms bounds each start.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_proto.h"
#include "sqfs_fixture.h"

static int start_timed(struct hfx *fx, int timeout_ms, uint64_t *ns, long *rss_kib)
{
	char log[PATH_MAX + 16];
	uint64_t t0;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/helper.log", fx->dir);
	t0 = bench_now_ns();
	pid = hfx_spawn_as_written(fx, log);
	if (pid <= 0 || bench_wait_ready(fx, pid, timeout_ms) < 0)
		return -1;
	*ns = bench_now_ns() - t0;
	*rss_kib = bench_vmrss_kib(pid);
	return 0;
}

static int make_images(struct sqfs_fixture *sq, unsigned n, char (*paths)[PATH_MAX])
{
	if (sqfs_fixture_make_image(sq, "bench-0", "bench-restart", paths[0], PATH_MAX) < 0)
		return -1;
	for (unsigned i = 1; i < n; i++) {
		snprintf(paths[i], PATH_MAX, "%s/bench-%u.sqfs", sq->dir, i);
		if (bench_copy_file(paths[0], paths[i]) < 0)
			return -1;
	}
	return 0;
}

static void conf(struct hfx *fx)
{
	/* Nothing periodic during the run: the WI5 grace (30 s) would end the
	 * restored allocations, which have no process, at the next scan. */
	fx->reconcile_interval = 3600;
	fx->hold_time = 3600;
	fx->max_images = 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "allocs", required_argument, NULL, 'a' },
		{ "images", required_argument, NULL, 'i' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "term", no_argument, NULL, 'T' },
		{ "restart-bin", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned allocs = 1000, nimages = 200, rounds = 5;
	const char *restart_bin = NULL;
	int timeout_ms = 30000, c, sock = -1, rv = 1, stop_sig = SIGKILL;
	struct bench_samples s[2] = { { 0 } };
	struct bench_stats st[2];
	long rss[2] = { 0, 0 }, rss_built = -1;
	struct sqfs_fixture sq = { { 0 } };
	char (*images)[PATH_MAX] = NULL;
	struct hfx fx, base;
	struct hpcn_error err;
	char log[PATH_MAX + 16];
	uint64_t t0, create_ns = 0, end_ns = 0;
	unsigned created = 0;
	static const char *const kind[2] = { "empty", "loaded" };

	memset(&base, 0, sizeof(base));
	memset(&fx, 0, sizeof(fx));
	while ((c = getopt_long(argc, argv, "a:i:r:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			allocs = (unsigned)atoi(optarg);
			break;
		case 'i':
			nimages = (unsigned)atoi(optarg);
			break;
		case 'r':
			rounds = (unsigned)atoi(optarg);
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		case 'T':
			stop_sig = SIGTERM;
			break;
		case 'B':
			restart_bin = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench_restart [--allocs A] [--images I] "
					"[--rounds R] [--timeout-ms T] [--term] [--restart-bin PATH]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!allocs || !nimages || nimages > allocs || !rounds || timeout_ms < 1)
		return 2;
	images = calloc(nimages, PATH_MAX);
	if (!images || hfx_setup(&fx) < 0 || hfx_setup(&base) < 0 || sqfs_fixture_init(&sq) < 0 ||
	    make_images(&sq, nimages, images) < 0)
		goto out;
	conf(&fx);
	conf(&base);
	snprintf(log, sizeof(log), "%s/helper.log", fx.dir);
	if (hfx_write_conf(&fx) < 0 || hfx_write_conf(&base) < 0 ||
	    hfx_start_as_written(&fx, log) < 0)
		goto out;
	sock = hfx_connect(&fx);
	if (sock < 0)
		goto out;
	t0 = bench_now_ns();
	for (; created < allocs; created++) {
		char id[64];

		snprintf(id, sizeof(id), "bench-r%04u", created);
		if (bench_alloc_create(sock, id, images[created % nimages], &err) < 0) {
			fprintf(stderr, "%s: %s\n", id, err.message);
			goto out;
		}
	}
	create_ns = bench_now_ns() - t0;
	rss_built = bench_vmrss_kib(fx.pid);
	printf("# restart: %u allocations (Mount namespace + 1 image each) over %u images, "
	       "created in %.2f s (%.1f ms each); helper VmRSS %ld KiB\n", allocs, nimages,
	       (double)create_ns / 1e9, (double)create_ns / 1e6 / allocs, rss_built);
	/* Stop first, close after: a closed connection would let WI5 end the
	 * allocations past their 30 s grace (they have no process). */
	hfx_stop(&fx, stop_sig, timeout_ms);
	close(sock);
	sock = -1;
	if (restart_bin)
		setenv("HPCN_HELPER_BIN", restart_bin, 1); /* read by the fixture's spawn */
	snprintf(log, sizeof(log), "%s/helper.log", base.dir);
	if (hfx_start_as_written(&base, log) < 0)
		goto out;

	for (unsigned r = 0; r < rounds; r++) {
		struct hfx *which[2] = { &base, &fx };

		for (int w = 0; w < 2; w++) {
			uint64_t ns;
			long kib;

			if (which[w]->pid > 0)
				hfx_stop(which[w], stop_sig, timeout_ms);
			if (start_timed(which[w], timeout_ms, &ns, &kib) < 0)
				goto out;
			bench_samples_add(&s[w], ns);
			if (kib > rss[w])
				rss[w] = kib;
		}
	}

	printf("%-7s %8s %10s %10s %10s %12s\n", "start", "samples", "p50_ms", "p99_ms", "max_ms",
	       "VmRSS_KiB");
	for (int w = 0; w < 2; w++) {
		char what[64];

		bench_stats_of(&s[w], &st[w]);
		printf("%-7s %8zu %10.2f %10.2f %10.2f %12ld\n", kind[w], st[w].n,
		       st[w].p50_us / 1000, st[w].p99_us / 1000, st[w].max_us / 1000, rss[w]);
		snprintf(what, sizeof(what), "start %s p50", kind[w]);
		bench_figure("restart", what, st[w].p50_us / 1000, "ms",
			     w ? "%u allocations, %u images" : "no allocation", allocs, nimages);
		snprintf(what, sizeof(what), "start %s max", kind[w]);
		bench_figure("restart", what, st[w].max_us / 1000, "ms", NULL);
	}
	bench_figure("restart", "reconstruction p50 minus empty start",
		     (st[1].p50_us - st[0].p50_us) / 1000, "ms", "%.1f us per allocation",
		     (st[1].p50_us - st[0].p50_us) / allocs);
	bench_figure("restart", "loaded start max vs target", st[1].max_us / 1000, "ms",
		     "target < 1000 ms at 1000 allocations / 200 images: %s%s",
		     st[1].max_us < 1e6 ? "met" : "NOT met",
		     allocs == 1000 && nimages == 200 ? "" : " (other sizes here)");
	bench_figure("restart", "VmRSS after restart, loaded", (double)rss[1] / 1024.0, "MiB",
		     "target < 16 MiB: %s; empty start %.1f MiB, before the kill %.1f MiB",
		     rss[1] < 16 * 1024 ? "met" : "NOT met", (double)rss[0] / 1024.0,
		     (double)rss_built / 1024.0);
	bench_figure("restart", "create rate", allocs / ((double)create_ns / 1e9), "allocs/s",
		     NULL);

	if (restart_bin) {
		/* Let the profiled instances write their data, then go on with
		 * the real binary. */
		hfx_stop(&base, stop_sig, timeout_ms);
		hfx_stop(&fx, stop_sig, timeout_ms);
		unsetenv("HPCN_HELPER_BIN");
		snprintf(log, sizeof(log), "%s/helper.log", fx.dir);
		if (hfx_start_as_written(&fx, log) < 0)
			goto out;
	}
	/* End them through the protocol: a clean teardown, and a figure. */
	sock = hfx_connect(&fx);
	if (sock < 0)
		goto out;
	t0 = bench_now_ns();
	for (unsigned i = 0; i < created; i++) {
		char id[64];

		snprintf(id, sizeof(id), "bench-r%04u", i);
		if (bench_alloc_end(sock, id, &err) < 0)
			fprintf(stderr, "%s: %s\n", id, err.message);
	}
	end_ns = bench_now_ns() - t0;
	created = 0;
	bench_figure("restart", "end rate", allocs / ((double)end_ns / 1e9), "allocs/s", NULL);
	rv = 0;
out:
	if (sock >= 0 && created) {
		for (unsigned i = 0; i < created; i++) {
			char id[64];

			snprintf(id, sizeof(id), "bench-r%04u", i);
			bench_alloc_end(sock, id, &err);
		}
	}
	if (sock >= 0)
		close(sock);
	hfx_teardown(&base);
	hfx_teardown(&fx);
	sqfs_fixture_cleanup(&sq);
	free(images);
	bench_samples_free(&s[0]);
	bench_samples_free(&s[1]);
	return rv;
}

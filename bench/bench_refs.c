/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Benchmark 6: acquire/release of mount references on an image that is
 * already mounted. One operation = create an allocation (Mount namespace +
 * the image at /user-environment) and end it, on one open connection;
 * baseline = the same without the image. Rounds alternate (baseline,
 * subject, ...). A first allocation holds the image for the whole run, so
 * no operation mounts or unmounts it: what is measured is the reference
 * (open as the user, identify, refcount, bind into the namespace, release).
 *
 *   bench_refs [--rounds R] [--ops N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bench_common.h"
#include "bench_proto.h"
#include "sqfs_fixture.h"

static int one_round(int sock, const char *image, unsigned ops, unsigned round,
		     struct bench_samples *s, uint64_t *wall)
{
	uint64_t t0 = bench_now_ns();

	for (unsigned i = 0; i < ops; i++) {
		char id[64];
		struct hpcn_error err;
		uint64_t a = bench_now_ns();

		snprintf(id, sizeof(id), "bench-refs-%c%u-%u", image ? 'i' : 'b', round, i);
		if (bench_alloc_create(sock, id, image, &err) < 0 ||
		    bench_alloc_end(sock, id, &err) < 0) {
			fprintf(stderr, "%s: %s\n", id, err.message);
			s->failed++;
			return -1;
		}
		bench_samples_add(s, bench_now_ns() - a);
	}
	*wall += bench_now_ns() - t0;
	return 0;
}

static long refcount_of(struct hfx *fx, const char *image)
{
	json_t *st = hfx_status(fx), *m;
	long rc = -1;

	if (!st)
		return -1;
	m = hfx_status_mount_of(st, image);
	if (m && json_is_integer(json_object_get(m, "refcount")))
		rc = (long)json_integer_value(json_object_get(m, "refcount"));
	json_decref(st);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "ops", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned rounds = 5, ops = 200;
	struct bench_samples s[2] = { { 0 } };
	struct bench_stats st[2];
	uint64_t wall[2] = { 0, 0 };
	static const char *const kind[2] = { "no image", "image" };
	struct sqfs_fixture sq = { { 0 } };
	char image[PATH_MAX], log[PATH_MAX + 16];
	struct hpcn_error err;
	struct hfx fx;
	int c, sock = -1, rv = 1;
	long refs_before = -1, refs_after = -1;

	while ((c = getopt_long(argc, argv, "r:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			rounds = (unsigned)atoi(optarg);
			break;
		case 'n':
			ops = (unsigned)atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: bench_refs [--rounds R] [--ops N]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (rounds < 1 || ops < 1)
		return 2;
	if (hfx_setup(&fx) < 0 || sqfs_fixture_init(&sq) < 0 ||
	    sqfs_fixture_make_image(&sq, "bench", "bench-refs", image, sizeof(image)) < 0)
		goto out;
	fx.hold_time = 3600;
	fx.reconcile_interval = 3600;
	snprintf(log, sizeof(log), "%s/helper.log", fx.dir);
	if (hfx_write_conf(&fx) < 0 || hfx_start_as_written(&fx, log) < 0)
		goto out;
	sock = hfx_connect(&fx);
	if (sock < 0)
		goto out;
	/* The holder of the image: every operation below finds it mounted. */
	if (bench_alloc_create(sock, "bench-refs-holder", image, &err) < 0) {
		fprintf(stderr, "holder: %s\n", err.message);
		goto out;
	}
	refs_before = refcount_of(&fx, image);
	for (unsigned r = 0; r < rounds; r++)
		for (int w = 0; w < 2; w++)
			if (one_round(sock, w ? image : NULL, ops, r, &s[w], &wall[w]) < 0)
				goto out;
	refs_after = refcount_of(&fx, image);

	printf("# mount refs: %u rounds of %u create+end operations each way, alternating\n",
	       rounds, ops);
	printf("%-9s %8s %10s %10s %10s %10s\n", "kind", "samples", "p50_us", "p99_us",
	       "max_us", "ops_per_s");
	for (int w = 0; w < 2; w++) {
		double tput = wall[w] ? (double)s[w].n * 1e9 / (double)wall[w] : 0;
		char what[64];

		bench_stats_of(&s[w], &st[w]);
		printf("%-9s %8zu %10.1f %10.1f %10.1f %10.0f\n", kind[w], st[w].n, st[w].p50_us,
		       st[w].p99_us, st[w].max_us, tput);
		snprintf(what, sizeof(what), "create+end %s p50", kind[w]);
		bench_figure("refs", what, st[w].p50_us, "us", NULL);
		snprintf(what, sizeof(what), "create+end %s p99", kind[w]);
		bench_figure("refs", what, st[w].p99_us, "us", NULL);
		snprintf(what, sizeof(what), "create+end %s throughput", kind[w]);
		bench_figure("refs", what, tput, "ops/s", NULL);
	}
	bench_figure("refs", "p50 ratio image/no image",
		     st[0].p50_us > 0 ? st[1].p50_us / st[0].p50_us : 0, "x",
		     "acquire+bind+release costs %.1f us at p50", st[1].p50_us - st[0].p50_us);
	printf("refcount of the image before %ld, after %ld (the holder: 1 expected)\n",
	       refs_before, refs_after);
	bench_figure("refs", "refcount after the run", (double)refs_after, "refs",
		     "1 expected (the holder)%s", refs_after == 1 ? "" : ": DRIFT");
	rv = refs_after == 1 ? 0 : 1;
out:
	if (sock >= 0) {
		bench_alloc_end(sock, "bench-refs-holder", &err);
		close(sock);
	}
	hfx_teardown(&fx);
	sqfs_fixture_cleanup(&sq);
	bench_samples_free(&s[0]);
	bench_samples_free(&s[1]);
	return rv;
}

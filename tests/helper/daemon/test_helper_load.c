/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper end to end, under load and crashes: a kill storm, rounds
 * of >= 50 concurrent clients creating (and some ending) allocations on two
 * images while the helper is SIGKILLed at a random moment and restarted;
 * after each restart every invariant between the registry, the namespaces,
 * the refcounts (WI2), the kernel's mounts, loop devices and cgroup scopes
 * holds, and a process working inside one allocation since before the storm
 * keeps reading its image. HPCN_STORM_SEED=<n> replays a storm's random kill
 * moments. The load's other scenarios: test_helper_load_flood.c (1,000
 * clients at once), test_helper_load_pipeline.c (clients that queue many
 * requests); what they share: test_helper_load_util.c.
 */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hpcnode/client.h>
#include <hpcnode/hpcnode.h>
#include <hpcnode/wire.h>

#include "image/image.h"
#include "helper_fixture.h"
#include "test_helper_load_util.h"

#define STORM_ROUNDS 20
#define STORM_CLIENTS 50
#define STORM_KILL_MIN_MS 20
#define STORM_KILL_MAX_MS 500
#define STORM_CLIENT_TIMEOUT_MS 8000
#define MAX_KEEP (STORM_ROUNDS * 8)

/* NamespaceRequest [Mount] (+ image) on a fresh connection; the mount
 * namespace's inode in *ino. */
static int request_mnt(const char *sock, const char *id, const char *image, int timeout_ms,
		       ino_t *ino, int *mnt_fd, struct hpcn_error *err)
{
	struct hpcn_namespace_response r;
	int fds[HPCN_NS__COUNT];
	struct hpcn_msg m;
	struct stat st;
	int rv;

	hpcn_msg_init(&m, HPCN_TAG_NAMESPACE_REQUEST);
	m.u.ns_request.allocation_id = strdup(id);
	m.u.ns_request.namespaces[m.u.ns_request.n_namespaces++] = HPCN_NS_MOUNT;
	if (image)
		m.u.ns_request.uenv_image = strdup(image);
	rv = hpcn_request_namespaces(sock, timeout_ms, &m.u.ns_request, NULL, 0, &r, fds, err);
	hpcn_msg_free(&m);
	if (rv < 0)
		return -1;
	if (r.n_fd_types != 1 || r.fd_types[0] != HPCN_NS_MOUNT || fds[0] < 0 ||
	    fstat(fds[0], &st) < 0) {
		rv = hpcn_error_setf(err, HPCN_E_INTERNAL, NULL, "%s: %zu FDs, not one Mount", id,
				     r.n_fd_types);
	} else {
		*ino = st.st_ino;
		if (mnt_fd) {
			*mnt_fd = fds[0];
			fds[0] = -1;
		}
	}
	hpcn_close_fds(fds, HPCN_NS__COUNT);
	hpcn_namespace_response_free(&r);
	return rv;
}

/* ---- the reader inside an allocation ---- */

/* ---- the kernel's view ---- */

struct name_list {
	size_t n;
	char v[512][NAME_MAX + 1];
};

static bool list_has(const struct name_list *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

static void list_add(struct name_list *l, const char *s)
{
	if (l->n < 512)
		snprintf(l->v[l->n++], NAME_MAX + 1, "%s", s);
}

/* Entries of a directory, without dot files. */
static void list_dir(const char *path, struct name_list *l, bool dirs_only)
{
	struct dirent *de;
	DIR *d = opendir(path);

	l->n = 0;
	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && (!dirs_only || de->d_type == DT_DIR))
			list_add(l, de->d_name);
	closedir(d);
}

struct under {
	const char *base;
	size_t len;
	struct name_list *l;
};

static int under_cb(const struct hpcn_mountinfo_entry *e, void *ud)
{
	struct under *u = ud;

	if (strncmp(e->mount_point, u->base, u->len) == 0 && e->mount_point[u->len] == '/')
		list_add(u->l, e->mount_point + u->len + 1);
	return 0;
}

/* Last components of the mounts under base (the image keys). */
static void kernel_mounts(const char *base, struct name_list *l)
{
	struct under u = { .base = base, .len = strlen(base), .l = l };
	struct hpcn_error err;

	l->n = 0;
	if (hpcn_mountinfo_parse_file(NULL, under_cb, &u, &err) < 0)
		fail_msg("mountinfo: %s", err.message);
}

static bool same_lists(const struct name_list *a, const struct name_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!list_has(b, a->v[i]))
			return false;
	return true;
}

static const char *basename_of(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* ---- the kill storm ---- */

enum { CL_NONE, CL_GOT, CL_ENDED, CL_END_FAILED, CL_FAILED };

struct client_res {
	int state;
	ino_t ino;
};

struct kept {
	char id[32];
	ino_t ino;           /* 0: never handed out (the client saw no reply) */
};

struct storm {
	struct ctx *c;
	struct kept keep[MAX_KEEP + 1];
	size_t n_keep;
	pid_t reader;
	int reader_fd;
};

static void storm_id(char *out, size_t cap, int round, int i)
{
	snprintf(out, cap, "ks%02d-%02d", round, i);
}

static void run_client(struct ctx *c, int round, int i, struct client_res *res)
{
	struct hpcn_error err;
	char id[32];
	ino_t ino;

	storm_id(id, sizeof(id), round, i);
	if (request_mnt(c->fx.sock, id, c->img[i % 2], STORM_CLIENT_TIMEOUT_MS, &ino, NULL,
			&err) < 0) {
		res->state = CL_FAILED;
		_exit(0);
	}
	res->ino = ino;
	res->state = CL_GOT;
	/* A third of them end their allocation right away. */
	if (i % 3 == 0)
		res->state = hpcn_end_allocation(c->fx.sock, STORM_CLIENT_TIMEOUT_MS, id, NULL,
						 &err) == 0 ? CL_ENDED : CL_END_FAILED;
	_exit(0);
}

static struct kept *kept_find(struct storm *s, const char *id)
{
	for (size_t i = 0; i < s->n_keep; i++)
		if (strcmp(s->keep[i].id, id) == 0)
			return &s->keep[i];
	return NULL;
}

/* Every invariant between status, the registry on disk, the pins, the
 * scopes, the kernel's mounts and loop devices. */
static void check_invariants(struct storm *s, int round, const struct client_res *res)
{
	struct ctx *c = s->c;
	struct hfx *fx = &c->fx;
	struct name_list *k1 = calloc(1, sizeof(*k1)), *k2 = calloc(1, sizeof(*k2));
	struct name_list *l = calloc(1, sizeof(*l));
	char p[PATH_MAX * 2];
	json_t *st = NULL, *a, *m;
	size_t i;

	assert_non_null(k1);
	assert_non_null(k2);
	assert_non_null(l);
	/* A hold timer may fire between two looks: take a stable snapshot. */
	for (int tries = 0; tries < 10; tries++) {
		kernel_mounts(fx->mount_base, k1);
		json_decref(st);
		st = hfx_status(fx);
		assert_non_null(st);
		kernel_mounts(fx->mount_base, k2);
		if (same_lists(k1, k2))
			break;
	}
	assert_true(same_lists(k1, k2));

	/* Allocations: active, recorded, their namespaces the same as handed out. */
	json_array_foreach(json_object_get(st, "allocations"), i, a) {
		const char *id = json_string_value(json_object_get(a, "allocation_id"));
		const char *state = json_string_value(json_object_get(a, "state"));
		const char *scope = json_string_value(json_object_get(a, "scope"));
		struct hpcn_error err;
		struct kept *k;
		json_t *rec;
		ino_t ino = 0;
		int n = -1, r = -1;

		assert_non_null(id);
		if (strcmp(state ?: "", "active") != 0)
			fail_msg("round %d: allocation %s is %s after the restart", round, id, state);
		snprintf(p, sizeof(p), "%s/allocations/%s.json", fx->state, id);
		rec = json_load_file(p, JSON_REJECT_DUPLICATES, NULL);
		if (!rec)
			fail_msg("round %d: allocation %s has no readable record %s", round, id, p);
		assert_string_equal(json_string_value(json_object_get(rec, "state")) ?: "",
				    "active");
		json_decref(rec);
		if (!scope)
			fail_msg("round %d: allocation %s has no scope", round, id);
		hfx_cg_path(fx, scope, p, sizeof(p));
		if (!hfx_exists(p))
			fail_msg("round %d: scope %s of %s is missing", round, p, id);
		if (request_mnt(fx->sock, id, NULL, HFX_TIMEOUT_MS, &ino, NULL, &err) < 0)
			fail_msg("round %d: namespaces of %s: %s", round, id, err.message);
		if (sscanf(id, "ks%d-%d", &r, &n) == 2 && r == round && n >= 0 &&
		    n < STORM_CLIENTS && res[n].state == CL_GOT && res[n].ino != ino)
			fail_msg("round %d: %s: mount namespace %lu handed out, %lu after the "
				 "restart", round, id, (unsigned long)res[n].ino,
				 (unsigned long)ino);
		k = kept_find(s, id);
		if (k && k->ino && k->ino != ino)
			fail_msg("round %d: %s: mount namespace %lu changed to %lu", round, id,
				 (unsigned long)k->ino, (unsigned long)ino);
	}
	/* What a client was told must be true. */
	for (int n = 0; n < STORM_CLIENTS; n++) {
		char id[32];

		storm_id(id, sizeof(id), round, n);
		if (res[n].state == CL_GOT && !hfx_status_alloc(st, id))
			fail_msg("round %d: %s was handed out but is gone after the restart",
				 round, id);
		if (res[n].state == CL_ENDED && hfx_status_alloc(st, id))
			fail_msg("round %d: %s was ended but is back after the restart", round, id);
	}
	for (size_t n = 0; n < s->n_keep; n++)
		if (!hfx_status_alloc(st, s->keep[n].id))
			fail_msg("round %d: kept allocation %s is gone", round, s->keep[n].id);

	/* WI2 exactly: refcount == allocations using the image; the kernel
	 * mounts exactly the images with references or a hold timer. */
	json_array_foreach(json_object_get(st, "mounts"), i, m) {
		const char *key = json_string_value(json_object_get(m, "key"));
		const char *mp = json_string_value(json_object_get(m, "mount_point"));
		json_int_t refs = json_integer_value(json_object_get(m, "refcount"));
		json_int_t users = 0;
		json_t *x, *mm;
		size_t k, q;

		json_array_foreach(json_object_get(st, "allocations"), k, x)
			json_array_foreach(json_object_get(x, "mounts"), q, mm)
				if (strcmp(json_string_value(json_object_get(mm, "key")) ?: "",
					   key ?: "") == 0) {
					users++;
					break;
				}
		if (refs != users)
			fail_msg("round %d: WI2: %s has refcount %lld, %lld allocation(s) use it",
				 round, mp, (long long)refs, (long long)users);
		if (refs == 0 && json_is_null(json_object_get(m, "hold_remaining_secs")))
			fail_msg("round %d: %s has no reference and no hold timer", round, mp);
		if (!list_has(k1, basename_of(mp ?: "")))
			fail_msg("round %d: %s is in the mount table but not in the kernel", round,
				 mp);
	}
	if (k1->n != json_array_size(json_object_get(st, "mounts")))
		fail_msg("round %d: %zu kernel mount(s) under %s, %zu in the mount table", round,
			 k1->n, fx->mount_base, json_array_size(json_object_get(st, "mounts")));
	json_array_foreach(json_object_get(st, "allocations"), i, a) {
		json_t *mm;
		size_t q;

		json_array_foreach(json_object_get(a, "mounts"), q, mm) {
			const char *key = json_string_value(json_object_get(mm, "key")) ?: "";

			if (!list_has(k1, key))
				fail_msg("round %d: image %s of %s is not mounted", round, key,
					 json_string_value(json_object_get(a, "allocation_id")));
		}
	}
	/* One loop device per mounted image, none for the others (autoclear). */
	for (int k = 0; k < 2; k++) {
		bool mounted = hfx_status_mount_of(st, c->img[k]) != NULL;
		int loops = -1;

		for (int t = 0; t < 100; t++) {
			loops = hfx_count_loops_of(c->img[k]);
			if (loops == (mounted ? 1 : 0))
				break;
			hfx_sleep_ms(20);
		}
		if (loops != (mounted ? 1 : 0))
			fail_msg("round %d: %d loop device(s) of %s, which is %smounted", round,
				 loops, c->img[k], mounted ? "" : "not ");
	}

	/* No leftover: records, pins and scopes are exactly the allocations. */
	snprintf(p, sizeof(p), "%s/allocations", fx->state);
	{
		struct dirent *de;
		DIR *d = opendir(p);
		size_t records = 0;

		assert_non_null(d);
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (strstr(de->d_name, ".tmp") || strstr(de->d_name, ".corrupt"))
				fail_msg("round %d: leftover %s/%s", round, p, de->d_name);
			records++;
		}
		closedir(d);
		if (records != hfx_status_n_allocs(st))
			fail_msg("round %d: %zu record(s), %zu allocation(s)", round, records,
				 hfx_status_n_allocs(st));
	}
	snprintf(p, sizeof(p), "%s/ns", fx->state);
	list_dir(p, l, false);
	for (size_t n = 0; n < l->n; n++)
		if (!hfx_status_alloc(st, l->v[n]))
			fail_msg("round %d: namespace pins of unknown allocation %s", round, l->v[n]);
	if (l->n != hfx_status_n_allocs(st))
		fail_msg("round %d: %zu pin dir(s), %zu allocation(s)", round, l->n,
			 hfx_status_n_allocs(st));
	hfx_cg_path(fx, "workload.slice", p, sizeof(p));
	list_dir(p, l, true);
	for (size_t n = 0; n < l->n; n++) {
		char id[NAME_MAX + 1];
		size_t len = strlen(l->v[n]);

		if (len < 7 || strcmp(l->v[n] + len - 6, ".scope") != 0)
			fail_msg("round %d: unexpected cgroup %s/%s", round, p, l->v[n]);
		snprintf(id, sizeof(id), "%.*s", (int)(len - 6), l->v[n]);
		if (!hfx_status_alloc(st, id))
			fail_msg("round %d: leftover scope %s/%s", round, p, l->v[n]);
	}
	json_decref(st);
	free(k1);
	free(k2);
	free(l);

	/* The process inside the first allocation did not notice. */
	assert_true(hfx_alive(s->reader));
	hfx_reader_drain(s->reader_fd);
	hfx_sleep_ms(100);
	if (hfx_reader_drain(s->reader_fd) <= 0)
		fail_msg("round %d: the reader inside ks-reader stopped reading", round);
}

/* End the round's allocations, except a few kept across the rounds. */
static void end_round(struct storm *s, int round, const struct client_res *res)
{
	struct hfx *fx = &s->c->fx;
	json_t *st = hfx_status(fx), *a;
	size_t i;

	assert_non_null(st);
	json_array_foreach(json_object_get(st, "allocations"), i, a) {
		const char *id = json_string_value(json_object_get(a, "allocation_id"));
		struct hpcn_error err;
		int r = -1, n = -1;

		if (sscanf(id, "ks%d-%d", &r, &n) != 2 || r != round)
			continue;
		if (n % 10 == 1 && s->n_keep < MAX_KEEP) {
			snprintf(s->keep[s->n_keep].id, sizeof(s->keep[0].id), "%s", id);
			s->keep[s->n_keep].ino = res[n].state == CL_GOT ? res[n].ino : 0;
			if (!s->keep[s->n_keep].ino) {
				ino_t ino;

				if (request_mnt(fx->sock, id, NULL, HFX_TIMEOUT_MS, &ino, NULL,
						&err) < 0)
					fail_msg("%s: %s", id, err.message);
				s->keep[s->n_keep].ino = ino;
			}
			s->n_keep++;
			continue;
		}
		if (hfx_end(fx, id, &err) < 0)
			fail_msg("round %d: ending %s: %s", round, id, err.message);
	}
	json_decref(st);
}

static bool storm_all_gone(struct hfx *fx, const void *arg)
{
	const struct ctx *c = arg;

	return hfx_count_mounts_under(fx->mount_base) == 0 && hfx_count_loops_of(c->img[0]) == 0 &&
	       hfx_count_loops_of(c->img[1]) == 0;
}

static void test_kill_storm(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct storm *s = calloc(1, sizeof(*s));
	struct client_res *res;
	unsigned seed = getenv("HPCN_STORM_SEED") ? (unsigned)atoi(getenv("HPCN_STORM_SEED"))
						  : (unsigned)time(NULL) ^ (unsigned)getpid();
	char p[PATH_MAX * 2];
	int served = 0, lost = 0, ended = 0;
	struct name_list *l;
	long long t0 = hfx_now_ms();
	int mnt = -1;
	ino_t reader_ino;
	json_t *st;
	int status;

	assert_non_null(s);
	s->c = c;
	res = mmap(NULL, sizeof(*res) * STORM_CLIENTS, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(res != MAP_FAILED);
	fprintf(stderr, "kill storm: seed %u (HPCN_STORM_SEED replays it)\n", seed);
	srand(seed);
	/* Long enough that a hold never expires during a round's checks. */
	fx->hold_time = 3;
	assert_int_equal(hfx_start(fx), 0);

	/* The process that works through the whole storm. */
	{
		struct hpcn_error err;

		if (request_mnt(fx->sock, "ks-reader", c->img[0], HFX_TIMEOUT_MS, &reader_ino, &mnt,
				&err) < 0)
			fail_msg("ks-reader: %s", err.message);
		s->reader = hfx_start_reader(fx, mnt, "/user-environment/bin/hello", "HELLO-A",
					     &s->reader_fd);
		assert_true(s->reader > 0);
		close(mnt);
		if (hfx_attach(fx, "ks-reader", s->reader, &err) < 0)
			fail_msg("Attach: %s", err.message);
		snprintf(s->keep[0].id, sizeof(s->keep[0].id), "ks-reader");
		s->keep[0].ino = reader_ino;
		s->n_keep = 1;
		assert_true(hfx_reader_wait(s->reader_fd, HFX_WAIT_MS) > 0);
	}

	for (int round = 0; round < STORM_ROUNDS; round++) {
		pid_t kids[STORM_CLIENTS];
		int delay = STORM_KILL_MIN_MS + rand() % (STORM_KILL_MAX_MS - STORM_KILL_MIN_MS);

		memset(res, 0, sizeof(*res) * STORM_CLIENTS);
		for (int i = 0; i < STORM_CLIENTS; i++) {
			kids[i] = fork();
			assert_true(kids[i] >= 0);
			if (kids[i] == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				run_client(c, round, i, &res[i]);
			}
		}
		hfx_sleep_ms(delay);
		status = hfx_stop(fx, SIGKILL, HFX_TIMEOUT_MS);
		assert_true(status != -1 && WIFSIGNALED(status));
		for (int i = 0; i < STORM_CLIENTS; i++) {
			if (hfx_wait_child(kids[i], STORM_CLIENT_TIMEOUT_MS + 2000) == -1) {
				kill(kids[i], SIGKILL);
				hfx_wait_child(kids[i], 2000);
				fail_msg("round %d: client %d hung after the helper died", round, i);
			}
			served += res[i].state != CL_FAILED && res[i].state != CL_NONE;
			lost += res[i].state == CL_FAILED;
			ended += res[i].state == CL_ENDED;
		}
		assert_true(hfx_alive(s->reader));
		if (hfx_start(fx) < 0)
			fail_msg("round %d: the helper did not come back", round);
		check_invariants(s, round, res);
		end_round(s, round, res);
	}
	fprintf(stderr, "kill storm: %d rounds, %d handed out, %d failed with the helper, "
		"%d ended by their client, %zu kept, %lld ms\n", STORM_ROUNDS, served, lost, ended,
		s->n_keep, hfx_now_ms() - t0);
	/* The storm must have hit the helper mid-work at least sometimes. */
	assert_true(served > 0);
	assert_true(lost > 0);

	/* End everything: the reader dies with its scope; after the hold time
	 * there is no mount, loop device, pin, scope or record left. */
	for (size_t i = 0; i < s->n_keep; i++) {
		struct hpcn_error err;

		if (hfx_end(fx, s->keep[i].id, &err) < 0)
			fail_msg("ending %s: %s", s->keep[i].id, err.message);
	}
	status = hfx_wait_child(s->reader, HFX_TIMEOUT_MS);
	assert_true(status != -1 && WIFSIGNALED(status));
	close(s->reader_fd);
	if (!hfx_wait_for(storm_all_gone, fx, c, HFX_WAIT_MS))
		fail_msg("after the hold time: %d mount(s) under %s, loops %d + %d",
			 hfx_count_mounts_under(fx->mount_base), fx->mount_base,
			 hfx_count_loops_of(c->img[0]), hfx_count_loops_of(c->img[1]));
	l = calloc(1, sizeof(*l));
	assert_non_null(l);
	snprintf(p, sizeof(p), "%s/ns", fx->state);
	list_dir(p, l, false);
	assert_int_equal(l->n, 0);
	/* No pin left below the (private, bind-mounted) pin directory. */
	kernel_mounts(p, l);
	assert_int_equal(l->n, 0);
	snprintf(p, sizeof(p), "%s/allocations", fx->state);
	list_dir(p, l, false);
	assert_int_equal(l->n, 0);
	hfx_cg_path(fx, "workload.slice", p, sizeof(p));
	list_dir(p, l, true);
	assert_int_equal(l->n, 0);
	free(l);
	st = hfx_status(fx);
	assert_non_null(st);
	assert_int_equal(hfx_status_n_allocs(st), 0);
	assert_int_equal(json_array_size(json_object_get(st, "mounts")), 0);
	json_decref(st);
	munmap(res, sizeof(*res) * STORM_CLIENTS);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kill_storm, setup, teardown),
	};

	if (load_main_prepare("test_helper_load") != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

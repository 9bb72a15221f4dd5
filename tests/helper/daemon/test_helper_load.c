/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpc-node-helper end to end, under load and crashes:
 *  - a kill storm: rounds of >= 50 concurrent clients creating (and some
 *    ending) allocations on two images while the helper is SIGKILLed at a
 *    random moment and restarted; after each restart every invariant between
 *    the registry, the namespaces, the refcounts (WI2), the kernel's mounts,
 *    loop devices and cgroup scopes holds, and a process working inside one
 *    allocation since before the storm keeps reading its image;
 *  - 1,000 clients connected at once, all answered, another client served
 *    meanwhile, the helper's descriptors back to their baseline afterwards;
 *    the same with the helper's descriptor limit far below the load;
 *  - a client that queues many requests at once does not keep the helper
 *    from serving another client until its queue is empty, and all its
 *    requests are answered, in order; one that never reads its replies is
 *    dropped after one wait, not served on with a wait per reply.
 * HPCN_STORM_SEED=<n> replays a storm's random kill moments.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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
#include "sqfs_fixture.h"

#define STORM_ROUNDS 20
#define STORM_CLIENTS 50
#define STORM_KILL_MIN_MS 20
#define STORM_KILL_MAX_MS 500
#define STORM_CLIENT_TIMEOUT_MS 8000
#define MAX_KEEP (STORM_ROUNDS * 8)
#define N_FLOOD 1000

struct ctx {
	struct hfx fx;
	struct sqfs_fixture sq;
	char img[2][PATH_MAX];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	*state = c;
	if (hfx_setup(&c->fx) < 0 || sqfs_fixture_init(&c->sq) < 0 ||
	    sqfs_fixture_make_image(&c->sq, "stormA", "HELLO-A", c->img[0], PATH_MAX) < 0 ||
	    sqfs_fixture_make_image(&c->sq, "stormB", "HELLO-B", c->img[1], PATH_MAX) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	if (!c)
		return 0;
	/* A test that failed while the helper was stopped must not leave it so. */
	if (c->fx.pid > 0)
		kill(c->fx.pid, SIGCONT);
	hfx_teardown(&c->fx);
	sqfs_fixture_cleanup(&c->sq);
	free(c);
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool fds_at_most(struct hfx *fx, const void *arg)
{
	return hfx_count_fds(fx->pid) <= *(const int *)arg;
}

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
	long long t0 = now_ms();
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
		s->n_keep, now_ms() - t0);
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

/* ---- 1,000 clients at once ---- */

static int status_call(struct hfx *fx, int timeout_ms, struct hpcn_error *err)
{
	struct hpcn_msg req, resp;
	int sock = hpcn_client_connect(fx->sock, timeout_ms, err);
	int rv;

	if (sock < 0)
		return -1;
	hpcn_msg_init(&req, HPCN_TAG_STATUS_REQUEST);
	req.seq = 9;
	req.u.json = strdup("{}");
	rv = hpcn_client_call(sock, &req, NULL, 0, &resp, NULL, NULL, 0, timeout_ms, err);
	if (rv == 0 && resp.tag != HPCN_TAG_STATUS)
		rv = hpcn_error_setf(err, HPCN_E_INTERNAL, NULL, "reply %s", hpcn_tag_name(resp.tag));
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);
	close(sock);
	return rv;
}

static int connect_nb(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* A full backlog says EAGAIN: retry until the helper has accepted
	 * some, bounded by the clock (against a hang), not by a count of
	 * tries that a loaded machine could exhaust. */
	for (long long deadline = now_ms() + HFX_WAIT_MS;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		if ((errno != EAGAIN && errno != EINTR) || now_ms() >= deadline)
			break;
		hfx_sleep_ms(10);
	}
	close(fd);
	return -1;
}

struct flood_result {
	int answered, busy, other;
	long long other_call_ms;
};

/* n connections at once, each one request (Hello or StatusRequest), a
 * separate client served in the middle of it. */
static void flood(struct hfx *fx, int n, struct flood_result *out)
{
	int *socks = calloc((size_t)n, sizeof(int));
	struct pollfd *pf = calloc((size_t)n, sizeof(*pf));
	int pending = n;
	long long deadline;

	assert_non_null(socks);
	assert_non_null(pf);
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < n; i++) {
		socks[i] = connect_nb(fx->sock);
		if (socks[i] < 0)
			fail_msg("connection %d of %d: %s", i, n, strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		struct hpcn_msg m;
		struct hpcn_error err;

		hpcn_msg_init(&m, i % 2 ? HPCN_TAG_STATUS_REQUEST : HPCN_TAG_HELLO);
		m.seq = (uint64_t)i + 1000;
		if (i % 2) {
			m.u.json = strdup("{}");
		} else {
			m.u.hello.min_version = 1;
			m.u.hello.max_version = HPCN_PROTOCOL_VERSION;
			m.u.hello.software = strdup("flood");
		}
		if (hpcn_send_msg(socks[i], &m, NULL, 0, &err) < 0)
			fail_msg("request on connection %d: %s", i, err.message);
		hpcn_msg_free(&m);
	}
	/* Another client, while the helper has all of them to answer. */
	{
		struct hpcn_error err;
		long long t = now_ms();

		if (status_call(fx, HFX_TIMEOUT_MS, &err) < 0)
			fail_msg("a client during the flood: %s", err.message);
		out->other_call_ms = now_ms() - t;
	}
	deadline = now_ms() + HFX_WAIT_MS;
	while (pending > 0 && now_ms() < deadline) {
		int r;

		for (int i = 0; i < n; i++) {
			pf[i].fd = socks[i];
			pf[i].events = POLLIN;
			pf[i].revents = 0;
		}
		r = poll(pf, (nfds_t)n, 1000);
		if (r < 0 && errno != EINTR)
			fail_msg("poll: %s", strerror(errno));
		for (int i = 0; i < n && r > 0; i++) {
			struct hpcn_msg resp;
			struct hpcn_error err;
			int fds[HPCN_MAX_MESSAGE_FDS];
			size_t nfds = 0;
			int got;

			if (socks[i] < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			got = hpcn_recv_msg(socks[i], &resp, fds, &nfds, HPCN_MAX_MESSAGE_FDS, &err);
			if (got < 0 && err.sys_errno == EAGAIN)
				continue;
			hpcn_close_fds(fds, nfds);
			if (got == 1 && resp.seq == (uint64_t)i + 1000 &&
			    resp.tag == (i % 2 ? HPCN_TAG_STATUS : HPCN_TAG_HELLO))
				out->answered++;
			else if (got == 1 && resp.tag == HPCN_TAG_ERROR &&
				 resp.u.error.kind == HPCN_E_BUSY)
				out->busy++;
			else
				out->other++;
			if (got == 1)
				hpcn_msg_free(&resp);
			close(socks[i]);
			socks[i] = -1;
			pending--;
		}
	}
	for (int i = 0; i < n; i++)
		if (socks[i] >= 0)
			close(socks[i]);
	free(socks);
	free(pf);
}

static void test_thousand_clients(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct flood_result r;
	struct hpcn_error err;
	int baseline;
	long long t0 = now_ms();

	assert_int_equal(hfx_start(fx), 0);
	/* The lazily opened descriptors exist once a first client was served. */
	assert_int_equal(status_call(fx, HFX_TIMEOUT_MS, &err), 0);
	hfx_sleep_ms(100);
	baseline = hfx_count_fds(fx->pid);
	assert_true(baseline > 0);

	flood(fx, N_FLOOD, &r);
	fprintf(stderr, "1000 clients: %d answered, %d busy, %d other, another client served "
		"in %lld ms, %lld ms in all\n", r.answered, r.busy, r.other, r.other_call_ms,
		now_ms() - t0);
	/* The limit is 4096 connections: every one is served. */
	assert_int_equal(r.answered, N_FLOOD);
	assert_int_equal(r.busy, 0);
	assert_int_equal(r.other, 0);
	/* The other client was served during the flood (status_call above
	 * failed the test otherwise, bounded only against a hang); how long it
	 * waited is a figure printed above, not a timed assertion that a loaded
	 * machine would fail. */
	if (!hfx_wait_for(fds_at_most, fx, &baseline, HFX_WAIT_MS))
		fail_msg("the helper holds %d descriptors after the clients left, %d before",
			 hfx_count_fds(fx->pid), baseline);
	assert_int_equal(status_call(fx, HFX_TIMEOUT_MS, &err), 0);
}

static int count_lines_with(const char *path, const char *needle)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static unsigned long long cpu_ticks(pid_t pid)
{
	char p[64], buf[1024], *s;
	unsigned long long ut = 0, stt = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	s = strrchr(buf, ')');
	/* fields 14 and 15: utime, stime */
	if (s && sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			&stt) == 2)
		return ut + stt;
	return 0;
}

/* The helper's descriptor limit far below the load: clients beyond it wait
 * in the backlog and are served as others leave; the helper neither spins
 * on accept nor floods its log while it cannot accept. */
static void test_fd_limit_below_load(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct rlimit low = { .rlim_cur = 64, .rlim_max = 64 };
	char log[PATH_MAX + 16];
	struct hpcn_error err;
	int socks[300], baseline;
	unsigned long long cpu0, cpu1;
	int answered = 0;

	snprintf(log, sizeof(log), "%s/helper.log", fx->dir);
	assert_int_equal(hfx_write_conf(fx), 0);
	assert_int_equal(hfx_start_as_written(fx, log), 0);
	/* Imposed on the running helper: whatever it raised at start. */
	assert_int_equal(prlimit(fx->pid, RLIMIT_NOFILE, &low, NULL), 0);
	assert_int_equal(status_call(fx, HFX_TIMEOUT_MS, &err), 0);
	hfx_sleep_ms(100);
	baseline = hfx_count_fds(fx->pid);

	for (int i = 0; i < 300; i++) {
		socks[i] = connect_nb(fx->sock);
		if (socks[i] < 0)
			fail_msg("connection %d: %s", i, strerror(errno));
	}
	/* The helper is at its limit now, with clients waiting in the backlog. */
	hfx_sleep_ms(200);
	cpu0 = cpu_ticks(fx->pid);
	hfx_sleep_ms(1000);
	cpu1 = cpu_ticks(fx->pid);
	fprintf(stderr, "at its descriptor limit the helper used %llu tick(s) in 1 s, %d fds\n",
		cpu1 - cpu0, hfx_count_fds(fx->pid));
	if (cpu1 - cpu0 > (unsigned long long)sysconf(_SC_CLK_TCK) / 2)
		fail_msg("the helper spins while it cannot accept: %llu ticks in 1 s",
			 cpu1 - cpu0);
	/* Each client in turn: sent, answered, gone; the waiting ones get in. */
	for (int i = 0; i < 300; i++) {
		struct hpcn_msg req, resp;
		struct pollfd pf = { .fd = socks[i], .events = POLLIN };
		int fds[HPCN_MAX_MESSAGE_FDS];
		size_t nfds = 0;

		hpcn_msg_init(&req, HPCN_TAG_HELLO);
		req.seq = 5;
		req.u.hello.min_version = 1;
		req.u.hello.max_version = HPCN_PROTOCOL_VERSION;
		req.u.hello.software = strdup("limit");
		if (hpcn_send_msg(socks[i], &req, NULL, 0, &err) < 0)
			fail_msg("client %d: %s", i, err.message);
		hpcn_msg_free(&req);
		if (poll(&pf, 1, HFX_WAIT_MS) != 1)
			fail_msg("client %d: no answer in %d s", i, HFX_WAIT_MS / 1000);
		if (hpcn_recv_msg(socks[i], &resp, fds, &nfds, HPCN_MAX_MESSAGE_FDS, &err) == 1 &&
		    resp.tag == HPCN_TAG_HELLO)
			answered++;
		else
			fprintf(stderr, "client %d: %s\n", i, resp.tag == HPCN_TAG_ERROR ?
				resp.u.error.message : err.message);
		hpcn_msg_free(&resp);
		close(socks[i]);
	}
	assert_int_equal(answered, 300);
	if (!hfx_wait_for(fds_at_most, fx, &baseline, HFX_WAIT_MS))
		fail_msg("the helper holds %d descriptors, %d before", hfx_count_fds(fx->pid),
			 baseline);
	{
		int warnings = count_lines_with(log, "accept");

		fprintf(stderr, "%d log line(s) about accept\n", warnings);
		if (warnings > 20)
			fail_msg("%d log lines about accept: the log floods", warnings);
	}
	assert_int_equal(status_call(fx, HFX_TIMEOUT_MS, &err), 0);
}

/* Counter "requests" of a Status body. */
static long long status_requests(json_t *status)
{
	json_t *n = json_object_get(json_object_get(status, "counters"), "requests");

	return json_is_integer(n) ? (long long)json_integer_value(n) : -1;
}

/* One Hello request, not waiting for its reply. */
static int send_hello(int sock, uint64_t seq, struct hpcn_error *err)
{
	struct hpcn_msg req;
	int rv;

	hpcn_msg_init(&req, HPCN_TAG_HELLO);
	req.seq = seq;
	req.u.hello.min_version = 1;
	req.u.hello.max_version = HPCN_PROTOCOL_VERSION;
	req.u.hello.software = strdup("pipelining");
	rv = hpcn_send_msg(sock, &req, NULL, 0, err);
	hpcn_msg_free(&req);
	return rv;
}

/* Queue n Hello requests (seq 1..n) on sock without waiting for any reply.
 * Non-blocking: a full send buffer fails the test instead of hanging it. */
static void queue_hellos(int sock, int n)
{
	int fl = fcntl(sock, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(sock, F_SETFL, fl | O_NONBLOCK), 0);
	for (int i = 0; i < n; i++) {
		struct hpcn_error err;

		if (send_hello(sock, (uint64_t)i + 1, &err) < 0)
			fail_msg("queueing request %d of %d: %s", i + 1, n, err.message);
	}
	assert_int_equal(fcntl(sock, F_SETFL, fl), 0);
}

/* Send a StatusRequest on a new connection (the helper may be stopped). */
static int send_status_request(struct hfx *fx)
{
	struct hpcn_msg req;
	struct hpcn_error err;
	int sock = hfx_connect(fx);

	assert_true(sock >= 0);
	hpcn_msg_init(&req, HPCN_TAG_STATUS_REQUEST);
	req.seq = 7;
	req.u.json = strdup("{}");
	assert_int_equal(hpcn_send_msg(sock, &req, NULL, 0, &err), 0);
	hpcn_msg_free(&req);
	return sock;
}

/* Wait for the Status answering send_status_request; its "requests" counter. */
static long long read_status_requests(int sock)
{
	struct pollfd pf = { .fd = sock, .events = POLLIN };
	struct hpcn_msg resp;
	struct hpcn_error err;
	int fds[HPCN_MAX_MESSAGE_FDS];
	size_t nfds = 0;
	json_t *body;
	long long n;

	if (poll(&pf, 1, HFX_TIMEOUT_MS) != 1)
		fail_msg("the other client got no status within %d ms", HFX_TIMEOUT_MS);
	assert_int_equal(hpcn_recv_msg(sock, &resp, fds, &nfds, HPCN_MAX_MESSAGE_FDS, &err), 1);
	assert_int_equal(resp.tag, HPCN_TAG_STATUS);
	body = json_loads(resp.u.json, 0, NULL);
	assert_non_null(body);
	n = status_requests(body);
	json_decref(body);
	hpcn_msg_free(&resp);
	return n;
}

/* Read Hello replies from sock until EOF or timeout_ms without one; they
 * must come in order from seq 1. Returns how many; *eof says if it ended. */
static int read_hellos(int sock, int timeout_ms, bool *eof)
{
	int n = 0;

	*eof = false;
	for (;;) {
		struct pollfd pf = { .fd = sock, .events = POLLIN };
		struct hpcn_msg resp;
		struct hpcn_error err;
		int fds[HPCN_MAX_MESSAGE_FDS];
		size_t nfds = 0;
		int r;

		if (poll(&pf, 1, timeout_ms) != 1)
			return n;
		r = hpcn_recv_msg(sock, &resp, fds, &nfds, HPCN_MAX_MESSAGE_FDS, &err);
		if (r == 0) {
			*eof = true;
			return n;
		}
		if (r < 0)
			fail_msg("after %d replies: %s", n, err.message);
		assert_int_equal(resp.tag, HPCN_TAG_HELLO);
		if (resp.seq != (uint64_t)n + 1)
			fail_msg("reply %d has seq %llu", n + 1, (unsigned long long)resp.seq);
		hpcn_msg_free(&resp);
		n++;
	}
}

/*
 * Client A queues N_PIPELINED Hello requests while the helper is stopped;
 * client B then connects and asks for the status. Once the helper runs again,
 * B must be answered before all of A's requests are (the helper reads at
 * most a batch from one client per turn; sockets are edge-triggered, so a
 * handler that stopped early must re-arm or A's rest would never be read),
 * and A must get every reply, in order.
 */
#define N_PIPELINED 120
static void test_pipelining_client_does_not_starve(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct hpcn_error err;
	json_t *before;
	long long r0, served_before_b;
	bool eof;
	int a, b;

	assert_int_equal(hfx_start(fx), 0);
	before = hfx_status(fx);
	assert_non_null(before);
	r0 = status_requests(before);
	json_decref(before);
	assert_true(r0 > 0);

	assert_int_equal(kill(fx->pid, SIGSTOP), 0);
	a = hfx_connect(fx);
	assert_true(a >= 0);
	queue_hellos(a, N_PIPELINED);
	b = send_status_request(fx);
	assert_int_equal(kill(fx->pid, SIGCONT), 0);

	/* requests counted since: A's answered so far, and B's own */
	served_before_b = read_status_requests(b) - r0 - 1;
	fprintf(stderr, "the other client was answered after %lld of %d queued requests\n",
		served_before_b, N_PIPELINED);
	if (served_before_b >= N_PIPELINED)
		fail_msg("the other client waited for all %d queued requests of one client",
			 N_PIPELINED);
	assert_int_equal(read_hellos(a, HFX_TIMEOUT_MS / 5, &eof), N_PIPELINED);
	assert_false(eof);
	close(a);
	close(b);
	assert_int_equal(status_call(fx, HFX_TIMEOUT_MS, &err), 0);
}

/*
 * A client that sends far more requests than the helper can queue replies
 * for, and reads none: once a reply cannot be sent (after the helper's one
 * wait for the client to read), the client is dropped, not served on with a
 * wait per reply. Another client is served meanwhile, and afterwards; the
 * dropped client finds the replies sent so far, in order, then the end of
 * the connection.
 */
#define N_FLOODED 2000
static void test_client_not_reading_is_dropped(void **state)
{
	struct ctx *c = *state;
	struct hfx *fx = &c->fx;
	struct hpcn_error err;
	struct timeval tv = { .tv_sec = 20 };
	int a, b, got, st;
	bool eof;
	pid_t sender;

	assert_int_equal(hfx_start(fx), 0);
	a = hfx_connect(fx);
	assert_true(a >= 0);
	assert_int_equal(setsockopt(a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	/* A child sends, blocking while the helper has not read; nobody reads. */
	sender = fork();
	assert_true(sender >= 0);
	if (sender == 0) {
		for (int i = 0; i < N_FLOODED; i++)
			if (send_hello(a, (uint64_t)i + 1, &err) < 0)
				_exit(err.sys_errno == EAGAIN ? 3 : 0); /* 3: send timed out */
		_exit(0);
	}
	hfx_sleep_ms(200);
	b = send_status_request(fx);
	assert_true(read_status_requests(b) > 0);
	close(b);

	/* The helper waits HPCN_SEND_TIMEOUT_MS (2 s) for one reply, then drops
	 * the client: the sender's next sends fail or it has sent them all. */
	st = hfx_wait_child(sender, 6 * HFX_TIMEOUT_MS);
	if (st < 0) {
		kill(sender, SIGKILL);
		waitpid(sender, NULL, 0);
		fail_msg("a client that does not read its replies was still sending after %d ms",
			 6 * HFX_TIMEOUT_MS);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		fail_msg("the helper stopped reading a client that does not read its replies "
			 "without dropping it (its send waited 20 s)");
	got = read_hellos(a, 3 * HFX_TIMEOUT_MS, &eof);
	fprintf(stderr, "the client that did not read got %d of %d replies, then %s\n", got,
		N_FLOODED, eof ? "the end of the connection" : "nothing");
	if (!eof)
		fail_msg("the helper kept the connection of a client that does not read "
			 "its replies (%d of %d replies came)", got, N_FLOODED);
	assert_true(got > 0);
	assert_true(got < N_FLOODED);
	close(a);
	assert_int_equal(status_call(fx, HFX_TIMEOUT_MS, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kill_storm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thousand_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_limit_below_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelining_client_does_not_starve, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_client_not_reading_is_dropped, setup,
						teardown),
	};
	struct rlimit rl;

	if (geteuid() != 0) {
		fprintf(stderr, "test_helper_load needs root (label root)\n");
		return 1;
	}
	/* 1,000 client sockets in this process, and as many in the helper,
	 * which inherits the limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		if (rl.rlim_cur < 2 * N_FLOOD + 100 || setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			fprintf(stderr, "RLIMIT_NOFILE: %lu descriptors, %d needed\n",
				(unsigned long)rl.rlim_cur, 2 * N_FLOOD + 100);
			return 1;
		}
	}
	if (getenv("HPCN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("HPCN_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}

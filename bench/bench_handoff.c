/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Benchmark 1: handoff latency. A client's whole request for the namespaces
 * of an EXISTING allocation (connect, NamespaceRequest, receive the response
 * and its 3 FDs, close) against a real hpc-node-helper, next to its physical
 * floor: one record out and one record back carrying 3 FDs (opened once, of
 * /proc/self/ns/{pid,net,mnt}) on a socketpair, served by one forked echo
 * process; one server thread in both, as in the helper.
 *
 * Closed loop: K client processes each run their requests back to back; the
 * floor and the subject alternate round by round (floor, helper, floor,
 * helper...) so that a change in machine load hits both.
 *
 *   bench_handoff [--rounds R] [--requests N] [--clients 1,8,64]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hpcnode/client.h>
#include <hpcnode/wire.h>

#include "bench_common.h"
#include "helper_fixture.h"

#define ALLOC_ID "bench-handoff"
#define MAX_LEVELS 8
#define MAX_CLIENTS 1024
#define CLIENT_TIMEOUT_MS 10000

static const char *const ns_paths[3] = { "/proc/self/ns/pid", "/proc/self/ns/net",
					 "/proc/self/ns/mnt" };

struct round {
	unsigned clients;
	unsigned per_client;
	uint64_t *lat;      /* clients * per_client slots, shared */
	uint64_t *end;      /* clients slots: when each finished, shared */
};

/* ---- the floor ---- */

/* One process, one epoll over every client's socket: answer each record
 * with a small record and the 3 namespace FDs. Exits when killed. */
static void echo_server(int *socks, unsigned n)
{
	int nsfd[3], ep = epoll_create1(EPOLL_CLOEXEC);
	static const char reply[] =
		"{\"version\":1,\"tag\":\"NamespaceResponse\",\"seq\":1,\"body\":{}}";

	for (int i = 0; i < 3; i++)
		if ((nsfd[i] = open(ns_paths[i], O_RDONLY | O_CLOEXEC)) < 0)
			_exit(3);
	for (unsigned i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = socks[i] };

		if (epoll_ctl(ep, EPOLL_CTL_ADD, socks[i], &ev) < 0)
			_exit(3);
	}
	for (;;) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < k; i++) {
			char buf[256];
			size_t nf = 0;
			struct hpcn_error err;
			ssize_t r = hpcn_wire_recv(evs[i].data.fd, buf, sizeof(buf), NULL, &nf, 0,
						   &err);

			if (r <= 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, NULL);
				continue;
			}
			hpcn_wire_send(evs[i].data.fd, reply, sizeof(reply) - 1, nsfd, 3, &err);
		}
	}
}

static int floor_once(int sock)
{
	char buf[256];
	int fds[HPCN_MAX_MESSAGE_FDS];
	size_t nf = 0;
	struct hpcn_error err;
	static const char req[] =
		"{\"version\":1,\"tag\":\"NamespaceRequest\",\"seq\":1,\"body\":{}}";

	if (hpcn_wire_send(sock, req, sizeof(req) - 1, NULL, 0, &err) < 0)
		return -1;
	if (hpcn_wire_recv(sock, buf, sizeof(buf), fds, &nf, HPCN_MAX_MESSAGE_FDS, &err) <= 0)
		return -1;
	hpcn_close_fds(fds, nf);
	return nf == 3 ? 0 : -1;
}

/* ---- the subject ---- */

static int handoff_once(const char *sock_path)
{
	struct hpcn_namespace_request req = { .allocation_id = (char *)ALLOC_ID,
					      .n_namespaces = 3,
					      .namespaces = { HPCN_NS_PID, HPCN_NS_NET,
							      HPCN_NS_MOUNT },
					      .base_mount_ns_fd_index = -1 };
	struct hpcn_namespace_response resp;
	int fds[HPCN_NS__COUNT];
	struct hpcn_error err;
	int n = 0;

	memset(&resp, 0, sizeof(resp));
	if (hpcn_request_namespaces(sock_path, CLIENT_TIMEOUT_MS, &req, NULL, 0, &resp, fds,
				    &err) < 0) {
		fprintf(stderr, "handoff: %s\n", err.message);
		return -1;
	}
	for (int i = 0; i < HPCN_NS__COUNT; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			n++;
		}
	hpcn_namespace_response_free(&resp);
	return n == 3 ? 0 : -1;
}

/* ---- running a round ---- */

/* fork the clients, release them together, wait for them. Each client i
 * runs per_client operations: the floor on socks[i] when socks, else the
 * handoff on sock_path. Returns the wall time from release to the last end. */
static uint64_t run_clients(struct round *r, int *socks, const char *sock_path)
{
	int ready[2], go[2];
	pid_t pids[MAX_CLIENTS];
	uint64_t t0, last = 0;
	char b[MAX_CLIENTS];

	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) {
		perror("pipe");
		exit(1);
	}
	for (unsigned i = 0; i < r->clients; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("fork");
			exit(1);
		}
		if (pids[i] == 0) {
			char c = 'r';

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(ready[0]);
			close(go[1]);
			if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
				_exit(2);
			for (unsigned j = 0; j < r->per_client; j++) {
				uint64_t s = bench_now_ns();
				int rc = socks ? floor_once(socks[i]) : handoff_once(sock_path);
				uint64_t e = bench_now_ns();

				if (rc == 0)
					r->lat[(size_t)i * r->per_client + j] = e - s;
			}
			r->end[i] = bench_now_ns();
			_exit(0);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (unsigned got = 0; got < r->clients;) {
		ssize_t k = read(ready[0], b, r->clients - got);

		if (k <= 0)
			break;
		got += (unsigned)k;
	}
	memset(b, 'g', r->clients);
	t0 = bench_now_ns();
	if (write(go[1], b, r->clients) != (ssize_t)r->clients)
		perror("write");
	for (unsigned i = 0; i < r->clients; i++)
		waitpid(pids[i], NULL, 0);
	close(ready[0]);
	close(go[1]);
	for (unsigned i = 0; i < r->clients; i++)
		if (r->end[i] != UINT64_MAX && r->end[i] > last)
			last = r->end[i];
	return last > t0 ? last - t0 : 0;
}

static uint64_t round_floor(struct round *r)
{
	int pairs[MAX_CLIENTS][2], cl[MAX_CLIENTS], sv[MAX_CLIENTS];
	uint64_t wall;
	pid_t server;

	for (unsigned i = 0; i < r->clients; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pairs[i]) < 0) {
			perror("socketpair");
			exit(1);
		}
		cl[i] = pairs[i][0];
		sv[i] = pairs[i][1];
	}
	server = fork();
	if (server == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		echo_server(sv, r->clients);
		_exit(0);
	}
	wall = run_clients(r, cl, NULL);
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	for (unsigned i = 0; i < r->clients; i++) {
		close(cl[i]);
		close(sv[i]);
	}
	return wall;
}

static int create_alloc(struct hfx *fx, int *keep)
{
	struct hpcn_msg req, resp;
	struct hpcn_error err;
	int fds[HPCN_MAX_MESSAGE_FDS];
	size_t nf = 0;
	int sock = hfx_connect(fx);

	if (sock < 0)
		return -1;
	hpcn_msg_init(&req, HPCN_TAG_NAMESPACE_REQUEST);
	req.seq = 1;
	req.u.ns_request.allocation_id = strdup(ALLOC_ID);
	req.u.ns_request.n_namespaces = 3;
	req.u.ns_request.namespaces[0] = HPCN_NS_PID;
	req.u.ns_request.namespaces[1] = HPCN_NS_NET;
	req.u.ns_request.namespaces[2] = HPCN_NS_MOUNT;
	if (hfx_call(sock, &req, NULL, 0, &resp, fds, &nf, &err) < 0) {
		fprintf(stderr, "creating %s: %s\n", ALLOC_ID, err.message);
		hpcn_msg_free(&req);
		close(sock);
		return -1;
	}
	hpcn_close_fds(fds, nf);
	hpcn_msg_free(&req);
	hpcn_msg_free(&resp);
	*keep = sock; /* the allocation lives as long as its creator's connection */
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_handoff [--rounds R] [--requests N] [--clients 1,8,64]\n"
			"  N: requests per round and concurrency level, split over the clients\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "requests", required_argument, NULL, 'n' },
		{ "clients", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned levels[MAX_LEVELS] = { 1, 8, 64 }, rounds = 5, requests = 2000;
	int nlevels = 3, c, keep = -1, rv = 1;
	char log[PATH_MAX + 16];
	struct hfx fx;

	while ((c = getopt_long(argc, argv, "r:n:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			rounds = (unsigned)atoi(optarg);
			break;
		case 'n':
			requests = (unsigned)atoi(optarg);
			break;
		case 'c':
			nlevels = bench_parse_list(optarg, levels, MAX_LEVELS);
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if (rounds < 1 || requests < 1 || nlevels < 1) {
		usage();
		return 2;
	}
	for (int i = 0; i < nlevels; i++)
		if (levels[i] > MAX_CLIENTS) {
			fprintf(stderr, "at most %d clients\n", MAX_CLIENTS);
			return 2;
		}
	if (hfx_setup(&fx) < 0)
		goto out;
	/* The shipped defaults where they matter for a handoff. */
	fx.reconcile_interval = 30;
	fx.hold_time = 60;
	snprintf(log, sizeof(log), "%s/helper.log", fx.dir);
	if (hfx_write_conf(&fx) < 0 || hfx_start_as_written(&fx, log) < 0 ||
	    create_alloc(&fx, &keep) < 0)
		goto out;

	printf("# handoff latency: %u rounds, %u requests per round and level, "
	       "floor and helper alternating\n", rounds, requests);
	printf("%-8s %-7s %8s %10s %10s %10s %12s %7s\n", "clients", "kind", "samples",
	       "p50_us", "p99_us", "max_us", "ops_per_s", "failed");
	for (int l = 0; l < nlevels; l++) {
		struct bench_samples s[2] = { { 0 } };
		struct bench_stats st[2];
		uint64_t wall[2] = { 0, 0 }, done[2] = { 0, 0 };
		struct round r = { .clients = levels[l] };
		static const char *const kind[2] = { "floor", "helper" };
		char what[96];

		r.per_client = requests / r.clients ? requests / r.clients : 1;
		for (unsigned k = 0; k < rounds; k++)
			for (int w = 0; w < 2; w++) {
				size_t n = (size_t)r.clients * r.per_client;

				r.lat = bench_shared_alloc(n);
				r.end = bench_shared_alloc(r.clients);
				if (!r.lat || !r.end) {
					perror("mmap");
					goto out;
				}
				wall[w] += w == 0 ? round_floor(&r) : run_clients(&r, NULL, fx.sock);
				bench_samples_take(&s[w], r.lat, n);
				done[w] += n;
				bench_shared_free(r.lat, n);
				bench_shared_free(r.end, r.clients);
			}
		for (int w = 0; w < 2; w++) {
			double tput = wall[w] ? (double)(done[w] - s[w].failed) * 1e9 /
						(double)wall[w] : 0;

			bench_stats_of(&s[w], &st[w]);
			printf("%-8u %-7s %8zu %10.1f %10.1f %10.1f %12.0f %7zu\n", r.clients,
			       kind[w], st[w].n, st[w].p50_us, st[w].p99_us, st[w].max_us, tput,
			       s[w].failed);
			snprintf(what, sizeof(what), "c%u %s p50", r.clients, kind[w]);
			bench_figure("handoff", what, st[w].p50_us, "us", NULL);
			snprintf(what, sizeof(what), "c%u %s p99", r.clients, kind[w]);
			bench_figure("handoff", what, st[w].p99_us, "us", NULL);
			snprintf(what, sizeof(what), "c%u %s throughput", r.clients, kind[w]);
			bench_figure("handoff", what, tput, "ops/s", NULL);
		}
		snprintf(what, sizeof(what), "c%u p50 ratio helper/floor", r.clients);
		bench_figure("handoff", what, st[0].p50_us > 0 ? st[1].p50_us / st[0].p50_us : 0,
			     "x", "target <= 1.5x: %s",
			     st[1].p50_us <= 1.5 * st[0].p50_us ? "met" : "NOT met");
		if (r.clients == 64)
			bench_figure("handoff", "c64 helper p99 vs target", st[1].p99_us, "us",
				     "target <= 1000 us: %s",
				     st[1].p99_us <= 1000.0 ? "met" : "NOT met");
		if (s[0].failed || s[1].failed) {
			fprintf(stderr, "%zu floor and %zu helper operations failed\n",
				s[0].failed, s[1].failed);
			bench_samples_free(&s[0]);
			bench_samples_free(&s[1]);
			goto out;
		}
		bench_samples_free(&s[0]);
		bench_samples_free(&s[1]);
	}
	rv = 0;
out:
	if (keep >= 0) {
		struct hpcn_error err;

		if (hfx_end(&fx, ALLOC_ID, &err) < 0)
			fprintf(stderr, "ending %s: %s\n", ALLOC_ID, err.message);
		close(keep);
	}
	/* A clean stop: a profiler in HPCN_HELPER_BIN gets to write its data. */
	if (fx.pid > 0)
		hfx_stop(&fx, SIGTERM, 60000);
	hfx_teardown(&fx);
	return rv;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Benchmark 1: handoff latency. A client's whole request for the namespaces
 * of an EXISTING allocation (connect, NamespaceRequest, receive the response
 * and its 3 FDs, close) against a real hpc-node-helper, next to its physical
 * floor: one record out and one record back carrying 3 FDs (opened once, of
 * /proc/self/ns/{pid,net,mnt}) on a socketpair, served by one forked echo
 * process; one server thread in both, as in the helper.
 *
 * A second baseline, the connection floor, adds what a handoff cannot do
 * without: each request on a new connection to a listening unix socket
 * (connect, accept, the peer's credentials, close on both sides), served by
 * the same kind of echo process. The difference between the two floors is
 * the kernel's price of a connection on this machine; what is above the
 * connection floor is the helper's own work.
 *
 * Closed loop: K client processes each run their requests back to back; the
 * floors and the subject alternate round by round (floor, connection floor,
 * helper, floor...) so that a change in machine load hits all of them.
 *
 *   bench_handoff [--rounds R] [--requests N] [--clients 1,8,64] [--helper-only]
 *
 * --helper-only skips the floors (for profiling the helper alone).
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
#include <sys/un.h>
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

enum kind { K_FLOOR, K_CONNFLOOR, K_HELPER, K__COUNT };

static const char *const kind_name[K__COUNT] = { "floor", "connfloor", "helper" };

struct round {
	enum kind kind;
	int *socks;         /* K_FLOOR: each client's end of its socketpair */
	const char *path;   /* K_CONNFLOOR, K_HELPER: the socket to connect to */
	unsigned clients;
	unsigned per_client;
	uint64_t *lat;      /* clients * per_client slots, shared */
	uint64_t *end;      /* clients slots: when each finished, shared */
};

/* ---- the floors ---- */

static int add_in(int ep, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/*
 * One process, one epoll: answer each record with a small record and the 3
 * namespace FDs. The floor serves the n sockets it is given; the connection
 * floor (lfd >= 0) accepts each client's connection (with its peer's
 * credentials, as any server that checks its clients must) and closes it
 * when the client does. Exits when killed.
 */
static void echo_server(int lfd, const int *socks, unsigned n)
{
	int nsfd[3], ep = epoll_create1(EPOLL_CLOEXEC);
	static const char reply[] =
		"{\"version\":1,\"tag\":\"NamespaceResponse\",\"seq\":1,\"body\":{}}";

	for (int i = 0; i < 3; i++)
		if ((nsfd[i] = open(ns_paths[i], O_RDONLY | O_CLOEXEC)) < 0)
			_exit(3);
	if (lfd >= 0 && add_in(ep, lfd) < 0)
		_exit(3);
	for (unsigned i = 0; i < n; i++)
		if (add_in(ep, socks[i]) < 0)
			_exit(3);
	for (;;) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < k; i++) {
			int fd = evs[i].data.fd;
			char buf[256];
			size_t nf = 0;
			struct hpcn_error err;
			ssize_t r;

			if (fd == lfd) {
				struct ucred cred;
				socklen_t len = sizeof(cred);
				int c;

				while ((c = accept4(lfd, NULL, NULL,
						    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
					if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
					    add_in(ep, c) < 0)
						close(c);
				continue;
			}
			r = hpcn_wire_recv(fd, buf, sizeof(buf), NULL, &nf, 0, &err);
			if (r <= 0) {
				if (r < 0 && err.sys_errno == EAGAIN)
					continue;
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				if (lfd >= 0)
					close(fd);
				continue;
			}
			hpcn_wire_send(fd, reply, sizeof(reply) - 1, nsfd, 3, &err);
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

static int connfloor_once(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int rv;

	if (sock < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	rv = connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -1 : floor_once(sock);
	close(sock);
	return rv;
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

static int op_once(const struct round *r, unsigned i)
{
	switch (r->kind) {
	case K_FLOOR:
		return floor_once(r->socks[i]);
	case K_CONNFLOOR:
		return connfloor_once(r->path);
	default:
		return handoff_once(r->path);
	}
}

/* fork the clients, release them together, wait for them. Each client i
 * runs per_client operations of the round's kind. Returns the wall time
 * from release to the last end. */
static uint64_t run_clients(struct round *r)
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
				int rc = op_once(r, i);
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
		echo_server(-1, sv, r->clients);
		_exit(0);
	}
	r->socks = cl;
	wall = run_clients(r);
	r->socks = NULL;
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	for (unsigned i = 0; i < r->clients; i++) {
		close(cl[i]);
		close(sv[i]);
	}
	return wall;
}

static uint64_t round_connfloor(struct round *r, const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t wall;
	pid_t server;
	int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/connfloor.sock", dir);
	unlink(sa.sun_path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 4096) < 0) {
		perror("connection floor socket");
		exit(1);
	}
	server = fork();
	if (server == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		echo_server(lfd, NULL, 0);
		_exit(0);
	}
	r->path = sa.sun_path;
	wall = run_clients(r);
	r->path = NULL;
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	close(lfd);
	unlink(sa.sun_path);
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
	fprintf(stderr, "usage: bench_handoff [--rounds R] [--requests N] [--clients 1,8,64] "
			"[--helper-only]\n"
			"  N: requests per round and concurrency level, split over the clients\n"
			"  --helper-only: no floors, for profiling the helper alone\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "requests", required_argument, NULL, 'n' },
		{ "clients", required_argument, NULL, 'c' },
		{ "helper-only", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned levels[MAX_LEVELS] = { 1, 8, 64 }, rounds = 5, requests = 2000;
	int nlevels = 3, c, keep = -1, rv = 1, first_kind = K_FLOOR;
	char log[PATH_MAX + 16];
	struct hfx fx;

	while ((c = getopt_long(argc, argv, "r:n:c:Hh", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			first_kind = K_HELPER;
			break;
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
	       "floor, connection floor and helper alternating\n", rounds, requests);
	printf("%-8s %-9s %8s %10s %10s %10s %12s %7s\n", "clients", "kind", "samples",
	       "p50_us", "p99_us", "max_us", "ops_per_s", "failed");
	for (int l = 0; l < nlevels; l++) {
		struct bench_samples s[K__COUNT] = { { 0 } };
		struct bench_stats st[K__COUNT];
		uint64_t wall[K__COUNT] = { 0 }, done[K__COUNT] = { 0 };
		struct round r = { .clients = levels[l] };
		size_t failed = 0;
		char what[96];

		r.per_client = requests / r.clients ? requests / r.clients : 1;
		for (unsigned k = 0; k < rounds; k++)
			for (int w = first_kind; w < K__COUNT; w++) {
				size_t n = (size_t)r.clients * r.per_client;

				r.kind = (enum kind)w;
				r.lat = bench_shared_alloc(n);
				r.end = bench_shared_alloc(r.clients);
				if (!r.lat || !r.end) {
					perror("mmap");
					goto out;
				}
				if (w == K_FLOOR)
					wall[w] += round_floor(&r);
				else if (w == K_CONNFLOOR)
					wall[w] += round_connfloor(&r, fx.dir);
				else {
					r.path = fx.sock;
					wall[w] += run_clients(&r);
				}
				bench_samples_take(&s[w], r.lat, n);
				done[w] += n;
				bench_shared_free(r.lat, n);
				bench_shared_free(r.end, r.clients);
			}
		for (int w = first_kind; w < K__COUNT; w++) {
			double tput = wall[w] ? (double)(done[w] - s[w].failed) * 1e9 /
						(double)wall[w] : 0;

			bench_stats_of(&s[w], &st[w]);
			printf("%-8u %-9s %8zu %10.1f %10.1f %10.1f %12.0f %7zu\n", r.clients,
			       kind_name[w], st[w].n, st[w].p50_us, st[w].p99_us, st[w].max_us,
			       tput, s[w].failed);
			snprintf(what, sizeof(what), "c%u %s p50", r.clients, kind_name[w]);
			bench_figure("handoff", what, st[w].p50_us, "us", NULL);
			snprintf(what, sizeof(what), "c%u %s p99", r.clients, kind_name[w]);
			bench_figure("handoff", what, st[w].p99_us, "us", NULL);
			snprintf(what, sizeof(what), "c%u %s throughput", r.clients, kind_name[w]);
			bench_figure("handoff", what, tput, "ops/s", NULL);
			failed += s[w].failed;
		}
		if (first_kind == K_FLOOR) {
			double fl = st[K_FLOOR].p50_us, cf = st[K_CONNFLOOR].p50_us;
			double hp = st[K_HELPER].p50_us;

			snprintf(what, sizeof(what), "c%u p50 ratio helper/floor", r.clients);
			bench_figure("handoff", what, fl > 0 ? hp / fl : 0, "x",
				     "target <= 1.5x: %s", hp <= 1.5 * fl ? "met" : "NOT met");
			snprintf(what, sizeof(what), "c%u p50 ratio connfloor/floor", r.clients);
			bench_figure("handoff", what, fl > 0 ? cf / fl : 0, "x",
				     "the price of a connection per request");
			snprintf(what, sizeof(what), "c%u p50 ratio helper/connfloor", r.clients);
			bench_figure("handoff", what, cf > 0 ? hp / cf : 0, "x", NULL);
			if (r.clients == 64) {
				bench_figure("handoff", "c64 helper p99 vs target",
					     st[K_HELPER].p99_us, "us", "target <= 1000 us: %s",
					     st[K_HELPER].p99_us <= 1000.0 ? "met" : "NOT met");
				bench_figure("handoff", "c64 connfloor p99 vs target",
					     st[K_CONNFLOOR].p99_us, "us", "target <= 1000 us: %s",
					     st[K_CONNFLOOR].p99_us <= 1000.0 ? "met" : "NOT met");
			}
		}
		for (int w = 0; w < K__COUNT; w++)
			bench_samples_free(&s[w]);
		if (failed) {
			fprintf(stderr, "%zu operations failed\n", failed);
			goto out;
		}
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

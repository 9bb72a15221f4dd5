/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_proto.h"

int bench_alloc_create(int sock, const char *id, const char *image, struct hpcn_error *err)
{
	struct hpcn_msg req, resp;
	int fds[HPCN_MAX_MESSAGE_FDS];
	size_t nf = 0;
	int rv;

	hpcn_msg_init(&req, HPCN_TAG_NAMESPACE_REQUEST);
	req.seq = 1;
	req.u.ns_request.allocation_id = strdup(id);
	req.u.ns_request.n_namespaces = 1;
	req.u.ns_request.namespaces[0] = HPCN_NS_MOUNT;
	if (image)
		req.u.ns_request.uenv_image = strdup(image);
	rv = hfx_call(sock, &req, NULL, 0, &resp, fds, &nf, err);
	if (rv == 0) {
		hpcn_close_fds(fds, nf);
		if (resp.tag != HPCN_TAG_NAMESPACE_RESPONSE)
			rv = hpcn_error_setf(err, HPCN_E_INTERNAL, NULL, "%s answered %s", id,
					     hpcn_tag_name(resp.tag));
		hpcn_msg_free(&resp);
	}
	hpcn_msg_free(&req);
	return rv;
}

int bench_alloc_end(int sock, const char *id, struct hpcn_error *err)
{
	struct hpcn_msg req, resp;
	int rv;

	hpcn_msg_init(&req, HPCN_TAG_ALLOCATION_ENDED);
	req.seq = 2;
	req.u.ended.allocation_id = strdup(id);
	rv = hfx_call(sock, &req, NULL, 0, &resp, NULL, NULL, err);
	if (rv == 0) {
		if (resp.tag != HPCN_TAG_OK)
			rv = hpcn_error_setf(err, HPCN_E_INTERNAL, NULL, "ending %s answered %s",
					     id, hpcn_tag_name(resp.tag));
		hpcn_msg_free(&resp);
	}
	hpcn_msg_free(&req);
	return rv;
}

int bench_copy_file(const char *src, const char *dst)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rv = -1;
	ssize_t n;

	if (in < 0)
		goto fail;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0)
		goto fail;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			goto fail;
	if (n < 0 || fchmod(out, 0644) < 0)
		goto fail;
	rv = 0;
fail:
	if (rv < 0)
		fprintf(stderr, "copying %s to %s: %s\n", src, dst, strerror(errno));
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0)
		rv = -1;
	return rv;
}

static bool ready_names(const char *path, pid_t pid)
{
	char buf[512], want[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	snprintf(want, sizeof(want), "pid=%d\n", (int)pid);
	return strstr(buf, want) != NULL;
}

int bench_wait_ready(struct hfx *fx, pid_t pid, int timeout_ms)
{
	uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	int st;

	while (bench_now_ns() < end) {
		if (ready_names(fx->ready, pid))
			return 0;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "the helper (pid %d) exited (status %#x) before it was "
				"ready; see %s/helper.log\n", (int)pid, st, fx->dir);
			fx->pid = 0;
			return -1;
		}
		bench_sleep_us(200);
	}
	fprintf(stderr, "the helper (pid %d) was not ready after %d ms\n", (int)pid, timeout_ms);
	return -1;
}

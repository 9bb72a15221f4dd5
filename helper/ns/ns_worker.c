/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Forked workers of the namespace module. The helper never changes its own
 * namespaces: a child joins or creates them, reports errno + step through a
 * pipe, and (when asked) waits so that its namespaces can be pinned.
 * Every wait is bounded; every child is reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ns.h"
#include "ns_internal.h"
#include "util.h"

static const char *const step_texts[NS_STEP__COUNT] = {
	[NS_STEP_NONE] = "worker",
	[NS_STEP_SETNS_BASE] = "joining the base mount namespace",
	[NS_STEP_UNSHARE] = "unshare",
	[NS_STEP_MAKE_SLAVE] = "making the mounts slaves",
	[NS_STEP_HIDE_NS_DIR] = "unmounting the namespace directory inside",
	[NS_STEP_LO_UP] = "bringing up the loopback interface",
	[NS_STEP_SETNS] = "joining the mount namespace",
	[NS_STEP_RESOLVE_TARGET] = "resolving the target",
	[NS_STEP_CREATE_TARGET] = "creating the target",
	[NS_STEP_MOVE_MOUNT] = "move_mount",
	[NS_STEP_NOT_MOUNT_POINT] = "target is not a mount point",
	[NS_STEP_UMOUNT] = "umount",
	[NS_STEP_READ_MOUNTINFO] = "reading mountinfo",
	[NS_STEP_UNSHARE_PID] = "unshare of the pid namespace",
	[NS_STEP_FORK_HOLDER] = "forking the holder",
};

const char *ns_step_text(int step)
{
	if (step < 0 || step >= NS_STEP__COUNT || !step_texts[step])
		return "unknown step";
	return step_texts[step];
}

static int remaining_ms(unsigned long long deadline_ms)
{
	unsigned long long now = hpcn_now_ms();

	if (now >= deadline_ms)
		return 0;
	if (deadline_ms - now > (unsigned long long)HPCN_NS_CHILD_TIMEOUT_MS * 10)
		return HPCN_NS_CHILD_TIMEOUT_MS * 10;
	return (int)(deadline_ms - now);
}

/* Wait until fd is readable (or hung up). 0, or -1 with errno. */
static int wait_readable(int fd, unsigned long long deadline_ms)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, remaining_ms(deadline_ms));

		if (r > 0)
			return 0;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

int ns_read_full(int fd, void *buf, size_t len, unsigned long long deadline_ms)
{
	char *p = buf;
	size_t off = 0;

	while (off < len) {
		ssize_t n;

		if (wait_readable(fd, deadline_ms) < 0)
			return -1;
		n = read(fd, p + off, len - off);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EPIPE;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

void ns_reap(pid_t pid, unsigned long long deadline_ms)
{
	_cleanup_close_ int pidfd = -1;

	if (pid <= 0)
		return;
	/* A pidfd turns "wait with a bound" into poll(); without one (old
	 * kernel) the child gets until the deadline in small sleeps. */
	pidfd = pidfd_open(pid, 0);
	if (pidfd >= 0) {
		if (wait_readable(pidfd, deadline_ms) < 0)
			kill(pid, SIGKILL);
	} else {
		struct timespec ts = { 0, 2 * 1000 * 1000 };

		for (;;) {
			pid_t r = waitpid(pid, NULL, WNOHANG);

			if (r == pid || (r < 0 && errno != EINTR))
				return;
			if (hpcn_now_ms() >= deadline_ms) {
				kill(pid, SIGKILL);
				break;
			}
			nanosleep(&ts, NULL);
		}
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

int ns_worker_start(struct ns_worker *w, bool hold, bool with_data,
		    ns_worker_fn fn, void *arg)
{
	int rep[2] = { -1, -1 }, go[2] = { -1, -1 }, data[2] = { -1, -1 };
	int saved;
	pid_t pid;

	*w = (struct ns_worker)NS_WORKER_INIT;
	if (pipe2(rep, O_CLOEXEC) < 0)
		goto fail;
	if (hold && pipe2(go, O_CLOEXEC) < 0)
		goto fail;
	if (with_data && pipe2(data, O_CLOEXEC) < 0)
		goto fail;
	pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0) {
		/* Child: only system calls from here on, never return. */
		struct ns_report r = { NS_STEP_NONE, 0 };
		char c;

		close(rep[0]);
		if (go[1] >= 0)
			close(go[1]);
		if (data[0] >= 0)
			close(data[0]);
		r.err = fn(arg, data[1], &r.step);
		if (data[1] >= 0)
			close(data[1]);
		write_all(rep[1], &r, sizeof(r));
		close(rep[1]);
		/* EOF (the parent is done, or died) ends the hold. */
		if (go[0] >= 0)
			while (read(go[0], &c, 1) < 0 && errno == EINTR)
				;
		_exit(r.err ? 1 : 0);
	}
	close(rep[1]);
	if (go[0] >= 0)
		close(go[0]);
	if (data[1] >= 0)
		close(data[1]);
	w->pid = pid;
	w->report_fd = rep[0];
	w->go_fd = go[1];
	w->data_fd = data[0];
	w->deadline_ms = hpcn_now_ms() + HPCN_NS_CHILD_TIMEOUT_MS;
	return 0;
fail:
	saved = errno;
	for (int i = 0; i < 2; i++) {
		if (rep[i] >= 0)
			close(rep[i]);
		if (go[i] >= 0)
			close(go[i]);
		if (data[i] >= 0)
			close(data[i]);
	}
	errno = saved;
	return -1;
}

int ns_worker_read_data(struct ns_worker *w, size_t max, char **text, size_t *len)
{
	_cleanup_free_ char *buf = NULL;
	size_t cap = 0, off = 0;

	for (;;) {
		ssize_t n;

		if (cap - off < 4096 + 1) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *nb;

			if (ncap > max + 1)
				ncap = max + 1;
			if (ncap <= off + 1) {
				errno = EFBIG;
				return -1;
			}
			nb = realloc(buf, ncap);
			if (!nb)
				return -1;
			buf = nb;
			cap = ncap;
		}
		if (wait_readable(w->data_fd, w->deadline_ms) < 0)
			return -1;
		n = read(w->data_fd, buf + off, cap - 1 - off);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	*text = buf;
	buf = NULL;
	if (len)
		*len = off;
	return 0;
}

int ns_worker_report(struct ns_worker *w, struct ns_report *rep)
{
	return ns_read_full(w->report_fd, rep, sizeof(*rep), w->deadline_ms);
}

void ns_worker_finish(struct ns_worker *w)
{
	hpcn_closep(&w->go_fd);
	hpcn_closep(&w->data_fd);
	if (w->pid > 0)
		ns_reap(w->pid, w->deadline_ms);
	w->pid = -1;
	hpcn_closep(&w->report_fd);
}

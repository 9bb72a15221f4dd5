/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pid namespace holder: pid 1 of an allocation's pid namespace. A pid
 * namespace whose init is gone accepts no new process, so something must be
 * its init for the allocation's lifetime; it must reap the orphans that get
 * reparented to it, and it must outlive a restart of the helper without
 * being the helper's child (double fork: it ends up with init, or with the
 * nearest subreaper).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ns.h"
#include "ns_internal.h"
#include "util.h"

/* Two processes write to one pipe, in no fixed order: each message says
 * who sent it. */
enum { FROM_MID = 1, FROM_HOLDER = 2 };

struct holder_msg {
	int from;
	int step;
	int err;
	pid_t pid;  /* from the intermediate child: the holder's pid */
};

static void send_msg(int fd, int from, int step, int e, pid_t pid)
{
	struct holder_msg m = { from, step, e, pid };
	ssize_t n;

	do {
		n = write(fd, &m, sizeof(m));
	} while (n < 0 && errno == EINTR);
}

static __attribute__((noreturn)) void holder_main(int ready_fd)
{
	struct sigaction sa;
	sigset_t all, chld;

	/* Signals: all blocked; those that can be are ignored too, so that
	 * nothing but SIGKILL (and SIGSTOP) from the outside affects it.
	 * SIGCHLD stays at its default so that it can be waited for. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	for (int s = 1; s < NSIG; s++)
		if (s != SIGCHLD && s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	setsid();
	if (chdir("/") < 0) {
		/* "/" always exists; nothing to do about it failing */
	}
	prctl(PR_SET_NAME, HPCN_NS_HOLDER_COMM, 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	/* Nothing inherited stays open (sockets of clients, pins, stdio). */
	if ((ready_fd > 0 && close_range(0, (unsigned int)ready_fd - 1, 0) < 0) ||
	    close_range((unsigned int)ready_fd + 1, ~0u, 0) < 0) {
		struct rlimit rl;
		int max = 65536;

		/* Kernels before 5.9: one by one, up to a sane bound. */
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max)
			max = (int)rl.rlim_cur;
		for (int fd = 0; fd < max; fd++)
			if (fd != ready_fd)
				close(fd);
	}
	send_msg(ready_fd, FROM_HOLDER, NS_STEP_NONE, 0, getpid());
	close(ready_fd);

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		pid_t r = waitpid(-1, NULL, __WALL);

		if (r < 0 && errno == ECHILD)
			sigwaitinfo(&chld, NULL);
	}
}

int ns_holder_spawn(const char *alloc_id, pid_t *holder, struct hpcn_error *err)
{
	_cleanup_close_ int rd = -1;
	struct ns_proc hp = NS_PROC_INIT;
	int p[2];
	unsigned long long deadline = hpcn_now_ms() + HPCN_NS_CHILD_TIMEOUT_MS;
	struct holder_msg m1, m2;
	pid_t mid, hold = 0;
	bool holder_ready = false;
	int rv = -1;

	*holder = 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
					    "allocation %s: pipe for the pid namespace holder",
					    alloc_id);
	mid = fork();
	if (mid < 0) {
		int e = errno;

		close(p[0]);
		close(p[1]);
		return hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, e, NULL,
					    "allocation %s: fork for the pid namespace holder",
					    alloc_id);
	}
	if (mid == 0) {
		pid_t c;

		close(p[0]);
		if (unshare(CLONE_NEWPID) < 0) {
			send_msg(p[1], FROM_MID, NS_STEP_UNSHARE_PID, errno, 0);
			_exit(1);
		}
		c = fork();
		if (c < 0) {
			send_msg(p[1], FROM_MID, NS_STEP_FORK_HOLDER, errno, 0);
			_exit(1);
		}
		if (c == 0)
			holder_main(p[1]);
		send_msg(p[1], FROM_MID, NS_STEP_NONE, 0, c);
		_exit(0);
	}
	close(p[1]);
	rd = p[0];

	if (ns_read_full(rd, &m1, sizeof(m1), deadline) < 0) {
		hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
				     "allocation %s: no word from the pid namespace "
				     "holder's parent", alloc_id);
		goto fail;
	}
	if (m1.from == FROM_HOLDER) {
		/* The holder was quicker than its parent: the parent's word follows. */
		holder_ready = true;
		if (ns_read_full(rd, &m1, sizeof(m1), deadline) < 0 || m1.from != FROM_MID) {
			hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno ? errno : EPROTO,
					     NULL, "allocation %s: no word from the pid namespace "
					     "holder's parent", alloc_id);
			goto fail;
		}
	}
	if (m1.err) {
		hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, m1.err, NULL,
				     "allocation %s: creating the pid namespace: %s",
				     alloc_id, ns_step_text(m1.step));
		goto fail;
	}
	hold = m1.pid;
	/* Until the intermediate child is reaped, the holder's pid cannot be
	 * reused: take a pidfd now so that a kill on failure hits the holder. */
	ns_proc_open(hold, &hp);
	ns_reap(mid, deadline);
	mid = 0;
	if (!holder_ready && (ns_read_full(rd, &m2, sizeof(m2), deadline) < 0 ||
			      m2.from != FROM_HOLDER)) {
		hpcn_error_set_errno(err, HPCN_E_NS_CREATION_FAILED, errno, NULL,
				     "allocation %s: pid namespace holder %d did not get ready",
				     alloc_id, (int)hold);
		goto fail;
	}
	*holder = hold;
	rv = 0;
fail:
	if (mid > 0)
		ns_reap(mid, deadline);
	if (rv < 0 && hp.pid > 0)
		ns_proc_kill_wait(&hp, HPCN_NS_KILL_TIMEOUT_MS);
	ns_proc_close(&hp);
	return rv;
}

static bool holder_looks_right(pid_t pid)
{
	char path[64], buf[4096];
	char *q;
	long last = -1;
	int ntok = 0;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if (hpcn_read_file_at(AT_FDCWD, path, buf, sizeof(buf)) < 0)
		return false;
	if (strcmp(buf, HPCN_NS_HOLDER_COMM "\n") != 0)
		return false;
	/* "NSpid:\t4711\t1": pid 1 of a pid namespace below ours. */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (hpcn_read_file_at(AT_FDCWD, path, buf, sizeof(buf)) < 0)
		return false;
	q = strstr(buf, "\nNSpid:");
	if (!q)
		return false;
	q += strlen("\nNSpid:");
	for (;;) {
		char *end;

		while (*q == ' ' || *q == '\t')
			q++;
		if (*q == '\n' || *q == '\0')
			break;
		last = strtol(q, &end, 10);
		if (end == q)
			return false;
		ntok++;
		q = end;
	}
	return ntok >= 2 && last == 1;
}

/* State letter of /proc/<pid>/stat, 0 when it is gone. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	const char *rp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (hpcn_read_file_at(AT_FDCWD, path, buf, sizeof(buf)) < 0)
		return 0;
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' ? rp[2] : 0;
}

static bool proc_alive(const struct ns_proc *p)
{
	char st;

	if (p->pidfd >= 0)
		return pidfd_send_signal(p->pidfd, 0, NULL, 0) == 0;
	st = proc_state(p->pid);
	return st != 0 && st != 'Z' && st != 'X';
}

int ns_proc_open(pid_t pid, struct ns_proc *p)
{
	*p = (struct ns_proc)NS_PROC_INIT;
	if (pid <= 0) {
		errno = ESRCH;
		return -1;
	}
	p->pid = pid;
	p->pidfd = pidfd_open(pid, 0);
	if (p->pidfd < 0 && errno != ENOSYS)
		return -1;
	if (!proc_alive(p)) {
		ns_proc_close(p);
		errno = ESRCH;
		return -1;
	}
	return 0;
}

void ns_proc_close(struct ns_proc *p)
{
	hpcn_closep(&p->pidfd);
	p->pid = 0;
}

int ns_proc_kill_wait(struct ns_proc *p, unsigned int timeout_ms)
{
	unsigned long long deadline = hpcn_now_ms() + timeout_ms;

	if (p->pidfd >= 0) {
		if (pidfd_send_signal(p->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
			return -1;
	} else if (kill(p->pid, SIGKILL) < 0 && errno != ESRCH) {
		return -1;
	}
	/* The init of a pid namespace exits after every process in it. */
	for (;;) {
		unsigned long long now = hpcn_now_ms();

		if (p->pidfd >= 0) {
			struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
			int r;

			if (now >= deadline)
				break;
			r = poll(&pfd, 1, (int)(deadline - now));
			if (r > 0)
				return 0;
			if (r < 0 && errno != EINTR)
				return -1;
		} else {
			struct timespec ts = { 0, 2 * 1000 * 1000 };

			if (!proc_alive(p))
				return 0;
			if (now >= deadline)
				break;
			nanosleep(&ts, NULL);
		}
	}
	errno = ETIMEDOUT;
	return -1;
}

int ns_holder_get(pid_t pid, dev_t dev, ino_t ino, struct ns_proc *p)
{
	char path[64];
	struct stat st;

	if (ns_proc_open(pid, p) < 0)
		return -1;
	if (dev != 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
		if (stat(path, &st) < 0 || st.st_dev != dev || st.st_ino != ino)
			goto not_it;
	} else if (!holder_looks_right(pid)) {
		goto not_it;
	}
	/* Still the process of the handle? Then /proc spoke about it. */
	if (!proc_alive(p))
		goto not_it;
	return 0;
not_it:
	ns_proc_close(p);
	errno = ESRCH;
	return -1;
}

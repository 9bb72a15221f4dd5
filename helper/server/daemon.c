/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's lifecycle: the listening socket (systemd socket activation or
 * our own bind), the cgroup root, the descriptor limit, reconstruction of
 * the registry and the mounts, readiness, signals (SIGTERM/SIGINT stop,
 * SIGHUP reloads), the reconciliation timer, and the orderly shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "server_internal.h"
#include "uenv/uenv.h"

/* Descriptors besides the clients': listening socket, cgroups, namespaces,
 * mounts in progress. */
#define HPCN_FD_RESERVE 256
/* Descriptors kept per allocation: its namespaces for repeated handoffs
 * and its scope's cgroup.events, 4 for each of 8192 allocations (see
 * raise_fd_limit). */
#define HPCN_NS_FD_CACHE (4 * 8192)

/* Our own bind, when systemd did not hand us the socket. */
static int bind_socket(struct hpcn_helper *h, struct hpcn_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[PATH_MAX], *slash;
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(h->cfg.socket_path) >= sizeof(sa.sun_path))
		return hpcn_error_setf(err, HPCN_E_BOOT_FAILED, NULL,
				       "socket path %s is longer than %zu bytes",
				       h->cfg.socket_path, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, h->cfg.socket_path);
	snprintf(dir, sizeof(dir), "%s", h->cfg.socket_path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (hpcn_mkdir_p(dir, 0755) < 0)
			return hpcn_error_set_errno(err, HPCN_E_BOOT_FAILED, errno, NULL,
						    "cannot create %s", dir);
	}
	/* A stale socket of a previous run; never remove anything else. */
	if (lstat(h->cfg.socket_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return hpcn_error_setf(err, HPCN_E_BOOT_FAILED, NULL,
					       "%s exists and is not a socket", h->cfg.socket_path);
		unlink(h->cfg.socket_path);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return hpcn_error_set_errno(err, HPCN_E_BOOT_FAILED, errno, NULL, "socket");
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		umask(old);
		close(fd);
		return hpcn_error_set_errno(err, HPCN_E_BOOT_FAILED, e, NULL, "bind %s",
					    h->cfg.socket_path);
	}
	umask(old);
	if (chmod(h->cfg.socket_path, h->cfg.socket_mode) < 0 || listen(fd, SOMAXCONN) < 0) {
		int e = errno;

		close(fd);
		return hpcn_error_set_errno(err, HPCN_E_BOOT_FAILED, e, NULL, "listen on %s",
					    h->cfg.socket_path);
	}
	h->listen_fd = fd;
	return 0;
}

static int open_socket(struct hpcn_helper *h, struct hpcn_error *err)
{
	int n = sd_listen_fds(1);

	if (n > 1)
		return hpcn_error_setf(err, HPCN_E_BOOT_FAILED, NULL,
				       "systemd passed %d sockets, expected one", n);
	if (n == 1) {
		if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_SEQPACKET, 1, NULL, 0) <= 0)
			return hpcn_error_set(err, HPCN_E_BOOT_FAILED,
					      "the socket systemd passed is not a listening "
					      "AF_UNIX SOCK_SEQPACKET socket", NULL);
		h->listen_fd = SD_LISTEN_FDS_START;
		h->socket_activated = true;
		fcntl(h->listen_fd, F_SETFD, FD_CLOEXEC);
		fcntl(h->listen_fd, F_SETFL, fcntl(h->listen_fd, F_GETFL) | O_NONBLOCK);
		return 0;
	}
	return bind_socket(h, err);
}

static int open_cgroup(struct hpcn_helper *h, struct hpcn_error *err)
{
	char root[PATH_MAX];
	struct hpcn_error e;

	if (!h->cfg.cgroup_enabled) {
		hpcn_log_notice("cgroup management disabled by configuration");
		return 0;
	}
	if (h->cfg.cgroup_root[0])
		snprintf(root, sizeof(root), "%s", h->cfg.cgroup_root);
	else if (hpcn_cgroup_detect_root(root, sizeof(root), &e) < 0)
		return hpcn_error_setf(err, HPCN_E_BOOT_FAILED, NULL, "%s", e.message);
	if (hpcn_cgroup_open(&h->cg, root, 0, &e) < 0 ||
	    hpcn_cgroup_create_hierarchy(&h->cg, &h->cgroup_warnings, &e) < 0)
		return hpcn_error_setf(err, HPCN_E_BOOT_FAILED, NULL, "%s", e.message);
	h->cgroup_ok = true;
	for (size_t i = 0; i < h->cgroup_warnings.n; i++)
		hpcn_log_warning("%s", h->cgroup_warnings.v[i]);
	hpcn_log_info("cgroup v2 root %s, %s", root, HPCN_SLICE_WORKLOAD_ROOT " ready");
	return 0;
}

static int on_reconcile_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct hpcn_helper *h = userdata;

	hpcn_allocs_reconcile(h, NULL);
	sd_event_source_set_time_relative(s, (uint64_t)h->cfg.reconcile_interval_secs * 1000000ULL);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

static int on_terminate(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct hpcn_helper *h = userdata;

	hpcn_log_notice("signal %d: stopping; allocations, scopes and mounts stay in place",
			(int)si->ssi_signo);
	h->stopping = true;
	sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
	/* No stale readiness while nobody answers. */
	hpcn_readiness_clear(h->cfg.ready_file, NULL);
	h->ready = false;
	return sd_event_exit(h->event, 0);
}

/*
 * The kernel's mount table names mounts by their real path: with a mount
 * base reached through a symlink (/var/run -> /run), the mounts below it
 * were never found there, and each reconciliation "forgot" every image.
 * Use the base's real path (it exists: hpcn_helper_init makes it). Returns
 * true when it differs from the configured one.
 */
static bool canonical_mount_base(struct hpcn_config *c)
{
	char real[PATH_MAX];

	if (!realpath(c->uenv_mount_base, real) || strcmp(real, c->uenv_mount_base) == 0 ||
	    strlen(real) >= sizeof(c->uenv_mount_base))
		return false;
	memcpy(c->uenv_mount_base, real, strlen(real) + 1);
	return true;
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct hpcn_helper *h = userdata;
	struct hpcn_strv changed = { 0 }, refused = { 0 };
	struct hpcn_config next;
	struct hpcn_error err;

	sd_notify(0, "RELOADING=1");
	if (hpcn_config_load(&next, h->cfg.config_path[0] ? h->cfg.config_path : NULL,
			     h->cfg.config_path[0] != '\0', &err) < 0) {
		hpcn_log_error("reload: %s; keeping the running configuration", err.message);
		goto out;
	}
	canonical_mount_base(&next); /* as at the start, or it would look changed */
	if (hpcn_config_reload_merge(&h->cfg, &next, &changed, &refused) < 0) {
		hpcn_config_free(&next);
		goto out;
	}
	for (size_t i = 0; i < refused.n; i++)
		hpcn_log_warning("reload: %s cannot change without a restart; kept", refused.v[i]);
	for (size_t i = 0; i < changed.n; i++)
		if (!hpcn_strv_contains(&refused, changed.v[i]))
			hpcn_log_notice("reload: %s changed", changed.v[i]);
	/* The target only moves when the file's log_target did: the running
	 * one may come from the command line (-f), which a reload keeps. */
	if (next.log_target != h->cfg.log_target)
		hpcn_log_init(next.log_target, next.log_level, NULL);
	else
		hpcn_log_set_level(next.log_level);
	hpcn_config_free(&h->cfg);
	h->cfg = next;
	if (hpcn_audit_init(h->cfg.audit_log, &err) < 0)
		hpcn_log_error("reload: audit log: %s", err.message);
out:
	hpcn_strv_free(&changed);
	hpcn_strv_free(&refused);
	sd_notify(0, "READY=1");
	return 0;
}

/* Room for HPCN_MAX_CONNECTIONS clients (the usual soft limit of 1024 would
 * make the connection limit unreachable) and for the namespace FDs kept per
 * allocation (alloc.c, reply_namespaces). Never above the hard limit. The
 * cache only uses what the clients and the reserve leave: descriptors are
 * numbered lowest first, so an FD numbered at or above ns_fd_cache_below is
 * not kept, and a full cache never costs a client its connection. */
static void raise_fd_limit(struct hpcn_helper *h)
{
	struct rlimit rl;
	rlim_t want = HPCN_MAX_CONNECTIONS + HPCN_FD_RESERVE + HPCN_NS_FD_CACHE;

	h->ns_fd_cache_below = 0;
	h->watch_fd_below = 512;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < want) {
		struct rlimit next = rl;

		next.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ?
			rl.rlim_max : want;
		if (setrlimit(RLIMIT_NOFILE, &next) < 0)
			hpcn_log_warning("cannot raise the descriptor limit to %lu: %s",
					 (unsigned long)next.rlim_cur, strerror(errno));
		else
			rl = next;
		if (rl.rlim_cur < HPCN_MAX_CONNECTIONS + HPCN_FD_RESERVE)
			hpcn_log_notice("descriptor limit %lu: fewer than %d clients at once",
					(unsigned long)rl.rlim_cur, HPCN_MAX_CONNECTIONS);
	}
	if (rl.rlim_cur > HPCN_MAX_CONNECTIONS + HPCN_FD_RESERVE)
		h->ns_fd_cache_below = (int)(rl.rlim_cur - HPCN_MAX_CONNECTIONS - HPCN_FD_RESERVE);
	/* Scope watches (one cgroup.events each) may always use half of a
	 * small limit, so that a node without room for 4,096 clients still
	 * notices at once that a scope emptied. */
	h->watch_fd_below = h->ns_fd_cache_below > (int)(rl.rlim_cur / 2) ?
		h->ns_fd_cache_below : (int)(rl.rlim_cur / 2);
}

int hpcn_helper_init(struct hpcn_helper *h, const struct hpcn_config *cfg,
		     struct hpcn_error *err)
{
	sigset_t ss;
	char content[128];

	memset(h, 0, sizeof(*h));
	h->listen_fd = -1;
	h->cg.root_fd = -1;
	h->reg.dirfd = -1;
	if (hpcn_config_copy(&h->cfg, cfg) < 0)
		return hpcn_error_set(err, HPCN_E_INTERNAL, "out of memory", NULL);
	h->started_mono_ms = hpcn_now_ms();

	/* A readiness file left by a previous run must not be believed. */
	hpcn_readiness_clear(h->cfg.ready_file, NULL);
	sd_notify(0, "STATUS=Starting");

	if (hpcn_audit_init(h->cfg.audit_log, err) < 0)
		return -1;
	if (hpcn_mkdir_p(h->cfg.state_dir, 0700) < 0)
		return hpcn_error_set_errno(err, HPCN_E_BOOT_FAILED, errno, NULL,
					    "cannot create state directory %s", h->cfg.state_dir);
	if (hpcn_registry_open(&h->reg, h->cfg.state_dir, err) < 0 || open_cgroup(h, err) < 0)
		return -1;
	if (hpcn_mkdir_p(h->cfg.uenv_mount_base, 0755) < 0)
		return hpcn_error_set_errno(err, HPCN_E_BOOT_FAILED, errno, NULL,
					    "cannot create mount base %s", h->cfg.uenv_mount_base);
	{
		char configured[PATH_MAX];

		snprintf(configured, sizeof(configured), "%s", h->cfg.uenv_mount_base);
		if (canonical_mount_base(&h->cfg))
			hpcn_log_notice("[uenv] mount_base %s is %s (a symlink on the way): "
					"using the latter", configured, h->cfg.uenv_mount_base);
	}

	if (sd_event_default(&h->event) < 0)
		return hpcn_error_set(err, HPCN_E_BOOT_FAILED, "sd_event_default failed", NULL);
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (sd_event_add_signal(h->event, NULL, SIGTERM, on_terminate, h) < 0 ||
	    sd_event_add_signal(h->event, NULL, SIGINT, on_terminate, h) < 0 ||
	    sd_event_add_signal(h->event, NULL, SIGHUP, on_reload, h) < 0)
		return hpcn_error_set(err, HPCN_E_BOOT_FAILED, "cannot install signal handlers",
				      NULL);
	sd_event_set_watchdog(h->event, true);

	/*
	 * Bind before reconstructing: clients that connect meanwhile wait in
	 * the listen backlog and are served once we are ready, queued rather
	 * than refused (the contract's readiness rule).
	 */
	raise_fd_limit(h);
	if (open_socket(h, err) < 0)
		return -1;
	if (sd_event_add_io(h->event, NULL, h->listen_fd, HPCN_IO_EVENTS, hpcn_server_on_accept,
			    h) < 0)
		return hpcn_error_set(err, HPCN_E_BOOT_FAILED, "cannot watch the socket", NULL);

	sd_notify(0, "STATUS=Reconstructing state");
	if (hpcn_allocs_reconstruct(h, err) < 0)
		return -1;

	if (sd_event_add_time_relative(h->event, &h->reconcile_timer, CLOCK_MONOTONIC,
				       (uint64_t)h->cfg.reconcile_interval_secs * 1000000ULL,
				       0, on_reconcile_timer, h) < 0)
		return hpcn_error_set(err, HPCN_E_BOOT_FAILED, "cannot arm the reconcile timer",
				      NULL);

	snprintf(content, sizeof(content), "pid=%d\nsoftware=hpc-node-helper %s\n",
		 (int)getpid(), HPCN_VERSION_STRING);
	if (hpcn_readiness_signal(h->cfg.ready_file, content, err) < 0)
		return -1;
	h->ready = true;
	sd_notifyf(0, "READY=1\nSTATUS=Serving %zu allocation(s) on %s", h->reg.n,
		   h->cfg.socket_path);
	hpcn_audit(HPCN_AUDIT_BOOT_READY, HPCN_AUDIT_SUCCESS, NULL, NULL,
		   "ready: %zu allocation(s) restored, socket %s", h->reg.n, h->cfg.socket_path);
	return 0;
}

int hpcn_helper_run(struct hpcn_helper *h)
{
	int r = sd_event_loop(h->event);

	return r < 0 ? -1 : 0;
}

void hpcn_helper_free(struct hpcn_helper *h)
{
	while (h->conns) {
		struct hpcn_conn *c = h->conns;

		/* Closing connections must not end allocations at shutdown. */
		h->conns = c->next;
		sd_event_source_disable_unref(c->src);
		close(c->fd);
		free(c);
	}
	for (size_t i = 0; i < h->reg.n; i++) {
		sd_event_source_disable_unref(h->reg.v[i]->watch);
		h->reg.v[i]->watch = NULL;
		sd_event_source_disable_unref(h->reg.v[i]->kill_timer);
		h->reg.v[i]->kill_timer = NULL;
	}
	sd_event_source_disable_unref(h->reconcile_timer);
	h->accept_resume = sd_event_source_disable_unref(h->accept_resume);
	if (h->listen_fd >= 0) {
		close(h->listen_fd);
		if (!h->socket_activated)
			unlink(h->cfg.socket_path);
	}
	hpcn_readiness_clear(h->cfg.ready_file, NULL);
	hpcn_uenv_free(h);
	hpcn_registry_close(&h->reg);
	if (h->cgroup_ok)
		hpcn_cgroup_close(&h->cg);
	hpcn_strv_free(&h->cgroup_warnings);
	sd_event_unref(h->event);
	hpcn_audit_close();
	hpcn_config_free(&h->cfg);
}

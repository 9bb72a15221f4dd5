# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# A real, isolated, single-node Slurm for bats tests: its own munged, its own
# slurmctld and slurmd on free ports, its own hpc-node-helper, everything
# under one temporary directory, started by cluster_start (setup_file) and
# removed by cluster_stop (teardown_file), which also runs after failures.
#
#   load lib/cluster
#   setup_file()    { cluster_start; }
#   teardown_file() { cluster_stop; }
#   teardown()      { cluster_dump_logs_on_failure; }
#
# Needs root. Exports for the tests (bats runs each test in a child process,
# so anything a test needs must be exported or recorded in a file under
# $HPCN_T; the pids of the daemons live in $HPCN_T/pids/ for that reason):
#   SLURM_CONF     the cluster's slurm.conf
#   HPCN_T         the temporary directory (mode 0755)
#   HPCN_WORK      $HPCN_T/work, owned by the test user: as_user runs there
#   HPCN_TEST_USER unprivileged user of the jobs (default hpcntest)
#   HPCN_SOCKET    the test helper's socket
#   HPCN_READY     the test helper's ready file
#   HPCN_HELPER_CONF, HPCN_HELPER_STATE, HPCN_HELPER_AUDIT, HPCN_MOUNT_BASE
#   HPCN_CGROUP_ROOT  the helper's [cgroup] root: a fresh subtree we own
#   HPCN_PLUGIN    $HPCN_BUILD_DIR/spank/spank_hpc_node.so (a copy under
#                  $HPCN_T with job_container/tmpfs: srun inside a job sees
#                  the job's /tmp, where a build tree under /tmp is hidden)
#   HPCN_NODECTL   $HPCN_BUILD_DIR/helper/hpc-nodectl
#   HPCN_MARKERS   where the Prolog/Epilog scripts write (prolog.log, epilog.log)
#   HPCN_LOGS      the daemons' logs
#
# Tunables, read by cluster_start:
#   HPCN_BUILD_DIR        the build tree (default: <repo>/build)
#   HPCN_SLURM_CPUS       CPUs of the node (default: nproc)
#   HPCN_SLURMD_DEBUG     SlurmdDebug (default: debug, so plugin messages show)
#   HPCN_SLURM_EXTRA_CONF lines appended to slurm.conf (keys not set below)
#   HPCN_SLURM_PRELOAD    LD_PRELOAD for slurmd and as_user (sanitizer builds)
#   HPCN_CLUSTER_OWNER    pid whose death marks the cluster stale (default $$)
#   HPCN_HELPER_EXTRA     callback name: called with the helper.conf path
#                         after it is written, before the helper starts
#   HPCN_SLURM_JOB_CONTAINER=1  Slurm's real job_container/tmpfs
#                         (JobContainerType, PrologFlags=Contain, a
#                         job_container.conf with AutoBasePath and a BasePath
#                         of its own, $HPCN_T/jc, exported as HPCN_JC_BASE;
#                         $HPCN_T is then under /var/tmp: the job's private
#                         /tmp hides the host's, and 22.05 refuses a
#                         BasePath under /tmp)
#   HPCN_SLURM_CGROUP=1   Slurm's own cgroup plugins: proctrack/cgroup,
#                         task/cgroup,task/affinity, a cgroup.conf with
#                         CgroupPlugin=cgroup/v1 (this hybrid host's memory,
#                         cpuset, freezer and devices controllers are v1);
#                         memory is consumable (CR_CPU_Memory, 1 GiB a job
#                         by default), so --mem is a limit

HPCN_TEST_USER=${HPCN_TEST_USER:-hpcntest}
_HPCN_CL_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

_cl_msg() { printf '# cluster: %s\n' "$*" >&2; }
_cl_die() { printf '# cluster: ERROR: %s\n' "$*" >&2; return 1; }

# Is pid a live process (not a zombie)?
_cl_alive() {
	local st
	[[ -n ${1:-} && -r /proc/$1/stat ]] || return 1
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[[ ${st:0:1} != Z && ${st:0:1} != X ]]
}

_cl_pid_of() { # name -> pid recorded under $HPCN_T/pids
	local f=$HPCN_T/pids/$1
	[[ -s $f ]] && cat "$f"
}

# Stop one process: sig, then SIGKILL after timeout (seconds).
_cl_kill_wait() { # pid timeout sig
	local pid=$1 timeout=${2:-5} sig=${3:-TERM}
	_cl_alive "$pid" || return 0
	kill "-$sig" "$pid" 2>/dev/null
	local end=$((SECONDS + timeout))
	while ((SECONDS < end)); do
		_cl_alive "$pid" || return 0
		sleep 0.05
	done
	_cl_msg "pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) ignored SIG$sig, SIGKILL"
	kill -KILL "$pid" 2>/dev/null
	end=$((SECONDS + 60))
	while ((SECONDS < end)); do
		_cl_alive "$pid" || return 0
		sleep 0.05
	done
	_cl_msg "pid $pid survived SIGKILL (D state?)"
	return 1
}

# A TCP port nobody listens on, away from Slurm's defaults and from the
# ephemeral range (where srun's and the daemons' own connections land).
_cl_free_port() {
	local p i used
	used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 12000))
		[[ $p == 6817 || $p == 6818 ]] && continue
		grep -qx "$p" <<<"$used" && continue
		echo "$p"
		return 0
	done
	_cl_die "no free TCP port found in 20000-31999"
}

_cl_cgroup2_mount() {
	awk '$0 ~ / - cgroup2 / { print $5; exit }' /proc/self/mountinfo
}

# Mount points under prefix, deepest (last mounted) first.
_cl_mounts_under() {
	awk -v p="$1" '{ mp = $5; gsub(/\\040/, " ", mp);
		if (mp == p || index(mp, p "/") == 1) print mp }' /proc/self/mountinfo | tac
}

# Where a cluster's directory goes: /tmp, but /var/tmp under
# job_container/tmpfs, whose private /tmp hides the host's from the tasks
# (their working directory, the test images, the probes are in it).
_cl_parent() {
	if [[ ${HPCN_SLURM_JOB_CONTAINER:-0} == 1 ]]; then echo /var/tmp; else echo /tmp; fi
}

_cl_is_cluster_dir() { [[ $1 == /tmp/hpcn-slurm.* || $1 == /var/tmp/hpcn-slurm.* ]]; }
# multinode.bash's clusters, for cluster_assert_gone.
_cl_is_any_cluster_dir() { _cl_is_cluster_dir "$1" || [[ $1 == /tmp/hpcn-mn.* ]]; }

# ---- the test user ------------------------------------------------------

cluster_ensure_user() {
	id -u "$HPCN_TEST_USER" >/dev/null 2>&1 && return 0
	# Never removed: other test files and later runs use it too.
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /bin/sh "$HPCN_TEST_USER" 2>/dev/null ||
		id -u "$HPCN_TEST_USER" >/dev/null 2>&1 ||
		_cl_die "useradd $HPCN_TEST_USER failed"
}

# Run a command as the test user, in $HPCN_WORK, with SLURM_CONF set.
as_user() {
	local pre=()
	mapfile -t pre < <(_cl_preload_env)
	(cd "$HPCN_WORK" && runuser -u "$HPCN_TEST_USER" -- \
		env SLURM_CONF="$SLURM_CONF" HOME="$HPCN_WORK" "${pre[@]}" "$@")
}

# ---- polling ------------------------------------------------------------

# wait_for [-t SECONDS] CMD...: run CMD every 0.1 s until it succeeds;
# fail (with a message naming CMD) after SECONDS (default 60: a bound
# against hangs, never a speed the machine must have).
wait_for() {
	local timeout=60 end
	if [[ ${1:-} == -t ]]; then
		timeout=$2
		shift 2
	fi
	end=$((SECONDS + timeout))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		((SECONDS < end)) || break
		sleep 0.1
	done
	"$@" >/dev/null 2>&1 && return 0
	printf '# wait_for: timed out after %ss: %s\n' "$timeout" "$*" >&2
	return 1
}

# ---- logs ---------------------------------------------------------------

cluster_dump_logs() {
	local f
	[[ -n ${HPCN_LOGS:-} && -d $HPCN_LOGS ]] || return 0
	for f in "$HPCN_LOGS"/*; do
		[[ -s $f ]] || continue
		printf '# ---- %s (last 60 lines) ----\n' "$f" >&2
		tail -n 60 "$f" | sed 's/^/#   /' >&2
	done
}

# For teardown(): the logs when the test failed, so bats shows them.
cluster_dump_logs_on_failure() {
	[[ -n ${BATS_TEST_COMPLETED:-} ]] || cluster_dump_logs
}

# ---- munge --------------------------------------------------------------

_cl_start_munge() {
	local d=$HPCN_T/munge pid i
	mkdir -p "$d"
	chown munge:munge "$d"
	chmod 0755 "$d" # clients (the test user's srun) reach the socket
	if command -v mungekey >/dev/null; then
		mungekey --create --keyfile="$d/munge.key" >/dev/null || return 1
	else
		dd if=/dev/urandom of="$d/munge.key" bs=1024 count=1 status=none || return 1
	fi
	chown munge:munge "$d/munge.key"
	chmod 0400 "$d/munge.key"
	setpriv --reuid=munge --regid=munge --init-groups \
		munged --foreground --force --socket="$d/munge.socket.2" \
		--key-file="$d/munge.key" --pid-file="$d/munged.pid" \
		--log-file="$HPCN_LOGS/munged.log" --seed-file="$d/munged.seed" \
		</dev/null >>"$HPCN_LOGS/munged.stderr" 2>&1 3>&- &
	pid=$!
	echo "$pid" >"$HPCN_T/pids/munged"
	local end=$((SECONDS + 60))
	while ((SECONDS < end)); do
		[[ -S $d/munge.socket.2 ]] && return 0
		_cl_alive "$pid" || break
		sleep 0.05
	done
	_cl_die "munged did not create $d/munge.socket.2"
}

# ---- slurm --------------------------------------------------------------

_cl_write_slurm_conf() {
	local T=$HPCN_T cpus=${HPCN_SLURM_CPUS:-$(nproc)} mem extra=""
	mem=$(awk '/^MemTotal:/ { m = int($2 / 1024 / 2); print (m > 0 ? m : 1) }' /proc/meminfo)
	# More CPUs than the machine has: slurmd must not drain the node.
	((cpus > $(nproc))) && extra="SlurmdParameters=config_overrides"
	local proctrack=proctrack/linuxproc task=task/none select=CR_CPU
	if [[ ${HPCN_SLURM_CGROUP:-0} == 1 ]]; then
		proctrack=proctrack/cgroup task=task/cgroup,task/affinity
		# Memory a consumable resource, so that --mem becomes a limit;
		# jobs without --mem get 1 GiB, several fit on the node.
		select=CR_CPU_Memory
		extra+=$'\nDefMemPerNode=1024'
		_cl_write_cgroup_conf
	fi
	if [[ ${HPCN_SLURM_JOB_CONTAINER:-0} == 1 ]]; then
		extra+=$'\nJobContainerType=job_container/tmpfs\nPrologFlags=Contain'
		_cl_write_job_container_conf
	fi
	cat >"$SLURM_CONF" <<EOF
# Written by tests/slurm/lib/cluster.bash for one test file.
ClusterName=hpcntest
SlurmctldHost=localhost
SlurmctldPort=$HPCN_SLURMCTLD_PORT
SlurmdPort=$HPCN_SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.socket.2
CredType=cred/munge
ProctrackType=$proctrack
TaskPlugin=$task
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=$select
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool/%n
SlurmctldPidFile=$T/pids/slurmctld.pidfile
SlurmdPidFile=$T/pids/slurmd-%n.pidfile
SlurmctldLogFile=$HPCN_LOGS/slurmctld.log
SlurmdLogFile=$HPCN_LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=${HPCN_SLURMD_DEBUG:-debug}
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
PlugStackConfig=$T/plugstack.conf
Prolog=$T/prolog.sh
Epilog=$T/epilog.sh
ReturnToService=2
KillWait=5
MessageTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=30
$extra
${HPCN_SLURM_EXTRA_CONF:-}
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:128
EOF
	chmod 0644 "$SLURM_CONF"
}

# job_container.conf beside slurm.conf, where slurmd reads it. The BasePath
# is this cluster's own, under $HPCN_T (so cluster_stop removes what a killed
# slurmd leaves there); slurmd makes BasePath/<node> (Debian builds Slurm
# with multiple-slurmd support) and pins each job's namespace in it.
_cl_write_job_container_conf() {
	HPCN_JC_BASE=$HPCN_T/jc
	export HPCN_JC_BASE
	cat >"$HPCN_T/job_container.conf" <<EOF
# Written by tests/slurm/lib/cluster.bash.
AutoBasePath=true
BasePath=$HPCN_JC_BASE
EOF
	chmod 0644 "$HPCN_T/job_container.conf"
}

# cgroup.conf for Slurm's cgroup/v1 plugin (this host is hybrid: Slurm's
# autodetection refuses it). Cores, memory and devices are constrained.
_cl_write_cgroup_conf() {
	cat >"$HPCN_T/cgroup.conf" <<EOF
# Written by tests/slurm/lib/cluster.bash.
CgroupPlugin=cgroup/v1
CgroupAutomount=no
ConstrainCores=yes
ConstrainRAMSpace=yes
ConstrainDevices=yes
EOF
	chmod 0644 "$HPCN_T/cgroup.conf"
}

_cl_write_prolog_epilog() {
	local which
	for which in prolog epilog; do
		cat >"$HPCN_T/$which.sh" <<EOF
#!/bin/sh
# Marker for the tests: the $which ran, for which job and user.
echo "$which job=\$SLURM_JOB_ID user=\$SLURM_JOB_USER uid=\$SLURM_JOB_UID" \\
	>>"$HPCN_MARKERS/$which.log"
exit 0
EOF
		chmod 0755 "$HPCN_T/$which.sh"
	done
}

_cl_start_slurmctld() {
	slurmctld -D -f "$SLURM_CONF" </dev/null >>"$HPCN_LOGS/slurmctld.stderr" 2>&1 3>&- &
	echo $! >"$HPCN_T/pids/slurmctld"
}

# Sanitizer runtimes for slurmd (hence slurmstepd) and the test user's
# commands, so that an instrumented plugin loads (HPCN_SLURM_PRELOAD, set by
# tests/slurm/CMakeLists.txt in sanitizer builds). Slurm itself leaks by design.
_cl_preload_env() {
	if [[ -n ${HPCN_SLURM_PRELOAD:-} ]]; then
		echo "LD_PRELOAD=$HPCN_SLURM_PRELOAD"
		echo "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"
	fi
}

_cl_start_slurmd() {
	local pre=()
	mapfile -t pre < <(_cl_preload_env)
	env "${pre[@]}" slurmd -D -f "$SLURM_CONF" -N localhost \
		</dev/null >>"$HPCN_LOGS/slurmd.stderr" 2>&1 3>&- &
	echo $! >"$HPCN_T/pids/slurmd"
}

_cl_port_listening() { # port
	ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

_cl_node_idle() {
	[[ $(sinfo -h -o %t 2>/dev/null) == idle ]]
}

_cl_listening_or_dead() { # port pid
	_cl_port_listening "$1" || ! _cl_alive "$2"
}

_cl_port_free() { ! _cl_port_listening "$1"; }

_cl_no_jobs() { [[ -z $(squeue -h -o %A 2>/dev/null) ]]; }

# Wait (bounded) until slurmd accepts connections and the node is idle; fail
# at once when slurmd exits (e.g. a required SPANK plugin does not load).
_cl_wait_slurm_ready() {
	local pid
	pid=$(_cl_pid_of slurmd)
	wait_for -t 30 _cl_listening_or_dead "$HPCN_SLURMD_PORT" "$pid"
	if ! _cl_alive "$pid"; then
		_cl_die "slurmd (pid $pid) exited during startup:" \
			"$(grep -h 'error:' "$HPCN_LOGS/slurmd.stderr" | tail -n 3)"
		return 1
	fi
	_cl_port_listening "$HPCN_SLURMD_PORT" ||
		_cl_die "slurmd does not listen on port $HPCN_SLURMD_PORT after 30 s" || return 1
	wait_for -t 120 _cl_node_idle ||
		_cl_die "node not idle after 120 s (sinfo: $(sinfo -h -o '%t %E' 2>&1))"
}

# Restart slurmd (plugin changes need a restart, not a reconfigure). Fails
# when the new slurmd does not come up; the next call starts one again.
cluster_restart_slurmd() {
	local pid
	pid=$(_cl_pid_of slurmd)
	[[ -n $pid ]] && _cl_kill_wait "$pid" 10
	wait_for -t 60 _cl_port_free "$HPCN_SLURMD_PORT" || return 1
	_cl_start_slurmd
	_cl_wait_slurm_ready
}

# cluster_set_plugstack "LINE" ["LINE"...]: rewrite plugstack.conf, restart
# slurmd. No argument: an empty plugstack.conf.
cluster_set_plugstack() {
	printf '%s\n' "$@" | grep -v '^$' >"$HPCN_T/plugstack.conf.new" || true
	chmod 0644 "$HPCN_T/plugstack.conf.new"
	mv -f "$HPCN_T/plugstack.conf.new" "$HPCN_T/plugstack.conf"
	cluster_restart_slurmd
}

# ---- the helper ---------------------------------------------------------

_cl_write_helper_conf() {
	cat >"$HPCN_HELPER_CONF" <<EOF
; Written by tests/slurm/lib/cluster.bash: every path under $HPCN_T.
[helper]
socket = $HPCN_SOCKET
socket_mode = 0660
ready_file = $HPCN_READY
state_dir = $HPCN_HELPER_STATE
log_level = debug
log_target = stderr
audit_log = $HPCN_HELPER_AUDIT
[access]
allowed_users =
allowed_groups =
[cgroup]
enabled = true
root = $HPCN_CGROUP_ROOT
limits_mandatory = false
kill_timeout = 5
[uenv]
mount_base = $HPCN_MOUNT_BASE
hold_time = 2
allowed_mount_points = /user-environment, /user-tools
create_mount_points = /user-environment, /user-tools
image_prefixes =
max_images = 4
[namespaces]
allow_pid = true
allow_net = true
[reconcile]
interval = 1
EOF
	if [[ -n ${HPCN_HELPER_EXTRA:-} ]]; then
		"$HPCN_HELPER_EXTRA" "$HPCN_HELPER_CONF" || return 1
	fi
}

_cl_helper_ready() { # pid
	[[ -f $HPCN_READY ]] && grep -q "^pid=$1\$" "$HPCN_READY"
}

cluster_start_helper() {
	local pid
	"$HPCN_BUILD_DIR/helper/hpc-node-helper" -f -c "$HPCN_HELPER_CONF" \
		</dev/null >>"$HPCN_LOGS/helper.log" 2>&1 3>&- &
	pid=$!
	echo "$pid" >"$HPCN_T/pids/helper"
	wait_for -t 60 _cl_helper_ready "$pid" ||
		_cl_die "hpc-node-helper (pid $pid) not ready: no $HPCN_READY naming it" || return 1
}

# For setup(): a test that stopped the helper leaves the next one a new one.
cluster_ensure_helper() {
	_cl_alive "$(_cl_pid_of helper)" || cluster_start_helper
}

# SIGTERM (or the given signal) to the helper, SIGKILL after 5 s.
# shellcheck disable=SC2120
cluster_stop_helper() {
	local pid
	pid=$(_cl_pid_of helper)
	[[ -n $pid ]] && _cl_kill_wait "$pid" 5 "${1:-TERM}"
	rm -f "$HPCN_T/pids/helper"
}

helper_status_json() {
	"$HPCN_NODECTL" --socket "$HPCN_SOCKET" --timeout 60000 status --json
}

# ---- checks for tests ---------------------------------------------------

# Loop devices whose backing file is IMAGE.
count_loop_devices_for() {
	local img n=0 f b
	img=$(realpath -e "$1" 2>/dev/null || echo "$1")
	for f in /sys/block/loop*/loop/backing_file; do
		[[ -r $f ]] || continue
		b=$(cat "$f" 2>/dev/null) || continue
		[[ $b == "$img" ]] && n=$((n + 1))
	done
	echo "$n"
}

# Did the Prolog / Epilog script run for job JOBID?
cluster_prolog_ran() { grep -q "^prolog job=$1 " "$HPCN_MARKERS/prolog.log" 2>/dev/null; }
cluster_epilog_ran() { grep -q "^epilog job=$1 " "$HPCN_MARKERS/epilog.log" 2>/dev/null; }

# Processes under this cluster's control besides the daemons: anything with
# its cwd, root, executable or an open file under $HPCN_T (slurmstepd keeps
# the slurmd log open, the tasks run in $HPCN_WORK). Never ourselves.
cluster_stray_pids() {
	local self=" $$ ${BASHPID:-} $PPID " p
	find /proc/[0-9]*/cwd /proc/[0-9]*/exe /proc/[0-9]*/root /proc/[0-9]*/fd/ -maxdepth 1 \
		\( -lname "$HPCN_T" -o -lname "$HPCN_T/*" \) 2>/dev/null | cut -d/ -f3 | sort -un |
		while read -r p; do
			[[ $self == *" $p "* ]] || echo "$p"
		done
}

# ---- start / stop ---------------------------------------------------------

# Every path of a cluster follows from $HPCN_T (cluster_stop needs nothing
# else, so it can also stop a cluster left by a killed run).
_cl_paths() {
	HPCN_BUILD_DIR=${HPCN_BUILD_DIR:-$_HPCN_CL_REPO/build}
	HPCN_WORK=$HPCN_T/work
	HPCN_LOGS=$HPCN_T/log
	HPCN_MARKERS=$HPCN_T/markers
	SLURM_CONF=$HPCN_T/slurm.conf
	HPCN_SOCKET=$HPCN_T/helper/run/handoff.sock
	HPCN_READY=$HPCN_T/helper/run/ready
	HPCN_HELPER_CONF=$HPCN_T/helper/helper.conf
	HPCN_HELPER_STATE=$HPCN_T/helper/state
	HPCN_HELPER_AUDIT=$HPCN_T/helper/audit.jsonl
	HPCN_MOUNT_BASE=$HPCN_T/helper/uenv
	HPCN_PLUGIN=$HPCN_BUILD_DIR/spank/spank_hpc_node.so
	HPCN_NODECTL=$HPCN_BUILD_DIR/helper/hpc-nodectl
}

_cl_exports() {
	export HPCN_T HPCN_WORK HPCN_LOGS HPCN_MARKERS SLURM_CONF HPCN_TEST_USER
	export HPCN_SLURMCTLD_PORT HPCN_SLURMD_PORT HPCN_BUILD_DIR
	export HPCN_SOCKET HPCN_READY HPCN_HELPER_CONF HPCN_HELPER_STATE HPCN_HELPER_AUDIT
	export HPCN_MOUNT_BASE HPCN_CGROUP_ROOT HPCN_PLUGIN HPCN_NODECTL
}

_cl_starttime() { # pid -> its start time (field 22 of /proc/PID/stat)
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	read -ra st <<<"$st"
	echo "${st[19]}"
}

# A cluster whose owner (the process that called cluster_start: bats's file
# runner) is gone was left by a killed run (e.g. a ctest timeout, where no
# teardown_file runs): stop it before starting ours. Also for multinode.bash:
# _cl_reap_stale_with STOP-FUNCTION DIR...
_cl_reap_stale_with() {
	local stop=$1 d owner start
	shift
	for d in "$@"; do
		[[ -f $d/owner ]] || continue
		read -r owner start <"$d/owner" || continue
		[[ -n $owner && $(_cl_starttime "$owner") == "$start" ]] && continue
		_cl_msg "reaping $d, left by a run that is gone (pid $owner)"
		(HPCN_T=$d; "$stop") || true
	done
}

_cl_reap_stale() { _cl_reap_stale_with cluster_stop /tmp/hpcn-slurm.* /var/tmp/hpcn-slurm.*; }

cluster_start() {
	local cg mp pid t0=$SECONDS
	[[ $(id -u) == 0 ]] || _cl_die "cluster_start needs root" || return 1
	HPCN_BUILD_DIR=${HPCN_BUILD_DIR:-$_HPCN_CL_REPO/build}
	local b
	for b in slurmctld slurmd sinfo srun munged mksquashfs runuser setpriv ss; do
		command -v "$b" >/dev/null || _cl_die "$b not found (contrib/check.sh installs it)" ||
			return 1
	done
	for b in helper/hpc-node-helper helper/hpc-nodectl; do
		[[ -x $HPCN_BUILD_DIR/$b ]] ||
			_cl_die "$HPCN_BUILD_DIR/$b missing: build first, or set HPCN_BUILD_DIR" ||
			return 1
	done
	cluster_ensure_user || return 1
	_cl_reap_stale

	HPCN_T=$(mktemp -d "$(_cl_parent)/hpcn-slurm.XXXXXX") || return 1
	chmod 0755 "$HPCN_T"
	echo "${HPCN_CLUSTER_OWNER:-$$} $(_cl_starttime "${HPCN_CLUSTER_OWNER:-$$}")" \
		>"$HPCN_T/owner"
	_cl_paths
	HPCN_CGROUP_ROOT=""
	_cl_exports
	mkdir -p "$HPCN_T"/{pids,state,spool,helper/run,images} "$HPCN_LOGS" "$HPCN_MARKERS" \
		"$HPCN_WORK"
	chown "$HPCN_TEST_USER:" "$HPCN_WORK"
	chmod 0755 "$HPCN_T/images"
	_cl_msg "T=$HPCN_T"

	# Node images ship them; the plugin's fallback=local (no helper) cannot
	# create them, so a node without them would fail there. Created when
	# missing and never removed: removing a directory on the host detaches
	# what other mount namespaces mounted on it, so one test run's cleanup
	# took the image away from another run's running steps.
	mkdir -p /user-environment /user-tools

	cg=$(_cl_cgroup2_mount)
	[[ -n $cg ]] || _cl_die "no cgroup2 mount in /proc/self/mountinfo" || return 1
	HPCN_CGROUP_ROOT=$cg/hpcn-slurm-${HPCN_T##*.}
	mkdir "$HPCN_CGROUP_ROOT" || _cl_die "mkdir $HPCN_CGROUP_ROOT failed" || return 1
	echo "$HPCN_CGROUP_ROOT" >"$HPCN_T/cgroup-root"

	HPCN_SLURMCTLD_PORT=$(_cl_free_port) || return 1
	HPCN_SLURMD_PORT=$(_cl_free_port) || return 1
	while [[ $HPCN_SLURMD_PORT == "$HPCN_SLURMCTLD_PORT" ]]; do
		HPCN_SLURMD_PORT=$(_cl_free_port) || return 1
	done
	_cl_exports

	if [[ ${HPCN_SLURM_JOB_CONTAINER:-0} == 1 && -e $HPCN_PLUGIN ]]; then
		mkdir -p "$HPCN_T/lib"
		cp "$HPCN_PLUGIN" "$HPCN_T/lib/" || return 1
		HPCN_PLUGIN=$HPCN_T/lib/spank_hpc_node.so
		export HPCN_PLUGIN
	fi
	: >"$HPCN_T/plugstack.conf"
	chmod 0644 "$HPCN_T/plugstack.conf"
	_cl_write_slurm_conf
	_cl_write_prolog_epilog
	_cl_write_helper_conf || return 1

	_cl_start_munge || { cluster_dump_logs; return 1; }
	cluster_start_helper || { cluster_dump_logs; return 1; }
	_cl_start_slurmctld
	pid=$(_cl_pid_of slurmctld)
	wait_for -t 60 _cl_listening_or_dead "$HPCN_SLURMCTLD_PORT" "$pid"
	_cl_port_listening "$HPCN_SLURMCTLD_PORT" || {
		if _cl_alive "$pid"; then
			_cl_msg "slurmctld does not listen on port $HPCN_SLURMCTLD_PORT after 20 s"
		else
			_cl_msg "slurmctld (pid $pid) exited during startup:" \
				"$(grep -h -E 'error:|fatal:' "$HPCN_LOGS/slurmctld.stderr" | tail -n 3)"
		fi
		cluster_dump_logs
		return 1
	}
	_cl_start_slurmd
	_cl_wait_slurm_ready || { cluster_dump_logs; return 1; }
	_cl_msg "up in $((SECONDS - t0)) s: slurmctld :$HPCN_SLURMCTLD_PORT," \
		"slurmd :$HPCN_SLURMD_PORT"
}

# Kill pid-namespace holders that this helper noted in its state dir.
_cl_kill_holders() {
	local f pid
	for f in "$HPCN_HELPER_STATE"/ns/*/holder; do
		[[ -r $f ]] || continue
		pid=$(tr -dc 0-9 <"$f")
		[[ -n $pid && $pid -gt 1 ]] || continue
		[[ $(cat "/proc/$pid/comm" 2>/dev/null) == hpcn-pidns-hold ]] || continue
		_cl_msg "killing pid namespace holder $pid ($f)"
		kill -KILL "$pid" 2>/dev/null
	done
}

_cl_kill_cgroup_tree() {
	local root=$1 i d
	[[ -n $root && -d $root ]] || return 0
	if [[ -e $root/cgroup.kill ]]; then
		echo 1 >"$root/cgroup.kill" 2>/dev/null
	else
		xargs -r kill -KILL <"$root/cgroup.procs" 2>/dev/null
	fi
	local end=$((SECONDS + 60))
	while ((SECONDS < end)); do
		grep -q '^populated 0' "$root/cgroup.events" 2>/dev/null && break
		sleep 0.05
	done
	# cgroupfs: only the directories can (and need to) be removed.
	find "$root" -depth -type d -exec rmdir {} + 2>/dev/null
	[[ ! -d $root ]] || _cl_die "cannot remove cgroup $root: $(cat "$root/cgroup.events")"
}

# Everything, always, also after a failed or half-done cluster_start.
cluster_stop() {
	local - rc=0 pid name i mp ids
	set +e
	[[ -n ${HPCN_T:-} && -d $HPCN_T ]] && _cl_is_cluster_dir "$HPCN_T" || return 0
	_cl_paths
	HPCN_CGROUP_ROOT=$(cat "$HPCN_T/cgroup-root" 2>/dev/null)

	# Jobs first, while slurmctld and munged still answer.
	if _cl_alive "$(_cl_pid_of slurmctld)"; then
		ids=$(squeue -h -o %A 2>/dev/null)
		if [[ -n $ids ]]; then
			# shellcheck disable=SC2086
			scancel $ids 2>/dev/null
			wait_for -t 60 _cl_no_jobs ||
				_cl_msg "jobs left at stop: $(squeue -h 2>&1 | head -5)"
		fi
	fi
	for name in slurmd slurmctld; do
		pid=$(_cl_pid_of "$name")
		[[ -n $pid ]] && _cl_kill_wait "$pid" 10
	done
	# slurmstepd and the tasks of jobs that survived scancel.
	local killed=""
	# Until none is left: a task being forked while we kill its parent
	# shows up a pass later.
	for ((i = 0; i < 10; i++)); do
		pid=$(cluster_stray_pids | grep -vxF -e "$(_cl_pid_of helper)" \
			-e "$(_cl_pid_of munged)" | tr '\n' ' ')
		[[ -z ${pid// /} ]] && break
		_cl_msg "killing stray processes: $pid"
		# shellcheck disable=SC2086
		kill -KILL $pid 2>/dev/null
		killed+=" $pid"
		sleep 0.2
	done
	# SIGKILL is not death: a big process takes a moment to exit. Wait (at
	# most 5 s each) so that nothing of ours is seen running afterwards.
	for pid in $killed; do
		wait_for -t 60 eval "! _cl_alive $pid" 2>/dev/null || true
	done

	cluster_stop_helper
	_cl_kill_holders
	_cl_kill_cgroup_tree "$HPCN_CGROUP_ROOT" || rc=1

	# Mounts under $HPCN_T (host uenv mounts, namespace pins), deepest first.
	for ((i = 0; i < 10; i++)); do
		mp=$(_cl_mounts_under "$HPCN_T")
		[[ -z $mp ]] && break
		while IFS= read -r m; do
			umount -l "$m" 2>/dev/null
		done <<<"$mp"
	done
	if [[ -n $(_cl_mounts_under "$HPCN_T") ]]; then
		_cl_die "mounts left under $HPCN_T: $(_cl_mounts_under "$HPCN_T" | tr '\n' ' ')"
		rc=1
	fi

	pid=$(_cl_pid_of munged)
	[[ -n $pid ]] && _cl_kill_wait "$pid" 5

	# Loop devices still backed by our images (autoclear normally did it).
	for ((i = 0; i < 40; i++)); do
		ids=$(losetup -n -O NAME,BACK-FILE -l 2>/dev/null |
			awk -v p="$HPCN_T/" 'index($2, p) == 1 { print $1 }')
		[[ -z $ids ]] && break
		if ((i == 20)); then
			_cl_msg "detaching loop devices $ids"
			# shellcheck disable=SC2086
			losetup -d $ids 2>/dev/null
		fi
		sleep 0.05
	done
	[[ -z $ids ]] || { _cl_die "loop devices left: $ids"; rc=1; }

	((rc == 0)) || cluster_dump_logs
	if [[ -z $(_cl_mounts_under "$HPCN_T") ]]; then
		rm -rf --one-file-system "$HPCN_T"
	else
		_cl_msg "NOT removing $HPCN_T: mounts remain"
	fi
	return $rc
}

# For teardown_file(): stop the cluster, then fail naming whatever of it
# is left.
cluster_stop_checked() {
	local T=$HPCN_T cg=$HPCN_CGROUP_ROOT rc=0
	cluster_stop || rc=1
	cluster_assert_gone "$T" "$cg" || rc=1
	return $rc
}

# cluster_assert_gone T [CGROUP_ROOT]: fail, naming what is left, if anything
# of the cluster that lived in T survived cluster_stop: processes naming T or
# using files under it, mounts, loop devices of its images, its cgroup
# subtree, the directory itself.
cluster_assert_gone() {
	local T=$1 cg=${2:-} left="" x
	_cl_is_any_cluster_dir "$T" || _cl_die "cluster_assert_gone: '$T' is no cluster" || return 1
	x=$(pgrep -f -- "$T" | tr '\n' ' ')
	[[ -n $x ]] && left+=" processes naming it: $x;"
	x=$(HPCN_T=$T cluster_stray_pids | tr '\n' ' ')
	[[ -n $x ]] && left+=" processes using it: $x;"
	x=$(_cl_mounts_under "$T" | tr '\n' ' ')
	[[ -n $x ]] && left+=" mounts: $x;"
	x=$(losetup -n -O NAME,BACK-FILE -l 2>/dev/null | awk -v p="$T/" 'index($2, p) == 1')
	[[ -n $x ]] && left+=" loop devices: $x;"
	[[ -n $cg && -e $cg ]] && left+=" cgroup $cg;"
	[[ -e $T ]] && left+=" the directory;"
	[[ -z $left ]] || _cl_die "left behind by the cluster in $T:$left"
}

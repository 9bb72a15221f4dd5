# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# A real multi-node Slurm on one machine, for bats tests and for
# contrib/demo.sh --nodes N: N compute nodes, each a process tree in its own
# network, UTS, mount and PID namespace, with its own hostname (node1..nodeN),
# its own interface on a private bridge, a private tmpfs on /run (so each
# node's hpc-node-helper has the contract's default paths: /run/pact/
# handoff.sock, /run/pact/ready, /run/pact/uenv, /run/hpc-node), its own
# slurmd -N nodeN and its own helper. slurmctld and the users' srun/sbatch
# run in a "head" namespace that holds the bridge. Nothing is added to the
# host's network namespace: every address (10.253.0.0/24) is on an interface
# inside a namespace made here, and slurm.conf exists only inside those
# namespaces (a tmpfs of each), so a Slurm client on the host finds no
# configuration and cannot send the cluster's traffic off the machine.
#
#   load lib/multinode
#   setup_file()    { mn_start 3; }
#   teardown_file() { mn_stop_checked; }
#   teardown()      { mn_dump_logs_on_failure; }
#
#   mn_user CMD...        as the test user in the head, in $HPCN_WORK
#   mn_head CMD...        as root in the head (scontrol, squeue, scancel)
#   mn_node I CMD...      as root on node I (every namespace of it)
#   mn_ctl I ARGS...      hpc-nodectl on node I, at the default socket
#   mn_helper_stop I [SIG] / mn_helper_start I
#   mn_set_plugstack LINE...  plugstack.conf of every namespace; restarts
#                         every slurmd
#   mn_loop_devices I     the loop devices node I's helper holds (from its
#                         status: loop devices are global, /dev is shared)
#
# Every process is recorded with its start time under $HPCN_T/pids and killed
# by pid; a node's init is pid 1 of its PID namespace, so killing it ends
# whatever still runs on the node. mn_stop leaves nothing: processes,
# namespaces (with them the bridge and veths), mounts, loop devices and the
# cgroup subtree are gone, also after a failed or half-done mn_start.
#
# Exports (as cluster.bash, where the names mean the same): HPCN_T,
# HPCN_WORK, HPCN_LOGS, HPCN_MARKERS, HPCN_TEST_USER, HPCN_BUILD_DIR,
# HPCN_PLUGIN, HPCN_NODECTL, HPCN_CGROUP_ROOT (nodes: $HPCN_CGROUP_ROOT/nodeI),
# and MN_NODES (the node count), MN_SLURM_CONF (the path of slurm.conf inside
# the namespaces).
#
# Tunables: HPCN_BUILD_DIR, HPCN_SLURMD_DEBUG, HPCN_SLURM_EXTRA_CONF,
# HPCN_CLUSTER_OWNER (as in cluster.bash), MN_NODE_CPUS (CPUs each node
# offers, default the machine's; more than it has is allowed).

# shellcheck source=tests/slurm/lib/cluster.bash
. "$(dirname "${BASH_SOURCE[0]}")/cluster.bash"

MN_NET=10.253.0
MN_BRIDGE=mnbr0

_mn_msg() { printf '# multinode: %s\n' "$*" >&2; }
_mn_die() { printf '# multinode: ERROR: %s\n' "$*" >&2; return 1; }

_mn_is_dir() { [[ $1 == /tmp/hpcn-mn.* ]]; }

# ---- pids -----------------------------------------------------------------

# Record NAME's host pid with its start time: a pid recorded by a run that
# is gone may be someone else's process by now.
_mn_record() { # name pid
	echo "$2 $(_cl_starttime "$2")" >"$HPCN_T/pids/$1"
}

# The live process recorded as NAME (nothing if it is gone or was reused).
_mn_pid() { # name
	local pid start
	[[ -s $HPCN_T/pids/$1 ]] || return 1
	read -r pid start <"$HPCN_T/pids/$1" || return 1
	[[ -n $pid && $(_cl_starttime "$pid") == "$start" ]] && _cl_alive "$pid" && echo "$pid"
}

# The host pid of the process called COMM in HOLDER's namespace of type NS
# (pid: every holder is pid 1 of a PID namespace): the child of nsenter, which $! of a
# backgrounded function does not name.
_mn_find_in() { # holder ns comm
	local ns p
	ns=$(readlink "/proc/$(_mn_pid "$1")/ns/$2") || return 1
	for p in /proc/[0-9]*; do
		[[ $(cat "$p/comm" 2>/dev/null) == "$3" ]] || continue
		[[ $(readlink "$p/ns/$2" 2>/dev/null) == "$ns" ]] || continue
		echo "${p#/proc/}"
		return 0
	done
	return 1
}

_mn_find_in_node() { _mn_find_in "node$1" pid "$2"; } # I comm

# ---- entering the namespaces ---------------------------------------------

mn_head() {
	local pid
	pid=$(_mn_pid head) || _mn_die "the head namespace is gone" || return 1
	nsenter -t "$pid" --net --uts --mount --pid -- "$@"
}

mn_node() { # I CMD...
	local i=$1 pid
	shift
	pid=$(_mn_pid "node$i") || _mn_die "node$i is gone" || return 1
	nsenter -t "$pid" --net --uts --mount --pid -- "$@"
}

# As the test user in the head, in $HPCN_WORK, with the cluster's slurm.conf.
mn_user() {
	mn_head runuser -u "$HPCN_TEST_USER" -- env -C "$HPCN_WORK" \
		SLURM_CONF="$MN_SLURM_CONF" HOME="$HPCN_WORK" PATH=/usr/bin:/bin:/usr/sbin:/sbin "$@"
}

mn_ctl() { # I ARGS...
	local i=$1
	shift
	mn_node "$i" "$HPCN_NODECTL" --timeout 60000 "$@"
}

mn_status_json() { mn_ctl "$1" status --json; }

# The loop devices node I's helper holds, one per line.
mn_loop_devices() {
	mn_status_json "$1" | jq -r '.mounts[] | .loop_device // empty' | sort
}

# Write FILE (a path under $MN_ETC) from stdin into every namespace's
# private copy of $MN_ETC: it exists nowhere on the host.
_mn_put_conf() { # name
	local data i
	data=$(cat)
	mn_head sh -c 'cat >"$1" && chmod 0644 "$1"' _ "$MN_ETC/$1" <<<"$data" || return 1
	for ((i = 1; i <= MN_NODES; i++)); do
		mn_node "$i" sh -c 'cat >"$1" && chmod 0644 "$1"' _ "$MN_ETC/$1" <<<"$data" ||
			return 1
	done
}

# ---- configuration ---------------------------------------------------------

_mn_paths() {
	HPCN_BUILD_DIR=${HPCN_BUILD_DIR:-$_HPCN_CL_REPO/build}
	HPCN_WORK=$HPCN_T/work
	HPCN_LOGS=$HPCN_T/log
	HPCN_MARKERS=$HPCN_T/markers
	MN_ETC=$HPCN_T/etc
	MN_SLURM_CONF=$MN_ETC/slurm.conf
	HPCN_PLUGIN=$HPCN_BUILD_DIR/spank/spank_hpc_node.so
	HPCN_NODECTL=$HPCN_BUILD_DIR/helper/hpc-nodectl
	[[ -s $HPCN_T/node-count ]] && MN_NODES=$(cat "$HPCN_T/node-count")
	HPCN_CGROUP_ROOT=$(cat "$HPCN_T/cgroup-root" 2>/dev/null)
}

_mn_exports() {
	export HPCN_T HPCN_WORK HPCN_LOGS HPCN_MARKERS HPCN_TEST_USER HPCN_BUILD_DIR
	export HPCN_PLUGIN HPCN_NODECTL HPCN_CGROUP_ROOT MN_NODES MN_ETC MN_SLURM_CONF
}

_mn_addr() { # I (0: the head)
	if (($1 == 0)); then echo "$MN_NET.1"; else echo "$MN_NET.$((10 + $1))"; fi
}

_mn_hosts() {
	local i
	printf '127.0.0.1\tlocalhost\n%s\tmnhead\n' "$(_mn_addr 0)"
	for ((i = 1; i <= MN_NODES; i++)); do
		printf '%s\tnode%d\n' "$(_mn_addr "$i")" "$i"
	done
}

_mn_slurm_conf() {
	local T=$HPCN_T i topo cpus
	# The machine's real topology (else slurmd complains the node
	# "reconfigured socket/core boundaries"); the nodes share its memory, so
	# each offers a little of it.
	topo=$(slurmd -C | head -n 1 | tr ' ' '\n' |
		grep -E '^(Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
	cpus=${MN_NODE_CPUS:-$(nproc)}
	((cpus > $(nproc))) && topo=""
	cat <<EOF
# Written by tests/slurm/lib/multinode.bash: lives only inside the cluster's
# namespaces.
ClusterName=hpcnmn
SlurmctldHost=mnhead($(_mn_addr 0))
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.socket.2
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool/%n
SlurmctldPidFile=$T/pids/slurmctld.pidfile
SlurmdPidFile=$T/pids/slurmd-%n.pidfile
SlurmctldLogFile=$HPCN_LOGS/slurmctld.log
SlurmdLogFile=$HPCN_LOGS/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=${HPCN_SLURMD_DEBUG:-debug}
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
PlugStackConfig=$MN_ETC/plugstack.conf
Prolog=$T/prolog.sh
Epilog=$T/epilog.sh
MailProg=/bin/true
ReturnToService=2
KillWait=5
MessageTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=30
$( ((cpus > $(nproc))) && echo SlurmdParameters=config_overrides)
${HPCN_SLURM_EXTRA_CONF:-}
EOF
	for ((i = 1; i <= MN_NODES; i++)); do
		echo "NodeName=node$i NodeHostname=node$i NodeAddr=$(_mn_addr "$i") CPUs=$cpus ${topo}RealMemory=1000 State=UNKNOWN"
	done
	echo "PartitionName=debug Nodes=node[1-$MN_NODES] Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:128"
}

# Prolog/Epilog markers name the node they ran on.
_mn_write_prolog_epilog() {
	local which
	for which in prolog epilog; do
		cat >"$HPCN_T/$which.sh" <<EOF
#!/bin/sh
echo "$which job=\$SLURM_JOB_ID user=\$SLURM_JOB_USER node=\$(hostname)" >>"$HPCN_MARKERS/$which.log"
exit 0
EOF
		chmod 0755 "$HPCN_T/$which.sh"
	done
}

# Node I's helper.conf: the contract's default paths (each node's /run is
# its own), a cgroup subtree of its own, quick holds and reconciliation.
_mn_write_helper_conf() { # I
	local d=$HPCN_T/nodes/node$1
	mkdir -p "$d" "$HPCN_CGROUP_ROOT/node$1" || return 1
	cat >"$d/helper.conf" <<EOF
; Written by tests/slurm/lib/multinode.bash for node$1.
[helper]
log_level = debug
log_target = stderr
audit_log = $d/audit.jsonl
[cgroup]
enabled = true
root = $HPCN_CGROUP_ROOT/node$1
limits_mandatory = false
kill_timeout = 5
[uenv]
hold_time = 2
create_mount_points = /user-environment, /user-tools
[reconcile]
interval = 1
EOF
	if [[ -n ${MN_HELPER_EXTRA:-} ]]; then
		"$MN_HELPER_EXTRA" "$d/helper.conf" "$1" || return 1
	fi
}

# ---- namespaces ------------------------------------------------------------

# Start a namespace holder: unshare with --kill-child, whose child is the
# holder proper (for a node: pid 1 of its PID namespace, a shell that reaps
# orphans, as init must). Records NAME as that child.
_mn_start_holder() { # name unshare-args...
	local name=$1 up child
	shift
	setsid unshare "$@" --propagation private --fork --kill-child -- \
		bash -c 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done' \
		</dev/null >>"$HPCN_LOGS/$name.holder" 2>&1 3>&- &
	up=$!
	disown "$up" # killed by pid at mn_stop, not waited for by this shell
	_mn_record "$name-unshare" "$up"
	wait_for -t 30 eval "[[ -n \$(cat /proc/$up/task/$up/children 2>/dev/null) ]]" ||
		_mn_die "$name: no namespace holder under unshare $up" || return 1
	child=$(cat "/proc/$up/task/$up/children")
	child=${child%% *}
	_mn_record "$name" "$child"
}

_mn_start_head() {
	_mn_start_holder head --net --uts --mount --pid --mount-proc || return 1
	mn_head sh -e -c '
		hostname mnhead
		mount --bind "$1/hosts" /etc/hosts
		mount -t tmpfs -o mode=0755,size=16m hpcn-mn-etc "$2"
		ip link set lo up
		ip link add "$3" type bridge
		ip addr add "$4/24" dev "$3"
		ip link set "$3" up' _ "$HPCN_T" "$MN_ETC" "$MN_BRIDGE" "$(_mn_addr 0)" ||
		_mn_die "setting up the head namespace failed"
}

_mn_start_node() { # I
	local i=$1 pid
	_mn_start_holder "node$i" --net --uts --mount --pid --mount-proc || return 1
	pid=$(_mn_pid "node$i")
	# The veth: one end on the head's bridge, the other the node's eth0.
	# (Only the head's network namespace is entered: ip names the node by
	# its host pid.)
	nsenter -t "$(_mn_pid head)" --net sh -e -c '
		ip link add "mnv$1" type veth peer name eth0 netns "$2"
		ip link set "mnv$1" master "$3" up' _ "$i" "$pid" "$MN_BRIDGE" ||
		_mn_die "node$i: veth failed" || return 1
	# A fresh sysfs shows the node's own network devices (sysfs shows the
	# network namespace of whoever mounted it); the host's cgroup tree is
	# moved back over it, so the helper and slurmd see the real cgroups.
	mn_node "$i" sh -e -c '
		hostname "node$1"
		ip link set lo up
		ip addr add "$3/24" dev eth0
		ip link set eth0 up
		mount --bind "$2/hosts" /etc/hosts
		mount -t tmpfs -o mode=0755,size=64m "hpcn-mn-run-node$1" /run
		mkdir -p /run/lock
		mount -t tmpfs -o mode=0755,size=16m hpcn-mn-etc "$4"
		mkdir -p "$2/nodes/node$1/cg"
		mount --rbind /sys/fs/cgroup "$2/nodes/node$1/cg"
		mount -t sysfs sysfs /sys
		mount --move "$2/nodes/node$1/cg" /sys/fs/cgroup' \
		_ "$i" "$HPCN_T" "$(_mn_addr "$i")" "$MN_ETC" ||
		_mn_die "setting up node$i failed"
	mkdir -p "$HPCN_T/spool/node$i"
}

# ---- daemons ---------------------------------------------------------------

_mn_helper_ready() { # I
	local pid
	pid=$(mn_node "$1" sed -n 's/^pid=//p' /run/pact/ready 2>/dev/null) || return 1
	[[ -n $pid ]] && mn_node "$1" test -d "/proc/$pid"
}

_mn_helper_ready_or_dead() { _mn_helper_ready "$1" || ! _cl_alive "$2"; }

mn_helper_start() { # I
	local i=$1 pid
	mn_node "$i" "$HPCN_BUILD_DIR/helper/hpc-node-helper" -f \
		-c "$HPCN_T/nodes/node$i/helper.conf" \
		</dev/null >>"$HPCN_LOGS/helper-node$i.log" 2>&1 3>&- &
	pid=$! # nsenter, which waits for the helper
	wait_for -t 60 _mn_helper_ready_or_dead "$i" "$pid"
	_mn_helper_ready "$i" || {
		_mn_die "node$i: hpc-node-helper not ready (no /run/pact/ready naming it)"
		tail -n 20 "$HPCN_LOGS/helper-node$i.log" >&2
		return 1
	}
	pid=$(_mn_find_in_node "$i" hpc-node-helper) || return 1
	_mn_record "helper-node$i" "$pid"
}

mn_helper_pid() { _mn_pid "helper-node$1"; }

# SIGTERM (or SIG) to node I's helper; SIGKILL after 5 s.
mn_helper_stop() { # I [SIG]
	local pid
	pid=$(_mn_pid "helper-node$1") || return 0
	_cl_kill_wait "$pid" 5 "${2:-TERM}"
	rm -f "$HPCN_T/pids/helper-node$1"
}

_mn_start_slurmd() { # I
	local i=$1 pid
	mn_node "$i" slurmd -D -f "$MN_SLURM_CONF" -N "node$i" \
		</dev/null >>"$HPCN_LOGS/slurmd-node$i.stderr" 2>&1 3>&- &
	wait_for -t 30 _mn_find_in_node "$i" slurmd ||
		_mn_die "node$i: slurmd did not start: $(tail -n 3 "$HPCN_LOGS/slurmd-node$i.stderr")" ||
		return 1
	pid=$(_mn_find_in_node "$i" slurmd)
	_mn_record "slurmd-node$i" "$pid"
}

_mn_stop_slurmd() { # I
	local pid
	pid=$(_mn_pid "slurmd-node$1") || return 0
	_cl_kill_wait "$pid" 10
	rm -f "$HPCN_T/pids/slurmd-node$1"
}

_mn_nodes_idle() {
	local s
	s=$(mn_head env SLURM_CONF="$MN_SLURM_CONF" sinfo -h -N -o %t 2>/dev/null | sort -u)
	[[ $s == idle ]] && (($(mn_head env SLURM_CONF="$MN_SLURM_CONF" sinfo -h -N -o %N | wc -l) == MN_NODES))
}

_mn_wait_idle() {
	wait_for -t 120 _mn_nodes_idle ||
		_mn_die "nodes not idle after 120 s: $(mn_head env SLURM_CONF="$MN_SLURM_CONF" sinfo -h -N -o '%N %t %E' 2>&1 | tr '\n' ';')"
}

# Restart every slurmd (plugin changes need a restart).
mn_restart_slurmds() {
	local i
	for ((i = 1; i <= MN_NODES; i++)); do _mn_stop_slurmd "$i"; done
	for ((i = 1; i <= MN_NODES; i++)); do _mn_start_slurmd "$i" || return 1; done
	_mn_wait_idle
}

# mn_set_plugstack "LINE"...: plugstack.conf of the head and every node.
mn_set_plugstack() {
	printf '%s\n' "$@" | grep -v '^$' | _mn_put_conf plugstack.conf || return 1
	mn_restart_slurmds
}

# ---- checks for tests ------------------------------------------------------

mn_no_jobs() { [[ -z $(mn_head env SLURM_CONF="$MN_SLURM_CONF" squeue -h -o %A 2>/dev/null) ]]; }

mn_cancel_jobs() {
	mn_no_jobs && return 0
	mn_head env SLURM_CONF="$MN_SLURM_CONF" scancel -u "$HPCN_TEST_USER" 2>/dev/null
	wait_for -t 60 mn_no_jobs
}

# Did the Epilog run for job J on node I?
mn_epilog_ran() { grep -q "^epilog job=$1 .* node=node$2\$" "$HPCN_MARKERS/epilog.log" 2>/dev/null; }

mn_dump_logs_on_failure() { cluster_dump_logs_on_failure; }

# ---- start / stop ------------------------------------------------------------

# A cluster whose owner is gone was left by a killed run: stop it first.
_mn_reap_stale() { _cl_reap_stale_with mn_stop /tmp/hpcn-mn.*; }

mn_start() { # [N]
	local n=${1:-3} i b cg t0=$SECONDS
	[[ $(id -u) == 0 ]] || _mn_die "mn_start needs root" || return 1
	[[ $n =~ ^[1-9]$ ]] || _mn_die "mn_start: 1..9 nodes, not '$n'" || return 1
	HPCN_BUILD_DIR=${HPCN_BUILD_DIR:-$_HPCN_CL_REPO/build}
	for b in slurmctld slurmd sinfo srun munged mksquashfs runuser setpriv nsenter unshare ip jq; do
		command -v "$b" >/dev/null || _mn_die "$b not found (contrib/check.sh installs it)" ||
			return 1
	done
	for b in helper/hpc-node-helper helper/hpc-nodectl spank/spank_hpc_node.so; do
		[[ -e $HPCN_BUILD_DIR/$b ]] ||
			_mn_die "$HPCN_BUILD_DIR/$b missing: build first, or set HPCN_BUILD_DIR" ||
			return 1
	done
	cluster_ensure_user || return 1
	_mn_reap_stale

	HPCN_T=$(mktemp -d /tmp/hpcn-mn.XXXXXX) || return 1
	chmod 0755 "$HPCN_T"
	echo "${HPCN_CLUSTER_OWNER:-$$} $(_cl_starttime "${HPCN_CLUSTER_OWNER:-$$}")" >"$HPCN_T/owner"
	echo "$n" >"$HPCN_T/node-count"
	mkdir -p "$HPCN_T"/{pids,state,spool,images,etc,log,markers,work,nodes}
	_mn_paths
	chown "$HPCN_TEST_USER:" "$HPCN_WORK"
	chmod 0755 "$HPCN_T/images"
	mkdir -p /user-environment /user-tools # never removed: see cluster.bash
	cg=$(_cl_cgroup2_mount)
	[[ -n $cg ]] || _mn_die "no cgroup2 mount in /proc/self/mountinfo" || return 1
	HPCN_CGROUP_ROOT=$cg/hpcn-mn-${HPCN_T##*.}
	mkdir "$HPCN_CGROUP_ROOT" || _mn_die "mkdir $HPCN_CGROUP_ROOT failed" || return 1
	echo "$HPCN_CGROUP_ROOT" >"$HPCN_T/cgroup-root"
	_mn_exports
	_mn_msg "T=$HPCN_T, $n nodes"

	_mn_hosts >"$HPCN_T/hosts"
	chmod 0644 "$HPCN_T/hosts"
	_mn_write_prolog_epilog
	_cl_start_munge || { cluster_dump_logs; return 1; }
	_mn_record munged "$(cat "$HPCN_T/pids/munged")"
	_mn_start_head || { cluster_dump_logs; return 1; }
	for ((i = 1; i <= n; i++)); do
		_mn_start_node "$i" || { cluster_dump_logs; return 1; }
		_mn_write_helper_conf "$i" || return 1
	done
	_mn_slurm_conf | _mn_put_conf slurm.conf || return 1
	: | _mn_put_conf plugstack.conf || return 1
	for ((i = 1; i <= n; i++)); do
		mn_helper_start "$i" || { cluster_dump_logs; return 1; }
	done
	mn_head slurmctld -D -f "$MN_SLURM_CONF" \
		</dev/null >>"$HPCN_LOGS/slurmctld.stderr" 2>&1 3>&- &
	wait_for -t 30 _mn_find_in head pid slurmctld ||
		_mn_die "slurmctld did not start: $(tail -n 3 "$HPCN_LOGS/slurmctld.stderr")" ||
		{ cluster_dump_logs; return 1; }
	_mn_record slurmctld "$(_mn_find_in head pid slurmctld)"
	for ((i = 1; i <= n; i++)); do
		_mn_start_slurmd "$i" || { cluster_dump_logs; return 1; }
	done
	_mn_wait_idle || { cluster_dump_logs; return 1; }
	_mn_msg "up in $((SECONDS - t0)) s: node1..node$n"
}

# Everything, always, also after a failed or half-done mn_start, also of a
# cluster left by a killed run (only $HPCN_T is needed).
mn_stop() {
	local - rc=0 i pid name ids m
	set +e
	[[ -n ${HPCN_T:-} && -d $HPCN_T ]] && _mn_is_dir "$HPCN_T" || return 0
	_mn_paths
	MN_NODES=${MN_NODES:-0}

	# Jobs first, while slurmctld and munged still answer.
	if _mn_pid slurmctld >/dev/null && _mn_pid head >/dev/null; then
		mn_cancel_jobs || _mn_msg "jobs left at stop"
	fi
	for ((i = 1; i <= MN_NODES; i++)); do _mn_stop_slurmd "$i"; done
	pid=$(_mn_pid slurmctld) && _cl_kill_wait "$pid" 10
	for ((i = 1; i <= MN_NODES; i++)); do mn_helper_stop "$i"; done
	# A node's init is pid 1 of its PID namespace: its death kills whatever
	# is left there (slurmstepds, tasks, the helper's holders and workers).
	for name in $(cd "$HPCN_T/pids" 2>/dev/null && ls -r); do
		case $name in
		node[0-9] | head | *-unshare) ;;
		*) continue ;;
		esac
		pid=$(_mn_pid "$name") || continue
		kill -KILL "$pid" 2>/dev/null
		wait_for -t 60 eval "! _cl_alive $pid" || { _mn_msg "$name (pid $pid) survives SIGKILL"; rc=1; }
	done
	_cl_kill_cgroup_tree "$HPCN_CGROUP_ROOT" || rc=1
	# Mounts: the nodes' were in their own mount namespaces, gone with them;
	# anything under $HPCN_T on the host would be a bug, removed all the same.
	for ((i = 0; i < 10; i++)); do
		m=$(_cl_mounts_under "$HPCN_T")
		[[ -z $m ]] && break
		while IFS= read -r mp; do umount -l "$mp" 2>/dev/null; done <<<"$m"
	done
	[[ -z $(_cl_mounts_under "$HPCN_T") ]] || { _mn_die "mounts left under $HPCN_T"; rc=1; }
	pid=$(_mn_pid munged) && _cl_kill_wait "$pid" 5
	# Loop devices of our images: autoclear frees them as the last mount
	# namespace holding them goes (asynchronously).
	wait_for -t 60 eval "[[ -z \$(losetup -n -O BACK-FILE -l 2>/dev/null | grep -F '$HPCN_T/') ]]"
	ids=$(losetup -n -O NAME,BACK-FILE -l 2>/dev/null | awk -v p="$HPCN_T/" 'index($2, p) == 1 { print $1 }')
	if [[ -n $ids ]]; then
		_mn_die "loop devices left: $ids"
		# shellcheck disable=SC2086
		losetup -d $ids 2>/dev/null
		rc=1
	fi
	((rc == 0)) || cluster_dump_logs
	if [[ -z $(_cl_mounts_under "$HPCN_T") ]]; then
		rm -rf --one-file-system "$HPCN_T"
	else
		_mn_msg "NOT removing $HPCN_T: mounts remain"
	fi
	return $rc
}

# mn_assert_gone T CGROUP_ROOT: fail, naming it, if anything of the cluster
# in T survived mn_stop: what cluster_assert_gone checks, and the host's
# interfaces (none of the cluster's may ever be there).
mn_assert_gone() {
	local x rc=0
	cluster_assert_gone "$1" "${2:-}" || rc=1
	x=$(ip -o link show 2>/dev/null | grep -E ": ($MN_BRIDGE|mnv[0-9])[:@]")
	[[ -z $x ]] || { _mn_die "host interfaces of the cluster in $1: $x"; rc=1; }
	return $rc
}

mn_stop_checked() {
	local T=$HPCN_T cg=$HPCN_CGROUP_ROOT rc=0
	mn_stop || rc=1
	mn_assert_gone "$T" "$cg" || rc=1
	return $rc
}

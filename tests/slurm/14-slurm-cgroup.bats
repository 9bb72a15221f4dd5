#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
#
# spank_hpc_node.so beside Slurm's own cgroup plugins, as sites run them:
# ProctrackType=proctrack/cgroup, TaskPlugin=task/cgroup,task/affinity, a
# cgroup.conf constraining cores, memory and devices. On this hybrid host
# Slurm's cgroup/v1 plugin uses the v1 hierarchies (freezer for proctrack,
# memory, cpuset, devices for task/cgroup), while the helper's scopes live in
# the cgroup v2 hierarchy: with the plugin's cgroup=off and cgroup=on, steps
# start, stay in Slurm's cgroups (the helper's Attach never moves a task
# out of them), are constrained by them (memory limit, one core each),
# are ended by them (proctrack/cgroup), and the uenv works; no helper scope
# and no Slurm step cgroup is left behind.
# shellcheck disable=SC2016,SC2154 # $VARS in single quotes are for the jobs; bats sets $stderr

bats_require_minimum_version 1.5.0

load lib/cluster
load lib/images
load lib/plugin

plugstack() {
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=2 $*"
}

setup_file() {
	export HPCN_SLURM_CGROUP=1
	cluster_start
	plugin_images
	cat >"$HPCN_WORK/cgprobe" <<'EOF'
#!/bin/sh
# Each line: "<task> <controller> <path>", then the cores and the image.
t=$SLURM_LOCALID
while IFS=: read -r _ c p; do echo "$t cg ${c:-v2} $p"; done </proc/self/cgroup
echo "$t cpus $(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)"
/user-environment/bin/hello "$t"
EOF
	chmod 0755 "$HPCN_WORK/cgprobe"
}

teardown_file() {
	cluster_stop_checked
}

setup() {
	cluster_ensure_helper
}

teardown() {
	cluster_dump_logs_on_failure
	plugin_cancel_jobs
}

_uid() { id -u "$HPCN_TEST_USER"; }

# Slurm's cgroup/v1 directory of job JOB in CONTROLLER.
_slurm_cg() { # controller job
	echo "/sys/fs/cgroup/$1/slurm_localhost/uid_$(_uid)/job_$2"
}

# The helper's scope directory of allocation ALLOC (job_J.S).
_helper_scope() { # alloc
	echo "$HPCN_CGROUP_ROOT/workload.slice/${1%%.*}.slice/$1.scope"
}

@test "Slurm's cgroup plugins are really in use (proctrack/cgroup, task/cgroup, cgroup/v1)" {
	cluster_set_plugstack
	run --separate-stderr scontrol show config
	[[ $output == *"ProctrackType           = proctrack/cgroup"* ]]
	[[ $output == *"TaskPlugin              = task/cgroup,task/affinity"* ]]
	run --separate-stderr as_user srun -n1 sh -c 'grep -E ":(freezer|memory):" /proc/self/cgroup'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[[ $output == *":freezer:/slurm_localhost/uid_$(_uid)/job_"*"/step_0"* ]]
	[[ $output == *":memory:/slurm_localhost/uid_$(_uid)/job_"*"/step_0/task_0"* ]]
}

@test "with cgroup=off and on: tasks stay in Slurm's cgroups, constrained by them, the uenv works" {
	local cg id t
	for cg in off on; do
		plugstack "cgroup=$cg"
		run --separate-stderr as_user srun -n2 --mem=200M --uenv="$IMG_APP" sh -c \
			'echo "job=$SLURM_JOB_ID"; exec "$0"' "$HPCN_WORK/cgprobe"
		echo "$output $stderr"
		[ "$status" -eq 0 ]
		id=$(sed -n 's/^job=//p' <<<"$output" | sort -u)
		[[ $id =~ ^[0-9]+$ ]]
		for t in 0 1; do
			# In Slurm's step and task cgroups, after the plugin's hooks ran.
			grep -qxF "$t cg freezer /slurm_localhost/uid_$(_uid)/job_$id/step_0" <<<"$output"
			grep -qxF "$t cg memory /slurm_localhost/uid_$(_uid)/job_$id/step_0/task_$t" <<<"$output"
			grep -qxF "$t cg cpuset /slurm_localhost/uid_$(_uid)/job_$id/step_0" <<<"$output"
			grep -qxF "$t cg devices /slurm_localhost/uid_$(_uid)/job_$id/step_0/task_$t" <<<"$output"
			grep -qxF "$(uenv_hello_marker app "$t")" <<<"$output"
			# The helper's scope, in the v2 hierarchy only, with cgroup=on.
			if [[ $cg == on ]]; then
				grep -qxF "$t cg v2 /${HPCN_CGROUP_ROOT#*/unified/}/workload.slice/job_$id.slice/job_$id.0.scope" <<<"$output"
			else
				! grep -q "^$t cg v2 .*workload.slice" <<<"$output" || false
			fi
		done
		grep -q "hpc-node: Slurm configuration ($SLURM_CONF): no job_container/tmpfs; proctrack/cgroup, task/cgroup: tasks stay in Slurm's cgroups" \
			"$HPCN_LOGS/slurmd.log"
		# task/affinity + ConstrainCores: one core each, not the same one.
		[ "$(sed -n 's/^[01] cpus //p' <<<"$output" | sort -u | wc -l)" -eq 2 ]
		# Nothing left: Slurm's step cgroup, the helper's scope and allocation.
		plugin_wait_no_allocation "job_$id"
		wait_for -t 120 eval "[[ ! -d $(_slurm_cg freezer "$id")/step_0 ]]"
		[[ ! -d $(_helper_scope "job_$id.0") ]]
	done
}

@test "Slurm's memory limit holds for a --uenv step (task/cgroup), with cgroup=off and on" {
	local cg
	for cg in off on; do
		plugstack "cgroup=$cg"
		# The job's limit is Slurm's, on the job's v1 memory cgroup.
		run --separate-stderr as_user srun -n1 --mem=64M --uenv="$IMG_APP" sh -c '
			d=/sys/fs/cgroup/memory$(sed -n "s/^[0-9]*:memory://p" /proc/self/cgroup)
			cat "$d/../../memory.limit_in_bytes"'
		echo "$output $stderr"
		[ "$status" -eq 0 ]
		[ "$output" -eq $((64 * 1024 * 1024)) ]
		# Over it: Slurm's OOM handling ends the step, with its own message.
		run --separate-stderr as_user srun -n1 --mem=64M --uenv="$IMG_APP" sh -c \
			'/user-environment/bin/hello before; head -c 400M /dev/zero | tail >/dev/null && echo survived'
		echo "$output $stderr"
		[ "$status" -ne 0 ]
		[[ $output == *"$(uenv_hello_marker app before)"* ]]
		[[ $output != *survived* ]]
		[[ $stderr == *"oom"* || $stderr == *"OOM"* ]]
		wait_for -t 120 eval "[[ \$(helper_status_json | jq '.allocations | length') == 0 ]]"
	done
}

@test "proctrack/cgroup ends what a --uenv step left running; scancel ends a running one; nothing stays" {
	local cg id pid
	for cg in off on; do
		plugstack "cgroup=$cg"
		# A background process that outlives the task: Slurm's freezer
		# cgroup finds and kills it at the step's end.
		run --separate-stderr as_user srun -n1 --uenv="$IMG_APP" sh -c \
			'setsid sleep 300 </dev/null >/dev/null 2>&1 & echo "pid=$! job=$SLURM_JOB_ID"'
		echo "$output $stderr"
		[ "$status" -eq 0 ]
		pid=$(sed -n 's/^pid=\([0-9]*\) .*/\1/p' <<<"$output")
		id=$(sed -n 's/.* job=//p' <<<"$output")
		wait_for -t 120 eval "! _cl_alive $pid"
		plugin_wait_no_allocation "job_$id"
		# A running step, cancelled.
		id=$(as_user sbatch --parsable --uenv="$IMG_APP" --wrap \
			"srun sh -c 'echo up; exec sleep 300'")
		wait_for -t 120 eval "helper_status_json | jq -e --arg a job_$id.0 \
			'any(.allocations[]; .allocation_id == \$a)'"
		scancel "$id"
		wait_for -t 120 eval "! squeue -h -j $id 2>/dev/null | grep -q ."
		plugin_wait_no_allocation "job_$id"
		wait_for -t 120 eval "[[ ! -d $(_slurm_cg freezer "$id") ]]"
		[[ ! -d $HPCN_CGROUP_ROOT/workload.slice/job_$id.slice ]] || {
			find "$HPCN_CGROUP_ROOT/workload.slice/job_$id.slice" -type d >&2
			false
		}
	done
	wait_for -t 120 plugin_no_loop_devices
}

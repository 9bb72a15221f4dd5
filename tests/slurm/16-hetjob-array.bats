#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
#
# Job arrays and heterogeneous jobs with --uenv, in a real Slurm 22.05.
#
# What Slurm 22.05 does (found here, asserted below):
# - Every array task is a job of its own (its own SLURM_JOB_ID; the last
#   task gets the array's id): the helper sees job_<task's id>.batch and
#   job_<task's id>.<step>, and each task's epilog ends its own group.
# - Each component of a het job is a job of its own too (SLURM_JOB_ID_HET_GROUP_N;
#   component 0's id is the het job's). slurmstepd of component N sees
#   S_JOB_ID = component N's id, so a step spanning --het-group=0,1 is two
#   allocations, job_<id0>.<step> and job_<id1>.<step>; each component's
#   epilog ends its own group.
# - SPANK options are not per component: srun passes one value of --uenv
#   to every component of a het step, the last one given
#   (srun --uenv=A cmd : --uenv=B cmd runs B in both; srun --uenv=A cmd : cmd
#   runs A in both), and sbatch uses the first component's for the batch
#   script and the job's steps.
# - Het jobs are scheduled only by the backfill scheduler, which reserves
#   whole nodes for each component ("each component of a heterogeneous job
#   on a different node", heterogeneous_jobs.html): on one node a het job
#   never starts. So this file adds a second slurmd on this machine (node2,
#   in a partition "het" with localhost), sharing the one helper.
# shellcheck disable=SC2016,SC2154 # $VARS in single quotes are for the jobs; bats sets $stderr

bats_require_minimum_version 1.5.0

load lib/cluster
load lib/images
load lib/plugin

_node2_idle() { [[ $(scontrol -o show node node2 2>/dev/null) == *" State=IDLE "* ]]; }

_start_node2() {
	slurmd -D -f "$SLURM_CONF" -N node2 </dev/null >>"$HPCN_LOGS/slurmd-node2.stderr" 2>&1 3>&- &
	echo $! >"$HPCN_T/pids/slurmd-node2"
	wait_for -t 30 _node2_idle || {
		tail -n 20 "$HPCN_LOGS/slurmd-node2.stderr" >&2
		return 1
	}
}

setup_file() {
	local port
	port=$(_cl_free_port)
	# node2 in no partition of slurm.conf: the harness waits for a single
	# "idle" line of sinfo; the partition of both nodes is made afterwards.
	export HPCN_SLURM_EXTRA_CONF="SchedulerParameters=bf_interval=1
NodeName=node2 NodeHostname=node2 NodeAddr=127.0.0.1 Port=$port CPUs=2 RealMemory=500 State=UNKNOWN"
	cluster_start
	plugin_images
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=5"
	_start_node2
	scontrol create PartitionName=het Nodes=localhost,node2 MaxTime=INFINITE State=UP \
		OverSubscribe=FORCE:128
}

teardown_file() {
	local T=$HPCN_T cg=$HPCN_CGROUP_ROOT pid
	plugin_cancel_jobs
	pid=$(_cl_pid_of slurmd-node2)
	[[ -n $pid ]] && _cl_kill_wait "$pid" 10
	cluster_stop
	cluster_assert_gone "$T" "$cg"
}

teardown() {
	cluster_dump_logs_on_failure
	plugin_cancel_jobs
	rm -f "$HPCN_WORK"/*.stop "$HPCN_WORK"/started.*
}

# The helper's allocation ids of group job_ID, sorted, on one line.
_allocs_of() { # jobid
	helper_status_json | jq -r --arg g "job_$1" \
		'[.allocations[] | select(.group == $g) | .allocation_id] | sort | join(" ")'
}

# The image mounted for allocation ID.
_image_of() { # allocation-id
	helper_status_json | jq -r --arg a "$1" \
		'.allocations[] | select(.allocation_id == $a) | .mounts[].image_path'
}

_count_started() { find "$HPCN_WORK" -maxdepth 1 -name 'started.*' | wc -l; }

# ---- arrays ---------------------------------------------------------------

@test "sbatch --array=1-3 --uenv: every task and its step see the image; each task's allocations are its own and released" {
	local id jobs j out
	id=$(as_user sbatch --parsable --array=1-3 --uenv="$IMG_APP" -o "$HPCN_WORK/arr-%A_%a.out" \
		-e "$HPCN_WORK/arr-%A_%a.out" --wrap '
		echo "task=$SLURM_ARRAY_TASK_ID job=$SLURM_JOB_ID"
		/user-environment/bin/hello batch
		srun /bin/sh -c "/user-environment/bin/hello step; touch started.\$SLURM_JOB_ID
			while [ ! -e arr.stop ]; do sleep 0.1; done"')
	[[ $id =~ ^[0-9]+$ ]]
	# All three run at once: each holds its batch step and step 0.
	wait_for -t 60 eval '[ "$(_count_started)" -eq 3 ]'
	jobs=$(find "$HPCN_WORK" -maxdepth 1 -name 'started.*' | sed 's/.*started\.//' | sort -n)
	echo "task jobs: $jobs"
	[ "$(wc -w <<<"$jobs")" -eq 3 ]
	for j in $jobs; do
		[ "$(_allocs_of "$j")" = "job_$j.0 job_$j.batch" ]
		[ "$(_image_of "job_$j.batch")" = "$IMG_APP" ]
		[ "$(_image_of "job_$j.0")" = "$IMG_APP" ]
	done
	# One mount for all of them.
	[ "$(helper_status_json | jq '.mounts | length')" -eq 1 ]
	[ "$(helper_status_json | jq '.mounts[0].refcount')" -eq 6 ]
	as_user touch "$HPCN_WORK/arr.stop"
	for j in $jobs; do
		wait_for -t 30 cluster_epilog_ran "$j"
		plugin_wait_no_allocation "job_$j"
	done
	for j in 1 2 3; do
		out=$HPCN_WORK/arr-${id}_$j.out
		cat "$out"
		[ "$(sed -n 2,3p "$out")" = "$(uenv_hello_marker app batch)
$(uenv_hello_marker app step)" ]
		[[ $(head -n 1 "$out") == "task=$j job="* ]]
	done
	wait_for -t 10 plugin_no_mounts
	wait_for -t 5 plugin_no_loop_devices
}

# ---- heterogeneous jobs -----------------------------------------------------

@test "sbatch het job (#SBATCH hetjob) --uenv: the batch script and steps of each component and of both see the image; each component's allocations are released" {
	local id j1 step out=$HPCN_WORK/het-batch.out
	cat >"$HPCN_WORK/het.sh" <<EOF
#!/bin/sh
#SBATCH -p het -n 1
#SBATCH hetjob
#SBATCH -p het -n 1
echo "ids \$SLURM_JOB_ID_HET_GROUP_0 \$SLURM_JOB_ID_HET_GROUP_1"
/user-environment/bin/hello batch
srun --het-group=0 /user-environment/bin/hello g0
srun --het-group=1 /user-environment/bin/hello g1
srun --het-group=0,1 -l /bin/sh -c '/user-environment/bin/hello g01; touch started.\$SLURMD_NODENAME
	while [ ! -e het.stop ]; do sleep 0.1; done' | sort
EOF
	chmod 0755 "$HPCN_WORK/het.sh"
	id=$(as_user sbatch --parsable --uenv="$IMG_APP" -o "$out" -e "$out" "$HPCN_WORK/het.sh")
	[[ $id =~ ^[0-9]+$ ]]
	wait_for -t 60 eval '[ "$(_count_started)" -eq 2 ]'
	# Component 1 is a job of its own; its stepd asks for its own id.
	j1=$(awk '/^ids / { print $3 }' "$out")
	[ "$(awk '/^ids / { print $2 }' "$out")" = "$id" ]
	[[ $j1 =~ ^[0-9]+$ && $j1 != "$id" ]]
	# One step over both: the same step id in each component's job.
	step=$(_allocs_of "$j1")
	echo "component 0: $(_allocs_of "$id"); component 1: $step"
	[[ $step =~ ^job_$j1\.[0-9]+$ ]]
	step=${step##*.}
	[ "$(_allocs_of "$id")" = "job_$id.$step job_$id.batch" ]
	[ "$(_image_of "job_$id.$step")" = "$IMG_APP" ]
	[ "$(_image_of "job_$j1.$step")" = "$IMG_APP" ]
	[ "$(_image_of "job_$id.batch")" = "$IMG_APP" ]
	as_user touch "$HPCN_WORK/het.stop"
	wait_for -t 30 cluster_epilog_ran "$id"
	wait_for -t 30 cluster_epilog_ran "$j1"
	plugin_wait_no_allocation "job_$id"
	plugin_wait_no_allocation "job_$j1"
	cat "$out"
	[ "$(tail -n +2 "$out")" = "$(uenv_hello_marker app batch)
$(uenv_hello_marker app g0)
$(uenv_hello_marker app g1)
0: $(uenv_hello_marker app g01)
1: $(uenv_hello_marker app g01)" ]
	wait_for -t 10 plugin_no_mounts
	wait_for -t 5 plugin_no_loop_devices
}

@test "salloc het job --uenv: steps across both components see it, a step of one component may name its own; both released" {
	local ids
	run --separate-stderr as_user salloc -p het -n 1 --uenv="$IMG_APP" : -p het -n 1 /bin/sh -c '
		echo "ids $SLURM_JOB_ID_HET_GROUP_0 $SLURM_JOB_ID_HET_GROUP_1"
		srun --het-group=0,1 -l /user-environment/bin/hello both | sort
		srun --het-group=1 --uenv='"$IMG_OTHER"' /user-environment/bin/hello own1
		srun --het-group=0 /user-environment/bin/hello again0'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "0: $(uenv_hello_marker app both)" ]
	[ "${lines[2]}" = "1: $(uenv_hello_marker app both)" ]
	[ "${lines[3]}" = "$(uenv_hello_marker other own1)" ]
	[ "${lines[4]}" = "$(uenv_hello_marker app again0)" ]
	read -r -a ids <<<"${lines[0]#ids }"
	[[ ${ids[0]} =~ ^[0-9]+$ && ${ids[1]} =~ ^[0-9]+$ ]]
	wait_for -t 30 cluster_epilog_ran "${ids[0]}"
	wait_for -t 30 cluster_epilog_ran "${ids[1]}"
	plugin_wait_no_allocation "job_${ids[0]}"
	plugin_wait_no_allocation "job_${ids[1]}"
	wait_for -t 10 plugin_no_mounts
}

@test "per-component --uenv: Slurm 22.05 passes one value to every component (srun: the last given, sbatch: the first)" {
	local out=$HPCN_WORK/het-per.out id
	# srun: the last component's --uenv applies to both.
	run --separate-stderr as_user srun -p het -n 1 --uenv="$IMG_APP" -l /user-environment/bin/hello c0 : \
		-p het -n 1 --uenv="$IMG_OTHER" /user-environment/bin/hello c1
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$(sort <<<"$output")" = "0: $(uenv_hello_marker other c0)
1: $(uenv_hello_marker other c1)" ]
	# Given once, for the first component: both have it.
	run --separate-stderr as_user srun -p het -n 1 --uenv="$IMG_APP" -l /user-environment/bin/hello c0 : \
		-p het -n 1 /user-environment/bin/hello c1
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$(sort <<<"$output")" = "0: $(uenv_hello_marker app c0)
1: $(uenv_hello_marker app c1)" ]
	# sbatch: the first component's, for the batch script and a step over both.
	id=$(as_user sbatch --parsable -p het -n 1 --uenv="$IMG_APP" -o "$out" -e "$out" : \
		-p het -n 1 --uenv="$IMG_OTHER" --wrap '
		/user-environment/bin/hello batch
		srun --het-group=0,1 -l /user-environment/bin/hello both | sort
		echo "ids $SLURM_JOB_ID_HET_GROUP_0 $SLURM_JOB_ID_HET_GROUP_1"')
	[[ $id =~ ^[0-9]+$ ]]
	wait_for -t 60 cluster_epilog_ran "$id"
	cat "$out"
	[ "$(head -n 3 "$out")" = "$(uenv_hello_marker app batch)
0: $(uenv_hello_marker app both)
1: $(uenv_hello_marker app both)" ]
	wait_for -t 30 cluster_epilog_ran "$(awk '/^ids / { print $3 }' "$out")"
	plugin_wait_no_allocation "job_$id"
	plugin_wait_no_allocation "job_$(awk '/^ids / { print $3 }' "$out")"
}

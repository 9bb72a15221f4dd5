#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
#
# spank_hpc_node.so beside Slurm's real job_container/tmpfs (JobContainerType=
# job_container/tmpfs, PrologFlags=Contain, job_container.conf AutoBasePath
# and a BasePath under /var/tmp): every step of a job, with and without
# --uenv, with cgroup=on and off, with fallback=local, the batch step, the
# steps of salloc and the extern step, sees the job's private /tmp and
# /dev/shm (a bind of BasePath/<node>/<jobid>/.<jobid>, the same for all the
# job's steps), with the images mounted on top. Found from Slurm's own pin
# (BasePath/<node>/<jobid>/.ns): no plugstack argument is needed.
# shellcheck disable=SC2016,SC2154 # $VARS in single quotes are for the jobs; bats sets $stderr

bats_require_minimum_version 1.5.0

load lib/cluster
load lib/images
load lib/plugin

plugstack() {
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=2 $*"
}

setup_file() {
	export HPCN_SLURM_JOB_CONTAINER=1
	cluster_start
	plugin_images
	# What every task runs: where its /tmp comes from, files in /tmp and
	# /dev/shm that must not reach the host, the image when there is one.
	cat >"$HPCN_WORK/probe" <<'EOF'
#!/bin/sh
tag=$1
echo "$tag job=$SLURM_JOB_ID"
echo "$tag tmp=$(awk '$5 == "/tmp" { r = $4 } END { print r }' /proc/self/mountinfo)"
touch "/tmp/hpcn-jc-$tag" "/dev/shm/hpcn-jc-$tag" || echo "$tag touch failed"
if [ -e /user-environment/bin/hello ]; then /user-environment/bin/hello "$tag"; else echo "no image"; fi
EOF
	chmod 0755 "$HPCN_WORK/probe"
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
	rm -f /tmp/hpcn-jc-* /dev/shm/hpcn-jc-*
}

# The probe's output OUT (of tag TAG) shows the job's private /tmp (a bind of
# BasePath/<node>/<jobid>/.<jobid>) and /dev/shm: neither file reached the
# host's.
_assert_private() { # out tag
	local out=$1 tag=$2 job
	job=$(sed -n "s/^$tag job=//p" <<<"$out")
	[[ $job =~ ^[0-9]+$ ]] || { echo "# no job id of $tag in: $out" >&2; return 1; }
	grep -qxF "$tag tmp=$HPCN_JC_BASE/localhost/$job/.$job" <<<"$out" || {
		echo "# /tmp of $tag (job $job) is not the job's ($HPCN_JC_BASE/localhost/$job/.$job): $out" >&2
		return 1
	}
	! grep -q "^$tag touch failed" <<<"$out" || { echo "# $out" >&2; return 1; }
	[[ ! -e /tmp/hpcn-jc-$tag ]] || { echo "# /tmp/hpcn-jc-$tag reached the host's /tmp" >&2; return 1; }
	[[ ! -e /dev/shm/hpcn-jc-$tag ]] ||
		{ echo "# /dev/shm/hpcn-jc-$tag reached the host's /dev/shm" >&2; return 1; }
}

_assert_image() { # out tag
	grep -qxF "$(uenv_hello_marker app "$2")" <<<"$1" ||
		{ echo "# the image is not mounted in the task: $1" >&2; return 1; }
}

_srun_probe() { # tag srun-args...
	local tag=$1
	shift
	run --separate-stderr as_user srun "$@" "$HPCN_WORK/probe" "$tag"
	echo "$output $stderr"
	[ "$status" -eq 0 ]
}

@test "the harness: Slurm's job_container/tmpfs alone gives a step the job's /tmp and /dev/shm" {
	cluster_set_plugstack
	_srun_probe plain
	_assert_private "$output" plain
	grep -qx 'no image' <<<"$output"
}

@test "cgroup=on: a plain step keeps the job's /tmp (it got the host's)" {
	plugstack cgroup=on
	_srun_probe cg-plain
	_assert_private "$output" cg-plain
	# slurmd's log said at start what the plugin does beside it.
	grep -q "hpc-node: Slurm configuration ($SLURM_CONF): job_container/tmpfs: each step is built on its job's namespace" \
		"$HPCN_LOGS/slurmd.log"
}

@test "cgroup=off: srun --uenv keeps the job's /tmp, the image on top (it got the host's)" {
	plugstack
	_srun_probe uenv --uenv="$IMG_APP"
	_assert_private "$output" uenv
	_assert_image "$output" uenv
	# The job's /tmp, the node's one mount of the image.
	[ "$(count_loop_devices_for "$IMG_APP")" -le 1 ]
}

@test "cgroup=on: srun --uenv keeps the job's /tmp, the image on top" {
	plugstack cgroup=on
	_srun_probe cg-uenv --uenv="$IMG_APP"
	_assert_private "$output" cg-uenv
	_assert_image "$output" cg-uenv
}

@test "an old plugstack.conf with job_container_base= still works (the argument is no longer needed)" {
	plugstack "job_container_base=$HPCN_JC_BASE"
	_srun_probe old-arg --uenv="$IMG_APP"
	_assert_private "$output" old-arg
	_assert_image "$output" old-arg
	grep -q 'job_container_base= is no longer needed' "$HPCN_LOGS/slurmd.log"
}

@test "fallback=local (no helper): srun --uenv keeps the job's /tmp, the image on top" {
	plugstack fallback=local
	# The helper's mounts of earlier tests go first (a stopped helper keeps
	# its mounts): the loop devices counted below are the fallback's.
	wait_for -t 120 plugin_no_mounts
	wait_for -t 120 plugin_no_loop_devices
	cluster_stop_helper
	_srun_probe fb-uenv --uenv="$IMG_APP"
	[[ $stderr == *"fallback=local"* ]]
	_assert_private "$output" fb-uenv
	_assert_image "$output" fb-uenv
	plugstack fallback=local cgroup=on
	_srun_probe fb-cg --uenv="$IMG_APP"
	_assert_private "$output" fb-cg
	_assert_image "$output" fb-cg
	# The step's own namespace went with it: its loop devices too.
	wait_for -t 120 plugin_no_loop_devices
}

@test "the batch step and its steps share the job's /tmp, with and without --uenv, cgroup=on and off" {
	local cg u id out args
	for cg in off on; do
		plugstack "cgroup=$cg"
		for u in none app; do
			out=$HPCN_WORK/batch-$cg-$u.out
			rm -f "$out"
			args=()
			[[ $u == app ]] && args=(--uenv="$IMG_APP")
			id=$(as_user sbatch --parsable "${args[@]}" -o "$out" --wrap "
				'$HPCN_WORK/probe' batch-$cg-$u
				echo shared-$cg-$u >/tmp/hpcn-jc-shared
				srun '$HPCN_WORK/probe' step-$cg-$u
				srun --uenv='$IMG_APP' cat /tmp/hpcn-jc-shared")
			[[ $id =~ ^[0-9]+$ ]]
			wait_for -t 120 eval "! squeue -h -j $id 2>/dev/null | grep -q ."
			cat "$out"
			[ "$(sed -n 's/^[^ ]* job=//p' "$out" | sort -u)" = "$id" ]
			_assert_private "$(cat "$out")" "batch-$cg-$u"
			_assert_private "$(cat "$out")" "step-$cg-$u"
			if [[ $u == app ]]; then
				_assert_image "$(cat "$out")" "batch-$cg-$u"
				_assert_image "$(cat "$out")" "step-$cg-$u"
			fi
			# A --uenv step reads what the batch script left in the job's /tmp.
			grep -qx "shared-$cg-$u" "$out"
			[[ ! -e /tmp/hpcn-jc-shared ]]
			plugin_wait_no_allocation "job_$id"
		done
	done
}

@test "the steps of salloc keep the job's /tmp, with and without --uenv" {
	local cg
	for cg in off on; do
		plugstack "cgroup=$cg"
		run --separate-stderr as_user salloc -n1 --uenv="$IMG_APP" sh -c "
			srun '$HPCN_WORK/probe' salloc-$cg
			srun --uenv='$IMG_APP' '$HPCN_WORK/probe' salloc2-$cg"
		echo "$output $stderr"
		[ "$status" -eq 0 ]
		_assert_private "$output" "salloc-$cg"
		_assert_private "$output" "salloc2-$cg"
		_assert_image "$output" "salloc2-$cg"
		# One job, one /tmp.
		[ "$(sed -n 's/^salloc[^ ]* tmp=//p' <<<"$output" | sort -u | wc -l)" -eq 1 ]
	done
}

# The extern step's process (sleep, a child of slurmstepd: [JOB.extern]) of
# this cluster's job JOB.
_extern_pid() { # job
	local p
	for p in $(pgrep -f "^slurmstepd: \[$1\.extern\]\$"); do
		tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$SLURM_CONF" ||
			continue
		pgrep -P "$p" | head -n 1
	done
}

# Which mount namespace process PID of job JOB is in: "job" (the job's,
# job_container/tmpfs's pin), "host" (ours) or "other".
_ns_of() { # pid job
	local ns
	ns=$(readlink "/proc/$1/ns/mnt") || return 1
	if [[ $ns == "mnt:[$(stat -L -c %i "$HPCN_JC_BASE/localhost/$2/.ns")]" ]]; then
		echo job
	elif [[ $ns == "$(readlink /proc/self/ns/mnt)" ]]; then
		echo host
	else
		echo other
	fi
}

# The extern step (PrologFlags=Contain) holds no user task: Slurm 22.05
# leaves its own process in slurmstepd's namespace, and pam_slurm_adopt
# moves adopted processes into the job's pin. The plugin must change
# neither: the extern process stays where Slurm put it, and the pin that
# adopted processes join shows the job's /tmp with what --uenv steps wrote.
@test "the extern step is left as Slurm makes it; adopted processes get the job's /tmp" {
	local cg id pid out want uenv
	for cg in none off on; do
		if [[ $cg == none ]]; then cluster_set_plugstack; else plugstack "cgroup=$cg"; fi
		out=$HPCN_WORK/extern-$cg.out
		rm -f "$out"
		uenv=--uenv=$IMG_APP
		[[ $cg == none ]] && uenv=""
		id=$(as_user sbatch --parsable -o "$out" --wrap "
			srun $uenv sh -c 'echo from-step-$cg >/tmp/hpcn-jc-extern; echo step-done'
			sleep 300")
		[[ $id =~ ^[0-9]+$ ]]
		wait_for -t 120 grep -q step-done "$out"
		wait_for -t 120 eval "[[ -n \$(_extern_pid $id) ]]"
		pid=$(_extern_pid "$id")
		echo "extern step process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline")): $(_ns_of "$pid" "$id")"
		# Without the plugin Slurm decides; with it, the same.
		[[ $cg == none ]] && want=$(_ns_of "$pid" "$id")
		[ "$(_ns_of "$pid" "$id")" = "$want" ]
		# What pam_slurm_adopt joins: the job's /tmp, with the step's file.
		[ "$(nsenter --mount="$HPCN_JC_BASE/localhost/$id/.ns" cat /tmp/hpcn-jc-extern)" = "from-step-$cg" ]
		[[ ! -e /tmp/hpcn-jc-extern ]]
		# The plugin made nothing for the extern step.
		! helper_status_json | jq -e --arg a "job_$id.extern" \
			'any(.allocations[]; .allocation_id == $a)' >/dev/null || false
		scancel "$id"
		wait_for -t 120 eval "! squeue -h -j $id 2>/dev/null | grep -q ."
		plugin_wait_no_allocation "job_$id"
		# Slurm removed the job's directory: no pin of ours kept it.
		wait_for -t 120 eval "[[ ! -e $HPCN_JC_BASE/localhost/$id ]]"
	done
}

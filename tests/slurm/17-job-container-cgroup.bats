#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
#
# Both at once, as many sites run them: Slurm's job_container/tmpfs and its
# cgroup plugins (proctrack/cgroup, task/cgroup,task/affinity, cgroup/v1).
# Each alone is in 13-job-container.bats and 14-slurm-cgroup.bats; here a
# --uenv step and a batch job keep the job's /tmp and Slurm's cgroups
# together, with the plugin's cgroup=off and cgroup=on.
# shellcheck disable=SC2016,SC2154 # $VARS in single quotes are for the jobs; bats sets $stderr

bats_require_minimum_version 1.5.0

load lib/cluster
load lib/images
load lib/plugin

setup_file() {
	export HPCN_SLURM_JOB_CONTAINER=1 HPCN_SLURM_CGROUP=1
	cluster_start
	plugin_images
	cat >"$HPCN_WORK/probe" <<'EOF'
#!/bin/sh
t="$1.$SLURM_LOCALID"
echo "$t job=$SLURM_JOB_ID"
echo "$t tmp=$(awk '$5 == "/tmp" { r = $4 } END { print r }' /proc/self/mountinfo)"
echo "$t freezer=$(sed -n 's/^[0-9]*:freezer://p' /proc/self/cgroup)"
echo "$t memory=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)"
touch "/tmp/hpcn-jccg-$t"
/user-environment/bin/hello "$t"
EOF
	chmod 0755 "$HPCN_WORK/probe"
}

teardown_file() {
	cluster_stop_checked
}

teardown() {
	cluster_dump_logs_on_failure
	plugin_cancel_jobs
	rm -f /tmp/hpcn-jccg-*
}

# Task TAG of job JOB: the job's /tmp, Slurm's step cgroups, the image.
_assert_task() { # out tag step
	local out=$1 t=$2 step=$3 job uid
	uid=$(id -u "$HPCN_TEST_USER")
	job=$(sed -n "s/^$t job=//p" <<<"$out")
	[[ $job =~ ^[0-9]+$ ]] || { echo "# no job id of $t in: $out" >&2; return 1; }
	grep -qxF "$t tmp=$HPCN_JC_BASE/localhost/$job/.$job" <<<"$out" || {
		echo "# $t: /tmp is not the job's" >&2
		return 1
	}
	grep -qxF "$t freezer=/slurm_localhost/uid_$uid/job_$job/step_$step" <<<"$out" || {
		echo "# $t: not in Slurm's freezer cgroup of step $step" >&2
		return 1
	}
	grep -q "^$t memory=/slurm_localhost/uid_$uid/job_$job/step_$step" <<<"$out" || {
		echo "# $t: not in Slurm's memory cgroup of step $step" >&2
		return 1
	}
	grep -qxF "$(uenv_hello_marker app "$t")" <<<"$out" ||
		{ echo "# $t: no image" >&2; return 1; }
	[[ ! -e /tmp/hpcn-jccg-$t ]] || { echo "# $t wrote to the host's /tmp" >&2; return 1; }
}

@test "job_container/tmpfs with Slurm's cgroups: --uenv steps and batch jobs keep both, cgroup=off and on" {
	local cg id out
	for cg in off on; do
		cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=2 cgroup=$cg"
		run --separate-stderr as_user srun -n2 --mem=200M --uenv="$IMG_APP" "$HPCN_WORK/probe" "srun-$cg"
		echo "$output $stderr"
		[ "$status" -eq 0 ]
		_assert_task "$output" "srun-$cg.0" 0
		_assert_task "$output" "srun-$cg.1" 0
		out=$HPCN_WORK/batch-$cg.out
		id=$(as_user sbatch --parsable -n1 --uenv="$IMG_APP" -o "$out" --wrap \
			"'$HPCN_WORK/probe' batch-$cg; srun '$HPCN_WORK/probe' step-$cg")
		wait_for -t 120 eval "! squeue -h -j $id 2>/dev/null | grep -q ."
		cat "$out"
		_assert_task "$(cat "$out")" "batch-$cg.0" batch
		_assert_task "$(cat "$out")" "step-$cg.0" 0
		plugin_wait_no_allocation "job_$id"
	done
	wait_for -t 120 plugin_no_mounts
}

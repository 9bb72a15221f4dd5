#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
#
# spank_hpc_node.so in a real Slurm when things go wrong: the helper killed
# and restarted under a running step, slurmstepd killed mid-step, the helper
# absent (the step fails, or fallback=local builds the namespace itself), or
# too slow to answer (the step fails, no fallback beside what it may have made);
# and the admin's options: namespaces=mount,pid,net and cgroup=on.
# shellcheck disable=SC2016,SC2154 # $VARS in single quotes are for the jobs; bats sets $stderr

bats_require_minimum_version 1.5.0

load lib/cluster
load lib/images
load lib/plugin

# ready_timeout=2: a step does not wait 30 s for an absent helper.
plugstack() {
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=2 $*"
}

setup_file() {
	cluster_start
	plugin_images
}

teardown_file() {
	cluster_stop_checked
}

setup() {
	# Every test starts with a running helper.
	cluster_ensure_helper
}

teardown() {
	cluster_dump_logs_on_failure
	plugin_cancel_jobs
}

_running_step_pid() { # jobid.stepid -> pid of its slurmstepd, of this cluster only
	# Job ids start at 1 in every cluster: another test's cluster on this
	# machine may run a step of the same name. Ours inherit our SLURM_CONF.
	local p
	for p in $(pgrep -f "^slurmstepd: \[$1\]\$"); do
		tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$SLURM_CONF" &&
			echo "$p"
	done
	return 0
}

@test "helper SIGKILLed and restarted under a running step: the step goes on, later steps work" {
	plugstack
	local out=$HPCN_WORK/helper-kill.out id bg
	# Reads a file of the image in a loop, before, during and after.
	# It reads until the test says the restart is checked (helper-kill.stop),
	# bounded against hangs by the wall clock, never by a count of reads.
	as_user sh -c "srun --uenv='$IMG_APP' sh -c '
		end=\$((\$(date +%s) + 600))
		while [ ! -e helper-kill.stop ] && [ \$(date +%s) -lt \$end ]; do
			cat /user-environment/meta/env.json >/dev/null || exit 7
			touch helper-kill.started
			sleep 0.1
		done
		/user-environment/bin/hello survived' >'$out' 2>&1; echo rc=\$? >>'$out'" &
	bg=$!
	wait_for -t 120 test -e "$HPCN_WORK/helper-kill.started"
	id=$(squeue -h -o %A)
	_plugin_has_allocation "job_$id"
	cluster_stop_helper KILL
	cluster_start_helper
	# The restarted helper knows the running step again (WI6).
	_plugin_has_allocation "job_$id"
	# The step reads its image after the restart too, then stops.
	rm -f "$HPCN_WORK/helper-kill.started"
	wait_for -t 120 test -e "$HPCN_WORK/helper-kill.started"
	touch "$HPCN_WORK/helper-kill.stop"
	wait "$bg"
	cat "$out"
	[ "$(cat "$out")" = "$(uenv_hello_marker app survived)"$'\n'rc=0 ]
	run --separate-stderr as_user srun --uenv="$IMG_APP" /user-environment/bin/hello later
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker app later)" ]
	plugin_wait_no_allocation "job_$id"
	wait_for -t 60 plugin_no_mounts
	wait_for -t 60 plugin_no_loop_devices
	rm -f "$HPCN_WORK/helper-kill.started" "$HPCN_WORK/helper-kill.stop"
}

@test "slurmstepd SIGKILLed mid-step: after the epilog and the hold time nothing of the job is left" {
	# cgroup=on: the helper owns the step's scope and can kill what the dead
	# slurmstepd left running.
	plugstack cgroup=on
	local id pid
	id=$(as_user sbatch --parsable -o /dev/null -e /dev/null \
		--wrap "srun --uenv='$IMG_APP' sh -c 'touch stepd-kill.started; exec sleep 300'")
	wait_for -t 120 test -e "$HPCN_WORK/stepd-kill.started"
	pid=$(_running_step_pid "$id.0")
	[[ $pid =~ ^[0-9]+$ ]]
	_plugin_has_allocation "job_$id"
	[ "$(count_loop_devices_for "$IMG_APP")" -eq 1 ]
	kill -KILL "$pid"
	scancel "$id"
	wait_for -t 120 cluster_epilog_ran "$id"
	plugin_wait_no_allocation "job_$id"
	wait_for -t 120 plugin_no_mounts
	wait_for -t 120 plugin_no_loop_devices
	wait_for -t 120 eval '[[ -z $(pgrep -u "$HPCN_TEST_USER" -f "sleep 300") ]]'
	rm -f "$HPCN_WORK/stepd-kill.started"
}

@test "helper down without fallback: the step fails with one clear line naming the socket" {
	plugstack
	cluster_stop_helper
	run --separate-stderr as_user srun -n 2 --uenv="$IMG_APP" /user-environment/bin/hello x
	echo "$stderr"
	[ "$status" -ne 0 ]
	[ -z "$output" ]
	# One line for the step, not one per task.
	[ "$(grep -cxF "slurmstepd-localhost: error: hpc-node: handoff socket unavailable: $HPCN_SOCKET: No such file or directory" <<<"$stderr")" -eq 1 ]
	# A step that asks nothing does not need the helper.
	run --separate-stderr as_user srun true
	[ "$status" -eq 0 ]
	# A socket nobody listens on (a helper killed hard) is reported too.
	cluster_start_helper
	cluster_stop_helper KILL
	[ -S "$HPCN_SOCKET" ]
	run --separate-stderr as_user srun --uenv="$IMG_APP" true
	[ "$status" -ne 0 ]
	grep -qxF "slurmstepd-localhost: error: hpc-node: handoff socket unavailable: $HPCN_SOCKET: Connection refused" <<<"$stderr"
}

@test "helper down with fallback=local: the step gets its images all the same, nothing leaks" {
	plugstack fallback=local
	cluster_stop_helper
	run --separate-stderr as_user srun -n 2 --uenv="$IMG_APP,$IMG_TOOLS:/user-tools" \
		--view=app:default sh -c 'hello $SLURM_PROCID; /user-tools/bin/hello t'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$(sort <<<"$output")" = "$(uenv_hello_marker app 0)
$(uenv_hello_marker app 1)
$(uenv_hello_marker tools t)
$(uenv_hello_marker tools t)" ]
	grep -q "fallback=local: mounting the images in a private namespace" "$HPCN_LOGS/slurmd.log"
	# The user is told once per node (one here), naming the cause.
	[ "$(grep -c 'hpc-node: warning: handoff socket unavailable: .*: No such file or directory; fallback=local: the images are mounted in a private namespace of this step (reduced isolation)$' <<<"$stderr")" -eq 1 ]
	# The namespace went with the step: no loop device, no mount on the host.
	wait_for -t 120 plugin_no_loop_devices
	! grep -qE ' /user-(environment|tools) .* - squashfs ' /proc/self/mountinfo || false
	# Bad input is still refused by the fallback: the image is opened as the user.
	cp "$IMG_APP" "$HPCN_T/images/secret-fb.sqfs"
	chmod 0600 "$HPCN_T/images/secret-fb.sqfs"
	run --separate-stderr as_user srun --uenv="$HPCN_T/images/secret-fb.sqfs" true
	[ "$status" -ne 0 ]
	rm -f "$HPCN_T/images/secret-fb.sqfs"
}

@test "helper too slow to answer, fallback=local: the step fails naming the wait, no second environment" {
	plugstack fallback=local request_timeout=1500
	local h before
	h=$(_cl_pid_of helper)
	before=$(grep -c "fallback=local: mounting" "$HPCN_LOGS/slurmd.log" || true)
	# Connected (the backlog takes it) but not answered.
	kill -STOP "$h"
	run --separate-stderr as_user srun --uenv="$IMG_APP" true
	kill -CONT "$h"
	echo "$stderr"
	[ "$status" -ne 0 ]
	grep -q "hpc-node: .*no reply to NamespaceRequest .* within 1500 ms" <<<"$stderr"
	# The helper may have acted on the request: no fallback beside it.
	[ "$(grep -c "fallback=local: mounting" "$HPCN_LOGS/slurmd.log" || true)" -eq "$before" ]
	# What the helper made of the late request goes (its client left).
	wait_for -t 120 eval '[[ $(helper_status_json | jq ".allocations | length") == 0 ]]'
}

@test "namespaces=mount,pid,net and cgroup=on: own pid and net namespaces, tasks in the step's scope" {
	plugstack namespaces=mount,pid,net cgroup=on
	local id host_pidns host_netns
	host_pidns=$(readlink /proc/self/ns/pid)
	host_netns=$(readlink /proc/self/ns/net)
	run --separate-stderr as_user srun --uenv="$IMG_APP" sh -c '
		echo "id $SLURM_JOB_ID"
		ip -o link | cut -d: -f2 | tr -d " "
		echo "pidns $(readlink /proc/self/ns/pid)"
		echo "netns $(readlink /proc/self/ns/net)"
		grep "^0::" /proc/self/cgroup
		/user-environment/bin/hello ns'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	id=${lines[0]#id }
	[ "${lines[1]}" = lo ]
	[[ ${lines[2]} == "pidns pid:["* && ${lines[2]} != "pidns $host_pidns" ]]
	[[ ${lines[3]} == "netns net:["* && ${lines[3]} != "netns $host_netns" ]]
	[ "${lines[4]}" = "0::/${HPCN_CGROUP_ROOT##*/}/workload.slice/job_$id.slice/job_$id.0.scope" ]
	[ "${lines[5]}" = "$(uenv_hello_marker app ns)" ]
	plugin_wait_no_allocation "job_$id"
	[ ! -e "$HPCN_CGROUP_ROOT/workload.slice/job_$id.slice" ]
	# Every step is placed, also one without --uenv.
	run --separate-stderr as_user srun sh -c 'ip -o link | wc -l; grep "^0::" /proc/self/cgroup'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" -eq 1 ]
	[[ ${lines[1]} == "0::/${HPCN_CGROUP_ROOT##*/}/workload.slice/job_"*.0.scope ]]
	plugstack
}

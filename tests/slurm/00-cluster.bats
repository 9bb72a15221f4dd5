#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
#
# The Slurm test harness itself (lib/cluster.bash, lib/images.bash): a real
# single-node Slurm with its own munged and hpc-node-helper, isolated under a
# temp dir, that the SPANK plugin tests build on. Needs root.
# shellcheck disable=SC2016 # $VARS in single quotes are for the jobs

bats_require_minimum_version 1.5.0

load lib/cluster
load lib/images

setup_file() {
	cluster_start
}

teardown_file() {
	local T=$HPCN_T cg=$HPCN_CGROUP_ROOT
	cluster_stop
	cluster_assert_gone "$T" "$cg"
}

teardown() {
	cluster_dump_logs_on_failure
}

@test "the cluster is isolated: own ports, own munged socket, files under HPCN_T" {
	[[ $HPCN_T == /tmp/hpcn-slurm.* && -d $HPCN_T ]]
	[[ $HPCN_SLURMCTLD_PORT != 6817 && $HPCN_SLURMD_PORT != 6818 ]]
	grep -qx "SlurmctldPort=$HPCN_SLURMCTLD_PORT" "$SLURM_CONF"
	grep -qx "SlurmdPort=$HPCN_SLURMD_PORT" "$SLURM_CONF"
	grep -qx "AuthInfo=socket=$HPCN_T/munge/munge.socket.2" "$SLURM_CONF"
	[[ -S $HPCN_T/munge/munge.socket.2 ]]
	# Our munged, as user munge, on our socket: the only one clients use.
	local pid
	pid=$(cat "$HPCN_T/pids/munged")
	[[ $(ps -o user= -p "$pid") == munge ]]
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--socket=$HPCN_T/munge/munge.socket.2"
	ss -Hltn "sport = :$HPCN_SLURMCTLD_PORT" | grep -q .
	ss -Hltn "sport = :$HPCN_SLURMD_PORT" | grep -q .
	run sinfo -h -o '%N %t %c'
	[ "$status" -eq 0 ]
	[[ $output == "localhost idle $(nproc)" ]]
	# The test user can read what srun needs.
	as_user test -r "$SLURM_CONF"
	as_user test -r "$HPCN_T/plugstack.conf"
}

@test "srun as the unprivileged test user runs tasks as that user" {
	run as_user srun true
	[ "$status" -eq 0 ]
	# srun may say on stderr that it waits for the last job's epilog.
	run --separate-stderr as_user srun -n 2 sh -c 'echo "$(id -un) $SLURM_PROCID $(pwd)"'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $(sort <<<"$output") == "$HPCN_TEST_USER 0 $HPCN_WORK"$'\n'"$HPCN_TEST_USER 1 $HPCN_WORK" ]]
}

@test "128 tasks fit on the node with srun --overcommit" {
	run --separate-stderr as_user srun --overcommit -n 128 printenv SLURM_PROCID
	[ "$status" -eq 0 ]
	[ "$(sort -un <<<"$output" | wc -l)" -eq 128 ]
}

@test "sbatch runs a batch job and its output file appears" {
	local id out
	id=$(as_user sbatch --parsable -o "$HPCN_WORK/batch-%j.out" \
		--wrap 'echo "batch ran as $(id -un) job $SLURM_JOB_ID"')
	[[ $id =~ ^[0-9]+$ ]]
	out=$HPCN_WORK/batch-$id.out
	wait_for -t 120 grep -q "batch ran as $HPCN_TEST_USER job $id" "$out"
	[[ $(stat -c %U "$out") == "$HPCN_TEST_USER" ]]
	wait_for -t 120 cluster_epilog_ran "$id"
	cluster_prolog_ran "$id"
}

@test "Prolog and Epilog scripts run for an srun job, as configured" {
	local id
	id=$(as_user srun sh -c 'echo $SLURM_JOB_ID')
	[[ $id =~ ^[0-9]+$ ]]
	# The prolog runs before the first task of the job on the node.
	grep -qx "prolog job=$id user=$HPCN_TEST_USER uid=$(id -u "$HPCN_TEST_USER")" \
		"$HPCN_MARKERS/prolog.log"
	# The epilog runs once the job is over, after srun returned.
	wait_for -t 120 cluster_epilog_ran "$id"
	grep -qx "epilog job=$id user=$HPCN_TEST_USER uid=$(id -u "$HPCN_TEST_USER")" \
		"$HPCN_MARKERS/epilog.log"
}

@test "the test helper is ready and hpc-nodectl status answers on its socket" {
	local pid
	pid=$(cat "$HPCN_T/pids/helper")
	grep -qx "pid=$pid" "$HPCN_READY"
	[[ -S $HPCN_SOCKET ]]
	run helper_status_json
	[ "$status" -eq 0 ]
	[ "$(jq -r .ready <<<"$output")" = true ]
	[ "$(jq -r .pid <<<"$output")" = "$pid" ]
	[ "$(jq -r .socket <<<"$output")" = "$HPCN_SOCKET" ]
	[ "$(jq -r .cgroup.root <<<"$output")" = "$HPCN_CGROUP_ROOT" ]
	[ "$(jq -r .hold_time_secs <<<"$output")" = 2 ]
	[ "$(jq '.allocations | length' <<<"$output")" -eq 0 ]
	[[ -d $HPCN_CGROUP_ROOT && $HPCN_CGROUP_ROOT == */hpcn-slurm-* ]]
	run "$HPCN_NODECTL" --socket "$HPCN_SOCKET" ping
	[ "$status" -eq 0 ]
}

@test "cluster_set_plugstack rewrites plugstack.conf and restarts slurmd" {
	local old new
	old=$(cat "$HPCN_T/pids/slurmd")
	cluster_set_plugstack "optional /nonexistent/hpcn-optional.so"
	new=$(cat "$HPCN_T/pids/slurmd")
	[[ $new != "$old" ]]
	! _cl_alive "$old" || false
	grep -qx "optional /nonexistent/hpcn-optional.so" "$HPCN_T/plugstack.conf"
	# The new slurmd read it (and went on: the plugin is optional).
	grep -q "hpcn-optional.so" "$HPCN_LOGS/slurmd.log"
	run as_user srun true
	[ "$status" -eq 0 ]
	# A required plugin that does not load: slurmd refuses to start, and
	# cluster_set_plugstack says so as soon as slurmd exits, naming the
	# plugin: before its 30 s wait for the port is over (no speed assumed:
	# only the expiry of that wait is told apart).
	SECONDS=0
	run cluster_set_plugstack "required /nonexistent/hpcn-required.so"
	[ "$status" -ne 0 ]
	[[ $output == *"slurmd (pid "*") exited during startup"*hpcn-required.so* ]]
	((SECONDS < 30))
	cluster_set_plugstack
	[ ! -s "$HPCN_T/plugstack.conf" ]
	run as_user srun true
	[ "$status" -eq 0 ]
}

@test "make_uenv_image builds a squashfs uenv with bin/hello, bin/showenv and env.json" {
	local img=$HPCN_T/images/demo.sqfs mnt=$HPCN_T/mnt-demo
	make_uenv_image "$img" demo /user-environment
	[[ $(head -c 4 "$img") == hsqs ]]
	[[ $(stat -c %a "$img") == 644 ]]
	as_user test -r "$img"
	mkdir "$mnt"
	mount -t squashfs -o loop,ro,nosuid,nodev "$img" "$mnt"
	[ "$(count_loop_devices_for "$img")" -eq 1 ]
	run "$mnt/bin/hello" a b
	[ "$output" = "$(uenv_hello_marker demo a b)" ]
	run env -i HPCN_DEMO=1 "$mnt/bin/showenv" HPCN_DEMO HPCN_NONE
	[ "$output" = $'HPCN_DEMO=1\nHPCN_NONE=<unset>' ]
	run "$mnt/tools/bin/hpcn-tool"
	[ "$output" = "hpcn-tool image=demo" ]
	local j=$mnt/meta/env.json
	[ "$(jq -r .name "$j")" = demo ]
	[ "$(jq -r .mount "$j")" = /user-environment ]
	[ "$(jq -c '.views.default.env.values.list.PATH' "$j")" = \
		'[{"op":"prepend","value":["/user-environment/bin"]}]' ]
	[ "$(jq -r '.views.default.env.values.scalar.HPCN_DEMO' "$j")" = 1 ]
	[ "$(jq -r '.views.default.env.version' "$j")" = 1 ]
	[ "$(jq -c '.views.tools.env.values.list.PATH[0].op' "$j")" = '"append"' ]
	[ "$(jq -c '.views.tools.env.values.scalar.HPCN_DEMO' "$j")" = null ]
	umount "$mnt"
	wait_for -t 60 eval '[ "$(count_loop_devices_for "$img")" -eq 0 ]'
	# Another mount point: the paths inside follow it.
	make_uenv_image "$HPCN_T/images/t.sqfs" t /user-tools
	unsquashfs -cat "$HPCN_T/images/t.sqfs" meta/env.json | jq -e '.mount == "/user-tools"
		and .views.default.env.values.list.PATH[0].value[0] == "/user-tools/bin"'
}

# A second cluster, started and stopped inside this test while ours runs,
# with everything cluster_stop must clean: a running job, a task left in the
# work dir, a squashfs loop mount and a namespace pin under its directory.
@test "a second cluster runs alongside, and cluster_stop leaves nothing of it" {
	local out T2 CG2 img=$HPCN_T/images/second.sqfs fake
	make_uenv_image "$img" second
	# A stand-in holder process (its name is what cluster_stop checks),
	# outside the second cluster's directory so that only the holder logic
	# finds it.
	fake=$HPCN_T/fakeholder
	mkdir -p "$fake"
	cp /bin/sleep "$fake/hpcn-pidns-hold"
	out=$(bash -c '
		set -e
		source "$1/lib/cluster.bash"
		unset HPCN_T
		cluster_start 2>/dev/null
		echo "T2=$HPCN_T CG2=$HPCN_CGROUP_ROOT"
		[[ $HPCN_SLURMCTLD_PORT != "$2" ]]
		as_user srun true
		as_user sbatch -Q -o /dev/null --wrap "sleep 300"
		wait_for -t 120 eval "[[ \$(squeue -h -t R -o %A) ]]"
		(cd "$HPCN_WORK" && setsid sleep 301 </dev/null >/dev/null 2>&1 &)
		mkdir "$HPCN_T/mnt" "$HPCN_T/ns"
		mount -t squashfs -o loop,ro "$3" "$HPCN_T/mnt"
		touch "$HPCN_T/ns/mnt"
		mount --bind "$HPCN_T/ns" "$HPCN_T/ns"
		mount --make-private "$HPCN_T/ns"
		unshare --mount="$HPCN_T/ns/mnt" true
		# What a helper killed mid-job leaves: a process in a scope of
		# its cgroup subtree, a pid namespace holder noted in its state.
		# (Killed first: a live helper would release the fake pins
		# itself at its next reconciliation, racing cluster_stop.)
		cluster_stop_helper KILL
		mkdir "$HPCN_CGROUP_ROOT/scope"
		(cd / && exec sleep 303 </dev/null >/dev/null 2>&1) &
		echo $! >"$HPCN_CGROUP_ROOT/scope/cgroup.procs"
		echo "SCOPED=$!"
		mkdir -p "$HPCN_HELPER_STATE/ns/fake"
		(cd / && exec "$4/hpcn-pidns-hold" 304 </dev/null >/dev/null 2>&1) &
		echo $! >"$HPCN_HELPER_STATE/ns/fake/holder"
		echo "HOLDER=$!"
		wait_for -t 60 eval "[[ \$(cat /proc/$!/comm) == hpcn-pidns-hold ]]"
		cluster_stop
	' _ "$BATS_TEST_DIRNAME" "$HPCN_SLURMCTLD_PORT" "$img" "$fake" 2>&1) || {
		echo "$out"
		false
	}
	echo "$out"
	local scoped holder
	scoped=$(sed -n 's/^SCOPED=//p' <<<"$out")
	holder=$(sed -n 's/^HOLDER=//p' <<<"$out")
	T2=$(sed -n 's/^T2=\([^ ]*\) .*/\1/p' <<<"$out")
	CG2=$(sed -n 's/.* CG2=//p' <<<"$out")
	[[ $T2 == /tmp/hpcn-slurm.* && $T2 != "$HPCN_T" ]]
	cluster_assert_gone "$T2" "$CG2"
	[[ -z $(pgrep -f "$T2") ]]
	[[ $out == *"killing pid namespace holder $holder "* ]]
	! _cl_alive "$scoped" || false
	! _cl_alive "$holder" || false
	wait_for -t 60 eval "[[ -z \$(pgrep -f 'sleep 30[0-3]') ]]"
	[ "$(count_loop_devices_for "$img")" -eq 0 ]
	# Ours is untouched.
	run as_user srun true
	[ "$status" -eq 0 ]
	run helper_status_json
	[ "$status" -eq 0 ]
}

@test "a cluster left by a killed run is reaped by the next cluster_start" {
	local T2 CG2 owner
	# Its owner (the process that started it) exits without cluster_stop.
	read -r T2 CG2 < <(bash -c '
		source "$1/lib/cluster.bash"
		unset HPCN_T
		cluster_start 2>/dev/null >&2 || exit 1
		as_user sbatch -Q -o /dev/null --wrap "sleep 302" >&2
		echo "$HPCN_T $HPCN_CGROUP_ROOT"
	' _ "$BATS_TEST_DIRNAME")
	[[ $T2 == /tmp/hpcn-slurm.* && -d $T2 ]]
	read -r owner _ <"$T2/owner"
	wait_for -t 60 eval "! _cl_alive $owner"
	[[ -n $(pgrep -f -- "$T2") ]]
	# Our own cluster's owner (bats) is alive: it must survive the reaping.
	(_cl_reap_stale)
	cluster_assert_gone "$T2" "$CG2"
	wait_for -t 60 eval "[[ -z \$(pgrep -f 'sleep 302') ]]"
	[ -d "$HPCN_T" ]
	run as_user srun true
	[ "$status" -eq 0 ]
}

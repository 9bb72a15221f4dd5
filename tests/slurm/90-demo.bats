#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
#
# contrib/demo.sh, the one-command demo, end to end: it installs (into a
# temporary prefix, from this build tree), starts a cluster that runs the
# INSTALLED helper and plugin, runs `srun --uenv --view` as its unprivileged
# user and shows the image's refcount; a second run reuses the cluster; the
# cluster left running serves the commands the demo prints; `demo.sh stop`
# leaves nothing behind. Needs root. The tests run in order and share the
# demo's state (files under BATS_FILE_TMPDIR).
# shellcheck disable=SC2016 # $VARS in single quotes are for the jobs
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr

bats_require_minimum_version 1.5.0

load lib/cluster

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

setup_file() {
	# Under a directory the demo user can enter: srun, as that user, loads
	# the installed plugin (BATS_FILE_TMPDIR is mode 0700).
	HPCN_DEMO_TEST_DIR=$(mktemp -d /tmp/hpcn-demo-test.XXXXXX) || return 1
	chmod 0755 "$HPCN_DEMO_TEST_DIR"
	export HPCN_DEMO_TEST_DIR
	export HPCN_DEMO_PREFIX=$HPCN_DEMO_TEST_DIR/prefix
	export HPCN_DEMO_BUILD_DIR=${HPCN_BUILD_DIR:-$REPO/build}
	export HPCN_DEMO_STATE=$HPCN_DEMO_TEST_DIR/state
	export HPCN_DEMO_LOG=$BATS_FILE_TMPDIR/demo.log
	export HPCN_DEMO_USER=hpcndemo
	export HPCN_DEMO_NO_DEPS=1
	[[ -f $HPCN_DEMO_BUILD_DIR/CMakeCache.txt ]] ||
		{ echo "# no build tree at $HPCN_DEMO_BUILD_DIR (set HPCN_BUILD_DIR)" >&3; return 1; }
	# Neither the user nor a demo may exist beforehand: the test checks
	# that stop removes the user the demo made.
	if id -u "$HPCN_DEMO_USER" >/dev/null 2>&1; then
		userdel "$HPCN_DEMO_USER" || return 1
	fi
}

teardown_file() {
	# After a failure: stop whatever is left, and say what it was.
	if [[ -e $HPCN_DEMO_STATE/state ]]; then
		"$REPO/contrib/demo.sh" stop >&3 2>&1 || true
	fi
	[[ $HPCN_DEMO_TEST_DIR == /tmp/hpcn-demo-test.* ]] && rm -rf "$HPCN_DEMO_TEST_DIR"
	return 0
}

teardown() {
	if [[ -z ${BATS_TEST_COMPLETED:-} && -s $HPCN_DEMO_LOG ]]; then
		echo "# ---- $HPCN_DEMO_LOG (last 40 lines)" >&3
		tail -n 40 "$HPCN_DEMO_LOG" | sed 's/^/#   /' >&3
	fi
}

state_get() { sed -n "s/^$1=//p" "$HPCN_DEMO_STATE/state"; }

@test "demo.sh starts the cluster and runs srun --uenv --view as the demo user" {
	run --separate-stderr "$REPO/contrib/demo.sh"
	printf '%s\n' "$output" "$stderr"
	[ "$status" -eq 0 ]
	local T img
	T=$(state_get T)
	img=$(state_get IMAGE)
	echo "$T" >"$BATS_FILE_TMPDIR/T"
	state_get CGROUP >"$BATS_FILE_TMPDIR/cgroup"
	[[ $T == /tmp/hpcn-slurm.* && -d $T ]]
	[[ $img == "$T/images/demo.sqfs" && -f $img ]]
	[[ $(state_get USER_CREATED) == 1 ]]
	id -u "$HPCN_DEMO_USER" >"$BATS_FILE_TMPDIR/uid"

	# The program's line, from the image's bin/hello found through the view.
	grep -qx '    hpcn-hello image=demo args=from-hpc-node' <<<"$output"
	# The status while a job holds the image: refcount 1, the job as its
	# user, the job's tasks in its scope; then refcount 0 with a hold timer.
	local during after
	during=$(sed -n '/While a job uses the image/,/After the job/p' <<<"$output")
	after=$(sed -n '/After the job/,/keeps running/p' <<<"$output")
	grep -q "image: *$img\$" <<<"$during"
	grep -q 'refcount: *1$' <<<"$during"
	grep -q 'users: *job_[0-9]*\.0$' <<<"$during"
	grep -q "mounts: *$img on /user-environment\$" <<<"$during"
	grep -q 'processes: *[1-9]' <<<"$during"
	grep -q "image: *$img\$" <<<"$after"
	grep -q 'refcount: *0$' <<<"$after"
	grep -q 'hold timer: *[0-9].* remaining$' <<<"$after"
	# How to use it, and how to stop it.
	grep -q "\. $HPCN_DEMO_STATE/env" <<<"$output"
	grep -q 'contrib/demo.sh stop' <<<"$output"

	# It ran the installed programs, not the build tree's.
	local helper_pid
	helper_pid=$(cat "$T/pids/helper")
	[[ $(readlink "/proc/$helper_pid/exe") == "$HPCN_DEMO_PREFIX/sbin/hpc-node-helper" ]]
	grep -q "^PlugStackConfig=$T/plugstack.conf\$" "$T/slurm.conf"
	grep -qx "required $HPCN_DEMO_PREFIX/lib/x86_64-linux-gnu/slurm-wlm/spank_hpc_node.so .*" \
		"$T/plugstack.conf"
	# The commands' own output stays in the log, not on the terminal.
	[[ $output != *"-- Installing"* && $output != *"slurmd:"* ]]
	grep -q -- '-- Installing' "$HPCN_DEMO_LOG"
}

@test "a second demo.sh while it runs reuses the cluster" {
	local T
	T=$(cat "$BATS_FILE_TMPDIR/T")
	run --separate-stderr "$REPO/contrib/demo.sh"
	printf '%s\n' "$output" "$stderr"
	[ "$status" -eq 0 ]
	grep -q "already running (cluster in $T)" <<<"$output"
	[[ $(state_get T) == "$T" ]]
	run --separate-stderr "$REPO/contrib/demo.sh" status
	[ "$status" -eq 0 ]
	grep -q "running (cluster in $T)" <<<"$output"
}

@test "the cluster left running serves the commands the demo prints" {
	# As root, with the printed environment.
	run --separate-stderr bash -c ". '$HPCN_DEMO_STATE/env' && cd /tmp &&
		srun --uenv=\$HPCN_DEMO_IMAGE --view=tools hpcn-tool &&
		hpc-nodectl status"
	printf '%s\n' "$output" "$stderr"
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == 'hpcn-tool image=demo' ]]
	grep -q '^Ready: *yes$' <<<"$output"
	# As the demo user, with the printed wrapper.
	run --separate-stderr "$HPCN_DEMO_STATE/as-demo-user" \
		srun --uenv="$(state_get IMAGE)" --view=default sh -c 'echo "$(id -un) $(command -v hello)"'
	printf '%s\n' "$output" "$stderr"
	[ "$status" -eq 0 ]
	[[ $output == "$HPCN_DEMO_USER /user-environment/bin/hello" ]]
}

@test "demo.sh stop removes everything: processes, mounts, loop devices, cgroups, user" {
	local T cg img
	T=$(cat "$BATS_FILE_TMPDIR/T")
	cg=$(cat "$BATS_FILE_TMPDIR/cgroup")
	img=$T/images/demo.sqfs
	[[ -n $cg && -d $cg ]]
	# Something to clean: an image mounted (refcount 0, on its hold timer).
	[[ $(count_loop_devices_for "$img") -ge 1 ]]
	run --separate-stderr "$REPO/contrib/demo.sh" stop
	printf '%s\n' "$output" "$stderr"
	[ "$status" -eq 0 ]
	grep -q "stopping the cluster in $T" <<<"$output"
	cluster_assert_gone "$T" "$cg"
	[[ $(count_loop_devices_for "$img") -eq 0 ]]
	losetup -n -O NAME,BACK-FILE -l >"$BATS_FILE_TMPDIR/loops"
	! grep -qF "$T/" "$BATS_FILE_TMPDIR/loops" || { cat "$BATS_FILE_TMPDIR/loops"; false; }
	[[ -z $(_cl_mounts_under "$T") ]]
	[[ ! -e $cg ]]
	[[ ! -e $HPCN_DEMO_STATE ]]
	run id -u "$HPCN_DEMO_USER"
	[ "$status" -ne 0 ]
	# No process of it, whatever its name, and none of its user.
	[[ -z $(pgrep -f -- "$T") ]]
	[[ -z $(pgrep -U "$(cat "$BATS_FILE_TMPDIR/uid")") ]]
}

@test "demo.sh stop when nothing runs says so and succeeds" {
	run --separate-stderr "$REPO/contrib/demo.sh" stop
	[ "$status" -eq 0 ]
	[[ $output == *"not running"* ]]
}

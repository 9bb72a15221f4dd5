#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
#
# --export=NONE (sites run it so that jobs do not depend on the login
# node's environment): the plugin must not depend on the user's environment
# reaching the node. With --export=NONE Slurm carries only SLURM_* variables
# of the submitting side (sbatch(1)); in Slurm 22.05 sbatch also drops its
# own copy of a SPANK option for the batch step (_SLURM_SPANK_OPTION_*) and
# keeps only SLURM_SPANK__SLURM_SPANK_OPTION_*. srun steps started from a
# batch script submitted with --export=NONE inherit it (SLURM_EXPORT_ENV).
# shellcheck disable=SC2016,SC2154 # $VARS in single quotes are for the jobs; bats sets $stderr

bats_require_minimum_version 1.5.0

load lib/cluster
load lib/images
load lib/plugin

_plugstack() { # extra plugin arguments
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=5 $*"
}

setup_file() {
	cluster_start
	plugin_images
	_plugstack
}

teardown_file() {
	cluster_stop_checked
}

teardown() {
	cluster_dump_logs_on_failure
	plugin_cancel_jobs
}

# Nothing of job ID is left on the node once the hold time (2 s) is over.
_nothing_left() { # jobid
	plugin_wait_no_allocation "job_$1"
	wait_for -t 10 plugin_no_mounts
	wait_for -t 5 plugin_no_loop_devices
}

# sbatch as the test user with the environment VAR=VALUE... and SBATCH-ARGS;
# waits for the job's epilog; prints the job's id, then its output.
_sbatch_out() { # name [VAR=VALUE...] -- sbatch-args...
	local name=$1 id vars=()
	shift
	while [[ $1 != -- ]]; do
		vars+=("$1")
		shift
	done
	shift
	id=$(as_user env "${vars[@]}" sbatch --parsable -o "$HPCN_WORK/$name-%j.out" \
		-e "$HPCN_WORK/$name-%j.out" "$@") || return 1
	[[ $id =~ ^[0-9]+$ ]] || return 1
	wait_for -t 30 cluster_epilog_ran "$id" || return 1
	echo "$id"
	cat "$HPCN_WORK/$name-$id.out"
}

@test "srun --export=NONE --uenv: the image is mounted, the user's environment is not there, nothing leaks" {
	local id
	run --separate-stderr as_user env HPCN_FROM_LOGIN=yes srun --export=NONE --uenv="$IMG_APP" \
		/bin/sh -c '/user-environment/bin/hello none; echo "job=$SLURM_JOB_ID";
			grep " /user-environment " /proc/self/mountinfo; /usr/bin/env'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$(uenv_hello_marker app none)" ]
	[[ ${lines[2]} == *" / /user-environment ro,nosuid,nodev"*" - squashfs /dev/loop"* ]]
	# --export=NONE took effect: the login side's variable is not there
	# (else this test proves nothing), nor anything the plugin passed on.
	! grep -q '^HPCN_FROM_LOGIN=' <<<"$output" || false
	! grep -q 'HPCN_UENV_' <<<"$output" || false
	id=${lines[1]#job=}
	[[ $id =~ ^[0-9]+$ ]]
	_nothing_left "$id"
}

@test "srun --export=NONE --view: the views apply to an environment without the user's PATH" {
	run --separate-stderr as_user srun --export=NONE --uenv="$IMG_APP" --view=default \
		/bin/sh -c 'hello bare; echo "PATH=$PATH"; echo "HPCN_DEMO=$HPCN_DEMO"'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$(uenv_hello_marker app bare)" ]
	# Only the view's directory: nothing of the login side's PATH.
	[ "${lines[1]}" = PATH=/user-environment/bin ]
	[ "${lines[2]}" = HPCN_DEMO=1 ]
	# Two views in order, as without --export=NONE.
	run --separate-stderr as_user srun --export=NONE --uenv="$IMG_APP" --view=default,tools \
		/bin/sh -c 'hpcn-tool; echo "PATH=$PATH"; echo "HPCN_TOOLS=$HPCN_TOOLS"; echo "HPCN_DEMO=${HPCN_DEMO-<unset>}"'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "hpcn-tool image=app
PATH=/user-environment/bin:/user-environment/tools/bin
HPCN_TOOLS=app
HPCN_DEMO=<unset>" ]
}

@test "SLURM_UENV and SLURM_UENV_VIEW set by the user work with srun --export=NONE; the command line wins" {
	run --separate-stderr as_user env SLURM_UENV="$IMG_APP" SLURM_UENV_VIEW=default \
		srun --export=NONE /bin/sh -c 'hello env; echo "PATH=$PATH"'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker app env)
PATH=/user-environment/bin" ]
	run --separate-stderr as_user env SLURM_UENV="$IMG_APP" srun --export=NONE --uenv="$IMG_OTHER" \
		/user-environment/bin/hello cli
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker other cli)" ]
}

@test "sbatch --export=NONE --uenv --view: the batch script and its srun steps get the image and the views" {
	# The steps inherit --export=NONE from the batch script (SLURM_EXPORT_ENV).
	run --separate-stderr _sbatch_out sb-none HPCN_FROM_LOGIN=yes -- --export=NONE \
		--uenv="$IMG_APP" --view=default --wrap '
		hello batch; echo "batch PATH=${PATH%%:*} DEMO=$HPCN_DEMO EXPORT=$SLURM_EXPORT_ENV"
		/usr/bin/env | /bin/grep -E "^(HPCN_FROM_LOGIN|SLURM_HPCN_|HPCN_UENV_|_SLURM_SPANK)"
		srun /bin/sh -c "hello step; echo step PATH=\$PATH"
		srun --uenv='"$IMG_OTHER"' /user-environment/bin/hello own
		srun /user-environment/bin/hello again
		srun /bin/sh -c "/usr/bin/env | /bin/grep -E \"^(SLURM_HPCN_|HPCN_UENV_)\"; exit 0"'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "$(uenv_hello_marker app batch)" ]
	[ "${lines[2]}" = "batch PATH=/user-environment/bin DEMO=1 EXPORT=NONE" ]
	[ "${lines[3]}" = "$(uenv_hello_marker app step)" ]
	[ "${lines[4]}" = "step PATH=/user-environment/bin" ]
	[ "${lines[5]}" = "$(uenv_hello_marker other own)" ]
	[ "${lines[6]}" = "$(uenv_hello_marker app again)" ]
	[ "${#lines[@]}" -eq 7 ]
	_nothing_left "${lines[0]}"
}

@test "SBATCH_UENV and SBATCH_UENV_VIEW with sbatch --export=NONE: read by sbatch, used by the batch script and its steps" {
	# SLURM_UENV reaches the node (SLURM_*), but the batch script's steps
	# use what the batch script used, as without --export=NONE.
	run --separate-stderr _sbatch_out sbenv-none SBATCH_UENV="$IMG_APP" SBATCH_UENV_VIEW=default \
		SLURM_UENV="$IMG_OTHER" -- --export=NONE --wrap '
		hello batch; echo "DEMO=$HPCN_DEMO"
		srun /bin/sh -c "hello step; echo DEMO=\$HPCN_DEMO"
		/usr/bin/env | /bin/grep -E "^(SLURM_HPCN_|HPCN_UENV_)"; exit 0'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "$(uenv_hello_marker app batch)" ]
	[ "${lines[2]}" = DEMO=1 ]
	[ "${lines[3]}" = "$(uenv_hello_marker app step)" ]
	[ "${lines[4]}" = DEMO=1 ]
	[ "${#lines[@]}" -eq 5 ]
	_nothing_left "${lines[0]}"
}

@test "repository=: sbatch --export=NONE gets the image resolved at submission, even when 'latest' moves" {
	local R=$HPCN_T/repo-moving id out=$HPCN_WORK/held-none.out
	mkdir -p "$R/app/1.0" "$R/app/2.0"
	cp "$IMG_APP" "$R/app/1.0/latest.squashfs"
	cp "$IMG_OTHER" "$R/app/2.0/latest.squashfs"
	ln -sfn 1.0 "$R/app/latest"
	chmod -R a+rX "$R"
	_plugstack "repository=$R"
	id=$(as_user sbatch --parsable --hold --export=NONE --uenv=app -o "$out" -e "$out" \
		--wrap '/user-environment/bin/hello held; srun /user-environment/bin/hello step')
	[[ $id =~ ^[0-9]+$ ]]
	ln -sfn 2.0 "$R/app/latest"
	scontrol release "$id"
	wait_for -t 30 cluster_epilog_ran "$id"
	cat "$out"
	# The batch script: what sbatch resolved (the node would find 2.0 now).
	[ "$(head -n 1 "$out")" = "$(uenv_hello_marker app held)" ]
	# Its step resolves the name again, at its srun (as without --export=NONE).
	[ "$(sed -n 2p "$out")" = "$(uenv_hello_marker other step)" ]
	_plugstack
}

# ---- refusals -------------------------------------------------------------

@test "with --export=NONE, refusals still name the problem, and leave nothing" {
	local I=$HPCN_T/images
	plugin_refused_before_job "--uenv: image $I/nosuch.sqfs not found" \
		--export=NONE --uenv="$I/nosuch.sqfs" /bin/true
	plugin_refused_before_job "--view needs --uenv (or SLURM_UENV)" --export=NONE --view=default /bin/true
	plugin_refused_before_job "--uenv: '$IMG_APP:/etc': mount point /etc is not allowed (allowed: /user-environment, /user-tools)" \
		--export=NONE --uenv="$IMG_APP:/etc" /bin/true
	# The node's refusal (views live in the image), once per node.
	run --separate-stderr as_user srun --export=NONE -n 2 --uenv="$IMG_APP" --view=nosuch /bin/true
	echo "$stderr"
	[ "$status" -ne 0 ]
	[ "$(grep -c "hpc-node: --view: view 'nosuch' not found (available: app:default, app:tools)" <<<"$stderr")" -eq 1 ]
	# sbatch refuses before submitting, with SBATCH_UENV as with --uenv.
	run --separate-stderr as_user sbatch --export=NONE --uenv="$I/nosuch.sqfs" --wrap /bin/true
	[ "$status" -ne 0 ]
	[[ $stderr == *"hpc-node: --uenv: image $I/nosuch.sqfs not found"* ]]
	[[ $stderr != *"Submitted batch job"* && $output != *"Submitted batch job"* ]]
	run --separate-stderr as_user env SBATCH_UENV="$I/nosuch.sqfs" sbatch --export=NONE --wrap /bin/true
	[ "$status" -ne 0 ]
	[[ $stderr == *"hpc-node: --uenv: image $I/nosuch.sqfs not found"* ]]
	# A batch script whose view is unknown fails with the reason in its output.
	run --separate-stderr _sbatch_out badview-none -- --export=NONE --uenv="$IMG_APP" --view=nosuch \
		--wrap '/user-environment/bin/hello never'
	echo "$output $stderr"
	[[ $output == *"hpc-node: --view: view 'nosuch' not found"* ]]
	[[ $output != *"hpcn-hello"* ]]
	wait_for -t 10 eval '[ "$(helper_status_json | jq ".allocations | length")" -eq 0 ]'
	wait_for -t 10 plugin_no_mounts
	wait_for -t 5 plugin_no_loop_devices
}

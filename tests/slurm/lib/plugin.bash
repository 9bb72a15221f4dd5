# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash disable=SC2016
#
# Helpers for the tests of spank_hpc_node.so (1x-plugin*.bats), on top of
# lib/cluster.bash and lib/images.bash.
#
#   plugin_images              build the test images, export IMG_APP (name app,
#                              /user-environment), IMG_OTHER (other,
#                              /user-environment), IMG_TOOLS (tools, /user-tools)
#   plugin_refused_before_job MSG SRUN-ARGS...
#                              srun SRUN-ARGS as the test user fails, prints the
#                              line "srun: error: hpc-node: MSG", and no job
#                              started (no job id, no prolog)
#   plugin_wait_no_allocation GROUP   wait (60 s at most) until the helper has no
#                              allocation of GROUP (e.g. job_12)
#   plugin_no_mounts           the helper holds no uenv mount
#   plugin_no_loop_devices     no loop device is backed by a test image
#   plugin_cancel_jobs         cancel the test user's jobs, wait until none is left

plugin_images() {
	local d=$HPCN_T/images
	make_uenv_image "$d/app.sqfs" app /user-environment || return 1
	make_uenv_image "$d/other.sqfs" other /user-environment || return 1
	make_uenv_image "$d/tools.sqfs" tools /user-tools || return 1
	export IMG_APP=$d/app.sqfs IMG_OTHER=$d/other.sqfs IMG_TOOLS=$d/tools.sqfs
}

_plugin_prolog_count() {
	[[ -f $HPCN_MARKERS/prolog.log ]] || { echo 0; return; }
	wc -l <"$HPCN_MARKERS/prolog.log"
}

plugin_refused_before_job() {
	local msg=$1 before out rc
	shift
	before=$(_plugin_prolog_count)
	out=$(as_user srun "$@" 2>&1) && rc=0 || rc=$?
	if ((rc == 0)); then
		printf '# srun %s: exit 0, expected a refusal:\n%s\n' "$*" "$out" >&2
		return 1
	fi
	if ! grep -qxF "srun: error: hpc-node: $msg" <<<"$out"; then
		printf '# srun %s: no line "srun: error: hpc-node: %s" in:\n%s\n' "$*" "$msg" "$out" >&2
		return 1
	fi
	if grep -qE 'job [0-9]+' <<<"$out" || (($(_plugin_prolog_count) != before)); then
		printf '# srun %s: a job started before the refusal:\n%s\n' "$*" "$out" >&2
		return 1
	fi
}

_plugin_has_allocation() { # group
	helper_status_json | jq -e --arg g "$1" 'any(.allocations[]; .group == $g)' >/dev/null
}

plugin_wait_no_allocation() {
	wait_for -t 60 eval "! _plugin_has_allocation '$1'" || {
		helper_status_json | jq -c '.allocations' >&2
		return 1
	}
}

plugin_no_mounts() {
	[[ $(helper_status_json | jq '.mounts | length') == 0 ]]
}

plugin_no_loop_devices() {
	local img
	for img in "$HPCN_T"/images/*.sqfs; do
		[[ $(count_loop_devices_for "$img") == 0 ]] || return 1
	done
}

# Sanitizer builds (HPCN_SLURM_PRELOAD set): slurmd runs the job prolog and
# epilog SPANK hooks in "slurmstepd spank prolog|epilog" with an environment
# of its own making, without LD_PRELOAD, and an instrumented plugin aborts
# there ("ASan runtime does not come first"), which drains the node. So
# slurmd runs in a mount namespace of its own where /usr/sbin/slurmstepd is
# a wrapper that preloads the runtimes (the host sees nothing of it; the
# namespace goes with slurmd and its slurmstepds). Replaces
# cluster.bash's _cl_start_slurmd for the files that load this one.
if [[ -n ${HPCN_SLURM_PRELOAD:-} ]]; then
	_cl_start_slurmd() {
		local real=$HPCN_T/slurmstepd.real wrap=$HPCN_T/slurmstepd-preload
		local stepd pre=()
		mapfile -t pre < <(_cl_preload_env)
		stepd=$(command -v slurmstepd || echo /usr/sbin/slurmstepd)
		{
			echo '#!/bin/bash'
			printf 'export %q\n' "${pre[@]}"
			# Its own name: slurmstepd's process titles stay the same.
			printf 'exec -a "$0" %q "$@"\n' "$real"
		} >"$wrap"
		chmod 0755 "$wrap"
		: >"$real"
		unshare --mount --propagation slave sh -c '
			mount --bind "$1" "$2" && mount --bind "$3" "$1" || exit 1
			shift 3
			exec "$@"' _ "$stepd" "$real" "$wrap" \
			env "${pre[@]}" slurmd -D -f "$SLURM_CONF" -N localhost \
			</dev/null >>"$HPCN_LOGS/slurmd.stderr" 2>&1 3>&- &
		echo $! >"$HPCN_T/pids/slurmd"
	}
fi

# For teardown(): a failed test must not leave jobs that hold the node
# for the next ones.
plugin_cancel_jobs() {
	[[ -n $(squeue -h -o %A 2>/dev/null) ]] || return 0
	scancel -u "$HPCN_TEST_USER" 2>/dev/null
	wait_for -t 60 _cl_no_jobs
}

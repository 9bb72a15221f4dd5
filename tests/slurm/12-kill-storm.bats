#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
#
# The helper SIGKILLed at random moments, 20 times, under 50 concurrent
# steps that read their image all along: no started step fails, the mount
# they use stays (the same loop device, never remounted), and after each
# restart the image's refcount is exact: it equals the number of live
# allocations that use the image, which equals the number of running steps,
# and every step reads its image again after each restart. Afterwards
# nothing is left once the hold time is over. The single-kill version is the
# first test of 11-plugin-faults.bats.
#
# No step assumes a speed: the steps read until the test says the storm is
# over (storm.stop), and they stop by themselves only when the test is gone
# (its lock on storm.alive is released with its process), however long the
# storm takes on a loaded machine. Every wait is for a condition, bounded by
# a generous wall-clock limit that only keeps a hung run from hanging.
# shellcheck disable=SC2016,SC2154 # $VARS in single quotes are for the jobs

bats_require_minimum_version 1.5.0

load lib/cluster
load lib/images
load lib/plugin

STORM_STEPS=50
STORM_KILLS=20

setup_file() {
	# One CPU per job: the 50 jobs run at once without relying on
	# OverSubscribe (more CPUs than the machine has is fine, see
	# cluster.bash: config_overrides).
	export HPCN_SLURM_CPUS=64
	cluster_start
	plugin_images
	# Generous limits (a loaded machine): they only guard against hangs.
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=60 connect_timeout=30000"
}

teardown_file() {
	local T=$HPCN_T cg=$HPCN_CGROUP_ROOT
	cluster_stop
	cluster_assert_gone "$T" "$cg"
}

teardown() {
	cluster_dump_logs_on_failure
	# STORM_KEEP=DIR: keep the logs, the steps' output and the audit log.
	if [[ -n ${STORM_KEEP:-} ]]; then
		mkdir -p "$STORM_KEEP" &&
			cp -a "$HPCN_LOGS" "$HPCN_WORK" "$HPCN_HELPER_AUDIT" "$STORM_KEEP/"
	fi
	plugin_cancel_jobs
	_storm_kill_sruns
	_storm_release
	# A failed storm may leave the helper dead: the next run of a test (or
	# cluster_stop's checks) expects one.
	_cl_alive "$(_cl_pid_of helper)" || cluster_start_helper
	rm -f "$HPCN_WORK"/storm.*
}

# hpc-nodectl status with a generous timeout (the default, 5 s, is not
# one on a loaded machine while the restarted helper reconciles 50 steps).
_storm_status() {
	"$HPCN_NODECTL" --socket "$HPCN_SOCKET" --timeout 60000 status --json
}

# _storm_hold: lock storm.alive for as long as this test's process lives
# (flock -o: the lock is flock's own, not tail's; tail --pid ends with the
# test's process, and so does flock and its lock, also when the test is
# SIGKILLed and no teardown runs). The steps test the lock: while it is held,
# the test is there to stop them.
_storm_hold() {
	local me=$BASHPID f=$HPCN_WORK/storm.alive
	: >"$f"
	chmod 0644 "$f"
	flock -o -x "$f" tail --pid="$me" -f /dev/null </dev/null >/dev/null 2>&1 3>&- &
	echo $! >"$HPCN_WORK/storm.holder"
	# Held once a non-blocking attempt conflicts (exit 75).
	wait_for -t 60 eval "flock -n -E 75 -s '$f' true; ((\$? == 75))"
}

# _storm_release: end the holder (flock and its tail), by their pids.
_storm_release() {
	local pid tail kids=()
	[[ -s $HPCN_WORK/storm.holder ]] || return 0
	pid=$(tr -dc 0-9 <"$HPCN_WORK/storm.holder")
	[[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == flock ]] || return 0
	read -ra kids <"/proc/$pid/task/$pid/children" 2>/dev/null
	for tail in "${kids[@]}"; do
		[[ $(cat "/proc/$tail/comm" 2>/dev/null) == tail ]] && kill "$tail" 2>/dev/null
	done
	kill "$pid" 2>/dev/null
	wait_for -t 60 eval "! _cl_alive $pid" || true
}

# The sruns still alive (by the pids they wrote, checked to be srun): scancel
# normally ended them; a hung one must not outlive the test.
_storm_kill_sruns() {
	local f pid
	for f in "$HPCN_WORK"/storm.srun.*; do
		[[ -s $f ]] || continue
		pid=$(tr -dc 0-9 <"$f")
		[[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == srun ]] || continue
		echo "# killing srun $pid ($f)" >&2
		kill -KILL "$pid" 2>/dev/null
	done
}

_storm_started() { # -> number of steps whose first read succeeded
	local f n=0
	for f in "$HPCN_WORK"/storm.started.*; do
		[[ -s $f ]] && n=$((n + 1))
	done
	echo "$n"
}

# The number of reads of each step, one per line, by step number.
_storm_reads() {
	local i r
	for ((i = 0; i < STORM_STEPS; i++)); do
		# Read again when caught between the step's truncation and write.
		r=""
		read -r r <"$HPCN_WORK/storm.reads.$i" 2>/dev/null ||
			read -r r <"$HPCN_WORK/storm.reads.$i" 2>/dev/null || true
		echo "${r:-0}"
	done
}

# _storm_read_since "COUNTS": every step's read count is above its count in
# COUNTS (from _storm_reads): each has read its image since then.
_storm_read_since() {
	local -a was now
	local i
	mapfile -t was <<<"$1"
	mapfile -t now < <(_storm_reads)
	for ((i = 0; i < STORM_STEPS; i++)); do
		((now[i] > was[i])) || return 1
	done
}

# The job ids of the started steps, one per line, sorted.
_storm_job_ids() {
	cat "$HPCN_WORK"/storm.started.* | sort -n
}

# Number of the sruns (by their recorded pids) that are still running.
_storm_sruns_alive() {
	local f pid n=0
	for f in "$HPCN_WORK"/storm.srun.*; do
		pid=$(tr -dc 0-9 <"$f")
		[[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == srun ]] && n=$((n + 1))
	done
	echo "$n"
}

# For each srun not running: its number, pid, and what it printed.
_storm_sruns_gone() {
	local f pid i
	for f in "$HPCN_WORK"/storm.srun.*; do
		pid=$(tr -dc 0-9 <"$f")
		i=${f##*.}
		[[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == srun ]] ||
			printf ' [step %s, srun pid %s, stdout: %s stderr: %s]' "$i" "$pid" \
				"$(tr '\n' ' ' <"$HPCN_WORK/storm.out.$i")" \
				"$(tr '\n' ' ' <"$HPCN_WORK/storm.err.$i")"
	done
}

# The squashfs mount of loop device DEV under the helper's mount base, from
# the host's mountinfo.
_storm_kernel_mount() { # dev
	awk -v base="$HPCN_MOUNT_BASE/" -v dev="$1" \
		'index($5, base) == 1 && $0 ~ / - squashfs / && $(NF - 1) == dev { print $5 }' \
		/proc/self/mountinfo
}

# _storm_check ROUND LOOP: the exact state while all steps run, after the
# ROUND-th restart; LOOP is the loop device the image had before the storm.
# Prints every mismatch (with the status excerpt) and fails if there is one.
_storm_check() {
	local round=$1 loop=$2 st facts bad="" want_groups groups alive
	st=$(_storm_status) || {
		echo "# round $round: hpc-nodectl status failed" >&2
		return 1
	}
	facts=$(jq -c --arg i "$IMG_APP" '{
		pid: .pid,
		ready: .ready,
		allocations: (.allocations | length),
		allocs_using: [.allocations[] | select(any(.mounts[]; .image_path == $i))] | length,
		states: ([.allocations[].state] | unique),
		zombies: (.zombies | length),
		mounts: (.mounts | length),
		entries: [.mounts[] | select(.image_path == $i)] | length,
		refcount: ([.mounts[] | select(.image_path == $i) | .refcount] | add // 0),
		users: ([.mounts[] | select(.image_path == $i) | .users | length] | add // 0),
		loop: ([.mounts[] | select(.image_path == $i) | .loop_device] | first),
		hold: ([.mounts[] | select(.image_path == $i) | .hold_remaining_secs] | first)
	}' <<<"$st")
	want_groups=$(_storm_job_ids | sed 's/^/job_/' | sort)
	groups=$(jq -r '.allocations[].group' <<<"$st" | sort)
	alive=$(_storm_sruns_alive)

	_f() { jq -rc ".$1" <<<"$facts"; }
	[[ $(_f pid) == "$(_cl_pid_of helper)" ]] || bad+=" status from pid $(_f pid), not the new helper;"
	[[ $(_f ready) == true ]] || bad+=" helper not ready;"
	[[ $alive == "$STORM_STEPS" ]] || bad+=" $alive of $STORM_STEPS sruns still running:$(_storm_sruns_gone);"
	[[ $(_f allocations) == "$STORM_STEPS" ]] || bad+=" $(_f allocations) allocations;"
	[[ $(_f allocs_using) == "$STORM_STEPS" ]] || bad+=" $(_f allocs_using) allocations use the image;"
	[[ $groups == "$want_groups" ]] || bad+=" the allocations' groups are not the 50 jobs';"
	[[ $(_f states) == '["active"]' ]] || bad+=" allocation states $(_f states);"
	[[ $(_f zombies) == 0 ]] || bad+=" $(_f zombies) zombies;"
	[[ $(_f mounts) == 1 && $(_f entries) == 1 ]] ||
		bad+=" $(_f mounts) mounts, $(_f entries) of the image;"
	[[ $(_f refcount) == "$STORM_STEPS" ]] || bad+=" refcount $(_f refcount);"
	[[ $(_f users) == "$STORM_STEPS" ]] || bad+=" $(_f users) users of the mount;"
	[[ $(_f hold) == null ]] || bad+=" the mount is held (hold_remaining_secs $(_f hold));"
	[[ $(_f loop) == "$loop" ]] || bad+=" loop device $(_f loop), was $loop before the storm;"
	[[ $(count_loop_devices_for "$IMG_APP") == 1 ]] ||
		bad+=" $(count_loop_devices_for "$IMG_APP") loop devices back the image;"
	[[ -n $(_storm_kernel_mount "$loop") ]] ||
		bad+=" no squashfs mount of $loop under $HPCN_MOUNT_BASE;"
	if [[ -n $bad ]]; then
		echo "# round $round:$bad" >&2
		echo "# status: $facts" >&2
		diff <(echo "$want_groups") <(echo "$groups") | grep '^[<>]' | tr '\n' ' ' |
			sed 's/^/# groups (< running job without allocation, > allocation without job): /' >&2
		echo >&2
		jq -r '.allocations[] | "\(.group) \(.state) zombie=\(.zombie) \([.mounts[].image_path])"' \
			<<<"$st" | sort -V | tr '\n' ';' | sed 's/^/# allocations: /' >&2
		echo >&2
		jq -c '[.mounts[] | del(.users)]' <<<"$st" | sed 's/^/# mounts: /' >&2
		grep -E 'error|warn' "$HPCN_LOGS/helper.log" | grep -v 'cgroup controller' |
			tail -n 20 | sed 's/^/# helper.log: /' >&2
		unset -f _f
		return 1
	fi
	echo "# round $round: helper $(_f pid): refcount $STORM_STEPS = allocations using" \
		"the image = running steps; $loop mounted"
	unset -f _f
}

@test "helper SIGKILLed 20 times at random moments under 50 steps: no step fails, refcounts exact" {
	local i k ms pids=() rc loop end t0=$SECONDS failed="" out marker reads storm_t0 storm_secs
	# Each step: read the image's env.json every 0.2 s (exit 7 when it cannot:
	# the mount was lost), count its reads in storm.reads.N, mark its first
	# read, go on until the storm is over (storm.stop), then run a program of
	# the image. Every 25 reads it checks that the test still holds its lock
	# on storm.alive (flock exits 75 on the conflict): when it does not, the
	# test is gone and the step exits 8 instead of running forever.
	cat >"$HPCN_WORK/storm-step.sh" <<'EOF'
lost() { # what the task sees where its image should be
	echo "step $1: cannot read the image after $n reads: $(ls -ld /user-environment 2>&1);" \
		"$(grep -c ' /user-environment ' /proc/self/mountinfo) mount(s) there" >&2
	exit 7
}
n=0
while [ ! -e storm.stop ]; do
	{ read -r l1 && read -r l2; } </user-environment/meta/env.json || lost "$1"
	[ "$l2" = '"name": "app",' ] || lost "$1"
	[ $n -eq 0 ] && echo "$SLURM_JOB_ID" >"storm.started.$1"
	n=$((n + 1))
	echo "$n" >"storm.reads.$1"
	if [ $((n % 25)) -eq 0 ]; then
		flock -n -E 75 -s storm.alive true
		[ $? -eq 75 ] || { echo "step $1: the test is gone (storm.alive not locked)" >&2; exit 8; }
	fi
	sleep 0.2
done
echo "reads=$n"
exec /user-environment/bin/hello storm "$1"
EOF
	chmod 0644 "$HPCN_WORK/storm-step.sh"
	_storm_hold

	# 1. 50 jobs of one step each, all at once. The sh writes its pid and
	# becomes srun, so teardown can kill exactly these sruns.
	for ((i = 0; i < STORM_STEPS; i++)); do
		as_user sh -c 'echo $$ >"storm.srun.$1"; exec srun --uenv="$2" sh storm-step.sh "$1"' \
			_ "$i" "$IMG_APP" >"$HPCN_WORK/storm.out.$i" 2>"$HPCN_WORK/storm.err.$i" 3>&- &
		pids+=($!)
	done
	# 50 slurmstepds start slowly on 2 CPUs (under load, in sanitizer
	# builds): the limit only guards against a hang. Stop waiting as soon
	# as one srun is gone: its step cannot start.
	end=$((SECONDS + 600))
	while (($(_storm_started) < STORM_STEPS && SECONDS < end)); do
		for i in "${pids[@]}"; do kill -0 "$i" 2>/dev/null || break 2; done
		sleep 0.2
	done
	echo "# $(_storm_started) of $STORM_STEPS steps started in $((SECONDS - t0)) s"
	if (($(_storm_started) != STORM_STEPS)); then
		for ((i = 0; i < STORM_STEPS; i++)); do
			[[ -s $HPCN_WORK/storm.started.$i ]] ||
				echo "# step $i not started: $(tr '\n' ' ' <"$HPCN_WORK/storm.err.$i")"
		done
		echo "# sruns gone:$(_storm_sruns_gone)"
		false
	fi
	loop=$(_storm_status | jq -r --arg i "$IMG_APP" \
		'[.mounts[] | select(.image_path == $i) | .loop_device] | first')
	[[ $loop == /dev/loop* ]]
	_storm_check 0 "$loop"

	# 2. The storm: kill at a random moment (0.2-1.5 s after the last
	# restart: anywhere in the helper's reconciliation interval of 1 s, with
	# or without a status request in flight), restart, check.
	storm_t0=$SECONDS
	for ((k = 1; k <= STORM_KILLS; k++)); do
		ms=$((200 + RANDOM % 1301))
		sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
		# Sometimes with a status request in flight.
		((RANDOM % 2)) && { _storm_status >/dev/null 2>&1 3>&- & }
		reads=$(_storm_reads)
		cluster_stop_helper KILL
		cluster_start_helper
		# No "Killed" line from bash for it at the next kill.
		disown "$(_cl_pid_of helper)" 2>/dev/null || true
		_storm_check "$k" "$loop"
		# Each step reads its image again after the kill and the restart
		# (a step stuck on its mount would not).
		wait_for -t 120 _storm_read_since "$reads" || {
			echo "# round $k: steps without a read since the kill (step: reads then, now):" \
				"$(paste -d' ' <(seq 0 $((STORM_STEPS - 1))) <(echo "$reads") <(_storm_reads) |
					awk '$3 <= $2 { printf " %s: %s, %s;", $1, $2, $3 }')" >&2
			false
		}
	done
	storm_secs=$((SECONDS - storm_t0))
	echo "# storm of $STORM_KILLS kills lasted $storm_secs s"

	# 3. Every step goes on to the end: exit 0 and the image's program ran.
	touch "$HPCN_WORK/storm.stop"
	for ((i = 0; i < STORM_STEPS; i++)); do
		rc=0
		wait "${pids[i]}" || rc=$?
		out=$(cat "$HPCN_WORK/storm.out.$i")
		marker=$(uenv_hello_marker app storm "$i")
		# Nothing on stderr either: no warning of the plugin reached the user.
		if ((rc != 0)) || [[ $out != reads=*$'\n'"$marker" || -s $HPCN_WORK/storm.err.$i ]]; then
			failed+=" $i"
			echo "# step $i (job $(cat "$HPCN_WORK/storm.started.$i")): rc=$rc," \
				"stdout: $(tr '\n' ' ' <<<"$out") stderr: $(tr '\n' ' ' <"$HPCN_WORK/storm.err.$i")"
		fi
	done
	[[ -z $failed ]]
	# (That each step read its image all through the storm, after every
	# restart, was checked in each round: no rate is assumed.)
	echo "# all $STORM_STEPS steps exited 0; fewest reads by one step:" \
		"$(sed -n 's/^reads=//p' "$HPCN_WORK"/storm.out.* | sort -n | head -n 1)"

	# 4. The steps' ends reached the restarted helper: no allocation left,
	# then after the hold time (2 s) no mount and no loop device (the limits
	# only guard against hangs).
	wait_for -t 120 eval '[[ $(_storm_status | jq ".allocations | length") == 0 ]]' || {
		_storm_status | jq -c '[.allocations[] | {group, state, zombie}]' >&2
		false
	}
	wait_for -t 60 eval '[[ $(_storm_status | jq ".mounts | length") == 0 ]]'
	wait_for -t 60 plugin_no_loop_devices
	[[ -z $(_storm_kernel_mount "$loop") ]]
	echo "# done in $((SECONDS - t0)) s"
}

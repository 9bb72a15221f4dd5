#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
#
# spank_hpc_node.so in a real Slurm, with a healthy helper: --uenv and --view
# from srun and sbatch, their environment fallbacks, steps sharing one
# mount, concurrent steps with their own images, refusals of bad input
# (before the job starts when srun can tell), and the job epilog's cleanup.
# Jobs run as the unprivileged test user. Faults (helper or slurmstepd
# killed, helper absent, fallback=local, pid/net namespaces, cgroup=on) are
# in 11-plugin-faults.bats.
# shellcheck disable=SC2016,SC2154 # $VARS in single quotes are for the jobs; bats sets $stderr

bats_require_minimum_version 1.5.0

load lib/cluster
load lib/images
load lib/plugin

setup_file() {
	cluster_start
	plugin_images
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=60"
}

teardown_file() {
	cluster_stop_checked
}

teardown() {
	cluster_dump_logs_on_failure
	plugin_cancel_jobs
}

@test "srun --help lists --uenv and --view with their text" {
	run --separate-stderr as_user srun --help
	[ "$status" -eq 0 ]
	[[ $output == *"--uenv=IMAGE[:MOUNT][,...]"*"Mount uenv squashfs IMAGE"* ]]
	[[ $output == *"--view=VIEW[,...]"*"Apply the environment VIEW"* ]]
}

@test "srun --uenv mounts the image for the task only, and runs a program from it" {
	run --separate-stderr as_user srun --uenv="$IMG_APP" true
	[ "$status" -eq 0 ]
	run --separate-stderr as_user srun --uenv="$IMG_APP" /user-environment/bin/hello x y
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker app x y)" ]
	# Read-only, nosuid, nodev, in the task's namespace; not on the host.
	run --separate-stderr as_user srun --uenv="$IMG_APP" grep ' /user-environment ' /proc/self/mountinfo
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *" / /user-environment ro,nosuid,nodev"*" - squashfs /dev/loop"* ]]
	! grep -q ' /user-environment .* - squashfs ' /proc/self/mountinfo || false
	# The plugin's own variables stay out of the task's environment.
	run --separate-stderr as_user srun --uenv="$IMG_APP" env
	[ "$status" -eq 0 ]
	! grep -q '^HPCN_UENV_' <<<"$output" || false
}

@test "two images at two mount points are both visible" {
	run --separate-stderr as_user srun --uenv="$IMG_APP:/user-environment,$IMG_TOOLS:/user-tools" \
		sh -c '/user-environment/bin/hello a; /user-tools/bin/hello b'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker app a)"$'\n'"$(uenv_hello_marker tools b)" ]
}

@test "--view=default prepends the image's bin to PATH and sets HPCN_DEMO" {
	run --separate-stderr as_user srun --uenv="$IMG_APP" --view=default \
		sh -c 'showenv HPCN_DEMO; hello bare; echo "PATH=$PATH"'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = HPCN_DEMO=1 ]
	[ "${lines[1]}" = "$(uenv_hello_marker app bare)" ]
	[[ ${lines[2]} == PATH=/user-environment/bin:* ]]
	# Without --view nothing changes.
	run --separate-stderr as_user srun --uenv="$IMG_APP" /user-environment/bin/showenv HPCN_DEMO
	[ "$output" = "HPCN_DEMO=<unset>" ]
}

@test "--view=default,tools applies both in order: tools appends and unsets HPCN_DEMO" {
	run --separate-stderr as_user srun --uenv="$IMG_APP" --view=default,tools \
		sh -c 'showenv HPCN_DEMO HPCN_TOOLS; hpcn-tool; echo "PATH=$PATH"'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "HPCN_DEMO=<unset>" ]
	[ "${lines[1]}" = HPCN_TOOLS=app ]
	[ "${lines[2]}" = "hpcn-tool image=app" ]
	[[ ${lines[3]} == PATH=/user-environment/bin:*:/user-environment/tools/bin ]]
	# Two images with the same view names: IMAGENAME:VIEW picks one.
	run --separate-stderr as_user srun --uenv="$IMG_APP,$IMG_TOOLS:/user-tools" \
		--view=tools:default sh -c 'hello t; showenv HPCN_DEMO'
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker tools t)"$'\n'HPCN_DEMO=1 ]
}

@test "SLURM_UENV and SLURM_UENV_VIEW are the defaults; the command line wins" {
	run --separate-stderr as_user env SLURM_UENV="$IMG_APP" srun /user-environment/bin/hello env
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker app env)" ]
	run --separate-stderr as_user env SLURM_UENV="$IMG_APP" SLURM_UENV_VIEW=default \
		srun sh -c 'hello v'
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker app v)" ]
	run --separate-stderr as_user env SLURM_UENV="$IMG_APP" srun --uenv="$IMG_OTHER" \
		/user-environment/bin/hello cli
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker other cli)" ]
	# An empty SLURM_UENV is no request.
	run --separate-stderr as_user env SLURM_UENV= srun true
	[ "$status" -eq 0 ]
}

@test "sbatch --uenv: the batch script and its steps see the image; a step may name its own" {
	local id out
	cat >"$HPCN_WORK/uenv-batch.sh" <<EOF
#!/bin/sh
/user-environment/bin/hello batch
srun /user-environment/bin/hello step
srun --uenv=$IMG_OTHER /user-environment/bin/hello own
srun /user-environment/bin/hello again
EOF
	chmod 0755 "$HPCN_WORK/uenv-batch.sh"
	id=$(as_user sbatch --parsable --uenv="$IMG_APP" -o "$HPCN_WORK/uenv-batch-%j.out" -e /dev/null \
		"$HPCN_WORK/uenv-batch.sh")
	[[ $id =~ ^[0-9]+$ ]]
	out=$HPCN_WORK/uenv-batch-$id.out
	wait_for -t 120 cluster_epilog_ran "$id"
	cat "$out"
	[ "$(cat "$out")" = "$(uenv_hello_marker app batch)
$(uenv_hello_marker app step)
$(uenv_hello_marker other own)
$(uenv_hello_marker app again)" ]
}

@test "SBATCH_UENV and SBATCH_UENV_VIEW: the batch script and its steps use them" {
	local id out
	id=$(as_user env SBATCH_UENV="$IMG_APP" SBATCH_UENV_VIEW=default SLURM_UENV="$IMG_OTHER" \
		sbatch --parsable -o "$HPCN_WORK/sbatch-env-%j.out" -e /dev/null \
		--wrap 'hello batch; showenv HPCN_DEMO; srun sh -c "hello step; showenv HPCN_DEMO"')
	[[ $id =~ ^[0-9]+$ ]]
	out=$HPCN_WORK/sbatch-env-$id.out
	wait_for -t 120 cluster_epilog_ran "$id"
	cat "$out"
	[ "$(cat "$out")" = "$(uenv_hello_marker app batch)
HPCN_DEMO=1
$(uenv_hello_marker app step)
HPCN_DEMO=1" ]
}

@test "two concurrent steps of one job with different images each see only their own" {
	local id out
	# Each step waits until the other one is running (its file appears).
	id=$(as_user sbatch --parsable -n 2 -o "$HPCN_WORK/two-steps-%j.out" --wrap '
		step() { # image name other
			srun -n 1 --overlap --uenv="$1" sh -c "
				touch $2.started
				end=\$((\$(date +%s) + 300)); while [ ! -e $3.started ] && [ \$(date +%s) -lt \$end ]; do sleep 0.05; done
				[ -e $3.started ] || echo $2 never saw $3
				/user-environment/bin/hello $2 >$2.out"
		}
		step '"$IMG_APP"' one two & step '"$IMG_OTHER"' two one & wait')
	[[ $id =~ ^[0-9]+$ ]]
	wait_for -t 120 cluster_epilog_ran "$id"
	cat "$HPCN_WORK/two-steps-$id.out"
	[ ! -s "$HPCN_WORK/two-steps-$id.out" ]
	[ "$(cat "$HPCN_WORK/one.out")" = "$(uenv_hello_marker app one)" ]
	[ "$(cat "$HPCN_WORK/two.out")" = "$(uenv_hello_marker other two)" ]
	rm -f "$HPCN_WORK"/{one,two}.{started,out}
	plugin_wait_no_allocation "job_$id"
}

@test "20 concurrent steps on one image share one loop device; nothing left after the hold time" {
	local id max=0 n loops maxloops=0 end
	id=$(as_user sbatch --parsable -n 1 -o "$HPCN_WORK/twenty-%j.out" --wrap '
		for i in $(seq 20); do
			srun -n 1 --overlap --uenv='"$IMG_APP"' sh -c "
				/user-environment/bin/hello \$SLURM_STEP_ID >/dev/null || echo bad \$SLURM_STEP_ID
				touch go.\$SLURM_STEP_ID
				while [ ! -e twenty.stop ]; do sleep 0.1; done" &
		done
		wait')
	[[ $id =~ ^[0-9]+$ ]]
	# Until all 20 run; meanwhile one loop device, never more.
	end=$((SECONDS + 600)) # a bound against hangs: 20 slurmstepds start slowly under load
	while ((SECONDS < end)); do
		loops=$(count_loop_devices_for "$IMG_APP")
		((loops > maxloops)) && maxloops=$loops
		n=$(helper_status_json | jq --arg i "$IMG_APP" \
			'[.mounts[] | select(.image_path == $i) | .refcount] | add // 0')
		((n > max)) && max=$n
		((max == 20)) && [[ $(find "$HPCN_WORK" -name 'go.*' | wc -l) == 20 ]] && break
		sleep 0.1
	done
	echo "max refcount $max, max loop devices $maxloops"
	[ "$max" -eq 20 ]
	[ "$maxloops" -eq 1 ]
	[ "$(helper_status_json | jq '[.mounts[]] | length')" -eq 1 ]
	[ "$(helper_status_json | jq --arg j "job_$id" \
		'[.allocations[] | select(.group == $j)] | length')" -eq 20 ]
	as_user touch "$HPCN_WORK/twenty.stop"
	wait_for -t 120 cluster_epilog_ran "$id"
	[ ! -s "$HPCN_WORK/twenty-$id.out" ]
	rm -f "$HPCN_WORK"/go.* "$HPCN_WORK/twenty.stop"
	plugin_wait_no_allocation "job_$id"
	# After the hold time (2 s): no mount, no loop device.
	wait_for -t 120 plugin_no_mounts
	wait_for -t 120 plugin_no_loop_devices
}

# ---- bad input ----------------------------------------------------------

@test "bad --uenv and --view: a clear error in srun, before any job starts" {
	cp "$IMG_APP" "$HPCN_T/images/secret.sqfs"
	chown root:root "$HPCN_T/images/secret.sqfs"
	chmod 0600 "$HPCN_T/images/secret.sqfs"
	local I=$HPCN_T/images
	plugin_refused_before_job "--uenv: image $I/nosuch.sqfs not found" \
		--uenv="$I/nosuch.sqfs" true
	plugin_refused_before_job "--uenv: image 'secret.sqfs': cannot read $I/secret.sqfs: Permission denied" \
		--uenv="$I/secret.sqfs" true
	plugin_refused_before_job "--uenv: 'images/app.sqfs': image 'images/app.sqfs' is not an absolute path, and no image repository is configured" \
		--uenv=images/app.sqfs true
	plugin_refused_before_job "--uenv: '$IMG_APP:/etc': mount point /etc is not allowed (allowed: /user-environment, /user-tools)" \
		--uenv="$IMG_APP:/etc" true
	plugin_refused_before_job "--uenv: images '$IMG_APP' and '$IMG_OTHER' both mount at /user-environment" \
		--uenv="$IMG_APP,$IMG_OTHER" true
	plugin_refused_before_job "--uenv: empty argument" --uenv= true
	plugin_refused_before_job "--uenv: ',': image 1 is empty" --uenv=, true
	plugin_refused_before_job "--view needs --uenv (or SLURM_UENV)" --view=default true
	plugin_refused_before_job "--view: empty argument" --uenv="$IMG_APP" --view= true
	# The same checks in sbatch.
	run --separate-stderr as_user sbatch --uenv="$I/nosuch.sqfs" --wrap true
	[ "$status" -ne 0 ]
	[[ $stderr == *"hpc-node: --uenv: image $I/nosuch.sqfs not found"* ]]
	[[ $stderr != *"Submitted batch job"* && $output != *"Submitted batch job"* ]]
	[ "$(helper_status_json | jq '.allocations | length')" -eq 0 ]
}

@test "an unknown view fails the step with the views available, and leaves nothing" {
	# Views live in the image: only the node can check them.
	run --separate-stderr as_user srun -n 2 --uenv="$IMG_APP" --view=nosuch true
	echo "$stderr"
	[ "$status" -ne 0 ]
	[[ $stderr == *"hpc-node: --view: view 'nosuch' not found (available: app:default, app:tools)"* ]]
	# Once per node (one node here), not once per task.
	[ "$(grep -c "view 'nosuch' not found" <<<"$stderr")" -eq 1 ]
	wait_for -t 120 eval '[ "$(helper_status_json | jq ".allocations | length")" -eq 0 ]'
	wait_for -t 120 plugin_no_mounts
}

@test "the job epilog ends every allocation of the job" {
	local id
	id=$(as_user srun --uenv="$IMG_APP" sh -c 'echo $SLURM_JOB_ID')
	[[ $id =~ ^[0-9]+$ ]]
	wait_for -t 120 cluster_epilog_ran "$id"
	cluster_prolog_ran "$id"
	plugin_wait_no_allocation "job_$id"
	grep -q "hpc-node: job $id epilog: ended the allocations of job_$id" "$HPCN_LOGS/slurmd.log"
}

@test "repository=: NAME[/VERSION][:TAG] finds REPO/NAME/VERSION/TAG.squashfs, latest by default" {
	local R=$HPCN_T/repo
	mkdir -p "$R/app/1.0" "$R/other/2.0"
	cp "$IMG_APP" "$R/app/1.0/latest.squashfs"
	cp "$IMG_OTHER" "$R/other/2.0/v2.squashfs"
	ln -sfn 1.0 "$R/app/latest"
	chmod -R a+rX "$R"
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=60 repository=$R"
	run --separate-stderr as_user srun --uenv=app /user-environment/bin/hello repo
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker app repo)" ]
	run --separate-stderr as_user srun --uenv=other/2.0:v2 --view=default sh -c 'hello tagged'
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker other tagged)" ]
	plugin_refused_before_job "--uenv: image 'app/2.0' not found in repository $R (looked for $R/app/2.0/latest.squashfs)" \
		--uenv=app/2.0 true
	plugin_refused_before_job "--uenv: 'app/../x': invalid image name 'app/../x': more than one '/' (expected an absolute path or NAME[/VERSION][:TAG])" \
		--uenv=app/../x true
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=60"
}

@test "repository=: a job gets the image resolved at submission, even when 'latest' moves before it starts" {
	local R=$HPCN_T/repo-moving id out=$HPCN_WORK/held.out
	mkdir -p "$R/app/1.0" "$R/app/2.0"
	cp "$IMG_APP" "$R/app/1.0/latest.squashfs"
	cp "$IMG_OTHER" "$R/app/2.0/latest.squashfs"
	ln -sfn 1.0 "$R/app/latest"
	chmod -R a+rX "$R"
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=60 repository=$R"
	id=$(as_user sbatch --parsable --hold --uenv=app -o "$out" -e "$out" \
		--wrap '/user-environment/bin/hello held')
	[[ $id =~ ^[0-9]+$ ]]
	# The repository moves on while the job waits.
	ln -sfn 2.0 "$R/app/latest"
	scontrol release "$id"
	wait_for -t 120 cluster_epilog_ran "$id"
	cat "$out"
	[ "$(cat "$out")" = "$(uenv_hello_marker app held)" ]
	# A new submission gets the new latest.
	run --separate-stderr as_user srun --uenv=app /user-environment/bin/hello now
	[ "$status" -eq 0 ]
	[ "$output" = "$(uenv_hello_marker other now)" ]
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY ready_timeout=60"
}

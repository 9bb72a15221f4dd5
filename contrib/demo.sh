#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The one-command demo of hpc-node: a single-node Slurm on this machine with
# hpc-node-helper and the SPANK plugin, running `srun --uenv=IMAGE --view=NAME`
# as an unprivileged user. Run as root on Debian 12.
#
#   contrib/demo.sh [start]   install packages, build, install, start the
#                             cluster, run the demo jobs, leave it running
#   contrib/demo.sh stop      stop the cluster and remove all it made
#   contrib/demo.sh restart   stop, then start (e.g. after changing the code)
#   contrib/demo.sh uninstall stop, and remove the installed files
#   contrib/demo.sh status    is it running? how to use it
#
# What start does:
#   1. installs the Debian packages it needs (contrib/deps.sh: build + run)
#   2. builds with cmake in ./build-demo (the helper, hpc-nodectl, the plugin)
#   3. installs with `cmake --install ./build-demo --prefix /usr/local`: the
#      helper in /usr/local/sbin, hpc-nodectl in /usr/local/bin, the plugin in
#      /usr/local/lib/x86_64-linux-gnu/slurm-wlm, configuration examples in
#      /usr/local/etc (install_manifest.txt in the build directory lists
#      every file; the demo does not enable the systemd units)
#   4. starts munged, slurmctld, slurmd and hpc-node-helper, all under one
#      directory /tmp/hpcn-slurm.XXXXXX, on free ports, with their own
#      configuration (tests/slurm/lib/cluster.bash). The daemons run from the
#      INSTALLED files: the helper from PREFIX/sbin, the plugin from
#      PREFIX/lib/.../slurm-wlm, named by the installed plugstack snippet.
#      Nothing of the node's own Slurm, munge or /run/pact is touched.
#   5. makes a uenv image (squashfs with bin/hello and meta/env.json, views
#      'default' and 'tools') and a system user 'hpcdemo'
#   6. runs, as hpcdemo, `srun --uenv=IMAGE --view=default hello`, then a job
#      that holds the image while `hpc-nodectl status` shows its refcount 1,
#      then the status after the job: refcount 0, mounted until the hold
#      timer (60 s) expires
#
# A second start while the cluster runs reuses it (prints how to use it);
# a cluster left half-started or killed is stopped first. The cluster's
# directory is recorded in /run/hpc-node-demo/state for `stop`.
#
# Environment:
#   HPCN_DEMO_PREFIX     install prefix (default /usr/local)
#   HPCN_DEMO_BUILD_DIR  build directory (default ./build-demo); when it is
#                        already configured it is only brought up to date
#                        (the test suite passes its own build tree)
#   HPCN_DEMO_STATE      state directory (default /run/hpc-node-demo)
#   HPCN_DEMO_LOG        log of everything this script ran
#                        (default /var/tmp/hpc-node-demo.log)
#   HPCN_DEMO_USER       the unprivileged user (default hpcdemo)
#   HPCN_DEMO_NO_DEPS=1  do not check or install packages
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${HPCN_DEMO_PREFIX:-/usr/local}
build=${HPCN_DEMO_BUILD_DIR:-$here/build-demo}
state_dir=${HPCN_DEMO_STATE:-/run/hpc-node-demo}
log=${HPCN_DEMO_LOG:-/var/tmp/hpc-node-demo.log}
demo_user=${HPCN_DEMO_USER:-hpcdemo}
state=$state_dir/state
hold_time=60

# ---- output --------------------------------------------------------------

if [[ -t 1 ]]; then
	b=$'\e[1m' g=$'\e[32m' r=$'\e[31m' n=$'\e[0m'
else
	b="" g="" r="" n=""
fi
heading() { printf '\n%s== %s%s\n' "$b" "$*" "$n"; }
item() { printf '  %-11s %s\n' "$1" "$2"; }
indent() { sed 's/^/    /'; }
note() { printf '%s\n' "$*" >>"$log"; }
die() {
	printf '%sdemo.sh: %s%s\n' "$r" "$*" "$n" >&2
	if [[ -s $log ]]; then
		printf 'Last lines of %s:\n' "$log" >&2
		tail -n 25 "$log" | sed 's/^/  | /' >&2
	fi
	exit 1
}
# run LABEL CMD...: CMD's output goes to the log; a failure shows its end.
run() {
	local label=$1
	shift
	note "---- $label: $*"
	"$@" >>"$log" 2>&1 || die "$label failed: $*"
}

# ---- state ---------------------------------------------------------------

# Read KEY=VALUE lines of the state file into demo_T, demo_CGROUP, ...
load_state() {
	local k v
	demo_T="" demo_CGROUP="" demo_USER_CREATED=0 demo_USER="" demo_IMAGE="" demo_PREFIX=""
	demo_COMPLETE=0
	[[ -r $state ]] || return 1
	while IFS='=' read -r k v; do
		case $k in
		T) demo_T=$v ;;
		CGROUP) demo_CGROUP=$v ;;
		USER) demo_USER=$v ;;
		USER_CREATED) demo_USER_CREATED=$v ;;
		IMAGE) demo_IMAGE=$v ;;
		PREFIX) demo_PREFIX=$v ;;
		COMPLETE) demo_COMPLETE=$v ;;
		esac
	done <"$state"
	[[ -n $demo_T ]]
}

# The cluster named by the state file was completely set up and answers
# (its daemons live, slurmctld responds).
cluster_running() {
	load_state || return 1
	[[ $demo_COMPLETE == 1 && -d $demo_T ]] || return 1
	local p
	for p in slurmctld slurmd munged helper; do
		_cl_alive "$(cat "$demo_T/pids/$p" 2>/dev/null)" || return 1
	done
	SLURM_CONF=$demo_T/slurm.conf sinfo -h >/dev/null 2>&1
}

# ---- cluster.bash --------------------------------------------------------

HPCN_TEST_USER=$demo_user
# shellcheck source=tests/slurm/lib/cluster.bash
. "$here/tests/slurm/lib/cluster.bash"
# shellcheck source=tests/slurm/lib/images.bash
. "$here/tests/slurm/lib/images.bash"

# cluster.bash's helper.conf, with the contract's hold time (the harness uses
# 2 s to keep tests short): the status then shows the timer running.
demo_helper_conf() {
	sed -i "s/^hold_time = .*/hold_time = $hold_time/" "$1"
}

# ---- start ---------------------------------------------------------------

# The installed file whose path ends with SUFFIX (from install_manifest.txt).
installed() {
	local f
	f=$(grep -E -- "$1\$" "$build/install_manifest.txt" | head -n 1)
	[[ -n $f && -e $f ]] || die "no installed file matching '$1' in $build/install_manifest.txt"
	printf '%s\n' "$f"
}

refcount_is() { # image count
	"$nodectl" --socket "$HPCN_SOCKET" status 2>/dev/null |
		awk -v img="$1" -v want="$2" '
			$1 == "image:" { cur = ($2 == img) }
			cur && $1 == "refcount:" && $2 == want { found = 1 }
			END { exit !found }'
}

# The lines of `hpc-nodectl status` from the section named by PATTERN.
status_section() { # from-regex [to-regex]
	"$nodectl" --socket "$HPCN_SOCKET" status |
		awk -v from="$1" -v to="${2:-^Zombies:}" '
			$0 ~ from { on = 1 } on && $0 ~ to { exit }
			on && /^$/ { blank++; next }
			on { while (blank > 0) { print ""; blank-- } print }'
}

print_usage() {
	heading "The demo cluster keeps running"
	item "Directory" "$demo_T (logs in log/)"
	item "Image" "$demo_IMAGE"
	item "Log" "$log"
	cat <<EOF

  Use it as root (the environment names the cluster, the helper's socket and
  the image), or as $demo_user with $state_dir/as-demo-user:

    . $state_dir/env
    srun --uenv=\$HPCN_DEMO_IMAGE --view=default hello
    srun --uenv=\$HPCN_DEMO_IMAGE --view=tools hpcn-tool
    $state_dir/as-demo-user srun --uenv=\$HPCN_DEMO_IMAGE --view=default showenv PATH
    hpc-nodectl status

  Stop it and remove everything it made:   $0 stop
EOF
}

start() {
	local t0=$SECONDS created=0 out line plugin_line helper nodectl_i plugin snippet bg
	if cluster_running; then
		printf '%shpc-node demo: already running%s (cluster in %s)\n' "$b" "$n" "$demo_T"
		print_usage
		return 0
	fi
	if load_state || [[ -e $state_dir ]]; then
		printf 'A previous demo was left half-started or stopped: cleaning it up first.\n'
		stop quiet
	fi

	mkdir -p "$(dirname "$log")"
	: >"$log"
	printf '%shpc-node demo%s: a one-node Slurm with hpc-node-helper and the SPANK plugin\n' \
		"$b" "$n"
	item "Log" "$log"

	heading "Setting up"
	if [[ ${HPCN_DEMO_NO_DEPS:-0} != 1 ]]; then
		# shellcheck source=contrib/deps.sh
		. "$here/contrib/deps.sh"
		run "packages" hpcn_deps_install demo.sh build run
		item "Packages" "present (contrib/deps.sh)"
	fi

	if [[ ! -f $build/CMakeCache.txt ]]; then
		run "cmake configure" cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
			-DHPCN_BUILD_TESTS=OFF -DHPCN_BUILD_BENCH=OFF
	fi
	# Only what the demo installs: a half-finished module elsewhere in the
	# tree does not stop it.
	run "build" cmake --build "$build" -j "$(nproc)" --target hpcnode hpcnode_static \
		hpc-node-helper hpc-nodectl spank_hpc_node
	item "Build" "$build"

	run "install" cmake --install "$build" --prefix "$prefix"
	helper=$(installed /sbin/hpc-node-helper)
	nodectl_i=$(installed /bin/hpc-nodectl)
	plugin=$(installed /slurm-wlm/spank_hpc_node.so)
	snippet=$(installed /plugstack.conf.d/hpc-node.conf)
	item "Install" "$prefix (cmake --install; files: $build/install_manifest.txt)"

	# cluster.bash runs the helper and hpc-nodectl from HPCN_BUILD_DIR/helper:
	# a directory of links to the installed programs stands in for it.
	mkdir -p "$state_dir/installed/helper" "$state_dir/installed/spank"
	ln -sfn "$helper" "$state_dir/installed/helper/hpc-node-helper"
	ln -sfn "$nodectl_i" "$state_dir/installed/helper/hpc-nodectl"
	ln -sfn "$plugin" "$state_dir/installed/spank/spank_hpc_node.so"

	id -u "$demo_user" >/dev/null 2>&1 || created=1
	cluster_ensure_user || die "cannot create the user $demo_user"
	# srun loads the plugin as the user who runs it.
	runuser -u "$demo_user" -- test -r "$plugin" ||
		die "$demo_user cannot read $plugin: srun would fail to load it" \
			"(install into a prefix every user can read)"
	export HPCN_BUILD_DIR=$state_dir/installed
	# The cluster outlives this script: it is stale only when pid 1 changes
	# (a reboot), not when we exit.
	export HPCN_CLUSTER_OWNER=1
	export HPCN_HELPER_EXTRA=demo_helper_conf
	note "---- cluster_start"
	cluster_start >>"$log" 2>&1 || {
		[[ -n ${HPCN_T:-} ]] && write_state "$created"
		die "the cluster did not start (its logs: ${HPCN_LOGS:-?})"
	}
	write_state "$created"
	nodectl=$HPCN_NODECTL

	# The plugstack.conf line: the installed snippet's, uncommented, plus
	# where this cluster's helper listens.
	plugin_line=$(sed -n 's/^#\(required [^ ]*spank_hpc_node\.so.*\)$/\1/p' "$snippet")
	[[ -n $plugin_line ]] || die "$snippet has no '#required ...spank_hpc_node.so' line"
	plugin_line+=" socket=$HPCN_SOCKET ready_file=$HPCN_READY cgroup=on"
	note "---- plugstack.conf: $plugin_line"
	cluster_set_plugstack "$plugin_line" >>"$log" 2>&1 ||
		die "slurmd did not start with the plugin (see $HPCN_LOGS/slurmd.log)"
	item "Cluster" "munged, slurmctld :$HPCN_SLURMCTLD_PORT, slurmd :$HPCN_SLURMD_PORT, hpc-node-helper"
	item "" "(in $HPCN_T)"
	item "Plugin" "$plugin"
	item "" "(plugstack.conf: the installed snippet's line + socket=, ready_file=, cgroup=on)"

	image=$HPCN_T/images/demo.sqfs
	run "image" make_uenv_image "$image" demo
	echo "IMAGE=$image" >>"$state"
	demo_IMAGE=$image
	item "Image" "$image"
	item "" "squashfs: bin/hello, meta/env.json with views 'default' and 'tools'"
	item "User" "$demo_user (unprivileged$( ((created)) && echo ", created"))"
	write_env "$image" "$nodectl_i"
	note "cluster up after $((SECONDS - t0)) s"

	heading "As $demo_user: srun --uenv=$image --view=default hello from-hpc-node"
	out=$(as_user srun --uenv="$image" --view=default hello from-hpc-node 2>>"$log") ||
		die "srun --uenv failed (slurmd log: $HPCN_LOGS/slurmd.log, helper log: $HPCN_LOGS/helper.log)"
	printf '%s\n' "$out" | indent
	line=$(uenv_hello_marker demo from-hpc-node)
	grep -qxF "$line" <<<"$out" || die "expected the line '$line' from the image's bin/hello"
	printf '  %s(hello comes from the image: the view put /user-environment/bin first in PATH)%s\n' \
		"$g" "$n"

	heading "While a job uses the image: hpc-nodectl status"
	rm -f "$HPCN_WORK/release"
	as_user srun --uenv="$image" --view=default sh -c \
		"hello holding; end=\$((\$(date +%s) + 600)); while [ ! -e $HPCN_WORK/release ] && [ \$(date +%s) -lt \$end ]; do sleep 0.1; done" \
		>"$HPCN_WORK/holding.out" 2>>"$log" &
	bg=$!
	# The task runs (its first line arrived) and holds the image.
	if ! wait_for -t 120 grep -qxF "$(uenv_hello_marker demo holding)" "$HPCN_WORK/holding.out" ||
		! wait_for -t 60 refcount_is "$image" 1 2>>"$log"; then
		touch "$HPCN_WORK/release"
		wait "$bg" || true
		die "the helper does not show $image with refcount 1 while a job runs"
	fi
	status_section '^Allocations:' | indent
	touch "$HPCN_WORK/release"
	wait "$bg" || die "the holding job failed (output: $(cat "$HPCN_WORK/holding.out"))"

	heading "After the job: refcount 0, mounted until the hold timer expires"
	wait_for -t 30 refcount_is "$image" 0 2>>"$log" ||
		die "the helper does not show $image with refcount 0 after the job"
	status_section '^Mounts:' | indent
	printf '  %s(the next job using the image within %s s reuses this mount)%s\n' \
		"$g" "$hold_time" "$n"

	echo "COMPLETE=1" >>"$state"
	print_usage
	printf '\n%sDemo ready%s in %d s.\n' "$g" "$n" "$((SECONDS - t0))"
}

write_state() { # user-created
	mkdir -p "$state_dir"
	chmod 0755 "$state_dir"
	{
		echo "T=$HPCN_T"
		echo "CGROUP=${HPCN_CGROUP_ROOT:-}"
		echo "USER=$demo_user"
		echo "USER_CREATED=$1"
		echo "PREFIX=$prefix"
	} >"$state"
	demo_T=$HPCN_T
}

# The environment for the user's own commands, and a wrapper that runs a
# command as the demo user in the cluster's work directory.
write_env() { # image nodectl
	cat >"$state_dir/env" <<EOF
# hpc-node demo cluster: source this file (contrib/demo.sh wrote it).
export SLURM_CONF=$SLURM_CONF
export HPCN_SOCKET=$HPCN_SOCKET
export HPCN_DEMO_IMAGE=$1
export PATH=$(dirname "$2"):\$PATH
EOF
	cat >"$state_dir/as-demo-user" <<EOF
#!/bin/sh
# Run a command as $demo_user in the demo cluster's environment.
cd "$HPCN_WORK" && exec runuser -u "$demo_user" -- env HOME="$HPCN_WORK" \\
	SLURM_CONF="$SLURM_CONF" HPCN_DEMO_IMAGE="$1" "\$@"
EOF
	chmod 0644 "$state_dir/env"
	chmod 0755 "$state_dir/as-demo-user"
}

# ---- stop ----------------------------------------------------------------

no_processes_of() { ! pgrep -u "$1" >/dev/null; }

stop() {
	local quiet=${1:-} T cg left
	if ! load_state; then
		if [[ -e $state_dir ]]; then
			rm -rf "$state_dir"
		fi
		[[ -n $quiet ]] || echo "hpc-node demo: not running (no $state)"
		return 0
	fi
	T=$demo_T cg=$demo_CGROUP
	[[ -n $quiet ]] || printf '%shpc-node demo: stopping%s the cluster in %s\n' "$b" "$n" "$T"
	note "---- stop $T"
	(HPCN_T=$T; cluster_stop) >>"$log" 2>&1 || note "cluster_stop reported a problem (checked below)"
	# Autoclear loop devices go a moment after their last mount: give them
	# that moment before calling anything left behind.
	if ! wait_for -t 10 cluster_assert_gone "$T" "$cg" 2>>"$log"; then
		left=$(cluster_assert_gone "$T" "$cg" 2>&1) || true
		die "not everything of the demo cluster went away: $left"
	fi
	if [[ $demo_USER_CREATED == 1 && -n $demo_USER ]] && id -u "$demo_USER" >/dev/null 2>&1; then
		# The jobs' last processes may take a moment to be reaped.
		if ! wait_for -t 10 no_processes_of "$demo_USER" 2>>"$log"; then
			note "user $demo_USER still has processes: not removed"
			ps -u "$demo_USER" -o pid,ppid,stat,cmd >>"$log" 2>&1
			printf 'The user %s still has processes (see %s): not removed\n' \
				"$demo_USER" "$log"
		else
			userdel "$demo_USER" >>"$log" 2>&1 || note "userdel $demo_USER failed"
		fi
	fi
	rm -rf "$state_dir"
	if [[ -z $quiet ]]; then
		item "Removed" "processes, mounts, loop devices, cgroup ${cg:-?}, $T"
		[[ $demo_USER_CREATED == 1 ]] && item "" "the user $demo_USER"
		item "Kept" "the installation in ${demo_PREFIX:-$prefix} ($0 uninstall removes it)"
	fi
	return 0
}

# Stop, then remove the files `cmake --install` put in the prefix (its
# install_manifest.txt) and the directories that this left empty.
uninstall() {
	local manifest=$build/install_manifest.txt f d
	stop
	[[ -f $manifest ]] || { echo "hpc-node demo: nothing to uninstall (no $manifest)"; return 0; }
	while IFS= read -r f; do
		[[ $f == "$prefix"/* || ( $prefix == /usr && $f == /etc/* ) ]] || continue
		rm -f "$f"
		d=$(dirname "$f")
		while [[ $d == "$prefix"/* || $d == /etc/?* ]] && rmdir "$d" 2>/dev/null; do
			d=$(dirname "$d")
		done
	done <"$manifest"
	rm -f "$manifest"
	item "Uninstalled" "the files of $manifest from $prefix"
}

status() {
	if cluster_running; then
		printf 'hpc-node demo: running (cluster in %s)\n' "$demo_T"
		print_usage
	else
		echo "hpc-node demo: not running"
		return 3
	fi
}

# ---- main ----------------------------------------------------------------

cmd=${1:-start}
case $cmd in
-h|--help) awk 'NR > 3 && /^#/ { sub(/^# ?/, ""); print; next } NR > 3 { exit }' "$0"; exit 0 ;;
start|stop|restart|status|uninstall) ;;
*) echo "demo.sh: unknown command '$cmd' (start, stop, restart, status, uninstall; see --help)" >&2
	exit 2 ;;
esac
[[ $(id -u) == 0 ]] || { echo "demo.sh: run it as root (it starts Slurm daemons and mounts images)" >&2; exit 1; }
mkdir -p "$(dirname "$log")"
case $cmd in
start) start ;;
stop) stop ;;
restart) stop && start ;;
status) status ;;
uninstall) uninstall ;;
esac

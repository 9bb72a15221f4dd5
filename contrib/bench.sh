#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# contrib/bench.sh: the node side against its physical floor and its peers
# (docs/benchmarks.md). Every figure is a ratio against a baseline measured in
# the same run, the two alternating (baseline, subject, baseline, subject...).
#
#   contrib/bench.sh [--quick] [--only NAME[,NAME...]] [--build-dir DIR] [--keep-logs]
#
# NAMEs: handoff refs restart (C programs in bench/, against a real
# hpc-node-helper under a temp dir) and step tasks sharing (a real,
# isolated Slurm with the SPANK plugin: tests/slurm/lib/cluster.bash).
# --quick: a tiny configuration (a few iterations, small counts) for CI,
# under a minute. Default: the full configuration of docs/benchmarks.md.
# Needs root (namespaces, loop devices, Slurm). Prints a summary table at the
# end; the exit status is non-zero when a benchmark could not run.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HPCN_BUILD_DIR:-$REPO/build}
QUICK=0
ONLY=""
KEEP_LOGS=0
ALL="handoff refs restart step tasks sharing"

usage() {
	sed -n '4,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while (($#)); do
	case $1 in
	--quick) QUICK=1 ;;
	--only) ONLY=${2:?--only needs a name}; shift ;;
	--only=*) ONLY=${1#--only=} ;;
	--build-dir) BUILD=${2:?--build-dir needs a directory}; shift ;;
	--build-dir=*) BUILD=${1#--build-dir=} ;;
	--keep-logs) KEEP_LOGS=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
for n in ${ONLY//,/ }; do
	[[ " $ALL " == *" $n "* ]] || { echo "bench.sh: unknown benchmark '$n' (one of: $ALL)" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "bench.sh: needs root (namespaces, loop devices, Slurm)" >&2; exit 2; }
for b in bench_handoff bench_refs bench_restart; do
	[[ -x $BUILD/bench/$b ]] || { echo "bench.sh: $BUILD/bench/$b missing: build first, or pass --build-dir" >&2; exit 2; }
done
export HPCN_BUILD_DIR=$BUILD

selected() { [[ -z $ONLY || ",$ONLY," == *",$1,"* ]]; }

# Sizes: full, then quick.
if ((QUICK)); then
	HANDOFF_ARGS=(--rounds 2 --requests 128 --clients "1,8")
	REFS_ARGS=(--rounds 2 --ops 10)
	RESTART_ARGS=(--allocs 20 --images 5 --rounds 2)
	STEP_RUNS=2
	TASK_COUNTS="1 16"
	TASK_RUNS=1
	SHARE_STEPS=2
else
	HANDOFF_ARGS=(--rounds 5 --requests 2000 --clients "1,8,64")
	REFS_ARGS=(--rounds 5 --ops 100)
	RESTART_ARGS=(--allocs 1000 --images 200 --rounds 5)
	STEP_RUNS=20
	TASK_COUNTS="1 16 64 128"
	TASK_RUNS=7
	SHARE_STEPS=8
fi

OUT=$(mktemp -d /tmp/hpcn-bench.XXXXXX)
chmod 0755 "$OUT"
SUMMARY=$OUT/figures
: >"$SUMMARY"
FAILED=""

msg() { printf '# bench: %s\n' "$*" >&2; }
# figure BENCH WHAT VALUE UNIT [NOTE]: the same line the C programs print.
figure() {
	printf 'FIGURE|%s|%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" "${5:-}" | tee -a "$SUMMARY"
}
fail() { # bench reason
	FAILED+=" $1"
	printf 'FAILED|%s|%s\n' "$1" "$2" | tee -a "$SUMMARY"
}
load() { cut -d' ' -f1-3 /proc/loadavg; }

machine() {
	echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "host:    nproc=$(nproc), kernel $(uname -r), $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "memory:  $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "build:   $BUILD ($(grep -m1 '^CMAKE_BUILD_TYPE:' "$BUILD/CMakeCache.txt" 2>/dev/null | cut -d= -f2))"
	echo "mode:    $( ((QUICK)) && echo quick || echo full)${ONLY:+, only $ONLY}"
}

# ---- the C programs -------------------------------------------------------

run_c() { # name args...
	local name=$1 log=$OUT/$1.log rc
	shift
	msg "$name: $* (load before: $(load))"
	"$BUILD/bench/bench_$name" "$@" >"$log" 2>"$OUT/$name.stderr"
	rc=$?
	grep -v '^FIGURE|' "$log"
	grep '^FIGURE|' "$log" >>"$SUMMARY"
	figure load "after $name" "$(cut -d' ' -f1 /proc/loadavg)" "1-min avg"
	((rc == 0)) || fail "$name" "bench_$name exited with $rc: $(tail -n 3 "$OUT/$name.stderr" | tr '\n' ' ')"
}

# ---- Slurm ----------------------------------------------------------------

SLURM_UP=0
UENV_OK=0
UENV_ERR=""

_bench_helper_conf() { # helper.conf path: the shipped defaults where they matter
	sed -i -e 's/^hold_time = .*/hold_time = 3600/' -e 's/^interval = .*/interval = 30/' \
		-e 's/^log_level = .*/log_level = info/' "$1"
}

slurm_up() {
	((SLURM_UP)) && return 0
	# shellcheck source=tests/slurm/lib/cluster.bash
	source "$REPO/tests/slurm/lib/cluster.bash"
	# shellcheck source=tests/slurm/lib/images.bash
	source "$REPO/tests/slurm/lib/images.bash"
	export HPCN_SLURM_CPUS=128 HPCN_CLUSTER_OWNER=$$ HPCN_SLURMD_DEBUG=info
	export HPCN_HELPER_EXTRA=_bench_helper_conf
	msg "starting an isolated Slurm (HPCN_SLURM_CPUS=128)"
	cluster_start || return 1
	SLURM_UP=1
	[[ -f $HPCN_PLUGIN ]] || { UENV_ERR="$HPCN_PLUGIN not built"; return 0; }
	cluster_set_plugstack "required $HPCN_PLUGIN socket=$HPCN_SOCKET ready_file=$HPCN_READY" ||
		{ UENV_ERR="slurmd did not start with the plugin"; return 1; }
	make_uenv_image "$HPCN_T/images/bench.sqfs" bench || return 1
	# The timing loop, run as the job user: one runuser for N steps.
	cat >"$HPCN_WORK/steps.sh" <<'EOF'
#!/bin/bash
# steps.sh N 'LABEL|SRUN ARGS' ...: N rounds, each mode once per round, in
# order (alternating); "%i" in the args is the round number. Prints
# "LABEL RC MILLISECONDS" per step; srun's stderr goes to steps.err.
n=$1
shift
for ((i = 0; i < n; i++)); do
	for m in "$@"; do
		label=${m%%|*}
		args=${m#*|}
		args=${args//%i/$i}
		t0=$EPOCHREALTIME
		# shellcheck disable=SC2086
		srun $args >/dev/null 2>>steps.err
		rc=$?
		t1=$EPOCHREALTIME
		echo "$label $rc $(((${t1/./} - ${t0/./}) / 1000)).$(((${t1/./} - ${t0/./}) % 1000 / 100))"
	done
done
EOF
	chmod 0755 "$HPCN_WORK/steps.sh"
	chown "$HPCN_TEST_USER:" "$HPCN_WORK/steps.sh"
	# Does srun --uenv work at all here? (The first mount happens here.)
	if as_user srun --uenv="$HPCN_T/images/bench.sqfs" true >"$OUT/uenv-probe.out" 2>&1; then
		UENV_OK=1
	else
		UENV_ERR="srun --uenv failed: $(grep -v '^$' "$OUT/uenv-probe.out" | tail -n 2 | tr '\n' ' ')"
		msg "$UENV_ERR"
	fi
}

slurm_down() {
	((SLURM_UP)) || return 0
	if ((KEEP_LOGS)); then
		mkdir -p "$OUT/slurm-logs"
		cp -r "$HPCN_LOGS"/. "$OUT/slurm-logs/" 2>/dev/null
	fi
	cluster_stop
	SLURM_UP=0
}
trap 'slurm_down' EXIT
trap 'exit 130' INT TERM

# stats FILE LABEL -> "n median p99" of the milliseconds of successful steps
stats() {
	awk -v l="$2" '$1 == l && $2 == 0 { print $3 }' "$1" | sort -n |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "0 0 0"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			k = int(0.99 * NR + 0.999999); if (k < 1) k = 1
			printf "%d %.1f %.1f\n", NR, m, v[k] }'
}
failures() { awk -v l="$2" '$1 == l && $2 != 0' "$1" | wc -l; }

steps() { # outfile n modes...
	local out=$1
	shift
	as_user "$HPCN_WORK/steps.sh" "$@" >"$out"
}

bench_step() {
	local f=$OUT/step.times i nb mb pb nu mu pu nc mc pc
	slurm_up || { fail step "the Slurm cluster did not start"; return; }
	((UENV_OK)) || { fail step "$UENV_ERR"; }
	msg "step: $STEP_RUNS runs each, warm then cold (load before: $(load))"
	if ((UENV_OK)); then
		for ((i = 0; i < STEP_RUNS; i++)); do
			cp "$HPCN_T/images/bench.sqfs" "$HPCN_T/images/cold-$i.sqfs"
			chmod 0644 "$HPCN_T/images/cold-$i.sqfs"
		done
		steps "$f" "$STEP_RUNS" "base|true" "warm|--uenv=$HPCN_T/images/bench.sqfs true" \
			"cold|--uenv=$HPCN_T/images/cold-%i.sqfs true"
	else
		steps "$f" "$STEP_RUNS" "base|true"
	fi
	read -r nb mb pb < <(stats "$f" base)
	read -r nu mu pu < <(stats "$f" warm)
	read -r nc mc pc < <(stats "$f" cold)
	printf '%-22s %5s %10s %10s %8s\n' "step" "runs" "median_ms" "p99_ms" "failed"
	printf '%-22s %5s %10s %10s %8s\n' "srun true" "$nb" "$mb" "$pb" "$(failures "$f" base)"
	figure step "srun true median" "$mb" ms "$nb runs"
	figure step "srun true p99" "$pb" ms
	if ((UENV_OK)); then
		printf '%-22s %5s %10s %10s %8s\n' "srun --uenv (warm)" "$nu" "$mu" "$pu" "$(failures "$f" warm)"
		printf '%-22s %5s %10s %10s %8s\n' "srun --uenv (cold)" "$nc" "$mc" "$pc" "$(failures "$f" cold)"
		figure step "srun --uenv warm median" "$mu" ms "image mounted already; $nu runs"
		figure step "srun --uenv warm p99" "$pu" ms
		figure step "srun --uenv cold median" "$mc" ms "a fresh image each run; $nc runs"
		figure step "srun --uenv cold p99" "$pc" ms
		figure step "ratio warm/base (median)" "$(awk -v a="$mu" -v b="$mb" 'BEGIN { printf "%.3f", b ? a / b : 0 }')" x \
			"+$(awk -v a="$mu" -v b="$mb" 'BEGIN { printf "%.1f", a - b }') ms"
		figure step "ratio cold/base (median)" "$(awk -v a="$mc" -v b="$mb" 'BEGIN { printf "%.3f", b ? a / b : 0 }')" x \
			"+$(awk -v a="$mc" -v b="$mb" 'BEGIN { printf "%.1f", a - b }') ms"
		local bad=$(($(failures "$f" warm) + $(failures "$f" cold)))
		((bad == 0)) || fail step "$bad srun --uenv steps failed: $(tail -n 2 "$HPCN_WORK/steps.err" | tr '\n' ' ')"
	fi
	figure load "after step" "$(cut -d' ' -f1 /proc/loadavg)" "1-min avg"
}

bench_tasks() {
	local n f modes nb mb pb nu mu pu cost first_cost=""
	slurm_up || { fail tasks "the Slurm cluster did not start"; return; }
	((UENV_OK)) || fail tasks "$UENV_ERR"
	printf '%-6s %5s %14s %14s %10s %9s\n' "tasks" "runs" "base_median_ms" "uenv_median_ms" "cost_ms" "ratio"
	for n in $TASK_COUNTS; do
		f=$OUT/tasks-$n.times
		msg "tasks: -n $n, $TASK_RUNS runs each (load before: $(load))"
		modes=("base|-n $n true")
		((UENV_OK)) && modes+=("uenv|-n $n --uenv=$HPCN_T/images/bench.sqfs true")
		steps "$f" "$TASK_RUNS" "${modes[@]}"
		read -r nb mb pb < <(stats "$f" base)
		read -r nu mu pu < <(stats "$f" uenv)
		cost=$(awk -v a="$mu" -v b="$mb" 'BEGIN { printf "%.1f", a - b }')
		printf '%-6s %5s %14s %14s %10s %9s\n' "$n" "$nb" "$mb" "$mu" "$cost" \
			"$(awk -v a="$mu" -v b="$mb" 'BEGIN { printf "%.3f", b ? a / b : 0 }')"
		figure tasks "-n $n srun true median" "$mb" ms "p99 $pb ms, $nb runs"
		if ((UENV_OK)); then
			figure tasks "-n $n srun --uenv median" "$mu" ms "p99 $pu ms, $nu runs"
			figure tasks "-n $n uenv cost" "$cost" ms "median difference"
			[[ -n $first_cost ]] || first_cost=$cost
		fi
		(($(failures "$f" base) + $(failures "$f" uenv) == 0)) ||
			fail tasks "-n $n: $(($(failures "$f" base) + $(failures "$f" uenv))) steps failed: $(tail -n 2 "$HPCN_WORK/steps.err" | tr '\n' ' ')"
	done
	if ((UENV_OK)); then
		figure tasks "uenv cost, most tasks minus 1 task" \
			"$(awk -v a="$cost" -v b="$first_cost" 'BEGIN { printf "%.1f", a - b }')" ms \
			"flat = close to 0 (within the noise of the medians)"
	fi
	figure load "after tasks" "$(cut -d' ' -f1 /proc/loadavg)" "1-min avg"
}

bench_sharing() {
	local img pids=() i running loops refs
	slurm_up || { fail sharing "the Slurm cluster did not start"; return; }
	((UENV_OK)) || { fail sharing "$UENV_ERR"; return; }
	# A fresh image, so that the steps race to mount it first.
	img=$HPCN_T/images/shared.sqfs
	make_uenv_image "$img" shared || { fail sharing "mksquashfs failed"; return; }
	msg "sharing: $SHARE_STEPS concurrent steps on $img (load before: $(load))"
	for ((i = 0; i < SHARE_STEPS; i++)); do
		as_user srun --uenv="$img" sh -c 'sleep 8' >/dev/null 2>>"$OUT/sharing.err" &
		pids+=($!)
	done
	# Every step is on the node once the helper has that many users of it.
	_share_users() {
		refs=$(helper_status_json 2>/dev/null | jq --arg p "$img" \
			'[.mounts[] | select(.image_path == $p) | .refcount] | add // 0')
		((refs >= SHARE_STEPS))
	}
	wait_for -t 60 _share_users || true
	running=$(squeue -h -t R -o %A 2>/dev/null | wc -l)
	loops=$(count_loop_devices_for "$img")
	refs=$(helper_status_json 2>/dev/null | jq --arg p "$img" \
		'[.mounts[] | select(.image_path == $p) | .refcount] | add // 0')
	figure load "during sharing" "$(cut -d' ' -f1 /proc/loadavg)" "1-min avg"
	printf 'concurrent steps running: %s, helper refcount of the image: %s, loop devices backing it: %s\n' \
		"$running" "$refs" "$loops"
	figure sharing "loop devices for $SHARE_STEPS concurrent steps" "$loops" devices \
		"1 expected; refcount $refs, jobs running $running"
	wait "${pids[@]}"
	((loops == 1 && refs >= SHARE_STEPS)) ||
		fail sharing "expected 1 loop device and refcount >= $SHARE_STEPS, saw $loops and $refs: $(tail -n 2 "$OUT/sharing.err" | tr '\n' ' ')"
}

# ---- main -----------------------------------------------------------------

t_start=$SECONDS
echo "# hpc-node benchmarks ($OUT)"
machine | sed 's/^/# /'
echo "# load average at start: $(load)"

selected handoff && run_c handoff "${HANDOFF_ARGS[@]}"
selected refs && run_c refs "${REFS_ARGS[@]}"
selected restart && run_c restart "${RESTART_ARGS[@]}"
selected step && bench_step
selected tasks && bench_tasks
selected sharing && bench_sharing
slurm_down
# Every selected benchmark must have printed figures (bench_smoke checks
# nothing else).
for n in $ALL; do
	selected "$n" || continue
	grep -q "^FIGURE|$n|" "$SUMMARY" || fail "$n" "printed no figure"
done

echo
echo "==== summary ($((SECONDS - t_start)) s) ===="
machine
echo "load average at end: $(load)"
{
	echo "bench|figure|value|unit|note"
	grep -h '^FIGURE|' "$SUMMARY" | cut -d'|' -f2-
} | column -t -s '|'
if grep -q '^FAILED|' "$SUMMARY"; then
	echo
	echo "FAILED:"
	grep '^FAILED|' "$SUMMARY" | cut -d'|' -f2- | sed 's/|/: /; s/^/  /'
fi
if ((KEEP_LOGS)); then
	echo "logs: $OUT"
else
	rm -rf "$OUT"
fi
[[ -z $FAILED ]]

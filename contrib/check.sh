#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The one test command of hpc-node: installs what the build and the tests
# need (Debian 12), configures, builds with warnings as errors, and runs the
# whole suite with ctest, then again under AddressSanitizer + UBSan.
#
#   contrib/check.sh                 everything (run as root: most tests use
#                                    real namespaces, loop devices, cgroups
#                                    and a real Slurm)
#   contrib/check.sh --unit          only the tests that need no privileges
#   contrib/check.sh --no-sanitize   skip the ASan/UBSan pass
#   contrib/check.sh --no-install    do not touch packages
#   contrib/check.sh -R REGEX        only tests whose name matches
#   contrib/check.sh --load[=N]      all of it under a parallel CPU load:
#                                    stress-ng --cpu N (default 4) for the
#                                    whole run (installs stress-ng)
#
# Build trees: $HPCN_BUILD_DIR (default ./build) and ./build-asan.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HPCN_BUILD_DIR:-$here/build}
build_asan=${HPCN_BUILD_ASAN_DIR:-$here/build-asan}
unit_only=0 sanitize=1 install=1 regex="" load=0

while [ $# -gt 0 ]; do
	case "$1" in
	--unit) unit_only=1 ;;
	--no-sanitize) sanitize=0 ;;
	--no-install) install=0 ;;
	-R) shift; regex=${1:?-R needs a regular expression} ;;
	--load) load=4 ;;
	--load=*)
		load=${1#--load=}
		case $load in
		'' | *[!0-9]* | 0*) echo "check.sh: --load=N needs a number of CPU workers >= 1" >&2; exit 2 ;;
		esac
		;;
	-h|--help) sed -n '3,19p' "$0"; exit 0 ;;
	*) echo "check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done

log() { printf '==> %s\n' "$*"; }

# Build and test dependencies, all from Debian 12 (one list for check.sh and
# demo.sh).
# shellcheck source=contrib/deps.sh
. "$here/contrib/deps.sh"

if [ $install -eq 1 ]; then
	sets=(build run test)
	[ "$load" -gt 0 ] && sets+=(load)
	hpcn_deps_install check.sh "${sets[@]}" || exit 1
fi

if [ $unit_only -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
	echo "check.sh: the full suite needs root (real namespaces, loop devices, cgroups," >&2
	echo "          Slurm); run it as root, or use --unit for the unprivileged tests" >&2
	exit 1
fi

# --load: stress-ng's CPU workers compete with everything below (builds and
# tests) until check.sh ends, however it ends: the EXIT trap stops them (and
# says what the load was), and should check.sh die without it, stress-ng
# gets SIGKILL as its parent's death signal (setpriv --pdeathsig).
load_pid=""
stop_load() {
	[ -n "$load_pid" ] || return 0
	log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (stress-ng --cpu $load)"
	kill -TERM "$load_pid" 2>/dev/null || true
	wait "$load_pid" 2>/dev/null || true
	load_pid=""
}
start_load() {
	local end=$((SECONDS + 60))
	command -v stress-ng >/dev/null || {
		echo "check.sh: --load needs stress-ng (apt-get install stress-ng, or drop --no-install)" >&2
		exit 1
	}
	trap stop_load EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	setpriv --pdeathsig KILL stress-ng --cpu "$load" --timeout 0 --quiet </dev/null &
	load_pid=$!
	# Running once its N workers are (the limit only guards against a hang).
	while [ $SECONDS -lt $end ] && kill -0 "$load_pid" 2>/dev/null; do
		[ "$(wc -w <"/proc/$load_pid/task/$load_pid/children" 2>/dev/null || echo 0)" -ge "$load" ] &&
			break
		sleep 0.1
	done
	if ! kill -0 "$load_pid" 2>/dev/null; then
		load_pid=""
		echo "check.sh: stress-ng --cpu $load did not start" >&2
		exit 1
	fi
	log "the suite runs under load: stress-ng --cpu $load (pid $load_pid) on $(nproc) CPUs"
}

ctest_args=(--output-on-failure --timeout 600)
[ $unit_only -eq 1 ] && ctest_args+=(-L unit)
[ -n "$regex" ] && ctest_args+=(-R "$regex")

run_suite() { # build-dir "extra ctest args" extra-cmake-args...
	local dir=$1 extra=$2; shift 2
	log "configure $dir"
	cmake -S "$here" -B "$dir" -DHPCN_WERROR=ON "$@" >/dev/null
	log "build $dir"
	cmake --build "$dir" -j "$(nproc)"
	log "test $dir"
	# shellcheck disable=SC2086
	ctest --test-dir "$dir" "${ctest_args[@]}" $extra
}

[ "$load" -gt 0 ] && start_load
run_suite "$build" "" -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ $sanitize -eq 1 ]; then
	# The Slurm tests load the plugin into Slurm's own (uninstrumented)
	# daemons, where the ASan runtime cannot be first: they run above only.
	# valgrind does not mix with ASan either, and benchmarks of a sanitized
	# build mean nothing (the bench also starts a Slurm).
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_suite "$build_asan" "-LE slurm|valgrind|bench" -DCMAKE_BUILD_TYPE=Debug -DHPCN_SANITIZE=ON
fi
log "all tests passed$([ "$load" -gt 0 ] && echo " (under load: stress-ng --cpu $load)")"

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
#
# Build trees: $HPCN_BUILD_DIR (default ./build) and ./build-asan.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HPCN_BUILD_DIR:-$here/build}
build_asan=${HPCN_BUILD_ASAN_DIR:-$here/build-asan}
unit_only=0 sanitize=1 install=1 regex=""

while [ $# -gt 0 ]; do
	case "$1" in
	--unit) unit_only=1 ;;
	--no-sanitize) sanitize=0 ;;
	--no-install) install=0 ;;
	-R) shift; regex=${1:?-R needs a regular expression} ;;
	-h|--help) sed -n '3,16p' "$0"; exit 0 ;;
	*) echo "check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done

log() { printf '==> %s\n' "$*"; }

# Build and test dependencies, all from Debian 12.
packages=(
	build-essential cmake pkg-config
	libjansson-dev libsystemd-dev libinih-dev libcmocka-dev libmount-dev
	squashfs-tools util-linux procps iproute2 psmisc
	slurm-wlm slurm-client libslurm-dev munge
	bats jq valgrind clang libclang-rt-14-dev
)

install_deps() {
	local missing=() p
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "check.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# Debian starts munge and slurm daemons from their packages; the tests
	# run their own instances on their own ports and paths.
	systemctl disable --now munge slurmctld slurmd >/dev/null 2>&1 || true
}

[ $install -eq 1 ] && install_deps

if [ $unit_only -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
	echo "check.sh: the full suite needs root (real namespaces, loop devices, cgroups," >&2
	echo "          Slurm); run it as root, or use --unit for the unprivileged tests" >&2
	exit 1
fi

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

run_suite "$build" "" -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ $sanitize -eq 1 ]; then
	# The Slurm tests load the plugin into Slurm's own (uninstrumented)
	# daemons, where the ASan runtime cannot be first: they run above only.
	# valgrind does not mix with ASan either.
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_suite "$build_asan" "-LE slurm|valgrind" -DCMAKE_BUILD_TYPE=Debug -DHPCN_SANITIZE=ON
fi
log "all tests passed"

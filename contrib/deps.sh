# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# The Debian 12 packages hpc-node needs, and an idempotent installer.
# Sourced by contrib/check.sh (build + tests) and contrib/demo.sh (build +
# the demo cluster), so that both agree on one list.
#
#   source contrib/deps.sh
#   hpcn_deps_install PROG [SET...]   SET: build, run, test, load (default:
#                                     build run test)
#
# Installs only what is missing (dpkg-query), with apt-get, as root; as
# another user it fails naming the missing packages. Returns 0 when
# everything is there. Messages are prefixed with PROG.

# To configure and build: the compiler, cmake and the libraries' -dev packages.
HPCN_DEPS_BUILD=(
	build-essential cmake pkg-config
	libjansson-dev libsystemd-dev libinih-dev libcmocka-dev libmount-dev
	libslurm-dev
)
# To run a node (the demo cluster): Slurm, munge, the image tools, and the
# utilities the cluster scripts use (ss, runuser, setpriv, losetup, pgrep).
HPCN_DEPS_RUN=(
	squashfs-tools util-linux procps iproute2 psmisc
	slurm-wlm slurm-client munge
)
# For the test suite only.
HPCN_DEPS_TEST=(
	bats jq valgrind clang libclang-rt-14-dev man-db groff-base
)
# To run the suite under a parallel CPU load (contrib/check.sh --load).
HPCN_DEPS_LOAD=(
	stress-ng
)

# Daemons that Debian starts from its packages (munge, slurmctld, slurmd):
# hpc-node's tests and demo run their own instances on their own ports and
# paths, so the packaged ones are disabled when this installs them.
_hpcn_deps_units=(munge slurmctld slurmd)

# hpcn_deps_missing SET... -> the missing packages, one per line.
hpcn_deps_missing() {
	local set p pkgs=()
	[ $# -gt 0 ] || set -- build run test
	for set in "$@"; do
		case $set in
		build) pkgs+=("${HPCN_DEPS_BUILD[@]}") ;;
		run) pkgs+=("${HPCN_DEPS_RUN[@]}") ;;
		test) pkgs+=("${HPCN_DEPS_TEST[@]}") ;;
		load) pkgs+=("${HPCN_DEPS_LOAD[@]}") ;;
		*) echo "deps.sh: unknown package set '$set' (build, run, test, load)" >&2; return 2 ;;
		esac
	done
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			echo "$p"
	done
}

hpcn_deps_install() { # prog set...
	local prog=${1:?hpcn_deps_install: PROG}
	shift
	local missing=()
	mapfile -t missing < <(hpcn_deps_missing "$@") || return 1
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "$prog: missing packages: ${missing[*]} (run as root to install them)" >&2
		return 1
	fi
	printf '==> installing %s\n' "${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || return 1
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return 1
	systemctl disable --now "${_hpcn_deps_units[@]}" >/dev/null 2>&1 || true
}

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# test_deb.sh BUILD_DIR SOURCE_DIR
#
# `cpack -G DEB` in the build directory makes hpc-node_VERSION_ARCH.deb; its
# contents (dpkg-deb -c) must be the files of a /usr install with the
# configuration under /etc (both marked conffiles), its control data must name
# the package, version and shared-library dependencies, and its maintainer
# scripts must be valid shell. cpack -B puts the package and its staging
# directory in a temporary directory, not in BUILD_DIR.
set -uo pipefail

build=${1:?usage: test_deb.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: test_deb.sh BUILD_DIR SOURCE_DIR}
fails=0
fail() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hpcn-deb.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

version=$(sed -n 's/^#define HPCN_VERSION_STRING *"\(.*\)"/\1/p' \
	"$build/common/include/hpcnode/version.h")
arch=$(dpkg --print-architecture)
multiarch=$(${CC:-cc} -print-multiarch)
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")

if ! (cd "$build" && cpack -G DEB -B "$tmp/out") >"$tmp/cpack.log" 2>&1; then
	cat "$tmp/cpack.log"
	echo "FAIL: cpack -G DEB in $build failed"
	exit 1
fi
deb=$tmp/out/hpc-node_${version}_$arch.deb
[[ -f $deb ]] || { ls -l "$tmp/out"; echo "FAIL: $deb not made"; exit 1; }

# (Listings go through files: with pipefail, grep -q closing a pipe early
# would fail the pipeline.)
dpkg-deb -c "$deb" >"$tmp/list" || { echo "FAIL: dpkg-deb -c $deb"; exit 1; }
awk '$1 !~ /^d/ { print $6 }' "$tmp/list" | sed 's|^\./||' | sort >"$tmp/got"
want=(
	etc/hpc-node/helper.conf
	etc/slurm/plugstack.conf.d/hpc-node.conf
	usr/bin/hpc-nodectl
	usr/sbin/hpc-node-helper
	"usr/$libdir/libhpcnode.so.$version"
	"usr/$libdir/libhpcnode.so.0"
	"usr/$libdir/libhpcnode.so"
	"usr/$libdir/libhpcnode.a"
	"usr/$libdir/pkgconfig/hpcnode.pc"
	"usr/lib/$multiarch/slurm-wlm/spank_hpc_node.so"
	usr/lib/systemd/system/hpc-node-helper.service
	usr/lib/systemd/system/hpc-node-helper.socket
	usr/include/hpcnode/version.h
)
for h in "$src"/common/include/hpcnode/*.h; do want+=("usr/include/hpcnode/${h##*/}"); done
for m in "$src"/docs/man/*.[0-9]; do want+=("usr/share/man/man${m##*.}/${m##*/}"); done
printf '%s\n' "${want[@]}" | sort -u >"$tmp/want"
missing=$(comm -13 "$tmp/got" "$tmp/want")
extra=$(comm -23 "$tmp/got" "$tmp/want")
[[ -z $missing ]] || fail "not in the package:"$'\n'"$missing"
[[ -z $extra ]] || fail "in the package but not expected:"$'\n'"$extra"

# Nothing outside /usr and /etc; the programs executable; the plugin and the
# helper owned by root.
awk '{ print $6 }' "$tmp/list" | grep -v -E '^\./(usr|etc)?(/|$)' |
	sed 's/^/  /' >"$tmp/outside"
[[ -s $tmp/outside ]] && fail "files outside /usr and /etc:"$'\n'"$(cat "$tmp/outside")"
grep -q -E '^-rwxr-xr-x root/root .* \./usr/sbin/hpc-node-helper$' "$tmp/list" ||
	fail "usr/sbin/hpc-node-helper is not -rwxr-xr-x root/root"

# Control data.
[[ $(dpkg-deb -f "$deb" Package) == hpc-node ]] || fail "Package is not hpc-node"
[[ $(dpkg-deb -f "$deb" Version) == "$version" ]] || fail "Version is not $version"
[[ $(dpkg-deb -f "$deb" Architecture) == "$arch" ]] || fail "Architecture is not $arch"
dep=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libjansson4 libsystemd0 libinih1; do
	[[ $dep == *"$lib"* ]] || fail "Depends ('$dep') lacks $lib"
done
[[ $(dpkg-deb -f "$deb" Recommends) == *slurmd* ]] || fail "Recommends lacks slurmd"
dpkg-deb -e "$deb" "$tmp/ctl"
[[ $(sort "$tmp/ctl/conffiles") == $'/etc/hpc-node/helper.conf\n/etc/slurm/plugstack.conf.d/hpc-node.conf' ]] ||
	fail "conffiles: $(tr '\n' ' ' <"$tmp/ctl/conffiles")"
for s in postinst prerm postrm; do
	[[ -x $tmp/ctl/$s ]] || { fail "maintainer script $s missing or not executable"; continue; }
	sh -n "$tmp/ctl/$s" || fail "maintainer script $s: syntax error"
done
grep -q 'libhpcnode 0 hpc-node' "$tmp/ctl/shlibs" || fail "shlibs: $(cat "$tmp/ctl/shlibs")"

# The packaged pkg-config file and unit name the package's paths.
dpkg-deb -x "$deb" "$tmp/x"
grep -qx 'prefix=/usr' "$tmp/x/usr/$libdir/pkgconfig/hpcnode.pc" || fail "hpcnode.pc prefix is not /usr"
grep -q '^ExecStart=/usr/sbin/hpc-node-helper --config /etc/hpc-node/helper.conf$' \
	"$tmp/x/usr/lib/systemd/system/hpc-node-helper.service" || fail "unit ExecStart"

if ((fails > 0)); then
	echo "deb test: $fails failure(s); package contents:"
	sed 's/^/  /' "$tmp/list"
	exit 1
fi
echo "deb test: passed ($(wc -l <"$tmp/want") files, $(stat -c %s "$deb") bytes)"

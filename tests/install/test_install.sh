#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# test_install.sh BUILD_DIR SOURCE_DIR
#
# `cmake --install BUILD_DIR --prefix /usr` into a staging directory
# (DESTDIR) must produce exactly the files a Debian node needs, in Debian's
# places, and the staged library must be usable through pkg-config:
#   headers         usr/include/hpcnode/*.h (every public header + version.h)
#   libhpcnode      usr/LIBDIR/libhpcnode.so.0 (+ .so.X.Y.Z, .so, .a)
#   pkg-config      usr/LIBDIR/pkgconfig/hpcnode.pc, with prefix /usr
#   programs        usr/sbin/hpc-node-helper, usr/bin/hpc-nodectl
#   SPANK plugin    usr/lib/<multiarch>/slurm-wlm/spank_hpc_node.so
#   man pages       usr/share/man/man5/*.5, man8/*.8 (every page of docs/man)
#   configuration   etc/hpc-node/helper.conf, etc/slurm/plugstack.conf.d/hpc-node.conf
#   systemd         usr/lib/systemd/system/hpc-node-helper.{service,socket}
# and nothing else. A tiny C program built with `pkg-config --cflags --libs
# hpcnode` (PKG_CONFIG_SYSROOT_DIR and PKG_CONFIG_PATH into the staging
# directory) compiles, links against the staged library (shared, then
# static) and prints HPCN_SLICE_WORKLOAD_ROOT. $HPCN_TEST_CFLAGS is added to
# its compile and link lines (sanitizer builds: -fsanitize=...).
set -uo pipefail

build=${1:?usage: test_install.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: test_install.sh BUILD_DIR SOURCE_DIR}
fails=0
fail() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
ok() { printf 'ok: %s\n' "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hpcn-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/stage

cache_get() { # VAR -> its value in BUILD_DIR/CMakeCache.txt
	sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"
}

if ! DESTDIR=$stage cmake --install "$build" --prefix /usr >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"
	echo "FAIL: cmake --install $build --prefix /usr (DESTDIR=$stage) failed"
	exit 1
fi

libdir=$(cache_get CMAKE_INSTALL_LIBDIR)
version=$(sed -n 's/^#define HPCN_VERSION_STRING *"\(.*\)"/\1/p' \
	"$build/common/include/hpcnode/version.h")
multiarch=$(${CC:-cc} -print-multiarch 2>/dev/null)
[[ -n $libdir && $libdir != /* ]] || fail "CMAKE_INSTALL_LIBDIR '$libdir' is not relative"
[[ -n $version ]] || fail "no HPCN_VERSION_STRING in $build/common/include/hpcnode/version.h"
[[ -n $multiarch ]] || fail "cc -print-multiarch printed nothing (not a Debian toolchain?)"

# ---- the expected files, and nothing else ---------------------------------
expected=(
	usr/include/hpcnode/version.h
	"usr/$libdir/libhpcnode.so.$version"
	"usr/$libdir/libhpcnode.so.0"
	"usr/$libdir/libhpcnode.so"
	"usr/$libdir/libhpcnode.a"
	"usr/$libdir/pkgconfig/hpcnode.pc"
	usr/sbin/hpc-node-helper
	usr/bin/hpc-nodectl
	etc/hpc-node/helper.conf
	etc/slurm/plugstack.conf.d/hpc-node.conf
	usr/lib/systemd/system/hpc-node-helper.service
	usr/lib/systemd/system/hpc-node-helper.socket
)
for h in "$src"/common/include/hpcnode/*.h; do
	expected+=("usr/include/hpcnode/${h##*/}")
done
for m in "$src"/docs/man/*.[0-9]; do
	expected+=("usr/share/man/man${m##*.}/${m##*/}")
done
plugin=""
if [[ -e $build/spank/spank_hpc_node.so ]]; then
	plugin=usr/lib/$multiarch/slurm-wlm/spank_hpc_node.so
	expected+=("$plugin")
else
	fail "$build/spank/spank_hpc_node.so was not built (libslurm-dev missing?)"
fi

for f in "${expected[@]}"; do
	[[ -e $stage/$f || -L $stage/$f ]] || fail "missing: /$f"
done
(cd "$stage" && find . ! -type d | sed 's|^\./||' | sort) >"$tmp/got"
printf '%s\n' "${expected[@]}" | sort -u >"$tmp/want"
extra=$(comm -23 "$tmp/got" "$tmp/want")
[[ -z $extra ]] || fail "installed but not expected (update tests/install/test_install.sh" \
	"if they belong):"$'\n'"$extra"
[[ $fails -eq 0 ]] && ok "${#expected[@]} files installed, each in its place, nothing else"
# install_manifest.txt (what an uninstall removes) names every one of them.
sed -e "s|^$stage/||" -e "s|^/||" "$build/install_manifest.txt" | sort -u >"$tmp/manifest"
unlisted=$(comm -23 "$tmp/got" "$tmp/manifest")
[[ -z $unlisted ]] || fail "installed but not in install_manifest.txt:"$'\n'"$unlisted"

# ---- each file is what it should be -----------------------------------------
[[ -x $stage/usr/sbin/hpc-node-helper && -x $stage/usr/bin/hpc-nodectl ]] ||
	fail "the programs are not executable"
[[ $(readlink "$stage/usr/$libdir/libhpcnode.so.0") == "libhpcnode.so.$version" ]] ||
	fail "libhpcnode.so.0 does not point to libhpcnode.so.$version"
[[ $(readlink "$stage/usr/$libdir/libhpcnode.so") == libhpcnode.so.0 ]] ||
	fail "libhpcnode.so does not point to libhpcnode.so.0"
soname=$(objdump -p "$stage/usr/$libdir/libhpcnode.so.$version" | awk '$1 == "SONAME" { print $2 }')
[[ $soname == libhpcnode.so.0 ]] || fail "SONAME of libhpcnode is '$soname', not libhpcnode.so.0"
cmp -s "$src/etc/helper.conf" "$stage/etc/hpc-node/helper.conf" ||
	fail "/etc/hpc-node/helper.conf differs from etc/helper.conf"
for f in "$src"/common/include/hpcnode/*.h; do
	cmp -s "$f" "$stage/usr/include/hpcnode/${f##*/}" || fail "header ${f##*/} differs"
done
# The unit starts the installed helper with the installed configuration.
unit=$stage/usr/lib/systemd/system/hpc-node-helper.service
grep -qx 'ExecStart=/usr/sbin/hpc-node-helper --config /etc/hpc-node/helper.conf' "$unit" ||
	fail "$unit: ExecStart does not name /usr/sbin/hpc-node-helper and /etc/hpc-node/helper.conf"
# The plugstack snippet names the installed plugin, commented out.
snip=$stage/etc/slurm/plugstack.conf.d/hpc-node.conf
line=$(grep -v '^# ' "$snip" | grep 'spank_hpc_node.so')
[[ $line == "#required /$plugin" ]] ||
	fail "$snip: expected the line '#required /$plugin', found '$line'"
grep -q '^[^#]' "$snip" && fail "$snip has an active line: installing must change no job"
[[ $fails -eq 0 ]] && ok "links, SONAME, configuration, unit and plugstack snippet are consistent"

# ---- pkg-config and a program against the staged library --------------------
pc=$stage/usr/$libdir/pkgconfig/hpcnode.pc
grep -qx 'prefix=/usr' "$pc" || fail "$pc: prefix is not /usr: $(grep '^prefix=' "$pc")"
export PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_PATH=$stage/usr/$libdir/pkgconfig
cflags=$(pkg-config --cflags hpcnode) || fail "pkg-config --cflags hpcnode failed"
libs=$(pkg-config --libs hpcnode) || fail "pkg-config --libs hpcnode failed"
[[ " $cflags " == *" -I$stage/usr/include "* ]] ||
	fail "pkg-config --cflags: '$cflags' lacks -I$stage/usr/include"
[[ " $libs " == *" -L$stage/usr/$libdir "* && " $libs " == *" -lhpcnode "* ]] ||
	fail "pkg-config --libs: '$libs' lacks -L$stage/usr/$libdir -lhpcnode"
[[ $(pkg-config --modversion hpcnode) == "$version" ]] || fail "pkg-config --modversion"

cat >"$tmp/prog.c" <<'EOF'
#include <stdio.h>
#include <hpcnode/hpcnode.h>

int main(void)
{
	printf("%s\n", HPCN_SLICE_WORKLOAD_ROOT);
	/* A call into the library, not only a macro. */
	return hpcn_slice_owner(HPCN_SLICE_WORKLOAD_ROOT "/x") == HPCN_OWNER_WORKLOAD ? 0 : 3;
}
EOF
# shellcheck disable=SC2086 # word splitting of pkg-config's output is wanted
if ${CC:-cc} -Wall -Werror ${HPCN_TEST_CFLAGS:-} -o "$tmp/prog" "$tmp/prog.c" $cflags $libs 2>"$tmp/cc.log"; then
	out=$(LD_LIBRARY_PATH=$stage/usr/$libdir "$tmp/prog")
	rc=$?
	[[ $rc -eq 0 && $out == workload.slice ]] ||
		fail "the program printed '$out' (exit $rc), expected 'workload.slice' (exit 0)"
	LD_LIBRARY_PATH=$stage/usr/$libdir ldd "$tmp/prog" >"$tmp/ldd"
	grep -q "libhpcnode.so.0 => $stage/usr/$libdir/libhpcnode.so.0" "$tmp/ldd" ||
		fail "the program is not linked against the staged libhpcnode.so.0"
	ok "a program built with pkg-config hpcnode runs against the staged libhpcnode.so.0"
else
	cat "$tmp/cc.log"
	fail "compiling against the staged headers and library failed (cflags '$cflags', libs '$libs')"
fi
slibs=$(pkg-config --static --libs hpcnode) || fail "pkg-config --static --libs hpcnode failed"
# shellcheck disable=SC2086
if ${CC:-cc} -Wall -Werror ${HPCN_TEST_CFLAGS:-} -o "$tmp/prog-static" "$tmp/prog.c" $cflags \
	-Wl,-Bstatic -lhpcnode -Wl,-Bdynamic ${slibs//-lhpcnode/} 2>"$tmp/cc.log"; then
	out=$("$tmp/prog-static")
	[[ $out == workload.slice ]] || fail "the static program printed '$out'"
	ldd "$tmp/prog-static" >"$tmp/ldd"
	grep -q libhpcnode "$tmp/ldd" && fail "the static program needs libhpcnode.so"
	ok "a program linked with the staged libhpcnode.a and --static libs runs"
else
	cat "$tmp/cc.log"
	fail "static link with libhpcnode.a failed (libs '$slibs')"
fi

if ((fails > 0)); then
	echo "install test: $fails failure(s); staged tree:"
	sed 's/^/  /' "$tmp/got"
	exit 1
fi
echo "install test: passed"

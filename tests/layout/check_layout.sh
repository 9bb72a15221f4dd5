#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The layout rules of docs/architecture.md, checked on the source tree:
#  1. helper/'s folders include each other without a cycle (tsort);
#  2. code outside a helper folder includes one header of it at most (the
#     folder's interface); tests may include a folder's private headers;
#  3. every folder with C sources has its own CMakeLists.txt, and no *.cmake
#     fragment stands in for one (contrib/packaging excepted);
#  4. no C source or header is over 800 lines, unless it is listed in
#     tests/layout/long-files.txt with a written reason;
#  5. with BUILD_DIR: helper/'s folders call each other without a cycle, from
#     the symbols their object files define and use (an include-free call,
#     through a declaration in a shared header, is caught here).
# Each broken rule is printed naming the files; exit 1 when any is broken.
#
#   check_layout.sh SOURCE_DIR [BUILD_DIR]
set -uo pipefail
src=${1:?usage: check_layout.sh SOURCE_DIR [BUILD_DIR]}
build=${2:-}
cd "$src"
max=800
bad=0
fail() { printf 'layout: %s\n' "$*" >&2; bad=1; }
# The project's own files (not build trees, which may sit in the source tree).
srcs() { find common helper spank bench tests \( -name '*.c' -o -name '*.h' \) -type f | sort; }

# The helper folder a path belongs to ("" at helper/ level or outside).
folder_of() {
	case $1 in
	helper/*/*) local r=${1#helper/}; printf '%s' "${r%%/*}" ;;
	*) printf '' ;;
	esac
}

# Every #include "F/x.h" that names a helper folder F, as "file F/x.h".
includes() {
	srcs | while read -r f; do
		sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z_]*\/[^"]*\)".*/\1/p' "$f" |
		while read -r inc; do
			[ -d "helper/${inc%%/*}" ] && printf '%s %s\n' "$f" "$inc"
		done
	done
}
mapfile -t edges < <(includes)

# 1. No cycle between helper folders.
pairs=$(for e in "${edges[@]}"; do
	f=${e%% *} inc=${e#* }
	from=$(folder_of "$f") to=${inc%%/*}
	[ -n "$from" ] && [ "$from" != "$to" ] && printf '%s %s\n' "$from" "$to"
done | sort -u)
if [ -n "$pairs" ] && ! out=$(printf '%s\n' "$pairs" | tsort 2>&1 >/dev/null); then
	fail "include cycle between helper folders: ${out//$'\n'/; }"
	printf '%s\n' "$pairs" | awk '{print "  " $1 " -> " $2}' >&2
fi

# 2. One interface header per folder for the code outside it.
for d in helper/*/; do
	d=${d%/}; F=${d#helper/}
	hdrs=$(for e in "${edges[@]}"; do
		f=${e%% *} inc=${e#* }
		case $f in tests/*) continue ;; esac
		[ "${inc%%/*}" = "$F" ] && [ "$(folder_of "$f")" != "$F" ] && printf '%s\n' "$inc"
	done | sort -u)
	n=$(printf '%s' "$hdrs" | grep -c . || true)
	[ "$n" -le 1 ] || fail "helper/$F is reached through $n headers, not one: $(echo $hdrs)"
done

# 3. A CMakeLists.txt per folder with C sources; no fragments.
for d in $(srcs | grep '[.]c$' | xargs -n1 dirname | sort -u); do
	case $d in tests/vectors*) continue ;; esac
	# A library's src/ is built by the CMakeLists.txt beside its include/.
	[ -f "$d/CMakeLists.txt" ] || { [ "${d##*/}" = src ] && [ -f "${d%/src}/CMakeLists.txt" ]; } ||
		fail "$d has C sources but no CMakeLists.txt"
done
frag=$(find common helper spank bench tests docs etc -name '*.cmake' -type f || true)
[ -z "$frag" ] || fail "included fragments instead of a CMakeLists.txt per folder: $(echo $frag)"

# 4. File length.
allow=tests/layout/long-files.txt
while read -r n f; do
	[ "$f" = total ] && continue
	[ "$n" -gt $max ] || continue
	if ! grep -q "^$f[[:space:]]\+[^[:space:]]" "$allow" 2>/dev/null; then
		fail "$f has $n lines (over $max, and no reason for it in $allow)"
	fi
done < <(srcs | xargs wc -l)

# 5. No call cycle between helper folders. An object file's folder is the
# one its source is in: build/helper/CMakeFiles/T.dir/F/x.c.o or
# build/helper/F/CMakeFiles/T.dir/x.c.o (F empty: helper/ level, shared).
calls=
if [ -n "$build" ]; then
	obj_folder() {
		local r=${1#"$build"/helper/}
		case $r in
		CMakeFiles/*.dir/*/*) r=${r#CMakeFiles/*.dir/}; printf '%s' "${r%%/*}" ;;
		CMakeFiles/*) printf '' ;;
		*/CMakeFiles/*) printf '%s' "${r%%/*}" ;;
		esac
	}
	mapfile -t objs < <(find "$build/helper" -name '*.c.o' -type f | sort)
	[ ${#objs[@]} -gt 0 ] || fail "no object files under $build/helper (build first)"
	declare -A def_in=()
	for o in "${objs[@]}"; do
		F=$(obj_folder "$o")
		[ -n "$F" ] || continue
		while read -r sym; do def_in[$sym]=$F; done < <(nm --defined-only -g "$o" | awk 'NF==3{print $3}')
	done
	calls=$(for o in "${objs[@]}"; do
		F=$(obj_folder "$o")
		[ -n "$F" ] || continue
		nm -u "$o" | awk '{print $NF}' | while read -r sym; do
			to=${def_in[$sym]:-}
			[ -n "$to" ] && [ "$to" != "$F" ] && printf '%s %s\n' "$F" "$to"
		done
	done | sort -u)
	if [ -n "$calls" ] && ! out=$(printf '%s\n' "$calls" | tsort 2>&1 >/dev/null); then
		fail "call cycle between helper folders: ${out//$'\n'/; }"
		printf '%s\n' "$calls" | awk '{print "  " $1 " -> " $2}' >&2
	fi
fi

if [ $bad -eq 0 ]; then
	echo "layout: ok; helper folders and what they include:"
	printf '%s\n' "$pairs" | awk '{d[$1]=d[$1]" "$2} END{for(k in d) print "  " k " ->" d[k]}' | sort
	if [ -n "$calls" ]; then
		echo "and what they call:"
		printf '%s\n' "$calls" | awk '{d[$1]=d[$1]" "$2} END{for(k in d) print "  " k " ->" d[k]}' | sort
	fi
fi
exit $bad

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Coverage-guided fuzzing of hpc-node's parsers with libFuzzer (clang).
#
#   contrib/fuzz.sh [SECONDS] [TARGET...]
#
#   SECONDS  per target (default 60)
#   TARGET   protocol config mountinfo uenv_view envjson registry jsonline (default all;
#            the targets are tests/fuzz/fuzz_<target>.c)
#
# Configures a clang build (CC=clang) in $HPCN_FUZZ_BUILD_DIR (default
# ./build-fuzz), builds the fuzz targets, and runs each for SECONDS on a
# temporary copy of tests/fuzz/corpus/<target> plus tests/fuzz/regressions/
# <target> (-rss_limit_mb=2048 -timeout=10). Exits non-zero when a target
# crashes, leaks, hangs or breaks a property, printing the path of the input
# that did it: copy that file into tests/fuzz/regressions/<target>/, where
# every build's ctest replays it.
#
# Environment:
#   HPCN_FUZZ_BUILD_DIR  the clang build directory
#   HPCN_FUZZ_NO_BUILD=1 use the executables already built there
#   HPCN_FUZZ_MERGE=1    merge inputs that add coverage into tests/fuzz/corpus
#                        (keep the corpus small: review what it adds)
#   HPCN_FUZZ_ARGS       more libFuzzer options, e.g. "-jobs=4 -workers=4"
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HPCN_FUZZ_BUILD_DIR:-$here/build-fuzz}
fuzzdir=$here/tests/fuzz
all_targets=(protocol config mountinfo uenv_view envjson registry jsonline)

die() { echo "fuzz.sh: $*" >&2; exit 1; }
log() { printf '==> %s\n' "$*"; }

seconds=60
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
	seconds=$1
	shift
fi
case "${1:-}" in
-h|--help) sed -n '3,26s/^# \{0,1\}//p' "$0"; exit 0 ;;
esac
[ "$seconds" -ge 1 ] || die "SECONDS must be at least 1"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
	[ -f "$fuzzdir/fuzz_$t.c" ] || die "unknown target '$t' (known: ${all_targets[*]})"
done

if [ "${HPCN_FUZZ_NO_BUILD:-0}" != 1 ]; then
	command -v clang >/dev/null ||
		die "clang not found: libFuzzer needs it (Debian 12: apt-get install clang libclang-rt-14-dev)"
	log "configure $build (clang)"
	CC=clang cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DHPCN_BUILD_TESTS=ON >/dev/null
fi
grep -q '^HPCN_CLANG_LIBFUZZER:INTERNAL=1$' "$build/CMakeCache.txt" 2>/dev/null ||
	die "$build has no libFuzzer: clang cannot link -fsanitize=fuzzer (Debian 12: apt-get install libclang-rt-14-dev)"
if [ "${HPCN_FUZZ_NO_BUILD:-0}" != 1 ]; then
	log "build the fuzz targets"
	cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null ||
		die "building the fuzz targets failed (run: cmake --build $build --target fuzz_${targets[0]})"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hpcn-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

failed=()
for t in "${targets[@]}"; do
	exe=$build/tests/fuzz/fuzz_$t
	[ -x "$exe" ] || die "$exe is missing"
	corpus=$work/corpus-$t
	regressions=$fuzzdir/regressions/$t
	logf=$work/$t.log
	mkdir -p "$corpus" "$artifacts/$t"
	cp -r "$fuzzdir/corpus/$t/." "$corpus/" 2>/dev/null || true
	opts=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
	      -artifact_prefix="$artifacts/$t/")
	[ -f "$fuzzdir/dict/$t.dict" ] && opts+=(-dict="$fuzzdir/dict/$t.dict")
	dirs=("$corpus")
	[ -d "$regressions" ] && dirs+=("$regressions")
	log "fuzz $t for ${seconds}s"
	rc=0
	# shellcheck disable=SC2086
	"$exe" "${opts[@]}" ${HPCN_FUZZ_ARGS:-} "${dirs[@]}" >"$logf" 2>&1 || rc=$?
	cp "$logf" "$artifacts/$t/last.log"
	if [ $rc -ne 0 ]; then
		tail -n 60 "$logf"
		found=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$logf")
		known=""
		if [ -n "$found" ] && [ -d "$regressions" ]; then
			for r in "$regressions"/*; do
				[ -f "$r" ] && cmp -s "$r" "$found" && known=$r && break
			done
		fi
		if [ -n "$known" ]; then
			echo "fuzz.sh: $t FAILED (exit $rc): known regression ${known#"$here"/}, not fixed yet"
		else
			echo "fuzz.sh: $t FAILED (exit $rc); input: ${found:-see the output above}"
		fi
		failed+=("$t")
		continue
	fi
	grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$logf" |
		sed "s/^/    $t /" || true
	if [ "${HPCN_FUZZ_MERGE:-0}" = 1 ]; then
		"$exe" -merge=1 "$fuzzdir/corpus/$t" "$corpus" >>"$logf" 2>&1 ||
			die "merging the corpus of $t failed (log: $logf)"
		log "merged into tests/fuzz/corpus/$t: $(find "$fuzzdir/corpus/$t" -type f | wc -l) files"
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz.sh: FAILED: ${failed[*]} (inputs kept under $artifacts)" >&2
	exit 1
fi
log "no crash in ${targets[*]} (${seconds}s each)"

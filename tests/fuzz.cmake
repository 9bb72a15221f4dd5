# SPDX-License-Identifier: Apache-2.0
# Fuzz targets (tests/fuzz/fuzz_<target>.c, one LLVMFuzzerTestOneInput each).
#
#  - clang with libFuzzer: fuzz_<target> executables, built with
#    -fsanitize=fuzzer,address,undefined against hpcn_fuzz_code, an
#    instrumented copy of the libraries' sources (the normal libraries stay
#    uninstrumented). contrib/fuzz.sh configures such a build and runs them.
#  - any other compiler (gcc, the main build): fuzz_replay_<target>, the same
#    target file with replay_main.c, linked against the normal libraries.
#
# Either way ctest's fuzz_replay_<target> (label unit) runs the target over
# tests/fuzz/corpus/<target> and tests/fuzz/regressions/<target>, so every
# seed and every past crash is replayed in every build, ASan's included.
# fuzz_smoke (label fuzz) runs contrib/fuzz.sh for a few seconds per target.
set(HPCN_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR}/fuzz)
set(HPCN_FUZZ_TARGETS protocol config mountinfo uenv_view envjson registry jsonline)
set(HPCN_FUZZ_SMOKE_SECONDS 10 CACHE STRING "Seconds per target of the fuzz_smoke test")

# What each target needs from the normal build (replay executables).
set(_fuzz_libs_protocol  hpcnode_static)
set(_fuzz_libs_config    hpcn_helper_core)
set(_fuzz_libs_mountinfo hpcn_helper_core)
set(_fuzz_libs_uenv_view hpcn_spank_logic)
set(_fuzz_libs_envjson   hpcn_spank_logic)
set(_fuzz_libs_registry  hpcn_helper_core)
set(_fuzz_libs_jsonline  hpcn_helper_core)

set(HPCN_HAVE_LIBFUZZER OFF)
if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
  set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=fuzzer")
  check_c_source_compiles([[
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return d && n ? 0 : 0; }
]] HPCN_CLANG_LIBFUZZER)
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  if(HPCN_CLANG_LIBFUZZER)
    set(HPCN_HAVE_LIBFUZZER ON)
  else()
    message(WARNING "clang without libFuzzer (Debian: libclang-rt-14-dev): "
                    "fuzz targets are built as replay executables only")
  endif()
endif()

if(HPCN_HAVE_LIBFUZZER)
  # The code under test, compiled again with coverage and sanitizers. Taken
  # from the libraries' own source lists so that a new module is fuzzable
  # without editing this file; the linker keeps only what a target uses.
  set(_fuzz_srcs)
  foreach(_lib hpcnode_obj hpcn_nodeops hpcn_helper_core hpcn_spank_logic)
    get_target_property(_s ${_lib} SOURCES)
    get_target_property(_d ${_lib} SOURCE_DIR)
    foreach(_f ${_s})
      if(NOT IS_ABSOLUTE ${_f})
        set(_f ${_d}/${_f})
      endif()
      list(APPEND _fuzz_srcs ${_f})
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES _fuzz_srcs)
  set(_fuzz_flags -fsanitize=address,undefined -fno-sanitize-recover=undefined
                  -fno-omit-frame-pointer -g -U_FORTIFY_SOURCE)
  add_library(hpcn_fuzz_code STATIC ${_fuzz_srcs})
  target_compile_options(hpcn_fuzz_code PRIVATE -fsanitize=fuzzer-no-link ${_fuzz_flags})
  target_include_directories(hpcn_fuzz_code PUBLIC
    $<TARGET_PROPERTY:hpcnode_obj,INTERFACE_INCLUDE_DIRECTORIES>
    ${PROJECT_SOURCE_DIR}/helper ${PROJECT_SOURCE_DIR}/spank)
  target_link_libraries(hpcn_fuzz_code PUBLIC
    PkgConfig::JANSSON PkgConfig::SYSTEMD PkgConfig::INIH)
endif()

foreach(_t ${HPCN_FUZZ_TARGETS})
  set(_corpus ${HPCN_FUZZ_DIR}/corpus/${_t})
  set(_regr ${HPCN_FUZZ_DIR}/regressions/${_t})
  if(HPCN_HAVE_LIBFUZZER)
    add_executable(fuzz_${_t} ${HPCN_FUZZ_DIR}/fuzz_${_t}.c)
    target_include_directories(fuzz_${_t} PRIVATE ${HPCN_FUZZ_DIR})
    target_compile_options(fuzz_${_t} PRIVATE -fsanitize=fuzzer ${_fuzz_flags})
    target_link_options(fuzz_${_t} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_${_t} PRIVATE hpcn_fuzz_code)
    # -runs=0: execute every input of the corpus directories once, then stop.
    # A failing input is copied under the build tree, not the working directory.
    add_test(NAME fuzz_replay_${_t} COMMAND fuzz_${_t} -runs=0
             -artifact_prefix=${CMAKE_BINARY_DIR}/fuzz-artifacts/replay-${_t}-
             ${_corpus} ${_regr})
  else()
    add_executable(fuzz_replay_${_t} ${HPCN_FUZZ_DIR}/fuzz_${_t}.c ${HPCN_FUZZ_DIR}/replay_main.c)
    target_include_directories(fuzz_replay_${_t} PRIVATE ${HPCN_FUZZ_DIR})
    target_link_libraries(fuzz_replay_${_t} PRIVATE ${_fuzz_libs_${_t}})
    add_test(NAME fuzz_replay_${_t} COMMAND fuzz_replay_${_t} ${_corpus} ${_regr})
    # memcheck sees reads of uninitialised memory, which ASan does not.
    find_program(HPCN_VALGRIND valgrind)
    if(HPCN_VALGRIND AND NOT HPCN_SANITIZE)
      add_test(NAME fuzz_replay_${_t}_valgrind
               COMMAND ${HPCN_VALGRIND} --quiet --leak-check=full --errors-for-leak-kinds=all
                       --error-exitcode=1 $<TARGET_FILE:fuzz_replay_${_t}> ${_corpus} ${_regr})
      set_tests_properties(fuzz_replay_${_t}_valgrind PROPERTIES
        LABELS "unit;valgrind" TIMEOUT 300)
    endif()
  endif()
  set_tests_properties(fuzz_replay_${_t} PROPERTIES LABELS unit TIMEOUT 120)
endforeach()

# A short fuzzing run of every target. It needs clang and libFuzzer: when
# they are missing the test fails saying so (contrib/check.sh installs them).
# In a clang build it fuzzes this build's targets; otherwise contrib/fuzz.sh
# configures a clang build of its own under this build directory. Not in
# sanitizer builds: the fuzzers are sanitized anyway, once is enough.
if(NOT HPCN_SANITIZE)
  if(HPCN_HAVE_LIBFUZZER)
    set(_fuzz_env HPCN_FUZZ_BUILD_DIR=${CMAKE_BINARY_DIR} HPCN_FUZZ_NO_BUILD=1)
  else()
    set(_fuzz_env HPCN_FUZZ_BUILD_DIR=${CMAKE_BINARY_DIR}/fuzz-clang)
  endif()
  add_test(NAME fuzz_smoke
           COMMAND ${CMAKE_COMMAND} -E env ${_fuzz_env}
                   ${PROJECT_SOURCE_DIR}/contrib/fuzz.sh ${HPCN_FUZZ_SMOKE_SECONDS})
  set_tests_properties(fuzz_smoke PROPERTIES LABELS fuzz TIMEOUT 900)
endif()
unset(_fuzz_env)
unset(_fuzz_srcs)
unset(_fuzz_flags)
unset(_corpus)
unset(_regr)

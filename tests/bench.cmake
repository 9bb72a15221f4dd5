# SPDX-License-Identifier: Apache-2.0
# bench_smoke: contrib/bench.sh in its tiny configuration, so that the
# benchmarks keep working. It passes when every benchmark ran and printed its
# figures (bench.sh exits non-zero otherwise); it never judges a timing.
# Needs root, like the benchmarks (namespaces, loop devices, a real Slurm).
if(TARGET bench_handoff)
  add_test(NAME bench_smoke
    COMMAND ${CMAKE_SOURCE_DIR}/contrib/bench.sh --quick --build-dir ${CMAKE_BINARY_DIR})
  set_tests_properties(bench_smoke PROPERTIES
    LABELS bench
    # A Slurm cluster, node-wide loop devices, /user-environment.
    RUN_SERIAL TRUE
    RESOURCE_LOCK hpcn_loop_devices
    TIMEOUT 300)
endif()

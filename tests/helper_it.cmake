# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of hpc-node-helper: the built daemon (fork+exec) with every
# path under a temporary directory and its own subtree of the real cgroup2
# mount; real namespaces, loop devices and squashfs mounts (root).
set(_d ${CMAKE_CURRENT_LIST_DIR}/integration)
foreach(_t core mounts restart badinput)
  hpcn_add_test(test_helper_${_t}
    SOURCES ${_d}/test_helper_${_t}.c ${_d}/helper_fixture.c ${_d}/sqfs_fixture.c
    LIBS hpcn_helper_core
    LABELS root integration
    TIMEOUT 240)
  target_include_directories(test_helper_${_t} PRIVATE ${_d})
  add_dependencies(test_helper_${_t} hpc-node-helper hpc-nodectl)
  # They count node-wide loop devices and share /user-environment.
  set_tests_properties(test_helper_${_t} PROPERTIES RESOURCE_LOCK hpcn_loop_devices)
endforeach()
unset(_d)

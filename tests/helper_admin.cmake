# SPDX-License-Identifier: Apache-2.0
# hpc-nodectl end to end and the helper's admin paths (reconcile,
# force-unmount, SIGHUP, WI5 without a scope): the built binaries against a
# real helper under a temporary directory (root).
set(_d ${CMAKE_CURRENT_LIST_DIR}/integration)
hpcn_add_test(test_helper_admin
  SOURCES ${_d}/test_helper_admin.c ${_d}/helper_fixture.c ${_d}/sqfs_fixture.c
  LIBS hpcn_helper_core
  LABELS root integration
  TIMEOUT 240)
target_include_directories(test_helper_admin PRIVATE ${_d})
add_dependencies(test_helper_admin hpc-node-helper hpc-nodectl)
# Counts node-wide loop devices and shares /user-environment with the others.
set_tests_properties(test_helper_admin PROPERTIES RESOURCE_LOCK hpcn_loop_devices)
unset(_d)

# SPDX-License-Identifier: Apache-2.0
# hpc-node-helper under faults, load and hostile clients: the built daemon
# SIGKILLed in a storm of clients, 1,000 clients at once, clients that leave
# mid-exchange, a full state directory, and the helper under valgrind.
set(_d ${CMAKE_CURRENT_LIST_DIR}/integration)
foreach(_t load faults)
  hpcn_add_test(test_helper_${_t}
    SOURCES ${_d}/test_helper_${_t}.c ${_d}/helper_fixture.c ${_d}/sqfs_fixture.c
    LIBS hpcn_helper_core
    LABELS root integration
    TIMEOUT 300)
  target_include_directories(test_helper_${_t} PRIVATE ${_d})
  add_dependencies(test_helper_${_t} hpc-node-helper)
  # They count node-wide loop devices and share /user-environment.
  set_tests_properties(test_helper_${_t} PROPERTIES RESOURCE_LOCK hpcn_loop_devices)
endforeach()

# The helper itself under valgrind (ping, status, a scope with a process,
# end, a bad record, SIGTERM): exit 0 means no error and no leak. Not in
# sanitizer builds (ASan and valgrind do not mix). A missing valgrind makes
# the test fail, saying so.
if(NOT HPCN_SANITIZE)
  find_program(HPCN_VALGRIND valgrind)
  if(HPCN_VALGRIND)
    set(_vg ${HPCN_VALGRIND})
  else()
    set(_vg valgrind-not-found)
  endif()
  add_test(NAME test_helper_valgrind COMMAND test_helper_faults --valgrind ${_vg})
  set_tests_properties(test_helper_valgrind PROPERTIES
    LABELS "root;integration;valgrind" TIMEOUT 300 RESOURCE_LOCK hpcn_loop_devices)
  unset(_vg)
endif()
unset(_d)

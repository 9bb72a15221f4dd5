# SPDX-License-Identifier: Apache-2.0
# uenv mount layer, low level: mountinfo parser and image keys (unit), images
# opened as their user, loop devices and squashfs mounts (root, real kernel).
set(_d ${CMAKE_CURRENT_LIST_DIR})
hpcn_add_test(test_mountinfo SOURCES ${_d}/unit/test_mountinfo.c
  LIBS hpcn_helper_core LABELS unit TIMEOUT 60)
hpcn_add_test(test_image_key SOURCES ${_d}/unit/test_image_key.c
  LIBS hpcn_helper_core LABELS unit TIMEOUT 30)
hpcn_add_test(test_image
  SOURCES ${_d}/integration/test_image.c ${_d}/integration/sqfs_fixture.c
  LIBS hpcn_helper_core LABELS root TIMEOUT 60)
hpcn_add_test(test_loop_squashfs
  SOURCES ${_d}/integration/test_loop_squashfs.c ${_d}/integration/sqfs_fixture.c
  LIBS hpcn_helper_core LABELS root TIMEOUT 120)
foreach(_t test_image test_loop_squashfs)
  target_include_directories(${_t} PRIVATE ${_d}/integration)
endforeach()
# test_loop_squashfs compares the node-wide count of attached loop devices
# before and after: tests that attach loop devices must not run beside it.
# Other modules' loop-using tests should take the same lock.
set_tests_properties(test_loop_squashfs PROPERTIES RESOURCE_LOCK hpcn_loop_devices)
unset(_d)

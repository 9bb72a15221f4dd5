# SPDX-License-Identifier: Apache-2.0
# cgroup v2 module: a fake tree (no privileges) and the real kernel (root).
hpcn_add_test(test_cgroup_fake
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_cgroup_fake.c
  LIBS hpcn_helper_core
  LABELS unit
  TIMEOUT 60)
hpcn_add_test(test_cgroup_real
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_cgroup_real.c
  LIBS hpcn_helper_core
  LABELS root
  TIMEOUT 60)

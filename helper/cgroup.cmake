# SPDX-License-Identifier: Apache-2.0
# cgroup v2, workload side (CgroupManager).
target_sources(hpcn_helper_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/cgroup.c
  ${CMAKE_CURRENT_LIST_DIR}/cgroup_format.c
  ${CMAKE_CURRENT_LIST_DIR}/cgroup_limits.c
  ${CMAKE_CURRENT_LIST_DIR}/cgroup_metrics.c)

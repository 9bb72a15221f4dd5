# SPDX-License-Identifier: Apache-2.0
# Configuration file, logging and audit records of hpc-node-helper.
target_sources(hpcn_helper_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/config.c
  ${CMAKE_CURRENT_LIST_DIR}/log.c
  ${CMAKE_CURRENT_LIST_DIR}/audit.c
  ${CMAKE_CURRENT_LIST_DIR}/jsonline.c)

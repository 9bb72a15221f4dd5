# SPDX-License-Identifier: Apache-2.0
# Namespaces of allocations (NamespaceProvider, low level): ns.h
target_sources(hpcn_nodeops PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/ns.c
  ${CMAKE_CURRENT_LIST_DIR}/ns_holder.c
  ${CMAKE_CURRENT_LIST_DIR}/ns_mount.c
  ${CMAKE_CURRENT_LIST_DIR}/ns_worker.c)

# SPDX-License-Identifier: Apache-2.0
# Namespace module: real namespaces, pins and mounts (root).
hpcn_add_test(test_ns
  SOURCES ${HPCN_TESTS_DIR}/integration/test_ns.c
  LIBS hpcn_nodeops
  LABELS root
  TIMEOUT 120)

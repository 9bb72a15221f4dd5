# SPDX-License-Identifier: Apache-2.0
# FD passing, the consumer's client calls and the readiness gate: real
# socketpairs, a forked server with real namespace FDs, inotify. No root.
hpcn_add_test(test_wire
  SOURCES unit/test_wire.c
  LIBS hpcnode_static
  LABELS unit
  TIMEOUT 30)
hpcn_add_test(test_client
  SOURCES unit/test_client.c
  LIBS hpcnode_static
  LABELS unit
  TIMEOUT 30)
hpcn_add_test(test_readiness
  SOURCES unit/test_readiness.c
  LIBS hpcnode_static
  LABELS unit
  TIMEOUT 30)

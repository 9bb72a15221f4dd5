# SPDX-License-Identifier: Apache-2.0
# hpc-nodectl, the administrator's CLI. Its command-line parsing and output
# formatting are a small library of their own (not part of hpcn_helper_core:
# the CLI is a client, it shares nothing with the daemon but libhpcnode) so
# that tests/unit/test_ctl_format.c exercises them without a socket.
add_library(hpcn_ctl_format STATIC ctl_format.c ctl_args.c)
target_include_directories(hpcn_ctl_format PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(hpcn_ctl_format PUBLIC hpcnode_static PkgConfig::JANSSON)

add_executable(hpc-nodectl ctl.c)
target_link_libraries(hpc-nodectl PRIVATE hpcn_ctl_format hpcnode_static PkgConfig::JANSSON)

install(TARGETS hpc-nodectl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES
  ${PROJECT_SOURCE_DIR}/docs/man/hpc-nodectl.8
  ${PROJECT_SOURCE_DIR}/docs/man/hpc-node-helper.8
  ${PROJECT_SOURCE_DIR}/docs/man/spank_hpc_node.8
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/helper.conf.5
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

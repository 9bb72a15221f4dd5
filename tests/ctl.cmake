# SPDX-License-Identifier: Apache-2.0
# hpc-nodectl: argument parsing and output formatting (pure), and the man
# pages, which must render without a single groff/man warning (a machine
# without groff fails these tests rather than skipping them).
hpcn_add_test(test_ctl_format SOURCES unit/test_ctl_format.c LIBS hpcn_ctl_format LABELS unit)

foreach(page hpc-nodectl.8 hpc-node-helper.8 helper.conf.5 spank_hpc_node.8)
  add_test(NAME man_${page}
    COMMAND sh ${HPCN_TESTS_DIR}/man/check.sh ${PROJECT_SOURCE_DIR}/docs/man/${page})
  set_tests_properties(man_${page} PROPERTIES LABELS unit TIMEOUT 30)
endforeach()

# The real hpc-nodectl against a scripted peer speaking the real protocol on a
# real socket: requests sent, output, exit status (no privileges needed).
hpcn_add_test(test_ctl_cli SOURCES unit/test_ctl_cli.c LIBS hpcnode_static LABELS unit
              TIMEOUT 60)
add_dependencies(test_ctl_cli hpc-nodectl)

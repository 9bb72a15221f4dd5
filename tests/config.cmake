# SPDX-License-Identifier: Apache-2.0
# Configuration parsing, allowlists, logging and audit records.
hpcn_add_test(test_config SOURCES unit/test_config.c
  LIBS hpcn_helper_core LABELS unit TIMEOUT 30)
hpcn_add_test(test_audit SOURCES unit/test_audit.c
  LIBS hpcn_helper_core LABELS unit TIMEOUT 30)

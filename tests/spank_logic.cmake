# SPDX-License-Identifier: Apache-2.0
# Pure logic of the SPANK plugin: --uenv, --view/env.json, plugstack.conf args.
# These need no Slurm (hpcn_spank_logic is built even without the plugin).
hpcn_add_test(test_uenv_spec SOURCES unit/test_uenv_spec.c
  LIBS hpcn_spank_logic LABELS unit TIMEOUT 30)
hpcn_add_test(test_view SOURCES unit/test_view.c
  LIBS hpcn_spank_logic LABELS unit TIMEOUT 30)
hpcn_add_test(test_envjson SOURCES unit/test_envjson.c
  LIBS hpcn_spank_logic LABELS unit TIMEOUT 30)
hpcn_add_test(test_plugargs SOURCES unit/test_plugargs.c
  LIBS hpcn_spank_logic LABELS unit TIMEOUT 30)
hpcn_add_test(test_joblimits SOURCES unit/test_joblimits.c
  LIBS hpcn_spank_logic LABELS unit TIMEOUT 30)
hpcn_add_test(test_jobns SOURCES unit/test_jobns.c
  LIBS hpcn_spank_logic LABELS unit TIMEOUT 30)
hpcn_add_test(test_slurmconf SOURCES unit/test_slurmconf.c
  LIBS hpcn_spank_logic LABELS unit TIMEOUT 30)

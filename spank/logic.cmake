# SPDX-License-Identifier: Apache-2.0
# The plugin's pure logic (no Slurm header): --uenv, --view and env.json,
# plugstack.conf arguments, the job's share of the node, the job's namespace
# from job_container/tmpfs, what slurm.conf says. A static PIC library, linked into the plugin and
# into the unit tests (which include this file themselves when the plugin is
# not built, e.g. without slurm/spank.h).
if(NOT TARGET hpcn_spank_logic)
  add_library(hpcn_spank_logic STATIC
    ${CMAKE_CURRENT_LIST_DIR}/joblimits.c
    ${CMAKE_CURRENT_LIST_DIR}/jobns.c
    ${CMAKE_CURRENT_LIST_DIR}/plugargs.c
    ${CMAKE_CURRENT_LIST_DIR}/slurmconf.c
    ${CMAKE_CURRENT_LIST_DIR}/uenv_spec.c
    ${CMAKE_CURRENT_LIST_DIR}/view.c)
  set_target_properties(hpcn_spank_logic PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_include_directories(hpcn_spank_logic PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  # hpcn_nodeops: the mount table parser (jobns.c).
  target_link_libraries(hpcn_spank_logic PUBLIC hpcn_nodeops hpcnode_static PkgConfig::JANSSON)
endif()

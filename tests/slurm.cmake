# SPDX-License-Identifier: Apache-2.0
# Tests against a real Slurm (tests/slurm/*.bats): each file starts its own
# single-node cluster (munged, slurmctld, slurmd, hpc-node-helper) under a
# temporary directory, as root (tests/slurm/lib/cluster.bash). They run one
# at a time: they share the node's loop devices and mount points.
find_program(HPCN_BATS bats)
find_program(HPCN_SLURMCTLD slurmctld HINTS /usr/sbin /sbin)
find_program(HPCN_MKSQUASHFS mksquashfs HINTS /usr/bin /usr/sbin)

set(_missing "")
foreach(_p BATS SLURMCTLD MKSQUASHFS)
  if(NOT HPCN_${_p})
    string(TOLOWER ${_p} _n)
    list(APPEND _missing ${_n})
  endif()
endforeach()

if(_missing)
  # Never a silent skip: the suite fails and says what to install.
  string(REPLACE ";" ", " _missing "${_missing}")
  add_test(NAME slurm_prerequisites
    COMMAND sh -c "echo 'Slurm tests cannot run: not found: ${_missing} (contrib/check.sh installs bats, slurm-wlm, squashfs-tools)' >&2; exit 1")
  set_tests_properties(slurm_prerequisites PROPERTIES LABELS slurm)
else()
  set(_env HPCN_BUILD_DIR=${CMAKE_BINARY_DIR})
  if(HPCN_SANITIZE)
    # An instrumented plugin loads into uninstrumented srun and slurmstepd
    # only when the sanitizer runtimes are preloaded (the harness does it
    # for slurmd and the test user's commands).
    foreach(_lib asan ubsan)
      execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=lib${_lib}.so
        OUTPUT_VARIABLE _so OUTPUT_STRIP_TRAILING_WHITESPACE)
      if(IS_ABSOLUTE "${_so}")
        list(APPEND _preload ${_so})
      endif()
    endforeach()
    string(REPLACE ";" ":" _preload "${_preload}")
    list(APPEND _env HPCN_SLURM_PRELOAD=${_preload})
  endif()
  file(GLOB _bats CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/slurm/*.bats)
  list(SORT _bats)
  foreach(_f ${_bats})
    get_filename_component(_n ${_f} NAME_WE)
    add_test(NAME slurm_${_n} COMMAND ${HPCN_BATS} --tap ${_f}
      WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/slurm)
    set_tests_properties(slurm_${_n} PROPERTIES
      ENVIRONMENT "${_env}"
      LABELS slurm
      RUN_SERIAL TRUE
      TIMEOUT 3000)
  endforeach()
endif()
unset(_missing)
unset(_env)
unset(_bats)
unset(_preload)

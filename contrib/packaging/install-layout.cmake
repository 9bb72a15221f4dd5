# SPDX-License-Identifier: Apache-2.0
# Install-time part of contrib/packaging/packaging.cmake: runs inside
# cmake_install.cmake, where CMAKE_INSTALL_PREFIX is the prefix of this
# install (cmake --install --prefix, cpack), not the configured one. DESTDIR
# is applied by file(INSTALL). Inputs (set by packaging.cmake): HPCN_SOURCE_DIR,
# HPCN_BINARY_DIR, HPCN_CONFIGURED_PREFIX, HPCN_LIBDIR, HPCN_SBINDIR,
# HPCN_SYSCONFDIR, HPCN_SLURM_PLUGIN_DIR.

# file(INSTALL) records what it installs in CMAKE_INSTALL_MANIFEST_FILES
# (install_manifest.txt): hand it out of the block and the function.
block(PROPAGATE CMAKE_INSTALL_MANIFEST_FILES)
  set(prefix "${CMAKE_INSTALL_PREFIX}")
  string(REGEX REPLACE "(.)/+$" "\\1" prefix "${prefix}")

  # A directory relative to the prefix, or absolute as configured.
  macro(_hpcn_abs out dir)
    if(IS_ABSOLUTE "${dir}")
      set(${out} "${dir}")
    else()
      set(${out} "${prefix}/${dir}")
    endif()
  endmacro()

  # The GNU rule (as GNUInstallDirs' FULL_SYSCONFDIR, but for this prefix):
  # /usr -> /etc, /opt/X -> /etc/opt/X, else PREFIX/etc.
  if(IS_ABSOLUTE "${HPCN_SYSCONFDIR}")
    set(etc "${HPCN_SYSCONFDIR}")
  elseif(NOT HPCN_SYSCONFDIR STREQUAL "etc")
    set(etc "${prefix}/${HPCN_SYSCONFDIR}")
  elseif(prefix STREQUAL "/usr" OR prefix STREQUAL "/")
    set(etc "/etc")
  elseif(prefix MATCHES "^/opt/")
    set(etc "/etc${prefix}")
  else()
    set(etc "${prefix}/etc")
  endif()
  _hpcn_abs(sbindir "${HPCN_SBINDIR}")
  _hpcn_abs(libdir "${HPCN_LIBDIR}")
  _hpcn_abs(plugindir "${HPCN_SLURM_PLUGIN_DIR}")
  set(gen "${HPCN_BINARY_DIR}/contrib/packaging/install")
  file(MAKE_DIRECTORY "${gen}")

  # Copy SRC to DEST_DIR/NAME replacing each FROM by TO (FROM must occur: a
  # file that no longer names what we rewrite is a packaging bug, not a
  # detail to skip).
  function(_hpcn_install_rewritten src dest_dir name)
    file(READ "${src}" text)
    set(pairs ${ARGN})
    while(pairs)
      list(POP_FRONT pairs from to)
      string(FIND "${text}" "${from}" at)
      if(at EQUAL -1)
        message(FATAL_ERROR "${src} does not contain '${from}': update "
                            "contrib/packaging/install-layout.cmake")
      endif()
      string(REPLACE "${from}" "${to}" text "${text}")
    endwhile()
    file(WRITE "${gen}/${name}" "${text}")
    file(INSTALL DESTINATION "${dest_dir}" TYPE FILE FILES "${gen}/${name}"
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    set(CMAKE_INSTALL_MANIFEST_FILES "${CMAKE_INSTALL_MANIFEST_FILES}" PARENT_SCOPE)
  endfunction()

  # The helper's configuration, every key at its default.
  file(INSTALL DESTINATION "${etc}/hpc-node" TYPE FILE
       FILES "${HPCN_SOURCE_DIR}/etc/helper.conf"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

  # systemd units: they name /usr/sbin and /etc; for another prefix, that
  # prefix's paths. systemd also reads /usr/local/lib/systemd/system.
  _hpcn_install_rewritten("${HPCN_SOURCE_DIR}/etc/systemd/hpc-node-helper.service"
    "${prefix}/lib/systemd/system" hpc-node-helper.service
    "/usr/sbin/hpc-node-helper" "${sbindir}/hpc-node-helper"
    "/etc/hpc-node/helper.conf" "${etc}/hpc-node/helper.conf")
  file(INSTALL DESTINATION "${prefix}/lib/systemd/system" TYPE FILE
       FILES "${HPCN_SOURCE_DIR}/etc/systemd/hpc-node-helper.socket"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

  # The plugstack.conf snippet (line commented out), naming the plugin where
  # this install put it. Debian's /etc/slurm/plugstack.conf includes
  # /etc/slurm/plugstack.conf.d/*.conf.
  _hpcn_install_rewritten("${HPCN_SOURCE_DIR}/etc/plugstack.conf.d/hpc-node.conf"
    "${etc}/slurm/plugstack.conf.d" hpc-node.conf
    "/usr/lib/x86_64-linux-gnu/slurm-wlm/spank_hpc_node.so"
    "${plugindir}/spank_hpc_node.so")

  # hpcnode.pc: common/ configured it for the configured prefix and installed
  # it just before this; write it again for this install's prefix.
  set(pc "${HPCN_BINARY_DIR}/common/hpcnode.pc")
  if(EXISTS "${pc}")
    file(STRINGS "${pc}" lines)
    set(text "")
    foreach(l IN LISTS lines)
      if(l MATCHES "^(prefix|exec_prefix|libdir|includedir)=(.*)$")
        set(k "${CMAKE_MATCH_1}")
        set(v "${CMAKE_MATCH_2}")
        if(v STREQUAL HPCN_CONFIGURED_PREFIX)
          set(v "${prefix}")
        elseif(v MATCHES "^/" AND HPCN_CONFIGURED_PREFIX)
          string(LENGTH "${HPCN_CONFIGURED_PREFIX}/" n)
          string(SUBSTRING "${v}/" 0 ${n} head)
          if(head STREQUAL "${HPCN_CONFIGURED_PREFIX}/")
            string(SUBSTRING "${v}" ${n} -1 tail)
            set(v "${prefix}/${tail}")
          endif()
        endif()
        set(l "${k}=${v}")
      endif()
      string(APPEND text "${l}\n")
    endforeach()
    file(WRITE "${gen}/hpcnode.pc" "${text}")
    file(INSTALL DESTINATION "${libdir}/pkgconfig" TYPE FILE FILES "${gen}/hpcnode.pc"
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endif()
endblock()

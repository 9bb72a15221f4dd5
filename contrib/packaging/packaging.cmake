# SPDX-License-Identifier: Apache-2.0
# Installation layout and packages (CPack: .deb; contrib/packaging/hpc-node.spec
# for rpm). Included from the top-level CMakeLists.txt after GNUInstallDirs and
# before the subdirectories; what needs the targets runs deferred, at the end
# of the top-level directory.
#
# The install prefix is often chosen at install time, not when configuring:
# `cmake --install build --prefix /usr` and cpack (which installs with /usr)
# both override the configured /usr/local. Everything below that depends on
# the prefix is therefore decided by install-time code (install-layout.cmake),
# not by configure-time variables:
#   prefix /usr    -> /etc/hpc-node/helper.conf, /etc/slurm/plugstack.conf.d/
#   other prefixes -> PREFIX/etc/... (GNU rule; /opt/X -> /etc/opt/X)
#   systemd units  -> PREFIX/lib/systemd/system, naming PREFIX's binaries
#   hpcnode.pc     -> written for the install prefix
#
# Build a .deb:  cmake --build build && (cd build && cpack -G DEB)

# Debian's Slurm loads plugins from /usr/lib/<multiarch>/slurm-wlm, whatever
# CMAKE_INSTALL_LIBDIR is (it is plain "lib" unless the configured prefix is
# /usr). Other distributions: -DHPCN_SLURM_PLUGIN_DIR=lib64/slurm (see the
# rpm spec). spank/CMakeLists.txt keeps its own default when this is unset.
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(_dir "lib/${CMAKE_LIBRARY_ARCHITECTURE}/slurm-wlm")
  # Build trees configured before this file existed cached spank's old
  # default (LIBDIR/slurm-wlm, i.e. lib/slurm-wlm): not a choice, replace it.
  if(HPCN_SLURM_PLUGIN_DIR STREQUAL "${CMAKE_INSTALL_LIBDIR}/slurm-wlm")
    set(HPCN_SLURM_PLUGIN_DIR "${_dir}" CACHE STRING
        "Directory of Slurm plugins, relative to the prefix or absolute" FORCE)
  endif()
  set(HPCN_SLURM_PLUGIN_DIR "${_dir}" CACHE STRING
      "Directory of Slurm plugins, relative to the prefix or absolute")
  unset(_dir)
endif()

function(_hpcn_packaging_finish)
  # Files of etc/ and the pkg-config file: destinations computed at install
  # time (see above). The variables are handed to the install script.
  install(CODE "
    set(HPCN_SOURCE_DIR [[${PROJECT_SOURCE_DIR}]])
    set(HPCN_BINARY_DIR [[${PROJECT_BINARY_DIR}]])
    set(HPCN_CONFIGURED_PREFIX [[${CMAKE_INSTALL_PREFIX}]])
    set(HPCN_LIBDIR [[${CMAKE_INSTALL_LIBDIR}]])
    set(HPCN_SBINDIR [[${CMAKE_INSTALL_SBINDIR}]])
    set(HPCN_SYSCONFDIR [[${CMAKE_INSTALL_SYSCONFDIR}]])
    set(HPCN_SLURM_PLUGIN_DIR [[${HPCN_SLURM_PLUGIN_DIR}]])
    include([[${CMAKE_CURRENT_FUNCTION_LIST_DIR}/install-layout.cmake]])
  ")

  # ---- CPack ---------------------------------------------------------------
  set(CPACK_PACKAGE_NAME "hpc-node")
  set(CPACK_PACKAGE_VENDOR "hpc-node project")
  set(CPACK_PACKAGE_CONTACT "hpc-node maintainers <hpc-node@localhost>")
  set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
  set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
      "Node-level resource management for Slurm (hpc-node contract ${HPCN_CONTRACT_VERSION})")
  set(CPACK_PACKAGE_DESCRIPTION
"hpc-node-helper, a privileged node daemon (cgroup scopes under workload.slice,
per-allocation namespaces, refcounted squashfs uenv mounts with a hold timer,
restart reconstruction), its CLI hpc-nodectl, the Slurm SPANK plugin
spank_hpc_node.so (srun --uenv=IMAGE --view=NAME) and libhpcnode, the
hpc-node contract and handoff protocol in C.")
  set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
  # Packages install into /usr whatever the build was configured with. With
  # DESTDIR and the real prefix (CPACK_SET_DESTDIR), install-layout.cmake sees
  # /usr and puts the configuration under /etc.
  set(CPACK_SET_DESTDIR ON)
  set(CPACK_INSTALL_PREFIX /usr)
  set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
  set(CPACK_STRIP_FILES OFF)
  set(CPACK_SOURCE_GENERATOR "")

  set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
  set(CPACK_DEBIAN_PACKAGE_SECTION admin)
  set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
  set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://crates.io/crates/hpc-node")
  # libc6, libjansson4, libsystemd0, libinih1 from the binaries (dpkg-shlibdeps).
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
  # Slurm refuses a plugin built for another release (the plugin records
  # SLURM_VERSION_NUMBER): tie it to the Slurm it was built against.
  set(_dep "")
  find_file(_hpcn_slurm_version_h slurm/slurm_version.h)
  if(_hpcn_slurm_version_h)
    file(STRINGS ${_hpcn_slurm_version_h} _v REGEX "^#define SLURM_VERSION_NUMBER ")
    if(_v MATCHES "0x([0-9a-fA-F][0-9a-fA-F])([0-9a-fA-F][0-9a-fA-F])[0-9a-fA-F][0-9a-fA-F]")
      math(EXPR _maj "0x${CMAKE_MATCH_1}")
      math(EXPR _min "0x${CMAKE_MATCH_2}")
      math(EXPR _next "${_min} + 1")
      set(_min2 ${_min})
      if(_min LESS 10)
        set(_min2 "0${_min}")
      endif()
      if(_next LESS 10)
        set(_next "0${_next}")
      endif()
      set(_dep "slurmd (>= ${_maj}.${_min2}), slurmd (<< ${_maj}.${_next})")
    endif()
  endif()
  unset(_hpcn_slurm_version_h CACHE)
  # Recommends, not Depends: the helper and libhpcnode are useful without
  # Slurm on the node (pact, other workload managers).
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "${_dep}")
  set(CPACK_DEBIAN_PACKAGE_SUGGESTS "squashfs-tools")
  set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
      ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/debian/conffiles
      ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/debian/postinst
      ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/debian/prerm
      ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/debian/postrm)
  set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

  set(CPACK_GENERATOR DEB)
  include(CPack)
endfunction()

cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _hpcn_packaging_finish)

# SPDX-License-Identifier: Apache-2.0
# Installation and packaging: `cmake --install --prefix /usr` into a staging
# directory (every file in its Debian place, the library usable through
# pkg-config), and the .deb that cpack makes from this build tree.
# They install the build tree, so they need it built: ctest runs after the
# build. The deb test runs cpack (a few seconds).
add_test(NAME install_layout
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install/test_install.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
set_tests_properties(install_layout PROPERTIES LABELS unit TIMEOUT 120 RESOURCE_LOCK hpcn_install)
if(HPCN_SANITIZE)
  # The staged library is instrumented: so must the program linked with it.
  set_tests_properties(install_layout PROPERTIES
    ENVIRONMENT "HPCN_TEST_CFLAGS=-fsanitize=address,undefined")
endif()
add_test(NAME install_deb_package
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install/test_deb.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
set_tests_properties(install_deb_package PROPERTIES LABELS unit TIMEOUT 300 RESOURCE_LOCK hpcn_install)

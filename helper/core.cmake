# The daemon's own modules and the executable.
target_sources(hpcn_helper_core PRIVATE registry.c server.c alloc.c uenv.c status.c)
add_executable(hpc-node-helper main.c)
target_link_libraries(hpc-node-helper PRIVATE hpcn_helper_core)
install(TARGETS hpc-node-helper DESTINATION ${CMAKE_INSTALL_SBINDIR})
# etc/helper.conf and the systemd units: contrib/packaging/install-layout.cmake
# (their destinations depend on the install-time prefix).

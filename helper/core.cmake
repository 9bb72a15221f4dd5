# The daemon's own modules and the executable.
target_sources(hpcn_helper_core PRIVATE registry.c server.c alloc.c uenv.c status.c)
add_executable(hpc-node-helper main.c)
target_link_libraries(hpc-node-helper PRIVATE hpcn_helper_core)
install(TARGETS hpc-node-helper DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/etc/helper.conf DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/hpc-node)
install(FILES ${PROJECT_SOURCE_DIR}/etc/systemd/hpc-node-helper.service
              ${PROJECT_SOURCE_DIR}/etc/systemd/hpc-node-helper.socket
        DESTINATION lib/systemd/system)

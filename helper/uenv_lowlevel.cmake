# SPDX-License-Identifier: Apache-2.0
# uenv mount layer, low level: images opened as their user, loop devices,
# squashfs mounts, the mountinfo parser.
target_sources(hpcn_nodeops PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/image.c
  ${CMAKE_CURRENT_LIST_DIR}/loopdev.c
  ${CMAKE_CURRENT_LIST_DIR}/squashfs.c
  ${CMAKE_CURRENT_LIST_DIR}/mountinfo.c)

# Unit tests of libhpcnode's contract pieces (no privileges needed).
hpcn_add_test(test_slice  SOURCES unit/test_slice.c  LIBS hpcnode_static LABELS unit)
hpcn_add_test(test_error  SOURCES unit/test_error.c  LIBS hpcnode_static LABELS unit)
hpcn_add_test(test_types  SOURCES unit/test_types.c  LIBS hpcnode_static LABELS unit)

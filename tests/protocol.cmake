# The wire protocol codec: golden vectors (tests/vectors), serde's shape,
# round trips of every tag. Pure computation, label unit.
hpcn_add_test(test_protocol SOURCES unit/test_protocol.c LIBS hpcnode_static
              LABELS unit TIMEOUT 60)

# The same binary under valgrind: decode/encode error paths must not leak.
# Not with the sanitizers (ASan and valgrind do not mix).
find_program(HPCN_VALGRIND valgrind)
if(HPCN_VALGRIND AND NOT HPCN_SANITIZE)
  add_test(NAME test_protocol_valgrind
           COMMAND ${HPCN_VALGRIND} --quiet --leak-check=full --show-leak-kinds=all
                   --errors-for-leak-kinds=all --error-exitcode=1
                   $<TARGET_FILE:test_protocol>)
  set_tests_properties(test_protocol_valgrind PROPERTIES LABELS "unit;valgrind" TIMEOUT 300)
endif()

# Every prefix and byte substitution of the valid vectors (hostile input).
hpcn_add_test(test_protocol_mutate SOURCES unit/test_protocol_mutate.c LIBS hpcnode_static
              LABELS unit TIMEOUT 120)

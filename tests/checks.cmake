# Health checks (mesh/checks/): real child processes, a loopback HTTP
# server of the test's own, TCP ports and /bin/sh commands.
if(NOT TARGET lm_checks)
  return()
endif()

lm_add_test(test_checks
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_checks.c
  LIBS lm_checks
  TIMEOUT 600)
